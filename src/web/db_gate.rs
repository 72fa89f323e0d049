//! While the database does not answer, pages answer 503 at once instead of each waiting for a
//! pool connection; the first request to find it unreachable reports it (see
//! `db::availability`). /healthz, /readyz, /metrics and the static files still answer.

use actix_web::{
    body::{EitherBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::StatusCode,
    middleware::Next,
    web, Error, ResponseError,
};

use crate::{app::AppState, error::AppError};

/// Paths that need no database, or say for themselves that it is down.
const ALWAYS: &[&str] = &["/healthz", "/readyz", "/metrics"];

pub async fn database_gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let exempt = ALWAYS.contains(&req.path()) || req.path().starts_with("/static/");
    if state.db.availability.is_down() && !exempt {
        let response = AppError::Unavailable.error_response();
        return Ok(req.into_response(response).map_into_right_body());
    }
    let response = next.call(req).await?;
    if response.status() == StatusCode::SERVICE_UNAVAILABLE
        && response
            .response()
            .error()
            .and_then(|e| e.as_error::<AppError>())
            .is_some_and(|e| matches!(e, AppError::Database(_)))
    {
        state.db.availability.report_down(&state.db.write);
    }
    Ok(response.map_into_left_body())
}
