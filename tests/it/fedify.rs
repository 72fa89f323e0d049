//! lien against an independent ActivityPub implementation: Fedify (from npm), driven by
//! `interop/fedify/peer.mjs` in a Node process. Fedify looks lien's person and story up with its
//! own code (WebFinger, JSON-LD), follows with its own signatures (RFC 9421 first, which lien
//! verifies), and takes lien's Accept and Create only through its own signature check: signed
//! RFC 9421 too, since Fedify's server signed that way.
//!
//! Needs Node.js (20 or later) and npm; `npm ci` runs in interop/fedify when its dependencies are
//! missing or older than its package-lock.json.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader},
    process::{Child, Command},
    sync::mpsc,
    time::timeout,
};

use crate::{
    federation::{deliver_all, dev_instance},
    helpers::TestApp,
    signatures::signed_post_headers,
};

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/fedify")
}

/// Runs a command to completion within `limit`, returning its combined output.
async fn run(dir: &Path, program: &str, args: &[&str], limit: Duration) -> (bool, String) {
    let child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(child) => child,
        Err(error) => panic!(
            "cannot run `{program}` ({error}): this test needs Node.js 20 or later with npm \
             on PATH (e.g. `apt-get install nodejs npm`)"
        ),
    };
    let output = timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("`{program} {}` took over {limit:?}", args.join(" ")))
        .expect("waiting for a child process");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// One `npm ci` at a time: tests run side by side, and two installs into one `node_modules` (on a
/// fresh clone, where it is missing) break each other (`ENOTEMPTY`).
static NPM_INSTALL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Node and the pinned npm packages, installed from package-lock.json when missing or stale.
pub(crate) async fn ensure_node_dependencies(dir: &Path) {
    let _one_at_a_time = NPM_INSTALL.lock().await;
    let (ok, version) = run(dir, "node", &["--version"], Duration::from_secs(30)).await;
    assert!(ok, "`node --version` failed: {version}");
    let major: u32 = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= 20,
        "Node.js 20 or later is needed, found {}",
        version.trim()
    );
    let modified = |path: PathBuf| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let installed = modified(dir.join("node_modules/.package-lock.json"));
    let locked = modified(dir.join("package-lock.json"));
    if installed.is_none() || installed < locked {
        let (ok, output) = run(
            dir,
            "npm",
            &["ci", "--no-audit", "--no-fund", "--loglevel=error"],
            Duration::from_secs(600),
        )
        .await;
        assert!(ok, "`npm ci` in {} failed:\n{output}", dir.display());
    }
}

/// The peer process: its stdout lines arrive on a channel, its stderr is kept for failures.
struct Peer {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    stderr: Arc<Mutex<String>>,
}

fn forward_lines(
    stream: impl AsyncRead + Unpin + Send + 'static,
    sink: impl Fn(String) + Send + 'static,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            sink(line);
        }
    });
}

impl Peer {
    fn spawn(dir: &Path, lien: &TestApp, story_url: &str) -> Peer {
        Peer::spawn_script(
            dir,
            "peer.mjs",
            &[lien.address.as_str(), "0", story_url, "alice"],
        )
    }

