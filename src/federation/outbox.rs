//! Outgoing activities: what each local change sends and to whom. Every function here runs inside
//! the change's transaction and only queues (see `delivery`), so a change and its deliveries commit
//! together or not at all, and no request waits on another server.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use sqlx::{Postgres, Transaction};
use url::Url;

use super::{
    community,
    delivery::{self, Signer},
    objects::{post_json_for, reply_target, DbPost},
    peers,
    protocol::{context, PUBLIC},
    FedResult,
};
use crate::{
    app::AppState,
    db::actors::{self, ActorRow},
};

/// A fresh activity id under this instance: `P/activities/{uuid}`.
pub fn new_activity_id(origin: &str) -> String {
    format!("{origin}/activities/{}", uuid::Uuid::new_v4())
}

fn with_context(mut activity: Value) -> Value {
    if let Value::Object(map) = &mut activity {
        map.insert("@context".to_owned(), context());
    }
    activity
}

fn parse_inboxes(inboxes: impl IntoIterator<Item = String>) -> Vec<Url> {
    inboxes.into_iter().filter_map(|i| i.parse().ok()).collect()
}

/// Queues `activity` (given its context here) for `inboxes`, signed by `signer`.
pub(crate) async fn queue(
    tx: &mut Transaction<'_, Postgres>,
    state: &AppState,
    activity: Value,
    signer: Signer,
    inboxes: Vec<Url>,
) -> FedResult<()> {
    if state.config.federation == crate::config::Switch::Off || inboxes.is_empty() {
        return Ok(());
    }
    delivery::enqueue(
        tx,
        &with_context(activity),
        signer,
        &inboxes,
        &state.config.host(),
    )
    .await?;
    Ok(())
}

/// Queues an activity from `sender` to one person's own inbox (follows go to the person, not to a
/// shared inbox).
async fn queue_to_person(
    tx: &mut Transaction<'_, Postgres>,
    state: &AppState,
    activity: Value,
    sender: &ActorRow,
    recipient: &ActorRow,
) -> FedResult<()> {
    let inbox = recipient.inbox_url.clone().into_iter();
    queue(
        tx,
        state,
        activity,
        Signer::Person(sender.id),
        parse_inboxes(inbox),
    )
    .await
}

/// Who hears about a post: its author's followers, and for a comment the people it answers (the
/// parent's author and the story's author, wherever they are).
async fn audience(tx: &mut Transaction<'_, Postgres>, post: &DbPost) -> FedResult<Vec<Url>> {
    let mut inboxes = actors::follower_inboxes(&mut **tx, post.author_id()).await?;
    if let DbPost::Comment(comment) = post {
        let target = reply_target(tx, comment).await?;
        inboxes.extend(actors::inbox_of(&target.author));
        let story = crate::db::stories::get(&mut **tx, comment.story_id).await?;
        if let Some(story) = story {
            if let Some(author) = actors::by_id(&mut **tx, story.author_id).await? {
                inboxes.extend(actors::inbox_of(&author));
            }
        }
    }
    Ok(parse_inboxes(inboxes))
}

async fn author_of(tx: &mut Transaction<'_, Postgres>, post: &DbPost) -> FedResult<ActorRow> {
    actors::by_id(&mut **tx, post.author_id())
        .await?
        .ok_or(super::FederationError::NotFound)
}

/// Queues an activity about a post, signed by its author, for everyone who heard of the post.
async fn to_audience(
    tx: &mut Transaction<'_, Postgres>,
    state: &AppState,
    post: &DbPost,
    author: &ActorRow,
    mut activity: Value,
) -> FedResult<()> {
    let mut inboxes = audience(tx, post).await?;
    // In a remote community: to the community too, which announces it to everyone.
    if let Some((group, inbox)) = community::addressee(tx, post.story_id()).await? {
        community::address_to(&mut activity, &group);
        inboxes.push(inbox);
    }
    queue(tx, state, activity, Signer::Person(author.id), inboxes).await
}

