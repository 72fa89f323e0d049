//! The inboxes (`P/inbox` and `P/users/{name}/inbox`): every POST is signature-checked (draft-cavage
//! or RFC 9421, see `verification`) before anything in it is believed, then checked for ownership,
//! deduplicated by id, and handled. Refusals answer 400 (not an activity, or lists over the caps),
//! 401 (no, bad or stale signature), 403 (not yours) or 413 (over 1 MB), and store nothing: the
//! signer's document, when it has to be fetched, is kept in memory until its key verified the
//! signature, and only then stored.

use activitypub_federation::{
    fetch::fetch_object_http,
    protocol::verification::verify_domains_match,
    traits::{ActivityHandler, Object},
};

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use url::Url;

use super::{
    delivery,
    objects::{DbPerson, DbPost},
    outbox, peers,
    protocol::{object_id, object_type, ActivityJson, PersonJson, PostJson, PUBLIC},
    verification::{self, Claim, Scheme},
    FedData, FedResult, FederationError,
};
use crate::{
    app::AppState,
    config::Switch,
    db::{
        actors::{self, ActorRow},
        comments, moderation, notifications, peer_signatures, quotes, stories,
        votes::{self, Target},
    },
    rate_limit::Action,
};

/// Mastodon's own limit on activity bodies.
pub const MAX_ACTIVITY_BYTES: usize = 1024 * 1024;

/// How many objects one activity may name (a `Flag` reporting posts names a few; each named
/// object costs lookups).
pub const MAX_NAMED_OBJECTS: usize = 100;

/// How long any list anywhere in an activity may be (`to`, `cc`, `tag`, `attachment`...): far
/// above what a post with every mention its server allows carries.
pub const MAX_LIST_ITEMS: usize = 500;

/// How long a stored key of a remote actor is trusted without asking its server again: a
/// rotated or revoked key is noticed within a day.
const KEY_TRUSTED_FOR: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// A stored key that does not verify a signature is refetched once (the actor may have rotated
/// it), unless it was fetched less than this long ago.
const REFETCH_AFTER_FAILURE: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

tokio::task_local! {
    /// The signing actor as this request read it (fetching it if need be) to check the
    /// signature. The library's own lookups of the actor and [`InboxActivity::receive`] take it
    /// from here instead of reading the same row again.
    static SIGNER: ActorRow;
}

/// The actor with id `id` if the inbox request being handled has read it already.
pub(crate) fn signer_read_in_this_request(id: &Url) -> Option<ActorRow> {
    SIGNER
        .try_with(|signer| (signer.ap_id == id.as_str()).then(|| signer.clone()))
        .ok()
        .flatten()
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/inbox")
            .app_data(web::PayloadConfig::new(MAX_ACTIVITY_BYTES))
            .route(web::post().to(shared_inbox)),
    )
    .service(
        web::resource("/users/{name}/inbox")
            .app_data(web::PayloadConfig::new(MAX_ACTIVITY_BYTES))
            .route(web::post().to(person_inbox)),
    );
}

async fn person_inbox(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    data: FedData,
) -> FedResult<HttpResponse> {
    if actors::local_by_name(&data.db.read, &path).await?.is_none() {
        return Err(FederationError::NotFound);
    }
    receive(req, body, data).await
}

async fn shared_inbox(
    req: HttpRequest,
    body: web::Bytes,
    data: FedData,
) -> FedResult<HttpResponse> {
    receive(req, body, data).await
}

/// Receives one activity and counts it for /metrics if it was refused; one that got through is
/// counted by [`InboxActivity::receive`], which knows whether it was a duplicate.
pub(crate) async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    data: FedData,
) -> FedResult<HttpResponse> {
    let kind = claimed_type(&body);
    let ip = crate::rate_limit::client_ip(&req, data.config.trust_proxy);
    if let Err(seconds) = data.limits.hit(Action::Inbox, &[&ip]) {
        crate::metrics::inbox_activity(&kind, "refused", 429);
        return Ok(HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", seconds.to_string()))
            .json(serde_json::json!({ "error": "too many activities; slow down" })));
    }
    let result = verify_and_receive(req, body, data).await;
    if let Err(error) = &result {
        let status = error.status_code();
        let outcome = if status.is_server_error() {
            "error"
        } else {
            "refused"
        };
        crate::metrics::inbox_activity(&kind, outcome, status.as_u16());
    }
    result
}

