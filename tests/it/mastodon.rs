//! lien against the exact payloads Mastodon sends: a fake Mastodon server serves its actors and
//! statuses, signs its activities with its own keys, and checks what lien sends back the way
//! Mastodon would. Fixtures: tests/fixtures/mastodon/.

use std::{
    collections::HashMap,
    net::TcpListener,
    sync::{Arc, Mutex},
};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

use crate::{
    federation::{deliver_all, dev_instance},
    helpers::{count, select_attr, select_text, Browser, TestApp},
    signatures::{check_signature, signed_post_headers, signed_post_headers_at},
};

/// One fake Mastodon account: its key pair, and its documents filled from the fixtures.
#[derive(Clone)]
pub(crate) struct Account {
    name: String,
    pub(crate) actor: String,
    public_pem: String,
    private_pem: String,
}

pub(crate) struct FakeState {
    pub(crate) origin: String,
    accounts: Vec<Account>,
    statuses: Mutex<HashMap<String, String>>,
    /// What lien delivered: (path, activity), accepted only when the signature checks out.
    received: Mutex<Vec<(String, Value)>>,
    pub(crate) problems: Mutex<Vec<String>>,
    /// Public keys of lien's people, by key id, to check lien's signatures.
    lien_keys: Mutex<HashMap<String, String>>,
}

pub(crate) struct FakeMastodon {
    pub(crate) state: Arc<FakeState>,
    lien_host: String,
    client: reqwest::Client,
}

pub(crate) fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/mastodon/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

pub(crate) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(template.to_owned(), |text, (key, value)| {
            text.replace(&format!("{{{{{key}}}}}"), value)
        })
}

async fn actor_document(path: web::Path<String>, state: web::Data<FakeState>) -> HttpResponse {
    let Some(account) = state.accounts.iter().find(|a| a.name == *path) else {
        return HttpResponse::NotFound().finish();
    };
    let pem = account.public_pem.replace('\n', "\\n");
    let body = fill(
        &fixture("actor.json"),
        &[
            ("ACTOR", &account.actor),
            ("NAME", &account.name),
            ("ORIGIN", &state.origin),
            ("PUBLIC_KEY", &pem),
        ],
    );
    HttpResponse::Ok()
        .content_type("application/activity+json; charset=utf-8")
        .body(body)
}

/// Serves whatever was published at this exact address (statuses, collection pages).
async fn document(req: HttpRequest, state: web::Data<FakeState>) -> HttpResponse {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let key = format!("{}{path}", state.origin);
    match state.statuses.lock().unwrap().get(&key) {
        Some(body) => HttpResponse::Ok()
            .content_type("application/activity+json; charset=utf-8")
            .body(body.clone()),
        None => HttpResponse::NotFound().finish(),
    }
}

async fn inbox(req: HttpRequest, body: web::Bytes, state: web::Data<FakeState>) -> HttpResponse {
    let keys = state.lien_keys.lock().unwrap().clone();
    if let Err(problem) = check_signature(&req, &body, &keys) {
        state.problems.lock().unwrap().push(problem);
        return HttpResponse::Unauthorized().finish();
    }
    let activity: Value = serde_json::from_slice(&body).unwrap();
    state
        .received
        .lock()
        .unwrap()
        .push((req.path().to_owned(), activity));
    HttpResponse::Accepted().finish()
}

/// Mastodon's NodeInfo, which names its software (lien's tag groups read it).
async fn nodeinfo_links(state: web::Data<FakeState>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "links": [{
        "rel": "http://nodeinfo.diaspora.software/ns/schema/2.0",
        "href": format!("{}/nodeinfo/2.0", state.origin),
    }] }))
}

async fn nodeinfo() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "version": "2.0", "software": { "name": "mastodon", "version": "4.3.0" },
        "protocols": ["activitypub"], "openRegistrations": false,
        "usage": { "users": { "total": 2 }, "localPosts": 1 }, "metadata": {}
    }))
}

