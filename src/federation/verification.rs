//! Incoming HTTP signatures, in both schemes peers send: draft-cavage (a `Signature` header alone:
//! Mastodon, Lemmy, Pleroma, GoToSocial, Misskey...) and RFC 9421 HTTP Message Signatures
//! (`Signature-Input` beside `Signature`, the body covered by an RFC 9530 `Content-Digest`: what
//! Fedify sends first, and what Mastodon 4.5 also accepts).
//!
//! [`read`] checks everything that needs no key, so that a request that can never verify is
//! refused (401) before any actor is fetched: the form, the covered components, the time window
//! and the body digest. [`Claim::verify`] then checks the signature itself with the signer's key,
//! RSA (PKCS#1 v1.5 with SHA-256 or SHA-512, or PSS with SHA-512) or Ed25519, through `ring`.
//!
//! Structured fields (RFC 8941) are parsed by the `sfv` crate; no maintained crate builds the RFC
//! 9421 signature base without bringing a second, pre-release RSA stack, so that part is here.

use std::collections::BTreeMap;

use actix_web::HttpRequest;
use base64::{engine::general_purpose::STANDARD as Base64, Engine};
use chrono::{DateTime, TimeDelta, Utc};
use ring::signature::{self, UnparsedPublicKey};
use sfv::{BareItem, Dictionary, InnerList, ListEntry, ListSerializer, Parser};
use sha2::{Digest, Sha256, Sha512};

/// How far in the future a signature's `Date` (or `created`) may be: clocks drift (Mastodon's
/// window too).
pub const MAX_FUTURE: TimeDelta = TimeDelta::hours(1);
/// How old a signature may be: a delivery retried from a queue keeps its signature only if it
/// is re-signed, but a slow queue may hold a request a while (Mastodon: 12 hours).
pub const MAX_AGE: TimeDelta = TimeDelta::hours(12);

/// The two ways of signing an HTTP request that fediverse servers use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// RFC 9421 HTTP Message Signatures.
    Rfc9421,
    /// draft-cavage-http-signatures-12, as Mastodon signs.
    Cavage,
}

impl Scheme {
    /// The name stored in `peer_signature.scheme`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Rfc9421 => "rfc9421",
            Scheme::Cavage => "cavage",
        }
    }

    pub fn from_name(name: &str) -> Option<Scheme> {
        match name {
            "rfc9421" => Some(Scheme::Rfc9421),
            "cavage" => Some(Scheme::Cavage),
            _ => None,
        }
    }
}

/// The algorithm a signature claims; `FromKey` (draft-cavage's `hs2019`, or no `alg` in RFC 9421)
/// means the key decides: RSA keys sign with SHA-256, Ed25519 keys with Ed25519.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Algorithm {
    FromKey,
    RsaSha256,
    RsaSha512,
    RsaPssSha512,
    Ed25519,
}

/// A signature whose form, covered components, time and body digest were checked: what is left
/// is to verify it with the signer's key.
#[derive(Debug)]
pub struct Claim {
    pub scheme: Scheme,
    pub key_id: String,
    algorithm: Algorithm,
    /// The signing string (draft-cavage) or signature base (RFC 9421) that was signed.
    message: Vec<u8>,
    signature: Vec<u8>,
}

/// Reads the signature of a POST to `origin` (the instance's public origin, which `@target-uri`
/// names) at `now`. The error says why it can never verify.
pub fn read(
    req: &HttpRequest,
    body: &[u8],
    origin: &str,
    now: DateTime<Utc>,
) -> Result<Claim, String> {
    let headers = req.headers();
    if !headers.contains_key("signature") {
        return Err("the request is not signed".into());
    }
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let request = Request {
        method: req.method().as_str(),
        path,
        origin,
        headers: req.headers(),
    };
    match headers.contains_key("signature-input") {
        true => read_rfc9421(&request, body, now),
        false => read_cavage(&request, body, now),
    }
}

struct Request<'a> {
    method: &'a str,
    path: &'a str,
    origin: &'a str,
    headers: &'a actix_web::http::header::HeaderMap,
}

