-- Notifications: a reply to your story or comment, or a mention, from here or from any server.
create table notification (
    id            bigserial primary key,
    recipient_id  bigint not null references person on delete cascade,
    kind          text not null check (kind in ('reply', 'mention')),
    comment_id    bigint not null references comment on delete cascade,
    created_at    timestamptz not null default now(),
    read_at       timestamptz,
    -- one notification per comment and reason, however often the comment arrives or is edited
    unique (recipient_id, comment_id, kind)
);
create index notification_recipient_idx on notification (recipient_id, id desc);
create index notification_unread_idx on notification (recipient_id) where read_at is null;

-- The secret in a person's private notifications feed URL; made on first use.
alter table person add column feed_token text unique;
