//! `/notifications`: replies to your stories and comments and mentions of you, from here or any
//! server; reading the page marks them read.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use askama::Template;

use super::{
    comments::comment_votes,
    render,
    session::Ctx,
    views::{CommentView, Layout},
};
use crate::{
    db::{comments, notifications},
    error::AppResult,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/notifications", web::get().to(show));
}

/// How many notifications the page lists.
const SHOWN: i64 = 50;

pub struct NotificationView {
    pub kind: String,
    pub unread: bool,
    pub c: CommentView,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage {
    page: Layout,
    items: Vec<NotificationView>,
    feed_url: String,
}

async fn show(ctx: Ctx) -> AppResult<HttpResponse> {
    let viewer = ctx.require_viewer()?.clone();
    // The primary: marking read writes, and what was just marked must not come back unread.
    let db = &ctx.state.db.write;
    let notes = notifications::newest(db, viewer.id, SHOWN).await?;
    let ids: Vec<i64> = notes.iter().map(|n| n.comment_id).collect();
    let rows = comments::by_ids(db, &ids).await?;
    let votes = comment_votes(&ctx, &rows).await?;
    let by_id: HashMap<i64, &comments::Comment> = rows.iter().map(|c| (c.id, c)).collect();
    let items = notes
        .iter()
        .filter_map(|n| {
            let comment = by_id.get(&n.comment_id)?;
            Some(NotificationView {
                kind: n.kind.clone(),
                unread: n.read_at.is_none(),
                c: CommentView::new(comment, 0, Some(&viewer), &votes),
            })
        })
        .collect();
    if let (Some(newest), true) = (notes.first(), notes.iter().any(|n| n.read_at.is_none())) {
        notifications::mark_read(db, viewer.id, newest.id).await?;
        // The unread count in the header comes from the session cache.
        ctx.state.caches.invalidate();
    }
    let token = notifications::feed_token(db, viewer.id).await?;
    render(&NotificationsPage {
        page: Layout::new(&ctx, "Notifications"),
        items,
        feed_url: format!("{}/notifications/{token}.rss", ctx.state.config.origin()),
    })
}
