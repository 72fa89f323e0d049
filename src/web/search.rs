//! `/search`: stories, comments or people, by relevance or newest first, with a feed of the
//! stories found. A pasted remote address or `@user@host` opens its page here instead.

use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{
    comments::comment_votes,
    render, see_other,
    session::Ctx,
    stories::story_views,
    views::{CommentView, Layout, StoryView},
    Pager, PAGE_SIZE,
};
use crate::{
    db::{
        accounts::{self, handle, profile_href},
        comments,
        stories::{self, Listing},
    },
    error::{AppError, AppResult},
    federation::{resolve, FedData},
    rate_limit::Action,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/search", web::get().to(search));
}

#[derive(Deserialize)]
pub struct SearchQuery {
    pub q: Option<String>,
    /// `stories` (the default), `comments` or `people`.
    pub what: Option<String>,
    /// `relevance` (the default) or `new`.
    pub sort: Option<String>,
    pub page: Option<i64>,
}

/// A person found, as the results list them.
pub struct PersonHit {
    pub handle: String,
    pub href: String,
    pub display_name: String,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    page: Layout,
    q: String,
    what: &'static str,
    sort: &'static str,
    /// The query string of this search without `what` (for the tabs) and without `sort`.
    q_encoded: String,
    stories: Vec<StoryView>,
    comments: Vec<CommentView>,
    people: Vec<PersonHit>,
    first_rank: i64,
    pager: Pager,
}

async fn search(
    ctx: Ctx,
    data: FedData,
    query: web::Query<SearchQuery>,
) -> AppResult<HttpResponse> {
    let q = query.q.as_deref().unwrap_or("").trim().to_owned();
    if !q.is_empty() {
        ctx.limit(Action::Search)?;
    }
    if let Some(c) = crate::input::first_refused(&q) {
        return Err(AppError::Malformed(format!(
            "a search cannot hold a control character (U+{:04X})",
            u32::from(c)
        )));
    }
    if q.chars().count() > 500 {
        return Err(AppError::BadRequest(
            "search for at most 500 characters".into(),
        ));
    }
    let what = match query.what.as_deref().unwrap_or("stories") {
        "stories" | "" => "stories",
        "comments" => "comments",
        "people" => "people",
        _ => {
            return Err(AppError::BadRequest(
                "what must be stories, comments or people".into(),
            ))
        }
    };
    let sort = match query.sort.as_deref().unwrap_or("relevance") {
        "relevance" | "" => "relevance",
        "new" => "new",
        _ => return Err(AppError::BadRequest("sort must be relevance or new".into())),
    };
    // A pasted remote address opens its page here, fetched from its home if it is new.
    if ctx.state.config.federation == crate::config::Switch::On {
        if let Some(path) = resolve::resolve(&data, &q).await? {
            return Ok(see_other(&path));
        }
    }
    let number = query.page.unwrap_or(1).clamp(1, 10_000);
    let offset = (number - 1) * PAGE_SIZE;
    let q_encoded = url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
    let base = format!("/search?q={q_encoded}&what={what}&sort={sort}");
    let db = ctx.read_db();
    let mut page = SearchPage {
        page: Layout::new(
            &ctx,
            if q.is_empty() {
                "Search".to_owned()
            } else {
                format!("Search: {q}")
            },
        ),
        q: q.clone(),
        what,
        sort,
        q_encoded: q_encoded.clone(),
        stories: vec![],
        comments: vec![],
        people: vec![],
        first_rank: offset,
        pager: Pager {
            previous: None,
            next: None,
        },
    };
    if q.is_empty() {
        return render(&page);
    }
    match what {
        "stories" => {
            let listing = if sort == "new" {
                Listing::SearchNew(q.clone())
            } else {
                Listing::Search(q.clone())
            };
            let mut rows = stories::list(db, &listing, PAGE_SIZE + 1, offset).await?;
            page.pager = Pager::cut(&base, number, &mut rows);
            page.stories = story_views(&ctx, &rows).await?;
            page.page = page
                .page
                .with_feed(format!("/search?q={q_encoded}&sort={sort}"));
        }
        "comments" => {
            let mut rows = comments::search(db, &q, sort == "new", PAGE_SIZE + 1, offset).await?;
            page.pager = Pager::cut(&base, number, &mut rows);
            let votes = comment_votes(&ctx, &rows).await?;
            page.comments = rows
                .iter()
                .map(|c| CommentView::new(c, 0, ctx.viewer.as_ref(), &votes))
                .collect();
        }
        _ => {
            let mut rows = accounts::search(db, &q, PAGE_SIZE + 1, offset).await?;
            page.pager = Pager::cut(&base, number, &mut rows);
            page.people = rows
                .into_iter()
                .map(|(name, host, display_name)| PersonHit {
                    handle: handle(&name, host.as_deref()),
                    href: profile_href(&name, host.as_deref()),
                    display_name,
                })
                .collect();
        }
    }
    render(&page)
}