    fn spawn_script(dir: &Path, script: &str, args: &[&str]) -> Peer {
        let mut child = Command::new("node")
            .arg(script)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting node {script}: {e}"));
        let (sender, lines) = mpsc::unbounded_channel();
        forward_lines(child.stdout.take().unwrap(), move |line| {
            let _ = sender.send(line);
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let kept = stderr.clone();
        forward_lines(child.stderr.take().unwrap(), move |line| {
            let mut kept = kept.lock().unwrap();
            kept.push_str(&line);
            kept.push('\n');
        });
        Peer {
            child,
            lines,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The next stdout line starting with `prefix` (other lines are unexpected and fail).
    async fn expect(&mut self, prefix: &str, limit: Duration) -> String {
        let line = match timeout(limit, self.lines.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => {
                // Closed stdout: the process is ending; give stderr a moment to be read.
                let status = timeout(Duration::from_secs(5), self.child.wait()).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                panic!(
                    "the Fedify peer ended ({status:?}) before `{prefix}`; its stderr:\n{}",
                    self.stderr()
                );
            }
            Err(_) => panic!(
                "no `{prefix}` from the Fedify peer within {limit:?}; its stderr:\n{}",
                self.stderr()
            ),
        };
        match line.strip_prefix(prefix) {
            Some(rest) => rest.trim().to_owned(),
            None => panic!(
                "expected `{prefix}` from the Fedify peer, got `{line}`; its stderr:\n{}",
                self.stderr()
            ),
        }
    }
}

#[tokio::test]
async fn fedify_follows_fetches_and_verifies_lien() {
    let started = Instant::now();
    let dir = interop_dir();
    ensure_node_dependencies(&dir).await;
    let npm_ready = started.elapsed();

    let app = dev_instance().await;
    let alice = app.user("alice").await;
    let first = alice
        .share("https://example.com/interop", "Interop, first", "fediverse")
        .await;
    let first_url = format!("{}/s/{first}", app.address);
    let alice_id = format!("{}/users/alice", app.address);

    let mut peer = Peer::spawn(&dir, &app, &first_url);
    let peer_origin = peer.expect("READY", Duration::from_secs(90)).await;
    assert!(
        peer_origin.starts_with("http://localhost:"),
        "{peer_origin}"
    );
    peer.expect("FOLLOWED", Duration::from_secs(60)).await;

    // Fedify's inbox does check signatures: a Create in alice's name, signed with a key that is
    // not hers, is refused with 401 and never reaches a listener.
    let forged_id = format!("{}/activities/forged", app.address);
    let forged = serde_json::json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": forged_id,
        "type": "Create",
        "actor": alice_id,
        "object": {
            "id": format!("{}/s/999999", app.address),
            "type": "Page",
            "name": "Forged",
            "attributedTo": alice_id,
        },
    })
    .to_string();
    let inbox: url::Url = format!("{peer_origin}/inbox").parse().unwrap();
    let other_key = activitypub_federation::http_signatures::generate_actor_keypair().unwrap();
    let mut request = reqwest::Client::new()
        .post(inbox.clone())
        .body(forged.clone());
    for (name, value) in signed_post_headers(
        &inbox,
        forged.as_bytes(),
        &format!("{alice_id}#main-key"),
        &other_key.private_key,
    ) {
        request = request.header(name, value);
    }
    let refused = request.send().await.unwrap();
    assert_eq!(
        refused.status(),
        reqwest::StatusCode::UNAUTHORIZED,
        "a forged signature; peer stderr:\n{}",
        peer.stderr()
    );

    // lien stored the follow, by Fedify's actor, of alice.
    let follows: Vec<(String, String, bool)> = sqlx::query_as(
        "select follower.ap_id, follow.ap_id, follow.accepted
           from follow join person follower on follower.id = follow.follower_id
                       join person followee on followee.id = follow.followee_id
          where followee.ap_id = $1",
    )
    .bind(&alice_id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(follows.len(), 1, "{follows:?}");
    assert_eq!(follows[0].0, format!("{peer_origin}/users/fedi"));
    assert!(follows[0].2, "the follow is accepted");

    // The Accept goes out; then a new story, whose Create goes to the new follower. (lien counts
    // a 4xx answer as delivered, so the peer says what its inbox took.)
    deliver_all(&app).await;
    peer.expect("GOT Accept", Duration::from_secs(20)).await;
    let next = alice
        .share(
            "https://example.com/interop-next",
            "Interop, next",
            "fediverse",
        )
        .await;
    deliver_all(&app).await;
    peer.expect("GOT Create", Duration::from_secs(20)).await;

    let result = peer.expect("RESULT", Duration::from_secs(60)).await;
    let status = timeout(Duration::from_secs(30), peer.child.wait())
        .await
        .expect("the Fedify peer exits after its result")
        .unwrap();
    assert!(status.success(), "{status}; stderr:\n{}", peer.stderr());
    let result: Value = serde_json::from_str(&result).expect("RESULT is JSON");
    let context = format!("result: {result:#}\nstderr:\n{}", peer.stderr());

    // Fedify's lookups: WebFinger to a Person with an RSA key it owns, and a Page with its link.
    let person = &result["lookup"]["person"];
    assert_eq!(person["id"], alice_id.as_str(), "{context}");
    assert_eq!(person["preferredUsername"], "alice", "{context}");
    assert_eq!(person["publicKeyOwner"], alice_id.as_str(), "{context}");
    assert_eq!(
        person["publicKeyAlgorithm"], "RSASSA-PKCS1-v1_5",
        "{context}"
    );
    let story = &result["lookup"]["story"];
    assert_eq!(story["id"], first_url.as_str(), "{context}");
    assert_eq!(story["name"], "Interop, first", "{context}");
    assert_eq!(story["attributedTo"], alice_id.as_str(), "{context}");
    assert_eq!(
        story["links"],
        serde_json::json!(["https://example.com/interop"]),
        "{context}"
    );

    // One knock: lien verified Fedify's RFC 9421 signature and took the Follow.
    let knocks = result["follow"]["knocks"].as_array().expect("knocks");
    assert_eq!(knocks.len(), 1, "{context}");
    assert_eq!(knocks[0]["spec"], "rfc9421", "{context}");
    // Fedify also attaches an Object Integrity Proof (FEP-8b32); lien takes the Follow regardless.
    assert_eq!(knocks[0]["proof"], true, "{context}");
    assert!(
        (200..300).contains(&knocks[0]["status"].as_u64().unwrap()),
        "{context}"
    );
    assert_eq!(result["follow"]["id"], follows[0].1.as_str(), "{context}");

    // lien's Accept and Create, each verified by Fedify as signed by alice's key.
    let key_id = format!("{alice_id}#main-key");
    let accept = &result["accept"];
    assert_eq!(accept["actor"], alice_id.as_str(), "{context}");
    assert_eq!(accept["object"], result["follow"]["id"], "{context}");
    assert_eq!(accept["signedBy"]["keyId"], key_id.as_str(), "{context}");
    assert_eq!(accept["signedBy"]["owner"], alice_id.as_str(), "{context}");
    // Signed RFC 9421, the scheme Fedify's server was seen signing with, and verified by Fedify.
    assert_eq!(accept["signedBy"]["spec"], "rfc9421", "{context}");
    let creates = result["creates"].as_array().expect("creates");
    assert_eq!(creates.len(), 1, "{context}");
    let create = &creates[0];
    assert_eq!(create["actor"], alice_id.as_str(), "{context}");
    assert_eq!(create["signedBy"]["keyId"], key_id.as_str(), "{context}");
    assert_eq!(create["signedBy"]["spec"], "rfc9421", "{context}");
    let page = &create["object"];
    assert_eq!(page["type"], "Page", "{context}");
    assert_eq!(
        page["id"],
        format!("{}/s/{next}", app.address).as_str(),
        "{context}"
    );
    assert_eq!(page["name"], "Interop, next", "{context}");
    assert_eq!(page["attributedTo"], alice_id.as_str(), "{context}");
    assert_eq!(
        page["attachments"],
        serde_json::json!([{"type": "Link", "href": "https://example.com/interop-next"}]),
        "{context}"
    );
    // Only the forged Create was unverified.
    let unverified = result["unverified"].as_array().expect("unverified");
    assert_eq!(unverified.len(), 1, "{context}");
    assert_eq!(unverified[0]["id"], forged_id.as_str(), "{context}");

    eprintln!("{context}");

    eprintln!(
        "fedify interop: npm dependencies ready in {npm_ready:?}, whole test {:?}",
        started.elapsed()
    );
}

/// An RFC 9421 POST whose signature does not verify gets 401 (the status after which RFC 9421
/// signers retry with draft-cavage), also when the sender adds a legacy `Digest` beside
/// `Content-Digest`, and the actor fetched for its key is not stored.
#[tokio::test]
async fn a_bad_rfc9421_signature_gets_401_even_with_a_legacy_digest() {
    use base64::{engine::general_purpose::STANDARD as Base64, Engine};
    use sha2::{Digest, Sha256};

    let app = dev_instance().await;
    app.user("alice").await;
    let other = dev_instance().await;
    other.user("bob").await;
    let bob = format!("{}/users/bob", other.address);
    let inbox = format!("{}/users/alice/inbox", app.address);
    let body = serde_json::json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{}/follows/1", other.address),
        "type": "Follow",
        "actor": bob,
        "object": format!("{}/users/alice", app.address),
    })
    .to_string();
    let digest = Base64.encode(Sha256::digest(body.as_bytes()));
    for legacy_digest in [false, true] {
        let mut request = reqwest::Client::new()
            .post(&inbox)
            .header("content-type", "application/activity+json")
            .header("content-digest", format!("sha-256=:{digest}:"))
            .header(
                "signature-input",
                format!(
                    r#"sig1=("@method" "@target-uri" "content-digest");alg="rsa-v1_5-sha256";keyid="{bob}#main-key";created={}"#,
                    chrono::Utc::now().timestamp()
                ),
            )
            .header("signature", format!("sig1=:{}:", Base64.encode([7u8; 512])))
            .body(body.clone());
        if legacy_digest {
            request = request.header("digest", format!("SHA-256={digest}"));
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            reqwest::StatusCode::UNAUTHORIZED,
            "legacy Digest: {legacy_digest}"
        );
    }
    let fetched: i64 = sqlx::query_scalar("select count(*) from person where ap_id = $1")
        .bind(&bob)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        fetched, 0,
        "no actor is stored for a signature that does not verify"
    );
    assert_eq!(crate::helpers::count(&app.pool, "follow").await, 0);
}

