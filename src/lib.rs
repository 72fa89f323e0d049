//! lien: a federated link aggregator. `main.rs` parses the command line; everything else is here so
//! the integration tests can build the same application.

pub mod accounts;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod federation;
pub mod feeds;
pub mod links;
pub mod markdown;
pub mod ranking;
pub mod web;

use std::net::TcpListener;

use actix_web::{dev::Server, http::header, middleware, web as aw, App, HttpResponse, HttpServer};

use activitypub_federation::config::FederationMiddleware;

use crate::{config::Config, db::Db, federation::FedConfig, web::AppState};

/// Request bodies larger than this are refused (forms are small; the inbox sets its own limit).
pub const MAX_FORM_BODY: usize = 256 * 1024;

/// How long a stopping server waits for requests in flight.
pub const SHUTDOWN_GRACE_SECONDS: u64 = 20;

/// The application state every handler shares.
pub fn app_state(db: Db, config: Config) -> aw::Data<AppState> {
    aw::Data::new(AppState { db, config })
}

/// Builds the HTTP server on a bound listener. Used by `lien serve` and by the tests alike.
/// It stops gracefully on SIGTERM and SIGINT: no new connections, requests in flight finish.
pub fn http_server(listener: TcpListener, federation: FedConfig) -> std::io::Result<Server> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(aw::Data::clone(&federation))
            .wrap(FederationMiddleware::new(federation.clone()))
            .app_data(aw::PayloadConfig::new(MAX_FORM_BODY))
            .wrap(middleware::from_fn(web::session::csrf_cookie))
            .wrap(middleware::Compress::default())
            .route("/static/{file}", aw::get().to(static_file))
            .configure(web::routes)
            .default_service(aw::to(|| async {
                Err::<HttpResponse, _>(error::AppError::NotFound)
            }))
    })
    .shutdown_timeout(SHUTDOWN_GRACE_SECONDS)
    .listen(listener)?
    .run();
    Ok(server)
}

/// The stylesheet and script, compiled into the binary so a deployment is one file.
async fn static_file(path: aw::Path<String>) -> HttpResponse {
    let (body, content_type) = match path.as_str() {
        "lien.css" => (
            include_str!("../static/lien.css"),
            "text/css; charset=utf-8",
        ),
        "lien.js" => (
            include_str!("../static/lien.js"),
            "text/javascript; charset=utf-8",
        ),
        "feed.xsl" => (
            include_str!("../static/feed.xsl"),
            "text/xsl; charset=utf-8",
        ),
        _ => return HttpResponse::NotFound().finish(),
    };
    HttpResponse::Ok()
        .content_type(content_type)
        // Pages link these with a version query, so they can be cached for a long time.
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(body)
}
