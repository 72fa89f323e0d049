//! `lien seed`: realistic synthetic data for benchmarks and demos (SPEC section 1).
//!
//! Everything is generated inside PostgreSQL with set-based SQL (`insert … select … from
//! generate_series`), a handful of statements in one transaction, so a million stories take
//! minutes rather than the hours that row-by-row inserts from Rust would. A failed seed leaves
//! nothing behind.
//!
//! What the data looks like:
//! - people: `user{id}` locally; every tenth is a remote account (`fedi{id}` on one of a few
//!   hosts). Local accounts all share ONE argon2 hash of [`SEED_PASSWORD`] and ONE RSA key pair,
//!   made once per seed: hashing and generating keys per account would take hours at this scale.
//! - stories: created over the last year, their ids in time order as on a real instance; 6 in 7
//!   are links to domains that repeat with a long tail (a few big sites, thousands of small
//!   ones), most with a ready link preview; 1 to 3 tags each from a list, some far more used
//!   than others; 1 in 211 deleted.
//! - popularity follows a long tail: votes and comments go to stories drawn with
//!   `power(random(), 2)` over a shuffled popularity rank, so most stories get a few votes and a
//!   comment or none while a hundred or so get hundreds of comments and thousands of votes. The
//!   same rank drives both, so the most voted stories are also the most discussed.
//! - comments form threads: each is top-level or a reply to an earlier comment of its story,
//!   more often a recent one, so threads go deep; 1 in 97 is a deleted placeholder.
//! - votes: one per (voter, target), about one in six a downvote; every story carries its
//!   submitter's upvote (SPEC section 4). `--votes` counts them all: those self-votes, then two
//!   thirds of the rest on stories and one third on comments.
//!
//! Counts are planned before rows are written (votes and comments per target), so each story and
//! comment is inserted with its final `upvotes`, `downvotes` and `comment_count`, and the vote and
//! comment rows are then expanded to match: the counts are consistent by construction and no
//! table is rewritten by an update pass (`score` and `hot_rank` are generated columns).

use std::{
    fmt,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

use crate::{
    accounts,
    config::{Config, LogFormat},
    db::{
        comments,
        embedded::Claim,
        stories::{self, Listing},
        Database,
    },
};

/// The password of every seeded local account.
pub const SEED_PASSWORD: &str = "seed-password";

/// How much to make.
#[derive(Clone, Copy, Debug, clap::Args)]
pub struct Sizes {
    /// Stories to create.
    #[arg(long, default_value_t = 100_000)]
    pub stories: i64,
    /// People to create (one in ten remote).
    #[arg(long, default_value_t = 10_000)]
    pub users: i64,
    /// Comments to create.
    #[arg(long, default_value_t = 200_000)]
    pub comments: i64,
    /// Votes to create, counting each story's submitter's own upvote (so at least --stories).
    #[arg(long, default_value_t = 1_000_000)]
    pub votes: i64,
}

/// `lien seed`'s arguments.
#[derive(Clone, Copy, Debug, clap::Args)]
pub struct SeedArgs {
    #[command(flatten)]
    pub sizes: Sizes,
    /// Add the data even though the database already has stories.
    #[arg(long)]
    pub force: bool,
    /// Seed nothing: print EXPLAIN (ANALYZE, BUFFERS) of every list query on the data there is,
    /// with the statements exactly as lien runs them (bench/README.md).
    #[arg(long)]
    pub explain: bool,
}

/// What a seed made, and how long each part took.
#[derive(Debug)]
pub struct Summary {
    /// (what, rows, time)
    pub steps: Vec<(&'static str, u64, Duration)>,
    pub total: Duration,
    /// A seeded local account to log in as (with [`SEED_PASSWORD`]).
    pub sample_user: String,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<28} {:>12} {:>10}", "step", "rows", "seconds")?;
        for (what, rows, time) in &self.steps {
            writeln!(f, "{what:<28} {rows:>12} {:>10.1}", time.as_secs_f64())?;
        }
        writeln!(
            f,
            "{:<28} {:>12} {:>10.1}",
            "total",
            "",
            self.total.as_secs_f64()
        )?;
        write!(
            f,
            "log in as {} (or any user{{id}}) with the password {SEED_PASSWORD:?}",
            self.sample_user
        )
    }
}

/// `lien seed`: opens the database as `lien migrate` does, seeds it, prints what it did.
pub async fn run(config: &Config, args: SeedArgs) -> anyhow::Result<()> {
    let database = Database::open(config, Claim::Borrower).await?;
    if args.explain {
        let result = explain_lists(&database.db.read).await;
        database.close().await;
        print!("{}", result?);
        return Ok(());
    }
    let result = seed(
        &database.db.write,
        &config.origin(),
        &args.sizes,
        args.force,
    )
    .await;
    database.close().await;
    let summary = result?;
    match config.log_format {
        LogFormat::Text => println!("{summary}"),
        LogFormat::Json => {
            for (step, rows, time) in &summary.steps {
                tracing::info!(step, rows, seconds = time.as_secs_f64(), "seeded");
            }
            tracing::info!(
                seconds = summary.total.as_secs_f64(),
                sample_user = summary.sample_user,
                "seed done"
            );
        }
    }
    Ok(())
}

/// Vote and comment counts per target are drawn with `power(random(), POPULARITY)`: 2 gives a
/// tail where the first 1% of ranks take about 10% of everything and the top rank about 0.1%.
const POPULARITY: f64 = 2.0;

