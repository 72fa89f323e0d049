//! Prometheus metrics, served at `/metrics` in the text exposition format.
//!
//! One registry per process. Counters and histograms are fed where things happen: the request
//! middleware (`web::request_log`), the delivery workers, the inboxes and the preview
//! jobs. The queue, pool and database gauges are read when Prometheus scrapes, so they cost
//! nothing in between and are never stale by more than the query. Every label takes its values
//! from a small fixed set (route patterns, never raw paths; known methods and activity types, else
//! `other`), so the number of series stays bounded whatever clients send.
//!
//! Each process counts only what it did itself: sum the counters over instances, and take the
//! queue gauges (the same database read by every process) with `max`, not `sum`.

use std::{sync::LazyLock, time::Duration};

use actix_web::{http::Method, web, HttpResponse};
use prometheus::{
    Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use sqlx::PgPool;

use crate::{app::AppState, federation::delivery};

/// A scrape gives up on the database after this, so a slow database never stalls Prometheus.
const SCRAPE_QUERY_TIMEOUT: Duration = Duration::from_secs(3);

/// The activity types lien knows; any other `type` is counted as `other`.
const ACTIVITY_TYPES: &[&str] = &[
    "Accept", "Add", "Announce", "Block", "Create", "Delete", "Dislike", "Flag", "Follow", "Like",
    "Move", "Reject", "Remove", "Undo", "Update",
];

/// How deliveries end (`federation::delivery`): sent (or refused for good), retried later, dropped.
const DELIVERY_OUTCOMES: &[&str] = &["delivered", "failed", "given_up"];

struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    http_in_flight: IntGauge,
    deliveries: IntCounterVec,
    inbox_activities: IntCounterVec,
    preview_jobs: IntCounterVec,
    page_cache: IntCounterVec,
    queue_depth: IntGauge,
    queue_due: IntGauge,
    queue_oldest_due: Gauge,
    database_up: IntGauge,
    pool_connections: IntGaugeVec,
    pool_max: IntGaugeVec,
}

static METRICS: LazyLock<Metrics> =
    LazyLock::new(|| Metrics::new().expect("the metric definitions are valid and registered once"));

impl Metrics {
    fn new() -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        let metrics = Metrics {
            http_requests: IntCounterVec::new(
                Opts::new(
                    "lien_http_requests_total",
                    "HTTP requests answered, by method, route pattern and status.",
                ),
                &["method", "route", "status"],
            )?,
            http_duration: HistogramVec::new(
                HistogramOpts::new(
                    "lien_http_request_duration_seconds",
                    "Time from a request's arrival until its response headers, by method, route \
                     pattern and status.",
                ),
                &["method", "route", "status"],
            )?,
            http_in_flight: IntGauge::new(
                "lien_http_requests_in_flight",
                "HTTP requests being handled now.",
            )?,
            deliveries: IntCounterVec::new(
                Opts::new(
                    "lien_deliveries_total",
                    "Outgoing activity deliveries attempted by this process, by outcome: \
                     delivered (or refused for good by the peer), failed (retried later), \
                     given_up.",
                ),
                &["outcome"],
            )?,
            inbox_activities: IntCounterVec::new(
                Opts::new(
                    "lien_inbox_activities_total",
                    "Activities POSTed to the inboxes, by type, outcome (accepted, duplicate, \
                     refused, error) and HTTP status.",
                ),
                &["type", "outcome", "status"],
            )?,
            page_cache: IntCounterVec::new(
                Opts::new(
                    "lien_page_cache_requests_total",
                    "Anonymous page requests by how the page cache served them: hit (from \
                     memory), miss (rendered, then kept) or pass (rendered, not kept).",
                ),
                &["outcome"],
            )?,
            preview_jobs: IntCounterVec::new(
                Opts::new(
                    "lien_preview_jobs_total",
                    "Link preview jobs run by this process, by outcome.",
                ),
                &["outcome"],
            )?,
            queue_depth: IntGauge::new(
                "lien_delivery_queue_depth",
                "Deliveries in the queue: due, waiting for a retry, or being sent.",
            )?,
            queue_due: IntGauge::new(
                "lien_delivery_queue_due",
                "Deliveries due now that no worker has claimed yet.",
            )?,
            queue_oldest_due: Gauge::new(
                "lien_delivery_queue_oldest_due_seconds",
                "How long the longest-waiting due delivery has been due: how far the workers are \
                 behind (0 when nothing is due).",
            )?,
            database_up: IntGauge::new(
                "lien_database_up",
                "1 when the database answered this scrape's queries, else 0 (and the queue \
                 gauges keep their last values).",
            )?,
            pool_connections: IntGaugeVec::new(
                Opts::new(
                    "lien_db_pool_connections",
                    "Open database connections of this process, by pool (primary, replica) and \
                     state (idle, in_use).",
                ),
                &["pool", "state"],
            )?,
            pool_max: IntGaugeVec::new(
                Opts::new(
                    "lien_db_pool_max_connections",
                    "The most connections each pool of this process opens.",
                ),
                &["pool"],
            )?,
            registry,
        };
        let m = &metrics;
        let build_info = IntGaugeVec::new(
            Opts::new(
                "lien_build_info",
                "Always 1; the labels say which lien this is.",
            ),
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        for outcome in DELIVERY_OUTCOMES {
            // Present from the start, so that rate() has a series to work on before the first one.
            m.deliveries.with_label_values(&[*outcome]);
        }
        m.registry.register(Box::new(m.http_requests.clone()))?;
        m.registry.register(Box::new(m.http_duration.clone()))?;
        m.registry.register(Box::new(m.http_in_flight.clone()))?;
        m.registry.register(Box::new(m.deliveries.clone()))?;
        m.registry.register(Box::new(m.inbox_activities.clone()))?;
        m.registry.register(Box::new(m.preview_jobs.clone()))?;
        m.registry.register(Box::new(m.page_cache.clone()))?;
        m.registry.register(Box::new(m.queue_depth.clone()))?;
        m.registry.register(Box::new(m.queue_due.clone()))?;
        m.registry.register(Box::new(m.queue_oldest_due.clone()))?;
        m.registry.register(Box::new(m.database_up.clone()))?;
        m.registry.register(Box::new(m.pool_connections.clone()))?;
        m.registry.register(Box::new(m.pool_max.clone()))?;
        m.registry.register(Box::new(build_info))?;
        // process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, ...
        #[cfg(target_os = "linux")]
        m.registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(metrics)
    }
}

