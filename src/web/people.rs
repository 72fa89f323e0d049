//! Profile pages: a person's stories, comments and karma.

use actix_web::{web, HttpResponse};
use askama::Template;

use super::{
    comments::comment_votes,
    render, see_other,
    session::{CsrfForm, Ctx},
    stories::story_views,
    views::{CommentView, Layout, StoryView},
    PageQuery, Pager, PAGE_SIZE,
};
use crate::{
    app::AppState,
    cache::shared,
    db::{
        accounts::{self, Person},
        actors, comments, invitations,
        stories::{self, Listing},
    },
    error::{AppError, AppResult},
    federation::outbox,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/@{handle}", web::get().to(show))
        .route("/@{handle}/follow", web::post().to(follow))
        .route("/@{handle}/unfollow", web::post().to(unfollow));
}

#[derive(Template)]
#[template(path = "person/show.html")]
struct ProfilePage {
    page: Layout,
    handle: String,
    display_name: String,
    bio_html: String,
    avatar_url: Option<String>,
    /// When a local account was made; lien cannot know it of a remote one.
    joined: Option<String>,
    story_karma: i64,
    comment_karma: i64,
    stories: Vec<StoryView>,
    comments: Vec<CommentView>,
    /// A remote person's profile on their own server.
    original: Option<String>,
    /// Older stories and comments.
    pager: Pager,
    /// For a remote person seen by a signed-in viewer: "none", "pending" or "following".
    follow_state: &'static str,
    remote: bool,
    /// Who invited this local account, if anyone did.
    invited_by: Option<String>,
}

/// The person a handle names: `name` or `name@this-host` is local, `name@host` remote.
pub async fn find_person(state: &AppState, handle: &str) -> AppResult<Person> {
    let db = &state.db.read;
    match handle.split_once('@') {
        Some((name, host)) if host.eq_ignore_ascii_case(&state.config.host()) => {
            accounts::find_local(db, name).await?
        }
        Some((name, host)) => accounts::find_remote(db, name, host).await?,
        None => accounts::find_local(db, handle).await?,
    }
    .ok_or(AppError::NotFound)
}

async fn show(
    ctx: Ctx,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> AppResult<HttpResponse> {
    let handle = path.into_inner();
    let person = find_person(&ctx.state, &handle).await?;
    if person.deleted_at.is_some() {
        return Err(AppError::Gone);
    }
    let db = ctx.read_db();
    // Both lists page together: page N shows the Nth 25 stories and the Nth 25 comments.
    let (number, offset) = (query.number(), query.offset());
    let mut stories = stories::list(db, &Listing::Author(person.id), PAGE_SIZE + 1, offset).await?;
    let mut comments = comments::newest(db, Some(person.id), PAGE_SIZE + 1, offset).await?;
    let base = format!("/@{handle}");
    let more_stories = Pager::cut(&base, number, &mut stories);
    let more_comments = Pager::cut(&base, number, &mut comments);
    let pager = Pager {
        previous: more_stories.previous,
        next: more_stories.next.or(more_comments.next),
    };
    let (story_karma, comment_karma) = accounts::karma_parts(db, person.id).await?;
    let original = accounts::original_profile(db, person.id).await?;
    let votes = comment_votes(&ctx, &comments).await?;
    let bio_html = crate::markdown::render(&person.bio);
    let follow_state = match &ctx.viewer {
        Some(viewer) if !person.local => {
            match actors::follow_between(db, viewer.id, person.id).await? {
                Some((_, true)) => "following",
                Some((_, false)) => "pending",
                None => "none",
            }
        }
        _ => "",
    };
    let invited_by = if person.local {
        invitations::inviter_name(db, person.id).await?
    } else {
        None
    };
    render(&ProfilePage {
        invited_by,
        follow_state,
        remote: !person.local,
        page: Layout::new(&ctx, person.handle())
            .with_description(crate::markdown::plain_text(&bio_html, 200))
            .with_feed(format!("/@{}", person.handle()))
            .with_ap_id(person.ap_id.clone()),
        stories: story_views(&ctx, &stories).await?,
        comments: comments
            .iter()
            .map(|c| CommentView::new(c, 0, ctx.viewer.as_ref(), &votes))
            .collect(),
        story_karma,
        comment_karma,
        original,
        pager,
        handle: person.handle(),
        display_name: person.display_name.clone(),
        bio_html,
        avatar_url: person
            .avatar_url
            .as_deref()
            .map(|url| crate::avatars::src(person.id, url)),
        joined: person
            .local
            .then(|| person.created_at.format("%B %Y").to_string()),
    })
    .map(shared)
}

#[derive(serde::Deserialize)]
struct Confirm {}

/// The remote person a signed-in viewer wants to follow or unfollow, with both actor rows.
async fn follow_pair(ctx: &Ctx, handle: &str) -> AppResult<(actors::ActorRow, actors::ActorRow)> {
    let viewer = ctx.require_viewer()?;
    let person = find_person(&ctx.state, handle).await?;
    if person.local {
        return Err(AppError::BadRequest(
            "following works for people on other servers".into(),
        ));
    }
    let db = &ctx.state.db.write;
    let follower = actors::by_id(db, viewer.id)
        .await?
        .ok_or(AppError::NotFound)?;
    let followee = actors::by_id(db, person.id)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok((follower, followee))
}

/// Follows a remote account: its new stories then reach this instance (after its `Accept`).
async fn follow(
    ctx: Ctx,
    path: web::Path<String>,
    _form: CsrfForm<Confirm>,
) -> AppResult<HttpResponse> {
    let handle = path.into_inner();
    let (follower, followee) = follow_pair(&ctx, &handle).await?;
    let mut tx = ctx.state.db.write.begin().await?;
    let follow_id = outbox::new_activity_id(&ctx.state.config.origin());
    if actors::add_follow(&mut tx, follower.id, followee.id, &follow_id, false).await? {
        outbox::follow(&mut tx, &ctx.state, &follower, &followee, &follow_id).await?;
    }
    tx.commit().await?;
    Ok(see_other(&format!("/@{handle}")))
}

async fn unfollow(
    ctx: Ctx,
    path: web::Path<String>,
    _form: CsrfForm<Confirm>,
) -> AppResult<HttpResponse> {
    let handle = path.into_inner();
    let (follower, followee) = follow_pair(&ctx, &handle).await?;
    let mut tx = ctx.state.db.write.begin().await?;
    if let Some((follow_id, _)) = actors::follow_between(&mut *tx, follower.id, followee.id).await?
    {
        actors::remove_follow(&mut *tx, follower.id, followee.id).await?;
        outbox::unfollow(&mut tx, &ctx.state, &follower, &followee, &follow_id).await?;
    }
    tx.commit().await?;
    Ok(see_other(&format!("/@{handle}")))
}
