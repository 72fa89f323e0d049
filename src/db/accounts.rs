//! People (local accounts and remote actors) and login sessions.

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::{PgExecutor, PgPool, Postgres, Transaction};

/// How long a login lasts without being used again.
pub const SESSION_DAYS: i64 = 30;

/// `name` or `name@host`.
pub fn handle(name: &str, host: Option<&str>) -> String {
    match host {
        Some(host) => format!("{name}@{host}"),
        None => name.to_owned(),
    }
}

/// What a deleted account's posts show as their author (lists select it in its name's place).
pub const DELETED_AUTHOR: &str = "[deleted]";

/// A profile's path; empty for a deleted account, which has no profile to link to.
pub fn profile_href(name: &str, host: Option<&str>) -> String {
    if host.is_none() && name == DELETED_AUTHOR {
        return String::new();
    }
    format!("/@{}", handle(name, host))
}

/// A person as pages show them: a local account or a remote actor.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Person {
    pub id: i64,
    pub name: String,
    pub host: Option<String>,
    pub local: bool,
    pub ap_id: String,
    pub display_name: String,
    pub bio: String,
    pub avatar_url: Option<String>,
    pub role: String,
    pub created_at: DateTime<Utc>,
    /// Set while the person is banned: a local one can no longer log in, post or vote.
    pub banned_at: Option<DateTime<Utc>>,
    /// A new account waiting for a moderator's approval (LIEN_REGISTRATION=approval).
    pub awaiting_approval: bool,
    /// Set once the account was deleted: it cannot log in, and what it kept shows as "[deleted]".
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Person {
    /// `name` for local people, `name@host` for remote ones (SPEC section 2).
    pub fn handle(&self) -> String {
        handle(&self.name, self.host.as_deref())
    }

    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }

    /// Moderators and administrators may moderate (/admin, removals, bans...).
    pub fn is_moderator(&self) -> bool {
        matches!(self.role.as_str(), "moderator" | "admin")
    }
}

const PERSON_COLUMNS: &str =
    "id, name, host, local, ap_id, display_name, bio, avatar_url, role, created_at, banned_at, awaiting_approval, deleted_at";

/// What a new local account is made of; the caller has validated and hashed.
pub struct NewLocalPerson<'a> {
    pub name: &'a str,
    pub ap_id: &'a str,
    pub password_hash: &'a str,
    pub public_key_pem: &'a str,
    pub private_key_pem: &'a str,
    pub role: &'a str,
}

