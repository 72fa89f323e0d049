use reqwest::StatusCode;

use crate::helpers::{select_attr, select_text, TestApp};

#[tokio::test]
async fn replies_notify_the_author_and_reading_marks_them_read() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let story = alice.share("https://example.com/n", "Notify me", "x").await;
    let first = bob.comment(story, None, "a reply to the story").await;
    let own = alice.comment(story, Some(first), "alice answers bob").await;
    bob.comment(story, Some(own), "bob answers alice").await;
    // Her own comment does not notify her; bob's two replies do, counted in the header.
    let front = alice.page("/").await;
    assert_eq!(select_text(&front, ".unread-count"), vec!["2"]);
    let page = alice.page("/notifications").await;
    assert_eq!(
        select_attr(&page, ".notification", "data-kind"),
        vec!["reply", "reply"]
    );
    assert_eq!(select_text(&page, ".notification .new").len(), 2);
    let texts = select_text(&page, ".notification .body");
    assert_eq!(texts, vec!["bob answers alice", "a reply to the story"]);
    // Seen once, no longer new.
    let page = alice.page("/notifications").await;
    assert!(select_text(&page, ".notification .new").is_empty());
    assert!(select_text(&page, ".unread-count").is_empty());
    // Bob was told of alice's answer.
    let page = bob.page("/notifications").await;
    assert_eq!(
        select_text(&page, ".notification .body"),
        vec!["alice answers bob"]
    );

    // The private feed holds the same, for a feed reader with no login.
    let feed_url = select_attr(
        &alice.page("/notifications").await,
        "a.private-feed",
        "href",
    )
    .remove(0);
    let anonymous = reqwest::get(&feed_url).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::OK);
    let feed = feed_rs::parser::parse(&anonymous.bytes().await.unwrap()[..]).unwrap();
    assert_eq!(feed.entries.len(), 2);
    assert_eq!(
        app.browser()
            .get("/notifications/not-a-token.rss")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    // Without a login, the page sends you to log in.
    assert_eq!(
        app.browser().get("/notifications").await.status(),
        StatusCode::SEE_OTHER
    );
}
