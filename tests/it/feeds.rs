//! RSS and Atom for every list (SPEC section 3), read back with an independent parser (feed-rs), the
//! way a feed reader would.

use chrono::{Duration, Utc};
use feed_rs::model::{Entry, Feed, FeedType, LinkTarget};
use reqwest::{header, StatusCode};

use crate::helpers::{select_attr, Browser, TestApp};

const RSS: &str = "application/rss+xml; charset=utf-8";
const ATOM: &str = "application/atom+xml; charset=utf-8";

/// A title that needs escaping in XML and in the HTML of a description.
const AWKWARD: &str = r#"A & B <em> "q""#;

/// Fetches a feed, checks its content type, and parses it.
async fn feed(browser: &Browser, path: &str) -> Feed {
    let (feed, _) = feed_and_xml(browser, path).await;
    feed
}

async fn feed_and_xml(browser: &Browser, path: &str) -> (Feed, String) {
    let response = browser.get(path).await;
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    let rss = path.split('?').next().unwrap().ends_with(".rss");
    let content_type = response.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, if rss { RSS } else { ATOM }, "{path}");
    let xml = response.text().await.unwrap();
    assert!(
        xml.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"),
        "{path}: {xml}"
    );
    assert!(
        !xml.contains("<?xml-stylesheet"),
        "{path} needs no stylesheet: {xml}"
    );
    let feed = feed_rs::parser::parse(xml.as_bytes())
        .unwrap_or_else(|e| panic!("{path} does not parse: {e}\n{xml}"));
    assert_eq!(
        feed.feed_type,
        if rss { FeedType::RSS2 } else { FeedType::Atom },
        "{path}"
    );
    (feed, xml)
}

fn title(entry: &Entry) -> String {
    entry.title.as_ref().expect("a title").content.clone()
}

fn titles(feed: &Feed) -> Vec<String> {
    feed.entries.iter().map(title).collect()
}

/// Where the item leads (RSS `link`, Atom `rel="alternate"`).
fn link(entry: &Entry) -> String {
    let link = entry
        .links
        .iter()
        .find(|l| l.target.is_none() && l.rel.as_deref().is_none_or(|rel| rel == "alternate"))
        .expect("a link");
    link.href.clone()
}

/// The discussion (RSS `comments`, Atom `rel="replies"`).
fn discussion(entry: &Entry) -> Option<String> {
    entry
        .links
        .iter()
        .find(|l| l.target == Some(LinkTarget::Comments) || l.rel.as_deref() == Some("replies"))
        .map(|l| l.href.clone())
}

/// The HTML of the item: RSS `description`, Atom `content`.
fn html(entry: &Entry) -> String {
    match (&entry.content, &entry.summary) {
        (Some(content), _) => content.body.clone().unwrap_or_default(),
        (None, Some(summary)) => summary.content.clone(),
        (None, None) => String::new(),
    }
}

fn tags(entry: &Entry) -> Vec<String> {
    entry.categories.iter().map(|c| c.term.clone()).collect()
}

fn authors(entry: &Entry) -> Vec<String> {
    entry
        .authors
        .iter()
        .filter_map(|a| a.name.clone())
        .collect()
}

