//! One error type for every handler, mapped to status codes in one place.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use askama::Template;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    /// Input that cannot be acted on; the message is shown to the person.
    #[error("{0}")]
    BadRequest(String),
    /// A request that is malformed in itself (a query holding a NUL): 400, not the 422 of a form.
    #[error("{0}")]
    Malformed(String),
    /// A form's CSRF token was missing or wrong.
    #[error("this form has expired or was not sent by lien; reload the page and try again")]
    Csrf,
    /// The action needs a signed-in person; browsers are sent to the login page.
    #[error("log in first")]
    LoginRequired,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("gone")]
    Gone,
    /// Removed by a moderator; the message says why.
    #[error("{0}")]
    Removed(String),
    /// Too many requests of one kind; try again after this many seconds.
    #[error("too many requests; try again in {0} seconds")]
    TooManyRequests(u64),
    /// The database does not answer (see `db::availability`): 503, try again shortly.
    #[error("the database is unavailable right now; try again in a few seconds")]
    Unavailable,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

/// What a 503 tells clients to wait before they try again.
pub const RETRY_UNAVAILABLE_SECONDS: u64 = 5;

impl From<crate::federation::FederationError> for AppError {
    fn from(error: crate::federation::FederationError) -> AppError {
        use crate::federation::FederationError as F;
        match error {
            F::Database(e) => AppError::Database(e),
            F::NotFound => AppError::NotFound,
            F::Gone => AppError::Gone,
            F::BadRequest(m) => AppError::BadRequest(m),
            F::Forbidden(m) | F::Unauthorized(m) => AppError::Forbidden(m),
            other => AppError::Internal(anyhow::Error::new(other)),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: String,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Malformed(_) => StatusCode::BAD_REQUEST,
            // The last line of defence for text no check caught: PostgreSQL refuses a NUL
            // (22021, "invalid byte sequence"); that is the request's fault, never a 5xx.
            AppError::Database(sqlx::Error::Database(e))
                if e.code().as_deref() == Some("22021") =>
            {
                StatusCode::BAD_REQUEST
            }
            AppError::Csrf | AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::LoginRequired => StatusCode::SEE_OTHER,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Gone | AppError::Removed(_) => StatusCode::GONE,
            AppError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Database(sqlx::Error::RowNotFound) => StatusCode::NOT_FOUND,
            AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Database(e) if crate::db::availability::is_unreachable(e) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::Database(_) | AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if let AppError::LoginRequired = self {
            return HttpResponse::SeeOther()
                .insert_header(("Location", "/login"))
                .finish();
        }
        let message = if status == StatusCode::SERVICE_UNAVAILABLE {
            // Logged once by `db::availability` when it goes, not by every request meanwhile.
            AppError::Unavailable.to_string()
        } else if status.is_server_error() {
            // The details go to the log, never to the page.
            tracing::error!(error = %self, "request failed");
            "something went wrong on our side; it has been logged".to_owned()
        } else if let (AppError::Database(_), StatusCode::BAD_REQUEST) = (self, status) {
            "the request holds a character that cannot be stored".to_owned()
        } else {
            self.to_string()
        };
        let page = ErrorPage {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error"),
            message,
        };
        let mut response = HttpResponse::build(status);
        if let AppError::TooManyRequests(seconds) = self {
            response.insert_header(("Retry-After", seconds.to_string()));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header(("Retry-After", RETRY_UNAVAILABLE_SECONDS.to_string()));
        }
        response
            .content_type("text/html; charset=utf-8")
            .body(page.render().unwrap_or_else(|_| "error".to_owned()))
    }
}
