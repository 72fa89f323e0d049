//! The real `lien` binary on its embedded cluster: started by `serve`, reused by a second command,
//! surviving a SIGKILL of lien, and stopped with it on SIGTERM.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{kill, Signal},
    unistd::Pid,
};
use reqwest::StatusCode;
use tokio::process::Command;

use crate::binary::{self, free_port, wait_until_healthy};

fn lien(data_dir: &Path, port: u16) -> Command {
    let mut command = binary::command();
    command
        .env("LIEN_DATA_DIR", data_dir)
        .env("LIEN_LISTEN", format!("127.0.0.1:{port}"))
        .env("LIEN_PUBLIC_URL", format!("http://localhost:{port}"));
    command
}

/// The postmaster's pid, from the cluster's lock file.
fn postmaster_pid(data_dir: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(data_dir.join("postgres/postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

fn alive(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_ok()
}

async fn log_in(port: u16, name: &str, password: &str) -> StatusCode {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = client
        .get(format!("http://127.0.0.1:{port}/login"))
        .send()
        .await
        .unwrap();
    let html = scraper::Html::parse_document(&login.text().await.unwrap());
    let csrf = crate::helpers::select_attr(&html, "input[name=csrf]", "value").remove(0);
    client
        .post(format!("http://127.0.0.1:{port}/login"))
        .form(&[("name", name), ("password", password), ("csrf", &csrf)])
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn the_embedded_cluster_is_shared_survives_sigkill_and_stops_on_sigterm() {
    // Under /tmp: when the tests run as root, PostgreSQL runs as `postgres` and must reach it.
    let dir = tempfile::Builder::new()
        .prefix("lien-cluster-")
        .tempdir_in("/tmp")
        .unwrap();
    let data = dir.path().join("data");
    let port = free_port();

    let mut server = lien(&data, port).arg("serve").spawn().unwrap();
    wait_until_healthy(port, &mut server).await;
    let postmaster = postmaster_pid(&data).expect("the cluster runs");

    // A second command while the server runs uses the running cluster.
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "correct horse\n").unwrap();
    let created = lien(&data, port)
        .args(["user", "create", "bob", "--password-file"])
        .arg(&password_file)
        .output()
        .await
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert_eq!(postmaster_pid(&data), Some(postmaster), "no second cluster");
    assert!(
        alive(postmaster),
        "the short command left the server's cluster running"
    );
    assert_eq!(
        log_in(port, "bob", "correct horse").await,
        StatusCode::SEE_OTHER
    );

    // SIGKILL: lien dies at once; its cluster survives, and the next start takes it over.
    server.start_kill().unwrap();
    server.wait().await.unwrap();
    assert!(alive(postmaster), "the cluster survives a SIGKILL of lien");
    let mut server = lien(&data, port).arg("serve").spawn().unwrap();
    wait_until_healthy(port, &mut server).await;
    assert_eq!(
        log_in(port, "bob", "correct horse").await,
        StatusCode::SEE_OTHER,
        "data kept"
    );

    // SIGTERM: a clean exit that stops the cluster too.
    let pid = Pid::from_raw(server.id().unwrap() as i32);
    kill(pid, Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(60), server.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(postmaster) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(postmaster), "SIGTERM stops the cluster");
    assert_eq!(postmaster_pid(&data), None);
}

#[tokio::test]
async fn a_dead_cluster_means_a_quick_503_and_lien_starts_it_again() {
    let dir = tempfile::Builder::new()
        .prefix("lien-cluster-")
        .tempdir_in("/tmp")
        .unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
    let mut server = lien(&data, port)
        .arg("serve")
        .stderr(log.try_clone().unwrap())
        .stdout(log)
        .spawn()
        .unwrap();
    wait_until_healthy(port, &mut server).await;
    let get = |path: &'static str| async move {
        // Anonymous, as a reader would be: cached pages may still be served meanwhile.
        let started = Instant::now();
        let response = reqwest::get(format!("http://127.0.0.1:{port}{path}"))
            .await
            .unwrap();
        (response, started.elapsed())
    };
    assert_eq!(get("/").await.0.status(), StatusCode::OK);

    // The cluster dies under lien.
    let postmaster = postmaster_pid(&data).expect("the cluster runs");
    kill(Pid::from_raw(postmaster), Signal::SIGKILL).unwrap();
    while alive(postmaster) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Before lien starts it again (three failed checks, two seconds apart): readiness says so,
    // and a page is a clear 503 that says when to come back, well before the old 10 s.
    let ((ready, _), (page, took)) = tokio::join!(get("/readyz"), get("/search?q=anything"));
    assert_eq!(
        ready.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "readiness says so"
    );
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(page.headers()["retry-after"], "5");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("database is unavailable"));

    // lien starts the cluster again, and says so; then everything answers as before.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (ready, _) = get("/readyz").await;
        if ready.status() == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster was not started again"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let restarted = postmaster_pid(&data).expect("the cluster runs again");
    assert_ne!(restarted, postmaster);
    let deadline = Instant::now() + Duration::from_secs(10);
    while get("/").await.0.status() != StatusCode::OK {
        assert!(Instant::now() < deadline, "pages answer again");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(log.contains("starting it again"), "{log}");

    // lien still stops its cluster when it stops.
    kill(Pid::from_raw(server.id().unwrap() as i32), Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(60), server.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(restarted) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(restarted), "SIGTERM stops the restarted cluster");
}