impl Request<'_> {
    /// A header's field value as RFC 9421 takes it: every line of it, trimmed, joined by ", ".
    fn field(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .get_all(name)
            .map(|v| v.to_str().map(str::trim))
            .collect::<Result<_, _>>()
            .ok()?;
        (!values.is_empty()).then(|| values.join(", "))
    }
}

fn check_time(when: DateTime<Utc>, now: DateTime<Utc>, what: &str) -> Result<(), String> {
    if when > now + MAX_FUTURE {
        return Err(format!("the signature's {what} is in the future"));
    }
    if when < now - MAX_AGE {
        return Err(format!("the signature's {what} is too old"));
    }
    Ok(())
}

fn read_cavage(request: &Request, body: &[u8], now: DateTime<Utc>) -> Result<Claim, String> {
    let headers: BTreeMap<String, String> = request
        .headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    // `Date` and `Digest` must be signed (the library refuses a signature whose headers list
    // lacks them); its own expiry check is the wider one, the window is checked below.
    let unverified = http_signature_normalization::Config::new()
        .set_expiration(MAX_AGE.to_std().expect("a positive duration"))
        .require_header("date")
        .require_digest()
        .begin_verify(request.method, request.path, headers)
        .map_err(|e| format!("the HTTP signature cannot be used: {e}"))?;
    if !unverified
        .signing_string()
        .lines()
        .any(|line| line.starts_with("(request-target): "))
    {
        return Err("the signature does not cover (request-target)".into());
    }
    let date = request.field("date").unwrap_or_default();
    let date = DateTime::parse_from_rfc2822(&date)
        .map_err(|_| format!("the Date `{date}` cannot be read"))?;
    check_time(date.with_timezone(&Utc), now, "Date")?;
    check_legacy_digest(&request.field("digest").unwrap_or_default(), body)?;
    use http_signature_normalization::verify::{Algorithm as A, DeprecatedAlgorithm as D};
    let algorithm = match unverified.algorithm() {
        None | Some(A::Hs2019) => Algorithm::FromKey,
        Some(A::Deprecated(D::RsaSha256)) => Algorithm::RsaSha256,
        Some(A::Deprecated(D::RsaSha512)) => Algorithm::RsaSha512,
        Some(A::Unknown(name)) if name.eq_ignore_ascii_case("ed25519") => Algorithm::Ed25519,
        Some(other) => return Err(format!("the algorithm {other:?} is not supported")),
    };
    let signature = Base64
        .decode(unverified.signature())
        .map_err(|_| "the signature is not base64".to_owned())?;
    Ok(Claim {
        scheme: Scheme::Cavage,
        key_id: unverified.key_id().to_owned(),
        algorithm,
        message: unverified.signing_string().as_bytes().to_vec(),
        signature,
    })
}

/// `Digest: SHA-256=…[, SHA-512=…]`: every digest lien can compute must match, and there must be one.
fn check_legacy_digest(header: &str, body: &[u8]) -> Result<(), String> {
    let mut checked = false;
    for part in header.split(',') {
        let Some((algorithm, value)) = part.trim().split_once('=') else {
            continue;
        };
        let expected = match algorithm.to_ascii_lowercase().as_str() {
            "sha-256" => Base64.encode(Sha256::digest(body)),
            "sha-512" => Base64.encode(Sha512::digest(body)),
            _ => continue,
        };
        if value.trim() != expected {
            return Err("the Digest does not match the body".into());
        }
        checked = true;
    }
    match checked {
        true => Ok(()),
        false => Err("a SHA-256 or SHA-512 Digest is required".into()),
    }
}

/// `Content-Digest: sha-256=:…:, sha-512=:…:` (RFC 9530): every digest lien can compute must
/// match, and there must be one.
fn check_content_digest(header: &str, body: &[u8]) -> Result<(), String> {
    let digests: Dictionary = Parser::new(header)
        .parse()
        .map_err(|e| format!("the Content-Digest cannot be read: {e}"))?;
    let mut checked = false;
    for (algorithm, entry) in &digests {
        let expected = match algorithm.as_str() {
            "sha-256" => Sha256::digest(body).to_vec(),
            "sha-512" => Sha512::digest(body).to_vec(),
            _ => continue,
        };
        let given = match entry {
            ListEntry::Item(item) => item.bare_item.as_byte_sequence(),
            ListEntry::InnerList(_) => None,
        };
        if given != Some(expected.as_slice()) {
            return Err("the Content-Digest does not match the body".into());
        }
        checked = true;
    }
    match checked {
        true => Ok(()),
        false => Err("a sha-256 or sha-512 Content-Digest is required".into()),
    }
}

