//! Remote communities (`Group` actors of Lemmy, PieFed, Mbin or another lien): the instance's one
//! follow of each, who here subscribed, and which stories belong to one.

use sqlx::{PgExecutor, Postgres, Transaction};

use super::actors::{ActorRow, ACTOR_COLUMNS};

/// A remote community by `name@host` (the part after `!`).
pub async fn by_handle(
    db: impl PgExecutor<'_>,
    name: &str,
    host: &str,
) -> sqlx::Result<Option<ActorRow>> {
    sqlx::query_as(&format!(
        "select {ACTOR_COLUMNS} from person
         where not local and kind = 'Group' and lower(name) = lower($1) and host = lower($2)"
    ))
    .bind(name)
    .bind(host)
    .fetch_optional(db)
    .await
}

/// The instance's follow of a community: (Follow id, accepted).
pub async fn follow_of(
    db: impl PgExecutor<'_>,
    community_id: i64,
) -> sqlx::Result<Option<(String, bool)>> {
    sqlx::query_as("select ap_id, accepted from community_follow where community_id = $1")
        .bind(community_id)
        .fetch_optional(db)
        .await
}

/// Records a subscriber, and the instance's follow (sent by this subscriber) when there is none
/// yet. Returns the Follow id to send when this subscription made the follow.
pub async fn subscribe(
    tx: &mut Transaction<'_, Postgres>,
    person_id: i64,
    community_id: i64,
    new_follow_id: &str,
) -> sqlx::Result<Option<String>> {
    sqlx::query(
        "insert into community_subscriber (person_id, community_id) values ($1, $2)
         on conflict do nothing",
    )
    .bind(person_id)
    .bind(community_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query_scalar(
        "insert into community_follow (community_id, ap_id, follower_id) values ($1, $2, $3)
         on conflict (community_id) do nothing returning ap_id",
    )
    .bind(community_id)
    .bind(new_follow_id)
    .bind(person_id)
    .fetch_optional(&mut **tx)
    .await
}

/// Drops a subscriber. When they were the one whose Follow carries the instance's follow, that
/// follow goes and its id is returned (to undo), with another subscriber to follow again, if any.
pub async fn unsubscribe(
    tx: &mut Transaction<'_, Postgres>,
    person_id: i64,
    community_id: i64,
) -> sqlx::Result<Option<(String, Option<i64>)>> {
    sqlx::query("delete from community_subscriber where person_id = $1 and community_id = $2")
        .bind(person_id)
        .bind(community_id)
        .execute(&mut **tx)
        .await?;
    let undone: Option<String> = sqlx::query_scalar(
        "delete from community_follow where community_id = $1 and follower_id = $2 returning ap_id",
    )
    .bind(community_id)
    .bind(person_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(undone) = undone else {
        return Ok(None);
    };
    let next: Option<i64> = sqlx::query_scalar(
        "select person_id from community_subscriber where community_id = $1
         order by created_at limit 1",
    )
    .bind(community_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(Some((undone, next)))
}

pub async fn is_subscribed(
    db: impl PgExecutor<'_>,
    person_id: i64,
    community_id: i64,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists(select 1 from community_subscriber where person_id = $1 and community_id = $2)",
    )
    .bind(person_id)
    .bind(community_id)
    .fetch_one(db)
    .await
}

pub async fn subscriber_count(db: impl PgExecutor<'_>, community_id: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar("select count(*) from community_subscriber where community_id = $1")
        .bind(community_id)
        .fetch_one(db)
        .await
}

/// The community's Accept of the instance's Follow. False when no such follow was pending.
pub async fn accepted(
    db: impl PgExecutor<'_>,
    community_id: i64,
    follow_id: &str,
) -> sqlx::Result<bool> {
    sqlx::query(
        "update community_follow set accepted = true where community_id = $1 and ap_id = $2",
    )
    .bind(community_id)
    .bind(follow_id)
    .execute(db)
    .await
    .map(|done| done.rows_affected() == 1)
}

/// Whether this instance follows the community (asked for, accepted or not yet): only then are
/// its announcements taken.
pub async fn is_followed(db: impl PgExecutor<'_>, community_id: i64) -> sqlx::Result<bool> {
    sqlx::query_scalar("select exists(select 1 from community_follow where community_id = $1)")
        .bind(community_id)
        .fetch_one(db)
        .await
}

/// Files a remote story under its community; `drop_echo` removes the tag of the community's own
/// name (Lemmy repeats it as a hashtag of each post: the community already marks the story).
pub async fn file_story(
    db: impl sqlx::Acquire<'_, Database = Postgres>,
    story_id: i64,
    community: &ActorRow,
    drop_echo: bool,
) -> sqlx::Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query("update story set community_id = $2 where id = $1")
        .bind(story_id)
        .bind(community.id)
        .execute(&mut *tx)
        .await?;
    if drop_echo {
        sqlx::query("delete from story_tag where story_id = $1 and tag = lower($2)")
            .bind(story_id)
            .bind(&community.name)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// The community a story belongs to, if any.
pub async fn of_story(db: impl PgExecutor<'_>, story_id: i64) -> sqlx::Result<Option<ActorRow>> {
    sqlx::query_as(&format!(
        "select {ACTOR_COLUMNS} from person where id = (select community_id from story where id = $1)"
    ))
    .bind(story_id)
    .fetch_optional(db)
    .await
}
