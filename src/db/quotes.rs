//! Quote authorizations (FEP-044f): which remote posts may quote which local stories and comments,
//! and how many quotes each story has.

use sqlx::{PgExecutor, PgPool};

/// One authorization, with the ids its document names.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct QuoteAuthorization {
    pub id: i64,
    /// The quoted post's id and its author's.
    pub target_ap_id: String,
    pub author_ap_id: String,
    /// The quoting post's id.
    pub quote_ap_id: String,
    /// Revoked, or the quoted post is gone: the document answers 410.
    pub gone: bool,
}

/// What a quote request is for: a local story or comment.
pub enum Quoted {
    Story(i64),
    Comment(i64),
}

/// Authorizes `quote_ap_id` by `quoter_id` to quote a post, once (a repeated request gets the same
/// authorization), counting a story's new quote. Returns the authorization's id.
pub async fn authorize(
    pool: &PgPool,
    quoted: &Quoted,
    quoter_id: i64,
    request_ap_id: &str,
    quote_ap_id: &str,
) -> sqlx::Result<i64> {
    let (story_id, comment_id) = match quoted {
        Quoted::Story(id) => (Some(*id), None),
        Quoted::Comment(id) => (None, Some(*id)),
    };
    let mut tx = pool.begin().await?;
    let inserted: Option<i64> = sqlx::query_scalar(
        "insert into quote_authorization (story_id, comment_id, quoter_id, request_ap_id, quote_ap_id)
         values ($1, $2, $3, $4, $5)
         on conflict (quote_ap_id) do nothing
         returning id",
    )
    .bind(story_id)
    .bind(comment_id)
    .bind(quoter_id)
    .bind(request_ap_id)
    .bind(quote_ap_id)
    .fetch_optional(&mut *tx)
    .await?;
    let id = match inserted {
        Some(id) => {
            if let Some(story_id) = story_id {
                sqlx::query("update story set quote_count = quote_count + 1 where id = $1")
                    .bind(story_id)
                    .execute(&mut *tx)
                    .await?;
            }
            id
        }
        // Asked before: the same authorization, for the same quoter and post only.
        None => sqlx::query_scalar(
            "select id from quote_authorization
                 where quote_ap_id = $1 and quoter_id = $2 and revoked_at is null
                   and story_id is not distinct from $3 and comment_id is not distinct from $4",
        )
        .bind(quote_ap_id)
        .bind(quoter_id)
        .bind(story_id)
        .bind(comment_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?,
    };
    tx.commit().await?;
    Ok(id)
}

/// An authorization as its document shows it.
pub async fn get(db: impl PgExecutor<'_>, id: i64) -> sqlx::Result<Option<QuoteAuthorization>> {
    sqlx::query_as(
        "select q.id, coalesce(s.ap_id, c.ap_id) as target_ap_id, p.ap_id as author_ap_id,
                q.quote_ap_id,
                (q.revoked_at is not null
                 or coalesce(s.deleted_at, s.removed_at, c.deleted_at, c.removed_at) is not null
                ) as gone
         from quote_authorization q
         left join story s on s.id = q.story_id
         left join comment c on c.id = q.comment_id
         join person p on p.id = coalesce(s.author_id, c.author_id)
         where q.id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The quoting post was deleted by its author (`quoter_id`): its authorization goes, and so does
/// its count on the story. True if there was one.
pub async fn quote_deleted(pool: &PgPool, quote_ap_id: &str, quoter_id: i64) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let revoked: Option<Option<i64>> = sqlx::query_scalar(
        "update quote_authorization set revoked_at = now()
         where quote_ap_id = $1 and quoter_id = $2 and revoked_at is null
         returning story_id",
    )
    .bind(quote_ap_id)
    .bind(quoter_id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(Some(story_id)) = revoked {
        sqlx::query("update story set quote_count = quote_count - 1 where id = $1")
            .bind(story_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(revoked.is_some())
}

/// The live authorizations of a post, with their quoters: what a deletion of the post revokes.
pub async fn live_for(db: impl PgExecutor<'_>, quoted: &Quoted) -> sqlx::Result<Vec<(i64, i64)>> {
    let (story_id, comment_id) = match quoted {
        Quoted::Story(id) => (Some(*id), None),
        Quoted::Comment(id) => (None, Some(*id)),
    };
    sqlx::query_as(
        "select id, quoter_id from quote_authorization
         where revoked_at is null
           and story_id is not distinct from $1 and comment_id is not distinct from $2",
    )
    .bind(story_id)
    .bind(comment_id)
    .fetch_all(db)
    .await
}
