//! Remote communities: the `Group` actors of Lemmy, PieFed, Mbin (and other lien instances' tags)
//! that lien users follow (FEP-1b12). Resolving `!name@host`, the instance's one Follow of each
//! (sent by its first subscriber: Lemmy refuses follows from an `Application` such as P/actor),
//! and the `Announce`s a followed community sends, unwrapped and handled as the activity they
//! carry.
//!
//! Trust: the group signs the `Announce`, not the activity inside it. An inner activity whose
//! actor and id live on the group's own server is taken as embedded (that server vouches for its
//! people, as it does for the group); one from anywhere else is fetched again from its origin
//! (the post itself for a `Create`/`Update`, the activity otherwise) and refused when that fails.

use activitypub_federation::{
    fetch::{fetch_object_http, object_id::ObjectId, webfinger::webfinger_resolve_actor},
    traits::{Actor, Object},
};
use actix_web::web;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::{Postgres, Transaction};
use url::Url;

use super::{
    delivery::Signer,
    inbox,
    objects::{DbPerson, DbPost, Stored},
    outbox::new_activity_id,
    protocol::{object_id, object_type, ActivityJson, PersonJson, PostJson},
    FedData, FedResult, FederationError,
};
use crate::{
    app::AppState,
    db::{
        actors::{self, ActorRow},
        communities, moderation,
    },
};

/// A remote `Group`: a person row of kind `Group`. Dereferencing one refuses every other type,
/// which also picks the community among the links of a WebFinger answer that names a person and
/// a community of the same name (Lemmy answers so).
#[derive(Clone, Debug)]
pub struct DbGroup(pub ActorRow);

#[async_trait]
impl Object for DbGroup {
    type DataType = web::Data<AppState>;
    type Kind = PersonJson;
    type Error = FederationError;

    fn last_refreshed_at(&self) -> Option<DateTime<Utc>> {
        DbPerson(self.0.clone()).last_refreshed_at()
    }

    async fn read_from_id(id: Url, data: &FedData) -> FedResult<Option<Self>> {
        Ok(DbPerson::read_from_id(id, data)
            .await?
            .filter(|p| p.0.kind == "Group")
            .map(|p| DbGroup(p.0)))
    }

    async fn into_json(self, _: &FedData) -> FedResult<PersonJson> {
        // Only remote groups are DbGroups; lien's own tag groups are served elsewhere.
        Err(FederationError::NotFound)
    }

    async fn verify(json: &PersonJson, expected: &Url, data: &FedData) -> FedResult<()> {
        if json.kind != "Group" {
            return Err(FederationError::BadRequest(format!(
                "{} is a {}, not a community",
                json.id, json.kind
            )));
        }
        DbPerson::verify(json, expected, data).await
    }

    async fn from_json(json: PersonJson, data: &FedData) -> FedResult<Self> {
        Ok(DbGroup(DbPerson::from_json(json, data).await?.0))
    }
}

impl Actor for DbGroup {
    fn id(&self) -> Url {
        DbPerson(self.0.clone()).id()
    }

    fn public_key_pem(&self) -> &str {
        self.0.public_key_pem.as_deref().unwrap_or_default()
    }

    fn private_key_pem(&self) -> Option<String> {
        None
    }

    fn inbox(&self) -> Url {
        DbPerson(self.0.clone()).inbox()
    }
}

/// The local page of a remote community: `/!name@host`.
pub fn community_path(group: &ActorRow) -> String {
    format!(
        "/!{}@{}",
        group.name,
        group.host.as_deref().unwrap_or_default()
    )
}

/// Resolves `name@host` (what follows the `!`) to a remote community, by WebFinger, and brings
/// its recent posts along when it is new here.
pub async fn resolve_handle(data: &FedData, address: &str) -> FedResult<ActorRow> {
    let group: DbGroup = webfinger_resolve_actor(address, data)
        .await
        .map_err(|e| FederationError::BadRequest(format!("could not find !{address}: {e}")))?;
    load_recent_posts(data, &group.0).await;
    Ok(group.0)
}

