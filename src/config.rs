//! Configuration: one clap struct; every field is also an environment variable (SPEC section 1).

use std::{net::SocketAddr, path::PathBuf};

use clap::{builder::BoolishValueParser, Args, ValueEnum};
use url::Url;

/// Who may create an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Registration {
    Open,
    Approval,
    Invite,
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Everything an instance is configured with. Flags and environment variables share names.
#[derive(Args, Clone, Debug)]
pub struct Config {
    /// The instance's public origin; every ActivityPub id derives from it.
    #[arg(
        long,
        env = "LIEN_PUBLIC_URL",
        default_value = "http://localhost:8080",
        global = true
    )]
    pub public_url: Url,

    /// Socket address to bind.
    #[arg(
        long,
        env = "LIEN_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,

    /// Embedded database, media and keys live here.
    #[arg(long, env = "LIEN_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,

    /// External PostgreSQL; unset means the embedded cluster in the data directory.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Optional read replica for page and feed queries.
    #[arg(long, env = "DATABASE_READ_URL", global = true, hide_env_values = true)]
    pub database_read_url: Option<String>,

    #[arg(
        long,
        env = "LIEN_REGISTRATION",
        value_enum,
        default_value = "open",
        global = true
    )]
    pub registration: Registration,

    /// `off` turns every federation endpoint and delivery off.
    #[arg(
        long,
        env = "LIEN_FEDERATION",
        value_enum,
        default_value = "on",
        global = true
    )]
    pub federation: Switch,

    /// `1` allows http:// peers and loopback/private addresses (tests and local demos only).
    #[arg(long, env = "LIEN_DEV", default_value = "0", value_parser = BoolishValueParser::new(),
        action = clap::ArgAction::Set, global = true)]
    pub dev: bool,

    /// Delivery workers `lien serve` runs in-process, with the preview worker beside them: 0
    /// leaves delivery and previews to `lien worker`.
    #[arg(long, env = "LIEN_WORKERS", default_value = "1", global = true)]
    pub workers: usize,

    /// A second address answering /healthz, /readyz and /metrics, kept off the public one: with
    /// it set, `serve` answers /metrics only there. Unset, `lien worker` serves no HTTP at all.
    #[arg(long, env = "LIEN_METRICS_LISTEN", global = true)]
    pub metrics_listen: Option<SocketAddr>,

    /// `off` turns every rate limit off (load tests, and test suites that act fast).
    #[arg(
        long,
        env = "LIEN_RATE_LIMITS",
        value_enum,
        default_value = "on",
        global = true
    )]
    pub rate_limits: Switch,

    /// `1` when lien runs behind a reverse proxy: the client's address is then taken from
    /// X-Forwarded-For (otherwise anyone could claim any address with it).
    #[arg(long, env = "LIEN_TRUST_PROXY", default_value = "0", value_parser = BoolishValueParser::new(),
        action = clap::ArgAction::Set, global = true)]
    pub trust_proxy: bool,

    /// Seconds a request's body may take to arrive after its headers; a slower one is answered
    /// 408 and its connection closed.
    #[arg(long, env = "LIEN_BODY_TIMEOUT", default_value = "10", global = true)]
    pub body_timeout: u64,

    /// Connections one client address may hold open at once (0: no cap); more are answered 429
    /// and closed. Not applied with LIEN_TRUST_PROXY=1, where every connection comes from the
    /// proxy (whose own limit, e.g. nginx's `limit_conn`, applies).
    #[arg(
        long,
        env = "LIEN_MAX_CONNECTIONS_PER_CLIENT",
        default_value = "64",
        global = true
    )]
    pub max_connections_per_client: usize,

    /// Log filter, in `tracing` EnvFilter syntax.
    #[arg(long, env = "LIEN_LOG", default_value = "info", global = true)]
    pub log: String,

    #[arg(
        long,
        env = "LIEN_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
}

impl Config {
    /// The public origin without a trailing slash, the prefix of every id and absolute link.
    pub fn origin(&self) -> String {
        self.public_url.as_str().trim_end_matches('/').to_owned()
    }

    /// The host (with port, when not the default) that WebFinger and `name@host` use.
    pub fn host(&self) -> String {
        let host = self.public_url.host_str().unwrap_or("localhost");
        match self.public_url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }

    /// Cookies get the Secure flag when the public origin is https.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.scheme() == "https"
    }
}
