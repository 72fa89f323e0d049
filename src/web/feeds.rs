//! Feed endpoints: `.rss` or `.atom` after a list's path (SPEC section 3). Each handler fetches its
//! rows and names its channel; `respond` renders and answers conditional GETs for all of them.

use std::time::SystemTime;

use actix_web::{
    http::header::{self, EntityTag, HttpDate, IfModifiedSince, IfNoneMatch},
    web, FromRequest, HttpMessage, HttpRequest, HttpResponse,
};
use askama::Template;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{people::find_person, render, session::Ctx, stories::top_window, views::Layout};
use crate::{
    app::AppState,
    cache::shared,
    db::{
        comments,
        stories::{self, slug, Listing},
    },
    error::{AppError, AppResult},
    feeds::{self, Channel, Format, Item, FEED_SIZE},
};

/// Registered before the HTML routes: `/s/{id}` and `/@{handle}` would otherwise take `.rss` paths.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/hot.{format:rss|atom}", web::get().to(hot))
        .route("/new.{format:rss|atom}", web::get().to(newest))
        .route("/top.{format:rss|atom}", web::get().to(top))
        .route(
            "/comments.{format:rss|atom}",
            web::get().to(newest_comments),
        )
        .route("/t/{name}.{format:rss|atom}", web::get().to(tag))
        .route("/domain/{name}.{format:rss|atom}", web::get().to(domain))
        .route("/search.{format:rss|atom}", web::get().to(search))
        .route("/@{name}.{format:rss|atom}", web::get().to(person))
        .route("/s/{id}.{format:rss|atom}", web::get().to(story))
        .route("/modlog.{format:rss|atom}", web::get().to(modlog))
        .route(
            "/notifications/{name}.{format:rss|atom}",
            web::get().to(notifications_feed),
        )
        .route("/saved/{name}.{format:rss|atom}", web::get().to(saved_feed));
}

/// Readers poll; five minutes of caching spares the database without delaying news much.
const CACHE_CONTROL: &str = "public, max-age=300";

#[derive(Deserialize)]
struct FormatPath {
    format: Format,
}

/// A feed of something named: a tag, a host, a person's handle.
#[derive(Deserialize)]
struct NamedPath {
    name: String,
    format: Format,
}

#[derive(Deserialize)]
struct StoryPath {
    id: i64,
    format: Format,
}

#[derive(Deserialize)]
struct TopQuery {
    t: Option<String>,
}

fn channel(state: &AppState, title: String, page_path: &str, feed_path: String) -> Channel {
    let host = state.config.host();
    Channel {
        origin: state.config.origin(),
        description: format!("{title}, from lien at {host}"),
        title: format!("{title} · {host}"),
        page_path: page_path.to_owned(),
        feed_path,
    }
}

async fn story_list(
    req: &HttpRequest,
    state: &AppState,
    format: Format,
    listing: Listing,
    channel: Channel,
) -> AppResult<HttpResponse> {
    let rows = stories::list(&state.db.read, &listing, FEED_SIZE, 0).await?;
    let items: Vec<Item> = rows
        .iter()
        .map(|s| feeds::story_item(&channel.origin, s))
        .collect();
    respond(req, format, &channel, &items).await
}

async fn hot(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<FormatPath>,
) -> AppResult<HttpResponse> {
    let channel = channel(&state, "Hot stories".into(), "/", "/hot".into());
    story_list(&req, &state, path.format, Listing::Hot, channel).await
}

async fn newest(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<FormatPath>,
) -> AppResult<HttpResponse> {
    let channel = channel(&state, "New stories".into(), "/new", "/new".into());
    story_list(&req, &state, path.format, Listing::New, channel).await
}

async fn top(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<FormatPath>,
    query: web::Query<TopQuery>,
) -> AppResult<HttpResponse> {
    let (window, days) = top_window(query.t.as_deref())?;
    let page = format!("/top?t={window}");
    let channel = channel(
        &state,
        format!("Top stories ({window})"),
        &page,
        page.clone(),
    );
    let listing = Listing::Top {
        since: Utc::now() - Duration::days(days),
    };
    story_list(&req, &state, path.format, listing, channel).await
}

async fn tag(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<NamedPath>,
) -> AppResult<HttpResponse> {
    let tag = path.name.to_lowercase();
    let page = format!("/t/{tag}");
    let channel = channel(&state, format!("Stories tagged {tag}"), &page, page.clone());
    story_list(&req, &state, path.format, Listing::Tag(tag), channel).await
}

async fn domain(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<NamedPath>,
) -> AppResult<HttpResponse> {
    let host = path.name.to_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host).to_owned();
    let page = format!("/domain/{host}");
    let channel = channel(&state, format!("Stories from {host}"), &page, page.clone());
    story_list(&req, &state, path.format, Listing::Domain(host), channel).await
}

#[derive(Deserialize)]
struct SearchFeedQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    sort: String,
}

