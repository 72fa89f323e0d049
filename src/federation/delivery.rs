//! Durable outgoing delivery (SPEC section 5, "Delivery is durable").
//!
//! Every activity lien sends is first a row in `delivery`, one per (activity, inbox), written in
//! the same transaction as the change that caused it ([`enqueue`]). Workers ([`run`], in
//! `lien worker` and in-process in `lien serve`) claim due rows with `FOR UPDATE SKIP LOCKED` and
//! push their due time forward by a lease while they send: any number of processes share the
//! queue without sending a row twice at once, and the rows of a worker that died come due again
//! by themselves when the lease runs out.
//!
//! Each POST is signed (`signing`) with the signer's key parsed once and kept, in the scheme the
//! peer's host is known to take (`peer_signature`): RFC 9421 for hosts known to verify it, and
//! draft-cavage, which every server verifies, for the others and for hosts not known yet. A
//! host that answers 400 or 401 to RFC 9421 gets the same POST again signed draft-cavage at once
//! (the "double knock"), and is remembered as taking draft-cavage if that went through. A success, or a refusal the peer means for good (a 4xx other than 408 and
//! 429), deletes the row (in batches: see [`Pump::record_sent`]); anything else is retried with
//! exponential backoff, and a row still failing after three days is given up. Delivery is at least
//! once: a worker killed between the peer's answer and the delete sends again, and peers
//! deduplicate by activity id (lien's inbox does too).

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    sync::Arc,
    time::Duration,
};

use sqlx::{PgPool, Postgres, Transaction};
use tokio::{task::JoinSet, time::Instant};
use url::Url;

use crate::{
    config::Switch,
    db::peer_signatures,
    federation::{
        check_peer_url, http_client, signing::SigningKey, site, verification::Scheme, FedConfig,
        FedData,
    },
};

/// Deliveries in flight at once, per worker. Each waits mostly on a peer or on the database's
/// commit, not on this process, so one worker keeps many going.
const MAX_IN_FLIGHT: usize = 64;

/// The worker claims rows when at least this many slots are free (or none is busy): one claim
/// (one commit) per batch rather than one per finished delivery.
const CLAIM_BATCH: usize = MAX_IN_FLIGHT / 4;

/// Delivered rows are deleted this many at a time (or when nothing else is in flight).
const DELETE_BATCH: usize = 32;

/// Deliveries in flight to one host at once, per worker, so that one slow or dead server never
/// takes every slot and holds up delivery to the others.
const MAX_PER_HOST: usize = 4;

/// How many of the oldest due rows one claim looks at to pick per-host shares from.
const CLAIM_WINDOW: i64 = 1000;

/// How long a worker that claimed a row is trusted to finish it (one request, 10 s at most). A
/// worker that dies leaves its rows to come due again after this.
const LEASE: &str = "5 minutes";

/// One attempt, name lookup and signing included, ends after this even if the request's own
/// timeout never fires (outside dev mode the library resolves the inbox's host without one).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

/// The content type of every POST (Mastodon accepts it, and so does everyone else).
const FEDERATION_CONTENT_TYPE: &str = "application/activity+json";

/// How long a row keeps being retried (SPEC: at least a day).
const GIVE_UP_AFTER: &str = "3 days";

/// How often an idle worker looks for due rows.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How long a worker trusts the signing keys it has read (a key changes rarely, if ever).
const SIGNER_CACHE_TTL: Duration = Duration::from_secs(60);

/// How much of a failure's message is kept in `last_error`.
const MAX_ERROR_LENGTH: usize = 500;

/// Who signs a delivery: a local person (their key in `person.private_key_pem`), the instance
/// actor, or a tag group (its key in `tag_group`). The signer's key id goes in the signature, so
/// it should be the activity's actor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signer {
    Person(i64),
    Instance,
    Group(String),
}

/// What one [`deliver_due`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcomes {
    /// Accepted, or refused for good by the peer (a 4xx other than 408/429: the library reports
    /// both as done): the rows are gone.
    pub delivered: usize,
    /// Failed and due again later, after a backoff.
    pub failed: usize,
    /// Dropped: failing for longer than three days, or impossible to send (no signer left, an
    /// inbox that can never be a peer).
    pub given_up: usize,
}

