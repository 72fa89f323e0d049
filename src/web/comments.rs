//! Commenting and replying, editing and deleting comments, and the comment lists.

use std::collections::HashMap;

use actix_web::{http::StatusCode, web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{
    render, render_with, see_other,
    session::{CsrfForm, Ctx},
    views::{thread, thread_page, CommentView, Layout},
    PageQuery, Pager, PAGE_SIZE,
};
use crate::{
    cache::shared,
    db::{
        comments::{self, Comment, Posted},
        stories, votes,
    },
    error::{AppError, AppResult},
    federation::{objects::DbPost, outbox},
    markdown,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/comments", web::get().to(newest))
        .route("/s/{id}/comments", web::post().to(post))
        .route("/c/{id}", web::get().to(show))
        .route("/c/{id}/edit", web::get().to(edit_form))
        .route("/c/{id}/edit", web::post().to(edit))
        .route("/c/{id}/delete", web::post().to(delete));
}

/// The viewer's votes on these comments, in one query.
pub async fn comment_votes(ctx: &Ctx, comments: &[Comment]) -> AppResult<HashMap<i64, i16>> {
    let Some(viewer) = &ctx.viewer else {
        return Ok(HashMap::new());
    };
    let ids: Vec<i64> = comments.iter().map(|c| c.id).collect();
    Ok(votes::on_comments(ctx.read_db(), viewer.id, &ids)
        .await?
        .into_iter()
        .collect())
}

#[derive(Template)]
#[template(path = "comment/list.html")]
struct ListPage {
    page: Layout,
    heading: String,
    comments: Vec<CommentView>,
    pager: Pager,
}

async fn newest(ctx: Ctx, query: web::Query<PageQuery>) -> AppResult<HttpResponse> {
    let mut rows = comments::newest(ctx.read_db(), None, PAGE_SIZE + 1, query.offset()).await?;
    let pager = Pager::cut("/comments", query.number(), &mut rows);
    let votes = comment_votes(&ctx, &rows).await?;
    render(&ListPage {
        comments: rows
            .iter()
            .map(|c| CommentView::new(c, 0, ctx.viewer.as_ref(), &votes))
            .collect(),
        page: Layout::new(&ctx, "Newest comments").with_feed("/comments"),
        heading: "Newest comments".into(),
        pager,
    })
    .map(shared)
}

#[derive(Template)]
#[template(path = "comment/show.html")]
struct ShowPage {
    page: Layout,
    comments: Vec<CommentView>,
    story_title: String,
    story_href: String,
    parent_href: Option<String>,
    /// Always none: a comment's page shows its whole thread (it is one top-level thread).
    more_comments: Option<String>,
}

/// One comment in context: its story, a link up to its parent, and its replies below it.
async fn show(ctx: Ctx, path: web::Path<i64>) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let db = ctx.read_db();
    let comment = comments::get(db, id).await?.ok_or(AppError::NotFound)?;
    let all = comments::for_story(db, comment.story_id).await?;
    let votes = comment_votes(&ctx, &all).await?;
    let (mut views, _) = thread_page(thread(&all, Some(id), ctx.viewer.as_ref(), &votes), 1);
    let Some(focused) = views.first_mut() else {
        return Err(AppError::Gone);
    };
    focused.focused = true;
    if let Some(viewer) = &ctx.viewer {
        let saved =
            crate::db::reading::among(db, viewer.id, crate::db::reading::Kept::SavedComment, &[id])
                .await?;
        focused.saved = !saved.is_empty();
    }
    let description = markdown::plain_text(&comment.body_html, 200);
    render(&ShowPage {
        page: Layout::new(&ctx, format!("Comment on {}", comment.story_title))
            .with_description(description)
            .with_ap_id(comment.ap_id.clone()),
        story_href: views[0].story_href.clone(),
        story_title: comment.story_title,
        parent_href: comment.parent_id.map(|p| format!("/c/{p}")),
        comments: views,
        more_comments: None,
    })
    .map(shared)
}

#[derive(Deserialize)]
struct CommentForm {
    #[serde(default)]
    body: String,
    /// Set for a reply; empty for a top-level comment.
    #[serde(default)]
    parent_id: String,
}

const MAX_COMMENT: usize = 20_000;

fn check_body(body: &str) -> AppResult<&str> {
    let body = body.trim();
    if body.is_empty() {
        return Err(AppError::BadRequest("write something first".into()));
    }
    if body.len() > MAX_COMMENT {
        return Err(AppError::BadRequest(format!(
            "comments are limited to {MAX_COMMENT} characters"
        )));
    }
    Ok(body)
}

