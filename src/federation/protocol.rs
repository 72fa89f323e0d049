//! The wire shapes of lien's objects (SPEC section 5), serialized for peers and parsed tolerantly
//! from them: Mastodon, Lemmy and others add fields, leave some out, and send one value where a
//! list is allowed.

use activitypub_federation::{
    protocol::context::WithContext,
    protocol::{
        helpers::{deserialize_one_or_many, deserialize_skip_error},
        public_key::PublicKey,
    },
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

pub const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

/// The JSON-LD context lien sends: ActivityStreams, the security vocabulary for `publicKey`, and
/// the few extension terms peers understand (Mastodon's `Hashtag`, `sensitive`).
pub fn context() -> Value {
    serde_json::json!([
        "https://www.w3.org/ns/activitystreams",
        "https://w3id.org/security/v1",
        {
            "Hashtag": "as:Hashtag",
            "sensitive": "as:sensitive",
            "manuallyApprovesFollowers": "as:manuallyApprovesFollowers"
        }
    ])
}

/// Wraps a document with lien's context.
pub fn with_context<T>(inner: T) -> WithContext<T> {
    WithContext::new(inner, context())
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_inbox: Option<Url>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    #[serde(rename = "type", default = "image_type")]
    pub kind: String,
    pub url: Url,
}

fn image_type() -> String {
    "Image".to_owned()
}

/// An actor: lien's people are `Person`; peers also send `Service`, `Application`, `Group`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonJson {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Url,
    pub preferred_username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    pub inbox: Url,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox: Option<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followers: Option<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Endpoints>,
    pub public_key: PublicKey,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub icon: Option<Image>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub url: Option<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<DateTime<Utc>>,
    #[serde(default)]
    pub manually_approves_followers: bool,
}

/// Markdown source of a post, as Lemmy and Mastodon's `source` carry it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    pub content: String,
    #[serde(default = "markdown")]
    pub media_type: String,
}

fn markdown() -> String {
    "text/markdown".to_owned()
}

/// A `tag` entry: `Hashtag` or `Mention` (others are kept as unknown and ignored).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub href: Option<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// An `attachment` entry; a `Link` carries a story's shared URL.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub href: Option<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

/// A post: lien's stories are `Page`s and comments `Note`s; peers also send `Article`, `Question`.
/// One struct for all of them, because Mastodon statuses become stories or comments depending on
/// `inReplyTo`, not on their type.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostJson {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Url,
    pub attributed_to: AttributedTo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub url: Option<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Mastodon sends `contentMap` ({"en": "<p>…</p>"}) beside or instead of `content`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_map: Option<serde_json::Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub source: Option<Source>,
    #[serde(
        default,
        deserialize_with = "values_one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub attachment: Vec<Value>,
    #[serde(
        default,
        deserialize_with = "values_one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tag: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<DateTime<Utc>>,
    /// Our replies collection's id; peers may embed a whole collection, which is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replies: Option<Value>,
    #[serde(default, deserialize_with = "deserialize_one_or_many")]
    pub to: Vec<Url>,
    #[serde(default, deserialize_with = "deserialize_one_or_many")]
    pub cc: Vec<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitive: Option<bool>,
    /// A story's preview thumbnail, as Lemmy sends and reads it (`{"type": "Image", "url": …}`);
    /// kept as sent by peers, who also send strings and lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Value>,
    /// The same thumbnail, for readers that look for an icon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<Value>,
    /// The group a post belongs to (FEP-1b12): lien's stories and comments name the group of the
    /// story's first tag; Lemmy, PieFed and Mbin name their community.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub audience: Option<Url>,
    /// The discussion a post belongs to (FEP-7888): a local story's context collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
}

/// One JSON value or a list of them. (The library's `deserialize_one_or_many` cannot serve here: a
/// whole list is itself a valid single `Value`.)
fn values_one_or_many<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Value>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Array(items) => items,
        Value::Null => vec![],
        one => vec![one],
    })
}

/// `attributedTo` is an actor id, or (Lemmy, PeerTube) a list whose `Person` entry is the author.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttributedTo {
    One(Url),
    Many(Vec<Value>),
}

impl AttributedTo {
    /// The author's id.
    pub fn author(&self) -> Option<Url> {
        match self {
            AttributedTo::One(url) => Some(url.clone()),
            AttributedTo::Many(items) => items.iter().find_map(|item| match item {
                Value::String(s) => s.parse().ok(),
                Value::Object(map) if map.get("type").and_then(Value::as_str) == Some("Person") => {
                    map.get("id")
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse().ok())
                }
                _ => None,
            }),
        }
    }
}

impl PostJson {
    /// The HTML body: `content`, else the first entry of `contentMap`.
    pub fn html(&self) -> String {
        if let Some(content) = &self.content {
            return content.clone();
        }
        self.content_map
            .as_ref()
            .and_then(|map| map.values().find_map(Value::as_str))
            .unwrap_or_default()
            .to_owned()
    }

