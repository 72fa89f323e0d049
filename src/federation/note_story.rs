//! How a remote post becomes a story's link, title and tags: the one place for it, whether the
//! post is a Lemmy `Page` with a title, a followed Mastodon account's status, or a status that
//! mentions a tag group (issue 12, issue 13 point 6).
//!
//! A post with a `name` keeps it as its title and its `Link` attachment (or off-site `url`) as its
//! link. A status has no title: its first link that is not a mention or a hashtag is the story's
//! link, and its text without that link, without mentions and without trailing hashtags is the
//! title, cut at a word boundary under the title limit; without a link it is a text story.

use scraper::{ElementRef, Html, Node};
use url::Url;

use super::protocol::PostJson;

/// Titles are limited to this many characters (as in the share form).
pub const MAX_TITLE: usize = 300;

/// At most this many tags per story.
const MAX_TAGS: usize = 5;

/// A remote post's story parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoryParts {
    pub link: Option<Url>,
    pub title: String,
    /// Whether the title holds the post's whole text (then the body would only repeat it).
    pub title_is_whole_text: bool,
    pub tags: Vec<String>,
}

/// The story a remote top-level post makes. `html` is the post's sanitized HTML.
pub fn story_parts(post: &PostJson, html: &str) -> StoryParts {
    let tags = usable_tags(post);
    if let Some(name) = post
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        return StoryParts {
            link: post.link(),
            title: cut_at_word(&collapse(name), MAX_TITLE),
            title_is_whole_text: false,
            tags,
        };
    }
    let skip: Vec<String> = post
        .mentions()
        .into_iter()
        .chain(hashtag_hrefs(post))
        .map(String::from)
        .collect();
    let document = Html::parse_fragment(html);
    let link = document
        .root_element()
        .descendants()
        .filter_map(ElementRef::wrap)
        .filter(|a| a.value().name() == "a")
        .filter(|a| !is_mention_or_hashtag(a, &skip))
        .find_map(|a| {
            let href = a.value().attr("href")?.parse::<Url>().ok()?;
            matches!(href.scheme(), "http" | "https").then_some(href)
        })
        .or_else(|| post.link());
    // The text, leaving out the link itself and mentions; hashtags stay as words for now.
    let mut text = String::new();
    collect_text(document.root_element(), link.as_ref(), &skip, &mut text);
    let mut words: Vec<&str> = text.split_whitespace().collect();
    while words.last().is_some_and(|w| w.starts_with('#')) {
        words.pop();
    }
    let whole = words.join(" ");
    let title = cut_at_word(&whole, MAX_TITLE);
    let title_is_whole_text = title == whole;
    let title = match (title.is_empty(), &link) {
        (false, _) => title,
        // Only a link: it names itself, without the scheme.
        (true, Some(link)) => {
            let shown = link.as_str();
            let shown = shown.split_once("://").map_or(shown, |(_, rest)| rest);
            cut_at_word(shown.trim_end_matches('/'), MAX_TITLE)
        }
        (true, None) => "(untitled)".to_owned(),
    };
    StoryParts {
        link,
        title,
        title_is_whole_text,
        tags,
    }
}

fn hashtag_hrefs(post: &PostJson) -> Vec<Url> {
    post.tag
        .iter()
        .filter(|t| t.get("type").and_then(|k| k.as_str()) == Some("Hashtag"))
        .filter_map(|t| t.get("href")?.as_str()?.parse().ok())
        .collect()
}

/// A mention or hashtag link, as Mastodon marks them (`class="mention"`, `class="hashtag"`, text
/// starting with `@` or `#`) or as the post's `tag` list names them.
fn is_mention_or_hashtag(a: &ElementRef, skip: &[String]) -> bool {
    let classes = a.value().attr("class").unwrap_or_default();
    let text: String = a.text().collect();
    let text = text.trim_start();
    classes
        .split_whitespace()
        .any(|c| c == "mention" || c == "hashtag")
        || text.starts_with('@')
        || text.starts_with('#')
        || a.value()
            .attr("href")
            .is_some_and(|h| skip.iter().any(|s| s == h))
}

