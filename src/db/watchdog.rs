//! Starts the embedded cluster again when it died under a running lien (killed, out of memory):
//! without this, every page answered 503 until someone restarted lien. Meanwhile /readyz reports
//! the database unreachable, so no traffic is sent here.

use std::{path::PathBuf, time::Duration};

use sqlx::{postgres::PgConnectOptions, ConnectOptions, Connection};
use tokio::task::JoinHandle;

use super::embedded::{Claim, EmbeddedPostgres};

/// How often the cluster is checked.
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Checks that the cluster in `data_dir` accepts connections (`options`, to its `postgres`
/// database) every [`CHECK_EVERY`]; after three failed checks in a row it starts it again. The
/// caller aborts the task before it stops the cluster itself.
pub fn watch(data_dir: PathBuf, options: PgConnectOptions) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut failures = 0;
        loop {
            tokio::time::sleep(CHECK_EVERY).await;
            let check = tokio::time::timeout(CHECK_EVERY, options.connect()).await;
            match check {
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                    failures = 0;
                    continue;
                }
                Ok(Err(error)) if !super::availability::is_unreachable(&error) => {
                    // It answers, and says no (a full connection table): alive.
                    failures = 0;
                    continue;
                }
                _ => failures += 1,
            }
            // A cluster restarting by itself (after a backend crashed) is back within seconds.
            if failures < 3 {
                continue;
            }
            tracing::error!(
                data_dir = %data_dir.display(),
                "the embedded PostgreSQL is not running; starting it again"
            );
            // Started with the same claim as `serve`, so that lien stops it at exit as before.
            match EmbeddedPostgres::start(&data_dir, Claim::Owner).await {
                Ok(_) => {
                    tracing::warn!("the embedded PostgreSQL runs again");
                    failures = 0;
                }
                Err(error) => tracing::error!(%error, "could not start the embedded PostgreSQL"),
            }
        }
    })
}
