//! Outbound fetches of URLs someone else chose (SPEC section 6): link previews now, and any other
//! fetch of a page or an image that a person or a peer named.
//!
//! A shared link may point anywhere, including at this instance's own network: a cloud metadata
//! service (169.254.169.254), the database, an admin panel on 10.x. So every fetch here
//!
//! - goes only to http(s), and outside dev mode only to ports 80 and 443;
//! - connects only to public addresses: the client resolves names through [`GuardedResolver`],
//!   which refuses a name if any of its addresses is loopback, private, link-local, multicast,
//!   unspecified or otherwise not globally routable (IPv4 and IPv6, IPv4-mapped and embedded forms
//!   included), and the connection goes to exactly the addresses it checked, so a name that
//!   answers differently the second time (DNS rebinding) gains nothing; IP-literal hosts, which
//!   are never resolved, are checked in [`check_url`];
//! - follows redirects itself, a few at most, checking every hop the same way;
//! - gives up after a deadline covering the whole chain and the body, and reads a capped number of
//!   bytes (decompressed), so a page that never ends or never answers costs little;
//! - ignores proxy settings from the environment, since a proxy would resolve names itself.
//!
//! `LIEN_DEV=1` ([`Guard::new`]) allows private addresses and any port, for tests and local demos.
//!
//! The federation client (`federation::http_client`) resolves names through the same
//! [`GuardedResolver`]; the library adds its own checks of scheme, port and address.

use std::{
    future::Future,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    pin::Pin,
    sync::Arc,
    time::Duration,
};

use reqwest::{
    dns::{Addrs, Name, Resolve, Resolving},
    header, redirect, StatusCode,
};
use url::{Host, Url};

/// What a fetch may reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Guard {
    /// Loopback, private, link-local and other non-public addresses are allowed.
    pub private_addresses: bool,
    /// Ports other than 80 and 443 are allowed.
    pub any_port: bool,
}

impl Guard {
    /// Public addresses on the default ports only; everything when `dev` (`LIEN_DEV=1`).
    pub fn new(dev: bool) -> Guard {
        Guard {
            private_addresses: dev,
            any_port: dev,
        }
    }
}

/// The kind of answer a fetch wants; anything else is refused before its body is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accept {
    /// `text/html`.
    Html,
    /// `image/*`.
    Image,
    /// JSON (`application/json`, `application/jrd+json`, `…+json`).
    Json,
}

/// How far one fetch may go.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// For the whole fetch: every redirect, the answer and its body.
    pub timeout: Duration,
    /// Redirects followed at most; one more is an error.
    pub max_redirects: usize,
    /// Bytes of body read at most (after decompression).
    pub max_bytes: usize,
    /// Whether a longer body is cut at `max_bytes` (a page's metadata is in its head) rather
    /// than refused (half an image is no image).
    pub keep_head: bool,
    pub accept: Accept,
}

impl Limits {
    /// A web page, for its metadata: 10 s, 3 redirects, the first 2 MB.
    pub const PAGE: Limits = Limits {
        timeout: Duration::from_secs(10),
        max_redirects: 3,
        max_bytes: 2 * 1024 * 1024,
        keep_head: true,
        accept: Accept::Html,
    };

    /// A small JSON document (a server's NodeInfo): 5 s, 1 redirect, 64 kB at most.
    pub const JSON: Limits = Limits {
        timeout: Duration::from_secs(5),
        max_redirects: 1,
        max_bytes: 64 * 1024,
        keep_head: false,
        accept: Accept::Json,
    };

    /// An image to make a thumbnail of: 10 s, 3 redirects, 5 MB at most.
    pub const IMAGE: Limits = Limits {
        timeout: Duration::from_secs(10),
        max_redirects: 3,
        max_bytes: 5 * 1024 * 1024,
        keep_head: false,
        accept: Accept::Image,
    };
}

/// A successful fetch.
#[derive(Debug)]
pub struct Fetched {
    /// Where the body came from, after redirects: relative links resolve against it.
    pub url: Url,
    /// The `Content-Type` as sent (`text/html; charset=...`).
    pub content_type: String,
    pub body: Vec<u8>,
    /// The body was longer than `max_bytes` and was cut (only with `keep_head`).
    pub truncated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL or an address it resolves to is off limits; nothing was sent.
    #[error("refused: {0}")]
    Refused(String),
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    #[error("the server answered {0}")]
    Status(StatusCode),
    #[error("unwanted content type {0:?}")]
    ContentType(String),
    #[error("larger than {0} bytes")]
    TooLarge(usize),
    /// No connection, a reset, a TLS failure, a name that does not resolve.
    #[error("{0}")]
    Network(String),
}

