-- 003: the audit log (lib/audit.c), written by photovote-appender.
--
-- One row per event id, holding the appender's first verdict on it: the
-- primary key makes every write idempotent (a redelivered message finds
-- its row and changes nothing), so an accepted event never turns into a
-- rejected one.  GET /commands/{event_id} reads the verdict from here; a
-- missing row means "pending".
--
--   status    appended: in the stream as event `number`;
--             rejected: never appended, `kind` (state, value,
--             authorization, malformed), `rule` (stable word) and
--             `reason` (sentence) say why.
--   accepted  when the API accepted the command (metadata "at").
--   received  when the appender took the message from the broker.
--   recorded  when this row was written.
-- data and metadata are `json` (kept as sent), as in es_events.

CREATE TABLE audit_log (
	event_id uuid PRIMARY KEY,
	stream text CHECK (stream IS NULL OR stream <> ''),
	number bigint CHECK (number IS NULL OR number >= 0),
	type text,
	data json,
	metadata json,
	user_name text,
	source text,
	correlation_id text,
	accepted timestamptz,
	received timestamptz NOT NULL,
	recorded timestamptz NOT NULL DEFAULT now(),
	status text NOT NULL CHECK (status IN ('appended', 'rejected')),
	kind text CHECK (kind IN ('state', 'value', 'authorization', 'malformed')),
	rule text,
	reason text,
	CHECK (status <> 'appended' OR (number IS NOT NULL AND stream IS NOT NULL
					AND kind IS NULL AND rule IS NULL)),
	CHECK (status <> 'rejected' OR (number IS NULL AND kind IS NOT NULL AND rule IS NOT NULL))
);

-- The admin console lists an election's verdicts and the latest ones.
CREATE INDEX audit_log_stream ON audit_log (stream, recorded);
CREATE INDEX audit_log_recorded ON audit_log (recorded);
