//! Avatars are fetched, shrunk and served by lien itself (at `/avatars/{person id}`), as link
//! thumbnails are: a reader's browser never asks the host an avatar URL names, so viewing a profile
//! tells no third party who looked, and a page's Content-Security-Policy can stay `img-src 'self'`.
//!
//! The file is fetched the first time someone asks for it, through the SSRF-guarded fetcher (a
//! timeout, a size cap, public addresses only), and kept in the media directory under a hash of
//! its URL: a new avatar URL is a new file. A kept file older than [`REFRESH`] is fetched again;
//! a URL that failed is not tried again for [`FAILURE_PAUSE`].

use std::{
    path::PathBuf,
    sync::OnceLock,
    time::{Duration, Instant, SystemTime},
};

use quick_cache::sync::Cache;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use url::Url;

use crate::{
    config::Config,
    fetch::{Fetcher, Guard, Limits},
    preview,
};

/// Avatars are shown at 64 CSS pixels: twice that for dense screens.
pub const AVATAR_SIZE: u32 = 128;

/// How long a fetched avatar is served before it is fetched again.
const REFRESH: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long a URL that could not be fetched is left alone.
const FAILURE_PAUSE: Duration = Duration::from_secs(3600);

/// Avatars fetched at once by this process; others wait their turn.
const MAX_IN_FLIGHT: usize = 4;

/// An avatar as lien serves it.
pub struct Avatar {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
}

struct Avatars {
    fetcher: Fetcher,
    in_flight: Semaphore,
    /// URLs that failed, and when.
    failed: Cache<String, Instant>,
}

fn avatars(config: &Config) -> anyhow::Result<&'static Avatars> {
    static AVATARS: OnceLock<Avatars> = OnceLock::new();
    if let Some(avatars) = AVATARS.get() {
        return Ok(avatars);
    }
    let fetcher = Fetcher::new(Guard::new(config.dev), &preview::user_agent(config))?;
    Ok(AVATARS.get_or_init(|| Avatars {
        fetcher,
        in_flight: Semaphore::new(MAX_IN_FLIGHT),
        failed: Cache::new(1_000),
    }))
}

/// The media file names an avatar URL is kept under (one per format lien writes).
fn files(config: &Config, url: &str) -> [(PathBuf, &'static str); 2] {
    let key = hex::encode(Sha256::digest(format!("avatar\n{url}")));
    let dir = preview::media_dir(config);
    [
        (dir.join(format!("{key}.jpg")), "image/jpeg"),
        (dir.join(format!("{key}.png")), "image/png"),
    ]
}

/// Where pages show a person's avatar from: lien's own URL for it, changing when the avatar URL
/// changes so that browsers never keep an old one.
pub fn src(person_id: i64, url: &str) -> String {
    let version = hex::encode(&Sha256::digest(url.as_bytes())[..8]);
    format!("/avatars/{person_id}?v={version}")
}

/// The kept file for `url`, and whether it is due for a refresh.
async fn kept(config: &Config, url: &str) -> Option<(Avatar, bool)> {
    for (path, content_type) in files(config, url) {
        let Ok(meta) = tokio::fs::metadata(&path).await else {
            continue;
        };
        let age = meta
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .unwrap_or_default();
        if let Ok(bytes) = tokio::fs::read(&path).await {
            return Some((
                Avatar {
                    bytes,
                    content_type,
                },
                age > REFRESH,
            ));
        }
    }
    None
}

/// The avatar at `url`, shrunk, from the media directory or fetched now. None: there is none
/// to show (the URL failed now or lately, or is not an image lien takes).
pub async fn get(config: &Config, url: &str) -> anyhow::Result<Option<Avatar>> {
    let stale = match kept(config, url).await {
        Some((avatar, false)) => return Ok(Some(avatar)),
        Some((avatar, true)) => Some(avatar),
        None => None,
    };
    let avatars = avatars(config)?;
    if avatars
        .failed
        .get(url)
        .is_some_and(|when| when.elapsed() < FAILURE_PAUSE)
    {
        return Ok(stale);
    }
    let _turn = avatars.in_flight.acquire().await?;
    // Someone may have fetched it while this request waited for its turn.
    if let Some((avatar, false)) = kept(config, url).await {
        return Ok(Some(avatar));
    }
    match fetch(config, avatars, url).await {
        Ok(avatar) => Ok(Some(avatar)),
        Err(error) => {
            tracing::info!(%url, error = %format!("{error:#}"), "could not fetch an avatar");
            avatars.failed.insert(url.to_owned(), Instant::now());
            Ok(stale)
        }
    }
}

async fn fetch(config: &Config, avatars: &Avatars, url: &str) -> anyhow::Result<Avatar> {
    let parsed = Url::parse(url)?;
    let fetched = avatars.fetcher.get(&parsed, &Limits::IMAGE).await?;
    let shrunk =
        tokio::task::spawn_blocking(move || preview::shrink_image(&fetched.body, AVATAR_SIZE))
            .await??;
    let (path, content_type) = files(config, url)
        .into_iter()
        .find(|(path, _)| path.extension().is_some_and(|e| e == shrunk.extension))
        .expect("lien writes jpg or png");
    let name = path.file_name().expect("a file name").to_string_lossy();
    preview::store_media(&preview::media_dir(config), &name, &shrunk.bytes).await?;
    // A kept file in the other format is an older avatar: it must not win over this one.
    for (other, _) in files(config, url) {
        if other != path {
            let _ = tokio::fs::remove_file(other).await;
        }
    }
    Ok(Avatar {
        bytes: shrunk.bytes,
        content_type,
    })
}
