//! Two real lien instances in one process, each on its own database, talking ActivityPub over
//! HTTP on `localhost` ports (LIEN_DEV=1 allows http and loopback peers).

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{location, select_attr, select_text, story_ids, Browser, TestApp};

/// Runs an instance's delivery queue until it is empty.
pub async fn deliver_all(app: &TestApp) {
    let data = app.federation.to_request_data();
    for _ in 0..10 {
        let outcomes = lien::federation::delivery::deliver_due(&data, 100)
            .await
            .unwrap();
        assert_eq!(outcomes.failed, 0, "deliveries from {} failed", app.address);
        if outcomes.delivered == 0 {
            return;
        }
    }
}

pub async fn dev_instance() -> TestApp {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("lien=debug,activitypub_federation=debug")
        .with_test_writer()
        .try_init();
    TestApp::spawn_with(&["--dev", "1"]).await
}

/// Pastes a URL or handle into search and follows the redirect to the local page.
pub async fn resolve(browser: &Browser, query: &str) -> String {
    let q: String = url::form_urlencoded::byte_serialize(query.as_bytes()).collect();
    let response = browser.get(&format!("/search?q={q}")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{query} resolves");
    location(&response)
}

pub fn host(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

/// (id, author, depth, parent) of each comment on a page.
fn thread(page: &scraper::Html) -> Vec<(String, String, String)> {
    let authors = select_text(page, "div.comment .byline a.author");
    let depths = select_attr(page, "div.comment", "data-depth");
    let scores = select_attr(page, "div.comment", "data-score");
    authors
        .into_iter()
        .zip(depths)
        .zip(scores)
        .map(|((a, d), s)| (a, d, s))
        .collect()
}

#[tokio::test]
async fn two_instances_share_stories_comments_votes_and_follows() {
    let a = dev_instance().await;
    let b = dev_instance().await;
    let alice = a.user("alice").await;
    let bob = b.user("bob").await;
    let story = alice
        .share(
            "https://example.com/federated",
            "Federated & fine",
            "fediverse",
        )
        .await;

    // Bob pastes the story's address into search on his instance: it is fetched and opened.
    let page_b = resolve(&bob, &format!("{}/s/{story}", a.address)).await;
    let page = bob.page(&page_b).await;
    assert_eq!(
        select_text(&page, ".title a.link"),
        vec!["Federated & fine"]
    );
    assert_eq!(
        select_attr(&page, ".title a.link", "href"),
        vec!["https://example.com/federated"]
    );
    assert_eq!(
        select_text(&page, ".byline a.author"),
        vec![format!("alice@{}", host(&a))]
    );
    assert_eq!(select_text(&page, "a.tag"), vec!["fediverse"]);
    let story_b: i64 = select_attr(&page, "article.story", "data-id")[0]
        .parse()
        .unwrap();

    // Bob comments and upvotes there; both reach alice's instance.
    let comment_b = bob.comment(story_b, None, "Hello from *B*").await;
    assert_eq!(
        bob.vote(&format!("/s/{story_b}"), "1").await.status(),
        StatusCode::SEE_OTHER
    );
    deliver_all(&b).await;
    let page = alice.page(&format!("/s/{story}")).await;
    assert_eq!(
        select_attr(&page, "article.story", "data-score"),
        vec!["2"],
        "alice's own vote and bob's Like"
    );
    assert_eq!(
        thread(&page),
        vec![(format!("bob@{}", host(&b)), "0".into(), "0".into())]
    );
    assert!(page.html().contains("Hello from <em>B</em>"));

    // Alice answers bob on her instance; the answer threads under his comment on his.
    let bobs_comment_on_a: i64 = select_attr(&page, "div.comment", "data-id")[0]
        .parse()
        .unwrap();
    alice
        .comment(story, Some(bobs_comment_on_a), "Welcome, bob")
        .await;
    deliver_all(&a).await;
    let page = bob.page(&format!("/s/{story_b}")).await;
    assert_eq!(
        thread(&page),
        vec![
            // His own upvote on his own instance; a remote comment starts at 0, as a remote story.
            ("bob".to_owned(), "0".to_owned(), "1".to_owned()),
            (
                format!("alice@{}", host(&a)),
                "1".to_owned(),
                "0".to_owned()
            )
        ]
    );
    let ids = select_attr(&page, "div.comment", "data-parent");
    assert_eq!(
        ids[1],
        comment_b.to_string(),
        "alice's reply sits under bob's comment"
    );

    // Withdrawing the vote (Undo) takes it back.
    bob.vote(&format!("/s/{story_b}"), "0").await;
    deliver_all(&b).await;
    let page = alice.page(&format!("/s/{story}")).await;
    assert_eq!(select_attr(&page, "article.story", "data-score"), vec!["1"]);

    // Bob follows alice; her Accept arrives; her next story reaches his front page.
    let profile = resolve(&bob, &format!("@alice@{}", host(&a))).await;
    assert_eq!(profile, format!("/@alice@{}", host(&a)));
    let followed = bob.post(&format!("{profile}/follow"), &[]).await;
    assert_eq!(followed.status(), StatusCode::SEE_OTHER);
    deliver_all(&b).await;
    deliver_all(&a).await;
    let page = bob.page(&profile).await;
    assert_eq!(select_text(&page, ".follow-state"), vec!["following"]);
    let next = alice
        .share("https://example.com/next", "The next one", "fediverse")
        .await;
    deliver_all(&a).await;
    let front = bob.page("/new").await;
    assert_eq!(select_text(&front, ".title a.link")[0], "The next one");
    assert_eq!(
        select_text(&front, ".origin")[0],
        format!("from {}", host(&a)),
        "marked with its origin"
    );

    // Bob deletes his comment: it goes on alice's instance too (the reply keeps a placeholder).
    bob.post(&format!("/c/{comment_b}/delete"), &[]).await;
    deliver_all(&b).await;
    let page = alice.page(&format!("/s/{story}")).await;
    assert!(!page.html().contains("Hello from"));
    assert_eq!(
        select_text(&page, "div.comment.deleted > .head > .byline"),
        vec!["[deleted]"]
    );

    // Alice deletes her story: bob's copy goes too.
    alice.post(&format!("/s/{next}/delete"), &[]).await;
    deliver_all(&a).await;
    assert!(!story_ids(&bob, "/new").await.is_empty());
    let titles = select_text(&bob.page("/new").await, ".title a.link");
    assert!(!titles.contains(&"The next one".to_owned()), "{titles:?}");
}

#[tokio::test]
async fn objects_answer_as_activitypub_json_and_discovery_works() {
    let a = dev_instance().await;
    let alice = a.user("alice").await;
    let story = alice.share("https://example.com/x", "A Page", "meta").await;
    let comment = alice.comment(story, None, "A note").await;
    let client = reqwest::Client::new();
    let get = |path: String, accept: &'static str| {
        let client = client.clone();
        let url = format!("{}{path}", a.address);
        async move {
            client
                .get(url)
                .header("Accept", accept)
                .send()
                .await
                .unwrap()
        }
    };
    let ap = "application/activity+json";
    let ld = r#"application/ld+json; profile="https://www.w3.org/ns/activitystreams""#;

    let response = get(format!("/s/{story}"), ld).await;
    assert_eq!(response.headers()["content-type"], ap);
    let page: Value = response.json().await.unwrap();
    assert_eq!(page["type"], "Page");
    assert_eq!(page["id"], format!("{}/s/{story}", a.address));
    // The shape that reads well everywhere (README, "How a lien story looks elsewhere"): the
    // shared link as `url` and first attachment, the title linked to it opening `content`, no
    // `summary` (a content warning nearly everywhere), and quotes open to anyone.
    assert_eq!(page["url"], "https://example.com/x");
    assert_eq!(page["name"], "A Page");
    assert_eq!(
        page["attachment"][0],
        serde_json::json!({"type": "Link", "href": "https://example.com/x", "mediaType": "text/html"})
    );
    assert_eq!(
        page["content"],
        r#"<p><a href="https://example.com/x">A Page</a></p>"#
    );
    assert_eq!(page["mediaType"], "text/html");
    assert!(page.get("summary").is_none() && page.get("source").is_none());
    assert_eq!(
        page["interactionPolicy"]["canQuote"]["automaticApproval"][0],
        "https://www.w3.org/ns/activitystreams#Public"
    );
    assert_eq!(page["attributedTo"], format!("{}/users/alice", a.address));
    assert_eq!(page["tag"][0]["type"], "Hashtag");
    assert_eq!(
        page["to"][0],
        "https://www.w3.org/ns/activitystreams#Public"
    );
    assert_eq!(
        page["cc"][0],
        format!("{}/users/alice/followers", a.address)
    );

    let note: Value = get(format!("/c/{comment}"), ap).await.json().await.unwrap();
    assert_eq!(note["type"], "Note");
    assert_eq!(note["inReplyTo"], page["id"]);
    assert_eq!(note["tag"][0]["type"], "Mention");
    let replies: Value = get(format!("/s/{story}/replies"), ap)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(replies["type"], "OrderedCollection");
    assert_eq!(replies["orderedItems"], serde_json::json!([note["id"]]));

    // A browser gets the page for the same address.
    let html = get(format!("/s/{story}"), "text/html").await;
    assert!(html.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));

    let person: Value = get("/users/alice".into(), ap).await.json().await.unwrap();
    assert_eq!(person["type"], "Person");
    assert_eq!(person["preferredUsername"], "alice");
    assert_eq!(person["inbox"], format!("{}/users/alice/inbox", a.address));
    assert_eq!(
        person["endpoints"]["sharedInbox"],
        format!("{}/inbox", a.address)
    );
    assert!(person["publicKey"]["publicKeyPem"]
        .as_str()
        .unwrap()
        .contains("PUBLIC KEY"));
    let outbox: Value = get("/users/alice/outbox".into(), ap)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(outbox["orderedItems"][0]["object"]["id"], page["id"]);
    let instance: Value = get("/actor".into(), ap).await.json().await.unwrap();
    assert_eq!(instance["type"], "Application");

    let finger: Value = get(
        format!("/.well-known/webfinger?resource=acct:alice@{}", host(&a)),
        "*/*",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(finger["links"][0]["href"], person["id"]);
    assert_eq!(finger["links"][0]["type"], ap);
    assert_eq!(
        get(
            "/.well-known/webfinger?resource=acct:nobody@x".into(),
            "*/*"
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
    let links: Value = get("/.well-known/nodeinfo".into(), "*/*")
        .await
        .json()
        .await
        .unwrap();
    assert!(links["links"][0]["href"]
        .as_str()
        .unwrap()
        .ends_with("/nodeinfo/2.1"));
    let info: Value = get("/nodeinfo/2.1".into(), "*/*")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["software"]["name"], "lien");
    assert_eq!(info["usage"]["localPosts"], 1);
    // NodeInfo 2.0 too, listed beside 2.1 (Takahe and others read only 2.0).
    assert_eq!(
        links["links"][1]["rel"],
        "http://nodeinfo.diaspora.software/ns/schema/2.0"
    );
    let href = links["links"][1]["href"].as_str().unwrap();
    assert!(href.ends_with("/nodeinfo/2.0"), "{href}");
    let info: Value = get("/nodeinfo/2.0".into(), "*/*")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["version"], "2.0");
    assert_eq!(info["software"]["name"], "lien");
    assert!(info["software"].get("homepage").is_none(), "not in 2.0");
    assert_eq!(info["usage"]["localPosts"], 1);
    let meta = get("/.well-known/host-meta".into(), "*/*")
        .await
        .text()
        .await
        .unwrap();
    assert!(meta.contains("/.well-known/webfinger?resource={uri}"));

    // Deleted objects answer 410 with a Tombstone.
    alice.post(&format!("/c/{comment}/delete"), &[]).await;
    let gone = get(format!("/c/{comment}"), ap).await;
    assert_eq!(gone.status(), StatusCode::GONE);
    let tombstone: Value = gone.json().await.unwrap();
    assert_eq!(tombstone["type"], "Tombstone");
}

#[tokio::test]
async fn the_federation_client_never_connects_to_private_addresses_outside_dev_mode() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = tokio::spawn(async move {
        tokio::time::timeout(std::time::Duration::from_secs(3), listener.accept())
            .await
            .is_ok()
    });
    let client = lien::federation::http_client("lien.example", false).unwrap();
    let answer = client
        .get(format!("http://localhost:{port}/users/x"))
        .send()
        .await;
    assert!(answer.is_err(), "a loopback peer was reached");
    assert!(
        !accepted.await.unwrap(),
        "a connection reached the loopback listener"
    );
    // In dev mode (tests, local demos) the same request goes through.
    let dev = lien::federation::http_client("lien.example", true).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        if let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await;
        }
    });
    let answer = dev
        .get(format!("http://localhost:{port}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
}
