//! The database side of each federated kind: people (`Person`) and posts (stories as `Page`,
//! comments as `Note`), implementing the library's `Object` so ids can be dereferenced, served and
//! stored.

use activitypub_federation::{
    fetch::object_id::ObjectId,
    protocol::{public_key::PublicKey, verification::verify_domains_match},
    traits::{Actor, Object},
};
use actix_web::web;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use url::Url;

use super::{
    check_peer_url,
    protocol::{
        quote_policy, AttributedTo, Endpoints, Image, PersonJson, PostJson, Source, PUBLIC,
    },
    FedData, FederationError,
};
use crate::{
    app::AppState,
    db::{
        actors::{self, ActorRow, RemoteActor},
        comments::{self, Comment, RemoteComment},
        notifications,
        stories::{self, LinkParts, RemoteStory, Story},
    },
    input::strip_refused,
    links, markdown,
};

fn url(s: &str) -> Result<Url, FederationError> {
    s.parse()
        .map_err(|_| FederationError::Internal(anyhow::anyhow!("stored id is not a URL: {s}")))
}

/// The host (with a non-default port) that names a remote instance, as `name@host` shows it.
pub fn host_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

/// A person, local or remote, with keys and inboxes.
#[derive(Clone, Debug)]
pub struct DbPerson(pub ActorRow);

impl DbPerson {
    /// The local person's actor document.
    pub fn to_json(&self, origin: &str) -> Result<PersonJson, FederationError> {
        let row = &self.0;
        let id = url(&row.ap_id)?;
        Ok(PersonJson {
            kind: "Person".to_owned(),
            preferred_username: row.name.clone(),
            name: Some(if row.display_name.is_empty() {
                row.name.clone()
            } else {
                row.display_name.clone()
            }),
            summary: Some(markdown::render(&row.bio)),
            inbox: url(&format!("{id}/inbox"))?,
            outbox: Some(url(&format!("{id}/outbox"))?),
            followers: Some(url(&format!("{id}/followers"))?),
            endpoints: Some(Endpoints {
                shared_inbox: Some(url(&format!("{origin}/inbox"))?),
            }),
            public_key: PublicKey {
                id: format!("{id}#main-key"),
                owner: id.clone(),
                public_key_pem: row.public_key_pem.clone().unwrap_or_default(),
            },
            icon: row
                .avatar_url
                .as_deref()
                .and_then(|a| a.parse().ok())
                .map(|url| Image {
                    kind: "Image".to_owned(),
                    url,
                }),
            url: Some(url(&format!("{origin}/@{}", row.name))?),
            published: Some(row.created_at),
            manually_approves_followers: false,
            id,
        })
    }

    /// The followers collection id (`cc` of public posts).
    pub fn followers_url(&self) -> String {
        self.0
            .followers_url
            .clone()
            .unwrap_or_else(|| format!("{}/followers", self.0.ap_id))
    }
}

#[async_trait]
impl Object for DbPerson {
    type DataType = web::Data<AppState>;
    type Kind = PersonJson;
    type Error = FederationError;

    fn last_refreshed_at(&self) -> Option<DateTime<Utc>> {
        if self.0.local {
            Some(Utc::now())
        } else {
            Some(self.0.fetched_at.unwrap_or(self.0.created_at))
        }
    }

    async fn read_from_id(id: Url, data: &FedData) -> Result<Option<Self>, FederationError> {
        if let Some(signer) = super::inbox::signer_read_in_this_request(&id) {
            return Ok(Some(DbPerson(signer)));
        }
        Ok(actors::by_ap_id(&data.db.write, id.as_str())
            .await?
            .map(DbPerson))
    }

    async fn into_json(self, data: &FedData) -> Result<PersonJson, FederationError> {
        self.to_json(&data.config.origin())
    }

