//! The embedded PostgreSQL cluster lien runs when no `DATABASE_URL` is set.
//!
//! The cluster lives in `{data_dir}/postgres`, is created with the system's `initdb`, started and
//! stopped with `pg_ctl`, and listens only on a Unix socket in `{data_dir}/postgres-run`. Several
//! lien processes may share one data dir (a running `lien serve` and an admin's `lien user create`),
//! so every start/stop decision is taken under an exclusive lock on `{data_dir}/postgres.lock`, and
//! `{data_dir}/postgres.owner` records which process is responsible for stopping the cluster.
//!
//! `pg_ctl start` puts the postmaster in its own session and returns once it is ready, so the
//! cluster outlives the lien process that started it, even when that process is SIGKILLed. That is
//! why ownership is recorded in a file rather than tied to a child process: the next lien process
//! finds the cluster running, sees that its recorder is gone, and adopts it.
//!
//! Here: the public handle ([`EmbeddedPostgres`]: start, connect, create databases, stop) and its
//! errors. Beside it, by concern: `binaries` (finding initdb and pg_ctl), `data_dir` (the files, the
//! account PostgreSQL runs as, initdb), `ownership` (the lock, the owner record, live postmasters)
//! and `process` (pg_ctl start and stop).

use std::{
    ffi::OsString,
    fs::{self, File, OpenOptions},
    io::{self, Read, Seek, SeekFrom, Write},
    os::unix::fs::{chown, DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    process::{Output, Stdio},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use nix::{
    errno::Errno,
    sys::signal::kill,
    unistd::{getegid, geteuid, getpid, Gid, Pid, Uid, User},
};
use sqlx::{
    postgres::{PgConnectOptions, PgConnection, PgSslMode},
    Connection, Executor,
};
use tokio::process::Command;

/// The superuser initdb creates; lien connects as it.
const SUPERUSER: &str = "lien";
/// With `listen_addresses = ''` the port only names the socket file (`.s.PGSQL.5432`), so the
/// standard one cannot clash with a system PostgreSQL, whose socket lives in another directory.
const PORT: u16 = 5432;
/// The unprivileged account PostgreSQL runs under when lien runs as root.
const SERVICE_ACCOUNT: &str = "postgres";
/// How long `pg_ctl` may wait for the server to start or stop, and we for it to become ready.
const PG_CTL_TIMEOUT: Duration = Duration::from_secs(60);

/// What a process intends to do with the cluster, which decides whether it stops it at exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// A long-running process (`lien serve`, `lien worker`): it adopts a cluster whose recorder is
    /// gone or was only a borrower, and stops the cluster when it exits.
    Owner,
    /// A short command or a test: it uses a running cluster without taking it over, and stops the
    /// cluster at exit only if it started (or adopted) it and nobody took it over since.
    Borrower,
}

impl Claim {
    fn as_str(self) -> &'static str {
        match self {
            Claim::Owner => "owner",
            Claim::Borrower => "borrower",
        }
    }

    fn parse(word: &str) -> Option<Claim> {
        match word {
            "owner" => Some(Claim::Owner),
            "borrower" => Some(Claim::Borrower),
            _ => None,
        }
    }
}

