-- Tags as federated groups (FEP-1b12, issue 12): each tag is a `Group` actor at P/t/{tag}.

-- A tag group's key pair, made the first time the tag's actor is needed (SQL cannot make RSA keys).
create table tag_group (
    tag              text primary key check (tag ~ '^[a-z0-9][a-z0-9_-]{0,29}$'),
    public_key_pem   text not null,
    private_key_pem  text not null,
    created_at       timestamptz not null default now()
);

-- Remote actors following a tag group. Accepted at once (the group answers every Follow).
create table tag_follower (
    tag           text not null references tag_group on delete cascade,
    follower_id   bigint not null references person on delete cascade,
    -- id of the Follow activity, so that an Undo can name it
    ap_id         text not null unique,
    -- the follower's server understands FEP-1b12 (Lemmy, PieFed, Mbin, lien...): it gets every
    -- activity announced; others (Mastodon...) only get boosts of new stories
    groups_aware  boolean not null,
    created_at    timestamptz not null default now(),
    primary key (tag, follower_id)
);
create index tag_follower_follower_idx on tag_follower (follower_id);

-- Deliveries a tag group signs (signer_id is then null, as for the instance actor).
alter table delivery add column signer_tag text;

-- A remote story posted to one of this instance's tag groups (a Lemmy user's post to !tag@here, a
-- Mastodon user's mention of @tag@here): the groups announce its discussion, as for local stories.
alter table story add column posted_to_group boolean not null default false;
