-- 011: rebuilds by replay (admin/rebuild.c) and the read model's containers.
--
-- rebuild_progress: one row per rebuild of every election under way, keyed
-- by the feed name of the container it writes (as projector_checkpoints'
-- name: "Election@<backend>:<database>/<container>").  Elections are
-- rebuilt in id order; last_election is the last one done, so a rebuild
-- that was interrupted (Ctrl-C, SIGTERM, a server down, a crash) resumes
-- after it.  feed_from is the feed position after which a rebuild into a
-- new container catches up from the feed (the live projector's checkpoint
-- when it started: every event at or before it was in its stream then).
-- The row goes when the rebuild ends.
CREATE TABLE rebuild_progress (
	target text PRIMARY KEY CHECK (target <> ''),
	last_election text NOT NULL DEFAULT '',
	elections_done bigint NOT NULL DEFAULT 0,
	elections_failed bigint NOT NULL DEFAULT 0,
	events_done bigint NOT NULL DEFAULT 0,
	feed_from bigint NOT NULL DEFAULT -1,
	started timestamptz NOT NULL DEFAULT now(),
	updated timestamptz NOT NULL DEFAULT now()
);

-- read_model_containers: the Cosmos DB containers of a database that hold
-- (or held) the read model.  The one whose state is 'active' is the one
-- photovote.fcgi reads and photovote-projector writes; with no such row it
-- is the configured [cosmos] container.  'building' and 'ready': a
-- container `photovote-admin rebuild --into` builds or has built;
-- 'switching': `rebuild --switch` is moving the read model to it: the
-- projector lets go of the active container and waits until the switch
-- makes this one 'active' (or puts it back to 'ready');
-- 'retired': the one a switch left, kept until `rebuild --drop`.
CREATE TABLE read_model_containers (
	database text NOT NULL CHECK (database <> ''),
	container text NOT NULL CHECK (container <> ''),
	state text NOT NULL CHECK (state IN ('building', 'ready', 'switching', 'active', 'retired')),
	updated timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (database, container)
);
CREATE UNIQUE INDEX read_model_containers_active ON read_model_containers (database)
	WHERE state = 'active';
