//! Signatures on outgoing POSTs, in the scheme the peer accepts (see `delivery`): draft-cavage the
//! way Mastodon makes and checks it (`(request-target) host date digest`, rsa-sha256, no
//! `(created)`/`(expires)`), or RFC 9421 the way Fedify and Mastodon 4.5 check it (`@method`,
//! `@target-uri`, `@authority` and an RFC 9530 `Content-Digest`, rsa-v1_5-sha256, `created`).
//!
//! The delivery worker signs every POST it sends, so signing is its main cost. The library's
//! signer (the `rsa` crate) took about 2.5 ms of CPU per signature here; `ring` (already linked,
//! for TLS) takes a fraction of that. Keys are parsed once per signer and kept, not per POST.

use std::{collections::BTreeMap, time::Duration};

use base64::{engine::general_purpose::STANDARD as Base64, Engine};
use ring::{
    rand::SystemRandom,
    signature::{RsaKeyPair, RSA_PKCS1_SHA256},
};
use sfv::{BareItem, InnerList, Item, Key, ListEntry, ListSerializer, Parameters};
use sha2::{Digest, Sha256};
use url::Url;

use super::verification::Scheme;

/// How long a signature is valid for; peers verify with their own window (Mastodon: 12 h around
/// the Date, the library: 1 h).
const EXPIRES_AFTER: Duration = Duration::from_secs(60 * 60);

/// A parsed private key and the key id that names it (`{actor}#main-key`).
pub struct SigningKey {
    key_id: String,
    key: RsaKeyPair,
}

impl SigningKey {
    /// Parses a PKCS#8 PEM private key (what lien generates) for `actor`.
    pub fn new(actor: &Url, private_key_pem: &str) -> anyhow::Result<SigningKey> {
        let der: String = private_key_pem
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with("-----"))
            .collect();
        let der = Base64.decode(der)?;
        let key = RsaKeyPair::from_pkcs8(&der)
            .map_err(|e| anyhow::anyhow!("not a usable RSA private key: {e}"))?;
        Ok(SigningKey {
            key_id: format!("{actor}#main-key"),
            key,
        })
    }

    /// The headers that sign a POST of `body` to `inbox` now in `scheme`.
    pub fn post_headers(
        &self,
        inbox: &Url,
        body: &[u8],
        scheme: Scheme,
    ) -> anyhow::Result<Vec<(&'static str, String)>> {
        match scheme {
            Scheme::Cavage => self.cavage_headers(inbox, body),
            Scheme::Rfc9421 => self.rfc9421_headers(inbox, body),
        }
    }

    /// RFC 9421: Content-Digest, Signature-Input and Signature. `@authority` is the Host reqwest
    /// sends, from the URL; `@target-uri` the URL itself.
    fn rfc9421_headers(
        &self,
        inbox: &Url,
        body: &[u8],
    ) -> anyhow::Result<Vec<(&'static str, String)>> {
        let digest = format!("sha-256=:{}:", Base64.encode(Sha256::digest(body)));
        let components = [
            ("@method", "POST".to_owned()),
            ("@target-uri", inbox.as_str().to_owned()),
            ("@authority", authority(inbox)),
            ("content-digest", digest.clone()),
        ];
        let string = |value: &str| -> anyhow::Result<BareItem> {
            Ok(BareItem::String(
                sfv::String::from_string(value.to_owned()).map_err(|(e, _)| e)?,
            ))
        };
        let mut params = Parameters::new();
        params.insert(
            Key::from_string("created".into()).map_err(|(e, _)| e)?,
            BareItem::Integer(chrono::Utc::now().timestamp().try_into()?),
        );
        params.insert(
            Key::from_string("keyid".into()).map_err(|(e, _)| e)?,
            string(&self.key_id)?,
        );
        params.insert(
            Key::from_string("alg".into()).map_err(|(e, _)| e)?,
            string("rsa-v1_5-sha256")?,
        );
        let items = components
            .iter()
            .map(|(name, _)| Ok(Item::new(string(name)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut serializer = ListSerializer::new();
        serializer.members([&ListEntry::InnerList(InnerList::with_params(items, params))]);
        let input = serializer.finish().unwrap_or_default();
        let mut base = String::new();
        for (name, value) in &components {
            base.push_str(&format!("\"{name}\": {value}\n"));
        }
        base.push_str(&format!("\"@signature-params\": {input}"));
        let signature = self.sign(&base)?;
        Ok(vec![
            ("content-digest", digest),
            ("signature-input", format!("sig1={input}")),
            ("signature", format!("sig1=:{signature}:")),
        ])
    }

    /// draft-cavage: Date, Digest and Signature (Host is signed as reqwest will send it, from the
    /// URL).
    fn cavage_headers(
        &self,
        inbox: &Url,
        body: &[u8],
    ) -> anyhow::Result<Vec<(&'static str, String)>> {
        let host = authority(inbox);
        let date = chrono::Utc::now()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let digest = format!("SHA-256={}", Base64.encode(Sha256::digest(body)));
        let path = match inbox.query() {
            Some(query) => format!("{}?{query}", inbox.path()),
            None => inbox.path().to_owned(),
        };
        let headers = BTreeMap::from([
            ("host".to_owned(), host),
            ("date".to_owned(), date.clone()),
            ("digest".to_owned(), digest.clone()),
        ]);
        let signature = http_signature_normalization::Config::new()
            .mastodon_compat()
            .set_expiration(EXPIRES_AFTER)
            .begin_sign("POST", &path, headers)?
            .sign(self.key_id.clone(), |signing_string| {
                self.sign(signing_string)
            })?
            .signature_header();
        Ok(vec![
            ("date", date),
            ("digest", digest),
            ("signature", signature),
        ])
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 over the signing string or signature base, base64.
    fn sign(&self, signing_string: &str) -> anyhow::Result<String> {
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_string.as_bytes(),
                &mut signature,
            )
            .map_err(|_| anyhow::anyhow!("RSA signing failed"))?;
        Ok(Base64.encode(signature))
    }
}

/// `host[:port]`, as reqwest sends it in Host.
fn authority(url: &Url) -> String {
    match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_what_mastodon_checks() {
        let pair = activitypub_federation::http_signatures::generate_actor_keypair().unwrap();
        let actor: Url = "https://a.example/users/x".parse().unwrap();
        let key = SigningKey::new(&actor, &pair.private_key).unwrap();
        let inbox: Url = "https://b.example:8443/inbox?x=1".parse().unwrap();
        let headers: BTreeMap<String, String> = key
            .post_headers(&inbox, b"{}", Scheme::Cavage)
            .unwrap()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .chain([("host".to_owned(), "b.example:8443".to_owned())])
            .collect();
        let unverified = http_signature_normalization::Config::new()
            .require_digest()
            .begin_verify("POST", "/inbox?x=1", headers)
            .unwrap();
        assert_eq!(unverified.key_id(), "https://a.example/users/x#main-key");
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            key.key.public().as_ref().to_vec(),
        );
        assert!(unverified.verify(|signature, signing_string| {
            public
                .verify(
                    signing_string.as_bytes(),
                    &Base64.decode(signature).unwrap(),
                )
                .is_ok()
        }));
    }
}
