//! The error every federation endpoint answers with, as JSON, with the status peers act on:
//! 401 makes RFC 9421 signers (Fedify, Mastodon 4.5+) retry with draft-cavage, 403 says "not yours".

use activitypub_federation::error::Error as LibraryError;
use actix_web::{http::StatusCode, HttpResponse, ResponseError};

#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    /// No signature, or one that cannot be verified.
    #[error("{0}")]
    Unauthorized(String),
    /// A verified actor acting on something not its own, or a refused peer.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("not found")]
    NotFound,
    #[error("gone")]
    Gone,
    #[error(transparent)]
    Library(#[from] LibraryError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ResponseError for FederationError {
    fn status_code(&self) -> StatusCode {
        match self {
            FederationError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            FederationError::Forbidden(_) => StatusCode::FORBIDDEN,
            FederationError::BadRequest(_) => StatusCode::BAD_REQUEST,
            FederationError::NotFound => StatusCode::NOT_FOUND,
            FederationError::Gone => StatusCode::GONE,
            FederationError::Library(error) => match error {
                LibraryError::ActivitySignatureInvalid
                | LibraryError::ActivityBodyDigestInvalid => StatusCode::UNAUTHORIZED,
                LibraryError::UrlVerificationError(_) => StatusCode::FORBIDDEN,
                LibraryError::NotFound => StatusCode::NOT_FOUND,
                LibraryError::ObjectDeleted(_) => StatusCode::GONE,
                _ => StatusCode::BAD_REQUEST,
            },
            FederationError::Database(sqlx::Error::RowNotFound) => StatusCode::NOT_FOUND,
            FederationError::Database(_) | FederationError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let message = if status.is_server_error() {
            tracing::error!(error = %self, "federation request failed");
            "internal error".to_owned()
        } else {
            tracing::debug!(error = %self, %status, "federation request refused");
            self.to_string()
        };
        HttpResponse::build(status).json(serde_json::json!({ "error": message }))
    }
}

pub type FedResult<T> = Result<T, FederationError>;