impl Outcomes {
    /// Rows this call handled.
    pub fn total(&self) -> usize {
        self.delivered + self.failed + self.given_up
    }

    fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Delivered => self.delivered += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::GivenUp => self.given_up += 1,
        }
    }
}

/// The state of the queue, for /metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct QueueStats {
    /// Rows in the queue, due or waiting for a retry (or leased by a worker).
    pub queued: i64,
    /// Rows due now and not claimed by a worker.
    pub due: i64,
    /// How long the longest-waiting due row has been due, in seconds: how far the workers are
    /// behind (0 when nothing is due).
    pub oldest_due_seconds: f64,
}

/// Queues `activity` (JSON with at least `id` and `actor`) for each inbox, in the caller's
/// transaction, so the change and its deliveries commit together. Skips duplicate inboxes, inboxes
/// on this instance (`local_host` is `Config::host()`, host with port) and inboxes that cannot be
/// peers ([`check_peer_url`]: IP literals never reach the library, which panics on them).
/// Idempotent per (activity id, inbox). Returns how many rows were queued.
pub async fn enqueue(
    tx: &mut Transaction<'_, Postgres>,
    activity: &serde_json::Value,
    signer: Signer,
    inboxes: &[Url],
    local_host: &str,
) -> sqlx::Result<usize> {
    let Some(activity_id) = activity.get("id").and_then(serde_json::Value::as_str) else {
        return Err(sqlx::Error::InvalidArgument(
            "an activity to deliver needs an id".into(),
        ));
    };
    if activity
        .get("actor")
        .and_then(serde_json::Value::as_str)
        .is_none()
    {
        return Err(sqlx::Error::InvalidArgument(format!(
            "activity {activity_id} has no actor"
        )));
    }
    let mut seen = HashSet::new();
    let (mut targets, mut hosts) = (Vec::new(), Vec::new());
    for inbox in inboxes {
        if let Err(reason) = check_peer_url(inbox) {
            tracing::debug!(%inbox, activity = activity_id, reason, "not a peer's inbox, skipped");
            continue;
        }
        let host = host_of(inbox);
        if host.eq_ignore_ascii_case(local_host) || !seen.insert(inbox.as_str()) {
            continue;
        }
        targets.push(inbox.as_str());
        hosts.push(host);
    }
    if targets.is_empty() {
        return Ok(0);
    }
    let (signer_id, signer_tag) = match signer {
        Signer::Person(id) => (Some(id), None),
        Signer::Instance => (None, None),
        Signer::Group(tag) => (None, Some(tag)),
    };
    let queued = sqlx::query(concat!(
        "insert into delivery (activity_id, signer_id, signer_tag, inbox, host, payload)
         select $1, $2, $6, target.inbox, target.host, $3
         from unnest($4::text[], $5::text[]) as target (inbox, host)
         -- nothing goes to a blocked server, nor to a subdomain of one
         where not ",
        crate::blocked_host_sql!("target.host"),
        " on conflict (activity_id, inbox) do nothing"
    ))
    .bind(activity_id)
    .bind(signer_id)
    .bind(sqlx::types::Json(activity))
    .bind(&targets)
    .bind(&hosts)
    .bind(signer_tag)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(queued as usize)
}

/// Claims up to `limit` due deliveries and sends them, at most 64 at once and 4 per host, until
/// `limit` rows were claimed or none is due; returns what happened. For tests and tools; the
/// worker ([`run`]) keeps going instead.
pub async fn deliver_due(data: &FedData, limit: i64) -> anyhow::Result<Outcomes> {
    let mut pump = Pump::new(data)?;
    let mut outcomes = Outcomes::default();
    let mut left = usize::try_from(limit).unwrap_or(0);
    loop {
        let room = MAX_IN_FLIGHT.saturating_sub(pump.in_flight.len()).min(left);
        if room > 0 {
            match pump.fill(room).await {
                Ok(started) => left -= started,
                Err(error) => {
                    // Finish what is in flight, so nothing is sent without being recorded.
                    while let Some(outcome) = pump.finish_one().await {
                        outcomes.count(outcome);
                    }
                    pump.delete_sent().await;
                    return Err(error);
                }
            }
        }
        match pump.finish_one().await {
            Some(outcome) => outcomes.count(outcome),
            None => {
                pump.delete_sent().await;
                return Ok(outcomes);
            }
        }
        pump.delete_sent_if_due().await;
    }
}

