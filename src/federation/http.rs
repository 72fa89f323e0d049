//! Federation's read side: actors and objects as JSON under their ids (content negotiation beside
//! the HTML pages), `replies` and `followers` collections, outboxes, and discovery (WebFinger,
//! NodeInfo 2.1 and 2.0, host-meta).

use activitypub_federation::fetch::webfinger::extract_webfinger_name;
use actix_web::{
    guard::{self, GuardContext},
    http::header,
    web, HttpRequest, HttpResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{
    objects::{post_json, post_json_for, DbPerson, DbPost},
    outbox, peers,
    protocol::{with_context, OrderedCollection, Tombstone},
    site, FedData, FedResult, FederationError,
};
use crate::{
    config::{Registration, Switch},
    db::{actors, comments, stories, votes},
};

/// The content type Mastodon insists on (it refuses `application/json`).
pub const ACTIVITY_JSON: &str = "application/activity+json";

/// Whether a request asks for ActivityPub JSON rather than a page.
pub fn wants_activity_json(ctx: &GuardContext) -> bool {
    ctx.head()
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            accept.contains(ACTIVITY_JSON)
                || (accept.contains("application/ld+json") && accept.contains("activitystreams"))
        })
}

/// JSON served the way peers expect it.
pub fn activity_json(value: &impl Serialize) -> FedResult<HttpResponse> {
    Ok(HttpResponse::Ok()
        .content_type(ACTIVITY_JSON)
        .insert_header((header::VARY, "Accept"))
        .body(serde_json::to_string(value).map_err(anyhow::Error::from)?))
}

fn gone(id: &str, former_type: &str) -> FedResult<HttpResponse> {
    let tombstone = Tombstone {
        kind: "Tombstone".to_owned(),
        id: id.parse().map_err(anyhow::Error::from)?,
        former_type: Some(former_type.to_owned()),
        deleted: None,
    };
    Ok(HttpResponse::Gone()
        .content_type(ACTIVITY_JSON)
        .body(serde_json::to_string(&with_context(tombstone)).map_err(anyhow::Error::from)?))
}

/// Routes registered before the HTML ones: the ActivityPub variants are guarded by `Accept`, so a
/// browser falls through to the page.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let ap = || guard::fn_guard(wants_activity_json);
    cfg.route("/.well-known/webfinger", web::get().to(webfinger))
        .route("/.well-known/nodeinfo", web::get().to(nodeinfo_links))
        .route("/nodeinfo/2.1", web::get().to(nodeinfo_2_1))
        .route("/nodeinfo/2.0", web::get().to(nodeinfo_2_0))
        .route("/.well-known/host-meta", web::get().to(host_meta))
        .route("/actor", web::get().to(instance_actor))
        .route("/actor/outbox", web::get().to(instance_outbox))
        .route(
            "/quote_authorizations/{id}",
            web::get().to(quote_authorization),
        )
        .route("/activities/{id}", web::get().to(activity))
        .route("/users/{name}/followers", web::get().to(followers))
        .route("/users/{name}/outbox", web::get().to(outbox))
        .service(
            web::resource("/users/{name}")
                .guard(ap())
                .route(web::get().to(person)),
        )
        .route("/users/{name}", web::get().to(person_page))
        .service(
            web::resource("/@{name}")
                .guard(ap())
                .route(web::get().to(person)),
        )
        .route("/s/{id}/replies", web::get().to(story_replies))
        .route("/c/{id}/replies", web::get().to(comment_replies))
        .service(
            web::resource("/s/{id}")
                .guard(ap())
                .route(web::get().to(story)),
        )
        .service(
            web::resource("/s/{id}/{slug}")
                .guard(ap())
                .route(web::get().to(story_with_slug)),
        )
        .service(
            web::resource("/c/{id}")
                .guard(ap())
                .route(web::get().to(comment)),
        );
}

/// An activity lien sent, at its id, for the peers that check an announced activity at its
/// origin (a vote made here, announced by a tag group to its other followers). Votes are what
/// lien keeps of its activities; anything else is not kept, and answers 404.
async fn activity(path: web::Path<String>, data: FedData) -> FedResult<HttpResponse> {
    check_on(&data)?;
    let id = format!("{}/activities/{}", data.config.origin(), path.into_inner());
    let (actor, object, value) = votes::local_by_ap_id(objects_db(&data), &id)
        .await?
        .ok_or(FederationError::NotFound)?;
    activity_json(&serde_json::json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": id,
        "type": if value > 0 { "Like" } else { "Dislike" },
        "actor": actor,
        "object": object,
    }))
}

