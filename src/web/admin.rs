//! Moderation: /admin for moderators and administrators, the moderation actions they take from it
//! and from story and comment pages, reports anyone signed in can file, and the public /modlog.

use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{
    people::find_person,
    render, see_other,
    session::{CsrfForm, Ctx},
    views::{time_ago, Layout},
    PageQuery, Pager, PAGE_SIZE,
};
use crate::{
    cache::shared,
    db::{
        comments,
        moderation::{self, Ban, Block, ModAction, Report, Target},
        stories,
    },
    error::{AppError, AppResult},
    federation::{objects::DbPost, outbox},
    rate_limit::Action,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(admin))
        .route("/admin/moderate", web::post().to(moderate))
        .route("/admin/role", web::post().to(set_role))
        .route(
            "/admin/reports/{id}/forward",
            web::post().to(forward_report),
        )
        .route("/modlog", web::get().to(modlog))
        .route("/s/{id}/report", web::post().to(report_story))
        .route("/c/{id}/report", web::post().to(report_comment));
}

/// Reasons are public (the log shows them), so they are kept short.
const MAX_REASON: usize = 1000;

fn check_reason(reason: &str) -> AppResult<&str> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(AppError::BadRequest("give a reason".into()));
    }
    if reason.chars().count() > MAX_REASON {
        return Err(AppError::BadRequest(format!(
            "reasons are limited to {MAX_REASON} characters"
        )));
    }
    Ok(reason)
}

#[derive(Template)]
#[template(path = "admin/index.html")]
struct AdminPage {
    page: Layout,
    reports: Vec<Report>,
    bans: Vec<Ban>,
    blocks: Vec<Block>,
    /// Accounts waiting for approval: name and when they signed up.
    applicants: Vec<(String, chrono::DateTime<chrono::Utc>)>,
    /// Moderators and administrators: name and role.
    staff: Vec<(String, String)>,
    roles: [&'static str; 3],
}

impl AdminPage {
    fn reporter(report: &Report) -> String {
        crate::db::accounts::handle(&report.reporter_name, report.reporter_host.as_deref())
    }

