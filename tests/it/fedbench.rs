//! The federation benchmarks of issue 7, run by `bench/federation` (release build, `--ignored`):
//! not checks of speed, but measurements that also check that nothing was lost or doubled.
//!
//! - `inbox_throughput`: 100 remote actors on 10 fake hosts, their keys cached by lien in a
//!   warm-up, send `Create(Note)` replies signed before the clock starts (signing is the peers'
//!   cost, not lien's), 48 in flight, one in twenty a redelivery of an earlier one. Every activity
//!   must be stored exactly once.
//! - `delivery_throughput`: 10,000 followers on 100 instances (sink inboxes on 100 `localhost`
//!   ports that check every signature), one story fanned out by lien's real delivery worker.
//!
//! Each prints one `FEDBENCH` line that the script turns into a table.

use std::{
    collections::HashMap,
    net::TcpListener,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

use actix_web::{dev::ServerHandle, web, App, HttpRequest, HttpResponse, HttpServer};
use futures::StreamExt;
use lien::federation::delivery;
use url::Url;

use crate::{
    helpers::{count, TestApp},
    mastodon::{fill, fixture},
    signatures::{check_signature, signed_post_headers},
};

/// One knob per benchmark size, so a quick run can be asked for (`FEDBENCH_ACTIVITIES=2000`).
fn size(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// `n` listeners on `localhost` ports: one peer host per port.
fn listeners(n: usize) -> Vec<TcpListener> {
    (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect()
}

fn port(listener: &TcpListener) -> u16 {
    listener.local_addr().unwrap().port()
}

/// One actix server (one worker thread) answering on all the listeners, with `data` for its
/// handlers.
fn serve_on<D: Send + Sync + 'static>(
    listeners: Vec<TcpListener>,
    data: web::Data<D>,
    routes: fn(&mut web::ServiceConfig),
) -> ServerHandle {
    let app = move || App::new().app_data(data.clone()).configure(routes);
    let mut server = HttpServer::new(app)
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1);
    for listener in listeners {
        server = server.listen(listener).unwrap();
    }
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    handle
}

// The inbox.

const HOSTS: usize = 10;
const ACTORS_PER_HOST: usize = 10;
const IN_FLIGHT: usize = 48;
/// Replies spread over this many stories, as a busy day's are. Replies to one story queue on its
/// row (its comment count), each holding it through its commit: `FEDBENCH_STORIES=1` shows that.
const STORIES: usize = 100;
/// One POST in this many repeats an earlier one, as a peer retrying after a timeout does.
const REPEAT_EVERY: usize = 20;

/// The fake peers' side: each host's key pair (its actors share it: generating 100 RSA keys
/// would take longer than the benchmark) and public key PEM, by port.
struct Peers {
    keys: HashMap<u16, (String, String)>,
}

/// `GET /users/{name}` on any port: the actor document of `name` on that host.
async fn peer_actor(
    req: HttpRequest,
    name: web::Path<String>,
    peers: web::Data<Peers>,
) -> HttpResponse {
    let port = req.app_config().local_addr().port();
    let Some((public_pem, _)) = peers.keys.get(&port) else {
        return HttpResponse::NotFound().finish();
    };
    let origin = format!("http://localhost:{port}");
    let body = fill(
        &fixture("actor.json"),
        &[
            ("ACTOR", &format!("{origin}/users/{name}")),
            ("NAME", &name),
            ("ORIGIN", &origin),
            ("PUBLIC_KEY", &public_pem.replace('\n', "\\n")),
        ],
    );
    HttpResponse::Ok()
        .content_type("application/activity+json; charset=utf-8")
        .body(body)
}

/// A POST ready to go: body and signed headers.
struct Signed {
    body: String,
    headers: Vec<(String, String)>,
}

/// Where the replies go: lien's shared inbox, about alice's stories.
struct Thread {
    inbox: Url,
    stories: Vec<String>,
    alice: String,
    lien_host: String,
}

/// A Mastodon `Create(Note)` (status number `status`) replying to one of the stories, signed by actor
/// `peer{actor}` of the host on `port`.
fn signed_reply(peers: &Peers, thread: &Thread, port: u16, actor: usize, status: usize) -> Signed {
    let origin = format!("http://localhost:{port}");
    let name = format!("peer{actor}");
    let actor_id = format!("{origin}/users/{name}");
    let body = fill(
        &fixture("create_note.json"),
        &[
            ("ACTOR", &actor_id),
            ("NAME", &name),
            ("ORIGIN", &origin),
            ("HOST", &format!("localhost:{port}")),
            ("LIEN_HOST", &thread.lien_host),
            ("STATUS", &status.to_string()),
            (
                "IN_REPLY_TO",
                &thread.stories[status % thread.stories.len()],
            ),
            ("MENTIONED", &thread.alice),
            ("MENTIONED_NAME", "alice"),
            ("TEXT", "a benchmark reply"),
        ],
    );
    let key_id = format!("{actor_id}#main-key");
    let headers = signed_post_headers(
        &thread.inbox,
        body.as_bytes(),
        &key_id,
        &peers.keys[&port].1,
    );
    Signed { body, headers }
}

async fn post(client: &reqwest::Client, inbox: &Url, signed: &Signed) -> reqwest::StatusCode {
    let mut request = client.post(inbox.clone()).body(signed.body.clone());
    for (name, value) in &signed.headers {
        request = request.header(name, value);
    }
    request
        .send()
        .await
        .map(|r| r.status())
        .unwrap_or_else(|e| panic!("POST failed: {e}"))
}

/// Not run by default: `bench/federation`, or `cargo test --release --test it inbox_throughput --
/// --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn inbox_throughput() {
    let total = size("FEDBENCH_ACTIVITIES", 10_000);
    // A busy peer set comes from many addresses: the per-address inbox limit is not what is measured.
    let lien = TestApp::spawn_with(&["--dev", "1", "--rate-limits", "off"]).await;
    let alice = lien.user("alice").await;
    let mut stories = Vec::new();
    for n in 0..size("FEDBENCH_STORIES", STORIES) {
        let url = format!("https://example.com/bench/{n}");
        let story = alice.share(&url, "Much discussed", "web").await;
        stories.push(format!("{}/s/{story}", lien.address));
    }
    let thread = Thread {
        inbox: format!("{}/inbox", lien.address).parse().unwrap(),
        stories,
        alice: format!("{}/users/alice", lien.address),
        lien_host: lien.address.trim_start_matches("http://").to_owned(),
    };
    let inbox = &thread.inbox;

    let hosts = listeners(HOSTS);
    let ports: Vec<u16> = hosts.iter().map(port).collect();
    let keys = ports
        .iter()
        .map(|&port| {
            let pair = activitypub_federation::http_signatures::generate_actor_keypair().unwrap();
            (port, (pair.public_key, pair.private_key))
        })
        .collect();
    let peers = web::Data::new(Peers { keys });
    let server = serve_on(hosts, peers.clone(), |routes| {
        routes.route("/users/{name}", web::get().to(peer_actor));
    });
    let actors: Vec<(u16, usize)> = ports
        .iter()
        .flat_map(|&port| (0..ACTORS_PER_HOST).map(move |n| (port, n)))
        .collect();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(IN_FLIGHT)
        .build()
        .unwrap();

    // Warm-up: each actor's first reply makes lien fetch and keep its document and key.
    let warm: Vec<Signed> = actors
        .iter()
        .enumerate()
        .map(|(i, &(port, actor))| signed_reply(&peers, &thread, port, actor, i))
        .collect();
    let statuses: Vec<_> = futures::stream::iter(&warm)
        .map(|signed| post(&client, inbox, signed))
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(
        statuses.iter().all(|s| s.is_success()),
        "warm-up: {statuses:?}"
    );

    // Sign everything before the clock starts, on both cores.
    let signing = Instant::now();
    let unique = total - total / REPEAT_EVERY;
    let fresh: Vec<Signed> = std::thread::scope(|scope| {
        let halves: Vec<_> = [0, 1]
            .map(|half| {
                let (peers, actors, thread) = (&*peers, &actors, &thread);
                scope.spawn(move || {
                    (half * unique / 2..(half + 1) * unique / 2)
                        .map(|n| {
                            let (port, actor) = actors[n % actors.len()];
                            let status = 1_000_000 + n;
                            signed_reply(peers, thread, port, actor, status)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .into();
        halves.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    // Every REPEAT_EVERY-th POST is a redelivery of an activity sent a little earlier.
    let mut order: Vec<&Signed> = Vec::with_capacity(total);
    let mut next = fresh.iter();
    for n in 0..total {
        if n % REPEAT_EVERY == REPEAT_EVERY - 1 && n >= 2 * IN_FLIGHT {
            order.push(order[n - 2 * IN_FLIGHT]);
        } else if let Some(signed) = next.next() {
            order.push(signed);
        }
    }
    order.extend(next);
    let signing = signing.elapsed();

    let load_before = load_average();
    let started = Instant::now();
    let statuses: Vec<_> = futures::stream::iter(&order)
        .map(|signed| post(&client, inbox, signed))
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let load_after = load_average();
    server.stop(false).await;

    let refused: Vec<_> = statuses.iter().filter(|s| !s.is_success()).collect();
    assert!(
        refused.is_empty(),
        "{} refused: {:?}",
        refused.len(),
        &refused[..refused.len().min(5)]
    );
    let comments = count(&lien.pool, "comment").await;
    assert_eq!(
        comments as usize,
        unique + actors.len(),
        "each reply stored exactly once"
    );
    let received = count(&lien.pool, "received_activity").await;
    assert_eq!(
        received as usize,
        unique + actors.len(),
        "each activity id recorded once"
    );
    println!(
        "FEDBENCH inbox posts={} unique={unique} actors={} hosts={HOSTS} stories={} in_flight={IN_FLIGHT} \
         seconds={:.2} rate={:.0} signing_seconds={:.1} load_before={load_before:?} load_after={load_after:?}",
        order.len(),
        actors.len(),
        thread.stories.len(),
        elapsed.as_secs_f64(),
        order.len() as f64 / elapsed.as_secs_f64(),
        signing.as_secs_f64(),
    );
}

// Delivery.

const INSTANCES: usize = 100;

/// The sinks' shared state: POSTs per inbox path and port, and what failed the checks.
#[derive(Default)]
struct Fleet {
    keys: HashMap<String, String>,
    posts: AtomicUsize,
    by_inbox: Mutex<HashMap<(u16, String), usize>>,
    problems: Mutex<Vec<String>>,
}

/// `POST /users/{name}/inbox` on any port: checks the signature as Mastodon does, then counts.
async fn sink_inbox(req: HttpRequest, body: web::Bytes, fleet: web::Data<Fleet>) -> HttpResponse {
    if let Err(problem) = check_signature(&req, &body, &fleet.keys) {
        fleet.problems.lock().unwrap().push(problem);
        fleet.posts.fetch_add(1, Ordering::SeqCst);
        return HttpResponse::Unauthorized().finish();
    }
    let port = req.app_config().local_addr().port();
    *fleet
        .by_inbox
        .lock()
        .unwrap()
        .entry((port, req.path().to_owned()))
        .or_default() += 1;
    fleet.posts.fetch_add(1, Ordering::SeqCst);
    HttpResponse::Accepted().finish()
}

/// Not run by default: `bench/federation`, or `cargo test --release --test it delivery_throughput
/// -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn delivery_throughput() {
    let followers = size("FEDBENCH_FOLLOWERS", 10_000);
    let lien = TestApp::spawn_with(&["--dev", "1"]).await;
    let alice = lien.user("alice").await;
    let (alice_id, alice_ap_id, alice_key): (i64, String, String) = sqlx::query_as(
        "select id, ap_id, public_key_pem from person where local and name = 'alice'",
    )
    .fetch_one(&lien.pool)
    .await
    .unwrap();
    let fleet = web::Data::new(Fleet {
        keys: HashMap::from([(format!("{alice_ap_id}#main-key"), alice_key)]),
        ..Fleet::default()
    });
    let instances = listeners(INSTANCES);
    let ports: Vec<u16> = instances.iter().map(port).collect();
    let server = serve_on(instances, fleet.clone(), |routes| {
        routes.route("/users/{name}/inbox", web::post().to(sink_inbox));
    });
    // Followers spread evenly over the instances, each with a personal inbox only (no shared
    // inbox), so that every follower is one POST.
    let hosts: Vec<String> = ports.iter().map(|p| format!("localhost:{p}")).collect();
    sqlx::query(
        "with f as (
             select n, ($1::text[])[(n % $2)::int + 1] as host from generate_series(0, $3 - 1) as n
         ), p as (
             insert into person (name, host, local, ap_id, inbox_url, public_key_pem, fetched_at)
             select 'f' || n, host, false, 'http://' || host || '/users/f' || n,
                    'http://' || host || '/users/f' || n || '/inbox', 'unused', now()
             from f
             returning id, ap_id
         )
         insert into follow (follower_id, followee_id, ap_id, accepted)
         select p.id, $4, p.ap_id || '/follows/1', true from p",
    )
    .bind(&hosts)
    .bind(INSTANCES as i64)
    .bind(followers as i64)
    .bind(alice_id)
    .execute(&lien.pool)
    .await
    .unwrap();

    // The story's Create goes to every follower, queued in the submission's transaction.
    let queued_at = Instant::now();
    alice
        .share("https://example.com/fanned-out", "For everyone", "web")
        .await;
    let enqueue = queued_at.elapsed();
    assert_eq!(count(&lien.pool, "delivery").await as usize, followers);

    let load_before = load_average();
    let started = Instant::now();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(delivery::run(lien.federation.clone(), async {
        let _ = done_rx.await;
    }));
    loop {
        let (left, error): (i64, Option<String>) =
            sqlx::query_as("select count(*), max(last_error) from delivery")
                .fetch_one(&lien.pool)
                .await
                .unwrap();
        assert!(error.is_none(), "a delivery failed: {error:?}");
        if left == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "{} POSTs in 10 minutes",
            fleet.posts.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let load_after = load_average();
    done_tx.send(()).unwrap();
    worker.await.unwrap();
    server.stop(false).await;

    let problems = fleet.problems.lock().unwrap().clone();
    assert!(
        problems.is_empty(),
        "badly signed POSTs: {:?}",
        &problems[..problems.len().min(5)]
    );
    let by_inbox = fleet.by_inbox.lock().unwrap();
    assert_eq!(
        by_inbox.len(),
        followers,
        "every follower's inbox was reached"
    );
    assert!(by_inbox.values().all(|n| *n == 1), "and only once");
    let posts = fleet.posts.load(Ordering::SeqCst);
    println!(
        "FEDBENCH delivery posts={posts} followers={followers} instances={INSTANCES} \
         seconds={:.2} rate={:.0} enqueue_seconds={:.2} load_before={load_before:?} load_after={load_after:?}",
        elapsed.as_secs_f64(),
        posts as f64 / elapsed.as_secs_f64(),
        enqueue.as_secs_f64(),
    );
}
