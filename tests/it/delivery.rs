//! The durable delivery queue against real inboxes: signed POSTs that arrive once, retries with
//! backoff, final refusals, workers racing for rows, and the real binary killed mid-delivery.

use std::{
    collections::HashMap,
    net::TcpListener,
    path::Path,
    sync::{
        atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

use actix_web::{
    dev::ServerHandle, http::StatusCode, web, App, HttpRequest, HttpResponse, HttpServer,
};
use lien::{
    db::Db,
    federation::delivery::{self, Outcomes, Signer},
};
use serde_json::{json, Value};
use sqlx::{postgres::PgConnectOptions, PgPool};
use tokio::process::Command;
use url::Url;

use crate::{
    binary::{self, eventually, free_port, terminate, wait_until_healthy},
    helpers::{config_for, count, TestApp},
    signatures::check_signature,
};

/// http:// peers on localhost ports are only allowed in dev mode.
const DEV: &[&str] = &["--dev", "1"];

/// A peer's inbox: checks every POST's HTTP signature against the keys it was given (key id to
/// public key PEM) the way a careful peer would, answers with the status it is told to, and
/// records the activities it accepted.
struct Sink {
    state: web::Data<SinkState>,
    port: u16,
    server: ServerHandle,
}

#[derive(Default)]
struct SinkState {
    keys: HashMap<String, String>,
    /// The status to answer with (202 unless told otherwise).
    status: AtomicU16,
    /// How long to take over each answer, in milliseconds.
    delay_ms: AtomicU64,
    /// Every POST, signed or not, accepted or not.
    posts: AtomicUsize,
    /// The activities accepted with a 2xx.
    accepted: Mutex<Vec<Value>>,
    /// What was wrong with the POSTs that failed the checks.
    problems: Mutex<Vec<String>>,
}

impl Sink {
    async fn start(keys: &HashMap<String, String>) -> Sink {
        Sink::on(TcpListener::bind("127.0.0.1:0").unwrap(), keys)
    }

    fn on(listener: TcpListener, keys: &HashMap<String, String>) -> Sink {
        let port = listener.local_addr().unwrap().port();
        let state = web::Data::new(SinkState {
            keys: keys.clone(),
            status: AtomicU16::new(202),
            ..SinkState::default()
        });
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .route("/inbox", web::post().to(receive))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Sink {
            state,
            port,
            server: handle,
        }
    }

    /// Addressed by host name: the library refuses IP literals, and so does lien.
    fn inbox(&self) -> Url {
        format!("http://localhost:{}/inbox", self.port)
            .parse()
            .unwrap()
    }

    fn answer(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    fn posts(&self) -> usize {
        self.state.posts.load(Ordering::SeqCst)
    }

    fn accepted(&self) -> Vec<Value> {
        self.state.accepted.lock().unwrap().clone()
    }

    /// Ids of the accepted activities, sorted.
    fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .accepted()
            .iter()
            .map(|activity| activity["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    }

    fn assert_all_signed(&self) {
        let problems = self.state.problems.lock().unwrap();
        assert!(problems.is_empty(), "badly signed POSTs: {problems:?}");
    }

    async fn stop(self) {
        self.server.stop(false).await;
    }
}

async fn receive(
    request: HttpRequest,
    body: web::Bytes,
    sink: web::Data<SinkState>,
) -> HttpResponse {
    sink.posts.fetch_add(1, Ordering::SeqCst);
    if let Err(problem) = check_signature(&request, &body, &sink.keys) {
        sink.problems.lock().unwrap().push(problem);
        return HttpResponse::Unauthorized().finish();
    }
    let delay = sink.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let status = StatusCode::from_u16(sink.status.load(Ordering::SeqCst)).unwrap();
    if status.is_success() {
        let activity: Value = serde_json::from_slice(&body).unwrap();
        sink.accepted.lock().unwrap().push(activity);
    }
    HttpResponse::build(status).finish()
}

/// The public keys of an instance's local people and of its instance actor, by key id.
async fn signing_keys(pool: &PgPool, origin: &str) -> HashMap<String, String> {
    let mut keys: HashMap<String, String> = sqlx::query_as::<_, (String, String)>(
        "select ap_id || '#main-key', public_key_pem from person where local",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let instance: Option<String> = sqlx::query_scalar("select public_key_pem from site")
        .fetch_optional(pool)
        .await
        .unwrap();
    if let Some(pem) = instance {
        keys.insert(format!("{origin}/actor#main-key"), pem);
    }
    keys
}

/// A local person's id and ActivityPub id.
async fn person(pool: &PgPool, name: &str) -> (i64, String) {
    sqlx::query_as("select id, ap_id from person where local and name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A fresh activity by `actor`, with an id under `origin`.
fn like(origin: &str, actor: &str) -> Value {
    json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{origin}/activities/{}", uuid::Uuid::new_v4()),
        "type": "Like",
        "actor": actor,
        "object": "https://peer.example/notes/1",
    })
}

fn host_of(address: &str) -> String {
    address.trim_start_matches("http://").to_owned()
}

/// Queues each activity for every inbox in one transaction; returns the rows queued.
async fn enqueue_all(
    pool: &PgPool,
    activities: &[Value],
    signer: Signer,
    inboxes: &[Url],
    local_host: &str,
) -> usize {
    let mut tx = pool.begin().await.unwrap();
    let mut queued = 0;
    for activity in activities {
        queued += delivery::enqueue(&mut tx, activity, signer.clone(), inboxes, local_host)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    queued
}

/// Runs deliver_due until nothing is due, adding up what happened.
async fn deliver_all(app: &TestApp) -> Outcomes {
    let data = app.federation.to_request_data();
    let mut total = Outcomes::default();
    loop {
        let outcomes = delivery::deliver_due(&data, 500).await.unwrap();
        if outcomes.total() == 0 {
            return total;
        }
        total.delivered += outcomes.delivered;
        total.failed += outcomes.failed;
        total.given_up += outcomes.given_up;
    }
}

fn ids_of(activities: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = activities
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[derive(Debug, sqlx::FromRow)]
struct Row {
    attempts: i32,
    last_error: Option<String>,
    /// Seconds until the row is due again.
    due_in: f64,
}

async fn row_for(pool: &PgPool, inbox: &Url) -> Option<Row> {
    sqlx::query_as(
        "select attempts, last_error,
                extract(epoch from next_attempt_at - now())::float8 as due_in
         from delivery where inbox = $1",
    )
    .bind(inbox.as_str())
    .fetch_optional(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn fifty_activities_reach_three_inboxes_once_each_signed_and_the_queue_empties() {
    let app = TestApp::spawn_with(DEV).await;
    app.user("alice").await;
    let (alice, alice_ap_id) = person(&app.pool, "alice").await;
    let keys = signing_keys(&app.pool, &app.address).await;
    let sinks = [
        Sink::start(&keys).await,
        Sink::start(&keys).await,
        Sink::start(&keys).await,
    ];
    let inboxes: Vec<Url> = sinks.iter().map(Sink::inbox).collect();
    let activities: Vec<Value> = (0..50).map(|_| like(&app.address, &alice_ap_id)).collect();

    let queued = enqueue_all(
        &app.pool,
        &activities,
        Signer::Person(alice),
        &inboxes,
        &host_of(&app.address),
    )
    .await;
    assert_eq!(queued, 150);
    let stats = delivery::queue_stats(&app.pool).await.unwrap();
    assert_eq!((stats.queued, stats.due), (150, 150));

    let outcomes = delivery::deliver_due(&app.federation.to_request_data(), 1000)
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        Outcomes {
            delivered: 150,
            failed: 0,
            given_up: 0
        }
    );
    assert_eq!(count(&app.pool, "delivery").await, 0, "the queue is empty");
    let expected = ids_of(&activities);
    for sink in &sinks {
        sink.assert_all_signed();
        assert_eq!(sink.posts(), 50, "one POST per activity");
        assert_eq!(sink.ids(), expected, "each activity exactly once");
        let first = sink
            .accepted()
            .into_iter()
            .find(|a| a["id"] == activities[0]["id"])
            .unwrap();
        assert_eq!(first, activities[0], "the body is the queued JSON");
    }
    let stats = delivery::queue_stats(&app.pool).await.unwrap();
    assert_eq!((stats.queued, stats.due), (0, 0));
    assert_eq!(
        delivery::deliver_due(&app.federation.to_request_data(), 1000)
            .await
            .unwrap(),
        Outcomes::default(),
        "nothing is sent twice"
    );
}

#[tokio::test]
async fn the_instance_actor_signs_deliveries_that_belong_to_no_person() {
    let app = TestApp::spawn_with(DEV).await;
    let keys = signing_keys(&app.pool, &app.address).await;
    let sink = Sink::start(&keys).await;
    let activity = like(&app.address, &format!("{}/actor", app.address));
    let queued = enqueue_all(
        &app.pool,
        std::slice::from_ref(&activity),
        Signer::Instance,
        &[sink.inbox()],
        &host_of(&app.address),
    )
    .await;
    assert_eq!(queued, 1);
    assert_eq!(deliver_all(&app).await.delivered, 1);
    sink.assert_all_signed();
    assert_eq!(sink.ids(), ids_of(&[activity]));
}

#[tokio::test]
async fn enqueue_skips_duplicates_local_inboxes_and_ip_literals_and_is_idempotent() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let (alice, alice_ap_id) = person(&app.pool, "alice").await;
    let local_host = host_of(&app.address);
    let activity = like(&app.address, &alice_ap_id);
    let inboxes: Vec<Url> = [
        "https://peer.example/inbox",
        "https://peer.example/inbox",
        "https://other.example:8443/users/bob/inbox",
        &format!("{}/inbox", app.address),
        &format!("{}/users/alice/inbox", app.address),
        "http://127.0.0.1:9/inbox",
        "https://10.0.0.1/inbox",
        "http://[::1]:9/inbox",
        "ftp://peer.example/inbox",
    ]
    .iter()
    .map(|url| url.parse().unwrap())
    .collect();

    let mut tx = app.pool.begin().await.unwrap();
    let queued = delivery::enqueue(
        &mut tx,
        &activity,
        Signer::Person(alice),
        &inboxes,
        &local_host,
    )
    .await
    .unwrap();
    assert_eq!(queued, 2);
    let again = delivery::enqueue(
        &mut tx,
        &activity,
        Signer::Person(alice),
        &inboxes,
        &local_host,
    )
    .await
    .unwrap();
    assert_eq!(
        again, 0,
        "the same activity to the same inbox is queued once"
    );
    tx.commit().await.unwrap();
    let mut rows: Vec<(String, String, Option<i64>)> =
        sqlx::query_as("select inbox, host, signer_id from delivery order by inbox")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    rows.sort();
    assert_eq!(
        rows,
        [
            (
                "https://other.example:8443/users/bob/inbox".to_owned(),
                "other.example:8443".to_owned(),
                Some(alice)
            ),
            (
                "https://peer.example/inbox".to_owned(),
                "peer.example".to_owned(),
                Some(alice)
            ),
        ]
    );

    // Only IP literals: nothing queued, no panic.
    let mut tx = app.pool.begin().await.unwrap();
    let ip_only: Vec<Url> = vec!["http://127.0.0.1:9/inbox".parse().unwrap()];
    let other = like(&app.address, &alice_ap_id);
    let queued = delivery::enqueue(
        &mut tx,
        &other,
        Signer::Person(alice),
        &ip_only,
        &local_host,
    )
    .await
    .unwrap();
    assert_eq!(queued, 0);
    // An activity without an id cannot be queued.
    let no_id = json!({"type": "Like", "actor": alice_ap_id});
    assert!(delivery::enqueue(
        &mut tx,
        &no_id,
        Signer::Person(alice),
        &inboxes,
        &local_host
    )
    .await
    .is_err());
    tx.rollback().await.unwrap();
    assert_eq!(count(&app.pool, "delivery").await, 2);

    // Rolled back with the change: nothing is sent for a change that did not happen.
    let mut tx = app.pool.begin().await.unwrap();
    let third = like(&app.address, &alice_ap_id);
    delivery::enqueue(
        &mut tx,
        &third,
        Signer::Person(alice),
        &inboxes,
        &local_host,
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(count(&app.pool, "delivery").await, 2);
}

#[tokio::test]
async fn an_ip_literal_inbox_that_got_into_the_queue_is_given_up_without_a_panic() {
    let app = TestApp::spawn_with(DEV).await;
    app.user("alice").await;
    let (alice, alice_ap_id) = person(&app.pool, "alice").await;
    let activity = like(&app.address, &alice_ap_id);
    sqlx::query(
        "insert into delivery (activity_id, signer_id, inbox, host, payload)
         values ($1, $2, 'http://127.0.0.1:9/inbox', '127.0.0.1:9', $3)",
    )
    .bind(activity["id"].as_str())
    .bind(alice)
    .bind(&activity)
    .execute(&app.pool)
    .await
    .unwrap();
    let outcomes = deliver_all(&app).await;
    assert_eq!(outcomes.given_up, 1);
    assert_eq!(count(&app.pool, "delivery").await, 0);
}

#[tokio::test]
async fn a_failing_inbox_keeps_the_row_with_a_backoff_and_gets_it_once_when_it_recovers() {
    let app = TestApp::spawn_with(DEV).await;
    app.user("alice").await;
    let (alice, alice_ap_id) = person(&app.pool, "alice").await;
    let keys = signing_keys(&app.pool, &app.address).await;
    let sink = Sink::start(&keys).await;
    sink.answer(500);
    // A peer that is down: nothing listens on this port.
    let down: Url = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!(
            "http://localhost:{}/inbox",
            listener.local_addr().unwrap().port()
        )
        .parse()
        .unwrap()
    };
    let activity = like(&app.address, &alice_ap_id);
    enqueue_all(
        &app.pool,
        std::slice::from_ref(&activity),
        Signer::Person(alice),
        &[sink.inbox(), down.clone()],
        &host_of(&app.address),
    )
    .await;

    let outcomes = deliver_all(&app).await;
    assert_eq!(
        outcomes,
        Outcomes {
            delivered: 0,
            failed: 2,
            given_up: 0
        }
    );
    for inbox in [sink.inbox(), down.clone()] {
        let row = row_for(&app.pool, &inbox).await.expect("the row is kept");
        assert_eq!(row.attempts, 1);
        // 1 minute, give or take a tenth.
        assert!(
            (50.0..=70.0).contains(&row.due_in),
            "due in {}s",
            row.due_in
        );
        assert!(row.last_error.is_some_and(|e| !e.is_empty()));
    }
    let sink_row = row_for(&app.pool, &sink.inbox()).await.unwrap();
    assert!(sink_row.last_error.unwrap().contains("500"));
    assert_eq!(sink.posts(), 1);
    let stats = delivery::queue_stats(&app.pool).await.unwrap();
    assert_eq!((stats.queued, stats.due), (2, 0));

    // The backoff doubles with each attempt, up to six hours.
    sqlx::query("update delivery set attempts = 4, next_attempt_at = now() where inbox = $1")
        .bind(down.as_str())
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(deliver_all(&app).await.failed, 1);
    let row = row_for(&app.pool, &down).await.unwrap();
    assert_eq!(row.attempts, 5);
    assert!(
        (14.4 * 60.0..=17.6 * 60.0).contains(&row.due_in),
        "due in {}s",
        row.due_in
    );
    sqlx::query("update delivery set attempts = 40, next_attempt_at = now() where inbox = $1")
        .bind(down.as_str())
        .execute(&app.pool)
        .await
        .unwrap();
    deliver_all(&app).await;
    let row = row_for(&app.pool, &down).await.unwrap();
    assert!(
        (5.9 * 3600.0..=6.0 * 3600.0).contains(&row.due_in),
        "due in {}s",
        row.due_in
    );

    // Older than three days: the next failure is the last.
    sqlx::query(
        "update delivery set created_at = now() - interval '4 days', next_attempt_at = now()
         where inbox = $1",
    )
    .bind(down.as_str())
    .execute(&app.pool)
    .await
    .unwrap();
    assert_eq!(deliver_all(&app).await.given_up, 1);
    assert!(row_for(&app.pool, &down).await.is_none());

    // The sink recovers and the row comes due: delivered once.
    sink.answer(202);
    sqlx::query("update delivery set next_attempt_at = now()")
        .execute(&app.pool)
        .await
        .unwrap();
    let stats = delivery::queue_stats(&app.pool).await.unwrap();
    assert_eq!((stats.queued, stats.due), (1, 1));
    assert_eq!(deliver_all(&app).await.delivered, 1);
    sink.assert_all_signed();
    assert_eq!(sink.ids(), ids_of(&[activity]));
    assert_eq!(sink.posts(), 2);
    assert_eq!(count(&app.pool, "delivery").await, 0);
}

#[tokio::test]
async fn a_refusal_for_good_deletes_the_row_and_is_not_retried() {
    let app = TestApp::spawn_with(DEV).await;
    app.user("alice").await;
    let (alice, alice_ap_id) = person(&app.pool, "alice").await;
    let keys = signing_keys(&app.pool, &app.address).await;
    let gone = Sink::start(&keys).await;
    gone.answer(410);
    let busy = Sink::start(&keys).await;
    busy.answer(429);
    let activity = like(&app.address, &alice_ap_id);
    enqueue_all(
        &app.pool,
        std::slice::from_ref(&activity),
        Signer::Person(alice),
        &[gone.inbox(), busy.inbox()],
        &host_of(&app.address),
    )
    .await;
    let outcomes = deliver_all(&app).await;
    assert_eq!((outcomes.delivered, outcomes.failed), (1, 1));
    assert!(
        row_for(&app.pool, &gone.inbox()).await.is_none(),
        "410 is final"
    );
    assert!(
        row_for(&app.pool, &busy.inbox()).await.is_some(),
        "429 is retried"
    );
    sqlx::query("update delivery set next_attempt_at = now()")
        .execute(&app.pool)
        .await
        .unwrap();
    deliver_all(&app).await;
    assert_eq!(gone.posts(), 1, "not retried");
    assert_eq!(busy.posts(), 2);
    gone.assert_all_signed();
}

#[tokio::test]
async fn workers_racing_for_the_queue_never_send_a_row_twice() {
    let app = TestApp::spawn_with(DEV).await;
    app.user("alice").await;
    let (alice, alice_ap_id) = person(&app.pool, "alice").await;
    let keys = signing_keys(&app.pool, &app.address).await;
    let mut sinks = Vec::new();
    for _ in 0..4 {
        let sink = Sink::start(&keys).await;
        sink.state.delay_ms.store(5, Ordering::SeqCst);
        sinks.push(sink);
    }
    let inboxes: Vec<Url> = sinks.iter().map(Sink::inbox).collect();
    let activities: Vec<Value> = (0..25).map(|_| like(&app.address, &alice_ap_id)).collect();
    let queued = enqueue_all(
        &app.pool,
        &activities,
        Signer::Person(alice),
        &inboxes,
        &host_of(&app.address),
    )
    .await;
    assert_eq!(queued, 100);

    // A second process on the same database: its own pool and federation settings.
    let other_pool = lien::db::pool_options()
        .connect_with(app.options.clone())
        .await
        .unwrap();
    let other_state = lien::app_state(Db::single(other_pool), config_for(&app.address, DEV));
    let other = lien::federation::config(other_state).await.unwrap();
    let workers = [
        app.federation.clone(),
        app.federation.clone(),
        other.clone(),
        other,
    ];
    let mut tasks = Vec::new();
    for federation in workers {
        tasks.push(tokio::spawn(async move {
            let data = federation.to_request_data();
            let mut total = Outcomes::default();
            loop {
                let outcomes = delivery::deliver_due(&data, 7).await.unwrap();
                if outcomes.total() == 0 {
                    return total;
                }
                total.delivered += outcomes.delivered;
                total.failed += outcomes.failed;
                total.given_up += outcomes.given_up;
            }
        }));
    }
    let mut delivered = 0;
    let mut workers_that_delivered = 0;
    for task in tasks {
        let outcomes = task.await.unwrap();
        assert_eq!((outcomes.failed, outcomes.given_up), (0, 0));
        delivered += outcomes.delivered;
        workers_that_delivered += usize::from(outcomes.delivered > 0);
    }
    assert_eq!(delivered, 100, "every row handled by exactly one worker");
    assert!(workers_that_delivered >= 2, "the workers shared the queue");
    let expected = ids_of(&activities);
    for sink in &sinks {
        sink.assert_all_signed();
        assert_eq!(sink.posts(), 25);
        assert_eq!(sink.ids(), expected, "count per id is 1");
    }
    assert_eq!(count(&app.pool, "delivery").await, 0);
}

#[tokio::test]
async fn the_worker_finishes_the_deliveries_in_flight_when_told_to_stop() {
    let app = TestApp::spawn_with(DEV).await;
    app.user("alice").await;
    let (alice, alice_ap_id) = person(&app.pool, "alice").await;
    let keys = signing_keys(&app.pool, &app.address).await;
    let sink = Sink::start(&keys).await;
    sink.state.delay_ms.store(1500, Ordering::SeqCst);
    let activity = like(&app.address, &alice_ap_id);
    enqueue_all(
        &app.pool,
        std::slice::from_ref(&activity),
        Signer::Person(alice),
        &[sink.inbox()],
        &host_of(&app.address),
    )
    .await;
    let (stop, stopping) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(delivery::run(app.federation.clone(), async {
        let _ = stopping.await;
    }));
    eventually(10, "the POST", || async { sink.posts() == 1 }).await;
    stop.send(()).unwrap();
    worker.await.unwrap();
    assert_eq!(
        sink.ids(),
        ids_of(&[activity]),
        "answered before the worker returned"
    );
    assert_eq!(count(&app.pool, "delivery").await, 0, "and recorded");
}

// The real binary.

fn lien(data_dir: &Path, port: u16) -> Command {
    let mut command = binary::command();
    command
        .env("LIEN_DATA_DIR", data_dir)
        .env("LIEN_LISTEN", format!("127.0.0.1:{port}"))
        .env("LIEN_PUBLIC_URL", format!("http://localhost:{port}"))
        .env("LIEN_DEV", "1");
    command
}

/// The embedded cluster's database, over its Unix socket, once it accepts connections.
async fn embedded_database(data_dir: &Path) -> PgPool {
    let options = PgConnectOptions::new_without_pgpass()
        .socket(data_dir.join("postgres-run"))
        .username("lien")
        .database("lien");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options.clone())
            .await
        {
            Ok(pool) => return pool,
            Err(error) => {
                assert!(Instant::now() < deadline, "no database: {error}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn create_user(data_dir: &Path, port: u16, name: &str) {
    let password_file = data_dir.with_file_name("password");
    std::fs::write(&password_file, "correct horse\n").unwrap();
    let created = lien(data_dir, port)
        .args(["user", "create", name, "--password-file"])
        .arg(&password_file)
        .output()
        .await
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
}

async fn attempts(pool: &PgPool, activity: &Value) -> Option<i32> {
    sqlx::query_scalar("select attempts from delivery where activity_id = $1")
        .bind(activity["id"].as_str())
        .fetch_optional(pool)
        .await
        .unwrap()
}

async fn make_due(pool: &PgPool) {
    sqlx::query("update delivery set next_attempt_at = now()")
        .execute(pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_delivery_survives_a_sigkill_of_lien_mid_send_and_arrives_exactly_once() {
    let dir = tempfile::Builder::new()
        .prefix("lien-delivery-")
        .tempdir_in("/tmp")
        .unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let origin = format!("http://localhost:{port}");
    let mut server = lien(&data, port).arg("serve").spawn().unwrap();
    wait_until_healthy(port, &mut server).await;
    create_user(&data, port, "alice").await;
    let pool = embedded_database(&data).await;
    let (alice, alice_ap_id) = person(&pool, "alice").await;

    // Queued for a peer that is not listening yet: the worker in `serve` tries and backs off.
    let sink_port = free_port();
    let inbox: Url = format!("http://localhost:{sink_port}/inbox")
        .parse()
        .unwrap();
    let activity = like(&origin, &alice_ap_id);
    let queued = enqueue_all(
        &pool,
        std::slice::from_ref(&activity),
        Signer::Person(alice),
        std::slice::from_ref(&inbox),
        &host_of(&origin),
    )
    .await;
    assert_eq!(queued, 1);
    eventually(30, "a first failed attempt", || async {
        attempts(&pool, &activity).await == Some(1)
            && row_for(&pool, &inbox)
                .await
                .is_some_and(|row| row.last_error.is_some())
    })
    .await;

    // Now a peer that takes the request and never answers; the next attempt hangs in flight.
    let hanging = TcpListener::bind(("127.0.0.1", sink_port)).unwrap();
    make_due(&pool).await;
    eventually(30, "a second attempt in flight", || async {
        attempts(&pool, &activity).await == Some(2)
    })
    .await;
    // SIGKILL in the middle of the delivery.
    server.start_kill().unwrap();
    server.wait().await.unwrap();
    drop(hanging);
    let row = row_for(&pool, &inbox).await.expect("the row survives");
    assert!(row.due_in > 60.0, "leased by the dead worker");

    // The lease runs out (five minutes; here at once), the peer is back, lien starts again.
    make_due(&pool).await;
    let keys = signing_keys(&pool, &origin).await;
    let sink = Sink::on(TcpListener::bind(("127.0.0.1", sink_port)).unwrap(), &keys);
    let mut server = lien(&data, port).arg("serve").spawn().unwrap();
    wait_until_healthy(port, &mut server).await;
    eventually(30, "the delivery", || async { sink.posts() >= 1 }).await;
    eventually(10, "the row deleted", || async {
        attempts(&pool, &activity).await.is_none()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    sink.assert_all_signed();
    assert_eq!(sink.ids(), ids_of(&[activity]), "exactly once");
    assert_eq!(sink.posts(), 1);
    pool.close().await;
    terminate(server).await;
    sink.stop().await;
}

#[tokio::test]
async fn lien_worker_delivers_on_its_own_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::Builder::new()
        .prefix("lien-worker-")
        .tempdir_in("/tmp")
        .unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let origin = format!("http://localhost:{port}");

    // No web server at all: the worker starts the embedded cluster itself.
    let worker = lien(&data, port).arg("worker").spawn().unwrap();
    let pool = embedded_database(&data).await;
    create_user(&data, port, "alice").await;
    let (alice, alice_ap_id) = person(&pool, "alice").await;
    let keys = signing_keys(&pool, &origin).await;
    let sink = Sink::start(&keys).await;
    let first = like(&origin, &alice_ap_id);
    enqueue_all(
        &pool,
        std::slice::from_ref(&first),
        Signer::Person(alice),
        &[sink.inbox()],
        &host_of(&origin),
    )
    .await;
    eventually(30, "the worker's delivery", || async { sink.posts() >= 1 }).await;
    eventually(10, "the row deleted", || async {
        attempts(&pool, &first).await.is_none()
    })
    .await;
    pool.close().await;
    terminate(worker).await;
    assert!(
        !data.join("postgres/postmaster.pid").exists(),
        "the worker stops the cluster it started"
    );

    // `serve` with LIEN_WORKERS=0 leaves delivery to `lien worker`.
    let mut server = lien(&data, port)
        .env("LIEN_WORKERS", "0")
        .arg("serve")
        .spawn()
        .unwrap();
    wait_until_healthy(port, &mut server).await;
    let pool = embedded_database(&data).await;
    let second = like(&origin, &alice_ap_id);
    enqueue_all(
        &pool,
        std::slice::from_ref(&second),
        Signer::Person(alice),
        &[sink.inbox()],
        &host_of(&origin),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        attempts(&pool, &second).await,
        Some(0),
        "serve does not deliver"
    );
    assert_eq!(sink.posts(), 1);
    let worker = lien(&data, port).arg("worker").spawn().unwrap();
    eventually(60, "the worker's delivery", || async { sink.posts() >= 2 }).await;
    eventually(10, "the row deleted", || async {
        attempts(&pool, &second).await.is_none()
    })
    .await;
    terminate(worker).await;
    // The worker leaves the server's cluster alone.
    wait_until_healthy(port, &mut server).await;
    pool.close().await;
    terminate(server).await;
    sink.assert_all_signed();
    assert_eq!(sink.ids(), ids_of(&[first, second]));
    sink.stop().await;
}