#[tokio::test]
async fn story_feeds_carry_links_discussions_authors_tags_and_dates() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let shared = alice
        .share("https://example.com/post?a=1&b=2", AWKWARD, "rust web")
        .await;
    let text = alice
        .share_text("Ask: what do you read?", "Tell me **everything**", "ask")
        .await;
    let bob = app.user("bob").await;
    bob.comment(shared, None, "first").await;
    let visitor = app.browser();
    let origin = &app.address;

    for path in ["/new.rss", "/new.atom", "/hot.rss", "/hot.atom"] {
        let (feed, xml) = feed_and_xml(&visitor, path).await;
        assert!(
            xml.contains("A &amp; B &lt;em&gt;"),
            "{path} escapes the title: {xml}"
        );
        let mut entries: Vec<&Entry> = feed.entries.iter().collect();
        entries.sort_by_key(|e| title(e));
        let [story, post] = entries[..] else {
            panic!("{path}: two entries, got {:?}", titles(&feed))
        };

        assert_eq!(title(story), AWKWARD, "{path}");
        assert_eq!(
            link(story),
            "https://example.com/post?a=1&b=2",
            "{path}: the shared URL"
        );
        assert_eq!(
            discussion(story),
            Some(format!("{origin}/s/{shared}")),
            "{path}"
        );
        assert_eq!(
            story.id,
            format!("{origin}/s/{shared}"),
            "{path}: guid/id is the discussion"
        );
        assert_eq!(tags(story), ["rust", "web"], "{path}");
        assert_eq!(authors(story), ["alice"], "{path}");
        let published = story.published.expect("a publication date");
        assert!(
            (Utc::now() - published).abs() < Duration::minutes(5),
            "{path}: {published}"
        );
        let body = html(story);
        assert!(
            body.contains("1 point") && body.contains("1 comment"),
            "{path}: score and comments: {body}"
        );
        assert!(
            body.contains(&format!("href=\"{origin}/s/{shared}/")),
            "{path}: links the discussion: {body}"
        );

        assert_eq!(title(post), "Ask: what do you read?");
        assert_eq!(
            link(post),
            format!("{origin}/s/{text}"),
            "{path}: a text post leads to its discussion"
        );
        // feed-rs drops an RSS `comments` that repeats the `link`; the element is there all the same.
        let comments = discussion(post).unwrap_or_else(|| link(post));
        assert_eq!(comments, format!("{origin}/s/{text}"), "{path}");
        if path.ends_with(".rss") {
            assert!(
                xml.contains(&format!("<comments>{origin}/s/{text}</comments>")),
                "{path}: {xml}"
            );
        }
        assert_eq!(tags(post), ["ask"]);
        assert!(
            html(post).contains("<strong>everything</strong>"),
            "{path}: the rendered body: {}",
            html(post)
        );
    }
    // /new is newest first.
    let new = feed(&visitor, "/new.atom").await;
    assert_eq!(titles(&new), ["Ask: what do you read?", AWKWARD]);
    assert!(new.updated.is_some());
}

#[tokio::test]
async fn comment_feeds_say_who_replied_to_what() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let story = alice.share("https://example.com/a", AWKWARD, "rust").await;
    let other = alice
        .share("https://example.com/b", "Another story", "rust")
        .await;
    let first = bob.comment(story, None, "I *think* so").await;
    let reply = alice.comment(story, Some(first), "Do you?").await;
    let last = carol.comment(story, None, "Late & loud").await;
    let elsewhere = carol.comment(other, None, "Elsewhere").await;
    let visitor = app.browser();
    let origin = &app.address;

    for format in ["rss", "atom"] {
        let path = format!("/s/{story}.{format}");
        let feed = feed(&visitor, &path).await;
        let expected = [
            (last, "carol", "Late &amp; loud"),
            (reply, "alice", "Do you?"),
            (first, "bob", "I <em>think</em> so"),
        ];
        assert_eq!(
            feed.entries.len(),
            expected.len(),
            "{path}: {:?}",
            titles(&feed)
        );
        for (entry, (id, author, body)) in feed.entries.iter().zip(expected) {
            assert_eq!(title(entry), format!("{author} on “{AWKWARD}”"), "{path}");
            assert_eq!(
                link(entry),
                format!("{origin}/c/{id}"),
                "{path}: the permalink"
            );
            assert_eq!(entry.id, format!("{origin}/c/{id}"), "{path}");
            assert_eq!(authors(entry), [author], "{path}");
            assert!(html(entry).contains(body), "{path}: {}", html(entry));
            assert!(entry.published.is_some(), "{path}");
        }
        assert!(
            html(&feed.entries[1]).contains(&format!("{origin}/c/{first}")),
            "a reply links its parent"
        );
        let newest_first = feed
            .entries
            .windows(2)
            .all(|w| w[0].published >= w[1].published);
        assert!(newest_first, "{path}: in order");

        let path = format!("/comments.{format}");
        let all = feed_and_xml(&visitor, &path).await.0;
        let ids: Vec<String> = all.entries.iter().map(|e| e.id.clone()).collect();
        let expected: Vec<String> = [elsewhere, last, reply, first]
            .iter()
            .map(|id| format!("{origin}/c/{id}"))
            .collect();
        assert_eq!(ids, expected, "{path}: newest first, across stories");
        assert_eq!(title(&all.entries[0]), "carol on “Another story”");
    }

    // A deleted comment leaves the feed; its reply stays.
    assert_eq!(
        bob.post(&format!("/c/{first}/delete"), &[]).await.status(),
        StatusCode::SEE_OTHER
    );
    let feed = feed(&visitor, &format!("/s/{story}.rss")).await;
    assert_eq!(
        titles(&feed),
        [
            format!("carol on “{AWKWARD}”"),
            format!("alice on “{AWKWARD}”")
        ]
    );
}

