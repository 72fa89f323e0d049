//! lien following remote communities (FEP-1b12): a fake Lemmy (and PieFed- and Mbin-shaped
//! peers) serves its `Group`, people and posts, signs its `Announce`s with the group's own key, and
//! checks what lien sends it the way Lemmy would. Fixtures: tests/fixtures/{lemmy,piefed,mbin}/
//! community_*.json (see tests/fixtures/lemmy/README.md).

use std::{
    collections::HashMap,
    net::TcpListener,
    sync::{Arc, Mutex},
};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use url::Url;

use crate::{
    federation::{deliver_all, dev_instance, resolve},
    helpers::{select_attr, select_text, Browser, TestApp},
    signatures::{check_signature, signed_post_headers},
};

const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

/// Reads a fixture and moves it from the host it was written for to the fake peer's origin.
fn fixture(peer: &str, name: &str, written_for: &str, origin: &str) -> Value {
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/{peer}/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    serde_json::from_str(&text.replace(written_for, origin)).unwrap()
}

struct PeerState {
    origin: String,
    /// Where groups live: `c` (Lemmy, PieFed) or `m` (Mbin).
    group_prefix: &'static str,
    group_public: String,
    group_private: String,
    people_public: String,
    /// Documents served at their ids (posts, activities, the outbox).
    documents: Mutex<HashMap<String, String>>,
    /// What lien delivered, with a valid signature: (path, activity).
    received: Mutex<Vec<(String, Value)>>,
    problems: Mutex<Vec<String>>,
    lien_keys: Mutex<HashMap<String, String>>,
}

/// A threadiverse server on a `localhost` port: communities at `/{c|m}/{name}`, people at
/// `/u/{name}`, WebFinger naming both a person and a community for any name (as Lemmy does when
/// they share one).
struct Peer {
    state: Arc<PeerState>,
    client: reqwest::Client,
}

fn activity_json(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/activity+json")
        .body(body)
}

async fn group_document(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<PeerState>,
) -> HttpResponse {
    let (prefix, name) = path.into_inner();
    if prefix != state.group_prefix {
        // Not a community: a post such as `/post/9`.
        return document(req, state).await;
    }
    let mut group = fixture(
        "lemmy",
        "community_group.json",
        "https://lemmy.example",
        &state.origin,
    );
    let id = format!("{}/{prefix}/{name}", state.origin);
    let text = group
        .to_string()
        .replace(&format!("{}/c/linux", state.origin), &id);
    group = serde_json::from_str(&text).unwrap();
    group["preferredUsername"] = json!(name);
    group["name"] = json!(format!("The {name} community"));
    group["outbox"] = json!(format!("{id}/outbox"));
    group["publicKey"]["publicKeyPem"] = json!(state.group_public);
    activity_json(group.to_string())
}

async fn person_document(path: web::Path<String>, state: web::Data<PeerState>) -> HttpResponse {
    let name = path.into_inner();
    let mut person = fixture(
        "lemmy",
        "community_person.json",
        "https://lemmy.example",
        &state.origin,
    );
    let text = person.to_string().replace(
        &format!("{}/u/bob", state.origin),
        &format!("{}/u/{name}", state.origin),
    );
    person = serde_json::from_str(&text).unwrap();
    person["preferredUsername"] = json!(name);
    person["publicKey"]["publicKeyPem"] = json!(state.people_public);
    activity_json(person.to_string())
}

#[derive(serde::Deserialize)]
struct Resource {
    resource: String,
}

async fn webfinger(query: web::Query<Resource>, state: web::Data<PeerState>) -> HttpResponse {
    let name = query
        .resource
        .trim_start_matches("acct:")
        .split('@')
        .next()
        .unwrap_or_default()
        .to_owned();
    let text = fixture(
        "lemmy",
        "community_webfinger.json",
        "https://lemmy.example",
        &state.origin,
    )
    .to_string()
    .replace("/u/linux", &format!("/u/{name}"))
    .replace("/c/linux", &format!("/{}/{name}", state.group_prefix));
    let mut document: Value = serde_json::from_str(&text).unwrap();
    document["subject"] = json!(query.resource);
    let text = document.to_string();
    HttpResponse::Ok()
        .content_type("application/jrd+json")
        .body(text)
}

async fn document(req: HttpRequest, state: web::Data<PeerState>) -> HttpResponse {
    let key = format!("{}{}", state.origin, req.path());
    match state.documents.lock().unwrap().get(&key) {
        Some(body) => activity_json(body.clone()),
        None => HttpResponse::NotFound().finish(),
    }
}

