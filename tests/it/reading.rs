//! Reading long discussions (issue 14): a big thread stays small for a signed-in reader, subtrees
//! collapse, deep threads continue on the comment's own page, and top-level threads are paged.

use scraper::{Html, Selector};

use crate::helpers::*;

/// Words for comment bodies about as long as the seeded ones (two sentences).
const WORDS: [&str; 24] = [
    "the",
    "federation",
    "works",
    "when",
    "servers",
    "agree",
    "on",
    "shapes",
    "and",
    "people",
    "read",
    "threads",
    "that",
    "grow",
    "deep",
    "quickly",
    "so",
    "pages",
    "must",
    "stay",
    "small",
    "even",
    "on",
    "phones",
];

/// A small deterministic generator, so the thread has the same shape on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn unit(&mut self) -> f64 {
        (self.next() % 10_000) as f64 / 10_000.0
    }
}

/// Writes `n` comments on a story through the same database function as the comment form: about a
/// third top-level, the others replies to an earlier comment, more often a recent one (as the seed
/// makes them), so threads go deep. Returns the ids in order.
pub async fn big_thread(app: &TestApp, story: i64, authors: &[i64], n: usize) -> Vec<i64> {
    let mut rng = Lcg(262);
    let mut ids: Vec<i64> = Vec::with_capacity(n);
    let mut tx = app.pool.begin().await.unwrap();
    for j in 0..n {
        let parent = if j == 0 || rng.unit() < 0.35 {
            None
        } else {
            let back = (rng.unit().powi(2) * j as f64).floor() as usize;
            Some(ids[j - 1 - back.min(j - 1)])
        };
        let words: Vec<&str> = (0..30)
            .map(|_| WORDS[(rng.next() % WORDS.len() as u64) as usize])
            .collect();
        let body = format!("{}.", words.join(" "));
        let author = authors[(rng.next() % authors.len() as u64) as usize];
        let posted = lien::db::comments::create(
            &mut tx,
            &app.address,
            story,
            parent,
            author,
            &body,
            &lien::markdown::render(&body),
        )
        .await
        .unwrap();
        let lien::db::comments::Posted::Created(id) = posted else {
            panic!("comment {j} not created");
        };
        ids.push(id);
    }
    tx.commit().await.unwrap();
    ids
}

pub async fn person_id(app: &TestApp, name: &str) -> i64 {
    sqlx::query_scalar("select id from person where name = $1 and host is null")
        .bind(name)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

fn count_of(page: &Html, selector: &str) -> usize {
    page.select(&Selector::parse(selector).unwrap()).count()
}

#[tokio::test]
async fn a_262_comment_discussion_is_small_for_a_signed_in_reader() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let _bob = app.user("bob").await;
    let story = alice
        .share("https://example.com/long", "A long discussion", "talk")
        .await;
    let authors = [person_id(&app, "alice").await, person_id(&app, "bob").await];
    let ids = big_thread(&app, story, &authors, 262).await;
    caches_catch_up().await;

    let response = alice.get(&format!("/s/{story}")).await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    if let Ok(path) = std::env::var("LIEN_DUMP_PAGE") {
        std::fs::write(path, &html).unwrap();
    }
    let page = Html::parse_document(&html);
    let forms = count_of(&page, "form");
    let kb = html.len() as f64 / 1024.0;
    eprintln!("262-comment page, signed in: {kb:.1} KB, {forms} forms");
    assert!(html.len() < 150 * 1024, "{kb:.1} KB");
    assert!(forms <= 10, "{forms} forms");
    // Votes are buttons of the one vote form, not a form each; replies and reports are on the
    // comment's own page.
    assert!(count_of(&page, "button[form=vote][formaction$='/vote']") >= 2 * 100);
    assert_eq!(count_of(&page, "form#vote"), 1);
    assert_eq!(
        count_of(&page, "form[action$='/report']"),
        1,
        "the story's own"
    );

    // Every comment is reachable: on this page, on a later page of top-level threads ("more
    // comments"), or on the page of the comment where its thread continues.
    let mut seen = std::collections::HashSet::new();
    let mut pending = vec![format!("/s/{story}")];
    let mut pages = 0;
    while let Some(path) = pending.pop() {
        pages += 1;
        let page = alice.page(&path).await;
        for id in select_attr(&page, "div.comment", "data-id") {
            seen.insert(id.parse::<i64>().unwrap());
        }
        pending.extend(select_attr(&page, "a.continue", "href"));
        pending.extend(select_attr(&page, ".more-comments a", "href"));
        assert!(pages < 100, "no end to the pages");
    }
    let all: std::collections::HashSet<i64> = ids.iter().copied().collect();
    assert_eq!(seen, all, "every comment is on some page");
}

