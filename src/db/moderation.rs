//! Moderation: removals, thread locks, bans, instance blocks, reports, and the public log that
//! records every one of them with its reason (`mod_action`, shown at /modlog).

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool, Postgres, Transaction};

/// SQL that is true when the host in column `$column` (a string literal naming a qualified
/// column or an expression) is a blocked server or a subdomain of one: a block of `example.com`
/// covers `social.example.com`, as Mastodon's domain blocks do. A macro so that it can be joined
/// into the `const` SQL of the lists with `concat!`; `instance_block` holds lower-case hosts.
#[macro_export]
macro_rules! blocked_host_sql {
    ($column:literal) => {
        concat!(
            "exists (select 1 from instance_block b where b.host = ",
            $column,
            " or right(",
            $column,
            ", length(b.host) + 1) = '.' || b.host)"
        )
    };
}

/// What a moderator acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Story(i64),
    Comment(i64),
    /// A person, local or remote: the id, and the handle the log shows (`name` or `name@host`).
    Person(i64, String),
    /// A server, by host (with port when not the default).
    Instance(String),
    Report(i64),
}

impl Target {
    fn kind(&self) -> &'static str {
        match self {
            Target::Story(_) => "story",
            Target::Comment(_) => "comment",
            Target::Person(..) => "person",
            Target::Instance(_) => "instance",
            Target::Report(_) => "report",
        }
    }

    fn id(&self) -> String {
        match self {
            Target::Story(id) | Target::Comment(id) | Target::Report(id) => id.to_string(),
            Target::Person(_, handle) | Target::Instance(handle) => handle.clone(),
        }
    }
}

/// Records an action in the public log. `moderator` is null for the command line.
pub async fn log(
    db: impl PgExecutor<'_>,
    moderator: Option<i64>,
    action: &str,
    target: &Target,
    reason: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into mod_action (moderator_id, action, target_kind, target_id, reason)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(moderator)
    .bind(action)
    .bind(target.kind())
    .bind(target.id())
    .bind(reason)
    .execute(db)
    .await
    .map(drop)
}

/// One line of the public log.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ModAction {
    pub id: i64,
    /// The moderator's name; none for the command line (or a deleted account).
    pub moderator: Option<String>,
    pub action: String,
    pub target_kind: String,
    pub target_id: String,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

/// The log, newest first; one row more than `limit` tells the caller a next page exists.
pub async fn actions(
    db: impl PgExecutor<'_>,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<ModAction>> {
    sqlx::query_as(
        "select m.id, p.name as moderator, m.action, m.target_kind, m.target_id, m.reason, m.created_at
         from mod_action m left join person p on p.id = m.moderator_id
         order by m.created_at desc, m.id desc limit $1 offset $2",
    )
    .bind(limit + 1)
    .bind(offset)
    .fetch_all(db)
    .await
}

/// Runs one action and logs it in the same transaction. False when there was nothing to do (no
/// such target, or already in that state); nothing is logged then.
pub async fn act(
    pool: &PgPool,
    moderator: Option<i64>,
    action: &str,
    target: &Target,
    reason: &str,
) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let done = act_in(&mut tx, moderator, action, target, reason).await?;
    tx.commit().await?;
    Ok(done)
}

/// [`act`] in the caller's transaction, so that what the action causes (a `Delete` sent to other
/// servers) commits with it.
pub async fn act_in(
    tx: &mut Transaction<'_, Postgres>,
    moderator: Option<i64>,
    action: &str,
    target: &Target,
    reason: &str,
) -> sqlx::Result<bool> {
    let done = apply(tx, action, target, reason).await?;
    if let (true, "block", Target::Instance(_)) = (done, action, target) {
        // What was queued for the server goes too: nothing more is delivered to it.
        sqlx::query(concat!(
            "delete from delivery where ",
            crate::blocked_host_sql!("delivery.host")
        ))
        .execute(&mut **tx)
        .await?;
    }
    if done {
        log(&mut **tx, moderator, action, target, reason).await?;
    }
    Ok(done)
}

