//! Operations, on the real `lien` binary: /metrics in the Prometheus text format (checked with an
//! independent parser), JSON logs with nothing else on stdout or stderr, SIGTERM letting a slow
//! request finish, page reads going to DATABASE_READ_URL, and two servers and a worker sharing one
//! queue. The binary runs on a fresh database of the test cluster (DATABASE_URL), except where the
//! embedded cluster is the point.

use std::{
    collections::HashMap,
    net::TcpListener,
    process::Stdio,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use actix_web::{dev::ServerHandle, web, App, HttpResponse, HttpServer};
use lien::federation::delivery::{self, Signer};
use nix::{
    sys::signal::{kill, Signal},
    unistd::Pid,
};
use openmetrics_parser::{MetricsExposition, PrometheusType, PrometheusValue};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::{postgres::PgConnectOptions, ConnectOptions, PgPool};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    process::Command,
    task::JoinHandle,
};
use url::Url;

use crate::{
    binary::{self, eventually, exit_status, free_port, sigterm, terminate, wait_until},
    helpers::{fresh_database, story_ids, Browser, TestApp},
};

/// A database of the test cluster as a URL, the way an operator sets DATABASE_URL.
fn database_url(options: &PgConnectOptions) -> String {
    options.to_url_lossy().to_string()
}

/// `lien` listening on `port` and known as `http://localhost:{public}`.
fn lien(port: u16, public: u16) -> Command {
    let mut command = binary::command();
    command
        .env("LIEN_LISTEN", format!("127.0.0.1:{port}"))
        .env("LIEN_PUBLIC_URL", format!("http://localhost:{public}"))
        .env("LIEN_DATA_DIR", "/nonexistent");
    command
}

// Metrics.

type Exposition = MetricsExposition<PrometheusType, PrometheusValue>;

/// GET /metrics, parsed by openmetrics-parser (not by the crate that wrote it).
async fn scrape(port: u16) -> Exposition {
    let response = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    openmetrics_parser::prometheus::parse_prometheus(&text)
        .unwrap_or_else(|error| panic!("not Prometheus text ({error:?}):\n{text}"))
}

/// The value of one series, if the family has it: counters and gauges as they are, histograms as
/// their count.
fn sample(metrics: &Exposition, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let family = metrics.families.get(family)?;
    family.iter_samples().find_map(|sample| {
        let set = sample.get_labelset().ok()?;
        if !labels
            .iter()
            .all(|(name, value)| set.get_label_value(name) == Some(*value))
        {
            return None;
        }
        Some(match &sample.value {
            PrometheusValue::Counter(counter) => counter.value.as_f64(),
            PrometheusValue::Gauge(gauge) => gauge.as_f64(),
            PrometheusValue::Unknown(value) => value.as_f64(),
            PrometheusValue::Histogram(histogram) => histogram.count.unwrap_or(0) as f64,
            PrometheusValue::Summary(summary) => summary.count.unwrap_or(0) as f64,
        })
    })
}

