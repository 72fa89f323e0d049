//! How a lien story's `Page` looks to each server (README, "How a lien story looks elsewhere"):
//! the canonical shape and its variants, served by User-Agent and delivered by what a peer was
//! learned to run, each compared with its fixture in tests/fixtures/pages/; and lien reading its
//! own shapes back, old and new.

use reqwest::StatusCode;
use serde_json::Value;

use crate::{
    federation::{deliver_all, dev_instance, resolve},
    helpers::{select_attr, select_text, Browser, TestApp},
    mastodon::FakeMastodon,
};

/// The User-Agents each server fetches with (from their sources; see `peers::from_user_agent`).
const AGENTS: [(&str, &str); 6] = [
    ("canonical", "Misskey/2025.1.0 (https://mk.example)"),
    (
        "mastodon",
        "http.rb/5.2.0 (Mastodon/4.5.0; +https://m.example/)",
    ),
    (
        "gotosocial",
        "gotosocial (+https://g.example) gotosocial/0.17.3",
    ),
    ("takahe", "takahe/0.11.0 (+https://t.example/)"),
    ("lien", "lien/0.1.0 (+https://l.example)"),
    ("lemmy", "Lemmy/0.19.5; +https://lemmy.example"),
];

fn fixture(name: &str, app: &TestApp, story: i64) -> Value {
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/pages/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .replace("{{ORIGIN}}", &app.address)
    .replace("{{STORY}}", &story.to_string());
    serde_json::from_str(&text).unwrap()
}

/// A Page without what changes from run to run (its publication time).
fn steady(mut page: Value) -> Value {
    page.as_object_mut().unwrap().remove("published");
    page
}

async fn fetch_as(app: &TestApp, story: i64, agent: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}/s/{story}", app.address))
        .header("Accept", "application/activity+json")
        .header("User-Agent", agent)
        .send()
        .await
        .unwrap()
}