/// The `type` a body claims, before anything is verified: only to count it by.
fn claimed_type(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Claim {
        #[serde(rename = "type", default)]
        kind: String,
    }
    serde_json::from_slice::<Claim>(body)
        .map(|claim| claim.kind)
        .unwrap_or_default()
}

async fn verify_and_receive(
    req: HttpRequest,
    body: web::Bytes,
    data: FedData,
) -> FedResult<HttpResponse> {
    if data.config.federation == Switch::Off {
        return Err(FederationError::NotFound);
    }
    // Everything about the signature that needs no key, first: a request that can never verify
    // gets 401 (after which a peer re-signs or gives up) before anything is fetched.
    let claim = verification::read(&req, &body, &data.config.origin(), chrono::Utc::now())
        .map_err(FederationError::Unauthorized)?;
    let activity: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| FederationError::BadRequest(format!("not an activity: {e}")))?;
    check_list_sizes(&activity)?;
    let activity: ActivityJson = serde_json::from_value(activity)
        .map_err(|e| FederationError::BadRequest(format!("not an activity: {e}")))?;
    if delivery::host_of(&activity.actor).eq_ignore_ascii_case(&data.config.host()) {
        return Err(FederationError::Forbidden(
            "activities of this instance's actors are not taken from outside".into(),
        ));
    }
    // A blocked server is refused before anything is fetched or stored, its actor included.
    if moderation::is_blocked(&data.db.write, &delivery::host_of(&activity.actor)).await? {
        return Err(FederationError::Forbidden(
            "this server is blocked here".into(),
        ));
    }
    let signer = verified_signer(&claim, &activity, &data).await?;
    if claim.scheme == Scheme::Rfc9421 {
        // A server that signs with RFC 9421 verifies it too: deliveries to it may use it.
        let host = delivery::host_of(&activity.actor);
        if let Err(error) =
            peer_signatures::suggest(&data.db.write, &host, Scheme::Rfc9421.as_str()).await
        {
            tracing::warn!(host, %error, "could not note the peer's signature scheme");
        }
    }
    // What the peer runs, from its User-Agent: the shape of what lien sends it (see `peers`).
    let software = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|ua| ua.to_str().ok())
        .and_then(peers::from_user_agent);
    let host = delivery::host_of(&activity.actor);
    let activity = InboxActivity(activity);
    SIGNER
        .scope(signer, async {
            activity.verify(&data).await?;
            activity.receive(&data).await?;
            Ok::<_, FederationError>(())
        })
        .await?;
    // Verified and handled: the host's software is known for what lien sends it later.
    if let Some(software) = software {
        if let Err(error) = peers::remember(&data.db.write, &host, software).await {
            // Only the shape of later deliveries depends on it: the activity stays accepted.
            tracing::warn!(%host, %error, "could not record a peer's software");
        }
    }
    Ok(HttpResponse::Ok().finish())
}

/// Refuses, with 400 before any work, an activity naming more than [`MAX_NAMED_OBJECTS`]
/// objects or holding any list longer than [`MAX_LIST_ITEMS`].
fn check_list_sizes(activity: &serde_json::Value) -> FedResult<()> {
    use serde_json::Value;
    if let Some(Value::Array(named)) = activity.get("object") {
        if named.len() > MAX_NAMED_OBJECTS {
            return Err(FederationError::BadRequest(format!(
                "an activity may name at most {MAX_NAMED_OBJECTS} objects"
            )));
        }
    }
    let mut pending = vec![activity];
    while let Some(value) = pending.pop() {
        match value {
            Value::Array(items) if items.len() > MAX_LIST_ITEMS => {
                return Err(FederationError::BadRequest(format!(
                    "a list in an activity may hold at most {MAX_LIST_ITEMS} items"
                )));
            }
            Value::Array(items) => pending.extend(items),
            Value::Object(map) => pending.extend(map.values()),
            _ => {}
        }
    }
    Ok(())
}