/// Where objects are read from for peers: the primary. A peer fetches an object (or its author)
/// the moment it hears of it, which is exactly when a read replica may not have it yet.
fn objects_db(data: &FedData) -> &sqlx::PgPool {
    &data.db.write
}

fn check_on(data: &FedData) -> FedResult<()> {
    if data.config.federation == Switch::Off {
        return Err(FederationError::NotFound);
    }
    Ok(())
}

/// A live local person; a deleted account is `Gone`.
async fn local_person(data: &FedData, name: &str) -> FedResult<DbPerson> {
    check_on(data)?;
    let person = actors::local_by_name(objects_db(data), name)
        .await?
        .ok_or(FederationError::NotFound)?;
    if person.deleted_at.is_some() {
        return Err(FederationError::Gone);
    }
    Ok(DbPerson(person))
}

/// A deleted account's actor answers 410 with a `Tombstone`, as Mastodon's do, so that peers
/// fetching it learn it is gone rather than unreachable.
async fn person(path: web::Path<String>, data: FedData) -> FedResult<HttpResponse> {
    check_on(&data)?;
    let person = actors::local_by_name(objects_db(&data), &path)
        .await?
        .ok_or(FederationError::NotFound)?;
    if person.deleted_at.is_some() {
        return gone(&person.ap_id, "Person");
    }
    activity_json(&with_context(
        DbPerson(person).to_json(&data.config.origin())?,
    ))
}

/// `P/users/{name}` in a browser: the profile page.
async fn person_page(path: web::Path<String>) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/@{}", path.into_inner())))
        .finish()
}

async fn followers(path: web::Path<String>, data: FedData) -> FedResult<HttpResponse> {
    let person = local_person(&data, &path).await?;
    let count = actors::follower_count(&data.db.read, person.0.id).await?;
    // Who follows whom is not published, only how many (as Mastodon does by default).
    let id = format!("{}/followers", person.0.ap_id)
        .parse()
        .map_err(anyhow::Error::from)?;
    activity_json(&with_context(OrderedCollection::new(id, vec![], count)))
}

/// How many of a person's newest stories their outbox lists.
const OUTBOX_ITEMS: i64 = 20;

async fn outbox(path: web::Path<String>, data: FedData) -> FedResult<HttpResponse> {
    let person = local_person(&data, &path).await?;
    let recent = stories::list(
        &data.db.read,
        &stories::Listing::Author(person.0.id),
        OUTBOX_ITEMS,
        0,
    )
    .await?;
    let mut conn = objects_db(&data).acquire().await?;
    let (origin, host) = (data.config.origin(), data.config.host());
    let mut items = Vec::with_capacity(recent.len());
    for story in recent {
        let ap_id = story.ap_id.clone();
        let page = post_json(&mut conn, &DbPost::Story(story), &origin, &host).await?;
        items.push(json!({
            "id": format!("{ap_id}#create"),
            "type": "Create",
            "actor": person.0.ap_id,
            "published": page.published,
            "to": page.to,
            "cc": page.cc,
            "object": page,
        }));
    }
    let total = items.len() as i64;
    let id = format!("{}/outbox", person.0.ap_id)
        .parse()
        .map_err(anyhow::Error::from)?;
    activity_json(&with_context(OrderedCollection::new(id, items, total)))
}

async fn instance_actor(data: FedData) -> FedResult<HttpResponse> {
    check_on(&data)?;
    let actor = site::instance_actor(&data).await?;
    activity_json(&with_context(
        actor.to_json(&data.config.origin(), &data.config.host()),
    ))
}

async fn instance_outbox(data: FedData) -> FedResult<HttpResponse> {
    check_on(&data)?;
    let id = format!("{}/actor/outbox", data.config.origin())
        .parse()
        .map_err(anyhow::Error::from)?;
    activity_json(&with_context(OrderedCollection::new(id, vec![], 0)))
}

/// A quote authorization (FEP-044f), exactly the attributes of Mastodon's
/// `quote_authorization_serializer.rb`: the quoted post's author grants the quoting post
/// (`interactingObject`) the right to quote the post (`interactionTarget`). Public, as the FEP
/// requires; 410 once revoked or the quoted post is gone, so servers checking it drop the quote.
async fn quote_authorization(path: web::Path<i64>, data: FedData) -> FedResult<HttpResponse> {
    check_on(&data)?;
    let stamp = crate::db::quotes::get(objects_db(&data), path.into_inner())
        .await?
        .ok_or(FederationError::NotFound)?;
    let id = outbox::authorization_id(&data.config.origin(), stamp.id);
    if stamp.gone {
        return gone(&id, "QuoteAuthorization");
    }
    activity_json(&with_context(json!({
        "id": id,
        "type": "QuoteAuthorization",
        "attributedTo": stamp.author_ap_id,
        "interactingObject": stamp.quote_ap_id,
        "interactionTarget": stamp.target_ap_id,
    })))
}

