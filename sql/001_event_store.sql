-- 001: the PostgreSQL event store (lib/eventstore/pg.c).
--
-- es_streams   one row per stream ever written or deleted; its row lock
--              serialises appenders and deleters of that stream.
-- es_categories one row per category: the next feed position.  An append
--              takes this row's lock after its stream's and keeps it until
--              commit, so positions within a category are handed out and
--              committed in the same order: no gaps, and a reader that has
--              seen position p will never later find a new event below p.
-- es_events    the events.  data and metadata are `json` (text kept as
--              sent, validated), not `jsonb`, which would reorder keys and
--              drop duplicates: events are facts and are returned byte for
--              byte as they were appended.
--
-- A soft delete removes the events and marks the stream 'soft' (its
-- version stays, so a new append continues the numbering); a hard delete
-- marks it 'hard' for good.

CREATE TABLE es_streams (
	name text PRIMARY KEY CHECK (name <> '' AND octet_length(name) <= 1024),
	category text NOT NULL,
	version bigint NOT NULL DEFAULT -1 CHECK (version >= -1),
	state text NOT NULL DEFAULT 'live' CHECK (state IN ('live', 'soft', 'hard')),
	updated timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX es_streams_category ON es_streams (category, name);

CREATE TABLE es_categories (
	name text PRIMARY KEY,
	next_position bigint NOT NULL CHECK (next_position >= 0)
);

CREATE TABLE es_events (
	stream text NOT NULL REFERENCES es_streams (name),
	number bigint NOT NULL CHECK (number >= 0),
	category text NOT NULL,
	position bigint NOT NULL CHECK (position >= 0),
	id uuid NOT NULL,
	type text NOT NULL CHECK (type <> ''),
	data json NOT NULL,
	metadata json,
	created timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (stream, number),
	UNIQUE (category, position)
);

-- Idempotency look-ups of re-sent event ids.
CREATE INDEX es_events_id ON es_events (id);
