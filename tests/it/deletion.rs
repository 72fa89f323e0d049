//! Account deletion (issue 8): from /settings with the password, keeping or removing what the
//! account wrote; the name cannot log in again, the actor answers 410, and the `Delete` of the
//! actor reaches the servers that know it.

use reqwest::StatusCode;
use serde_json::Value;

use crate::{
    federation::{deliver_all, dev_instance, host, resolve},
    helpers::{select_attr, select_text, story_ids, TestApp},
};

#[tokio::test]
async fn a_deleted_account_is_gone_here_and_on_the_servers_that_know_it() {
    let a = dev_instance().await;
    let b = dev_instance().await;
    let alice = a.user("alice").await;
    let story = alice
        .share("https://example.com/kept", "Alice's story", "web")
        .await;
    let carol = a.user("carol").await;
    carol.comment(story, None, "Carol was here").await;

    // Bob, on B, follows alice and comments on her story there: B has her and her story.
    let bob = b.user("bob").await;
    let profile = resolve(&bob, &format!("@alice@{}", host(&a))).await;
    bob.post(&format!("{profile}/follow"), &[]).await;
    let story_b_page = resolve(&bob, &format!("{}/s/{story}", a.address)).await;
    let story_b: i64 = select_attr(&bob.page(&story_b_page).await, "article.story", "data-id")[0]
        .parse()
        .unwrap();
    bob.comment(story_b, None, "Hello alice").await;
    deliver_all(&b).await;
    deliver_all(&a).await;
    assert!(story_ids(&bob, "/new").await.contains(&story_b));

    // A wrong password, or no choice of what becomes of the content, changes nothing.
    let refused = alice
        .post(
            "/settings/delete",
            &[("password", "wrong horse"), ("content", "keep")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refused = alice
        .post("/settings/delete", &[("password", "correct horse")])
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(alice.get("/settings").await.status(), StatusCode::OK);
    let no_csrf = alice
        .post_raw(
            "/settings/delete",
            &[("password", "correct horse"), ("content", "keep")],
        )
        .await;
    assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN);

    let deleted = alice
        .post(
            "/settings/delete",
            &[("password", "correct horse"), ("content", "keep")],
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);

    // Here: logged out, the name cannot log in nor be taken, and the story stays under "[deleted]".
    assert_eq!(alice.get("/settings").await.status(), StatusCode::SEE_OTHER);
    let login = a
        .browser()
        .post(
            "/login",
            &[("name", "alice"), ("password", "correct horse")],
        )
        .await;
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        a.browser().signup("alice", "another horse").await.status(),
        StatusCode::CONFLICT
    );
    let page = carol.page(&format!("/s/{story}")).await;
    assert_eq!(
        select_text(&page, "article.story .byline .author"),
        vec!["[deleted]"]
    );
    assert_eq!(select_text(&page, ".title a.link"), vec!["Alice's story"]);
    assert_eq!(carol.get("/@alice").await.status(), StatusCode::GONE);
    let actor = reqwest::Client::new()
        .get(format!("{}/users/alice", a.address))
        .header("Accept", "application/activity+json")
        .send()
        .await
        .unwrap();
    assert_eq!(actor.status(), StatusCode::GONE);
    let tombstone: Value = actor.json().await.unwrap();
    assert_eq!(tombstone["type"], "Tombstone");
    assert_eq!(tombstone["formerType"], "Person");

    // There: the signed Delete of the actor arrives and her story goes.
    let deletes: i64 = sqlx::query_scalar(
        "select count(*) from delivery where payload->>'type' = 'Delete'
         and payload->>'object' = $1 and host = $2",
    )
    .bind(format!("{}/users/alice", a.address))
    .bind(host(&b))
    .fetch_one(&a.pool)
    .await
    .unwrap();
    assert_eq!(deletes, 1, "the Delete is queued for B");
    // B's copy of alice is old (B would refetch it, and get 410): the Delete is verified with the
    // key B kept. A forged one, signed with another key, is refused and changes nothing there.
    let refreshed = || async {
        sqlx::query_scalar::<_, Option<chrono::DateTime<chrono::Utc>>>(
            "select fetched_at from person where ap_id = $1",
        )
        .bind(format!("{}/users/alice", a.address))
        .fetch_one(&b.pool)
        .await
        .unwrap()
    };
    sqlx::query("update person set fetched_at = now() - interval '30 days' where ap_id = $1")
        .bind(format!("{}/users/alice", a.address))
        .execute(&b.pool)
        .await
        .unwrap();
    let stale = refreshed().await;
    let forger = crate::mastodon::FakeMastodon::start(&b).await;
    let forged = serde_json::json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{}/users/alice#forged-delete", a.address),
        "type": "Delete",
        "actor": format!("{}/users/alice", a.address),
        "object": format!("{}/users/alice", a.address),
    })
    .to_string();
    let status = forger
        .deliver(&format!("{}/inbox", b.address), &forged, "mallory")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(refreshed().await, stale, "a refused Delete wrote nothing");
    assert!(story_ids(&bob, "/new").await.contains(&story_b));
    deliver_all(&a).await;
    assert!(!story_ids(&bob, "/new").await.contains(&story_b));
    let gone: bool =
        sqlx::query_scalar("select deleted_at is not null from person where ap_id = $1")
            .bind(format!("{}/users/alice", a.address))
            .fetch_one(&b.pool)
            .await
            .unwrap();
    assert!(gone, "B marks the actor deleted");
}

#[tokio::test]
async fn removing_the_content_keeps_the_replies_in_place() {
    let app = TestApp::spawn().await;
    let carol = app.user("carol").await;
    let dave = app.user("dave").await;
    let own = carol
        .share_text("Carol's text post", "Words of carol", "meta")
        .await;
    let other = dave
        .share_text("Dave's post", "Words of dave", "meta")
        .await;
    let comment = carol.comment(other, None, "A comment of carol").await;
    dave.comment(other, Some(comment), "Dave answers").await;

    let deleted = carol
        .post(
            "/settings/delete",
            &[("password", "correct horse"), ("content", "remove")],
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);

    assert_eq!(
        dave.get(&format!("/s/{own}")).await.status(),
        StatusCode::GONE
    );
    let page = dave.page(&format!("/s/{other}")).await;
    let html = page.html();
    assert!(!html.contains("A comment of carol"));
    assert!(html.contains("Dave answers"));
    assert_eq!(
        select_text(&page, "div.comment.deleted > .head > .byline"),
        vec!["[deleted]"]
    );
    let bodies: i64 = sqlx::query_scalar(
        "select (select count(*) from story where body like '%carol%')
              + (select count(*) from comment where body like '%carol%')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(bodies, 0);
    let sessions: i64 = sqlx::query_scalar(
        "select count(*) from session s join person p on p.id = s.person_id where p.name = 'carol'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(sessions, 0);
}
