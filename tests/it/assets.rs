//! What every response says about itself to the browser (the security headers), the versioned
//! stylesheet and script, and avatars served by lien rather than hotlinked.

use reqwest::{header, StatusCode};

use crate::{
    helpers::{select_attr, TestApp},
    previews::{dev_app, png, Answer, PageServer},
};

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    let visitor = app.browser();
    for path in ["/", "/login", "/no-such-page", "/hot.rss", "/users/nobody"] {
        let response = visitor.get(path).await;
        let headers = response.headers();
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp} lacks {directive}");
        }
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(
            headers[header::REFERRER_POLICY],
            "strict-origin-when-cross-origin",
            "{path}"
        );
    }
}

#[tokio::test]
async fn assets_are_versioned_by_content_and_cached_for_a_year() {
    let app = TestApp::spawn().await;
    let visitor = app.browser();
    let page = visitor.page("/").await;
    let css = select_attr(&page, "link[rel=stylesheet]", "href").remove(0);
    let js = select_attr(&page, "script[src]", "src").remove(0);
    for href in [&css, &js] {
        let (path, version) = href.split_once("?v=").expect("a versioned URL");
        assert_eq!(version.len(), 16, "{href}");
        let current = visitor.get(href).await;
        assert_eq!(current.status(), StatusCode::OK, "{href}");
        assert_eq!(
            current.headers()[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable",
            "{href}"
        );
        // An old page's link still works, but is not kept for long.
        let old = visitor.get(&format!("{path}?v=0000000000000000")).await;
        assert_eq!(old.status(), StatusCode::OK);
        assert_eq!(old.headers()[header::CACHE_CONTROL], "public, max-age=300");
    }
    // The version is the content's: the same bytes under the same version every time.
    let again = select_attr(&visitor.page("/new").await, "link[rel=stylesheet]", "href").remove(0);
    assert_eq!(again, css);
    assert_eq!(
        visitor.get("/static/nothing.css").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn avatars_are_served_by_lien_and_fetched_once() {
    let server = PageServer::start(vec![
        ("/me.png", Answer::Body("image/png", png(400, 400))),
        (
            "/broken.png",
            Answer::Body("image/png", b"not a png".to_vec()),
        ),
    ])
    .await;
    let data = tempfile::tempdir().unwrap();
    let app = dev_app(&data).await;
    let alice = app.user("alice").await;
    let avatar_url = server.url("/me.png");
    let response = alice
        .post(
            "/settings",
            &[
                ("display_name", "Alice"),
                ("bio", ""),
                ("avatar_url", &avatar_url),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "settings saved");

    let visitor = app.browser();
    let profile = visitor.get("/@alice").await.text().await.unwrap();
    assert!(
        !profile.contains(&avatar_url),
        "the page never names the avatar's host"
    );
    let html = scraper::Html::parse_document(&profile);
    let src = select_attr(&html, "img.avatar", "src").remove(0);
    assert!(src.starts_with("/avatars/"), "{src}");
    for _ in 0..3 {
        let image = visitor.get(&src).await;
        assert_eq!(image.status(), StatusCode::OK);
        assert_eq!(image.headers()[header::CONTENT_TYPE], "image/jpeg");
        let bytes = image.bytes().await.unwrap();
        let decoded = image::load_from_memory(&bytes).expect("an image");
        assert_eq!((decoded.width(), decoded.height()), (128, 128), "shrunk");
    }
    assert_eq!(server.requests_for("/me.png"), 1, "fetched once, then kept");

    // What cannot be made an avatar is a 404, and is not fetched again on every view.
    sqlx::query("update person set avatar_url = $1 where name = 'alice'")
        .bind(server.url("/broken.png"))
        .execute(&app.pool)
        .await
        .unwrap();
    let id: i64 = sqlx::query_scalar("select id from person where name = 'alice'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    for _ in 0..2 {
        let broken = visitor.get(&format!("/avatars/{id}")).await;
        assert_eq!(broken.status(), StatusCode::NOT_FOUND);
    }
    assert_eq!(server.requests_for("/broken.png"), 1);
    // Someone without an avatar has none to serve.
    let bob = app.user("bob").await;
    drop(bob);
    let bob_id: i64 = sqlx::query_scalar("select id from person where name = 'bob'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        visitor.get(&format!("/avatars/{bob_id}")).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn error_pages_keep_the_site_around_them() {
    let app = TestApp::spawn().await;
    let visitor = app.browser();
    // A path that does not parse and one that names nothing look alike: the site's own 404.
    for path in ["/s/abc", "/c/12x", "/no-such-page"] {
        let response = visitor.get(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8",
            "{path}"
        );
        let page = scraper::Html::parse_document(&response.text().await.unwrap());
        assert!(!page.html().contains("can not parse"), "{path}");
        assert!(
            select_attr(&page, "nav.menu a", "href").contains(&"/new".to_owned()),
            "{path}: the menu"
        );
        assert_eq!(
            select_attr(&page, "form.search", "action"),
            ["/search"],
            "{path}: a search box"
        );
    }
    // A query that does not parse is explained on the same page.
    let bad_query = visitor.get("/new?page=abc").await;
    assert_eq!(bad_query.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = bad_query.text().await.unwrap();
    assert!(text.contains("query lien cannot read"), "{text}");
    assert!(text.contains("nav class=\"menu\""));

    // The current list is marked in the menu.
    let new = visitor.page("/new").await;
    assert_eq!(
        select_attr(&new, "nav.menu a[aria-current=page]", "href"),
        ["/new"]
    );
    // The icon and robots.txt.
    let icon = visitor.get("/favicon.svg").await;
    assert_eq!(icon.status(), StatusCode::OK);
    assert_eq!(icon.headers()[header::CONTENT_TYPE], "image/svg+xml");
    let page = visitor.page("/").await;
    assert_eq!(
        select_attr(&page, "link[rel=icon]", "href"),
        ["/favicon.svg"]
    );
    let robots = visitor.get("/robots.txt").await.text().await.unwrap();
    assert!(robots.contains("User-agent: *") && robots.contains("Disallow: /search"));
}