/// Appends the text under `element`, paragraphs and line breaks as spaces, leaving out the
/// story's link and mention links.
fn collect_text(element: ElementRef, link: Option<&Url>, skip: &[String], out: &mut String) {
    for child in element.children() {
        match child.value() {
            Node::Text(text) => out.push_str(text),
            Node::Element(_) => {
                let Some(child) = ElementRef::wrap(child) else {
                    continue;
                };
                let name = child.value().name();
                if name == "a" {
                    let href = child
                        .value()
                        .attr("href")
                        .and_then(|h| h.parse::<Url>().ok());
                    let is_link = href.is_some() && href.as_ref() == link;
                    let text: String = child.text().collect();
                    let is_mention =
                        is_mention_or_hashtag(&child, skip) && !text.trim().starts_with('#');
                    if is_link || is_mention {
                        out.push(' ');
                        continue;
                    }
                }
                if matches!(name, "p" | "br" | "div" | "li") {
                    out.push(' ');
                }
                collect_text(child, link, skip, out);
                if matches!(name, "p" | "div" | "li") {
                    out.push(' ');
                }
            }
            _ => {}
        }
    }
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` if it fits in `max` characters, else its longest run of whole words that fits with
/// an ellipsis (a single overlong word is cut).
pub fn cut_at_word(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut = String::new();
    for word in text.split_whitespace() {
        let extra = if cut.is_empty() { 0 } else { 1 };
        if cut.chars().count() + extra + word.chars().count() + 1 > max {
            break;
        }
        if !cut.is_empty() {
            cut.push(' ');
        }
        cut.push_str(word);
    }
    if cut.is_empty() {
        cut = text.chars().take(max - 1).collect();
    }
    cut.push('…');
    cut
}

/// The post's hashtags that are valid tag names, each once, in order, at most five.
fn usable_tags(post: &PostJson) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for tag in post.hashtags() {
        if super::group::is_tag_name(&tag) && !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    tags.truncate(MAX_TAGS);
    tags
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status(content: &str, tags: serde_json::Value) -> PostJson {
        serde_json::from_value(json!({
            "type": "Note", "id": "https://m.example/users/a/statuses/1",
            "attributedTo": "https://m.example/users/a", "content": content,
            "tag": tags, "to": ["https://www.w3.org/ns/activitystreams#Public"]
        }))
        .unwrap()
    }

    #[test]
    fn a_status_with_a_link_becomes_a_link_story() {
        let content = r#"<p><span class="h-card"><a href="https://lien.example/t/rust" class="u-url mention">@<span>rust</span></a></span> Lifetimes, explained well <a href="https://blog.example/lifetimes" rel="nofollow noopener" target="_blank"><span class="invisible">https://</span><span class="">blog.example/lifetimes</span></a> <a href="https://m.example/tags/til" class="mention hashtag" rel="tag">#<span>til</span></a> <a href="https://m.example/tags/Rust" class="mention hashtag" rel="tag">#<span>Rust</span></a></p>"#;
        let post = status(
            content,
            json!([
                {"type": "Mention", "href": "https://lien.example/t/rust", "name": "@rust@lien.example"},
                {"type": "Hashtag", "href": "https://m.example/tags/til", "name": "#til"},
                {"type": "Hashtag", "href": "https://m.example/tags/rust", "name": "#Rust"}
            ]),
        );
        // As the inbox hands it over: sanitized (which drops Mastodon's classes).
        let parts = story_parts(&post, &crate::markdown::sanitize(content));
        assert_eq!(
            parts.link.unwrap().as_str(),
            "https://blog.example/lifetimes"
        );
        assert_eq!(parts.title, "Lifetimes, explained well");
        assert_eq!(parts.tags, vec!["til", "rust"]);
    }

    #[test]
    fn hashtags_inside_the_text_stay_and_without_a_link_it_is_a_text_story() {
        let content = r#"<p>Why <a href="https://m.example/tags/rust" class="mention hashtag">#<span>rust</span></a> is fun</p><p>second line</p>"#;
        let post = status(content, json!([]));
        let parts = story_parts(&post, content);
        assert_eq!(parts.link, None);
        assert_eq!(parts.title, "Why #rust is fun second line");
        assert!(parts.title_is_whole_text);
    }

    #[test]
    fn long_text_is_cut_at_a_word_boundary() {
        let long = "word ".repeat(100);
        let post = status(&format!("<p>{long}</p>"), json!([]));
        let parts = story_parts(&post, &format!("<p>{long}</p>"));
        assert!(parts.title.chars().count() <= MAX_TITLE);
        assert!(parts.title.ends_with("word…"));
        assert!(!parts.title_is_whole_text);
    }

    #[test]
    fn a_named_page_keeps_its_title_and_attachment() {
        let page: PostJson = serde_json::from_value(json!({
            "type": "Page", "id": "https://l.example/post/1", "attributedTo": "https://l.example/u/a",
            "name": "  A   title ", "attachment": [{"type": "Link", "href": "https://x.example/a"}],
            "to": []
        }))
        .unwrap();
        let parts = story_parts(&page, "");
        assert_eq!(parts.title, "A title");
        assert_eq!(parts.link.unwrap().as_str(), "https://x.example/a");
    }
}
