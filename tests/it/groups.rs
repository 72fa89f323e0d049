//! lien's tags as FEP-1b12 groups against the payloads Lemmy, PieFed and Mbin send
//! (tests/fixtures/{lemmy,piefed,mbin}, see their README) and a Mastodon-shaped follower: fake
//! peers serve their actors and NodeInfo, sign their activities with their own keys, and check the
//! group's signatures on what lien sends them.

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
    federation::{deliver_all, dev_instance},
    helpers::{count, select_text, TestApp},
    mastodon::FakeMastodon,
    signatures::{check_signature, signed_post_headers},
};

const AS_JSON: &str = "application/activity+json";

struct PeerState {
    origin: String,
    /// What the peer's NodeInfo names as its software.
    software: String,
    /// name → (public PEM, private PEM)
    accounts: HashMap<String, (String, String)>,
    /// What lien delivered, accepted only when its signature checks out.
    received: Mutex<Vec<Value>>,
    problems: Mutex<Vec<String>>,
    keys: Mutex<HashMap<String, String>>,
}

/// A threadiverse server (Lemmy, PieFed or Mbin shaped) on a `localhost` port.
struct FakePeer {
    state: Arc<PeerState>,
    client: reqwest::Client,
}

async fn peer_actor(path: web::Path<String>, state: web::Data<PeerState>) -> HttpResponse {
    let Some((public_pem, _)) = state.accounts.get(path.as_str()) else {
        return HttpResponse::NotFound().finish();
    };
    // Lemmy's Person document (tests/fixtures/lemmy/person.json) for every account.
    let text = fixture_text("lemmy", "person.json")
        .replace("https://lemmy.example", &state.origin)
        .replace("/u/bob", &format!("/u/{path}"))
        .replace("\"bob\"", &format!("\"{path}\""));
    let mut person: Value = serde_json::from_str(&text).unwrap();
    person["publicKey"]["publicKeyPem"] = json!(public_pem);
    HttpResponse::Ok()
        .content_type(AS_JSON)
        .body(person.to_string())
}

async fn peer_nodeinfo_links(state: web::Data<PeerState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "links": [{
        "rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
        "href": format!("{}/nodeinfo/2.1", state.origin),
    }] }))
}

async fn peer_nodeinfo(state: web::Data<PeerState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "version": "2.1",
        "software": { "name": state.software, "version": "1.0.0" },
        "protocols": ["activitypub"], "openRegistrations": true,
        "usage": { "users": { "total": 3 }, "localPosts": 1 }, "metadata": {}
    }))
}

async fn peer_inbox(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<PeerState>,
) -> HttpResponse {
    let keys = state.keys.lock().unwrap().clone();
    if let Err(problem) = check_signature(&req, &body, &keys) {
        state.problems.lock().unwrap().push(problem);
        return HttpResponse::Unauthorized().finish();
    }
    state
        .received
        .lock()
        .unwrap()
        .push(serde_json::from_slice(&body).unwrap());
    HttpResponse::Ok().finish()
}

fn fixture_text(peer: &str, name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{peer}/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// lien's addresses the fixtures' `https://lien.example/...` stand for.
struct Lien<'a> {
    app: &'a TestApp,
    story: i64,
    comment: i64,
}

