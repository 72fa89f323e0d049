//! Story lists (hot, new, top, tag, domain), the discussion page, and sharing and editing.

use std::collections::HashMap;

use actix_web::{http::StatusCode, web, HttpResponse};
use askama::Template;
use chrono::{Duration, Utc};
use serde::Deserialize;

use super::{
    render, render_with, see_other,
    session::{CsrfForm, Ctx},
    views::{thread, thread_page, CommentView, Layout, StoryView},
    PageQuery, Pager, PAGE_SIZE,
};
use crate::{
    cache::{shared, Discussion},
    db::{
        comments,
        reading::{self, Kept},
        stories::{self, Edited, LinkParts, Listing, Story, StoryInput, Submitted},
        votes,
    },
    error::{AppError, AppResult},
    federation::{objects::DbPost, outbox},
    links, markdown, preview,
    rate_limit::Action,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(hot))
        .route("/new", web::get().to(newest))
        .route("/top", web::get().to(top))
        .route("/tags", web::get().to(tags))
        .route("/t/{tag}", web::get().to(tag))
        .route("/domain/{host}", web::get().to(domain))
        .route("/submit", web::get().to(submit_form))
        .route("/submit", web::post().to(submit))
        .route("/submit/title", web::get().to(suggest_title))
        .route("/s/{id}/edit", web::get().to(edit_form))
        .route("/s/{id}/edit", web::post().to(edit))
        .route("/s/{id}/delete", web::post().to(delete))
        .route("/s/{id}", web::get().to(show))
        .route("/s/{id}/{slug}", web::get().to(show_with_slug));
}

#[derive(Template)]
#[template(path = "story/list.html")]
struct ListPage {
    page: Layout,
    heading: String,
    /// Which tab of the main menu is current.
    tab: &'static str,
    stories: Vec<StoryView>,
    pager: Pager,
    /// Stories on earlier pages, so numbering continues.
    first_rank: i64,
    empty: &'static str,
    /// A line under the heading (a tag page: how to follow its group, and who does).
    note: String,
}

/// Story views with the viewer's own votes and saves marked (a query each for the whole page).
pub async fn story_views(ctx: &Ctx, stories: &[Story]) -> AppResult<Vec<StoryView>> {
    let ids: Vec<i64> = stories.iter().map(|s| s.id).collect();
    let (votes, saved): (HashMap<i64, i16>, Vec<i64>) = match &ctx.viewer {
        Some(viewer) => (
            votes::on_stories(ctx.read_db(), viewer.id, &ids)
                .await?
                .into_iter()
                .collect(),
            reading::among(ctx.read_db(), viewer.id, Kept::SavedStory, &ids).await?,
        ),
        None => (HashMap::new(), Vec::new()),
    };
    Ok(stories
        .iter()
        .map(|s| {
            let mut view = StoryView::new(s, ctx.viewer.as_ref(), &votes);
            view.saved = saved.contains(&s.id);
            view
        })
        .collect())
}

struct ListSpec {
    listing: Listing,
    title: String,
    heading: String,
    tab: &'static str,
    base: String,
    feed: Option<String>,
    empty: &'static str,
    note: String,
}

async fn list_page(ctx: Ctx, query: &PageQuery, spec: ListSpec) -> AppResult<HttpResponse> {
    // Search is ranked by relevance, which has no key to continue from: it pages by offset.
    let searching = spec.listing.is_search();
    let after = query.after.filter(|_| !searching);
    let db = ctx.read_db().clone();
    let load = async {
        match after {
            Some(after) => stories::list_after(&db, &spec.listing, PAGE_SIZE + 1, after).await,
            None => stories::list(&db, &spec.listing, PAGE_SIZE + 1, query.offset()).await,
        }
    };
    let rows = if searching {
        std::sync::Arc::new(load.await?)
    } else {
        let key = format!("{} {} {after:?}", spec.base, query.number());
        ctx.state.caches.list(key, ctx.wrote_recently, load).await?
    };
    let (pager, rows) = if searching {
        Pager::by_offset(&spec.base, query.number(), &rows)
    } else {
        Pager::after(&spec.base, query.number(), &rows, |s| s.id)
    };
    // The reader's hidden stories and filtered tags come off the shared page of rows (a page may
    // then show fewer than 25); a tag's own page keeps its tag.
    let keep_tag = match &spec.listing {
        Listing::Tag(tag) => Some(tag.as_str()),
        _ => None,
    };
    let rows = &super::reading::without_filtered(&ctx, rows, keep_tag).await?;
    let mut layout = Layout::new(&ctx, spec.title);
    if let Some(feed) = spec.feed {
        layout = layout.with_feed(feed);
    }
    let response = render(&ListPage {
        stories: story_views(&ctx, rows).await?,
        page: layout,
        heading: spec.heading,
        tab: spec.tab,
        pager,
        first_rank: query.offset(),
        empty: spec.empty,
        note: spec.note,
    })?;
    // Search results are not shared: each query is counted against its reader's rate limit.
    Ok(if searching {
        response
    } else {
        shared(response)
    })
}

