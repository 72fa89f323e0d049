//! The data directory and the account PostgreSQL runs as: where each file lives, creating the
//! cluster with initdb, and the files the cluster's account must own (as root, PostgreSQL runs as
//! `postgres`, which must be able to reach everything here).

use super::*;

/// `sun_path` holds 108 bytes, one of which is the terminating NUL.
pub(super) const MAX_SOCKET_PATH: usize = 107;
/// A log grown past this is moved to `postgres.log.1` at the next start, so it cannot fill the disk.
pub(super) const LOG_ROTATE_BYTES: u64 = 16 * 1024 * 1024;
/// The line lien adds to postgresql.conf; `lien.conf` is rewritten at every start.
pub(super) const INCLUDE_LINE: &str = "include = 'lien.conf'";

/// The files and directories of one data dir.
#[derive(Clone, Debug)]
pub(super) struct Layout {
    pub(super) data_dir: PathBuf,
    pub(super) pgdata: PathBuf,
    pub(super) initdb_scratch: PathBuf,
    pub(super) socket_dir: PathBuf,
    pub(super) log_file: PathBuf,
    pub(super) lock_file: PathBuf,
    pub(super) owner_file: PathBuf,
}

impl Layout {
    /// The layout under an absolute, symlink-free `data_dir` (so the socket path is as short as
    /// it can be and `/proc/{pid}/cwd` can be compared with it).
    pub(super) fn new(data_dir: PathBuf) -> Layout {
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
    pub(super) fn prepare(data_dir: &Path) -> Result<Layout, EmbeddedError> {
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
    pub(super) fn socket_file(&self) -> PathBuf {
        self.socket_dir.join(format!(".s.PGSQL.{PORT}"))
    }

    pub(super) fn check_socket_path_length(&self) -> Result<(), EmbeddedError> {
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
pub(super) fn check_path_is_plain(path: &Path) -> Result<(), EmbeddedError> {
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

/// The OS account the cluster runs as.
#[derive(Clone, Debug)]
pub(super) struct Account {
    pub(super) name: String,
    pub(super) uid: Uid,
    pub(super) gid: Gid,
    pub(super) home: PathBuf,
    /// Whether commands must switch to this account (lien runs as root).
    pub(super) switch: bool,
}

impl Account {
    pub(super) fn from_user(user: User, switch: bool) -> Account {
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
    pub(super) fn command(&self, program: &Path, pgdata: &Path) -> Command {
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
pub(super) fn cluster_account(
    pgdata: &Path,
    service_account: &str,
) -> Result<Account, EmbeddedError> {
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

pub(super) fn current_user_account(euid: Uid) -> Account {
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
pub(super) fn account_for_uid(uid: Uid, gid: Gid) -> Account {
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

/// Appends the include of `lien.conf` to postgresql.conf unless it is there already.
pub(super) fn ensure_include_line(postgresql_conf: &Path) -> Result<(), EmbeddedError> {
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
pub(super) fn conf_string(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

/// `unix_socket_directories` is a comma-separated list; double quotes keep a path with a comma whole.
pub(super) fn socket_directory_list_item(dir: &str) -> String {
    format!("\"{}\"", dir.replace('"', "\"\""))
}

impl EmbeddedPostgres {
    /// As root, PostgreSQL runs under another account, which needs search permission on every
    /// directory down to the data dir; finding out here beats a cryptic "permission denied" later.
    pub(super) async fn check_account_reaches_data_dir(&self) -> Result<(), EmbeddedError> {
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
    pub(super) async fn account_can_traverse(&self, dir: &Path) -> Result<bool, EmbeddedError> {
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
    pub(super) async fn ensure_initialized(&self) -> Result<(), EmbeddedError> {
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
    pub(super) fn set_aside_incomplete_cluster(&self) -> Result<(), EmbeddedError> {
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
    pub(super) async fn run_initdb(&self, target: &Path) -> Result<(), EmbeddedError> {
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
    pub(super) async fn initdb_once(
        &self,
        target: &Path,
        locale: &str,
    ) -> Result<(), EmbeddedError> {
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

    /// Creates the socket dir and log file for the cluster's account and writes `lien.conf`,
    /// which pins where the server listens (rewritten each start, so a moved data dir works).
    pub(super) fn prepare_runtime_files(&self) -> Result<(), EmbeddedError> {
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
    pub(super) fn prepare_log_file(&self) -> Result<(), EmbeddedError> {
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
    pub(super) fn create_private_dir(&self, dir: &Path) -> Result<(), EmbeddedError> {
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
    pub(super) fn write_account_file(
        &self,
        path: &Path,
        contents: &str,
    ) -> Result<(), EmbeddedError> {
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
    pub(super) fn give_to_account(&self, path: &Path) -> Result<(), EmbeddedError> {
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
}
