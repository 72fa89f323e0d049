//! Shared links: what is accepted, and the normalized key behind the duplicate rule (SPEC section 4).

use url::Url;

/// Query parameters that only track where a click came from; they never change the page.
const TRACKING_PARAMS: &[&str] = &[
    "fbclid",
    "gclid",
    "dclid",
    "gbraid",
    "wbraid",
    "msclkid",
    "mc_cid",
    "mc_eid",
    "igshid",
    "yclid",
    "_hsenc",
    "_hsmi",
    "mkt_tok",
    "ref_src",
    "ref_url",
    "si",
    "oly_anon_id",
    "oly_enc_id",
    "vero_id",
    "__s",
    "spm",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LinkError {
    #[error("that is not a valid URL")]
    Invalid,
    #[error("only http and https links can be shared")]
    Scheme,
    #[error("the link needs a host name")]
    NoHost,
    #[error("links are limited to 2000 characters")]
    TooLong,
}

/// Parses a link someone wants to share: absolute http(s) with a host, nothing else.
pub fn parse_link(input: &str) -> Result<Url, LinkError> {
    let input = input.trim();
    if input.len() > 2000 {
        return Err(LinkError::TooLong);
    }
    let url = Url::parse(input).map_err(|_| LinkError::Invalid)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(LinkError::Scheme);
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(LinkError::NoHost);
    }
    Ok(url)
}

/// The host a link points at, without `www.`: what `/domain/{host}` groups by.
pub fn domain(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    host.strip_prefix("www.").map(str::to_owned).unwrap_or(host)
}

/// The key two links share when they lead to the same page: no scheme, no `www.`, no trailing
/// slash, no fragment, no tracking parameters, and the query sorted.
pub fn url_key(url: &Url) -> String {
    let mut params: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| !is_tracking(name))
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    params.sort();

    let mut key = domain(url);
    if let Some(port) = url.port() {
        key.push_str(&format!(":{port}"));
    }
    key.push_str(url.path().trim_end_matches('/'));
    if !params.is_empty() {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        key.push('?');
        key.push_str(&query);
    }
    key
}

fn is_tracking(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with("utm_") || TRACKING_PARAMS.contains(&name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> String {
        url_key(&parse_link(s).unwrap())
    }

    #[test]
    fn equivalent_links_share_a_key() {
        let same = [
            "https://www.example.com/a/b/?x=1&y=2#frag",
            "http://example.com/a/b?y=2&x=1",
            "https://EXAMPLE.com/a/b?utm_source=x&x=1&y=2&fbclid=abc",
        ];
        for link in same {
            assert_eq!(key(link), "example.com/a/b?x=1&y=2", "{link}");
        }
        assert_eq!(key("https://example.com/"), "example.com");
        assert_eq!(key("https://example.com"), "example.com");
    }

    #[test]
    fn different_pages_keep_different_keys() {
        assert_ne!(key("https://example.com/a"), key("https://example.com/b"));
        assert_ne!(
            key("https://example.com/a?id=1"),
            key("https://example.com/a?id=2")
        );
        assert_ne!(
            key("https://example.com:8443/a"),
            key("https://example.com/a")
        );
        assert_ne!(
            key("https://blog.example.com/a"),
            key("https://example.com/a")
        );
    }

    #[test]
    fn only_http_links_are_accepted() {
        assert_eq!(parse_link("javascript:alert(1)"), Err(LinkError::Scheme));
        assert_eq!(parse_link("ftp://example.com/x"), Err(LinkError::Scheme));
        assert_eq!(parse_link("example.com"), Err(LinkError::Invalid));
        assert_eq!(parse_link("data:text/html,hi"), Err(LinkError::Scheme));
        assert!(parse_link(" https://example.com/x ").is_ok());
    }

    #[test]
    fn domain_drops_www() {
        assert_eq!(
            domain(&parse_link("https://www.Example.org/x").unwrap()),
            "example.org"
        );
        assert_eq!(
            domain(&parse_link("https://news.example.org/").unwrap()),
            "news.example.org"
        );
    }
}