async fn hot(ctx: Ctx, query: web::Query<PageQuery>) -> AppResult<HttpResponse> {
    let spec = ListSpec {
        listing: Listing::Hot,
        title: "lien".into(),
        heading: String::new(),
        tab: "hot",
        base: "/".into(),
        feed: Some("/hot".into()),
        empty: "Nothing has been shared yet. Be the first.",
        note: String::new(),
    };
    list_page(ctx, &query, spec).await
}

async fn newest(ctx: Ctx, query: web::Query<PageQuery>) -> AppResult<HttpResponse> {
    let spec = ListSpec {
        listing: Listing::New,
        title: "New stories".into(),
        heading: String::new(),
        tab: "new",
        base: "/new".into(),
        feed: Some("/new".into()),
        empty: "Nothing has been shared yet.",
        note: String::new(),
    };
    list_page(ctx, &query, spec).await
}

#[derive(Deserialize)]
struct TopQuery {
    t: Option<String>,
    page: Option<i64>,
    after: Option<i64>,
}

/// The windows of `/top`, with their length.
const TOP_WINDOWS: [(&str, i64); 5] = [
    ("day", 1),
    ("week", 7),
    ("month", 30),
    ("year", 365),
    ("all", 365 * 100),
];

/// The window `?t=` names (a week when absent) and its length in days; the page and its feed share it.
pub fn top_window(t: Option<&str>) -> AppResult<(&'static str, i64)> {
    let window = t.unwrap_or("week");
    TOP_WINDOWS
        .iter()
        .find(|(name, _)| *name == window)
        .copied()
        .ok_or_else(|| AppError::BadRequest("t must be day, week, month, year or all".into()))
}

async fn top(ctx: Ctx, query: web::Query<TopQuery>) -> AppResult<HttpResponse> {
    let (window, days) = top_window(query.t.as_deref())?;
    let spec = ListSpec {
        listing: Listing::Top {
            since: Utc::now() - Duration::days(days),
        },
        title: format!("Top stories ({window})"),
        heading: format!("Top of the {window}").replace("of the all", "of all time"),
        tab: "top",
        base: format!("/top?t={window}"),
        feed: Some(format!("/top?t={window}")),
        empty: "No stories in this window.",
        note: String::new(),
    };
    list_page(
        ctx,
        &PageQuery {
            page: query.page,
            after: query.after,
        },
        spec,
    )
    .await
}

#[derive(Template)]
#[template(path = "story/tags.html")]
struct TagsPage {
    page: Layout,
    tags: Vec<(String, i64)>,
}

async fn tags(ctx: Ctx) -> AppResult<HttpResponse> {
    let tags = ctx
        .state
        .caches
        .tag_counts(ctx.wrote_recently, stories::tag_counts(ctx.read_db()))
        .await?;
    render(&TagsPage {
        page: Layout::new(&ctx, "Tags"),
        tags: tags.to_vec(),
    })
    .map(shared)
}

