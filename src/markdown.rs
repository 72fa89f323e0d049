//! Markdown to HTML, and the one allow-list sanitizer every piece of user or remote HTML goes through
//! before it is stored or shown.

use std::sync::LazyLock;

use ammonia::Builder;
use pulldown_cmark::{html, Options, Parser};

static SANITIZER: LazyLock<Builder<'static>> = LazyLock::new(|| {
    let mut builder = Builder::default();
    // Links from strangers must not pass reputation or reach window.opener.
    builder
        .link_rel(Some("nofollow noopener noreferrer ugc"))
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .rm_tags(["img"]);
    builder
});

/// Renders Markdown (CommonMark plus tables and strikethrough) to sanitized HTML.
pub fn render(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let mut unsafe_html = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut unsafe_html, Parser::new_ext(markdown, options));
    sanitize(&unsafe_html)
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
