//! What lien does with hostile text: redirects that stay on this origin, control characters
//! refused from forms and stripped from peers, feeds that stay valid XML, and NUL never a 500.

use reqwest::StatusCode;
use url::Url;

use crate::{
    federation::{dev_instance, host, resolve},
    helpers::{caches_catch_up, count, location, Browser, TestApp},
};

/// Whether a `Location` a browser got from `app` keeps it on `app`'s origin.
fn stays_home(app: &TestApp, location: &str) -> bool {
    let base = Url::parse(&app.address).unwrap();
    base.join(location)
        .is_ok_and(|target| target.origin() == base.origin())
}

#[tokio::test]
async fn search_and_vote_redirects_never_leave_this_origin() {
    let app = TestApp::spawn().await;
    let visitor = app.browser();
    for pasted in [
        format!("{}//evil.example/", app.address),
        format!("{}/\\evil.example/", app.address),
        format!("{}/.//evil.example/", app.address),
    ] {
        let q: String = url::form_urlencoded::byte_serialize(pasted.as_bytes()).collect();
        let response = visitor.get(&format!("/search?q={q}")).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{pasted}");
        let to = location(&response);
        assert!(stays_home(&app, &to), "{pasted} sent the browser to {to}");
    }
    // An ordinary local URL still opens its page.
    let alice = app.user("alice").await;
    let id = alice.share("https://example.com/", "Home", "x").await;
    let pasted = format!("{}/s/{id}", app.address);
    let q: String = url::form_urlencoded::byte_serialize(pasted.as_bytes()).collect();
    let response = visitor.get(&format!("/search?q={q}")).await;
    assert_eq!(location(&response), format!("/s/{id}"));

    // The vote form goes back to the page it came from, only when that page is here.
    let bob = app.user("bob").await;
    for (referer, expected) in [
        (
            format!("{}/new?page=2", app.address),
            "/new?page=2".to_owned(),
        ),
        (
            format!("{}//evil.example/", app.address),
            format!("/s/{id}"),
        ),
        (
            format!("{}/\\evil.example/", app.address),
            format!("/s/{id}"),
        ),
        ("https://evil.example/".to_owned(), format!("/s/{id}")),
    ] {
        let csrf = bob.csrf().await;
        let response = bob
            .client
            .post(format!("{}/s/{id}/vote", app.address))
            .header("Referer", &referer)
            .form(&[("value", "1"), ("csrf", &csrf)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        // Scrolled back to the story voted on (issue 14), on a page of this site only.
        assert_eq!(
            location(&response),
            format!("{expected}#s{id}"),
            "Referer {referer}"
        );
    }
}

/// Parses a feed as a reader would; panics with the document when it is not well-formed.
async fn parse_feed(browser: &Browser, path: &str) -> feed_rs::model::Feed {
    let response = browser.get(path).await;
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    let xml = response.text().await.unwrap();
    // feed-rs (quick-xml) reads past characters XML 1.0 forbids; strict readers refuse the whole
    // document, so their absence is checked too.
    let forbidden: Vec<char> = xml
        .chars()
        .filter(|&c| lien::input::is_refused(c))
        .collect();
    assert!(forbidden.is_empty(), "{path} holds {forbidden:?}: {xml}");
    feed_rs::parser::parse(xml.as_bytes())
        .unwrap_or_else(|e| panic!("{path} is not a readable feed ({e}): {xml}"))
}

#[tokio::test]
async fn control_characters_are_refused_in_forms_and_never_reach_a_feed() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let id = alice
        .share("https://example.com/a", "Fine title", "x")
        .await;
    alice.comment(id, None, "A fine comment").await;

    for bad in ["\u{1}", "\u{1b}[31m", "\u{fffe}", "\u{ffff}", "\u{0}"] {
        let title = format!("Title {bad}");
        let response = alice
            .post(
                "/submit",
                &[
                    ("url", "https://example.com/b"),
                    ("title", &title),
                    ("tags", "x"),
                ],
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad:?}"
        );
        let body = format!("A comment {bad}");
        let response = alice
            .post(&format!("/s/{id}/comments"), &[("body", &body)])
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad:?}"
        );
        let response = alice.post("/settings", &[("bio", &body)]).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad:?}"
        );
    }
    assert_eq!(count(&app.pool, "story").await, 1);
    assert_eq!(count(&app.pool, "comment").await, 1);
    // Tab, line feed and carriage return are ordinary in a text.
    alice.comment(id, None, "two\r\nlines\tand a tab").await;

    // Whatever is stored already (rows from before, a peer's text), every feed stays readable.
    sqlx::query("update story set title = title || chr(1) || chr(65535) || chr(27)")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("update comment set body_html = body_html || chr(8), body = body || chr(2)")
        .execute(&app.pool)
        .await
        .unwrap();
    caches_catch_up().await;
    let visitor = app.browser();
    for path in [
        "/hot.rss",
        "/new.atom",
        "/comments.rss",
        "/comments.atom",
        "/t/x.rss",
    ] {
        let feed = parse_feed(&visitor, path).await;
        assert!(!feed.entries.is_empty(), "{path} has its items");
    }
    let feed = parse_feed(&visitor, "/new.rss").await;
    let title = feed.entries[0].title.as_ref().unwrap().content.clone();
    assert_eq!(title, "Fine title");
}

