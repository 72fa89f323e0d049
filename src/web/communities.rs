//! Remote communities (`/!{name}@{host}`): a Lemmy, PieFed or Mbin community (or another lien's
//! tag) with its recent posts here, and the form to subscribe. Found by searching `!name@host`.

use actix_web::{web, HttpResponse};
use askama::Template;

use super::{
    render, see_other,
    session::{CsrfForm, Ctx},
    stories::story_views,
    views::{Layout, StoryView},
};
use crate::{
    cache::shared,
    db::{
        actors::ActorRow,
        communities,
        stories::{self, Listing},
    },
    error::{AppError, AppResult},
    federation::community,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/!{handle}", web::get().to(show))
        .route("/!{handle}/follow", web::post().to(follow))
        .route("/!{handle}/unfollow", web::post().to(unfollow));
}

#[derive(Template)]
#[template(path = "community/show.html")]
struct CommunityPage {
    page: Layout,
    handle: String,
    display_name: String,
    summary_html: String,
    avatar_url: Option<String>,
    /// The community's own page at its home.
    home: String,
    subscribers: i64,
    /// For a signed-in viewer: "none", "pending" (the instance's follow awaits its Accept) or
    /// "following".
    follow_state: &'static str,
    stories: Vec<StoryView>,
}

/// How many recent posts the page shows.
const RECENT: i64 = 25;

async fn find(ctx: &Ctx, handle: &str) -> AppResult<ActorRow> {
    let (name, host) = handle.split_once('@').ok_or(AppError::NotFound)?;
    communities::by_handle(ctx.read_db(), name, host)
        .await?
        .filter(|c| c.deleted_at.is_none())
        .ok_or(AppError::NotFound)
}

async fn show(ctx: Ctx, path: web::Path<String>) -> AppResult<HttpResponse> {
    let group = find(&ctx, &path).await?;
    let db = ctx.read_db();
    let stories = stories::list(db, &Listing::Community(group.id), RECENT, 0).await?;
    let follow_state = match &ctx.viewer {
        Some(viewer) if communities::is_subscribed(db, viewer.id, group.id).await? => {
            match communities::follow_of(db, group.id).await? {
                Some((_, true)) => "following",
                _ => "pending",
            }
        }
        Some(_) => "none",
        None => "",
    };
    let handle = format!(
        "{}@{}",
        group.name,
        group.host.as_deref().unwrap_or_default()
    );
    let summary_html = crate::markdown::render(&group.bio);
    render(&CommunityPage {
        page: Layout::new(&ctx, format!("!{handle}"))
            .with_description(crate::markdown::plain_text(&summary_html, 200))
            .with_ap_id(group.ap_id.clone()),
        subscribers: communities::subscriber_count(db, group.id).await?,
        stories: story_views(&ctx, &stories).await?,
        follow_state,
        display_name: group.display_name.clone(),
        avatar_url: group.avatar_url.clone(),
        home: group
            .profile_url
            .clone()
            .unwrap_or_else(|| group.ap_id.clone()),
        summary_html,
        handle,
    })
    .map(shared)
}

#[derive(serde::Deserialize)]
struct Confirm {}

/// Subscribes the viewer; the instance follows the community if nobody here did yet.
async fn follow(
    ctx: Ctx,
    path: web::Path<String>,
    _form: CsrfForm<Confirm>,
) -> AppResult<HttpResponse> {
    let viewer = ctx.require_viewer()?.id;
    let group = find(&ctx, &path).await?;
    let mut tx = ctx.state.db.write.begin().await?;
    community::subscribe(&mut tx, &ctx.state, viewer, &group).await?;
    tx.commit().await?;
    Ok(see_other(&community::community_path(&group)))
}

async fn unfollow(
    ctx: Ctx,
    path: web::Path<String>,
    _form: CsrfForm<Confirm>,
) -> AppResult<HttpResponse> {
    let viewer = ctx.require_viewer()?.id;
    let group = find(&ctx, &path).await?;
    let mut tx = ctx.state.db.write.begin().await?;
    community::unsubscribe(&mut tx, &ctx.state, viewer, &group).await?;
    tx.commit().await?;
    Ok(see_other(&community::community_path(&group)))
}
