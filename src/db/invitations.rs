//! Invitations (LIEN_REGISTRATION=invite): links people here hand out, one use each, and the
//! public tree of who invited whom.

use chrono::{DateTime, Utc};
use rand::RngCore;
use sqlx::{PgExecutor, Postgres, Transaction};

/// One of a person's invitations, as /invitations lists them.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Invitation {
    pub code: String,
    pub created_at: DateTime<Utc>,
    /// Who signed up with it, once used.
    pub used_by: Option<String>,
}

/// Makes an invitation and returns its code, the secret in the link.
pub async fn create(db: impl PgExecutor<'_>, inviter_id: i64) -> sqlx::Result<String> {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    let code = hex::encode(bytes);
    sqlx::query("insert into invitation (code, inviter_id) values ($1, $2)")
        .bind(&code)
        .bind(inviter_id)
        .execute(db)
        .await?;
    Ok(code)
}

/// A person's invitations, newest first.
pub async fn of_inviter(db: impl PgExecutor<'_>, inviter_id: i64) -> sqlx::Result<Vec<Invitation>> {
    sqlx::query_as(
        "select i.code, i.created_at, p.name as used_by from invitation i
         left join person p on p.id = i.used_by
         where i.inviter_id = $1 order by i.created_at desc, i.code",
    )
    .bind(inviter_id)
    .fetch_all(db)
    .await
}

/// How many of a person's invitations wait to be used.
pub async fn unused_count(db: impl PgExecutor<'_>, inviter_id: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar("select count(*) from invitation where inviter_id = $1 and used_at is null")
        .bind(inviter_id)
        .fetch_one(db)
        .await
}

/// Whether a code can still be used: unused, and its inviter neither banned nor deleted.
pub async fn is_usable(db: impl PgExecutor<'_>, code: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from invitation i join person p on p.id = i.inviter_id
                        where i.code = $1 and i.used_at is null
                          and p.banned_at is null and p.deleted_at is null)",
    )
    .bind(code)
    .fetch_one(db)
    .await
}

/// Takes a usable code for a new account, in the account's transaction: marks it used (so that
/// two sign-ups racing for one code cannot both have it) and returns the inviter.
pub async fn claim(tx: &mut Transaction<'_, Postgres>, code: &str) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "update invitation i set used_at = now()
         from person p
         where i.code = $1 and i.used_at is null and p.id = i.inviter_id
           and p.banned_at is null and p.deleted_at is null
         returning i.inviter_id",
    )
    .bind(code)
    .fetch_optional(&mut **tx)
    .await
}

/// Records who used a claimed code, on the invitation and on the new account.
pub async fn record_use(
    tx: &mut Transaction<'_, Postgres>,
    code: &str,
    inviter_id: i64,
    person_id: i64,
) -> sqlx::Result<()> {
    sqlx::query("update invitation set used_by = $2 where code = $1")
        .bind(code)
        .bind(person_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("update person set invited_by = $2 where id = $1")
        .bind(person_id)
        .bind(inviter_id)
        .execute(&mut **tx)
        .await
        .map(drop)
}

/// The name of whoever invited a person, if anyone did.
pub async fn inviter_name(db: impl PgExecutor<'_>, person_id: i64) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "select i.name from person p join person i on i.id = p.invited_by
         where p.id = $1 and i.deleted_at is null",
    )
    .bind(person_id)
    .fetch_optional(db)
    .await
}

/// A local account in the invitation tree: id, name, and who invited it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Member {
    pub id: i64,
    pub name: String,
    pub invited_by: Option<i64>,
}

/// Every live local account, oldest first, for the tree (as Lobsters shows it, all of it).
pub async fn members(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<Member>> {
    sqlx::query_as(
        "select id, name, invited_by from person
         where local and deleted_at is null and not awaiting_approval
         order by created_at, id",
    )
    .fetch_all(db)
    .await
}