/// The activity's actor, once its key verified the signature. A stored key is trusted for
/// [`KEY_TRUSTED_FOR`]; an older one, or one that does not verify, is fetched again from the
/// actor's server. A fetched document is stored only after its key verified the signature, so a
/// badly signed request leaves nothing behind.
async fn verified_signer(
    claim: &Claim,
    activity: &ActivityJson,
    data: &FedData,
) -> FedResult<ActorRow> {
    let refused = || FederationError::Unauthorized("the HTTP signature does not verify".into());
    let now = chrono::Utc::now();
    let stored = actors::by_ap_id(&data.db.write, activity.actor.as_str())
        .await?
        .filter(|actor| !actor.local);
    // The `Delete` of an actor by itself: its document now answers 410, so the stored key is the
    // only one there is; it verifies the Delete whatever its age, and this request's copy of the
    // actor is taken as fresh so that nothing refetches it.
    let deletes_itself =
        activity.kind == "Delete" && object_id(&activity.object).as_ref() == Some(&activity.actor);
    if let Some(mut actor) = stored {
        let age = now - actor.fetched_at.unwrap_or(actor.created_at);
        if deletes_itself || age < KEY_TRUSTED_FOR {
            if claim.verify(actor.public_key_pem.as_deref().unwrap_or_default()) {
                if deletes_itself {
                    actor.fetched_at = Some(now);
                }
                return Ok(actor);
            }
            if deletes_itself || age < REFETCH_AFTER_FAILURE {
                return Err(refused());
            }
        }
    }
    let fetched = fetch_object_http::<_, PersonJson>(&activity.actor, data)
        .await
        .map_err(|e| {
            FederationError::Unauthorized(format!("the signing actor could not be fetched: {e}"))
        })?
        .object;
    if fetched.id != activity.actor {
        return Err(FederationError::Unauthorized(
            "the signing actor's document is another actor's".into(),
        ));
    }
    DbPerson::verify(&fetched, &activity.actor, data).await?;
    if !claim.verify(&fetched.public_key.public_key_pem) {
        return Err(refused());
    }
    Ok(DbPerson::from_json(fetched, data).await?.0)
}

/// Any activity, checked and handled by type in one place.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InboxActivity(pub ActivityJson);

#[async_trait]
impl ActivityHandler for InboxActivity {
    type DataType = web::Data<AppState>;
    type Error = FederationError;

    fn id(&self) -> &Url {
        &self.0.id
    }

    fn actor(&self) -> &Url {
        &self.0.actor
    }

    /// Runs after the signature was verified as the actor's: a server speaks only for itself.
    async fn verify(&self, _: &FedData) -> FedResult<()> {
        verify_domains_match(&self.0.id, &self.0.actor).map_err(|_| {
            FederationError::Forbidden(
                "the activity's id is on another server than its actor".into(),
            )
        })
    }

    async fn receive(self, data: &FedData) -> FedResult<()> {
        let activity = self.0;
        let actor = match signer_read_in_this_request(&activity.actor) {
            Some(actor) => actor,
            None => actors::by_ap_id(&data.db.write, activity.actor.as_str())
                .await?
                .ok_or_else(|| FederationError::Unauthorized("unknown actor".into()))?,
        };
        if actor.banned {
            return Err(FederationError::Forbidden(
                "this actor is banned here".into(),
            ));
        }
        // The same activity twice has effect once. The receipt is written after the activity's
        // effects are committed, never before: a receipt first would make a crash in between
        // lose the activity (its retry taken for a duplicate). Two copies arriving at the same
        // moment may both be handled, which the handlers' idempotence makes harmless.
        if actors::received(&data.db.write, activity.id.as_str()).await? {
            tracing::debug!(id = %activity.id, "activity seen before");
            crate::metrics::inbox_activity(&activity.kind, "duplicate", 200);
            return Ok(());
        }
        let result = handle(&activity, &actor, data).await;
        if result.is_ok() {
            // The tag groups of the discussion it is about pass it on to their followers; queued
            // before the receipt, so that a crash in between announces again on the peer's retry
            // rather than never (peers drop the duplicate by the inner activity's id).
            super::announce::after_accepted(&activity, data).await?;
            actors::record_receipt(&data.db.write, activity.id.as_str()).await?;
            crate::metrics::inbox_activity(&activity.kind, "accepted", 200);
            // Pages show it from now on. (Each accepted activity leaves the caches behind: on a
            // busy inbox pages are rendered more often, one rendering per page at a time.)
            data.caches.invalidate();
        }
        result
    }
}