impl FakeMastodon {
    /// A Mastodon server on a `localhost` port with accounts `mallory` and `eve`, talking to `lien`.
    pub(crate) async fn start(lien: &TestApp) -> FakeMastodon {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let origin = format!("http://localhost:{}", listener.local_addr().unwrap().port());
        let accounts = ["mallory", "eve"]
            .into_iter()
            .map(|name| {
                let keys =
                    activitypub_federation::http_signatures::generate_actor_keypair().unwrap();
                Account {
                    name: name.to_owned(),
                    actor: format!("{origin}/users/{name}"),
                    public_pem: keys.public_key,
                    private_pem: keys.private_key,
                }
            })
            .collect();
        let state = Arc::new(FakeState {
            origin,
            accounts,
            statuses: Mutex::default(),
            received: Mutex::default(),
            problems: Mutex::default(),
            lien_keys: Mutex::default(),
        });
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/users/{name}", web::get().to(actor_document))
                .route("/.well-known/nodeinfo", web::get().to(nodeinfo_links))
                .route("/nodeinfo/2.0", web::get().to(nodeinfo))
                .route("/users/{name}/inbox", web::post().to(inbox))
                .route("/inbox", web::post().to(inbox))
                .default_service(web::get().to(document))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        // Mastodon's own User-Agent: lien learns from it which software the server runs.
        let client = reqwest::Client::builder()
            .user_agent(format!(
                "http.rb/5.2.0 (Mastodon/4.5.0; +{}/)",
                state.origin
            ))
            .build()
            .unwrap();
        FakeMastodon {
            state,
            lien_host: lien.address.trim_start_matches("http://").to_owned(),
            client,
        }
    }

    pub(crate) fn account(&self, name: &str) -> &Account {
        self.state.accounts.iter().find(|a| a.name == name).unwrap()
    }

    pub(crate) fn host(&self) -> String {
        self.state.origin.trim_start_matches("http://").to_owned()
    }

    /// Learns lien's people's public keys from their actor documents, to check deliveries.
    pub(crate) async fn learn_key(&self, actor: &str) {
        let person: Value = self
            .client
            .get(actor)
            .header("Accept", "application/activity+json")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key_id = person["publicKey"]["id"].as_str().unwrap().to_owned();
        let pem = person["publicKey"]["publicKeyPem"]
            .as_str()
            .unwrap()
            .to_owned();
        self.state.lien_keys.lock().unwrap().insert(key_id, pem);
    }

    /// A fixture filled in for `account`, with the common placeholders and `extra`.
    pub(crate) fn activity(&self, file: &str, account: &str, extra: &[(&str, &str)]) -> String {
        let account = self.account(account);
        let mut values = vec![
            ("ACTOR", account.actor.as_str()),
            ("NAME", account.name.as_str()),
            ("ORIGIN", self.state.origin.as_str()),
            ("LIEN_HOST", self.lien_host.as_str()),
        ];
        let host = self.host();
        values.push(("HOST", &host));
        values.extend_from_slice(extra);
        fill(&fixture(file), &values)
    }

    /// Keeps a status so it can be fetched at its id, as Mastodon serves them.
    pub(crate) fn publish(&self, create_activity: &str) {
        let activity: Value = serde_json::from_str(create_activity).unwrap();
        let mut object = activity["object"].clone();
        object["@context"] = activity["@context"].clone();
        self.serve(object);
    }

    /// Serves a document at its `id`.
    pub(crate) fn serve(&self, document: Value) {
        let id = document["id"].as_str().unwrap().to_owned();
        self.state
            .statuses
            .lock()
            .unwrap()
            .insert(id, document.to_string());
    }

    /// POSTs `body` to `inbox` signed by `signer`'s key, the way Mastodon delivers.
    pub(crate) async fn deliver(&self, inbox: &str, body: &str, signer: &str) -> StatusCode {
        self.deliver_with(inbox, body, body.as_bytes(), Some(signer))
            .await
    }