/// Seeds the database behind `pool` with stories, people, comments and votes. Refuses a database
/// that already has stories unless `force`. Ids (`ap_id`) are built on `origin`.
pub async fn seed(
    pool: &PgPool,
    origin: &str,
    sizes: &Sizes,
    force: bool,
) -> anyhow::Result<Summary> {
    let plan = Plan::new(sizes)?;
    let started = Instant::now();
    // One connection throughout: session settings and temporary tables live on it. Its
    // statements run for seconds by design, so sqlx's slow-statement warnings are off.
    let options = (*pool.connect_options())
        .clone()
        .disable_statement_logging();
    let mut conn = PgConnection::connect_with(&options)
        .await
        .context("connecting to the database")?;
    let has_stories: bool = sqlx::query_scalar("select exists (select 1 from story)")
        .fetch_one(&mut conn)
        .await?;
    if has_stories && !force {
        bail!(
            "the database already has stories; `lien seed --force` adds the synthetic data anyway"
        );
    }

    let mut steps = Vec::new();
    let time = Instant::now();
    let hash = accounts::hash_password(SEED_PASSWORD.to_owned()).await?;
    let keys = tokio::task::spawn_blocking(
        activitypub_federation::http_signatures::generate_actor_keypair,
    )
    .await
    .context("key generation panicked")?
    .context("could not generate a key pair")?;
    steps.push(("password hash and key pair", 2, time.elapsed()));

    let mut tx = conn.begin().await?;
    prepare_session(&mut tx).await?;
    let time = Instant::now();
    let indexes = drop_secondary_indexes(&mut tx).await?;
    steps.push(("drop indexes", indexes.len() as u64, time.elapsed()));

    let base_person = reserve_ids(&mut tx, "person", plan.users).await?;
    let base_story = reserve_ids(&mut tx, "story", plan.stories).await?;
    let base_comment = reserve_ids(&mut tx, "comment", plan.comments).await?;
    let ids = Ids {
        person: base_person,
        story: base_story,
        comment: base_comment,
    };

    let time = Instant::now();
    let rows = insert_people(&mut tx, origin, &plan, &ids, &hash, &keys).await?;
    steps.push(("person", rows, time.elapsed()));

    let time = Instant::now();
    let rows = plan_stories(&mut tx, &plan).await?;
    steps.push(("plan (stories, comment votes)", rows, time.elapsed()));

    let time = Instant::now();
    let (rows, previews) = insert_stories(&mut tx, origin, &plan, &ids).await?;
    steps.push(("story", rows, time.elapsed()));
    steps.push(("link_preview", previews, Duration::ZERO));

    let time = Instant::now();
    let rows = insert_tags(&mut tx, &ids).await?;
    steps.push(("story_tag", rows, time.elapsed()));

    let time = Instant::now();
    let rows = insert_story_votes(&mut tx, &plan, &ids).await?;
    steps.push(("story_vote", rows, time.elapsed()));

    let time = Instant::now();
    let rows = insert_comments(&mut tx, origin, &plan, &ids).await?;
    steps.push(("comment", rows, time.elapsed()));

    let time = Instant::now();
    let rows = insert_comment_votes(&mut tx, &plan, &ids).await?;
    steps.push(("comment_vote", rows, time.elapsed()));

    let time = Instant::now();
    for create in &indexes {
        sqlx::query(create).execute(&mut *tx).await?;
    }
    steps.push(("recreate indexes", indexes.len() as u64, time.elapsed()));

    let time = Instant::now();
    tx.commit().await?;
    steps.push(("commit", 0, time.elapsed()));

    // Fresh statistics, so the planner sees the new sizes at once rather than after autovacuum.
    let time = Instant::now();
    sqlx::query(
        "analyze person, story, story_tag, link_preview, story_vote, comment, comment_vote",
    )
    .execute(&mut conn)
    .await?;
    steps.push(("analyze", 0, time.elapsed()));
    conn.close().await?;

    Ok(Summary {
        steps,
        total: started.elapsed(),
        sample_user: format!("user{base_person}"),
    })
}

/// The sizes, checked, and the split of the votes.
struct Plan {
    users: i64,
    stories: i64,
    comments: i64,
    /// Votes on stories beyond each story's self-vote.
    extra_story_votes: i64,
    comment_votes: i64,
}

impl Plan {
    fn new(sizes: &Sizes) -> anyhow::Result<Plan> {
        let Sizes {
            stories,
            users,
            comments,
            votes,
        } = *sizes;
        if users < 1 {
            bail!("--users must be at least 1");
        }
        if stories < 0 || comments < 0 || votes < 0 {
            bail!("sizes cannot be negative");
        }
        if comments > 0 && stories == 0 {
            bail!("comments need stories: give --stories too");
        }
        if votes < stories {
            bail!("--votes must be at least --stories: every story carries its submitter's upvote");
        }
        let extra = votes - stories;
        let comment_votes = if comments > 0 { extra / 3 } else { 0 };
        Ok(Plan {
            users,
            stories,
            comments,
            extra_story_votes: extra - comment_votes,
            comment_votes,
        })
    }
}

/// The first id of each block of ids this seed claimed.
struct Ids {
    person: i64,
    story: i64,
    comment: i64,
}