    fn ago(report: &Report) -> String {
        time_ago(report.created_at)
    }
}

async fn admin(ctx: Ctx) -> AppResult<HttpResponse> {
    ctx.require_moderator()?;
    let db = &ctx.state.db.write;
    render(&AdminPage {
        reports: moderation::open_reports(db).await?,
        bans: moderation::bans(db).await?,
        blocks: moderation::blocks(db).await?,
        applicants: moderation::applicants(db).await?,
        staff: moderation::staff(db).await?,
        roles: moderation::ROLES,
        page: Layout::new(&ctx, "Administration"),
    })
}

#[derive(Deserialize)]
struct ModerateForm {
    action: String,
    /// story, comment, person, instance or report
    target: String,
    /// The id; a handle (`name` or `name@host`) for a person, a host for an instance.
    id: String,
    #[serde(default)]
    reason: String,
}

/// Every moderation action goes through here, from /admin and from story and comment pages.
async fn moderate(ctx: Ctx, CsrfForm(form): CsrfForm<ModerateForm>) -> AppResult<HttpResponse> {
    let moderator = ctx.require_moderator()?.id;
    let reason = check_reason(&form.reason)?;
    let id = form.id.trim();
    let number = || {
        id.parse::<i64>()
            .map_err(|_| AppError::BadRequest(format!("{id} is not an id")))
    };
    let (target, back) = match form.target.as_str() {
        "story" => (Target::Story(number()?), format!("/s/{id}")),
        "comment" => (Target::Comment(number()?), format!("/c/{id}")),
        "report" => (Target::Report(number()?), "/admin".to_owned()),
        "person" => {
            let person = find_person(&ctx.state, id.trim_start_matches('@')).await?;
            if person.is_admin() {
                return Err(AppError::Forbidden(
                    "administrators cannot be banned".into(),
                ));
            }
            (
                Target::Person(person.id, person.handle()),
                "/admin".to_owned(),
            )
        }
        "instance" => {
            let host = id.to_lowercase();
            if host.is_empty() || host.contains('/') || host == ctx.state.config.host() {
                return Err(AppError::BadRequest("give another server's host".into()));
            }
            (Target::Instance(host), "/admin".to_owned())
        }
        _ => return Err(AppError::BadRequest("unknown target".into())),
    };
    let allowed = matches!(
        (form.action.as_str(), &target),
        ("remove" | "restore", Target::Story(_) | Target::Comment(_))
            | ("lock" | "unlock", Target::Story(_))
            | ("ban" | "unban" | "approve" | "reject", Target::Person(..))
            | ("block" | "unblock", Target::Instance(_))
            | ("resolve_report" | "dismiss_report", Target::Report(_))
    );
    if !allowed {
        return Err(AppError::BadRequest(format!(
            "{} does not apply to a {}",
            form.action, form.target
        )));
    }
    let mut tx = ctx.state.db.write.begin().await?;
    let done = moderation::act_in(&mut tx, Some(moderator), &form.action, &target, reason).await?;
    if !done {
        return Err(AppError::Conflict(
            "nothing to do: no such thing, or it is already so".into(),
        ));
    }
    // A removal of local content reaches the servers that have it as a `Delete`, and a restore
    // as the `Undo` of it, which brings it back there too.
    if matches!(form.action.as_str(), "remove" | "restore") {
        let post = match target {
            Target::Story(id) => stories::get(&mut *tx, id).await?.map(DbPost::Story),
            Target::Comment(id) => comments::get(&mut *tx, id).await?.map(DbPost::Comment),
            _ => None,
        };
        // Remote posts too: those made to one of our tag groups are its to moderate.
        let moderator_row = crate::db::actors::by_id(&mut *tx, moderator).await?;
        if let (Some(post), Some(moderator_row)) = (post, moderator_row) {
            let restored = form.action == "restore";
            outbox::post_moderated(&mut tx, &ctx.state, &moderator_row, &post, reason, restored)
                .await?;
        }
    }
    if let (action @ ("ban" | "unban"), Target::Person(id, _)) = (form.action.as_str(), &target) {
        outbox::ban_changed(&mut tx, &ctx.state, *id, action == "ban").await?;
    }
    tx.commit().await?;
    Ok(see_other(&back))
}

#[derive(Deserialize)]
struct RoleForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    reason: String,
}

/// Makes a local person a user, a moderator or an administrator: administrators only, and never
/// their own role (so that the last one cannot lock everyone out by mistake).
async fn set_role(ctx: Ctx, CsrfForm(form): CsrfForm<RoleForm>) -> AppResult<HttpResponse> {
    let admin = ctx.require_moderator()?;
    if !admin.is_admin() {
        return Err(AppError::Forbidden(
            "only administrators may change roles".into(),
        ));
    }
    let reason = check_reason(&form.reason)?;
    let role = form.role.as_str();
    if !moderation::ROLES.contains(&role) {
        return Err(AppError::BadRequest(format!(
            "{role} is not a role: user, moderator or admin"
        )));
    }
    let name = form.name.trim().trim_start_matches('@');
    let person = crate::db::accounts::find_local(&ctx.state.db.write, name)
        .await?
        .filter(|p| p.deleted_at.is_none())
        .ok_or(AppError::NotFound)?;
    if person.id == admin.id {
        return Err(AppError::BadRequest(
            "you cannot change your own role".into(),
        ));
    }
    if !moderation::set_role(&ctx.state.db.write, Some(admin.id), name, role, reason).await? {
        return Err(AppError::Conflict(format!("{name} is {role} already")));
    }
    Ok(see_other("/admin"))
}

#[derive(Template)]
#[template(path = "admin/modlog.html")]
struct ModlogPage {
    page: Layout,
    actions: Vec<ModAction>,
    pager: Pager,
}

