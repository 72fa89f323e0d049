-- What a reader keeps for later, hides from their lists, and filters out by tag (issue 14).
-- Per person and private: no page cache depends on them, so no change-counter triggers.
create table saved_story (
    person_id   bigint not null references person on delete cascade,
    story_id    bigint not null references story on delete cascade,
    created_at  timestamptz not null default now(),
    primary key (person_id, story_id)
);

create table saved_comment (
    person_id   bigint not null references person on delete cascade,
    comment_id  bigint not null references comment on delete cascade,
    created_at  timestamptz not null default now(),
    primary key (person_id, comment_id)
);

create table hidden_story (
    person_id   bigint not null references person on delete cascade,
    story_id    bigint not null references story on delete cascade,
    created_at  timestamptz not null default now(),
    primary key (person_id, story_id)
);

create table tag_filter (
    person_id   bigint not null references person on delete cascade,
    tag         text not null,
    primary key (person_id, tag)
);

-- Search finds comments too (their text, in English like stories' `search`).
create index comment_search_idx on comment using gin (to_tsvector('english', body));
