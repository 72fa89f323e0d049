//! Smaller findings of the hardening pass (issue 17, point 10): metrics name the route that
//! answered, a domain block covers its subdomains, and guessing a name's password cannot lock
//! its owner out.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::{
    helpers::{story_ids, TestApp},
    moderation::{admin, moderate},
};

/// The `http_requests_total` series of one method and route, summed over statuses.
async fn requests_counted(app: &TestApp, method: &str, route: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", app.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let metrics = openmetrics_parser::prometheus::parse_prometheus(&text).unwrap();
    let Some(family) = metrics.families.get("lien_http_requests_total") else {
        return 0.0;
    };
    family
        .iter_samples()
        .filter_map(|sample| {
            let set = sample.get_labelset().ok()?;
            (set.get_label_value("method") == Some(method)
                && set.get_label_value("route") == Some(route))
            .then_some(())?;
            match &sample.value {
                openmetrics_parser::PrometheusValue::Counter(c) => Some(c.value.as_f64()),
                _ => None,
            }
        })
        .sum()
}

#[tokio::test]
async fn comment_and_vote_posts_are_counted_under_their_own_route() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let id = alice.share("https://example.com/", "Home", "x").await;
    let comments_before = requests_counted(&app, "POST", "/s/{id}/comments").await;
    let votes_before = requests_counted(&app, "POST", "/s/{id}/vote").await;
    alice.comment(id, None, "First").await;
    alice.comment(id, None, "Second").await;
    assert_eq!(
        alice.vote(&format!("/s/{id}"), "0").await.status(),
        StatusCode::SEE_OTHER
    );
    // The registry is shared by every test of this process: at least ours were counted there.
    let comments = requests_counted(&app, "POST", "/s/{id}/comments").await;
    let votes = requests_counted(&app, "POST", "/s/{id}/vote").await;
    assert!(
        comments >= comments_before + 2.0,
        "{comments_before} → {comments}"
    );
    assert!(votes > votes_before, "{votes_before} → {votes}");
    // No POST answers at a story page's pattern.
    assert_eq!(requests_counted(&app, "POST", "/s/{id}/{slug}").await, 0.0);
}

