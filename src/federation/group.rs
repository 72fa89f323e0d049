//! lien's tags as federated groups (FEP-1b12): every tag in use is a `Group` actor at `P/t/{tag}`
//! (the tag page for browsers), with an inbox, an outbox of its newest stories, followers and
//! moderators collections, and a key pair of its own. Lemmy, PieFed and Mbin users subscribe to
//! `!tag@host`, Mastodon users follow `@tag@host`; a follow is accepted at once. What a group
//! sends is in `announce`.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use actix_web::{guard, web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use url::Url;

use super::{
    delivery::Signer,
    http::{activity_json, wants_activity_json},
    inbox::{self, MAX_ACTIVITY_BYTES},
    objects::{post_json, DbPost},
    outbox::new_activity_id,
    protocol::{context, object_id, ActivityJson, OrderedCollection, PostJson, PUBLIC},
    FedData, FedResult, FederationError,
};
use crate::{
    app::AppState,
    config::Switch,
    db::{
        actors::ActorRow,
        groups::{self, TagGroup},
        stories,
    },
};

/// The group routes, registered before the HTML ones: `GET P/t/{tag}` answers the `Group` only
/// to ActivityPub clients; a browser gets the tag page.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/t/{tag}")
            .guard(guard::fn_guard(wants_activity_json))
            .route(web::get().to(group_actor)),
    )
    .service(
        web::resource("/t/{tag}/inbox")
            .app_data(web::PayloadConfig::new(MAX_ACTIVITY_BYTES))
            .route(web::post().to(group_inbox)),
    )
    .route("/t/{tag}/outbox", web::get().to(group_outbox))
    .route("/t/{tag}/followers", web::get().to(group_followers))
    .route("/t/{tag}/moderators", web::get().to(group_moderators))
    .route("/s/{id}/context", web::get().to(story_context));
}

/// A story's discussion as a collection of every post in it, story first, then its comments
/// oldest first (FEP-7888's `context`, answered in FEP-f228's collection-of-posts form, as Lemmy
/// and NodeBB serve it): any peer can backfill the whole thread from here.
async fn story_context(path: web::Path<i64>, data: FedData) -> FedResult<HttpResponse> {
    if data.config.federation == Switch::Off {
        return Err(FederationError::NotFound);
    }
    let story = stories::get(&data.db.write, path.into_inner())
        .await?
        .filter(|s| s.local && s.deleted_at.is_none() && s.removed_at.is_none())
        .ok_or(FederationError::NotFound)?;
    let author = crate::db::actors::by_id(&data.db.read, story.author_id)
        .await?
        .ok_or(FederationError::NotFound)?;
    let mut items = vec![Value::String(story.ap_id.clone())];
    items.extend(
        groups::discussion_comment_ids(&data.db.read, story.id)
            .await?
            .into_iter()
            .map(Value::String),
    );
    activity_json(&json!({
        "@context": context(),
        "type": "OrderedCollection",
        "id": format!("{}/context", story.ap_id),
        "attributedTo": author.ap_id,
        "totalItems": items.len(),
        "orderedItems": items,
    }))
}

/// A tag group's id: `P/t/{tag}`.
pub fn group_id(origin: &str, tag: &str) -> anyhow::Result<Url> {
    Ok(format!("{origin}/t/{tag}").parse()?)
}

/// The tag a URL names when it is one of this instance's groups (`P/t/{tag}`), whatever its case.
pub fn tag_of(url: &Url, origin: &str) -> Option<String> {
    let tag = url.as_str().strip_prefix(origin)?.strip_prefix("/t/")?;
    let tag = tag.to_lowercase();
    is_tag_name(&tag).then_some(tag)
}

/// The tag groups a remote post or activity addresses: its `audience`, `to`, `cc` and mentions.
pub fn addressed_tags(urls: impl IntoIterator<Item = Url>, origin: &str) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for url in urls {
        if let Some(tag) = tag_of(&url, origin) {
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
    }
    tags
}

