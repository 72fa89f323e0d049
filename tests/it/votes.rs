use chrono::{DateTime, Utc};
use reqwest::StatusCode;

use crate::helpers::{count, select_attr, story_ids, TestApp};

#[tokio::test]
async fn votes_change_the_order_of_the_front_page() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let older = alice.share("https://example.com/older", "Older", "x").await;
    let newer = alice.share("https://example.com/newer", "Newer", "x").await;
    // Same score: the newer story ranks first.
    assert_eq!(story_ids(&bob, "/").await, vec![newer, older]);
    // Votes raise the older one above it.
    for voter in [&bob, &carol] {
        assert_eq!(
            voter.vote(&format!("/s/{older}"), "1").await.status(),
            StatusCode::SEE_OTHER
        );
    }
    assert_eq!(story_ids(&bob, "/").await, vec![older, newer]);
    // A downvote and a withdrawn vote bring it back down.
    bob.vote(&format!("/s/{older}"), "-1").await;
    carol.vote(&format!("/s/{older}"), "0").await;
    let page = bob.page(&format!("/s/{older}")).await;
    assert_eq!(select_attr(&page, "article.story", "data-score"), vec!["0"]);
    assert_eq!(story_ids(&bob, "/").await, vec![newer, older]);
    assert_eq!(count(&app.pool, "story_vote").await, 3);
}

#[tokio::test]
async fn voting_answers_json_for_the_script_and_refuses_bad_values() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let id = alice.share("https://example.com/", "Home", "x").await;
    let csrf = bob.csrf().await;
    let response = bob
        .client
        .post(format!("{}/s/{id}/vote", bob.address))
        .header("Accept", "application/json")
        .form(&[("value", "1"), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "score": 2, "vote": 1 }));

    assert_eq!(
        bob.vote(&format!("/s/{id}"), "2").await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        bob.vote("/s/999", "1").await.status(),
        StatusCode::NOT_FOUND
    );
    let visitor = app.browser();
    assert_eq!(
        visitor.vote(&format!("/s/{id}"), "1").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(count(&app.pool, "story_vote").await, 2);
}

#[tokio::test]
async fn the_stored_hot_rank_matches_the_formula() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let id = alice.share("https://example.com/rank", "Rank", "x").await;
    bob.vote(&format!("/s/{id}"), "1").await;
    let (score, created_at, stored): (i32, DateTime<Utc>, f64) =
        sqlx::query_as("select score, created_at, hot_rank from story where id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(score, 2);
    let expected = lien::ranking::hot_rank(score, created_at);
    assert!((stored - expected).abs() < 1e-9, "{stored} vs {expected}");

    for (up, down) in [(0, 0), (1, 0), (5, 2), (100, 3)] {
        let stored: f64 = sqlx::query_scalar("select wilson_lower_bound($1, $2)")
            .bind(up)
            .bind(down)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        let expected = lien::ranking::wilson_lower_bound(up, down);
        assert!(
            (stored - expected).abs() < 1e-6,
            "wilson({up}, {down}): {stored} vs {expected}"
        );
    }
}