/// Every value of one label across a family's series.
fn label_values(metrics: &Exposition, family: &str, label: &str) -> Vec<String> {
    let Some(family) = metrics.families.get(family) else {
        return Vec::new();
    };
    family
        .iter_samples()
        .filter_map(|sample| {
            let set = sample.get_labelset().ok()?;
            set.get_label_value(label).map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn metrics_are_prometheus_text_and_count_requests_by_route_pattern() {
    let (options, pool) = fresh_database().await;
    let port = free_port();
    let mut server = lien(port, port)
        .env("DATABASE_URL", database_url(&options))
        .env("LIEN_WORKERS", "0")
        .arg("serve")
        .spawn()
        .unwrap();
    wait_until(port, "/readyz", &mut server).await;
    let origin = format!("http://localhost:{port}");
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("http://127.0.0.1:{port}{path}")).send();

    let before = scrape(port).await;
    let tags = [("method", "GET"), ("route", "/tags"), ("status", "200")];
    let stories_404 = [("method", "GET"), ("route", "/s/{id}"), ("status", "404")];
    let requests = 7;
    for _ in 0..requests {
        assert_eq!(get("/tags").await.unwrap().status(), StatusCode::OK);
    }
    for id in [101, 102, 103] {
        let path = format!("/s/{id}");
        assert_eq!(get(&path).await.unwrap().status(), StatusCode::NOT_FOUND);
    }
    assert_eq!(
        get("/no/such/page").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    // An unsigned activity is refused, and counted by its claimed type.
    let unsigned = client
        .post(format!("http://127.0.0.1:{port}/inbox"))
        .header("content-type", "application/activity+json")
        .body(
            r#"{"type":"Create","id":"https://peer.example/a/1","actor":"https://peer.example/u"}"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);

    // Two deliveries queued (nobody sends them: LIEN_WORKERS=0), one due for a minute already.
    let activity = json!({
        "id": format!("{origin}/activities/{}", uuid::Uuid::new_v4()),
        "type": "Like",
        "actor": format!("{origin}/actor"),
        "object": "https://peer.example/notes/1",
    });
    let inboxes: Vec<Url> = ["https://a.example/inbox", "https://b.example/inbox"]
        .iter()
        .map(|u| u.parse().unwrap())
        .collect();
    let mut tx = pool.begin().await.unwrap();
    let queued = delivery::enqueue(
        &mut tx,
        &activity,
        Signer::Instance,
        &inboxes,
        &format!("localhost:{port}"),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(queued, 2);
    sqlx::query("update delivery set next_attempt_at = now() - interval '60 seconds'")
        .execute(&pool)
        .await
        .unwrap();

    let after = scrape(port).await;
    let count = |metrics: &Exposition, family: &str, labels: &[(&str, &str)]| {
        sample(metrics, family, labels).unwrap_or(0.0)
    };
    assert_eq!(
        count(&after, "lien_http_requests_total", &tags)
            - count(&before, "lien_http_requests_total", &tags),
        requests as f64,
        "the /tags counter rose by the requests made"
    );
    assert_eq!(
        count(&after, "lien_http_request_duration_seconds", &tags)
            - count(&before, "lien_http_request_duration_seconds", &tags),
        requests as f64,
        "so did the latency histogram's count"
    );
    assert_eq!(count(&after, "lien_http_requests_total", &stories_404), 3.0);
    assert_eq!(
        count(
            &after,
            "lien_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &after,
            "lien_inbox_activities_total",
            &[
                ("type", "Create"),
                ("outcome", "refused"),
                ("status", "401")
            ]
        ),
        Some(1.0)
    );
    let routes = label_values(&after, "lien_http_requests_total", "route");
    assert!(
        routes.iter().all(|route| !route.contains("101")),
        "patterns, never paths: {routes:?}"
    );
    assert_eq!(sample(&after, "lien_delivery_queue_depth", &[]), Some(2.0));
    assert_eq!(sample(&after, "lien_delivery_queue_due", &[]), Some(2.0));
    let oldest = sample(&after, "lien_delivery_queue_oldest_due_seconds", &[]).unwrap();
    assert!((60.0..600.0).contains(&oldest), "oldest due {oldest}");
    assert_eq!(sample(&after, "lien_database_up", &[]), Some(1.0));
    assert_eq!(
        sample(&after, "lien_deliveries_total", &[("outcome", "delivered")]),
        Some(0.0),
        "outcomes are there before the first delivery"
    );
    assert!(
        sample(
            &after,
            "lien_db_pool_max_connections",
            &[("pool", "primary")]
        )
        .unwrap()
            >= 1.0
    );
    assert!(
        sample(
            &after,
            "lien_db_pool_connections",
            &[("pool", "primary"), ("state", "idle")]
        )
        .is_some()
            && sample(
                &after,
                "lien_db_pool_connections",
                &[("pool", "primary"), ("state", "in_use")]
            )
            .is_some()
    );
    assert_eq!(
        sample(
            &after,
            "lien_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    assert!(sample(&after, "process_resident_memory_bytes", &[]).unwrap() > 0.0);

    terminate(server).await;
}

// Logs.

/// Reads a child's pipe to the end on a task of its own, so the child never blocks on a full pipe.
fn collect(pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static) -> JoinHandle<String> {
    tokio::spawn(async move {
        let mut pipe = pipe;
        let mut text = String::new();
        pipe.read_to_string(&mut text).await.unwrap();
        text
    })
}

/// Every line of `text` as a JSON object with a timestamp, a level and a target.
fn json_lines(text: &str, stream: &str) -> Vec<Value> {
    text.lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{stream}: not JSON ({e}): {line:?}"));
            for field in ["timestamp", "level", "target"] {
                assert!(value[field].is_string(), "{stream}: no {field}: {line}");
            }
            value
        })
        .collect()
}

#[tokio::test]
async fn json_logs_are_one_object_a_line_on_stderr_and_nothing_else_is_written() {
    // The embedded cluster, so that its start and stop are part of what is checked. Under /tmp:
    // when the tests run as root, PostgreSQL runs as `postgres` and must reach it.
    let dir = tempfile::Builder::new()
        .prefix("lien-logs-")
        .tempdir_in("/tmp")
        .unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let json_lien = || {
        let mut command = lien(port, port);
        command
            .env("LIEN_DATA_DIR", &data)
            .env("LIEN_LOG_FORMAT", "json")
            .env("LIEN_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    };
    let mut server = json_lien().arg("serve").spawn().unwrap();
    let stdout = collect(server.stdout.take().unwrap());
    let stderr = collect(server.stderr.take().unwrap());
    wait_until(port, "/readyz", &mut server).await;

    let client = reqwest::Client::new();
    let front = client
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(front.status(), StatusCode::OK);
    let front_id = front.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(front_id.len(), 32, "a fresh id: {front_id}");
    let missing = client
        .get(format!("http://127.0.0.1:{port}/s/4242"))
        .header("X-Request-Id", "proxy-id-17")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        missing.headers()["x-request-id"],
        "proxy-id-17",
        "the proxy's id is kept"
    );

    // A second command, in JSON mode too: its result is a log line, not a printed one.
    let password = dir.path().join("password");
    std::fs::write(&password, "correct horse\n").unwrap();
    let created = json_lien()
        .args(["user", "create", "bob", "--password-file"])
        .arg(&password)
        .output()
        .await
        .unwrap();
    assert!(created.status.success());
    assert!(created.stdout.is_empty(), "nothing on stdout");
    let lines = json_lines(&String::from_utf8(created.stderr).unwrap(), "user create");
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "account created" && l["name"] == "bob"),
        "{lines:?}"
    );

    // A configuration error, before logging is set up, is a JSON line too.
    let bad = json_lien()
        .env("LIEN_REGISTRATION", "sometimes")
        .arg("migrate")
        .output()
        .await
        .unwrap();
    assert!(!bad.status.success());
    assert!(bad.stdout.is_empty());
    let lines = json_lines(&String::from_utf8(bad.stderr).unwrap(), "bad configuration");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["level"], "ERROR");

    sigterm(&server);
    let status = exit_status(&mut server).await;
    assert!(status.success(), "exit status {status}");
    assert_eq!(stdout.await.unwrap(), "", "nothing on stdout");
    let lines = json_lines(&stderr.await.unwrap(), "serve");

    let answered: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "answered")
        .collect();
    let front_line = answered
        .iter()
        .find(|l| l["request_id"] == front_id.as_str())
        .unwrap_or_else(|| panic!("no line for the front page: {answered:?}"));
    assert_eq!(front_line["level"], "INFO");
    assert_eq!(front_line["method"], "GET");
    assert_eq!(front_line["route"], "/");
    assert_eq!(front_line["status"], 200);
    assert!(front_line["latency_ms"].as_f64().unwrap() > 0.0);
    let missing_line = answered
        .iter()
        .find(|l| l["request_id"] == "proxy-id-17")
        .unwrap();
    assert_eq!(missing_line["route"], "/s/{id}");
    assert_eq!(missing_line["path"], "/s/4242");
    assert_eq!(missing_line["status"], 404);
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "stopping gracefully" && l["signal"] == "SIGTERM"),
        "the signal is logged"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "stopped the embedded PostgreSQL"),
        "the cluster is stopped"
    );
}

