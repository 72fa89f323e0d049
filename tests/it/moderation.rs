//! Moderation (issue 8): removals, locks, bans, instance blocks, reports (local and by `Flag`),
//! the public log, /admin's door, and the rate limit on failed logins.

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    federation::dev_instance,
    helpers::{count, location, story_ids, Browser, TestApp},
    mastodon::FakeMastodon,
};

/// An administrator made the way `lien user create --admin` makes one, logged in.
pub async fn admin(app: &TestApp) -> Browser {
    lien::accounts::register(&app.pool, &app.address, "root", "correct horse", "admin")
        .await
        .unwrap();
    let browser = app.browser();
    let response = browser
        .post("/login", &[("name", "root"), ("password", "correct horse")])
        .await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "the admin logs in"
    );
    browser
}

pub async fn moderate(browser: &Browser, action: &str, target: &str, id: &str, reason: &str) {
    let response = browser
        .post(
            "/admin/moderate",
            &[
                ("action", action),
                ("target", target),
                ("id", id),
                ("reason", reason),
            ],
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "{action} {target} {id}"
    );
}

async fn text(browser: &Browser, path: &str) -> (StatusCode, String) {
    let response = browser.get(path).await;
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn a_removed_story_leaves_every_list_and_the_log_says_why() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let kept = alice
        .share("https://example.com/kept", "A story that stays", "rust")
        .await;
    let gone = alice
        .share("https://example.com/spam", "Buy cheap watches", "rust")
        .await;
    let root = admin(&app).await;
    moderate(
        &root,
        "remove",
        "story",
        &gone.to_string(),
        "spam for watches",
    )
    .await;

    for list in ["/", "/new", "/t/rust", "/search?q=watches"] {
        let ids = story_ids(&alice, list).await;
        assert!(!ids.contains(&gone), "{list} still shows the removed story");
    }
    assert!(story_ids(&alice, "/").await.contains(&kept));
    let (_, feed) = text(&alice, "/hot.rss").await;
    assert!(feed.contains("A story that stays") && !feed.contains("cheap watches"));

    // Its page says it was removed, and why.
    let (status, page) = text(&alice, &format!("/s/{gone}")).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(page.contains("spam for watches"));

    // The public log tells everyone, in HTML and RSS.
    let (status, log) = text(&app.browser(), "/modlog").await;
    assert_eq!(status, StatusCode::OK);
    assert!(log.contains("spam for watches") && log.contains("root"));
    let (_, rss) = text(&app.browser(), "/modlog.rss").await;
    assert!(rss.contains("spam for watches"));

    // A restore brings it back.
    moderate(
        &root,
        "restore",
        "story",
        &gone.to_string(),
        "not spam after all",
    )
    .await;
    assert!(story_ids(&alice, "/new").await.contains(&gone));

    // A removed comment keeps its place and its replies, without its text.
    let bob = app.user("bob").await;
    let rude = bob.comment(kept, None, "Something rude").await;
    alice.comment(kept, Some(rude), "A calm answer").await;
    moderate(&root, "remove", "comment", &rude.to_string(), "be civil").await;
    let (_, page) = text(&alice, &format!("/s/{kept}")).await;
    assert!(page.contains("[removed by a moderator]"));
    assert!(!page.contains("Something rude") && page.contains("A calm answer"));
    let (_, feed) = text(&alice, "/comments.rss").await;
    assert!(!feed.contains("Something rude"));
}

