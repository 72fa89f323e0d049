//! Mentions from anyone: a public Mastodon status from an account nobody on lien follows that
//! mentions a lien person reaches their notifications (text, author, a link to the original),
//! without becoming a story, and they can answer it from lien.

use reqwest::StatusCode;
use serde_json::Value;

use crate::{
    federation::{deliver_all, dev_instance},
    helpers::{count, location, select_attr, select_text},
    mastodon::FakeMastodon,
};

#[tokio::test]
async fn a_mention_from_a_stranger_notifies_and_can_be_answered() {
    let lien = dev_instance().await;
    let alice = lien.user("alice").await;
    let mastodon = FakeMastodon::start(&lien).await;
    let alice_id = format!("{}/users/alice", lien.address);
    mastodon.learn_key(&alice_id).await;
    let mallory = mastodon.account("mallory").actor.clone();
    let status = |number: &str, text: &str| {
        mastodon
            .activity(
                "create_note.json",
                "mallory",
                &[
                    ("STATUS", number),
                    ("IN_REPLY_TO", "null"),
                    ("MENTIONED", &alice_id),
                    ("MENTIONED_NAME", "alice"),
                    ("TEXT", text),
                ],
            )
            .replace("\"null\"", "null")
    };
    let inbox = format!("{}/users/alice/inbox", lien.address);

    // A mention that is not public (a direct message) is not kept.
    let direct: Value = serde_json::from_str(&status("40", "just between us")).unwrap();
    let mut direct = direct;
    for field in ["to", "cc"] {
        direct[field] = serde_json::json!([alice_id]);
        direct["object"][field] = serde_json::json!([alice_id]);
    }
    assert_eq!(
        mastodon
            .deliver(&inbox, &direct.to_string(), "mallory")
            .await,
        StatusCode::OK
    );
    assert_eq!(count(&lien.pool, "remote_mention").await, 0);

    // A public one is: alice is told, and nothing reaches the front pages.
    let public = status("41", "have you seen this, alice?");
    mastodon.publish(&public);
    assert_eq!(
        mastodon.deliver(&inbox, &public, "mallory").await,
        StatusCode::OK
    );
    assert_eq!(count(&lien.pool, "story").await, 0);
    crate::helpers::caches_catch_up().await;
    let page = alice.page("/tags").await;
    assert_eq!(select_text(&page, ".unread-count"), vec!["1"]);
    let page = alice.page("/notifications").await;
    assert_eq!(
        select_text(&page, ".remote-mention a.author"),
        vec![format!("mallory@{}", mastodon.host())]
    );
    let text = select_text(&page, ".remote-mention .text").join(" ");
    assert!(text.contains("have you seen this, alice?"), "{text}");
    assert!(!page.html().contains("<script>alert"), "sanitized");
    assert_eq!(
        select_attr(&page, ".remote-mention a.original", "href"),
        vec![format!("{}/@mallory/41", mastodon.state.origin)]
    );
    assert_eq!(select_text(&page, ".remote-mention .new").len(), 1);
    // Seen once, it is read.
    let page = alice.page("/notifications").await;
    assert!(select_text(&page, ".remote-mention .new").is_empty());
    // The private notifications feed has it too.
    let feed_url = select_attr(&page, "a.private-feed", "href").remove(0);
    let feed = reqwest::get(&feed_url).await.unwrap().text().await.unwrap();
    assert!(feed.contains("have you seen this, alice?"), "{feed}");
    assert!(feed.contains(&format!("mallory@{} mentioned you", mastodon.host())));

    // alice answers from lien: the status opens here as a discussion, and her reply goes to
    // mallory's server, answering the status and mentioning mallory.
    let reply = select_attr(&page, ".remote-mention a.reply", "href").remove(0);
    let response = alice.get(&reply).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let discussion = location(&response);
    let story: i64 = discussion
        .trim_start_matches("/s/")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    alice.comment(story, None, "I have, thanks").await;
    deliver_all(&lien).await;
    assert!(mastodon.state.problems.lock().unwrap().is_empty());
    let status_id = format!("{mallory}/statuses/41");
    let create = mastodon
        .received()
        .into_iter()
        .find(|a| a["type"] == "Create" && a["object"]["type"] == "Note")
        .expect("alice's reply reached mallory's server");
    assert_eq!(create["actor"], alice_id);
    assert_eq!(create["object"]["inReplyTo"], status_id);
    assert_eq!(create["object"]["tag"][0]["href"], mallory);
    assert!(create["object"]["content"]
        .as_str()
        .unwrap()
        .contains("I have, thanks"));
}
