//! Link previews: the job queue and its results, one `link_preview` row per link story (the
//! fetching is in `crate::preview`).

use sqlx::{PgExecutor, PgPool};

/// How long a worker that claimed a row is trusted to finish it (two fetches of 10 s and a
/// thumbnail). A worker that dies leaves its rows to come due again after this.
const LEASE: &str = "2 minutes";

/// Attempts at most: the first and two retries.
pub const MAX_ATTEMPTS: i32 = 3;

/// How much of a failure's message is kept in `last_error`.
const MAX_ERROR_LENGTH: usize = 500;

/// Queues a preview of `url` for a story, in the caller's transaction. A story whose link is
/// unchanged keeps its preview; a changed link starts over.
pub async fn enqueue(db: impl PgExecutor<'_>, story_id: i64, url: &str) -> sqlx::Result<()> {
    sqlx::query(
        "insert into link_preview (story_id, url) values ($1, $2)
         on conflict (story_id) do update set
             url = excluded.url, state = 'pending', attempts = 0, next_attempt_at = now(),
             last_error = null, title = null, description = null, image = null,
             canonical_url = null, fetched_at = null
         where link_preview.url <> excluded.url",
    )
    .bind(story_id)
    .bind(url)
    .execute(db)
    .await?;
    Ok(())
}

/// Drops a story's preview (its link was removed).
pub async fn forget(db: impl PgExecutor<'_>, story_id: i64) -> sqlx::Result<()> {
    sqlx::query("delete from link_preview where story_id = $1")
        .bind(story_id)
        .execute(db)
        .await?;
    Ok(())
}

/// A claimed job.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Job {
    pub story_id: i64,
    pub url: String,
    /// Including this one.
    pub attempts: i32,
    /// The story was deleted meanwhile: nothing to fetch.
    pub story_gone: bool,
}

/// Claims up to `limit` due jobs, oldest first. Locked with SKIP LOCKED so concurrent claims
/// take different rows, then leased: their due time moves past the lease.
pub async fn claim(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<Job>> {
    sqlx::query_as(&format!(
        "with chosen as (
             select story_id from link_preview
             where state = 'pending' and next_attempt_at <= now()
             order by next_attempt_at
             limit $1
             for update skip locked
         )
         update link_preview p
         set next_attempt_at = now() + interval '{LEASE}', attempts = p.attempts + 1
         from chosen
         where p.story_id = chosen.story_id
         returning p.story_id, p.url, p.attempts,
                   not exists (select 1 from story s where s.id = p.story_id
                                                      and s.deleted_at is null) as story_gone"
    ))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// What a page said about itself, ready to show.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Found {
    pub title: Option<String>,
    pub description: Option<String>,
    /// The thumbnail's file name under the media directory.
    pub image: Option<String>,
    pub canonical_url: Option<String>,
}

/// Records a finished preview, unless the story's link changed while it was fetched; true if it
/// was recorded.
pub async fn record_ready(pool: &PgPool, job: &Job, found: &Found) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "update link_preview
         set state = 'ready', title = $3, description = $4, image = $5, canonical_url = $6,
             fetched_at = now(), last_error = null
         where story_id = $1 and url = $2",
    )
    .bind(job.story_id)
    .bind(&job.url)
    .bind(&found.title)
    .bind(&found.description)
    .bind(&found.image)
    .bind(&found.canonical_url)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a failure: due again after 1 minute, then 5, while `retry` and attempts remain;
/// otherwise the row is done, without a preview.
pub async fn record_failure(
    pool: &PgPool,
    job: &Job,
    error: &str,
    retry: bool,
) -> sqlx::Result<()> {
    let error: String = error.chars().take(MAX_ERROR_LENGTH).collect();
    let retry = retry && job.attempts < MAX_ATTEMPTS;
    sqlx::query(
        "update link_preview
         set state = case when $3 then 'pending' else 'failed' end,
             next_attempt_at = case when $3
                 then now() + interval '1 minute' * power(5.0::float8, attempts - 1)
                 else next_attempt_at end,
             last_error = $4, fetched_at = now()
         where story_id = $1 and url = $2",
    )
    .bind(job.story_id)
    .bind(&job.url)
    .bind(retry)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

/// Hands claimed jobs back at once, without counting the attempt (a worker stopping mid-fetch).
pub async fn release(pool: &PgPool, story_ids: &[i64]) -> sqlx::Result<()> {
    sqlx::query(
        "update link_preview set next_attempt_at = now(), attempts = greatest(attempts - 1, 0)
         where story_id = any($1) and state = 'pending'",
    )
    .bind(story_ids)
    .execute(pool)
    .await?;
    Ok(())
}