/// The stories a search finds (`/search.rss?q=…&sort=new`), to follow a subject in a reader.
async fn search(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<FormatPath>,
    query: web::Query<SearchFeedQuery>,
) -> AppResult<HttpResponse> {
    let q = query.q.trim();
    if q.is_empty() || q.chars().count() > 500 {
        return Err(crate::error::AppError::BadRequest(
            "search for 1 to 500 characters".into(),
        ));
    }
    let encoded: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
    let (listing, sort) = match query.sort.as_str() {
        "new" => (Listing::SearchNew(q.to_owned()), "new"),
        _ => (Listing::Search(q.to_owned()), "relevance"),
    };
    let page = format!("/search?q={encoded}&sort={sort}");
    let channel = channel(
        &state,
        format!("Stories matching “{q}”"),
        &page,
        page.clone(),
    );
    story_list(&req, &state, path.format, listing, channel).await
}

async fn person(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<NamedPath>,
) -> AppResult<HttpResponse> {
    let person = find_person(&state, &path.name).await?;
    let page = format!("/@{}", person.handle());
    let channel = channel(
        &state,
        format!("Stories shared by {}", person.handle()),
        &page,
        page.clone(),
    );
    story_list(
        &req,
        &state,
        path.format,
        Listing::Author(person.id),
        channel,
    )
    .await
}

async fn newest_comments(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<FormatPath>,
) -> AppResult<HttpResponse> {
    let channel = channel(
        &state,
        "Newest comments".into(),
        "/comments",
        "/comments".into(),
    );
    let rows = comments::newest(&state.db.read, None, FEED_SIZE, 0).await?;
    let items: Vec<Item> = rows
        .iter()
        .map(|c| feeds::comment_item(&channel.origin, c))
        .collect();
    respond(&req, path.format, &channel, &items).await
}

/// The public moderation log.
async fn modlog(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<FormatPath>,
) -> AppResult<HttpResponse> {
    let channel = channel(&state, "Moderation log".into(), "/modlog", "/modlog".into());
    let mut rows = crate::db::moderation::actions(&state.db.read, FEED_SIZE, 0).await?;
    rows.truncate(FEED_SIZE as usize);
    let items: Vec<Item> = rows
        .iter()
        .map(|a| feeds::mod_action_item(&channel.origin, a))
        .collect();
    respond(&req, path.format, &channel, &items).await
}

/// A story's discussion, newest comment first like every feed.
async fn story(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<StoryPath>,
) -> AppResult<HttpResponse> {
    let db = &state.db.read;
    let story = stories::get(db, path.id).await?.ok_or(AppError::NotFound)?;
    if story.deleted_at.is_some() {
        return Err(AppError::Gone);
    }
    if let Some(reason) = &story.removed_reason {
        return Err(crate::web::stories::removed(reason));
    }
    let page = format!("/s/{}/{}", story.id, slug(&story.title));
    let channel = channel(
        &state,
        format!("Comments on “{}”", story.title),
        &page,
        format!("/s/{}", story.id),
    );
    let mut rows = comments::for_story(db, story.id).await?;
    // The thread keeps deleted comments as placeholders; a feed has no use for them.
    rows.retain(|c| !c.is_gone() && c.removed_at.is_none());
    rows.sort_by_key(|c| std::cmp::Reverse((c.created_at, c.id)));
    rows.truncate(FEED_SIZE as usize);
    let items: Vec<Item> = rows
        .iter()
        .map(|c| feeds::comment_item(&channel.origin, c))
        .collect();
    respond(&req, path.format, &channel, &items).await
}

/// Answers a feed URL: the feed for readers, with its validators (an ETag from the body's hash,
/// cheap and right whatever changed: a score, an edit, the order; Last-Modified from the newest
/// item; 304 and no body for a current copy), and for a browser an HTML page about the feed.
async fn respond(
    req: &HttpRequest,
    format: Format,
    channel: &Channel,
    items: &[Item],
) -> AppResult<HttpResponse> {
    if is_browser(req) {
        return feed_page(req, format, channel, items).await;
    }
    let body = feeds::render(format, channel, items);
    let content_type = format.content_type();
    // Weak, because the compression middleware may gzip the body after this tag is set.
    let digest = Sha256::new()
        .chain_update(content_type)
        .chain_update(&body)
        .finalize();
    let etag = EntityTag::new_weak(hex::encode(&digest[..16]));
    // HTTP dates have whole seconds: compare against what the reader was actually sent.
    let last_modified = feeds::last_modified(items)
        .and_then(|t| DateTime::from_timestamp(t.timestamp(), 0))
        .map(|t| HttpDate::from(SystemTime::from(t)));
    let fresh = is_fresh(req, &etag, last_modified);
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header(header::ETag(etag))
        .insert_header((header::CACHE_CONTROL, CACHE_CONTROL))
        .insert_header((header::VARY, "Accept"));
    if let Some(date) = last_modified {
        response.insert_header(header::LastModified(date));
    }
    Ok(shared(if fresh {
        response.finish()
    } else {
        response.content_type(content_type).body(body)
    }))
}

/// Whether a browser, rather than a feed reader, opened the feed's URL. Browsers ask for
/// `text/html` and never name a feed type; readers that mention HTML name the feed types too
/// (FreshRSS/SimplePie: `application/atom+xml, application/rss+xml, ..., text/html;q=0.7, ...`).
fn is_browser(req: &HttpRequest) -> bool {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("text/html")
        && !accept.contains("application/rss+xml")
        && !accept.contains("application/atom+xml")
}