/// The worker: sends due deliveries, at most 64 at once and 4 per host, taking up new ones as
/// slots free up and looking for due rows every second when idle, until `shutdown` resolves; then
/// it finishes the deliveries in flight and returns. Database errors are logged and retried.
pub async fn run(config: FedConfig, shutdown: impl Future<Output = ()>) {
    let data = config.to_request_data();
    tokio::pin!(shutdown);
    if data.app_data().config.federation == Switch::Off {
        tracing::info!("federation is off: the delivery worker stays idle");
        shutdown.await;
        return;
    }
    tracing::info!("the delivery worker is running");
    let mut pump = match Pump::new(&data) {
        Ok(pump) => pump,
        Err(error) => {
            tracing::error!(
                error = format!("{error:#}"),
                "the delivery worker cannot start"
            );
            shutdown.await;
            return;
        }
    };
    let mut next_claim = Instant::now();
    loop {
        let room = MAX_IN_FLIGHT.saturating_sub(pump.in_flight.len());
        let worth_a_claim = room >= CLAIM_BATCH || pump.in_flight.is_empty();
        if room > 0 && worth_a_claim && Instant::now() >= next_claim {
            next_claim = match pump.fill(room).await {
                // Everything due was taken: look again when a slot frees up or in a second.
                Ok(started) if started < room => Instant::now() + POLL_INTERVAL,
                Ok(_) => Instant::now(),
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "could not claim deliveries");
                    Instant::now() + POLL_INTERVAL
                }
            };
        }
        let has_room = pump.in_flight.len() < MAX_IN_FLIGHT;
        tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = pump.finish_one(), if !pump.in_flight.is_empty() => {
                // A freed slot may let a waiting host's rows go.
                next_claim = Instant::now();
            }
            _ = tokio::time::sleep_until(next_claim), if has_room => {}
        }
        pump.delete_sent_if_due().await;
    }
    let in_flight = pump.in_flight.len();
    if in_flight > 0 {
        tracing::info!(in_flight, "finishing the deliveries in flight");
    }
    while pump.finish_one().await.is_some() {}
    pump.delete_sent().await;
    tracing::info!("the delivery worker stopped");
}

/// The number of queued rows, of due rows, and how long the oldest due row has waited.
pub async fn queue_stats(pool: &PgPool) -> sqlx::Result<QueueStats> {
    let (queued, due, oldest_due_seconds) = sqlx::query_as(
        "select count(*),
                count(*) filter (where next_attempt_at <= now()),
                coalesce(extract(epoch from now() - min(next_attempt_at)
                                 filter (where next_attempt_at <= now())), 0)::float8
         from delivery",
    )
    .fetch_one(pool)
    .await?;
    Ok(QueueStats {
        queued,
        due,
        oldest_due_seconds,
    })
}

/// `host` or `host:port`, as the `delivery.host` column and the library's locality check spell it.
/// A URL's host as `person.host` and `delivery.host` store it: with the port when not the default.
pub fn host_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// A claimed row: its lease runs, and `attempts` already counts this attempt.
#[derive(sqlx::FromRow)]
struct Claimed {
    id: i64,
    activity_id: String,
    signer_id: Option<i64>,
    signer_tag: Option<String>,
    inbox: String,
    host: String,
    payload: sqlx::types::Json<serde_json::Value>,
    attempts: i32,
    /// Queued longer ago than GIVE_UP_AFTER: a failure now is the last.
    expired: bool,
}

/// How one delivery ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Delivered,
    Failed,
    GivenUp,
}

/// What a signer lookup found.
#[derive(Clone)]
enum SignerKeys {
    Found(Arc<SigningKey>),
    /// The person is gone, remote, or has no key: their rows can never be signed.
    Missing,
}

