-- A change counter for the caches of rendered pages, story lists and sessions (src/web/cache.rs).
-- Every statement that changes what a page could show draws a number from this sequence; each web
-- process reads `last_value` a few times a second and drops what it cached before a change, so
-- writes made by any process (another replica, `lien worker`, the CLI) reach every cache quickly.
--
-- A sequence rather than a counter row: `nextval` takes no row lock and is never rolled back, so
-- concurrent writers do not queue behind one another (a rolled-back write costs only a needless
-- refresh). Statement-level triggers: one number per statement, however many rows it touched.
-- Tables whose rows no page shows (deliveries, received activities) have none, and neither do the
-- vote tables: a vote changes what pages show through the counters it updates on its story or
-- comment, and the viewer's own votes are never cached.
create sequence content_version;

create function bump_content_version() returns trigger
language plpgsql as $$
begin
    perform nextval('content_version');
    return null;
end
$$;

do $$
declare
    t text;
begin
    foreach t in array array[
        'person', 'session', 'story', 'story_tag', 'comment', 'site', 'follow', 'boost',
        'link_preview', 'notification', 'instance_block', 'mod_action', 'report'
    ] loop
        execute format(
            'create trigger %I after insert or update or delete or truncate on %I '
            'for each statement execute function bump_content_version()',
            t || '_bumps_content_version', t);
    end loop;
end
$$;

-- Keyset pagination (`?after=ID`, src/db/stories.rs `list_after`): each list's index ends with
-- the id, so that the row comparison `(sort key, id) < (...)` is an index seek.
drop index story_hot_idx;
create index story_hot_idx on story (hot_rank desc, id desc) where deleted_at is null;
drop index story_top_idx;
create index story_top_idx on story (score desc, created_at desc, id desc) where deleted_at is null;
drop index story_domain_idx;
create index story_domain_idx on story (domain, created_at desc, id desc) where deleted_at is null;
drop index story_author_idx;
create index story_author_idx on story (author_id, created_at desc, id desc);