async fn tag(
    ctx: Ctx,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> AppResult<HttpResponse> {
    let tag = path.into_inner().to_lowercase();
    // Every tag is a group other servers follow (issue 12): say how, and how many do.
    let followers = crate::db::groups::follower_count(ctx.read_db(), &tag).await?;
    let host = ctx.state.config.host();
    let note = format!(
        "Follow this tag from elsewhere: @{tag}@{host} on Mastodon, !{tag}@{host} on Lemmy, PieFed or Mbin. {followers} {} on other servers.",
        if followers == 1 { "follower" } else { "followers" }
    );
    let spec = ListSpec {
        listing: Listing::Tag(tag.clone()),
        title: format!("Stories tagged {tag}"),
        heading: format!("Tagged “{tag}”"),
        tab: "",
        base: format!("/t/{tag}"),
        feed: Some(format!("/t/{tag}")),
        empty: "No stories carry this tag.",
        note,
    };
    list_page(ctx, &query, spec).await
}

async fn domain(
    ctx: Ctx,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> AppResult<HttpResponse> {
    let host = path.into_inner().to_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host).to_owned();
    let spec = ListSpec {
        listing: Listing::Domain(host.clone()),
        title: format!("Stories from {host}"),
        heading: format!("Stories from {host}"),
        tab: "",
        base: format!("/domain/{host}"),
        feed: Some(format!("/domain/{host}")),
        empty: "No stories link to this site.",
        note: String::new(),
    };
    list_page(ctx, &query, spec).await
}

#[derive(Template)]
#[template(path = "story/show.html")]
struct ShowPage {
    page: Layout,
    story: StoryView,
    comments: Vec<CommentView>,
    /// The viewer may moderate: the page shows the moderation forms.
    moderator: bool,
    removed_reason: Option<String>,
    locked: bool,
    /// The next page of top-level threads, when the discussion is longer than one page.
    more_comments: Option<String>,
    /// The viewer just shared this link again: their share counted as an upvote here.
    shared_again: bool,
}

#[derive(Deserialize)]
struct ShowQuery {
    page: Option<i64>,
    /// `again` after sharing a link that was already here.
    shared: Option<String>,
}

impl ShowQuery {
    fn page(&self) -> i64 {
        self.page.unwrap_or(1).clamp(1, 10_000)
    }

    fn shared_again(&self) -> bool {
        self.shared.as_deref() == Some("again")
    }
}

async fn show(
    ctx: Ctx,
    path: web::Path<i64>,
    query: web::Query<ShowQuery>,
) -> AppResult<HttpResponse> {
    show_story(ctx, path.into_inner(), query.page(), query.shared_again()).await
}

async fn show_with_slug(
    ctx: Ctx,
    path: web::Path<(i64, String)>,
    query: web::Query<ShowQuery>,
) -> AppResult<HttpResponse> {
    show_story(ctx, path.into_inner().0, query.page(), query.shared_again()).await
}

async fn show_story(ctx: Ctx, id: i64, page: i64, shared_again: bool) -> AppResult<HttpResponse> {
    let db = ctx.read_db().clone();
    let discussion = ctx
        .state
        .caches
        .discussion(id, ctx.wrote_recently, async {
            let story = stories::get(&db, id).await?.ok_or(AppError::NotFound)?;
            let comments = comments::for_story(&db, id).await?;
            Ok(Discussion { story, comments })
        })
        .await?;
    let (story, comments) = (&discussion.story, &discussion.comments);
    let db = &db;
    // A deleted story's page stays while its discussion has anything left to read.
    if story.deleted_at.is_some() && comments.iter().all(|c| c.is_gone()) {
        return Err(AppError::Gone);
    }
    let moderator = ctx.viewer.as_ref().is_some_and(|v| v.is_moderator());
    // Moderators still see a removed story, to restore it; everyone else learns why it went.
    if let (Some(reason), false) = (&story.removed_reason, moderator) {
        return Err(removed(reason));
    }
    let comment_votes: HashMap<i64, i16> = match &ctx.viewer {
        Some(viewer) => {
            let ids: Vec<i64> = comments.iter().map(|c| c.id).collect();
            votes::on_comments(db, viewer.id, &ids)
                .await?
                .into_iter()
                .collect()
        }
        None => HashMap::new(),
    };
    let view = story_views(&ctx, std::slice::from_ref(story))
        .await?
        .remove(0);
    let description = match &story.domain {
        _ if view.deleted => view.title.clone(),
        Some(domain) => format!(
            "{} comments, {} points, linking to {domain}",
            story.comment_count, story.score
        ),
        None => markdown::plain_text(&story.body_html, 200),
    };
    let layout = Layout::new(&ctx, view.title.clone())
        .with_description(description)
        .with_feed(format!("/s/{id}"))
        .with_ap_id(story.ap_id.clone());
    let all = thread(comments, None, ctx.viewer.as_ref(), &comment_votes);
    let (comments, more) = thread_page(all, page as usize);
    let more_comments = more.then(|| format!("{}?page={}#comments", view.discussion, page + 1));
    render(&ShowPage {
        comments,
        more_comments,
        shared_again,
        page: layout,
        story: view,
        moderator,
        removed_reason: story.removed_reason.clone(),
        locked: story.locked_at.is_some(),
    })
    .map(shared)
}

/// The answer for a story a moderator removed: 410, with the reason (the same on its page and its
/// feeds).
pub fn removed(reason: &str) -> AppError {
    AppError::Removed(format!("this story was removed by a moderator: {reason}"))
}

/// The story form, for sharing and for editing.
#[derive(Template)]
#[template(path = "story/form.html")]
struct FormPage {
    page: Layout,
    /// Where the form posts: `/submit` or `/s/{id}/edit`.
    action: String,
    form: StoryForm,
    errors: Vec<String>,
    /// Past the edit window: the link, title and tags are shown but cannot change.
    fixed: bool,
    /// The story that already shares the link in the form, shown before submitting.
    existing: Option<StoryView>,
}

/// How long after sharing its submitter may change a story's link, title and tags. After that,
/// votes and comments answer what was shared, and copies have gone out to other servers: changing
/// it would turn the discussion into one about something else. The text stays editable (marked
/// edited); moderators can always edit everything.
pub const EDIT_WINDOW: Duration = Duration::hours(1);

/// Whether the story's link, title and tags can no longer change for this viewer.
fn past_edit_window(story: &Story, moderator: bool) -> bool {
    !moderator && Utc::now() - story.created_at > EDIT_WINDOW
}

#[derive(Deserialize, Default)]
pub struct StoryForm {
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub tags: String,
    #[serde(default)]
    pub body: String,
}

/// A story form that passed every check, ready for the database.
struct ValidStory {
    title: String,
    link: Option<(String, String, String)>,
    body: String,
    body_html: String,
    tags: Vec<String>,
}

impl ValidStory {
    fn input(&self) -> StoryInput<'_> {
        StoryInput {
            title: &self.title,
            link: self
                .link
                .as_ref()
                .map(|(url, key, domain)| LinkParts { url, key, domain }),
            body: &self.body,
            body_html: &self.body_html,
            tags: &self.tags,
        }
    }
}

