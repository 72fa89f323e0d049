//! Health endpoints for load balancers and orchestrators.

use actix_web::{web, HttpResponse};

use super::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

/// The process is up: no database round trip, so a slow database never gets lien restarted.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

/// The database answers and every migration this binary knows is applied.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let applied: Result<i64, _> =
        sqlx::query_scalar("select count(*) from _sqlx_migrations where success")
            .fetch_one(&state.db.write)
            .await;
    let expected = crate::db::MIGRATOR.iter().count() as i64;
    match applied {
        Ok(n) if n >= expected => HttpResponse::Ok()
            .content_type("text/plain")
            .body("ready\n"),
        Ok(_) => HttpResponse::ServiceUnavailable().body("migrations pending\n"),
        Err(_) => HttpResponse::ServiceUnavailable().body("database unreachable\n"),
    }
}
