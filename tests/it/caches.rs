//! The caches (src/web/cache.rs): anonymous pages come from memory, a page with a reader's own
//! CSRF token never does, a form's change is visible at once, a change made by any other process
//! (here: straight into the database) within a second, and a writer always reads their own write.

use std::time::{Duration, Instant};

use reqwest::{header, StatusCode};

use crate::helpers::*;

/// Renames a story the way no process of lien would notice: with triggers off, so the change
/// counter does not move. What a reader sees afterwards shows whether their page was cached.
async fn rename_unnoticed(app: &TestApp, story: i64, title: &str) {
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query("set local session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("update story set title = $2 where id = $1")
        .bind(story)
        .bind(title)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn text(browser: &Browser, path: &str) -> String {
    let response = browser.get(path).await;
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.text().await.unwrap()
}

/// Polls `path` until its text contains `wanted`; how long that took, or None after 3 s.
async fn appears(browser: &Browser, path: &str, wanted: &str) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        if text(browser, path).await.contains(wanted) {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test]
async fn anonymous_pages_come_from_memory_until_something_changes() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let story = alice
        .share("https://example.com/cached", "First title", "cache")
        .await;
    let visitor = app.browser();
    let pages = ["/", "/new", "/t/cache", &format!("/s/{story}")];
    caches_catch_up().await;
    for page in pages {
        assert!(text(&visitor, page).await.contains("First title"), "{page}");
    }

    // Unnoticed by lien, the database changes: anonymous readers still get the kept pages,
    // and no Set-Cookie, which would have made them one reader's own.
    rename_unnoticed(&app, story, "Second title").await;
    for page in pages {
        let response = visitor.get(page).await;
        assert!(response.headers().get(header::SET_COOKIE).is_none());
        let body = response.text().await.unwrap();
        assert!(body.contains("First title"), "{page} was not cached");
    }

    // A change made the ordinary way by another process (a statement that moves the change
    // counter) reaches every anonymous page within a second.
    sqlx::query("update story set title = 'Third title' where id = $1")
        .bind(story)
        .execute(&app.pool)
        .await
        .unwrap();
    for page in pages {
        let took = appears(&visitor, page, "Third title").await;
        assert!(
            took.is_some_and(|t| t < Duration::from_secs(1)),
            "{page}: {took:?}"
        );
    }

    // A change made through this process's forms is visible to everyone at once...
    let bob = app.user("bob").await;
    bob.comment(story, None, "Said through the form").await;
    let discussion = format!("/s/{story}");
    assert!(text(&visitor, &discussion)
        .await
        .contains("Said through the form"));
    // ...and for a few seconds its writer reads around the caches, so even a change nothing
    // noticed reaches them, while the visitor still gets the kept page.
    caches_catch_up().await;
    assert!(text(&visitor, &discussion).await.contains("Third title"));
    rename_unnoticed(&app, story, "Fourth title").await;
    assert!(text(&bob, &discussion).await.contains("Fourth title"));
    assert!(text(&visitor, &discussion).await.contains("Third title"));
}

#[tokio::test]
async fn a_page_with_a_form_token_is_never_shared() {
    let app = TestApp::spawn().await;
    let tokens = [app.browser().csrf().await, app.browser().csrf().await];
    assert_ne!(
        tokens[0], tokens[1],
        "two visitors were given one CSRF token"
    );
}

#[tokio::test]
async fn cached_feeds_answer_conditional_requests() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    alice
        .share("https://example.com/feed", "In the feed", "cache")
        .await;
    let reader = app.browser();
    let first = reader.get("/hot.rss").await;
    assert_eq!(first.status(), StatusCode::OK);
    let etag = first.headers()[header::ETAG].clone();
    for _ in 0..2 {
        let again = reader
            .client
            .get(format!("{}/hot.rss", app.address))
            .header(header::IF_NONE_MATCH, etag.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[header::ETAG], etag);
    }
    let other = reader
        .client
        .get(format!("{}/hot.rss", app.address))
        .header(header::IF_NONE_MATCH, "W/\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    assert!(other.text().await.unwrap().contains("In the feed"));
}

#[tokio::test]
async fn a_ban_made_elsewhere_reaches_cached_sessions_within_a_second() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let story = alice
        .share("https://example.com/ban", "Before the ban", "cache")
        .await;
    // Alice's session is cached now; the ban comes from another process (`lien user ban`).
    assert_eq!(alice.get("/").await.status(), StatusCode::OK);
    sqlx::query("update person set banned_at = now(), ban_reason = 'spam' where name = 'alice'")
        .execute(&app.pool)
        .await
        .unwrap();
    let started = Instant::now();
    let refused = loop {
        let response = alice
            .post(&format!("/s/{story}/comments"), &[("body", "still here?")])
            .await;
        if response.status() == StatusCode::FORBIDDEN {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the ban never took"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(refused < Duration::from_secs(1), "{refused:?}");
}

#[tokio::test]
async fn cached_pages_are_compressed_once_for_those_who_take_gzip() {
    use std::io::Read;
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    alice
        .share("https://example.com/gzip", "Squeezed", "cache")
        .await;
    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let get = |encoding: &'static str| {
        raw.get(format!("{}/", app.address))
            .header(header::ACCEPT_ENCODING, encoding)
            .send()
    };
    let plain = get("identity").await.unwrap();
    assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
    let plain = plain.text().await.unwrap();
    assert!(plain.contains("Squeezed"));
    // The first answer filled the cache; these come from it, one plain, one compressed.
    for (encoding, compressed) in [("gzip, deflate, br", true), ("gzip;q=0", false)] {
        let response = get(encoding).await.unwrap();
        let coded = response.headers().get(header::CONTENT_ENCODING).cloned();
        let body = response.bytes().await.unwrap();
        let text = if compressed {
            assert_eq!(coded.unwrap(), "gzip");
            let mut text = String::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_string(&mut text)
                .unwrap();
            text
        } else {
            assert!(coded.is_none(), "{encoding}");
            String::from_utf8(body.to_vec()).unwrap()
        };
        assert_eq!(text, plain, "{encoding}");
    }
}