/// A method as a label: the standard ones by name, anything a client made up as `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// One answered HTTP request. `route` is the matched pattern (`/s/{id}`), or `unmatched`.
pub fn observe_request(method: &Method, route: &str, status: u16, elapsed: Duration) {
    let status = status.to_string();
    let labels = [method_label(method), route, status.as_str()];
    METRICS.http_requests.with_label_values(&labels).inc();
    METRICS
        .http_duration
        .with_label_values(&labels)
        .observe(elapsed.as_secs_f64());
}

/// Counts a request as in flight until the returned guard is dropped.
pub fn request_in_flight() -> InFlight {
    METRICS.http_in_flight.inc();
    InFlight(())
}

/// See [`request_in_flight`].
pub struct InFlight(());

impl Drop for InFlight {
    fn drop(&mut self) {
        METRICS.http_in_flight.dec();
    }
}

/// One delivery attempt ended: `delivered`, `failed` or `given_up`.
pub fn delivery_outcome(outcome: &'static str) {
    METRICS.deliveries.with_label_values(&[outcome]).inc();
}

/// An activity's `type` as a label: a known type, or `other`.
pub fn activity_type_label(kind: &str) -> &'static str {
    ACTIVITY_TYPES
        .iter()
        .find(|known| **known == kind)
        .copied()
        .unwrap_or("other")
}

/// One activity POSTed to an inbox. `kind` is its `type` (any string: unknown ones count as
/// `other`); `outcome` is `accepted`, `duplicate`, `refused` (4xx) or `error` (5xx).
pub fn inbox_activity(kind: &str, outcome: &'static str, status: u16) {
    METRICS
        .inbox_activities
        .with_label_values(&[activity_type_label(kind), outcome, &status.to_string()])
        .inc();
}

/// One anonymous request met the page cache: `hit`, `miss` or `pass`.
pub fn page_cache(outcome: &'static str) {
    METRICS.page_cache.with_label_values(&[outcome]).inc();
}

/// One link preview job ended. Use a few fixed words (`fetched`, `failed`, `refused`, ...): each
/// distinct outcome is a time series of its own.
pub fn preview_outcome(outcome: &'static str) {
    METRICS.preview_jobs.with_label_values(&[outcome]).inc();
}

/// `GET /metrics`: reads the queue and pool gauges, then renders every metric.
pub async fn serve(state: web::Data<AppState>) -> HttpResponse {
    let metrics = &*METRICS;
    let stats =
        tokio::time::timeout(SCRAPE_QUERY_TIMEOUT, delivery::queue_stats(&state.db.write)).await;
    match stats {
        Ok(Ok(stats)) => {
            metrics.database_up.set(1);
            metrics.queue_depth.set(stats.queued);
            metrics.queue_due.set(stats.due);
            metrics.queue_oldest_due.set(stats.oldest_due_seconds);
        }
        Ok(Err(error)) => {
            metrics.database_up.set(0);
            tracing::warn!(%error, "metrics: could not read the delivery queue");
        }
        Err(_) => {
            metrics.database_up.set(0);
            tracing::warn!("metrics: the delivery queue query timed out");
        }
    }
    record_pool("primary", &state.db.write);
    if state.config.database_read_url.is_some() {
        record_pool("replica", &state.db.read);
    }
    match TextEncoder::new().encode_to_string(&metrics.registry.gather()) {
        Ok(body) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(body),
        Err(error) => {
            tracing::error!(%error, "metrics: could not encode");
            HttpResponse::InternalServerError().finish()
        }
    }
}

fn record_pool(name: &str, pool: &PgPool) {
    let open = i64::from(pool.size());
    let idle = i64::try_from(pool.num_idle()).unwrap_or(i64::MAX);
    let connections = &METRICS.pool_connections;
    connections.with_label_values(&[name, "idle"]).set(idle);
    connections
        .with_label_values(&[name, "in_use"])
        .set((open - idle).max(0));
    METRICS
        .pool_max
        .with_label_values(&[name])
        .set(i64::from(pool.options().get_max_connections()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_small_sets() {
        assert_eq!(activity_type_label("Create"), "Create");
        assert_eq!(activity_type_label("create"), "other");
        assert_eq!(activity_type_label("EmojiReact"), "other");
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
