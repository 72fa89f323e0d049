//! HTTP signatures both ways, against a small peer written here: RFC 9421 and draft-cavage
//! signatures on lien's inboxes (what is taken, what is refused with 401 and leaves nothing
//! behind), the Date window, stale and revoked keys, the list caps, the per-host choice of scheme
//! for deliveries with its draft-cavage fallback, and searches that fetch each document once.

use std::{
    collections::HashMap,
    io::{Read, Write},
    net::TcpListener,
    sync::{Arc, Mutex},
    time::Instant,
};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::{engine::general_purpose::STANDARD as Base64, Engine};
use reqwest::StatusCode;
use rsa::{pkcs8::DecodePrivateKey, Pkcs1v15Sign, RsaPrivateKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use url::Url;

use crate::{
    federation::{deliver_all, dev_instance},
    helpers::{count, location, TestApp},
    signatures::{
        check_signature, rfc9421_post_headers, signed_post_headers, signed_post_headers_at,
    },
};

const AS: &str = "https://www.w3.org/ns/activitystreams";

struct PeerState {
    origin: String,
    /// The key its actors publish now: (public PEM, private PEM).
    key: Mutex<(String, String)>,
    /// Whether actor documents answer 503 (the server is down, or the key was withdrawn).
    actors_down: Mutex<bool>,
    documents: Mutex<HashMap<String, String>>,
    /// GETs by path (with query).
    hits: Mutex<HashMap<String, usize>>,
    /// POSTs to its inboxes: (scheme, status answered).
    knocks: Mutex<Vec<(String, u16)>>,
    /// lien's public keys by key id, to check lien's draft-cavage signatures.
    lien_keys: Mutex<HashMap<String, String>>,
}

/// A server that speaks draft-cavage only, as most of the fediverse does: it answers 401 to an
/// RFC 9421 signature, and checks draft-cavage ones as Mastodon does. Any `/users/{name}` is an
/// actor with the current key.
struct Peer {
    state: Arc<PeerState>,
    client: reqwest::Client,
}

fn hit(state: &PeerState, req: &HttpRequest) {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    *state
        .hits
        .lock()
        .unwrap()
        .entry(path.to_owned())
        .or_default() += 1;
}

async fn actor(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<PeerState>,
) -> HttpResponse {
    hit(&state, &req);
    if *state.actors_down.lock().unwrap() {
        return HttpResponse::ServiceUnavailable().finish();
    }
    let id = format!("{}/users/{path}", state.origin);
    let public = state.key.lock().unwrap().0.clone();
    HttpResponse::Ok()
        .content_type("application/activity+json")
        .json(json!({
            "@context": [AS, "https://w3id.org/security/v1"],
            "id": id,
            "type": "Person",
            "preferredUsername": *path,
            "name": format!("{path} of the peer"),
            "inbox": format!("{id}/inbox"),
            "outbox": format!("{id}/outbox"),
            "followers": format!("{id}/followers"),
            "endpoints": { "sharedInbox": format!("{}/inbox", state.origin) },
            "publicKey": { "id": format!("{id}#main-key"), "owner": id, "publicKeyPem": public },
        }))
}

async fn document(req: HttpRequest, state: web::Data<PeerState>) -> HttpResponse {
    hit(&state, &req);
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    match state.documents.lock().unwrap().get(path) {
        Some(body) => HttpResponse::Ok()
            .content_type("application/activity+json")
            .body(body.clone()),
        None => HttpResponse::NotFound().finish(),
    }
}

async fn inbox(req: HttpRequest, body: web::Bytes, state: web::Data<PeerState>) -> HttpResponse {
    let (scheme, status) = if req.headers().contains_key("signature-input") {
        ("rfc9421", StatusCode::UNAUTHORIZED)
    } else {
        let keys = state.lien_keys.lock().unwrap().clone();
        match check_signature(&req, &body, &keys) {
            Ok(()) => ("cavage", StatusCode::ACCEPTED),
            Err(_) => ("cavage", StatusCode::UNAUTHORIZED),
        }
    };
    state
        .knocks
        .lock()
        .unwrap()
        .push((scheme.to_owned(), status.as_u16()));
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status.as_u16()).unwrap()).finish()
}