/// A local post was created (`Create`) or edited (`Update`). A story goes to each server in the
/// variant of its `Page` that reads well there (`peers`), under the same activity id.
pub async fn post_published(
    tx: &mut Transaction<'_, Postgres>,
    state: &AppState,
    post: &DbPost,
    kind: &str,
) -> FedResult<()> {
    let origin = state.config.origin();
    let author = author_of(tx, post).await?;
    let activity_id = new_activity_id(&origin);
    let mut inboxes = audience(tx, post).await?;
    // In a remote community: to the community too, which announces it to everyone.
    let community = community::addressee(tx, post.story_id()).await?;
    if let Some((_, inbox)) = &community {
        inboxes.push(inbox.clone());
    }
    let mut by_software: BTreeMap<Option<String>, Vec<Url>> = BTreeMap::new();
    if matches!(post, DbPost::Story(_)) {
        let hosts: Vec<String> = inboxes.iter().map(delivery::host_of).collect();
        let known = peers::software_of(&mut **tx, &hosts).await?;
        for (inbox, host) in inboxes.into_iter().zip(hosts) {
            by_software
                .entry(known.get(&host).cloned())
                .or_default()
                .push(inbox);
        }
    } else {
        by_software.insert(None, inboxes);
    }
    // One activity id, and for each kind of server the shape of the post it reads best; the
    // groups announce the canonical one.
    let mut canonical = None;
    for (software, inboxes) in by_software {
        let object =
            post_json_for(tx, post, &origin, &state.config.host(), software.as_deref()).await?;
        let mut activity = json!({
            "id": activity_id,
            "type": kind,
            "actor": author.ap_id,
            "object": object,
            "to": object.to,
            "cc": object.cc,
            "published": chrono::Utc::now(),
        });
        if let Some((group, _)) = &community {
            community::address_to(&mut activity, group);
        }
        if software.is_none() {
            canonical = Some(activity.clone());
        }
        queue(tx, state, activity, Signer::Person(author.id), inboxes).await?;
    }
    let canonical = match canonical {
        Some(activity) => activity,
        None => {
            let object = post_json_for(tx, post, &origin, &state.config.host(), None).await?;
            json!({
                "id": activity_id,
                "type": kind,
                "actor": author.ap_id,
                "object": object,
                "to": object.to,
                "cc": object.cc,
                "published": chrono::Utc::now(),
            })
        }
    };
    let new_story = kind == "Create" && matches!(post, DbPost::Story(_));
    super::announce::about_post(tx, state, post, &canonical, new_story).await
}

/// The preview of a local story's link is ready: `Update(Page)`, now with the description and
/// thumbnail, to everyone who got its `Create` (its author's followers), unless the story is gone.
/// Chosen over holding the `Create` back: a preview can take minutes (retries after 1 and 5
/// minutes) and a story should not wait on another site; Mastodon, which builds its own card and
/// ignores a `Page`'s `content`, takes the `Update` as no significant change and marks nothing.
pub async fn preview_ready(state: &AppState, story_id: i64) -> FedResult<()> {
    let mut tx = state.db.write.begin().await?;
    let Some(story) = crate::db::stories::get(&mut *tx, story_id).await? else {
        return Ok(());
    };
    if !story.local || story.deleted_at.is_some() || story.removed_at.is_some() {
        return Ok(());
    }
    post_published(&mut tx, state, &DbPost::Story(story), "Update").await?;
    tx.commit().await?;
    Ok(())
}

/// A quote request for `author`'s post, answered (FEP-044f, the shapes Mastodon 4.5's `accept.rb`
/// expects): `Accept` by the quoted post's author, embedding the request by ids, with the
/// authorization `P/quote_authorizations/{id}` as `result`; or, without one, `Reject`. Sent to the
/// requester's own inbox.
pub async fn quote_answered(
    tx: &mut Transaction<'_, Postgres>,
    state: &AppState,
    author: &ActorRow,
    quoter: &ActorRow,
    request: &super::protocol::ActivityJson,
    quote: &Url,
    authorization: Option<i64>,
) -> FedResult<()> {
    let origin = state.config.origin();
    let mut activity = json!({
        "id": new_activity_id(&origin),
        "type": if authorization.is_some() { "Accept" } else { "Reject" },
        "actor": author.ap_id,
        "to": [quoter.ap_id],
        "object": {
            "id": request.id,
            "type": "QuoteRequest",
            "actor": request.actor,
            "object": request.object.as_str().map(str::to_owned)
                .or_else(|| super::protocol::object_id(&request.object).map(String::from)),
            "instrument": quote,
        },
    });
    if let Some(id) = authorization {
        activity["result"] = json!(authorization_id(&origin, id));
    }
    queue_to_person(tx, state, activity, author, quoter).await
}