    async fn verify(
        json: &PersonJson,
        expected_domain: &Url,
        _: &FedData,
    ) -> Result<(), FederationError> {
        verify_domains_match(&json.id, expected_domain)?;
        verify_domains_match(&json.inbox, &json.id)?;
        if json.public_key.owner != json.id {
            return Err(FederationError::BadRequest(
                "the actor's key belongs to someone else".into(),
            ));
        }
        // The library needs a domain name for every inbox it posts to: refuse IP-literal peers here.
        check_peer_url(&json.id).map_err(|e| FederationError::Forbidden(e.into()))?;
        check_peer_url(&json.inbox).map_err(|e| FederationError::Forbidden(e.into()))?;
        Ok(())
    }

    async fn from_json(json: PersonJson, data: &FedData) -> Result<Self, FederationError> {
        let host = host_of(&json.id);
        let shared_inbox = json
            .endpoints
            .as_ref()
            .and_then(|e| e.shared_inbox.clone())
            .filter(|inbox| {
                check_peer_url(inbox).is_ok() && inbox.host_str() == json.id.host_str()
            });
        // A peer's text loses the characters lien refuses from people (see crate::input).
        let bio = json
            .summary
            .as_deref()
            .map(|summary| markdown::sanitize(&strip_refused(summary)))
            .unwrap_or_default();
        let row = actors::upsert_remote(
            &data.db.write,
            &RemoteActor {
                ap_id: json.id.as_str(),
                name: &strip_refused(&json.preferred_username),
                host: &host,
                display_name: &strip_refused(json.name.as_deref().unwrap_or_default()),
                bio: &markdown::plain_text(&bio, 2000),
                avatar_url: json.icon.as_ref().map(|i| i.url.as_str()),
                inbox_url: json.inbox.as_str(),
                shared_inbox_url: shared_inbox.as_ref().map(Url::as_str),
                followers_url: json.followers.as_ref().map(Url::as_str),
                profile_url: json.url.as_ref().map(Url::as_str),
                public_key_pem: &json.public_key.public_key_pem,
                kind: match json.kind.as_str() {
                    kind @ ("Group" | "Service" | "Application" | "Organization") => kind,
                    _ => "Person",
                },
            },
        )
        .await?;
        Ok(DbPerson(row))
    }
}

impl Actor for DbPerson {
    fn id(&self) -> Url {
        self.0.ap_id.parse().expect("stored actor ids are URLs")
    }

    fn public_key_pem(&self) -> &str {
        self.0.public_key_pem.as_deref().unwrap_or_default()
    }

    fn private_key_pem(&self) -> Option<String> {
        self.0.private_key_pem.clone()
    }

    fn inbox(&self) -> Url {
        self.0
            .inbox_url
            .as_deref()
            .and_then(|i| i.parse().ok())
            .unwrap_or_else(|| {
                format!("{}/inbox", self.0.ap_id)
                    .parse()
                    .expect("stored actor ids are URLs")
            })
    }

    fn shared_inbox(&self) -> Option<Url> {
        self.0
            .shared_inbox_url
            .as_deref()
            .and_then(|i| i.parse().ok())
    }
}

/// A story or a comment: what an `inReplyTo`, a `Like` or a pasted URL can point at.
#[derive(Clone, Debug)]
pub enum DbPost {
    Story(Story),
    Comment(Comment),
}

impl DbPost {
    pub fn ap_id(&self) -> &str {
        match self {
            DbPost::Story(s) => &s.ap_id,
            DbPost::Comment(c) => &c.ap_id,
        }
    }

    pub fn author_id(&self) -> i64 {
        match self {
            DbPost::Story(s) => s.author_id,
            DbPost::Comment(c) => c.author_id,
        }
    }

    pub fn story_id(&self) -> i64 {
        match self {
            DbPost::Story(s) => s.id,
            DbPost::Comment(c) => c.story_id,
        }
    }

    pub fn is_local(&self) -> bool {
        match self {
            DbPost::Story(s) => s.local,
            DbPost::Comment(c) => c.local,
        }
    }

    /// Deleted by its author or removed by a moderator: either way served as a `Tombstone` and
    /// closed to votes.
    pub fn is_deleted(&self) -> bool {
        match self {
            DbPost::Story(s) => s.deleted_at.is_some() || s.removed_at.is_some(),
            DbPost::Comment(c) => c.deleted_at.is_some() || c.removed_at.is_some(),
        }
    }

