-- API bearer tokens (lib/auth_token.c).  Only the SHA-256 of a token is
-- stored, as 64 lower-case hex digits; the token itself is shown once when
-- it is created.  Revoking sets revoked_at; rows are kept for the record.
CREATE TABLE api_tokens (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	token_hash text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
	user_email text NOT NULL CHECK (length(user_email) BETWEEN 1 AND 254),
	is_admin boolean NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL DEFAULT now(),
	revoked_at timestamptz,
	CHECK (revoked_at IS NULL OR revoked_at >= created_at)
);

CREATE INDEX api_tokens_user ON api_tokens (user_email);
