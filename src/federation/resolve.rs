//! Turning what someone pastes into search (a story's, comment's or Mastodon status's URL, an actor
//! URL, or `@name@host`) into a local page, fetching it from its home when it is new here. A
//! pasted URL is fetched once, whatever it turns out to be.

use activitypub_federation::{
    fetch::{fetch_object_http, object_id::ObjectId},
    traits::Object,
};
use serde::Deserialize;
use serde_json::{json, Value};
use url::Url;

use super::{
    check_peer_url,
    objects::{DbPerson, DbPost},
    protocol::{object_id, PersonJson, PostJson},
    FedData, FedResult, FederationError,
};
use crate::{
    db::{
        accounts::handle,
        stories::slug,
        votes::{self, Target},
    },
    fetch::{safe_get, FetchError, Limits},
};

/// The local page for a remote reference, or `None` when `query` is not one (a plain search).
pub async fn resolve(data: &FedData, query: &str) -> FedResult<Option<String>> {
    let query = query.trim();
    if let Ok(url) = Url::parse(query) {
        if !matches!(url.scheme(), "http" | "https") {
            return Ok(None);
        }
        return resolve_url(data, url).await.map(Some);
    }
    if let Some(address) = query.strip_prefix('!') {
        // A community, as Lemmy writes it: `!name@host`.
        return match address.split_once('@') {
            Some((name, host))
                if !name.is_empty() && (host.contains('.') || host_is_dev(data, address)) =>
            {
                refuse_blocked(data, &host.to_lowercase()).await?;
                let group = super::community::resolve_handle(data, address).await?;
                Ok(Some(super::community::community_path(&group)))
            }
            _ => Ok(None),
        };
    }
    let address = query.strip_prefix('@').unwrap_or(query);
    match address.split_once('@') {
        Some((name, host))
            if !name.is_empty() && host.contains('.') || host_is_dev(data, address) =>
        {
            refuse_blocked(data, &host.to_lowercase()).await?;
            let person = webfinger(data, address, host).await.map_err(|e| {
                FederationError::BadRequest(format!("could not find {address}: {e}"))
            })?;
            Ok(Some(profile_path(&person)))
        }
        _ => Ok(None),
    }
}

/// A WebFinger answer, as far as lien reads it. `aliases` and the rest are not read (some servers
/// send `"aliases": null`).
#[derive(Deserialize)]
struct Jrd {
    #[serde(default)]
    links: Option<Vec<JrdLink>>,
}

#[derive(Deserialize)]
struct JrdLink {
    #[serde(default)]
    rel: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    href: Option<String>,
}

/// `name@host` → its actor, through WebFinger over https. In dev mode only, and only when https
/// cannot be reached at all, plain http is tried next (dev peers are often plain http; real ones
/// often have nothing on port 80).
async fn webfinger(data: &FedData, address: &str, host: &str) -> FedResult<DbPerson> {
    let dev = data.config.dev;
    let schemes: &[&str] = if dev { &["https", "http"] } else { &["https"] };
    let mut answer = None;
    for scheme in schemes {
        let mut url: Url = format!("{scheme}://{host}/.well-known/webfinger")
            .parse()
            .map_err(|_| FederationError::BadRequest(format!("not a server: {host}")))?;
        url.query_pairs_mut()
            .append_pair("resource", &format!("acct:{address}"));
        match safe_get(&url, &Limits::WEBFINGER, dev).await {
            Ok(fetched) => {
                answer = Some(fetched);
                break;
            }
            // Unreachable over https: worth another scheme (in dev mode).
            Err(error @ (FetchError::Network(_) | FetchError::Timeout(_))) => {
                tracing::debug!(%url, %error, "WebFinger lookup failed");
                answer = None;
                continue;
            }
            Err(error) => return Err(FederationError::BadRequest(error.to_string())),
        }
    }
    let fetched =
        answer.ok_or_else(|| FederationError::BadRequest(format!("{host} cannot be reached")))?;
    let jrd: Jrd = serde_json::from_slice(&fetched.body)
        .map_err(|e| FederationError::BadRequest(format!("not a WebFinger answer: {e}")))?;
    let actor = jrd
        .links
        .unwrap_or_default()
        .into_iter()
        .filter(|link| link.rel.as_deref() == Some("self"))
        .filter(|link| {
            link.kind.as_deref().is_some_and(|kind| {
                kind.starts_with("application/activity+json")
                    || kind.starts_with("application/ld+json")
            })
        })
        .find_map(|link| link.href?.parse::<Url>().ok())
        .ok_or_else(|| FederationError::BadRequest("no ActivityPub actor is linked".into()))?;
    check_peer_url(&actor).map_err(|e| FederationError::BadRequest(e.into()))?;
    ObjectId::<DbPerson>::from(actor).dereference(data).await
}