/// The id of a quote authorization lien serves.
pub fn authorization_id(origin: &str, id: i64) -> String {
    format!("{origin}/quote_authorizations/{id}")
}

/// A local post is going: the quotes it authorized are revoked, each with a `Delete` of its
/// `QuoteAuthorization` to the quoter (Mastodon's `delete.rb` `revoke_quote`).
async fn quotes_revoked(
    tx: &mut Transaction<'_, Postgres>,
    state: &AppState,
    post: &DbPost,
    author: &ActorRow,
) -> FedResult<()> {
    let quoted = match post {
        DbPost::Story(story) => crate::db::quotes::Quoted::Story(story.id),
        DbPost::Comment(comment) => crate::db::quotes::Quoted::Comment(comment.id),
    };
    let origin = state.config.origin();
    for (id, quoter_id) in crate::db::quotes::live_for(&mut **tx, &quoted).await? {
        let Some(quoter) = actors::by_id(&mut **tx, quoter_id).await? else {
            continue;
        };
        let activity = json!({
            "id": new_activity_id(&origin),
            "type": "Delete",
            "actor": author.ap_id,
            "to": [quoter.ap_id],
            "object": { "id": authorization_id(&origin, id), "type": "QuoteAuthorization" },
        });
        queue_to_person(tx, state, activity, author, &quoter).await?;
    }
    Ok(())
}

/// A local post was deleted: `Delete` with a `Tombstone`, to everyone who heard of it, and
/// announced by its story's groups.
pub async fn post_deleted(
    tx: &mut Transaction<'_, Postgres>,
    state: &AppState,
    post: &DbPost,
) -> FedResult<()> {
    let activity = author_delete(tx, state, post).await?;
    super::announce::about_post(tx, state, post, &activity, false).await
}

/// Queues the author's `Delete` of a local post for everyone who heard of it; returns it.
async fn author_delete(
    tx: &mut Transaction<'_, Postgres>,
    state: &AppState,
    post: &DbPost,
) -> FedResult<Value> {
    let origin = state.config.origin();
    let author = author_of(tx, post).await?;
    let activity = json!({
        "id": new_activity_id(&origin),
        "type": "Delete",
        "actor": author.ap_id,
        "object": { "id": post.ap_id(), "type": "Tombstone" },
        "to": [PUBLIC],
    });
    quotes_revoked(tx, state, post, &author).await?;
    to_audience(tx, state, post, &author, activity.clone()).await?;
    Ok(activity)
}

/// A removed local post was restored by a moderator: `Undo` of the `Delete` its removal sent, to
/// the same audience, as Lemmy does. Peers bring it back and fetch its text again. The embedded
/// `Delete` gets a fresh id (the first one was not kept); receivers match it by its object.
pub async fn post_restored(
    tx: &mut Transaction<'_, Postgres>,
    state: &AppState,
    post: &DbPost,
) -> FedResult<()> {
    let activity = author_undo_delete(tx, state, post).await?;
    super::announce::about_post(tx, state, post, &activity, false).await
}

async fn author_undo_delete(
    tx: &mut Transaction<'_, Postgres>,
    state: &AppState,
    post: &DbPost,
) -> FedResult<Value> {
    let origin = state.config.origin();
    let author = author_of(tx, post).await?;
    let activity = json!({
        "id": new_activity_id(&origin),
        "type": "Undo",
        "actor": author.ap_id,
        "object": {
            "id": new_activity_id(&origin),
            "type": "Delete",
            "actor": author.ap_id,
            "object": post.ap_id(),
            "to": [PUBLIC],
        },
        "to": [PUBLIC],
    });
    to_audience(tx, state, post, &author, activity.clone()).await?;
    Ok(activity)
}

