//! The HTML side of lien: handlers grouped by area, composed into one route table.

pub mod accounts;
pub mod admin;
pub mod assets;
pub mod comments;
pub mod communities;
pub mod connections;
pub mod db_gate;
pub mod feeds;
pub mod invitations;
pub mod media;
pub mod notifications;
pub mod ops;
pub mod page_cache;
pub mod people;
pub mod reading;
pub mod request_log;
pub mod search;
pub mod session;
pub mod stories;
pub mod views;
pub mod votes;

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::error::AppResult;

/// Stories per page on every list (SPEC section 2).
pub const PAGE_SIZE: i64 = 25;

/// The route table of pages and forms. Literal paths come before `{id}` patterns that could swallow
/// them. The feeds (`/s/{id}.rss`, `/@{name}.rss`, [`feeds::routes`]) and the ActivityPub endpoints
/// are registered before these, by `crate::http_server`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(ops::routes)
        .configure(media::routes)
        .configure(accounts::routes)
        .configure(stories::routes)
        .configure(comments::routes)
        .configure(votes::routes)
        .configure(reading::routes)
        .configure(search::routes)
        .configure(people::routes)
        .configure(communities::routes)
        .configure(admin::routes)
        .configure(invitations::routes)
        .configure(notifications::routes);
}

/// What every page may load and do, said to the browser: only lien's own scripts, styles,
/// images and forms, never inside another site's frame. No inline script or style of any kind.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// Security headers on every response that does not set its own (media files set a stricter
/// policy): the policy above, no MIME sniffing, and only the origin as referrer to other sites, so
/// a secret URL (a private feed) never leaks to a linked site.
pub fn security_headers() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "strict-origin-when-cross-origin"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
}

/// Renders a template as an HTML page.
pub fn render(template: &impl Template) -> AppResult<HttpResponse> {
    render_with(actix_web::http::StatusCode::OK, template)
}

/// Renders a template with a status other than 200 (a form with errors answers 422).
pub fn render_with(
    status: actix_web::http::StatusCode,
    template: &impl Template,
) -> AppResult<HttpResponse> {
    let body = template
        .render()
        .map_err(|e| anyhow::anyhow!("template: {e}"))?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body))
}

/// A 303 to another page of this site, the answer to every successful form. Whatever `location`
/// holds, the browser stays on this origin ([`crate::input::local_path`]; the home page otherwise).
pub fn see_other(location: &str) -> HttpResponse {
    let location = crate::input::local_path(location).unwrap_or_else(|| "/".to_owned());
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// Whether the client asked for JSON (the voting script does; forms do not).
pub fn wants_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// `?page=N`, 1-based; story lists also take `&after=ID`, the last story of the page before,
/// which their "more" links carry (keyset pagination: see `db::stories::list_after`).
#[derive(Deserialize)]
pub struct PageQuery {
    pub page: Option<i64>,
    pub after: Option<i64>,
}

impl PageQuery {
    pub fn number(&self) -> i64 {
        self.page.unwrap_or(1).clamp(1, 10_000)
    }

    pub fn offset(&self) -> i64 {
        (self.number() - 1) * PAGE_SIZE
    }
}

/// Links to the neighbouring pages of a list.
pub struct Pager {
    pub previous: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    /// `rows` were fetched with one extra; the extra, if present, proves a next page and is dropped.
    pub fn cut<T>(base: &str, page: i64, rows: &mut Vec<T>) -> Pager {
        let (pager, shown) = Pager::by_offset(base, page, rows);
        let shown = shown.len();
        rows.truncate(shown);
        pager
    }

    /// Like [`Pager::cut`], for a slice: returns the rows to show.
    pub fn by_offset<'a, T>(base: &str, page: i64, rows: &'a [T]) -> (Pager, &'a [T]) {
        let shown = &rows[..rows.len().min(PAGE_SIZE as usize)];
        let next = (rows.len() > shown.len()).then(|| format!("page={}", page + 1));
        (Pager::links(base, page, next), shown)
    }

    /// Like [`Pager::by_offset`], with the next link continuing after the last row shown
    /// (`last_id`) rather than by offset.
    pub fn after<'a, T>(
        base: &str,
        page: i64,
        rows: &'a [T],
        last_id: impl Fn(&T) -> i64,
    ) -> (Pager, &'a [T]) {
        let shown = &rows[..rows.len().min(PAGE_SIZE as usize)];
        let next = (rows.len() > shown.len())
            .then(|| shown.last().map(&last_id))
            .flatten()
            .map(|id| format!("page={}&after={id}", page + 1));
        (Pager::links(base, page, next), shown)
    }

    fn links(base: &str, page: i64, next: Option<String>) -> Pager {
        let sep = if base.contains('?') { '&' } else { '?' };
        Pager {
            previous: (page > 1).then(|| format!("{base}{sep}page={}", page - 1)),
            next: next.map(|query| format!("{base}{sep}{query}")),
        }
    }
}