const MAX_TAGS: usize = 5;

/// Tags as typed ("rust, web  databases"): lowercased, deduplicated, 1 to 5 of them.
fn parse_tags(input: &str, errors: &mut Vec<String>) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for raw in input
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
    {
        let tag = raw.trim_start_matches('#').to_lowercase();
        let valid = (1..=30).contains(&tag.len())
            && tag
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric())
            && tag
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid {
            errors.push(format!(
                "“{raw}” is not a tag: use letters, digits, - and _"
            ));
        } else if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags.is_empty() {
        errors.push("add at least one tag".into());
    } else if tags.len() > MAX_TAGS {
        errors.push(format!("at most {MAX_TAGS} tags"));
    }
    tags
}

fn validate(form: &StoryForm) -> Result<ValidStory, Vec<String>> {
    let mut errors = Vec::new();
    let title = form.title.split_whitespace().collect::<Vec<_>>().join(" ");
    if title.is_empty() {
        errors.push("a title is required".into());
    } else if title.chars().count() > 300 {
        errors.push("titles are limited to 300 characters".into());
    }
    let link = if form.url.trim().is_empty() {
        None
    } else {
        match links::parse_link(&form.url) {
            Ok(url) => Some((url.to_string(), links::url_key(&url), links::domain(&url))),
            Err(e) => {
                errors.push(e.to_string());
                None
            }
        }
    };
    let body = form.body.trim().to_owned();
    if form.url.trim().is_empty() && body.is_empty() {
        errors.push("share a link, or write a text".into());
    }
    if body.len() > 40_000 {
        errors.push("the text is limited to 40,000 characters".into());
    }
    let tags = parse_tags(&form.tags, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ValidStory {
        title,
        link,
        body_html: markdown::render(&body),
        body,
        tags,
    })
}