async fn prepare_session(tx: &mut PgConnection) -> anyhow::Result<()> {
    // One commit at the end: nothing to gain from waiting for each flush. Big sorts and hashes
    // (the plans below, index builds) stay in memory.
    for setting in [
        "set local synchronous_commit = off",
        "set local work_mem = '256MB'",
        "set local maintenance_work_mem = '1GB'",
    ] {
        sqlx::query(setting).execute(&mut *tx).await?;
    }
    // Foreign-key checks would cost a lookup and a row lock per inserted row (tens of millions),
    // and every reference here is made valid by construction (ids are reserved up front). The
    // replica role skips those triggers for this transaction; it needs a superuser, as the
    // embedded cluster's is. Elsewhere the checks simply run.
    let superuser: bool = sqlx::query_scalar("select current_setting('is_superuser') = 'on'")
        .fetch_one(&mut *tx)
        .await?;
    if superuser {
        sqlx::query("set local session_replication_role = replica")
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// The tables filled in bulk, whose indexes other than the primary key are built once at the
/// end rather than updated row by row: several times faster, most of all for the unique indexes on
/// `ap_id` and `url_key`, whose keys arrive in random order.
const BULK_TABLES: &[&str] = &[
    "story",
    "story_tag",
    "story_vote",
    "comment",
    "comment_vote",
    "link_preview",
];

/// Drops the indexes of the bulk tables except primary keys (which foreign keys point at, and
/// which grow in key order here anyway), unique constraints included, and returns the statements
/// that recreate them. Those come from the catalog, so they are whatever the migrations made. All
/// in the seed's transaction: a failure rolls the drop back too, and a duplicate would fail the
/// recreation rather than slip in.
async fn drop_secondary_indexes(tx: &mut PgConnection) -> anyhow::Result<Vec<String>> {
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "select case when con.oid is null then format('drop index %I.%I', n.nspname, c.relname)
                     else format('alter table %I.%I drop constraint %I', n.nspname, t.relname, con.conname)
                end,
                case when con.oid is null then pg_get_indexdef(i.indexrelid)
                     else format('alter table %I.%I add constraint %I %s', n.nspname, t.relname,
                                 con.conname, pg_get_constraintdef(con.oid))
                end
         from pg_index i
         join pg_class c on c.oid = i.indexrelid
         join pg_class t on t.oid = i.indrelid
         join pg_namespace n on n.oid = t.relnamespace
         left join pg_constraint con on con.conindid = i.indexrelid and con.conrelid = t.oid
         where t.relname = any($1) and n.oid = current_schema()::regnamespace
           and not i.indisprimary and (con.oid is null or con.contype = 'u')
         order by c.relname",
    )
    .bind(BULK_TABLES)
    .fetch_all(&mut *tx)
    .await?;
    for (drop, _) in &indexes {
        sqlx::query(drop).execute(&mut *tx).await?;
    }
    Ok(indexes.into_iter().map(|(_, create)| create).collect())
}

/// Claims `count` consecutive ids of a table's sequence and returns the first. Rows are then
/// inserted with explicit ids, which lets a comment name its parent and a vote its target without
/// looking anything up. The tables are locked (their indexes were dropped in this transaction), so
/// nobody else draws from the sequence meanwhile.
async fn reserve_ids(tx: &mut PgConnection, table: &str, count: i64) -> anyhow::Result<i64> {
    let first: i64 = sqlx::query_scalar("select nextval(pg_get_serial_sequence($1, 'id'))")
        .bind(table)
        .fetch_one(&mut *tx)
        .await?;
    if count > 1 {
        sqlx::query("select setval(pg_get_serial_sequence($1, 'id'), $2)")
            .bind(table)
            .bind(first + count - 1)
            .execute(&mut *tx)
            .await?;
    }
    Ok(first)
}

async fn insert_people(
    tx: &mut PgConnection,
    origin: &str,
    plan: &Plan,
    ids: &Ids,
    hash: &str,
    keys: &activitypub_federation::http_signatures::Keypair,
) -> anyhow::Result<u64> {
    // Person n (0-based) has id base + n; every tenth is remote. n = 0 is local, so `user{base}`
    // always exists to log in with.
    let done = sqlx::query(
        "insert into person (id, name, host, local, ap_id, display_name, bio, inbox_url,
                             shared_inbox_url, followers_url, profile_url, public_key_pem,
                             private_key_pem, password_hash, created_at, fetched_at)
         select id, name, host, host is null,
                case when host is null then $2 || '/users/' || name
                     else 'https://' || host || '/users/' || name end,
                initcap(($5::text[])[(1 + (n * 7) % cardinality($5))::int]) || ' '
                    || initcap(($5::text[])[(1 + (n * 13 + 5) % cardinality($5))::int]),
                case when n % 3 = 0 then 'Reads ' || ($6::text[])[(1 + n % cardinality($6))::int]
                     || ' links, mostly.' else '' end,
                case when host is not null then 'https://' || host || '/users/' || name || '/inbox' end,
                case when host is not null then 'https://' || host || '/inbox' end,
                case when host is not null then 'https://' || host || '/users/' || name || '/followers' end,
                case when host is not null then 'https://' || host || '/@' || name end,
                $7,
                case when host is null then $8 end,
                case when host is null then $9 end,
                now() - interval '400 days' - random() * interval '400 days',
                case when host is not null then now() end
         from (select n, $3 + n as id,
                      case when n % 10 = 9 then 'fedi' else 'user' end || ($3 + n) as name,
                      case when n % 10 = 9 then ($4::text[])[(1 + (n / 10) % cardinality($4))::int] end as host
               from generate_series(0::bigint, $1 - 1) n) people",
    )
    .bind(plan.users)
    .bind(origin)
    .bind(ids.person)
    .bind(REMOTE_HOSTS)
    .bind(WORDS)
    .bind(TAGS)
    .bind(&keys.public_key)
    .bind(&keys.private_key)
    .bind(hash)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected())
}

