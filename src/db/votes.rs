//! Votes on stories and comments: one per (voter, target), +1 or -1; 0 withdraws.

use sqlx::{Postgres, Transaction};

/// What a vote is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Story(i64),
    Comment(i64),
}

/// The SQL that differs between the two targets; table names are constants, never input.
struct Tables {
    lock_target: &'static str,
    old_vote: &'static str,
    delete_vote: &'static str,
    upsert_vote: &'static str,
    update_counts: &'static str,
}

const STORY: Tables = Tables {
    lock_target: "select 1 from story where id = $1 and deleted_at is null for update",
    old_vote: "select value from story_vote where story_id = $1 and person_id = $2",
    delete_vote: "delete from story_vote where story_id = $1 and person_id = $2",
    upsert_vote: "insert into story_vote (story_id, person_id, value) values ($1, $2, $3)
                  on conflict (story_id, person_id) do update set value = excluded.value, created_at = now()",
    update_counts: "update story set upvotes = upvotes + $2, downvotes = downvotes + $3 where id = $1 returning score",
};

const COMMENT: Tables = Tables {
    lock_target: "select 1 from comment where id = $1 and deleted_at is null for update",
    old_vote: "select value from comment_vote where comment_id = $1 and person_id = $2",
    delete_vote: "delete from comment_vote where comment_id = $1 and person_id = $2",
    upsert_vote: "insert into comment_vote (comment_id, person_id, value) values ($1, $2, $3)
                  on conflict (comment_id, person_id) do update set value = excluded.value, created_at = now()",
    update_counts: "update comment set upvotes = upvotes + $2, downvotes = downvotes + $3 where id = $1 returning score",
};

/// Casts, changes or (with 0) withdraws a vote, and updates the target's counts (and so its stored
/// hot rank or confidence) in the same transaction. Returns the new score, or `None` when the
/// target does not exist or was deleted.
pub async fn cast(
    tx: &mut Transaction<'_, Postgres>,
    person_id: i64,
    target: Target,
    value: i16,
) -> sqlx::Result<Option<i32>> {
    debug_assert!((-1..=1).contains(&value));
    let (tables, id) = match target {
        Target::Story(id) => (&STORY, id),
        Target::Comment(id) => (&COMMENT, id),
    };
    // Locking the target serializes votes on it, so concurrent votes never miscount.
    if sqlx::query(tables.lock_target)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .is_none()
    {
        return Ok(None);
    }
    let old: i16 = sqlx::query_scalar(tables.old_vote)
        .bind(id)
        .bind(person_id)
        .fetch_optional(&mut **tx)
        .await?
        .unwrap_or(0);
    if value == 0 {
        sqlx::query(tables.delete_vote)
            .bind(id)
            .bind(person_id)
            .execute(&mut **tx)
            .await?;
    } else {
        sqlx::query(tables.upsert_vote)
            .bind(id)
            .bind(person_id)
            .bind(value)
            .execute(&mut **tx)
            .await?;
    }
    let up_delta = i32::from(value == 1) - i32::from(old == 1);
    let down_delta = i32::from(value == -1) - i32::from(old == -1);
    sqlx::query_scalar(tables.update_counts)
        .bind(id)
        .bind(up_delta)
        .bind(down_delta)
        .fetch_one(&mut **tx)
        .await
        .map(Some)
}

/// The viewer's votes on the given stories, for marking arrows: (story id, value).
pub async fn on_stories(
    db: impl sqlx::PgExecutor<'_>,
    person_id: i64,
    ids: &[i64],
) -> sqlx::Result<Vec<(i64, i16)>> {
    sqlx::query_as(
        "select story_id, value from story_vote where person_id = $1 and story_id = any($2)",
    )
    .bind(person_id)
    .bind(ids)
    .fetch_all(db)
    .await
}

/// The viewer's votes on the given comments: (comment id, value).
pub async fn on_comments(
    db: impl sqlx::PgExecutor<'_>,
    person_id: i64,
    ids: &[i64],
) -> sqlx::Result<Vec<(i64, i16)>> {
    sqlx::query_as(
        "select comment_id, value from comment_vote where person_id = $1 and comment_id = any($2)",
    )
    .bind(person_id)
    .bind(ids)
    .fetch_all(db)
    .await
}
