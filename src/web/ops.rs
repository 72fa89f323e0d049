//! Endpoints for load balancers, orchestrators and Prometheus. With `LIEN_METRICS_LISTEN` set,
//! `lien serve` and `lien worker` also answer them on that address, and /metrics only there.

use std::time::Duration;

use actix_web::{web, HttpResponse};

use crate::app::AppState;

/// A readiness probe gets its answer within this, even from a database that does not answer.
const READY_TIMEOUT: Duration = Duration::from_secs(3);

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

pub fn metrics_route(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(crate::metrics::serve));
}

/// The process is up: no database round trip, so a slow database never gets lien restarted.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

/// The database answers, every migration this binary knows is applied, and the read replica (if
/// any) answers too: an instance that cannot render a page takes no traffic.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let check = async {
        // Known down (db::availability): no need to wait for the pool to say so again.
        if state.db.availability.is_down() {
            return Err("database unreachable\n");
        }
        let applied: i64 =
            sqlx::query_scalar("select count(*) from _sqlx_migrations where success")
                .fetch_one(&state.db.write)
                .await
                .map_err(|_| "database unreachable\n")?;
        if applied < crate::db::MIGRATOR.iter().count() as i64 {
            return Err("migrations pending\n");
        }
        if state.config.database_read_url.is_some() {
            sqlx::query("select 1")
                .execute(&state.db.read)
                .await
                .map_err(|_| "read replica unreachable\n")?;
        }
        Ok(())
    };
    match tokio::time::timeout(READY_TIMEOUT, check).await {
        Ok(Ok(())) => HttpResponse::Ok()
            .content_type("text/plain")
            .body("ready\n"),
        Ok(Err(reason)) => HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body(reason),
        Err(_) => HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body("database timed out\n"),
    }
}
