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
/// Where Debian and Ubuntu install each major version's server binaries (`{LIB_ROOT}/15/bin`).
const LIB_ROOT: &str = "/usr/lib/postgresql";
/// `sun_path` holds 108 bytes, one of which is the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;
/// How long `pg_ctl` may wait for the server to start or stop, and we for it to become ready.
const PG_CTL_TIMEOUT: Duration = Duration::from_secs(60);
/// A log grown past this is moved to `postgres.log.1` at the next start, so it cannot fill the disk.
const LOG_ROTATE_BYTES: u64 = 16 * 1024 * 1024;
/// The line lien adds to postgresql.conf; `lien.conf` is rewritten at every start.
const INCLUDE_LINE: &str = "include = 'lien.conf'";

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

    /// Uses (or takes over) a cluster that is already running, following the owner record.
    fn join_running(&self, claim: Claim, pid: i32) -> Result<(), EmbeddedError> {
        let record = read_owner_record(&self.layout.owner_file)?;
        let me = own_pid();
        match decide_join(record, me, claim, process_alive) {
            Join::Borrow => {
                tracing::debug!(postmaster = pid, "using the running embedded PostgreSQL");
            }
            Join::Promote => {
                write_owner_record(&self.layout.owner_file, OwnerRecord { pid: me, claim })?;
            }
            Join::Adopt => {
                tracing::info!(postmaster = pid, "adopting the running embedded PostgreSQL");
                write_owner_record(&self.layout.owner_file, OwnerRecord { pid: me, claim })?;
                self.responsible.store(true, Ordering::SeqCst);
            }
        }
        Ok(())
    }

    /// Creates the cluster if needed, clears what a crash left behind, and starts it.
    async fn start_stopped(&self, claim: Claim) -> Result<(), EmbeddedError> {
        self.check_account_reaches_data_dir().await?;
        self.ensure_initialized().await?;
        self.clear_stale_state()?;
        self.prepare_runtime_files()?;
        self.pg_ctl_start().await?;
        write_owner_record(
            &self.layout.owner_file,
            OwnerRecord {
                pid: own_pid(),
                claim,
            },
        )?;
        self.responsible.store(true, Ordering::SeqCst);
        tracing::info!(pgdata = %self.layout.pgdata.display(), "started the embedded PostgreSQL");
        Ok(())
    }

    /// The pid of this cluster's live postmaster, if one runs (no waiting).
    fn running_postmaster(&self) -> Result<Option<i32>, EmbeddedError> {
        let pid_file = read_pid_file(&self.layout.pgdata)?;
        Ok(pid_file
            .filter(|pid_file| is_live_postmaster(pid_file.pid, &self.layout.pgdata))
            .map(|pid_file| pid_file.pid))
    }

    /// The pid of this cluster's live postmaster once it is ready to accept connections, or None
    /// if none runs. A postmaster still starting (crash recovery) or stopping is waited for.
    async fn wait_for_running_postmaster(&self) -> Result<Option<i32>, EmbeddedError> {
        let deadline = Instant::now() + PG_CTL_TIMEOUT;
        loop {
            let Some(pid_file) = read_pid_file(&self.layout.pgdata)? else {
                return Ok(None);
            };
            if !is_live_postmaster(pid_file.pid, &self.layout.pgdata) {
                return Ok(None);
            }
            if matches!(pid_file.status.as_deref(), Some("ready" | "standby")) {
                return Ok(Some(pid_file.pid));
            }
            if Instant::now() >= deadline {
                return Err(EmbeddedError::NotReady(
                    PG_CTL_TIMEOUT,
                    self.layout.log_file.clone(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// As root, PostgreSQL runs under another account, which needs search permission on every
    /// directory down to the data dir; finding out here beats a cryptic "permission denied" later.
    async fn check_account_reaches_data_dir(&self) -> Result<(), EmbeddedError> {
        if !self.account.switch {
            return Ok(());
        }
        if self.account_can_traverse(&self.layout.data_dir).await? {
            return Ok(());
        }
        let mut blocked = self.layout.data_dir.clone();
        let mut ancestors: Vec<&Path> = self.layout.data_dir.ancestors().collect();
        ancestors.reverse();
        for dir in ancestors {
            if !self.account_can_traverse(dir).await? {
                blocked = dir.to_path_buf();
                break;
            }
        }
        Err(EmbeddedError::CannotReach {
            account: self.account.name.clone(),
            dir: blocked,
        })
    }

    /// Whether the cluster's account can search `dir` (and so everything on the way to it).
    async fn account_can_traverse(&self, dir: &Path) -> Result<bool, EmbeddedError> {
        let status = self
            .account
            .command(Path::new("test"), &self.layout.pgdata)
            .arg("-x")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .map_err(io_error(
                "could not run `test` to check directory permissions",
            ))?;
        Ok(status.success())
    }

    /// Runs initdb unless the cluster exists.
    ///
    /// initdb writes into a scratch dir that is renamed into place only once complete, so
    /// `postgres/` is either a whole cluster or absent. A `postgres/` without PG_VERSION cannot be
    /// a cluster PostgreSQL ever ran (the server refuses to start without that file), so nothing of
    /// value can be lost by redoing it; it is moved aside rather than deleted in case it is
    /// somebody's unrelated files.
    async fn ensure_initialized(&self) -> Result<(), EmbeddedError> {
        let pgdata = &self.layout.pgdata;
        if has_pg_version(pgdata)? {
            return Ok(());
        }
        self.set_aside_incomplete_cluster()?;
        let scratch = &self.layout.initdb_scratch;
        if scratch.exists() {
            // Only initdb ever writes here: this is a previous run that was interrupted.
            fs::remove_dir_all(scratch).map_err(io_error(format!(
                "could not remove the interrupted initdb in {}",
                scratch.display()
            )))?;
        }
        self.create_private_dir(scratch)?;
        self.run_initdb(scratch).await?;
        fs::rename(scratch, pgdata).map_err(io_error(format!(
            "could not move the new cluster from {} to {}",
            scratch.display(),
            pgdata.display()
        )))?;
        tracing::info!(pgdata = %pgdata.display(), "created the embedded PostgreSQL cluster");
        Ok(())
    }

    /// Clears the way for a fresh `postgres/`: an empty dir is removed, anything else is renamed
    /// to `postgres.incomplete-{seconds}`.
    fn set_aside_incomplete_cluster(&self) -> Result<(), EmbeddedError> {
        let pgdata = &self.layout.pgdata;
        let mut entries = match fs::read_dir(pgdata) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => {
                return Err(io_error(format!("could not read {}", pgdata.display()))(
                    error,
                ))
            }
        };
        if entries.next().is_none() {
            return fs::remove_dir(pgdata).map_err(io_error(format!(
                "could not remove empty {}",
                pgdata.display()
            )));
        }
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs())
            .unwrap_or_default();
        let aside = self
            .layout
            .data_dir
            .join(format!("postgres.incomplete-{seconds}"));
        tracing::warn!(
            from = %pgdata.display(),
            to = %aside.display(),
            "the embedded PostgreSQL dir has no PG_VERSION (an initdb that was interrupted?); \
             moving it aside and creating a fresh cluster"
        );
        fs::rename(pgdata, &aside).map_err(io_error(format!(
            "could not move {} aside to {}",
            pgdata.display(),
            aside.display()
        )))
    }

    /// Runs initdb into `target`, falling back to the C locale where C.UTF-8 is not installed.
    async fn run_initdb(&self, target: &Path) -> Result<(), EmbeddedError> {
        match self.initdb_once(target, "--locale=C.UTF-8").await {
            Err(EmbeddedError::CommandFailed { detail, .. }) if detail.contains("locale") => {
                tracing::warn!(
                    "the C.UTF-8 locale is not available; creating the cluster with the C locale"
                );
                fs::remove_dir_all(target)
                    .map_err(io_error(format!("could not clear {}", target.display())))?;
                self.create_private_dir(target)?;
                self.initdb_once(target, "--no-locale").await
            }
            other => other,
        }
    }

    /// One initdb run.
    ///
    /// Trust authentication is safe here because the only way in is the Unix socket, whose
    /// directory is mode 0700 and owned by the cluster's OS account: only that account (which can
    /// read the data files anyway) and root can connect. TCP is refused outright in pg_hba.conf
    /// too, should anyone turn `listen_addresses` on.
    async fn initdb_once(&self, target: &Path, locale: &str) -> Result<(), EmbeddedError> {
        let mut command = self.account.command(&self.binaries.initdb, target);
        command
            .arg("--pgdata")
            .arg(target)
            .arg("--username")
            .arg(SUPERUSER)
            .args([
                "--auth-local=trust",
                "--auth-host=reject",
                "--encoding=UTF8",
                locale,
            ]);
        run(command, "initdb (creating the embedded PostgreSQL cluster)")
            .await
            .map(drop)
    }

    /// Removes what a postmaster that died without cleaning up (crash, reboot, SIGKILL) left:
    /// PostgreSQL refuses to start while postmaster.pid or the socket lock names a live pid, and
    /// after a reboot that pid may belong to some unrelated process. Called only when no
    /// postmaster of this cluster runs, so nothing here is in use.
    fn clear_stale_state(&self) -> Result<(), EmbeddedError> {
        let pid_file = self.layout.pgdata.join("postmaster.pid");
        if pid_file.exists() {
            tracing::warn!(file = %pid_file.display(), "removing a stale postmaster.pid left by a crash");
            remove_if_exists(&pid_file)?;
        }
        let entries = match fs::read_dir(&self.layout.socket_dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => {
                return Err(io_error(format!(
                    "could not read {}",
                    self.layout.socket_dir.display()
                ))(error))
            }
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".s.PGSQL.") {
                remove_if_exists(&entry.path())?;
            }
        }
        Ok(())
    }

    /// Creates the socket dir and log file for the cluster's account and writes `lien.conf`,
    /// which pins where the server listens (rewritten each start, so a moved data dir works).
    fn prepare_runtime_files(&self) -> Result<(), EmbeddedError> {
        self.create_private_dir(&self.layout.socket_dir)?;
        self.prepare_log_file()?;
        let conf = self.layout.pgdata.join("lien.conf");
        let socket_dir = self
            .layout
            .socket_dir
            .to_str()
            .ok_or(EmbeddedError::UnsupportedPath {
                path: self.layout.data_dir.clone(),
                reason: "is not valid UTF-8",
            })?;
        let contents = format!(
            "# Written by lien at every start of the embedded cluster: edits here are lost.\n\
             # The server listens only on its Unix socket, in a directory only its account can enter.\n\
             listen_addresses = ''\n\
             port = {PORT}\n\
             unix_socket_directories = {}\n\
             unix_socket_permissions = 0700\n",
            conf_string(&socket_directory_list_item(socket_dir))
        );
        self.write_account_file(&conf, &contents)?;
        ensure_include_line(&self.layout.pgdata.join("postgresql.conf"))
    }

    /// Rotates an oversized log and makes sure the cluster's account can append to it.
    fn prepare_log_file(&self) -> Result<(), EmbeddedError> {
        let log = &self.layout.log_file;
        if fs::metadata(log)
            .map(|meta| meta.len() > LOG_ROTATE_BYTES)
            .unwrap_or(false)
        {
            let old = log.with_extension("log.1");
            fs::rename(log, &old)
                .map_err(io_error(format!("could not rotate {}", log.display())))?;
        }
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(log)
            .map_err(io_error(format!("could not create {}", log.display())))?;
        self.give_to_account(log)
    }

    /// Creates `dir` (mode 0700) if needed, owned by the cluster's account, and tightens its mode.
    fn create_private_dir(&self, dir: &Path) -> Result<(), EmbeddedError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_error(format!("could not create {}", dir.display())))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_error(format!(
            "could not set the mode of {}",
            dir.display()
        )))?;
        self.give_to_account(dir)
    }

    /// Writes a file (mode 0600) the cluster's account must be able to read.
    fn write_account_file(&self, path: &Path, contents: &str) -> Result<(), EmbeddedError> {
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(io_error(format!("could not write {}", path.display())))?;
        file.write_all(contents.as_bytes())
            .map_err(io_error(format!("could not write {}", path.display())))?;
        self.give_to_account(path)
    }

    /// chowns `path` to the cluster's account when that is not the current user (running as root).
    fn give_to_account(&self, path: &Path) -> Result<(), EmbeddedError> {
        if !self.account.switch {
            return Ok(());
        }
        chown(
            path,
            Some(self.account.uid.as_raw()),
            Some(self.account.gid.as_raw()),
        )
        .map_err(io_error(format!(
            "could not give {} to the {} account",
            path.display(),
            self.account.name
        )))
    }

    /// `pg_ctl start`, waiting until the server accepts connections.
    async fn pg_ctl_start(&self) -> Result<(), EmbeddedError> {
        let mut command = self
            .account
            .command(&self.binaries.pg_ctl, &self.layout.pgdata);
        command
            .arg("start")
            .arg("--pgdata")
            .arg(&self.layout.pgdata)
            .arg("--log")
            .arg(&self.layout.log_file)
            .arg("--wait")
            .arg(format!("--timeout={}", PG_CTL_TIMEOUT.as_secs()))
            .arg("--silent");
        match run(command, "pg_ctl start (starting the embedded PostgreSQL)").await {
            Ok(_) => Ok(()),
            Err(EmbeddedError::CommandFailed { what, detail }) => {
                Err(EmbeddedError::CommandFailed {
                    what,
                    detail: format!(
                        "{detail}\nlast lines of {}:\n{}",
                        self.layout.log_file.display(),
                        log_tail(&self.layout.log_file, 20)
                    ),
                })
            }
            Err(other) => Err(other),
        }
    }

    /// `pg_ctl stop -m fast`: disconnects clients, checkpoints, and waits for the server to exit.
    async fn pg_ctl_stop(&self) -> Result<(), EmbeddedError> {
        let mut command = self
            .account
            .command(&self.binaries.pg_ctl, &self.layout.pgdata);
        command
            .arg("stop")
            .arg("--pgdata")
            .arg(&self.layout.pgdata)
            .args(["--mode=fast", "--wait", "--silent"])
            .arg(format!("--timeout={}", PG_CTL_TIMEOUT.as_secs()));
        run(command, "pg_ctl stop (stopping the embedded PostgreSQL)")
            .await
            .map(drop)
    }
}

