//! RSS 2.0 and Atom 1.0 for every list (SPEC section 3). Pure functions: stories or comments become
//! [`Item`]s, and items become a feed document in either format. The handlers in `web::feeds` fetch
//! the rows and add the HTTP validators.

use atom_syndication as atom;
use chrono::{DateTime, Utc};
use rss::extension::{atom::AtomExtension, dublincore::DublinCoreExtension};
use serde::Deserialize;

use crate::db::{
    accounts::{handle, profile_href},
    comments::Comment,
    stories::{slug, Story},
};

/// Items in every feed.
pub const FEED_SIZE: i64 = 25;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Rss,
    Atom,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Rss => "rss",
            Format::Atom => "atom",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Rss => "application/rss+xml; charset=utf-8",
            Format::Atom => "application/atom+xml; charset=utf-8",
        }
    }
}

/// A list's feed URL in one format: `/new` gives `/new.rss`; a query stays last (`/top.rss?t=week`).
pub fn feed_path(path: &str, extension: &str) -> String {
    match path.split_once('?') {
        Some((path, query)) => format!("{path}.{extension}?{query}"),
        None => format!("{path}.{extension}"),
    }
}

/// What a feed is about.
pub struct Channel {
    /// The instance's origin (`config.origin()`), which makes every link absolute.
    pub origin: String,
    pub title: String,
    pub description: String,
    /// The HTML page this feed mirrors (`/` for hot).
    pub page_path: String,
    /// The feed's path without extension, as `Layout::with_feed` has it (`/hot`, `/top?t=week`).
    pub feed_path: String,
}

impl Channel {
    pub fn page_url(&self) -> String {
        format!("{}{}", self.origin, self.page_path)
    }

    pub fn feed_url(&self, format: Format) -> String {
        format!(
            "{}{}",
            self.origin,
            feed_path(&self.feed_path, format.extension())
        )
    }
}

/// One entry, in the terms both formats share.
#[derive(Clone, Debug)]
pub struct Item {
    pub title: String,
    /// Where the item leads: the shared link, the discussion of a text post, a comment's permalink.
    pub link: String,
    /// The discussion page, for stories.
    pub comments: Option<String>,
    /// Stable and absolute: the discussion page (without slug, which changes with the title) or the
    /// comment's permalink.
    pub id: String,
    pub author: String,
    pub author_url: String,
    pub categories: Vec<String>,
    pub published: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    /// HTML: the sanitized body and a line with the score, the comments and the links.
    pub html: String,
}

/// A story as an item: the link is the shared URL, or the discussion for a text post.
pub fn story_item(origin: &str, story: &Story) -> Item {
    let discussion = format!("{origin}/s/{}", story.id);
    let author = handle(&story.author_name, story.author_host.as_deref());
    let author_url = format!(
        "{origin}{}",
        profile_href(&story.author_name, story.author_host.as_deref())
    );
    let mut meta = Vec::new();
    if let (Some(url), Some(domain)) = (&story.url, &story.domain) {
        meta.push(format!(
            r#"<a href="{}">{}</a>"#,
            escape(url),
            escape(domain)
        ));
    }
    meta.push(plural(i64::from(story.score), "point"));
    meta.push(format!(
        r#"<a href="{}/{}">{}</a>"#,
        escape(&discussion),
        escape(&slug(&story.title)),
        plural(i64::from(story.comment_count), "comment")
    ));
    meta.push(format!(
        r#"shared by <a href="{}">{}</a>"#,
        escape(&author_url),
        escape(&author)
    ));
    Item {
        title: story.title.clone(),
        link: story.url.clone().unwrap_or_else(|| discussion.clone()),
        comments: Some(discussion.clone()),
        id: discussion,
        author,
        author_url,
        categories: story.tags.clone(),
        published: story.created_at,
        updated: story.updated_at.unwrap_or(story.created_at),
        html: format!("{}<p>{}</p>", story.body_html, meta.join(" · ")),
    }
}

/// A comment as an item titled with who replied to what: "alice on “Story title”".
pub fn comment_item(origin: &str, comment: &Comment) -> Item {
    let permalink = format!("{origin}/c/{}", comment.id);
    let author = handle(&comment.author_name, comment.author_host.as_deref());
    let author_url = format!(
        "{origin}{}",
        profile_href(&comment.author_name, comment.author_host.as_deref())
    );
    let story_url = format!(
        "{origin}/s/{}/{}",
        comment.story_id,
        slug(&comment.story_title)
    );
    let mut meta = vec![
        plural(i64::from(comment.score), "point"),
        format!(
            r#"on <a href="{}">{}</a>"#,
            escape(&story_url),
            escape(&comment.story_title)
        ),
    ];
    if let Some(parent) = comment.parent_id {
        meta.push(format!(
            r#"in reply to <a href="{origin}/c/{parent}">this comment</a>"#
        ));
    }
    Item {
        title: format!("{author} on “{}”", comment.story_title),
        link: permalink.clone(),
        comments: None,
        id: permalink,
        author,
        author_url,
        categories: Vec::new(),
        published: comment.created_at,
        updated: comment.updated_at.unwrap_or(comment.created_at),
        html: format!("{}<p>{}</p>", comment.body_html, meta.join(" · ")),
    }
}

