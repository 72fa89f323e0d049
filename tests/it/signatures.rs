//! Draft-cavage HTTP signatures as Mastodon makes and checks them, written independently of lien's
//! code: the tests sign as a Mastodon server would, and check what lien sends the way Mastodon does.

use std::{collections::BTreeMap, time::Duration};

use actix_web::HttpRequest;
use base64::{engine::general_purpose::STANDARD as Base64, Engine};
use rsa::{
    pkcs8::{DecodePrivateKey, DecodePublicKey},
    Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use url::Url;

/// The headers of a POST signed like Mastodon signs deliveries: `(request-target) host date
/// digest`, rsa-sha256, with `key_id` naming the key. The Digest covers `digest_of` (normally the body).
pub fn signed_post_headers(
    inbox: &Url,
    digest_of: &[u8],
    key_id: &str,
    private_pem: &str,
) -> Vec<(String, String)> {
    signed_post_headers_at(inbox, digest_of, key_id, private_pem, chrono::Utc::now())
}

/// The same, as signed at `when` (to send a signature that has expired).
pub fn signed_post_headers_at(
    inbox: &Url,
    digest_of: &[u8],
    key_id: &str,
    private_pem: &str,
    when: chrono::DateTime<chrono::Utc>,
) -> Vec<(String, String)> {
    let host = match inbox.port() {
        Some(port) => format!("{}:{port}", inbox.host_str().unwrap()),
        None => inbox.host_str().unwrap().to_owned(),
    };
    let date = when.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    let digest = format!("SHA-256={}", Base64.encode(Sha256::digest(digest_of)));
    let mut headers = BTreeMap::new();
    headers.insert("host".to_owned(), host);
    headers.insert("date".to_owned(), date);
    headers.insert("digest".to_owned(), digest);
    let key = RsaPrivateKey::from_pkcs8_pem(private_pem).expect("a PKCS#8 private key");
    let path = match inbox.query() {
        Some(query) => format!("{}?{query}", inbox.path()),
        None => inbox.path().to_owned(),
    };
    let signature = http_signature_normalization::Config::new()
        .mastodon_compat()
        .begin_sign("POST", &path, headers.clone())
        .unwrap()
        .sign(key_id.to_owned(), |signing_string| {
            let hashed = Sha256::digest(signing_string.as_bytes());
            key.sign(Pkcs1v15Sign::new::<Sha256>(), &hashed)
                .map(|s| Base64.encode(s))
        })
        .unwrap()
        .signature_header();
    let mut out: Vec<(String, String)> = headers.into_iter().filter(|(k, _)| k != "host").collect();
    out.push(("signature".to_owned(), signature));
    out.push((
        "content-type".to_owned(),
        "application/activity+json".to_owned(),
    ));
    out
}

/// What Mastodon checks of a POST: a draft-cavage signature covering `(request-target)`, `host`,
/// `date` and `digest`, made with the key of the activity's actor; a Digest that matches the body.
pub fn check_signature(
    request: &HttpRequest,
    body: &[u8],
    keys: &HashMap<String, String>,
) -> Result<(), String> {
    let headers: BTreeMap<String, String> = request
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    let content_type = headers.get("content-type").map(String::as_str);
    if content_type != Some("application/activity+json") {
        return Err(format!("content type {content_type:?}"));
    }
    let signature = headers.get("signature").ok_or("no Signature header")?;
    let covered = signature
        .split(',')
        .find_map(|part| part.trim().strip_prefix("headers="))
        .ok_or("the signature names no headers")?
        .trim_matches('"');
    let covered: Vec<&str> = covered.split(' ').collect();
    for needed in ["(request-target)", "host", "date", "digest"] {
        if !covered.contains(&needed) {
            return Err(format!(
                "the signature does not cover {needed}: {covered:?}"
            ));
        }
    }
    let digest = format!("SHA-256={}", Base64.encode(Sha256::digest(body)));
    if headers.get("digest") != Some(&digest) {
        return Err(format!(
            "digest {:?}, body hashes to {digest}",
            headers.get("digest")
        ));
    }
    let host = headers.get("host").ok_or("no Host header")?;
    if !host.starts_with("localhost:") {
        return Err(format!("host {host}"));
    }
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let unverified = http_signature_normalization::Config::new()
        .set_expiration(Duration::from_secs(3600))
        .require_digest()
        .begin_verify("POST", path, headers.clone())
        .map_err(|error| format!("unverifiable signature: {error:?}"))?;
    let key_id = unverified.key_id().to_owned();
    let pem = keys
        .get(&key_id)
        .ok_or_else(|| format!("unknown key {key_id}"))?;
    let key = RsaPublicKey::from_public_key_pem(pem).map_err(|error| error.to_string())?;
    let valid = unverified.verify(|signature, signing_string| {
        Base64.decode(signature).is_ok_and(|signature| {
            key.verify(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(signing_string.as_bytes()),
                &signature,
            )
            .is_ok()
        })
    });
    if !valid {
        return Err(format!("the signature does not verify with {key_id}"));
    }
    let activity: Value = serde_json::from_slice(body).map_err(|error| error.to_string())?;
    let actor = activity["actor"].as_str().unwrap_or_default();
    if key_id != format!("{actor}#main-key") {
        return Err(format!("signed with {key_id} for actor {actor}"));
    }
    Ok(())
}

/// The headers of a POST signed with RFC 9421 the way Fedify signs (`@method`, `@target-uri`,
/// `@authority`, `host`, `date` and `content-digest`, rsa-v1_5-sha256, `created`), written from
/// the RFC rather than from lien's code. The Content-Digest covers `digest_of` (normally the body).
pub fn rfc9421_post_headers(
    inbox: &Url,
    digest_of: &[u8],
    key_id: &str,
    private_pem: &str,
    created: chrono::DateTime<chrono::Utc>,
) -> Vec<(String, String)> {
    let authority = match inbox.port() {
        Some(port) => format!("{}:{port}", inbox.host_str().unwrap()),
        None => inbox.host_str().unwrap().to_owned(),
    };
    let date = created.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    let digest = format!("sha-256=:{}:", Base64.encode(Sha256::digest(digest_of)));
    let components = [
        ("@method", "POST".to_owned()),
        ("@target-uri", inbox.as_str().to_owned()),
        ("@authority", authority.clone()),
        ("host", authority),
        ("date", date.clone()),
        ("content-digest", digest.clone()),
    ];
    let names: Vec<String> = components.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    let params = format!(
        "({});alg=\"rsa-v1_5-sha256\";keyid=\"{key_id}\";created={}",
        names.join(" "),
        created.timestamp()
    );
    let mut base: String = components
        .iter()
        .map(|(name, value)| format!("\"{name}\": {value}\n"))
        .collect();
    base.push_str(&format!("\"@signature-params\": {params}"));
    let key = RsaPrivateKey::from_pkcs8_pem(private_pem).expect("a PKCS#8 private key");
    let signature = key
        .sign(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(base.as_bytes()),
        )
        .unwrap();
    vec![
        ("date".to_owned(), date),
        ("content-digest".to_owned(), digest),
        ("signature-input".to_owned(), format!("sig1={params}")),
        (
            "signature".to_owned(),
            format!("sig1=:{}:", Base64.encode(signature)),
        ),
        (
            "content-type".to_owned(),
            "application/activity+json".to_owned(),
        ),
    ]
}