#[tokio::test]
async fn tag_domain_person_and_top_feeds_hold_only_their_stories() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    alice
        .share("https://www.example.com/1", "Rust on example", "rust")
        .await;
    bob.share("https://other.org/2", "Rust and Go elsewhere", "rust go")
        .await;
    alice.share_text("Go, a text", "hello", "go").await;
    let visitor = app.browser();
    let sorted = |feed: Feed| {
        let mut titles = titles(&feed);
        titles.sort();
        titles
    };

    for format in ["rss", "atom"] {
        let rust = feed(&visitor, &format!("/t/rust.{format}")).await;
        assert_eq!(
            sorted(rust),
            ["Rust and Go elsewhere", "Rust on example"],
            "{format}"
        );
        assert!(feed(&visitor, &format!("/t/go.{format}"))
            .await
            .entries
            .iter()
            .all(|e| tags(e).contains(&"go".into())));
        let site = feed(&visitor, &format!("/domain/example.com.{format}")).await;
        assert_eq!(titles(&site), ["Rust on example"], "{format}");
        let site = feed(&visitor, &format!("/domain/www.example.com.{format}")).await;
        assert_eq!(
            titles(&site),
            ["Rust on example"],
            "{format}: www. is the same site"
        );
        let person = feed(&visitor, &format!("/@alice.{format}")).await;
        assert_eq!(
            titles(&person),
            ["Go, a text", "Rust on example"],
            "{format}: newest first"
        );
        let host = app.address.trim_start_matches("http://");
        let person = feed(&visitor, &format!("/@bob@{host}.{format}")).await;
        assert_eq!(
            titles(&person),
            ["Rust and Go elsewhere"],
            "{format}: name@this-host is local"
        );
        let top = feed(&visitor, &format!("/top.{format}?t=week")).await;
        assert_eq!(top.entries.len(), 3, "{format}");
        assert_eq!(
            feed(&visitor, &format!("/top.{format}"))
                .await
                .entries
                .len(),
            3,
            "a week by default"
        );
    }

    for path in ["/@nobody.rss", "/s/999.atom", "/s/abc.rss", "/hot.xml"] {
        assert_eq!(
            visitor.get(path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    assert_eq!(
        visitor.get("/top.rss?t=decade").await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // The pages themselves are still reached.
    assert_eq!(visitor.get("/@alice").await.status(), StatusCode::OK);
    assert_eq!(visitor.get("/t/rust").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn conditional_gets_answer_304() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let story = alice.share("https://example.com/a", "First", "news").await;
    let visitor = app.browser();
    let url = format!("{}/new.rss", app.address);

    let response = visitor.get("/new.rss").await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let etag = headers[header::ETAG].to_str().unwrap().to_owned();
    let last_modified = headers[header::LAST_MODIFIED].to_str().unwrap().to_owned();
    assert!(etag.starts_with("W/\"") && etag.len() > 10, "{etag}");
    assert_eq!(headers[header::CACHE_CONTROL], "public, max-age=300");
    assert!(
        headers.get(header::SET_COOKIE).is_none(),
        "feeds are cacheable: no cookies"
    );
    let atom = visitor.get("/new.atom").await;
    assert_ne!(
        atom.headers()[header::ETAG].to_str().unwrap(),
        etag,
        "each format has its own tag"
    );

    let conditional = |name: header::HeaderName, value: String| {
        visitor.client.get(&url).header(name, value).send()
    };
    let again = conditional(header::IF_NONE_MATCH, etag.clone())
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()[header::ETAG].to_str().unwrap(), etag);
    assert_eq!(
        again.headers()[header::CACHE_CONTROL],
        "public, max-age=300"
    );
    assert!(again.bytes().await.unwrap().is_empty());
    let again = conditional(header::IF_MODIFIED_SINCE, last_modified.clone())
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let old = "Mon, 01 Jan 2024 00:00:00 GMT".to_owned();
    assert_eq!(
        conditional(header::IF_MODIFIED_SINCE, old)
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    // If-None-Match decides when both are sent (RFC 9110): a different tag means a fresh copy.
    let both = visitor
        .client
        .get(&url)
        .header(header::IF_NONE_MATCH, "\"something-else\"")
        .header(header::IF_MODIFIED_SINCE, last_modified.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), StatusCode::OK);

    // A vote changes no date but changes the feed (the score is in it): the tag follows the body.
    let bob = app.user("bob").await;
    bob.vote(&format!("/s/{story}"), "1").await;
    let after_vote = conditional(header::IF_NONE_MATCH, etag.clone())
        .await
        .unwrap();
    assert_eq!(after_vote.status(), StatusCode::OK);
    let new_etag = after_vote.headers()[header::ETAG]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_etag, etag);
    assert!(after_vote.text().await.unwrap().contains("2 points"));

    // A new story is a newer item: both validators move on.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    alice.share("https://example.com/b", "Second", "news").await;
    assert_eq!(
        conditional(header::IF_NONE_MATCH, new_etag)
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let newer = conditional(header::IF_MODIFIED_SINCE, last_modified.clone())
        .await
        .unwrap();
    assert_eq!(newer.status(), StatusCode::OK);
    assert_ne!(
        newer.headers()[header::LAST_MODIFIED].to_str().unwrap(),
        last_modified
    );
}

#[tokio::test]
async fn browsers_get_a_page_about_the_feed_and_readers_the_feed() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    alice
        .share("https://example.com/a", "A story in the feed", "rust")
        .await;
    let visitor = app.browser();
    // What Chromium and Firefox send for a link they follow, and what FreshRSS sends.
    const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    const FRESHRSS: &str = "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, \
                            application/xml;q=0.8, text/xml;q=0.8, text/html;q=0.7, */*;q=0.1";
    for (path, format, other) in [
        ("/hot.atom", "Atom", "/hot.rss"),
        ("/t/rust.rss", "RSS", "/t/rust.atom"),
    ] {
        let url = format!("{}{path}", app.address);
        let as_browser = visitor
            .client
            .get(&url)
            .header(header::ACCEPT, BROWSER)
            .send()
            .await
            .unwrap();
        assert_eq!(as_browser.status(), StatusCode::OK);
        assert_eq!(
            as_browser.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8",
            "{path}"
        );
        assert!(as_browser.headers()[header::VARY]
            .to_str()
            .unwrap()
            .contains("Accept"));
        let page = scraper::Html::parse_document(&as_browser.text().await.unwrap());
        // What the feed is, its address to copy, the other format, and its newest items.
        let title = crate::helpers::select_text(&page, "h1").join("");
        assert!(title.contains(format), "{path}: {title}");
        assert_eq!(
            select_attr(&page, "input#feed-url", "value"),
            std::slice::from_ref(&url)
        );
        assert!(select_attr(&page, "a", "href").contains(&format!("{}{other}", app.address)));
        assert_eq!(
            crate::helpers::select_text(&page, ".feed-items a")
                .first()
                .map(String::as_str),
            Some("A story in the feed"),
            "{path}"
        );
        assert!(
            select_attr(&page, "link[rel=alternate]", "href").len() >= 2,
            "the page keeps its feed links for readers' discovery"
        );

        let as_reader = visitor
            .client
            .get(&url)
            .header(header::ACCEPT, FRESHRSS)
            .send()
            .await
            .unwrap();
        let expected = if format == "RSS" { RSS } else { ATOM };
        assert_eq!(
            as_reader.headers()[header::CONTENT_TYPE],
            expected,
            "{path}"
        );
        let xml = as_reader.text().await.unwrap();
        feed_rs::parser::parse(xml.as_bytes()).expect("the reader gets the feed");
    }
    // A reader that sends no Accept at all gets the feed too.
    let plain = visitor.get("/hot.rss").await;
    assert_eq!(plain.headers()[header::CONTENT_TYPE], RSS);
    // The XSLT is gone.
    assert_eq!(
        visitor.get("/static/feed.xsl").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn every_list_page_links_feeds_that_answer() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let story = alice
        .share("https://example.com/a", "A story", "rust")
        .await;
    alice.comment(story, None, "A comment").await;
    let visitor = app.browser();
    let pages = [
        "/".to_owned(),
        "/new".to_owned(),
        "/top?t=month".to_owned(),
        "/comments".to_owned(),
        "/t/rust".to_owned(),
        "/domain/example.com".to_owned(),
        "/@alice".to_owned(),
        format!("/s/{story}"),
        format!("/s/{story}/a-story"),
    ];
    for page in pages {
        let html = visitor.page(&page).await;
        let rss = select_attr(
            &html,
            "link[rel=alternate][type='application/rss+xml']",
            "href",
        );
        let atom = select_attr(
            &html,
            "link[rel=alternate][type='application/atom+xml']",
            "href",
        );
        assert_eq!(
            (rss.len(), atom.len()),
            (1, 1),
            "{page} links one feed of each"
        );
        let rss = feed(&visitor, &rss[0]).await;
        let atom = feed(&visitor, &atom[0]).await;
        assert!(!rss.entries.is_empty(), "{page}: its feed is not empty");
        assert_eq!(
            titles(&rss),
            titles(&atom),
            "{page}: both formats hold the same items"
        );
    }
    let html = visitor.page("/top?t=month").await;
    let rss = select_attr(
        &html,
        "link[rel=alternate][type='application/rss+xml']",
        "href",
    );
    assert_eq!(rss, ["/top.rss?t=month"]);
}

#[tokio::test]
async fn a_deleted_story_leaves_every_feed() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let kept = alice
        .share("https://example.com/kept", "Kept", "news")
        .await;
    let gone = alice
        .share("https://example.com/gone", "Gone", "news")
        .await;
    alice.comment(kept, None, "on kept").await;
    alice.comment(gone, None, "on gone").await;
    let visitor = app.browser();
    assert_eq!(feed(&visitor, "/comments.rss").await.entries.len(), 2);

    assert_eq!(
        alice.post(&format!("/s/{gone}/delete"), &[]).await.status(),
        StatusCode::SEE_OTHER
    );
    for path in [
        "/hot.rss",
        "/new.atom",
        "/t/news.rss",
        "/domain/example.com.atom",
        "/@alice.rss",
        "/top.atom?t=all",
    ] {
        assert_eq!(titles(&feed(&visitor, path).await), ["Kept"], "{path}");
    }
    let comments = feed(&visitor, "/comments.atom").await;
    assert_eq!(
        titles(&comments),
        ["alice on “Kept”"],
        "comments on a deleted story go too"
    );
    assert_eq!(
        visitor.get(&format!("/s/{gone}.rss")).await.status(),
        StatusCode::GONE
    );
}