    /// Looks a post up by id, stories first.
    pub async fn find(db: &sqlx::PgPool, ap_id: &str) -> sqlx::Result<Option<DbPost>> {
        if let Some(story) = stories::by_ap_id(db, ap_id).await? {
            return Ok(Some(DbPost::Story(story)));
        }
        Ok(comments::by_ap_id(db, ap_id).await?.map(DbPost::Comment))
    }
}

/// A story as a `Page`, in the shape that reads well on every server we know of (README,
/// "How a lien story looks elsewhere", which also says where this departs from SPEC section 5):
/// the title in `name`; `url` the shared link (Mastodon up to 4.6 shows no other link of a `Page`)
/// or, for a text story, its page here; `content` the title as a link to the shared URL, the
/// linked page's description and the story's own text, as HTML; the link again as the first
/// attachment (where Lemmy, PieFed and Mbin look for it); the thumbnail in `image` (an image
/// attachment would become media and hide Mastodon's link card); no `summary`, which nearly every
/// microblogging server shows as a content warning. `software` is the peer's (see `peers`), for
/// the few servers that get a variant. `origin` is this instance's public origin.
pub fn story_json(
    story: &Story,
    author: &ActorRow,
    origin: &str,
    software: Option<&str>,
) -> Result<PostJson, FederationError> {
    let page = if story.local {
        format!("{origin}/s/{}", story.id)
    } else {
        story.ap_id.clone()
    };
    let mut content = String::new();
    let mut attachment = Vec::new();
    if let Some(link) = &story.url {
        content.push_str(&format!(
            r#"<p><a href="{}">{}</a></p>"#,
            html_escape(link),
            html_escape(&story.title)
        ));
        attachment.push(json!({ "type": "Link", "href": link, "mediaType": "text/html" }));
        if let Some(description) = &story.preview.description {
            content.push_str(&format!("<p>{}</p>", html_escape(description)));
        }
    }
    content.push_str(&story.body_html);
    let thumbnail = story.preview.image.as_ref().map(|name| {
        let mut image = json!({ "type": "Image", "url": format!("{origin}/media/{name}") });
        if let Some(media_type) = crate::preview::media_type(name) {
            image["mediaType"] = json!(media_type);
        }
        image
    });
    let mut json = PostJson {
        kind: "Page".to_owned(),
        id: url(&story.ap_id)?,
        attributed_to: AttributedTo::One(url(&author.ap_id)?),
        name: Some(story.title.clone()),
        url: Some(url(story.url.as_deref().unwrap_or(&page))?),
        in_reply_to: None,
        summary: None,
        content: Some(content),
        content_map: None,
        media_type: Some("text/html".to_owned()),
        source: None,
        attachment,
        tag: story
            .tags
            .iter()
            .map(|t| json!({ "type": "Hashtag", "href": format!("{origin}/t/{t}"), "name": format!("#{t}") }))
            .collect(),
        published: Some(story.created_at),
        updated: story.updated_at,
        replies: Some(Value::String(format!("{}/replies", story.ap_id))),
        to: vec![url(PUBLIC)?],
        cc: vec![url(&DbPerson(author.clone()).followers_url())?],
        sensitive: Some(false),
        icon: None,
        image: thumbnail,
        audience: None,
        context: None,
        name_map: None,
        interaction_policy: story.local.then(quote_policy),
    };
    match software {
        // Both take `name` as a content warning when there is no `summary` (GoToSocial's
        // `ASStatusToStatus`, Takahe's `summary or name`), and neither reads `nameMap` (go-fed
        // parses a map as a language string, which GoToSocial's `ExtractName` ignores): the title
        // moves to `nameMap`, and `content`, which opens with it, shows it.
        Some("gotosocial" | "takahe") => {
            json.name_map = json.name.take().map(|title| {
                [("und".to_owned(), Value::String(title))]
                    .into_iter()
                    .collect()
            });
        }
        // Mastodon shows a `Page` as `name`, `summary` and `url`, and ignores `content`; for a
        // `Page`, `summary` is body text there, not a warning (`status_parser.rb`
        // `processed_spoiler_text`). The linked page's description comes in its link card.
        Some("mastodon") if !story.body_html.is_empty() => {
            json.summary = Some(story.body_html.clone());
        }
        // They prefer Markdown `source` to `content`, and show the title and link from `name` and
        // the attachment already: `source` is the story's own text, possibly empty, so neither is
        // repeated in the body (and a lien peer does not keep the description as text).
        Some("lien" | "lemmy" | "piefed" | "mbin") => {
            json.source = Some(Source {
                content: story.body.clone(),
                media_type: "text/markdown".to_owned(),
            });
        }
        _ => {}
    }
    Ok(json)
}

