//! Starting and stopping: `pg_ctl start` and `stop`, and running the server's commands with
//! their output kept for error messages.

use super::*;

/// Runs a command to completion, turning a failure into an error carrying its output.
///
/// pg_ctl is always given `--log`, so the server it starts writes there and does not inherit the
/// pipes: waiting for the output cannot hang on the long-lived postmaster.
pub(super) async fn run(mut command: Command, what: &str) -> Result<Output, EmbeddedError> {
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
pub(super) fn log_tail(path: &Path, lines: usize) -> String {
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

impl EmbeddedPostgres {
    /// Creates the cluster if needed, clears what a crash left behind, and starts it.
    pub(super) async fn start_stopped(&self, claim: Claim) -> Result<(), EmbeddedError> {
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

    /// `pg_ctl start`, waiting until the server accepts connections.
    pub(super) async fn pg_ctl_start(&self) -> Result<(), EmbeddedError> {
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
    pub(super) async fn pg_ctl_stop(&self) -> Result<(), EmbeddedError> {
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