/// Picks an odd multiplier coprime with `modulus`, for the shuffle `(n * a + b) % modulus`: a
/// bijection of 0..modulus, so the popularity rank is spread over ids (and time) at random.
fn shuffle_multiplier(modulus: i64) -> i64 {
    [1_000_003, 999_983, 104_729, 7_919, 1]
        .into_iter()
        .find(|prime| modulus % prime != 0)
        .unwrap_or(1)
}

/// Temporary tables with what each story and comment will get: `seed_story` (one row per story:
/// author, time, vote and comment counts, where its comments start) and `seed_comment_vote`
/// (votes per comment that gets any).
async fn plan_stories(tx: &mut PgConnection, plan: &Plan) -> anyhow::Result<u64> {
    let stories = plan.stories.max(1);
    let comments = plan.comments.max(1);
    // Story i is created at a time growing with i, like ids on a live instance. The submitter
    // is drawn with a tail too: some people share far more than others.
    sqlx::query(
        "create temporary table seed_story on commit drop as
         with votes as (
             select (n * $5 + $6) % $1 as i, count(*) as extra
             from (select floor(power(random(), $8) * $1)::bigint as n
                   from generate_series(1::bigint, $2)) slot
             group by 1
         ), comments as (
             select (n * $5 + $6) % $1 as i, count(*) as comments
             from (select floor(power(random(), $8) * $1)::bigint as n
                   from generate_series(1::bigint, $3)) slot
             group by 1
         )
         select i, author_n, created_at, votes,
                -- about one vote in six is down (never the submitter's own, the first); a few
                -- stories are buried
                case when random() < 0.02 then floor((votes - 1) * (0.5 + 0.5 * random()))
                     else floor((votes - 1) * 0.35 * random()) end::bigint as downs,
                comments,
                sum(comments) over (order by i) - comments as comment_offset
         from (
             select g.i,
                    floor(power(random(), 1.5) * $4)::bigint as author_n,
                    now() - interval '365 days' * (1 - (g.i + random()) / $1) as created_at,
                    least(1 + coalesce(v.extra, 0), $4) as votes,
                    coalesce(c.comments, 0) as comments
             from generate_series(0::bigint, $7 - 1) g(i)
             left join votes v on v.i = g.i
             left join comments c on c.i = g.i
             offset 0
         ) planned
         order by i",
    )
    .bind(stories)
    .bind(plan.extra_story_votes)
    .bind(plan.comments)
    .bind(plan.users)
    .bind(shuffle_multiplier(stories))
    .bind(stories / 3)
    .bind(plan.stories)
    .bind(POPULARITY)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "create temporary table seed_comment_vote on commit drop as
         select idx, votes, floor(votes * 0.35 * random())::bigint as downs
         from (select (n * $3 + $4) % $1 as idx, least(count(*), $5) as votes
               from (select floor(power(random(), $6) * $1)::bigint as n
                     from generate_series(1::bigint, $2)) slot
               group by 1) planned",
    )
    .bind(comments)
    .bind(plan.comment_votes)
    .bind(shuffle_multiplier(comments))
    .bind(comments / 3)
    .bind(plan.users)
    .bind(POPULARITY)
    .execute(&mut *tx)
    .await?;
    sqlx::query("create index on seed_comment_vote (idx)")
        .execute(&mut *tx)
        .await?;
    // Sentences for bodies, comments and preview descriptions, made once and picked by id: a
    // fresh one per row would cost more than the rest of the row.
    sqlx::query(&format!(
        "create temporary table seed_text on commit drop as
         select n, {SENTENCE} as sentence
         from (select $1::text[] as w) words cross join generate_series(0::bigint, {} - 1) n",
        TEXTS
    ))
    .bind(WORDS)
    .execute(&mut *tx)
    .await?;
    sqlx::query("analyze seed_story, seed_comment_vote, seed_text")
        .execute(&mut *tx)
        .await?;
    let rows: i64 = sqlx::query_scalar(
        "select (select count(*) from seed_story) + (select count(*) from seed_comment_vote)",
    )
    .fetch_one(&mut *tx)
    .await?;
    Ok(rows as u64)
}

/// How many different sentences `seed_text` holds.
const TEXTS: i64 = 4096;

/// A title: four to seven words from the list, the first capitalized.
const TITLE: &str = "initcap(w[1 + floor(random() * cardinality(w))::int]) || ' ' ||
     w[1 + floor(random() * cardinality(w))::int] || ' ' ||
     w[1 + floor(random() * cardinality(w))::int] || ' ' ||
     w[1 + floor(random() * cardinality(w))::int] ||
     case when random() < 0.7 then ' ' || w[1 + floor(random() * cardinality(w))::int] ||
          ' ' || w[1 + floor(random() * cardinality(w))::int] else '' end ||
     case when random() < 0.3 then ' ' || w[1 + floor(random() * cardinality(w))::int] else '' end";

