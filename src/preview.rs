//! Link previews (issue 5): lien fetches a shared link's page in the background, reads what the
//! page says about itself (OpenGraph, else Twitter card, else plain HTML), and keeps a small
//! thumbnail of its image that lien serves itself at `/media/{name}`.
//!
//! The job is a `link_preview` row queued in the same transaction as the story
//! (`db::previews::enqueue`); workers ([`run`], beside the delivery workers in `lien worker` and
//! `lien serve`) claim due rows with `FOR UPDATE SKIP LOCKED` under a lease. Every fetch goes
//! through [`crate::fetch`]: public addresses only, 10 s, 3 redirects, 2 MB of HTML and 5 MB of
//! image at most. A failure for a passing reason (timeout, 5xx) is retried twice; any other
//! failure, or the third, leaves the story without a preview. Nothing here ever runs inside a
//! web request, except the short title lookup of the submit form ([`page_title`]).

use std::{
    collections::HashMap,
    future::Future,
    io::Cursor,
    path::{Path, PathBuf},
    sync::{LazyLock, Mutex},
    time::{Duration, Instant},
};

use actix_web::web;
use anyhow::Context;
use image::{codecs::jpeg::JpegEncoder, DynamicImage, ImageFormat, ImageReader};
use scraper::{Html, Selector};
use sha2::{Digest, Sha256};
use tokio::{
    sync::{Semaphore, SemaphorePermit},
    task::JoinSet,
};
use url::Url;

use crate::{
    app::AppState,
    config::Config,
    db::previews::{self, Found, Job},
    fetch::{FetchError, Fetcher, Guard, Limits},
};

/// Previews fetched at once, per worker.
const MAX_IN_FLIGHT: usize = 4;

/// How often an idle worker looks for due rows.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// One job, page and image, ends after this even if every step stays within its own limit.
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// Thumbnails fit in a square this many pixels wide.
pub const THUMBNAIL_SIZE: u32 = 240;

/// Images this small are tracking pixels or spacers, not pictures.
const MIN_IMAGE_SIDE: u32 = 16;

/// Images larger than this are not decoded: a few megabytes of PNG can claim gigapixels.
const MAX_IMAGE_SIDE: u32 = 8192;

/// Memory a decoder may take for one image.
const MAX_DECODE_BYTES: u64 = 128 * 1024 * 1024;

const MAX_TITLE: usize = 300;
const MAX_DESCRIPTION: usize = 500;

/// The submit form's title lookup is quick or nothing: someone is waiting for it.
const TITLE_LIMITS: Limits = Limits {
    timeout: Duration::from_secs(4),
    max_bytes: 512 * 1024,
    ..Limits::PAGE
};

/// What a page says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    pub title: Option<String>,
    pub description: Option<String>,
    /// The preview image, absolute.
    pub image: Option<Url>,
    pub canonical: Option<Url>,
}

impl Metadata {
    /// Nothing worth showing.
    pub fn is_empty(&self) -> bool {
        self.title.is_none() && self.description.is_none() && self.image.is_none()
    }
}