pub(crate) async fn handle(
    activity: &ActivityJson,
    actor: &ActorRow,
    data: &FedData,
) -> FedResult<()> {
    tracing::info!(kind = %activity.kind, id = %activity.id, actor = %activity.actor, "activity received");
    match activity.kind.as_str() {
        "Follow" => follow(activity, actor, data).await,
        "Accept" => accept(activity, actor, data).await,
        "Reject" => reject(activity, actor, data).await,
        "Undo" => undo(activity, actor, data).await,
        "Create" => create(activity, actor, data).await,
        "Update" => update(activity, actor, data).await,
        "Delete" => delete(activity, actor, data).await,
        "Like" => vote(activity, actor, data, 1).await,
        "Dislike" => vote(activity, actor, data, -1).await,
        "Announce" => announce(activity, actor, data).await,
        "Flag" => flag(activity, actor, data).await,
        "QuoteRequest" => quote_request(activity, actor, data).await,
        // Other types (Add, Move, …) are not handled yet; accepting them keeps peers from retrying.
        _ => Ok(()),
    }
}

fn named_object(activity: &ActivityJson) -> FedResult<Url> {
    object_id(&activity.object)
        .ok_or_else(|| FederationError::BadRequest("the activity names no object".into()))
}

/// An embedded object's `actor` must be the activity's actor (an Undo of someone else's Like...).
fn check_embedded_actor(activity: &ActivityJson) -> FedResult<()> {
    let embedded = activity.object.get("actor").and_then(|a| a.as_str());
    match embedded {
        Some(inner) if inner != activity.actor.as_str() => Err(FederationError::Forbidden(
            "the embedded activity belongs to another actor".into(),
        )),
        _ => Ok(()),
    }
}

async fn follow(activity: &ActivityJson, follower: &ActorRow, data: &FedData) -> FedResult<()> {
    let target = named_object(activity)?;
    if let Some(tag) = super::group::tag_of(&target, &data.config.origin()) {
        return super::group::follow(activity, follower, &tag, data).await;
    }
    let Some(followee) = actors::by_ap_id(&data.db.write, target.as_str())
        .await?
        .filter(|p| p.local)
    else {
        return Err(FederationError::NotFound);
    };
    let mut tx = data.db.write.begin().await?;
    actors::add_follow(
        &mut tx,
        follower.id,
        followee.id,
        activity.id.as_str(),
        true,
    )
    .await?;
    // Answered every time: a peer that repeats its Follow never saw our Accept.
    outbox::accept_follow(&mut tx, data, &followee, follower, activity.id.as_str()).await?;
    tx.commit().await?;
    Ok(())
}

async fn accept(activity: &ActivityJson, followee: &ActorRow, data: &FedData) -> FedResult<()> {
    let follow_id = named_object(activity)?;
    if followee.kind == "Group" {
        super::community::accepted(data, followee, &follow_id).await?;
    }
    sqlx::query("update follow set accepted = true where ap_id = $1 and followee_id = $2")
        .bind(follow_id.as_str())
        .bind(followee.id)
        .execute(&data.db.write)
        .await?;
    Ok(())
}

async fn reject(activity: &ActivityJson, followee: &ActorRow, data: &FedData) -> FedResult<()> {
    let follow_id = named_object(activity)?;
    sqlx::query("delete from follow where ap_id = $1 and followee_id = $2")
        .bind(follow_id.as_str())
        .bind(followee.id)
        .execute(&data.db.write)
        .await?;
    Ok(())
}