/// A moderator here removed a post (`restored` false) or brought it back. A local post leaves (or
/// comes back to) the servers that have it as its author's `Delete` (or the `Undo` of it), which
/// every peer understands. The story's groups announce the removal in the form Lemmy, PieFed and
/// Mbin take from a community's moderator: a `Delete` by the moderator with the reason in
/// `summary` (its `Undo` to restore). Lemmy accepts it because the moderator is in the group's
/// moderators collection and on the group's server. This also reaches remote posts made to a
/// group here (a Lemmy user's post to `!rust@here`).
pub async fn post_moderated(
    tx: &mut Transaction<'_, Postgres>,
    state: &AppState,
    moderator: &ActorRow,
    post: &DbPost,
    reason: &str,
    restored: bool,
) -> FedResult<()> {
    if post.is_local() {
        match restored {
            false => author_delete(tx, state, post).await?,
            true => author_undo_delete(tx, state, post).await?,
        };
    }
    let origin = state.config.origin();
    let group = crate::db::groups::story_group_tags(&mut **tx, post.story_id())
        .await?
        .into_iter()
        .next()
        .map(|tag| format!("{origin}/t/{tag}"));
    let Some(group) = group else {
        return Ok(());
    };
    let removal = json!({
        "id": new_activity_id(&origin),
        "type": "Delete",
        "actor": moderator.ap_id,
        "object": post.ap_id(),
        "summary": reason,
        "to": [PUBLIC],
        "cc": [group],
        "audience": group,
    });
    let activity = match restored {
        false => removal,
        true => json!({
            "id": new_activity_id(&origin),
            "type": "Undo",
            "actor": moderator.ap_id,
            "object": removal,
            "to": [PUBLIC],
            "cc": [group],
            "audience": group,
        }),
    };
    super::announce::about_post(tx, state, post, &activity, false).await
}

/// A local person was banned (or the ban lifted): their posts leave (or come back to) the
/// servers that have them, as a moderator's removal (or restore) of each would do. Posts already
/// deleted or removed on their own are left as they are. Nothing for a remote person: their
/// content is only hidden here.
pub async fn ban_changed(
    tx: &mut Transaction<'_, Postgres>,
    state: &AppState,
    person_id: i64,
    banned: bool,
) -> FedResult<()> {
    let stories = crate::db::stories::live_local_by(&mut **tx, person_id).await?;
    let comments = crate::db::comments::live_local_by(&mut **tx, person_id).await?;
    let posts = (stories.into_iter().map(DbPost::Story))
        .chain(comments.into_iter().map(DbPost::Comment))
        .collect::<Vec<_>>();
    for post in &posts {
        if banned {
            post_deleted(tx, state, post).await?;
        } else {
            post_restored(tx, state, post).await?;
        }
    }
    Ok(())
}

/// A local person voted: withdraw the previous vote (`Undo`) if there was one, then send the new
/// one (`Like` or `Dislike`, under the id stored with the vote) to the post's author when remote;
/// either way the story's groups announce them to their groups-aware followers.
pub async fn vote_changed(
    tx: &mut Transaction<'_, Postgres>,
    state: &AppState,
    voter: &ActorRow,
    post: &DbPost,
    value: i16,
    new_ap_id: Option<&str>,
    old: (i16, Option<String>),
) -> FedResult<()> {
    let author = actors::by_id(&mut **tx, post.author_id()).await?;
    let mut inboxes = parse_inboxes(author.as_ref().and_then(actors::inbox_of));
    // On a remote community's post: to the community too, which announces it.
    let community = community::addressee(tx, post.story_id()).await?;
    if let Some((_, inbox)) = &community {
        inboxes.push(inbox.clone());
    }
    let address = |mut activity: Value| {
        if let Some((group, _)) = &community {
            community::address_to(&mut activity, group);
        }
        activity
    };
    let origin = state.config.origin();
    let kind = |v: i16| if v > 0 { "Like" } else { "Dislike" };
    let (old_value, old_ap_id) = old;
    if old_value != 0 && old_value != value {
        if let Some(old_ap_id) = old_ap_id {
            let undo = address(json!({
                "id": new_activity_id(&origin),
                "type": "Undo",
                "actor": voter.ap_id,
                "object": { "id": old_ap_id, "type": kind(old_value), "actor": voter.ap_id, "object": post.ap_id() },
            }));
            queue(
                tx,
                state,
                undo.clone(),
                Signer::Person(voter.id),
                inboxes.clone(),
            )
            .await?;
            super::announce::about_post(tx, state, post, &undo, false).await?;
        }
    }
    if value != 0 && value != old_value {
        if let Some(id) = new_ap_id {
            let vote = address(
                json!({ "id": id, "type": kind(value), "actor": voter.ap_id, "object": post.ap_id() }),
            );
            queue(tx, state, vote.clone(), Signer::Person(voter.id), inboxes).await?;
            super::announce::about_post(tx, state, post, &vote, false).await?;
        }
    }
    Ok(())
}

