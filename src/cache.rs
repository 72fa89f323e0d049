//! What lien keeps in memory so that reading costs little: whole rendered pages for anonymous
//! readers, the story lists and discussions that signed-in pages are built from, and sessions.
//!
//! Everything cached is filed under the current *version*, a number each process keeps and raises
//! whenever what a page could show may have changed; a raised version leaves every older entry
//! unreachable (and the least used entries are evicted by size). The version rises:
//! - when the `content_version` sequence moved (migration 0009: every statement on a shown table
//!   draws from it), which [`watch_changes`] reads every [`POLL`]; so a write by any process, another
//!   replica, `lien worker` or the CLI, is visible everywhere within about two polls;
//! - once more one poll after such a change, for writes whose transaction committed after the poll
//!   that saw their statement;
//! - at once, when this process answered a form that changed something or accepted an activity
//!   in its inbox;
//! - at least every [`MAX_AGE`], so relative times ("3 hours ago") and the windows of `/top` move on.
//!
//! The browser that wrote something reads around every cache for a few seconds (the `lien_wrote`
//! cookie, see `web::session::primary_after_write`), so nobody waits to see their own change. The
//! middleware that answers anonymous readers from here is `web::page_cache`.

use std::{
    hash::Hash,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, Weak,
    },
    time::{Duration, Instant, SystemTime},
};

use actix_web::{
    http::{
        header::{self, HeaderMap, HeaderValue, HttpDate},
        StatusCode,
    },
    web::{self, Bytes},
    HttpRequest, HttpResponse,
};
use quick_cache::{sync::Cache, Weighter};

use crate::{
    app::AppState,
    db::{accounts::Person, comments::Comment, stories::Story},
    error::AppResult,
};

/// How often each process looks for changes made anywhere.
pub const POLL: Duration = Duration::from_millis(250);

/// The oldest anything cached may be.
pub const MAX_AGE: Duration = Duration::from_secs(30);

/// How long tag counts are kept: counting every story's tags takes a second at a million stories,
/// and a count a few minutes old misleads nobody.
const TAG_COUNTS_AGE: Duration = Duration::from_secs(300);

/// Room for rendered pages: a front page is ~25 KB, a 250-comment discussion ~150 KB (each also
/// kept gzipped, at about a tenth).
const PAGE_BYTES: u64 = 24 * 1024 * 1024;

/// A page larger than this is rendered each time rather than crowding out a hundred others.
pub(crate) const MAX_PAGE_BYTES: usize = 1024 * 1024;

/// A signed-in visitor as pages show them: who they are and their unread notifications.
pub struct Viewer {
    pub person: Person,
    pub unread: i64,
}

/// A story with its comments, as its page needs them.
pub struct Discussion {
    pub story: Story,
    pub comments: Vec<Comment>,
}

/// A rendered response, as every anonymous reader of its URL gets it.
pub struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    /// The body compressed once, for the readers that take gzip (every browser and feed reader):
    /// compressing each time would cost more than the rest of answering from memory.
    gzipped: Bytes,
}

impl Page {
    pub(crate) fn new(status: StatusCode, headers: HeaderMap, body: Bytes) -> Page {
        use std::io::Write;
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let gzipped = gzip
            .write_all(&body)
            .and_then(|()| gzip.finish())
            .map(Bytes::from)
            .unwrap_or_default();
        Page {
            status,
            headers,
            body,
            gzipped,
        }
    }
}

#[derive(Clone)]
pub(crate) struct PageWeight;

impl Weighter<(u64, String), Arc<Page>> for PageWeight {
    fn weight(&self, key: &(u64, String), page: &Arc<Page>) -> u64 {
        // The key and the headers count too, roughly.
        (page.body.len() + page.gzipped.len() + key.1.len() + 512) as u64
    }
}

/// Room for sessions. Every change raises the version and so files each active session anew:
/// bounded by count alone (10,000 people with 2 KB bios), they could hold 25 MB of stale copies.
const SESSION_BYTES: u64 = 2 * 1024 * 1024;

/// Room for the URLs whose renderings are not run side by side (a path and query each).
const SHARED_URL_BYTES: u64 = 1024 * 1024;

#[derive(Clone)]
struct SessionWeight;

impl Weighter<(u64, String), Option<Arc<Viewer>>> for SessionWeight {
    fn weight(&self, key: &(u64, String), viewer: &Option<Arc<Viewer>>) -> u64 {
        let person = viewer.as_ref().map_or(0, |v| {
            let p = &v.person;
            300 + p.name.len()
                + p.host.as_ref().map_or(0, String::len)
                + p.ap_id.len()
                + p.display_name.len()
                + p.bio.len()
                + p.avatar_url.as_ref().map_or(0, String::len)
                + p.role.len()
        });
        (64 + key.1.len() + person) as u64
    }
}

#[derive(Clone)]
pub(crate) struct UrlWeight;