// Shutdown.

#[tokio::test]
async fn sigterm_and_sigint_let_a_slow_upload_finish_then_exit_zero() {
    // Actix's own handlers would drop requests in flight on SIGINT; lien drains on both.
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        a_signal_lets_a_slow_upload_finish(signal).await;
    }
}

async fn a_signal_lets_a_slow_upload_finish(signal: Signal) {
    let (options, _pool) = fresh_database().await;
    let port = free_port();
    let mut server = lien(port, port)
        .env("DATABASE_URL", database_url(&options))
        .arg("serve")
        .spawn()
        .unwrap();
    wait_until(port, "/readyz", &mut server).await;

    // A client on a slow line: the login form's headers and half its body, then a pause. The
    // request is in flight, its handler waiting for the rest of the body.
    let body = "name=slow&password=correct+horse&csrf=0000";
    let (first, rest) = body.split_at(body.len() / 2);
    let mut slow = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    slow.write_all(
        format!(
            "POST /login HTTP/1.1\r\nHost: localhost:{port}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{first}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    kill(Pid::from_raw(server.id().unwrap() as i32), signal).unwrap();
    let stopped_at = Instant::now();
    // No new connections...
    eventually(10, "the listener to close", || async {
        TcpStream::connect(("127.0.0.1", port)).await.is_err()
    })
    .await;
    // ...but the request in flight still gets its answer.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        server.try_wait().unwrap().is_none(),
        "lien waits for the request in flight ({signal})"
    );
    slow.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), slow.read_to_string(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    // No CSRF cookie was sent, so the login is refused: a complete, ordinary answer.
    assert!(answer.starts_with("HTTP/1.1 403"), "{signal}: {answer}");
    assert!(answer.contains("x-request-id: "), "{answer}");

    let status = exit_status(&mut server).await;
    assert!(status.success(), "{signal}: exit status {status}");
    assert!(
        stopped_at.elapsed() < Duration::from_secs(lien::SHUTDOWN_GRACE_SECONDS),
        "no waiting for the grace period once nothing is in flight"
    );
}

// The read replica.

#[tokio::test]
async fn page_reads_go_to_the_read_url_and_a_writer_reads_its_own_writes() {
    // The "replica": a database of its own, with a story the primary does not have.
    let replica = TestApp::spawn().await;
    let rita = replica.user("rita").await;
    let replica_story = rita
        .share(
            "https://example.com/replicated",
            "Only on the replica",
            "ops",
        )
        .await;
    let (primary, primary_pool) = fresh_database().await;

    let port = free_port();
    let mut server = lien(port, port)
        .env("DATABASE_URL", database_url(&primary))
        .env("DATABASE_READ_URL", database_url(&replica.options))
        .env("LIEN_WORKERS", "0")
        .arg("serve")
        .spawn()
        .unwrap();
    wait_until(port, "/readyz", &mut server).await;
    let browser = |client: reqwest::Client| Browser {
        address: format!("http://127.0.0.1:{port}"),
        client,
    };
    let visitor = browser(reqwest::Client::new());

    // Pages and feeds read the replica.
    assert_eq!(story_ids(&visitor, "/").await, vec![replica_story]);
    assert_eq!(story_ids(&visitor, "/new").await, vec![replica_story]);
    let story = visitor.get(&format!("/s/{replica_story}")).await;
    assert_eq!(story.status(), StatusCode::OK);
    assert!(story.text().await.unwrap().contains("Only on the replica"));
    let feed = visitor.get("/new.rss").await.text().await.unwrap();
    assert!(feed.contains("Only on the replica"), "{feed}");

    // Writes go to the primary: an account, a session and a story.
    let writer = browser(
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    );
    let signup = writer.signup("wendy", "correct horse").await;
    assert_eq!(signup.status(), StatusCode::SEE_OTHER);
    let story = writer
        .share(
            "https://example.com/written",
            "Written to the primary",
            "ops",
        )
        .await;
    assert_eq!(people_named(&primary_pool, "wendy").await, 1);
    assert_eq!(people_named(&replica.pool, "wendy").await, 0);

    // The writer is sent to the new story and sees it, though the replica does not have it...
    let page = writer.get(&format!("/s/{story}")).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("Written to the primary"));
    // ...while everyone else reads the replica, which does not.
    let elsewhere = visitor.get(&format!("/s/{story}")).await;
    let text = elsewhere.text().await.unwrap();
    assert!(!text.contains("Written to the primary"), "{text}");
    assert_eq!(story_ids(&visitor, "/new").await, vec![replica_story]);

    terminate(server).await;
}

