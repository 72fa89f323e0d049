//! The test harness: one embedded PostgreSQL cluster per test run (the same code `lien serve` uses),
//! a fresh database per test cloned from a migrated template, and the real HTTP server on a free port.

use std::{net::TcpListener, path::PathBuf, sync::OnceLock};

use clap::Parser;
use lien::{
    config::Config,
    db::{
        embedded::{Claim, EmbeddedPostgres},
        Db, MIGRATOR,
    },
};
use reqwest::{redirect::Policy, Response, StatusCode};
use scraper::{Html, Selector};
use sqlx::{postgres::PgConnectOptions, Connection, PgConnection, PgPool};

/// This run's migrated template; test databases are copies of it. Names carry the process id so
/// that a run only ever clears what runs that have ended left behind.
fn template_db() -> String {
    format!("template_{}", std::process::id())
}

/// Whether the test process that made database `name` (`test_{pid}_…`, `template_{pid}`) still runs.
fn owner_alive(name: &str) -> bool {
    let pid = name
        .split('_')
        .nth(1)
        .and_then(|pid| pid.parse::<i32>().ok());
    pid.is_some_and(|pid| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok())
}

struct Cluster {
    postgres: EmbeddedPostgres,
    admin: PgConnectOptions,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// Where the test cluster lives: under /tmp so that the `postgres` account can reach it when the
/// tests run as root, and keyed by checkout so that two checkouts never share one.
pub fn test_cluster_dir() -> PathBuf {
    let manifest = env!("CARGO_MANIFEST_DIR");
    let key = manifest
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    std::env::temp_dir().join(format!("lien-test-cluster-{key:08x}"))
}

extern "C" fn stop_cluster_at_exit() {
    // On a thread of its own: exit may come from inside a runtime, where blocking is not allowed.
    let _ = std::thread::spawn(|| {
        let Some(cluster) = CLUSTER.get() else { return };
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        runtime.block_on(async {
            // Another `cargo test` in this checkout still using the cluster keeps it running.
            if let Ok(mut conn) = PgConnection::connect_with(&cluster.admin).await {
                let names: Vec<String> = sqlx::query_scalar(
                    "select datname from pg_database where datname like 'test\\_%' or datname like 'template\\_%'",
                )
                .fetch_all(&mut conn)
                .await
                .unwrap_or_default();
                let _ = conn.close().await;
                let mine = std::process::id().to_string();
                let others = names
                    .iter()
                    .any(|name| name.split('_').nth(1) != Some(mine.as_str()) && owner_alive(name));
                if others {
                    return;
                }
            }
            let _ = cluster.postgres.stop().await;
        });
    })
    .join();
}

extern "C" {
    fn atexit(callback: extern "C" fn()) -> std::os::raw::c_int;
}

/// Starts (or reuses) the cluster and builds the migrated template, once per test binary. Runs on
/// its own thread and runtime: each test has its own runtime, and connections must not outlive one.
fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let dir = test_cluster_dir();
                std::fs::create_dir_all(&dir).unwrap();
                let postgres = EmbeddedPostgres::start(&dir, Claim::Borrower)
                    .await
                    .expect("test cluster");
                let admin = postgres.connect_options("postgres");
                let mut conn = PgConnection::connect_with(&admin).await.unwrap();
                // Databases of test runs that have ended go; those of a run still going (another
                // `cargo test` in this checkout) stay. Each run builds its own template, so one
                // made by older migrations is never used.
                let old: Vec<String> = sqlx::query_scalar(
                    "select datname from pg_database where datname like 'test\\_%' or datname like 'template\\_%'",
                )
                .fetch_all(&mut conn)
                .await
                .unwrap();
                for name in old.into_iter().filter(|name| !owner_alive(name)) {
                    sqlx::query(&format!(r#"drop database if exists "{name}" with (force)"#))
                        .execute(&mut conn)
                        .await
                        .unwrap();
                }
                sqlx::query(&format!("create database {}", template_db()))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let mut template =
                    PgConnection::connect_with(&postgres.connect_options(&template_db()))
                        .await
                        .unwrap();
                MIGRATOR.run(&mut template).await.expect("migrations apply");
                template.close().await.unwrap();
                conn.close().await.unwrap();
                Cluster { postgres, admin }
            })
        })
        .join()
        .expect("cluster setup")
    });
    let cluster = CLUSTER.get().unwrap();
    static REGISTERED: OnceLock<()> = OnceLock::new();
    REGISTERED.get_or_init(|| unsafe {
        atexit(stop_cluster_at_exit);
    });
    cluster
}