    /// The general form: the Digest is computed over `digest_of`, and `signer` may be absent.
    async fn deliver_with(
        &self,
        inbox: &str,
        body: &str,
        digest_of: &[u8],
        signer: Option<&str>,
    ) -> StatusCode {
        let url: Url = inbox.parse().unwrap();
        let mut request = self.client.post(url.clone()).body(body.to_owned());
        match signer {
            Some(signer) => {
                let account = self.account(signer);
                let key_id = format!("{}#main-key", account.actor);
                for (name, value) in
                    signed_post_headers(&url, digest_of, &key_id, &account.private_pem)
                {
                    request = request.header(name, value);
                }
            }
            None => request = request.header("content-type", "application/activity+json"),
        }
        request.send().await.unwrap().status()
    }

    pub(crate) fn received(&self) -> Vec<Value> {
        self.state
            .received
            .lock()
            .unwrap()
            .iter()
            .map(|(_, a)| a.clone())
            .collect()
    }
}

struct Scene {
    lien: TestApp,
    mastodon: FakeMastodon,
    alice: Browser,
    story: i64,
    story_id: String,
    alice_id: String,
    inbox: String,
}

/// The story's page as alice sees it.
async fn story_page(s: &Scene) -> String {
    s.alice
        .get(&format!("/s/{}", s.story))
        .await
        .text()
        .await
        .unwrap()
}

/// alice on lien shares a story; mallory and eve are on a Mastodon server.
async fn scene() -> Scene {
    let lien = dev_instance().await;
    let alice = lien.user("alice").await;
    let story = alice
        .share(
            "https://example.com/article",
            "An article worth discussing",
            "web",
        )
        .await;
    let mastodon = FakeMastodon::start(&lien).await;
    let alice_id = format!("{}/users/alice", lien.address);
    mastodon.learn_key(&alice_id).await;
    Scene {
        story_id: format!("{}/s/{story}", lien.address),
        inbox: format!("{}/inbox", lien.address),
        lien,
        mastodon,
        alice,
        story,
        alice_id,
    }
}

fn reply(scene: &Scene, account: &str, status: &str, in_reply_to: &str, text: &str) -> String {
    scene.mastodon.activity(
        "create_note.json",
        account,
        &[
            ("STATUS", status),
            ("IN_REPLY_TO", in_reply_to),
            ("MENTIONED", &scene.alice_id),
            ("MENTIONED_NAME", "alice"),
            ("TEXT", text),
        ],
    )
}

/// (author, depth, parent id) of each comment of the story, in page order.
async fn discussion(scene: &Scene) -> Vec<(String, String)> {
    let page = scene.alice.page(&format!("/s/{}", scene.story)).await;
    let authors = select_text(&page, "div.comment .byline a.author");
    let depths = select_attr(&page, "div.comment", "data-depth");
    authors.into_iter().zip(depths).collect()
}