impl ModlogPage {
    fn ago(action: &ModAction) -> String {
        time_ago(action.created_at)
    }

    /// Where the target can be seen, when it is a page.
    fn href(action: &ModAction) -> Option<String> {
        match action.target_kind.as_str() {
            "story" => Some(format!("/s/{}", action.target_id)),
            "comment" => Some(format!("/c/{}", action.target_id)),
            "person" => Some(format!("/@{}", action.target_id)),
            _ => None,
        }
    }
}

async fn modlog(ctx: Ctx, query: web::Query<PageQuery>) -> AppResult<HttpResponse> {
    let mut actions = moderation::actions(ctx.read_db(), PAGE_SIZE, query.offset()).await?;
    let pager = Pager::cut("/modlog", query.number(), &mut actions);
    render(&ModlogPage {
        page: Layout::new(&ctx, "Moderation log").with_feed("/modlog"),
        actions,
        pager,
    })
    .map(shared)
}

#[derive(Deserialize)]
struct ReportForm {
    #[serde(default)]
    reason: String,
    /// Also send the report to the post's home server (Mastodon's "forward" checkbox).
    #[serde(default)]
    forward: Option<String>,
}

/// Files a report and, when asked and the post is remote, forwards it as a `Flag` in the same
/// transaction.
async fn file_report(ctx: &Ctx, post: Option<DbPost>, form: &ReportForm) -> AppResult<()> {
    let reporter = ctx.require_viewer()?.id;
    ctx.limit(Action::Report)?;
    let reason = check_reason(&form.reason)?;
    let post = post.ok_or(AppError::NotFound)?;
    let (story, comment) = match &post {
        DbPost::Story(story) => (Some(story.id), None),
        DbPost::Comment(comment) => (None, Some(comment.id)),
    };
    let mut tx = ctx.state.db.write.begin().await?;
    moderation::report(&mut *tx, reporter, story, comment, reason).await?;
    if form.forward.is_some() {
        outbox::report_forwarded(&mut tx, &ctx.state, &post, reason).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn report_story(
    ctx: Ctx,
    path: web::Path<i64>,
    CsrfForm(form): CsrfForm<ReportForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let story = stories::get(&ctx.state.db.write, id).await?;
    file_report(&ctx, story.map(DbPost::Story), &form).await?;
    Ok(see_other(&format!("/s/{id}?reported=1")))
}

async fn report_comment(
    ctx: Ctx,
    path: web::Path<i64>,
    CsrfForm(form): CsrfForm<ReportForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let comment = comments::get(&ctx.state.db.write, id).await?;
    file_report(&ctx, comment.map(DbPost::Comment), &form).await?;
    Ok(see_other(&format!("/c/{id}?reported=1")))
}

#[derive(Deserialize)]
struct Confirm {}

/// A moderator forwards an open report on a remote post to its home server.
async fn forward_report(
    ctx: Ctx,
    path: web::Path<i64>,
    _form: CsrfForm<Confirm>,
) -> AppResult<HttpResponse> {
    ctx.require_moderator()?;
    let db = &ctx.state.db.write;
    let (story, comment, reason) = moderation::report_subject(db, path.into_inner())
        .await?
        .ok_or(AppError::NotFound)?;
    let post = match (story, comment) {
        (Some(id), _) => stories::get(db, id).await?.map(DbPost::Story),
        (_, Some(id)) => comments::get(db, id).await?.map(DbPost::Comment),
        _ => None,
    }
    .ok_or(AppError::NotFound)?;
    let mut tx = db.begin().await?;
    if !outbox::report_forwarded(&mut tx, &ctx.state, &post, &reason).await? {
        return Err(AppError::BadRequest(
            "only reports on posts from other servers can be forwarded".into(),
        ));
    }
    tx.commit().await?;
    Ok(see_other("/admin?forwarded=1"))
}
