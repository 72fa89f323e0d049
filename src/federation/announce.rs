//! What a tag group sends (FEP-1b12). Every activity accepted about a post in one of its stories'
//! discussions (a new story, a comment, an edit, a deletion, a vote, a removal), whether made here
//! or received, is announced by the group to its followers: wrapped unchanged in an `Announce`
//! signed by the group for groups-aware servers (Lemmy, PieFed, Mbin, lien...), and for the others
//! (Mastodon...) only new stories, as an `Announce` of the story's id, which they show as a boost.
//! Nothing per comment or vote reaches a Mastodon timeline (Lemmy floods them: Lemmy #3603).

use std::collections::BTreeMap;

use serde_json::{json, Value};
use sqlx::{Postgres, Transaction};
use url::Url;

use super::{
    delivery::Signer,
    group::group_id,
    objects::DbPost,
    outbox::{new_activity_id, queue},
    protocol::{object_id, ActivityJson, PUBLIC},
    FedData, FedResult,
};
use crate::{
    app::AppState,
    db::{groups, stories},
};

/// The story whose discussion a post belongs to.
async fn story_of(
    tx: &mut Transaction<'_, Postgres>,
    post: &DbPost,
) -> FedResult<Option<stories::Story>> {
    Ok(match post {
        DbPost::Story(story) => Some(story.clone()),
        DbPost::Comment(comment) => stories::get(&mut **tx, comment.story_id).await?,
    })
}

/// Announces `activity` (about `post`, as its actor sent it) from the groups of the post's story.
/// `new_story` when the activity creates the story: only then do other servers get a boost.
pub async fn about_post(
    tx: &mut Transaction<'_, Postgres>,
    state: &AppState,
    post: &DbPost,
    activity: &Value,
    new_story: bool,
) -> FedResult<()> {
    let Some(story) = story_of(tx, post).await? else {
        return Ok(());
    };
    let tags = groups::story_group_tags(&mut **tx, story.id).await?;
    if tags.is_empty() {
        return Ok(());
    }
    // Each inbox hears of an activity once, from the first of the story's groups it follows.
    let mut first: BTreeMap<String, (usize, bool)> = BTreeMap::new();
    for (tag, inbox, aware) in groups::follower_inboxes(&mut **tx, &tags).await? {
        let rank = tags.iter().position(|t| *t == tag).unwrap_or(usize::MAX);
        let entry = first.entry(inbox).or_insert((rank, aware));
        if rank < entry.0 {
            *entry = (rank, aware);
        }
    }
    let mut inner = activity.clone();
    if let Value::Object(map) = &mut inner {
        map.remove("@context");
    }
    let origin = state.config.origin();
    for (rank, tag) in tags.iter().enumerate() {
        let (mut aware, mut others) = (Vec::new(), Vec::new());
        for (inbox, (r, is_aware)) in &first {
            let Ok(url) = inbox.parse::<Url>() else {
                continue;
            };
            if *r != rank {
                continue;
            }
            // The actor's own server gets it too: Lemmy 1.0 takes that echo as the sign that
            // its post reached the group (`federation_pending`); 0.19 answers it with a 4xx,
            // which delivery takes as final.
            if *is_aware {
                aware.push(url);
            } else {
                others.push(url);
            }
        }
        let group = group_id(&origin, tag)?;
        let followers = format!("{group}/followers");
        if !aware.is_empty() {
            let announce = json!({
                "id": new_activity_id(&origin),
                "type": "Announce",
                "actor": group,
                "object": inner,
                "to": [PUBLIC],
                "cc": [followers],
                "audience": group,
            });
            queue(tx, state, announce, Signer::Group(tag.clone()), aware).await?;
        }
        if new_story && !others.is_empty() {
            let boost = json!({
                "id": new_activity_id(&origin),
                "type": "Announce",
                "actor": group,
                "object": story.ap_id,
                "to": [PUBLIC],
                "cc": [followers],
                "published": chrono::Utc::now(),
            });
            queue(tx, state, boost, Signer::Group(tag.clone()), others).await?;
        }
    }
    Ok(())
}

/// After a received activity was accepted: the groups of the post it is about announce it.
/// Announces, actors and anything not about a known post are left alone.
pub async fn after_receipt(activity: &ActivityJson, data: &FedData) -> FedResult<()> {
    let post_id = match activity.kind.as_str() {
        "Create" | "Update" | "Delete" | "Like" | "Dislike" => object_id(&activity.object),
        "Undo" => activity.object.get("object").and_then(object_id),
        _ => None,
    };
    let Some(post_id) = post_id else {
        return Ok(());
    };
    let Some(post) = DbPost::find(&data.db.write, post_id.as_str()).await? else {
        return Ok(());
    };
    let new_story = activity.kind == "Create" && matches!(post, DbPost::Story(_));
    let raw = serde_json::to_value(activity).map_err(anyhow::Error::from)?;
    let mut tx = data.db.write.begin().await?;
    about_post(&mut tx, data, &post, &raw, new_story).await?;
    tx.commit().await?;
    Ok(())
}