/// The files and directories of one data dir.
#[derive(Clone, Debug)]
struct Layout {
    data_dir: PathBuf,
    pgdata: PathBuf,
    initdb_scratch: PathBuf,
    socket_dir: PathBuf,
    log_file: PathBuf,
    lock_file: PathBuf,
    owner_file: PathBuf,
}

impl Layout {
    /// The layout under an absolute, symlink-free `data_dir` (so the socket path is as short as
    /// it can be and `/proc/{pid}/cwd` can be compared with it).
    fn new(data_dir: PathBuf) -> Layout {
        Layout {
            pgdata: data_dir.join("postgres"),
            initdb_scratch: data_dir.join("postgres.initdb-tmp"),
            socket_dir: data_dir.join("postgres-run"),
            log_file: data_dir.join("postgres.log"),
            lock_file: data_dir.join("postgres.lock"),
            owner_file: data_dir.join("postgres.owner"),
            data_dir,
        }
    }

    /// Creates the data dir if needed and checks its path suits PostgreSQL.
    fn prepare(data_dir: &Path) -> Result<Layout, EmbeddedError> {
        fs::create_dir_all(data_dir)
            .map_err(io_error(format!("could not create {}", data_dir.display())))?;
        let data_dir = fs::canonicalize(data_dir).map_err(io_error(format!(
            "could not resolve {}",
            data_dir.display()
        )))?;
        check_path_is_plain(&data_dir)?;
        let layout = Layout::new(data_dir);
        layout.check_socket_path_length()?;
        Ok(layout)
    }