/// Inserts a local account. A taken name (in any case) is `Ok(None)`.
pub async fn create_local(pool: &PgPool, new: NewLocalPerson<'_>) -> sqlx::Result<Option<Person>> {
    let result = sqlx::query_as::<_, Person>(&format!(
        "insert into person (name, host, local, ap_id, password_hash, public_key_pem, private_key_pem, role)
         values ($1, null, true, $2, $3, $4, $5, $6)
         returning {PERSON_COLUMNS}"
    ))
    .bind(new.name)
    .bind(new.ap_id)
    .bind(new.password_hash)
    .bind(new.public_key_pem)
    .bind(new.private_key_pem)
    .bind(new.role)
    .fetch_one(pool)
    .await;
    match result {
        Ok(person) => Ok(Some(person)),
        Err(sqlx::Error::Database(e)) if e.constraint() == Some("person_local_name_key") => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// A local account by name, in any case.
pub async fn find_local(db: impl PgExecutor<'_>, name: &str) -> sqlx::Result<Option<Person>> {
    sqlx::query_as(&format!(
        "select {PERSON_COLUMNS} from person where local and lower(name) = lower($1)"
    ))
    .bind(name)
    .fetch_optional(db)
    .await
}

/// A remote actor by `name` and `host`.
pub async fn find_remote(
    db: impl PgExecutor<'_>,
    name: &str,
    host: &str,
) -> sqlx::Result<Option<Person>> {
    sqlx::query_as(&format!(
        "select {PERSON_COLUMNS} from person where not local and kind <> 'Group' and lower(name) = lower($1) and host = lower($2)"
    ))
    .bind(name)
    .bind(host)
    .fetch_optional(db)
    .await
}

/// The stored password hash of a local account, for logging in; none for a deleted account.
pub async fn password_hash(
    db: impl PgExecutor<'_>,
    person_id: i64,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "select password_hash from person where id = $1 and local and deleted_at is null",
    )
    .bind(person_id)
    .fetch_optional(db)
    .await
    .map(Option::flatten)
}

pub async fn set_password_hash(
    db: impl PgExecutor<'_>,
    person_id: i64,
    hash: &str,
) -> sqlx::Result<()> {
    sqlx::query("update person set password_hash = $2 where id = $1 and local")
        .bind(person_id)
        .bind(hash)
        .execute(db)
        .await
        .map(drop)
}

pub async fn update_profile(
    db: impl PgExecutor<'_>,
    person_id: i64,
    display_name: &str,
    bio: &str,
    avatar_url: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query("update person set display_name = $2, bio = $3, avatar_url = $4 where id = $1")
        .bind(person_id)
        .bind(display_name)
        .bind(bio)
        .bind(avatar_url)
        .execute(db)
        .await
        .map(drop)
}

/// The sum of the scores of someone's stories and comments.
/// People whose name or display name contains `query`: (handle's name, host, display name),
/// local people first. Banned and deleted accounts are not listed.
pub async fn search(
    db: impl PgExecutor<'_>,
    query: &str,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<(String, Option<String>, String)>> {
    // `%` and `_` typed by the reader are matched literally.
    let pattern = format!(
        "%{}%",
        query
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    sqlx::query_as(
        "select name, host, display_name from person
         where deleted_at is null and banned_at is null and not awaiting_approval
           and (name ilike $1 or display_name ilike $1)
         order by local desc, name, host limit $2 offset $3",
    )
    .bind(pattern)
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await
}

/// A person's karma in two parts: the scores of their live stories, and of their live comments.
pub async fn karma_parts(db: impl PgExecutor<'_>, person_id: i64) -> sqlx::Result<(i64, i64)> {
    sqlx::query_as(
        "select coalesce((select sum(score) from story where author_id = $1 and deleted_at is null), 0)::bigint,
                coalesce((select sum(score) from comment where author_id = $1 and deleted_at is null), 0)::bigint",
    )
    .bind(person_id)
    .fetch_one(db)
    .await
}

/// Where a remote person's profile lives on their own server (their `url`, else their id).
pub async fn original_profile(
    db: impl PgExecutor<'_>,
    person_id: i64,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "select coalesce(profile_url, ap_id) from person where id = $1 and not local",
    )
    .bind(person_id)
    .fetch_optional(db)
    .await
}

pub async fn karma(db: impl PgExecutor<'_>, person_id: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "select coalesce((select sum(score) from story where author_id = $1 and deleted_at is null), 0)
              + coalesce((select sum(score) from comment where author_id = $1 and deleted_at is null), 0)",
    )
    .bind(person_id)
    .fetch_one(db)
    .await
    .map(|k: Option<i64>| k.unwrap_or(0))
}

/// Everything a local person wrote here, as one JSON document (their data export): the profile,
/// and their live stories and comments with their ActivityPub ids. Built in SQL, in one query.
pub async fn export(db: impl PgExecutor<'_>, person_id: i64) -> sqlx::Result<serde_json::Value> {
    sqlx::query_scalar::<_, sqlx::types::Json<serde_json::Value>>(
        "select json_build_object(
            'account', (select json_build_object('name', name, 'id', ap_id,
                            'display_name', display_name, 'bio', bio, 'avatar_url', avatar_url,
                            'role', role, 'created_at', created_at)
                        from person where id = $1),
            'stories', coalesce((select json_agg(json_build_object('id', ap_id, 'title', title,
                            'url', url, 'body', body, 'score', score, 'created_at', created_at,
                            'tags', array(select tag from story_tag where story_id = story.id order by tag))
                            order by created_at, id)
                        from story where author_id = $1 and deleted_at is null), '[]'),
            'comments', coalesce((select json_agg(json_build_object('id', c.ap_id,
                            'story', s.ap_id, 'body', c.body, 'score', c.score,
                            'created_at', c.created_at) order by c.created_at, c.id)
                        from comment c join story s on s.id = c.story_id
                        where c.author_id = $1 and c.deleted_at is null), '[]'))",
    )
    .bind(person_id)
    .fetch_one(db)
    .await
    .map(|json| json.0)
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Starts a session and returns the token for the cookie; only its hash is stored.
pub async fn create_session(db: impl PgExecutor<'_>, person_id: i64) -> sqlx::Result<String> {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    sqlx::query("insert into session (token_hash, person_id, expires_at) values ($1, $2, $3)")
        .bind(token_hash(&token))
        .bind(person_id)
        .bind(Utc::now() + Duration::days(SESSION_DAYS))
        .execute(db)
        .await?;
    Ok(token)
}

/// The person a session token belongs to, if the session is live.
pub async fn session_person(db: impl PgExecutor<'_>, token: &str) -> sqlx::Result<Option<Person>> {
    sqlx::query_as(&format!(
        "select {cols} from person p join session s on s.person_id = p.id
         where s.token_hash = $1 and s.expires_at > now() and p.deleted_at is null",
        cols = PERSON_COLUMNS
            .split(", ")
            .map(|c| format!("p.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .bind(token_hash(token))
    .fetch_optional(db)
    .await
}

pub async fn delete_session(db: impl PgExecutor<'_>, token: &str) -> sqlx::Result<()> {
    sqlx::query("delete from session where token_hash = $1")
        .bind(token_hash(token))
        .execute(db)
        .await
        .map(drop)
}

/// Ends every session of a person (after a password change).
pub async fn delete_sessions_of(db: impl PgExecutor<'_>, person_id: i64) -> sqlx::Result<()> {
    sqlx::query("delete from session where person_id = $1")
        .bind(person_id)
        .execute(db)
        .await
        .map(drop)
}

/// What happens to a deleted account's stories and comments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeftContent {
    /// They stay, under "[deleted]".
    Keep,
    /// Their text goes; comments stay as placeholders so that replies keep their place.
    Remove,
}

/// Deletes a local account in the caller's transaction (which also queues the `Delete` of the
/// actor). The row stays, tombstoned: the name stays taken and the keys stay to sign what is still
/// queued; the profile, password, sessions, follows, notifications and open invitations go.
pub async fn delete_account(
    tx: &mut Transaction<'_, Postgres>,
    person_id: i64,
    content: LeftContent,
) -> sqlx::Result<()> {
    if content == LeftContent::Remove {
        sqlx::query(
            "update story set deleted_at = coalesce(deleted_at, now()), body = '', body_html = ''
             where author_id = $1",
        )
        .bind(person_id)
        .execute(&mut **tx)
        .await?;
        let comment_ids: Vec<i64> = sqlx::query_scalar(
            "select id from comment where author_id = $1 and deleted_at is null",
        )
        .bind(person_id)
        .fetch_all(&mut **tx)
        .await?;
        for id in comment_ids {
            super::comments::tombstone(tx, id).await?;
        }
    }
    // The password hash cannot be null for a local person; an empty one matches nothing, and
    // `password_hash` does not hand it out anyway.
    sqlx::query(
        "update person set deleted_at = now(), password_hash = '', display_name = '', bio = '',
                avatar_url = null, feed_token = null, role = 'user'
         where id = $1 and local and deleted_at is null",
    )
    .bind(person_id)
    .execute(&mut **tx)
    .await?;
    for statement in [
        "delete from session where person_id = $1",
        "delete from follow where follower_id = $1 or followee_id = $1",
        "delete from notification where recipient_id = $1",
        "delete from invitation where inviter_id = $1 and used_at is null",
    ] {
        sqlx::query(statement)
            .bind(person_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