impl FakePeer {
    async fn start(software: &str, names: &[&str]) -> FakePeer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let origin = format!("http://localhost:{}", listener.local_addr().unwrap().port());
        let accounts = names
            .iter()
            .map(|name| {
                let keys =
                    activitypub_federation::http_signatures::generate_actor_keypair().unwrap();
                (name.to_string(), (keys.public_key, keys.private_key))
            })
            .collect();
        let state = Arc::new(PeerState {
            origin,
            software: software.to_owned(),
            accounts,
            received: Mutex::default(),
            problems: Mutex::default(),
            keys: Mutex::default(),
        });
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/u/{name}", web::get().to(peer_actor))
                .route("/.well-known/nodeinfo", web::get().to(peer_nodeinfo_links))
                .route("/nodeinfo/2.1", web::get().to(peer_nodeinfo))
                .route("/inbox", web::post().to(peer_inbox))
                .route("/u/{name}/inbox", web::post().to(peer_inbox))
                .route("/f/inbox", web::post().to(peer_inbox))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        FakePeer {
            state,
            client: reqwest::Client::new(),
        }
    }

    fn actor(&self, name: &str) -> String {
        format!("{}/u/{name}", self.state.origin)
    }

    /// A fixture of `peer`'s with its hosts and ids made real.
    fn fixture(&self, peer: &str, name: &str, lien: &Lien) -> String {
        let address = &lien.app.address;
        fixture_text(peer, name)
            .replace(
                "https://lien.example/u/alice",
                &format!("{address}/users/alice"),
            )
            .replace(
                "https://lien.example/s/1\"",
                &format!("{address}/s/{}\"", lien.story),
            )
            .replace(
                "https://lien.example/c/1\"",
                &format!("{address}/c/{}\"", lien.comment),
            )
            .replace("https://lien.example", address)
            .replace("https://lemmy.example", &self.state.origin)
            .replace("https://piefed.example", &self.state.origin)
            .replace("https://mbin.example", &self.state.origin)
    }

    /// Learns an actor's key (a lien group's or person's) to check what lien signs with it.
    async fn learn_key(&self, actor: &str) {
        let doc: Value = self
            .client
            .get(actor)
            .header("Accept", AS_JSON)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        self.state.keys.lock().unwrap().insert(
            doc["publicKey"]["id"].as_str().unwrap().to_owned(),
            doc["publicKey"]["publicKeyPem"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }

    /// POSTs `body` to `inbox` signed by the account `signer`, as the peer delivers.
    async fn deliver(&self, inbox: &str, body: &str, signer: &str) -> StatusCode {
        let url: Url = inbox.parse().unwrap();
        let (_, private_pem) = &self.state.accounts[signer];
        let key_id = format!("{}#main-key", self.actor(signer));
        let mut request = self.client.post(url.clone()).body(body.to_owned());
        for (name, value) in signed_post_headers(&url, body.as_bytes(), &key_id, private_pem) {
            request = request.header(name, value);
        }
        request.send().await.unwrap().status()
    }

    fn received(&self) -> Vec<Value> {
        assert_eq!(*self.state.problems.lock().unwrap(), Vec::<String>::new());
        self.state.received.lock().unwrap().clone()
    }

    /// The activities announced to this peer whose inner activity has id `inner`.
    fn announced(&self, inner: &str) -> Vec<Value> {
        self.received()
            .into_iter()
            .filter(|a| a["type"] == "Announce" && a["object"]["id"] == inner)
            .collect()
    }
}

fn id_of(activity: &str) -> String {
    serde_json::from_str::<Value>(activity).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn get_json(url: &str, accept: &str) -> Value {
    let response = reqwest::Client::new()
        .get(url)
        .header("Accept", accept)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        AS_JSON,
        "Lemmy refuses other content types"
    );
    response.json().await.unwrap()
}

/// What Lemmy's parser requires of a Page or a Note lien sends (LemmyNet/lemmy
/// crates/apub/objects/src/protocol/{page,note}.rs; NOTES.md sections 2 and 3).
fn assert_lemmy_post(post: &Value, group: &str, story_ap_id: &str) {
    assert!(post["attributedTo"].is_string(), "one author: {post}");
    let to: Vec<&str> = post["to"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        to.contains(&"https://www.w3.org/ns/activitystreams#Public"),
        "public: {post}"
    );
    assert_eq!(post["audience"], group, "the group: {post}");
    assert_eq!(post["context"], format!("{story_ap_id}/context"));
    assert_eq!(post["mediaType"], "text/html");
    match post["type"].as_str().unwrap() {
        "Page" => {
            assert!(post["name"].is_string());
            assert!(post.get("inReplyTo").is_none(), "a Page has no inReplyTo");
        }
        "Note" => {
            assert!(post["content"].is_string());
            assert!(post["inReplyTo"].is_string());
        }
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn a_tag_is_a_group_lemmy_can_find_and_parse() {
    let lien = dev_instance().await;
    let alice = lien.user("alice").await;
    let story = alice
        .share(
            "https://example.com/borrowck",
            "The borrow checker, explained",
            "rust",
        )
        .await;
    let group = format!("{}/t/rust", lien.address);
    let host = lien.address.trim_start_matches("http://").to_owned();

    // Both ActivityPub content types get the Group; a browser the tag page.
    let doc = get_json(&group, AS_JSON).await;
    let ld = get_json(
        &group,
        "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"",
    )
    .await;
    assert_eq!(doc, ld);
    // What Lemmy's Group parser requires (crates/apub/objects/src/protocol/group.rs).
    assert_eq!(doc["type"], "Group");
    assert_eq!(doc["id"], group);
    assert_eq!(doc["preferredUsername"], "rust");
    assert_eq!(doc["inbox"], format!("{group}/inbox"));
    assert_eq!(doc["outbox"], format!("{group}/outbox"));
    assert_eq!(doc["followers"], format!("{group}/followers"));
    assert_eq!(
        doc["attributedTo"],
        format!("{group}/moderators"),
        "one URL"
    );
    assert_eq!(doc["postingRestrictedToMods"], false);
    assert_eq!(
        doc["endpoints"]["sharedInbox"],
        format!("{}/inbox", lien.address)
    );
    assert_eq!(doc["publicKey"]["owner"], group);
    let page = alice.get("/t/rust").await.text().await.unwrap();
    assert!(page.contains("<h1>Tagged"), "the tag page");
    assert!(page.contains(&format!("!rust@{host}")) && page.contains("0 followers"));

    // A tag nobody used is no group (no keys are made for made-up names).
    let response = reqwest::Client::new()
        .get(format!("{}/t/nothing-here", lien.address))
        .header("Accept", AS_JSON)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // WebFinger: a person and a tag may share a name; both answer, each typed.
    lien.user("rust").await;
    let finger: Value = reqwest::get(format!(
        "{}/.well-known/webfinger?resource=acct:rust@{host}",
        lien.address
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let selves: Vec<(String, String)> = finger["links"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["rel"] == "self")
        .map(|l| {
            (
                l["href"].as_str().unwrap().to_owned(),
                l["properties"]["https://www.w3.org/ns/activitystreams#type"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        selves,
        vec![
            (format!("{}/users/rust", lien.address), "Person".to_owned()),
            (group.clone(), "Group".to_owned())
        ]
    );

    // Collections in the shapes Lemmy reads.
    let followers = get_json(&format!("{group}/followers"), AS_JSON).await;
    assert_eq!(
        (followers["type"].as_str(), followers["totalItems"].as_i64()),
        (Some("Collection"), Some(0))
    );
    let outbox = get_json(&format!("{group}/outbox"), AS_JSON).await;
    let items = outbox["orderedItems"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0]["type"], "Announce",
        "Lemmy reads only Announces here"
    );
    assert_eq!(items[0]["object"]["type"], "Create");
    let story_ap_id = format!("{}/s/{story}", lien.address);
    assert_lemmy_post(&items[0]["object"]["object"], &group, &story_ap_id);
    let page = get_json(&story_ap_id, AS_JSON).await;
    assert_lemmy_post(&page, &group, &story_ap_id);
    assert_eq!(page["attachment"][0]["type"], "Link");
    assert_eq!(
        page["attachment"][0]["href"],
        "https://example.com/borrowck"
    );
    assert!(page["to"].as_array().unwrap().contains(&json!(group)));

    // The discussion's context collection lists every post in it, story first.
    let comment = alice.comment(story, None, "First!").await;
    let context = get_json(&format!("{story_ap_id}/context"), AS_JSON).await;
    assert_eq!(context["type"], "OrderedCollection");
    assert_eq!(
        context["orderedItems"],
        json!([story_ap_id, format!("{}/c/{comment}", lien.address)])
    );
    let note = get_json(&format!("{}/c/{comment}", lien.address), AS_JSON).await;
    assert_lemmy_post(&note, &group, &story_ap_id);

    // Moderators: the instance's staff. NodeInfo counts the groups.
    let moderators = get_json(&format!("{group}/moderators"), AS_JSON).await;
    assert_eq!(moderators["type"], "OrderedCollection");
    let nodeinfo: Value = reqwest::get(format!("{}/nodeinfo/2.1", lien.address))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(nodeinfo["metadata"]["localGroups"], 1);
}

#[tokio::test]
async fn lemmy_and_piefed_users_join_a_tag_group_and_get_every_activity_announced() {
    let lien = dev_instance().await;
    let alice = lien.user("alice").await;
    let story = alice
        .share(
            "https://example.com/borrowck",
            "The borrow checker, explained",
            "rust",
        )
        .await;
    let group = format!("{}/t/rust", lien.address);
    let group_inbox = format!("{group}/inbox");
    let shared_inbox = format!("{}/inbox", lien.address);
    let lemmy = FakePeer::start("lemmy", &["bob", "carol"]).await;
    let piefed = FakePeer::start("piefed", &["pat"]).await;
    for peer in [&lemmy, &piefed] {
        peer.learn_key(&group).await;
        peer.learn_key(&format!("{}/users/alice", lien.address))
            .await;
    }
    let ctx = Lien {
        app: &lien,
        story,
        comment: 0,
    };

    // Follow → Accept, signed by the group, the Follow embedded by ids. PieFed's goes to the
    // shared inbox, which handles it the same way.
    let follow = lemmy.fixture("lemmy", "follow_group.json", &ctx);
    assert_eq!(
        lemmy.deliver(&group_inbox, &follow, "bob").await,
        StatusCode::OK
    );
    let pie_follow = piefed.fixture("piefed", "follow_group.json", &ctx);
    assert_eq!(
        piefed.deliver(&shared_inbox, &pie_follow, "pat").await,
        StatusCode::OK
    );
    deliver_all(&lien).await;
    let accept = lemmy
        .received()
        .into_iter()
        .find(|a| a["type"] == "Accept")
        .unwrap();
    assert_eq!(accept["actor"], group);
    assert_eq!(accept["object"]["id"], id_of(&follow));
    assert_eq!(accept["object"]["actor"], lemmy.actor("bob"));
    assert_eq!(accept["object"]["object"], group);
    assert!(piefed.received().iter().any(|a| a["type"] == "Accept"));
    let page = alice.get("/t/rust").await.text().await.unwrap();
    assert!(page.contains("2 followers on other servers"), "{page}");

    // A Lemmy user's post to the group becomes a story in the tag, announced to the followers
    // (its author's server too: Lemmy 1.0 clears its "pending" mark with it).
    let create_page = lemmy.fixture("lemmy", "create_page_to_group.json", &ctx);
    assert_eq!(
        lemmy.deliver(&group_inbox, &create_page, "bob").await,
        StatusCode::OK
    );
    let post_id = format!("{}/post/123", lemmy.state.origin);
    let (title, link, posted): (String, Option<String>, bool) =
        sqlx::query_as("select title, url, posted_to_group from story where ap_id = $1")
            .bind(&post_id)
            .fetch_one(&lien.pool)
            .await
            .unwrap();
    assert_eq!(title, "Rust 1.90 released");
    assert_eq!(
        link.as_deref(),
        Some("https://blog.rust-lang.org/2025/09/18/Rust-1.90.0/")
    );
    assert!(posted);
    let listed = select_text(&alice.page("/t/rust").await, "article.story .title a");
    assert!(
        listed.iter().any(|t| t == "Rust 1.90 released"),
        "{listed:?}"
    );
    deliver_all(&lien).await;
    for peer in [&piefed, &lemmy] {
        let announces = peer.announced(&id_of(&create_page));
        assert_eq!(announces.len(), 1);
        let announce = &announces[0];
        assert_eq!(announce["actor"], group);
        assert_eq!(
            announce["to"],
            json!(["https://www.w3.org/ns/activitystreams#Public"])
        );
        assert_eq!(announce["cc"], json!([format!("{group}/followers")]));
        assert_eq!(announce["object"]["object"]["id"], post_id, "unchanged");
        assert!(announce["object"].get("@context").is_none());
    }

    // Its edit keeps it in the tag, whatever hashtags the new version carries.
    let update = lemmy
        .fixture("lemmy", "update_page_to_group.json", &ctx)
        .replace("\"#rust\"", "\"#release\"");
    assert_eq!(
        lemmy.deliver(&group_inbox, &update, "bob").await,
        StatusCode::OK
    );
    let tags: Vec<String> = sqlx::query_scalar(
        "select tag from story_tag join story on story.id = story_id where ap_id = $1 order by tag",
    )
    .bind(&post_id)
    .fetch_all(&lien.pool)
    .await
    .unwrap();
    assert_eq!(tags, vec!["release", "rust"]);

    // A reply on alice's story, delivered to the group and to the shared inbox: stored once,
    // announced once.
    let reply = lemmy.fixture("lemmy", "create_note_reply_to_story.json", &ctx);
    assert_eq!(
        lemmy.deliver(&group_inbox, &reply, "bob").await,
        StatusCode::OK
    );
    assert_eq!(
        lemmy.deliver(&shared_inbox, &reply, "bob").await,
        StatusCode::OK
    );
    assert_eq!(count(&lien.pool, "comment").await, 1);
    // Votes: Like, Dislike (carol), Undo of the Like.
    let like = lemmy.fixture("lemmy", "like_story.json", &ctx);
    assert_eq!(
        lemmy.deliver(&group_inbox, &like, "bob").await,
        StatusCode::OK
    );
    let dislike = lemmy
        .fixture("lemmy", "dislike_story.json", &ctx)
        .replace("/u/bob", "/u/carol");
    assert_eq!(
        lemmy.deliver(&group_inbox, &dislike, "carol").await,
        StatusCode::OK
    );
    let score = || async {
        sqlx::query_scalar::<_, i32>("select score from story where id = $1")
            .bind(story)
            .fetch_one(&lien.pool)
            .await
            .unwrap()
    };
    assert_eq!(score().await, 1, "alice's own vote, bob's up, carol's down");
    let undo = lemmy.fixture("lemmy", "undo_like_story.json", &ctx);
    assert_eq!(
        lemmy.deliver(&group_inbox, &undo, "bob").await,
        StatusCode::OK
    );
    assert_eq!(score().await, 0);
    deliver_all(&lien).await;
    for activity in [&reply, &like, &dislike, &undo] {
        assert_eq!(piefed.announced(&id_of(activity)).len(), 1, "{activity}");
    }

    // What alice does on lien is announced too, in the shape Lemmy parses.
    let comment = alice.comment(story, None, "Thanks, bob").await;
    deliver_all(&lien).await;
    let comment_ap_id = format!("{}/c/{comment}", lien.address);
    let create_note = piefed
        .received()
        .into_iter()
        .find(|a| a["type"] == "Announce" && a["object"]["object"]["id"] == comment_ap_id)
        .expect("alice's comment announced");
    assert_eq!(create_note["object"]["type"], "Create");
    assert!(create_note["object"]["to"].is_array() && create_note["object"]["cc"].is_array());
    assert_lemmy_post(
        &create_note["object"]["object"],
        &group,
        &format!("{}/s/{story}", lien.address),
    );

    // So are votes cast here.
    lien.user("bea")
        .await
        .vote(&format!("/s/{story}"), "1")
        .await;
    deliver_all(&lien).await;
    let bea = format!("{}/users/bea", lien.address);
    let like = piefed
        .received()
        .into_iter()
        .find(|a| a["type"] == "Announce" && a["object"]["actor"] == bea)
        .expect("bea's vote announced");
    assert_eq!(like["object"]["type"], "Like");
    assert_eq!(
        like["object"]["object"],
        format!("{}/s/{story}", lien.address)
    );

    // A report to the group becomes a report here (Lemmy puts the reason in `summary`).
    let flag = lemmy.fixture("lemmy", "flag_story_to_group.json", &ctx);
    assert_eq!(
        lemmy.deliver(&group_inbox, &flag, "bob").await,
        StatusCode::OK
    );
    let reason: String = sqlx::query_scalar("select reason from report where story_id = $1")
        .bind(story)
        .fetch_one(&lien.pool)
        .await
        .unwrap();
    assert_eq!(reason, "Spam link");

    // A Lemmy moderator's removal (Delete with a reason) of bob's post is refused: carol
    // moderates nothing here. Bob's own Delete takes it away, and is announced.
    let remove = lemmy
        .fixture("lemmy", "remove_post_by_mod.json", &ctx)
        .replace(&format!("{}/c/linux", lemmy.state.origin), &group);
    assert_eq!(
        lemmy.deliver(&group_inbox, &remove, "carol").await,
        StatusCode::FORBIDDEN
    );
    let gone = || async {
        sqlx::query_scalar::<_, bool>("select deleted_at is not null from story where ap_id = $1")
            .bind(&post_id)
            .fetch_one(&lien.pool)
            .await
            .unwrap()
    };
    assert!(!gone().await);
    let delete = lemmy.fixture("lemmy", "delete_page.json", &ctx);
    assert_eq!(
        lemmy.deliver(&group_inbox, &delete, "bob").await,
        StatusCode::OK
    );
    assert!(gone().await);
    deliver_all(&lien).await;
    assert_eq!(piefed.announced(&id_of(&delete)).len(), 1);

    // Undo(Follow): bob's server hears nothing more.
    let unfollow = lemmy.fixture("lemmy", "undo_follow_group.json", &ctx);
    assert_eq!(
        lemmy.deliver(&group_inbox, &unfollow, "bob").await,
        StatusCode::OK
    );
    let page = alice.get("/t/rust").await.text().await.unwrap();
    assert!(page.contains("1 follower on other servers"), "{page}");
    let (lemmy_before, piefed_before) = (lemmy.received().len(), piefed.received().len());
    alice.comment(story, None, "Anyone else?").await;
    deliver_all(&lien).await;
    assert_eq!(lemmy.received().len(), lemmy_before);
    assert_eq!(piefed.received().len(), piefed_before + 1);
}

#[tokio::test]
async fn mbin_posts_to_a_tag_group_and_a_blocked_server_is_refused() {
    let lien = dev_instance().await;
    let alice = lien.user("alice").await;
    let story = alice
        .share("https://example.com/a", "Something about rust", "rust")
        .await;
    let group = format!("{}/t/rust", lien.address);
    let mbin = FakePeer::start("mbin", &["max"]).await;
    let ctx = Lien {
        app: &lien,
        story,
        comment: 0,
    };
    let create = mbin.fixture("mbin", "create_page_to_group.json", &ctx);
    assert_eq!(
        mbin.deliver(&format!("{group}/inbox"), &create, "max")
            .await,
        StatusCode::OK
    );
    let (title, link): (String, Option<String>) =
        sqlx::query_as("select title, url from story where ap_id like '%/m/rustlang/t/555'")
            .fetch_one(&lien.pool)
            .await
            .unwrap();
    assert_eq!(title, "Rust 1.90 released");
    assert_eq!(
        link.as_deref(),
        Some("https://blog.rust-lang.org/2025/09/18/Rust-1.90.0/")
    );

    // A person banned here is refused by the group: a report from max changes nothing.
    sqlx::query("update person set banned_at = now() where ap_id = $1")
        .bind(mbin.actor("max"))
        .execute(&lien.pool)
        .await
        .unwrap();
    let flag = mbin.fixture("mbin", "flag_story_to_group.json", &ctx);
    assert_eq!(
        mbin.deliver(&format!("{group}/inbox"), &flag, "max").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(count(&lien.pool, "report").await, 0);

    // A blocked server's follow is refused and stores nothing.
    sqlx::query("insert into instance_block (host, reason) values ($1, 'spam')")
        .bind(mbin.state.origin.trim_start_matches("http://"))
        .execute(&lien.pool)
        .await
        .unwrap();
    let follow = mbin.fixture("mbin", "follow_group.json", &ctx);
    assert_eq!(
        mbin.deliver(&format!("{group}/inbox"), &follow, "max")
            .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(count(&lien.pool, "tag_follower").await, 0);
}

#[tokio::test]
async fn a_mastodon_follower_gets_one_boost_per_new_story_and_a_mention_shares_a_link() {
    let lien = dev_instance().await;
    let alice = lien.user("alice").await;
    alice
        .share("https://example.com/first", "First rust story", "rust")
        .await;
    let group = format!("{}/t/rust", lien.address);
    let mastodon = FakeMastodon::start(&lien).await;
    mastodon.learn_key(&group).await;
    let follow = mastodon.activity(
        "follow.json",
        "mallory",
        &[("FOLLOW", "follows/1"), ("OBJECT", &group)],
    );
    assert_eq!(
        mastodon
            .deliver(&format!("{group}/inbox"), &follow, "mallory")
            .await,
        StatusCode::OK
    );
    let aware: bool = sqlx::query_scalar("select groups_aware from tag_follower")
        .fetch_one(&lien.pool)
        .await
        .unwrap();
    assert!(!aware, "Mastodon's NodeInfo names mastodon");
    deliver_all(&lien).await;
    let boosts = |received: Vec<Value>| -> Vec<Value> {
        received
            .into_iter()
            .filter(|a| a["type"] == "Announce" && a["actor"] == group)
            .collect()
    };
    assert_eq!(boosts(mastodon.received()).len(), 0);

    // A new story: one boost, of the story's id, which Mastodon fetches and shows.
    let story = alice
        .share(
            "https://example.com/second",
            "Second rust story",
            "rust web",
        )
        .await;
    deliver_all(&lien).await;
    let got = boosts(mastodon.received());
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["object"], format!("{}/s/{story}", lien.address));
    assert!(got[0]["to"]
        .as_array()
        .unwrap()
        .contains(&json!("https://www.w3.org/ns/activitystreams#Public")));

    // Comments, votes and edits: nothing on Mastodon timelines.
    let comment = alice.comment(story, None, "a comment").await;
    lien.user("bea")
        .await
        .vote(&format!("/s/{story}"), "1")
        .await;
    alice.comment(story, Some(comment), "another").await;
    deliver_all(&lien).await;
    assert_eq!(boosts(mastodon.received()).len(), 1);

    // A public post mentioning the group shares its link as a story in the tag.
    let status = mastodon.activity(
        "create_status_mentioning_group.json",
        "mallory",
        &[
            ("STATUS", "77"),
            ("GROUP", &group),
            ("GROUP_NAME", "rust"),
            ("TEXT", "Lifetimes, explained well:"),
            ("LINK", "https://blog.example/lifetimes"),
            ("LINK_SHOWN", "blog.example/lifetimes"),
        ],
    );
    assert_eq!(
        mastodon
            .deliver(&format!("{group}/inbox"), &status, "mallory")
            .await,
        StatusCode::OK
    );
    let (id, title, link): (i64, String, Option<String>) =
        sqlx::query_as("select id, title, url from story where ap_id like '%/statuses/77'")
            .fetch_one(&lien.pool)
            .await
            .unwrap();
    assert_eq!(title, "Lifetimes, explained well:");
    assert_eq!(link.as_deref(), Some("https://blog.example/lifetimes"));
    let tags: Vec<String> =
        sqlx::query_scalar("select tag from story_tag where story_id = $1 order by tag")
            .bind(id)
            .fetch_all(&lien.pool)
            .await
            .unwrap();
    assert_eq!(tags, vec!["lifetimes", "rust", "til"]);
    // ... and the group boosts it like any new story.
    deliver_all(&lien).await;
    assert_eq!(boosts(mastodon.received()).len(), 2);

    // The same function makes a followed account's status a link story (issue 13 point 6): alice
    // follows mallory, whose next status mentions eve rather than a group.
    sqlx::query(
        "insert into follow (follower_id, followee_id, ap_id, accepted)
         select a.id, m.id, 'http://follow.example/1', true from person a, person m
         where a.name = 'alice' and a.local and m.ap_id = $1",
    )
    .bind(&mastodon.account("mallory").actor)
    .execute(&lien.pool)
    .await
    .unwrap();
    let eve = mastodon.account("eve").actor.clone();
    let status = mastodon.activity(
        "create_status_mentioning_group.json",
        "mallory",
        &[
            ("STATUS", "78"),
            ("GROUP", &eve),
            ("GROUP_NAME", "eve"),
            ("TEXT", "Read this, eve"),
            ("LINK", "https://news.example/item?id=5"),
            ("LINK_SHOWN", "news.example/item?id=5"),
        ],
    );
    assert_eq!(
        mastodon
            .deliver(&format!("{}/inbox", lien.address), &status, "mallory")
            .await,
        StatusCode::OK
    );
    let (title, link, posted): (String, Option<String>, bool) = sqlx::query_as(
        "select title, url, posted_to_group from story where ap_id like '%/statuses/78'",
    )
    .fetch_one(&lien.pool)
    .await
    .unwrap();
    assert_eq!(title, "Read this, eve");
    assert_eq!(link.as_deref(), Some("https://news.example/item?id=5"));
    assert!(!posted, "no group was addressed");
}

#[tokio::test]
async fn a_removal_here_is_announced_as_lemmy_takes_a_moderators_removal() {
    let lien = dev_instance().await;
    let alice = lien.user("alice").await;
    let story = alice
        .share("https://example.com/a", "A rust story", "rust")
        .await;
    let group = format!("{}/t/rust", lien.address);
    let root = crate::moderation::admin(&lien).await;
    let lemmy = FakePeer::start("lemmy", &["bob"]).await;
    lemmy.learn_key(&group).await;
    lemmy
        .learn_key(&format!("{}/users/alice", lien.address))
        .await;
    let ctx = Lien {
        app: &lien,
        story,
        comment: 0,
    };
    let follow = lemmy.fixture("lemmy", "follow_group.json", &ctx);
    assert_eq!(
        lemmy
            .deliver(&format!("{group}/inbox"), &follow, "bob")
            .await,
        StatusCode::OK
    );
    let create_page = lemmy.fixture("lemmy", "create_page_to_group.json", &ctx);
    assert_eq!(
        lemmy
            .deliver(&format!("{group}/inbox"), &create_page, "bob")
            .await,
        StatusCode::OK
    );
    let bobs: i64 = sqlx::query_scalar("select id from story where ap_id like '%/post/123'")
        .fetch_one(&lien.pool)
        .await
        .unwrap();
    deliver_all(&lien).await;

    // The moderators collection names the admin, whose removals Lemmy then accepts.
    let moderators = get_json(&format!("{group}/moderators"), AS_JSON).await;
    let root_id = format!("{}/users/root", lien.address);
    assert_eq!(moderators["orderedItems"], json!([root_id]));

    // A local story and a Lemmy user's post to the group, removed here.
    for id in [story, bobs] {
        crate::moderation::moderate(&root, "remove", "story", &id.to_string(), "off-topic").await;
    }
    deliver_all(&lien).await;
    let removals: Vec<Value> = lemmy
        .received()
        .into_iter()
        .filter(|a| {
            a["type"] == "Announce"
                && a["object"]["type"] == "Delete"
                && a["object"]["actor"] == root_id
        })
        .collect();
    assert_eq!(removals.len(), 2, "{removals:?}");
    for removal in &removals {
        assert_eq!(removal["actor"], group);
        let delete = &removal["object"];
        assert_eq!(
            delete["summary"], "off-topic",
            "Lemmy tells a removal by its summary"
        );
        assert!(delete["to"]
            .as_array()
            .unwrap()
            .contains(&json!("https://www.w3.org/ns/activitystreams#Public")));
        assert_eq!(delete["audience"], group);
    }
    let objects: Vec<&Value> = removals.iter().map(|r| &r["object"]["object"]).collect();
    assert!(objects.contains(&&json!(format!("{}/s/{story}", lien.address))));
    assert!(objects.contains(&&json!(format!("{}/post/123", lemmy.state.origin))));

    // A restore is the Undo of that removal.
    crate::moderation::moderate(&root, "restore", "story", &bobs.to_string(), "fine").await;
    deliver_all(&lien).await;
    let undo = lemmy
        .received()
        .into_iter()
        .find(|a| {
            a["type"] == "Announce"
                && a["object"]["type"] == "Undo"
                && a["object"]["actor"] == root_id
        })
        .expect("the restore announced");
    // Lemmy tells an un-removal from an undeletion by the summary of the undone Delete.
    assert_eq!(undo["object"]["object"]["type"], "Delete");
    assert!(undo["object"]["object"]["summary"].is_string());
}