/// A community found by its URL (the caller dereferenced it as an actor).
pub async fn found_by_url(data: &FedData, group: &ActorRow) -> String {
    load_recent_posts(data, group).await;
    community_path(group)
}

/// How many posts of a community's outbox are read when it is looked up.
const OUTBOX_POSTS: usize = 20;

/// Reads the community's outbox (Lemmy: `Announce(Create(Page))`s, newest first) and stores its
/// top-level posts, so that its page shows something before the first announcement arrives.
/// Best effort: a community whose outbox cannot be read still has its page.
async fn load_recent_posts(data: &FedData, group: &ActorRow) {
    if let Err(error) = try_load_recent_posts(data, group).await {
        tracing::debug!(community = %group.ap_id, %error, "outbox not read");
    }
}

async fn try_load_recent_posts(data: &FedData, group: &ActorRow) -> FedResult<()> {
    let group_url: Url = group
        .ap_id
        .parse()
        .map_err(|_| FederationError::BadRequest("bad group id".into()))?;
    let document: Value = fetch_object_http(&group_url, data).await?.object;
    let Some(outbox) = document.get("outbox").and_then(Value::as_str) else {
        return Ok(());
    };
    let outbox: Url = outbox
        .parse()
        .map_err(|_| FederationError::BadRequest("bad outbox".into()))?;
    let mut page: Value = fetch_object_http(&outbox, data).await?.object;
    if let Some(first) = page.get("first").cloned() {
        page = match first {
            Value::String(id) => match id.parse::<Url>() {
                Ok(url) => fetch_object_http(&url, data).await?.object,
                Err(_) => return Ok(()),
            },
            embedded => embedded,
        };
    }
    let items = page
        .get("orderedItems")
        .or_else(|| page.get("items"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    // Oldest first, so that posts published at the same moment list in the outbox's order.
    let newest: Vec<Value> = items.into_iter().take(OUTBOX_POSTS).collect();
    for item in newest.into_iter().rev() {
        // Announce(Create(Page)) or Create(Page): the post is the innermost object.
        let mut object = item;
        while matches!(object_type(&object), Some("Announce" | "Create")) {
            object = object.get("object").cloned().unwrap_or_default();
        }
        if let Err(error) = store_community_post(data, group, &object).await {
            tracing::debug!(community = %group.ap_id, %error, "outbox post skipped");
        }
    }
    Ok(())
}

/// Stores one top-level post of the community from its outbox: taken as served when it lives on
/// the community's server, fetched from its own server otherwise.
async fn store_community_post(data: &FedData, group: &ActorRow, object: &Value) -> FedResult<()> {
    let id = object_id(object)
        .ok_or_else(|| FederationError::BadRequest("an outbox item names no post".into()))?;
    let object = if object.is_object() && same_origin(id.as_str(), &group.ap_id) {
        object.clone()
    } else {
        fetch_object_http::<_, Value>(&id, data).await?.object
    };
    let post = serde_json::from_value::<PostJson>(object.clone())
        .map_err(|e| FederationError::BadRequest(format!("not a post: {e}")))?;
    if post.in_reply_to.is_some() || post.id != id || !names_group(&post, group) {
        return Ok(());
    }
    let author_id = post
        .attributed_to
        .author()
        .ok_or_else(|| FederationError::BadRequest("the post names no author".into()))?;
    let author = ObjectId::<DbPerson>::from(author_id.clone())
        .dereference(data)
        .await?;
    DbPost::verify(&post, &author_id, data).await?;
    let echo = echoes_community(&post, group);
    if let Stored::Story(story) = DbPost::store(post, &author.0, None, data).await? {
        communities::file_story(&data.db.write, story, group, echo).await?;
    }
    // Its score and what was already said under it, as far as the fetch budget goes.
    if let Err(error) = super::resolve::backfill_from(data, &object, BACKFILL_DEPTH).await {
        tracing::debug!(post = %id, %error, "discussion not backfilled");
    }
    Ok(())
}

/// Levels of replies brought along with a community's post.
const BACKFILL_DEPTH: u8 = 2;

/// Files a remote story fetched on its own (a pasted address) under the community its `audience`
/// names, when that is a `Group` on the story's own server (a community speaks for its posts only).
pub async fn file_by_audience(data: &FedData, json: &Value) -> FedResult<()> {
    let (Some(id), Some(audience)) = (
        object_id(json),
        json.get("audience").and_then(Value::as_str),
    ) else {
        return Ok(());
    };
    if !same_origin(id.as_str(), audience) {
        return Ok(());
    }
    let Some(DbPost::Story(story)) = DbPost::find(&data.db.write, id.as_str()).await? else {
        return Ok(());
    };
    if story.local || story.community.is_some() {
        return Ok(());
    }
    let audience: Url = audience
        .parse()
        .map_err(|_| FederationError::BadRequest("bad audience".into()))?;
    let group = ObjectId::<DbGroup>::from(audience)
        .dereference(data)
        .await?;
    let echo = serde_json::from_value::<PostJson>(json.clone())
        .is_ok_and(|post| echoes_community(&post, &group.0));
    communities::file_story(&data.db.write, story.id, &group.0, echo).await?;
    Ok(())
}

/// Whether a post says it belongs to `group` (FEP-1b12: `audience`, or the group among `to`/`cc`,
/// as Lemmy, PieFed, Mbin and lien address their posts). A group files under itself only posts
/// that name it, so it cannot claim another community's posts or a stray Mastodon status.
fn names_group(post: &PostJson, group: &ActorRow) -> bool {
    post.audience
        .iter()
        .chain(&post.to)
        .chain(&post.cc)
        .any(|u| u.as_str() == group.ap_id)
}

/// Whether a post repeats its community's name as a hashtag the way Lemmy does (`#linux` with
/// the post's own id as `href`): that tag is only the community again, and is dropped. A real tag
/// of the same name (lien's stories link theirs to the tag's page) stays.
fn echoes_community(post: &PostJson, group: &ActorRow) -> bool {
    post.tag.iter().any(|tag| {
        tag.get("type").and_then(Value::as_str) == Some("Hashtag")
            && tag.get("href").and_then(Value::as_str) == Some(post.id.as_str())
            && tag.get("name").and_then(Value::as_str).is_some_and(|name| {
                name.trim_start_matches('#')
                    .eq_ignore_ascii_case(&group.name)
            })
    })
}

/// Whether two URLs share scheme, host and port: the unit a server speaks for. (Stricter than the
/// library's domain check, which ignores ports.)
pub fn same_origin(a: &str, b: &str) -> bool {
    match (Url::parse(a), Url::parse(b)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

/// A lien user subscribes to a community. The instance follows it once: the first subscriber's
/// `Follow` (to the group's own inbox) carries it; later subscriptions only count here.
pub async fn subscribe(
    tx: &mut Transaction<'_, Postgres>,
    state: &AppState,
    person_id: i64,
    group: &ActorRow,
) -> FedResult<()> {
    let follow_id = new_activity_id(&state.config.origin());
    if let Some(follow_id) = communities::subscribe(tx, person_id, group.id, &follow_id).await? {
        send_follow(tx, state, person_id, group, &follow_id).await?;
    }
    Ok(())
}

async fn send_follow(
    tx: &mut Transaction<'_, Postgres>,
    state: &AppState,
    person_id: i64,
    group: &ActorRow,
    follow_id: &str,
) -> FedResult<()> {
    let follower = actors::by_id(&mut **tx, person_id)
        .await?
        .ok_or(FederationError::NotFound)?;
    let activity = json!({
        "id": follow_id,
        "type": "Follow",
        "actor": follower.ap_id,
        "object": group.ap_id,
        "to": [group.ap_id],
    });
    to_group_inbox(tx, state, activity, Signer::Person(person_id), group).await
}

/// A lien user leaves a community. If their Follow carried the instance's follow, it is undone,
/// and another subscriber (if any is left) follows in their place, so the posts keep coming.
pub async fn unsubscribe(
    tx: &mut Transaction<'_, Postgres>,
    state: &AppState,
    person_id: i64,
    group: &ActorRow,
) -> FedResult<()> {
    let Some((follow_id, next)) = communities::unsubscribe(tx, person_id, group.id).await? else {
        return Ok(());
    };
    let leaver = actors::by_id(&mut **tx, person_id)
        .await?
        .ok_or(FederationError::NotFound)?;
    let activity = json!({
        "id": new_activity_id(&state.config.origin()),
        "type": "Undo",
        "actor": leaver.ap_id,
        "object": { "id": follow_id, "type": "Follow", "actor": leaver.ap_id, "object": group.ap_id, "to": [group.ap_id] },
        "to": [group.ap_id],
    });
    to_group_inbox(tx, state, activity, Signer::Person(person_id), group).await?;
    if let Some(next) = next {
        subscribe(tx, state, next, group).await?;
    }
    Ok(())
}

async fn to_group_inbox(
    tx: &mut Transaction<'_, Postgres>,
    state: &AppState,
    activity: Value,
    signer: Signer,
    group: &ActorRow,
) -> FedResult<()> {
    if state.config.federation == crate::config::Switch::Off {
        return Ok(());
    }
    let Some(inbox) = group.inbox_url.as_deref().and_then(|i| i.parse().ok()) else {
        return Ok(());
    };
    let mut activity = activity;
    activity["@context"] = super::protocol::context();
    super::delivery::enqueue(tx, &activity, signer, &[inbox], &state.config.host()).await?;
    Ok(())
}

/// The community's `Accept` of the instance's Follow.
pub async fn accepted(data: &FedData, group: &ActorRow, follow_id: &Url) -> FedResult<()> {
    communities::accepted(&data.db.write, group.id, follow_id.as_str()).await?;
    Ok(())
}

/// For a comment or vote by a lien user on a post of a remote community: the community's inbox
/// (so that it announces it to everyone), and its id for `audience` and `to`.
pub async fn addressee(
    db: &mut sqlx::PgConnection,
    story_id: i64,
) -> FedResult<Option<(String, Url)>> {
    let Some(group) = communities::of_story(&mut *db, story_id).await? else {
        return Ok(None);
    };
    let inbox = group
        .shared_inbox_url
        .as_deref()
        .or(group.inbox_url.as_deref())
        .and_then(|i| i.parse().ok());
    Ok(inbox.map(|inbox| (group.ap_id, inbox)))
}

/// Addresses an outgoing activity (and its embedded object, if any) to the community: `audience`
/// and `to` name the group, as Lemmy, PieFed and Mbin expect of anything posted in one.
pub fn address_to(activity: &mut Value, group: &str) {
    fn add(map: &mut serde_json::Map<String, Value>, group: &str) {
        map.insert("audience".to_owned(), Value::String(group.to_owned()));
        let to = map.entry("to").or_insert_with(|| json!([]));
        if let Value::String(one) = to {
            *to = json!([one.clone()]);
        }
        if let Value::Array(list) = to {
            if !list.iter().any(|v| v.as_str() == Some(group)) {
                list.push(Value::String(group.to_owned()));
            }
        }
    }
    if let Value::Object(map) = activity {
        if let Some(Value::Object(object)) = map.get_mut("object") {
            if object.contains_key("attributedTo") {
                add(object, group);
            }
        }
        add(map, group);
    }
}

/// An `Announce` by a group: unwrapped and handled as the activity it carries, once, if this
/// instance follows the group.
pub async fn announced(activity: &ActivityJson, group: &ActorRow, data: &FedData) -> FedResult<()> {
    let db = &data.db.write;
    if !communities::is_followed(db, group.id).await? {
        tracing::debug!(group = %group.ap_id, "announce from a community nobody here follows ignored");
        return Ok(());
    }
    let inner = match &activity.object {
        Value::Object(_) => activity.object.clone(),
        // A bare id: a post (a boost-style announce), or an activity, fetched from its origin.
        other => {
            let id = object_id(other)
                .ok_or_else(|| FederationError::BadRequest("the announce names nothing".into()))?;
            fetch_object_http::<_, Value>(&id, data).await?.object
        }
    };
    if inner.get("actor").is_none() {
        // An announced post, not an activity.
        return store_community_post(data, group, &inner).await;
    }
    // A moderator's reason (Lemmy's `summary` of a removal).
    // A `summary`, even empty, marks a Delete as a moderator's removal (Lemmy).
    let reason = inner
        .get("summary")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let inner: ActivityJson = serde_json::from_value(inner)
        .map_err(|e| FederationError::BadRequest(format!("the announced activity: {e}")))?;
    // What this instance sent, announced back to it (Lemmy 1.0 and lien's groups echo to every
    // follower), and what arrived directly or by another announce: effect once, nothing fetched.
    if same_origin(inner.actor.as_str(), &data.config.origin())
        || actors::received(db, inner.id.as_str()).await?
    {
        return Ok(());
    }
    let inner = trusted(inner, group, data).await?;
    if moderation::is_blocked(db, &super::delivery::host_of(&inner.actor)).await? {
        return Err(FederationError::Forbidden(
            "this server is blocked here".into(),
        ));
    }
    let actor = ObjectId::<DbPerson>::from(inner.actor.clone())
        .dereference(data)
        .await
        .map_err(|e| FederationError::BadRequest(format!("the announced actor: {e}")))?
        .0;
    if actor.banned {
        return Err(FederationError::Forbidden(
            "this actor is banned here".into(),
        ));
    }
    handle_inner(&inner, &actor, group, reason.as_deref(), data).await?;
    actors::record_receipt(db, inner.id.as_str()).await?;
    Ok(())
}

/// The announced activity as it may be believed: as embedded when it comes from the group's own
/// server, else fetched again from its origin.
async fn trusted(inner: ActivityJson, group: &ActorRow, data: &FedData) -> FedResult<ActivityJson> {
    let origin_ok = same_origin(inner.id.as_str(), inner.actor.as_str());
    if origin_ok && same_origin(inner.actor.as_str(), &group.ap_id) {
        return Ok(inner);
    }
    if !origin_ok {
        return Err(FederationError::Forbidden(
            "the announced activity's id is on another server than its actor".into(),
        ));
    }
    let refused = |e: activitypub_federation::error::Error| {
        FederationError::Forbidden(format!(
            "the announced activity could not be checked at its origin: {e}"
        ))
    };
    match inner.kind.as_str() {
        // The post itself, from its own server.
        "Create" | "Update" if inner.object.is_object() => {
            let id = object_id(&inner.object)
                .ok_or_else(|| FederationError::BadRequest("the post has no id".into()))?;
            if !same_origin(id.as_str(), inner.actor.as_str()) {
                return Err(FederationError::Forbidden(
                    "the announced post is on another server than its author".into(),
                ));
            }
            let fetched = fetch_object_http::<_, Value>(&id, data)
                .await
                .map_err(refused)?
                .object;
            Ok(ActivityJson {
                object: fetched,
                ..inner
            })
        }
        // The activity itself, from its own server (Lemmy serves its activities at their ids).
        _ => {
            let fetched: ActivityJson = fetch_object_http(&inner.id, data)
                .await
                .map_err(refused)?
                .object;
            if fetched.actor != inner.actor || fetched.kind != inner.kind {
                return Err(FederationError::Forbidden(
                    "the announced activity differs from its original".into(),
                ));
            }
            Ok(fetched)
        }
    }
}

/// Handles what a followed community announced.
async fn handle_inner(
    inner: &ActivityJson,
    actor: &ActorRow,
    group: &ActorRow,
    reason: Option<&str>,
    data: &FedData,
) -> FedResult<()> {
    match inner.kind.as_str() {
        "Create" | "Update" if inner.object.get("inReplyTo").is_none_or(Value::is_null) => {
            create_post(inner, actor, group, data).await
        }
        "Delete" => {
            let target = object_id(&inner.object)
                .ok_or_else(|| FederationError::BadRequest("nothing to delete".into()))?;
            match DbPost::find(&data.db.write, target.as_str()).await? {
                // By its author, without a reason: an ordinary deletion.
                Some(post)
                    if post.author_id() == actor.id
                        && inner.kind == "Delete"
                        && reason.is_none() =>
                {
                    inbox::handle(inner, actor, data).await
                }
                Some(post) => moderate(&post, "remove", group, reason, data).await,
                None => Ok(()),
            }
        }
        "Undo" if object_type(&inner.object) == Some("Delete") => {
            let target = inner.object.get("object").and_then(object_id);
            let post = match target {
                Some(target) => DbPost::find(&data.db.write, target.as_str()).await?,
                None => None,
            };
            match post {
                Some(post)
                    if post.author_id() != actor.id || inner.object.get("summary").is_some() =>
                {
                    moderate(&post, "restore", group, reason, data).await
                }
                _ => inbox::handle(inner, actor, data).await,
            }
        }
        "Lock" => match DbPost::find(&data.db.write, named(inner)?.as_str()).await? {
            Some(post) => moderate(&post, "lock", group, reason, data).await,
            None => Ok(()),
        },
        "Create" | "Update" | "Like" | "Dislike" | "Undo" => {
            inbox::handle(inner, actor, data).await
        }
        // Add/Remove (Lemmy's moderators and featured collections, never a post's removal: that
        // is a Delete with a summary), Block: not kept here.
        _ => Ok(()),
    }
}

fn named(inner: &ActivityJson) -> FedResult<Url> {
    object_id(&inner.object)
        .ok_or_else(|| FederationError::BadRequest("the activity names no object".into()))
}

/// A new or edited top-level post of the community.
async fn create_post(
    inner: &ActivityJson,
    actor: &ActorRow,
    group: &ActorRow,
    data: &FedData,
) -> FedResult<()> {
    let post: PostJson = serde_json::from_value(inner.object.clone())
        .map_err(|e| FederationError::BadRequest(format!("the object is not a post: {e}")))?;
    inbox::check_authorship(&post, actor)?;
    if !names_group(&post, group) {
        tracing::debug!(post = %post.id, group = %group.ap_id, "an announced post of another community ignored");
        return Ok(());
    }
    let expected: Url = actor
        .ap_id
        .parse()
        .map_err(|_| FederationError::Forbidden("bad actor id".into()))?;
    DbPost::verify(&post, &expected, data).await?;
    if let Some(existing) = DbPost::find(&data.db.write, post.id.as_str()).await? {
        if existing.author_id() != actor.id {
            return Err(FederationError::Forbidden(
                "only its author can edit a post".into(),
            ));
        }
    }
    let echo = echoes_community(&post, group);
    if let Stored::Story(story) = DbPost::store(post, actor, None, data).await? {
        communities::file_story(&data.db.write, story, group, echo).await?;
    }
    Ok(())
}

/// A moderator's action announced by the community, applied to a post of that community only
/// (the group is the authority over what is posted in it, nothing else).
async fn moderate(
    post: &DbPost,
    action: &str,
    group: &ActorRow,
    why: Option<&str>,
    data: &FedData,
) -> FedResult<()> {
    let db = &data.db.write;
    let in_group = communities::of_story(db, post.story_id())
        .await?
        .is_some_and(|c| c.id == group.id);
    if !in_group {
        return Err(FederationError::Forbidden(
            "a community moderates only its own posts".into(),
        ));
    }
    let target = match (post, action) {
        (_, "lock") => moderation::Target::Story(post.story_id()),
        (DbPost::Story(story), _) => moderation::Target::Story(story.id),
        (DbPost::Comment(comment), _) => moderation::Target::Comment(comment.id),
    };
    let community = format!(
        "!{}@{}",
        group.name,
        group.host.as_deref().unwrap_or_default()
    );
    let reason = match why.map(str::trim).filter(|w| !w.is_empty()) {
        Some(why) => format!(
            "by the community {community}: {}",
            why.chars().take(500).collect::<String>()
        ),
        None => format!("by the community {community}"),
    };
    let mut tx = db.begin().await?;
    moderation::act_in(&mut tx, None, action, &target, &reason).await?;
    tx.commit().await?;
    Ok(())
}