#[tokio::test]
async fn a_mastodon_reply_threads_under_the_story_and_lien_answers_back() {
    let s = scene().await;
    let mallory = s.mastodon.account("mallory").actor.clone();
    let handle = format!("mallory@{}", s.mastodon.host());

    // Mallory found the story by its address and replied: the reply is a comment by mallory@host.
    let first = reply(&s, "mallory", "1001", &s.story_id, "Great story!");
    assert_eq!(
        s.mastodon.deliver(&s.inbox, &first, "mallory").await,
        StatusCode::OK
    );
    assert_eq!(discussion(&s).await, vec![(handle.clone(), "0".to_owned())]);
    let page = story_page(&s).await;
    assert!(
        page.contains("Great story!") && !page.contains("<script>alert"),
        "sanitized"
    );

    // The same activity again has effect once.
    assert_eq!(
        s.mastodon.deliver(&s.inbox, &first, "mallory").await,
        StatusCode::OK
    );
    assert_eq!(count(&s.lien.pool, "comment").await, 1);

    // A reply to that reply nests under it (delivered to alice's own inbox this time).
    let status_1001 = format!("{mallory}/statuses/1001");
    let second = reply(&s, "eve", "2002", &status_1001, "Agreed with mallory");
    let alice_inbox = format!("{}/users/alice/inbox", s.lien.address);
    assert_eq!(
        s.mastodon.deliver(&alice_inbox, &second, "eve").await,
        StatusCode::OK
    );
    assert_eq!(
        discussion(&s).await,
        vec![
            (handle.clone(), "0".to_owned()),
            (format!("eve@{}", s.mastodon.host()), "1".to_owned())
        ]
    );

    // alice hears of both: mallory replied to her story, eve's answer to mallory mentions her.
    let page = s.alice.page("/notifications").await;
    assert_eq!(
        select_attr(&page, ".notification", "data-kind"),
        vec!["mention", "reply"]
    );
    assert_eq!(
        select_text(&page, ".notification .byline a.author"),
        vec![format!("eve@{}", s.mastodon.host()), handle.clone()]
    );

    // A favourite raises the story's score; un-favouriting takes it back.
    let like = s.mastodon.activity(
        "like.json",
        "mallory",
        &[("LIKE", "7"), ("OBJECT", &s.story_id)],
    );
    assert_eq!(
        s.mastodon.deliver(&s.inbox, &like, "mallory").await,
        StatusCode::OK
    );
    let score = |page: scraper::Html| select_attr(&page, "article.story", "data-score")[0].clone();
    assert_eq!(score(s.alice.page(&format!("/s/{}", s.story)).await), "2");
    let undo = s.mastodon.activity(
        "undo_like.json",
        "mallory",
        &[("LIKE", "7"), ("OBJECT", &s.story_id)],
    );
    assert_eq!(
        s.mastodon.deliver(&s.inbox, &undo, "mallory").await,
        StatusCode::OK
    );
    assert_eq!(score(s.alice.page(&format!("/s/{}", s.story)).await), "1");

    // An edit changes the text, for everyone at once: an anonymous reader's cached copy of the
    // page goes as the activity is accepted.
    let visitor = s.lien.browser();
    let story_path = format!("/s/{}", s.story);
    assert!(!visitor
        .page(&story_path)
        .await
        .html()
        .contains("Great story, edited"));
    let update = s.mastodon.activity(
        "update_note.json",
        "mallory",
        &[
            ("STATUS", "1001"),
            ("IN_REPLY_TO", &s.story_id),
            ("MENTIONED", &s.alice_id),
            ("MENTIONED_NAME", "alice"),
            ("TEXT", "Great story, edited"),
        ],
    );
    assert_eq!(
        s.mastodon.deliver(&s.inbox, &update, "mallory").await,
        StatusCode::OK
    );
    let page = story_page(&s).await;
    assert!(page.contains("Great story, edited"));
    assert!(visitor
        .page(&story_path)
        .await
        .html()
        .contains("Great story, edited"));

    // alice answers mallory on lien: the answer reaches mallory's server signed, replying to her
    // note and mentioning her.
    let mallory_comment: i64 = select_attr(
        &s.alice.page(&format!("/s/{}", s.story)).await,
        "div.comment",
        "data-id",
    )[0]
    .parse()
    .unwrap();
    s.alice
        .comment(s.story, Some(mallory_comment), "Thanks, mallory")
        .await;
    deliver_all(&s.lien).await;
    assert!(
        s.mastodon.state.problems.lock().unwrap().is_empty(),
        "{:?}",
        s.mastodon.state.problems.lock().unwrap()
    );
    let received = s.mastodon.received();
    let create = received
        .iter()
        .find(|a| a["type"] == "Create")
        .expect("lien's reply arrived");
    assert_eq!(create["actor"], s.alice_id);
    assert_eq!(create["object"]["type"], "Note");
    assert_eq!(create["object"]["inReplyTo"], status_1001);
    assert_eq!(create["object"]["tag"][0]["type"], "Mention");
    assert_eq!(create["object"]["tag"][0]["href"], mallory);
    assert!(create["object"]["cc"]
        .as_array()
        .unwrap()
        .contains(&Value::String(mallory.clone())));
    assert!(create["object"]["content"]
        .as_str()
        .unwrap()
        .contains("Thanks, mallory"));

    // Deleting the reply removes it; its own reply keeps a placeholder.
    let delete = s
        .mastodon
        .activity("delete_note.json", "mallory", &[("STATUS", "1001")]);
    assert_eq!(
        s.mastodon.deliver(&s.inbox, &delete, "mallory").await,
        StatusCode::OK
    );
    let page = s.alice.page(&format!("/s/{}", s.story)).await;
    assert!(!page.html().contains("Great story, edited"));
    assert_eq!(
        select_text(&page, "div.comment.deleted > .head > .byline"),
        vec!["[deleted]"]
    );
}