async fn post(
    ctx: Ctx,
    path: web::Path<i64>,
    CsrfForm(form): CsrfForm<CommentForm>,
) -> AppResult<HttpResponse> {
    let story_id = path.into_inner();
    let author = ctx.require_viewer()?.id;
    ctx.limit(crate::rate_limit::Action::Comment)?;
    if let Some(story) = stories::get(&ctx.state.db.write, story_id).await? {
        if story.locked_at.is_some() {
            return Err(AppError::Forbidden(
                "this thread is locked: it takes no new comments".into(),
            ));
        }
        if story.removed_at.is_some() {
            return Err(AppError::Forbidden(
                "this story was removed by a moderator".into(),
            ));
        }
    }
    let parent_id = match form.parent_id.trim() {
        "" => None,
        id => Some(
            id.parse::<i64>()
                .map_err(|_| AppError::BadRequest("parent_id is not a comment id".into()))?,
        ),
    };
    let body = check_body(&form.body)?;
    let origin = ctx.state.config.origin();
    let mut tx = ctx.state.db.write.begin().await?;
    let posted = comments::create(
        &mut tx,
        &origin,
        story_id,
        parent_id,
        author,
        body,
        &markdown::render(body),
    )
    .await?;
    let Posted::Created(id) = posted else {
        return Err(AppError::NotFound);
    };
    let comment = comments::get(&mut *tx, id)
        .await?
        .ok_or(AppError::NotFound)?;
    outbox::post_published(&mut tx, &ctx.state, &DbPost::Comment(comment), "Create").await?;
    tx.commit().await?;
    Ok(see_other(&format!("/s/{story_id}#c{id}")))
}

#[derive(Template)]
#[template(path = "comment/edit.html")]
struct EditPage {
    page: Layout,
    id: i64,
    body: String,
    error: Option<String>,
}

async fn own_comment(ctx: &Ctx, id: i64) -> AppResult<Comment> {
    let viewer = ctx.require_viewer()?;
    let comment = comments::get(&ctx.state.db.write, id)
        .await?
        .ok_or(AppError::NotFound)?;
    if comment.deleted_at.is_some() {
        return Err(AppError::Gone);
    }
    if comment.author_id != viewer.id {
        return Err(AppError::Forbidden(
            "only its author can change a comment".into(),
        ));
    }
    Ok(comment)
}

async fn edit_form(ctx: Ctx, path: web::Path<i64>) -> AppResult<HttpResponse> {
    let comment = own_comment(&ctx, path.into_inner()).await?;
    render(&EditPage {
        page: Layout::new(&ctx, "Edit comment"),
        id: comment.id,
        body: comment.body,
        error: None,
    })
}

async fn edit(
    ctx: Ctx,
    path: web::Path<i64>,
    CsrfForm(form): CsrfForm<CommentForm>,
) -> AppResult<HttpResponse> {
    let comment = own_comment(&ctx, path.into_inner()).await?;
    let body = match check_body(&form.body) {
        Ok(body) => body,
        Err(error) => {
            let page = EditPage {
                page: Layout::new(&ctx, "Edit comment"),
                id: comment.id,
                body: form.body.clone(),
                error: Some(error.to_string()),
            };
            return render_with(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };
    let mut tx = ctx.state.db.write.begin().await?;
    comments::edit(
        &mut *tx,
        comment.id,
        comment.author_id,
        body,
        &markdown::render(body),
    )
    .await?;
    let edited = comments::get(&mut *tx, comment.id)
        .await?
        .ok_or(AppError::NotFound)?;
    outbox::post_published(&mut tx, &ctx.state, &DbPost::Comment(edited), "Update").await?;
    tx.commit().await?;
    Ok(see_other(&format!(
        "/s/{}#c{}",
        comment.story_id, comment.id
    )))
}

#[derive(Deserialize)]
struct Confirm {}

async fn delete(
    ctx: Ctx,
    path: web::Path<i64>,
    _form: CsrfForm<Confirm>,
) -> AppResult<HttpResponse> {
    let comment = own_comment(&ctx, path.into_inner()).await?;
    let mut tx = ctx.state.db.write.begin().await?;
    comments::tombstone(&mut tx, comment.id).await?;
    outbox::post_deleted(&mut tx, &ctx.state, &DbPost::Comment(comment.clone())).await?;
    tx.commit().await?;
    Ok(see_other(&format!("/s/{}", comment.story_id)))
}
