-- 007: elections the projector parked (workers/projector.c).
--
-- Cosmos DB refused a write of this election's documents for good (413,
-- 400, a document that could not be built, a fold that failed), so the
-- projector stopped projecting that election and went on with the others.
-- One row per projection (name as in projector_checkpoints) and election.
-- position is the feed position of the event that could not be projected,
-- event_number its number in the election's stream; status is the HTTP
-- status Cosmos DB answered (0 when no request was made, e.g. a fold that
-- failed).  The read endpoints answer 503 projection_parked for a parked
-- election; `photovote-admin rebuild ID` deletes its row once it succeeds.

CREATE TABLE projection_parked (
	name text NOT NULL CHECK (name <> ''),
	election_id text NOT NULL CHECK (election_id <> ''),
	position bigint NOT NULL,
	event_number bigint NOT NULL,
	status integer NOT NULL,
	reason text NOT NULL,
	parked_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (name, election_id)
);
