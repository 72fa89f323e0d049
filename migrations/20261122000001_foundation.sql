-- lien's foundation: people, stories, comments, votes, tags and sessions.
-- Every person, story and comment carries its ActivityPub id and a local flag from day one, so that
-- federated objects live in the same tables as local ones and every page shows them side by side.

-- Hot rank (SPEC section 4): depends only on score and creation time, so it is a stored generated
-- column, recomputed by PostgreSQL whenever a vote changes the score, and indexed.
-- 1735689600 is 2025-01-01T00:00Z; 45000 s (12.5 h) of age weigh as much as a tenfold score.
-- Mirrored by ranking::hot_rank in Rust; a test checks they agree.
create function hot_rank(score integer, created_at timestamptz) returns double precision
language sql immutable parallel safe
as $$
    select sign(score)::float8 * log(greatest(abs(score), 1)::float8)
         + (extract(epoch from created_at)::float8 - 1735689600) / 45000
$$;

-- Lower bound of the Wilson score interval at 80% confidence (z = 1.281551565545): the "best"
-- comment order. Mirrored by ranking::wilson_lower_bound.
create function wilson_lower_bound(up integer, down integer) returns double precision
language sql immutable parallel safe
as $$
    select case when up + down = 0 then 0::float8 else
        ((up::float8 / (up + down)) + 1.6423744 / (2 * (up + down))
         - 1.281551565545 * sqrt(((up::float8 / (up + down)) * (1 - up::float8 / (up + down))
                                  + 1.6423744 / (4 * (up + down))) / (up + down)))
        / (1 + 1.6423744 / (up + down))
    end
$$;

create table person (
    id               bigserial primary key,
    -- preferredUsername; local names are [a-z0-9_]{1,30}, remote ones whatever the peer uses
    name             text not null,
    -- null for local people; the peer's host (with port when not default) for remote ones
    host             text,
    local            boolean not null,
    ap_id            text not null unique,
    display_name     text not null default '',
    bio              text not null default '',
    avatar_url       text,
    inbox_url        text,
    shared_inbox_url text,
    public_key_pem   text,
    -- only for local people: they sign their own activities
    private_key_pem  text,
    password_hash    text,
    role             text not null default 'user' check (role in ('user', 'moderator', 'admin')),
    created_at       timestamptz not null default now(),
    -- when a remote actor was last fetched, to know when to refresh it
    fetched_at       timestamptz,
    check (local = (host is null)),
    check (not local or password_hash is not null)
);
-- names are unique without regard to case, per host
create unique index person_local_name_key on person (lower(name)) where local;
create unique index person_remote_name_key on person (lower(name), host) where not local;

create table session (
    -- sha256 of the cookie's token: a leaked database does not leak live sessions
    token_hash  bytea primary key,
    person_id   bigint not null references person on delete cascade,
    created_at  timestamptz not null default now(),
    expires_at  timestamptz not null
);
create index session_person_idx on session (person_id);

create table story (
    id             bigserial primary key,
    ap_id          text not null unique,
    local          boolean not null,
    author_id      bigint not null references person on delete cascade,
    title          text not null check (length(title) between 1 and 300),
    -- the shared link as submitted (null for a text post)
    url            text,
    -- scheme-less normalized form of url, for the duplicate rule (SPEC section 4)
    url_key        text,
    domain         text,
    -- Markdown source and its sanitized HTML rendering
    body           text not null default '',
    body_html      text not null default '',
    upvotes        integer not null default 0,
    downvotes      integer not null default 0,
    score          integer generated always as (upvotes - downvotes) stored,
    hot_rank       double precision generated always as (hot_rank(upvotes - downvotes, created_at)) stored,
    comment_count  integer not null default 0,
    boost_count    integer not null default 0,
    created_at     timestamptz not null default now(),
    updated_at     timestamptz,
    deleted_at     timestamptz,
    -- full-text search over title, link and domain; tags are matched through story_tag
    search         tsvector generated always as (
                       setweight(to_tsvector('english', title), 'A') ||
                       setweight(to_tsvector('simple', coalesce(domain, '') || ' ' || coalesce(url, '')), 'B') ||
                       setweight(to_tsvector('english', body), 'C')
                   ) stored,
    check ((url is null) = (url_key is null))
);
create index story_hot_idx on story (hot_rank desc) where deleted_at is null;
create index story_new_idx on story (created_at desc, id desc) where deleted_at is null;
create index story_top_idx on story (score desc, created_at desc) where deleted_at is null;
create index story_domain_idx on story (domain, created_at desc) where deleted_at is null;
create index story_author_idx on story (author_id, created_at desc);
create index story_search_idx on story using gin (search);
-- one live local discussion per link: a resubmission joins it instead of splitting it
create unique index story_local_url_key on story (url_key) where local and deleted_at is null;
create index story_url_key_idx on story (url_key);

create table story_tag (
    story_id  bigint not null references story on delete cascade,
    tag       text not null check (tag ~ '^[a-z0-9][a-z0-9_-]{0,29}$'),
    primary key (story_id, tag)
);
create index story_tag_tag_idx on story_tag (tag, story_id desc);

create table comment (
    id          bigserial primary key,
    ap_id       text not null unique,
    local       boolean not null,
    story_id    bigint not null references story on delete cascade,
    -- null for a top-level comment
    parent_id   bigint references comment on delete cascade,
    author_id   bigint not null references person on delete cascade,
    body        text not null default '',
    body_html   text not null,
    upvotes     integer not null default 0,
    downvotes   integer not null default 0,
    score       integer generated always as (upvotes - downvotes) stored,
    confidence  double precision generated always as (wilson_lower_bound(upvotes, downvotes)) stored,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz,
    -- a deleted comment with replies stays as a placeholder so the thread holds
    deleted_at  timestamptz
);
create index comment_story_idx on comment (story_id);
create index comment_parent_idx on comment (parent_id);
create index comment_new_idx on comment (created_at desc, id desc) where deleted_at is null;
create index comment_author_idx on comment (author_id, created_at desc);

-- one vote per (voter, target); value 0 is "no vote" and is stored as no row
create table story_vote (
    story_id    bigint not null references story on delete cascade,
    person_id   bigint not null references person on delete cascade,
    value       smallint not null check (value in (-1, 1)),
    created_at  timestamptz not null default now(),
    primary key (story_id, person_id)
);
create index story_vote_person_idx on story_vote (person_id, story_id);

create table comment_vote (
    comment_id  bigint not null references comment on delete cascade,
    person_id   bigint not null references person on delete cascade,
    value       smallint not null check (value in (-1, 1)),
    created_at  timestamptz not null default now(),
    primary key (comment_id, person_id)
);
create index comment_vote_person_idx on comment_vote (person_id, comment_id);