/// A local person follows a remote actor: `Follow`, answered later by `Accept`.
pub async fn follow(
    tx: &mut Transaction<'_, Postgres>,
    state: &AppState,
    follower: &ActorRow,
    followee: &ActorRow,
    follow_id: &str,
) -> FedResult<()> {
    let activity = follow_json(follow_id, follower, followee);
    queue_to_person(tx, state, activity, follower, followee).await
}

/// A `Follow` by ids only: what we send, and how `Undo` and `Accept` embed it (Mastodon matches
/// the embedded one by these fields).
fn follow_json(follow_id: &str, follower: &ActorRow, followee: &ActorRow) -> Value {
    json!({ "id": follow_id, "type": "Follow", "actor": follower.ap_id, "object": followee.ap_id })
}

/// A local person stops following a remote actor: `Undo` of the `Follow`.
pub async fn unfollow(
    tx: &mut Transaction<'_, Postgres>,
    state: &AppState,
    follower: &ActorRow,
    followee: &ActorRow,
    follow_id: &str,
) -> FedResult<()> {
    let activity = json!({
        "id": new_activity_id(&state.config.origin()),
        "type": "Undo",
        "actor": follower.ap_id,
        "object": follow_json(follow_id, follower, followee),
    });
    queue_to_person(tx, state, activity, follower, followee).await
}

/// A remote actor followed a local person: `Accept`, embedding the `Follow` by ids only (what
/// Mastodon expects).
pub async fn accept_follow(
    tx: &mut Transaction<'_, Postgres>,
    state: &AppState,
    followee: &ActorRow,
    follower: &ActorRow,
    follow_id: &str,
) -> FedResult<()> {
    let activity = json!({
        "id": new_activity_id(&state.config.origin()),
        "type": "Accept",
        "actor": followee.ap_id,
        "object": follow_json(follow_id, follower, followee),
        "to": [follower.ap_id],
    });
    queue_to_person(tx, state, activity, followee, follower).await
}

/// A local account was deleted: `Delete` of the actor, signed by it, to its followers and to every
/// server lien knows (any of them may hold its posts, and peers such as Mastodon and lien drop an
/// actor's posts when it is deleted). Queued before the account's follows go, in the deletion's
/// transaction; the person row stays, so its key signs the deliveries.
pub async fn account_deleted(
    tx: &mut Transaction<'_, Postgres>,
    state: &AppState,
    person: &ActorRow,
) -> FedResult<()> {
    let mut inboxes = actors::follower_inboxes(&mut **tx, person.id).await?;
    inboxes.extend(actors::peer_inboxes(&mut **tx).await?);
    let activity = json!({
        "id": new_activity_id(&state.config.origin()),
        "type": "Delete",
        "actor": person.ap_id,
        "object": person.ap_id,
        "to": [PUBLIC],
    });
    queue(
        tx,
        state,
        activity,
        Signer::Person(person.id),
        parse_inboxes(inboxes),
    )
    .await
}

/// A report on a remote post, forwarded to the post's home server as Mastodon does it: a `Flag`
/// by the instance actor (so the reporter stays private), naming the author and the post, with the
/// reason as `content`. False when the post is local or its author has no inbox.
pub async fn report_forwarded(
    tx: &mut Transaction<'_, Postgres>,
    state: &AppState,
    post: &DbPost,
    reason: &str,
) -> FedResult<bool> {
    if post.is_local() {
        return Ok(false);
    }
    let Some(author) = actors::by_id(&mut **tx, post.author_id()).await? else {
        return Ok(false);
    };
    let Some(inbox) = actors::inbox_of(&author) else {
        return Ok(false);
    };
    let origin = state.config.origin();
    let activity = json!({
        "id": new_activity_id(&origin),
        "type": "Flag",
        "actor": format!("{origin}/actor"),
        "object": [author.ap_id, post.ap_id()],
        "content": reason,
        "to": [author.ap_id],
    });
    queue(
        tx,
        state,
        activity,
        Signer::Instance,
        parse_inboxes([inbox]),
    )
    .await?;
    Ok(true)
}