#[tokio::test]
async fn a_mastodon_follow_is_accepted_with_the_follow_embedded_by_ids() {
    let s = scene().await;
    let follow_id = format!(
        "{}/4f0b1c9e-7d7a-4a4e-9d4e-2b8f1a6c0d11",
        s.mastodon.state.origin
    );
    let follow = s.mastodon.activity(
        "follow.json",
        "mallory",
        &[
            ("FOLLOW", "4f0b1c9e-7d7a-4a4e-9d4e-2b8f1a6c0d11"),
            ("OBJECT", &s.alice_id),
        ],
    );
    assert_eq!(
        s.mastodon.deliver(&s.inbox, &follow, "mallory").await,
        StatusCode::OK
    );
    deliver_all(&s.lien).await;
    let received = s.mastodon.received();
    let accept = received
        .iter()
        .find(|a| a["type"] == "Accept")
        .expect("an Accept");
    assert_eq!(accept["actor"], s.alice_id);
    assert_eq!(
        accept["object"],
        serde_json::json!({
            "id": follow_id, "type": "Follow",
            "actor": s.mastodon.account("mallory").actor, "object": s.alice_id
        })
    );
    // alice's next story reaches her new follower.
    s.alice
        .share("https://example.com/second", "Second", "web")
        .await;
    deliver_all(&s.lien).await;
    let received = s.mastodon.received();
    let create = received
        .iter()
        .find(|a| a["type"] == "Create")
        .expect("a Create(Page)");
    assert_eq!(create["object"]["type"], "Page");
    assert_eq!(create["object"]["name"], "Second");
}

#[tokio::test]
async fn a_mastodon_status_pasted_into_search_becomes_a_story() {
    let s = scene().await;
    let status = s.mastodon.activity(
        "create_note.json",
        "mallory",
        &[
            ("STATUS", "3003"),
            ("IN_REPLY_TO", "null"),
            ("MENTIONED", &s.alice_id),
            ("MENTIONED_NAME", "alice"),
            ("TEXT", "Links I liked this week"),
        ],
    );
    let status = status.replace("\"null\"", "null");
    s.mastodon.publish(&status);
    // Eve already replied; Mastodon lists other accounts' replies behind the collection's `next`.
    let mallory = s.mastodon.account("mallory").actor.clone();
    let status_url = format!("{mallory}/statuses/3003");
    let answer = reply(&s, "eve", "3004", &status_url, "Mine are on lien");
    s.mastodon.publish(&answer);
    s.mastodon.serve(serde_json::json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{status_url}/replies?only_other_accounts=true&page=true"),
        "type": "CollectionPage",
        "partOf": format!("{status_url}/replies"),
        "items": [format!("{}/statuses/3004", s.mastodon.account("eve").actor)],
    }));
    let url = format!("{}/statuses/3003", s.mastodon.account("mallory").actor);
    let q: String = url::form_urlencoded::byte_serialize(url.as_bytes()).collect();
    let response = s.alice.get(&format!("/search?q={q}")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = s.alice.page(&crate::helpers::location(&response)).await;
    let title = select_text(&page, ".title a.link").remove(0);
    assert!(title.contains("Links I liked this week"), "{title}");
    assert_eq!(
        select_text(&page, ".byline a.author")[0],
        format!("mallory@{}", s.mastodon.host())
    );
    // Its replies came along as comments.
    assert_eq!(
        select_text(&page, "div.comment .byline a.author"),
        vec![format!("eve@{}", s.mastodon.host())]
    );
    assert!(page.html().contains("Mine are on lien"));
}

