//! Failed logins, counted in the database so that the limit holds across every web process that
//! shares it (the in-memory rate limits are per process; several replicas would each allow the
//! full budget of password guesses).

use sqlx::PgExecutor;

/// Failed logins allowed per key (an address, an address and a name, or a name tried) within the
/// window.
pub const LIMIT: i64 = 10;

/// The window, in minutes.
pub const WINDOW_MINUTES: i64 = 15;

/// How long each login attempt on a name that has met [`LIMIT`] failures waits before it is
/// checked: guessing from many addresses slows to a crawl, and the owner still gets in.
pub const NAME_UNDER_ATTACK_DELAY: std::time::Duration = std::time::Duration::from_secs(2);

/// Seconds until every key has room for another attempt; `None` when they all have room now.
pub async fn wait(db: impl PgExecutor<'_>, keys: &[String]) -> sqlx::Result<Option<u64>> {
    // The LIMIT-th newest failure of a key, if it is inside the window, is what must age out.
    let seconds: Option<f64> = sqlx::query_scalar(
        "select max(extract(epoch from nth + make_interval(mins => $3::int) - now()))::float8
         from (select (array_agg(at order by at desc))[$2::int] as nth from login_failure
               where key = any($1) and at > now() - make_interval(mins => $3::int)
               group by key) as per_key
         where nth is not null",
    )
    .bind(keys)
    .bind(LIMIT as i32)
    .bind(WINDOW_MINUTES as i32)
    .fetch_one(db)
    .await?;
    Ok(seconds.map(|s| s.max(0.0) as u64 + 1))
}

/// Records a failed login against every key, and sweeps the keys' failures that have aged out.
pub async fn record(db: impl PgExecutor<'_>, keys: &[String]) -> sqlx::Result<()> {
    sqlx::query(
        "with swept as (delete from login_failure
                        where key = any($1) and at <= now() - make_interval(mins => $2::int))
         insert into login_failure (key) select unnest($1::text[])",
    )
    .bind(keys)
    .bind(WINDOW_MINUTES as i32)
    .execute(db)
    .await
    .map(drop)
}