/// A post's JSON, in the variant for the software the request's User-Agent names (`peers`).
async fn serve_post(
    req: &HttpRequest,
    data: &FedData,
    post: Option<DbPost>,
) -> FedResult<HttpResponse> {
    check_on(data)?;
    let post = post.ok_or(FederationError::NotFound)?;
    if post.is_deleted() {
        let kind = if matches!(post, DbPost::Story(_)) {
            "Page"
        } else {
            "Note"
        };
        return gone(post.ap_id(), kind);
    }
    let software = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|ua| ua.to_str().ok())
        .and_then(peers::from_user_agent);
    let mut conn = objects_db(data).acquire().await?;
    let (origin, host) = (data.config.origin(), data.config.host());
    let json = post_json_for(&mut conn, &post, &origin, &host, software).await?;
    let mut response = activity_json(&with_context(json))?;
    response.headers_mut().insert(
        header::VARY,
        header::HeaderValue::from_static("Accept, User-Agent"),
    );
    Ok(response)
}

async fn story(req: HttpRequest, path: web::Path<i64>, data: FedData) -> FedResult<HttpResponse> {
    let story = stories::get(objects_db(&data), path.into_inner()).await?;
    serve_post(&req, &data, story.map(DbPost::Story)).await
}

async fn story_with_slug(
    req: HttpRequest,
    path: web::Path<(i64, String)>,
    data: FedData,
) -> FedResult<HttpResponse> {
    let story = stories::get(objects_db(&data), path.into_inner().0).await?;
    serve_post(&req, &data, story.map(DbPost::Story)).await
}

async fn comment(req: HttpRequest, path: web::Path<i64>, data: FedData) -> FedResult<HttpResponse> {
    let comment = comments::get(objects_db(&data), path.into_inner()).await?;
    serve_post(&req, &data, comment.map(DbPost::Comment)).await
}

async fn replies(
    data: &FedData,
    id: String,
    story_id: i64,
    parent: Option<i64>,
) -> FedResult<HttpResponse> {
    let items: Vec<Value> = comments::direct_reply_ids(&data.db.read, story_id, parent)
        .await?
        .into_iter()
        .map(Value::String)
        .collect();
    let total = items.len() as i64;
    let id = id.parse().map_err(anyhow::Error::from)?;
    activity_json(&with_context(OrderedCollection::new(id, items, total)))
}

async fn story_replies(path: web::Path<i64>, data: FedData) -> FedResult<HttpResponse> {
    check_on(&data)?;
    let story = stories::get(objects_db(&data), path.into_inner())
        .await?
        .ok_or(FederationError::NotFound)?;
    replies(&data, format!("{}/replies", story.ap_id), story.id, None).await
}

async fn comment_replies(path: web::Path<i64>, data: FedData) -> FedResult<HttpResponse> {
    check_on(&data)?;
    let comment = comments::get(objects_db(&data), path.into_inner())
        .await?
        .ok_or(FederationError::NotFound)?;
    replies(
        &data,
        format!("{}/replies", comment.ap_id),
        comment.story_id,
        Some(comment.id),
    )
    .await
}

#[derive(Deserialize)]
struct WebfingerQuery {
    resource: String,
}

