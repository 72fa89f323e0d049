//! axe-core (from npm) in Debian's Chromium over every kind of page lien shows, signed out and
//! in, in light and dark mode and at phone width: `interop/axe/check.mjs` runs the rules of WCAG
//! 2.0–2.2 A and AA and axe's best practices and prints what each page violates.
//!
//! Needs Node.js with npm and `/usr/bin/chromium` (`apt-get install chromium`); CI installs both.
//! Without Chromium the test says so and does nothing.

use std::{collections::BTreeMap, path::Path, time::Duration};

use reqwest::{header, redirect::Policy};
use serde_json::{json, Value};

use tokio::{io::AsyncWriteExt, process::Command};

use crate::{
    fedify::ensure_node_dependencies,
    helpers::{select_attr, TestApp},
    moderation::admin,
};

/// Logs `name` in with a client of its own and returns the cookies a browser would then hold.
async fn session_cookies(app: &TestApp, name: &str, password: &str) -> Vec<Value> {
    let client = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let login = client
        .get(format!("{}/login", app.address))
        .send()
        .await
        .unwrap();
    let mut cookies: BTreeMap<String, String> = BTreeMap::new();
    fn keep(cookies: &mut BTreeMap<String, String>, response: &reqwest::Response) {
        for value in response.headers().get_all(header::SET_COOKIE) {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            cookies.insert(k.to_owned(), v.to_owned());
        }
    }
    keep(&mut cookies, &login);
    let page = scraper::Html::parse_document(&login.text().await.unwrap());
    let csrf = select_attr(&page, "input[name=csrf]", "value").remove(0);
    let cookie_header = |cookies: &BTreeMap<String, String>| {
        cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let response = client
        .post(format!("{}/login", app.address))
        .header(header::COOKIE, cookie_header(&cookies))
        .form(&[("name", name), ("password", password), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "{name} logs in");
    keep(&mut cookies, &response);
    // Not the "just wrote" cookie: the pages must be seen as they are usually served.
    cookies.remove("lien_wrote");
    cookies
        .into_iter()
        .map(|(name, value)| json!({ "name": name, "value": value }))
        .collect()
}

/// Runs `node check.mjs` with `input` on its standard input; its output, and whether it succeeded.
async fn run_with_input(dir: &Path, input: &str, limit: Duration) -> (bool, String) {
    let mut child = Command::new("node")
        .arg("check.mjs")
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("this test needs Node.js on PATH (apt-get install nodejs npm)");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let output = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .expect("check.mjs took too long")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn every_page_passes_axe_core() {
    if !Path::new("/usr/bin/chromium").exists() {
        eprintln!(
            "SKIPPED every_page_passes_axe_core: /usr/bin/chromium is missing \
             (apt-get install chromium); CI installs it"
        );
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/axe");
    ensure_node_dependencies(&dir).await;

    // A small instance with something on every page: stories with tags and a link, a thread
    // six deep, a report, a notification, a moderation action.
    let app = TestApp::spawn().await;
    let root = admin(&app).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let link = alice
        .share(
            "https://example.com/article",
            "A story worth reading",
            "rust",
        )
        .await;
    alice
        .share_text("Ask lien: how do you read?", "With *care*.", "meta")
        .await;
    let mut parent = None;
    let mut deepest = 0;
    for depth in 0..6 {
        let who = if depth % 2 == 0 { &bob } else { &alice };
        deepest = who
            .comment(link, parent, &format!("Comment at depth {depth}, @alice"))
            .await;
        parent = Some(deepest);
    }
    bob.vote(&format!("/s/{link}"), "1").await;
    bob.post(&format!("/c/{deepest}/report"), &[("reason", "spam")])
        .await;
    drop(root);
    let signed_in = session_cookies(&app, "alice", "correct horse").await;
    let admin_cookies = session_cookies(&app, "root", "correct horse").await;

    let story = format!("/s/{link}");
    let comment = format!("/c/{deepest}");
    let anonymous: &[(&str, &str)] = &[
        ("front", "/"),
        ("new", "/new"),
        ("top", "/top"),
        ("comments", "/comments"),
        ("tags", "/tags"),
        ("tag", "/t/rust"),
        ("domain", "/domain/example.com"),
        ("story", &story),
        ("comment", &comment),
        ("login", "/login"),
        ("signup", "/signup"),
        ("profile", "/@alice"),
        ("search", "/search?q=story"),
        ("modlog", "/modlog"),
        ("feed in a browser", "/hot.rss"),
        ("not found", "/no-such-page"),
    ];
    let personal: &[(&str, &str)] = &[
        ("story signed in", &story),
        ("front signed in", "/"),
        ("submit", "/submit"),
        ("settings", "/settings"),
        ("notifications", "/notifications"),
        ("invitations", "/invitations"),
    ];
    let mut pages = Vec::new();
    let states = [
        ("light", 1280, 900),
        ("dark", 1280, 900),
        ("light", 390, 844),
    ];
    for (scheme, width, height) in states {
        let state = format!("{scheme} {width}px");
        let mut add = |name: &str, path: &str, cookies: &[Value], submit: Option<&str>| {
            pages.push(json!({
                "name": format!("{name} ({state})"), "path": path, "cookies": cookies,
                "scheme": scheme, "width": width, "height": height, "submit": submit,
            }))
        };
        for (name, path) in anonymous {
            add(name, path, &[], None);
        }
        for (name, path) in personal {
            add(name, path, &signed_in, None);
        }
        add("admin", "/admin", &admin_cookies, None);
        add(
            "submit with errors",
            "/submit",
            &signed_in,
            Some("form[action='/submit']"),
        );
    }
    let input = json!({ "base": app.address, "pages": pages }).to_string();
    let (ok, output) = run_with_input(&dir, &input, Duration::from_secs(600)).await;
    assert!(ok, "check.mjs failed:\n{output}");

    // rule (impact) → pages, nodes; and the pages with a serious or critical violation.
    let mut table: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    let mut failing = Vec::new();
    let mut checked = 0;
    for line in output.lines().filter(|l| l.starts_with('{')) {
        let page: Value = serde_json::from_str(line).unwrap();
        checked += 1;
        for v in page["violations"].as_array().unwrap() {
            let impact = v["impact"].as_str().unwrap_or("none").to_owned();
            let entry = table
                .entry((v["id"].as_str().unwrap().to_owned(), impact.clone()))
                .or_default();
            entry.0 += 1;
            entry.1 += v["nodes"].as_u64().unwrap() as usize;
            if impact == "serious" || impact == "critical" {
                failing.push(format!(
                    "{}: {} ({impact}, {} nodes, e.g. {})",
                    page["name"], v["id"], v["nodes"], v["targets"]
                ));
            }
        }
    }
    assert_eq!(checked, pages.len(), "every page was checked:\n{output}");
    eprintln!("axe-core over {checked} page/state combinations:\n| rule | impact | pages | nodes |\n| --- | --- | ---: | ---: |");
    for ((rule, impact), (pages, nodes)) in &table {
        eprintln!("| {rule} | {impact} | {pages} | {nodes} |");
    }
    assert!(
        failing.is_empty(),
        "serious or critical axe-core violations:\n{}",
        failing.join("\n")
    );
}
