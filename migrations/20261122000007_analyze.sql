-- Fresh planner statistics after the moderation columns were added: the list queries filter on
-- person.banned_at and story/comment.removed_at, and columns that were just added have none
-- (adding a column does not make autovacuum analyze). Without them PostgreSQL guessed that almost
-- no one was unbanned and the front page took seconds at a million stories (bench/README.md).
analyze person;
analyze story;
analyze comment;
