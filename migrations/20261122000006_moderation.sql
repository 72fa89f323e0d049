-- Moderation (issue 8): removals, locks, bans, instance blocks, reports, and the public log of
-- every moderator's action.

-- A moderator's removal hides a story or comment from every list and feed; unlike an author's
-- deletion it keeps the text, so that a restore brings it back as it was.
alter table story add column removed_at timestamptz;
alter table story add column removed_reason text;
alter table comment add column removed_at timestamptz;
alter table comment add column removed_reason text;

-- A locked story takes no new comments, from here or from any server.
alter table story add column locked_at timestamptz;

-- A banned local person can no longer log in, post or vote; a banned remote actor's activities are
-- refused and their content hidden.
alter table person add column banned_at timestamptz;
alter table person add column ban_reason text;

-- With LIEN_REGISTRATION=approval a new account waits, unable to log in, until a moderator
-- approves it (or rejects it: the row goes).
alter table person add column awaiting_approval boolean not null default false;

-- Servers whose activities are refused and to which nothing is delivered. `host` is written as
-- person.host and delivery.host are: lower case, with the port when not the default.
create table instance_block (
    host        text primary key,
    reason      text not null,
    created_at  timestamptz not null default now()
);

-- The public moderation log (/modlog): who did what to what, and why.
create table mod_action (
    id            bigserial primary key,
    -- null when done from the command line (`lien user ban`)
    moderator_id  bigint references person on delete set null,
    action        text not null check (action in (
                      'remove', 'restore', 'lock', 'unlock', 'ban', 'unban', 'block', 'unblock',
                      'set_role', 'resolve_report', 'dismiss_report', 'approve', 'reject')),
    -- story, comment, person, instance or report, and its id (a host for an instance)
    target_kind   text not null check (target_kind in ('story', 'comment', 'person', 'instance', 'report')),
    target_id     text not null,
    reason        text not null,
    created_at    timestamptz not null default now()
);
create index mod_action_new_idx on mod_action (created_at desc, id desc);

-- A person's (or, by `Flag`, another server's) report of a story or comment.
create table report (
    id           bigserial primary key,
    reporter_id  bigint not null references person on delete cascade,
    story_id     bigint references story on delete cascade,
    comment_id   bigint references comment on delete cascade,
    reason       text not null,
    status       text not null default 'open' check (status in ('open', 'resolved', 'dismissed')),
    created_at   timestamptz not null default now(),
    resolved_by  bigint references person on delete set null,
    -- a report names exactly one thing
    check ((story_id is null) <> (comment_id is null))
);
create index report_open_idx on report (created_at) where status = 'open';