/// Claims rows, starts their deliveries on the runtime, and collects the results.
struct Pump<'a> {
    data: &'a FedData,
    /// One client per worker, so connections to a peer are kept and reused.
    client: reqwest::Client,
    in_flight: JoinSet<Finished>,
    /// Rows delivered and not yet deleted. Until they are, a crash only means sending them again.
    sent: Vec<i64>,
    /// Deliveries in flight per host.
    busy: HashMap<String, usize>,
    signers: HashMap<(Option<i64>, Option<String>), SignerKeys>,
    signers_read_at: Instant,
    /// The signature scheme of each host this worker delivered to (read with the signers).
    schemes: HashMap<String, Scheme>,
}

impl<'a> Pump<'a> {
    fn new(data: &'a FedData) -> anyhow::Result<Pump<'a>> {
        let config = &data.app_data().config;
        Ok(Pump {
            data,
            client: http_client(&config.host(), config.dev)?,
            in_flight: JoinSet::new(),
            sent: Vec::new(),
            busy: HashMap::new(),
            signers: HashMap::new(),
            signers_read_at: Instant::now(),
            schemes: HashMap::new(),
        })
    }

    fn pool(&self) -> &PgPool {
        &self.data.app_data().db.write
    }

    /// Claims up to `room` due rows, no host past its share, and starts sending them. Returns how
    /// many were started.
    async fn fill(&mut self, room: usize) -> anyhow::Result<usize> {
        if self.signers_read_at.elapsed() > SIGNER_CACHE_TTL {
            self.signers.clear();
            self.schemes.clear();
            self.signers_read_at = Instant::now();
        }
        let (busy_hosts, busy_counts): (Vec<&str>, Vec<i64>) = self
            .busy
            .iter()
            .map(|(host, n)| (host.as_str(), *n as i64))
            .unzip();
        let full_hosts: Vec<&str> = self
            .busy
            .iter()
            .filter(|(_, n)| **n >= MAX_PER_HOST)
            .map(|(host, _)| host.as_str())
            .collect();
        // The oldest due rows, at most MAX_PER_HOST in flight per host counting those this worker
        // already sends, locked with SKIP LOCKED so that concurrent claims take different rows,
        // then leased: their due time moves past the lease, so a claim elsewhere passes them by.
        let rows: Vec<Claimed> = sqlx::query_as(&format!(
            "with candidate as materialized (
                 select id, host, next_attempt_at from delivery
                 where next_attempt_at <= now() and host <> all($4::text[])
                 order by next_attempt_at
                 limit $6
             ), ranked as materialized (
                 select candidate.id, candidate.next_attempt_at,
                        coalesce(busy.n, 0) + row_number() over (
                            partition by candidate.host order by candidate.next_attempt_at, candidate.id
                        ) as slot
                 from candidate
                 left join unnest($2::text[], $3::int8[]) as busy (host, n) on busy.host = candidate.host
             ), chosen as (
                 select delivery.id from delivery
                 join ranked on ranked.id = delivery.id
                 where ranked.slot <= $5 and delivery.next_attempt_at <= now()
                 order by ranked.next_attempt_at
                 limit $1
                 for update of delivery skip locked
             )
             update delivery
             set next_attempt_at = now() + interval '{LEASE}', attempts = delivery.attempts + 1
             from chosen
             where delivery.id = chosen.id
             returning delivery.id, delivery.activity_id, delivery.signer_id, delivery.signer_tag, delivery.inbox,
                       delivery.host, delivery.payload, delivery.attempts,
                       delivery.created_at < now() - interval '{GIVE_UP_AFTER}' as expired"
        ))
        .bind(room as i64)
        .bind(&busy_hosts)
        .bind(&busy_counts)
        .bind(&full_hosts)
        .bind(MAX_PER_HOST as i64)
        .bind(CLAIM_WINDOW)
        .fetch_all(self.pool())
        .await?;
        let started = rows.len();
        self.read_schemes(&rows).await?;
        for row in rows {
            let signer = match self.signer(row.signer_id, row.signer_tag.clone()).await {
                Ok(signer) => Some(signer),
                Err(error) => {
                    tracing::warn!(
                        signer = row.signer_id,
                        error = format!("{error:#}"),
                        "could not read the signing key"
                    );
                    None
                }
            };
            *self.busy.entry(row.host.clone()).or_default() += 1;
            let pool = self.pool().clone();
            let (client, dev) = (self.client.clone(), self.data.app_data().config.dev);
            // Hosts not known yet get draft-cavage: every server verifies it (Mastodon 4.5, the
            // one server that verifies both, included), where RFC 9421 first would cost most
            // hosts a refused POST, and some answer an unknown scheme with a refusal (400, 403)
            // that cannot be told from a real one. Hosts that sign with RFC 9421 themselves are
            // known to take it (see `inbox`).
            let scheme = self
                .schemes
                .get(&row.host)
                .copied()
                .unwrap_or(Scheme::Cavage);
            self.in_flight
                .spawn(async move { deliver_one(&pool, &client, dev, row, signer, scheme).await });
        }
        Ok(started)
    }

