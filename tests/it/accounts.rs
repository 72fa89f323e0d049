use reqwest::StatusCode;

use crate::helpers::{count, location, select_text, TestApp};

#[tokio::test]
async fn sign_up_log_out_and_log_in() {
    let app = TestApp::spawn().await;
    let alice = app.user("Alice").await;
    // The name is kept in lowercase and shown in the menu.
    let page = alice.page("/").await;
    assert!(select_text(&page, "nav.account a").contains(&"alice".to_owned()));

    let response = alice.post("/logout", &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        alice.get("/settings").await.status(),
        StatusCode::SEE_OTHER,
        "logged out"
    );

    let wrong = alice
        .post(
            "/login",
            &[("name", "alice"), ("password", "wrong password")],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = alice
        .post(
            "/login",
            &[("name", "ALICE"), ("password", "correct horse")],
        )
        .await;
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        alice.get("/settings").await.status(),
        StatusCode::OK,
        "logged in again"
    );
}

#[tokio::test]
async fn names_are_unique_without_regard_to_case_and_checked() {
    let app = TestApp::spawn().await;
    app.user("bob").await;
    let again = app.browser().signup("BOB", "another password").await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let bad = app.browser().signup("bob smith", "a password!").await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let short = app.browser().signup("carol", "short").await;
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(count(&app.pool, "person").await, 1);
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let mallory = app.browser();
    let _ = mallory.csrf().await; // has a token cookie, but does not send the field
    let response = mallory
        .post_raw(
            "/signup",
            &[("name", "mallory"), ("password", "long enough")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let forged = mallory
        .post_raw(
            "/signup",
            &[
                ("name", "mallory"),
                ("password", "long enough"),
                ("csrf", &"0".repeat(64)),
            ],
        )
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(count(&app.pool, "person").await, 0);

    let alice = app.user("alice").await;
    let response = alice
        .post_raw(
            "/submit",
            &[
                ("url", "https://example.com/"),
                ("title", "t"),
                ("tags", "x"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(count(&app.pool, "story").await, 0);
}

#[tokio::test]
async fn closed_registration_refuses_sign_ups() {
    let app = TestApp::spawn_with(&["--registration", "closed"]).await;
    let response = app.browser().signup("dave", "long enough").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(count(&app.pool, "person").await, 0);
}

#[tokio::test]
async fn settings_change_the_profile_and_the_password() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let response = alice
        .post(
            "/settings",
            &[
                ("display_name", "Alice A."),
                ("bio", "I *like* links"),
                ("avatar_url", ""),
            ],
        )
        .await;
    assert_eq!(location(&response), "/settings?saved=1");
    let profile = alice.page("/@alice").await;
    assert!(select_text(&profile, "h1")
        .iter()
        .any(|t| t.contains("Alice A.")));
    assert!(profile.html().contains("<em>like</em>"));

    let bad = alice
        .post("/settings", &[("avatar_url", "javascript:alert(1)")])
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let changed = alice
        .post(
            "/settings",
            &[
                ("current_password", "correct horse"),
                ("new_password", "battery staple"),
            ],
        )
        .await;
    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    let other = app.browser();
    let old = other
        .post(
            "/login",
            &[("name", "alice"), ("password", "correct horse")],
        )
        .await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let new = other
        .post(
            "/login",
            &[("name", "alice"), ("password", "battery staple")],
        )
        .await;
    assert_eq!(new.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn data_survives_a_restart_of_the_app() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let id = alice
        .share("https://example.com/kept", "Kept across restarts", "meta")
        .await;
    let app = app.restart().await;
    let visitor = app.browser();
    let page = visitor.page(&format!("/s/{id}")).await;
    assert!(page.html().contains("Kept across restarts"));
    let login = visitor
        .post(
            "/login",
            &[("name", "alice"), ("password", "correct horse")],
        )
        .await;
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
}