#[derive(Deserialize)]
struct SubmitQuery {
    /// A link to prefill (bookmarklets, and the form's script checking for an earlier share).
    #[serde(default)]
    url: String,
    #[serde(default)]
    title: String,
}

async fn submit_form(ctx: Ctx, query: web::Query<SubmitQuery>) -> AppResult<HttpResponse> {
    ctx.require_viewer()?;
    let query = query.into_inner();
    let existing = already_shared(&ctx, &query.url).await?;
    render(&FormPage {
        page: Layout::new(&ctx, "Share a link"),
        action: "/submit".into(),
        form: StoryForm {
            url: query.url,
            title: query.title,
            ..StoryForm::default()
        },
        errors: vec![],
        fixed: false,
        existing,
    })
}

/// The story already sharing `url` here, if it is a valid link someone shared (as Lobsters warns).
async fn already_shared(ctx: &Ctx, url: &str) -> AppResult<Option<StoryView>> {
    let Ok(url) = links::parse_link(url.trim()) else {
        return Ok(None);
    };
    match stories::shared_with_key(ctx.read_db(), &links::url_key(&url)).await? {
        Some(story) => Ok(story_views(ctx, &[story]).await?.pop()),
        None => Ok(None),
    }
}

#[derive(Deserialize)]
struct TitleQuery {
    url: String,
}

/// `GET /submit/title?url=`: the linked page's title as `{"title": …}` (null when there is none
/// to be had), which the submit form's script offers when only a link was typed. For signed-in
/// people, a few a minute each; the form works without it.
async fn suggest_title(ctx: Ctx, query: web::Query<TitleQuery>) -> AppResult<HttpResponse> {
    let viewer = ctx.require_viewer()?;
    let url = links::parse_link(&query.url).map_err(|e| AppError::BadRequest(e.to_string()))?;
    let Some(_permit) = preview::admit_title_lookup(&viewer.ap_id) else {
        return Ok(HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", "60"))
            .json(serde_json::json!({ "title": null })));
    };
    let title = match preview::page_title(&ctx.state.config, &url).await {
        Ok(title) => title,
        Err(error) => {
            tracing::debug!(%url, %error, "no title for the submit form");
            None
        }
    };
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "private, no-store"))
        .json(serde_json::json!({ "title": title })))
}