impl Weighter<String, ()> for UrlWeight {
    fn weight(&self, key: &String, _: &()) -> u64 {
        (48 + key.len()) as u64
    }
}

/// Room for the story lists and discussions signed-in pages are built from.
const ROWS_BYTES: u64 = 12 * 1024 * 1024;

/// Roughly what rows take in memory: their text and a fixed share for the rest.
#[derive(Clone)]
struct RowsWeight;

fn story_bytes(s: &Story) -> usize {
    400 + s.ap_id.len()
        + s.title.len()
        + s.body.len()
        + s.body_html.len()
        + s.url.as_ref().map_or(0, String::len)
        + s.tags.iter().map(|t| t.len() + 24).sum::<usize>()
}

impl Weighter<(u64, String), Arc<Vec<Story>>> for RowsWeight {
    fn weight(&self, key: &(u64, String), rows: &Arc<Vec<Story>>) -> u64 {
        (key.1.len() + rows.iter().map(story_bytes).sum::<usize>()) as u64
    }
}

impl Weighter<(u64, i64), Arc<Discussion>> for RowsWeight {
    fn weight(&self, _: &(u64, i64), d: &Arc<Discussion>) -> u64 {
        let comments: usize = d
            .comments
            .iter()
            .map(|c| 300 + c.ap_id.len() + c.story_title.len() + c.body.len() + c.body_html.len())
            .sum();
        (story_bytes(&d.story) + comments) as u64
    }
}

/// Marks a response as the same for every anonymous reader of its URL, so that it may be cached.
/// Only handlers that know this set it; everything else is never cached.
#[derive(Clone, Copy)]
pub struct Shared;

/// Marks `response` as [`Shared`].
pub fn shared(mut response: HttpResponse) -> HttpResponse {
    response.extensions_mut().insert(Shared);
    response
}

/// Every tag with its number of stories, most used first.
pub type TagCounts = Arc<Vec<(String, i64)>>;

pub struct Caches {
    version: AtomicU64,
    pub(crate) pages: Cache<(u64, String), Arc<Page>, PageWeight>,
    lists: Cache<(u64, String), Arc<Vec<Story>>, RowsWeight>,
    discussions: Cache<(u64, i64), Arc<Discussion>, RowsWeight>,
    sessions: Cache<(u64, String), Option<Arc<Viewer>>, SessionWeight>,
    /// The URLs (page keys without the version) whose page was cached before: their renderings
    /// are not run side by side.
    pub(crate) shared_urls: Cache<String, (), UrlWeight>,
    /// When the tags were last counted, and the counts.
    tag_counts: Mutex<Option<(Instant, TagCounts)>>,
}

impl Default for Caches {
    fn default() -> Self {
        Caches {
            version: AtomicU64::new(0),
            pages: Cache::with_weighter(2_000, PAGE_BYTES, PageWeight),
            lists: Cache::with_weighter(200, ROWS_BYTES / 2, RowsWeight),
            discussions: Cache::with_weighter(200, ROWS_BYTES / 2, RowsWeight),
            sessions: Cache::with_weighter(10_000, SESSION_BYTES, SessionWeight),
            shared_urls: Cache::with_weighter(10_000, SHARED_URL_BYTES, UrlWeight),
            tag_counts: Mutex::new(None),
        }
    }
}

