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
    pub viewer: Option<Person>,
    /// This page's path: the menu marks it (`aria-current`), and logging in from it comes back to
    /// it (`/login?next=`).
    pub path: String,
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
            viewer: ctx.viewer.clone(),
            path: ctx.path.clone(),
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
    /// The full date, shown on hovering the age.
    pub created_full: String,
    pub tags: Vec<String>,
    /// The remote community it was posted in, as `name@host`.
    pub community: Option<String>,
    pub body_html: String,
    pub viewer_vote: i16,
    pub mine: bool,
    pub is_text: bool,
    /// Its text was changed after sharing.
    pub edited: bool,
    /// Deleted by its submitter: only its discussion is left to show.
    pub deleted: bool,
    /// The viewer saved it.
    pub saved: bool,
    /// A federated story's page on its home server.
    pub original: Option<String>,
    /// The link preview's description, once fetched (plain text).
    pub description: Option<String>,
    /// The link preview's thumbnail, a path under `/media`.
    pub thumbnail: Option<String>,
}

impl StoryView {
    pub fn new(story: &Story, viewer: Option<&Person>, votes: &HashMap<i64, i16>) -> StoryView {
        let discussion = format!("/s/{}/{}", story.id, slug(&story.title));
        if story.deleted_at.is_some() {
            return StoryView::deleted(story, discussion);
        }
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
            created_iso: iso_date(story.created_at),
            created_full: full_date(story.created_at),
            tags: story.tags.clone(),
            community: story.community.clone(),
            body_html: story.body_html.clone(),
            viewer_vote: votes.get(&story.id).copied().unwrap_or(0),
            mine: viewer.is_some_and(|v| v.id == story.author_id),
            is_text: story.url.is_none(),
            edited: story.updated_at.is_some(),
            deleted: false,
            saved: false,
            original: (!story.local).then(|| story.ap_id.clone()),
            description: story.preview.description.clone(),
            thumbnail: story
                .preview
                .image
                .as_ref()
                .map(|name| format!("/media/{name}")),
        }
    }
}

impl StoryView {
    /// What stays of a story its submitter deleted: a placeholder heading its discussion (as
    /// Lobsters and HN keep it), without the link, text, tags or submitter.
    fn deleted(story: &Story, discussion: String) -> StoryView {
        StoryView {
            id: story.id,
            title: "[story deleted by its submitter]".to_owned(),
            href: discussion.clone(),
            discussion,
            domain: None,
            score: story.score,
            comment_count: story.comment_count,
            boost_count: 0,
            quote_count: 0,
            community: None,
            author: "[deleted]".to_owned(),
            author_href: String::new(),
            origin: None,
            age: time_ago(story.created_at),
            created_iso: iso_date(story.created_at),
            created_full: full_date(story.created_at),
            tags: Vec::new(),
            body_html: String::new(),
            viewer_vote: 0,
            mine: false,
            is_text: true,
            edited: false,
            deleted: true,
            saved: false,
            original: None,
            description: None,
            thumbnail: None,
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
    pub created_full: String,
    /// Deleted, or by a hidden author: shown as a placeholder without text.
    pub deleted: bool,
    /// The placeholder is for a banned person or a blocked server, not a deletion.
    pub hidden: bool,
    /// Removed by a moderator (its text is not shown).
    pub removed: bool,
    pub edited: bool,
    pub viewer_vote: i16,
    pub mine: bool,
    /// Comments below it in its thread (all of them, shown here or not): what collapsing hides.
    pub replies: usize,
    /// Its replies follow on this page, inside it: the template opens a `.replies` block.
    pub nested: bool,
    /// Blocks of ancestors that end with this comment, which the template closes after it.
    pub closes: usize,
    /// It has replies, left to its own page because the thread is deep here ("continue this thread").
    pub continues: bool,
    /// The comment a `/c/{id}` page is about: it carries the reply, report and moderation forms.
    pub focused: bool,
    /// The viewer saved it (known on its own page only).
    pub saved: bool,
    /// A federated comment's page on its home server.
    pub original: Option<String>,
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
            created_iso: iso_date(comment.created_at),
            created_full: full_date(comment.created_at),
            deleted: comment.is_gone(),
            hidden: comment.author_hidden && comment.deleted_at.is_none(),
            removed: comment.removed_at.is_some(),
            edited: comment.updated_at.is_some(),
            viewer_vote: votes.get(&comment.id).copied().unwrap_or(0),
            mine: viewer.is_some_and(|v| v.id == comment.author_id)
                && comment.deleted_at.is_none()
                && comment.removed_at.is_none(),
            replies: 0,
            nested: false,
            closes: 0,
            continues: false,
            focused: false,
            saved: false,
            original: (!comment.local).then(|| comment.ap_id.clone()),
        }
    }
}

/// How deep a thread goes on one page; deeper replies continue on their parent's own page, so
/// that a long back-and-forth stays readable on a phone (Reddit does the same).
pub const THREAD_DEPTH: usize = 8;

/// Comments a discussion page shows at most before its "more comments" link (a single longer
/// top-level thread is still shown whole, cut at [`THREAD_DEPTH`]). About 150 keep a signed-in
/// page near 120 KB, which a phone on a slow line still loads in a few seconds.
pub const COMMENTS_PER_PAGE: usize = 150;

/// One page of a thread ordered by [`thread`], ready for `comment/thread.html`: the top-level
/// threads of page `page` (1-based), cut at [`THREAD_DEPTH`], with the hidden reply counts and
/// the nesting marks set. Returns whether a later page holds more threads.
pub fn thread_page(mut views: Vec<CommentView>, page: usize) -> (Vec<CommentView>, bool) {
    // Replies below each comment: the following comments deeper than it.
    let mut open: Vec<usize> = Vec::new();
    for i in 0..views.len() {
        while open
            .last()
            .is_some_and(|&a| views[a].depth >= views[i].depth)
        {
            open.pop();
        }
        for &a in &open {
            views[a].replies += 1;
        }
        open.push(i);
    }
    // Whole top-level threads, page after page: a page takes the next thread while it fits.
    let mut pages: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < views.len() {
        let end = i + 1 + views[i].replies;
        if end - start > COMMENTS_PER_PAGE && i > start {
            pages.push((start, i));
            start = i;
        }
        i = end;
    }
    if start < views.len() {
        pages.push((start, views.len()));
    }
    let more = page < pages.len();
    let Some(&(from, to)) = pages.get(page.max(1) - 1) else {
        return (Vec::new(), false);
    };
    let mut shown: Vec<CommentView> = views
        .drain(from..to)
        .filter(|c| c.depth < THREAD_DEPTH)
        .collect();
    for i in 0..shown.len() {
        let next_depth = shown.get(i + 1).map_or(0, |c| c.depth);
        let c = &mut shown[i];
        c.continues = c.depth + 1 == THREAD_DEPTH && c.replies > 0;
        c.nested = next_depth > c.depth;
        c.closes = c.depth.saturating_sub(next_depth);
    }
    (shown, more)
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

/// For `<time datetime>`: to the second, in UTC.
pub fn iso_date(when: DateTime<Utc>) -> String {
    when.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// For `<time title>`: the date a relative age stands for.
pub fn full_date(when: DateTime<Utc>) -> String {
    when.format("%Y-%m-%d %H:%M UTC").to_string()
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
