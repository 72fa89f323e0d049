-- Which software each peer runs, learned from the User-Agent of its verified inbox deliveries, so
-- that a story's `Page` can be sent in the variant that server reads well (src/federation/peers.rs).
create table peer_software (
    host        text primary key,
    software    text not null,
    seen_at     timestamptz not null default now()
);

-- A public post from someone nobody here follows, naming a local person in a `Mention`: kept for
-- that person's notifications (text, author, a link to the original) without becoming a story.
-- Replying from lien opens it as a discussion page first (as pasting its address in search does).
create table remote_mention (
    id            bigserial primary key,
    recipient_id  bigint not null references person on delete cascade,
    author_id     bigint not null references person on delete cascade,
    ap_id         text not null,
    -- the original's page (its `url`), else its id
    url           text not null,
    -- sanitized HTML
    content_html  text not null,
    created_at    timestamptz not null default now(),
    read_at       timestamptz,
    unique (recipient_id, ap_id)
);
create index remote_mention_recipient_idx on remote_mention (recipient_id, id desc);

-- FEP-044f quote authorizations: a remote post (`quote_ap_id`) may quote a local story or comment.
-- Served at `P/quote_authorizations/{id}` while not revoked and the quoted post is live.
create table quote_authorization (
    id             bigserial primary key,
    story_id       bigint references story on delete cascade,
    comment_id     bigint references comment on delete cascade,
    quoter_id      bigint not null references person on delete cascade,
    request_ap_id  text not null,
    quote_ap_id    text not null unique,
    created_at     timestamptz not null default now(),
    revoked_at     timestamptz,
    check ((story_id is null) <> (comment_id is null))
);
create index quote_authorization_story_idx on quote_authorization (story_id);

-- Quotes of a story, counted beside its boosts.
alter table story add column quote_count integer not null default 0;

create trigger remote_mention_bumps_content_version after insert or update or delete or truncate
    on remote_mention for each statement execute function bump_content_version();
create trigger quote_authorization_bumps_content_version after insert or update or delete or truncate
    on quote_authorization for each statement execute function bump_content_version();