/// Where a post of `story`'s discussion belongs, for peers: the group of the story's first tag
/// (FEP-1b12 `audience`, also in `to`, as Lemmy addresses its posts) and, when the story is
/// local, its context collection (FEP-7888). `group_tags` are the story's group tags.
fn place_in_discussion(
    json: &mut PostJson,
    story: &Story,
    group_tags: &[String],
    origin: &str,
) -> Result<(), FederationError> {
    if let Some(tag) = group_tags.first() {
        let group = url(&format!("{origin}/t/{tag}"))?;
        json.to.push(group.clone());
        json.audience = Some(group);
    }
    if story.local {
        json.context = Some(Value::String(format!("{}/context", story.ap_id)));
    }
    Ok(())
}

/// What a comment answers: the parent's id and author.
pub struct ReplyTarget {
    pub ap_id: String,
    pub author: ActorRow,
}

/// The post a comment replies to (its parent comment, or its story) with that post's author.
pub async fn reply_target(
    db: &mut sqlx::PgConnection,
    comment: &Comment,
) -> Result<ReplyTarget, FederationError> {
    let (ap_id, author_id) = match comment.parent_id {
        Some(parent) => {
            let parent = comments::get(&mut *db, parent)
                .await?
                .ok_or(FederationError::NotFound)?;
            (parent.ap_id, parent.author_id)
        }
        None => {
            let story = stories::get(&mut *db, comment.story_id)
                .await?
                .ok_or(FederationError::NotFound)?;
            (story.ap_id, story.author_id)
        }
    };
    let author = actors::by_id(&mut *db, author_id)
        .await?
        .ok_or(FederationError::NotFound)?;
    Ok(ReplyTarget { ap_id, author })
}

/// A comment as a `Note` replying to its story or parent, mentioning the author it answers.
pub fn comment_json(
    comment: &Comment,
    author: &ActorRow,
    target: &ReplyTarget,
    origin: &str,
    local_host: &str,
) -> Result<PostJson, FederationError> {
    let mention = json!({
        "type": "Mention",
        "href": target.author.ap_id,
        "name": format!("@{}@{}", target.author.name, target.author.host.as_deref().unwrap_or(local_host)),
    });
    let page = if comment.local {
        format!("{origin}/c/{}", comment.id)
    } else {
        comment.ap_id.clone()
    };
    Ok(PostJson {
        kind: "Note".to_owned(),
        id: url(&comment.ap_id)?,
        attributed_to: AttributedTo::One(url(&author.ap_id)?),
        name: None,
        url: Some(url(&page)?),
        in_reply_to: Some(url(&target.ap_id)?),
        summary: None,
        content: Some(comment.body_html.clone()),
        content_map: None,
        media_type: Some("text/html".to_owned()),
        source: (!comment.body.is_empty()).then(|| Source {
            content: comment.body.clone(),
            media_type: "text/markdown".to_owned(),
        }),
        attachment: vec![],
        tag: vec![mention],
        published: Some(comment.created_at),
        updated: comment.updated_at,
        replies: Some(Value::String(format!("{}/replies", comment.ap_id))),
        to: vec![url(PUBLIC)?],
        cc: vec![
            url(&target.author.ap_id)?,
            url(&DbPerson(author.clone()).followers_url())?,
        ],
        sensitive: Some(false),
        image: None,
        icon: None,
        audience: None,
        context: None,
        name_map: None,
        interaction_policy: comment.local.then(quote_policy),
    })
}