/// `acct:name@host` (or the actor's URL) → the actor's id, exactly. A person and a tag group may
/// share a name: both are answered, person first (Mastodon takes the first `self` link), each
/// `self` link typed with its ActivityStreams type as Lemmy answers, so that Lemmy finds the
/// `Group` for `!name@host` and the `Person` for `@name@host`.
async fn webfinger(query: web::Query<WebfingerQuery>, data: FedData) -> FedResult<HttpResponse> {
    check_on(&data)?;
    let origin = data.config.origin();
    let resource = query.resource.as_str();
    let name = if let Some(name) = resource.strip_prefix(&format!("{origin}/users/")) {
        name.to_owned()
    } else if let Some(tag) = resource.strip_prefix(&format!("{origin}/t/")) {
        tag.to_owned()
    } else {
        extract_webfinger_name(resource, &data)
            .map_err(|_| FederationError::NotFound)?
            .to_owned()
    };
    let person = match resource.starts_with(&format!("{origin}/t/")) {
        true => None,
        false => actors::local_by_name(objects_db(&data), &name).await?,
    };
    let group = match resource.starts_with(&format!("{origin}/users/")) {
        true => None,
        false => super::group::find(&data, &name.to_lowercase()).await?,
    };
    let live_person = person.as_ref().filter(|p| p.deleted_at.is_none());
    if live_person.is_none() && group.is_none() {
        return Err(match person {
            Some(_) => FederationError::Gone,
            None => FederationError::NotFound,
        });
    }
    let typed = |kind: &str| json!({ "https://www.w3.org/ns/activitystreams#type": kind });
    let (mut aliases, mut links) = (vec![], vec![]);
    let mut subject_name = name.clone();
    if let Some(person) = live_person {
        let profile = format!("{origin}/@{}", person.name);
        subject_name = person.name.clone();
        aliases.extend([person.ap_id.clone(), profile.clone()]);
        links.push(json!({ "rel": "self", "type": ACTIVITY_JSON, "href": person.ap_id, "properties": typed("Person") }));
        links.push(json!({ "rel": "http://webfinger.net/rel/profile-page", "type": "text/html", "href": profile }));
    }
    if let Some(group) = &group {
        let id = super::group::group_id(&origin, &group.tag)?;
        if live_person.is_none() {
            subject_name = group.tag.clone();
            aliases.push(id.to_string());
        }
        links.push(json!({ "rel": "self", "type": ACTIVITY_JSON, "href": id, "properties": typed("Group") }));
        links.push(json!({ "rel": "http://webfinger.net/rel/profile-page", "type": "text/html", "href": id }));
    }
    let body = json!({
        "subject": format!("acct:{subject_name}@{}", data.config.host()),
        "aliases": aliases,
        "links": links,
    });
    Ok(HttpResponse::Ok()
        .content_type("application/jrd+json")
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(body.to_string()))
}

/// Both versions are listed: Takahe and other servers read 2.0 only.
async fn nodeinfo_links(data: FedData) -> HttpResponse {
    let origin = data.config.origin();
    let links = ["2.1", "2.0"].map(|version| {
        json!({
            "rel": format!("http://nodeinfo.diaspora.software/ns/schema/{version}"),
            "href": format!("{origin}/nodeinfo/{version}"),
        })
    });
    HttpResponse::Ok().json(json!({ "links": links }))
}

async fn nodeinfo_2_1(data: FedData) -> FedResult<HttpResponse> {
    nodeinfo(data, "2.1").await
}

async fn nodeinfo_2_0(data: FedData) -> FedResult<HttpResponse> {
    nodeinfo(data, "2.0").await
}

/// NodeInfo in `version` "2.1" or "2.0", which differ only in 2.0 having no `software.homepage`
/// (nor `repository`).
async fn nodeinfo(data: FedData, version: &str) -> FedResult<HttpResponse> {
    let (users, active_month, active_halfyear, stories_count, comments_count): (i64, i64, i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from person where local),
                (select count(distinct author_id) from story where local and created_at > now() - interval '30 days'),
                (select count(distinct author_id) from story where local and created_at > now() - interval '180 days'),
                (select count(*) from story where local and deleted_at is null),
                (select count(*) from comment where local and deleted_at is null)",
    )
    .fetch_one(&data.db.read)
    .await?;
    let mut software = json!({ "name": "lien", "version": env!("CARGO_PKG_VERSION") });
    if version == "2.1" {
        software["homepage"] = json!("https://codeberg.org/lien/lien");
    }
    let groups = crate::db::groups::count(&data.db.read).await?;
    let body = json!({
        "version": version,
        "software": software,
        "protocols": ["activitypub"],
        "services": { "inbound": [], "outbound": ["rss2.0", "atom1.0"] },
        "openRegistrations": data.config.registration == Registration::Open,
        "usage": {
            "users": { "total": users, "activeMonth": active_month, "activeHalfyear": active_halfyear },
            "localPosts": stories_count,
            "localComments": comments_count,
        },
        // Every tag in use is a group (FEP-1b12); those made so far are counted.
        "metadata": { "nodeName": data.config.host(), "localGroups": groups },
    });
    Ok(HttpResponse::Ok()
        .content_type(format!(
            "application/json; profile=\"http://nodeinfo.diaspora.software/ns/schema/{version}#\""
        ))
        .json(body))
}

async fn host_meta(data: FedData) -> HttpResponse {
    let origin = data.config.origin();
    HttpResponse::Ok()
        .content_type("application/xrd+xml; charset=utf-8")
        .body(format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">
  <Link rel="lrdd" template="{origin}/.well-known/webfinger?resource={{uri}}"/>
</XRD>
"#
        ))
}