async fn undo(activity: &ActivityJson, actor: &ActorRow, data: &FedData) -> FedResult<()> {
    check_embedded_actor(activity)?;
    let inner = named_object(activity)?;
    let db = &data.db.write;
    if super::group::undo_follow(activity, actor, data).await? {
        return Ok(());
    }
    // A Follow of one of ours?
    let unfollowed = sqlx::query("delete from follow where ap_id = $1 and follower_id = $2")
        .bind(inner.as_str())
        .bind(actor.id)
        .execute(db)
        .await?
        .rows_affected();
    if unfollowed > 0 {
        return Ok(());
    }
    if object_type(&activity.object) == Some("Follow") {
        // Some servers undo with a fresh id: fall back to the pair.
        if let Some(target) = activity.object.get("object").and_then(object_id) {
            if let Some(followee) = actors::by_ap_id(db, target.as_str()).await? {
                actors::remove_follow(db, actor.id, followee.id).await?;
            }
        }
        return Ok(());
    }
    if object_type(&activity.object) == Some("Delete") {
        return undo_delete(activity, actor, data).await;
    }
    // A vote? Lemmy and PieFed may undo a vote under another id than the one it came with:
    // then the embedded vote's object names what it was on.
    let mut voted = votes::by_ap_id(db, actor.id, inner.as_str())
        .await?
        .map(|v| v.0);
    if voted.is_none() && matches!(object_type(&activity.object), Some("Like" | "Dislike")) {
        if let Some(on) = activity.object.get("object").and_then(object_id) {
            voted = match DbPost::find(db, on.as_str()).await? {
                Some(DbPost::Story(story)) => Some(Target::Story(story.id)),
                Some(DbPost::Comment(comment)) => Some(Target::Comment(comment.id)),
                None => None,
            };
        }
    }
    if let Some(target) = voted {
        let mut tx = db.begin().await?;
        votes::cast(&mut tx, actor.id, target, 0, None).await?;
        tx.commit().await?;
        return Ok(());
    }
    // A boost?
    stories::remove_boost(db, inner.as_str(), actor.id).await?;
    Ok(())
}

/// `Undo` of a `Delete`: the author brings a post back (lien sends it when a moderator restores
/// a removal). Only the post's author, on its home server, may; the post's text is fetched again
/// from there, since a deletion here dropped it.
async fn undo_delete(activity: &ActivityJson, actor: &ActorRow, data: &FedData) -> FedResult<()> {
    let Some(target) = activity.object.get("object").and_then(object_id) else {
        return Err(FederationError::BadRequest(
            "the undone Delete names no object".into(),
        ));
    };
    let db = &data.db.write;
    let Some(post) = DbPost::find(db, target.as_str()).await? else {
        return Ok(());
    };
    if post.is_local() || post.author_id() != actor.id {
        return Err(FederationError::Forbidden(
            "only its author can bring a post back".into(),
        ));
    }
    let fetched =
        activitypub_federation::fetch::fetch_object_http::<_, PostJson>(&target, data).await?;
    let json = fetched.object;
    check_authorship(&json, actor)?;
    if json.id != target {
        return Err(FederationError::BadRequest(
            "the fetched post is another one".into(),
        ));
    }
    let mut tx = db.begin().await?;
    match &post {
        DbPost::Story(story) => {
            stories::untombstone(&mut *tx, story.id).await?;
        }
        DbPost::Comment(comment) => {
            comments::untombstone(&mut tx, comment.id).await?;
        }
    }
    tx.commit().await?;
    DbPost::from_json(json, data).await?;
    Ok(())
}

/// The post an activity carries, whether embedded or named by id (then fetched from its home).
async fn carried_post(activity: &ActivityJson, data: &FedData) -> FedResult<PostJson> {
    if activity.object.is_object() {
        return serde_json::from_value(activity.object.clone())
            .map_err(|e| FederationError::BadRequest(format!("the object is not a post: {e}")));
    }
    let id = named_object(activity)?;
    let fetched =
        activitypub_federation::fetch::fetch_object_http::<_, PostJson>(&id, data).await?;
    Ok(fetched.object)
}

/// A post may only be created or changed by its author, on the author's own server.
pub(crate) fn check_authorship(post: &PostJson, actor: &ActorRow) -> FedResult<()> {
    let author = post.attributed_to.author();
    if author.as_ref().map(Url::as_str) != Some(actor.ap_id.as_str()) {
        return Err(FederationError::Forbidden(
            "the post is attributed to someone else".into(),
        ));
    }
    let actor_id: Url = actor
        .ap_id
        .parse()
        .map_err(|_| FederationError::Forbidden("bad actor id".into()))?;
    verify_domains_match(&post.id, &actor_id).map_err(|_| {
        FederationError::Forbidden("the post lives on another server than its author".into())
    })?;
    Ok(())
}