/// Nothing is fetched from a blocked server.
async fn refuse_blocked(data: &FedData, host: &str) -> FedResult<()> {
    if crate::db::moderation::is_blocked(&data.db.read, host).await? {
        return Err(FederationError::Forbidden(
            "that server is blocked here".into(),
        ));
    }
    Ok(())
}

/// In dev mode peers are `localhost:port`, which has no dot.
fn host_is_dev(data: &FedData, address: &str) -> bool {
    data.config.dev
        && address
            .split_once('@')
            .is_some_and(|(n, h)| !n.is_empty() && h.starts_with("localhost"))
}

fn profile_path(person: &DbPerson) -> String {
    format!("/@{}", handle(&person.0.name, person.0.host.as_deref()))
}

fn post_path(post: &DbPost) -> String {
    match post {
        DbPost::Story(story) => format!("/s/{}/{}", story.id, slug(&story.title)),
        DbPost::Comment(comment) => format!("/c/{}", comment.id),
    }
}

async fn resolve_url(data: &FedData, url: Url) -> FedResult<String> {
    let local = url.host_str() == data.config.public_url.host_str()
        && url.port() == data.config.public_url.port();
    if !local {
        refuse_blocked(data, &super::delivery::host_of(&url)).await?;
    }
    if local {
        // Our own address: the page itself (or the profile of a `P/users/{name}` id).
        return Ok(match url.path().strip_prefix("/users/") {
            Some(name) => format!("/@{name}"),
            None => url.path().to_owned(),
        });
    }
    // Fetched once, then read as what its `type` says: an actor or a post.
    let fetched = fetch_object_http::<_, Value>(&url, data)
        .await
        .map_err(|e| FederationError::BadRequest(format!("could not load {url}: {e}")))?;
    let home = fetched.url;
    if home.host_str() == data.config.public_url.host_str()
        && home.port() == data.config.public_url.port()
    {
        return Err(FederationError::BadRequest(format!(
            "{url} leads back here"
        )));
    }
    let json = fetched.object;
    let kind = json.get("type").and_then(Value::as_str).unwrap_or_default();
    if matches!(
        kind,
        "Person" | "Service" | "Application" | "Group" | "Organization"
    ) {
        let person: PersonJson = serde_json::from_value(json)
            .map_err(|e| FederationError::BadRequest(format!("could not load {url}: {e}")))?;
        DbPerson::verify(&person, &home, data).await?;
        let person = DbPerson::from_json(person, data).await?;
        if person.0.kind == "Group" {
            return Ok(super::community::found_by_url(data, &person.0).await);
        }
        return Ok(profile_path(&person));
    }
    let post: PostJson = serde_json::from_value(json.clone())
        .map_err(|e| FederationError::BadRequest(format!("could not load {url}: {e}")))?;
    DbPost::verify(&post, &home, data).await?;
    let post = DbPost::from_json(post, data).await?;
    // Bring the discussion along: what is already said under it becomes its comments.
    if let Err(error) = backfill_from(data, &json, BACKFILL_DEPTH).await {
        tracing::debug!(%url, %error, "replies could not be fetched");
    }
    Ok(post_path(&post))
}

/// How many levels of replies to replies a pasted post brings along.
const BACKFILL_DEPTH: u8 = 3;
/// Pages of one `replies` collection that are read (Mastodon puts self-replies on the first page
/// and everyone else's behind `next`).
const BACKFILL_PAGES: usize = 3;
/// Replies taken from one collection.
const BACKFILL_ITEMS: usize = 40;