    /// The socket file PostgreSQL creates, whose full path must fit in `sun_path`.
    fn socket_file(&self) -> PathBuf {
        self.socket_dir.join(format!(".s.PGSQL.{PORT}"))
    }

    fn check_socket_path_length(&self) -> Result<(), EmbeddedError> {
        let path = self.socket_file();
        let len = path.as_os_str().len();
        if len > MAX_SOCKET_PATH {
            return Err(EmbeddedError::SocketPathTooLong { path, len });
        }
        Ok(())
    }
}

/// pg_ctl hands `-D` and `-l` to a shell inside double quotes, and the socket dir goes into a
/// config string, so characters that are special there would break the server's start.
fn check_path_is_plain(path: &Path) -> Result<(), EmbeddedError> {
    let unsupported = |reason| EmbeddedError::UnsupportedPath {
        path: path.to_path_buf(),
        reason,
    };
    let text = path
        .to_str()
        .ok_or_else(|| unsupported("is not valid UTF-8"))?;
    if text
        .chars()
        .any(|c| matches!(c, '"' | '$' | '`' | '\\') || c.is_control())
    {
        return Err(unsupported(
            "contains a quote, $, backtick, backslash or control character",
        ));
    }
    Ok(())
}

/// Where to look for the server binaries.
#[derive(Clone, Debug)]
struct BinarySearch {
    /// A PATH-style list of directories.
    path: Option<OsString>,
    /// The directory holding one `{version}/bin` per installed major version.
    lib_root: PathBuf,
}

impl BinarySearch {
    fn from_env() -> BinarySearch {
        BinarySearch {
            path: std::env::var_os("PATH"),
            lib_root: PathBuf::from(LIB_ROOT),
        }
    }
}

/// The server binaries lien drives (pg_ctl finds `postgres` beside itself).
#[derive(Clone, Debug)]
struct Binaries {
    initdb: PathBuf,
    pg_ctl: PathBuf,
}

impl Binaries {
    fn in_dir(dir: &Path) -> Binaries {
        Binaries {
            initdb: dir.join("initdb"),
            pg_ctl: dir.join("pg_ctl"),
        }
    }
}

/// Picks the server binaries: the first candidate directory, or, for an existing cluster, the
/// first one whose major version matches the cluster's (a server refuses another major's files).
async fn find_binaries(
    search: &BinarySearch,
    cluster_major: Option<&str>,
    pgdata: &Path,
) -> Result<Binaries, EmbeddedError> {
    let candidates = candidate_bin_dirs(search);
    let Some(first) = candidates.first() else {
        return Err(EmbeddedError::BinariesNotFound);
    };
    let Some(wanted) = cluster_major else {
        return Ok(Binaries::in_dir(first));
    };
    let mut found = Vec::new();
    for dir in &candidates {
        let major = binaries_major(dir).await?;
        if major == wanted {
            return Ok(Binaries::in_dir(dir));
        }
        if !found.contains(&major) {
            found.push(major);
        }
    }
    Err(EmbeddedError::VersionMismatch {
        pgdata: pgdata.to_path_buf(),
        cluster: wanted.to_string(),
        found: found.join(", "),
    })
}

/// Directories holding both initdb and pg_ctl: PATH entries in order, then
/// `{lib_root}/{version}/bin`, highest version first.
fn candidate_bin_dirs(search: &BinarySearch) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = search
        .path
        .as_deref()
        .map(|path| {
            std::env::split_paths(path)
                .filter(|dir| dir.is_absolute() && has_server_binaries(dir))
                .collect()
        })
        .unwrap_or_default();
    let mut versioned: Vec<(Vec<u32>, PathBuf)> = fs::read_dir(&search.lib_root)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| {
                    let key = version_key(entry.file_name().to_str()?)?;
                    let bin = entry.path().join("bin");
                    has_server_binaries(&bin).then_some((key, bin))
                })
                .collect()
        })
        .unwrap_or_default();
    versioned.sort_by(|a, b| b.0.cmp(&a.0));
    dirs.extend(versioned.into_iter().map(|(_, dir)| dir));
    dirs
}

