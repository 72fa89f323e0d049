//! The database: connection pools, migrations, the embedded cluster, and one module per table group.
//! Handlers and (later) inbox activities call the same functions here, so each piece of SQL lives once.

pub mod accounts;
pub mod actors;
pub mod availability;
pub mod comments;
pub mod communities;
pub mod embedded;
pub mod groups;
pub mod invitations;
pub mod login_failures;
pub mod moderation;
pub mod notifications;
pub mod peer_signatures;
pub mod previews;
pub mod quotes;
pub mod reading;
pub mod stories;
pub mod votes;
pub mod watchdog;

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    PgPool,
};

use crate::config::Config;
use embedded::{Claim, EmbeddedPostgres};

/// The migrations in migrations/, compiled into the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Name of the database lien uses inside its embedded cluster.
pub const EMBEDDED_DATABASE: &str = "lien";

/// Pools for writes (and reads inside writes) and for page reads, which may go to a replica.
#[derive(Clone, Debug)]
pub struct Db {
    pub write: PgPool,
    pub read: PgPool,
    /// Whether the database answers, as the last request to find out saw it.
    pub availability: Arc<availability::Availability>,
}

impl Db {
    /// One pool serves both when there is no replica.
    pub fn single(pool: PgPool) -> Db {
        Db::new(pool.clone(), pool)
    }

    pub fn new(write: PgPool, read: PgPool) -> Db {
        Db {
            write,
            read,
            availability: Default::default(),
        }
    }
}

/// A small pool, but not too small: a commit holds its connection until the WAL reaches the disk
/// (3.7 ms per flush on the benchmark machine), and inbox and delivery commit often. 16 took the
/// inbox benchmark from 300 to 430 activities/s over 8 (bench/README.md, "Federation").
/// A request waits at most 3 s for a connection: with the database down, the first request to
/// find out answers 503 after that, and those after it at once (see [`availability`]).
pub fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(ACQUIRE_TIMEOUT)
}

/// How long a query waits for a pool connection before the database counts as unreachable.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// Where the database is: an external server, or the embedded cluster this process may have started.
pub struct Database {
    pub db: Db,
    pub embedded: Option<EmbeddedPostgres>,
    /// The task that starts the embedded cluster again if it dies ([`Database::watch_embedded`]).
    watchdog: Option<tokio::task::JoinHandle<()>>,
}

impl Database {
    /// Connects as the configuration says, starting the embedded cluster when no DATABASE_URL is
    /// set, and applies pending migrations.
    pub async fn open(config: &Config, claim: Claim) -> anyhow::Result<Database> {
        let (write_options, embedded) = match &config.database_url {
            Some(url) => (
                url.parse::<PgConnectOptions>()
                    .context("DATABASE_URL is not a valid PostgreSQL URL")?,
                None,
            ),
            None => {
                let cluster = EmbeddedPostgres::start(&config.data_dir, claim).await?;
                cluster.ensure_database(EMBEDDED_DATABASE).await?;
                (cluster.connect_options(EMBEDDED_DATABASE), Some(cluster))
            }
        };
        let write = pool_options()
            .connect_with(write_options)
            .await
            .context("could not connect to the database")?;
        MIGRATOR
            .run(&write)
            .await
            .context("could not apply the database migrations")?;
        let read = match &config.database_read_url {
            Some(url) => pool_options()
                .connect_with(
                    url.parse()
                        .context("DATABASE_READ_URL is not a valid PostgreSQL URL")?,
                )
                .await
                .context("could not connect to the read replica")?,
            None => write.clone(),
        };
        Ok(Database {
            db: Db::new(write, read),
            embedded,
            watchdog: None,
        })
    }

    /// For long-running processes on the embedded cluster: starts it again when it dies.
    pub fn watch_embedded(&mut self, data_dir: &Path) {
        if let Some(cluster) = &self.embedded {
            self.watchdog = Some(watchdog::watch(
                data_dir.to_owned(),
                cluster.connect_options("postgres"),
            ));
        }
    }

    /// Closes the pools, then stops the embedded cluster if this process is responsible for it.
    pub async fn close(self) {
        // The watchdog must not start again the cluster being stopped here.
        if let Some(watchdog) = &self.watchdog {
            watchdog.abort();
        }
        self.db.write.close().await;
        self.db.read.close().await;
        if let Some(cluster) = self.embedded {
            if let Err(error) = cluster.stop().await {
                tracing::error!(%error, "could not stop the embedded PostgreSQL cluster");
            }
        }
    }
}
