-- 008: what photovote.fcgi knows of the event ids it hands out
-- (fcgi/command_ids.c), so that GET /commands/{id} tells a command in
-- flight from an id no server published.
--
-- command_key: the one secret every photovote.fcgi process shares (unless
-- [http] command_key is set): server-made event ids carry a MAC under it,
-- so a random or mistyped id is known to be nobody's without a lookup.
-- 64 hex digits from gen_random_uuid (pg_strong_random).
CREATE TABLE command_key (
	only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
	key text NOT NULL CHECK (length(key) >= 32)
);
INSERT INTO command_key (key)
	VALUES (replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));

-- command_confirmed: one row per event id the broker confirmed
-- (published 'yes'), or that was sent without a confirm coming back
-- ('unknown': the broker may hold it).  Written in batches off the request
-- path; a row and no verdict in audit_log means "pending".
CREATE TABLE command_confirmed (
	event_id uuid PRIMARY KEY,
	published text NOT NULL CHECK (published IN ('yes', 'unknown')),
	recorded timestamptz NOT NULL DEFAULT now()
);
