//! Whether the database answers. When a request finds it unreachable, the requests after it are
//! answered 503 at once (see `web::db_gate`) instead of each waiting for the pool's acquire
//! timeout, and one probe checks every second until it answers again.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use sqlx::PgPool;

/// How often the probe asks while the database is down.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Shared by every handler through [`super::Db`].
#[derive(Debug, Default)]
pub struct Availability {
    down: AtomicBool,
}

impl Availability {
    /// Whether the last word on the database was that it does not answer.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    /// Records that a request found the database unreachable, and starts the probe that clears
    /// it (once: later reports while it runs change nothing).
    pub fn report_down(self: &Arc<Self>, pool: &PgPool) {
        if self.down.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::warn!("the database does not answer; pages answer 503 until it does");
        let availability = self.clone();
        let pool = pool.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROBE_EVERY).await;
                let probe = sqlx::query("select 1").execute(&pool);
                if let Ok(Ok(_)) = tokio::time::timeout(PROBE_EVERY * 2, probe).await {
                    availability.down.store(false, Ordering::SeqCst);
                    tracing::info!("the database answers again");
                    return;
                }
            }
        });
    }
}

/// Whether `error` says the database cannot be reached (down, restarting, refusing connections),
/// rather than that one query was wrong.
pub fn is_unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        // Class 08: connection exceptions; 57P01-03: shutting down, crashed, starting up.
        sqlx::Error::Database(e) => e
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}
