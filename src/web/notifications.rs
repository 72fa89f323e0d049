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
    db::{accounts::handle, comments, notifications},
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

/// A mention in a post lien keeps no copy of (its author is followed by nobody here): its text,
/// a link to the original, and a way to answer it from here (search opens it as a discussion).
pub struct RemoteMentionView {
    pub author: String,
    pub content_html: String,
    pub url: String,
    pub reply_path: String,
    pub unread: bool,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage {
    page: Layout,
    items: Vec<NotificationView>,
    mentions: Vec<RemoteMentionView>,
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
    let remote = notifications::newest_remote_mentions(db, viewer.id, SHOWN).await?;
    let mentions = remote
        .iter()
        .map(|m| RemoteMentionView {
            author: handle(&m.author_name, m.author_host.as_deref()),
            content_html: m.content_html.clone(),
            url: m.url.clone(),
            reply_path: format!(
                "/search?q={}",
                url::form_urlencoded::byte_serialize(m.ap_id.as_bytes()).collect::<String>()
            ),
            unread: m.read_at.is_none(),
        })
        .collect();
    let mut marked = false;
    if let (Some(newest), true) = (notes.first(), notes.iter().any(|n| n.read_at.is_none())) {
        notifications::mark_read(db, viewer.id, newest.id).await?;
        marked = true;
    }
    if let (Some(newest), true) = (remote.first(), remote.iter().any(|m| m.read_at.is_none())) {
        notifications::mark_remote_mentions_read(db, viewer.id, newest.id).await?;
        marked = true;
    }
    if marked {
        // The unread count in the header comes from the session cache.
        ctx.state.caches.invalidate();
    }
    let token = notifications::feed_token(db, viewer.id).await?;
    render(&NotificationsPage {
        page: Layout::new(&ctx, "Notifications"),
        items,
        mentions,
        feed_url: format!("{}/notifications/{token}.rss", ctx.state.config.origin()),
    })
}