/// A sentence of seven to eleven words.
const SENTENCE: &str = "initcap(w[1 + floor(random() * cardinality(w))::int]) || ' ' ||
     w[1 + floor(random() * cardinality(w))::int] || ' ' ||
     w[1 + floor(random() * cardinality(w))::int] || ' ' ||
     w[1 + floor(random() * cardinality(w))::int] || ' ' ||
     w[1 + floor(random() * cardinality(w))::int] || ' ' ||
     w[1 + floor(random() * cardinality(w))::int] || ' ' ||
     w[1 + floor(random() * cardinality(w))::int] ||
     case when random() < 0.5 then ' ' || w[1 + floor(random() * cardinality(w))::int] || ' ' ||
          w[1 + floor(random() * cardinality(w))::int] || ' ' ||
          w[1 + floor(random() * cardinality(w))::int] || ' ' ||
          w[1 + floor(random() * cardinality(w))::int] else '' end || '.'";

/// Stories, with a ready preview for three in four links. Returns (stories, previews).
async fn insert_stories(
    tx: &mut PgConnection,
    origin: &str,
    plan: &Plan,
    ids: &Ids,
) -> anyhow::Result<(u64, u64)> {
    if plan.stories == 0 {
        return Ok((0, 0));
    }
    // Domains: rank d drawn with power(random(), 3) over 3000, so the popular sites (the first
    // ranks) take about a fifth of all links and the top one about 7%; the rest are small sites.
    // One story in seven is a text post.
    let sql = format!(
        "with drafted as (
             select s.*, p.id as author_id, p.local, p.host, {TITLE} as title,
                    case when s.i % 7 <> 0 then
                        case when d < cardinality($4::text[]) then ($4::text[])[d + 1]
                             else 'blog' || d || '.example.net' end
                    end as domain
             from seed_story s cross join (select $1::text[] as w) words
             join person p on p.id = $3 + s.author_n
             cross join lateral (select floor(power(random(), 3) * 3000)::int + s.i * 0 as d) pick
             offset 0
         ),
         shaped as (
             select d.*, t1.sentence || ' ' || t2.sentence as text,
                    case when domain is not null then
                        domain || '/' || (d.i % 997) || '/' || lower(split_part(title, ' ', 2))
                        || '-' || ($2 + d.i)
                    end as key
             from drafted d
             join seed_text t1 on t1.n = d.i % {TEXTS}
             join seed_text t2 on t2.n = (d.i * 7 + 1) % {TEXTS}
         ),
         inserted as (
             insert into story (id, ap_id, local, author_id, title, url, url_key, domain, body,
                                body_html, upvotes, downvotes, comment_count, created_at,
                                updated_at, deleted_at, remote_url)
             select $2 + i,
                    case when local then $5 || '/s/' || ($2 + i)
                         else 'https://' || host || '/post/' || ($2 + i) end,
                    local, author_id, title,
                    'https://' || key, key, domain,
                    case when domain is null then text else '' end,
                    case when domain is null then '<p>' || text || '</p>' else '' end,
                    votes - downs, downs,
                    -- deleted comments (1 in 97, see insert_comments) are not counted
                    comments - (comments + 46) / 97,
                    created_at,
                    case when i % 53 = 0 then created_at + interval '20 minutes' end,
                    case when i % 211 = 0 then created_at + interval '2 hours' end,
                    case when not local then 'https://' || host || '/post/' || ($2 + i) end
             from shaped
             order by i
             returning id, url, title, created_at
         ),
         previews as (
             insert into link_preview (story_id, url, state, attempts, title, description,
                                       canonical_url, created_at, fetched_at)
             select id, url, 'ready', 1, title, t.sentence, url, created_at,
                    created_at + interval '5 seconds'
             from inserted join seed_text t on t.n = (id * 11) % {TEXTS}
             where url is not null and id % 4 <> 0
             returning 1
         )
         select (select count(*) from inserted), (select count(*) from previews)"
    );
    let (stories, previews): (i64, i64) = sqlx::query_as(&sql)
        .bind(WORDS)
        .bind(ids.story)
        .bind(ids.person)
        .bind(POPULAR_DOMAINS)
        .bind(origin)
        .fetch_one(&mut *tx)
        .await?;
    Ok((stories as u64, previews as u64))
}

/// One to three tags a story, the popular ones (first in the list) far more often.
async fn insert_tags(tx: &mut PgConnection, ids: &Ids) -> anyhow::Result<u64> {
    let done = sqlx::query(
        "insert into story_tag (story_id, tag)
         select distinct $1 + s.i,
                ($2::text[])[1 + floor(power(random(), 2) * cardinality($2::text[]))::int]
         from seed_story s cross join generate_series(0, (s.i % 3)::int) k
         -- in key order: the primary key then grows at its end instead of everywhere
         order by 1, 2",
    )
    .bind(ids.story)
    .bind(TAGS)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected())
}