    /// Waits for one delivery in flight to end; None when none is in flight.
    async fn finish_one(&mut self) -> Option<Outcome> {
        loop {
            match self.in_flight.join_next().await? {
                Ok(finished) => {
                    if let Some(n) = self.busy.get_mut(&finished.host) {
                        *n -= 1;
                        if *n == 0 {
                            self.busy.remove(&finished.host);
                        }
                    }
                    if finished.outcome == Outcome::Delivered {
                        self.sent.push(finished.id);
                    }
                    if let Some(scheme) = finished.learned {
                        self.schemes.insert(finished.host, scheme);
                    }
                    return Some(finished.outcome);
                }
                // A panic in a delivery: its row comes due again when the lease ends. Its host's
                // count is lost with it, so recount from what is left.
                Err(error) => {
                    tracing::error!(%error, "a delivery task failed");
                    self.busy.clear();
                }
            }
        }
    }

    /// Deletes the delivered rows once a batch is full, or when nothing else is in flight.
    async fn delete_sent_if_due(&mut self) {
        if self.sent.len() >= DELETE_BATCH || self.in_flight.is_empty() {
            self.delete_sent().await;
        }
    }

    /// Deletes the delivered rows in one statement. On failure they come due again when their
    /// lease ends and are sent again: at least once, never lost.
    async fn delete_sent(&mut self) {
        if self.sent.is_empty() {
            return;
        }
        let ids = std::mem::take(&mut self.sent);
        let deleted = sqlx::query("delete from delivery where id = any($1)")
            .bind(&ids)
            .execute(self.pool())
            .await;
        if let Err(error) = deleted {
            tracing::error!(rows = ids.len(), %error, "could not record deliveries");
        }
    }

    /// Reads the signature schemes of the claimed rows' hosts that this worker does not know yet.
    async fn read_schemes(&mut self, rows: &[Claimed]) -> anyhow::Result<()> {
        let mut unknown: Vec<String> = rows
            .iter()
            .filter(|row| !self.schemes.contains_key(&row.host))
            .map(|row| row.host.clone())
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        unknown.sort();
        unknown.dedup();
        for (host, scheme) in peer_signatures::known(self.pool(), &unknown).await? {
            if let Some(scheme) = Scheme::from_name(&scheme) {
                self.schemes.insert(host, scheme);
            }
        }
        Ok(())
    }

    /// The signer's keys, read once per SIGNER_CACHE_TTL rather than once per row.
    async fn signer(
        &mut self,
        signer_id: Option<i64>,
        signer_tag: Option<String>,
    ) -> anyhow::Result<SignerKeys> {
        let which = (signer_id, signer_tag);
        if let Some(keys) = self.signers.get(&which) {
            return Ok(keys.clone());
        }
        let keys = match &which {
            (Some(id), _) => person_key(self.pool(), *id).await?,
            (None, Some(tag)) => {
                let origin = self.data.app_data().config.origin();
                match crate::db::groups::get(self.pool(), tag).await? {
                    Some(group) => SignerKeys::Found(Arc::new(SigningKey::new(
                        &super::group::group_id(&origin, tag)?,
                        &group.private_key_pem,
                    )?)),
                    None => SignerKeys::Missing,
                }
            }
            (None, None) => {
                let actor = site::instance_actor(self.data.app_data()).await?;
                let key = SigningKey::new(&actor.id, &actor.private_key_pem)?;
                SignerKeys::Found(Arc::new(key))
            }
        };
        self.signers.insert(which, keys.clone());
        Ok(keys)
    }
}

/// How one attempt went.
#[derive(Debug)]
enum Attempt {
    Sent,
    /// Worth retrying later: a 5xx, 408, 429, a timeout, no connection.
    Failed(String),
    /// Never going to work.
    Undeliverable(String),
}

