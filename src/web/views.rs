//! What templates see: the page chrome (`Layout`) and display-ready stories and comments.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::session::{CsrfToken, Ctx};
use crate::db::{
    accounts::{handle, profile_href, Person},
    comments::Comment,
    stories::{slug, Story},
};

/// The chrome every page shares: title, OpenGraph, the viewer's menu, the CSRF token, feeds.
pub struct Layout {
    pub title: String,
    pub description: String,
    /// Absolute URL of this page, for og:url and canonical links.
    pub url: String,
    /// This page's path, for `aria-current` in the menu.
    pub path: String,
    pub viewer: Option<Person>,
    /// The viewer's unread notifications.
    pub unread: i64,
    csrf: CsrfToken,
    /// The ActivityPub id this page shows, for `<link rel="alternate" type="application/activity+json">`.
    pub ap_id: Option<String>,
    /// The path of this list's feeds without extension (`/new` gives `/new.rss` and `/new.atom`); a
    /// query stays after the extension (`/top?t=week` gives `/top.rss?t=week`).
    pub feed: Option<String>,
    pub instance: String,
}

impl Layout {
    pub fn new(ctx: &Ctx, title: impl Into<String>) -> Layout {
        let title = title.into();
        Layout {
            description: format!("{title} on lien, a federated link aggregator"),
            title,
            url: format!("{}{}", ctx.state.config.origin(), ctx.path),
            path: ctx.path.clone(),
            viewer: ctx.viewer.clone(),
            unread: ctx.unread,
            csrf: ctx.csrf.clone(),
            ap_id: None,
            feed: None,
            instance: ctx.state.config.host(),
        }
    }

    pub fn with_description(mut self, description: impl Into<String>) -> Layout {
        self.description = description.into();
        self
    }

    pub fn with_feed(mut self, path: impl Into<String>) -> Layout {
        self.feed = Some(path.into());
        self
    }

    /// This list's feed in one format (`rss` or `atom`), for the links in the page.
    pub fn feed_href(&self, extension: &str) -> String {
        self.feed
            .as_deref()
            .map(|path| crate::feeds::feed_path(path, extension))
            .unwrap_or_default()
    }

    pub fn with_ap_id(mut self, id: impl Into<String>) -> Layout {
        self.ap_id = Some(id.into());
        self
    }

    /// The CSRF token for a form; calling this is what makes the page set the token's cookie.
    pub fn csrf(&self) -> &str {
        self.csrf.value()
    }

    pub fn viewer_name(&self) -> &str {
        self.viewer.as_ref().map_or("", |v| v.name.as_str())
    }
}

/// A story as lists and its page show it.
pub struct StoryView {
    pub id: i64,
    pub title: String,
    /// Where the title leads: the shared link, or the discussion for a text post.
    pub href: String,
    pub discussion: String,
    pub domain: Option<String>,
    pub score: i32,
    pub comment_count: i32,
    pub boost_count: i32,
    pub quote_count: i32,
    pub author: String,
    pub author_href: String,
    /// The home instance of a federated story.
    pub origin: Option<String>,
    pub age: String,
    pub created_iso: String,
    pub tags: Vec<String>,
    /// The remote community it was posted in, as `name@host`.
    pub community: Option<String>,
    pub body_html: String,
    pub viewer_vote: i16,
    pub mine: bool,
    pub is_text: bool,
    /// The link preview's description, once fetched (plain text).
    pub description: Option<String>,
    /// The link preview's thumbnail, a path under `/media`.
    pub thumbnail: Option<String>,
}

impl StoryView {
    pub fn new(story: &Story, viewer: Option<&Person>, votes: &HashMap<i64, i16>) -> StoryView {
        let discussion = format!("/s/{}/{}", story.id, slug(&story.title));
        StoryView {
            id: story.id,
            title: story.title.clone(),
            href: story.url.clone().unwrap_or_else(|| discussion.clone()),
            discussion,
            domain: story.domain.clone(),
            score: story.score,
            comment_count: story.comment_count,
            boost_count: story.boost_count,
            quote_count: story.quote_count,
            author: handle(&story.author_name, story.author_host.as_deref()),
            author_href: profile_href(&story.author_name, story.author_host.as_deref()),
            origin: story.author_host.clone(),
            age: time_ago(story.created_at),
            created_iso: story.created_at.to_rfc3339(),
            tags: story.tags.clone(),
            community: story.community.clone(),
            body_html: story.body_html.clone(),
            viewer_vote: votes.get(&story.id).copied().unwrap_or(0),
            mine: viewer.is_some_and(|v| v.id == story.author_id),
            is_text: story.url.is_none(),
            description: story.preview.description.clone(),
            thumbnail: story
                .preview
                .image
                .as_ref()
                .map(|name| format!("/media/{name}")),
        }
    }
}