/// A fresh database for one test, cloned from the migrated template.
pub async fn fresh_database() -> (PgConnectOptions, PgPool) {
    let cluster = cluster();
    let name = format!(
        "test_{}_{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    let mut conn = PgConnection::connect_with(&cluster.admin).await.unwrap();
    sqlx::query(&format!(
        "create database {name} template {}",
        template_db()
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    let options = cluster.postgres.connect_options(&name);
    let pool = lien::db::pool_options()
        .connect_with(options.clone())
        .await
        .unwrap();
    (options, pool)
}

/// Configuration as `lien serve` would parse it, for an instance at `public_url`. No data
/// directory unless `extra` names one (`--data-dir`, for tests that store media).
pub fn config_for(public_url: &str, extra: &[&str]) -> Config {
    let mut args = vec!["lien", "--public-url", public_url];
    if !extra.contains(&"--data-dir") {
        args.extend_from_slice(&["--data-dir", "/nonexistent"]);
    }
    args.extend_from_slice(extra);
    args.push("serve");
    lien::cli::Cli::try_parse_from(args)
        .expect("test configuration parses")
        .config
}

/// A running lien on a fresh database.
pub struct TestApp {
    pub address: String,
    pub pool: PgPool,
    pub options: PgConnectOptions,
    /// The app's federation settings, to drive its delivery queue from a test.
    pub federation: lien::federation::FedConfig,
    server: actix_web::dev::ServerHandle,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(&[]).await
    }

    /// With extra command-line flags, e.g. `["--registration", "closed"]`.
    pub async fn spawn_with(extra: &[&str]) -> TestApp {
        let (options, pool) = fresh_database().await;
        Self::serve(options, pool, extra).await
    }

    /// Another server process on the same database: what a restart looks like.
    pub async fn restart(self) -> TestApp {
        self.server.stop(true).await;
        self.pool.close().await;
        let pool = lien::db::pool_options()
            .connect_with(self.options.clone())
            .await
            .unwrap();
        Self::serve(self.options, pool, &[]).await
    }

    /// A second server process on the same database, both running: what a scaled-out web tier
    /// looks like.
    pub async fn sibling(&self) -> TestApp {
        let pool = lien::db::pool_options()
            .connect_with(self.options.clone())
            .await
            .unwrap();
        Self::serve(self.options.clone(), pool, &[]).await
    }

    async fn serve(options: PgConnectOptions, pool: PgPool, extra: &[&str]) -> TestApp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // Host names, not IP literals: that is what federation needs too.
        let address = format!("http://localhost:{port}");
        let config = config_for(&address, extra);
        let state = lien::app_state(Db::single(pool.clone()), config);
        let federation = lien::federation::config(state).await.unwrap();
        let server = lien::http_server(listener, federation.clone()).unwrap();
        let handle = server.handle();
        tokio::spawn(server);
        TestApp {
            address,
            pool,
            options,
            federation,
            server: handle,
        }
    }

    /// A new visitor with their own cookie jar.
    pub fn browser(&self) -> Browser {
        Browser {
            address: self.address.clone(),
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(Policy::none())
                // The server closes connections idle for 5 s (actix's keep-alive); reusing one at
                // that moment fails the request (IncompleteMessage), which a loaded machine hits.
                .pool_idle_timeout(std::time::Duration::from_secs(2))
                .build()
                .unwrap(),
        }
    }

    /// A visitor who has signed up as `name` (password "correct horse").
    pub async fn user(&self, name: &str) -> Browser {
        let browser = self.browser();
        let response = browser.signup(name, "correct horse").await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "signup of {name}");
        browser
    }
}