/// Brings a remote post's standing along (`json` is the post in hand: fetched, or an outbox's
/// embedded copy): its score as it publishes it, its community, and the replies its `replies`
/// collection (else its FEP-7888 `context`) lists, and theirs, to `depth` levels. Every fetch
/// counts against the library's per-request limit, which bounds the whole walk.
pub async fn backfill_from(data: &FedData, json: &Value, depth: u8) -> FedResult<()> {
    if depth == 0 {
        return Ok(());
    }
    remote_counts(data, json).await?;
    if let Err(error) = super::community::file_by_audience(data, json).await {
        tracing::debug!(%error, "the post's community could not be had");
    }
    let mut page = match json.get("replies") {
        Some(Value::String(id)) => fetch_value(data, id).await?,
        Some(collection @ Value::Object(_)) => collection.clone(),
        // PieFed embeds the replies themselves.
        Some(Value::Array(items)) => json!({ "items": items }),
        _ => match json.get("context") {
            // The whole discussion, every level at once: walked without going deeper.
            Some(Value::String(id)) if id.as_str() != json["id"].as_str().unwrap_or_default() => {
                let context = fetch_value(data, id).await?;
                return store_replies(data, collection_items(data, context).await?, 1).await;
            }
            _ => return Ok(()),
        },
    };
    if page.get("items").is_none() && page.get("orderedItems").is_none() {
        if let Some(first) = page.get("first").cloned() {
            page = match first {
                Value::String(id) => fetch_value(data, &id).await?,
                embedded => embedded,
            };
        }
    }
    let replies = collection_items(data, page).await?;
    store_replies(data, replies, depth).await
}

/// The ids a collection page lists, following `next` for a few pages.
async fn collection_items(data: &FedData, mut page: Value) -> FedResult<Vec<Url>> {
    let mut items_found = Vec::new();
    for _ in 0..BACKFILL_PAGES {
        for key in ["items", "orderedItems"] {
            let items = page
                .get(key)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            items_found.extend(items.iter().filter_map(object_id));
        }
        let next = match page.get("first").or_else(|| page.get("next")) {
            Some(Value::String(id)) => fetch_value(data, id).await?,
            Some(embedded @ Value::Object(_)) => embedded.clone(),
            _ => break,
        };
        page = next;
    }
    items_found.dedup();
    Ok(items_found)
}

async fn store_replies(data: &FedData, replies: Vec<Url>, depth: u8) -> FedResult<()> {
    for reply in replies.into_iter().take(BACKFILL_ITEMS) {
        // A reply that cannot be had (deleted, private, refused) is skipped, not fatal; one
        // already here (a context lists the post itself too) is not fetched again.
        if DbPost::find(&data.db.write, reply.as_str())
            .await?
            .is_some()
        {
            continue;
        }
        if let Ok(json) = store_post(data, &reply).await {
            Box::pin(backfill_from(data, &json, depth - 1)).await.ok();
        }
    }
    Ok(())
}

/// Fetches a post, stores it, and returns it as fetched (its replies are read from that).
async fn store_post(data: &FedData, id: &Url) -> FedResult<Value> {
    let fetched = fetch_object_http::<_, Value>(id, data).await?;
    let post: PostJson = serde_json::from_value(fetched.object.clone())
        .map_err(|e| FederationError::BadRequest(format!("not a post: {e}")))?;
    DbPost::verify(&post, &fetched.url, data).await?;
    DbPost::from_json(post, data).await?;
    Ok(fetched.object)
}

/// A post's score as its server publishes it: the `totalItems` of its `likes` and `dislikes`
/// collections (Mastodon, lien). Lemmy, PieFed and Mbin publish none; their posts' scores grow
/// from the votes their communities announce. The counts are a floor: votes that arrive later
/// add to them.
async fn remote_counts(data: &FedData, json: &Value) -> FedResult<()> {
    let Some(id) = object_id(json) else {
        return Ok(());
    };
    let Some(post) = DbPost::find(&data.db.write, id.as_str()).await? else {
        return Ok(());
    };
    if post.is_local() {
        return Ok(());
    }
    let mut counts = [0i32; 2];
    for (count, key) in counts.iter_mut().zip(["likes", "dislikes"]) {
        let total = match json.get(key) {
            Some(collection @ Value::Object(_)) => collection.get("totalItems").cloned(),
            Some(Value::String(id)) => fetch_value(data, id)
                .await
                .ok()
                .and_then(|c| c.get("totalItems").cloned()),
            _ => None,
        };
        *count = total
            .and_then(|t| t.as_i64())
            .map_or(0, |t| t.clamp(0, 1_000_000) as i32);
    }
    let target = match &post {
        DbPost::Story(story) => Target::Story(story.id),
        DbPost::Comment(comment) => Target::Comment(comment.id),
    };
    votes::raise_remote_counts(&data.db.write, target, counts[0], counts[1]).await?;
    Ok(())
}

async fn fetch_value(data: &FedData, id: &str) -> FedResult<Value> {
    let url: Url = id
        .parse()
        .map_err(|_| FederationError::BadRequest(format!("not a URL: {id}")))?;
    Ok(fetch_object_http(&url, data).await?.object)
}