/// Each story's planned votes: voters are consecutive people from its submitter on (so all
/// distinct, the first being the submitter's own upvote), the last `downs` of them down.
async fn insert_story_votes(tx: &mut PgConnection, plan: &Plan, ids: &Ids) -> anyhow::Result<u64> {
    let done = sqlx::query(
        "insert into story_vote (story_id, person_id, value, created_at)
         select $1 + s.i, $2 + (s.author_n + j) % $3,
                case when j >= s.votes - s.downs then -1 else 1 end,
                case when j = 0 then s.created_at
                     else least(now(), s.created_at + random() * interval '2 days') end
         from seed_story s cross join generate_series(0::bigint, s.votes - 1) j",
    )
    .bind(ids.story)
    .bind(ids.person)
    .bind(plan.users)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected())
}

/// Each story's planned comments, numbered j = 0, 1, … in time order with consecutive ids, so a
/// reply names its parent by arithmetic: an earlier comment of the same story, more often a
/// recent one, which makes threads deep.
async fn insert_comments(
    tx: &mut PgConnection,
    origin: &str,
    plan: &Plan,
    ids: &Ids,
) -> anyhow::Result<u64> {
    if plan.comments == 0 {
        return Ok(0);
    }
    let sql = format!(
        "insert into comment (id, ap_id, local, story_id, parent_id, author_id, body, body_html,
                              upvotes, downvotes, created_at, deleted_at, remote_url)
         select c.id,
                case when p.local then $1 || '/c/' || c.id
                     else 'https://' || p.host || '/users/' || p.name || '/statuses/' || c.id end,
                p.local, c.story_id, c.parent_id, p.id,
                case when c.deleted then '' else text end,
                case when c.deleted then '' else '<p>' || text || '</p>' end,
                coalesce(v.votes - v.downs, 0), coalesce(v.downs, 0),
                c.created_at,
                case when c.deleted then c.created_at + interval '1 hour' end,
                case when not p.local
                     then 'https://' || p.host || '/@' || p.name || '/' || c.id end
         from (
             select $2 + s.comment_offset + j as id, $3 + s.i as story_id,
                    case when j = 0 or random() < 0.35 then null
                         else $2 + s.comment_offset + j - 1 - floor(power(random(), 2) * j)::bigint
                    end as parent_id,
                    floor(power(random(), 1.3) * $4)::bigint as author_n,
                    s.created_at + least(interval '3 minutes' * (j + 1),
                                         (now() - s.created_at) * ((j + 1)::float8 / (s.comments + 1)))
                        as created_at,
                    j % 97 = 50 as deleted
             from seed_story s cross join generate_series(0::bigint, s.comments - 1) j
             offset 0
         ) c
         join person p on p.id = $5 + c.author_n
         join seed_text t1 on t1.n = c.id % {TEXTS}
         join seed_text t2 on t2.n = (c.id * 31 + 7) % {TEXTS}
         cross join lateral (
             select case when c.id % 2 = 0 then t1.sentence || ' ' || t2.sentence
                         else t1.sentence end as text
         ) body
         left join seed_comment_vote v on v.idx = c.id - $2
         order by c.id"
    );
    let done = sqlx::query(&sql)
        .bind(origin)
        .bind(ids.comment)
        .bind(ids.story)
        .bind(plan.users)
        .bind(ids.person)
        .execute(&mut *tx)
        .await?;
    Ok(done.rows_affected())
}

/// Each comment's planned votes, by consecutive people from a point that depends on the comment.
async fn insert_comment_votes(
    tx: &mut PgConnection,
    plan: &Plan,
    ids: &Ids,
) -> anyhow::Result<u64> {
    if plan.comments == 0 {
        return Ok(0);
    }
    let done = sqlx::query(
        "insert into comment_vote (comment_id, person_id, value, created_at)
         select c.id, $2 + (v.idx * 7919 + j) % $3,
                case when j >= v.votes - v.downs then -1 else 1 end,
                least(now(), c.created_at + random() * interval '1 day')
         from seed_comment_vote v
         join comment c on c.id = $1 + v.idx
         cross join generate_series(0::bigint, v.votes - 1) j
         order by c.id",
    )
    .bind(ids.comment)
    .bind(ids.person)
    .bind(plan.users)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected())
}

/// A value bound to a list statement.
#[derive(Clone, Debug)]
pub enum Param {
    Int(i64),
    Text(String),
    Time(chrono::DateTime<chrono::Utc>),
    NullInt,
}

/// A story list's parameters: the limit, `second` (the offset, or the story to continue after),
/// then the listing's own argument.
fn story_params(listing: &Listing, limit: i64, second: i64) -> Vec<Param> {
    let mut params = vec![Param::Int(limit), Param::Int(second)];
    match listing {
        Listing::Hot | Listing::New => {}
        Listing::Top { since } => params.push(Param::Time(*since)),
        Listing::Tag(text)
        | Listing::Domain(text)
        | Listing::Search(text)
        | Listing::SearchNew(text) => params.push(Param::Text(text.clone())),
        Listing::Author(id) | Listing::Community(id) => params.push(Param::Int(*id)),
    }
    params
}

/// One list query as the application runs it: the statement and realistic parameters.
#[derive(Clone, Debug)]
pub struct ListQuery {
    pub name: String,
    pub sql: String,
    pub params: Vec<Param>,
}

impl ListQuery {
    /// A page of a story list by offset (`stories::list_sql`).
    pub fn story(name: String, listing: Listing, limit: i64, offset: i64) -> ListQuery {
        ListQuery {
            name,
            sql: stories::list_sql(&listing),
            params: story_params(&listing, limit, offset),
        }
    }