/// Reads a page's metadata: OpenGraph first, then Twitter card, then plain HTML (`<title>`,
/// `<meta name="description">`, `<link rel="canonical">`, `<link rel="image_src">`). Relative
/// URLs resolve against `<base href>` or else `page`, the URL the page came from.
pub fn parse_metadata(html: &str, page: &Url) -> Metadata {
    let document = Html::parse_document(html);
    let select = |css: &str| Selector::parse(css).expect("static selector");
    let base = document
        .select(&select("base[href]"))
        .next()
        .and_then(|b| b.value().attr("href"))
        .and_then(|href| page.join(href.trim()).ok())
        .unwrap_or_else(|| page.clone());

    // Every <meta property|name=… content=…>, keyed by lowercase name; the first of each wins.
    let mut meta: HashMap<String, String> = HashMap::new();
    for element in document.select(&select("meta[content]")) {
        let element = element.value();
        let content = element.attr("content").unwrap_or_default();
        for key in [element.attr("property"), element.attr("name")]
            .into_iter()
            .flatten()
        {
            meta.entry(key.trim().to_ascii_lowercase())
                .or_insert_with(|| content.to_owned());
        }
    }
    let first = |keys: &[&str]| {
        keys.iter()
            .filter_map(|key| meta.get(*key))
            .map(|value| clean_text(value))
            .find(|value| !value.is_empty())
    };
    // <link rel="…"> by one of its space-separated, case-insensitive tokens.
    let link = |rel: &str| {
        document
            .select(&select("link[rel][href]"))
            .find(|l| {
                l.value()
                    .attr("rel")
                    .unwrap_or_default()
                    .split_ascii_whitespace()
                    .any(|token| token.eq_ignore_ascii_case(rel))
            })
            .and_then(|l| l.value().attr("href"))
            .map(str::to_owned)
    };
    let absolute = |href: String| {
        base.join(href.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
    };

    let title = first(&["og:title", "twitter:title"]).or_else(|| {
        document
            .select(&select("title"))
            .next()
            .map(|t| clean_text(&t.text().collect::<String>()))
            .filter(|t| !t.is_empty())
    });
    let description = first(&["og:description", "twitter:description", "description"]);
    let image = first(&[
        "og:image",
        "og:image:url",
        "og:image:secure_url",
        "twitter:image",
        "twitter:image:src",
    ])
    .or_else(|| link("image_src"))
    .and_then(absolute);
    let canonical = link("canonical")
        .or_else(|| first(&["og:url"]))
        .and_then(absolute);
    Metadata {
        title: title.map(|t| shorten(&t, MAX_TITLE)),
        description: description.map(|d| shorten(&d, MAX_DESCRIPTION)),
        image,
        canonical,
    }
}

/// Whitespace collapsed to single spaces, control characters dropped.
fn clean_text(text: &str) -> String {
    text.split_whitespace()
        .map(|word| word.chars().filter(|c| !c.is_control()).collect::<String>())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// At most `max` characters, cut at a word with an ellipsis when it had to be cut.
/// A page's text, without the characters lien refuses (see [`crate::input`]), cut to `max`.
fn shorten(text: &str, max: usize) -> String {
    let text = crate::input::strip_refused(text);
    if text.chars().count() <= max {
        return text.into_owned();
    }
    let cut: String = text.chars().take(max - 1).collect();
    let cut = match cut.rfind(' ') {
        Some(space) if space > cut.len() / 2 => &cut[..space],
        _ => &cut,
    };
    format!("{}…", cut.trim_end_matches([' ', ',', '.', ';', ':']))
}

/// A page's text, decoded by the charset its `Content-Type` names, else the one a `<meta>` in its
/// first kilobyte names, else UTF-8 (a byte-order mark wins over both).
pub fn decode_html(body: &[u8], content_type: &str) -> String {
    let head = String::from_utf8_lossy(&body[..body.len().min(1024)]).to_ascii_lowercase();
    let label = charset_in(&content_type.to_ascii_lowercase()).or_else(|| charset_in(&head));
    let encoding = label
        .and_then(|label| encoding_rs::Encoding::for_label(label.as_bytes()))
        .unwrap_or(encoding_rs::UTF_8);
    encoding.decode(body).0.into_owned()
}

fn charset_in(text: &str) -> Option<String> {
    let rest = &text[text.find("charset=")? + "charset=".len()..];
    let label: String = rest
        .trim_start_matches(['"', '\''])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
        .collect();
    (!label.is_empty()).then_some(label)
}

/// A thumbnail ready to store: JPEG, or PNG for an image with transparency.
#[derive(Debug)]
pub struct Thumbnail {
    pub bytes: Vec<u8>,
    pub extension: &'static str,
}

/// Shrinks an image (PNG, JPEG, GIF or WebP, whatever its Content-Type said) to fit in
/// `THUMBNAIL_SIZE` pixels square. Refuses other formats, tiny images, and images whose size
/// would make decoding them expensive. CPU-bound: call it off the async runtime.
pub fn make_thumbnail(bytes: &[u8]) -> anyhow::Result<Thumbnail> {
    shrink_image(bytes, THUMBNAIL_SIZE)
}

/// [`make_thumbnail`] to fit in `side` pixels square (avatars are smaller than thumbnails).
pub fn shrink_image(bytes: &[u8], side: u32) -> anyhow::Result<Thumbnail> {
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format()?;
    match reader.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP) => {}
        other => anyhow::bail!("not an image lien makes thumbnails of ({other:?})"),
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let image = reader.decode().context("decoding the image")?;
    if image.width() < MIN_IMAGE_SIDE || image.height() < MIN_IMAGE_SIDE {
        anyhow::bail!("a {}×{} image is too small", image.width(), image.height());
    }
    let image = if image.width() > side || image.height() > side {
        image.thumbnail(side, side)
    } else {
        image
    };
    let mut bytes = Vec::new();
    let extension = if image.color().has_alpha() {
        DynamicImage::ImageRgba8(image.to_rgba8())
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)?;
        "png"
    } else {
        JpegEncoder::new_with_quality(&mut bytes, 82).encode_image(&image.to_rgb8())?;
        "jpg"
    };
    Ok(Thumbnail { bytes, extension })
}