#[derive(Template)]
#[template(path = "feed.html")]
struct FeedPage<'a> {
    page: Layout,
    /// The address to copy into a reader.
    feed_url: String,
    /// The same feed in the other format.
    other_url: String,
    other_format: &'static str,
    page_url: String,
    items: &'a [Item],
}

/// What a person who clicked a feed link sees: what a feed is, its address to copy into a reader,
/// the page it follows and its newest items. (Browsers no longer apply XSLT to a feed, so a styled
/// feed document would show as raw XML or a warning.)
async fn feed_page(
    req: &HttpRequest,
    format: Format,
    channel: &Channel,
    items: &[Item],
) -> AppResult<HttpResponse> {
    let ctx = Ctx::extract(req).await?;
    let other = match format {
        Format::Rss => Format::Atom,
        Format::Atom => Format::Rss,
    };
    let name = |f: Format| match f {
        Format::Rss => "RSS",
        Format::Atom => "Atom",
    };
    let template = FeedPage {
        page: Layout::new(&ctx, format!("{} ({} feed)", channel.title, name(format)))
            .with_feed(channel.feed_path.clone()),
        feed_url: channel.feed_url(format),
        other_url: channel.feed_url(other),
        other_format: name(other),
        page_url: channel.page_url(),
        items,
    };
    let mut response = render(&template)?;
    response
        .headers_mut()
        .insert(header::VARY, header::HeaderValue::from_static("Accept"));
    Ok(shared(response))
}

/// Whether the reader's copy is current. RFC 9110 section 13.2.2: If-None-Match decides when it is
/// present (compared weakly); If-Modified-Since counts only without it.
fn is_fresh(req: &HttpRequest, etag: &EntityTag, last_modified: Option<HttpDate>) -> bool {
    if let Some(wanted) = req.get_header::<IfNoneMatch>() {
        return match wanted {
            IfNoneMatch::Any => true,
            IfNoneMatch::Items(tags) => tags.iter().any(|tag| tag.weak_eq(etag)),
        };
    }
    match (req.get_header::<IfModifiedSince>(), last_modified) {
        (Some(IfModifiedSince(since)), Some(modified)) => {
            SystemTime::from(modified) <= SystemTime::from(since)
        }
        _ => false,
    }
}

/// The owner of a private feed's secret token (the notifications feed's, which the saved feed
/// shares), and the feed's channel: `page` with the token after it.
async fn private_channel(
    state: &AppState,
    token: &str,
    page: &str,
    title: &str,
) -> AppResult<(i64, Channel)> {
    // Reads from the primary: a freshly made token may not have reached a replica yet.
    let owner = crate::db::notifications::feed_owner(&state.db.write, token)
        .await?
        .ok_or(crate::error::AppError::NotFound)?;
    let channel = channel(state, title.into(), page, format!("{page}/{token}"));
    Ok((owner, channel))
}

/// A person's saved stories and comments, at a secret URL shown on their saved page (the same
/// secret as their notifications feed).
async fn saved_feed(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<NamedPath>,
) -> AppResult<HttpResponse> {
    use crate::db::reading::{self, Kept};
    let (owner, channel) = private_channel(
        &state,
        &path.name,
        "/saved",
        "Your saved stories and comments",
    )
    .await?;
    let stories = reading::stories(&state.db.read, owner, Kept::SavedStory, FEED_SIZE).await?;
    let comments = reading::saved_comments(&state.db.read, owner, FEED_SIZE).await?;
    let mut items: Vec<Item> = stories
        .iter()
        .map(|s| feeds::story_item(&channel.origin, s))
        .chain(
            comments
                .iter()
                .map(|c| feeds::comment_item(&channel.origin, c)),
        )
        .collect();
    items.sort_by_key(|item| std::cmp::Reverse(item.published));
    respond(&req, path.format, &channel, &items).await
}

/// A person's replies and mentions, at a secret URL shown on their notifications page (feed
/// readers cannot log in). Reading it marks nothing read.
async fn notifications_feed(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<NamedPath>,
) -> AppResult<HttpResponse> {
    let (owner, channel) =
        private_channel(&state, &path.name, "/notifications", "Your notifications").await?;
    let notes = crate::db::notifications::newest(&state.db.read, owner, FEED_SIZE).await?;
    let ids: Vec<i64> = notes.iter().map(|n| n.comment_id).collect();
    let rows = comments::by_ids(&state.db.read, &ids).await?;
    let mentions =
        crate::db::notifications::newest_remote_mentions(&state.db.read, owner, FEED_SIZE).await?;
    let mut items: Vec<Item> = rows
        .iter()
        .map(|c| feeds::comment_item(&channel.origin, c))
        .chain(
            mentions
                .iter()
                .map(|m| feeds::remote_mention_item(&channel.origin, m)),
        )
        .collect();
    items.sort_by_key(|item| std::cmp::Reverse(item.published));
    items.truncate(FEED_SIZE as usize);
    respond(&req, path.format, &channel, &items).await
}