/// Fedify finds a tag group by WebFinger, follows it, and takes the group's Accept and its boost of
/// a new story only after verifying them as signed with the group's own key.
#[tokio::test]
async fn fedify_follows_a_tag_group_and_verifies_its_signatures() {
    let dir = interop_dir();
    ensure_node_dependencies(&dir).await;
    let app = dev_instance().await;
    let alice = app.user("alice").await;
    alice
        .share("https://example.com/groups", "Groups, first", "fediverse")
        .await;
    let group = format!("{}/t/fediverse", app.address);

    let mut peer = Peer::spawn_script(
        &dir,
        "group-peer.mjs",
        &[app.address.as_str(), "0", "fediverse"],
    );
    let peer_origin = peer.expect("READY", Duration::from_secs(90)).await;
    peer.expect("FOLLOWED", Duration::from_secs(60)).await;
    let followers: Vec<(String, bool)> = sqlx::query_as(
        "select p.ap_id, f.groups_aware from tag_follower f join person p on p.id = f.follower_id
         where f.tag = 'fediverse'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        followers,
        vec![(format!("{peer_origin}/users/fedi"), false)]
    );
    deliver_all(&app).await;
    peer.expect("GOT Accept", Duration::from_secs(20)).await;
    let next = alice
        .share(
            "https://example.com/groups-next",
            "Groups, next",
            "fediverse",
        )
        .await;
    deliver_all(&app).await;
    peer.expect("GOT Announce", Duration::from_secs(20)).await;
    let result = peer.expect("RESULT", Duration::from_secs(60)).await;
    let status = timeout(Duration::from_secs(30), peer.child.wait())
        .await
        .expect("the Fedify peer exits after its result")
        .unwrap();
    assert!(status.success(), "{status}; stderr:\n{}", peer.stderr());
    let result: Value = serde_json::from_str(&result).expect("RESULT is JSON");
    let context = format!("result: {result:#}\nstderr:\n{}", peer.stderr());

    assert_eq!(result["group"]["id"], group.as_str(), "{context}");
    assert_eq!(
        result["group"]["preferredUsername"], "fediverse",
        "{context}"
    );
    assert_eq!(
        result["group"]["publicKeyOwner"],
        group.as_str(),
        "{context}"
    );
    let key_id = format!("{group}#main-key");
    assert_eq!(
        result["accept"]["object"], result["follow"]["id"],
        "{context}"
    );
    assert_eq!(
        result["accept"]["signedBy"]["keyId"],
        key_id.as_str(),
        "{context}"
    );
    let announces = result["announces"].as_array().expect("announces");
    assert_eq!(announces.len(), 1, "{context}");
    assert_eq!(
        announces[0]["object"],
        format!("{}/s/{next}", app.address).as_str(),
        "{context}"
    );
    assert_eq!(
        announces[0]["signedBy"]["keyId"],
        key_id.as_str(),
        "{context}"
    );
    assert_eq!(result["unverified"], serde_json::json!([]), "{context}");
}