/// Where thumbnails live: `LIEN_DATA_DIR/media`. Web and worker processes must share it.
pub fn media_dir(config: &Config) -> PathBuf {
    config.data_dir.join("media")
}

/// Stores a thumbnail under its content's SHA-256 and returns its file name. The same image
/// shared twice is stored once; a file is written whole under a temporary name, then renamed, so
/// it is never served half written.
pub async fn store_thumbnail(dir: &Path, thumbnail: &Thumbnail) -> std::io::Result<String> {
    let name = format!(
        "{}.{}",
        hex::encode(Sha256::digest(&thumbnail.bytes)),
        thumbnail.extension
    );
    if tokio::fs::try_exists(dir.join(&name)).await? {
        return Ok(name);
    }
    store_media(dir, &name, &thumbnail.bytes).await?;
    Ok(name)
}

/// Writes a media file whole under a temporary name, then renames it into place, so that it is
/// never served half written (and a file being replaced is served old until then).
pub async fn store_media(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    let partial = dir.join(format!(".{name}.{}", uuid::Uuid::new_v4().simple()));
    tokio::fs::write(&partial, bytes).await?;
    if let Err(error) = tokio::fs::rename(&partial, dir.join(name)).await {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(error);
    }
    Ok(())
}

/// The content type of a media file name lien could have written, or None for anything else:
/// exactly 64 lowercase hex digits, a dot and `jpg` or `png`. No path, no `..`, nothing hidden.
pub fn media_type(name: &str) -> Option<&'static str> {
    let (hash, extension) = name.split_once('.')?;
    if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    match extension {
        "jpg" => Some("image/jpeg"),
        "png" => Some("image/png"),
        _ => None,
    }
}

/// The User-Agent of preview fetches: browser-compatible (some sites only give their metadata to
/// what looks like one) and naming lien and the instance, as Mastodon's does.
pub fn user_agent(config: &Config) -> String {
    format!(
        "Mozilla/5.0 (compatible; lien/{}; +{})",
        env!("CARGO_PKG_VERSION"),
        config.origin()
    )
}

/// The title of the page at `url`, for the submit form: a short fetch, no thumbnail, nothing
/// stored.
pub async fn page_title(config: &Config, url: &Url) -> Result<Option<String>, FetchError> {
    let fetcher = Fetcher::new(Guard::new(config.dev), &user_agent(config))
        .map_err(|e| FetchError::Network(e.to_string()))?;
    let page = fetcher.get(url, &TITLE_LIMITS).await?;
    let metadata = tokio::task::spawn_blocking(move || {
        parse_metadata(&decode_html(&page.body, &page.content_type), &page.url)
    })
    .await
    .map_err(|e| FetchError::Network(e.to_string()))?;
    Ok(metadata.title)
}