impl Caches {
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Leaves everything cached so far behind.
    pub fn invalidate(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    /// A story list through the cache, filed under `key` (the list's path and page).
    pub async fn list<F>(&self, key: String, bypass: bool, load: F) -> AppResult<Arc<Vec<Story>>>
    where
        F: std::future::Future<Output = sqlx::Result<Vec<Story>>>,
    {
        through(&self.lists, (self.version(), key), bypass, async {
            Ok(Arc::new(load.await?))
        })
        .await
    }

    /// A story and its comments through the cache.
    pub async fn discussion<F>(&self, id: i64, bypass: bool, load: F) -> AppResult<Arc<Discussion>>
    where
        F: std::future::Future<Output = AppResult<Discussion>>,
    {
        through(&self.discussions, (self.version(), id), bypass, async {
            Ok(Arc::new(load.await?))
        })
        .await
    }

    /// The session behind a cookie's token (None: no such session) through the cache.
    pub async fn session<F>(&self, token: &str, load: F) -> AppResult<Option<Arc<Viewer>>>
    where
        F: std::future::Future<Output = AppResult<Option<Viewer>>>,
    {
        through(
            &self.sessions,
            (self.version(), token.to_owned()),
            false,
            async { Ok(load.await?.map(Arc::new)) },
        )
        .await
    }

    /// Every tag with its number of stories, counted at most every few minutes.
    pub async fn tag_counts<F>(&self, bypass: bool, load: F) -> AppResult<TagCounts>
    where
        F: std::future::Future<Output = sqlx::Result<Vec<(String, i64)>>>,
    {
        if bypass {
            return Ok(Arc::new(load.await?));
        }
        let kept = self.tag_counts.lock().expect("tag counts lock").clone();
        if let Some((counted, tags)) = kept {
            if counted.elapsed() < TAG_COUNTS_AGE {
                return Ok(tags);
            }
        }
        let tags = Arc::new(load.await?);
        *self.tag_counts.lock().expect("tag counts lock") = Some((Instant::now(), tags.clone()));
        Ok(tags)
    }
}

/// The cached value under `key`, or what `load` gives (then cached). `bypass`: a reader who must
/// see their own write; they load for themselves, and what they read (perhaps from the primary,
/// ahead of the replica everyone else reads) is not kept for others.
async fn through<K, V, W, F>(cache: &Cache<K, V, W>, key: K, bypass: bool, load: F) -> AppResult<V>
where
    K: Eq + Hash,
    V: Clone,
    W: Weighter<K, V> + Clone,
    F: std::future::Future<Output = AppResult<V>>,
{
    if bypass {
        return load.await;
    }
    if let Some(value) = cache.get(&key) {
        return Ok(value);
    }
    let value = load.await?;
    cache.insert(key, value.clone());
    Ok(value)
}

/// Runs for as long as the application state lives: raises the version when the database's
/// `content_version` moved, one poll later again, and every [`MAX_AGE`].
pub fn watch_changes(state: &web::Data<AppState>) {
    let state: Weak<AppState> = Arc::downgrade(&state.clone().into_inner());
    tokio::spawn(async move {
        let mut seen: Option<i64> = None;
        let mut settle = false;
        let mut raised = Instant::now();
        let mut ticks = tokio::time::interval(POLL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(state) = state.upgrade() else { return };
            let now: Option<i64> = sqlx::query_scalar("select last_value from content_version")
                .fetch_one(&state.db.write)
                .await
                .inspect_err(|error| tracing::debug!(%error, "reading content_version"))
                .ok();
            // With no answer from the database nothing can be known to be fresh: keep nothing.
            let changed = now.is_none() || now != seen;
            if changed || settle || raised.elapsed() >= MAX_AGE {
                state.caches.invalidate();
                raised = Instant::now();
            }
            // Once more at the next poll: a transaction may commit after the poll that saw its
            // statement, and pages rendered in between would otherwise keep its old state.
            settle = changed;
            seen = now.or(seen);
        }
    });
}

/// Whether the reader takes gzip (`Accept-Encoding: gzip`, `gzip;q=0.8`, not `gzip;q=0`).
fn accepts_gzip(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let weight = |p: &str| p.strip_prefix("q=").map(|q| q.trim().parse::<f32>());
            parts
                .next()
                .is_some_and(|name| name.eq_ignore_ascii_case("gzip"))
                && parts.all(|p| !matches!(weight(p), Some(Ok(q)) if q <= 0.0))
        })
}

impl Page {
    /// The cached response, or 304 when the reader's copy is still current.
    pub(crate) fn answer(&self, req: &HttpRequest) -> HttpResponse {
        let mut response = if self.still_current(req) {
            let mut response = HttpResponse::NotModified().finish();
            for name in [header::ETAG, header::LAST_MODIFIED, header::CACHE_CONTROL] {
                if let Some(value) = self.headers.get(&name) {
                    response.headers_mut().insert(name, value.clone());
                }
            }
            response
        } else {
            let gzip = !self.gzipped.is_empty() && accepts_gzip(req);
            let body = if gzip { &self.gzipped } else { &self.body };
            let mut response = HttpResponse::with_body(self.status, body.clone());
            let headers = response.headers_mut();
            for (name, value) in &self.headers {
                headers.append(name.clone(), value.clone());
            }
            if gzip {
                // Already encoded: the compression middleware leaves such a response alone.
                headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
            response.map_into_boxed_body()
        };
        response.extensions_mut().insert(Shared);
        response
    }

    /// A conditional GET naming this very version (by its ETag or, failing that, its date).
    fn still_current(&self, req: &HttpRequest) -> bool {
        let asked = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
        if let Some(tags) = asked(header::IF_NONE_MATCH) {
            let ours = self.headers.get(header::ETAG).and_then(|v| v.to_str().ok());
            return ours.is_some_and(|ours| tags.split(',').any(|tag| tag.trim() == ours));
        }
        let date = |value: Option<&str>| {
            value
                .and_then(|v| v.parse::<HttpDate>().ok())
                .map(SystemTime::from)
        };
        let modified = date(
            self.headers
                .get(header::LAST_MODIFIED)
                .and_then(|v| v.to_str().ok()),
        );
        match (modified, date(asked(header::IF_MODIFIED_SINCE))) {
            (Some(modified), Some(since)) => modified <= since,
            _ => false,
        }
    }
}