#[tokio::test]
async fn control_characters_from_a_peer_are_stripped() {
    let a = dev_instance().await;
    let b = dev_instance().await;
    let alice = a.user("alice").await;
    let id = alice.share_text("A story", "Its text", "x").await;
    // As if stored before input was checked: what the peer serves carries them (escaped in JSON).
    sqlx::query("update story set title = 'Bell' || chr(7) || ' story' || chr(65534), body = body || chr(1)")
        .execute(&a.pool)
        .await
        .unwrap();
    sqlx::query("update person set display_name = 'Al' || chr(27) || 'ice'")
        .execute(&a.pool)
        .await
        .unwrap();
    caches_catch_up().await;
    let bob = b.user("bob").await;
    let page = resolve(&bob, &format!("{}/s/{id}", a.address)).await;
    assert!(page.starts_with("/s/"), "{page}");
    let (title, body): (String, String) = sqlx::query_as("select title, body from story")
        .fetch_one(&b.pool)
        .await
        .unwrap();
    assert_eq!(title, "Bell story");
    assert!(!body.chars().any(lien::input::is_refused), "{body:?}");
    let name: String = sqlx::query_scalar("select display_name from person where host = $1")
        .bind(host(&a))
        .fetch_one(&b.pool)
        .await
        .unwrap();
    assert_eq!(name, "Alice");
}

#[tokio::test]
async fn a_nul_byte_is_a_clear_4xx_never_a_500() {
    let app = TestApp::spawn().await;
    let visitor = app.browser();
    let response = visitor.get("/search?q=%00").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = visitor.get("/search?q=a%00b").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // Paths that reach a query too.
    for path in ["/@a%00b", "/t/a%00b", "/d/a%00b.com"] {
        let status = visitor.get(path).await.status();
        assert!(status.is_client_error(), "{path}: {status}");
    }

    let alice = app.user("alice").await;
    let id = alice.share("https://example.com/a", "Fine", "x").await;
    let with_nul = "before\0after";
    for (path, fields) in [
        (
            "/submit",
            vec![
                ("url", "https://example.com/n"),
                ("title", with_nul),
                ("tags", "x"),
            ],
        ),
        (
            "/submit",
            vec![("title", "Text"), ("body", with_nul), ("tags", "x")],
        ),
        ("/settings", vec![("display_name", with_nul)]),
        ("/settings", vec![("bio", with_nul)]),
    ] {
        let response = alice.post(path, &fields).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path} {fields:?}"
        );
    }
    let response = alice
        .post(&format!("/s/{id}/comments"), &[("body", with_nul)])
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(count(&app.pool, "comment").await, 0);
    assert_eq!(count(&app.pool, "story").await, 1);
}