/// Title lookups one person may make per minute.
const TITLE_LOOKUPS_PER_MINUTE: u32 = 10;

/// Title lookups in flight at once in one process, whoever asks.
static TITLE_LOOKUP_SLOTS: Semaphore = Semaphore::const_new(8);

/// Title lookups made in the current minute, by person.
static TITLE_LOOKUPS: LazyLock<Mutex<HashMap<String, (Instant, u32)>>> =
    LazyLock::new(Mutex::default);

/// Lets one title lookup by `person` (their ActivityPub id) go ahead, or None when they made
/// too many this minute or too many lookups are in flight. Hold the permit while fetching.
pub fn admit_title_lookup(person: &str) -> Option<SemaphorePermit<'static>> {
    {
        let mut recent = TITLE_LOOKUPS.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if recent.len() > 10_000 {
            recent.retain(|_, (since, _)| now.duration_since(*since) < Duration::from_secs(60));
        }
        let (since, count) = recent.entry(person.to_owned()).or_insert((now, 0));
        if now.duration_since(*since) >= Duration::from_secs(60) {
            (*since, *count) = (now, 0);
        }
        if *count >= TITLE_LOOKUPS_PER_MINUTE {
            return None;
        }
        *count += 1;
    }
    TITLE_LOOKUP_SLOTS.try_acquire().ok()
}

/// What one [`run_due`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcomes {
    /// Previews stored.
    pub ready: usize,
    /// Failed for a passing reason; due again after a backoff.
    pub retrying: usize,
    /// Failed for good: those stories show without a preview.
    pub failed: usize,
}

impl Outcomes {
    fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Ready => self.ready += 1,
            Outcome::Retrying => self.retrying += 1,
            Outcome::Failed => self.failed += 1,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Ready,
    Retrying,
    Failed,
}

impl Outcome {
    /// The `outcome` label of `lien_preview_jobs_total`.
    fn label(self) -> &'static str {
        match self {
            Outcome::Ready => "ready",
            Outcome::Retrying => "retrying",
            Outcome::Failed => "failed",
        }
    }
}

/// Why a preview failed, and whether trying later might help.
struct Failure {
    message: String,
    transient: bool,
}

impl From<FetchError> for Failure {
    fn from(error: FetchError) -> Failure {
        Failure {
            transient: error.is_transient(),
            message: error.to_string(),
        }
    }
}

/// Everything a preview job needs; cheap to clone into each task.
#[derive(Clone)]
struct Previewer {
    fetcher: Fetcher,
    pool: sqlx::PgPool,
    media: PathBuf,
    /// To tell the followers of a local story what its link's page says, once that is known.
    state: web::Data<AppState>,
}

impl Previewer {
    fn new(state: &web::Data<AppState>) -> anyhow::Result<Previewer> {
        Ok(Previewer {
            fetcher: Fetcher::new(Guard::new(state.config.dev), &user_agent(&state.config))?,
            pool: state.db.write.clone(),
            media: media_dir(&state.config),
            state: state.clone(),
        })
    }

