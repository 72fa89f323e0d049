//! Comments: threaded at any depth under a story.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool, Postgres, Transaction};

use super::stories::VISIBLE_AUTHOR;

/// A comment with its author and the title of the story it belongs to.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Comment {
    pub id: i64,
    pub ap_id: String,
    pub local: bool,
    pub story_id: i64,
    pub story_title: String,
    pub parent_id: Option<i64>,
    pub author_id: i64,
    pub author_name: String,
    pub author_host: Option<String>,
    pub body: String,
    pub body_html: String,
    pub score: i32,
    pub upvotes: i32,
    pub downvotes: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// Removed by a moderator: shown as a placeholder that keeps its replies.
    pub removed_at: Option<DateTime<Utc>>,
    /// Written by a banned person or on a blocked server: left out of threads like a deleted
    /// comment (a placeholder only where it has replies to keep in place).
    pub author_hidden: bool,
}

impl Comment {
    /// Whether a thread shows it only as a placeholder: deleted, or its author is hidden.
    pub fn is_gone(&self) -> bool {
        self.deleted_at.is_some() || self.author_hidden
    }
}

const COMMENT_SELECT: &str = concat!(
    "
    select c.id, c.ap_id, c.local, c.story_id,
           case when s.deleted_at is null then s.title
                else '[story deleted by its submitter]' end as story_title,
           c.parent_id, c.author_id,
           case when p.deleted_at is null then p.name else '[deleted]' end as author_name,
           case when p.deleted_at is null then p.host end as author_host,
           c.body, c.body_html, c.score, c.upvotes, c.downvotes, c.created_at, c.updated_at,
           c.deleted_at, c.removed_at,
           (p.banned_at is not null or (p.host is not null and ",
    crate::blocked_host_sql!("p.host"),
    ")) as author_hidden
    from comment c join person p on p.id = c.author_id join story s on s.id = c.story_id"
);

/// The comment query with `rest` (joins, filter, order) after its `from`; `c` is the comment.
pub fn select_sql(rest: &str) -> String {
    format!("{COMMENT_SELECT} {rest}")
}

/// Every comment of a story (deleted ones too, as placeholders), best first among siblings:
/// Wilson lower bound, then oldest. One query for the whole tree.
pub async fn for_story(db: impl PgExecutor<'_>, story_id: i64) -> sqlx::Result<Vec<Comment>> {
    sqlx::query_as(&for_story_sql())
        .bind(story_id)
        .fetch_all(db)
        .await
}

/// The SQL `for_story` runs (`$1` is the story), for plan checks (tests/it/indexes.rs).
pub fn for_story_sql() -> String {
    format!("{COMMENT_SELECT} where c.story_id = $1 order by c.confidence desc, c.created_at, c.id")
}

pub async fn get(db: impl PgExecutor<'_>, id: i64) -> sqlx::Result<Option<Comment>> {
    sqlx::query_as(&format!("{COMMENT_SELECT} where c.id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Newest live comments on stories not removed, across the instance (stories not deleted either)
/// or by one author (whose comments stay on their profile when the story's submitter deletes it:
/// its discussion stays too).
pub async fn newest(
    db: impl PgExecutor<'_>,
    author_id: Option<i64>,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<Comment>> {
    sqlx::query_as(&newest_sql())
        .bind(limit)
        .bind(offset)
        .bind(author_id)
        .fetch_all(db)
        .await
}

/// The SQL `newest` runs (`$1` limit, `$2` offset, `$3` the author or null), for plan checks.
pub fn newest_sql() -> String {
    format!(
        "{COMMENT_SELECT}
         where c.deleted_at is null and c.removed_at is null
           and (s.deleted_at is null or $3::bigint is not null)
           and s.removed_at is null and {VISIBLE_AUTHOR} and ($3::bigint is null or c.author_id = $3)
         order by c.created_at desc, c.id desc limit $1 offset $2"
    )
}

/// Live comments on live stories whose text matches a search (`websearch_to_tsquery` syntax),
/// most relevant first or newest first.
pub async fn search(
    db: impl PgExecutor<'_>,
    query: &str,
    newest: bool,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<Comment>> {
    let order = if newest {
        "c.created_at desc, c.id desc"
    } else {
        "ts_rank_cd(to_tsvector('english', c.body), websearch_to_tsquery('english', $1)) desc, c.id desc"
    };
    sqlx::query_as(&format!(
        "{COMMENT_SELECT}
         where to_tsvector('english', c.body) @@ websearch_to_tsquery('english', $1)
           and c.deleted_at is null and c.removed_at is null
           and s.deleted_at is null and s.removed_at is null and {VISIBLE_AUTHOR}
         order by {order} limit $2 offset $3"
    ))
    .bind(query)
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await
}

#[derive(Debug, PartialEq, Eq)]
pub enum Posted {
    Created(i64),
    /// The story does not exist, was deleted, or the parent is not a live comment of it.
    NoSuchThread,
}

/// Adds a comment (a reply when `parent_id` is set) and counts it on the story, in one transaction.
pub async fn create(
    tx: &mut Transaction<'_, Postgres>,
    origin: &str,
    story_id: i64,
    parent_id: Option<i64>,
    author_id: i64,
    body: &str,
    body_html: &str,
) -> sqlx::Result<Posted> {
    let counted = sqlx::query(
        "update story set comment_count = comment_count + 1 where id = $1 and deleted_at is null",
    )
    .bind(story_id)
    .execute(&mut **tx)
    .await?;
    if counted.rows_affected() == 0 {
        return Ok(Posted::NoSuchThread);
    }
    if let Some(parent) = parent_id {
        let parent_ok: Option<i32> = sqlx::query_scalar(
            "select 1 from comment where id = $1 and story_id = $2 and deleted_at is null",
        )
        .bind(parent)
        .bind(story_id)
        .fetch_optional(&mut **tx)
        .await?;
        if parent_ok.is_none() {
            return Ok(Posted::NoSuchThread);
        }
    }
    let id = sqlx::query_scalar(
        "with new as (select nextval(pg_get_serial_sequence('comment', 'id')) as id)
         insert into comment (id, ap_id, local, story_id, parent_id, author_id, body, body_html)
         select new.id, $1 || '/c/' || new.id, true, $2, $3, $4, $5, $6 from new
         returning id",
    )
    .bind(origin)
    .bind(story_id)
    .bind(parent_id)
    .bind(author_id)
    .bind(body)
    .bind(body_html)
    .fetch_one(&mut **tx)
    .await?;
    super::notifications::reply(&mut **tx, id).await?;
    // A comment starts with its author's upvote, as a story does (and as on Reddit and HN).
    super::votes::cast(tx, author_id, super::votes::Target::Comment(id), 1, None).await?;
    Ok(Posted::Created(id))
}

/// Edits a live comment its author owns. Returns whether anything changed.
pub async fn edit(
    db: impl PgExecutor<'_>,
    id: i64,
    author_id: i64,
    body: &str,
    body_html: &str,
) -> sqlx::Result<bool> {
    sqlx::query(
        "update comment set body = $3, body_html = $4, updated_at = now()
         where id = $1 and author_id = $2 and deleted_at is null",
    )
    .bind(id)
    .bind(author_id)
    .bind(body)
    .bind(body_html)
    .execute(db)
    .await
    .map(|done| done.rows_affected() == 1)
}

/// A comment by its ActivityPub id, deleted or not.
pub async fn by_ap_id(db: impl PgExecutor<'_>, ap_id: &str) -> sqlx::Result<Option<Comment>> {
    sqlx::query_as(&format!("{COMMENT_SELECT} where c.ap_id = $1"))
        .bind(ap_id)
        .fetch_optional(db)
        .await
}

/// The ids of a story's or a comment's direct replies, oldest first (the `replies` collection).
pub async fn direct_reply_ids(
    db: impl PgExecutor<'_>,
    story_id: i64,
    parent_id: Option<i64>,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "select ap_id from comment
         where story_id = $1 and parent_id is not distinct from $2 and deleted_at is null
         order by created_at, id",
    )
    .bind(story_id)
    .bind(parent_id)
    .fetch_all(db)
    .await
}

/// A comment that arrived by federation.
pub struct RemoteComment<'a> {
    pub ap_id: &'a str,
    pub story_id: i64,
    pub parent_id: Option<i64>,
    pub author_id: i64,
    pub body: &'a str,
    pub body_html: &'a str,
    pub published: DateTime<Utc>,
    pub remote_url: Option<&'a str>,
}

/// Stores a remote comment (counting it on its story), or updates its text when the id is known.
pub async fn upsert_remote(pool: &PgPool, comment: &RemoteComment<'_>) -> sqlx::Result<i64> {
    let mut tx = pool.begin().await?;
    let (id, inserted): (i64, bool) = sqlx::query_as(
        "insert into comment (ap_id, local, story_id, parent_id, author_id, body, body_html, created_at, remote_url)
         values ($1, false, $2, $3, $4, $5, $6, $7, $8)
         on conflict (ap_id) do update set body = excluded.body, body_html = excluded.body_html, updated_at = now()
         where not comment.local and comment.author_id = excluded.author_id and comment.deleted_at is null
         returning id, (xmax = 0) as inserted",
    )
    .bind(comment.ap_id)
    .bind(comment.story_id)
    .bind(comment.parent_id)
    .bind(comment.author_id)
    .bind(comment.body)
    .bind(comment.body_html)
    .bind(comment.published)
    .bind(comment.remote_url)
    .fetch_one(&mut *tx)
    .await?;
    if inserted {
        sqlx::query("update story set comment_count = comment_count + 1 where id = $1")
            .bind(comment.story_id)
            .execute(&mut *tx)
            .await?;
        super::notifications::reply(&mut *tx, id).await?;
    }
    tx.commit().await?;
    Ok(id)
}

/// A local person's live comments (neither deleted nor removed), in any order.
pub async fn live_local_by(db: impl PgExecutor<'_>, author_id: i64) -> sqlx::Result<Vec<Comment>> {
    sqlx::query_as(&format!(
        "{COMMENT_SELECT} where c.author_id = $1 and c.local
         and c.deleted_at is null and c.removed_at is null"
    ))
    .bind(author_id)
    .fetch_all(db)
    .await
}

/// Comments by id, in any order (notifications, for instance).
pub async fn by_ids(db: impl PgExecutor<'_>, ids: &[i64]) -> sqlx::Result<Vec<Comment>> {
    sqlx::query_as(&format!("{COMMENT_SELECT} where c.id = any($1)"))
        .bind(ids)
        .fetch_all(db)
        .await
}

/// Deletes a comment (its author's wish, local or by `Delete`): the text goes, the row stays as a
/// placeholder so that its replies keep their place in the thread. True if it was live.
pub async fn tombstone(tx: &mut Transaction<'_, Postgres>, id: i64) -> sqlx::Result<bool> {
    let story: Option<i64> = sqlx::query_scalar(
        "update comment set deleted_at = now(), body = '', body_html = ''
         where id = $1 and deleted_at is null returning story_id",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(story) = story {
        sqlx::query("update story set comment_count = comment_count - 1 where id = $1")
            .bind(story)
            .execute(&mut **tx)
            .await?;
    }
    Ok(story.is_some())
}

/// Brings a deleted comment back, counted on its story again (its author's `Undo` of the
/// `Delete`); its text comes back with the fetched object. True if it was deleted.
pub async fn untombstone(tx: &mut Transaction<'_, Postgres>, id: i64) -> sqlx::Result<bool> {
    let story: Option<i64> = sqlx::query_scalar(
        "update comment set deleted_at = null where id = $1 and deleted_at is not null
         returning story_id",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(story) = story {
        sqlx::query("update story set comment_count = comment_count + 1 where id = $1")
            .bind(story)
            .execute(&mut **tx)
            .await?;
    }
    Ok(story.is_some())
}
