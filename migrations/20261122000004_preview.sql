-- Link previews (issue 5): what a shared page says about itself, fetched in the background.
--
-- One row per link story is both the job and its result. 'pending' rows are the queue: workers
-- claim due rows with FOR UPDATE SKIP LOCKED and push next_attempt_at forward as a lease while they
-- fetch, as with `delivery`, so a crashed worker's rows come due again by themselves. A fetch that
-- fails for a passing reason is retried twice with a backoff; then, or at once for a lasting
-- reason, the row is 'failed' and the story simply shows without a preview.
create table link_preview (
    story_id         bigint primary key references story on delete cascade,
    -- the link fetched; editing the story's link starts the row over
    url              text not null,
    state            text not null default 'pending' check (state in ('pending', 'ready', 'failed')),
    attempts         integer not null default 0,
    next_attempt_at  timestamptz not null default now(),
    last_error       text,
    -- what the page says: OpenGraph, else Twitter card, else plain HTML
    title            text,
    description      text,
    -- the thumbnail's file name under LIEN_DATA_DIR/media, served at /media/{image}
    image            text,
    canonical_url    text,
    created_at       timestamptz not null default now(),
    fetched_at       timestamptz
);
create index link_preview_due_idx on link_preview (next_attempt_at) where state = 'pending';
