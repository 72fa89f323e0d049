//! Moderation between two lien instances: a restore undoes the removal's `Delete` on peers, and
//! a report on a remote post is forwarded to its home server as a `Flag`.

use reqwest::StatusCode;

use crate::{
    federation::{deliver_all, dev_instance, host, resolve},
    helpers::{select_attr, story_ids, Browser, TestApp},
    mastodon::FakeMastodon,
    moderation::{admin, moderate},
};

/// Alice, on A, shares a story and comments on it; Bob, on B, follows her and opens the story
/// there (its replies come along).
struct Followed {
    a: TestApp,
    b: TestApp,
    bob: Browser,
    story: i64,
    comment: i64,
    /// The story's id on B.
    story_b: i64,
}

async fn alice_followed_from_b(title: &str, comment: &str) -> Followed {
    let a = dev_instance().await;
    let b = dev_instance().await;
    let alice = a.user("alice").await;
    let story = alice
        .share(
            &format!(
                "https://example.com/{}",
                title.to_lowercase().replace(' ', "-")
            ),
            title,
            "web",
        )
        .await;
    let comment = alice.comment(story, None, comment).await;
    let bob = b.user("bob").await;
    let profile = resolve(&bob, &format!("@alice@{}", host(&a))).await;
    bob.post(&format!("{profile}/follow"), &[]).await;
    deliver_all(&b).await;
    deliver_all(&a).await;
    let page = resolve(&bob, &format!("{}/s/{story}", a.address)).await;
    let story_b: i64 = select_attr(&bob.page(&page).await, "article.story", "data-id")[0]
        .parse()
        .unwrap();
    Followed {
        a,
        b,
        bob,
        story,
        comment,
        story_b,
    }
}

#[tokio::test]
async fn a_restore_brings_removed_posts_back_on_peers() {
    let Followed {
        a,
        b,
        bob,
        story,
        comment,
        story_b,
    } = alice_followed_from_b("Back again", "Alice's own words").await;
    let thread = || async { bob.page(&format!("/s/{story_b}")).await.html() };
    assert!(thread().await.contains("Alice's own words"));

    let root = admin(&a).await;
    moderate(&root, "remove", "comment", &comment.to_string(), "oops").await;
    deliver_all(&a).await;
    assert!(!thread().await.contains("Alice's own words"));
    moderate(
        &root,
        "restore",
        "comment",
        &comment.to_string(),
        "fine after all",
    )
    .await;
    deliver_all(&a).await;
    assert!(
        thread().await.contains("Alice's own words"),
        "the comment is back on B, its text fetched again"
    );

    moderate(&root, "remove", "story", &story.to_string(), "oops").await;
    deliver_all(&a).await;
    assert!(!story_ids(&bob, "/new").await.contains(&story_b));
    moderate(&root, "restore", "story", &story.to_string(), "fine").await;
    deliver_all(&a).await;
    assert!(story_ids(&bob, "/new").await.contains(&story_b));

    // Only the author can bring a post back: another server's Undo of its Delete is refused.
    moderate(&root, "remove", "comment", &comment.to_string(), "again").await;
    deliver_all(&a).await;
    let mastodon = FakeMastodon::start(&b).await;
    let mallory = mastodon.account("mallory").actor.clone();
    let undo = serde_json::json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{mallory}#undo-delete"),
        "type": "Undo",
        "actor": mallory,
        "object": {
            "id": format!("{mallory}#delete"),
            "type": "Delete",
            "actor": mallory,
            "object": format!("{}/c/{comment}", a.address),
        },
    })
    .to_string();
    let status = mastodon
        .deliver(&format!("{}/inbox", b.address), &undo, "mallory")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!thread().await.contains("Alice's own words"));
}