    /// Does one claimed job and records how it went.
    async fn preview(self, job: Job) -> Outcome {
        let result = if job.story_gone {
            Err(Failure {
                message: "the story was deleted".into(),
                transient: false,
            })
        } else {
            match tokio::time::timeout(JOB_TIMEOUT, self.fetch(&job.url)).await {
                Ok(result) => result,
                Err(_) => Err(Failure {
                    message: format!("not done within {JOB_TIMEOUT:?}"),
                    transient: true,
                }),
            }
        };
        let (outcome, recorded) = match result {
            Ok(found) => {
                tracing::debug!(story = job.story_id, url = job.url, "preview ready");
                let recorded = previews::record_ready(&self.pool, &job, &found).await;
                // The story's `Create` went out before this was known: an `Update` carries the
                // description and thumbnail to everyone who got it (README, "Link previews").
                let news = found.description.is_some() || found.image.is_some();
                if matches!(recorded, Ok(true)) && news {
                    if let Err(error) =
                        crate::federation::outbox::preview_ready(&self.state, job.story_id).await
                    {
                        tracing::error!(story = job.story_id, %error, "could not send the preview");
                    }
                }
                (Outcome::Ready, recorded.map(drop))
            }
            Err(failure) => {
                let retry = failure.transient && job.attempts < previews::MAX_ATTEMPTS;
                tracing::info!(
                    story = job.story_id,
                    url = job.url,
                    attempts = job.attempts,
                    error = failure.message,
                    retry,
                    "no preview"
                );
                let outcome = if retry {
                    Outcome::Retrying
                } else {
                    Outcome::Failed
                };
                let recorded =
                    previews::record_failure(&self.pool, &job, &failure.message, retry).await;
                (outcome, recorded)
            }
        };
        if let Err(error) = recorded {
            // The lease runs out and the job is tried again.
            tracing::error!(story = job.story_id, %error, "could not record a preview");
        }
        crate::metrics::preview_outcome(outcome.label());
        outcome
    }

    /// Fetches the page, reads it, and makes the thumbnail if it names an image.
    async fn fetch(&self, url: &str) -> Result<Found, Failure> {
        let url: Url = url.parse().map_err(|_| Failure {
            message: "not a URL".into(),
            transient: false,
        })?;
        let page = self.fetcher.get(&url, &Limits::PAGE).await?;
        let metadata = tokio::task::spawn_blocking(move || {
            parse_metadata(&decode_html(&page.body, &page.content_type), &page.url)
        })
        .await
        .map_err(|e| Failure {
            message: format!("reading the page failed: {e}"),
            transient: false,
        })?;
        if metadata.is_empty() {
            return Err(Failure {
                message: "the page has no title, description or image".into(),
                transient: false,
            });
        }
        // A page whose image cannot be had still has its preview, without a thumbnail.
        let image = match &metadata.image {
            Some(src) => match self.thumbnail(src).await {
                Ok(name) => Some(name),
                Err(error) => {
                    tracing::debug!(image = %src, error = format!("{error:#}"), "no thumbnail");
                    None
                }
            },
            None => None,
        };
        Ok(Found {
            title: metadata.title,
            description: metadata.description,
            image,
            canonical_url: metadata.canonical.map(String::from),
        })
    }

    async fn thumbnail(&self, src: &Url) -> anyhow::Result<String> {
        let fetched = self.fetcher.get(src, &Limits::IMAGE).await?;
        let thumbnail =
            tokio::task::spawn_blocking(move || make_thumbnail(&fetched.body)).await??;
        store_thumbnail(&self.media, &thumbnail)
            .await
            .with_context(|| format!("storing a thumbnail in {}", self.media.display()))
    }
}

/// Claims up to `limit` due preview jobs and does them, at most 4 at once, until `limit` were
/// claimed or none is due; returns what happened. For tests and tools; the worker ([`run`])
/// keeps going instead.
pub async fn run_due(state: &web::Data<AppState>, limit: i64) -> anyhow::Result<Outcomes> {
    let previewer = Previewer::new(state)?;
    let mut in_flight = JoinSet::new();
    let mut outcomes = Outcomes::default();
    let mut left = limit.max(0) as usize;
    loop {
        let room = MAX_IN_FLIGHT.saturating_sub(in_flight.len()).min(left);
        if room > 0 {
            let jobs = previews::claim(&previewer.pool, room as i64).await?;
            left -= jobs.len();
            for job in jobs {
                in_flight.spawn(previewer.clone().preview(job));
            }
        }
        match in_flight.join_next().await {
            Some(Ok(outcome)) => outcomes.count(outcome),
            Some(Err(error)) => tracing::error!(%error, "a preview task failed"),
            None => return Ok(outcomes),
        }
    }
}