async fn apply(
    tx: &mut Transaction<'_, Postgres>,
    action: &str,
    target: &Target,
    reason: &str,
) -> sqlx::Result<bool> {
    let query = match (action, target) {
        ("remove", Target::Story(id)) => sqlx::query(
            "update story set removed_at = now(), removed_reason = $2 where id = $1 and removed_at is null",
        )
        .bind(id)
        .bind(reason),
        ("restore", Target::Story(id)) => sqlx::query(
            "update story set removed_at = null, removed_reason = null where id = $1 and removed_at is not null",
        )
        .bind(id),
        ("remove", Target::Comment(id)) => sqlx::query(
            "update comment set removed_at = now(), removed_reason = $2 where id = $1 and removed_at is null",
        )
        .bind(id)
        .bind(reason),
        ("restore", Target::Comment(id)) => sqlx::query(
            "update comment set removed_at = null, removed_reason = null where id = $1 and removed_at is not null",
        )
        .bind(id),
        ("lock", Target::Story(id)) => {
            sqlx::query("update story set locked_at = now() where id = $1 and locked_at is null")
                .bind(id)
        }
        ("unlock", Target::Story(id)) => {
            sqlx::query("update story set locked_at = null where id = $1 and locked_at is not null")
                .bind(id)
        }
        ("ban", Target::Person(id, _)) => sqlx::query(
            "update person set banned_at = now(), ban_reason = $2 where id = $1 and banned_at is null",
        )
        .bind(id)
        .bind(reason),
        ("approve", Target::Person(id, _)) => sqlx::query(
            "update person set awaiting_approval = false where id = $1 and awaiting_approval",
        )
        .bind(id),
        // A rejected application leaves nothing behind.
        ("reject", Target::Person(id, _)) => {
            sqlx::query("delete from person where id = $1 and local and awaiting_approval").bind(id)
        }
        ("unban", Target::Person(id, _)) => sqlx::query(
            "update person set banned_at = null, ban_reason = null where id = $1 and banned_at is not null",
        )
        .bind(id),
        ("block", Target::Instance(host)) => sqlx::query(
            "insert into instance_block (host, reason) values (lower($1), $2) on conflict do nothing",
        )
        .bind(host)
        .bind(reason),
        ("unblock", Target::Instance(host)) => {
            sqlx::query("delete from instance_block where host = lower($1)").bind(host)
        }
        ("resolve_report", Target::Report(id)) | ("dismiss_report", Target::Report(id)) => {
            let status = if action == "resolve_report" {
                "resolved"
            } else {
                "dismissed"
            };
            sqlx::query("update report set status = $2 where id = $1 and status = 'open'")
                .bind(id)
                .bind(status)
        }
        _ => {
            return Err(sqlx::Error::InvalidArgument(format!(
                "{action} does not apply to a {}",
                target.kind()
            )))
        }
    };
    Ok(query.execute(&mut **tx).await?.rows_affected() > 0)
}

/// The roles a local person can have.
pub const ROLES: [&str; 3] = ["user", "moderator", "admin"];

