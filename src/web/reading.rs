//! A reader's own lists: saving stories and comments (`/saved`), hiding stories from the lists,
//! and tag filters (`/filters`), stored for signed-in people and in a cookie for anonymous
//! readers, as Lobsters does.

use actix_web::{cookie::Cookie, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{
    comments::comment_votes,
    render, see_other,
    session::{CsrfForm, Ctx},
    stories::story_views,
    views::{CommentView, Layout, StoryView},
    votes::back,
};
use crate::{
    db::{
        reading::{self, Kept},
        stories::Story,
    },
    error::{AppError, AppResult},
};

/// The anonymous reader's filtered tags, space-separated.
pub const FILTER_COOKIE: &str = "lien_filters";

/// At most this many filtered tags (a cookie stays small).
const MAX_FILTERS: usize = 30;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/saved", web::get().to(saved))
        .route("/filters", web::get().to(filters_form))
        .route("/filters", web::post().to(set_filters))
        .route("/s/{id}/save", web::post().to(save_story))
        .route("/s/{id}/unsave", web::post().to(unsave_story))
        .route("/s/{id}/hide", web::post().to(hide_story))
        .route("/s/{id}/unhide", web::post().to(unhide_story))
        .route("/c/{id}/save", web::post().to(save_comment))
        .route("/c/{id}/unsave", web::post().to(unsave_comment));
}

#[derive(Deserialize)]
struct Confirm {}

async fn keep(
    ctx: Ctx,
    req: HttpRequest,
    kept: Kept,
    id: i64,
    on: bool,
) -> AppResult<HttpResponse> {
    let viewer = ctx.require_viewer()?.id;
    if !reading::set(&ctx.state.db.write, viewer, kept, id, on).await? {
        return Err(AppError::NotFound);
    }
    let (fallback, anchor) = match kept {
        Kept::SavedComment => (format!("/c/{id}"), format!("c{id}")),
        _ => (format!("/s/{id}"), format!("s{id}")),
    };
    let page = back(&req, &ctx.state.config.origin()).unwrap_or(fallback);
    Ok(see_other(&format!("{page}#{anchor}")))
}

async fn save_story(
    ctx: Ctx,
    req: HttpRequest,
    id: web::Path<i64>,
    _: CsrfForm<Confirm>,
) -> AppResult<HttpResponse> {
    keep(ctx, req, Kept::SavedStory, id.into_inner(), true).await
}

async fn unsave_story(
    ctx: Ctx,
    req: HttpRequest,
    id: web::Path<i64>,
    _: CsrfForm<Confirm>,
) -> AppResult<HttpResponse> {
    keep(ctx, req, Kept::SavedStory, id.into_inner(), false).await
}

async fn hide_story(
    ctx: Ctx,
    req: HttpRequest,
    id: web::Path<i64>,
    _: CsrfForm<Confirm>,
) -> AppResult<HttpResponse> {
    keep(ctx, req, Kept::HiddenStory, id.into_inner(), true).await
}

async fn unhide_story(
    ctx: Ctx,
    req: HttpRequest,
    id: web::Path<i64>,
    _: CsrfForm<Confirm>,
) -> AppResult<HttpResponse> {
    keep(ctx, req, Kept::HiddenStory, id.into_inner(), false).await
}

async fn save_comment(
    ctx: Ctx,
    req: HttpRequest,
    id: web::Path<i64>,
    _: CsrfForm<Confirm>,
) -> AppResult<HttpResponse> {
    keep(ctx, req, Kept::SavedComment, id.into_inner(), true).await
}

async fn unsave_comment(
    ctx: Ctx,
    req: HttpRequest,
    id: web::Path<i64>,
    _: CsrfForm<Confirm>,
) -> AppResult<HttpResponse> {
    keep(ctx, req, Kept::SavedComment, id.into_inner(), false).await
}

/// Saved stories and comments, and the hidden stories (to bring one back).
#[derive(Template)]
#[template(path = "account/saved.html")]
struct SavedPage {
    page: Layout,
    stories: Vec<StoryView>,
    comments: Vec<CommentView>,
    hidden: Vec<StoryView>,
    /// The private feed of the saved stories and comments.
    feed_url: String,
}

/// How many saved stories and comments the page shows (the most recently saved).
const SAVED_SHOWN: i64 = 200;