async fn create(activity: &ActivityJson, actor: &ActorRow, data: &FedData) -> FedResult<()> {
    let mut post = carried_post(activity, data).await?;
    check_authorship(&post, actor)?;
    // A new post to one of our tag groups becomes a story in those tags.
    let groups = match post.in_reply_to {
        None => super::group::posted_to(&mut post, data).await?,
        Some(_) => vec![],
    };
    let db = &data.db.write;
    let parent = match &post.in_reply_to {
        // A reply joins a discussion lien already has; replies to anything else are not ours.
        Some(parent_id) => {
            let Some(parent) = DbPost::find(db, parent_id.as_str()).await? else {
                tracing::debug!(id = %post.id, parent = %parent_id, "reply to an unknown post ignored");
                return mentions_only(&post, actor, data).await;
            };
            // A locked thread takes no new comments, from any server.
            let locked = match &parent {
                DbPost::Story(story) => story.locked_at.is_some() || story.removed_at.is_some(),
                DbPost::Comment(comment) => stories::get(db, comment.story_id)
                    .await?
                    .is_some_and(|s| s.locked_at.is_some() || s.removed_at.is_some()),
            };
            if locked {
                return Err(FederationError::Forbidden(
                    "this thread is locked: it takes no new comments".into(),
                ));
            }
            Some(parent)
        }
        // A new top-level post becomes a story only if it was posted to a tag group here or
        // someone here follows its author.
        None => {
            if groups.is_empty() && !actors::has_local_followers(db, actor.id).await? {
                tracing::debug!(id = %post.id, "post from an actor nobody here follows ignored");
                return mentions_only(&post, actor, data).await;
            }
            None
        }
    };
    let expected: Url = actor
        .ap_id
        .parse()
        .map_err(|_| FederationError::Forbidden("bad actor id".into()))?;
    DbPost::verify(&post, &expected, data).await?;
    // Author and parent are known already: stored without looking them up again.
    let stored = DbPost::store(post, actor, parent.as_ref(), data).await?;
    if let (super::objects::Stored::Story(id), false) = (stored, groups.is_empty()) {
        crate::db::groups::mark_posted_to_group(db, id).await?;
    }
    Ok(())
}

/// A post lien keeps no copy of (its author is followed by nobody here, or it answers something
/// lien does not have): if it is public and mentions local people, they are told, with its text
/// and a link to the original; replying from lien opens it here first. Anything else is dropped.
/// (Not a story: who is mentioned by whom must not decide what lien's front pages show.)
async fn mentions_only(post: &PostJson, actor: &ActorRow, data: &FedData) -> FedResult<()> {
    let public = post.to.iter().chain(&post.cc).any(|a| a.as_str() == PUBLIC);
    let mentioned: Vec<String> = post.mentions().into_iter().map(String::from).collect();
    if !public || mentioned.is_empty() {
        return Ok(());
    }
    let html = crate::markdown::sanitize(&post.html());
    // The original's page, when it is on the author's server (a link elsewhere could be anything).
    let url = post
        .url
        .as_ref()
        .filter(|u| matches!(u.scheme(), "https" | "http") && u.host() == post.id.host())
        .unwrap_or(&post.id);
    let told = notifications::remote_mention(
        &data.db.write,
        post.id.as_str(),
        actor.id,
        url.as_str(),
        &html,
        &mentioned,
    )
    .await?;
    tracing::debug!(id = %post.id, told, "mention from an account nobody here follows");
    Ok(())
}