impl Peer {
    async fn start() -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let origin = format!("http://localhost:{}", listener.local_addr().unwrap().port());
        let keys = activitypub_federation::http_signatures::generate_actor_keypair().unwrap();
        let state = Arc::new(PeerState {
            origin,
            key: Mutex::new((keys.public_key, keys.private_key)),
            actors_down: Mutex::new(false),
            documents: Mutex::default(),
            hits: Mutex::default(),
            knocks: Mutex::default(),
            lien_keys: Mutex::default(),
        });
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/users/{name}", web::get().to(actor))
                .route("/users/{name}/inbox", web::post().to(inbox))
                .route("/inbox", web::post().to(inbox))
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

    fn host(&self) -> String {
        self.state.origin.trim_start_matches("http://").to_owned()
    }

    fn actor(&self, name: &str) -> String {
        format!("{}/users/{name}", self.state.origin)
    }

    fn private_key(&self) -> String {
        self.state.key.lock().unwrap().1.clone()
    }

    /// A new key pair for every actor; the old private key is returned.
    fn rotate_key(&self) -> String {
        let keys = activitypub_federation::http_signatures::generate_actor_keypair().unwrap();
        let mut key = self.state.key.lock().unwrap();
        std::mem::replace(&mut *key, (keys.public_key, keys.private_key)).1
    }

