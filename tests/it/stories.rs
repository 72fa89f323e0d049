use reqwest::StatusCode;

use crate::helpers::{count, location, select_attr, select_text, story_ids, TestApp};

#[tokio::test]
async fn share_a_link_and_a_text_post() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let link = alice
        .share(
            "https://www.example.com/post?utm_source=x",
            "A & B <em>",
            "rust web",
        )
        .await;
    let text = alice
        .share_text("Ask: what do you read?", "Tell me **everything**", "ask")
        .await;

    let page = alice.page(&format!("/s/{link}")).await;
    assert_eq!(
        select_text(&page, ".title a.link"),
        vec!["A & B <em>"],
        "title escaped, shown as typed"
    );
    assert_eq!(
        select_attr(&page, ".title a.link", "href"),
        vec!["https://www.example.com/post?utm_source=x"]
    );
    assert_eq!(select_text(&page, "a.tag"), vec!["rust", "web"]);
    assert_eq!(select_text(&page, "a.domain"), vec!["example.com"]);
    assert_eq!(
        select_attr(&page, "article.story", "data-score"),
        vec!["1"],
        "the submitter's own upvote"
    );
    // OpenGraph, and the ActivityPub alternate for federation.
    assert_eq!(
        select_attr(&page, "meta[property='og:title']", "content"),
        vec!["A & B <em>"]
    );
    let alternate = select_attr(&page, "link[type='application/activity+json']", "href");
    assert_eq!(alternate, vec![format!("{}/s/{link}", app.address)]);

    let page = alice.page(&format!("/s/{text}/ask-what-do-you-read")).await;
    assert!(page.html().contains("<strong>everything</strong>"));
    assert_eq!(
        select_attr(&page, ".title a.link", "href"),
        vec![format!("/s/{text}/ask-what-do-you-read")]
    );

    assert_eq!(story_ids(&alice, "/t/rust").await, vec![link]);
    assert_eq!(story_ids(&alice, "/domain/example.com").await, vec![link]);
    assert_eq!(story_ids(&alice, "/@alice").await, vec![text, link]);
    let tags = alice.page("/tags").await;
    assert_eq!(
        select_text(&tags, "ul.tags a.tag"),
        vec!["ask", "rust", "web"]
    );
}

#[tokio::test]
async fn the_same_link_again_leads_to_the_discussion_and_counts_as_an_upvote() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let first = alice
        .share(
            "https://example.com/article/?utm_campaign=a",
            "An article",
            "news",
        )
        .await;
    let second = bob
        .share(
            "http://www.example.com/article#comments",
            "Same article",
            "news",
        )
        .await;
    assert_eq!(first, second);
    assert_eq!(count(&app.pool, "story").await, 1);
    let page = bob.page(&format!("/s/{first}")).await;
    assert_eq!(select_attr(&page, "article.story", "data-score"), vec!["2"]);
    // Sharing it a third time changes nothing more: one vote per person.
    bob.share("https://example.com/article", "Again", "news")
        .await;
    let page = bob.page(&format!("/s/{first}")).await;
    assert_eq!(select_attr(&page, "article.story", "data-score"), vec!["2"]);
}

#[tokio::test]
async fn bad_stories_are_refused_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let cases: [&[(&str, &str)]; 6] = [
        &[
            ("url", "javascript:alert(1)"),
            ("title", "Click"),
            ("tags", "x"),
        ],
        &[
            ("url", "https://example.com/"),
            ("title", "   "),
            ("tags", "x"),
        ],
        &[
            ("url", "https://example.com/"),
            ("title", "No tags"),
            ("tags", ""),
        ],
        &[
            ("url", "https://example.com/"),
            ("title", "Bad tag"),
            ("tags", "<b>"),
        ],
        &[
            ("url", "https://example.com/"),
            ("title", "Too many"),
            ("tags", "a b c d e f"),
        ],
        &[("title", "Neither link nor text"), ("tags", "x")],
    ];
    for fields in cases {
        let response = alice.post("/submit", fields).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{fields:?}"
        );
        let page = response.text().await.unwrap();
        assert!(
            page.contains(r#"class="errors""#),
            "the form says what is wrong: {fields:?}"
        );
    }
    assert_eq!(count(&app.pool, "story").await, 0);
    assert_eq!(count(&app.pool, "story_tag").await, 0);
    assert_eq!(count(&app.pool, "story_vote").await, 0);

    // Not logged in: sent to the login page, nothing stored.
    let visitor = app.browser();
    let response = visitor
        .post(
            "/submit",
            &[
                ("url", "https://example.com/"),
                ("title", "t"),
                ("tags", "x"),
            ],
        )
        .await;
    assert_eq!(location(&response), "/login");
    assert_eq!(count(&app.pool, "story").await, 0);
}

