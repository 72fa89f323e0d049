//! Which software a peer runs, and the variant of a story's `Page` that reads well there.
//!
//! One `Page` cannot read well everywhere (README, "How a lien story looks elsewhere"):
//! GoToSocial and Takahe turn `name` into a content warning, while Mbin needs `name` and Lemmy,
//! PieFed and Mastodon show it as the title. So lien sends one canonical `Page` and a variant for
//! a few servers (`objects::story_json`). The software is read from the User-Agent: of the
//! request itself when a peer fetches a story, and, when lien delivers, as remembered per host
//! from that host's verified inbox deliveries (every follower's `Follow` arrives that way before
//! any story is delivered to it).

use std::collections::HashMap;

use sqlx::PgExecutor;

/// The software named by a User-Agent, among those whose `Page` differs; None for the others.
/// Mastodon's is `http.rb/5.2.0 (Mastodon/4.5.0; +https://…/)` (glitch-soc and Hometown too),
/// GoToSocial's `gotosocial (+https://…) gotosocial/0.17.0`, Takahe's `takahe/0.11 (…)`, lien's
/// `lien/x (+https://…)`, Lemmy's `Lemmy/0.19.5; +https://…`, PieFed's `PieFed/1.0 …`,
/// Mbin's `Mbin/1.7 (+https://…)`.
pub fn from_user_agent(user_agent: &str) -> Option<&'static str> {
    let ua = user_agent.to_ascii_lowercase();
    // Checked before Mastodon: some of them mention Mastodon compatibility in their agent.
    for name in ["gotosocial", "takahe", "lemmy", "piefed", "mbin"] {
        if ua.contains(name) {
            return Some(name);
        }
    }
    if ua.starts_with("lien/") {
        return Some("lien");
    }
    ua.contains("mastodon").then_some("mastodon")
}

/// Remembers what a peer host runs (after a verified delivery from it).
pub async fn remember(db: impl PgExecutor<'_>, host: &str, software: &str) -> sqlx::Result<()> {
    sqlx::query(
        "insert into peer_software (host, software) values ($1, $2)
         on conflict (host) do update set software = excluded.software, seen_at = now()
         where peer_software.software <> excluded.software",
    )
    .bind(host)
    .bind(software)
    .execute(db)
    .await
    .map(drop)
}

/// What each of `hosts` runs, for those lien knows.
pub async fn software_of(
    db: impl PgExecutor<'_>,
    hosts: &[String],
) -> sqlx::Result<HashMap<String, String>> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("select host, software from peer_software where host = any($1)")
            .bind(hosts)
            .fetch_all(db)
            .await?;
    Ok(rows.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_name_their_software() {
        let cases = [
            (
                "http.rb/5.2.0 (Mastodon/4.5.0; +https://m.example/)",
                Some("mastodon"),
            ),
            (
                "gotosocial (+https://g.example) gotosocial/0.17.3",
                Some("gotosocial"),
            ),
            ("takahe/0.11.0 (+https://t.example/)", Some("takahe")),
            ("lien/0.1.0 (+https://l.example)", Some("lien")),
            ("Lemmy/0.19.5; +https://lemmy.example", Some("lemmy")),
            ("Misskey/2024.11.0 (https://mk.example)", None),
        ];
        for (ua, software) in cases {
            assert_eq!(from_user_agent(ua), software, "{ua}");
        }
    }
}