/// A mention from another server's post that lien keeps no copy of: its text, leading to the
/// original, with a link that opens it here to answer it.
pub fn remote_mention_item(
    origin: &str,
    mention: &crate::db::notifications::RemoteMention,
) -> Item {
    let author = handle(&mention.author_name, mention.author_host.as_deref());
    let author_url = format!(
        "{origin}{}",
        profile_href(&mention.author_name, mention.author_host.as_deref())
    );
    let reply = format!(
        "{origin}/search?q={}",
        url::form_urlencoded::byte_serialize(mention.ap_id.as_bytes()).collect::<String>()
    );
    Item {
        title: format!("{author} mentioned you"),
        link: mention.url.clone(),
        comments: None,
        id: mention.ap_id.clone(),
        author,
        author_url,
        categories: Vec::new(),
        published: mention.created_at,
        updated: mention.created_at,
        html: format!(
            r#"{}<p><a href="{}">reply</a></p>"#,
            mention.content_html,
            escape(&reply)
        ),
    }
}

/// A line of the moderation log as an item.
pub fn mod_action_item(origin: &str, action: &crate::db::moderation::ModAction) -> Item {
    let link = format!("{origin}/modlog#m{}", action.id);
    let moderator = action
        .moderator
        .clone()
        .unwrap_or_else(|| "the administrator".into());
    let title = format!(
        "{moderator}: {} {} {}",
        action.action.replace('_', " "),
        action.target_kind,
        action.target_id
    );
    Item {
        html: format!(
            "<p>{}</p><p>Reason: {}</p>",
            escape(&title),
            escape(&action.reason)
        ),
        title,
        link: link.clone(),
        comments: None,
        id: link,
        author_url: format!("{origin}/modlog"),
        author: moderator,
        categories: Vec::new(),
        published: action.created_at,
        updated: action.created_at,
    }
}

/// When the feed last changed as far as its items tell: the newest publication or edit.
pub fn last_modified(items: &[Item]) -> Option<DateTime<Utc>> {
    items
        .iter()
        .map(|item| item.updated.max(item.published))
        .max()
}

/// The feed document.
pub fn render(format: Format, channel: &Channel, items: &[Item]) -> String {
    let xml = match format {
        Format::Rss => rss_channel(channel, items).to_string(),
        Format::Atom => atom_feed(channel, items).to_string(),
    };
    // Both crates write their own declaration; ours says the encoding.
    let document = xml
        .strip_prefix("<?xml")
        .and_then(|rest| rest.split_once("?>"))
        .map_or(xml.as_str(), |(_, document)| document)
        .trim_start();
    // Whatever is stored (rows from before input was checked, a peer's text), no character XML
    // cannot carry reaches the reader: one would make the whole feed unreadable.
    let document = crate::input::strip_refused(document);
    format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n{document}")
}

fn rss_channel(channel: &Channel, items: &[Item]) -> rss::Channel {
    let self_link = atom::Link {
        href: channel.feed_url(Format::Rss),
        rel: "self".into(),
        mime_type: Some("application/rss+xml".into()),
        ..Default::default()
    };
    rss::Channel {
        title: channel.title.clone(),
        link: channel.page_url(),
        description: channel.description.clone(),
        generator: Some("lien".into()),
        last_build_date: last_modified(items).map(|date| date.to_rfc2822()),
        atom_ext: Some(AtomExtension {
            links: vec![self_link],
        }),
        items: items.iter().map(rss_item).collect(),
        ..Default::default()
    }
}