#[tokio::test]
async fn new_is_newest_first_and_pages_by_25() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let mut ids = Vec::new();
    for n in 0..27 {
        ids.push(
            alice
                .share(
                    &format!("https://example.com/{n}"),
                    &format!("Story {n}"),
                    "test",
                )
                .await,
        );
    }
    ids.reverse();
    assert_eq!(story_ids(&alice, "/new").await, ids[..25]);
    assert_eq!(story_ids(&alice, "/new?page=2").await, ids[25..]);
    // The next link continues after the last story shown (keyset), and so do anonymous readers.
    let page = alice.page("/new").await;
    let next = format!("/new?page=2&after={}", ids[24]);
    assert_eq!(
        select_attr(&page, "a[rel=next]", "href"),
        vec![next.clone()]
    );
    assert_eq!(story_ids(&alice, &next).await, ids[25..]);
    assert_eq!(story_ids(&app.browser(), &next).await, ids[25..]);
    let page = alice.page(&next).await;
    assert_eq!(
        select_attr(&page, "a[rel=prev]", "href"),
        vec!["/new?page=1"]
    );
    assert!(select_attr(&page, "a[rel=next]", "href").is_empty());
}

#[tokio::test]
async fn authors_edit_and_delete_their_own_stories_only() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let id = alice.share("https://example.com/a", "Frist", "typo").await;
    let form = [
        ("url", "https://example.com/a"),
        ("title", "First"),
        ("tags", "fixed"),
    ];
    assert_eq!(
        bob.post(&format!("/s/{id}/edit"), &form).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        alice.post(&format!("/s/{id}/edit"), &form).await.status(),
        StatusCode::SEE_OTHER
    );
    let page = bob.page(&format!("/s/{id}")).await;
    assert_eq!(select_text(&page, ".title a.link"), vec!["First"]);
    assert_eq!(select_text(&page, "a.tag"), vec!["fixed"]);

    assert_eq!(
        bob.post(&format!("/s/{id}/delete"), &[]).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        alice.post(&format!("/s/{id}/delete"), &[]).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        bob.get(&format!("/s/{id}")).await.status(),
        StatusCode::GONE
    );
    assert!(story_ids(&bob, "/").await.is_empty());
    // The link can be shared afresh once its discussion is gone.
    let again = bob
        .share("https://example.com/a", "First, again", "news")
        .await;
    assert_ne!(again, id);
}

#[tokio::test]
async fn search_finds_stories_by_title_link_and_tag() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let db = alice
        .share(
            "https://postgresql.org/docs/indexes",
            "Indexing strategies explained",
            "databases",
        )
        .await;
    let rust = alice
        .share(
            "https://blog.rust-lang.org/2026/release",
            "A new release",
            "rust",
        )
        .await;
    assert_eq!(story_ids(&alice, "/search?q=indexing").await, vec![db]);
    assert_eq!(
        story_ids(&alice, "/search?q=postgresql.org").await,
        vec![db]
    );
    assert_eq!(story_ids(&alice, "/search?q=rust").await, vec![rust]);
    assert!(story_ids(&alice, "/search?q=nothing+matches+this")
        .await
        .is_empty());
    assert_eq!(alice.get("/search").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_pages_and_bad_parameters_get_clear_4xx() {
    let app = TestApp::spawn().await;
    let visitor = app.browser();
    assert_eq!(visitor.get("/s/999").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(visitor.get("/s/abc").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(visitor.get("/nope").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        visitor.get("/top?t=decade").await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        visitor.get("/@nobody").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(visitor.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(visitor.get("/readyz").await.status(), StatusCode::OK);
}