impl FetchError {
    /// Whether trying again later might work: a timeout, a network failure, a 5xx, 408 or 429.
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Timeout(_) | FetchError::Network(_) => true,
            FetchError::Status(status) => {
                status.is_server_error()
                    || *status == StatusCode::REQUEST_TIMEOUT
                    || *status == StatusCode::TOO_MANY_REQUESTS
            }
            _ => false,
        }
    }
}

/// Whether an address is one anybody on the internet could reach: not loopback, private (RFC
/// 1918, unique local), shared (CGNAT), link-local, multicast, broadcast, unspecified,
/// documentation, benchmarking or reserved. IPv6 forms that carry an IPv4 address (mapped,
/// compatible, NAT64, 6to4) are judged by that address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                    // "this network", 0.0.0.0 included
        || a == 10                              // private
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || a == 127                             // loopback
        || (a == 169 && b == 254)               // link-local, cloud metadata services
        || (a == 172 && (16..32).contains(&b))  // private
        || (a == 192 && b == 0 && c == 0)       // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)       // documentation
        || (a == 192 && b == 88 && c == 99)     // 6to4 relay anycast
        || (a == 192 && b == 168)               // private
        || (a == 198 && (18..20).contains(&b))  // benchmarking
        || (a == 198 && b == 51 && c == 100)    // documentation
        || (a == 203 && b == 0 && c == 113)     // documentation
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    let embedded_v4 = |high: u16, low: u16| {
        Ipv4Addr::new((high >> 8) as u8, high as u8, (low >> 8) as u8, low as u8)
    };
    match segments {
        // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated); :: and ::1 fall here too
        [0, 0, 0, 0, 0, 0xffff, high, low] | [0, 0, 0, 0, 0, 0, high, low] => {
            is_public_v4(embedded_v4(high, low))
        }
        // NAT64 well-known prefix 64:ff9b::/96
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => is_public_v4(embedded_v4(high, low)),
        // 6to4 2002:a.b.c.d::/48
        [0x2002, high, low, ..] => is_public_v4(embedded_v4(high, low)),
        _ => {
            let first = segments[0];
            !((first & 0xfe00) == 0xfc00              // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80         // link-local fe80::/10
                || (first & 0xffc0) == 0xfec0         // site-local fec0::/10 (deprecated)
                || (first & 0xff00) == 0xff00         // multicast
                || (first == 0x2001 && segments[1] == 0x0db8) // documentation
                || (first == 0x0100 && segments[1..4] == [0, 0, 0]) // discard 100::/64
                || first == 0) // the rest of ::/16 is reserved
        }
    }
}

/// Checks a URL before any request: http(s) only; outside dev mode, ports 80 and 443 only and,
/// for an IP-literal host, a public address (names are checked by [`GuardedResolver`] when the
/// client resolves them).
pub fn check_url(url: &Url, guard: Guard) -> Result<(), FetchError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::Refused(format!(
            "{}: only http and https are fetched",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FetchError::Refused(
            "URLs with credentials are not fetched".into(),
        ));
    }
    if !guard.any_port {
        match url.port_or_known_default() {
            Some(80 | 443) => {}
            _ => {
                return Err(FetchError::Refused(
                    "only the default ports 80 and 443 are fetched".into(),
                ))
            }
        }
    }
    let ip = match url.host() {
        None => return Err(FetchError::Refused("the URL has no host".into())),
        Some(Host::Domain(_)) => return Ok(()),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
    };
    if guard.private_addresses || is_public(ip) {
        Ok(())
    } else {
        Err(FetchError::Refused(format!("{ip} is not a public address")))
    }
}

/// The addresses a name resolved to, if the guard allows every one of them. One bad address
/// refuses the whole name: a mix of public and private answers is an attack, not an accident.
pub fn checked_addrs(
    name: &str,
    addrs: Vec<SocketAddr>,
    guard: Guard,
) -> Result<Vec<SocketAddr>, Blocked> {
    if addrs.is_empty() {
        return Err(Blocked(format!("{name} has no address")));
    }
    if !guard.private_addresses {
        if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
            return Err(Blocked(format!(
                "{name} resolves to {}, which is not a public address",
                bad.ip()
            )));
        }
    }
    Ok(addrs)
}