/// A person's browser: cookies kept, redirects not followed (tests look at them).
pub struct Browser {
    pub address: String,
    pub client: reqwest::Client,
}

impl Browser {
    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap()
    }

    pub async fn page(&self, path: &str) -> Html {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        Html::parse_document(&response.text().await.unwrap())
    }

    /// The CSRF token a page gives its forms (and the cookie that goes with it).
    pub async fn csrf(&self) -> String {
        let page = self.page("/login").await;
        let token = select_attr(&page, "input[name=csrf]", "value");
        token
            .into_iter()
            .next()
            .expect("login form has a csrf field")
    }

    /// Posts a form the way a browser does, with the CSRF token.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let csrf = self.csrf().await;
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", &csrf));
        self.post_raw(path, &form).await
    }

    /// Posts exactly these fields, nothing added.
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.client
            .post(format!("{}{path}", self.address))
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    pub async fn signup(&self, name: &str, password: &str) -> Response {
        self.post("/signup", &[("name", name), ("password", password)])
            .await
    }

    /// Shares a link and returns the story id it lands on.
    pub async fn share(&self, url: &str, title: &str, tags: &str) -> i64 {
        let response = self
            .post("/submit", &[("url", url), ("title", title), ("tags", tags)])
            .await;
        story_id_from(&response)
    }

    pub async fn share_text(&self, title: &str, body: &str, tags: &str) -> i64 {
        let response = self
            .post(
                "/submit",
                &[("title", title), ("body", body), ("tags", tags)],
            )
            .await;
        story_id_from(&response)
    }

    /// Comments on a story (a reply when `parent` is set); returns the comment id.
    pub async fn comment(&self, story: i64, parent: Option<i64>, body: &str) -> i64 {
        let parent = parent.map(|p| p.to_string()).unwrap_or_default();
        let response = self
            .post(
                &format!("/s/{story}/comments"),
                &[("body", body), ("parent_id", &parent)],
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "comment on {story}"
        );
        let location = location(&response);
        location
            .rsplit_once("#c")
            .expect("redirect to the comment")
            .1
            .parse()
            .unwrap()
    }

    pub async fn vote(&self, path: &str, value: &str) -> Response {
        self.post(&format!("{path}/vote"), &[("value", value)])
            .await
    }
}

pub fn location(response: &Response) -> String {
    response
        .headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .unwrap()
        .to_owned()
}

fn story_id_from(response: &Response) -> i64 {
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "sharing redirects to the story"
    );
    let location = location(response);
    location
        .strip_prefix("/s/")
        .expect("redirect to /s/{id}")
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Values of one attribute of every element matching a CSS selector.
pub fn select_attr(html: &Html, selector: &str, attr: &str) -> Vec<String> {
    let selector = Selector::parse(selector).unwrap();
    html.select(&selector)
        .filter_map(|e| e.value().attr(attr).map(str::to_owned))
        .collect()
}

/// Text of every element matching a CSS selector.
pub fn select_text(html: &Html, selector: &str) -> Vec<String> {
    let selector = Selector::parse(selector).unwrap();
    html.select(&selector)
        .map(|e| e.text().collect::<String>().trim().to_owned())
        .collect()
}

/// The ids of the stories on a list page, in order.
pub async fn story_ids(browser: &Browser, path: &str) -> Vec<i64> {
    let page = browser.page(path).await;
    select_attr(&page, "article.story", "data-id")
        .iter()
        .map(|id| id.parse().unwrap())
        .collect()
}

/// Rows in a table, to prove that refused input stored nothing.
pub async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("select count(*) from {table}"))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Changes made around the app's own forms (straight into the database, as another process
/// would) reach its caches within two polls of its change counter (src/web/cache.rs): waits that
/// long, and a little more.
pub async fn caches_catch_up() {
    tokio::time::sleep(lien::cache::POLL * 3).await;
}
