//! Tags as federated groups: each tag group's keys (`tag_group`) and its remote followers
//! (`tag_follower`).

use sqlx::{PgExecutor, Postgres, Transaction};

/// A tag group's key pair.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TagGroup {
    pub tag: String,
    pub public_key_pem: String,
    pub private_key_pem: String,
}

/// The tag group's row, if its keys were made already.
pub async fn get(db: impl PgExecutor<'_>, tag: &str) -> sqlx::Result<Option<TagGroup>> {
    sqlx::query_as("select tag, public_key_pem, private_key_pem from tag_group where tag = $1")
        .bind(tag)
        .fetch_optional(db)
        .await
}

/// Whether a tag is in use: some story carries it, or its group exists already. Only tags in
/// use are groups, so that looking up made-up names makes no keys.
pub async fn tag_in_use(db: impl PgExecutor<'_>, tag: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from story_tag where tag = $1)
             or exists (select 1 from tag_group where tag = $1)",
    )
    .bind(tag)
    .fetch_one(db)
    .await
}

/// Stores a tag group's keys; when two requests race, the first insert wins and both read it.
pub async fn insert(
    db: impl PgExecutor<'_> + Copy,
    tag: &str,
    public_key_pem: &str,
    private_key_pem: &str,
) -> sqlx::Result<TagGroup> {
    sqlx::query(
        "insert into tag_group (tag, public_key_pem, private_key_pem) values ($1, $2, $3)
         on conflict (tag) do nothing",
    )
    .bind(tag)
    .bind(public_key_pem)
    .bind(private_key_pem)
    .execute(db)
    .await?;
    sqlx::query_as("select tag, public_key_pem, private_key_pem from tag_group where tag = $1")
        .bind(tag)
        .fetch_one(db)
        .await
}

/// How many tag groups this instance has (NodeInfo).
pub async fn count(db: impl PgExecutor<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar("select count(*) from tag_group")
        .fetch_one(db)
        .await
}

/// Records (or refreshes) a remote follower of a tag group.
pub async fn add_follower(
    tx: &mut Transaction<'_, Postgres>,
    tag: &str,
    follower_id: i64,
    follow_ap_id: &str,
    groups_aware: bool,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into tag_follower (tag, follower_id, ap_id, groups_aware) values ($1, $2, $3, $4)
         on conflict (tag, follower_id)
         do update set ap_id = excluded.ap_id, groups_aware = excluded.groups_aware",
    )
    .bind(tag)
    .bind(follower_id)
    .bind(follow_ap_id)
    .bind(groups_aware)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Removes a follower by its Follow's id, or (for peers that undo with a fresh id) by the pair.
/// True when a follower was removed.
pub async fn remove_follower(
    db: impl PgExecutor<'_>,
    follower_id: i64,
    follow_ap_id: &str,
    tag: Option<&str>,
) -> sqlx::Result<bool> {
    sqlx::query("delete from tag_follower where follower_id = $1 and (ap_id = $2 or tag = $3)")
        .bind(follower_id)
        .bind(follow_ap_id)
        .bind(tag)
        .execute(db)
        .await
        .map(|done| done.rows_affected() > 0)
}

/// How many remote actors follow a tag group.
pub async fn follower_count(db: impl PgExecutor<'_>, tag: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("select count(*) from tag_follower where tag = $1")
        .bind(tag)
        .fetch_one(db)
        .await
}

/// The inboxes of the followers of any of `tags` (shared inboxes preferred, each once), split
/// into (groups-aware, others). Banned followers get nothing; blocked servers are dropped when
/// the deliveries are queued.
pub async fn follower_inboxes(
    db: impl PgExecutor<'_>,
    tags: &[String],
) -> sqlx::Result<Vec<(String, String, bool)>> {
    sqlx::query_as(
        "select distinct f.tag, coalesce(p.shared_inbox_url, p.inbox_url), f.groups_aware
         from tag_follower f join person p on p.id = f.follower_id
         where f.tag = any($1) and not p.local and p.banned_at is null and p.deleted_at is null
           and coalesce(p.shared_inbox_url, p.inbox_url) is not null",
    )
    .bind(tags)
    .fetch_all(db)
    .await
}

/// The ids of this instance's moderators and administrators, who moderate every tag group.
pub async fn moderator_ids(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "select ap_id from person where local and role <> 'user' and deleted_at is null
         and banned_at is null order by id",
    )
    .fetch_all(db)
    .await
}

/// Marks a remote story as posted to this instance's tag groups.
pub async fn mark_posted_to_group(db: impl PgExecutor<'_>, story_id: i64) -> sqlx::Result<()> {
    sqlx::query("update story set posted_to_group = true where id = $1")
        .bind(story_id)
        .execute(db)
        .await?;
    Ok(())
}

/// The tags whose groups a story's discussion belongs to (alphabetical, as `Story::tags`): all
/// its tags when it is local or was posted to a group here, else none.
pub async fn story_group_tags(db: impl PgExecutor<'_>, story_id: i64) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "select t.tag from story s join story_tag t on t.story_id = s.id
         where s.id = $1 and (s.local or s.posted_to_group) order by t.tag",
    )
    .bind(story_id)
    .fetch_all(db)
    .await
}

/// The ids of a story's live comments, oldest first: its discussion's context collection.
pub async fn discussion_comment_ids(
    db: impl PgExecutor<'_>,
    story_id: i64,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "select ap_id from comment where story_id = $1 and deleted_at is null
         and removed_at is null order by created_at, id",
    )
    .bind(story_id)
    .fetch_all(db)
    .await
}