/// A name resolved to an address the guard refuses.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Blocked(pub String);

/// The client's name resolver: the system's, with every answer checked against the guard. The
/// connection goes to the addresses returned from here and no others.
#[derive(Clone, Copy, Debug)]
pub struct GuardedResolver {
    guard: Guard,
}

impl GuardedResolver {
    pub fn new(guard: Guard) -> GuardedResolver {
        GuardedResolver { guard }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard;
        let name = name.as_str().to_owned();
        let lookup: Pin<Box<dyn Future<Output = _> + Send>> = Box::pin(async move {
            // Port 0: the connector puts the URL's port in.
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let addrs = checked_addrs(&name, addrs, guard)?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        });
        lookup
    }
}

/// An HTTP client for fetches of other people's URLs, and the guard it keeps.
#[derive(Clone, Debug)]
pub struct Fetcher {
    client: reqwest::Client,
    guard: Guard,
}

impl Fetcher {
    /// A client that resolves through [`GuardedResolver`], follows no redirect by itself and
    /// ignores proxy settings. `user_agent` names lien and the instance.
    pub fn new(guard: Guard, user_agent: &str) -> anyhow::Result<Fetcher> {
        let client = reqwest::Client::builder()
            .user_agent(user_agent)
            .dns_resolver(Arc::new(GuardedResolver::new(guard)))
            .redirect(redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| anyhow::anyhow!("building the fetch client: {e}"))?;
        Ok(Fetcher { client, guard })
    }

    /// GETs `url` within `limits`, following redirects itself and checking every hop.
    pub async fn get(&self, url: &Url, limits: &Limits) -> Result<Fetched, FetchError> {
        match tokio::time::timeout(limits.timeout, self.get_unbounded(url, limits)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout(limits.timeout)),
        }
    }

    async fn get_unbounded(&self, url: &Url, limits: &Limits) -> Result<Fetched, FetchError> {
        let accept = match limits.accept {
            Accept::Html => "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
            Accept::Image => "image/webp,image/png,image/jpeg,image/gif;q=0.9,image/*;q=0.8",
            Accept::Json => "application/json,application/jrd+json;q=0.9",
        };
        let mut url = url.clone();
        let mut redirects = 0;
        let mut response = loop {
            check_url(&url, self.guard)?;
            let response = self
                .client
                .get(url.clone())
                .header(header::ACCEPT, accept)
                .send()
                .await
                .map_err(network_error)?;
            if !response.status().is_redirection() {
                break response;
            }
            let Some(location) = response
                .headers()
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok())
            else {
                return Err(FetchError::Status(response.status()));
            };
            let next = url
                .join(location)
                .map_err(|_| FetchError::Network(format!("bad redirect to {location:?}")))?;
            redirects += 1;
            if redirects > limits.max_redirects {
                return Err(FetchError::TooManyRedirects(limits.max_redirects));
            }
            url = next;
        };
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status()));
        }
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let wanted = match limits.accept {
            Accept::Html => essence == "text/html",
            Accept::Image => essence.starts_with("image/"),
            Accept::Json => essence == "application/json" || essence.ends_with("+json"),
        };
        if !wanted {
            return Err(FetchError::ContentType(essence));
        }
        if !limits.keep_head
            && response
                .content_length()
                .is_some_and(|n| n > limits.max_bytes as u64)
        {
            return Err(FetchError::TooLarge(limits.max_bytes));
        }
        // Read chunk by chunk and stop at the cap; dropping the response closes the connection.
        let mut body = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = response.chunk().await.map_err(network_error)? {
            let room = limits.max_bytes - body.len();
            if chunk.len() > room {
                if !limits.keep_head {
                    return Err(FetchError::TooLarge(limits.max_bytes));
                }
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            url,
            content_type,
            body,
            truncated,
        })
    }
}

