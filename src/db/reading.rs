//! A reader's own lists: stories and comments saved for later, stories hidden from the lists, and
//! tags filtered out of them. Private to the reader; lists are filtered after the shared list
//! cache (see `web::stories`), so readers without filters keep sharing it.

use sqlx::{PgExecutor, PgPool};

use super::{
    comments::Comment,
    stories::{Story, VISIBLE_AUTHOR},
};

/// What a reader can save or hide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kept {
    SavedStory,
    SavedComment,
    HiddenStory,
}

impl Kept {
    /// (table, id column); constants, never input.
    fn table(self) -> (&'static str, &'static str) {
        match self {
            Kept::SavedStory => ("saved_story", "story_id"),
            Kept::SavedComment => ("saved_comment", "comment_id"),
            Kept::HiddenStory => ("hidden_story", "story_id"),
        }
    }
}

/// Saves or hides (`on`), or takes it back. False when there is no such story or comment.
pub async fn set(
    pool: &PgPool,
    person_id: i64,
    kept: Kept,
    id: i64,
    on: bool,
) -> sqlx::Result<bool> {
    let (table, column) = kept.table();
    let target = if column == "story_id" {
        "story"
    } else {
        "comment"
    };
    let sql = if on {
        format!(
            "insert into {table} (person_id, {column})
             select $1, id from {target} where id = $2 on conflict do nothing"
        )
    } else {
        format!("delete from {table} where person_id = $1 and {column} = $2")
    };
    sqlx::query(&sql)
        .bind(person_id)
        .bind(id)
        .execute(pool)
        .await?;
    let exists: Option<i64> = sqlx::query_scalar(&format!("select id from {target} where id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(exists.is_some())
}

/// Which of `ids` the reader saved or hid.
pub async fn among(
    db: impl PgExecutor<'_>,
    person_id: i64,
    kept: Kept,
    ids: &[i64],
) -> sqlx::Result<Vec<i64>> {
    let (table, column) = kept.table();
    sqlx::query_scalar(&format!(
        "select {column} from {table} where person_id = $1 and {column} = any($2)"
    ))
    .bind(person_id)
    .bind(ids)
    .fetch_all(db)
    .await
}

/// The reader's saved (or hidden) stories, last saved first.
pub async fn stories(
    db: impl PgExecutor<'_>,
    person_id: i64,
    kept: Kept,
    limit: i64,
) -> sqlx::Result<Vec<Story>> {
    let (table, _) = kept.table();
    let sql = super::stories::select_sql(&format!(
        "join {table} k on k.story_id = s.id and k.person_id = $1
         where s.removed_at is null and {VISIBLE_AUTHOR}
         order by k.created_at desc limit $2"
    ));
    sqlx::query_as(&sql)
        .bind(person_id)
        .bind(limit)
        .fetch_all(db)
        .await
}

/// The reader's saved comments, last saved first.
pub async fn saved_comments(
    db: impl PgExecutor<'_>,
    person_id: i64,
    limit: i64,
) -> sqlx::Result<Vec<Comment>> {
    let sql = super::comments::select_sql(
        "join saved_comment k on k.comment_id = c.id and k.person_id = $1
         where c.deleted_at is null and c.removed_at is null
         order by k.created_at desc limit $2",
    );
    sqlx::query_as(&sql)
        .bind(person_id)
        .bind(limit)
        .fetch_all(db)
        .await
}

/// The tags a signed-in reader filters out of lists.
pub async fn filtered_tags(db: impl PgExecutor<'_>, person_id: i64) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("select tag from tag_filter where person_id = $1 order by tag")
        .bind(person_id)
        .fetch_all(db)
        .await
}

/// Replaces the reader's filtered tags.
pub async fn set_filtered_tags(pool: &PgPool, person_id: i64, tags: &[String]) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("delete from tag_filter where person_id = $1")
        .bind(person_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("insert into tag_filter (person_id, tag) select $1, unnest($2::text[]) on conflict do nothing")
        .bind(person_id)
        .bind(tags)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}
