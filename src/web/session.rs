//! Who is asking, and proof that a form came from lien: the session cookie, the CSRF cookie, and
//! the extractors handlers use (`Ctx` for pages, `CsrfForm` for every POST).

use std::{cell::Cell, rc::Rc};

use actix_web::{
    body::MessageBody,
    cookie::{time::Duration as CookieDuration, Cookie, SameSite},
    dev::{Payload, ServiceRequest, ServiceResponse},
    http::Method,
    middleware::Next,
    web, Error, FromRequest, HttpMessage, HttpRequest,
};
use futures::future::LocalBoxFuture;
use rand::RngCore;
use serde::{de::DeserializeOwned, Deserialize};
use sqlx::PgPool;

use crate::{app::AppState, cache::Viewer, rate_limit::Action};
use crate::{
    db::{
        accounts::{self, Person},
        notifications,
    },
    error::AppError,
};

pub const SESSION_COOKIE: &str = "lien_session";
pub const CSRF_COOKIE: &str = "lien_csrf";
/// Set for a few seconds after a browser changed something, while caches and a read replica may
/// lag: its reads then go around them.
pub const WROTE_COOKIE: &str = "lien_wrote";

/// How long after a write a browser's page reads go around the caches and to the primary (read
/// your own writes): well above the lag of a healthy streaming replica and the caches' polling.
const READ_AROUND_AFTER_WRITE_SECONDS: i64 = 10;

/// This request's CSRF token. A new one is only sent as a cookie if a page actually used it, so
/// pages without forms stay free of Set-Cookie (and cacheable).
#[derive(Clone)]
pub struct CsrfToken {
    value: String,
    fresh: bool,
    used: Rc<Cell<bool>>,
}

impl CsrfToken {
    pub fn value(&self) -> &str {
        self.used.set(true);
        &self.value
    }