/// A one-off fetch with its own client: for tools and rare requests (a worker keeps a [`Fetcher`]).
pub async fn safe_get(url: &Url, limits: &Limits, dev: bool) -> Result<Fetched, FetchError> {
    let fetcher = Fetcher::new(Guard::new(dev), concat!("lien/", env!("CARGO_PKG_VERSION")))
        .map_err(|e| FetchError::Network(e.to_string()))?;
    fetcher.get(url, limits).await
}

/// A client error, with a refusal by the resolver told apart from an ordinary network failure.
fn network_error(error: reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(cause) = source {
        if let Some(blocked) = cause.downcast_ref::<Blocked>() {
            return FetchError::Refused(blocked.0.clone());
        }
        source = cause.source();
    }
    if error.is_timeout() {
        return FetchError::Network("timed out".into());
    }
    // The chain reads "error sending request: client error (Connect): tcp connect error: ...".
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    FetchError::Network(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for s in [
            "127.0.0.1",
            "127.255.0.9",
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "192.0.2.7",
            "198.18.0.1",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "fec0::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:c0a8:0101::1",
            "100::1",
        ] {
            assert!(!is_public(ip(s)), "{s} should not be public");
        }
    }

    #[test]
    fn ordinary_addresses_are_public() {
        for s in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.15.0.1",
            "172.32.0.1",
            "100.63.0.1",
            "100.128.0.1",
            "169.253.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
        ] {
            assert!(is_public(ip(s)), "{s} should be public");
        }
    }

    fn url(s: &str) -> Url {
        s.parse().unwrap()
    }

    #[test]
    fn urls_are_checked_before_any_request() {
        let strict = Guard::new(false);
        assert!(check_url(&url("https://example.com/page"), strict).is_ok());
        assert!(check_url(&url("http://example.com:80/page"), strict).is_ok());
        for refused in [
            "ftp://example.com/file",
            "file:///etc/passwd",
            "gopher://example.com/",
            "https://example.com:8443/",
            "http://example.com:22/",
            "http://127.0.0.1/",
            "http://10.0.0.1/",
            "http://0x7f.1/",
            "http://2130706433/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fe80::1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://user:secret@example.com/",
        ] {
            assert!(
                matches!(
                    check_url(&url(refused), strict),
                    Err(FetchError::Refused(_))
                ),
                "{refused} should be refused"
            );
        }
        let dev = Guard::new(true);
        assert!(check_url(&url("http://127.0.0.1:8080/"), dev).is_ok());
        assert!(check_url(&url("http://[::1]:3000/"), dev).is_ok());
        assert!(check_url(&url("ftp://localhost/"), dev).is_err());
    }

    #[test]
    fn a_name_with_any_private_address_is_refused() {
        let strict = Guard::new(false);
        let public: SocketAddr = "93.184.216.34:0".parse().unwrap();
        let private: SocketAddr = "10.0.0.1:0".parse().unwrap();
        let loopback: SocketAddr = "[::1]:0".parse().unwrap();
        assert_eq!(
            checked_addrs("example.com", vec![public], strict).unwrap(),
            vec![public]
        );
        assert!(checked_addrs("evil.example", vec![public, private], strict).is_err());
        assert!(checked_addrs("evil.example", vec![loopback], strict).is_err());
        assert!(checked_addrs("nothing.example", vec![], strict).is_err());
        assert!(checked_addrs("localhost", vec![loopback, private], Guard::new(true)).is_ok());
    }

    #[tokio::test]
    async fn the_resolver_refuses_localhost_outside_dev_mode() {
        let resolver = GuardedResolver::new(Guard::new(false));
        let refused = resolver.resolve("localhost".parse().unwrap()).await;
        assert!(refused.is_err());
        let resolver = GuardedResolver::new(Guard::new(true));
        let addrs: Vec<SocketAddr> = resolver
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }

    #[test]
    fn only_passing_failures_are_retried() {
        assert!(FetchError::Timeout(Duration::from_secs(1)).is_transient());
        assert!(FetchError::Status(StatusCode::BAD_GATEWAY).is_transient());
        assert!(FetchError::Status(StatusCode::TOO_MANY_REQUESTS).is_transient());
        assert!(!FetchError::Status(StatusCode::NOT_FOUND).is_transient());
        assert!(!FetchError::Refused("x".into()).is_transient());
        assert!(!FetchError::TooManyRedirects(3).is_transient());
        assert!(!FetchError::ContentType("application/pdf".into()).is_transient());
    }
}