/// "15" → [15], "9.6" → [9, 6]; None for names that are not versions.
fn version_key(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

fn has_server_binaries(dir: &Path) -> bool {
    is_executable_file(&dir.join("initdb")) && is_executable_file(&dir.join("pg_ctl"))
}

fn is_executable_file(path: &Path) -> bool {
    fs::metadata(path)
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The major version of the binaries in `dir`, as PG_VERSION spells it ("15", or "9.6").
async fn binaries_major(dir: &Path) -> Result<String, EmbeddedError> {
    let pg_ctl = dir.join("pg_ctl");
    // `--version` is answered before pg_ctl's refusal to run as root, so no account switch.
    let mut command = Command::new(&pg_ctl);
    command.arg("--version").stdin(Stdio::null());
    let output = run(command, &format!("{} --version", pg_ctl.display())).await?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse_major_version(&text).ok_or_else(|| EmbeddedError::CommandFailed {
        what: format!("{} --version", pg_ctl.display()),
        detail: format!("unexpected answer {:?}", text.trim()),
    })
}

/// "pg_ctl (PostgreSQL) 15.8 (Debian 15.8-1)" → "15"; "pg_ctl (PostgreSQL) 9.6.24" → "9.6".
fn parse_major_version(version_output: &str) -> Option<String> {
    let version = version_output
        .split("(PostgreSQL)")
        .nth(1)?
        .split_whitespace()
        .next()?;
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let first: u32 = parts.next()?.parse().ok()?;
    if first >= 10 {
        return Some(first.to_string());
    }
    let second: u32 = parts.next()?.parse().ok()?;
    Some(format!("{first}.{second}"))
}

/// The major version recorded in an existing cluster's PG_VERSION, if there is a cluster.
fn cluster_major(pgdata: &Path) -> Result<Option<String>, EmbeddedError> {
    let file = pgdata.join("PG_VERSION");
    match fs::read_to_string(&file) {
        Ok(text) => Ok(Some(text.trim().to_string())),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(io_error(format!("could not read {}", file.display()))(
            error,
        )),
    }
}

/// Whether `pgdata` holds a cluster; an unreadable dir is an error, not a "no".
fn has_pg_version(pgdata: &Path) -> Result<bool, EmbeddedError> {
    let file = pgdata.join("PG_VERSION");
    match fs::metadata(&file) {
        Ok(_) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(io_error(format!("could not check {}", file.display()))(
            error,
        )),
    }
}

/// The OS account the cluster runs as.
#[derive(Clone, Debug)]
struct Account {
    name: String,
    uid: Uid,
    gid: Gid,
    home: PathBuf,
    /// Whether commands must switch to this account (lien runs as root).
    switch: bool,
}

impl Account {
    fn from_user(user: User, switch: bool) -> Account {
        Account {
            name: user.name,
            uid: user.uid,
            gid: user.gid,
            home: user.dir,
            switch,
        }
    }

    /// A command for a PostgreSQL program, run as this account.
    ///
    /// Setting the uid as root also drops root's supplementary groups (std calls setgroups), so
    /// the server gets nothing of root's. `LC_ALL=C` keeps messages in English (lien matches on
    /// them, and self-hosters paste them into bug reports); the cluster's own locale comes from
    /// initdb's `--locale`. PGPORT is removed because the server would take it as its default port.
    fn command(&self, program: &Path, pgdata: &Path) -> Command {
        let mut command = Command::new(program);
        if self.switch {
            command
                .uid(self.uid.as_raw())
                .gid(self.gid.as_raw())
                .env("USER", &self.name)
                .env("LOGNAME", &self.name);
        }
        command
            .current_dir("/")
            .env("HOME", &self.home)
            .env("PGDATA", pgdata)
            .env("LC_ALL", "C")
            .env_remove("PGPORT")
            .stdin(Stdio::null());
        command
    }
}

/// Chooses the account to run PostgreSQL as: the current user, unless that is root, which
/// PostgreSQL refuses to run as. Root uses the owner of an existing cluster (it may have been made
/// by lien running as a normal user), or else the `service_account` (normally `postgres`).
fn cluster_account(pgdata: &Path, service_account: &str) -> Result<Account, EmbeddedError> {
    let euid = geteuid();
    if !euid.is_root() {
        return Ok(current_user_account(euid));
    }
    if let Ok(meta) = fs::metadata(pgdata) {
        if meta.uid() != 0 {
            return Ok(account_for_uid(
                Uid::from_raw(meta.uid()),
                Gid::from_raw(meta.gid()),
            ));
        }
    }
    match User::from_name(service_account) {
        Ok(Some(user)) if !user.uid.is_root() => Ok(Account::from_user(user, true)),
        _ => Err(EmbeddedError::NoServiceAccount {
            account: service_account.to_string(),
        }),
    }
}

fn current_user_account(euid: Uid) -> Account {
    match User::from_uid(euid) {
        Ok(Some(user)) => Account::from_user(user, false),
        _ => Account {
            name: euid.to_string(),
            uid: euid,
            gid: getegid(),
            home: std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/")),
            switch: false,
        },
    }
}

/// The account owning an existing cluster, even one without a passwd entry (a volume from
/// another machine).
fn account_for_uid(uid: Uid, gid: Gid) -> Account {
    match User::from_uid(uid) {
        Ok(Some(user)) => Account::from_user(user, true),
        _ => Account {
            name: uid.to_string(),
            uid,
            gid,
            home: PathBuf::from("/"),
            switch: true,
        },
    }
}

/// Takes the data dir's start/stop lock, waiting for other lien processes to finish theirs.
/// The lock is released when the returned file is dropped.
async fn lock_exclusive(path: &Path) -> Result<File, EmbeddedError> {
    let path = path.to_path_buf();
    let action = format!("could not lock {}", path.display());
    let locked = tokio::task::spawn_blocking(move || {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)?;
        file.lock()?;
        Ok::<File, io::Error>(file)
    })
    .await
    .map_err(|join| io::Error::other(join.to_string()))
    .and_then(|result| result);
    locked.map_err(io_error(action))
}

/// Who last took responsibility for the running cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct OwnerRecord {
    pid: i32,
    claim: Claim,
}

/// Reads `postgres.owner` ("{pid} {owner|borrower}"); a missing or garbled file means nobody.
fn read_owner_record(path: &Path) -> Result<Option<OwnerRecord>, EmbeddedError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(io_error(format!("could not read {}", path.display()))(
                error,
            ))
        }
    };
    let mut words = text.split_whitespace();
    let pid = words.next().and_then(|word| word.parse().ok());
    let claim = words.next().and_then(Claim::parse);
    Ok(pid
        .zip(claim)
        .map(|(pid, claim)| OwnerRecord { pid, claim }))
}

