//! Untrusted text at the edges: where a redirect may send a browser, and which characters lien
//! refuses from people, strips from peers and never writes into XML.

use std::borrow::Cow;

use url::Url;

/// A base that no request can name: a candidate resolved against it stays on it or it left.
const ORIGIN: &str = "http://lien.invalid/";

/// `candidate` as a path on this origin (`/s/1?x#c2`), or `None` when a browser following it could
/// land anywhere else. It is resolved as browsers resolve a `Location` (the WHATWG URL rules, so
/// `//host`, `/\host` and `/\t/host` all count as other hosts) and the normalized form is returned,
/// so that what was checked is exactly what is sent.
pub fn local_path(candidate: &str) -> Option<String> {
    if !candidate.starts_with('/') || candidate.chars().any(|c| c.is_control()) {
        return None;
    }
    let base = Url::parse(ORIGIN).expect("the base parses");
    let resolved = base.join(candidate).ok()?;
    if resolved.origin() != base.origin() {
        return None;
    }
    let path = &resolved[url::Position::BeforePath..];
    // Dot segments can collapse into `//host` (`/.//host`): that is a host again.
    (path.starts_with('/') && !path.starts_with("//")).then(|| path.to_owned())
}

/// Characters no text in lien may hold: the C0 controls except tab, line feed and carriage return,
/// and U+FFFE/U+FFFF. XML 1.0 cannot carry any of them (one would make a whole feed unreadable),
/// and PostgreSQL refuses NUL in text.
pub fn is_refused(c: char) -> bool {
    matches!(c, '\0'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

/// The first refused character of `text`, for an error message that names it.
pub fn first_refused(text: &str) -> Option<char> {
    text.chars().find(|&c| is_refused(c))
}

/// `text` without its refused characters: for what peers send and for what feeds write.
pub fn strip_refused(text: &str) -> Cow<'_, str> {
    if first_refused(text).is_none() {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.chars().filter(|&c| !is_refused(c)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_stay_local() {
        assert_eq!(local_path("/s/1?a=b#c2").as_deref(), Some("/s/1?a=b#c2"));
        assert_eq!(local_path("/@名").as_deref(), Some("/@%E5%90%8D"));
        for escape in [
            "//evil.example/",
            "/\\evil.example/",
            "/\t/evil.example/",
            "/.//evil.example/",
            "http://evil.example/",
            "evil.example",
            ".evil.example/",
            "",
            "s/1",
            "javascript:alert(1)",
            "/a\u{0}b",
            " /x",
        ] {
            assert_eq!(local_path(escape), None, "{escape:?}");
        }
    }

    #[test]
    fn refused_characters() {
        assert_eq!(first_refused("tab\tline\nreturn\r"), None);
        assert_eq!(first_refused("a\u{0}b"), Some('\0'));
        assert_eq!(first_refused("a\u{1b}b"), Some('\u{1b}'));
        assert_eq!(first_refused("a\u{ffff}"), Some('\u{ffff}'));
        assert_eq!(strip_refused("a\u{1}b\u{fffe}c\n"), "abc\n");
    }
}
