//! Profile pages: a person's stories, comments and karma.

use actix_web::{web, HttpResponse};
use askama::Template;

use super::{
    comments::comment_votes,
    render,
    session::Ctx,
    stories::story_views,
    views::{CommentView, Layout, StoryView},
};
use crate::{
    db::{
        accounts, comments,
        stories::{self, Listing},
    },
    error::{AppError, AppResult},
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/@{handle}", web::get().to(show));
}

#[derive(Template)]
#[template(path = "person/show.html")]
struct ProfilePage {
    page: Layout,
    handle: String,
    display_name: String,
    bio_html: String,
    avatar_url: Option<String>,
    joined: String,
    karma: i64,
    stories: Vec<StoryView>,
    comments: Vec<CommentView>,
}

/// How many of each a profile shows.
const RECENT: i64 = 25;

async fn show(ctx: Ctx, path: web::Path<String>) -> AppResult<HttpResponse> {
    let handle = path.into_inner();
    let db = &ctx.state.db.read;
    let person = match handle.split_once('@') {
        Some((name, host)) if host.eq_ignore_ascii_case(&ctx.state.config.host()) => {
            accounts::find_local(db, name).await?
        }
        Some((name, host)) => accounts::find_remote(db, name, host).await?,
        None => accounts::find_local(db, &handle).await?,
    }
    .ok_or(AppError::NotFound)?;
    let stories = stories::list(db, &Listing::Author(person.id), RECENT, 0).await?;
    let comments = comments::newest(db, Some(person.id), RECENT, 0).await?;
    let votes = comment_votes(&ctx, &comments).await?;
    let bio_html = crate::markdown::render(&person.bio);
    render(&ProfilePage {
        page: Layout::new(&ctx, person.handle())
            .with_description(crate::markdown::plain_text(&bio_html, 200))
            .with_feed(format!("/@{}", person.handle()))
            .with_ap_id(person.ap_id.clone()),
        stories: story_views(&ctx, &stories).await?,
        comments: comments
            .iter()
            .map(|c| CommentView::new(c, 0, ctx.viewer.as_ref(), &votes))
            .collect(),
        karma: accounts::karma(db, person.id).await?,
        handle: person.handle(),
        display_name: person.display_name.clone(),
        bio_html,
        avatar_url: person.avatar_url.clone(),
        joined: person.created_at.format("%B %Y").to_string(),
    })
}