/// Replaces `postgres.owner` atomically, so a reader never sees half a record.
fn write_owner_record(path: &Path, record: OwnerRecord) -> Result<(), EmbeddedError> {
    let tmp = path.with_extension("owner.tmp");
    let action = format!("could not write {}", path.display());
    fs::write(&tmp, format!("{} {}\n", record.pid, record.claim.as_str()))
        .map_err(io_error(action.clone()))?;
    fs::rename(&tmp, path).map_err(io_error(action))
}

/// What a process does with a cluster it finds running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Join {
    /// Use it; never stop it.
    Borrow,
    /// Same process, now as Owner: record that, so other processes borrow rather than adopt;
    /// the handle that started it stays the one that stops it.
    Promote,
    /// Record this process as responsible, and stop the cluster at exit.
    Adopt,
}

/// The ownership rules for a running cluster.
fn decide_join(
    record: Option<OwnerRecord>,
    me: i32,
    claim: Claim,
    is_alive: impl Fn(i32) -> bool,
) -> Join {
    let Some(record) = record else {
        // Started by hand, or lien died between starting it and recording itself.
        return Join::Adopt;
    };
    if record.pid == me {
        return if claim == Claim::Owner && record.claim == Claim::Borrower {
            Join::Promote
        } else {
            Join::Borrow
        };
    }
    if !is_alive(record.pid) {
        // Its lien was SIGKILLed or crashed; the cluster outlived it.
        return Join::Adopt;
    }
    match (record.claim, claim) {
        (Claim::Borrower, Claim::Owner) => Join::Adopt,
        _ => Join::Borrow,
    }
}

fn own_pid() -> i32 {
    getpid().as_raw()
}

/// Whether a process with this pid exists (EPERM means it does, under another user).
fn process_alive(pid: i32) -> bool {
    pid > 0 && matches!(kill(Pid::from_raw(pid), None), Ok(()) | Err(Errno::EPERM))
}

/// What postmaster.pid says: the pid (line 1) and, once written, the status (line 8).
#[derive(Clone, Debug, PartialEq, Eq)]
struct PidFile {
    pid: i32,
    status: Option<String>,
}

fn read_pid_file(pgdata: &Path) -> Result<Option<PidFile>, EmbeddedError> {
    let path = pgdata.join("postmaster.pid");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(io_error(format!("could not read {}", path.display()))(
                error,
            ))
        }
    };
    Ok(parse_pid_file(&text))
}

/// A pid file cut short by a crash (no valid pid) is treated like a stale one.
fn parse_pid_file(text: &str) -> Option<PidFile> {
    let mut lines = text.lines();
    let pid = lines.next()?.trim().parse().ok()?;
    let status = lines
        .nth(6)
        .map(|line| line.trim().to_string())
        .filter(|line| !line.is_empty());
    Some(PidFile { pid, status })
}

/// Whether `pid` is a live postmaster serving `pgdata`, not a stale number in postmaster.pid.
///
/// After a reboot the pid may belong to anything, even another cluster's postgres, so the
/// process must be named postgres and have its working directory in `pgdata` (the postmaster
/// chdirs there). A zombie counts as dead: when lien runs as PID 1 in a container, the postmaster
/// it orphaned is reparented to lien, which does not reap it.
fn is_live_postmaster(pid: i32, pgdata: &Path) -> bool {
    if !process_alive(pid) {
        return false;
    }
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    if !Path::new("/proc/self").exists() {
        // No procfs to ask: trust the pid, as pg_ctl itself does.
        return true;
    }
    if is_zombie(&proc_dir) {
        return false;
    }
    let comm = fs::read_to_string(proc_dir.join("comm")).unwrap_or_default();
    if !matches!(comm.trim(), "postgres" | "postmaster") {
        return false;
    }
    let cwd = fs::read_link(proc_dir.join("cwd")).ok();
    let pgdata = fs::canonicalize(pgdata).unwrap_or_else(|_| pgdata.to_path_buf());
    cwd.as_deref() == Some(pgdata.as_path())
}

/// The state letter of `/proc/{pid}/stat` follows the parenthesised command name.
fn is_zombie(proc_dir: &Path) -> bool {
    let stat = fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    matches!(state, Some('Z' | 'X'))
}

