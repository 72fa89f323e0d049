//! People as federation sees them: keys, inboxes, follows; and storing remote actors.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Postgres, Transaction};

/// A person with everything federation needs: ids, inboxes and keys.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ActorRow {
    pub id: i64,
    pub name: String,
    pub host: Option<String>,
    pub local: bool,
    pub ap_id: String,
    pub display_name: String,
    pub bio: String,
    pub avatar_url: Option<String>,
    pub inbox_url: Option<String>,
    pub shared_inbox_url: Option<String>,
    pub followers_url: Option<String>,
    pub profile_url: Option<String>,
    pub public_key_pem: Option<String>,
    pub private_key_pem: Option<String>,
    pub created_at: DateTime<Utc>,
    pub fetched_at: Option<DateTime<Utc>>,
    /// A deleted account (local: by its owner; remote: by the `Delete` of the actor).
    pub deleted_at: Option<DateTime<Utc>>,
    /// Banned here by a moderator: read with the rest, so the inbox needs no second query.
    pub banned: bool,
    /// The ActivityStreams type: `Person`, or `Group` for a remote community.
    pub kind: String,
}

pub(crate) const ACTOR_COLUMNS: &str = "id, name, host, local, ap_id, display_name, bio, avatar_url, inbox_url, \
     shared_inbox_url, followers_url, profile_url, public_key_pem, private_key_pem, created_at, fetched_at, \
     deleted_at, banned_at is not null as banned, kind";

pub async fn by_ap_id(db: impl PgExecutor<'_>, ap_id: &str) -> sqlx::Result<Option<ActorRow>> {
    sqlx::query_as(&format!(
        "select {ACTOR_COLUMNS} from person where ap_id = $1"
    ))
    .bind(ap_id)
    .fetch_optional(db)
    .await
}

pub async fn by_id(db: impl PgExecutor<'_>, id: i64) -> sqlx::Result<Option<ActorRow>> {
    sqlx::query_as(&format!("select {ACTOR_COLUMNS} from person where id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn local_by_name(db: impl PgExecutor<'_>, name: &str) -> sqlx::Result<Option<ActorRow>> {
    sqlx::query_as(&format!(
        "select {ACTOR_COLUMNS} from person where local and lower(name) = lower($1)"
    ))
    .bind(name)
    .fetch_optional(db)
    .await
}

/// What a remote actor document says about itself.
pub struct RemoteActor<'a> {
    pub ap_id: &'a str,
    pub name: &'a str,
    pub host: &'a str,
    pub display_name: &'a str,
    pub bio: &'a str,
    pub avatar_url: Option<&'a str>,
    pub inbox_url: &'a str,
    pub shared_inbox_url: Option<&'a str>,
    pub followers_url: Option<&'a str>,
    pub profile_url: Option<&'a str>,
    pub public_key_pem: &'a str,
    /// `Person`, `Group`, … (types lien does not know are stored as `Person`).
    pub kind: &'a str,
}

/// Stores or refreshes a remote actor, keyed by its id.
pub async fn upsert_remote(
    db: impl PgExecutor<'_>,
    actor: &RemoteActor<'_>,
) -> sqlx::Result<ActorRow> {
    sqlx::query_as(&format!(
        "insert into person (name, host, local, ap_id, display_name, bio, avatar_url, inbox_url,
                             shared_inbox_url, followers_url, profile_url, public_key_pem, fetched_at, kind)
         values ($1, $2, false, $3, $4, $5, $6, $7, $8, $9, $10, $11, now(), $12)
         on conflict (ap_id) do update set
             name = excluded.name, display_name = excluded.display_name, bio = excluded.bio,
             avatar_url = excluded.avatar_url, inbox_url = excluded.inbox_url,
             shared_inbox_url = excluded.shared_inbox_url, followers_url = excluded.followers_url,
             profile_url = excluded.profile_url, public_key_pem = excluded.public_key_pem,
             fetched_at = now(), kind = excluded.kind
         where not person.local
         returning {ACTOR_COLUMNS}"
    ))
    .bind(actor.name)
    .bind(actor.host)
    .bind(actor.ap_id)
    .bind(actor.display_name)
    .bind(actor.bio)
    .bind(actor.avatar_url)
    .bind(actor.inbox_url)
    .bind(actor.shared_inbox_url)
    .bind(actor.followers_url)
    .bind(actor.profile_url)
    .bind(actor.public_key_pem)
    .bind(actor.kind)
    .fetch_one(db)
    .await
}

