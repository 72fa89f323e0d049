//! The stylesheet and the script, compiled into the binary so that a deployment is one file, and
//! served under a version that is their content's hash: pages link `/static/lien.css?v={hash}`,
//! which can then be cached for a year (`immutable`), and a new build links a new URL. Beside
//! them, at fixed addresses, the icon and `robots.txt`.

use std::sync::OnceLock;

use actix_web::{http::header, web, HttpResponse};
use serde::Deserialize;
use sha2::{Digest, Sha256};

struct Asset {
    name: &'static str,
    body: &'static str,
    content_type: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "lien.css",
        body: include_str!("../../static/lien.css"),
        content_type: "text/css; charset=utf-8",
    },
    Asset {
        name: "lien.js",
        body: include_str!("../../static/lien.js"),
        content_type: "text/javascript; charset=utf-8",
    },
];

/// A year: what `immutable` responses promise, and what browsers keep at most anyway.
const FOREVER: &str = "public, max-age=31536000, immutable";

/// An asset asked for without its current version (an old page, a hand-typed URL) is still
/// served, but kept briefly so that it is replaced soon.
const BRIEFLY: &str = "public, max-age=300";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/{file}", web::get().to(show))
        .route("/favicon.svg", web::get().to(favicon))
        .route("/robots.txt", web::get().to(robots));
}

/// Fixed addresses that browsers and crawlers ask for: kept a day.
fn fixed(body: &'static str, content_type: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(body)
}

async fn favicon() -> HttpResponse {
    fixed(include_str!("../../static/favicon.svg"), "image/svg+xml")
}

async fn robots() -> HttpResponse {
    fixed(
        include_str!("../../static/robots.txt"),
        "text/plain; charset=utf-8",
    )
}

/// The asset's content hash, short: 16 hex digits are plenty to tell builds apart.
fn version(asset: &Asset) -> &'static str {
    static VERSIONS: OnceLock<Vec<String>> = OnceLock::new();
    let versions = VERSIONS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| hex::encode(&Sha256::digest(a.body.as_bytes())[..8]))
            .collect()
    });
    let index = ASSETS
        .iter()
        .position(|a| a.name == asset.name)
        .expect("a listed asset");
    &versions[index]
}

/// The URL pages link an asset by: its path and its current version.
pub fn url(name: &str) -> String {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(asset) => format!("/static/{name}?v={}", version(asset)),
        None => format!("/static/{name}"),
    }
}

#[derive(Deserialize)]
struct VersionQuery {
    v: Option<String>,
}

async fn show(path: web::Path<String>, query: web::Query<VersionQuery>) -> HttpResponse {
    let Some(asset) = ASSETS.iter().find(|a| a.name == path.as_str()) else {
        return HttpResponse::NotFound().finish();
    };
    let current = query.v.as_deref() == Some(version(asset));
    HttpResponse::Ok()
        .content_type(asset.content_type)
        .insert_header((
            header::CACHE_CONTROL,
            if current { FOREVER } else { BRIEFLY },
        ))
        .body(asset.body)
}
