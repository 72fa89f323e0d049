//! Media lien stores itself: link preview thumbnails, at `/media/{name}`, and avatars, at
//! `/avatars/{person id}` (see `crate::avatars`).

use actix_web::{http::header, web, HttpResponse};

use crate::app::AppState;
use crate::{
    avatars,
    db::actors,
    error::{AppError, AppResult},
    preview,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/media/{name}", web::get().to(show))
        .route("/avatars/{id}", web::get().to(avatar));
}

/// A stored file. Names are content hashes, so a name always means the same bytes: cache forever.
/// Only names lien could have written are looked up at all (no path can be smuggled in).
async fn show(state: web::Data<AppState>, name: web::Path<String>) -> AppResult<HttpResponse> {
    let content_type = preview::media_type(&name).ok_or(AppError::NotFound)?;
    let path = preview::media_dir(&state.config).join(name.as_str());
    let bytes = match tokio::fs::read(&path).await {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(AppError::NotFound)
        }
        Err(error) => {
            return Err(anyhow::Error::new(error)
                .context(format!("reading {}", path.display()))
                .into())
        }
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CONTENT_SECURITY_POLICY, "default-src 'none'"))
        .body(bytes))
}

/// A person's avatar, fetched and shrunk by lien (404 when they have none or it cannot be had).
/// Its URL carries a version that changes with the avatar, so a day of caching is safe.
async fn avatar(state: web::Data<AppState>, id: web::Path<i64>) -> AppResult<HttpResponse> {
    let person = actors::by_id(&state.db.read, *id)
        .await?
        .ok_or(AppError::NotFound)?;
    let url = person.avatar_url.ok_or(AppError::NotFound)?;
    let avatar = avatars::get(&state.config, &url)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type(avatar.content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CONTENT_SECURITY_POLICY, "default-src 'none'"))
        .body(avatar.bytes))
}