/// (id, the ids of the comments nested in its `<details>`) for the comments of a page.
fn nested_ids(page: &Html, id: i64) -> Vec<i64> {
    let selector = Selector::parse(&format!("#c{id} > details div.comment")).unwrap();
    page.select(&selector)
        .map(|e| e.value().attr("data-id").unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn a_subtree_collapses_with_its_count_and_a_deep_thread_continues() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let story = alice
        .share("https://example.com/deep", "A deep thread", "talk")
        .await;
    // A chain of ten replies under one comment, and a second top-level comment.
    let mut chain = vec![bob.comment(story, None, "top").await];
    for n in 1..10 {
        let parent = *chain.last().unwrap();
        let who = if n % 2 == 0 { &bob } else { &alice };
        chain.push(
            who.comment(story, Some(parent), &format!("reply {n}"))
                .await,
        );
    }
    let other = alice.comment(story, None, "another thread").await;

    let page = bob.page(&format!("/s/{story}")).await;
    // The first comment's <details> holds its whole shown subtree, and says how many replies
    // collapsing it hides; the other thread is outside it.
    let inside = nested_ids(&page, chain[0]);
    assert_eq!(
        inside,
        chain[1..8].to_vec(),
        "depth 0 to 7 on the story page"
    );
    assert!(!inside.contains(&other));
    let counts = select_text(&page, &format!("#c{} > .head .hidden-count", chain[0]));
    assert_eq!(counts, vec!["(9 replies hidden)"]);
    // Deeper than the limit, the thread continues on the last shown comment's page.
    assert_eq!(
        select_attr(&page, "a.continue", "href"),
        vec![format!("/c/{}", chain[7])]
    );
    assert_eq!(
        select_text(&page, "a.continue"),
        vec!["continue this thread (2 more replies)"]
    );
    let continued = bob.page(&format!("/c/{}", chain[7])).await;
    assert_eq!(
        select_attr(&continued, "div.comment", "data-id"),
        vec![
            chain[7].to_string(),
            chain[8].to_string(),
            chain[9].to_string()
        ]
    );
    // The comment's own page carries its reply and report forms; the story page only links there.
    assert_eq!(
        select_attr(&continued, "form#reply input[name=parent_id]", "value"),
        vec![chain[7].to_string()]
    );
    assert_eq!(count_of(&continued, "form[action$='/report']"), 1);
    assert_eq!(count_of(&page, "form[action^='/c/']"), 0);
    assert_eq!(
        select_attr(&page, &format!("#c{other} a.reply"), "href"),
        vec![format!("/c/{other}#reply")]
    );
}

#[tokio::test]
async fn logging_in_comes_back_with_the_vote_clicked_while_logged_out() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let story = alice
        .share("https://example.com/back", "Come back here", "x")
        .await;
    let comment = alice.comment(story, None, "vote for me").await;
    let path = format!("/s/{story}");

    // A visitor clicks the up-arrow of the comment: it leads to the login form, which carries
    // where to come back to and the vote.
    app.user("bob").await;
    let visitor = app.browser();
    let page = visitor.page(&path).await;
    let up = select_attr(&page, &format!("#c{comment} a.up"), "href");
    assert_eq!(up, vec![format!("/login?next=/s/{story}&vote=c{comment}")]);
    let form = visitor.page(&up[0]).await;
    assert_eq!(
        select_attr(&form, "input[name=next]", "value"),
        vec![path.clone()]
    );
    let response = visitor
        .post(
            "/login",
            &[
                ("name", "bob"),
                ("password", "correct horse"),
                ("next", &path),
                ("vote", &format!("c{comment}")),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), format!("{path}#c{comment}"));
    let page = visitor.page(&path).await;
    assert_eq!(
        select_attr(&page, &format!("#c{comment}"), "data-score"),
        vec!["2"],
        "alice's own vote and bob's"
    );

    // Signing up comes back too; a `next` that leaves the site is ignored.
    let carol = app.browser();
    let response = carol
        .post(
            "/signup",
            &[
                ("name", "carol"),
                ("password", "correct horse"),
                ("next", &path),
                ("vote", &format!("s{story}")),
            ],
        )
        .await;
    assert_eq!(location(&response), format!("{path}#s{story}"));
    let page = carol.page(&path).await;
    assert_eq!(select_attr(&page, "article.story", "data-score"), vec!["2"]);
    for evil in [
        "//evil.example/",
        "/\\evil.example",
        "https://evil.example/",
        "/\t/evil.example",
    ] {
        let dave = app.browser();
        let form = dave.page(&format!("/login?next={}", urlencode(evil))).await;
        assert!(
            select_attr(&form, "input[name=next]", "value").is_empty(),
            "{evil:?}"
        );
        let response = dave
            .post(
                "/login",
                &[
                    ("name", "carol"),
                    ("password", "correct horse"),
                    ("next", evil),
                ],
            )
            .await;
        assert_eq!(location(&response), "/", "{evil:?}");
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn voting_without_script_returns_to_what_was_voted_on() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let story = alice.share("https://example.com/v", "Vote here", "x").await;
    let comment = alice.comment(story, None, "a comment").await;
    let page = format!("{}/s/{story}/vote-here", app.address);
    let csrf = bob.csrf().await;
    for (path, anchor) in [
        (format!("/c/{comment}/vote"), format!("c{comment}")),
        (format!("/s/{story}/vote"), format!("s{story}")),
    ] {
        let response = bob
            .client
            .post(format!("{}{path}", app.address))
            .header("Referer", &page)
            .form(&[("value", "1"), ("csrf", &csrf)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
        assert_eq!(
            location(&response),
            format!("/s/{story}/vote-here#{anchor}")
        );
    }
    // Without a Referer: the story's or the comment's own page.
    let response = bob.vote(&format!("/c/{comment}"), "0").await;
    assert_eq!(location(&response), format!("/c/{comment}#c{comment}"));
}

#[tokio::test]
async fn comments_start_at_one_point_and_pages_show_ranks_dates_and_links() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let story = alice.share("https://example.com/r", "Ranked", "x").await;
    let comment = bob
        .comment(
            story,
            None,
            "Thanks @alice, see https://example.org/more. And @carol@social.example too.",
        )
        .await;
    let page = app.browser().page(&format!("/s/{story}")).await;
    assert_eq!(
        select_attr(&page, &format!("#c{comment}"), "data-score"),
        vec!["1"]
    );
    assert_eq!(
        select_text(&page, &format!("#c{comment} .score")),
        vec!["1"]
    );
    let links = select_attr(&page, &format!("#c{comment} .body a"), "href");
    assert_eq!(
        links,
        vec![
            "/@alice",
            "https://example.org/more",
            "/@carol@social.example"
        ]
    );
    // Every <time> says the full date on hovering.
    let titles = select_attr(&page, "time", "title");
    assert_eq!(titles.len(), 2);
    assert!(titles
        .iter()
        .all(|t| t.ends_with(" UTC") && t.len() == "2026-01-01 00:00 UTC".len()));

    // A bio's bare address is a link too.
    bob.post(
        "/settings",
        &[
            ("display_name", ""),
            ("bio", "I write at https://bob.example"),
            ("avatar_url", ""),
        ],
    )
    .await;
    let profile = app.browser().page("/@bob").await;
    assert_eq!(
        select_attr(&profile, ".bio a", "href"),
        vec!["https://bob.example"]
    );

    // Lists number their stories, continuing on later pages.
    for n in 0..25 {
        alice
            .share(
                &format!("https://example.com/r{n}"),
                &format!("Story {n}"),
                "x",
            )
            .await;
    }
    let first = app.browser().page("/new").await;
    assert_eq!(select_attr(&first, "ol.stories", "start"), vec!["1"]);
    let more = select_attr(&first, ".pager a[rel=next], .pager a", "href");
    let second = app.browser().page(more.last().unwrap()).await;
    assert_eq!(select_attr(&second, "ol.stories", "start"), vec!["26"]);
    assert_eq!(select_attr(&second, "ol.stories > li", "value").len(), 0);
}

#[tokio::test]
async fn a_deleted_story_keeps_its_discussion() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let story = alice
        .share("https://example.com/regret", "A regrettable story", "x")
        .await;
    let comment = bob.comment(story, None, "A thoughtful answer").await;
    let lonely = alice
        .share("https://example.com/lonely", "Nobody answered", "x")
        .await;
    for id in [story, lonely] {
        let deleted = alice.post(&format!("/s/{id}/delete"), &[]).await;
        assert_eq!(deleted.status(), 303);
    }

    let page = app.browser().page(&format!("/s/{story}")).await;
    assert_eq!(
        select_text(&page, "article.story .title a.link"),
        vec!["[story deleted by its submitter]"]
    );
    let html = page.html();
    assert!(!html.contains("A regrettable story") && !html.contains("example.com/regret"));
    assert_eq!(
        select_attr(&page, "div.comment", "data-id"),
        vec![comment.to_string()]
    );
    assert!(html.contains("A thoughtful answer"));
    // It takes no new comments, and the form says so rather than offering one.
    assert_eq!(
        count_of(&bob.page(&format!("/s/{story}")).await, "form#comment"),
        0
    );
    // The comment stays on its author's profile, and a story nobody answered is gone.
    let profile = app.browser().page("/@bob").await;
    assert!(profile.html().contains("A thoughtful answer"));
    assert_eq!(
        app.browser().get(&format!("/s/{lonely}")).await.status(),
        410
    );
}

#[tokio::test]
async fn link_title_and_tags_change_only_within_the_edit_window() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let story = alice
        .share("https://example.com/edit", "First title", "x")
        .await;
    let edit = |title: &'static str, body: &'static str| {
        let alice = &alice;
        async move {
            alice
                .post(
                    &format!("/s/{story}/edit"),
                    &[
                        ("url", "https://example.com/edit"),
                        ("title", title),
                        ("tags", "x"),
                        ("body", body),
                    ],
                )
                .await
        }
    };
    // Within the first hour, anything may change.
    assert_eq!(edit("Second title", "").await.status(), 303);
    // Later, the title may not; the text may, and the story says it was edited.
    sqlx::query("update story set created_at = now() - interval '2 hours' where id = $1")
        .bind(story)
        .execute(&app.pool)
        .await
        .unwrap();
    let form = alice.page(&format!("/s/{story}/edit")).await;
    assert_eq!(count_of(&form, "input[name=title][readonly]"), 1);
    let refused = edit("Third title", "").await;
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.unwrap().contains("first hour"));
    assert_eq!(edit("Second title", "Some context").await.status(), 303);
    let page = alice.page(&format!("/s/{story}")).await;
    assert_eq!(select_text(&page, ".title a.link"), vec!["Second title"]);
    assert!(page.html().contains("Some context"));
    assert_eq!(select_text(&page, "article.story .edited"), vec!["edited"]);

    // A moderator can always edit.
    let mod_browser = app.user("maude").await;
    lien::db::moderation::set_role(&app.pool, None, "maude", "moderator", "trusted")
        .await
        .unwrap();
    let response = mod_browser
        .post(
            &format!("/s/{story}/edit"),
            &[
                ("url", "https://example.com/edit"),
                ("title", "A fairer title"),
                ("tags", "x"),
                ("body", "Some context"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let page = app.browser().page(&format!("/s/{story}")).await;
    assert_eq!(select_text(&page, ".title a.link"), vec!["A fairer title"]);
}

#[tokio::test]
async fn saved_and_hidden_stories_and_a_private_feed() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let keep = alice
        .share("https://example.com/keep", "Worth keeping", "x")
        .await;
    let boring = alice
        .share("https://example.com/boring", "Rather boring", "x")
        .await;
    let comment = alice.comment(keep, None, "A comment worth keeping").await;

    // The buttons are on the lists and on the comment's own page.
    let front = bob.page("/").await;
    assert_eq!(
        count_of(&front, &format!("button[formaction='/s/{keep}/save']")),
        1
    );
    let own = bob.page(&format!("/c/{comment}")).await;
    assert_eq!(
        count_of(&own, &format!("button[formaction='/c/{comment}/save']")),
        1
    );
    for path in [
        format!("/s/{keep}/save"),
        format!("/c/{comment}/save"),
        format!("/s/{boring}/hide"),
    ] {
        assert_eq!(bob.post(&path, &[]).await.status(), 303, "{path}");
    }
    assert_eq!(bob.post("/s/999999/save", &[]).await.status(), 404);

    let saved = bob.page("/saved").await;
    assert_eq!(
        select_text(&saved, "ol.stories h2.title a.link"),
        vec!["Worth keeping"]
    );
    assert!(saved.html().contains("A comment worth keeping"));
    assert_eq!(
        select_attr(&saved, ".hidden-stories button", "formaction"),
        vec![format!("/s/{boring}/unhide")]
    );
    // Hidden from bob's lists only.
    assert_eq!(story_ids(&bob, "/new").await, vec![keep]);
    assert_eq!(story_ids(&alice, "/new").await, vec![boring, keep]);
    // The private feed has both saved things; a wrong secret has nothing.
    let feed_url = select_attr(&saved, "a.private-feed", "href")[0].clone();
    let path = feed_url.strip_prefix(&app.address).unwrap();
    let feed = app.browser().get(path).await.text().await.unwrap();
    assert!(feed.contains("Worth keeping") && feed.contains("A comment worth keeping"));
    assert_eq!(app.browser().get("/saved/nope.rss").await.status(), 404);

    bob.post(&format!("/s/{boring}/unhide"), &[]).await;
    bob.post(&format!("/s/{keep}/unsave"), &[]).await;
    assert_eq!(story_ids(&bob, "/new").await, vec![boring, keep]);
    let saved = bob.page("/saved").await;
    assert!(select_text(&saved, "ol.stories h2.title a.link").is_empty());
}

/// Renames a story with triggers off, so no process of lien notices: a page that still shows the
/// old title afterwards came from the page cache.
async fn rename_unnoticed(app: &TestApp, story: i64, title: &str) {
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query("set local session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("update story set title = $2 where id = $1")
        .bind(story)
        .bind(title)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn tag_filters_for_people_and_for_anonymous_readers_keep_the_page_cache() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let rust = alice
        .share("https://example.com/rust", "About Rust", "rust")
        .await;
    let go = alice
        .share("https://example.com/go", "About Go", "go")
        .await;
    caches_catch_up().await;

    // Signed in: stored with the account.
    let response = alice.post("/filters", &[("tags", "go #Crypto")]).await;
    assert_eq!(location(&response), "/filters?saved=1");
    let form = alice.page("/filters").await;
    assert_eq!(
        select_attr(&form, "input[name=tags]", "value"),
        vec!["crypto go"]
    );
    assert_eq!(story_ids(&alice, "/").await, vec![rust]);
    // A tag's own page still shows it.
    assert_eq!(story_ids(&alice, "/t/go").await, vec![go]);

    // Anonymous: a cookie; a reader without one keeps being served from the page cache.
    let plain = app.browser();
    let filtering = app.browser();
    let response = filtering.post("/filters", &[("tags", "rust")]).await;
    assert_eq!(response.status(), 303);
    // (Any form posted through lien refreshes the shared pages: wait that out first.)
    caches_catch_up().await;
    assert_eq!(story_ids(&plain, "/").await.len(), 2);
    assert_eq!(story_ids(&filtering, "/").await, vec![go]);
    rename_unnoticed(&app, go, "Renamed unnoticed").await;
    let cached = plain.get("/").await.text().await.unwrap();
    assert!(
        cached.contains("About Go"),
        "the unfiltered page came from the cache"
    );
    let own = filtering.get("/").await.text().await.unwrap();
    assert!(
        own.contains("Renamed unnoticed"),
        "a filtered page is the reader's own"
    );
    assert!(!own.contains("About Rust"));
    // Emptying the filters takes the cookie away.
    let response = filtering.post("/filters", &[("tags", "")]).await;
    let cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(cookie.starts_with("lien_filters=;"), "{cookie}");
}

#[tokio::test]
async fn profiles_page_through_everything_show_karma_and_link_remote_originals() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let first = alice.share("https://example.com/p0", "Story 0", "x").await;
    for n in 1..26 {
        alice
            .share(
                &format!("https://example.com/p{n}"),
                &format!("Story {n}"),
                "x",
            )
            .await;
    }
    alice.comment(first, None, "alice's comment").await;
    bob.vote(&format!("/s/{first}"), "1").await;

    // 26 stories: the oldest is on the second page. Karma: 26 own story votes and bob's, and the
    // comment's own vote.
    let page = app.browser().page("/@alice").await;
    assert_eq!(select_attr(&page, "article.story", "data-id").len(), 25);
    assert_eq!(select_text(&page, ".karma"), vec!["28 karma"]);
    assert!(page.html().contains("(27 from stories, 1 from comments)"));
    assert_eq!(
        select_attr(&page, ".pager a[rel=next]", "href"),
        vec!["/@alice?page=2"]
    );
    let second = app.browser().page("/@alice?page=2").await;
    assert_eq!(
        select_attr(&second, "article.story", "data-id"),
        vec![first.to_string()]
    );
    assert!(page.html().contains("joined"));

    // A remote person: a link to their own profile, no "joined" date, and their story and
    // comment link to their originals.
    let remote: i64 = sqlx::query_scalar(
        "insert into person (name, host, local, ap_id, inbox_url, public_key_pem, fetched_at, profile_url)
         values ('zoe', 'social.example', false, 'https://social.example/users/zoe',
                 'https://social.example/users/zoe/inbox', 'unused', now(), 'https://social.example/@zoe')
         returning id",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let tags = vec!["x".to_owned()];
    let story = lien::db::stories::upsert_remote(
        &app.pool,
        &lien::db::stories::RemoteStory {
            ap_id: "https://social.example/posts/7",
            author_id: remote,
            title: "From afar",
            link: None,
            body: "hello",
            body_html: "<p>hello</p>",
            tags: &tags,
            published: chrono::Utc::now(),
            remote_url: None,
        },
    )
    .await
    .unwrap();
    let comment = lien::db::comments::upsert_remote(
        &app.pool,
        &lien::db::comments::RemoteComment {
            ap_id: "https://social.example/notes/8",
            story_id: first,
            parent_id: None,
            author_id: remote,
            body: "hi",
            body_html: "<p>hi</p>",
            published: chrono::Utc::now(),
            remote_url: None,
        },
    )
    .await
    .unwrap();
    caches_catch_up().await;
    let profile = app.browser().page("/@zoe@social.example").await;
    assert_eq!(
        select_attr(&profile, "a.original", "href")[0],
        "https://social.example/@zoe"
    );
    assert!(!profile.html().contains("joined"));
    let page = app.browser().page(&format!("/s/{story}")).await;
    assert_eq!(
        select_attr(&page, "article.story a.original", "href"),
        vec!["https://social.example/posts/7"]
    );
    let page = app.browser().page(&format!("/s/{first}")).await;
    assert_eq!(
        select_attr(&page, &format!("#c{comment} a.original"), "href"),
        vec!["https://social.example/notes/8"]
    );
    // Local ones have none.
    assert_eq!(count_of(&page, "article.story a.original"), 0);
}

#[tokio::test]
async fn search_finds_stories_comments_and_people_sorted_and_as_a_feed() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let _ = app.user("compiler_fan").await;
    let old = alice
        .share("https://example.com/c1", "The compiler explained", "rust")
        .await;
    let new = alice
        .share(
            "https://example.com/c2",
            "Another compiler, compiler, compiler",
            "x",
        )
        .await;
    sqlx::query("update story set created_at = now() - interval '1 day' where id = $1")
        .bind(old)
        .execute(&app.pool)
        .await
        .unwrap();
    let comment = alice
        .comment(old, None, "The borrow checker is part of the compiler.")
        .await;
    let reader = app.browser();

    let page = reader.page("/search?q=compiler").await;
    assert_eq!(
        select_attr(&page, "input[name=q]", "value"),
        vec!["compiler"]
    );
    let found = select_attr(&page, "article.story", "data-id");
    assert_eq!(found.len(), 2);
    let newest = reader.page("/search?q=compiler&sort=new").await;
    assert_eq!(
        select_attr(&newest, "article.story", "data-id"),
        vec![new.to_string(), old.to_string()]
    );
    assert_eq!(
        select_attr(&newest, "select[name=sort] option[selected]", "value"),
        vec!["new"]
    );

    let comments = reader.page("/search?q=borrow+checker&what=comments").await;
    assert_eq!(
        select_attr(&comments, "div.comment", "data-id"),
        vec![comment.to_string()]
    );
    let people = reader.page("/search?q=compiler&what=people").await;
    assert_eq!(
        select_attr(&people, "ul.people a", "href"),
        vec!["/@compiler_fan"]
    );
    // The tabs keep the query.
    assert!(select_attr(&people, "nav.windows a", "href")
        .iter()
        .all(|h| h.starts_with("/search?q=compiler&what=")));

    // The feed of a search, linked from its page.
    let feed_link = select_attr(&newest, "link[type='application/rss+xml']", "href");
    assert_eq!(feed_link, vec!["/search.rss?q=compiler&sort=new"]);
    let feed = reader.get(&feed_link[0]).await;
    assert_eq!(feed.status(), 200);
    let xml = feed.text().await.unwrap();
    assert!(xml.contains("Another compiler") && xml.contains("The compiler explained"));
    assert_eq!(reader.get("/search.rss?q=").await.status(), 422);
    assert_eq!(reader.get("/search?q=x&what=things").await.status(), 422);
}

#[tokio::test]
async fn sharing_a_link_already_here_says_so_before_and_after() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let story = alice
        .share("https://example.com/known", "Known already", "x")
        .await;
    alice.comment(story, None, "first!").await;

    // Before submitting: the form names the discussion (the script fetches this same notice).
    let form = bob.page("/submit?url=http://www.example.com/known/").await;
    let notice = select_text(&form, ".notice.already");
    assert_eq!(notice.len(), 1);
    assert!(
        notice[0].starts_with("This link was shared just now by alice"),
        "{notice:?}"
    );
    assert!(notice[0].contains("(1 comment)"), "{notice:?}");
    assert_eq!(
        select_attr(&form, ".notice.already a", "href"),
        vec![format!("/s/{story}/known-already")]
    );
    assert_eq!(
        select_attr(&form, "input[name=url]", "value"),
        vec!["http://www.example.com/known/"]
    );
    let fresh = bob.page("/submit?url=https://example.com/new").await;
    assert!(select_text(&fresh, ".notice.already").is_empty());

    // Submitting anyway leads there, says the upvote counted, and counts it.
    let response = bob
        .post(
            "/submit",
            &[
                ("url", "https://example.com/known"),
                ("title", "Again"),
                ("tags", "x"),
            ],
        )
        .await;
    assert_eq!(location(&response), format!("/s/{story}?shared=again"));
    let page = bob.page(&location(&response)).await;
    assert_eq!(select_text(&page, ".notice.shared-again").len(), 1);
    assert_eq!(select_attr(&page, "article.story", "data-score"), vec!["2"]);
    assert_eq!(count(&app.pool, "story").await, 1);
}
