//! Who is asking, and proof that a form came from lien: the session cookie, the CSRF cookie, and
//! the extractors handlers use (`Ctx` for pages, `CsrfForm` for every POST).

use std::{cell::Cell, rc::Rc};

use actix_web::{
    body::MessageBody,
    cookie::{time::Duration as CookieDuration, Cookie, SameSite},
    dev::{Payload, ServiceRequest, ServiceResponse},
    middleware::Next,
    web, Error, FromRequest, HttpMessage, HttpRequest,
};
use futures::future::LocalBoxFuture;
use rand::RngCore;
use serde::{de::DeserializeOwned, Deserialize};

use super::AppState;
use crate::{
    db::accounts::{self, Person},
    error::AppError,
};

pub const SESSION_COOKIE: &str = "lien_session";
pub const CSRF_COOKIE: &str = "lien_csrf";

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

/// Everything a page handler needs about the request: the state, the signed-in person if any,
/// and the CSRF token for its forms.
pub struct Ctx {
    pub state: web::Data<AppState>,
    pub viewer: Option<Person>,
    pub csrf: CsrfToken,
    pub path: String,
}

impl Ctx {
    /// The signed-in person, or a redirect to the login page.
    pub fn require_viewer(&self) -> Result<&Person, AppError> {
        self.viewer.as_ref().ok_or(AppError::LoginRequired)
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
                // Sessions are read from the primary: a replica may not have a fresh login yet.
                Some(c) if is_token(c.value()) => {
                    accounts::session_person(&state.db.write, c.value()).await?
                }
                _ => None,
            };
            Ok(Ctx {
                state,
                viewer,
                csrf,
                path: req.path().to_owned(),
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
            serde_urlencoded::from_bytes(&body)
                .map(CsrfForm)
                .map_err(|e| AppError::BadRequest(format!("the form is incomplete: {e}")))
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