/// The inboxes of a person's accepted followers, shared inboxes preferred and each listed once.
pub async fn follower_inboxes(
    db: impl PgExecutor<'_>,
    person_id: i64,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "select distinct coalesce(p.shared_inbox_url, p.inbox_url) from follow f
         join person p on p.id = f.follower_id
         where f.followee_id = $1 and f.accepted and not p.local
           and coalesce(p.shared_inbox_url, p.inbox_url) is not null",
    )
    .bind(person_id)
    .fetch_all(db)
    .await
}

/// The inbox to reach one person directly (shared preferred); `None` for local people.
pub fn inbox_of(actor: &ActorRow) -> Option<String> {
    if actor.local {
        return None;
    }
    actor
        .shared_inbox_url
        .clone()
        .or_else(|| actor.inbox_url.clone())
}

/// Records a follow. Remote followers of local people are accepted at once; a local person's
/// follow of a remote actor waits for the Accept. Returns false when it already existed.
pub async fn add_follow(
    tx: &mut Transaction<'_, Postgres>,
    follower: i64,
    followee: i64,
    ap_id: &str,
    accepted: bool,
) -> sqlx::Result<bool> {
    sqlx::query(
        "insert into follow (follower_id, followee_id, ap_id, accepted) values ($1, $2, $3, $4)
         on conflict (follower_id, followee_id) do update set accepted = follow.accepted or excluded.accepted",
    )
    .bind(follower)
    .bind(followee)
    .bind(ap_id)
    .bind(accepted)
    .execute(&mut **tx)
    .await
    .map(|done| done.rows_affected() == 1)
}

/// The follow between two people, if any: (activity id, accepted).
pub async fn follow_between(
    db: impl PgExecutor<'_>,
    follower: i64,
    followee: i64,
) -> sqlx::Result<Option<(String, bool)>> {
    sqlx::query_as("select ap_id, accepted from follow where follower_id = $1 and followee_id = $2")
        .bind(follower)
        .bind(followee)
        .fetch_optional(db)
        .await
}

pub async fn remove_follow(
    db: impl PgExecutor<'_>,
    follower: i64,
    followee: i64,
) -> sqlx::Result<bool> {
    sqlx::query("delete from follow where follower_id = $1 and followee_id = $2")
        .bind(follower)
        .bind(followee)
        .execute(db)
        .await
        .map(|done| done.rows_affected() == 1)
}

/// Whether any local person follows this actor (a remote story is only taken from those).
pub async fn has_local_followers(db: impl PgExecutor<'_>, person_id: i64) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists(select 1 from follow f join person p on p.id = f.follower_id
                       where f.followee_id = $1 and p.local)",
    )
    .bind(person_id)
    .fetch_one(db)
    .await
}

pub async fn follower_count(db: impl PgExecutor<'_>, person_id: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar("select count(*) from follow where followee_id = $1 and accepted")
        .bind(person_id)
        .fetch_one(db)
        .await
}

/// Whether an activity id was handled before (SPEC: seen twice, effect once).
pub async fn received(db: impl PgExecutor<'_>, activity_id: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar("select exists (select 1 from received_activity where ap_id = $1)")
        .bind(activity_id)
        .fetch_one(db)
        .await
}

/// Records that an activity was handled. Called only once its effects are committed: a crash in
/// between leaves no receipt, so the sender's retry is handled again. The handlers are idempotent
/// (objects upserted by their ids, votes by voter and target, follows and boosts once), but for
/// `Flag`: a retry after such a crash files its report twice, which a moderator shrugs off.
pub async fn record_receipt(db: impl PgExecutor<'_>, activity_id: &str) -> sqlx::Result<()> {
    sqlx::query("insert into received_activity (ap_id) values ($1) on conflict do nothing")
        .bind(activity_id)
        .execute(db)
        .await
        .map(drop)
}

/// One inbox per known peer server (its shared inbox when it has one): where an account's
/// deletion is announced, since any of them may hold its posts.
pub async fn peer_inboxes(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "select distinct on (host) coalesce(shared_inbox_url, inbox_url) from person
         where not local and coalesce(shared_inbox_url, inbox_url) is not null
         order by host, shared_inbox_url is null, id",
    )
    .fetch_all(db)
    .await
}