/// A comment placed in a thread (or in a list, at depth 0).
pub struct CommentView {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub story_id: i64,
    pub story_title: String,
    pub story_href: String,
    pub depth: usize,
    pub author: String,
    pub author_href: String,
    pub body_html: String,
    pub score: i32,
    pub age: String,
    pub created_iso: String,
    /// Deleted, or by a hidden author: shown as a placeholder without text.
    pub deleted: bool,
    /// The placeholder is for a banned person or a blocked server, not a deletion.
    pub hidden: bool,
    /// Removed by a moderator (its text is not shown).
    pub removed: bool,
    pub edited: bool,
    pub viewer_vote: i16,
    pub mine: bool,
}

impl CommentView {
    pub fn new(
        comment: &Comment,
        depth: usize,
        viewer: Option<&Person>,
        votes: &HashMap<i64, i16>,
    ) -> CommentView {
        CommentView {
            id: comment.id,
            parent_id: comment.parent_id,
            story_id: comment.story_id,
            story_title: comment.story_title.clone(),
            story_href: format!("/s/{}/{}", comment.story_id, slug(&comment.story_title)),
            depth,
            author: handle(&comment.author_name, comment.author_host.as_deref()),
            author_href: profile_href(&comment.author_name, comment.author_host.as_deref()),
            // A removal keeps the text in the database (for a restore) but off every page.
            body_html: if comment.removed_at.is_some() {
                "<p class=\"removed\">[removed by a moderator]</p>".to_owned()
            } else {
                comment.body_html.clone()
            },
            score: comment.score,
            age: time_ago(comment.created_at),
            created_iso: comment.created_at.to_rfc3339(),
            deleted: comment.is_gone(),
            hidden: comment.author_hidden && comment.deleted_at.is_none(),
            removed: comment.removed_at.is_some(),
            edited: comment.updated_at.is_some(),
            viewer_vote: votes.get(&comment.id).copied().unwrap_or(0),
            mine: viewer.is_some_and(|v| v.id == comment.author_id)
                && comment.deleted_at.is_none()
                && comment.removed_at.is_none(),
        }
    }

    /// Indentation, capped so deep threads still fit a phone.
    pub fn indent(&self) -> usize {
        self.depth.min(10)
    }
}

/// Orders a story's comments as a thread: each reply right under its parent, siblings in the order
/// given (best first). Deleted comments, and those of hidden authors (banned, or on a blocked server),
/// stay only as placeholders where they still have live replies.
pub fn thread(
    comments: &[Comment],
    root: Option<i64>,
    viewer: Option<&Person>,
    votes: &HashMap<i64, i16>,
) -> Vec<CommentView> {
    let mut children: HashMap<Option<i64>, Vec<&Comment>> = HashMap::new();
    for comment in comments {
        children.entry(comment.parent_id).or_default().push(comment);
    }
    let mut live_below: HashMap<i64, bool> = HashMap::new();
    fn has_live(
        id: i64,
        children: &HashMap<Option<i64>, Vec<&Comment>>,
        memo: &mut HashMap<i64, bool>,
    ) -> bool {
        if let Some(&known) = memo.get(&id) {
            return known;
        }
        let live = children
            .get(&Some(id))
            .into_iter()
            .flatten()
            .any(|c| !c.is_gone() || has_live(c.id, children, memo));
        memo.insert(id, live);
        live
    }

    let mut out = Vec::with_capacity(comments.len());
    // Depth-first with an explicit stack: threads can be deeper than the call stack likes.
    let mut stack: Vec<(&Comment, usize)> = Vec::new();
    let start: Vec<&Comment> = match root {
        Some(id) => comments.iter().filter(|c| c.id == id).collect(),
        None => children.get(&None).cloned().unwrap_or_default(),
    };
    stack.extend(start.into_iter().rev().map(|c| (c, 0)));
    while let Some((comment, depth)) = stack.pop() {
        if comment.is_gone() && !has_live(comment.id, &children, &mut live_below) {
            continue;
        }
        out.push(CommentView::new(comment, depth, viewer, votes));
        if let Some(replies) = children.get(&Some(comment.id)) {
            stack.extend(replies.iter().rev().map(|c| (*c, depth + 1)));
        }
    }
    out
}

/// "5 minutes ago", "3 days ago".
pub fn time_ago(when: DateTime<Utc>) -> String {
    let seconds = (Utc::now() - when).num_seconds().max(0);
    let (n, unit) = match seconds {
        0..60 => return "just now".to_owned(),
        60..3600 => (seconds / 60, "minute"),
        3600..86_400 => (seconds / 3600, "hour"),
        86_400..2_592_000 => (seconds / 86_400, "day"),
        2_592_000..31_536_000 => (seconds / 2_592_000, "month"),
        _ => (seconds / 31_536_000, "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}