    fn hits(&self, path: &str) -> usize {
        self.state
            .hits
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    fn knocks(&self) -> Vec<(String, u16)> {
        self.state.knocks.lock().unwrap().clone()
    }

    fn serve(&self, path: &str, document: Value) {
        self.state
            .documents
            .lock()
            .unwrap()
            .insert(path.to_owned(), document.to_string());
    }

    /// Learns a lien person's key from their actor document, to check lien's deliveries.
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
        self.state.lien_keys.lock().unwrap().insert(
            person["publicKey"]["id"].as_str().unwrap().to_owned(),
            person["publicKey"]["publicKeyPem"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }

    /// A Follow of `object` by `name`, with a fresh id.
    fn follow(&self, name: &str, object: &str) -> String {
        json!({
            "@context": AS,
            "id": format!("{}/follows/{}", self.state.origin, uuid::Uuid::new_v4()),
            "type": "Follow",
            "actor": self.actor(name),
            "object": object,
        })
        .to_string()
    }

    async fn post(&self, url: &str, body: &str, headers: Vec<(String, String)>) -> StatusCode {
        let mut request = self.client.post(url).body(body.to_owned());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send().await.unwrap().status()
    }

    /// POSTs `body` to `url` signed RFC 9421 by `name` with `private_pem`, created at `created`.
    async fn post_rfc9421(
        &self,
        url: &str,
        body: &str,
        name: &str,
        private_pem: &str,
        created: chrono::DateTime<chrono::Utc>,
    ) -> StatusCode {
        let target: Url = url.parse().unwrap();
        let key_id = format!("{}#main-key", self.actor(name));
        let headers = rfc9421_post_headers(&target, body.as_bytes(), &key_id, private_pem, created);
        self.post(url, body, headers).await
    }

    /// POSTs `body` to `url` signed draft-cavage by `name` with `private_pem`.
    async fn post_cavage(
        &self,
        url: &str,
        body: &str,
        name: &str,
        private_pem: &str,
    ) -> StatusCode {
        let target: Url = url.parse().unwrap();
        let key_id = format!("{}#main-key", self.actor(name));
        let headers = signed_post_headers(&target, body.as_bytes(), &key_id, private_pem);
        self.post(url, body, headers).await
    }
}

async fn remote_people(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from person where not local")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn scheme_of(app: &TestApp, host: &str) -> Option<String> {
    sqlx::query_scalar("select scheme from peer_signature where host = $1")
        .bind(host)
        .fetch_optional(&app.pool)
        .await
        .unwrap()
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

#[tokio::test]
async fn an_rfc9421_signed_post_is_taken_and_tampered_ones_are_refused() {
    let app = dev_instance().await;
    app.user("alice").await;
    let peer = Peer::start().await;
    let alice = format!("{}/users/alice", app.address);
    let inbox = format!("{alice}/inbox");
    let key = peer.private_key();
    let follow = peer.follow("pat", &alice);
    let key_id = format!("{}#main-key", peer.actor("pat"));
    let signed = |body: &str, created| {
        rfc9421_post_headers(
            &inbox.parse().unwrap(),
            body.as_bytes(),
            &key_id,
            &key,
            created,
        )
    };
    let nothing_stored = || async {
        assert_eq!(count(&app.pool, "follow").await, 0);
        assert_eq!(remote_people(&app).await, 0, "no actor is stored");
        assert_eq!(count(&app.pool, "received_activity").await, 0);
    };

    // The body changed after signing: its Content-Digest no longer matches.
    let other = peer.follow("pat", &alice);
    let status = peer.post(&inbox, &other, signed(&follow, now())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "tampered body");
    nothing_stored().await;
    // A covered header changed after signing (the Date), with the digest recomputed to match.
    let mut headers = signed(&follow, now());
    for (name, value) in &mut headers {
        if name == "date" {
            *value = (now() - chrono::Duration::minutes(5))
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string();
        }
    }
    let status = peer.post(&inbox, &follow, headers).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "tampered covered header");
    nothing_stored().await;
    // Sent to another URL than the one signed (`@target-uri`).
    let status = peer
        .post(
            &format!("{}/inbox", app.address),
            &follow,
            signed(&follow, now()),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "another target");
    nothing_stored().await;
    // Created 13 hours ago, or 2 hours ahead: outside the window.
    for created in [
        now() - chrono::Duration::hours(13),
        now() + chrono::Duration::hours(2),
    ] {
        let status = peer.post(&inbox, &follow, signed(&follow, created)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "created {created}");
    }
    nothing_stored().await;
    // Signed with a key that is not pat's.
    let stranger = activitypub_federation::http_signatures::generate_actor_keypair().unwrap();
    let status = peer
        .post_rfc9421(&inbox, &follow, "pat", &stranger.private_key, now())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "another key");
    nothing_stored().await;

    // The real one is taken, and pat's server is now known to speak RFC 9421.
    let status = peer.post_rfc9421(&inbox, &follow, "pat", &key, now()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(count(&app.pool, "follow").await, 1);
    assert_eq!(
        scheme_of(&app, &peer.host()).await.as_deref(),
        Some("rfc9421")
    );
    // Eleven hours old is still within the window.
    let again = peer.follow("pat", &alice);
    let status = peer
        .post_rfc9421(
            &inbox,
            &again,
            "pat",
            &key,
            now() - chrono::Duration::hours(11),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn badly_signed_posts_store_no_actor() {
    let app = dev_instance().await;
    app.user("alice").await;
    let peer = Peer::start().await;
    let alice = format!("{}/users/alice", app.address);
    let inbox = format!("{alice}/inbox");
    let forger = activitypub_federation::http_signatures::generate_actor_keypair().unwrap();
    for n in 0..5 {
        let name = format!("victim{n}");
        let follow = peer.follow(&name, &alice);
        let status = peer
            .post_cavage(&inbox, &follow, &name, &forger.private_key)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let status = peer
            .post_rfc9421(&inbox, &follow, &name, &forger.private_key, now())
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // The documents were fetched to get the keys, and kept no further.
    assert!(peer.hits("/users/victim0") >= 1);
    assert_eq!(remote_people(&app).await, 0, "no person rows");
    assert_eq!(count(&app.pool, "follow").await, 0);
}

/// A draft-cavage signature of a POST over `covered` (names among `(request-target)`, `host`,
/// `date`, `digest`), with the `date` header given as is (or absent).
fn cavage_headers(
    inbox: &Url,
    body: &[u8],
    key_id: &str,
    private_pem: &str,
    date: Option<&str>,
    covered: &[&str],
) -> Vec<(String, String)> {
    let host = format!("{}:{}", inbox.host_str().unwrap(), inbox.port().unwrap());
    let digest = format!("SHA-256={}", Base64.encode(Sha256::digest(body)));
    let lines: Vec<String> = covered
        .iter()
        .map(|name| match *name {
            "(request-target)" => format!("(request-target): post {}", inbox.path()),
            "host" => format!("host: {host}"),
            "date" => format!("date: {}", date.unwrap_or_default()),
            "digest" => format!("digest: {digest}"),
            other => panic!("{other}"),
        })
        .collect();
    let key = RsaPrivateKey::from_pkcs8_pem(private_pem).unwrap();
    let signature = key
        .sign(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(lines.join("\n").as_bytes()),
        )
        .unwrap();
    let mut headers = vec![
        ("digest".to_owned(), digest),
        (
            "signature".to_owned(),
            format!(
                "keyId=\"{key_id}\",algorithm=\"rsa-sha256\",headers=\"{}\",signature=\"{}\"",
                covered.join(" "),
                Base64.encode(signature)
            ),
        ),
        (
            "content-type".to_owned(),
            "application/activity+json".to_owned(),
        ),
    ];
    if let Some(date) = date {
        headers.push(("date".to_owned(), date.to_owned()));
    }
    headers
}

#[tokio::test]
async fn a_signature_needs_a_signed_date_within_the_window() {
    let app = dev_instance().await;
    app.user("alice").await;
    let peer = Peer::start().await;
    let alice = format!("{}/users/alice", app.address);
    let inbox: Url = format!("{alice}/inbox").parse().unwrap();
    let key = peer.private_key();
    let key_id = format!("{}#main-key", peer.actor("pat"));
    let http_date =
        |when: chrono::DateTime<chrono::Utc>| when.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    let all = ["(request-target)", "host", "date", "digest"];
    let unsigned_date = ["(request-target)", "host", "digest"];
    let at = |hours: i64| now() + chrono::Duration::hours(hours);
    for case in [
        "two days ahead",
        "two hours ahead",
        "13 hours old",
        "unparsable",
        "none",
        "not signed",
    ] {
        let body = peer.follow("pat", &alice);
        let bytes = body.as_bytes();
        let headers = match case {
            "two days ahead" => signed_post_headers_at(&inbox, bytes, &key_id, &key, at(48)),
            "two hours ahead" => signed_post_headers_at(&inbox, bytes, &key_id, &key, at(2)),
            "13 hours old" => signed_post_headers_at(&inbox, bytes, &key_id, &key, at(-13)),
            "unparsable" => cavage_headers(
                &inbox,
                bytes,
                &key_id,
                &key,
                Some("the day before yesterday"),
                &all,
            ),
            "none" => cavage_headers(&inbox, bytes, &key_id, &key, None, &unsigned_date),
            _ => cavage_headers(
                &inbox,
                bytes,
                &key_id,
                &key,
                Some(&http_date(now())),
                &unsigned_date,
            ),
        };
        let status = peer.post(inbox.as_str(), &body, headers).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "Date {case}");
    }
    assert_eq!(count(&app.pool, "follow").await, 0);
    assert_eq!(remote_people(&app).await, 0);
    // Within the window (11 hours old, 50 minutes ahead), signed: taken.
    for when in [
        now() - chrono::Duration::hours(11),
        now() + chrono::Duration::minutes(50),
    ] {
        let body = peer.follow("pat", &alice);
        let headers = cavage_headers(
            &inbox,
            body.as_bytes(),
            &key_id,
            &key,
            Some(&http_date(when)),
            &all,
        );
        assert_eq!(
            peer.post(inbox.as_str(), &body, headers).await,
            StatusCode::OK,
            "{when}"
        );
    }
}

/// Makes lien's stored copy of `actor` look fetched `hours` ago.
async fn age_actor(app: &TestApp, actor: &str, hours: i32) {
    sqlx::query(
        "update person set fetched_at = now() - make_interval(hours => $2) where ap_id = $1",
    )
    .bind(actor)
    .bind(hours)
    .execute(&app.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_key_older_than_a_day_is_fetched_again_before_it_is_trusted() {
    let app = dev_instance().await;
    app.user("alice").await;
    let peer = Peer::start().await;
    let alice = format!("{}/users/alice", app.address);
    let inbox = format!("{alice}/inbox");
    let pat = peer.actor("pat");
    let first = peer.private_key();
    let status = peer
        .post_cavage(&inbox, &peer.follow("pat", &alice), "pat", &first)
        .await;
    assert_eq!(status, StatusCode::OK);
    let fetches = peer.hits("/users/pat");

    // A day later, pat's server cannot be reached: the stored key is no longer trusted alone.
    age_actor(&app, &pat, 25).await;
    *peer.state.actors_down.lock().unwrap() = true;
    let status = peer
        .post_cavage(&inbox, &peer.follow("pat", &alice), "pat", &first)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "an unconfirmed old key");
    assert_eq!(
        peer.hits("/users/pat"),
        fetches + 1,
        "it was asked for again"
    );
    *peer.state.actors_down.lock().unwrap() = false;

    // Pat's key was rotated: the old one is revoked, the new one works.
    let revoked = peer.rotate_key();
    let status = peer
        .post_cavage(&inbox, &peer.follow("pat", &alice), "pat", &revoked)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a revoked key");
    age_actor(&app, &pat, 25).await;
    let status = peer
        .post_cavage(
            &inbox,
            &peer.follow("pat", &alice),
            "pat",
            &peer.private_key(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the rotated key");
    let stored: String = sqlx::query_scalar("select public_key_pem from person where ap_id = $1")
        .bind(&pat)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, peer.state.key.lock().unwrap().0);
    // Within the day, the stored key is trusted without asking again.
    let fetches = peer.hits("/users/pat");
    let status = peer
        .post_cavage(
            &inbox,
            &peer.follow("pat", &alice),
            "pat",
            &peer.private_key(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(peer.hits("/users/pat"), fetches);
}

#[tokio::test]
async fn a_flag_naming_too_many_objects_is_refused_before_any_work() {
    let app = dev_instance().await;
    app.user("alice").await;
    let peer = Peer::start().await;
    let inbox = format!("{}/inbox", app.address);
    let key = peer.private_key();
    let flag = |objects: usize, to: usize| {
        json!({
            "@context": AS,
            "id": format!("{}/flags/{}", peer.state.origin, uuid::Uuid::new_v4()),
            "type": "Flag",
            "actor": peer.actor("pat"),
            "content": "spam",
            "object": (0..objects).map(|n| format!("http://a/{n}")).collect::<Vec<_>>(),
            "to": (0..to).map(|n| format!("http://a/u/{n}")).collect::<Vec<_>>(),
        })
        .to_string()
    };
    // 50,000 objects: the figure of the report, timed.
    let huge = flag(50_000, 0);
    assert!(huge.len() < 1024 * 1024, "{} bytes", huge.len());
    let queries_before = transactions(&app).await;
    let started = Instant::now();
    let status = peer.post_cavage(&inbox, &huge, "pat", &key).await;
    let took = started.elapsed();
    let queries = transactions(&app).await - queries_before;
    eprintln!("a signed Flag naming 50,000 objects: {status} in {took:?}, {queries} transactions");
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        remote_people(&app).await,
        0,
        "refused before the signer is fetched"
    );
    // Any other list over the cap too (here `to`), and a Flag within the caps is taken.
    let status = peer.post_cavage(&inbox, &flag(1, 501), "pat", &key).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let status = peer.post_cavage(&inbox, &flag(100, 500), "pat", &key).await;
    assert_eq!(status, StatusCode::OK);
}

/// Transactions committed in the test's database so far (every query outside a transaction is
/// one), as the statistics collector has them.
async fn transactions(app: &TestApp) -> i64 {
    // Statistics reach the shared view at most once a second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    sqlx::query_scalar(
        "select xact_commit + xact_rollback from pg_stat_database where datname = current_database()",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_refused_rfc9421_delivery_is_sent_again_with_draft_cavage_and_remembered() {
    let app = dev_instance().await;
    let alice = app.user("alice").await;
    let peer = Peer::start().await;
    let alice_id = format!("{}/users/alice", app.address);
    peer.learn_key(&alice_id).await;
    // Pat follows alice signing with RFC 9421: lien takes its server to speak it.
    let status = peer
        .post_rfc9421(
            &format!("{alice_id}/inbox"),
            &peer.follow("pat", &alice_id),
            "pat",
            &peer.private_key(),
            now(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        scheme_of(&app, &peer.host()).await.as_deref(),
        Some("rfc9421")
    );

    // The Accept goes RFC 9421 first; refused with 401, it goes again draft-cavage at once.
    deliver_all(&app).await;
    assert_eq!(
        peer.knocks(),
        vec![("rfc9421".to_owned(), 401), ("cavage".to_owned(), 202)]
    );
    assert_eq!(
        scheme_of(&app, &peer.host()).await.as_deref(),
        Some("cavage")
    );
    // From then on (another worker, as after a restart), draft-cavage first.
    alice
        .share("https://example.com/one", "One", "fediverse")
        .await;
    deliver_all(&app).await;
    let knocks = peer.knocks();
    assert_eq!(knocks.len(), 3, "{knocks:?}");
    assert_eq!(knocks[2], ("cavage".to_owned(), 202));
}

#[tokio::test]
async fn a_pasted_status_or_actor_url_is_fetched_once() {
    let app = dev_instance().await;
    let alice = app.user("alice").await;
    let peer = Peer::start().await;
    let pat = peer.actor("pat");
    let status = format!("{pat}/statuses/1");
    peer.serve(
        "/users/pat/statuses/1",
        json!({
            "@context": AS,
            "id": status,
            "type": "Note",
            "attributedTo": pat,
            "to": [format!("{AS}#Public")],
            "cc": [],
            "published": "2026-11-21T18:04:12Z",
            "content": "<p>Fetched once</p>",
            "replies": {
                "id": format!("{status}/replies"),
                "type": "Collection",
                "first": { "type": "CollectionPage", "items": [] },
            },
        }),
    );
    let search = |q: &str| {
        let q: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
        format!("/search?q={q}")
    };
    let response = alice.get(&search(&status)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&response).starts_with("/s/"),
        "{}",
        location(&response)
    );
    assert_eq!(peer.hits("/users/pat/statuses/1"), 1, "the status");
    assert_eq!(peer.hits("/users/pat"), 1, "its author");

    let response = alice.get(&search(&peer.actor("sam"))).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), format!("/@sam@{}", peer.host()));
    assert_eq!(peer.hits("/users/sam"), 1, "the actor");
}

/// A WebFinger server on plain http that notes whether each connection opened with a TLS
/// handshake (an https attempt, which it drops) or an HTTP request (answered with `answer`).
fn webfinger_server(answer: Value) -> (u16, Arc<Mutex<Vec<&'static str>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let noted = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0u8; 4096];
            let Ok(read) = stream.read(&mut buffer) else {
                continue;
            };
            if read == 0 {
                continue;
            }
            if buffer[0] == 0x16 {
                noted.lock().unwrap().push("https");
                continue;
            }
            noted.lock().unwrap().push("http");
            let body = answer.to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/jrd+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, seen)
}

#[tokio::test]
async fn webfinger_tries_https_first_and_takes_null_aliases() {
    let app = dev_instance().await;
    let alice = app.user("alice").await;
    let peer = Peer::start().await;
    let (port, seen) = webfinger_server(json!({
        "subject": format!("acct:sam@localhost"),
        "aliases": null,
        "links": [{ "rel": "self", "type": "application/activity+json", "href": peer.actor("sam") }],
    }));
    let q: String =
        url::form_urlencoded::byte_serialize(format!("@sam@localhost:{port}").as_bytes()).collect();
    let response = alice.get(&format!("/search?q={q}")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), format!("/@sam@{}", peer.host()));
    assert_eq!(*seen.lock().unwrap(), vec!["https", "http"]);
}