/// The worker: does due previews, at most 4 at once, looking for due rows every 2 seconds when
/// idle, until `shutdown` resolves. Then it stops at once: the jobs in flight are abandoned and
/// handed back uncounted, to be done again by whichever worker runs next.
pub async fn run(state: web::Data<AppState>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let previewer = match Previewer::new(&state) {
        Ok(previewer) => previewer,
        Err(error) => {
            tracing::error!(
                error = format!("{error:#}"),
                "the preview worker cannot start"
            );
            shutdown.await;
            return;
        }
    };
    tracing::info!("the preview worker is running");
    let mut in_flight = JoinSet::new();
    let mut stories: HashMap<tokio::task::Id, i64> = HashMap::new();
    loop {
        let room = MAX_IN_FLIGHT.saturating_sub(in_flight.len());
        if room > 0 {
            match previews::claim(&previewer.pool, room as i64).await {
                Ok(jobs) => {
                    for job in jobs {
                        let story = job.story_id;
                        let task = in_flight.spawn(previewer.clone().preview(job));
                        stories.insert(task.id(), story);
                    }
                }
                Err(error) => tracing::warn!(%error, "could not claim preview jobs"),
            }
        }
        let full = in_flight.len() >= MAX_IN_FLIGHT;
        tokio::select! {
            _ = &mut shutdown => break,
            Some(done) = in_flight.join_next_with_id() => {
                let id = match done {
                    Ok((id, _)) => id,
                    Err(error) => {
                        tracing::error!(%error, "a preview task failed");
                        error.id()
                    }
                };
                stories.remove(&id);
            }
            _ = tokio::time::sleep(POLL_INTERVAL), if !full => {}
        }
    }
    in_flight.abort_all();
    while in_flight.join_next().await.is_some() {}
    let abandoned: Vec<i64> = stories.into_values().collect();
    if !abandoned.is_empty() {
        if let Err(error) = previews::release(&previewer.pool, &abandoned).await {
            tracing::warn!(%error, "could not hand back preview jobs; their lease will run out");
        }
    }
    tracing::info!("the preview worker stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Url {
        "https://news.example/articles/42?ref=x".parse().unwrap()
    }

    #[test]
    fn opengraph_comes_first() {
        let html = r#"<html><head>
            <title>Plain title</title>
            <meta name="description" content="Plain description">
            <meta name="twitter:title" content="Twitter title">
            <meta property="og:title" content="  OpenGraph
                title ">
            <meta property="og:description" content="OpenGraph description">
            <meta property="og:image" content="/img/cover.png">
            <meta property="og:url" content="https://news.example/a/42">
            <link rel="canonical" href="https://news.example/articles/42">
        </head><body></body></html>"#;
        let metadata = parse_metadata(html, &page());
        assert_eq!(metadata.title.as_deref(), Some("OpenGraph title"));
        assert_eq!(
            metadata.description.as_deref(),
            Some("OpenGraph description")
        );
        assert_eq!(
            metadata.image.unwrap().as_str(),
            "https://news.example/img/cover.png"
        );
        assert_eq!(
            metadata.canonical.unwrap().as_str(),
            "https://news.example/articles/42"
        );
    }

    #[test]
    fn twitter_cards_then_plain_html() {
        let html = r#"<head><title>Plain &amp; simple</title>
            <meta name="twitter:description" content="From the card">
            <meta name="twitter:image" content="pics/a.jpg">
            <meta name="Description" content="Plain description"></head>"#;
        let metadata = parse_metadata(html, &page());
        assert_eq!(metadata.title.as_deref(), Some("Plain & simple"));
        assert_eq!(metadata.description.as_deref(), Some("From the card"));
        assert_eq!(
            metadata.image.unwrap().as_str(),
            "https://news.example/articles/pics/a.jpg"
        );

        let html = r#"<title>Only</title><meta name="description" content="Said plainly">
            <link rel="Shortcut image_src" href="//cdn.example/x.gif">
            <link rel="canonical" href="/articles/42">"#;
        let metadata = parse_metadata(html, &page());
        assert_eq!(metadata.title.as_deref(), Some("Only"));
        assert_eq!(metadata.description.as_deref(), Some("Said plainly"));
        assert_eq!(
            metadata.image.unwrap().as_str(),
            "https://cdn.example/x.gif"
        );
        assert_eq!(
            metadata.canonical.unwrap().as_str(),
            "https://news.example/articles/42"
        );
    }

    #[test]
    fn base_href_and_bad_urls() {
        let html = r#"<base href="https://static.example/assets/">
            <meta property="og:image" content="cover.webp">
            <meta property="og:url" content="javascript:alert(1)">"#;
        let metadata = parse_metadata(html, &page());
        assert_eq!(
            metadata.image.unwrap().as_str(),
            "https://static.example/assets/cover.webp"
        );
        assert_eq!(metadata.canonical, None);
        assert!(parse_metadata("<p>nothing here</p>", &page()).is_empty());
        let data = parse_metadata(
            r#"<meta property="og:image" content="data:image/png;base64,AAAA">"#,
            &page(),
        );
        assert_eq!(data.image, None);
    }

    #[test]
    fn long_text_is_shortened() {
        let long = "word ".repeat(200);
        let html = format!(r#"<meta property="og:description" content="{long}">"#);
        let description = parse_metadata(&html, &page()).description.unwrap();
        assert!(description.chars().count() <= MAX_DESCRIPTION);
        assert!(description.ends_with("word…"));
    }

    #[test]
    fn charsets_are_honoured() {
        let latin1 = b"<title>Caf\xe9</title>";
        assert_eq!(
            decode_html(latin1, "text/html; charset=ISO-8859-1"),
            "<title>Café</title>"
        );
        let sniffed = b"<meta charset=\"windows-1252\"><title>Caf\xe9</title>";
        assert!(decode_html(sniffed, "text/html").contains("Café"));
        assert_eq!(decode_html("Café".as_bytes(), "text/html"), "Café");
    }

    #[test]
    fn media_names_are_strict() {
        let hash = "a".repeat(64);
        assert_eq!(media_type(&format!("{hash}.jpg")), Some("image/jpeg"));
        assert_eq!(media_type(&format!("{hash}.png")), Some("image/png"));
        for bad in [
            format!("{hash}.svg"),
            format!("{hash}.jpg.png"),
            format!("../{}.jpg", &hash[..61]),
            format!("{}.jpg", "A".repeat(64)),
            format!("{}.jpg", "a".repeat(63)),
            "..".to_owned(),
            ".".to_owned(),
            String::new(),
            format!("{hash}/x.jpg"),
        ] {
            assert_eq!(media_type(&bad), None, "{bad}");
        }
    }

    fn png(width: u32, height: u32, alpha: bool) -> Vec<u8> {
        let image = if alpha {
            DynamicImage::new_rgba8(width, height)
        } else {
            DynamicImage::new_rgb8(width, height)
        };
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .unwrap();
        bytes
    }

    #[test]
    fn thumbnails_are_small() {
        let thumbnail = make_thumbnail(&png(1200, 630, false)).unwrap();
        assert_eq!(thumbnail.extension, "jpg");
        let image = image::load_from_memory(&thumbnail.bytes).unwrap();
        assert_eq!((image.width(), image.height()), (240, 126));

        let thumbnail = make_thumbnail(&png(100, 400, true)).unwrap();
        assert_eq!(thumbnail.extension, "png");
        let image = image::load_from_memory(&thumbnail.bytes).unwrap();
        assert_eq!((image.width(), image.height()), (60, 240));

        // Small images stay as they are; tiny ones and non-images are refused.
        let image =
            image::load_from_memory(&make_thumbnail(&png(64, 48, false)).unwrap().bytes).unwrap();
        assert_eq!((image.width(), image.height()), (64, 48));
        assert!(make_thumbnail(&png(1, 1, false)).is_err());
        assert!(make_thumbnail(b"<svg xmlns='http://www.w3.org/2000/svg'/>").is_err());
        assert!(make_thumbnail(b"not an image at all").is_err());
    }
}
