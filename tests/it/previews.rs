//! Link previews against real pages served by the test: OpenGraph, Twitter cards and plain HTML,
//! thumbnails lien serves itself, the story page and the `Page` JSON; and pages that stall, never
//! end, redirect forever or are not HTML, and addresses that must never be fetched.

use std::{
    collections::HashMap,
    io::Cursor,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use crate::{federation::deliver_all, mastodon::FakeMastodon};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use lien::{
    fetch::{FetchError, Fetcher, Guard, Limits},
    preview::{self, Outcomes},
};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tempfile::TempDir;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinSet,
};

use crate::helpers::{select_attr, select_text, TestApp};

/// What the page server answers on one path.
#[derive(Clone)]
pub(crate) enum Answer {
    Html(String),
    Body(&'static str, Vec<u8>),
    Redirect(String),
    /// Reads the request, then says nothing, ever.
    Stall,
    /// An HTML page of this many bytes, sent as fast as the client takes it.
    Endless(u64),
}

/// A web server on 127.0.0.1, addressed as `localhost`, that counts what it is asked.
pub(crate) struct PageServer {
    port: u16,
    requests: Arc<AtomicUsize>,
    paths: Arc<Mutex<Vec<String>>>,
    /// Bytes of `Endless` bodies sent.
    sent: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl PageServer {
    pub(crate) async fn start(answers: Vec<(&str, Answer)>) -> PageServer {
        let answers: Arc<HashMap<String, Answer>> = Arc::new(
            answers
                .into_iter()
                .map(|(path, answer)| (path.to_owned(), answer))
                .collect(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let sent = Arc::new(AtomicU64::new(0));
        let (counter, log, sent_bytes) = (requests.clone(), paths.clone(), sent.clone());
        let task = tokio::spawn(async move {
            // Connections live in this set, so stopping the server drops them all.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (answers, counter, log, sent_bytes) = (
                    answers.clone(),
                    counter.clone(),
                    log.clone(),
                    sent_bytes.clone(),
                );
                connections.spawn(async move {
                    let Some(path) = read_request(&stream).await else {
                        return;
                    };
                    counter.fetch_add(1, Ordering::SeqCst);
                    log.lock().unwrap().push(path.clone());
                    let answer = answers.get(&path).cloned();
                    respond(stream, answer, &sent_bytes).await;
                });
            }
        });
        PageServer {
            port,
            requests,
            paths,
            sent,
            task,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.port)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    pub(crate) fn requests_for(&self, path: &str) -> usize {
        self.paths
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == path)
            .count()
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads a request head and returns its path.
async fn read_request(stream: &TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        stream.readable().await.ok()?;
        match stream.try_read(&mut buffer) {
            Ok(0) => return None,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return None,
        }
        if head.len() > 64 * 1024 {
            return None;
        }
    }
    let head = String::from_utf8_lossy(&head);
    head.lines()
        .next()?
        .split_whitespace()
        .nth(1)
        .map(str::to_owned)
}

async fn respond(mut stream: TcpStream, answer: Option<Answer>, sent: &AtomicU64) {
    let (status, content_type, extra, body): (&str, &str, String, Vec<u8>) = match answer {
        None => ("404 Not Found", "text/plain", String::new(), b"no".to_vec()),
        Some(Answer::Html(html)) => (
            "200 OK",
            "text/html; charset=utf-8",
            String::new(),
            html.into_bytes(),
        ),
        Some(Answer::Body(content_type, body)) => ("200 OK", content_type, String::new(), body),
        Some(Answer::Redirect(location)) => (
            "302 Found",
            "text/plain",
            format!("Location: {location}\r\n"),
            vec![],
        ),
        Some(Answer::Stall) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return;
        }
        Some(Answer::Endless(total)) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n<html><body>"
            );
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = vec![b'x'; 64 * 1024];
            let mut left = total - "<html><body>".len() as u64;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                if stream.write_all(&chunk[..n]).await.is_err() {
                    return;
                }
                sent.fetch_add(n as u64, Ordering::SeqCst);
                left -= n as u64;
            }
            return;
        }
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&body).await;
    let _ = stream.shutdown().await;
    // Let the client read to the end before the socket goes.
    let mut rest = [0u8; 64];
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut rest)).await;
}