/// Another server reports posts here (Mastodon's "forward to the remote server"): each local or
/// known story or comment it names becomes a report for the moderators; the accounts it also
/// names are left alone.
async fn flag(activity: &ActivityJson, actor: &ActorRow, data: &FedData) -> FedResult<()> {
    let ids: Vec<String> = match &activity.object {
        serde_json::Value::Array(items) => items
            .iter()
            .filter_map(object_id)
            .map(String::from)
            .collect(),
        other => object_id(other).map(String::from).into_iter().collect(),
    };
    // Mastodon gives the reason in `content`, Lemmy in `summary`.
    let reason = activity
        .content
        .as_deref()
        .or_else(|| activity.extra("summary"))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .unwrap_or("reported from another server");
    let reason: String = reason.chars().take(1000).collect();
    let db = &data.db.write;
    for id in ids {
        let (story, comment) = match DbPost::find(db, &id).await? {
            Some(DbPost::Story(story)) => (Some(story.id), None),
            Some(DbPost::Comment(comment)) => (None, Some(comment.id)),
            None => continue,
        };
        moderation::report(db, actor.id, story, comment, &reason).await?;
    }
    Ok(())
}

async fn update(activity: &ActivityJson, actor: &ActorRow, data: &FedData) -> FedResult<()> {
    let kind = object_type(&activity.object).unwrap_or_default();
    if matches!(
        kind,
        "Person" | "Service" | "Application" | "Group" | "Organization"
    ) {
        let person: PersonJson = serde_json::from_value(activity.object.clone())
            .map_err(|e| FederationError::BadRequest(format!("not an actor: {e}")))?;
        if person.id.as_str() != actor.ap_id {
            return Err(FederationError::Forbidden(
                "an actor can only update itself".into(),
            ));
        }
        let expected = person.id.clone();
        DbPerson::verify(&person, &expected, data).await?;
        DbPerson::from_json(person, data).await?;
        return Ok(());
    }
    let mut post = carried_post(activity, data).await?;
    check_authorship(&post, actor)?;
    // An edit of a post to a tag group keeps it in that group's tag.
    if post.in_reply_to.is_none() {
        super::group::posted_to(&mut post, data).await?;
    }
    let Some(existing) = DbPost::find(&data.db.write, post.id.as_str()).await? else {
        // An edit of something we never had: only the mentions it makes are kept up to date.
        return mentions_only(&post, actor, data).await;
    };
    if existing.author_id() != actor.id {
        return Err(FederationError::Forbidden(
            "only its author can edit a post".into(),
        ));
    }
    DbPost::from_json(post, data).await?;
    Ok(())
}

