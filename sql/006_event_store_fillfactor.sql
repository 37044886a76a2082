-- 006: room for HOT updates in the event store's small, hot tables.
--
-- Every append rewrites its stream's row in es_streams (version, updated)
-- and its category's row in es_categories (next_position).  None of those
-- columns is indexed, so PostgreSQL can update the row in place on its page
-- (a heap-only tuple, no new index entries) when the page has room: with
-- the default fillfactor of 100 it rarely has, and each append then adds
-- entries to every index of the table.  Free space per page keeps the
-- appender's statements cheap; the tables hold one row per election and
-- one per category, so the space is small.  Applies to pages written from
-- now on.

ALTER TABLE es_streams SET (fillfactor = 70);
ALTER TABLE es_categories SET (fillfactor = 50);
