-- Issue 8, continued: invitations, account deletion, and failed logins counted in the database.

-- A deleted account stays as a tombstoned row: its name can never be taken again (another account
-- under the same ActivityPub id would be believed by peers), it keeps its keys so that the
-- `Delete` of the actor and other activities still queued can be signed, and what it wrote keeps
-- an author (shown as "[deleted]").
alter table person add column deleted_at timestamptz;

-- Who invited a local account (LIEN_REGISTRATION=invite), for the public invitation tree.
alter table person add column invited_by bigint references person on delete set null;
create index person_invited_by_idx on person (invited_by) where invited_by is not null;

-- An invitation link: one use. The code is the secret in the link.
create table invitation (
    code        text primary key,
    inviter_id  bigint not null references person on delete cascade,
    created_at  timestamptz not null default now(),
    used_by     bigint references person on delete set null,
    used_at     timestamptz
);
create index invitation_inviter_idx on invitation (inviter_id, created_at desc);

-- Failed logins, by address and by the name tried, so that the limit holds across every web
-- process sharing the database (an in-memory count is per process). Old rows are swept as new
-- ones come in.
create table login_failure (
    key     text not null,
    at      timestamptz not null default now()
);
create index login_failure_key_idx on login_failure (key, at);