/// Why the embedded cluster could not be set up, worded for the person running lien.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// Neither PATH nor /usr/lib/postgresql/*/bin has initdb and pg_ctl.
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH or under \
         /usr/lib/postgresql/*/bin. Install PostgreSQL (e.g. `apt-get install postgresql`) or set \
         DATABASE_URL to use an existing server."
    )]
    BinariesNotFound,
    /// The cluster was made by a major version whose binaries are not installed.
    #[error(
        "the embedded database in {pgdata} was created by PostgreSQL {cluster}, but the PostgreSQL \
         server binaries found are version {found}: install PostgreSQL {cluster} (e.g. \
         `apt-get install postgresql-{cluster}`) or upgrade the cluster with pg_upgrade"
    )]
    VersionMismatch {
        pgdata: PathBuf,
        cluster: String,
        found: String,
    },
    /// Running as root, and the unprivileged account to run PostgreSQL as does not exist.
    #[error(
        "lien is running as root and PostgreSQL refuses to run as root, so the embedded database \
         runs as the `{account}` system account, which does not exist: create it (e.g. \
         `useradd --system --home-dir /var/lib/postgresql --shell /bin/sh {account}`) or run lien \
         as a normal user"
    )]
    NoServiceAccount { account: String },
    /// Running as root, and PostgreSQL's account cannot search a directory on the way to the data.
    #[error(
        "the {account} account cannot reach {dir}: choose a LIEN_DATA_DIR it can traverse \
         (e.g. under /var/lib or /srv)"
    )]
    CannotReach { account: String, dir: PathBuf },
    /// The data dir is so deep that the socket path would not fit in `sun_path`.
    #[error(
        "the PostgreSQL socket path {path} is {len} bytes long, over the {MAX_SOCKET_PATH}-byte \
         limit of Unix socket paths: choose a shorter LIEN_DATA_DIR"
    )]
    SocketPathTooLong { path: PathBuf, len: usize },
    /// The data dir's path has characters pg_ctl's shell command or the config would mangle.
    #[error(
        "the data directory {path} cannot hold the embedded database because its path {reason}: \
         choose a LIEN_DATA_DIR with a plainer name"
    )]
    UnsupportedPath { path: PathBuf, reason: &'static str },
    /// A file or directory operation failed. The cause is part of the message (and not a
    /// `source`), so a log line showing only the top error still says what went wrong.
    #[error("{action}: {cause}")]
    Io { action: String, cause: io::Error },
    /// initdb or pg_ctl failed; `detail` has its message (and the end of the server log).
    #[error("{what} failed: {detail}")]
    CommandFailed { what: String, detail: String },
    /// A running server stayed in startup or shutdown too long.
    #[error("PostgreSQL did not become ready within {0:?}; see {1}")]
    NotReady(Duration, PathBuf),
    /// Talking to the cluster failed.
    #[error("{action}: {cause}")]
    Database { action: String, cause: sqlx::Error },
}

/// Builds the `map_err` closure for an I/O failure, naming what was being done.
fn io_error(action: impl Into<String>) -> impl FnOnce(io::Error) -> EmbeddedError {
    let action = action.into();
    move |cause| EmbeddedError::Io { action, cause }
}

/// A private PostgreSQL cluster inside lien's data dir.
///
/// Dropping the handle without calling [`EmbeddedPostgres::stop`] leaves the cluster running; the
/// next lien process to use the data dir finds it and adopts it.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    layout: Layout,
    binaries: Binaries,
    account: Account,
    /// Whether this handle started or adopted the cluster (and so may stop it).
    responsible: AtomicBool,
}

mod binaries;
mod data_dir;
mod ownership;
mod process;
#[cfg(test)]
mod tests;

use binaries::*;
use data_dir::*;
use ownership::*;
use process::*;

impl EmbeddedPostgres {
    /// Ensure the cluster exists (initdb on first use) and runs; reuse one that already runs.
    ///
    /// Binaries come from PATH, then from the highest version under /usr/lib/postgresql/*/bin; an
    /// existing cluster gets binaries of its own major version.
    pub async fn start(data_dir: &Path, claim: Claim) -> Result<EmbeddedPostgres, EmbeddedError> {
        Self::start_with(data_dir, claim, &BinarySearch::from_env(), SERVICE_ACCOUNT).await
    }

    /// [`EmbeddedPostgres::start`] with the binary search and the root fallback account given,
    /// so tests can point them at places that do not exist.
    async fn start_with(
        data_dir: &Path,
        claim: Claim,
        search: &BinarySearch,
        service_account: &str,
    ) -> Result<EmbeddedPostgres, EmbeddedError> {
        let pgdata_hint = data_dir.join("postgres");
        let binaries = find_binaries(
            search,
            cluster_major(&pgdata_hint)?.as_deref(),
            &pgdata_hint,
        )
        .await?;
        let layout = Layout::prepare(data_dir)?;
        let _lock = lock_exclusive(&layout.lock_file).await?;
        let account = cluster_account(&layout.pgdata, service_account)?;
        let cluster = EmbeddedPostgres {
            layout,
            binaries,
            account,
            responsible: AtomicBool::new(false),
        };
        match cluster.wait_for_running_postmaster().await? {
            Some(pid) => cluster.join_running(claim, pid)?,
            None => cluster.start_stopped(claim).await?,
        }
        Ok(cluster)
    }

    /// Options to connect to database `dbname` on this cluster over its Unix socket (user `lien`).
    pub fn connect_options(&self, dbname: &str) -> PgConnectOptions {
        // TLS is pointless on a local socket and PostgreSQL does not offer it there, so a
        // `PGSSLMODE=require` in the environment must not make the connection fail.
        PgConnectOptions::new_without_pgpass()
            .socket(&self.layout.socket_dir)
            .port(PORT)
            .username(SUPERUSER)
            .database(dbname)
            .ssl_mode(PgSslMode::Disable)
    }

    /// Create database `dbname` if it does not exist (connect to the `postgres` db to do it).
    pub async fn ensure_database(&self, dbname: &str) -> Result<(), EmbeddedError> {
        let sql_error = |action: &str| {
            let action = format!(
                "{action} (embedded PostgreSQL at {})",
                self.layout.socket_dir.display()
            );
            move |cause| EmbeddedError::Database { action, cause }
        };
        let mut conn = PgConnection::connect_with(&self.connect_options("postgres"))
            .await
            .map_err(sql_error("could not connect to the embedded PostgreSQL"))?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(dbname)
                .fetch_one(&mut conn)
                .await
                .map_err(sql_error("could not list databases"))?;
        if !exists {
            // A plain string runs over the simple protocol, outside any transaction block, as
            // CREATE DATABASE requires.
            let create = format!("CREATE DATABASE {}", quote_identifier(dbname));
            match conn.execute(create.as_str()).await {
                Ok(_) => tracing::info!(
                    database = dbname,
                    "created database in the embedded PostgreSQL"
                ),
                Err(error) if is_concurrent_create(&error) => {}
                Err(error) => {
                    return Err(sql_error(&format!("could not create database {dbname}"))(
                        error,
                    ))
                }
            }
        }
        // The database exists whatever happens to the goodbye message.
        let _ = conn.close().await;
        Ok(())
    }

    /// Stop the cluster if this process is responsible for it (see ownership); idempotent.
    ///
    /// Responsible means this handle started or adopted the cluster and `postgres.owner` still
    /// names this process: a `lien serve` that adopted it meanwhile keeps it running.
    pub async fn stop(&self) -> Result<(), EmbeddedError> {
        if !self.responsible.load(Ordering::SeqCst) {
            return Ok(());
        }
        let _lock = lock_exclusive(&self.layout.lock_file).await?;
        if !self.responsible.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        let recorded = read_owner_record(&self.layout.owner_file)?;
        if recorded.map(|record| record.pid) != Some(own_pid()) {
            tracing::debug!(
                "another lien process took over the embedded PostgreSQL; leaving it running"
            );
            return Ok(());
        }
        if self.running_postmaster()?.is_some() {
            if let Err(error) = self.pg_ctl_stop().await {
                self.responsible.store(true, Ordering::SeqCst);
                return Err(error);
            }
            tracing::info!(pgdata = %self.layout.pgdata.display(), "stopped the embedded PostgreSQL");
        }
        remove_if_exists(&self.layout.owner_file)
    }

    /// The directory holding the cluster's Unix socket (`.s.PGSQL.5432`).
    pub fn socket_dir(&self) -> &Path {
        &self.layout.socket_dir
    }
}

/// An SQL identifier in double quotes, so any database name is taken literally.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Another process created the same database between our check and our CREATE.
fn is_concurrent_create(error: &sqlx::Error) -> bool {
    let code = error.as_database_error().and_then(|db| db.code());
    matches!(code.as_deref(), Some("42P04" | "23505"))
}

fn remove_if_exists(path: &Path) -> Result<(), EmbeddedError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(io_error(format!("could not remove {}", path.display()))(
            error,
        )),
    }
}
