//! Every request gets an id, returned in `X-Request-Id` and carried by every log line written
//! while it is handled (they run inside a `request` span), and one log line when it is answered:
//! method, route pattern, path, status, latency. The same numbers go to /metrics.
//!
//! The id is the caller's own `X-Request-Id` when it sent a plausible one (nginx's `$request_id`,
//! Envoy's UUIDs), so one id follows a request from the proxy's log into lien's.

use std::time::Instant;

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
    Error,
};
use tracing::Instrument;

use crate::metrics;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The route of requests no resource matched (404s of the default service).
pub const UNMATCHED: &str = "unmatched";

/// Probes and scrapes come every few seconds; their lines are only logged at debug level.
const QUIET_ROUTES: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// Middleware: the request id, the `request` span, the access log line and the HTTP metrics.
pub async fn log_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_plausible_id(id))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let method = req.method().clone();
    let path = req.path().to_owned();
    // The pattern, never the path: one series per route whatever ids and names are asked for.
    // Before routing this is only the first pattern the path fits, whatever the method (a POST to
    // `/s/{id}/comments` fits `/s/{id}/{slug}`); the route that answered is taken from the
    // response below, and the span gets it then.
    let first_fit = req.match_pattern().unwrap_or_else(|| UNMATCHED.to_owned());
    let span = tracing::info_span!("request", %request_id, %method, route = tracing::field::Empty);
    let in_flight = metrics::request_in_flight();
    let result = next.call(req).instrument(span.clone()).await;
    drop(in_flight);
    let elapsed = started.elapsed();
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    let mut response = match result {
        Ok(response) => response,
        Err(error) => {
            let route = first_fit;
            // A middleware failed before any response was made; actix answers with the error.
            let status = error.as_response_error().status_code().as_u16();
            metrics::observe_request(&method, &route, status, elapsed);
            tracing::warn!(%request_id, %method, %route, %path, status, latency_ms, %error, "request failed");
            return Err(error);
        }
    };
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| UNMATCHED.to_owned());
    span.record("route", route.as_str());
    let status = response.status().as_u16();
    metrics::observe_request(&method, &route, status, elapsed);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    if QUIET_ROUTES.contains(&route.as_str()) {
        tracing::debug!(%request_id, %method, %route, %path, status, latency_ms, "answered");
    } else if status >= 500 {
        tracing::warn!(%request_id, %method, %route, %path, status, latency_ms, "answered");
    } else {
        tracing::info!(%request_id, %method, %route, %path, status, latency_ms, "answered");
    }
    Ok(response)
}

/// 1 to 64 letters, digits, `-`, `_` or `.`: enough for every proxy's ids, and safe in a log line.
fn is_plausible_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plausible_ids_are_taken_over() {
        assert!(is_plausible_id("5f2b7c1e9a3d4e0f8b6a2c4d1e3f5a7b"));
        assert!(is_plausible_id("0b1c9d4e-1f2a-4b3c-9d8e-7f6a5b4c3d2e"));
        assert!(!is_plausible_id(""));
        assert!(!is_plausible_id("a b"));
        assert!(!is_plausible_id("x\"y"));
        assert!(!is_plausible_id(&"a".repeat(65)));
    }
}
