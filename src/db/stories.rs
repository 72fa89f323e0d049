//! Stories: links and text posts, their tags, and every list the front pages show.

use chrono::{DateTime, Utc};
use sqlx::{Acquire, PgExecutor, PgPool, Postgres, Transaction};

use super::{
    previews,
    votes::{self, Target},
};

/// A URL-friendly form of a title for `/s/{id}/{slug}`.
pub fn slug(title: &str) -> String {
    let mut slug = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.len() >= 60 {
            break;
        }
    }
    slug.trim_end_matches('-').to_owned()
}

/// A story with what every list shows of it: author, tags, counts.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Story {
    pub id: i64,
    pub ap_id: String,
    pub local: bool,
    pub author_id: i64,
    pub author_name: String,
    pub author_host: Option<String>,
    pub title: String,
    pub url: Option<String>,
    pub domain: Option<String>,
    pub body: String,
    pub body_html: String,
    pub score: i32,
    pub upvotes: i32,
    pub downvotes: i32,
    pub comment_count: i32,
    pub boost_count: i32,
    /// Remote posts quoting it (FEP-044f quote authorizations it granted).
    pub quote_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// Removed by a moderator, and why (the story then leaves every list and feed).
    pub removed_at: Option<DateTime<Utc>>,
    pub removed_reason: Option<String>,
    /// Locked by a moderator: no new comments.
    pub locked_at: Option<DateTime<Utc>>,
    pub tags: Vec<String>,
    /// The remote community it was posted to, as `name@host` (remote communities are not tags).
    pub community: Option<String>,
    /// What the link's page says about itself, once its preview is ready.
    #[sqlx(flatten)]
    pub preview: Preview,
}

/// A link's preview as lists and pages show it (both empty until it is fetched, and for good when
/// fetching failed).
#[derive(Clone, Debug, Default, sqlx::FromRow)]
pub struct Preview {
    #[sqlx(rename = "preview_description")]
    pub description: Option<String>,
    /// The thumbnail's file name, served at `/media/{image}`.
    #[sqlx(rename = "preview_image")]
    pub image: Option<String>,
}

const STORY_SELECT: &str = "
    select s.id, s.ap_id, s.local, s.author_id,
           case when p.deleted_at is null then p.name else '[deleted]' end as author_name,
           case when p.deleted_at is null then p.host end as author_host,
           s.title, s.url, s.domain, s.body, s.body_html, s.score, s.upvotes, s.downvotes,
           s.comment_count, s.boost_count, s.quote_count, s.created_at, s.updated_at, s.deleted_at,
           s.removed_at, s.removed_reason, s.locked_at,
           array(select t.tag from story_tag t where t.story_id = s.id order by t.tag) as tags,
           (select c.name || '@' || c.host from person c where c.id = s.community_id) as community,
           lp.description as preview_description, lp.image as preview_image
    from story s join person p on p.id = s.author_id
    left join link_preview lp on lp.story_id = s.id and lp.state = 'ready'";

/// The story query with `rest` (joins, filter, order) after its `from`; `s` is the story, `p` its author.
pub fn select_sql(rest: &str) -> String {
    format!("{STORY_SELECT} {rest}")
}

/// Lists hide what banned people and blocked servers posted (`p` is the author).
pub const VISIBLE_AUTHOR: &str = concat!(
    "p.banned_at is null and (p.host is null or not ",
    crate::blocked_host_sql!("p.host"),
    ")"
);

/// Which stories a list shows, in which order.
#[derive(Clone, Debug)]
pub enum Listing {
    /// By stored hot rank (SPEC section 4).
    Hot,
    /// Newest first.
    New,
    /// Highest score created since the given time; ties by newest.
    Top { since: DateTime<Utc> },
    /// One tag's stories, hottest first.
    Tag(String),
    /// Stories linking to one site, newest first.
    Domain(String),
    /// One person's stories, newest first.
    Author(i64),
    /// Full-text search, most relevant first.
    Search(String),
    /// One remote community's posts, newest first.
    Community(i64),
    /// The same search, newest first.
    SearchNew(String),
}