    /// Whether a page rendered this token (into a form): such a page is this reader's alone.
    pub fn was_used(&self) -> bool {
        self.used.get()
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn is_token(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Builds a cookie with lien's settings: HttpOnly, SameSite=Lax, Secure over https.
pub fn cookie(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(CookieDuration::days(accounts::SESSION_DAYS))
        .finish()
}

/// Middleware: gives every request a CSRF token (the double-submit cookie's value) and sets the
/// cookie when a new token was rendered into a form.
pub async fn csrf_cookie(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let existing = req
        .cookie(CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| is_token(v));
    let token = CsrfToken {
        fresh: existing.is_none(),
        value: existing.unwrap_or_else(random_token),
        used: Rc::new(Cell::new(false)),
    };
    let secure = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.config.secure_cookies());
    req.extensions_mut().insert(token.clone());
    let mut res = next.call(req).await?;
    if token.fresh && token.used.get() {
        res.response_mut()
            .add_cookie(&cookie(CSRF_COOKIE, token.value.clone(), secure))?;
    }
    Ok(res)
}

/// Middleware: after a form changed something (a POST answered 2xx or 3xx), this process's
/// caches are left behind at once (see [`super::cache`]), and the browser gets a short-lived
/// cookie that, for a few seconds, sends its page reads around every cache and, with a read
/// replica, to the primary ([`Ctx::read_db`]): the page it is redirected to shows the change even
/// if other processes' caches or the replica have not caught up yet.
pub async fn primary_after_write(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let writes = !matches!(*req.method(), Method::GET | Method::HEAD)
        // Peers POSTing activities keep no cookies; the inbox drops the caches itself, for the
        // activities it accepted (not for duplicates and refusals).
        && !req.path().ends_with("/inbox");
    let mut res = next.call(req).await?;
    let status = res.status();
    if let (Some(state), true) = (state, writes) {
        if status.is_success() || status.is_redirection() {
            state.caches.invalidate();
            let mut wrote = cookie(WROTE_COOKIE, "1".to_owned(), state.config.secure_cookies());
            wrote.set_max_age(CookieDuration::seconds(READ_AROUND_AFTER_WRITE_SECONDS));
            res.response_mut().add_cookie(&wrote)?;
        }
    }
    Ok(res)
}

/// Everything a page handler needs about the request: the state, the signed-in person if any,
/// and the CSRF token for its forms.
pub struct Ctx {
    pub state: web::Data<AppState>,
    pub viewer: Option<Person>,
    pub csrf: CsrfToken,
    pub path: String,
    /// The client's address, as rate limits key it (`ip:...`).
    pub ip: String,
    /// This browser changed something moments ago (see [`primary_after_write`]).
    pub wrote_recently: bool,
    /// The viewer's unread notifications, for the count in the header.
    pub unread: i64,
    /// The tags an anonymous reader filters out (their cookie; signed-in people's are stored).
    pub filter_cookie: Option<String>,
}

impl Ctx {
    /// The signed-in person, or a redirect to the login page.
    /// A banned person is refused (403) here, which is what keeps them from posting and voting.
    pub fn require_viewer(&self) -> Result<&Person, AppError> {
        let viewer = self.viewer.as_ref().ok_or(AppError::LoginRequired)?;
        if viewer.banned_at.is_some() {
            return Err(AppError::Forbidden("this account is banned".into()));
        }
        Ok(viewer)
    }

    /// Counts one `action` against this address and, when signed in, this account; 429 when
    /// either is over its budget.
    pub fn limit(&self, action: Action) -> Result<(), AppError> {
        let account = self.viewer.as_ref().map(|v| format!("id:{}", v.id));
        let mut keys = vec![self.ip.as_str()];
        keys.extend(account.as_deref());
        self.state
            .limits
            .hit(action, &keys)
            .map_err(AppError::TooManyRequests)
    }

    /// The signed-in moderator or administrator; 403 for anyone else signed in.
    pub fn require_moderator(&self) -> Result<&Person, AppError> {
        let viewer = self.require_viewer()?;
        if !viewer.is_moderator() {
            return Err(AppError::Forbidden(
                "only moderators and administrators may do this".into(),
            ));
        }
        Ok(viewer)
    }

    /// The pool for this page's reads: the read replica (when there is one), except right after
    /// this browser wrote something, when the replica may not have it yet.
    pub fn read_db(&self) -> &PgPool {
        if self.wrote_recently {
            &self.state.db.write
        } else {
            &self.state.db.read
        }
    }
}

impl FromRequest for Ctx {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Ctx, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("application state missing"))?;
            let csrf = req
                .extensions()
                .get::<CsrfToken>()
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("csrf middleware missing"))?;
            let viewer = match req.cookie(SESSION_COOKIE) {
                Some(c) if is_token(c.value()) => {
                    let token = c.value().to_owned();
                    let db = state.db.write.clone();
                    // Sessions are read from the primary: a replica may not have a fresh login.
                    state
                        .caches
                        .session(c.value(), async move {
                            let Some(person) = accounts::session_person(&db, &token).await? else {
                                return Ok(None);
                            };
                            let unread = notifications::unread_count(&db, person.id).await?;
                            Ok(Some(Viewer { person, unread }))
                        })
                        .await?
                }
                _ => None,
            };
            let (viewer, unread) = match viewer {
                Some(v) => (Some(v.person.clone()), v.unread),
                None => (None, 0),
            };
            let ip = crate::rate_limit::client_ip(&req, state.config.trust_proxy);
            Ok(Ctx {
                ip,
                state,
                viewer,
                csrf,
                path: req.path().to_owned(),
                wrote_recently: req.cookie(WROTE_COOKIE).is_some(),
                unread,
                filter_cookie: req
                    .cookie(super::reading::FILTER_COOKIE)
                    .map(|c| c.value().to_owned()),
            })
        })
    }
}

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// A url-encoded form that must carry the request's CSRF token in its `csrf` field. Every POST
/// handler takes one, so no form can forget the check.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<CsrfForm<T>, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let cookie = req.cookie(CSRF_COOKIE).map(|c| c.value().to_owned());
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let body = body
                .await
                .map_err(|e| AppError::BadRequest(format!("could not read the form: {e}")))?;
            let sent: CsrfField =
                serde_urlencoded::from_bytes(&body).map_err(|_| AppError::Csrf)?;
            match cookie {
                Some(expected)
                    if is_token(&expected)
                        && constant_time_eq(expected.as_bytes(), sent.csrf.as_bytes()) => {}
                _ => return Err(AppError::Csrf),
            }
            refuse_control_characters(&body)?;
            serde_urlencoded::from_bytes(&body)
                .map(CsrfForm)
                .map_err(|e| AppError::BadRequest(format!("the form is incomplete: {e}")))
        })
    }
}

/// Every field of every form is checked here, so that no title, comment, name or setting can hold
/// a character that would break a feed or that PostgreSQL refuses (NUL): a clear 422 instead.
fn refuse_control_characters(body: &[u8]) -> Result<(), AppError> {
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|e| AppError::BadRequest(format!("the form could not be read: {e}")))?;
    for (name, value) in &fields {
        if let Some(c) = crate::input::first_refused(value) {
            return Err(AppError::BadRequest(format!(
                "{name} holds a control character (U+{:04X}) that lien does not accept",
                u32::from(c)
            )));
        }
    }
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