/// The components an RFC 9421 signature on a POST must cover (what Mastodon requires too): the
/// method, the whole target URI, and the body through its digest.
const REQUIRED_COMPONENTS: [&str; 3] = ["@method", "@target-uri", "content-digest"];

fn read_rfc9421(request: &Request, body: &[u8], now: DateTime<Utc>) -> Result<Claim, String> {
    let inputs: Dictionary = Parser::new(&request.field("signature-input").unwrap_or_default())
        .parse()
        .map_err(|e| format!("the Signature-Input cannot be read: {e}"))?;
    let signatures: Dictionary = Parser::new(&request.field("signature").unwrap_or_default())
        .parse()
        .map_err(|e| format!("the Signature cannot be read: {e}"))?;
    // The first labelled signature that has both its input and its value is the one checked
    // (a request rarely carries more than one; Fedify checks the same way).
    let (input, signature) = inputs
        .iter()
        .find_map(|(label, entry)| {
            let ListEntry::InnerList(input) = entry else {
                return None;
            };
            let Some(ListEntry::Item(item)) = signatures.get(label) else {
                return None;
            };
            Some((input, item.bare_item.as_byte_sequence()?.to_vec()))
        })
        .ok_or("no signature has both a Signature-Input and a Signature")?;
    let string_param = |name: &str| match input.params.get(name) {
        Some(BareItem::String(value)) => Some(value.as_str().to_owned()),
        _ => None,
    };
    let integer_param = |name: &str| match input.params.get(name) {
        Some(BareItem::Integer(value)) => Some(i64::from(*value)),
        _ => None,
    };
    let key_id = string_param("keyid").ok_or("the signature names no keyid")?;
    let created = integer_param("created").ok_or("the signature has no created time")?;
    let created = DateTime::from_timestamp(created, 0).ok_or("the created time is out of range")?;
    check_time(created, now, "created time")?;
    if let Some(expires) = integer_param("expires") {
        if expires < now.timestamp() {
            return Err("the signature has expired".into());
        }
    }
    let algorithm = match string_param("alg").as_deref() {
        None => Algorithm::FromKey,
        Some("rsa-v1_5-sha256") => Algorithm::RsaSha256,
        Some("rsa-v1_5-sha512") => Algorithm::RsaSha512,
        Some("rsa-pss-sha512") => Algorithm::RsaPssSha512,
        Some("ed25519") => Algorithm::Ed25519,
        Some(other) => return Err(format!("the algorithm {other} is not supported")),
    };
    let mut covered = Vec::with_capacity(input.items.len());
    for item in &input.items {
        // Component parameters (`;sf`, `;key`, `;req`, `;name`...) are not supported: refused
        // rather than read wrongly.
        match (&item.bare_item, item.params.is_empty()) {
            (BareItem::String(name), true) => covered.push(name.as_str().to_owned()),
            _ => return Err("a covered component has a form lien does not support".into()),
        }
    }
    if let Some(missing) = REQUIRED_COMPONENTS
        .iter()
        .find(|required| !covered.iter().any(|c| c == *required))
    {
        return Err(format!("the signature does not cover {missing}"));
    }
    check_content_digest(&request.field("content-digest").unwrap_or_default(), body)?;
    let mut base = String::new();
    for name in &covered {
        let value = component_value(request, name)?;
        if value.contains('\n') {
            return Err(format!("the {name} component spans lines"));
        }
        base.push_str(&format!("\"{name}\": {value}\n"));
    }
    // The parameters line is the inner list as serialized, the same bytes the signer signed.
    let mut params = ListSerializer::new();
    params.members([&ListEntry::InnerList(InnerList::with_params(
        input.items.clone(),
        input.params.clone(),
    ))]);
    let params = params.finish().unwrap_or_default();
    base.push_str(&format!("\"@signature-params\": {params}"));
    Ok(Claim {
        scheme: Scheme::Rfc9421,
        key_id,
        algorithm,
        message: base.into_bytes(),
        signature,
    })
}

