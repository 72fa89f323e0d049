//! Rate limits per action, by client address and by account: a sliding window of recent hits kept
//! in memory (per process; a few instances behind a balancer each allow the limit, which is still a
//! limit). Over the limit, the answer is 429 with `Retry-After`.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use actix_web::HttpRequest;

/// What is being limited. Each has its own budget per window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Signup,
    /// Every login attempt. (Failed ones are limited harder, in the database: see
    /// `db::login_failures`.)
    Login,
    Submit,
    Comment,
    Vote,
    Report,
    /// Invitation links made.
    Invite,
    Search,
    /// Activities POSTed to an inbox, by the peer's address.
    Inbox,
}

impl Action {
    /// How many hits a window allows, and how long the window is: generous for people, who rarely
    /// come near them.
    fn budget(self) -> (usize, Duration) {
        const MINUTE: Duration = Duration::from_secs(60);
        match self {
            Action::Signup => (20, 60 * MINUTE),
            Action::Login => (60, 15 * MINUTE),
            Action::Submit => (60, 10 * MINUTE),
            Action::Comment => (120, 10 * MINUTE),
            Action::Vote => (600, 10 * MINUTE),
            Action::Report => (30, 10 * MINUTE),
            Action::Invite => (20, 24 * 60 * MINUTE),
            Action::Search => (120, MINUTE),
            Action::Inbox => (3000, MINUTE),
        }
    }
}

/// Beyond this many tracked keys, the expired ones are swept out.
const SWEEP_ABOVE: usize = 50_000;

/// The recent hits of every (action, key); `key` is an address (`ip:...`) or an account (`id:...`).
pub struct RateLimits {
    enabled: bool,
    hits: Mutex<HashMap<(Action, String), VecDeque<Instant>>>,
}

impl RateLimits {
    /// Whether limits apply at all (`LIEN_RATE_LIMITS`).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn new(enabled: bool) -> RateLimits {
        RateLimits {
            enabled,
            hits: Mutex::default(),
        }
    }

    /// Counts a hit against every key, unless one of them is over its budget: then nothing is
    /// counted and the answer is the seconds until it has room again.
    pub fn hit(&self, action: Action, keys: &[&str]) -> Result<(), u64> {
        self.check(action, keys, true)
    }

    /// Whether every key still has room, counting nothing.
    pub fn peek(&self, action: Action, keys: &[&str]) -> Result<(), u64> {
        self.check(action, keys, false)
    }

    fn check(&self, action: Action, keys: &[&str], count: bool) -> Result<(), u64> {
        if !self.enabled {
            return Ok(());
        }
        let (limit, window) = action.budget();
        let now = Instant::now();
        let mut hits = self
            .hits
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if hits.len() > SWEEP_ABOVE {
            hits.retain(|(action, _), times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < action.budget().1)
            });
        }
        let mut wait = None;
        for key in keys {
            if let Some(times) = hits.get_mut(&(action, (*key).to_owned())) {
                while times
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= window)
                {
                    times.pop_front();
                }
                if times.len() >= limit {
                    let oldest = times[times.len() - limit];
                    let left = window.saturating_sub(now.duration_since(oldest));
                    wait = wait.max(Some(left.as_secs() + 1));
                }
            }
        }
        if let Some(seconds) = wait {
            return Err(seconds);
        }
        if count {
            for key in keys {
                hits.entry((action, (*key).to_owned()))
                    .or_default()
                    .push_back(now);
            }
        }
        Ok(())
    }
}

/// The client's address: the peer's, or behind a trusted proxy (`LIEN_TRUST_PROXY=1`) the first
/// address in `X-Forwarded-For`. Untrusted, the header is ignored: anyone can write it.
pub fn client_ip(req: &HttpRequest, trust_proxy: bool) -> String {
    let forwarded = trust_proxy
        .then(|| req.headers().get("x-forwarded-for"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.trim().parse::<IpAddr>().ok());
    match forwarded.or_else(|| req.peer_addr().map(|a| a.ip())) {
        Some(ip) => format!("ip:{ip}"),
        None => "ip:unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_window_refuses_until_it_has_room() {
        let limits = RateLimits::new(true);
        for _ in 0..30 {
            assert!(limits.hit(Action::Report, &["ip:1"]).is_ok());
        }
        let wait = limits.hit(Action::Report, &["ip:1"]).unwrap_err();
        assert!(wait > 0 && wait <= 10 * 60 + 1);
        // Other keys and other actions have their own budgets.
        assert!(limits.peek(Action::Report, &["ip:2"]).is_ok());
        assert!(limits.peek(Action::Login, &["ip:1"]).is_ok());
    }

    #[test]
    fn off_means_off() {
        let limits = RateLimits::new(false);
        for _ in 0..100 {
            assert!(limits.hit(Action::Report, &["ip:1"]).is_ok());
        }
    }
}