async fn submit(ctx: Ctx, CsrfForm(form): CsrfForm<StoryForm>) -> AppResult<HttpResponse> {
    let author = ctx.require_viewer()?.id;
    ctx.limit(Action::Submit)?;
    let valid = match validate(&form) {
        Ok(valid) => valid,
        Err(errors) => {
            let page = FormPage {
                page: Layout::new(&ctx, "Share a link"),
                action: "/submit".into(),
                form,
                errors,
                fixed: false,
                existing: None,
            };
            return render_with(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };
    let origin = ctx.state.config.origin();
    let mut tx = ctx.state.db.write.begin().await?;
    let id = match stories::submit(&mut tx, &origin, author, &valid.input()).await? {
        Submitted::Created(id) => {
            let story = stories::get(&mut *tx, id)
                .await?
                .ok_or(AppError::NotFound)?;
            outbox::post_published(&mut tx, &ctx.state, &DbPost::Story(story), "Create").await?;
            id
        }
        Submitted::Duplicate(id) => {
            tx.commit().await?;
            return Ok(see_other(&format!("/s/{id}?shared=again")));
        }
    };
    tx.commit().await?;
    Ok(see_other(&format!("/s/{id}")))
}

/// The story, if the viewer wrote it and it is live.
async fn own_story(ctx: &Ctx, id: i64) -> AppResult<Story> {
    let (story, moderating) = editable_story(ctx, id).await?;
    if moderating {
        return Err(AppError::Forbidden(
            "only its author can delete a story; moderators remove it".into(),
        ));
    }
    Ok(story)
}

/// The story, if it is live and the viewer wrote it or moderates; and whether they edit it as a
/// moderator rather than as its author.
async fn editable_story(ctx: &Ctx, id: i64) -> AppResult<(Story, bool)> {
    let viewer = ctx.require_viewer()?;
    let story = stories::get(&ctx.state.db.write, id)
        .await?
        .ok_or(AppError::NotFound)?;
    if story.deleted_at.is_some() {
        return Err(AppError::Gone);
    }
    let moderating = story.author_id != viewer.id;
    if moderating && !(viewer.is_moderator() && story.local) {
        return Err(AppError::Forbidden(
            "only its author can change a story".into(),
        ));
    }
    Ok((story, moderating))
}

async fn edit_form(ctx: Ctx, path: web::Path<i64>) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let moderator = ctx.viewer.as_ref().is_some_and(|v| v.is_moderator());
    let story = match editable_story(&ctx, id).await {
        Ok((story, _)) => story,
        // `/s/{id}/edit` is also what a story titled "Edit" slugs to: show it to everyone else.
        Err(AppError::Forbidden(_)) => return Ok(see_other(&format!("/s/{id}"))),
        Err(e) => return Err(e),
    };
    let fixed = past_edit_window(&story, moderator);
    render(&FormPage {
        fixed,
        page: Layout::new(&ctx, format!("Edit: {}", story.title)),
        action: format!("/s/{id}/edit"),
        form: StoryForm {
            url: story.url.unwrap_or_default(),
            title: story.title,
            tags: story.tags.join(" "),
            body: story.body,
        },
        errors: vec![],
        existing: None,
    })
}

async fn edit(
    ctx: Ctx,
    path: web::Path<i64>,
    CsrfForm(form): CsrfForm<StoryForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let (story, _) = editable_story(&ctx, id).await?;
    let moderator = ctx.viewer.as_ref().is_some_and(|v| v.is_moderator());
    let fixed = past_edit_window(&story, moderator);
    let valid = match validate(&form) {
        Ok(valid) => valid,
        Err(errors) => return edit_failed(&ctx, id, form, errors, fixed),
    };
    let same_tags = {
        let (mut old, mut new) = (story.tags.clone(), valid.tags.clone());
        old.sort();
        new.sort();
        old == new
    };
    let same_link = valid.link.as_ref().map(|(url, _, _)| url) == story.url.as_ref();
    if fixed && (valid.title != story.title || !same_link || !same_tags) {
        let errors = vec![
            "the link, title and tags can change only in the first hour after sharing; the text can still change"
                .to_owned(),
        ];
        return edit_failed(&ctx, id, form, errors, fixed);
    }
    let mut tx = ctx.state.db.write.begin().await?;
    match stories::edit(&mut tx, id, story.author_id, &valid.input()).await? {
        Edited::Done => {
            let edited = stories::get(&mut *tx, id)
                .await?
                .ok_or(AppError::NotFound)?;
            outbox::post_published(&mut tx, &ctx.state, &DbPost::Story(edited), "Update").await?;
            tx.commit().await?;
            Ok(see_other(&format!("/s/{id}")))
        }
        Edited::LinkTaken(other) => {
            let errors = vec![format!(
                "that link is already under discussion at /s/{other}"
            )];
            edit_failed(&ctx, id, form, errors, fixed)
        }
        Edited::NotFound => Err(AppError::NotFound),
    }
}

fn edit_failed(
    ctx: &Ctx,
    id: i64,
    form: StoryForm,
    errors: Vec<String>,
    fixed: bool,
) -> AppResult<HttpResponse> {
    let page = FormPage {
        page: Layout::new(ctx, "Edit story"),
        action: format!("/s/{id}/edit"),
        form,
        errors,
        fixed,
        existing: None,
    };
    render_with(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

#[derive(Deserialize)]
struct Confirm {}

async fn delete(
    ctx: Ctx,
    path: web::Path<i64>,
    _form: CsrfForm<Confirm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let story = own_story(&ctx, id).await?;
    let mut tx = ctx.state.db.write.begin().await?;
    stories::tombstone(&mut *tx, id).await?;
    outbox::post_deleted(&mut tx, &ctx.state, &DbPost::Story(story)).await?;
    tx.commit().await?;
    Ok(see_other("/"))
}
