-- Remote communities (issue 12): lien follows Lemmy, PieFed and Mbin communities (`Group` actors).

-- Remote actors have a type, so that `linux@lemmy.example` the person and `!linux@lemmy.example`
-- the community can both exist here.
alter table person add column kind text not null default 'Person'
    check (kind in ('Person', 'Group', 'Service', 'Application', 'Organization'));
drop index person_remote_name_key;
create unique index person_remote_name_key on person (kind, lower(name), host) where not local;

-- Communities this instance follows: one Follow per community, whoever many subscribe here. It is
-- sent by the first local subscriber, not by the instance actor: Lemmy takes follows only from
-- actors typed Person, Service or Organization (P/actor is an Application). The group announces
-- to the follower's shared inbox, P/inbox, which serves every subscriber.
create table community_follow (
    community_id  bigint primary key references person on delete cascade,
    -- id of the Follow activity, so that the Accept and an Undo can name it
    ap_id         text not null unique,
    -- the local person who sent it (the follow is handed to another subscriber when they leave)
    follower_id   bigint not null references person on delete cascade,
    accepted      boolean not null default false,
    created_at    timestamptz not null default now()
);

-- Who here subscribed to a community (the instance unfollows when the last one leaves).
create table community_subscriber (
    person_id     bigint not null references person on delete cascade,
    community_id  bigint not null references person on delete cascade,
    created_at    timestamptz not null default now(),
    primary key (person_id, community_id)
);
create index community_subscriber_community_idx on community_subscriber (community_id);

-- The community a remote story was posted to (null for everything else).
alter table story add column community_id bigint references person on delete set null;
create index story_community_idx on story (community_id, created_at desc, id desc)
    where community_id is not null;