async fn delete(activity: &ActivityJson, actor: &ActorRow, data: &FedData) -> FedResult<()> {
    let target = named_object(activity)?;
    let db = &data.db.write;
    if target.as_str() == actor.ap_id {
        // The account is gone: so is what it wrote here.
        let mut tx = db.begin().await?;
        sqlx::query(
            "update story set deleted_at = now() where author_id = $1 and deleted_at is null",
        )
        .bind(actor.id)
        .execute(&mut *tx)
        .await?;
        let comment_ids: Vec<i64> = sqlx::query_scalar(
            "select id from comment where author_id = $1 and deleted_at is null",
        )
        .bind(actor.id)
        .fetch_all(&mut *tx)
        .await?;
        for id in comment_ids {
            comments::tombstone(&mut tx, id).await?;
        }
        sqlx::query("delete from follow where follower_id = $1 or followee_id = $1")
            .bind(actor.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("update person set deleted_at = coalesce(deleted_at, now()) where id = $1")
            .bind(actor.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        return Ok(());
    }
    let Some(post) = DbPost::find(db, target.as_str()).await? else {
        // A post that quoted one of ours: its quote no longer counts.
        quotes::quote_deleted(db, target.as_str(), actor.id).await?;
        return Ok(());
    };
    if post.author_id() != actor.id {
        return Err(FederationError::Forbidden(
            "only its author can delete a post".into(),
        ));
    }
    let mut tx = db.begin().await?;
    match post {
        DbPost::Story(story) => {
            stories::tombstone(&mut *tx, story.id).await?;
        }
        DbPost::Comment(comment) => {
            comments::tombstone(&mut tx, comment.id).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

async fn vote(
    activity: &ActivityJson,
    actor: &ActorRow,
    data: &FedData,
    value: i16,
) -> FedResult<()> {
    let target = named_object(activity)?;
    let db = &data.db.write;
    let Some(post) = DbPost::find(db, target.as_str()).await? else {
        return Ok(());
    };
    let target = match &post {
        DbPost::Story(story) => Target::Story(story.id),
        DbPost::Comment(comment) => Target::Comment(comment.id),
    };
    let mut tx = db.begin().await?;
    votes::cast(&mut tx, actor.id, target, value, Some(activity.id.as_str())).await?;
    tx.commit().await?;
    Ok(())
}

/// A `QuoteRequest` (FEP-044f, as Mastodon 4.5 sends it): someone quotes a local story or
/// comment. Public posts may be quoted by anyone, so it is answered with an `Accept` whose
/// `result` is a `QuoteAuthorization` lien serves; a post that is gone gets a `Reject`. The
/// quoting post (`instrument`, embedded or fetched) must be the requester's, on its server, and
/// must quote exactly the requested post. A story counts its quotes as it counts boosts.
async fn quote_request(activity: &ActivityJson, actor: &ActorRow, data: &FedData) -> FedResult<()> {
    let target = named_object(activity)?;
    let db = &data.db.write;
    let Some(post) = DbPost::find(db, target.as_str())
        .await?
        .filter(DbPost::is_local)
    else {
        return Err(FederationError::NotFound);
    };
    let instrument = match &activity.instrument {
        Some(serde_json::Value::Object(_)) => activity.instrument.clone().unwrap_or_default(),
        Some(serde_json::Value::String(id)) => {
            let id: Url = id
                .parse()
                .map_err(|_| FederationError::BadRequest("the instrument is not a URL".into()))?;
            // Only the requester's own server is asked for it.
            verify_domains_match(&id, &activity.actor).map_err(|_| {
                FederationError::Forbidden("the quoting post lives on another server".into())
            })?;
            let fetched =
                activitypub_federation::fetch::fetch_object_http::<_, serde_json::Value>(&id, data)
                    .await?
                    .object;
            if object_id(&fetched).as_ref() != Some(&id) {
                return Err(FederationError::BadRequest(
                    "the fetched quote is another post".into(),
                ));
            }
            fetched
        }
        _ => {
            return Err(FederationError::BadRequest(
                "a quote request names the quoting post as its instrument".into(),
            ))
        }
    };
    let quote: PostJson = serde_json::from_value(instrument.clone())
        .map_err(|e| FederationError::BadRequest(format!("the instrument is not a post: {e}")))?;
    check_authorship(&quote, actor)?;
    let quotes_target = ["quote", "quoteUri", "quoteUrl", "_misskey_quote"]
        .iter()
        .any(|key| instrument.get(key).and_then(|q| q.as_str()) == Some(target.as_str()));
    if !quotes_target {
        return Err(FederationError::BadRequest(
            "the instrument does not quote the requested post".into(),
        ));
    }
    let author = actors::by_id(db, post.author_id())
        .await?
        .ok_or(FederationError::NotFound)?;
    let mut tx = db.begin().await?;
    if post.is_deleted() {
        outbox::quote_answered(&mut tx, data, &author, actor, activity, &quote.id, None).await?;
    } else {
        let quoted = match &post {
            DbPost::Story(story) => quotes::Quoted::Story(story.id),
            DbPost::Comment(comment) => quotes::Quoted::Comment(comment.id),
        };
        let id = quotes::authorize(
            db,
            &quoted,
            actor.id,
            activity.id.as_str(),
            quote.id.as_str(),
        )
        .await
        .map_err(|e| match e {
            sqlx::Error::RowNotFound => {
                FederationError::Forbidden("that post quotes something else here".into())
            }
            e => e.into(),
        })?;
        outbox::quote_answered(&mut tx, data, &author, actor, activity, &quote.id, Some(id))
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn announce(activity: &ActivityJson, actor: &ActorRow, data: &FedData) -> FedResult<()> {
    if actor.kind == "Group" {
        // A community passing on what was done in it (FEP-1b12), not a boost.
        return Box::pin(super::community::announced(activity, actor, data)).await;
    }
    let target = named_object(activity)?;
    let db = &data.db.write;
    if let Some(DbPost::Story(story)) = DbPost::find(db, target.as_str()).await? {
        stories::add_boost(db, activity.id.as_str(), actor.id, story.id).await?;
    }
    Ok(())
}