/// A delivery that ended: a delivered row is left for the pump to delete with others.
struct Finished {
    id: i64,
    host: String,
    outcome: Outcome,
    /// The signature scheme the host turned out to take, when that changed.
    learned: Option<Scheme>,
}

/// Sends one claimed row and records the outcome: back off or give up; a delivered row is only
/// reported (see [`Pump::delete_sent`]).
async fn deliver_one(
    pool: &PgPool,
    client: &reqwest::Client,
    dev: bool,
    row: Claimed,
    signer: Option<SignerKeys>,
    scheme: Scheme,
) -> Finished {
    let (attempt, learned) = match signer {
        None => (
            Attempt::Failed("could not read the signing key".into()),
            None,
        ),
        Some(SignerKeys::Missing) => (Attempt::Undeliverable("the signer has no key".into()), None),
        Some(SignerKeys::Found(key)) => {
            let sent = send(client, dev, &row, &key, scheme);
            match tokio::time::timeout(ATTEMPT_TIMEOUT, sent).await {
                Ok(result) => result,
                Err(_) => (
                    Attempt::Failed(format!("no answer in {ATTEMPT_TIMEOUT:?}")),
                    None,
                ),
            }
        }
    };
    if let Some(learned) = learned {
        tracing::info!(
            host = row.host,
            scheme = learned.as_str(),
            "the peer's signature scheme changed"
        );
        if let Err(error) = peer_signatures::remember(pool, &row.host, learned.as_str()).await {
            tracing::warn!(host = row.host, %error, "could not remember the signature scheme");
        }
    }
    let (outcome, recorded) = match attempt {
        Attempt::Sent => {
            tracing::debug!(inbox = row.inbox, activity = row.activity_id, "delivered");
            (Outcome::Delivered, Ok(()))
        }
        Attempt::Failed(error) if row.expired => {
            tracing::warn!(
                inbox = row.inbox,
                activity = row.activity_id,
                attempts = row.attempts,
                error,
                "delivery given up after {GIVE_UP_AFTER}"
            );
            (Outcome::GivenUp, delete(pool, row.id).await)
        }
        Attempt::Failed(error) => {
            tracing::info!(
                inbox = row.inbox,
                activity = row.activity_id,
                attempts = row.attempts,
                error,
                "delivery failed; will retry"
            );
            (Outcome::Failed, back_off(pool, row.id, &error).await)
        }
        Attempt::Undeliverable(error) => {
            tracing::warn!(
                inbox = row.inbox,
                activity = row.activity_id,
                error,
                "delivery given up"
            );
            (Outcome::GivenUp, delete(pool, row.id).await)
        }
    };
    if let Err(error) = recorded {
        // The lease runs out and the row is tried again: at least once, never lost.
        tracing::error!(inbox = row.inbox, activity = row.activity_id, %error, "could not record a delivery");
    }
    crate::metrics::delivery_outcome(match outcome {
        Outcome::Delivered => "delivered",
        Outcome::Failed => "failed",
        Outcome::GivenUp => "given_up",
    });
    Finished {
        id: row.id,
        host: row.host,
        outcome,
        learned,
    }
}

