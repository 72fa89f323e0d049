//! Ownership and locking: which lien process is responsible for stopping the cluster
//! (`postgres.owner`), the start/stop lock that several processes sharing one data dir take, and
//! telling a live postmaster from the stale pid file a crash left.

use super::*;

/// Takes the data dir's start/stop lock, waiting for other lien processes to finish theirs.
/// The lock is released when the returned file is dropped.
pub(super) async fn lock_exclusive(path: &Path) -> Result<File, EmbeddedError> {
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
pub(super) struct OwnerRecord {
    pub(super) pid: i32,
    pub(super) claim: Claim,
}

/// Reads `postgres.owner` ("{pid} {owner|borrower}"); a missing or garbled file means nobody.
pub(super) fn read_owner_record(path: &Path) -> Result<Option<OwnerRecord>, EmbeddedError> {
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
pub(super) fn write_owner_record(path: &Path, record: OwnerRecord) -> Result<(), EmbeddedError> {
    let tmp = path.with_extension("owner.tmp");
    let action = format!("could not write {}", path.display());
    fs::write(&tmp, format!("{} {}\n", record.pid, record.claim.as_str()))
        .map_err(io_error(action.clone()))?;
    fs::rename(&tmp, path).map_err(io_error(action))
}

/// What a process does with a cluster it finds running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Join {
    /// Use it; never stop it.
    Borrow,
    /// Same process, now as Owner: record that, so other processes borrow rather than adopt;
    /// the handle that started it stays the one that stops it.
    Promote,
    /// Record this process as responsible, and stop the cluster at exit.
    Adopt,
}

/// The ownership rules for a running cluster.
pub(super) fn decide_join(
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

pub(super) fn own_pid() -> i32 {
    getpid().as_raw()
}

/// Whether a process with this pid exists (EPERM means it does, under another user).
pub(super) fn process_alive(pid: i32) -> bool {
    pid > 0 && matches!(kill(Pid::from_raw(pid), None), Ok(()) | Err(Errno::EPERM))
}

/// What postmaster.pid says: the pid (line 1) and, once written, the status (line 8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PidFile {
    pub(super) pid: i32,
    pub(super) status: Option<String>,
}

pub(super) fn read_pid_file(pgdata: &Path) -> Result<Option<PidFile>, EmbeddedError> {
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
pub(super) fn parse_pid_file(text: &str) -> Option<PidFile> {
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
pub(super) fn is_live_postmaster(pid: i32, pgdata: &Path) -> bool {
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
pub(super) fn is_zombie(proc_dir: &Path) -> bool {
    let stat = fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    matches!(state, Some('Z' | 'X'))
}

impl EmbeddedPostgres {
    /// Uses (or takes over) a cluster that is already running, following the owner record.
    pub(super) fn join_running(&self, claim: Claim, pid: i32) -> Result<(), EmbeddedError> {
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

    /// The pid of this cluster's live postmaster, if one runs (no waiting).
    pub(super) fn running_postmaster(&self) -> Result<Option<i32>, EmbeddedError> {
        let pid_file = read_pid_file(&self.layout.pgdata)?;
        Ok(pid_file
            .filter(|pid_file| is_live_postmaster(pid_file.pid, &self.layout.pgdata))
            .map(|pid_file| pid_file.pid))
    }

    /// The pid of this cluster's live postmaster once it is ready to accept connections, or None
    /// if none runs. A postmaster still starting (crash recovery) or stopping is waited for.
    pub(super) async fn wait_for_running_postmaster(&self) -> Result<Option<i32>, EmbeddedError> {
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

    /// Removes what a postmaster that died without cleaning up (crash, reboot, SIGKILL) left:
    /// PostgreSQL refuses to start while postmaster.pid or the socket lock names a live pid, and
    /// after a reboot that pid may belong to some unrelated process. Called only when no
    /// postmaster of this cluster runs, so nothing here is in use.
    pub(super) fn clear_stale_state(&self) -> Result<(), EmbeddedError> {
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
}
