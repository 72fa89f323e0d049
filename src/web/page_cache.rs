//! The middleware that answers anonymous GETs from the page cache ([`crate::cache`]) and fills it
//! with the responses handlers marked [`Shared`]. It lives with the web side because only the web
//! side knows which requests are anonymous (the session cookies) and which pages showed a form.

use std::sync::Arc;

use actix_web::{
    body::{self, BodySize, BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{header, Method, StatusCode},
    middleware::Next,
    web, Error, HttpMessage, HttpRequest,
};

use super::session::{CsrfToken, SESSION_COOKIE, WROTE_COOKIE};
use crate::{
    app::AppState,
    cache::{Page, Shared, MAX_PAGE_BYTES},
    metrics,
};

/// Middleware: answers anonymous GETs from the page cache, and caches the [`Shared`] responses
/// it had to let through.
///
/// A URL whose page was cached before is rendered by one request at a time: when a change left
/// a popular page behind, the readers asking for it meanwhile wait for that one rendering instead
/// of each rendering it too (a stampede that made the worst latencies ten times the usual).
pub async fn serve_cached(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let (Some(state), Some(url)) = (state, page_key(req.request())) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let caches = &state.caches;
    let key = (caches.version(), url);
    let guard = if caches.shared_urls.get(&key.1).is_some() {
        match caches.pages.get_value_or_guard_async(&key).await {
            Ok(page) => return Ok(hit(req, &page)),
            Err(guard) => Some(guard),
        }
    } else {
        if let Some(page) = caches.pages.get(&key) {
            return Ok(hit(req, &page));
        }
        None
    };
    let csrf = req.extensions().get::<CsrfToken>().cloned();
    let res = next.call(req).await?;
    let response = res.response();
    let small = matches!(response.body().size(), BodySize::Sized(n) if n <= MAX_PAGE_BYTES as u64);
    let cacheable = response.status() == StatusCode::OK
        && small
        && response.extensions().contains::<Shared>()
        && !response.headers().contains_key(header::SET_COOKIE)
        // A form's CSRF token is the reader's own; a page that shows one is not shared.
        && !csrf.is_some_and(|token| token.was_used());
    if !cacheable {
        metrics::page_cache("pass");
        if guard.is_some() {
            // No longer a shared page (a story deleted, say): later readers need not queue, and
            // those waiting now render for themselves once the guard is dropped.
            caches.shared_urls.remove(&key.1);
        }
        return Ok(res.map_into_boxed_body());
    }
    let (req, response) = res.into_parts();
    let (head, body) = response.into_parts();
    let bytes = body::to_bytes(body)
        .await
        .map_err(|e| Error::from(e.into()))?;
    metrics::page_cache("miss");
    let page = Arc::new(Page::new(
        head.status(),
        head.headers().clone(),
        bytes.clone(),
    ));
    caches.shared_urls.insert(key.1.clone(), ());
    match guard {
        Some(guard) => drop(guard.insert(page)),
        None => caches.pages.insert(key, page),
    }
    let response = head.set_body(bytes).map_into_boxed_body();
    Ok(ServiceResponse::new(req, response))
}

fn hit(req: ServiceRequest, page: &Page) -> ServiceResponse<BoxBody> {
    metrics::page_cache("hit");
    let response = page.answer(req.request());
    req.into_response(response)
}

/// What an anonymous GET is cached under: its path and query, and what it accepts (feeds and
/// ActivityPub objects answer by `Accept`). None: this request is not served from the cache.
fn page_key(req: &HttpRequest) -> Option<String> {
    if req.method() != Method::GET
        || req.cookie(SESSION_COOKIE).is_some()
        || req.cookie(WROTE_COOKIE).is_some()
        // A reader with tag filters sees lists of their own; readers without keep sharing pages.
        || req.cookie(super::reading::FILTER_COOKIE).is_some()
    {
        return None;
    }
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    let accept = String::from_utf8_lossy(accept);
    Some(format!("{}\n{accept}", req.uri()))
}