/// Runs a command to completion, turning a failure into an error carrying its output.
///
/// pg_ctl is always given `--log`, so the server it starts writes there and does not inherit the
/// pipes: waiting for the output cannot hang on the long-lived postmaster.
async fn run(mut command: Command, what: &str) -> Result<Output, EmbeddedError> {
    let output = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(io_error(format!("could not run {what}")))?;
    if output.status.success() {
        return Ok(output);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let detail = match (stderr.trim(), stdout.trim()) {
        ("", out) => format!("{}: {out}", output.status),
        (err, _) => format!("{}: {err}", output.status),
    };
    Err(EmbeddedError::CommandFailed {
        what: what.to_string(),
        detail,
    })
}

/// The last `lines` lines of a log, for error messages.
fn log_tail(path: &Path, lines: usize) -> String {
    let read_end = || -> io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(8192)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read_end() {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(error) => format!("(could not read the log: {error})"),
    }
}

/// Appends the include of `lien.conf` to postgresql.conf unless it is there already.
fn ensure_include_line(postgresql_conf: &Path) -> Result<(), EmbeddedError> {
    let action = || format!("could not update {}", postgresql_conf.display());
    let current = fs::read_to_string(postgresql_conf).map_err(io_error(action()))?;
    if current.lines().any(|line| line.trim() == INCLUDE_LINE) {
        return Ok(());
    }
    let mut file = OpenOptions::new()
        .append(true)
        .open(postgresql_conf)
        .map_err(io_error(action()))?;
    let addition = format!(
        "\n# Added by lien: where the embedded cluster listens (rewritten at every start).\n\
         # Settings above this line that lien.conf also sets are overridden by it.\n{INCLUDE_LINE}\n"
    );
    file.write_all(addition.as_bytes())
        .map_err(io_error(action()))
}

/// A single-quoted postgresql.conf string: backslash escapes are processed there, so both
/// backslashes and quotes are escaped.
fn conf_string(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

/// `unix_socket_directories` is a comma-separated list; double quotes keep a path with a comma whole.
fn socket_directory_list_item(dir: &str) -> String {
    format!("\"{}\"", dir.replace('"', "\"\""))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    /// A data dir under /tmp that the postgres account can traverse (tempfile makes it private).
    fn data_dir() -> tempfile::TempDir {
        let dir = tempfile::Builder::new()
            .prefix("lien-pg-")
            .tempdir_in("/tmp")
            .unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    /// Stops whatever cluster a test left in its data dir, even when an assertion failed.
    /// Declared after the TempDir, so it runs before the dir is deleted.
    struct StopOnDrop(PathBuf);

    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            let pgdata = self.0.join("postgres");
            if !pgdata.join("postmaster.pid").exists() {
                return;
            }
            let Some(bin) = candidate_bin_dirs(&BinarySearch::from_env())
                .into_iter()
                .next()
            else {
                return;
            };
            let Ok(account) = cluster_account(&pgdata, SERVICE_ACCOUNT) else {
                return;
            };
            let mut command = std::process::Command::new(bin.join("pg_ctl"));
            if account.switch {
                command.uid(account.uid.as_raw()).gid(account.gid.as_raw());
            }
            let _ = command
                .current_dir("/")
                .arg("stop")
                .arg("--pgdata")
                .arg(&pgdata)
                .args(["--mode=immediate", "--wait", "--silent"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    async fn select_one(cluster: &EmbeddedPostgres, dbname: &str) -> i32 {
        let mut conn = PgConnection::connect_with(&cluster.connect_options(dbname))
            .await
            .unwrap();
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        one
    }

    fn postmaster_pid(data_dir: &Path) -> Option<i32> {
        let pgdata = fs::canonicalize(data_dir).unwrap().join("postgres");
        read_pid_file(&pgdata)
            .unwrap()
            .map(|pid_file| pid_file.pid)
            .filter(|pid| is_live_postmaster(*pid, &pgdata))
    }

    fn owner_record(data_dir: &Path) -> String {
        fs::read_to_string(data_dir.join("postgres.owner")).unwrap()
    }

    fn set_owner_record(data_dir: &Path, text: &str) {
        fs::write(data_dir.join("postgres.owner"), text).unwrap();
    }

    /// The pid of a process that has exited and been reaped.
    fn dead_pid() -> i32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        pid
    }

    fn fake_server_binaries(dir: &Path, version: &str) {
        fs::create_dir_all(dir).unwrap();
        for name in ["initdb", "pg_ctl"] {
            let path = dir.join(name);
            fs::write(
                &path,
                format!("#!/bin/sh\necho '{name} (PostgreSQL) {version}'\n"),
            )
            .unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    #[tokio::test]
    async fn fresh_start_serves_databases_over_a_private_socket_and_owner_stop_stops_it() {
        let dir = data_dir();
        let _guard = StopOnDrop(dir.path().to_path_buf());
        let cluster = EmbeddedPostgres::start(dir.path(), Claim::Owner)
            .await
            .unwrap();

        assert_eq!(select_one(&cluster, "postgres").await, 1);
        cluster.ensure_database("lien_test").await.unwrap();
        cluster.ensure_database("lien_test").await.unwrap();
        cluster.ensure_database("odd \"name\"").await.unwrap();
        assert_eq!(select_one(&cluster, "lien_test").await, 1);
        assert_eq!(select_one(&cluster, "odd \"name\"").await, 1);

        let mut conn = PgConnection::connect_with(&cluster.connect_options("lien_test"))
            .await
            .unwrap();
        let listen: String = sqlx::query_scalar("SHOW listen_addresses")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(listen, "");
        let encoding: String = sqlx::query_scalar("SHOW server_encoding")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(encoding, "UTF8");
        conn.close().await.unwrap();

        assert_eq!(owner_record(dir.path()), format!("{} owner\n", own_pid()));
        let socket_meta = fs::metadata(cluster.socket_dir()).unwrap();
        assert_eq!(socket_meta.permissions().mode() & 0o777, 0o700);
        if geteuid().is_root() {
            // PostgreSQL refuses root, so the cluster belongs to the postgres account.
            let postgres = User::from_name(SERVICE_ACCOUNT).unwrap().unwrap();
            assert_eq!(socket_meta.uid(), postgres.uid.as_raw());
            assert_eq!(
                fs::metadata(dir.path().join("postgres")).unwrap().uid(),
                postgres.uid.as_raw()
            );
        }

        cluster.stop().await.unwrap();
        assert_eq!(postmaster_pid(dir.path()), None);
        assert!(!dir.path().join("postgres.owner").exists());
        cluster.stop().await.unwrap();
    }

    #[tokio::test]
    async fn a_second_start_reuses_the_running_cluster_and_a_borrower_leaves_it_running() {
        let dir = data_dir();
        let _guard = StopOnDrop(dir.path().to_path_buf());
        let first = EmbeddedPostgres::start(dir.path(), Claim::Borrower)
            .await
            .unwrap();
        let pid = postmaster_pid(dir.path()).unwrap();

        let started = Instant::now();
        let second = EmbeddedPostgres::start(dir.path(), Claim::Borrower)
            .await
            .unwrap();
        second.ensure_database("per_test").await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "reuse took {:?}",
            started.elapsed()
        );
        assert_eq!(postmaster_pid(dir.path()), Some(pid));
        assert_eq!(select_one(&second, "per_test").await, 1);

        // Two tests (or processes) creating the same database at once both succeed.
        for round in 0..5 {
            let name = format!("raced_{round}");
            let (a, b) = tokio::join!(first.ensure_database(&name), second.ensure_database(&name));
            a.unwrap();
            b.unwrap();
        }

        second.stop().await.unwrap();
        assert_eq!(postmaster_pid(dir.path()), Some(pid));
        assert_eq!(select_one(&first, "per_test").await, 1);

        // The borrower that started it, still recorded, stops it (as `lien user create` does).
        first.stop().await.unwrap();
        assert_eq!(postmaster_pid(dir.path()), None);
    }

    #[tokio::test]
    async fn concurrent_starts_share_one_cluster() {
        // `lien serve` and `lien user create` launched together: the lock makes one start it.
        let dir = data_dir();
        let _guard = StopOnDrop(dir.path().to_path_buf());
        let (a, b) = tokio::join!(
            EmbeddedPostgres::start(dir.path(), Claim::Borrower),
            EmbeddedPostgres::start(dir.path(), Claim::Borrower)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(select_one(&a, "postgres").await, 1);
        assert_eq!(select_one(&b, "postgres").await, 1);
        let responsible = [&a, &b]
            .iter()
            .filter(|cluster| cluster.responsible.load(Ordering::SeqCst))
            .count();
        assert_eq!(responsible, 1);
        a.stop().await.unwrap();
        b.stop().await.unwrap();
        assert_eq!(postmaster_pid(dir.path()), None);
    }

    #[tokio::test]
    async fn ownership_follows_the_owner_record() {
        let dir = data_dir();
        let _guard = StopOnDrop(dir.path().to_path_buf());
        let me = own_pid();

        // A live owner elsewhere (pid 1 stands in for a running `lien serve`): an Owner borrows.
        let starter = EmbeddedPostgres::start(dir.path(), Claim::Borrower)
            .await
            .unwrap();
        set_owner_record(dir.path(), "1 owner\n");
        let second_owner = EmbeddedPostgres::start(dir.path(), Claim::Owner)
            .await
            .unwrap();
        assert_eq!(owner_record(dir.path()), "1 owner\n");
        second_owner.stop().await.unwrap();
        starter.stop().await.unwrap();
        assert!(postmaster_pid(dir.path()).is_some());

        // Its recorder was SIGKILLed: even a Borrower adopts it, and stops it at exit.
        set_owner_record(dir.path(), &format!("{} owner\n", dead_pid()));
        let adopter = EmbeddedPostgres::start(dir.path(), Claim::Borrower)
            .await
            .unwrap();
        assert_eq!(owner_record(dir.path()), format!("{me} borrower\n"));
        adopter.stop().await.unwrap();
        assert_eq!(postmaster_pid(dir.path()), None);

        // A live borrower elsewhere started it (`lien user create`) and an Owner arrives: the
        // Owner adopts it and stops it at exit.
        let _elsewhere = EmbeddedPostgres::start(dir.path(), Claim::Borrower)
            .await
            .unwrap();
        set_owner_record(dir.path(), "1 borrower\n");
        let owner = EmbeddedPostgres::start(dir.path(), Claim::Owner)
            .await
            .unwrap();
        assert_eq!(owner_record(dir.path()), format!("{me} owner\n"));
        owner.stop().await.unwrap();
        assert_eq!(postmaster_pid(dir.path()), None);
    }

    #[tokio::test]
    async fn within_one_process_the_handle_that_started_the_cluster_stops_it() {
        // A test binary's shared Borrower handle must survive a server it runs in-process (Owner).
        let dir = data_dir();
        let _guard = StopOnDrop(dir.path().to_path_buf());
        let shared = EmbeddedPostgres::start(dir.path(), Claim::Borrower)
            .await
            .unwrap();
        let server = EmbeddedPostgres::start(dir.path(), Claim::Owner)
            .await
            .unwrap();
        assert_eq!(owner_record(dir.path()), format!("{} owner\n", own_pid()));
        server.stop().await.unwrap();
        assert_eq!(select_one(&shared, "postgres").await, 1);
        shared.stop().await.unwrap();
        assert_eq!(postmaster_pid(dir.path()), None);
    }

    #[test]
    fn join_rules() {
        let alive = |pid: i32| pid == 10 || pid == 20;
        let record = |pid, claim| Some(OwnerRecord { pid, claim });
        use Claim::{Borrower, Owner};
        assert_eq!(decide_join(None, 20, Borrower, alive), Join::Adopt);
        assert_eq!(
            decide_join(record(10, Owner), 20, Owner, alive),
            Join::Borrow
        );
        assert_eq!(
            decide_join(record(10, Owner), 20, Borrower, alive),
            Join::Borrow
        );
        assert_eq!(
            decide_join(record(10, Borrower), 20, Borrower, alive),
            Join::Borrow
        );
        assert_eq!(
            decide_join(record(10, Borrower), 20, Owner, alive),
            Join::Adopt
        );
        assert_eq!(
            decide_join(record(30, Owner), 20, Borrower, alive),
            Join::Adopt
        );
        assert_eq!(
            decide_join(record(30, Owner), 20, Owner, alive),
            Join::Adopt
        );
        assert_eq!(
            decide_join(record(20, Borrower), 20, Owner, alive),
            Join::Promote
        );
        assert_eq!(
            decide_join(record(20, Owner), 20, Borrower, alive),
            Join::Borrow
        );
    }

    #[tokio::test]
    async fn stale_postmaster_pid_after_a_crash_does_not_block_start() {
        let dir = data_dir();
        let _guard = StopOnDrop(dir.path().to_path_buf());
        let cluster = EmbeddedPostgres::start(dir.path(), Claim::Owner)
            .await
            .unwrap();
        cluster.stop().await.unwrap();
        let pgdata = dir.path().join("postgres");
        let socket_lock = dir.path().join("postgres-run").join(".s.PGSQL.5432.lock");

        // Postgres died with the machine: its pid file and socket lock name a dead process.
        let dead = dead_pid();
        let stale = format!(
            "{dead}\n{}\n1700000000\n5432\n\n\n  0 0\nready   \n",
            pgdata.display()
        );
        fs::write(pgdata.join("postmaster.pid"), &stale).unwrap();
        fs::write(&socket_lock, format!("{dead}\n")).unwrap();
        let cluster = EmbeddedPostgres::start(dir.path(), Claim::Owner)
            .await
            .unwrap();
        assert_eq!(select_one(&cluster, "postgres").await, 1);
        assert_ne!(postmaster_pid(dir.path()), Some(dead));
        cluster.stop().await.unwrap();

        // After a reboot the pid was reused by a live process that is not postgres (this one).
        let reused = stale.replacen(&dead.to_string(), &own_pid().to_string(), 1);
        fs::write(pgdata.join("postmaster.pid"), reused).unwrap();
        let cluster = EmbeddedPostgres::start(dir.path(), Claim::Owner)
            .await
            .unwrap();
        assert_eq!(select_one(&cluster, "postgres").await, 1);
        cluster.stop().await.unwrap();
    }

    #[tokio::test]
    async fn an_interrupted_initdb_is_redone() {
        let dir = data_dir();
        let _guard = StopOnDrop(dir.path().to_path_buf());
        // initdb killed half-way: files but no PG_VERSION, and a leftover scratch dir.
        fs::create_dir_all(dir.path().join("postgres/global")).unwrap();
        fs::write(dir.path().join("postgres/global/pg_filenode.map"), "half").unwrap();
        fs::create_dir_all(dir.path().join("postgres.initdb-tmp/base")).unwrap();

        let cluster = EmbeddedPostgres::start(dir.path(), Claim::Borrower)
            .await
            .unwrap();
        assert_eq!(select_one(&cluster, "postgres").await, 1);
        assert!(dir.path().join("postgres/PG_VERSION").exists());
        assert!(!dir.path().join("postgres.initdb-tmp").exists());
        let aside: Vec<PathBuf> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.to_string_lossy().contains("postgres.incomplete-"))
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(
            fs::read_to_string(aside[0].join("global/pg_filenode.map")).unwrap(),
            "half"
        );
        cluster.stop().await.unwrap();
    }

    #[tokio::test]
    async fn missing_binaries_give_one_clear_error() {
        let empty = tempfile::tempdir().unwrap();
        let search = BinarySearch {
            path: Some(empty.path().as_os_str().to_owned()),
            lib_root: empty.path().join("postgresql"),
        };
        let error = find_binaries(&search, None, Path::new("/nowhere"))
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH or under \
             /usr/lib/postgresql/*/bin. Install PostgreSQL (e.g. `apt-get install postgresql`) or \
             set DATABASE_URL to use an existing server."
        );
        let data = empty.path().join("data");
        let error = EmbeddedPostgres::start_with(&data, Claim::Borrower, &search, SERVICE_ACCOUNT)
            .await
            .unwrap_err();
        assert!(matches!(error, EmbeddedError::BinariesNotFound), "{error}");
        assert!(
            !data.exists(),
            "nothing is created when PostgreSQL is missing"
        );
    }

    #[tokio::test]
    async fn binaries_come_from_path_then_the_highest_version_and_match_an_existing_cluster() {
        let root = tempfile::tempdir().unwrap();
        let on_path = root.path().join("bin");
        let lib = root.path().join("postgresql");
        fake_server_binaries(&on_path, "14.3");
        fake_server_binaries(&lib.join("9.6/bin"), "9.6.24");
        fake_server_binaries(&lib.join("16/bin"), "16.2 (Debian 16.2-1)");
        fake_server_binaries(&lib.join("13/bin"), "13.1");
        fs::create_dir_all(lib.join("17/bin")).unwrap(); // an uninstalled leftover
        let search = BinarySearch {
            path: Some(std::env::join_paths(["relative/bin".into(), on_path.clone()]).unwrap()),
            lib_root: lib.clone(),
        };
        assert_eq!(
            candidate_bin_dirs(&search),
            vec![
                on_path.clone(),
                lib.join("16/bin"),
                lib.join("13/bin"),
                lib.join("9.6/bin")
            ]
        );
        let pgdata = Path::new("/data/postgres");
        let fresh = find_binaries(&search, None, pgdata).await.unwrap();
        assert_eq!(fresh.pg_ctl, on_path.join("pg_ctl"));
        let existing = find_binaries(&search, Some("13"), pgdata).await.unwrap();
        assert_eq!(existing.initdb, lib.join("13/bin/initdb"));
        let error = find_binaries(&search, Some("12"), pgdata)
            .await
            .unwrap_err();
        assert!(
            matches!(error, EmbeddedError::VersionMismatch { .. }),
            "{error}"
        );
        assert!(
            error.to_string().contains("created by PostgreSQL 12"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_data_dir_is_reported_when_running_as_root() {
        if !geteuid().is_root() {
            return;
        }
        let private = tempfile::Builder::new()
            .prefix("lien-pg-private-")
            .tempdir_in("/tmp")
            .unwrap();
        fs::set_permissions(private.path(), fs::Permissions::from_mode(0o700)).unwrap();
        let _guard = StopOnDrop(private.path().join("data"));
        let error = EmbeddedPostgres::start(&private.path().join("data"), Claim::Borrower)
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "the postgres account cannot reach {}: choose a LIEN_DATA_DIR it can traverse \
                 (e.g. under /var/lib or /srv)",
                private.path().display()
            )
        );
    }

    #[test]
    fn root_needs_an_unprivileged_account() {
        let pgdata = Path::new("/nonexistent/lien/postgres");
        let account = cluster_account(pgdata, "lien-no-such-account");
        if geteuid().is_root() {
            let error = account.unwrap_err();
            assert!(matches!(error, EmbeddedError::NoServiceAccount { .. }));
            assert!(error.to_string().contains("create it"), "{error}");
            let postgres = cluster_account(pgdata, SERVICE_ACCOUNT).unwrap();
            assert!(postgres.switch);
            assert_eq!(postgres.name, SERVICE_ACCOUNT);
        } else {
            let account = account.unwrap();
            assert!(!account.switch);
            assert_eq!(account.uid, geteuid());
        }
    }

    #[test]
    fn socket_paths_over_the_unix_limit_are_refused() {
        // "/{name}/postgres-run/.s.PGSQL.5432" is 28 bytes plus the name.
        let fits = Layout::new(PathBuf::from(format!("/{}", "d".repeat(79))));
        assert!(fits.check_socket_path_length().is_ok());
        let long = Layout::new(PathBuf::from(format!("/{}", "d".repeat(80))));
        let error = long.check_socket_path_length().unwrap_err();
        assert!(
            matches!(error, EmbeddedError::SocketPathTooLong { len: 108, .. }),
            "{error}"
        );
        assert!(
            error.to_string().contains("choose a shorter LIEN_DATA_DIR"),
            "{error}"
        );
    }

    #[test]
    fn paths_the_shell_or_config_would_mangle_are_refused() {
        assert!(check_path_is_plain(Path::new("/srv/lien data,1")).is_ok());
        for bad in [
            "/srv/a\"b",
            "/srv/$HOME",
            "/srv/a`b`",
            "/srv/a\\b",
            "/srv/a\nb",
        ] {
            assert!(check_path_is_plain(Path::new(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn config_and_sql_quoting() {
        assert_eq!(conf_string("it's"), "'it''s'");
        assert_eq!(socket_directory_list_item("/srv/a,b"), "\"/srv/a,b\"");
        assert_eq!(quote_identifier("odd \"name\""), "\"odd \"\"name\"\"\"");
    }

    #[test]
    fn version_parsing() {
        assert_eq!(
            parse_major_version("pg_ctl (PostgreSQL) 15.8 (Debian 15.8-1.pgdg120+1)\n").as_deref(),
            Some("15")
        );
        assert_eq!(
            parse_major_version("pg_ctl (PostgreSQL) 17devel").as_deref(),
            Some("17")
        );
        assert_eq!(
            parse_major_version("pg_ctl (PostgreSQL) 9.6.24").as_deref(),
            Some("9.6")
        );
        assert_eq!(parse_major_version("something else"), None);
        assert_eq!(version_key("9.6"), Some(vec![9, 6]));
        assert_eq!(version_key("common"), None);
    }

    #[test]
    fn pid_file_parsing() {
        let text = "4242\n/data/postgres\n1700000000\n5432\n/data/run\n\n  0 0\nready   \n";
        assert_eq!(
            parse_pid_file(text),
            Some(PidFile {
                pid: 4242,
                status: Some("ready".to_string())
            })
        );
        assert_eq!(
            parse_pid_file("4242\n/data/postgres\n").map(|p| p.status),
            Some(None)
        );
        assert_eq!(parse_pid_file(""), None);
        assert_eq!(parse_pid_file("garbage\n"), None);
    }

    #[test]
    fn a_zombie_is_not_a_live_postmaster() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let proc_dir = PathBuf::from(format!("/proc/{}", child.id()));
        let deadline = Instant::now() + Duration::from_secs(5);
        while !is_zombie(&proc_dir) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(is_zombie(&proc_dir));
        assert!(
            process_alive(child.id() as i32),
            "kill(0) still sees a zombie"
        );
        assert!(!is_live_postmaster(child.id() as i32, Path::new("/")));
        child.wait().unwrap();
        assert!(!is_zombie(Path::new("/proc/self")));
    }
}
