//! lien: a federated link aggregator. `main.rs` parses the command line; everything else is here so
//! the integration tests can build the same application.

pub mod accounts;
pub mod app;
pub mod avatars;
pub mod cache;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod federation;
pub mod feeds;
pub mod fetch;
pub mod input;
pub mod links;
pub mod markdown;
pub mod metrics;
pub mod preview;
pub mod ranking;
pub mod rate_limit;
pub mod seed;
pub mod web;

use std::{net::TcpListener, time::Duration};

use actix_web::{dev::Server, middleware, web as aw, App, HttpResponse, HttpServer};

use activitypub_federation::config::FederationMiddleware;

pub use crate::app::app_state;
use crate::{app::AppState, federation::FedConfig};

/// Request bodies larger than this are refused (forms are small; the inbox sets its own limit).
pub const MAX_FORM_BODY: usize = 256 * 1024;

/// How long a stopping server waits for requests in flight.
pub const SHUTDOWN_GRACE_SECONDS: u64 = 20;

/// Builds the HTTP server on a bound listener. Used by `lien serve` and by the tests alike.
/// It stops gracefully on SIGTERM and SIGINT: no new connections, requests in flight finish
/// (within SHUTDOWN_GRACE_SECONDS). Actix's own handlers would cut requests off on SIGINT.
pub fn http_server(listener: TcpListener, federation: FedConfig) -> std::io::Result<Server> {
    let stop = cli::shutdown_signal().map_err(std::io::Error::other)?;
    let metrics_here = federation
        .to_request_data()
        .app_data()
        .config
        .metrics_listen
        .is_none();
    cache::watch_changes(&federation.to_request_data().app_data().clone());
    let state = federation.to_request_data().app_data().clone();
    let config = &state.config;
    let body_timeout = Duration::from_secs(config.body_timeout);
    // Behind a proxy every connection comes from it: the cap would be the proxy's, not a client's.
    let connection_cap = if config.trust_proxy {
        0
    } else {
        config.max_connections_per_client
    };
    let connections = web::connections::ConnectionCounts::default();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(aw::Data::clone(&federation))
            .wrap(FederationMiddleware::new(federation.clone()))
            .app_data(aw::PayloadConfig::new(MAX_FORM_BODY))
            // A path that does not parse (`/s/abc`) names nothing: the site's 404 page, not the
            // extractor's plain text. A query that does not parse is the reader's error.
            .app_data(
                aw::PathConfig::default().error_handler(|_, _| error::AppError::NotFound.into()),
            )
            .app_data(aw::QueryConfig::default().error_handler(|e, _| {
                error::AppError::BadRequest(format!(
                    "this address has a query lien cannot read: {e}"
                ))
                .into()
            }))
            // Inside the page cache: with the database down, cached pages are still served.
            .wrap(middleware::from_fn(web::db_gate::database_gate))
            // Inside the CSRF middleware: a page that rendered a token is never cached.
            .wrap(middleware::from_fn(web::page_cache::serve_cached))
            .wrap(middleware::from_fn(web::session::csrf_cookie))
            .wrap(middleware::from_fn(web::session::primary_after_write))
            .wrap(middleware::Compress::default())
            .wrap(web::security_headers())
            .wrap(middleware::from_fn(move |req, next| {
                web::connections::limit_clients(body_timeout, req, next)
            }))
            // Outermost: its id, span and timing cover everything inside.
            .wrap(middleware::from_fn(web::request_log::log_requests))
            .configure(web::assets::routes)
            // Feeds first (`/s/{id}.rss` would match `/s/{id}`), then the ActivityPub endpoints,
            // which answer the same paths as pages for `application/activity+json`.
            .configure(web::feeds::routes)
            .configure(federation::routes)
            .configure(web::routes)
            .configure(|cfg| {
                if metrics_here {
                    web::ops::metrics_route(cfg);
                }
            })
            .default_service(aw::to(|| async {
                Err::<HttpResponse, _>(error::AppError::NotFound)
            }))
    })
    .on_connect(move |connection, data| connections.on_connect(connection_cap, connection, data))
    // A client has this long to send a request's headers, and an idle kept-alive connection is
    // closed after as long (actix's defaults, stated): slow bodies are `limit_clients`' part.
    .client_request_timeout(Duration::from_secs(5))
    .keep_alive(Duration::from_secs(5))
    .shutdown_timeout(SHUTDOWN_GRACE_SECONDS)
    .shutdown_signal(stop)
    .listen(listener)?
    .run();
    Ok(server)
}

/// /healthz, /readyz and /metrics alone, on LIEN_METRICS_LISTEN. Its caller stops it last, so it
/// answers probes and scrapes while the web server and the workers finish.
pub fn ops_server(listener: TcpListener, state: aw::Data<AppState>) -> std::io::Result<Server> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(middleware::from_fn(web::request_log::log_requests))
            .configure(web::ops::routes)
            .configure(web::ops::metrics_route)
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)?
    .run();
    Ok(server)
}