async fn inbox(req: HttpRequest, body: web::Bytes, state: web::Data<PeerState>) -> HttpResponse {
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
    HttpResponse::Ok().finish()
}

impl Peer {
    async fn start(group_prefix: &'static str) -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let origin = format!("http://localhost:{}", listener.local_addr().unwrap().port());
        let group = activitypub_federation::http_signatures::generate_actor_keypair().unwrap();
        let people = activitypub_federation::http_signatures::generate_actor_keypair().unwrap();
        let state = Arc::new(PeerState {
            origin,
            group_prefix,
            group_public: group.public_key,
            group_private: group.private_key,
            people_public: people.public_key,
            documents: Mutex::default(),
            received: Mutex::default(),
            problems: Mutex::default(),
            lien_keys: Mutex::default(),
        });
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/.well-known/webfinger", web::get().to(webfinger))
                .route("/u/{name}", web::get().to(person_document))
                .route("/{prefix}/{name}", web::get().to(group_document))
                .route("/inbox", web::post().to(inbox))
                .route("/{prefix}/{name}/inbox", web::post().to(inbox))
                .default_service(web::get().to(document))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Peer {
            state,
            client: reqwest::Client::new(),
        }
    }

    fn origin(&self) -> &str {
        &self.state.origin
    }

    fn host(&self) -> String {
        self.origin().trim_start_matches("http://").to_owned()
    }

    fn group(&self, name: &str) -> String {
        format!("{}/{}/{name}", self.origin(), self.state.group_prefix)
    }

    /// A fixture of `peer`'s, written for `written_for`, moved here.
    fn fixture(&self, peer: &str, name: &str, written_for: &str) -> Value {
        fixture(peer, name, written_for, self.origin())
    }

    fn lemmy(&self, name: &str) -> Value {
        self.fixture("lemmy", name, "https://lemmy.example")
    }

    /// Serves a document at its `id`.
    fn serve(&self, document: &Value) {
        let id = document["id"].as_str().unwrap().to_owned();
        self.state
            .documents
            .lock()
            .unwrap()
            .insert(id, document.to_string());
    }

    /// Learns a lien actor's key, to check what lien signs.
    async fn learn_key(&self, actor: &str) {
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

    /// POSTs an activity to `inbox`, signed by the group `group` (its `#main-key`).
    async fn deliver_as_group(&self, inbox: &str, activity: &Value, group: &str) -> StatusCode {
        let body = activity.to_string();
        let url: Url = inbox.parse().unwrap();
        let key_id = format!("{}#main-key", self.group(group));
        let mut request = self.client.post(url.clone()).body(body.clone());
        for (name, value) in
            signed_post_headers(&url, body.as_bytes(), &key_id, &self.state.group_private)
        {
            request = request.header(name, value);
        }
        request.send().await.unwrap().status()
    }

    fn received(&self, kind: &str) -> Vec<(String, Value)> {
        assert!(
            self.state.problems.lock().unwrap().is_empty(),
            "bad deliveries: {:?}",
            self.state.problems.lock().unwrap()
        );
        self.state
            .received
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, a)| a["type"] == kind)
            .cloned()
            .collect()
    }
}

/// An `Announce` by `group` (a fresh id) of `inner`, as Lemmy wraps what happens in a community.
fn announce(peer: &Peer, group: &str, inner: &Value) -> Value {
    let group = peer.group(group);
    json!({
        "@context": ["https://join-lemmy.org/context.json", "https://www.w3.org/ns/activitystreams"],
        "actor": group,
        "to": [PUBLIC],
        "object": inner,
        "cc": [format!("{group}/followers")],
        "type": "Announce",
        "id": format!("{}/activities/announce/{}", peer.origin(), uuid::Uuid::new_v4()),
    })
}

/// A story's score as its discussion page shows it.
async fn story_score(browser: &Browser, ap_id: &str, lien: &TestApp) -> (i64, i32) {
    let (id, score): (i64, i32) = sqlx::query_as("select id, score from story where ap_id = $1")
        .bind(ap_id)
        .fetch_one(&lien.pool)
        .await
        .unwrap();
    let page = browser.page(&format!("/s/{id}")).await;
    let shown: i32 = select_attr(&page, "article.story", "data-score")[0]
        .parse()
        .unwrap();
    assert_eq!(shown, score);
    (id, score)
}