/// A PNG of a flat colour.
pub(crate) fn png(width: u32, height: u32) -> Vec<u8> {
    let image = DynamicImage::ImageRgb8(RgbImage::from_pixel(width, height, Rgb([200, 80, 40])));
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .unwrap();
    bytes
}

/// An app in dev mode (loopback pages allowed) with a data directory of its own for media.
pub(crate) async fn dev_app(data: &TempDir) -> TestApp {
    let dir = data.path().to_str().unwrap();
    TestApp::spawn_with(&["--dev", "1", "--data-dir", dir]).await
}

/// Does every due preview job, as a worker would.
async fn previews_due(app: &TestApp) -> Outcomes {
    let data = app.federation.to_request_data();
    preview::run_due(data.app_data(), 20).await.unwrap()
}

async fn preview_row(pool: &PgPool, story: i64) -> (String, i32, Option<String>) {
    sqlx::query_as("select state, attempts, last_error from link_preview where story_id = $1")
        .bind(story)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The story's `Page` as a peer fetches it.
async fn page_json(app: &TestApp, story: i64) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{}/s/{story}", app.address))
        .header("Accept", "application/activity+json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn opengraph_gives_a_description_and_a_thumbnail_lien_serves() {
    let pages = PageServer::start(vec![
        (
            "/article",
            Answer::Html(
                r#"<!doctype html><html><head>
                <title>Plain title</title>
                <meta name="description" content="Plain description">
                <meta property="og:title" content="The OpenGraph title">
                <meta property="og:description" content="What the article is about, in one sentence.">
                <meta property="og:image" content="/img/cover.png">
                </head><body><p>Hello</p></body></html>"#
                    .into(),
            ),
        ),
        ("/img/cover.png", Answer::Body("image/png", png(800, 400))),
    ])
    .await;
    let data = TempDir::new().unwrap();
    let app = dev_app(&data).await;
    let alice = app.user("alice").await;
    let story = alice
        .share(&pages.url("/article"), "An article", "news")
        .await;

    // Nothing yet: the preview is a job, not part of sharing.
    let page = alice.page(&format!("/s/{story}")).await;
    assert!(select_text(&page, ".preview-description").is_empty());

    let outcomes = previews_due(&app).await;
    assert_eq!(outcomes.ready, 1, "{outcomes:?}");
    assert_eq!(pages.requests_for("/article"), 1);
    assert_eq!(pages.requests_for("/img/cover.png"), 1);

    let page = alice.page(&format!("/s/{story}")).await;
    assert_eq!(
        select_text(&page, ".preview-description"),
        vec!["What the article is about, in one sentence."]
    );
    let thumbnails = select_attr(&page, "article.story .thumbnail img", "src");
    assert_eq!(thumbnails.len(), 1);
    let thumbnail = &thumbnails[0];
    assert!(thumbnail.starts_with("/media/") && thumbnail.ends_with(".jpg"));
    // Lists show the thumbnail too.
    let front = alice.page("/").await;
    assert_eq!(
        select_attr(&front, "article.story .thumbnail img", "src"),
        vec![thumbnail.clone()]
    );

    // lien serves it, for good, and it is a real image of the small size.
    let response = alice.get(thumbnail).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let bytes = response.bytes().await.unwrap();
    let image = image::load_from_memory(&bytes).unwrap();
    assert_eq!((image.width(), image.height()), (240, 120));
    // Named by its content, and stored in the data directory.
    let name = thumbnail.strip_prefix("/media/").unwrap();
    assert_eq!(name, format!("{}.jpg", hex::encode(Sha256::digest(&bytes))));
    assert!(data.path().join("media").join(name).is_file());

    // Only names lien could have written are looked up.
    for bad in [
        "/media/..%2F..%2Fetc%2Fpasswd",
        "/media/%2Fetc%2Fpasswd",
        "/media/.env",
        &format!("/media/{}.jpg", "0".repeat(64)),
        &format!("/media/{}.svg", &name[..64]),
        &format!("/media/{}", name.to_uppercase()),
    ] {
        assert_eq!(
            alice.get(bad).await.status(),
            StatusCode::NOT_FOUND,
            "{bad}"
        );
    }

    // Peers see the description (in `content`, after the title's link: `summary` would be a
    // content warning on most servers) and the thumbnail in `image` (not `icon`, which Sharkey
    // turns into an attached image).
    let json = page_json(&app, story).await;
    let content = json["content"].as_str().unwrap();
    let link = pages.url("/article");
    assert!(
        content.starts_with(&format!(r#"<p><a href="{link}">"#)),
        "{content}"
    );
    assert!(content.contains("<p>What the article is about, in one sentence.</p>"));
    assert!(json.get("summary").is_none());
    let absolute = format!("{}{thumbnail}", app.address);
    assert_eq!(json["image"]["type"], "Image");
    assert_eq!(json["image"]["url"], absolute.as_str());
    assert_eq!(json["image"]["mediaType"], "image/jpeg");
    assert!(json.get("icon").is_none());
}

#[tokio::test]
async fn twitter_cards_and_plain_html_give_previews_too() {
    let pages = PageServer::start(vec![
        (
            "/posts/card",
            Answer::Html(
                r#"<html><head><title>Card page</title>
                <meta name="twitter:card" content="summary_large_image">
                <meta name="twitter:title" content="Card title">
                <meta name="twitter:description" content="Told by the card.">
                <meta name="twitter:image" content="../pics/card.png">
                </head></html>"#
                    .into(),
            ),
        ),
        ("/pics/card.png", Answer::Body("image/png", png(300, 600))),
        (
            "/plain",
            Answer::Html(
                r#"<html><head><meta charset="utf-8"><title>  Just a   page </title>
                <meta name="description" content="Described the old way &amp; well.">
                <link rel="canonical" href="/plain/canonical">
                </head></html>"#
                    .into(),
            ),
        ),
    ])
    .await;
    let data = TempDir::new().unwrap();
    let app = dev_app(&data).await;
    let alice = app.user("alice").await;
    let card = alice.share(&pages.url("/posts/card"), "Card", "news").await;
    let plain = alice.share(&pages.url("/plain"), "Plain", "news").await;

    let outcomes = previews_due(&app).await;
    assert_eq!(outcomes.ready, 2, "{outcomes:?}");

    // The card's image URL was relative to the page.
    assert_eq!(pages.requests_for("/pics/card.png"), 1);
    let page = alice.page(&format!("/s/{card}")).await;
    assert_eq!(
        select_text(&page, ".preview-description"),
        vec!["Told by the card."]
    );
    let thumbnail = select_attr(&page, ".thumbnail img", "src").remove(0);
    let bytes = alice.get(&thumbnail).await.bytes().await.unwrap();
    let image = image::load_from_memory(&bytes).unwrap();
    assert_eq!((image.width(), image.height()), (120, 240));

    let page = alice.page(&format!("/s/{plain}")).await;
    assert_eq!(
        select_text(&page, ".preview-description"),
        vec!["Described the old way & well."]
    );
    assert!(select_attr(&page, ".thumbnail img", "src").is_empty());
    let (title, canonical): (Option<String>, Option<String>) =
        sqlx::query_as("select title, canonical_url from link_preview where story_id = $1")
            .bind(plain)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(title.as_deref(), Some("Just a page"));
    assert_eq!(canonical, Some(pages.url("/plain/canonical")));
    let json = page_json(&app, plain).await;
    assert!(json["content"]
        .as_str()
        .unwrap()
        .contains("<p>Described the old way &amp; well.</p>"));
    assert!(json.get("image").is_none());
}

#[tokio::test]
async fn hostile_pages_end_cleanly_without_a_preview() {
    const FIFTY_MB: u64 = 50 * 1024 * 1024;
    let pages = PageServer::start(vec![
        ("/stall", Answer::Stall),
        ("/huge", Answer::Endless(FIFTY_MB)),
        ("/loop/a", Answer::Redirect("/loop/b".into())),
        ("/loop/b", Answer::Redirect("/loop/a".into())),
        (
            "/report.pdf",
            Answer::Body("application/pdf", vec![b'%'; 1024 * 1024]),
        ),
    ])
    .await;
    let data = TempDir::new().unwrap();
    let app = dev_app(&data).await;
    let alice = app.user("alice").await;
    let stall = alice.share(&pages.url("/stall"), "Stall", "test").await;
    let huge = alice.share(&pages.url("/huge"), "Huge", "test").await;
    let looping = alice.share(&pages.url("/loop/a"), "Loop", "test").await;
    let pdf = alice.share(&pages.url("/report.pdf"), "PDF", "test").await;

    let started = Instant::now();
    let outcomes = previews_due(&app).await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
    assert_eq!(
        outcomes,
        Outcomes {
            ready: 0,
            retrying: 1,
            failed: 3
        }
    );

    // A stalled page may answer later: tried again after a while, twice at most.
    let (state, attempts, error) = preview_row(&app.pool, stall).await;
    assert_eq!((state.as_str(), attempts), ("pending", 1));
    assert!(error.unwrap().contains("no complete answer"));
    // The others are done for good.
    for (story, expected) in [
        (huge, "no title, description or image"),
        (looping, "more than 3 redirects"),
        (pdf, "application/pdf"),
    ] {
        let (state, _, error) = preview_row(&app.pool, story).await;
        assert_eq!(state, "failed", "story {story}");
        let error = error.unwrap();
        assert!(error.contains(expected), "story {story}: {error}");
    }
    // The endless page was read no further than the cap (plus what the sockets buffer), and the
    // loop was followed three times, no more.
    let sent = pages.sent.load(Ordering::SeqCst);
    assert!(sent < 16 * 1024 * 1024, "{sent} bytes sent");
    assert_eq!(
        pages.requests_for("/loop/a") + pages.requests_for("/loop/b"),
        4
    );

    for story in [stall, huge, looping, pdf] {
        let page = alice.page(&format!("/s/{story}")).await;
        assert!(select_text(&page, ".preview-description").is_empty());
        assert!(select_attr(&page, ".thumbnail img", "src").is_empty());
    }
}

#[tokio::test]
async fn private_addresses_are_never_fetched_outside_dev_mode() {
    let pages = PageServer::start(vec![(
        "/secret",
        Answer::Html(r#"<meta property="og:title" content="internal">"#.into()),
    )])
    .await;
    let data = TempDir::new().unwrap();
    let dir = data.path().to_str().unwrap();
    let app = TestApp::spawn_with(&["--data-dir", dir]).await;
    let alice = app.user("alice").await;
    let mut stories = vec![];
    for link in [
        pages.url("/secret"),
        "http://localhost/secret".to_owned(),
        "http://127.0.0.1/secret".to_owned(),
        "http://10.0.0.1/secret".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[::ffff:127.0.0.1]/secret".to_owned(),
        "http://[::1]/secret".to_owned(),
    ] {
        stories.push(alice.share(&link, "Inside", "test").await);
    }
    let started = Instant::now();
    let outcomes = previews_due(&app).await;
    // Refused before any connection: 10.0.0.1 would otherwise hang until the timeout.
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(outcomes.failed, stories.len(), "{outcomes:?}");
    for story in stories {
        let (state, _, error) = preview_row(&app.pool, story).await;
        assert_eq!(state, "failed");
        assert!(error.unwrap().starts_with("refused"));
    }
    assert_eq!(pages.requests(), 0);

    // The name check itself, apart from the port rule: localhost resolves to loopback, refused.
    let url = pages.url("/secret").parse().unwrap();
    let any_port = Guard {
        private_addresses: false,
        any_port: true,
    };
    let fetcher = Fetcher::new(any_port, "lien-test").unwrap();
    match fetcher.get(&url, &Limits::PAGE).await {
        Err(FetchError::Refused(reason)) => assert!(reason.contains("not a public address")),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(pages.requests(), 0);
    // The same fetch in dev mode goes through: the refusal was the guard's.
    let dev = Fetcher::new(Guard::new(true), "lien-test").unwrap();
    let fetched = dev.get(&url, &Limits::PAGE).await.unwrap();
    assert_eq!(fetched.url, url);
    assert_eq!(pages.requests(), 1);
}

#[tokio::test]
async fn redirects_are_checked_at_every_hop() {
    let pages = PageServer::start(vec![
        ("/ftp", Answer::Redirect("ftp://localhost/file".into())),
        ("/hop", Answer::Redirect("/page".into())),
        ("/page", Answer::Html("<title>Landed</title>".into())),
    ])
    .await;
    let fetcher = Fetcher::new(Guard::new(true), "lien-test").unwrap();
    let hop: url::Url = pages.url("/hop").parse().unwrap();
    let fetched = fetcher.get(&hop, &Limits::PAGE).await.unwrap();
    assert_eq!(fetched.url.path(), "/page");
    assert_eq!(fetched.body, b"<title>Landed</title>");
    let ftp = fetcher
        .get(&pages.url("/ftp").parse().unwrap(), &Limits::PAGE)
        .await;
    assert!(matches!(ftp, Err(FetchError::Refused(_))), "{ftp:?}");
    assert_eq!(pages.requests_for("/ftp"), 1);
    // A non-image where an image is wanted is refused before its body is read.
    let html_as_image = fetcher
        .get(&pages.url("/page").parse().unwrap(), &Limits::IMAGE)
        .await;
    assert!(matches!(html_as_image, Err(FetchError::ContentType(_))));
}

#[tokio::test]
async fn sharing_never_waits_for_the_preview() {
    let pages = PageServer::start(vec![("/stall", Answer::Stall)]).await;
    let data = TempDir::new().unwrap();
    let app = dev_app(&data).await;
    let alice = app.user("alice").await;

    // The worker runs as in `lien serve`, beside the web server.
    let (stop, stopping) = tokio::sync::oneshot::channel::<()>();
    let state = app.federation.to_request_data().app_data().clone();
    let worker = tokio::spawn(preview::run(state, async {
        let _ = stopping.await;
    }));

    let started = Instant::now();
    let story = alice.share(&pages.url("/stall"), "Slow", "test").await;
    assert!(started.elapsed() < Duration::from_secs(3));

    // The worker takes the job and the page stalls; pages keep answering at once meanwhile.
    let waiting = Instant::now();
    while pages.requests() == 0 {
        assert!(waiting.elapsed() < Duration::from_secs(10), "never fetched");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    alice.page(&format!("/s/{story}")).await;
    alice.page("/").await;
    assert!(started.elapsed() < Duration::from_secs(3));

    // Stopping does not wait for the stalled page, and hands the job back untouched.
    let started = Instant::now();
    stop.send(()).unwrap();
    worker.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    let (state, attempts, _) = preview_row(&app.pool, story).await;
    assert_eq!((state.as_str(), attempts), ("pending", 0));
}

#[tokio::test]
async fn the_submit_form_can_ask_for_the_title() {
    let pages = PageServer::start(vec![
        (
            "/titled",
            Answer::Html(
                r#"<title>Fallback</title><meta property="og:title" content="A fine title">"#
                    .into(),
            ),
        ),
        ("/stall", Answer::Stall),
    ])
    .await;
    let data = TempDir::new().unwrap();
    let app = dev_app(&data).await;
    let title_of = |url: String| format!("/submit/title?url={}", urlencode(&url));

    // Signed-in people only.
    let visitor = app.browser();
    let response = visitor.get(&title_of(pages.url("/titled"))).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(pages.requests(), 0);

    let alice = app.user("alice").await;
    let response = alice.get(&title_of(pages.url("/titled"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let json: Value = response.json().await.unwrap();
    assert_eq!(json["title"], "A fine title");

    // A stalled page gives no title, quickly.
    let started = Instant::now();
    let json: Value = alice
        .get(&title_of(pages.url("/stall")))
        .await
        .json()
        .await
        .unwrap();
    assert!(json["title"].is_null());
    assert!(started.elapsed() < Duration::from_secs(6));

    let response = alice.get("/submit/title?url=javascript:alert(1)").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // A few a minute, then 429.
    let mut statuses = vec![];
    for _ in 0..10 {
        statuses.push(alice.get(&title_of(pages.url("/titled"))).await.status());
    }
    assert!(
        statuses[..8].iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(statuses[8], StatusCode::TOO_MANY_REQUESTS);

    // The form still works without any of it.
    let form = alice.page("/submit").await;
    assert_eq!(
        select_attr(&form, "form.story-form", "action"),
        vec!["/submit"]
    );
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn a_new_link_gets_a_new_preview_and_no_link_none() {
    let pages = PageServer::start(vec![
        (
            "/first",
            Answer::Html(r#"<meta property="og:description" content="First page.">"#.into()),
        ),
        (
            "/second",
            Answer::Html(r#"<meta property="og:description" content="Second page.">"#.into()),
        ),
    ])
    .await;
    let data = TempDir::new().unwrap();
    let app = dev_app(&data).await;
    let alice = app.user("alice").await;
    let story = alice.share(&pages.url("/first"), "Moving", "test").await;
    // A text post has nothing to preview.
    let text = alice.share_text("Words", "Just words.", "test").await;
    assert_eq!(previews_due(&app).await.ready, 1);
    let missing: i64 = sqlx::query_scalar("select count(*) from link_preview where story_id = $1")
        .bind(text)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(missing, 0);

    // The same link again keeps the preview; another starts over.
    for (link, expected) in [
        ("/first", Outcomes::default()),
        (
            "/second",
            Outcomes {
                ready: 1,
                ..Outcomes::default()
            },
        ),
    ] {
        let url = pages.url(link);
        let fields = [("url", url.as_str()), ("title", "Moving"), ("tags", "test")];
        let response = alice.post(&format!("/s/{story}/edit"), &fields).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            previews_due(&app).await,
            expected,
            "after editing to {link}"
        );
    }
    let page = app.browser().page(&format!("/s/{story}")).await;
    assert_eq!(
        select_text(&page, ".preview-description"),
        vec!["Second page."]
    );
}

/// Followers get the preview: the `Create(Page)` goes out at once, without it, and an
/// `Update(Page)` with the description and thumbnail follows when the preview lands.
#[tokio::test]
async fn followers_get_the_preview_in_an_update() {
    let pages = PageServer::start(vec![
        (
            "/article",
            Answer::Html(
                r#"<html><head><meta property="og:description" content="Told by the page.">
                <meta property="og:image" content="/cover.png"></head></html>"#
                    .into(),
            ),
        ),
        ("/cover.png", Answer::Body("image/png", png(300, 200))),
        (
            "/bare",
            Answer::Html("<html><head><title>Only a title</title></head></html>".into()),
        ),
    ])
    .await;
    let data = TempDir::new().unwrap();
    let app = dev_app(&data).await;
    let alice = app.user("alice").await;
    let mastodon = FakeMastodon::start(&app).await;
    let alice_id = format!("{}/users/alice", app.address);
    mastodon.learn_key(&alice_id).await;
    let follow = mastodon.activity(
        "follow.json",
        "mallory",
        &[("FOLLOW", "f-9"), ("OBJECT", &alice_id)],
    );
    let inbox = format!("{}/inbox", app.address);
    assert_eq!(
        mastodon.deliver(&inbox, &follow, "mallory").await,
        StatusCode::OK
    );

    let story = alice
        .share(&pages.url("/article"), "An article", "news")
        .await;
    deliver_all(&app).await;
    let of_type = |kind: &str| -> Vec<Value> {
        mastodon
            .received()
            .into_iter()
            .filter(|a| a["type"] == kind && a["object"]["type"] == "Page")
            .collect()
    };
    let creates = of_type("Create");
    assert_eq!(creates.len(), 1);
    assert!(!creates[0]["object"]["content"]
        .as_str()
        .unwrap()
        .contains("Told by the page."));
    assert!(creates[0]["object"].get("image").is_none());
    assert!(of_type("Update").is_empty());

    assert_eq!(previews_due(&app).await.ready, 1);
    deliver_all(&app).await;
    let updates = of_type("Update");
    assert_eq!(updates.len(), 1, "one Update once the preview is in");
    let page = &updates[0]["object"];
    assert_eq!(page["id"], format!("{}/s/{story}", app.address));
    assert_eq!(updates[0]["actor"], alice_id);
    assert!(page["content"]
        .as_str()
        .unwrap()
        .contains("<p>Told by the page.</p>"));
    assert!(page["image"]["url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/media/", app.address)));
    assert!(mastodon.state.problems.lock().unwrap().is_empty());

    // A page that says nothing about itself changes nothing: no Update.
    alice.share(&pages.url("/bare"), "Bare", "news").await;
    deliver_all(&app).await;
    assert_eq!(previews_due(&app).await.ready, 1);
    deliver_all(&app).await;
    assert_eq!(of_type("Create").len(), 2);
    assert_eq!(of_type("Update").len(), 1);
}