/// One signed POST, in `scheme`; and, when an RFC 9421 signature is refused with 400 or 401, the
/// same POST signed draft-cavage. A 2xx is a delivery; so is a 4xx other than 408 and 429, which
/// the peer means for good (retrying would only be refused again). Also returns the scheme the
/// host turned out to take, when the fallback showed it.
async fn send(
    client: &reqwest::Client,
    dev: bool,
    row: &Claimed,
    key: &SigningKey,
    scheme: Scheme,
) -> (Attempt, Option<Scheme>) {
    let inbox: Url = match row.inbox.parse() {
        Ok(inbox) => inbox,
        Err(error) => {
            return (
                Attempt::Undeliverable(format!("invalid inbox: {error}")),
                None,
            )
        }
    };
    // Only domain names: an IP literal would sidestep host-based blocking. Outside dev mode,
    // https on the default port only; say so rather than retry. (The client's resolver refuses
    // names that lead to non-public addresses.)
    if let Err(reason) = check_peer_url(&inbox) {
        return (Attempt::Undeliverable(reason.into()), None);
    }
    if !dev && (inbox.scheme() != "https" || inbox.port().is_some()) {
        let reason = "peers are reached over https on the default port";
        return (Attempt::Undeliverable(reason.into()), None);
    }
    let body = match serde_json::to_vec(&row.payload.0) {
        Ok(body) => body,
        Err(error) => {
            let reason = format!("unserializable activity: {error}");
            return (Attempt::Undeliverable(reason), None);
        }
    };
    let response = match post(client, &inbox, &body, key, scheme).await {
        Ok(response) => response,
        Err(attempt) => return (attempt, None),
    };
    let refused = matches!(response.status().as_u16(), 400 | 401);
    if scheme == Scheme::Rfc9421 && refused {
        tracing::debug!(inbox = row.inbox, status = %response.status(), "RFC 9421 refused: knocking again with draft-cavage");
        return match post(client, &inbox, &body, key, Scheme::Cavage).await {
            Ok(response) => {
                let took_it = response.status().is_success().then_some(Scheme::Cavage);
                (outcome_of(row, response).await, took_it)
            }
            Err(attempt) => (attempt, None),
        };
    }
    (outcome_of(row, response).await, None)
}

/// The POST itself, signed in `scheme`.
async fn post(
    client: &reqwest::Client,
    inbox: &Url,
    body: &[u8],
    key: &SigningKey,
    scheme: Scheme,
) -> Result<reqwest::Response, Attempt> {
    let headers = key
        .post_headers(inbox, body, scheme)
        .map_err(|error| Attempt::Undeliverable(format!("cannot sign: {error:#}")))?;
    let mut request = client
        .post(inbox.clone())
        .header("content-type", FEDERATION_CONTENT_TYPE)
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request
        .send()
        .await
        .map_err(|error| Attempt::Failed(error.to_string()))
}

/// What a peer's answer means for the row.
async fn outcome_of(row: &Claimed, response: reqwest::Response) -> Attempt {
    let status = response.status();
    let for_good = status.is_client_error()
        && status != reqwest::StatusCode::REQUEST_TIMEOUT
        && status != reqwest::StatusCode::TOO_MANY_REQUESTS;
    if status.is_success() || for_good {
        if for_good {
            tracing::debug!(inbox = row.inbox, %status, "the peer refused a delivery for good");
        }
        return Attempt::Sent;
    }
    let text: String = response
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(MAX_ERROR_LENGTH)
        .collect();
    Attempt::Failed(format!("{status}: {text}"))
}

async fn delete(pool: &PgPool, id: i64) -> sqlx::Result<()> {
    sqlx::query("delete from delivery where id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Due again after 1 min · 2^(attempts − 1), capped at 6 h, give or take a tenth so that a peer
/// coming back is not hit by its whole backlog at once: 1, 2, 4 … 256 min, then every 6 h.
async fn back_off(pool: &PgPool, id: i64, error: &str) -> sqlx::Result<()> {
    let error: String = error.chars().take(MAX_ERROR_LENGTH).collect();
    sqlx::query(
        "update delivery
         set next_attempt_at = now() + least(
                 interval '1 minute' * power(2.0::float8, least(attempts - 1, 20))
                     * (0.9 + random() * 0.2),
                 interval '6 hours'),
             last_error = $2
         where id = $1",
    )
    .bind(id)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

/// A local person's parsed signing key, or Missing when they are gone or have none.
async fn person_key(pool: &PgPool, id: i64) -> anyhow::Result<SignerKeys> {
    let keys: Option<(String, Option<String>)> =
        sqlx::query_as("select ap_id, private_key_pem from person where id = $1 and local")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    let Some((ap_id, Some(private_key_pem))) = keys else {
        return Ok(SignerKeys::Missing);
    };
    let key = SigningKey::new(&ap_id.parse()?, &private_key_pem)?;
    Ok(SignerKeys::Found(Arc::new(key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_keep_their_port() {
        let url: Url = "https://Example.COM:8443/inbox".parse().unwrap();
        assert_eq!(host_of(&url), "example.com:8443");
        let url: Url = "https://example.com:443/inbox".parse().unwrap();
        assert_eq!(host_of(&url), "example.com");
    }
}