async fn comment_score(lien: &TestApp, ap_id: &str) -> Option<(i32, bool)> {
    sqlx::query_as("select score, deleted_at is not null from comment where ap_id = $1")
        .bind(ap_id)
        .fetch_optional(&lien.pool)
        .await
        .unwrap()
}

async fn stories_with(lien: &TestApp, ap_id: &str) -> i64 {
    sqlx::query_scalar("select count(*) from story where ap_id = $1")
        .bind(ap_id)
        .fetch_one(&lien.pool)
        .await
        .unwrap()
}

/// lien and a Lemmy community, `alice` subscribed (and the Follow accepted when `accept`).
async fn subscribed(peer: &Peer, group: &str, accept: bool) -> (TestApp, Browser) {
    let lien = dev_instance().await;
    let alice = lien.user("alice").await;
    let alice_id = format!("{}/users/alice", lien.address);
    peer.learn_key(&alice_id).await;
    let path = resolve(&alice, &format!("!{group}@{}", peer.host())).await;
    assert_eq!(path, format!("/!{group}@{}", peer.host()));
    let response = alice.post(&format!("{path}/follow"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    deliver_all(&lien).await;
    if accept {
        let follow = peer.received("Follow").last().unwrap().1.clone();
        let mut accept = peer.lemmy("community_accept_follow.json");
        accept["actor"] = json!(peer.group(group));
        accept["to"] = json!([alice_id]);
        accept["object"] = follow;
        accept["id"] = json!(format!(
            "{}/activities/accept/{}",
            peer.origin(),
            uuid::Uuid::new_v4()
        ));
        let inbox = format!("{alice_id}/inbox");
        assert_eq!(
            peer.deliver_as_group(&inbox, &accept, group).await,
            StatusCode::OK
        );
    }
    (lien, alice)
}

#[tokio::test]
async fn a_lemmy_community_is_found_followed_once_and_its_announces_applied_once() {
    let lemmy = Peer::start("c").await;
    let lien = dev_instance().await;
    let alice = lien.user("alice").await;
    let alice_id = format!("{}/users/alice", lien.address);
    lemmy.learn_key(&alice_id).await;
    let host = lemmy.host();
    let group = lemmy.group("linux");
    lemmy.serve(&lemmy.lemmy("community_outbox.json"));

    // `!linux@host` is the community, though a person has the same name there.
    let path = resolve(&alice, &format!("!linux@{host}")).await;
    assert_eq!(path, format!("/!linux@{host}"));
    assert_eq!(
        resolve(&alice, &format!("@linux@{host}")).await,
        format!("/@linux@{host}")
    );
    // Its page: name, summary, its recent posts from the outbox, each marked with it, and a
    // follow form.
    let page = alice.page(&path).await;
    assert_eq!(
        select_text(&page, "h1 small"),
        vec![format!("!linux@{host}")]
    );
    assert!(select_text(&page, ".bio")
        .concat()
        .contains("All things Linux"));
    let titles = select_text(&page, "article.story .title a.link");
    assert_eq!(titles, vec!["Kernel 6.17 is out", "Favourite distro?"]);
    assert_eq!(
        select_text(&page, "article.story a.community"),
        vec![format!("!linux@{host}"); 2]
    );
    assert_eq!(select_text(&page, "form.follow button"), vec!["Follow"]);

    // alice follows: one Follow, by alice (Lemmy takes follows from people only), to the
    // community's inbox. bea follows too: no second Follow, the instance follows once.
    let response = alice.post(&format!("{path}/follow"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let bea = lien.user("bea").await;
    bea.post(&format!("{path}/follow"), &[]).await;
    deliver_all(&lien).await;
    let follows = lemmy.received("Follow");
    assert_eq!(follows.len(), 1, "{follows:?}");
    let (inbox, follow) = &follows[0];
    assert_eq!(inbox, "/c/linux/inbox");
    assert_eq!(follow["actor"], json!(alice_id));
    assert_eq!(follow["object"], json!(group));
    assert_eq!(follow["to"], json!([group]));
    let state = |page: scraper::Html| select_text(&page, ".follow-state");
    assert_eq!(state(alice.page(&path).await), vec!["follow requested"]);

    // The community accepts (Lemmy embeds the Follow).
    let mut accept = lemmy.lemmy("community_accept_follow.json");
    accept["to"] = json!([alice_id]);
    accept["object"] = follow.clone();
    let alice_inbox = format!("{alice_id}/inbox");
    assert_eq!(
        lemmy.deliver_as_group(&alice_inbox, &accept, "linux").await,
        StatusCode::OK
    );
    assert_eq!(state(alice.page(&path).await), vec!["following"]);

    // Announce(Create(Page)): a story in the community, on the front page, marked with it.
    let inbox = format!("{}/inbox", lien.address);
    let create_page = lemmy.lemmy("community_announce_create_page.json");
    let post = format!("{}/post/123", lemmy.origin());
    assert_eq!(
        lemmy.deliver_as_group(&inbox, &create_page, "linux").await,
        StatusCode::OK
    );
    let front = alice.page("/").await;
    let titles = select_text(&front, "article.story .title a.link");
    assert!(
        titles.contains(&"Rust 1.90 released".to_owned()),
        "{titles:?}"
    );
    assert!(select_text(&front, "article.story a.community")
        .iter()
        .all(|c| c == &format!("!linux@{host}")));
    assert_eq!(
        select_text(&front, "article.story a.tag"),
        Vec::<String>::new(),
        "Lemmy's #community hashtag does not become a tag"
    );
    // Once: the same Announce again, and another Announce of the same Create.
    lemmy.deliver_as_group(&inbox, &create_page, "linux").await;
    let again = announce(&lemmy, "linux", &create_page["object"]);
    assert_eq!(
        lemmy.deliver_as_group(&inbox, &again, "linux").await,
        StatusCode::OK
    );
    assert_eq!(stories_with(&lien, &post).await, 1);
    let (story, score) = story_score(&alice, &post, &lien).await;

    // Announce(Create(Note)): a comment under it.
    let create_note = lemmy.lemmy("community_announce_create_note.json");
    let comment = format!("{}/comment/456", lemmy.origin());
    assert_eq!(
        lemmy.deliver_as_group(&inbox, &create_note, "linux").await,
        StatusCode::OK
    );
    assert_eq!(comment_score(&lien, &comment).await, Some((0, false)));
    let discussion = alice.page(&format!("/s/{story}")).await;
    assert!(discussion
        .html()
        .contains("Great news, thanks for posting!"));

    // Announce(Like) of the post, Announce(Dislike) of the comment, each once.
    let like = lemmy.lemmy("community_announce_like.json");
    for _ in 0..2 {
        assert_eq!(
            lemmy.deliver_as_group(&inbox, &like, "linux").await,
            StatusCode::OK
        );
    }
    assert_eq!(story_score(&alice, &post, &lien).await.1, score + 1);
    let dislike = lemmy.lemmy("community_announce_dislike.json");
    assert_eq!(
        lemmy.deliver_as_group(&inbox, &dislike, "linux").await,
        StatusCode::OK
    );
    assert_eq!(comment_score(&lien, &comment).await, Some((-1, false)));
    // Announce(Undo(Like)) takes the vote back.
    let undo = lemmy.lemmy("community_announce_undo_like.json");
    assert_eq!(
        lemmy.deliver_as_group(&inbox, &undo, "linux").await,
        StatusCode::OK
    );
    assert_eq!(story_score(&alice, &post, &lien).await.1, score);

    // Announce(Update(Page)): the edit shows.
    let mut update = lemmy.lemmy("community_announce_update_page.json");
    update["object"]["object"]["name"] = json!("Rust 1.90 released (with notes)");
    assert_eq!(
        lemmy.deliver_as_group(&inbox, &update, "linux").await,
        StatusCode::OK
    );
    let discussion = alice.page(&format!("/s/{story}")).await;
    assert_eq!(
        select_text(&discussion, "article.story .title a.link"),
        vec!["Rust 1.90 released (with notes)"]
    );

    // alice comments and votes on it: both go to the community (which announces them), with
    // `audience` and `to` naming it.
    alice.comment(story, None, "Hello from lien").await;
    alice.vote(&format!("/s/{story}"), "1").await;
    deliver_all(&lien).await;
    let creates = lemmy.received("Create");
    assert_eq!(creates.len(), 1, "{creates:?}");
    let (inbox_path, create) = &creates[0];
    assert_eq!(inbox_path, "/inbox", "the community's shared inbox");
    assert_eq!(create["audience"], json!(group));
    assert_eq!(create["object"]["audience"], json!(group));
    assert!(create["to"].as_array().unwrap().contains(&json!(group)));
    assert!(create["object"]["to"]
        .as_array()
        .unwrap()
        .contains(&json!(group)));
    assert_eq!(create["object"]["inReplyTo"], json!(post));
    assert!(create["object"]["content"]
        .as_str()
        .unwrap()
        .contains("Hello from lien"));
    let likes = lemmy.received("Like");
    assert_eq!(likes.len(), 1, "{likes:?}");
    assert_eq!(likes[0].1["object"], json!(post));
    assert_eq!(likes[0].1["audience"], json!(group));

    // Announce(Remove) of a featured post (Lemmy's collections) changes no post.
    let remove_featured = lemmy.lemmy("community_remove_featured_post.json");
    let remove = announce(&lemmy, "linux", &remove_featured);
    assert_eq!(
        lemmy.deliver_as_group(&inbox, &remove, "linux").await,
        StatusCode::OK
    );
    assert!(story_ids_of(&alice, "/new").await.contains(&story));

    // Announce(Delete) of the comment by its author: gone.
    let delete = lemmy.lemmy("community_announce_delete.json");
    assert_eq!(
        lemmy.deliver_as_group(&inbox, &delete, "linux").await,
        StatusCode::OK
    );
    assert_eq!(
        comment_score(&lien, &comment).await.map(|c| c.1),
        Some(true)
    );

    // Announce(Delete) with a summary by a moderator (carol): the post is removed here, with
    // the reason, and leaves the lists and the community page.
    let removal = lemmy.lemmy("community_announce_remove_by_mod.json");
    assert_eq!(
        lemmy.deliver_as_group(&inbox, &removal, "linux").await,
        StatusCode::OK
    );
    assert!(!story_ids_of(&alice, "/new").await.contains(&story));
    assert!(!story_ids_of(&alice, &path).await.contains(&story));
    assert_eq!(
        alice.get(&format!("/s/{story}")).await.status(),
        StatusCode::GONE
    );
    let modlog = alice.page("/modlog").await;
    assert_eq!(
        select_text(&modlog, ".mod-action[data-action=remove] .reason"),
        vec![format!("by the community !linux@{host}: Off-topic")]
    );
}

async fn story_ids_of(browser: &Browser, path: &str) -> Vec<i64> {
    crate::helpers::story_ids(browser, path).await
}

#[tokio::test]
async fn an_announced_post_from_elsewhere_is_taken_from_its_origin_or_refused() {
    let lemmy = Peer::start("c").await;
    // Bob's home is another server than the community's.
    let elsewhere = Peer::start("c").await;
    let (lien, _alice) = subscribed(&lemmy, "linux", true).await;
    let inbox = format!("{}/inbox", lien.address);
    let post = format!("{}/post/9", elsewhere.origin());
    let mut create = lemmy.lemmy("community_announce_create_page.json")["object"].clone();
    let text = create
        .to_string()
        .replace(
            &format!("{}/u/bob", lemmy.origin()),
            &format!("{}/u/dave", elsewhere.origin()),
        )
        .replace(&format!("{}/post/123", lemmy.origin()), &post)
        .replace(
            &format!("{}/activities/create/", lemmy.origin()),
            &format!("{}/activities/create/", elsewhere.origin()),
        );
    create = serde_json::from_str(&text).unwrap();
    create["object"]["name"] = json!("A forged title");

    // The post cannot be fetched from its own server: refused, nothing stored.
    let stories = crate::helpers::count(&lien.pool, "story").await;
    let status = lemmy
        .deliver_as_group(&inbox, &announce(&lemmy, "linux", &create), "linux")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(crate::helpers::count(&lien.pool, "story").await, stories);

    // Once its server serves it, the post is taken as the origin says, not as embedded.
    let mut original = create["object"].clone();
    original["name"] = json!("The title at its origin");
    elsewhere.serve(&original);
    let status = lemmy
        .deliver_as_group(&inbox, &announce(&lemmy, "linux", &create), "linux")
        .await;
    assert_eq!(status, StatusCode::OK);
    let title: String = sqlx::query_scalar("select title from story where ap_id = $1")
        .bind(&post)
        .fetch_one(&lien.pool)
        .await
        .unwrap();
    assert_eq!(title, "The title at its origin");

    // An announce by a community nobody here follows is dropped.
    let stranger = lemmy.lemmy("community_announce_create_page.json");
    let mut other = stranger.clone();
    let text = other.to_string().replace("/c/linux", "/c/gardening");
    other = serde_json::from_str(&text).unwrap();
    let status = lemmy.deliver_as_group(&inbox, &other, "gardening").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        stories_with(&lien, &format!("{}/post/123", lemmy.origin())).await,
        0
    );

    // A followed community announcing a post that names another community: not filed, not kept.
    let mut claimed = stranger.clone();
    let page = &mut claimed["object"]["object"];
    page["to"] = json!([lemmy.group("gardening"), PUBLIC]);
    page["audience"] = json!(lemmy.group("gardening"));
    claimed["object"]["cc"] = json!([lemmy.group("gardening")]);
    let claimed = announce(&lemmy, "linux", &claimed["object"]);
    let status = lemmy.deliver_as_group(&inbox, &claimed, "linux").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        stories_with(&lien, &format!("{}/post/123", lemmy.origin())).await,
        0
    );
}

#[tokio::test]
async fn piefed_and_mbin_community_posts_arrive_through_their_announces() {
    for (peer_name, prefix, group, written_for, post) in [
        (
            "piefed",
            "c",
            "rustaceans",
            "https://piefed.example",
            "/post/778",
        ),
        (
            "mbin",
            "m",
            "rustlang",
            "https://mbin.example",
            "/m/rustlang/t/556",
        ),
    ] {
        let peer = Peer::start(prefix).await;
        let (lien, alice) = subscribed(&peer, group, false).await;
        let follow = &peer.received("Follow")[0].1;
        assert_eq!(follow["object"], json!(peer.group(group)));
        let announce = peer.fixture(
            peer_name,
            "community_announce_create_page.json",
            written_for,
        );
        let inbox = format!("{}/inbox", lien.address);
        assert_eq!(
            peer.deliver_as_group(&inbox, &announce, group).await,
            StatusCode::OK,
            "{peer_name}"
        );
        let post = format!("{}{post}", peer.origin());
        assert_eq!(stories_with(&lien, &post).await, 1, "{peer_name}");
        let page = alice.page(&format!("/!{group}@{}", peer.host())).await;
        assert_eq!(
            select_text(&page, "article.story .title a.link"),
            vec!["Rust 1.90 released"],
            "{peer_name}"
        );
        let links = select_attr(&page, "article.story .title a.link", "href");
        assert_eq!(
            links,
            vec!["https://blog.rust-lang.org/2025/09/18/Rust-1.90.0/"]
        );
    }
}

#[tokio::test]
async fn lemmys_announce_of_a_bare_page_for_mastodon_is_ignored_and_the_last_subscriber_undoes_the_follow(
) {
    let lemmy = Peer::start("c").await;
    let (lien, alice) = subscribed(&lemmy, "linux", true).await;
    let inbox = format!("{}/inbox", lien.address);
    let compat = lemmy.lemmy("community_announce_page_compat.json");
    let stories = crate::helpers::count(&lien.pool, "story").await;
    assert_eq!(
        lemmy.deliver_as_group(&inbox, &compat, "linux").await,
        StatusCode::OK
    );
    // The same post arrives (once) through the Announce(Create(Page)) Lemmy sends beside it.
    let create = lemmy.lemmy("community_announce_create_page.json");
    assert_eq!(
        lemmy.deliver_as_group(&inbox, &create, "linux").await,
        StatusCode::OK
    );
    assert_eq!(
        crate::helpers::count(&lien.pool, "story").await,
        stories + 1
    );

    // bea subscribes (no new Follow), alice leaves: her Follow is undone and bea's follows in
    // its place; bea leaves: undone, nobody follows from here any more.
    let bea = lien.user("bea").await;
    let path = format!("/!linux@{}", lemmy.host());
    bea.post(&format!("{path}/follow"), &[]).await;
    lemmy
        .learn_key(&format!("{}/users/bea", lien.address))
        .await;
    deliver_all(&lien).await;
    assert_eq!(lemmy.received("Follow").len(), 1);
    alice.post(&format!("{path}/unfollow"), &[]).await;
    deliver_all(&lien).await;
    let undos = lemmy.received("Undo");
    assert_eq!(undos.len(), 1);
    assert_eq!(undos[0].1["object"]["type"], json!("Follow"));
    assert_eq!(
        undos[0].1["actor"],
        json!(format!("{}/users/alice", lien.address))
    );
    let follows = lemmy.received("Follow");
    assert_eq!(follows.len(), 2);
    assert_eq!(
        follows[1].1["actor"],
        json!(format!("{}/users/bea", lien.address))
    );
    bea.post(&format!("{path}/unfollow"), &[]).await;
    deliver_all(&lien).await;
    assert_eq!(lemmy.received("Undo").len(), 2);
    assert_eq!(lemmy.received("Follow").len(), 2);
    assert_eq!(
        crate::helpers::count(&lien.pool, "community_follow").await,
        0
    );
    // Its announcements are dropped from now on.
    let mut later = lemmy.lemmy("community_announce_create_page.json");
    let text = later.to_string().replace("/post/123", "/post/999");
    later = serde_json::from_str(&text).unwrap();
    later["id"] = json!(format!(
        "{}/activities/announce/{}",
        lemmy.origin(),
        uuid::Uuid::new_v4()
    ));
    later["object"]["id"] = json!(format!(
        "{}/activities/create/{}",
        lemmy.origin(),
        uuid::Uuid::new_v4()
    ));
    assert_eq!(
        lemmy.deliver_as_group(&inbox, &later, "linux").await,
        StatusCode::OK
    );
    assert_eq!(
        stories_with(&lien, &format!("{}/post/999", lemmy.origin())).await,
        0
    );
}

/// A Lemmy comment (`Note`) by `author` under `parent`, as Lemmy serves it at its id.
fn lemmy_note(peer: &Peer, id: &str, author: &str, parent: &str, text: &str) -> Value {
    let mut note = peer.lemmy("community_announce_create_note.json")["object"]["object"].clone();
    note["id"] = json!(id);
    note["attributedTo"] = json!(format!("{}/u/{author}", peer.origin()));
    note["inReplyTo"] = json!(parent);
    note["content"] = json!(format!("<p>{text}</p>"));
    note["source"]["content"] = json!(text);
    note
}

#[tokio::test]
async fn a_community_post_comes_with_its_score_and_its_discussion() {
    let lemmy = Peer::start("c").await;
    let lien = dev_instance().await;
    let alice = lien.user("alice").await;
    let origin = lemmy.origin().to_owned();
    let (first, second) = (format!("{origin}/post/125"), format!("{origin}/post/124"));

    // Lemmy 1.0 gives its posts a FEP-7888 `context` listing the whole discussion; PieFed embeds
    // `replies`; a `likes` collection (lien, Mastodon) gives the score.
    let mut outbox = lemmy.lemmy("community_outbox.json");
    let page = &mut outbox["orderedItems"][0]["object"]["object"];
    page["context"] = json!(format!("{first}/context"));
    page["likes"] = json!({ "type": "Collection", "totalItems": 7 });
    let top = lemmy_note(
        &lemmy,
        &format!("{origin}/comment/900"),
        "erin",
        &first,
        "First!",
    );
    let nested = lemmy_note(
        &lemmy,
        &format!("{origin}/comment/901"),
        "bob",
        &format!("{origin}/comment/900"),
        "Second, under the first",
    );
    lemmy.serve(&top);
    lemmy.serve(&nested);
    lemmy.serve(&json!({
        "id": format!("{first}/context"),
        "type": "OrderedCollection",
        "totalItems": 3,
        "orderedItems": [first, top["id"], nested["id"]],
    }));
    let piefed_reply = lemmy_note(
        &lemmy,
        &format!("{origin}/comment/902"),
        "bob",
        &second,
        "A PieFed-style embedded reply",
    );
    lemmy.serve(&piefed_reply);
    outbox["orderedItems"][1]["object"]["object"]["replies"] = json!([piefed_reply]);
    lemmy.serve(&outbox);

    let path = resolve(&alice, &format!("!linux@{}", lemmy.host())).await;
    let page = alice.page(&path).await;
    let ids = select_attr(&page, "article.story", "data-id");
    let scores = select_attr(&page, "article.story", "data-score");
    assert_eq!(scores, vec!["7", "0"]);
    let first_story = alice.page(&format!("/s/{}", ids[0])).await;
    let comments = select_text(&first_story, "div.comment .body");
    assert_eq!(comments.len(), 2, "{comments:?}");
    assert_eq!(
        select_attr(&first_story, "div.comment", "data-depth"),
        vec!["0", "1"]
    );
    let second_story = alice.page(&format!("/s/{}", ids[1])).await;
    assert!(second_story
        .html()
        .contains("A PieFed-style embedded reply"));

    // A community's post pasted by its address is filed under the community its `audience` names.
    let mut pasted = lemmy.lemmy("community_announce_create_page.json")["object"]["object"].clone();
    pasted["id"] = json!(format!("{origin}/post/777"));
    pasted["name"] = json!("Pasted by its address");
    lemmy.serve(&pasted);
    let story_path = resolve(&alice, &format!("{origin}/post/777")).await;
    let page = alice.page(&story_path).await;
    assert_eq!(
        select_text(&page, "article.story a.community"),
        vec![format!("!linux@{}", lemmy.host())]
    );
}

/// The id of the story with this title on an instance.
async fn story_titled(app: &TestApp, title: &str) -> Option<i64> {
    sqlx::query_scalar("select id from story where title = $1")
        .bind(title)
        .fetch_optional(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_tag_group_on_one_lien_is_a_community_on_two_others() {
    let a = dev_instance().await;
    let b = dev_instance().await;
    let c = dev_instance().await;
    let ann = a.user("ann").await;
    let bob = b.user("bob").await;
    let cyd = c.user("cyd").await;
    let a_host = crate::federation::host(&a);

    // A tag is a group once a story carries it. bob on B and cyd on C follow `!rust@A`; the
    // group's outbox brings its story along at once.
    ann.share("https://example.com/rust-first", "Rust first", "rust")
        .await;
    let path = format!("/!rust@{a_host}");
    for (app, user) in [(&b, &bob), (&c, &cyd)] {
        assert_eq!(resolve(user, &format!("!rust@{a_host}")).await, path);
        let response = user.post(&format!("{path}/follow"), &[]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        deliver_all(app).await;
    }
    deliver_all(&a).await;
    for user in [&bob, &cyd] {
        assert_eq!(
            select_text(&user.page(&path).await, ".follow-state"),
            vec!["following"]
        );
    }

    // A new story on A tagged `rust` reaches B and C through the group's Announce, marked there
    // with the community.
    let story_a = ann
        .share("https://example.com/rust-2026", "Rust in 2026", "rust")
        .await;
    deliver_all(&a).await;
    let story_b = story_titled(&b, "Rust in 2026")
        .await
        .expect("the story reached B");
    let story_c = story_titled(&c, "Rust in 2026")
        .await
        .expect("the story reached C");
    let page = bob.page(&path).await;
    assert_eq!(
        select_text(&page, "article.story .title a.link"),
        vec!["Rust in 2026", "Rust first"]
    );
    assert_eq!(
        select_text(&page, "article.story a.community"),
        vec![format!("!rust@{a_host}"); 2]
    );
    // lien's tags are real hashtags (unlike Lemmy's echo of the community's name): they stay.
    assert_eq!(select_text(&page, "article.story a.tag"), vec!["rust"; 2]);

    // bob comments and votes on B: both reach A (the group and the author)...
    bob.comment(story_b, None, "Written on B").await;
    bob.vote(&format!("/s/{story_b}"), "1").await;
    deliver_all(&b).await;
    let on_a: (i32, i32) = sqlx::query_as("select score, comment_count from story where id = $1")
        .bind(story_a)
        .fetch_one(&a.pool)
        .await
        .unwrap();
    assert_eq!(on_a, (2, 1), "ann's own vote and bob's; bob's comment");
    // ...and A's group announces them to its other followers: C takes the comment and the vote
    // after checking each at its origin (B serves its votes at their ids), and B (which wrote
    // them) keeps its one copy.
    deliver_all(&a).await;
    let bob_votes_on_c: i64 = sqlx::query_scalar(
        "select count(*) from story_vote v join person p on p.id = v.person_id
          where p.name = 'bob' and v.story_id = $1",
    )
    .bind(story_c)
    .fetch_one(&c.pool)
    .await
    .unwrap();
    assert_eq!(
        bob_votes_on_c, 1,
        "bob's vote, announced by A's group, counts on C"
    );
    let comments_c: Vec<String> =
        sqlx::query_scalar("select body from comment where story_id = $1")
            .bind(story_c)
            .fetch_all(&c.pool)
            .await
            .unwrap();
    assert_eq!(comments_c, vec!["Written on B"]);
    assert_eq!(crate::helpers::count(&b.pool, "comment").await, 1);

    // A moderator's removal on A reaches B and C through the group. (A sends it as the author's
    // Delete, or as the moderator's Delete with the reason once grp-out's `post_moderated` is in
    // use: either way the story goes.)
    let root = crate::moderation::admin(&a).await;
    crate::moderation::moderate(&root, "remove", "story", &story_a.to_string(), "spam").await;
    deliver_all(&a).await;
    for app in [&b, &c] {
        let gone: bool = sqlx::query_scalar(
            "select deleted_at is not null or removed_at is not null from story
             where title = 'Rust in 2026'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert!(gone, "the removal reached {}", app.address);
    }
    assert_eq!(
        select_text(&bob.page(&path).await, "article.story .title a.link"),
        vec!["Rust first"]
    );
}