/// A valid tag name (the rule `story_tag` enforces).
pub fn is_tag_name(tag: &str) -> bool {
    (1..=30).contains(&tag.len())
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && tag
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The tag group for `tag` if the tag is in use, its keys made the first time. Tags nobody used
/// are not groups: looking up made-up names must not make keys (RSA key generation is costly).
pub async fn find(state: &AppState, tag: &str) -> FedResult<Option<TagGroup>> {
    if state.config.federation == Switch::Off || !is_tag_name(tag) {
        return Ok(None);
    }
    let db = &state.db.write;
    if let Some(group) = groups::get(db, tag).await? {
        return Ok(Some(group));
    }
    if !groups::tag_in_use(db, tag).await? {
        return Ok(None);
    }
    let keys = tokio::task::spawn_blocking(
        activitypub_federation::http_signatures::generate_actor_keypair,
    )
    .await
    .map_err(anyhow::Error::from)?
    .map_err(anyhow::Error::from)?;
    Ok(Some(
        groups::insert(db, tag, &keys.public_key, &keys.private_key).await?,
    ))
}

async fn existing(data: &FedData, tag: &str) -> FedResult<TagGroup> {
    find(data, &tag.to_lowercase())
        .await?
        .ok_or(FederationError::NotFound)
}

/// The JSON-LD context of a group: lien's, plus the Lemmy extension a group carries.
fn group_context() -> Value {
    let mut context = context();
    if let Some(Value::Object(terms)) = context.as_array_mut().and_then(|a| a.last_mut()) {
        terms.insert("lemmy".into(), json!("https://join-lemmy.org/ns#"));
        terms.insert(
            "postingRestrictedToMods".into(),
            json!("lemmy:postingRestrictedToMods"),
        );
        terms.insert(
            "moderators".into(),
            json!({"@id": "lemmy:moderators", "@type": "@id"}),
        );
    }
    context
}

/// The `Group` document (FEP-1b12, with the fields Lemmy's parser requires: `outbox`,
/// `attributedTo` naming the moderators collection, `postingRestrictedToMods`).
pub fn group_json(origin: &str, host: &str, group: &TagGroup) -> anyhow::Result<Value> {
    let id = group_id(origin, &group.tag)?;
    Ok(json!({
        "@context": group_context(),
        "type": "Group",
        "id": id,
        "preferredUsername": group.tag,
        "name": group.tag,
        "summary": format!("<p>Stories tagged {} on {host}</p>", group.tag),
        "url": id,
        "inbox": format!("{id}/inbox"),
        "outbox": format!("{id}/outbox"),
        "followers": format!("{id}/followers"),
        "attributedTo": format!("{id}/moderators"),
        "moderators": format!("{id}/moderators"),
        "postingRestrictedToMods": false,
        "manuallyApprovesFollowers": false,
        "discoverable": true,
        "sensitive": false,
        "endpoints": { "sharedInbox": format!("{origin}/inbox") },
        "publicKey": {
            "id": format!("{id}#main-key"),
            "owner": id,
            "publicKeyPem": group.public_key_pem,
        },
    }))
}

async fn group_actor(path: web::Path<String>, data: FedData) -> FedResult<HttpResponse> {
    let group = existing(&data, &path).await?;
    activity_json(&group_json(
        &data.config.origin(),
        &data.config.host(),
        &group,
    )?)
}

/// A tag group's inbox: the same checks as every inbox (signature, blocks, bans, size, rate,
/// replay). What is done with an activity depends on what it addresses, not on which inbox it
/// came to, since peers also deliver to the shared inbox.
async fn group_inbox(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    data: FedData,
) -> FedResult<HttpResponse> {
    existing(&data, &path).await?;
    inbox::receive(req, body, data).await
}

/// How many of a tag's newest stories its outbox lists.
const OUTBOX_ITEMS: i64 = 20;

/// The newest stories of the tag, each as the group's `Announce` of the `Create` its author sent:
/// Lemmy reads a group's outbox only when every item is an `Announce`.
async fn group_outbox(path: web::Path<String>, data: FedData) -> FedResult<HttpResponse> {
    let group = existing(&data, &path).await?;
    let recent = stories::list(
        &data.db.read,
        &stories::Listing::Tag(group.tag.clone()),
        OUTBOX_ITEMS,
        0,
    )
    .await?;
    let mut conn = data.db.write.acquire().await?;
    let (origin, host) = (data.config.origin(), data.config.host());
    let group = group_id(&origin, &group.tag)?;
    let mut items = Vec::with_capacity(recent.len());
    for story in recent.into_iter().filter(|s| s.local) {
        let ap_id = story.ap_id.clone();
        let page = post_json(&mut conn, &DbPost::Story(story), &origin, &host).await?;
        items.push(json!({
            "id": format!("{ap_id}#announce-{}", path.as_str()),
            "type": "Announce",
            "actor": group,
            "to": [PUBLIC],
            "cc": [format!("{group}/followers")],
            "object": {
                "id": format!("{ap_id}#create"),
                "type": "Create",
                "actor": page.attributed_to.author(),
                "to": page.to,
                "cc": page.cc,
                "object": page,
            },
        }));
    }
    let total = items.len() as i64;
    let id = format!("{group}/outbox")
        .parse()
        .map_err(anyhow::Error::from)?;
    activity_json(&super::protocol::with_context(OrderedCollection::new(
        id, items, total,
    )))
}

/// How many follow the group; who they are is not published. Lemmy's parser wants a
/// `Collection` here, with `totalItems` and `items`.
async fn group_followers(path: web::Path<String>, data: FedData) -> FedResult<HttpResponse> {
    let group = existing(&data, &path).await?;
    let count = groups::follower_count(&data.db.read, &group.tag).await?;
    activity_json(&json!({
        "@context": context(),
        "type": "Collection",
        "id": format!("{}/followers", group_id(&data.config.origin(), &group.tag)?),
        "totalItems": count,
        "items": [],
    }))
}

/// The group's moderators: this instance's moderators and administrators, who moderate every tag.
async fn group_moderators(path: web::Path<String>, data: FedData) -> FedResult<HttpResponse> {
    let group = existing(&data, &path).await?;
    let ids = groups::moderator_ids(&data.db.read).await?;
    activity_json(&json!({
        "@context": context(),
        "type": "OrderedCollection",
        "id": format!("{}/moderators", group_id(&data.config.origin(), &group.tag)?),
        "totalItems": ids.len(),
        "orderedItems": ids,
    }))
}

/// A `Follow` of a tag group: recorded and answered with an `Accept` (ids only) signed by the
/// group, every time (a peer that repeats its Follow never saw the Accept).
pub async fn follow(
    activity: &ActivityJson,
    follower: &ActorRow,
    tag: &str,
    data: &FedData,
) -> FedResult<()> {
    let group = existing(data, tag).await?;
    let aware = groups_aware(follower, data.config.dev).await;
    let origin = data.config.origin();
    let id = group_id(&origin, &group.tag)?;
    let accept = json!({
        "id": new_activity_id(&origin),
        "type": "Accept",
        "actor": id,
        "object": {
            "id": activity.id,
            "type": "Follow",
            "actor": follower.ap_id,
            "object": id,
        },
        "to": [follower.ap_id],
    });
    let inbox = follower
        .inbox_url
        .as_deref()
        .and_then(|i| i.parse::<Url>().ok());
    let mut tx = data.db.write.begin().await?;
    groups::add_follower(
        &mut tx,
        &group.tag,
        follower.id,
        activity.id.as_str(),
        aware,
    )
    .await?;
    super::outbox::queue(
        &mut tx,
        data,
        accept,
        Signer::Group(group.tag.clone()),
        inbox.into_iter().collect(),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// An `Undo` of a Follow of a tag group; false when the undone activity was not one.
pub async fn undo_follow(
    activity: &ActivityJson,
    actor: &ActorRow,
    data: &FedData,
) -> FedResult<bool> {
    let Some(inner) = object_id(&activity.object) else {
        return Ok(false);
    };
    let tag = activity
        .object
        .get("object")
        .and_then(object_id)
        .and_then(|target| tag_of(&target, &data.config.origin()));
    Ok(groups::remove_follower(&data.db.write, actor.id, inner.as_str(), tag.as_deref()).await?)
}

/// Server software that understands groups (FEP-1b12) and takes every activity of a discussion
/// announced. Everything else (Mastodon, Pleroma, Misskey...) only gets boosts of new stories.
const GROUPS_AWARE: &[&str] = &[
    "lemmy",
    "piefed",
    "mbin",
    "kbin",
    "lien",
    "nodebb",
    "discourse",
    "friendica",
    "hubzilla",
    "streams",
    "forte",
    "sublinks",
    "lotide",
    "peertube",
];

/// How long a server's answer about its software is kept.
const SOFTWARE_TTL: Duration = Duration::from_secs(60 * 60);

/// What each server said its software was (host → (groups-aware, when asked)).
static SOFTWARE: Mutex<Option<HashMap<String, (bool, std::time::Instant)>>> = Mutex::new(None);

/// Whether the follower's server is groups-aware: the software name in its NodeInfo, asked once
/// an hour per host (a server whose NodeInfo cannot be read is taken as not groups-aware: it
/// gets boosts, which every server shows).
pub async fn groups_aware(follower: &ActorRow, dev: bool) -> bool {
    let Ok(actor) = follower.ap_id.parse::<Url>() else {
        return false;
    };
    let host = super::objects::host_of(&actor);
    if let Some((aware, at)) = SOFTWARE
        .lock()
        .expect("software cache")
        .get_or_insert_with(HashMap::new)
        .get(&host)
    {
        if at.elapsed() < SOFTWARE_TTL {
            return *aware;
        }
    }
    let aware = match software_name(&actor, dev).await {
        Some(name) => GROUPS_AWARE.contains(&name.to_lowercase().as_str()),
        None => false,
    };
    tracing::debug!(%host, aware, "follower's server asked about groups");
    SOFTWARE
        .lock()
        .expect("software cache")
        .get_or_insert_with(HashMap::new)
        .insert(host, (aware, std::time::Instant::now()));
    aware
}

/// The `software.name` of a server's NodeInfo (2.x), through the guarded fetcher.
async fn software_name(actor: &Url, dev: bool) -> Option<String> {
    let mut well_known = actor.clone();
    well_known.set_path("/.well-known/nodeinfo");
    well_known.set_query(None);
    let limits = crate::fetch::Limits::JSON;
    let links: Value = serde_json::from_slice(
        &crate::fetch::safe_get(&well_known, &limits, dev)
            .await
            .ok()?
            .body,
    )
    .ok()?;
    let href = links
        .get("links")?
        .as_array()?
        .iter()
        .filter(|link| {
            link.get("rel")
                .and_then(Value::as_str)
                .is_some_and(|rel| rel.contains("nodeinfo.diaspora.software/ns/schema/2."))
        })
        .filter_map(|link| link.get("href").and_then(Value::as_str))
        .next_back()?
        .parse::<Url>()
        .ok()?;
    let info: Value =
        serde_json::from_slice(&crate::fetch::safe_get(&href, &limits, dev).await.ok()?.body)
            .ok()?;
    Some(info.get("software")?.get("name")?.as_str()?.to_owned())
}

/// The tag groups here that a remote top-level post is addressed to (its `audience`, `to`, `cc`
/// and mentions: Lemmy, PieFed and Mbin name the group in `audience` and `to`/`cc`, Mastodon in
/// a mention). Their tags are put first among the post's hashtags, so that the story carries them.
pub async fn posted_to(post: &mut PostJson, data: &FedData) -> FedResult<Vec<String>> {
    let origin = data.config.origin();
    let named = post
        .audience
        .iter()
        .chain(&post.to)
        .chain(&post.cc)
        .cloned()
        .chain(post.mentions());
    let mut tags = Vec::new();
    for tag in addressed_tags(named, &origin) {
        if find(data, &tag).await?.is_some() {
            tags.push(tag);
        }
    }
    for tag in tags.iter().rev() {
        post.tag.insert(
            0,
            json!({ "type": "Hashtag", "href": format!("{origin}/t/{tag}"), "name": format!("#{tag}") }),
        );
    }
    Ok(tags)
}