#[tokio::test]
async fn a_ban_takes_the_persons_posts_off_peers_and_lifting_it_brings_them_back() {
    let Followed {
        a,
        b,
        bob,
        story: _,
        comment,
        story_b,
    } = alice_followed_from_b("Maybe spam", "More of the same").await;
    let comment_gone_on_b = || async {
        sqlx::query_scalar::<_, bool>("select deleted_at is not null from comment where ap_id = $1")
            .bind(format!("{}/c/{comment}", a.address))
            .fetch_one(&b.pool)
            .await
            .unwrap()
    };
    assert!(story_ids(&bob, "/new").await.contains(&story_b));
    assert!(!comment_gone_on_b().await);

    let root = admin(&a).await;
    moderate(&root, "ban", "person", "alice", "spam").await;
    deliver_all(&a).await;
    assert!(!story_ids(&bob, "/new").await.contains(&story_b));
    assert!(comment_gone_on_b().await);

    moderate(&root, "unban", "person", "alice", "appeal granted").await;
    deliver_all(&a).await;
    assert!(story_ids(&bob, "/new").await.contains(&story_b));
    assert!(!comment_gone_on_b().await);
}

#[tokio::test]
async fn a_report_on_a_remote_post_reaches_its_home_server() {
    let a = dev_instance().await;
    let b = dev_instance().await;
    let alice = a.user("alice").await;
    let story = alice
        .share("https://example.com/dubious", "A dubious claim", "web")
        .await;
    let comment = alice.comment(story, None, "A dubious comment").await;
    let bob = b.user("bob").await;
    let page = resolve(&bob, &format!("{}/s/{story}", a.address)).await;
    let story_b: i64 = select_attr(&bob.page(&page).await, "article.story", "data-id")[0]
        .parse()
        .unwrap();

    // Bob reports the story and ticks "also tell": a Flag by B's instance actor goes to A.
    let response = bob
        .post(
            &format!("/s/{story_b}/report"),
            &[("reason", "misleading title"), ("forward", "1")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let flag: serde_json::Value =
        sqlx::query_scalar("select payload from delivery where payload->>'type' = 'Flag'")
            .fetch_one(&b.pool)
            .await
            .unwrap();
    assert_eq!(flag["actor"], format!("{}/actor", b.address));
    assert_eq!(
        flag["object"],
        serde_json::json!([
            format!("{}/users/alice", a.address),
            format!("{}/s/{story}", a.address)
        ])
    );
    assert_eq!(flag["content"], "misleading title");
    deliver_all(&b).await;
    let root = admin(&a).await;
    let page = root.page("/admin").await.html();
    assert!(
        page.contains("misleading title"),
        "the report is in A's /admin"
    );

    // Without the tick nothing leaves B; B's moderator can forward it afterwards.
    let comment_b: i64 = sqlx::query_scalar("select id from comment where ap_id = $1")
        .bind(format!("{}/c/{comment}", a.address))
        .fetch_one(&b.pool)
        .await
        .unwrap();
    bob.post(
        &format!("/c/{comment_b}/report"),
        &[("reason", "rude comment")],
    )
    .await;
    let queued: i64 = sqlx::query_scalar("select count(*) from delivery")
        .fetch_one(&b.pool)
        .await
        .unwrap();
    assert_eq!(queued, 0);
    let report: i64 = sqlx::query_scalar("select id from report where comment_id is not null")
        .fetch_one(&b.pool)
        .await
        .unwrap();
    let b_root = admin(&b).await;
    assert_eq!(
        bob.post(&format!("/admin/reports/{report}/forward"), &[])
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let response = b_root
        .post(&format!("/admin/reports/{report}/forward"), &[])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    deliver_all(&b).await;
    assert!(root.page("/admin").await.html().contains("rude comment"));

    // A report on a local post has nowhere to go.
    let local = bob.share("https://example.com/b", "B's own", "web").await;
    bob.post(&format!("/s/{local}/report"), &[("reason", "mine")])
        .await;
    let own: i64 = sqlx::query_scalar("select id from report where story_id = $1")
        .bind(local)
        .fetch_one(&b.pool)
        .await
        .unwrap();
    let response = b_root
        .post(&format!("/admin/reports/{own}/forward"), &[])
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
