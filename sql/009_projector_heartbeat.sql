-- 009: the projector's heartbeat (workers/projector.c), read by /healthz.
--
-- One row per projection (name as in projector_checkpoints), written by
-- the active projector at most every [projector] heartbeat_ms, and only
-- after a round that went well: a page projected and checkpointed, or a
-- long poll that found nothing new (idle).  A projector that is stalled,
-- dead, or stuck in an outage stops beating, and /healthz reports it
-- failing once beat_at is older than [http] projector_stale_seconds.
-- position is the checkpoint at the beat; head the last feed position the
-- projector knew of (-1: none), which is its own view of the feed: for
-- the postgres event store /healthz reads the real head from es_categories.

CREATE TABLE projector_heartbeats (
	name text PRIMARY KEY CHECK (name <> ''),
	beat_at timestamptz NOT NULL DEFAULT now(),
	position bigint NOT NULL CHECK (position >= -1),
	head bigint NOT NULL CHECK (head >= -1)
);