    /// The page after story `after`, by keyset (`stories::list_after_sql`); none for search.
    pub fn story_after(
        name: String,
        listing: Listing,
        limit: i64,
        after: i64,
    ) -> Option<ListQuery> {
        Some(ListQuery {
            name,
            sql: stories::list_after_sql(&listing)?,
            params: story_params(&listing, limit, after),
        })
    }

    /// `query` with this statement's parameters bound.
    pub fn bind<'q, O>(
        &self,
        mut query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
        for param in &self.params {
            query = match param {
                Param::Int(value) => query.bind(*value),
                Param::Text(value) => query.bind(value.clone()),
                Param::Time(value) => query.bind(*value),
                Param::NullInt => query.bind(None::<i64>),
            };
        }
        query
    }
}

/// Every list query (hot, new, top, tag, domain, author, search, newest comments, a story's
/// comments), with arguments picked from the data: the most and least used tag, a big and a small
/// site, the most prolific author, the least discussed story with 200+ comments.
pub async fn list_queries(pool: &PgPool) -> anyhow::Result<Vec<ListQuery>> {
    let text = |sql: &'static str| async move {
        sqlx::query_scalar::<_, String>(sql)
            .fetch_optional(pool)
            .await
            .map(Option::unwrap_or_default)
    };
    let int = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_optional(pool)
            .await
            .map(|id| id.unwrap_or(0))
    };
    let popular_tag =
        text("select tag from story_tag group by tag order by count(*) desc, tag limit 1").await?;
    let rare_tag =
        text("select tag from story_tag group by tag order by count(*), tag limit 1").await?;
    let big_site = text(
        "select domain from story where domain is not null
         group by domain order by count(*) desc, domain limit 1",
    )
    .await?;
    let small_site = text(
        "select domain from story where domain is not null
         group by domain order by count(*), domain limit 1",
    )
    .await?;
    let author = int(
        "select author_id from story group by author_id order by count(*) desc, author_id limit 1",
    )
    .await?;
    let story =
        int("select id from story order by comment_count < 200, comment_count, id limit 1").await?;
    // Where page 40 of the front page starts, for the keyset form of a deep page.
    let page_40 =
        int("select id from story where deleted_at is null order by hot_rank desc, id desc offset 974 limit 1")
            .await?;
    let now = chrono::Utc::now();
    let story_query = ListQuery::story;
    Ok(vec![
        story_query("hot (/, /hot.rss)".into(), Listing::Hot, 26, 0),
        story_query(
            "hot, page 40 by offset (/?page=40)".into(),
            Listing::Hot,
            26,
            975,
        ),
        ListQuery::story_after(
            format!("hot, page 40 by keyset (/?page=40&after={page_40})"),
            Listing::Hot,
            26,
            page_40,
        )
        .context("hot has a keyset form")?,
        story_query("new (/new)".into(), Listing::New, 26, 0),
        story_query(
            "top of the week (/top?t=week)".into(),
            Listing::Top {
                since: now - chrono::Duration::days(7),
            },
            26,
            0,
        ),
        story_query(
            "top of the day (/top?t=day)".into(),
            Listing::Top {
                since: now - chrono::Duration::days(1),
            },
            26,
            0,
        ),
        story_query(
            format!("most used tag (/t/{popular_tag})"),
            Listing::Tag(popular_tag),
            26,
            0,
        ),
        story_query(
            format!("least used tag (/t/{rare_tag})"),
            Listing::Tag(rare_tag),
            26,
            0,
        ),
        story_query(
            format!("big site (/domain/{big_site})"),
            Listing::Domain(big_site),
            26,
            0,
        ),
        story_query(
            format!("small site (/domain/{small_site})"),
            Listing::Domain(small_site),
            26,
            0,
        ),
        story_query(
            format!("author's stories (person {author})"),
            Listing::Author(author),
            10,
            0,
        ),
        story_query(
            "search (/search?q=rust compiler)".into(),
            Listing::Search("rust compiler".into()),
            26,
            0,
        ),
        ListQuery {
            name: "newest comments (/comments)".into(),
            sql: comments::newest_sql(),
            params: vec![Param::Int(26), Param::Int(0), Param::NullInt],
        },
        ListQuery {
            name: format!("author's comments (person {author})"),
            sql: comments::newest_sql(),
            params: vec![Param::Int(10), Param::Int(0), Param::Int(author)],
        },
        ListQuery {
            name: format!("a story's comments (/s/{story})"),
            sql: comments::for_story_sql(),
            params: vec![Param::Int(story)],
        },
    ])
}

/// EXPLAIN (ANALYZE, BUFFERS) of every list query, each run once before to warm the caches, so
/// the plans show the steady state.
pub async fn explain_lists(pool: &PgPool) -> anyhow::Result<String> {
    let mut out = String::new();
    for query in list_queries(pool).await? {
        let explain = format!("explain (analyze, buffers) {}", query.sql);
        for round in 0..2 {
            let lines: Vec<(String,)> = query
                .bind(sqlx::query_as(&explain))
                .fetch_all(pool)
                .await
                .with_context(|| format!("explaining {}", query.name))?;
            if round == 1 {
                out.push_str(&format!("### {}\n", query.name));
                for (line,) in lines {
                    out.push_str(&line);
                    out.push('\n');
                }
                out.push('\n');
            }
        }
    }
    Ok(out)
}

