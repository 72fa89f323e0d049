use reqwest::StatusCode;

use crate::helpers::{count, select_attr, select_text, TestApp};

/// (id, parent, depth) of each comment on a page, in page order.
fn thread(page: &scraper::Html) -> Vec<(i64, Option<i64>, usize)> {
    let ids = select_attr(page, "div.comment", "data-id");
    let parents = select_attr(page, "div.comment", "data-parent");
    let depths = select_attr(page, "div.comment", "data-depth");
    ids.iter()
        .zip(parents)
        .zip(depths)
        .map(|((id, parent), depth)| {
            (
                id.parse().unwrap(),
                parent.parse().ok(),
                depth.parse().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_reply_sits_under_its_parent_at_any_depth() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let story = alice
        .share("https://example.com/thread", "A thread", "x")
        .await;
    let first = bob.comment(story, None, "first").await;
    let second = alice.comment(story, None, "second").await;
    let reply = alice
        .comment(story, Some(first), "a reply to the first")
        .await;
    let deeper = bob.comment(story, Some(reply), "deeper still").await;

    let page = alice.page(&format!("/s/{story}")).await;
    assert_eq!(
        thread(&page),
        vec![
            (first, None, 0),
            (reply, Some(first), 1),
            (deeper, Some(reply), 2),
            (second, None, 0)
        ]
    );
    let listed = select_text(&page, "a.comments");
    assert_eq!(listed, vec!["4 comments"]);

    // Votes reorder siblings: the second comment, upvoted, comes first.
    bob.vote(&format!("/c/{second}"), "1").await;
    let page = alice.page(&format!("/s/{story}")).await;
    assert_eq!(thread(&page)[0].0, second);

    // A comment in context shows its replies under it.
    let page = alice.page(&format!("/c/{reply}")).await;
    assert_eq!(
        thread(&page),
        vec![(reply, Some(first), 0), (deeper, Some(reply), 1)]
    );
}

#[tokio::test]
async fn comments_are_markdown_and_sanitized() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let story = alice.share("https://example.com/md", "Markdown", "x").await;
    alice
        .comment(
            story,
            None,
            "*hi* <script>alert(1)</script> <img src=x onerror=alert(1)> [l](javascript:x)",
        )
        .await;
    let html = alice
        .get(&format!("/s/{story}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("<em>hi</em>"));
    assert!(
        !html.contains("<script>alert")
            && !html.contains("onerror")
            && !html.contains("javascript:x")
    );
}

#[tokio::test]
async fn bad_comments_are_refused_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let story = alice.share("https://example.com/c", "Comments", "x").await;
    let other = alice.share("https://example.com/d", "Other", "x").await;
    let elsewhere = alice.comment(other, None, "elsewhere").await;
    let path = format!("/s/{story}/comments");
    let empty = alice.post(&path, &[("body", "  ")]).await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let big = "x".repeat(20_001);
    assert_eq!(
        alice.post(&path, &[("body", &big)]).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let wrong_parent = alice
        .post(
            &path,
            &[("body", "hi"), ("parent_id", &elsewhere.to_string())],
        )
        .await;
    assert_eq!(wrong_parent.status(), StatusCode::NOT_FOUND);
    let bad_parent = alice
        .post(&path, &[("body", "hi"), ("parent_id", "abc")])
        .await;
    assert_eq!(bad_parent.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let no_story = alice.post("/s/999/comments", &[("body", "hi")]).await;
    assert_eq!(no_story.status(), StatusCode::NOT_FOUND);
    assert_eq!(count(&app.pool, "comment").await, 1);
}

#[tokio::test]
async fn a_deleted_comment_with_replies_leaves_a_placeholder() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let story = alice
        .share("https://example.com/del", "Deletions", "x")
        .await;
    let parent = alice.comment(story, None, "regrettable").await;
    let reply = bob.comment(story, Some(parent), "a reply").await;
    let lonely = alice.comment(story, None, "lonely").await;

    assert_eq!(
        bob.post(&format!("/c/{parent}/delete"), &[]).await.status(),
        StatusCode::FORBIDDEN
    );
    let edit = alice
        .post(&format!("/c/{parent}/edit"), &[("body", "edited")])
        .await;
    assert_eq!(edit.status(), StatusCode::SEE_OTHER);
    alice.post(&format!("/c/{parent}/delete"), &[]).await;
    alice.post(&format!("/c/{lonely}/delete"), &[]).await;

    let page = bob.page(&format!("/s/{story}")).await;
    let ids: Vec<i64> = thread(&page).iter().map(|c| c.0).collect();
    assert_eq!(
        ids,
        vec![parent, reply],
        "the placeholder stays, the lonely deletion goes"
    );
    assert!(!page.html().contains("regrettable") && !page.html().contains("edited"));
    assert_eq!(select_text(&page, "a.comments"), vec!["1 comment"]);
    let newest = bob.page("/comments").await;
    assert_eq!(
        select_attr(&newest, "div.comment", "data-id"),
        vec![reply.to_string()]
    );
}
