//! ActivityPub: lien's stories, comments and people as federated objects (SPEC section 5).
//!
//! Wire shapes live in `protocol`, the database side of each federated kind in `objects`, incoming
//! activities in `activities`, the endpoints in `http` and `inbox`, and the durable outgoing queue
//! in `delivery`. Federation never happens inline in a request: a change queues its activities in
//! the same transaction, and the delivery worker sends them.

pub mod announce;
pub mod community;
pub mod delivery;
pub mod error;
pub mod group;
pub mod http;
pub mod inbox;
pub mod note_story;
pub mod objects;
pub mod outbox;
pub mod peers;
pub mod protocol;
pub mod resolve;
pub mod signing;
pub mod site;
pub mod verification;

pub use error::{FedResult, FederationError};

use std::time::Duration;

use activitypub_federation::config::{Data, FederationConfig, UrlVerifier};
use actix_web::web;
use anyhow::Context;
use async_trait::async_trait;
use url::Url;

use crate::app::AppState;

/// The ActivityPub endpoints: actors, objects, collections, WebFinger and NodeInfo, and the inboxes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    // Groups first: `P/s/{id}/context` must not be taken for a story's slug.
    cfg.configure(group::routes)
        .configure(http::routes)
        .configure(inbox::routes);
}

/// What the ActivityPub library hands to every handler: lien's state plus the federation settings.
pub type FedConfig = FederationConfig<web::Data<AppState>>;
pub type FedData = Data<web::Data<AppState>>;

/// Every outbound request gives up after this long (SPEC section 6).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client for every outbound federation request: the system's CA store (which honours
/// SSL_CERT_FILE, so private and test CAs work), a User-Agent naming lien and the instance, a
/// timeout, and no automatic redirects (the library follows one redirect itself, after checking it).
pub fn http_client(host: &str, dev: bool) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        // Names are resolved by the fetch guard, which refuses non-public addresses (outside dev
        // mode) and connects only to the addresses it checked, so DNS rebinding cannot slip a
        // peer's name onto a private address between the check and the connection.
        .dns_resolver(std::sync::Arc::new(crate::fetch::GuardedResolver::new(
            crate::fetch::Guard::new(dev),
        )))
        .no_proxy()
        .user_agent(format!(
            "lien/{} (+https://{host})",
            env!("CARGO_PKG_VERSION")
        ))
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("building the HTTP client")
}

/// Builds the federation settings. `LIEN_DEV=1` allows http, ports and loopback peers.
pub async fn config(state: web::Data<AppState>) -> anyhow::Result<FedConfig> {
    let host = state.config.host();
    let dev = state.config.dev;
    let instance = site::instance_actor(&state).await?;
    let client = http_client(&host, dev)?;
    FederationConfig::builder()
        .domain(host)
        .app_data(state)
        .client(reqwest_middleware::ClientBuilder::new(client).build())
        .debug(dev)
        .allow_http_urls(dev)
        .request_timeout(REQUEST_TIMEOUT)
        .http_fetch_limit(50)
        .url_verifier(Box::new(PeerVerifier))
        // Sign as Mastodon does: `(request-target) host date digest`, no `(created)`/`(expires)`,
        // which some peers (Pleroma among them) refuse.
        .http_signature_compat(true)
        .signed_fetch_actor(&instance)
        .build()
        .await
        .context("building the federation settings")
}

/// Refuses peers the library cannot talk to safely: IP-literal hosts (the library needs a domain
/// for the Host header and panics without one; an IP literal also sidesteps host-based blocking).
/// The library itself refuses http, explicit ports and private addresses outside dev mode.
#[derive(Clone)]
struct PeerVerifier;

#[async_trait]
impl UrlVerifier for PeerVerifier {
    async fn verify(&self, url: &Url) -> Result<(), activitypub_federation::error::Error> {
        check_peer_url(url).map_err(activitypub_federation::error::Error::UrlVerificationError)
    }
}

/// Whether a URL can name a federation peer: http(s) with a domain name, not an IP literal.
pub fn check_peer_url(url: &Url) -> Result<(), &'static str> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err("peers are reached over https");
    }
    match url.host() {
        Some(url::Host::Domain(_)) => Ok(()),
        Some(_) => Err("peers must be named by a domain, not an IP address"),
        None => Err("peer URLs need a host"),
    }
}