async fn saved(ctx: Ctx) -> AppResult<HttpResponse> {
    let viewer = ctx.require_viewer()?.id;
    let db = ctx.read_db();
    let stories = reading::stories(db, viewer, Kept::SavedStory, SAVED_SHOWN).await?;
    let hidden = reading::stories(db, viewer, Kept::HiddenStory, SAVED_SHOWN).await?;
    let comments = reading::saved_comments(db, viewer, SAVED_SHOWN).await?;
    let votes = comment_votes(&ctx, &comments).await?;
    let token = crate::db::notifications::feed_token(&ctx.state.db.write, viewer).await?;
    render(&SavedPage {
        feed_url: format!("{}/saved/{token}.rss", ctx.state.config.origin()),
        stories: story_views(&ctx, &stories).await?,
        hidden: story_views(&ctx, &hidden).await?,
        comments: comments
            .iter()
            .map(|c| CommentView::new(c, 0, ctx.viewer.as_ref(), &votes))
            .collect(),
        page: Layout::new(&ctx, "Saved"),
    })
}

/// The tags this reader filters out of lists: stored when signed in, else from their cookie.
pub async fn filtered_tags(ctx: &Ctx) -> AppResult<Vec<String>> {
    Ok(match (&ctx.viewer, &ctx.filter_cookie) {
        (Some(viewer), _) => reading::filtered_tags(ctx.read_db(), viewer.id).await?,
        (None, Some(cookie)) => parse_tags(cookie),
        (None, None) => Vec::new(),
    })
}

/// Takes the stories this reader hid, or that carry a tag they filter out, off a list.
pub async fn without_filtered(
    ctx: &Ctx,
    stories: &[Story],
    keep_tag: Option<&str>,
) -> AppResult<Vec<Story>> {
    let tags = filtered_tags(ctx).await?;
    let hidden = match &ctx.viewer {
        Some(viewer) => {
            let ids: Vec<i64> = stories.iter().map(|s| s.id).collect();
            reading::among(ctx.read_db(), viewer.id, Kept::HiddenStory, &ids).await?
        }
        None => Vec::new(),
    };
    Ok(stories
        .iter()
        .filter(|s| !hidden.contains(&s.id))
        .filter(|s| {
            !s.tags
                .iter()
                .any(|t| tags.contains(t) && Some(t.as_str()) != keep_tag)
        })
        .cloned()
        .collect())
}

/// Tags as typed: lowercase words of letters, digits, `-` and `_`, at most [`MAX_FILTERS`].
fn parse_tags(input: &str) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for tag in input
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(|t| t.trim_start_matches('#').to_lowercase())
        .filter(|t| {
            (1..=30).contains(&t.len())
                && t.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        })
    {
        if !tags.contains(&tag) && tags.len() < MAX_FILTERS {
            tags.push(tag);
        }
    }
    tags
}

#[derive(Template)]
#[template(path = "account/filters.html")]
struct FiltersPage {
    page: Layout,
    tags: String,
    saved: bool,
}

#[derive(Deserialize)]
struct FiltersQuery {
    saved: Option<String>,
}

async fn filters_form(ctx: Ctx, query: web::Query<FiltersQuery>) -> AppResult<HttpResponse> {
    let tags = filtered_tags(&ctx).await?.join(" ");
    render(&FiltersPage {
        page: Layout::new(&ctx, "Filters"),
        tags,
        saved: query.saved.is_some(),
    })
}

#[derive(Deserialize)]
struct FiltersForm {
    #[serde(default)]
    tags: String,
}

async fn set_filters(ctx: Ctx, CsrfForm(form): CsrfForm<FiltersForm>) -> AppResult<HttpResponse> {
    if form.tags.len() > 2000 {
        return Err(AppError::BadRequest("too many tags".into()));
    }
    let tags = parse_tags(&form.tags);
    let mut response = see_other("/filters?saved=1");
    match &ctx.viewer {
        Some(viewer) => reading::set_filtered_tags(&ctx.state.db.write, viewer.id, &tags).await?,
        None => {
            let cookie = if tags.is_empty() {
                // No filters: no cookie, so this reader is served from the page cache again.
                let mut gone = Cookie::build(FILTER_COOKIE, "").path("/").finish();
                gone.make_removal();
                gone
            } else {
                super::session::cookie(
                    FILTER_COOKIE,
                    tags.join(" "),
                    ctx.state.config.secure_cookies(),
                )
            };
            response
                .add_cookie(&cookie)
                .map_err(|e| anyhow::anyhow!("cookie: {e}"))?;
        }
    }
    Ok(response)
}
