//! Quote posts (FEP-044f, Mastodon 4.5): a Mastodon user quoting a lien story or comment sends a
//! `QuoteRequest`; lien answers with an `Accept` whose `result` is a `QuoteAuthorization` anyone
//! can fetch, counts the quote on the story, and revokes it when the quoted post goes.

use reqwest::StatusCode;
use serde_json::Value;

use crate::{
    federation::{deliver_all, dev_instance},
    helpers::{count, select_text},
    mastodon::FakeMastodon,
};

async fn get_json(url: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .get(url)
        .header("Accept", "application/activity+json")
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn quote_count(pool: &sqlx::PgPool, story: i64) -> i32 {
    sqlx::query_scalar("select quote_count from story where id = $1")
        .bind(story)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_quote_request_is_accepted_with_an_authorization_anyone_can_check() {
    let lien = dev_instance().await;
    let alice = lien.user("alice").await;
    let story = alice
        .share("https://example.com/quoted", "Quote me", "web")
        .await;
    let comment = alice.comment(story, None, "and me").await;
    let mastodon = FakeMastodon::start(&lien).await;
    let alice_id = format!("{}/users/alice", lien.address);
    mastodon.learn_key(&alice_id).await;
    let story_id = format!("{}/s/{story}", lien.address);
    let comment_id = format!("{}/c/{comment}", lien.address);
    let inbox = format!("{}/users/alice/inbox", lien.address);
    let mallory = mastodon.account("mallory").actor.clone();
    let request = |account: &str, request: &str, status: &str, object: &str, quoted: &str| {
        mastodon.activity(
            "quote_request.json",
            account,
            &[
                ("REQUEST", request),
                ("STATUS", status),
                ("OBJECT", object),
                ("OBJECT_AUTHOR", &alice_id),
                ("QUOTED", quoted),
            ],
        )
    };

    // A quote of something else than what is asked for, or another's status, is refused.
    let wrong = request("mallory", "q-0", "100", &story_id, &comment_id);
    assert_eq!(
        mastodon.deliver(&inbox, &wrong, "mallory").await,
        StatusCode::BAD_REQUEST
    );
    let mut not_hers: Value =
        serde_json::from_str(&request("mallory", "q-00", "101", &story_id, &story_id)).unwrap();
    not_hers["instrument"]["attributedTo"] = Value::String(mastodon.account("eve").actor.clone());
    assert_eq!(
        mastodon
            .deliver(&inbox, &not_hers.to_string(), "mallory")
            .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(count(&lien.pool, "quote_authorization").await, 0);

    // mallory quotes the story: alice accepts, with an authorization on her own server.
    let quote = request("mallory", "q-1", "114900", &story_id, &story_id);
    assert_eq!(
        mastodon.deliver(&inbox, &quote, "mallory").await,
        StatusCode::OK
    );
    deliver_all(&lien).await;
    assert!(mastodon.state.problems.lock().unwrap().is_empty());
    let accepts: Vec<Value> = mastodon
        .received()
        .into_iter()
        .filter(|a| a["type"] == "Accept")
        .collect();
    assert_eq!(accepts.len(), 1);
    let accept = &accepts[0];
    let status = format!("{mallory}/statuses/114900");
    assert_eq!(accept["actor"], alice_id);
    assert_eq!(
        accept["object"],
        serde_json::json!({
            "id": format!("{mallory}/quote_requests/q-1"), "type": "QuoteRequest",
            "actor": mallory, "object": story_id, "instrument": status,
        })
    );
    let result = accept["result"].as_str().unwrap().to_owned();
    assert!(result.starts_with(&format!("{}/quote_authorizations/", lien.address)));

    // The authorization, as Mastodon's verify_quote_service checks it.
    let (code, stamp) = get_json(&result).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(stamp["id"], result);
    assert_eq!(stamp["type"], "QuoteAuthorization");
    assert_eq!(stamp["attributedTo"], alice_id);
    assert_eq!(stamp["interactingObject"], status);
    assert_eq!(stamp["interactionTarget"], story_id);
    assert_eq!(
        stamp["@context"][0],
        "https://www.w3.org/ns/activitystreams"
    );

    // It counts on the story's page, once however often it is asked.
    assert_eq!(
        mastodon.deliver(&inbox, &quote, "mallory").await,
        StatusCode::OK
    );
    let again = request("mallory", "q-2", "114900", &story_id, &story_id);
    assert_eq!(
        mastodon.deliver(&inbox, &again, "mallory").await,
        StatusCode::OK
    );
    assert_eq!(quote_count(&lien.pool, story).await, 1);
    let page = alice.page(&format!("/s/{story}")).await;
    assert!(select_text(&page, ".byline")
        .iter()
        .any(|t| t.contains("1 quote")));

    // A comment can be quoted too; the status named by id is fetched from eve's server.
    let eve = mastodon.account("eve").actor.clone();
    let by_id: Value =
        serde_json::from_str(&request("eve", "q-3", "200", &comment_id, &comment_id)).unwrap();
    let mut status_200 = by_id["instrument"].clone();
    status_200["@context"] = by_id["@context"].clone();
    mastodon.serve(status_200);
    let mut by_id = by_id;
    by_id["instrument"] = Value::String(format!("{eve}/statuses/200"));
    assert_eq!(
        mastodon.deliver(&inbox, &by_id.to_string(), "eve").await,
        StatusCode::OK
    );
    deliver_all(&lien).await;
    let accept = mastodon
        .received()
        .into_iter()
        .filter(|a| a["type"] == "Accept")
        .find(|a| a["object"]["actor"] == eve.as_str())
        .expect("eve's quote accepted");
    let eve_stamp = accept["result"].as_str().unwrap().to_owned();
    assert_eq!(
        get_json(&eve_stamp).await.1["interactionTarget"],
        comment_id
    );
    assert_eq!(
        quote_count(&lien.pool, story).await,
        1,
        "only stories count"
    );

    // mallory deletes her quote: it no longer counts, and its authorization is gone.
    let delete = mastodon.activity("delete_note.json", "mallory", &[("STATUS", "114900")]);
    assert_eq!(
        mastodon.deliver(&inbox, &delete, "mallory").await,
        StatusCode::OK
    );
    assert_eq!(quote_count(&lien.pool, story).await, 0);
    assert_eq!(get_json(&result).await.0, StatusCode::GONE);

    // alice deletes her comment: eve's quote of it is revoked, with a Delete eve's server hears.
    assert_eq!(
        alice
            .post(&format!("/c/{comment}/delete"), &[])
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    deliver_all(&lien).await;
    let revoked = mastodon
        .received()
        .into_iter()
        .find(|a| a["type"] == "Delete" && a["object"]["type"] == "QuoteAuthorization")
        .expect("the revocation");
    assert_eq!(revoked["actor"], alice_id);
    assert_eq!(revoked["object"]["id"], eve_stamp);
    assert_eq!(get_json(&eve_stamp).await.0, StatusCode::GONE);
    assert!(mastodon.state.problems.lock().unwrap().is_empty());
}

#[tokio::test]
async fn stories_and_comments_say_anyone_may_quote_them() {
    let lien = dev_instance().await;
    let alice = lien.user("alice").await;
    let story = alice.share("https://example.com/q", "Q", "web").await;
    let comment = alice.comment(story, None, "c").await;
    for path in [format!("/s/{story}"), format!("/c/{comment}")] {
        let (_, post) = get_json(&format!("{}{path}", lien.address)).await;
        assert_eq!(
            post["interactionPolicy"],
            serde_json::json!({"canQuote": {"automaticApproval": ["https://www.w3.org/ns/activitystreams#Public"]}}),
            "{path}"
        );
        let context = post["@context"][2].clone();
        assert_eq!(context["interactionPolicy"]["@id"], "gts:interactionPolicy");
        assert_eq!(context["gts"], "https://gotosocial.org/ns#");
    }
}
