//! `peer_signature`: the HTTP signature scheme each peer host takes ('rfc9421' or 'cavage').

use sqlx::PgExecutor;

/// The schemes known for `hosts`, as (host, scheme) pairs; hosts not known are left out.
pub async fn known(
    db: impl PgExecutor<'_>,
    hosts: &[String],
) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as("select host, scheme from peer_signature where host = any($1)")
        .bind(hosts)
        .fetch_all(db)
        .await
}

/// What a delivery showed: `host` took (or, after a refusal of the other, needs) `scheme`.
pub async fn remember(db: impl PgExecutor<'_>, host: &str, scheme: &str) -> sqlx::Result<()> {
    sqlx::query(
        "insert into peer_signature (host, scheme) values ($1, $2)
         on conflict (host) do update set scheme = excluded.scheme, updated_at = now()
         where peer_signature.scheme <> excluded.scheme",
    )
    .bind(host)
    .bind(scheme)
    .execute(db)
    .await?;
    Ok(())
}

/// A hint, from a host signing its own requests with `scheme`: kept only when nothing is known
/// of the host yet, since what its inbox answered is the better evidence.
pub async fn suggest(db: impl PgExecutor<'_>, host: &str, scheme: &str) -> sqlx::Result<()> {
    sqlx::query(
        "insert into peer_signature (host, scheme) values ($1, $2) on conflict (host) do nothing",
    )
    .bind(host)
    .bind(scheme)
    .execute(db)
    .await?;
    Ok(())
}