/// A post's JSON, loaded through `db` (a transaction sees its own uncommitted rows).
pub async fn post_json(
    db: &mut sqlx::PgConnection,
    post: &DbPost,
    origin: &str,
    local_host: &str,
) -> Result<PostJson, FederationError> {
    post_json_for(db, post, origin, local_host, None).await
}

/// [`post_json`] in the variant for a peer running `software` (see `peers`).
pub async fn post_json_for(
    db: &mut sqlx::PgConnection,
    post: &DbPost,
    origin: &str,
    local_host: &str,
    software: Option<&str>,
) -> Result<PostJson, FederationError> {
    let author = actors::by_id(&mut *db, post.author_id())
        .await?
        .ok_or(FederationError::NotFound)?;
    let group_tags = crate::db::groups::story_group_tags(&mut *db, post.story_id()).await?;
    match post {
        DbPost::Story(story) => {
            let mut json = story_json(story, &author, origin, software)?;
            place_in_discussion(&mut json, story, &group_tags, origin)?;
            Ok(json)
        }
        DbPost::Comment(comment) => {
            let target = reply_target(db, comment).await?;
            let mut json = comment_json(comment, &author, &target, origin, local_host)?;
            if let Some(story) = stories::get(&mut *db, comment.story_id).await? {
                place_in_discussion(&mut json, &story, &group_tags, origin)?;
            }
            Ok(json)
        }
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `html` without its first paragraph when that paragraph is only a link to `link`.
fn without_link_paragraph(html: &str, link: &Url) -> String {
    let trimmed = html.trim_start();
    let Some(end) = trimmed.find("</p>") else {
        return html.to_owned();
    };
    let first = &trimmed[..end];
    let opens_with_link = [link.as_str(), link.as_str().trim_end_matches('/')]
        .iter()
        .any(|l| first.starts_with(&format!(r#"<p><a href="{}""#, html_escape(l))));
    if opens_with_link && first.matches("<a ").count() == 1 && first.ends_with("</a>") {
        trimmed[end + "</p>".len()..].trim_start().to_owned()
    } else {
        html.to_owned()
    }
}

#[async_trait]
impl Object for DbPost {
    type DataType = web::Data<AppState>;
    type Kind = PostJson;
    type Error = FederationError;

    fn last_refreshed_at(&self) -> Option<DateTime<Utc>> {
        // Remote posts change through Update activities, not by refetching.
        Some(Utc::now())
    }

    async fn read_from_id(id: Url, data: &FedData) -> Result<Option<Self>, FederationError> {
        Ok(DbPost::find(&data.db.write, id.as_str()).await?)
    }

    async fn into_json(self, data: &FedData) -> Result<PostJson, FederationError> {
        let mut conn = data.db.read.acquire().await?;
        post_json(&mut conn, &self, &data.config.origin(), &data.config.host()).await
    }

    async fn verify(
        json: &PostJson,
        expected_domain: &Url,
        _: &FedData,
    ) -> Result<(), FederationError> {
        verify_domains_match(&json.id, expected_domain)?;
        let author = json
            .attributed_to
            .author()
            .ok_or_else(|| FederationError::BadRequest("the post names no author".into()))?;
        // A server speaks only for its own people.
        verify_domains_match(&author, &json.id).map_err(|_| {
            FederationError::Forbidden("the post's author lives on another server".into())
        })?;
        Ok(())
    }

    async fn from_json(json: PostJson, data: &FedData) -> Result<Self, FederationError> {
        let author_id = json
            .attributed_to
            .author()
            .ok_or_else(|| FederationError::BadRequest("no author".into()))?;
        let author = ObjectId::<DbPerson>::from(author_id)
            .dereference(data)
            .await?;
        let parent = match &json.in_reply_to {
            Some(parent) => Some(
                ObjectId::<DbPost>::from(parent.clone())
                    .dereference(data)
                    .await?,
            ),
            None => None,
        };
        let db = &data.db.write;
        let stored = match DbPost::store(json, &author.0, parent.as_ref(), data).await? {
            Stored::Comment(id) => comments::get(db, id).await?.map(DbPost::Comment),
            Stored::Story(id) => stories::get(db, id).await?.map(DbPost::Story),
        };
        stored.ok_or(FederationError::NotFound)
    }
}

/// What [`DbPost::store`] wrote.
pub enum Stored {
    Comment(i64),
    Story(i64),
}

impl DbPost {
    /// Stores a verified remote post by `author`: a comment under `parent` when it replies to one
    /// (which the caller found), else a story. The inbox calls this with what it has already
    /// looked up; [`Object::from_json`] looks author and parent up first.
    pub async fn store(
        json: PostJson,
        author: &ActorRow,
        parent: Option<&DbPost>,
        data: &FedData,
    ) -> Result<Stored, FederationError> {
        // A peer's text loses the characters lien refuses from people (see crate::input).
        let html = markdown::sanitize(&strip_refused(&json.html()));
        let source = json
            .source
            .as_ref()
            .filter(|s| s.media_type == "text/markdown")
            .map(|s| strip_refused(&s.content).into_owned());
        let published = json.published.unwrap_or_else(Utc::now);
        // The original's page: `url`, unless it is the object itself or (lien's and Lemmy's
        // `Page`s) the shared link.
        let shared_link = json.link();
        let remote_url = json
            .url
            .as_ref()
            .filter(|u| *u != &json.id && Some(*u) != shared_link.as_ref())
            .map(Url::as_str);
        let db = &data.db.write;
        match parent {
            Some(parent) => {
                let (story_id, parent_id) = match parent {
                    DbPost::Story(story) => (story.id, None),
                    DbPost::Comment(comment) => (comment.story_id, Some(comment.id)),
                };
                let id = comments::upsert_remote(
                    db,
                    &RemoteComment {
                        ap_id: json.id.as_str(),
                        story_id,
                        parent_id,
                        author_id: author.id,
                        body: source.as_deref().unwrap_or_default(),
                        body_html: &html,
                        published,
                        remote_url,
                    },
                )
                .await?;
                // Local people it mentions hear of it (the one it answers already did).
                let mentioned: Vec<String> =
                    json.mentions().into_iter().map(String::from).collect();
                notifications::mentions(db, id, &mentioned).await?;
                Ok(Stored::Comment(id))
            }
            None => {
                let parts = super::note_story::story_parts(&json, &html);
                let link = parts.link.filter(|l| links::parse_link(l.as_str()).is_ok());
                let link_parts = link
                    .as_ref()
                    .map(|l| (l.to_string(), links::url_key(l), links::domain(l)));
                let title = strip_refused(&parts.title);
                // A lien Page's content opens with the link as a paragraph (the title or, before,
                // the URL as its text); the page shows the link already, so the body is the
                // story's own text: its Markdown source, else the content after that paragraph.
                // A status whose whole text is the title has no body beyond it.
                let body_html = match (&link, json.kind.as_str()) {
                    (Some(link), "Page") => match source.as_deref() {
                        Some(source) => markdown::render(source),
                        None => without_link_paragraph(&html, link),
                    },
                    _ if parts.title_is_whole_text => String::new(),
                    _ => html,
                };
                let tags = parts.tags;
                let id = stories::upsert_remote(
                    db,
                    &RemoteStory {
                        ap_id: json.id.as_str(),
                        author_id: author.id,
                        title: &title,
                        link: link_parts.as_ref().map(|(url, key, domain)| LinkParts {
                            url,
                            key,
                            domain,
                        }),
                        body: source.as_deref().unwrap_or_default(),
                        body_html: &body_html,
                        tags: &tags,
                        published,
                        remote_url,
                    },
                )
                .await?;
                Ok(Stored::Story(id))
            }
        }
    }
}