/// alice's link story with text of its own.
async fn story_with_text(app: &TestApp) -> (Browser, i64) {
    let alice = app.user("alice").await;
    let response = alice
        .post(
            "/submit",
            &[
                ("url", "https://example.com/article"),
                ("title", "Tea & \"cake\""),
                ("body", "Worth *reading*."),
                ("tags", "web"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let story = crate::helpers::location(&response)
        .trim_start_matches("/s/")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (alice, story)
}

#[tokio::test]
async fn each_server_gets_the_page_shape_it_reads_well() {
    let app = dev_instance().await;
    let (_, story) = story_with_text(&app).await;
    for (name, agent) in AGENTS {
        let response = fetch_as(&app, story, agent).await;
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        assert_eq!(response.headers()["vary"], "Accept, User-Agent", "{name}");
        let mut page: Value = response.json().await.unwrap();
        page.as_object_mut().unwrap().remove("@context");
        // Lemmy, PieFed and Mbin read the same variant as lien.
        let expected = if name == "lemmy" { "lien" } else { name };
        eprintln!(
            "FIXTURE {name} {}",
            serde_json::to_string(&steady(page.clone()))
                .unwrap()
                .replace(&app.address, "{{ORIGIN}}")
        );
        assert_eq!(
            steady(page),
            fixture(expected, &app, story),
            "the Page {name} gets"
        );
    }
}

#[tokio::test]
async fn deliveries_carry_the_variant_of_each_peer() {
    let app = dev_instance().await;
    let (alice, story) = story_with_text(&app).await;
    let mastodon = FakeMastodon::start(&app).await;
    let alice_id = format!("{}/users/alice", app.address);
    mastodon.learn_key(&alice_id).await;
    // mallory follows alice: her server's User-Agent says Mastodon.
    let follow = mastodon.activity(
        "follow.json",
        "mallory",
        &[("FOLLOW", "f-1"), ("OBJECT", &alice_id)],
    );
    let inbox = format!("{}/inbox", app.address);
    assert_eq!(
        mastodon.deliver(&inbox, &follow, "mallory").await,
        StatusCode::OK
    );
    let learned: String = sqlx::query_scalar("select software from peer_software where host = $1")
        .bind(mastodon.host())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(learned, "mastodon");

    // An edit goes out as an Update, in the Mastodon variant.
    let edited = alice
        .post(
            &format!("/s/{story}/edit"),
            &[
                ("url", "https://example.com/article"),
                ("title", "Tea & \"cake\""),
                ("body", "Worth *reading*."),
                ("tags", "web"),
            ],
        )
        .await;
    assert_eq!(edited.status(), StatusCode::SEE_OTHER);
    deliver_all(&app).await;
    let update = mastodon
        .received()
        .into_iter()
        .find(|a| a["type"] == "Update")
        .expect("an Update(Page)");
    let mut expected = fixture("mastodon", &app, story);
    expected["updated"] = update["object"]["updated"].clone();
    assert_eq!(steady(update["object"].clone()), expected);

    // Had the server been a GoToSocial, the title would have gone as `nameMap`.
    sqlx::query("update peer_software set software = 'gotosocial' where host = $1")
        .bind(mastodon.host())
        .execute(&app.pool)
        .await
        .unwrap();
    alice
        .post(
            &format!("/s/{story}/edit"),
            &[
                ("url", "https://example.com/article"),
                ("title", "Tea & \"cake\""),
                ("body", "Worth *reading*."),
                ("tags", "web"),
            ],
        )
        .await;
    deliver_all(&app).await;
    let updates: Vec<Value> = mastodon
        .received()
        .into_iter()
        .filter(|a| a["type"] == "Update")
        .collect();
    assert_eq!(updates.len(), 2);
    assert!(updates[1]["object"].get("name").is_none());
    assert_eq!(updates[1]["object"]["nameMap"]["und"], "Tea & \"cake\"");
    assert!(mastodon.state.problems.lock().unwrap().is_empty());
}

/// A story lien got from another lien keeps its title, link and own text, whatever shape the
/// other lien sent: this one's (canonical or a variant) or the one before it.
#[tokio::test]
async fn lien_reads_its_own_shapes_old_and_new() {
    let a = dev_instance().await;
    let b = dev_instance().await;
    let (_, story) = story_with_text(&a).await;
    let bob = b.user("bob").await;

    // lien to lien, as it happens: b fetches with lien's User-Agent and gets `source`.
    let page_b = resolve(&bob, &format!("{}/s/{story}", a.address)).await;
    let page = bob.page(&page_b).await;
    assert_eq!(select_text(&page, ".title a.link"), vec!["Tea & \"cake\""]);
    assert_eq!(
        select_attr(&page, ".title a.link", "href"),
        vec!["https://example.com/article"]
    );
    let stored: (String, String, Option<String>) =
        sqlx::query_as("select body, body_html, remote_url from story where ap_id = $1")
            .bind(format!("{}/s/{story}", a.address))
            .fetch_one(&b.pool)
            .await
            .unwrap();
    assert_eq!(stored.0, "Worth *reading*.");
    assert_eq!(stored.1.trim(), "<p>Worth <em>reading</em>.</p>");
    assert_eq!(stored.2, None, "the shared link is not the original's page");

    // The other shapes, served by a peer at its own ids.
    let mastodon = FakeMastodon::start(&b).await;
    let mallory = mastodon.account("mallory").actor.clone();
    let canonical = fixture("canonical", &a, story);
    let gotosocial = fixture("gotosocial", &a, story);
    let old = serde_json::json!({
        "type": "Page", "name": "Tea & \"cake\"",
        "url": "{{PAGE}}",
        "summary": "<p><a href=\"https://example.com/article\">https://example.com/article</a></p><p>Worth <em>reading</em>.</p>",
        "content": "<p><a href=\"https://example.com/article\">https://example.com/article</a></p><p>Worth <em>reading</em>.</p>",
        "source": {"content": "Worth *reading*.", "mediaType": "text/markdown"},
        "attachment": [{"type": "Link", "href": "https://example.com/article"}],
        "to": ["https://www.w3.org/ns/activitystreams#Public"]
    });
    for (n, shape) in [canonical, gotosocial, old].into_iter().enumerate() {
        let id = format!("{}/pages/{n}", mastodon.state.origin);
        let mut doc = shape;
        doc["id"] = Value::String(id.clone());
        doc["attributedTo"] = Value::String(mallory.clone());
        if doc["url"] == "{{PAGE}}" {
            doc["url"] = Value::String(format!("{id}/page"));
        }
        doc["@context"] = serde_json::json!("https://www.w3.org/ns/activitystreams");
        mastodon.serve(doc);
        let page = bob.page(&resolve(&bob, &id).await).await;
        assert_eq!(
            select_text(&page, ".title a.link"),
            vec!["Tea & \"cake\""],
            "shape {n}"
        );
        assert_eq!(
            select_attr(&page, ".title a.link", "href"),
            vec!["https://example.com/article"],
            "shape {n}"
        );
        let body: String = sqlx::query_scalar("select body_html from story where ap_id = $1")
            .bind(&id)
            .fetch_one(&b.pool)
            .await
            .unwrap();
        assert_eq!(body.trim(), "<p>Worth <em>reading</em>.</p>", "shape {n}");
    }
}
