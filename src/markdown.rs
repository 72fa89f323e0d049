//! Markdown to HTML, and the one allow-list sanitizer every piece of user or remote HTML goes through
//! before it is stored or shown.

use std::sync::LazyLock;

use ammonia::Builder;
use pulldown_cmark::{html, CowStr, Event, LinkType, Options, Parser, Tag, TagEnd};

static SANITIZER: LazyLock<Builder<'static>> = LazyLock::new(|| {
    let mut builder = Builder::default();
    // Links from strangers must not pass reputation or reach window.opener.
    builder
        .link_rel(Some("nofollow noopener noreferrer ugc"))
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .rm_tags(["img"]);
    builder
});

/// Renders Markdown (CommonMark plus tables and strikethrough) to sanitized HTML. Bare `http(s)://`
/// addresses become links, and `@name` or `@name@host` link to that person's page here.
pub fn render(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let mut unsafe_html = String::with_capacity(markdown.len() * 3 / 2);
    let mut events = Vec::new();
    // Text inside a link or code is left alone.
    let mut plain = 0i32;
    for event in Parser::new_ext(markdown, options) {
        match &event {
            Event::Start(Tag::Link { .. } | Tag::CodeBlock(_)) => plain += 1,
            Event::End(TagEnd::Link | TagEnd::CodeBlock) => plain -= 1,
            Event::Text(text) if plain == 0 => {
                link_text(text, &mut events);
                continue;
            }
            _ => {}
        }
        events.push(event);
    }
    html::push_html(&mut unsafe_html, events.into_iter());
    sanitize(&unsafe_html)
}

/// Splits text into plain runs and links: bare web addresses, and mentions of people.
fn link_text<'a>(text: &str, out: &mut Vec<Event<'a>>) {
    let mut rest = text;
    while let Some((start, end, href)) = next_link(rest) {
        if start > 0 {
            out.push(Event::Text(CowStr::from(rest[..start].to_owned())));
        }
        out.push(Event::Start(Tag::Link {
            link_type: LinkType::Autolink,
            dest_url: CowStr::from(href),
            title: CowStr::from(""),
            id: CowStr::from(""),
        }));
        out.push(Event::Text(CowStr::from(rest[start..end].to_owned())));
        out.push(Event::End(TagEnd::Link));
        rest = &rest[end..];
    }
    if !rest.is_empty() {
        out.push(Event::Text(CowStr::from(rest.to_owned())));
    }
}

/// The first link in `text`: its byte range and where it leads.
fn next_link(text: &str) -> Option<(usize, usize, String)> {
    let url = ["https://", "http://"]
        .iter()
        .filter_map(|scheme| text.find(scheme))
        .min();
    let mention = text.char_indices().find_map(|(i, c)| {
        let before = text[..i].chars().next_back();
        (c == '@' && !before.is_some_and(|b| b.is_alphanumeric() || b == '_' || b == '@'))
            .then(|| mention_at(&text[i..]).map(|(len, href)| (i, i + len, href)))
            .flatten()
    });
    let url = url
        .map(|start| {
            let len = text[start..]
                .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
                .unwrap_or(text.len() - start);
            // Punctuation that ends a sentence is not part of the address.
            let trimmed = text[start..start + len]
                .trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '\'', '"']);
            (start, start + trimmed.len(), trimmed.to_owned())
        })
        // A scheme alone is not an address.
        .filter(|(_, _, href)| !href.ends_with("//"));
    match (url, mention) {
        (Some(u), Some(m)) => Some(if m.0 < u.0 { m } else { u }),
        (u, m) => u.or(m),
    }
}

/// `@name` or `@name@host` at the start of `text`: its length and the person's page here.
fn mention_at(text: &str) -> Option<(usize, String)> {
    let name_len = text[1..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len() - 1);
    if name_len == 0 || name_len > 30 {
        return None;
    }
    let mut len = 1 + name_len;
    if text[len..].starts_with('@') {
        let host_len = text[len + 1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':')))
            .unwrap_or(text.len() - len - 1);
        let host = text[len + 1..len + 1 + host_len].trim_end_matches(['.', ':', '-']);
        if host.contains('.') || host.starts_with("localhost") {
            len += 1 + host.len();
        }
    }
    Some((len, format!("/{}", &text[..len])))
}

/// Cleans HTML from anywhere (remote servers included) down to the allow-list.
pub fn sanitize(html: &str) -> String {
    SANITIZER.clean(html).to_string()
}

/// The text of some HTML, for titles, summaries and feed snippets.
pub fn plain_text(html: &str, max_chars: usize) -> String {
    let text = Builder::empty().clean(html).to_string();
    let text = text
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'");
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_renders_and_scripts_do_not() {
        let html = render("**bold** <script>alert(1)</script> [x](javascript:alert(1))");
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
    }

    #[test]
    fn bare_addresses_and_mentions_become_links() {
        let html = render("see https://example.com/a?b=1. Thanks @alice and @bob@social.example!");
        assert!(
            html.contains(r#"<a href="https://example.com/a?b=1" rel"#),
            "{html}"
        );
        assert!(html.contains(r#"<a href="/@alice" rel"#), "{html}");
        assert!(
            html.contains(r#"<a href="/@bob@social.example" rel"#),
            "{html}"
        );
        assert!(html.contains("</a>!"), "{html}");
        // Already a link, in code, or an e-mail address: left alone.
        let html = render("[@x](https://a.example/) `@y https://b.example` mail me@c.example");
        assert_eq!(html.matches("<a ").count(), 1, "{html}");
    }

    #[test]
    fn links_get_a_safe_rel() {
        let html = render("[lien](https://example.com)");
        assert!(
            html.contains(r#"rel="nofollow noopener noreferrer ugc""#),
            "{html}"
        );
    }

    #[test]
    fn remote_html_is_cleaned() {
        let html = sanitize(
            r#"<p onclick="x()">hi <a href="https://a.example/">a</a><iframe src="x"></iframe></p>"#,
        );
        assert!(
            !html.contains("onclick") && !html.contains("iframe"),
            "{html}"
        );
        assert!(html.contains("hi"));
    }

    #[test]
    fn plain_text_strips_and_cuts() {
        assert_eq!(plain_text("<p>a &amp; b</p>\n<p>c</p>", 100), "a & b c");
        assert_eq!(plain_text("<p>abcdef</p>", 3), "abc…");
    }
}
