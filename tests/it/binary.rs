//! Running the real `lien` binary in tests: a clean environment, a free port, waiting for it to
//! answer, and stopping it the way an orchestrator does.

use std::{
    future::Future,
    process::{ExitStatus, Stdio},
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{kill, Signal},
    unistd::Pid,
};
use reqwest::StatusCode;
use tokio::process::{Child, Command};

pub const LIEN: &str = env!("CARGO_BIN_EXE_lien");

/// `lien` with nothing of the test's environment but PATH, quiet logs and no stdin; killed if the
/// test drops it. Callers add the settings their case needs.
pub fn command() -> Command {
    let mut command = Command::new(LIEN);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LIEN_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (90 s at most) until `GET path` on `port` answers 200; fails if lien exits first.
pub async fn wait_until(port: u16, path: &str, process: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(90);
    let client = reqwest::Client::new();
    loop {
        if let Some(status) = process.try_wait().unwrap() {
            panic!("lien exited early with {status}");
        }
        let answer = client
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .await;
        if answer.is_ok_and(|r| r.status() == StatusCode::OK) {
            return;
        }
        assert!(Instant::now() < deadline, "lien did not answer {path}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until lien is ready (`/readyz`).
pub async fn wait_until_healthy(port: u16, process: &mut Child) {
    wait_until(port, "/readyz", process).await;
}

pub fn sigterm(process: &Child) {
    kill(Pid::from_raw(process.id().unwrap() as i32), Signal::SIGTERM).unwrap();
}

/// How lien exited, within a minute.
pub async fn exit_status(process: &mut Child) -> ExitStatus {
    tokio::time::timeout(Duration::from_secs(60), process.wait())
        .await
        .expect("lien stops within a minute of SIGTERM")
        .unwrap()
}

/// SIGTERM, and a clean exit.
pub async fn terminate(mut process: Child) {
    sigterm(&process);
    let status = exit_status(&mut process).await;
    assert!(status.success(), "exit status {status}");
}

/// Waits up to `seconds` for `check` to hold.
pub async fn eventually<F, Fut>(seconds: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
