-- 004: checkpoints of photovote-projector (workers/projector.c).
--
-- One row per feed and target: name is "<category>@<event-store
-- backend>:<Cosmos DB database>/<container>", so two projections of one
-- store (a rebuild into another container, a test) keep apart, and a
-- switch of backend (whose feed positions mean something else) starts
-- from the beginning.  position is the last feed position whose event the
-- documents reflect (-1: none); the projector writes it only after the
-- documents, and only forward.
--
-- The active projector of a feed holds a session advisory lock
-- (pg_try_advisory_lock(7031846, hashtext(name))); a second one waits.

CREATE TABLE projector_checkpoints (
	name text PRIMARY KEY CHECK (name <> ''),
	position bigint NOT NULL CHECK (position >= -1),
	updated timestamptz NOT NULL DEFAULT now()
);
