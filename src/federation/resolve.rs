//! Turning what someone pastes into search (a story's, comment's or Mastodon status's URL, an actor
//! URL, or `@name@host`) into a local page, fetching it from its home when it is new here.

use activitypub_federation::fetch::{
    fetch_object_http, object_id::ObjectId, webfinger::webfinger_resolve_actor,
};
use serde_json::{json, Value};
use url::Url;

use super::{
    objects::{DbPerson, DbPost},
    protocol::object_id,
    FedData, FedResult, FederationError,
};
use crate::db::{
    accounts::handle,
    stories::slug,
    votes::{self, Target},
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
            let person: DbPerson = webfinger_resolve_actor(address, data).await.map_err(|e| {
                FederationError::BadRequest(format!("could not find {address}: {e}"))
            })?;
            Ok(Some(profile_path(&person)))
        }
        _ => Ok(None),
    }
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
    match ObjectId::<DbPost>::from(url.clone())
        .dereference(data)
        .await
    {
        Ok(post) => {
            // Bring the discussion along: what is already said under it becomes its comments.
            if let Err(error) = backfill_replies(data, &url, BACKFILL_DEPTH).await {
                tracing::debug!(%url, %error, "replies could not be fetched");
            }
            Ok(post_path(&post))
        }
        Err(post_error) => match ObjectId::<DbPerson>::from(url.clone())
            .dereference(data)
            .await
        {
            Ok(person) if person.0.kind == "Group" => {
                Ok(super::community::found_by_url(data, &person.0).await)
            }
            Ok(person) => Ok(profile_path(&person)),
            Err(_) => Err(FederationError::BadRequest(format!(
                "could not load {url}: {post_error}"
            ))),
        },
    }
}

/// How many levels of replies to replies a pasted post brings along.
const BACKFILL_DEPTH: u8 = 3;
/// Pages of one `replies` collection that are read (Mastodon puts self-replies on the first page
/// and everyone else's behind `next`).
const BACKFILL_PAGES: usize = 3;
/// Replies taken from one collection.
const BACKFILL_ITEMS: usize = 40;

/// Stores the replies a remote post's `replies` collection lists, and theirs, to `depth` levels.
/// Every fetch counts against the library's per-request limit, which bounds the whole walk.
async fn backfill_replies(data: &FedData, post: &Url, depth: u8) -> FedResult<()> {
    if depth == 0 {
        return Ok(());
    }
    let json: Value = fetch_object_http(post, data).await?.object;
    backfill_from(data, &json, depth).await
}

/// [`backfill_replies`] for a post already in hand (an outbox's embedded copy, a fetched post):
/// its score as it publishes it, then its replies (`replies`, else its FEP-7888 `context`).
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
        // A reply that cannot be had (deleted, private, refused) is skipped, not fatal; the post
        // itself (a context lists it too) is already here.
        if DbPost::find(&data.db.write, reply.as_str())
            .await?
            .is_some()
        {
            continue;
        }
        if ObjectId::<DbPost>::from(reply.clone())
            .dereference(data)
            .await
            .is_ok()
            && depth > 1
        {
            Box::pin(backfill_replies(data, &reply, depth - 1))
                .await
                .ok();
        }
    }
    Ok(())
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
