//! Notifications: who is told about which comment, and whether they have seen it.

use chrono::{DateTime, Utc};
use rand::RngCore;
use sqlx::{PgExecutor, PgPool};

/// One notification with the comment it is about.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Notification {
    pub id: i64,
    pub kind: String,
    pub comment_id: i64,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

/// Tells the author of what a new comment answers (its parent comment, or its story) — when that
/// author is local and is not the one replying. Runs in the comment's transaction.
pub async fn reply(db: impl PgExecutor<'_>, comment_id: i64) -> sqlx::Result<()> {
    sqlx::query(
        "insert into notification (recipient_id, kind, comment_id)
         select r.id, 'reply', c.id
         from comment c
         join story s on s.id = c.story_id
         left join comment pc on pc.id = c.parent_id
         join person r on r.id = coalesce(pc.author_id, s.author_id)
         where c.id = $1 and r.local and r.id <> c.author_id
         on conflict do nothing",
    )
    .bind(comment_id)
    .execute(db)
    .await
    .map(drop)
}

/// Tells local people a comment mentions (other than its author, and other than the person it
/// replies to, who has a reply notification already).
/// `mentioned` are the ActivityPub ids the comment's tags name; only local people's count.
pub async fn mentions(
    db: impl PgExecutor<'_>,
    comment_id: i64,
    mentioned: &[String],
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into notification (recipient_id, kind, comment_id)
         select p.id, 'mention', c.id
         from comment c, person p
         where c.id = $1 and p.ap_id = any($2) and p.local and p.id <> c.author_id
           and not exists (select 1 from notification n
                           where n.recipient_id = p.id and n.comment_id = c.id and n.kind = 'reply')
         on conflict do nothing",
    )
    .bind(comment_id)
    .bind(mentioned)
    .execute(db)
    .await
    .map(drop)
}

/// A person's newest notifications, about live comments.
pub async fn newest(
    db: impl PgExecutor<'_>,
    person_id: i64,
    limit: i64,
) -> sqlx::Result<Vec<Notification>> {
    sqlx::query_as(
        "select n.id, n.kind, n.comment_id, n.created_at, n.read_at
         from notification n join comment c on c.id = n.comment_id
         where n.recipient_id = $1 and c.deleted_at is null
         order by n.id desc limit $2",
    )
    .bind(person_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

pub async fn unread_count(db: impl PgExecutor<'_>, person_id: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "select (select count(*) from notification n join comment c on c.id = n.comment_id
                 where n.recipient_id = $1 and n.read_at is null and c.deleted_at is null)
              + (select count(*) from remote_mention m join person p on p.id = m.author_id
                 where m.recipient_id = $1 and m.read_at is null
                   and p.deleted_at is null and p.banned_at is null)",
    )
    .bind(person_id)
    .fetch_one(db)
    .await
}

/// Marks everything up to and including notification `up_to` read (what the person has seen).
pub async fn mark_read(db: impl PgExecutor<'_>, person_id: i64, up_to: i64) -> sqlx::Result<()> {
    sqlx::query("update notification set read_at = now() where recipient_id = $1 and id <= $2 and read_at is null")
        .bind(person_id)
        .bind(up_to)
        .execute(db)
        .await
        .map(drop)
}

/// The secret of a person's private feed, made on first use. (Read first: an update, even of no
/// row, would count as a change for the page caches.)
pub async fn feed_token(pool: &PgPool, person_id: i64) -> sqlx::Result<String> {
    let existing: Option<String> =
        sqlx::query_scalar("select feed_token from person where id = $1 and local")
            .bind(person_id)
            .fetch_optional(pool)
            .await?
            .flatten();
    if let Some(token) = existing {
        return Ok(token);
    }
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    sqlx::query_scalar(
        "update person set feed_token = coalesce(feed_token, $2) where id = $1 and local returning feed_token",
    )
    .bind(person_id)
    .bind(hex::encode(bytes))
    .fetch_one(pool)
    .await
}

/// Whose private feed a token opens.
pub async fn feed_owner(db: impl PgExecutor<'_>, token: &str) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar("select id from person where feed_token = $1 and local")
        .bind(token)
        .fetch_optional(db)
        .await
}

/// A public post from someone nobody here follows that mentions local people: what their
/// notifications show of it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RemoteMention {
    pub id: i64,
    pub ap_id: String,
    pub url: String,
    pub content_html: String,
    pub author_name: String,
    pub author_host: Option<String>,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

/// Keeps a remote post for each live local person among `mentioned` (ActivityPub ids), once per
/// person and post (an edit updates the text). `content_html` must be sanitized. Returns how many
/// people were told.
pub async fn remote_mention(
    db: impl PgExecutor<'_>,
    ap_id: &str,
    author_id: i64,
    url: &str,
    content_html: &str,
    mentioned: &[String],
) -> sqlx::Result<u64> {
    sqlx::query(
        "insert into remote_mention (recipient_id, author_id, ap_id, url, content_html)
         select p.id, $2, $1, $3, $4 from person p
         where p.ap_id = any($5) and p.local and p.deleted_at is null and p.id <> $2
         on conflict (recipient_id, ap_id) do update set content_html = excluded.content_html",
    )
    .bind(ap_id)
    .bind(author_id)
    .bind(url)
    .bind(content_html)
    .bind(mentioned)
    .execute(db)
    .await
    .map(|done| done.rows_affected())
}

/// A person's newest mentions from people nobody here follows, from authors still welcome here.
pub async fn newest_remote_mentions(
    db: impl PgExecutor<'_>,
    person_id: i64,
    limit: i64,
) -> sqlx::Result<Vec<RemoteMention>> {
    sqlx::query_as(
        "select m.id, m.ap_id, m.url, m.content_html, p.name as author_name,
                p.host as author_host, m.created_at, m.read_at
         from remote_mention m join person p on p.id = m.author_id
         where m.recipient_id = $1 and p.deleted_at is null and p.banned_at is null
         order by m.id desc limit $2",
    )
    .bind(person_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Marks a person's mentions from other servers read, up to and including `up_to`.
pub async fn mark_remote_mentions_read(
    db: impl PgExecutor<'_>,
    person_id: i64,
    up_to: i64,
) -> sqlx::Result<()> {
    sqlx::query("update remote_mention set read_at = now() where recipient_id = $1 and id <= $2 and read_at is null")
        .bind(person_id)
        .bind(up_to)
        .execute(db)
        .await
        .map(drop)
}