    /// The shared link of a story: a `Link` attachment (lien, Lemmy), else a `url` that is not
    /// the object's own page.
    pub fn link(&self) -> Option<Url> {
        let from_attachment = self.attachment.iter().find_map(|a| {
            let a: Attachment = serde_json::from_value(a.clone()).ok()?;
            (a.kind == "Link").then_some(a.href.or(a.url)).flatten()
        });
        from_attachment.or_else(|| {
            let url = self.url.clone()?;
            (self.kind == "Page" && url.host_str() != self.id.host_str()).then_some(url)
        })
    }

    /// The actors a post mentions (`Mention` tags).
    pub fn mentions(&self) -> Vec<Url> {
        self.tag
            .iter()
            .filter_map(|t| serde_json::from_value::<Tag>(t.clone()).ok())
            .filter(|t| t.kind == "Mention")
            .filter_map(|t| t.href)
            .collect()
    }

    /// Hashtags, without `#`, lowercased.
    pub fn hashtags(&self) -> Vec<String> {
        self.tag
            .iter()
            .filter_map(|t| serde_json::from_value::<Tag>(t.clone()).ok())
            .filter(|t| t.kind == "Hashtag")
            .filter_map(|t| t.name)
            .map(|name| name.trim_start_matches('#').to_lowercase())
            .collect()
    }
}

/// What a deleted object answers with (410), and what `Delete` activities carry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tombstone {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Url,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub former_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<DateTime<Utc>>,
}

/// An `OrderedCollection` of ids (replies, followers, outbox).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderedCollection {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Url,
    pub total_items: i64,
    #[serde(default)]
    pub ordered_items: Vec<Value>,
}

impl OrderedCollection {
    pub fn new(id: Url, items: Vec<Value>, total: i64) -> OrderedCollection {
        OrderedCollection {
            kind: "OrderedCollection".to_owned(),
            id,
            total_items: total,
            ordered_items: items,
        }
    }
}

/// Any incoming activity, kept generic so that one place checks ids, owners and duplicates
/// before the type-specific handling in `inbox`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityJson {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Url,
    pub actor: Url,
    #[serde(default)]
    pub object: Value,
    #[serde(default, deserialize_with = "deserialize_one_or_many")]
    pub to: Vec<Url>,
    #[serde(default, deserialize_with = "deserialize_one_or_many")]
    pub cc: Vec<Url>,
    /// What a `Flag` says about what it reports (Mastodon's report comment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Every other field, kept so that a group can announce the activity unchanged (Lemmy's
    /// `audience`, its `Flag` reason and removal reason in `summary`...).
    #[serde(flatten)]
    pub rest: serde_json::Map<String, Value>,
}

impl ActivityJson {
    /// A string field kept in `rest` (`summary`, `audience`...).
    pub fn extra(&self, field: &str) -> Option<&str> {
        self.rest.get(field).and_then(Value::as_str)
    }
}

/// The id an activity's `object` names, whether embedded or given as a bare id.
pub fn object_id(object: &Value) -> Option<Url> {
    match object {
        Value::String(s) => s.parse().ok(),
        Value::Object(map) => map
            .get("id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok()),
        _ => None,
    }
}

/// The `type` of an embedded object, if it is embedded.
pub fn object_type(object: &Value) -> Option<&str> {
    object.get("type").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributed_to_may_be_a_list() {
        let lemmy: AttributedTo = serde_json::from_value(serde_json::json!([
            {"type": "Group", "id": "https://l.example/c/rust"},
            {"type": "Person", "id": "https://l.example/u/ann"}
        ]))
        .unwrap();
        assert_eq!(lemmy.author().unwrap().as_str(), "https://l.example/u/ann");
    }

    #[test]
    fn content_map_stands_in_for_content() {
        let note: PostJson = serde_json::from_value(serde_json::json!({
            "type": "Note", "id": "https://m.example/users/a/statuses/1",
            "attributedTo": "https://m.example/users/a",
            "contentMap": {"en": "<p>hi</p>"}, "to": PUBLIC
        }))
        .unwrap();
        assert_eq!(note.html(), "<p>hi</p>");
        assert_eq!(note.to.len(), 1);
    }
}

#[cfg(test)]
mod link_tests {
    use super::*;

    #[test]
    fn a_lien_page_carries_its_link_in_an_attachment() {
        let page: PostJson = serde_json::from_value(serde_json::json!({
            "type": "Page", "id": "http://localhost:1/s/1", "attributedTo": "http://localhost:1/users/a",
            "name": "T", "url": "http://localhost:1/s/1",
            "attachment": [{"type": "Link", "href": "https://example.com/federated"}],
            "to": [PUBLIC]
        }))
        .unwrap();
        assert_eq!(
            page.link().unwrap().as_str(),
            "https://example.com/federated"
        );
    }
}