impl Listing {
    /// A search: ranked by relevance, or newest first; either way paged by offset only.
    pub fn is_search(&self) -> bool {
        matches!(self, Listing::Search(_) | Listing::SearchNew(_))
    }
}

/// One page of a list. Asks for one row more than `limit` so the caller knows if a next page exists.
pub async fn list(
    db: impl PgExecutor<'_>,
    listing: &Listing,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<Story>> {
    let sql = list_sql(listing);
    bind_argument(sqlx::query_as(&sql).bind(limit).bind(offset), listing)
        .fetch_all(db)
        .await
}

/// The page of a list that follows the story `after` (keyset pagination): an index seek, where a
/// deep `offset` would read and skip every story before it. Search, ranked by relevance, has no
/// such key and is paged by offset only.
pub async fn list_after(
    db: impl PgExecutor<'_>,
    listing: &Listing,
    limit: i64,
    after: i64,
) -> sqlx::Result<Vec<Story>> {
    let Some(sql) = list_after_sql(listing) else {
        return list(db, listing, limit, 0).await;
    };
    bind_argument(sqlx::query_as(&sql).bind(limit).bind(after), listing)
        .fetch_all(db)
        .await
}

type StoryQuery<'q> = sqlx::query::QueryAs<'q, sqlx::Postgres, Story, sqlx::postgres::PgArguments>;

/// Binds the listing's own argument, `$3`.
fn bind_argument<'q>(query: StoryQuery<'q>, listing: &Listing) -> StoryQuery<'q> {
    match listing {
        Listing::Hot | Listing::New => query,
        Listing::Top { since } => query.bind(*since),
        Listing::Tag(text)
        | Listing::Domain(text)
        | Listing::Search(text)
        | Listing::SearchNew(text) => query.bind(text.clone()),
        Listing::Author(id) | Listing::Community(id) => query.bind(*id),
    }
}

/// A listing's filter and its order (every sort column descending, the id last, so that the
/// order is total and a row comparison continues it).
fn filter_and_order(listing: &Listing) -> (&'static str, &'static [&'static str]) {
    match listing {
        Listing::Hot => ("true", &["s.hot_rank", "s.id"]),
        Listing::New => ("true", &["s.created_at", "s.id"]),
        Listing::Top { .. } => ("s.created_at >= $3", &["s.score", "s.created_at", "s.id"]),
        Listing::Tag(_) => (
            "s.id in (select story_id from story_tag where tag = $3)",
            &["s.hot_rank", "s.id"],
        ),
        Listing::Domain(_) => ("s.domain = $3", &["s.created_at", "s.id"]),
        Listing::Author(_) => ("s.author_id = $3", &["s.created_at", "s.id"]),
        Listing::Community(_) => ("s.community_id = $3", &["s.created_at", "s.id"]),
        Listing::Search(_) => (
            SEARCH_FILTER,
            &[
                "ts_rank_cd(s.search, websearch_to_tsquery('english', $3))",
                "s.hot_rank",
            ],
        ),
        Listing::SearchNew(_) => (SEARCH_FILTER, &["s.created_at", "s.id"]),
    }
}

/// The stories a search finds. A union rather than an OR, so that each half uses its own index
/// (the GIN index on `search`, and story_tag's tag index) instead of reading every story.
const SEARCH_FILTER: &str =
    "s.id in (select id from story where search @@ websearch_to_tsquery('english', $3)
                      union
                      select story_id from story_tag where tag = lower($3))";