async fn people_named(pool: &PgPool, name: &str) -> i64 {
    sqlx::query_scalar("select count(*) from person where name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap()
}

// Scaling out.

/// A peer's inboxes (`/{name}/inbox`): records every activity id each received, slowly enough
/// that several processes get a share of the queue.
struct Sink {
    received: Arc<Mutex<Vec<(String, String)>>>,
    posts: Arc<AtomicUsize>,
    port: u16,
    server: ServerHandle,
}

impl Sink {
    fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let posts = Arc::new(AtomicUsize::new(0));
        let (r, p) = (received.clone(), posts.clone());
        let server = HttpServer::new(move || {
            let (r, p) = (r.clone(), p.clone());
            App::new().route(
                "/{name}/inbox",
                web::post().to(move |name: web::Path<String>, body: web::Json<Value>| {
                    let (r, p) = (r.clone(), p.clone());
                    async move {
                        p.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        let id = body["id"].as_str().unwrap_or_default().to_owned();
                        r.lock().unwrap().push((name.into_inner(), id));
                        HttpResponse::Accepted().finish()
                    }
                }),
            )
        })
        .workers(2)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Sink {
            received,
            posts,
            port,
            server: handle,
        }
    }
}

#[tokio::test]
async fn two_servers_and_a_worker_on_one_database_deliver_each_activity_exactly_once() {
    let (options, pool) = fresh_database().await;
    let url = database_url(&options);
    let public = free_port();
    let origin = format!("http://localhost:{public}");
    let alice = lien::accounts::register(&pool, &origin, "alice", "correct horse", "user")
        .await
        .unwrap();
    let sink = Sink::start();

    // Two web instances of one site (each with a delivery worker) and a `lien worker`.
    // `b` answers /metrics only on its LIEN_METRICS_LISTEN, as in the Kubernetes manifests.
    let (web_a, web_b, ops_b, ops) = (public, free_port(), free_port(), free_port());
    let with_db = |mut command: Command| {
        command
            .env("DATABASE_URL", &url)
            .env("LIEN_DEV", "1")
            .env("LIEN_WORKERS", "1");
        command
    };
    let mut a = with_db(lien(web_a, public)).arg("serve").spawn().unwrap();
    let mut b = with_db(lien(web_b, public))
        .env("LIEN_METRICS_LISTEN", format!("127.0.0.1:{ops_b}"))
        .arg("serve")
        .spawn()
        .unwrap();
    let mut worker = with_db(lien(web_b, public))
        .env("LIEN_METRICS_LISTEN", format!("127.0.0.1:{ops}"))
        .arg("worker")
        .spawn()
        .unwrap();
    wait_until(web_a, "/readyz", &mut a).await;
    wait_until(web_b, "/readyz", &mut b).await;
    wait_until(ops, "/readyz", &mut worker).await;
    wait_until(ops_b, "/healthz", &mut b).await;
    let public_metrics = reqwest::get(format!("http://127.0.0.1:{web_b}/metrics"))
        .await
        .unwrap();
    assert_eq!(public_metrics.status(), StatusCode::NOT_FOUND);

    let inboxes: Vec<Url> = ["one", "two"]
        .iter()
        .map(|name| {
            format!("http://localhost:{}/{name}/inbox", sink.port)
                .parse()
                .unwrap()
        })
        .collect();
    let activities: Vec<Value> = (0..30)
        .map(|_| {
            json!({
                "@context": "https://www.w3.org/ns/activitystreams",
                "id": format!("{origin}/activities/{}", uuid::Uuid::new_v4()),
                "type": "Like",
                "actor": alice.ap_id,
                "object": "https://peer.example/notes/1",
            })
        })
        .collect();
    let mut tx = pool.begin().await.unwrap();
    for activity in &activities {
        delivery::enqueue(
            &mut tx,
            activity,
            Signer::Person(alice.id),
            &inboxes,
            &format!("localhost:{public}"),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let expected = activities.len() * inboxes.len();

    eventually(60, "every delivery", || async {
        sink.received.lock().unwrap().len() >= expected
    })
    .await;
    eventually(10, "an empty queue", || async {
        crate::helpers::count(&pool, "delivery").await == 0
    })
    .await;
    // Anything sent twice would have arrived by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.posts.load(Ordering::SeqCst), expected);
    let mut per_inbox: HashMap<(String, String), usize> = HashMap::new();
    for key in sink.received.lock().unwrap().iter() {
        *per_inbox.entry(key.clone()).or_default() += 1;
    }
    assert_eq!(
        per_inbox.len(),
        expected,
        "every activity reached both inboxes"
    );
    assert!(per_inbox.values().all(|n| *n == 1), "exactly once each");

    // Each process counts what it delivered; together, everything, once.
    let mut shares = Vec::new();
    for port in [web_a, ops_b, ops] {
        let metrics = scrape(port).await;
        shares.push(
            sample(
                &metrics,
                "lien_deliveries_total",
                &[("outcome", "delivered")],
            )
            .unwrap(),
        );
    }
    assert_eq!(shares.iter().sum::<f64>(), expected as f64, "{shares:?}");
    assert!(
        shares.iter().filter(|n| **n > 0.0).count() >= 2,
        "the processes shared the queue: {shares:?}"
    );

    terminate(worker).await;
    terminate(a).await;
    terminate(b).await;
    sink.server.stop(true).await;
}
