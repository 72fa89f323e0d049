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
    old_vote: "select value, ap_id from story_vote where story_id = $1 and person_id = $2",
    delete_vote: "delete from story_vote where story_id = $1 and person_id = $2",
    upsert_vote: "insert into story_vote (story_id, person_id, value, ap_id) values ($1, $2, $3, $4)
                  on conflict (story_id, person_id) do update
                  set value = excluded.value, ap_id = excluded.ap_id, created_at = now()",
    update_counts: "update story set upvotes = upvotes + $2, downvotes = downvotes + $3 where id = $1 returning score",
};

const COMMENT: Tables = Tables {
    lock_target: "select 1 from comment where id = $1 and deleted_at is null for update",
    old_vote: "select value, ap_id from comment_vote where comment_id = $1 and person_id = $2",
    delete_vote: "delete from comment_vote where comment_id = $1 and person_id = $2",
    upsert_vote: "insert into comment_vote (comment_id, person_id, value, ap_id) values ($1, $2, $3, $4)
                  on conflict (comment_id, person_id) do update
                  set value = excluded.value, ap_id = excluded.ap_id, created_at = now()",
    update_counts: "update comment set upvotes = upvotes + $2, downvotes = downvotes + $3 where id = $1 returning score",
};

/// What a vote changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteChange {
    /// The target's score after the vote.
    pub score: i32,
    /// The voter's previous vote (0 for none) and the id of the activity that carried it.
    pub old_value: i16,
    pub old_ap_id: Option<String>,
}

/// Casts, changes or (with 0) withdraws a vote, and updates the target's counts (and so its stored
/// hot rank or confidence) in the same transaction. `ap_id` is the id of the `Like`/`Dislike`
/// that carries the vote across servers. `None` when the target does not exist or was deleted.
pub async fn cast(
    tx: &mut Transaction<'_, Postgres>,
    person_id: i64,
    target: Target,
    value: i16,
    ap_id: Option<&str>,
) -> sqlx::Result<Option<VoteChange>> {
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
    let (old, old_ap_id): (i16, Option<String>) = sqlx::query_as(tables.old_vote)
        .bind(id)
        .bind(person_id)
        .fetch_optional(&mut **tx)
        .await?
        .unwrap_or((0, None));
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
            .bind(ap_id)
            .execute(&mut **tx)
            .await?;
    }
    let up_delta = i32::from(value == 1) - i32::from(old == 1);
    let down_delta = i32::from(value == -1) - i32::from(old == -1);
    let score = sqlx::query_scalar(tables.update_counts)
        .bind(id)
        .bind(up_delta)
        .bind(down_delta)
        .fetch_one(&mut **tx)
        .await?;
    Ok(Some(VoteChange {
        score,
        old_value: old,
        old_ap_id,
    }))
}

/// The target and value of the vote a `Like`/`Dislike` with this id cast, if it was this person's.
pub async fn by_ap_id(
    db: impl sqlx::PgExecutor<'_>,
    person_id: i64,
    ap_id: &str,
) -> sqlx::Result<Option<(Target, i16)>> {
    let row: Option<(Option<i64>, Option<i64>, i16)> = sqlx::query_as(
        "select story_id, null::bigint, value from story_vote where person_id = $1 and ap_id = $2
         union all
         select null::bigint, comment_id, value from comment_vote where person_id = $1 and ap_id = $2",
    )
    .bind(person_id)
    .bind(ap_id)
    .fetch_optional(db)
    .await?;
    Ok(
        row.and_then(|(story, comment, value)| match (story, comment) {
            (Some(id), _) => Some((Target::Story(id), value)),
            (_, Some(id)) => Some((Target::Comment(id), value)),
            _ => None,
        }),
    )
}

/// A local person's vote by the id of its `Like`/`Dislike`, as peers may fetch it: the voter's
/// actor id, the voted post's id, and the value.
pub async fn local_by_ap_id(
    db: impl sqlx::PgExecutor<'_>,
    ap_id: &str,
) -> sqlx::Result<Option<(String, String, i16)>> {
    sqlx::query_as(
        "select p.ap_id, s.ap_id, v.value from story_vote v
           join person p on p.id = v.person_id join story s on s.id = v.story_id
          where v.ap_id = $1 and p.local
         union all
         select p.ap_id, c.ap_id, v.value from comment_vote v
           join person p on p.id = v.person_id join comment c on c.id = v.comment_id
          where v.ap_id = $1 and p.local",
    )
    .bind(ap_id)
    .fetch_optional(db)
    .await
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

/// Raises a remote post's counts to what its home server publishes (its `likes` and `dislikes`
/// collections), when lien has counted fewer: a post fetched late comes with its score.
pub async fn raise_remote_counts(
    db: impl sqlx::PgExecutor<'_>,
    target: Target,
    up: i32,
    down: i32,
) -> sqlx::Result<()> {
    let sql = match target {
        Target::Story(_) => {
            "update story set upvotes = greatest(upvotes, $2), downvotes = greatest(downvotes, $3)
             where id = $1 and not local"
        }
        Target::Comment(_) => {
            "update comment set upvotes = greatest(upvotes, $2), downvotes = greatest(downvotes, $3)
             where id = $1 and not local"
        }
    };
    let id = match target {
        Target::Story(id) | Target::Comment(id) => id,
    };
    sqlx::query(sql)
        .bind(id)
        .bind(up)
        .bind(down)
        .execute(db)
        .await?;
    Ok(())
}