/// A remote person at `host` who posted a story (as the inbox would have stored them).
async fn remote_story(app: &TestApp, host: &str) -> i64 {
    let person: i64 = sqlx::query_scalar(
        "insert into person (name, host, local, ap_id) values ('someone', $1, false, $2)
         returning id",
    )
    .bind(host)
    .bind(format!("https://{host}/users/someone"))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    sqlx::query_scalar(
        "insert into story (ap_id, local, author_id, title, body, body_html)
         values ($1, false, $2, $3, '', '') returning id",
    )
    .bind(format!("https://{host}/posts/1"))
    .bind(person)
    .bind(format!("From {host}"))
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_domain_block_covers_its_subdomains() {
    let app = TestApp::spawn().await;
    let root = admin(&app).await;
    let sub = remote_story(&app, "social.blocked.example").await;
    let deeper = remote_story(&app, "a.b.blocked.example").await;
    let lookalike = remote_story(&app, "notblocked.example").await;
    let itself = remote_story(&app, "blocked.example").await;
    moderate(&root, "block", "instance", "Blocked.Example", "spam").await;
    crate::helpers::caches_catch_up().await;

    let visitor = app.browser();
    let shown = story_ids(&visitor, "/new").await;
    assert_eq!(
        shown,
        vec![lookalike],
        "only the lookalike domain stays: {sub} {deeper} {itself}"
    );

    // Nothing is fetched from a subdomain of a blocked server either.
    let q: String =
        url::form_urlencoded::byte_serialize(b"@someone@social.blocked.example").collect();
    let response = visitor.get(&format!("/search?q={q}")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // Nor delivered to one.
    let inboxes: Vec<url::Url> = [
        "https://social.blocked.example/inbox",
        "https://notblocked.example/inbox",
    ]
    .iter()
    .map(|u| u.parse().unwrap())
    .collect();
    let activity = serde_json::json!({
        "id": format!("{}/activities/{}", app.address, uuid::Uuid::new_v4()),
        "type": "Like",
        "actor": format!("{}/actor", app.address),
        "object": "https://notblocked.example/posts/1",
    });
    let mut tx = app.pool.begin().await.unwrap();
    let queued = lien::federation::delivery::enqueue(
        &mut tx,
        &activity,
        lien::federation::delivery::Signer::Instance,
        &inboxes,
        &app.address.replace("http://", ""),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(queued, 1, "only notblocked.example is queued");
}

#[tokio::test]
async fn guessing_a_name_from_many_addresses_slows_it_but_never_locks_its_owner_out() {
    let app = TestApp::spawn_with(&["--trust-proxy", "1"]).await;
    app.user("alice").await;
    let login = |address: &'static str, password: &'static str| {
        let browser = app.browser();
        async move {
            let csrf = browser.csrf().await;
            let started = Instant::now();
            let status = browser
                .client
                .post(format!("{}/login", browser.address))
                .header("X-Forwarded-For", address)
                .form(&[("name", "alice"), ("password", password), ("csrf", &csrf)])
                .send()
                .await
                .unwrap()
                .status();
            (status, started.elapsed())
        }
    };
    // One address guesses until it is locked out, for that name.
    let mut statuses = Vec::new();
    for _ in 0..11 {
        statuses.push(login("203.0.113.7", "guess").await.0);
    }
    assert_eq!(statuses[0], StatusCode::UNAUTHORIZED);
    assert_eq!(statuses[10], StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        login("203.0.113.7", "correct horse").await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "the guesser's address stays locked, right password or not"
    );
    // Alice, from her own address, still gets in: slowed, not refused.
    let (status, took) = login("198.51.100.20", "correct horse").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        took >= Duration::from_secs(2),
        "a name under attack is slowed ({took:?})"
    );
    // A wrong guess from yet another address is slowed too.
    let (status, took) = login("192.0.2.1", "guess").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(took >= Duration::from_secs(1));
}

/// Opens a connection and starts a form POST whose body never finishes: its headers and one byte.
async fn slow_post(app: &TestApp) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let port = app.address.rsplit(':').next().unwrap();
    let mut stream = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    stream
        .write_all(
            format!(
                "POST /login HTTP/1.1\r\nHost: localhost:{port}\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nn"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    stream
}

/// What the server answers on `stream` before it closes it, waiting at most `within`.
async fn answer(stream: &mut tokio::net::TcpStream, within: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut answer))
        .await
        .ok()?
        .ok()?;
    Some(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn slow_bodies_are_cut_and_one_address_holds_few_connections() {
    let app =
        TestApp::spawn_with(&["--body-timeout", "2", "--max-connections-per-client", "3"]).await;
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..4 {
        slow.push(slow_post(&app).await);
    }
    // Each answer, and when it came.
    let answers = futures::future::join_all(slow.iter_mut().map(|stream| async move {
        let answer = answer(stream, Duration::from_secs(6)).await;
        (answer.unwrap_or_default(), started.elapsed())
    }))
    .await;
    let status = |(answer, _): &&(String, Duration)| answer.get(9..12).unwrap_or("").to_owned();
    // The connection over the cap is answered at once, its body never read, and closed (actix
    // lingers up to a second for the unread body before it closes).
    let refused: Vec<_> = answers.iter().filter(|a| status(a) == "429").collect();
    assert_eq!(refused.len(), 1, "{answers:?}");
    assert!(refused[0].1 < Duration::from_secs(2), "{answers:?}");
    // The slow bodies are cut at their deadline: 408, and the connection closed.
    let cut: Vec<_> = answers.iter().filter(|a| status(a) == "408").collect();
    assert_eq!(cut.len(), 3, "{answers:?}");
    for (_, at) in cut {
        assert!(
            *at >= Duration::from_secs(2) && *at < Duration::from_secs(5),
            "{at:?}"
        );
    }
    // Their places are given back: the address is served again.
    let visitor = app.browser();
    assert_eq!(visitor.get("/healthz").await.status(), StatusCode::OK);
    // A body that arrives in time is read as ever.
    let response = visitor
        .post("/login", &[("name", "nobody"), ("password", "wrong")])
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn with_the_database_gone_pages_answer_503_at_once() {
    let app = TestApp::spawn().await;
    let visitor = app.browser();
    assert_eq!(visitor.get("/").await.status(), StatusCode::OK);
    // Every connection of the app's pool goes, as when the server stops.
    app.pool.close().await;
    let first = visitor.get("/search?q=first").await;
    assert_eq!(first.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(first.headers()["retry-after"], "5");
    // The requests after it do not wait for the pool at all.
    for path in ["/search?q=next", "/new?page=3", "/tags", "/@nobody"] {
        let started = Instant::now();
        let response = visitor.get(path).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(started.elapsed() < Duration::from_millis(500), "{path}");
        assert!(response
            .text()
            .await
            .unwrap()
            .contains("database is unavailable"));
    }
    // What needs no database still answers.
    assert_eq!(visitor.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(
        visitor.get("/static/lien.css").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        visitor.get("/readyz").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
}
