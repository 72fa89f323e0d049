//! The embedded cluster, started and stopped for real with the machine's PostgreSQL binaries.

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
