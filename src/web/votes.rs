//! Voting: +1, -1, or 0 to withdraw, on stories and comments. A plain form redirects back; the
//! voting script asks for JSON and updates the score in place.

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::{
    see_other,
    session::{CsrfForm, Ctx},
    wants_json,
};
use crate::{
    db::{
        actors, comments, stories,
        votes::{self, Target},
    },
    error::{AppError, AppResult},
    federation::{objects::DbPost, outbox},
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/s/{id}/vote", web::post().to(vote_story))
        .route("/c/{id}/vote", web::post().to(vote_comment));
}

#[derive(Deserialize)]
struct VoteForm {
    value: String,
}

async fn vote_story(
    ctx: Ctx,
    req: HttpRequest,
    path: web::Path<i64>,
    form: CsrfForm<VoteForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    vote(ctx, req, Target::Story(id), form.0, format!("/s/{id}")).await
}

async fn vote_comment(
    ctx: Ctx,
    req: HttpRequest,
    path: web::Path<i64>,
    form: CsrfForm<VoteForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    vote(ctx, req, Target::Comment(id), form.0, format!("/c/{id}")).await
}

async fn vote(
    ctx: Ctx,
    req: HttpRequest,
    target: Target,
    form: VoteForm,
    fallback: String,
) -> AppResult<HttpResponse> {
    let voter = ctx.require_viewer()?.id;
    ctx.limit(crate::rate_limit::Action::Vote)?;
    let value: i16 = match form.value.trim() {
        "1" | "+1" => 1,
        "-1" => -1,
        "0" => 0,
        _ => return Err(AppError::BadRequest("value must be 1, -1 or 0".into())),
    };
    let score = record(&ctx, voter, target, value).await?;
    if wants_json(&req) {
        return Ok(HttpResponse::Ok().json(serde_json::json!({ "score": score, "vote": value })));
    }
    // Back where the vote was cast, scrolled to what was voted on.
    let page = back(&req, &ctx.state.config.origin()).unwrap_or(fallback);
    Ok(see_other(&format!("{page}#{}", anchor(target))))
}

/// Records a vote (sending it to a remote post's home) and returns the new score.
pub async fn record(ctx: &Ctx, voter: i64, target: Target, value: i16) -> AppResult<i32> {
    let mut tx = ctx.state.db.write.begin().await?;
    let post = match target {
        Target::Story(id) => stories::get(&mut *tx, id).await?.map(DbPost::Story),
        Target::Comment(id) => comments::get(&mut *tx, id).await?.map(DbPost::Comment),
    }
    .filter(|post| !post.is_deleted())
    .ok_or(AppError::NotFound)?;
    let voter_row = actors::by_id(&mut *tx, voter)
        .await?
        .ok_or(AppError::NotFound)?;
    // A vote travels as a Like or Dislike under this id: to a remote post's author, and from the
    // story's tag groups to the servers that follow them.
    let ap_id = (value != 0).then(|| outbox::new_activity_id(&ctx.state.config.origin()));
    let change = votes::cast(&mut tx, voter, target, value, ap_id.as_deref())
        .await?
        .ok_or(AppError::NotFound)?;
    let old = (change.old_value, change.old_ap_id.clone());
    outbox::vote_changed(
        &mut tx,
        &ctx.state,
        &voter_row,
        &post,
        value,
        ap_id.as_deref(),
        old,
    )
    .await?;
    tx.commit().await?;
    Ok(change.score)
}

/// The id of a story's or comment's element on every page that shows it.
pub fn anchor(target: Target) -> String {
    match target {
        Target::Story(id) => format!("s{id}"),
        Target::Comment(id) => format!("c{id}"),
    }
}

/// `s12` or `c34`, as [`anchor`] writes them (the up-vote a logged-out reader clicked).
pub fn parse_anchor(anchor: &str) -> Option<Target> {
    let id = |digits: &str| digits.parse::<i64>().ok().filter(|id| *id > 0);
    match anchor.split_at_checked(1)? {
        ("s", digits) => id(digits).map(Target::Story),
        ("c", digits) => id(digits).map(Target::Comment),
        _ => None,
    }
}

/// The page the vote (or a save, a hide) came from, when it is one of ours.
pub fn back(req: &HttpRequest, origin: &str) -> Option<String> {
    let referer = req.headers().get(header::REFERER)?.to_str().ok()?;
    // Any fragment goes: the vote's own anchor is added by the caller.
    let path = referer.strip_prefix(origin)?;
    crate::input::local_path(path.split('#').next().unwrap_or_default())
}