/// Words for titles, comments and names.
const WORDS: &[&str] = &[
    "rust",
    "postgres",
    "linux",
    "kernel",
    "compiler",
    "database",
    "network",
    "protocol",
    "open",
    "source",
    "release",
    "security",
    "browser",
    "memory",
    "async",
    "server",
    "client",
    "cache",
    "index",
    "query",
    "federation",
    "mastodon",
    "fediverse",
    "privacy",
    "design",
    "language",
    "type",
    "system",
    "performance",
    "benchmark",
    "garbage",
    "collector",
    "thread",
    "process",
    "file",
    "format",
    "parser",
    "editor",
    "terminal",
    "shell",
    "script",
    "python",
    "go",
    "haskell",
    "ocaml",
    "lisp",
    "web",
    "assembly",
    "graphics",
    "game",
    "engine",
    "physics",
    "math",
    "proof",
    "theorem",
    "algorithm",
    "data",
    "structure",
    "tree",
    "graph",
    "hash",
    "table",
    "vector",
    "matrix",
    "model",
    "training",
    "inference",
    "hardware",
    "chip",
    "risc",
    "arm",
    "laptop",
    "phone",
    "battery",
    "energy",
    "climate",
    "science",
    "history",
    "economics",
    "market",
    "startup",
    "company",
    "law",
    "court",
    "policy",
    "government",
    "city",
    "transit",
    "bicycle",
    "train",
    "space",
    "rocket",
    "satellite",
    "telescope",
    "planet",
    "ocean",
    "forest",
    "music",
    "film",
    "book",
    "review",
    "interview",
    "essay",
    "guide",
    "tutorial",
    "introduction",
    "deep",
    "dive",
    "notes",
    "lessons",
    "learned",
    "why",
    "how",
    "we",
    "built",
    "rewrote",
    "scaled",
    "broke",
    "fixed",
    "migrated",
    "replaced",
    "moved",
    "away",
    "from",
    "toward",
    "new",
    "old",
    "fast",
    "slow",
    "simple",
    "hard",
    "small",
    "large",
    "better",
    "worse",
    "modern",
    "legacy",
    "distributed",
    "concurrent",
    "functional",
    "formal",
    "verification",
    "testing",
    "debugging",
    "profiling",
    "tracing",
    "logging",
    "metrics",
    "outage",
    "incident",
    "postmortem",
    "the",
    "a",
    "of",
    "in",
    "on",
    "with",
    "without",
    "for",
    "and",
    "or",
];

/// Tags, the most used first (the seed draws the first ones far more often).
const TAGS: &[&str] = &[
    "programming",
    "rust",
    "linux",
    "web",
    "security",
    "databases",
    "science",
    "hardware",
    "networking",
    "devops",
    "ai",
    "python",
    "go",
    "javascript",
    "privacy",
    "culture",
    "law",
    "practices",
    "compilers",
    "plt",
    "math",
    "games",
    "graphics",
    "distributed",
    "release",
    "show",
    "ask",
    "historical",
    "pdf",
    "video",
    "audio",
    "art",
    "design",
    "education",
    "finance",
    "space",
    "climate",
    "transport",
    "fediverse",
    "meta",
];

/// The sites most links go to, the most linked first.
const POPULAR_DOMAINS: &[&str] = &[
    "github.com",
    "youtube.com",
    "nytimes.com",
    "arstechnica.com",
    "lwn.net",
    "theverge.com",
    "wikipedia.org",
    "bbc.co.uk",
    "medium.com",
    "theguardian.com",
    "arxiv.org",
    "quantamagazine.org",
    "blog.rust-lang.org",
    "substack.com",
    "gitlab.com",
    "reuters.com",
    "bloomberg.com",
    "nature.com",
    "wired.com",
    "phoronix.com",
    "theregister.com",
    "economist.com",
    "washingtonpost.com",
    "npr.org",
    "sr.ht",
    "codeberg.org",
    "apnews.com",
    "techcrunch.com",
    "wsj.com",
    "ft.com",
];

/// Where the remote accounts live.
const REMOTE_HOSTS: &[&str] = &[
    "mastodon.social",
    "fosstodon.org",
    "hachyderm.io",
    "lemmy.world",
    "lemmy.ml",
    "infosec.exchange",
    "mas.to",
    "social.coop",
    "kbin.social",
    "pixelfed.social",
    "chaos.social",
    "mstdn.jp",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_is_a_bijection() {
        for modulus in [1_i64, 2, 7, 10, 7919, 999_983 * 2, 1_000_000] {
            let a = shuffle_multiplier(modulus);
            let b = modulus / 3;
            let n = modulus.min(20_000);
            let mut seen = std::collections::HashSet::new();
            for i in 0..n {
                assert!(
                    seen.insert((i * a + b) % modulus),
                    "collision for {modulus}"
                );
            }
        }
    }

    #[test]
    fn votes_are_split() {
        let sizes = Sizes {
            stories: 10,
            users: 5,
            comments: 20,
            votes: 100,
        };
        let plan = Plan::new(&sizes).unwrap();
        assert_eq!(
            plan.stories + plan.extra_story_votes + plan.comment_votes,
            100
        );
        assert_eq!(plan.comment_votes, 30);
        assert!(Plan::new(&Sizes { votes: 5, ..sizes }).is_err());
        assert!(Plan::new(&Sizes { users: 0, ..sizes }).is_err());
    }
}