/// Sets a local person's role and logs it with the reason: what `lien user set-role` and /admin
/// both run. False when there is no such live local person, or it already has that role.
pub async fn set_role(
    pool: &PgPool,
    moderator: Option<i64>,
    name: &str,
    role: &str,
    reason: &str,
) -> sqlx::Result<bool> {
    if !ROLES.contains(&role) {
        return Err(sqlx::Error::InvalidArgument(format!(
            "{role} is not a role"
        )));
    }
    let mut tx = pool.begin().await?;
    let person: Option<(i64, String)> = sqlx::query_as(
        "update person set role = $2
         where local and lower(name) = lower($1) and deleted_at is null and role <> $2
         returning id, name",
    )
    .bind(name)
    .bind(role)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id, name)) = person else {
        return Ok(false);
    };
    log(
        &mut *tx,
        moderator,
        "set_role",
        &Target::Person(id, name),
        &format!("role set to {role}: {reason}"),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Moderators and administrators, for /admin: name and role.
pub async fn staff(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(
        "select name, role from person where local and role <> 'user' and deleted_at is null
         order by role, name",
    )
    .fetch_all(db)
    .await
}

/// Whether a server is blocked, itself or as a subdomain of a blocked one. `host` as in
/// `person.host`.
pub async fn is_blocked(db: impl PgExecutor<'_>, host: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar(concat!("select ", crate::blocked_host_sql!("lower($1)")))
        .bind(host)
        .fetch_one(db)
        .await
}

/// Puts a new account on hold until a moderator approves it.
pub async fn hold_for_approval(db: impl PgExecutor<'_>, person_id: i64) -> sqlx::Result<()> {
    sqlx::query("update person set awaiting_approval = true where id = $1")
        .bind(person_id)
        .execute(db)
        .await
        .map(drop)
}

/// Accounts waiting for approval, oldest first, for /admin.
pub async fn applicants(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<(String, DateTime<Utc>)>> {
    sqlx::query_as(
        "select name, created_at from person where awaiting_approval order by created_at, id",
    )
    .fetch_all(db)
    .await
}

/// A blocked server, for /admin.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Block {
    pub host: String,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

pub async fn blocks(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<Block>> {
    sqlx::query_as("select host, reason, created_at from instance_block order by host")
        .fetch_all(db)
        .await
}

/// A banned person, for /admin.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Ban {
    pub name: String,
    pub host: Option<String>,
    pub reason: String,
    pub banned_at: DateTime<Utc>,
}

pub async fn bans(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<Ban>> {
    sqlx::query_as(
        "select name, host, coalesce(ban_reason, '') as reason, banned_at from person
         where banned_at is not null order by banned_at desc",
    )
    .fetch_all(db)
    .await
}

/// Files a report on a story or a comment (exactly one of them).
pub async fn report(
    db: impl PgExecutor<'_>,
    reporter_id: i64,
    story_id: Option<i64>,
    comment_id: Option<i64>,
    reason: &str,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "insert into report (reporter_id, story_id, comment_id, reason) values ($1, $2, $3, $4)
         returning id",
    )
    .bind(reporter_id)
    .bind(story_id)
    .bind(comment_id)
    .bind(reason)
    .fetch_one(db)
    .await
}

/// An open report with what /admin shows of it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Report {
    pub id: i64,
    pub reporter_name: String,
    pub reporter_host: Option<String>,
    pub story_id: Option<i64>,
    pub comment_id: Option<i64>,
    /// The reported story's title, or the title of the reported comment's story.
    pub title: String,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    /// The reported post lives on another server, where the report can be forwarded.
    pub remote: bool,
}

/// Open reports, oldest first.
pub async fn open_reports(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<Report>> {
    sqlx::query_as(
        "select r.id, p.name as reporter_name, p.host as reporter_host, r.story_id, r.comment_id,
                coalesce(s.title, cs.title, '') as title, r.reason, r.created_at,
                not coalesce(s.local, c.local) as remote
         from report r join person p on p.id = r.reporter_id
         left join story s on s.id = r.story_id
         left join comment c on c.id = r.comment_id
         left join story cs on cs.id = c.story_id
         where r.status = 'open' order by r.created_at, r.id",
    )
    .fetch_all(db)
    .await
}

/// What a report names and why: (story, comment, reason).
pub async fn report_subject(
    db: impl PgExecutor<'_>,
    report_id: i64,
) -> sqlx::Result<Option<(Option<i64>, Option<i64>, String)>> {
    sqlx::query_as("select story_id, comment_id, reason from report where id = $1")
        .bind(report_id)
        .fetch_optional(db)
        .await
}