/// A covered component's value (RFC 9421 section 2): a derived component or a header field.
fn component_value(request: &Request, name: &str) -> Result<String, String> {
    let (path, query) = match request.path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (request.path, None),
    };
    let authority = request
        .field("host")
        .map(|host| host.to_ascii_lowercase())
        .ok_or("the request has no Host")?;
    Ok(match name {
        "@method" => request.method.to_owned(),
        "@target-uri" => format!("{}{}", request.origin, request.path),
        "@authority" => authority,
        "@scheme" => request
            .origin
            .split_once("://")
            .map(|(scheme, _)| scheme.to_owned())
            .unwrap_or_default(),
        "@request-target" => request.path.to_owned(),
        "@path" => path.to_owned(),
        "@query" => format!("?{}", query.unwrap_or_default()),
        derived if derived.starts_with('@') => {
            return Err(format!("the component {derived} is not supported"))
        }
        header => request
            .field(header)
            .ok_or_else(|| format!("the covered header {header} is missing"))?,
    })
}

impl Claim {
    /// Whether the signature verifies with `public_key_pem` (an SPKI `PUBLIC KEY`, or a PKCS#1
    /// `RSA PUBLIC KEY`).
    pub fn verify(&self, public_key_pem: &str) -> bool {
        let Some(key) = PublicKey::from_pem(public_key_pem) else {
            return false;
        };
        let algorithm: &dyn signature::VerificationAlgorithm = match (&key, self.algorithm) {
            (PublicKey::Rsa(_), Algorithm::FromKey | Algorithm::RsaSha256) => {
                &signature::RSA_PKCS1_2048_8192_SHA256
            }
            (PublicKey::Rsa(_), Algorithm::RsaSha512) => &signature::RSA_PKCS1_2048_8192_SHA512,
            (PublicKey::Rsa(_), Algorithm::RsaPssSha512) => &signature::RSA_PSS_2048_8192_SHA512,
            (PublicKey::Ed25519(_), Algorithm::FromKey | Algorithm::Ed25519) => &signature::ED25519,
            _ => return false,
        };
        let (PublicKey::Rsa(der) | PublicKey::Ed25519(der)) = &key;
        UnparsedPublicKey::new(algorithm, der)
            .verify(&self.message, &self.signature)
            .is_ok()
    }
}

/// A public key as `ring` takes it: an RSAPublicKey (PKCS#1) DER, or Ed25519's 32 bytes.
enum PublicKey {
    Rsa(Vec<u8>),
    Ed25519(Vec<u8>),
}

/// The DER OIDs of rsaEncryption and Ed25519 (contents only).
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

impl PublicKey {
    fn from_pem(pem: &str) -> Option<PublicKey> {
        let pkcs1 = pem.contains("BEGIN RSA PUBLIC KEY");
        let der: String = pem
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with("-----"))
            .collect();
        let der = Base64.decode(der).ok()?;
        if pkcs1 {
            return Some(PublicKey::Rsa(der));
        }
        // SubjectPublicKeyInfo ::= SEQUENCE { SEQUENCE { OID, params }, BIT STRING }
        let (spki, _) = der_element(&der, 0x30)?;
        let (algorithm, rest) = der_element(spki, 0x30)?;
        let (oid, _) = der_element(algorithm, 0x06)?;
        let (bits, _) = der_element(rest, 0x03)?;
        // A BIT STRING's first byte counts unused bits: zero for a key.
        let key = bits.strip_prefix(&[0])?.to_vec();
        match oid {
            OID_RSA => Some(PublicKey::Rsa(key)),
            OID_ED25519 => Some(PublicKey::Ed25519(key)),
            _ => None,
        }
    }
}

/// One DER element with tag `tag` at the start of `input`: its contents and what follows it.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&length, mut rest) = rest.split_first()?;
    let length = match length {
        short if short < 0x80 => short as usize,
        long => {
            let count = (long & 0x7f) as usize;
            if count == 0 || count > 4 || rest.len() < count {
                return None;
            }
            let (bytes, after) = rest.split_at(count);
            rest = after;
            bytes.iter().fold(0usize, |n, b| (n << 8) | *b as usize)
        }
    };
    (rest.len() >= length).then(|| rest.split_at(length))
}
