//! Invitations (LIEN_REGISTRATION=invite): signed-in people make one-use links, a sign-up needs
//! one, and the tree of who invited whom is public.

use reqwest::StatusCode;

use crate::{
    helpers::{count, location, select_attr, select_text, Browser, TestApp},
    moderation::{admin, moderate},
};

/// The invitation links on a person's /invitations page.
async fn links(browser: &Browser) -> Vec<String> {
    select_attr(
        &browser.page("/invitations").await,
        "input.invite-link",
        "value",
    )
}

/// Signs up with an invitation link: the form from the link, then the POST it makes.
async fn sign_up_with(app: &TestApp, link: &str, name: &str) -> (Browser, StatusCode) {
    let browser = app.browser();
    let path = link.trim_start_matches(&app.address);
    let form = browser.page(path).await;
    let invite = select_attr(&form, "input[name=invite]", "value");
    assert_eq!(invite.len(), 1, "the form carries the invitation");
    let status = browser
        .post(
            "/signup",
            &[
                ("name", name),
                ("password", "correct horse"),
                ("invite", &invite[0]),
            ],
        )
        .await
        .status();
    (browser, status)
}

#[tokio::test]
async fn invite_mode_signs_up_only_with_an_unused_invitation() {
    let app = TestApp::spawn_with(&["--registration", "invite"]).await;
    let root = admin(&app).await;

    // Without an invitation the form is not offered and a sign-up is refused, clearly.
    let stranger = app.browser();
    let page = stranger.page("/signup").await;
    assert!(select_text(&page, "p.refusal")[0].contains("invitation"));
    let refused = stranger.signup("stranger", "correct horse").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().await.unwrap().contains("invitation"));
    let refused = stranger
        .post(
            "/signup",
            &[
                ("name", "stranger"),
                ("password", "correct horse"),
                ("invite", "nonsense"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(count(&app.pool, "person").await, 1);

    // Root makes a link; ann signs up with it and is recorded as invited by root.
    assert_eq!(
        root.post("/invitations", &[]).await.status(),
        StatusCode::SEE_OTHER
    );
    let link = links(&root).await.remove(0);
    assert!(link.starts_with(&format!("{}/signup?invite=", app.address)));
    let (ann, status) = sign_up_with(&app, &link, "ann").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(ann.get("/settings").await.status(), StatusCode::OK);
    let profile = ann.page("/@ann").await;
    assert_eq!(
        select_text(&profile, ".invited-by"),
        vec!["invited by root"]
    );

    // The same link again is refused; a bad name does not use a link up.
    let again = app.browser();
    let path = link.trim_start_matches(&app.address).to_owned();
    let page = again.page(&path).await;
    assert!(select_text(&page, "p.refusal")[0].contains("used already"));
    let code = path.rsplit_once('=').unwrap().1;
    let refused = again
        .post(
            "/signup",
            &[
                ("name", "ben"),
                ("password", "correct horse"),
                ("invite", code),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    ann.post("/invitations", &[]).await;
    let ann_link = links(&ann).await.remove(0);
    let (_, status) = sign_up_with(&app, &ann_link, "Not A Name!").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, status) = sign_up_with(&app, &ann_link, "ben").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the link still works");

    // The tree, public, nests ben under ann under root.
    let tree = app.browser().page("/invitations/tree").await;
    let members: Vec<(String, String)> = select_text(&tree, "li.member > a")
        .into_iter()
        .zip(select_attr(&tree, "li.member", "data-depth"))
        .collect();
    assert_eq!(
        members,
        vec![
            ("root".to_owned(), "0".to_owned()),
            ("ann".to_owned(), "1".to_owned()),
            ("ben".to_owned(), "2".to_owned()),
        ]
    );
    assert_eq!(
        select_text(&tree, "ul.tree > li > ul > li > ul > li > a"),
        vec!["ben"]
    );

    // One may hold only so many unused links; a banned person makes none, and theirs stop working.
    for _ in 0..10 {
        ann.post("/invitations", &[]).await;
    }
    let unused: i64 = sqlx::query_scalar(
        "select count(*) from invitation i join person p on p.id = i.inviter_id
         where p.name = 'ann' and i.used_at is null",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(unused, 5);
    assert_eq!(
        ann.post("/invitations", &[]).await.status(),
        StatusCode::CONFLICT
    );
    let spare = links(&ann).await.remove(0);
    moderate(&root, "ban", "person", "ann", "selling invitations").await;
    assert_eq!(
        ann.post("/invitations", &[]).await.status(),
        StatusCode::FORBIDDEN
    );
    let (_, status) = sign_up_with_refused(&app, &spare).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Signed out, /invitations sends to the login page.
    let response = app.browser().get("/invitations").await;
    assert_eq!(location(&response), "/login");
}

/// A sign-up with a link whose form is refused: posted directly.
async fn sign_up_with_refused(app: &TestApp, link: &str) -> (Browser, StatusCode) {
    let browser = app.browser();
    let code = link.rsplit_once('=').unwrap().1;
    let status = browser
        .post(
            "/signup",
            &[
                ("name", "carl"),
                ("password", "correct horse"),
                ("invite", code),
            ],
        )
        .await
        .status();
    (browser, status)
}

#[tokio::test]
async fn open_and_closed_modes_keep_their_behaviour() {
    let open = TestApp::spawn().await;
    assert_eq!(
        open.browser()
            .signup("anyone", "correct horse")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let closed = TestApp::spawn_with(&["--registration", "closed"]).await;
    let root = admin(&closed).await;
    root.post("/invitations", &[]).await;
    let link = links(&root).await.remove(0);
    let code = link.rsplit_once('=').unwrap().1;
    let refused = closed
        .browser()
        .post(
            "/signup",
            &[
                ("name", "anyone"),
                ("password", "correct horse"),
                ("invite", code),
            ],
        )
        .await;
    assert_eq!(
        refused.status(),
        StatusCode::FORBIDDEN,
        "closed means closed"
    );
}