#[tokio::test]
async fn banned_people_cannot_post_or_log_in_and_locked_threads_take_no_comments() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let story = alice.share("https://example.com/a", "A story", "web").await;
    let root = admin(&app).await;

    moderate(&root, "lock", "story", &story.to_string(), "heated").await;
    let bob = app.user("bob").await;
    let response = bob
        .post(
            &format!("/s/{story}/comments"),
            &[("body", "one more"), ("parent_id", "")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("locked"));
    assert_eq!(count(&app.pool, "comment").await, 0);

    moderate(&root, "ban", "person", "bob", "spammer").await;
    let stories = count(&app.pool, "story").await;
    let response = bob
        .post(
            "/submit",
            &[
                ("url", "https://example.com/b"),
                ("title", "Spam"),
                ("tags", ""),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(count(&app.pool, "story").await, stories);
    assert_eq!(
        bob.vote(&format!("/s/{story}"), "1").await.status(),
        StatusCode::FORBIDDEN
    );
    let again = app.browser();
    let response = again
        .post("/login", &[("name", "bob"), ("password", "correct horse")])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // The ban is in /admin and in the log; unbanned, bob logs in again.
    let (_, page) = text(&root, "/admin").await;
    assert!(page.contains("spammer"));
    moderate(&root, "unban", "person", "bob", "second chance").await;
    let response = again
        .post("/login", &[("name", "bob"), ("password", "correct horse")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn admin_is_for_moderators_only() {
    let app = TestApp::spawn().await;
    let response = app.browser().get("/admin").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login");
    let alice = app.user("alice").await;
    assert_eq!(alice.get("/admin").await.status(), StatusCode::FORBIDDEN);
    let response = alice
        .post(
            "/admin/moderate",
            &[
                ("action", "block"),
                ("target", "instance"),
                ("id", "example.net"),
                ("reason", "mine"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(count(&app.pool, "instance_block").await, 0);

    // A moderator, made so by the same function `lien user set-role` runs, gets in.
    lien::db::moderation::set_role(&app.pool, None, "alice", "moderator", "trusted")
        .await
        .unwrap();
    crate::helpers::caches_catch_up().await;
    assert_eq!(alice.get("/admin").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_report_reaches_admin() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let story = alice.share("https://example.com/a", "A story", "web").await;
    let bob = app.user("bob").await;
    let response = bob
        .post(
            &format!("/s/{story}/report"),
            &[("reason", "this is off-topic")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let comment = alice.comment(story, None, "hello").await;
    let response = bob
        .post(&format!("/c/{comment}/report"), &[("reason", "")])
        .await;
    assert_eq!(
        response.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "a reason is required"
    );
    assert_eq!(count(&app.pool, "report").await, 1);

    let root = admin(&app).await;
    let (_, page) = text(&root, "/admin").await;
    assert!(page.contains("this is off-topic"));
    let id: i64 = sqlx::query_scalar("select id from report")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    moderate(
        &root,
        "dismiss_report",
        "report",
        &id.to_string(),
        "it is on topic",
    )
    .await;
    let (_, page) = text(&root, "/admin").await;
    assert!(!page.contains("this is off-topic"));
}

#[tokio::test]
async fn a_blocked_instance_is_refused_and_a_flag_becomes_a_report() {
    let lien = dev_instance().await;
    let alice = lien.user("alice").await;
    let story = alice
        .share("https://example.com/article", "An article", "web")
        .await;
    let mastodon = FakeMastodon::start(&lien).await;
    let inbox = format!("{}/inbox", lien.address);
    let story_id = format!("{}/s/{story}", lien.address);

    // Another server forwards a report: it becomes one here.
    let flag = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{}/reports/1", mastodon.account("mallory").actor),
        "type": "Flag",
        "actor": mastodon.account("mallory").actor,
        "content": "misleading headline",
        "object": [format!("{}/users/alice", lien.address), story_id],
    })
    .to_string();
    assert_eq!(
        mastodon.deliver(&inbox, &flag, "mallory").await,
        StatusCode::OK
    );
    let root = admin(&lien).await;
    let (_, page) = text(&root, "/admin").await;
    assert!(page.contains("misleading headline"));
    assert_eq!(count(&lien.pool, "report").await, 1);

    // Mallory replies and alice answers; a moderator's removal of alice's answer is sent to
    // mallory's server as a Delete.
    let alice_id = format!("{}/users/alice", lien.address);
    let note = |account: &str, status: &str, text: &str| {
        mastodon.activity(
            "create_note.json",
            account,
            &[
                ("STATUS", status),
                ("IN_REPLY_TO", &story_id),
                ("MENTIONED", &alice_id),
                ("MENTIONED_NAME", "alice"),
                ("TEXT", text),
            ],
        )
    };
    let reply = note("mallory", "1001", "A fair point");
    assert_eq!(
        mastodon.deliver(&inbox, &reply, "mallory").await,
        StatusCode::OK
    );
    let mallorys: i64 = sqlx::query_scalar("select id from comment where not local")
        .fetch_one(&lien.pool)
        .await
        .unwrap();
    let answer = alice
        .comment(story, Some(mallorys), "Thanks, mallory")
        .await;
    moderate(&root, "remove", "comment", &answer.to_string(), "off-topic").await;
    let deletes: i64 = sqlx::query_scalar(
        "select count(*) from delivery where host = $1 and payload->>'type' = 'Delete'
         and payload->'object'->>'id' = $2",
    )
    .bind(mastodon.host())
    .bind(format!("{}/c/{answer}", lien.address))
    .fetch_one(&lien.pool)
    .await
    .unwrap();
    assert_eq!(deletes, 1);

    // A locked thread refuses remote replies; a banned remote actor is refused altogether.
    moderate(&root, "lock", "story", &story.to_string(), "cooling off").await;
    let late = note("mallory", "1002", "One more thing");
    assert_eq!(
        mastodon.deliver(&inbox, &late, "mallory").await,
        StatusCode::FORBIDDEN
    );
    moderate(&root, "unlock", "story", &story.to_string(), "cooled off").await;
    let mallory = format!("mallory@{}", mastodon.host());
    moderate(&root, "ban", "person", &mallory, "trolling").await;
    let banned = note("mallory", "1003", "Let me in");
    assert_eq!(
        mastodon.deliver(&inbox, &banned, "mallory").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        count(&lien.pool, "comment").await,
        2,
        "mallory's and alice's"
    );

    // Blocked, the server's signed activities are refused before anything is stored, and
    // nothing more is delivered to it.
    moderate(&root, "block", "instance", &mastodon.host(), "harassment").await;
    let people = count(&lien.pool, "person").await;
    let comments = count(&lien.pool, "comment").await;
    alice.comment(story, Some(mallorys), "Still there?").await;
    let queued: i64 = sqlx::query_scalar("select count(*) from delivery where host = $1")
        .bind(mastodon.host())
        .fetch_one(&lien.pool)
        .await
        .unwrap();
    assert_eq!(queued, 0);
    let reply = note("eve", "3003", "You will hear from me");
    assert_eq!(
        mastodon.deliver(&inbox, &reply, "eve").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        count(&lien.pool, "comment").await,
        comments + 1,
        "only alice's"
    );
    assert_eq!(
        count(&lien.pool, "person").await,
        people,
        "eve was not even fetched"
    );
    let (_, log) = text(&lien.browser(), "/modlog").await;
    assert!(log.contains("harassment"));
}

#[tokio::test]
async fn rapid_failed_logins_meet_429() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let guesser = app.browser();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for n in 0..30 {
        let response = guesser
            .post(
                "/login",
                &[("name", "alice"), ("password", &format!("guess {n}"))],
            )
            .await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
        }
        statuses.push(response.status());
    }
    assert_eq!(statuses[0], StatusCode::UNAUTHORIZED);
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS));
    assert!(retry_after.is_some_and(|s| s > 0), "429 says when to retry");
    // Limited, even the right password waits.
    let response = guesser
        .post(
            "/login",
            &[("name", "alice"), ("password", "correct horse")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn failed_logins_are_counted_across_processes() {
    let first = TestApp::spawn().await;
    let second = first.sibling().await;
    first.user("alice").await;
    let guess = |app: &TestApp, n: usize| {
        let browser = app.browser();
        async move {
            browser
                .post(
                    "/login",
                    &[("name", "alice"), ("password", &format!("guess {n}"))],
                )
                .await
                .status()
        }
    };
    // Ten wrong guesses spread over two processes use up one budget.
    for n in 0..5 {
        assert_eq!(guess(&first, n).await, StatusCode::UNAUTHORIZED);
        assert_eq!(guess(&second, n).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(guess(&first, 10).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(guess(&second, 11).await, StatusCode::TOO_MANY_REQUESTS);
    let rows = count(&first.pool, "login_failure").await;
    assert_eq!(
        rows, 30,
        "by address, by address and name, and by name, ten each"
    );
}

#[test]
fn the_command_line_takes_roles_bans_and_unbans() {
    use clap::Parser;
    use lien::cli::{Cli, Command, UserCommand};
    let parse = |args: &[&str]| {
        let mut all = vec!["lien"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).map(|cli| cli.command)
    };
    assert!(matches!(
        parse(&["user", "set-role", "bob", "moderator"]),
        Ok(Command::User {
            action: UserCommand::SetRole { .. }
        })
    ));
    assert!(parse(&["user", "set-role", "bob", "king"]).is_err());
    assert!(matches!(
        parse(&["user", "ban", "bob", "--reason", "spam"]),
        Ok(Command::User {
            action: UserCommand::Ban { .. }
        })
    ));
    assert!(
        parse(&["user", "ban", "bob"]).is_err(),
        "a ban needs a reason"
    );
    assert!(matches!(
        parse(&["user", "unban", "bob"]),
        Ok(Command::User {
            action: UserCommand::Unban { .. }
        })
    ));
}

#[tokio::test]
async fn with_approval_a_new_account_waits_for_a_moderator() {
    let app = TestApp::spawn_with(&["--registration", "approval"]).await;
    let applicant = app.browser();
    let response = applicant.signup("newcomer", "correct horse").await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert!(response.text().await.unwrap().contains("approval"));
    let login = [("name", "newcomer"), ("password", "correct horse")];
    assert_eq!(
        applicant.post("/login", &login).await.status(),
        StatusCode::FORBIDDEN
    );

    let root = admin(&app).await;
    let (_, page) = text(&root, "/admin").await;
    assert!(page.contains("newcomer"));
    moderate(&root, "approve", "person", "newcomer", "welcome").await;
    assert_eq!(
        applicant.post("/login", &login).await.status(),
        StatusCode::SEE_OTHER
    );

    // A rejected application leaves nothing behind.
    app.browser().signup("spambot", "correct horse").await;
    moderate(&root, "reject", "person", "spambot", "a bot").await;
    let left: i64 = sqlx::query_scalar("select count(*) from person where name = 'spambot'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn people_can_download_their_data() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.browser().get("/settings/export").await.status(),
        StatusCode::SEE_OTHER
    );
    let alice = app.user("alice").await;
    let story = alice
        .share("https://example.com/a", "Alice's story", "web")
        .await;
    alice.comment(story, None, "Alice's comment").await;
    let response = alice.get("/settings/export").await;
    assert_eq!(response.status(), StatusCode::OK);
    let data: serde_json::Value = response.json().await.unwrap();
    assert_eq!(data["account"]["name"], "alice");
    assert_eq!(data["stories"][0]["title"], "Alice's story");
    assert_eq!(data["stories"][0]["tags"][0], "web");
    assert_eq!(data["comments"][0]["body"], "Alice's comment");
}

async fn set_role(browser: &Browser, name: &str, role: &str, reason: &str) -> StatusCode {
    browser
        .post(
            "/admin/role",
            &[("name", name), ("role", role), ("reason", reason)],
        )
        .await
        .status()
}

#[tokio::test]
async fn admins_set_roles_and_moderators_ban_from_admin() {
    let app = TestApp::spawn().await;
    let root = admin(&app).await;
    let mia = app.user("mia").await;
    let bob = app.user("bob").await;
    // Plain users and moderators may not change roles.
    assert_eq!(
        set_role(&mia, "mia", "admin", "power").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        set_role(&root, "mia", "moderator", "helps a lot").await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        set_role(&mia, "bob", "moderator", "my friend").await,
        StatusCode::FORBIDDEN
    );
    let role: String = sqlx::query_scalar("select role from person where name = 'bob'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(role, "user");

    // Bad input is refused and changes nothing.
    assert_eq!(
        set_role(&root, "bob", "king", "why not").await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        set_role(&root, "bob", "moderator", " ").await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        set_role(&root, "nobody", "moderator", "x").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        set_role(&root, "mia", "moderator", "again").await,
        StatusCode::CONFLICT
    );
    assert_eq!(
        set_role(&root, "root", "user", "oops").await,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // The moderator bans and unbans from /admin, with reasons; all of it is in the public log.
    let (status, page) = text(&mia, "/admin").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("ban-form") && !page.contains("role-form"));
    moderate(&mia, "ban", "person", "bob", "posting spam").await;
    assert_eq!(
        bob.post(
            "/submit",
            &[("title", "Spam"), ("body", "spam"), ("tags", "")]
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );
    moderate(&mia, "unban", "person", "bob", "apologised").await;
    let (_, page) = text(&root, "/admin").await;
    assert!(page.contains("role-form"));
    let (_, log) = text(&app.browser(), "/modlog").await;
    for reason in ["helps a lot", "posting spam", "apologised"] {
        assert!(log.contains(reason), "{reason} is logged");
    }
    assert!(log.contains("role set to moderator"));
    let kinds: Vec<String> = sqlx::query_scalar("select action from mod_action order by id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(kinds, vec!["set_role", "ban", "unban"]);
}

#[tokio::test]
async fn banned_and_blocked_authors_leave_threads_but_replies_keep_their_place() {
    use crate::federation::{deliver_all, host, resolve};
    let a = dev_instance().await;
    let b = dev_instance().await;
    let alice = a.user("alice").await;
    let story = alice
        .share("https://example.com/thread", "A thread", "web")
        .await;
    let bob = b.user("bob").await;
    let story_b_page = resolve(&bob, &format!("{}/s/{story}", a.address)).await;
    let story_b: i64 =
        crate::helpers::select_attr(&bob.page(&story_b_page).await, "article.story", "data-id")[0]
            .parse()
            .unwrap();
    bob.comment(story_b, None, "Bob's remote words").await;
    deliver_all(&b).await;
    let bobs: i64 = sqlx::query_scalar("select id from comment where not local")
        .fetch_one(&a.pool)
        .await
        .unwrap();
    let carol = a.user("carol").await;
    carol.comment(story, Some(bobs), "Carol answers bob").await;
    let mallory = a.user("mallory").await;
    mallory.comment(story, None, "Mallory's local spam").await;

    let root = admin(&a).await;
    moderate(
        &root,
        "ban",
        "person",
        &format!("bob@{}", host(&b)),
        "troll",
    )
    .await;
    moderate(&root, "ban", "person", "mallory", "spam").await;
    let (_, page) = text(&carol, &format!("/s/{story}")).await;
    assert!(!page.contains("Bob's remote words") && !page.contains("Mallory's local spam"));
    assert!(page.contains("Carol answers bob"), "the reply stays");
    assert!(page.contains("[hidden]"), "in place of bob's comment");
    let (_, feed) = text(&carol, &format!("/s/{story}.rss")).await;
    assert!(!feed.contains("Bob's remote words"));

    // Unbanned, bob shows again; his server blocked, he is hidden again.
    moderate(&root, "unban", "person", &format!("bob@{}", host(&b)), "ok").await;
    let (_, page) = text(&carol, &format!("/s/{story}")).await;
    assert!(page.contains("Bob's remote words"));
    moderate(&root, "block", "instance", &host(&b), "trolls").await;
    let (_, page) = text(&carol, &format!("/s/{story}")).await;
    assert!(!page.contains("Bob's remote words") && page.contains("Carol answers bob"));
    let (status, _) = text(&carol, &format!("/c/{bobs}")).await;
    assert_eq!(status, StatusCode::OK, "its reply still shows in context");
}