fn rss_item(item: &Item) -> rss::Item {
    rss::Item {
        title: Some(item.title.clone()),
        link: Some(item.link.clone()),
        description: Some(item.html.clone()),
        comments: item.comments.clone(),
        guid: Some(rss::Guid {
            value: item.id.clone(),
            permalink: true,
        }),
        pub_date: Some(item.published.to_rfc2822()),
        categories: item
            .categories
            .iter()
            .map(|tag| rss::Category {
                name: tag.clone(),
                domain: None,
            })
            .collect(),
        // RSS's own <author> wants an e-mail address; readers take the name from dc:creator.
        dublin_core_ext: Some(DublinCoreExtension {
            creators: vec![item.author.clone()],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn atom_feed(channel: &Channel, items: &[Item]) -> atom::Feed {
    let updated = last_modified(items).unwrap_or(DateTime::UNIX_EPOCH);
    atom::Feed {
        title: atom::Text::plain(channel.title.clone()),
        id: channel.feed_url(Format::Atom),
        updated: updated.fixed_offset(),
        subtitle: Some(atom::Text::plain(channel.description.clone())),
        generator: Some(atom::Generator {
            value: "lien".into(),
            uri: None,
            version: Some(env!("CARGO_PKG_VERSION").into()),
        }),
        links: vec![
            link("alternate", channel.page_url(), "text/html"),
            link(
                "self",
                channel.feed_url(Format::Atom),
                "application/atom+xml",
            ),
        ],
        entries: items
            .iter()
            .map(|item| atom_entry(&channel.origin, item))
            .collect(),
        ..Default::default()
    }
}

fn atom_entry(origin: &str, item: &Item) -> atom::Entry {
    let mut links = vec![link("alternate", item.link.clone(), "text/html")];
    if let Some(comments) = &item.comments {
        // RFC 4685: where the replies are.
        links.push(link("replies", comments.clone(), "text/html"));
    }
    atom::Entry {
        title: atom::Text::plain(item.title.clone()),
        id: item.id.clone(),
        updated: item.updated.fixed_offset(),
        published: Some(item.published.fixed_offset()),
        authors: vec![atom::Person {
            name: item.author.clone(),
            uri: Some(item.author_url.clone()),
            ..Default::default()
        }],
        categories: item
            .categories
            .iter()
            .map(|tag| atom::Category {
                term: tag.clone(),
                scheme: Some(format!("{origin}/t/")),
                label: None,
            })
            .collect(),
        links,
        content: Some(atom::Content {
            // Relative links in a body resolve against the instance.
            base: Some(format!("{origin}/")),
            value: Some(item.html.clone()),
            content_type: Some("html".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn link(rel: &str, href: String, mime_type: &str) -> atom::Link {
    atom::Link {
        href,
        rel: rel.into(),
        mime_type: Some(mime_type.into()),
        ..Default::default()
    }
}

/// "1 point", "3 comments".
fn plural(n: i64, noun: &str) -> String {
    if n == 1 || n == -1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Text (titles, names, URLs) put into the HTML of a description.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn story(title: &str, url: Option<&str>) -> Story {
        let created_at = DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .unwrap()
            .to_utc();
        Story {
            id: 7,
            ap_id: "https://lien.example/s/7".into(),
            local: true,
            author_id: 1,
            author_name: "alice".into(),
            author_host: None,
            title: title.into(),
            url: url.map(str::to_owned),
            domain: url.map(|_| "example.com".to_owned()),
            body: String::new(),
            body_html: if url.is_none() {
                "<p>hello <em>there</em></p>".into()
            } else {
                String::new()
            },
            score: 3,
            upvotes: 3,
            downvotes: 0,
            comment_count: 1,
            boost_count: 0,
            quote_count: 0,
            created_at,
            updated_at: None,
            deleted_at: None,
            removed_at: None,
            removed_reason: None,
            locked_at: None,
            tags: vec!["rust".into(), "web".into()],
            community: None,
            preview: Default::default(),
        }
    }

    fn channel() -> Channel {
        Channel {
            origin: "https://lien.example".into(),
            title: "New & <noteworthy>".into(),
            description: "newest first".into(),
            page_path: "/new".into(),
            feed_path: "/new".into(),
        }
    }

    #[test]
    fn feed_paths_keep_the_query_last() {
        assert_eq!(feed_path("/t/rust", "rss"), "/t/rust.rss");
        assert_eq!(feed_path("/top?t=week", "atom"), "/top.atom?t=week");
    }

    #[test]
    fn story_items_link_out_and_discuss_at_home() {
        let link = story_item(
            "https://lien.example",
            &story("A", Some("https://example.com/a?x=1&y=2")),
        );
        assert_eq!(link.link, "https://example.com/a?x=1&y=2");
        assert_eq!(link.id, "https://lien.example/s/7");
        assert!(
            link.html
                .contains(r#"<a href="https://example.com/a?x=1&amp;y=2">example.com</a>"#),
            "{}",
            link.html
        );
        assert!(
            link.html.contains("3 points") && link.html.contains("1 comment<"),
            "{}",
            link.html
        );
        let text = story_item("https://lien.example", &story("Ask", None));
        assert_eq!(text.link, "https://lien.example/s/7");
        assert!(
            text.html.starts_with("<p>hello <em>there</em></p>"),
            "{}",
            text.html
        );
    }

    #[test]
    fn both_formats_escape() {
        let items = [story_item(
            "https://lien.example",
            &story(r#"A & B <em> "q""#, None),
        )];
        for format in [Format::Rss, Format::Atom] {
            let xml = render(format, &channel(), &items);
            assert!(
                xml.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<"),
                "{xml}"
            );
            assert_eq!(xml.matches("<?xml ").count(), 1, "one declaration: {xml}");
            assert!(xml.contains("New &amp; &lt;noteworthy&gt;"), "{xml}");
            assert!(!xml.contains("<em> \"q\""), "the title is escaped: {xml}");
        }
    }

    #[test]
    fn an_empty_feed_is_still_a_feed() {
        let atom = render(Format::Atom, &channel(), &[]);
        assert!(
            atom.contains("<updated>1970-01-01T00:00:00+00:00</updated>"),
            "{atom}"
        );
        assert!(last_modified(&[]).is_none());
    }
}
