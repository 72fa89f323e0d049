//! Turning what someone pastes into search (a story's, comment's or Mastodon status's URL, an actor
//! URL, or `@name@host`) into a local page, fetching it from its home when it is new here.

use activitypub_federation::fetch::{object_id::ObjectId, webfinger::webfinger_resolve_actor};
use url::Url;

use super::{
    objects::{DbPerson, DbPost},
    FedData, FedResult, FederationError,
};
use crate::web::views::{handle, slug};

/// The local page for a remote reference, or `None` when `query` is not one (a plain search).
pub async fn resolve(data: &FedData, query: &str) -> FedResult<Option<String>> {
    let query = query.trim();
    if let Ok(url) = Url::parse(query) {
        if !matches!(url.scheme(), "http" | "https") {
            return Ok(None);
        }
        return resolve_url(data, url).await.map(Some);
    }
    let address = query.strip_prefix('@').unwrap_or(query);
    match address.split_once('@') {
        Some((name, host))
            if !name.is_empty() && host.contains('.') || host_is_dev(data, address) =>
        {
            let person: DbPerson = webfinger_resolve_actor(address, data).await.map_err(|e| {
                FederationError::BadRequest(format!("could not find {address}: {e}"))
            })?;
            Ok(Some(profile_path(&person)))
        }
        _ => Ok(None),
    }
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
        Ok(post) => Ok(post_path(&post)),
        Err(post_error) => match ObjectId::<DbPerson>::from(url.clone())
            .dereference(data)
            .await
        {
            Ok(person) => Ok(profile_path(&person)),
            Err(_) => Err(FederationError::BadRequest(format!(
                "could not load {url}: {post_error}"
            ))),
        },
    }
}