#[tokio::test]
async fn refused_activities_store_nothing() {
    let s = scene().await;
    let note = reply(&s, "mallory", "1001", &s.story_id, "hello");
    let nothing_stored = || async {
        assert_eq!(count(&s.lien.pool, "comment").await, 0);
        assert_eq!(count(&s.lien.pool, "received_activity").await, 0);
    };

    // No signature: 401 (an RFC 9421 signer then retries with draft-cavage).
    assert_eq!(
        s.mastodon
            .deliver_with(&s.inbox, &note, note.as_bytes(), None)
            .await,
        StatusCode::UNAUTHORIZED
    );
    nothing_stored().await;
    // A body changed after signing: the digest no longer matches.
    let tampered = note.replace("hello", "h4cked");
    assert_eq!(
        s.mastodon
            .deliver_with(&s.inbox, &tampered, note.as_bytes(), Some("mallory"))
            .await,
        StatusCode::UNAUTHORIZED
    );
    nothing_stored().await;
    // Signed with another actor's key: eve cannot speak for mallory.
    assert_eq!(
        s.mastodon.deliver(&s.inbox, &note, "eve").await,
        StatusCode::UNAUTHORIZED
    );
    nothing_stored().await;
    // A signature made 13 hours ago has expired (the window is 12 hours, as Mastodon's): 401,
    // before anything is fetched.
    let account = s.mastodon.account("mallory");
    let inbox: Url = s.inbox.parse().unwrap();
    let thirteen_hours_ago = chrono::Utc::now() - chrono::Duration::hours(13);
    let key_id = format!("{}#main-key", account.actor);
    let mut stale = s.mastodon.client.post(inbox.clone()).body(note.clone());
    for (name, value) in signed_post_headers_at(
        &inbox,
        note.as_bytes(),
        &key_id,
        &account.private_pem,
        thirteen_hours_ago,
    ) {
        stale = stale.header(name, value);
    }
    assert_eq!(
        stale.send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    nothing_stored().await;
    // Over 1 MB: 413.
    let huge = reply(&s, "mallory", "1002", &s.story_id, &"x".repeat(1_100_000));
    assert_eq!(
        s.mastodon.deliver(&s.inbox, &huge, "mallory").await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    nothing_stored().await;
    // Eve, properly signed, creating a note attributed to mallory: 403.
    let forged = note.replace(
        &format!("\"actor\": \"{}\"", s.mastodon.account("mallory").actor),
        &format!("\"actor\": \"{}\"", s.mastodon.account("eve").actor),
    );
    assert_ne!(forged, note);
    assert_eq!(
        s.mastodon.deliver(&s.inbox, &forged, "eve").await,
        StatusCode::FORBIDDEN
    );
    nothing_stored().await;

    // Mallory's real reply is taken; then eve may neither edit nor delete it (403), and a replay
    // of the original changes nothing.
    assert_eq!(
        s.mastodon.deliver(&s.inbox, &note, "mallory").await,
        StatusCode::OK
    );
    assert_eq!(count(&s.lien.pool, "comment").await, 1);
    let eve = s.mastodon.account("eve").actor.clone();
    let mallory = s.mastodon.account("mallory").actor.clone();
    let delete = s
        .mastodon
        .activity("delete_note.json", "eve", &[("STATUS", "1001")])
        .replace(
            &format!("{eve}/statuses/1001\""),
            &format!("{mallory}/statuses/1001\""),
        );
    assert_eq!(
        s.mastodon.deliver(&s.inbox, &delete, "eve").await,
        StatusCode::FORBIDDEN
    );
    let page = story_page(&s).await;
    assert!(page.contains("hello"), "mallory's reply is still there");
    assert_eq!(
        s.mastodon.deliver(&s.inbox, &note, "mallory").await,
        StatusCode::OK
    );
    assert_eq!(count(&s.lien.pool, "comment").await, 1);
}

async fn boosts(scene: &Scene) -> i32 {
    sqlx::query_scalar("select boost_count from story where id = $1")
        .bind(scene.story)
        .fetch_one(&scene.lien.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn boosts_count_once_and_a_deleted_account_takes_its_content_along() {
    let s = scene().await;
    let values = [
        ("STATUS", "5005"),
        ("OBJECT", s.story_id.as_str()),
        ("OBJECT_AUTHOR", s.alice_id.as_str()),
    ];
    let announce = s.mastodon.activity("announce.json", "mallory", &values);
    assert_eq!(
        s.mastodon.deliver(&s.inbox, &announce, "mallory").await,
        StatusCode::OK
    );
    assert_eq!(
        s.mastodon.deliver(&s.inbox, &announce, "mallory").await,
        StatusCode::OK
    );
    assert_eq!(boosts(&s).await, 1, "a boost counts once");
    let page = s.alice.page(&format!("/s/{}", s.story)).await;
    assert!(select_text(&page, ".byline")
        .iter()
        .any(|t| t.contains("1 boost")));
    let undo = s
        .mastodon
        .activity("undo_announce.json", "mallory", &values);
    assert_eq!(
        s.mastodon.deliver(&s.inbox, &undo, "mallory").await,
        StatusCode::OK
    );
    assert_eq!(boosts(&s).await, 0);

    // Mallory comments, then her account is deleted: her comment goes with it.
    let note = reply(&s, "mallory", "6006", &s.story_id, "soon gone");
    assert_eq!(
        s.mastodon.deliver(&s.inbox, &note, "mallory").await,
        StatusCode::OK
    );
    let delete = s.mastodon.activity("delete_actor.json", "mallory", &[]);
    assert_eq!(
        s.mastodon.deliver(&s.inbox, &delete, "mallory").await,
        StatusCode::OK
    );
    let page = story_page(&s).await;
    assert!(!page.contains("soon gone"));
    let live: i64 = sqlx::query_scalar("select count(*) from comment where deleted_at is null")
        .fetch_one(&s.lien.pool)
        .await
        .unwrap();
    assert_eq!(live, 0);
}

#[tokio::test]
async fn outside_dev_mode_loopback_peers_are_never_fetched() {
    let production = TestApp::spawn().await;
    let dev = dev_instance().await;
    let mallory = production.user("mallory").await;
    dev.user("alice").await;
    let fake = FakeMastodon::start(&production).await;
    for target in [
        format!("{}/users/mallory", fake.state.origin),
        format!("{}/users/alice", dev.address),
        "http://127.0.0.1:9/users/x".to_owned(),
    ] {
        let q: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
        let response = mallory.get(&format!("/search?q={q}")).await;
        assert!(
            response.status().is_client_error(),
            "{target}: {}",
            response.status()
        );
    }
    assert_eq!(
        count(&production.pool, "person").await,
        1,
        "no remote actor was stored"
    );
    // And an activity naming a loopback actor is refused before any fetch.
    let note = fake.activity(
        "create_note.json",
        "mallory",
        &[
            ("STATUS", "1"),
            ("IN_REPLY_TO", "http://x.example/s/1"),
            ("MENTIONED", "http://x.example/u"),
            ("MENTIONED_NAME", "x"),
            ("TEXT", "hi"),
        ],
    );
    let status = fake
        .deliver(&format!("{}/inbox", production.address), &note, "mallory")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(count(&production.pool, "person").await, 1);
}