fn descending(columns: &[&str]) -> String {
    columns
        .iter()
        .map(|c| format!("{c} desc"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The SQL `list` runs: `$1` is the limit, `$2` the offset, `$3` the listing's argument. Public
/// so that a test can check the plan of exactly this statement (tests/it/indexes.rs).
pub fn list_sql(listing: &Listing) -> String {
    let (filter, order) = filter_and_order(listing);
    format!(
        "{STORY_SELECT} where s.deleted_at is null and s.removed_at is null and {VISIBLE_AUTHOR}
         and {filter} order by {} limit $1 offset $2",
        descending(order)
    )
}

/// The SQL `list_after` runs: `$1` is the limit, `$2` the id of the last story already shown,
/// `$3` the listing's argument; None for search. The row comparison starts just below that
/// story's sort key (as it is now: a story whose rank moved meanwhile moves its followers too,
/// as on Reddit's `after=`).
pub fn list_after_sql(listing: &Listing) -> Option<String> {
    if listing.is_search() {
        return None;
    }
    let (filter, order) = filter_and_order(listing);
    let columns = order.join(", ");
    let key = columns.replace("s.", "k.");
    Some(format!(
        "{STORY_SELECT} where s.deleted_at is null and s.removed_at is null and {VISIBLE_AUTHOR}
         and {filter} and ({columns}) < (select {key} from story k where k.id = $2)
         order by {} limit $1",
        descending(order)
    ))
}

/// A local person's live stories (neither deleted nor removed), in any order; unlike
/// `Listing::Author`, whatever the author's standing (a ban hides them from the lists).
pub async fn live_local_by(db: impl PgExecutor<'_>, author_id: i64) -> sqlx::Result<Vec<Story>> {
    sqlx::query_as(&format!(
        "{STORY_SELECT} where s.author_id = $1 and s.local
         and s.deleted_at is null and s.removed_at is null"
    ))
    .bind(author_id)
    .fetch_all(db)
    .await
}

/// One story, deleted or not.
pub async fn get(db: impl PgExecutor<'_>, id: i64) -> sqlx::Result<Option<Story>> {
    sqlx::query_as(&format!("{STORY_SELECT} where s.id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// What a validated submission or edit holds.
pub struct StoryInput<'a> {
    pub title: &'a str,
    /// The link as submitted, its normalized key and its domain; `None` for a text post.
    pub link: Option<LinkParts<'a>>,
    pub body: &'a str,
    pub body_html: &'a str,
    pub tags: &'a [String],
}

pub struct LinkParts<'a> {
    pub url: &'a str,
    pub key: &'a str,
    pub domain: &'a str,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Submitted {
    Created(i64),
    /// The link was already under discussion: the submitter's upvote went there instead.
    Duplicate(i64),
}

/// Shares a story. The same link again (by its normalized key) leads to the existing discussion
/// and counts as an upvote there (SPEC section 4); otherwise the story is created with its
/// submitter's own upvote and, for a link, a queued preview, all in one transaction.
pub async fn submit(
    tx: &mut Transaction<'_, Postgres>,
    origin: &str,
    author_id: i64,
    input: &StoryInput<'_>,
) -> sqlx::Result<Submitted> {
    if let Some(existing) = live_local_with_key(tx, input).await? {
        votes::cast(tx, author_id, Target::Story(existing), 1, None).await?;
        return Ok(Submitted::Duplicate(existing));
    }
    // A savepoint, so that losing the race below leaves the transaction usable.
    let mut attempt = tx.begin().await?;
    match insert(&mut attempt, origin, author_id, input).await {
        Ok(id) => {
            attempt.commit().await?;
            Ok(Submitted::Created(id))
        }
        // Someone shared the same link at the same moment: join their discussion.
        Err(sqlx::Error::Database(e)) if e.constraint() == Some("story_local_url_key") => {
            attempt.rollback().await?;
            let existing = live_local_with_key(tx, input)
                .await?
                .ok_or(sqlx::Error::RowNotFound)?;
            votes::cast(tx, author_id, Target::Story(existing), 1, None).await?;
            Ok(Submitted::Duplicate(existing))
        }
        Err(e) => Err(e),
    }
}

/// The live local story that already shares a link (by its normalized key), if any: what sharing
/// it again would join.
pub async fn shared_with_key(
    db: impl PgExecutor<'_>,
    url_key: &str,
) -> sqlx::Result<Option<Story>> {
    sqlx::query_as(&format!(
        "{STORY_SELECT} where s.url_key = $1 and s.local and s.deleted_at is null and s.removed_at is null"
    ))
    .bind(url_key)
    .fetch_optional(db)
    .await
}

async fn live_local_with_key(
    tx: &mut Transaction<'_, Postgres>,
    input: &StoryInput<'_>,
) -> sqlx::Result<Option<i64>> {
    let Some(link) = &input.link else {
        return Ok(None);
    };
    sqlx::query_scalar("select id from story where url_key = $1 and local and deleted_at is null")
        .bind(link.key)
        .fetch_optional(&mut **tx)
        .await
}

async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    origin: &str,
    author_id: i64,
    input: &StoryInput<'_>,
) -> sqlx::Result<i64> {
    // The id is drawn first so the ActivityPub id can be stored with the row.
    let id: i64 = sqlx::query_scalar(
        "with new as (select nextval(pg_get_serial_sequence('story', 'id')) as id)
         insert into story (id, ap_id, local, author_id, title, url, url_key, domain, body, body_html)
         select new.id, $1 || '/s/' || new.id, true, $2, $3, $4, $5, $6, $7, $8 from new
         returning id",
    )
    .bind(origin)
    .bind(author_id)
    .bind(input.title)
    .bind(input.link.as_ref().map(|l| l.url))
    .bind(input.link.as_ref().map(|l| l.key))
    .bind(input.link.as_ref().map(|l| l.domain))
    .bind(input.body)
    .bind(input.body_html)
    .fetch_one(&mut **tx)
    .await?;
    replace_tags(tx, id, input.tags).await?;
    if let Some(link) = &input.link {
        previews::enqueue(&mut **tx, id, link.url).await?;
    }
    votes::cast(tx, author_id, Target::Story(id), 1, None).await?;
    Ok(id)
}

async fn replace_tags(
    tx: &mut Transaction<'_, Postgres>,
    story_id: i64,
    tags: &[String],
) -> sqlx::Result<()> {
    sqlx::query("delete from story_tag where story_id = $1")
        .bind(story_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("insert into story_tag (story_id, tag) select $1, unnest($2::text[]) on conflict do nothing")
        .bind(story_id)
        .bind(tags)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
pub enum Edited {
    Done,
    /// The new link is already under discussion in that story.
    LinkTaken(i64),
    /// No such live story by this author.
    NotFound,
}

/// Edits a story its author owns.
pub async fn edit(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    author_id: i64,
    input: &StoryInput<'_>,
) -> sqlx::Result<Edited> {
    if let Some(other) = live_local_with_key(tx, input).await? {
        if other != id {
            return Ok(Edited::LinkTaken(other));
        }
    }
    let updated = sqlx::query(
        "update story set title = $3, url = $4, url_key = $5, domain = $6, body = $7, body_html = $8,
                          updated_at = now()
         where id = $1 and author_id = $2 and deleted_at is null",
    )
    .bind(id)
    .bind(author_id)
    .bind(input.title)
    .bind(input.link.as_ref().map(|l| l.url))
    .bind(input.link.as_ref().map(|l| l.key))
    .bind(input.link.as_ref().map(|l| l.domain))
    .bind(input.body)
    .bind(input.body_html)
    .execute(&mut **tx)
    .await;
    match updated {
        Ok(done) if done.rows_affected() == 0 => return Ok(Edited::NotFound),
        Ok(_) => {}
        Err(sqlx::Error::Database(e)) if e.constraint() == Some("story_local_url_key") => {
            return Ok(Edited::LinkTaken(id));
        }
        Err(e) => return Err(e),
    }
    replace_tags(tx, id, input.tags).await?;
    match &input.link {
        Some(link) => previews::enqueue(&mut **tx, id, link.url).await?,
        None => previews::forget(&mut **tx, id).await?,
    }
    Ok(Edited::Done)
}

/// Every tag with the number of live stories carrying it, most used first.
pub async fn tag_counts(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "select t.tag, count(*) from story_tag t join story s on s.id = t.story_id
         where s.deleted_at is null and s.removed_at is null group by t.tag
         order by count(*) desc, t.tag",
    )
    .fetch_all(db)
    .await
}

/// A story by its ActivityPub id, deleted or not.
pub async fn by_ap_id(db: impl PgExecutor<'_>, ap_id: &str) -> sqlx::Result<Option<Story>> {
    sqlx::query_as(&format!("{STORY_SELECT} where s.ap_id = $1"))
        .bind(ap_id)
        .fetch_optional(db)
        .await
}

/// A story that arrived by federation.
pub struct RemoteStory<'a> {
    pub ap_id: &'a str,
    pub author_id: i64,
    pub title: &'a str,
    pub link: Option<LinkParts<'a>>,
    pub body: &'a str,
    pub body_html: &'a str,
    pub tags: &'a [String],
    pub published: DateTime<Utc>,
    pub remote_url: Option<&'a str>,
}

/// Stores a remote story, or updates it when its id is known (an `Update`, or a refetch), and
/// queues a preview of its link.
pub async fn upsert_remote(pool: &PgPool, story: &RemoteStory<'_>) -> sqlx::Result<i64> {
    let mut tx = pool.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "insert into story (ap_id, local, author_id, title, url, url_key, domain, body, body_html, created_at, remote_url)
         values ($1, false, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         on conflict (ap_id) do update set
             title = excluded.title, url = excluded.url, url_key = excluded.url_key, domain = excluded.domain,
             body = excluded.body, body_html = excluded.body_html, remote_url = excluded.remote_url,
             updated_at = now()
         where not story.local and story.author_id = excluded.author_id
         returning id",
    )
    .bind(story.ap_id)
    .bind(story.author_id)
    .bind(story.title)
    .bind(story.link.as_ref().map(|l| l.url))
    .bind(story.link.as_ref().map(|l| l.key))
    .bind(story.link.as_ref().map(|l| l.domain))
    .bind(story.body)
    .bind(story.body_html)
    .bind(story.published)
    .bind(story.remote_url)
    .fetch_one(&mut *tx)
    .await?;
    replace_tags(&mut tx, id, story.tags).await?;
    match &story.link {
        Some(link) => previews::enqueue(&mut *tx, id, link.url).await?,
        None => previews::forget(&mut *tx, id).await?,
    }
    tx.commit().await?;
    Ok(id)
}

/// Marks a story deleted (its author's `Delete`, or a local author's deletion). True if it was live.
pub async fn tombstone(db: impl PgExecutor<'_>, id: i64) -> sqlx::Result<bool> {
    sqlx::query("update story set deleted_at = now() where id = $1 and deleted_at is null")
        .bind(id)
        .execute(db)
        .await
        .map(|done| done.rows_affected() == 1)
}

/// Brings a deleted story back (its author's `Undo` of the `Delete`). True if it was deleted.
pub async fn untombstone(db: impl PgExecutor<'_>, id: i64) -> sqlx::Result<bool> {
    sqlx::query("update story set deleted_at = null where id = $1 and deleted_at is not null")
        .bind(id)
        .execute(db)
        .await
        .map(|done| done.rows_affected() == 1)
}

/// Counts a boost (an `Announce`) once per person; returns whether it was new.
pub async fn add_boost(
    db: &PgPool,
    ap_id: &str,
    person_id: i64,
    story_id: i64,
) -> sqlx::Result<bool> {
    let mut tx = db.begin().await?;
    let added = sqlx::query(
        "insert into boost (ap_id, person_id, story_id) values ($1, $2, $3) on conflict do nothing",
    )
    .bind(ap_id)
    .bind(person_id)
    .bind(story_id)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if added {
        sqlx::query("update story set boost_count = boost_count + 1 where id = $1")
            .bind(story_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(added)
}

/// Takes back a boost by its activity id, if it was this person's.
pub async fn remove_boost(db: &PgPool, ap_id: &str, person_id: i64) -> sqlx::Result<bool> {
    let mut tx = db.begin().await?;
    let story: Option<i64> = sqlx::query_scalar(
        "delete from boost where ap_id = $1 and person_id = $2 returning story_id",
    )
    .bind(ap_id)
    .bind(person_id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(story) = story {
        sqlx::query("update story set boost_count = boost_count - 1 where id = $1")
            .bind(story)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(story.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_readable() {
        assert_eq!(slug("Hello, World! Ça va?"), "hello-world-ça-va");
        assert_eq!(slug("  --  "), "");
    }
}
