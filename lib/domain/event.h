/* The 19 PhotoVote events (../shared/reference/domain.md).
 *
 * Events are described by one table (table.h; the rows are at the end of
 * election.c, `pv_event_table[]`): name, field spec, gates, invariant
 * check and fold.  Adding an event type touches one row of that table, one
 * enum value here and its tests (see lib/domain/README.md).
 *
 * An event's data is kept as the strictly validated jansson object it was
 * decoded from; the envelope adds the event id, the type and metadata. */
#ifndef PV_DOMAIN_EVENT_H
#define PV_DOMAIN_EVENT_H

#include <jansson.h>
#include <stdbool.h>

#include "error.h"
#include "id.h"

enum pv_event_type {
	PV_EV_ELECTION_CREATED,
	PV_EV_ELECTION_NAME_CHANGED,
	PV_EV_ELECTION_DESCRIPTION_CHANGED,
	PV_EV_ELECTION_OPENED,
	PV_EV_ELECTION_CLOSED,
	PV_EV_ELECTION_DELETED,
	PV_EV_COMPETITION_ADDED,
	PV_EV_COMPETITION_NAME_CHANGED,
	PV_EV_COMPETITION_DESCRIPTION_CHANGED,
	PV_EV_COMPETITION_REMOVED,
	PV_EV_CANDIDATE_ADDED,
	PV_EV_CANDIDATE_NAME_CHANGED,
	PV_EV_CANDIDATE_DESCRIPTION_CHANGED,
	PV_EV_CANDIDATE_IMAGE_CHANGED,
	PV_EV_CANDIDATE_REMOVED,
	PV_EV_VOTER_REGISTERED,
	PV_EV_BALLOT_CREATED,
	PV_EV_BALLOT_CANDIDATE_RATED,
	PV_EV_BALLOT_CAST,
	PV_EV__COUNT
};

/* Limits of domain.md. */
#define PV_NAME_MAX 200
#define PV_DESCRIPTION_MAX 2000
#define PV_EMAIL_MAX 254
#define PV_URL_MAX 2000
#define PV_USER_MAX 254
#define PV_RATING_MIN 1
#define PV_RATING_MAX 5

/* "ElectionCreated", ... */
const char *pv_event_type_name(enum pv_event_type type);
/* Returns the type, or -1 for an unknown name. */
int pv_event_type_parse(const char *name);

/* Who asked, when, why and from where.  Strings are owned by the event. */
struct pv_event_meta {
	char *user;           /* identity (email for token users), required */
	bool admin;           /* the user is an administrator */
	char *at;             /* RFC 3339 UTC time the command was accepted */
	char *correlation_id; /* optional */
	char *source;         /* optional: remote address */
};

struct pv_event {
	char id[PV_UUID_LEN + 1]; /* event id (UUID) */
	enum pv_event_type type;
	json_t *data; /* owned, validated: has election_id */
	struct pv_event_meta meta;
};

/* Strictly validates `data` as the data of an event of `type`: an object,
 * exactly the fields of the type (missing, unknown, wrongly typed,
 * over-long, bad ULID, bad rating, bad URL, bad RFC 3339 date are refused),
 * with a message naming the field.  Codes: PV_ERR_JSON for shape/type,
 * PV_ERR_INVALID for values.  The field name is copied into `field`
 * (size PV_FIELD_NAME_MAX) when not NULL, for the HTTP error codes:
 * *kind is set to one of the PV_FIELD_ERR_* values. */
#define PV_FIELD_NAME_MAX 64
enum pv_field_error {
	PV_FIELD_ERR_NONE,
	PV_FIELD_ERR_NOT_OBJECT,
	PV_FIELD_ERR_MISSING,   /* missing_field */
	PV_FIELD_ERR_UNKNOWN,   /* unknown_field */
	PV_FIELD_ERR_TYPE,      /* invalid_type */
	PV_FIELD_ERR_TOO_LONG,  /* field_too_long */
	PV_FIELD_ERR_BAD_ID,    /* invalid_id */
	PV_FIELD_ERR_BAD_VALUE, /* invalid_value (rating, url, date, email, empty name) */
};
/* Stable word of a field error, as the HTTP API's error code:
 * "missing_field", "unknown_field", "invalid_type", "field_too_long",
 * "invalid_id", "invalid_value", "not_object" ("none" for NONE). */
const char *pv_field_error_name(enum pv_field_error kind);
enum pv_err pv_event_validate_data(enum pv_event_type type, const json_t *data,
				   enum pv_field_error *kind, char field[PV_FIELD_NAME_MAX],
				   struct pv_error *err);

/* The API's rule for text, on top of pv_event_validate_data (which must
 * have passed): no C0 or C1 control character and no DEL in any text
 * field, except newline and tab in descriptions and captions; and in
 * single-line fields (names, emails, URLs) none of the characters that
 * reorder or hide text: the bidi embeddings, overrides and isolates
 * U+202A-202E and U+2066-2069, the marks U+200E/U+200F, and the
 * invisible U+200B, U+2060 and U+FEFF.  ZWNJ and ZWJ (U+200C/D) stay:
 * Persian, Indic scripts and emoji sequences need them.  Applied where
 * commands come in (photovote.fcgi), not when stored events are read back,
 * so events written before the rule stay readable.  Fails with
 * PV_FIELD_ERR_BAD_VALUE naming the field and the character. */
enum pv_err pv_event_check_text(enum pv_event_type type, const json_t *data,
				enum pv_field_error *kind, char field[PV_FIELD_NAME_MAX],
				struct pv_error *err);

/* Builds an event taking over `data` (even on failure), after
 * pv_event_validate_data.  meta strings are copied and validated (user
 * required; at must be RFC 3339, and is set to now when NULL). */
enum pv_err pv_event_init(struct pv_event *ev, const char *event_id, enum pv_event_type type,
			  json_t *data, const struct pv_event_meta *meta, struct pv_error *err);
void pv_event_clear(struct pv_event *ev);
/* Borrowed election_id of the event's data. */
const char *pv_event_election_id(const struct pv_event *ev);

/* Envelope, as published to the broker:
 *   {"event_id": "...", "type": "ElectionCreated", "data": {...},
 *    "metadata": {"user": "...", "admin": false, "at": "...",
 *                 "correlation_id": "...", "source": "..."}}
 * Round-trip exact: decode(encode(e)) == e. */
json_t *pv_event_to_json(const struct pv_event *ev);
/* Strict: unknown envelope keys, a bad id, an unknown type or invalid data
 * are refused with a message naming the field. */
enum pv_err pv_event_from_json(const json_t *json, struct pv_event *ev, struct pv_error *err);
/* Metadata alone, as stored beside the data in the event store. */
json_t *pv_event_meta_to_json(const struct pv_event_meta *meta);
enum pv_err pv_event_meta_from_json(const json_t *json, struct pv_event_meta *meta,
				    struct pv_error *err);
void pv_event_meta_clear(struct pv_event_meta *meta);

/* True if s is an RFC 3339 date-time (with Z or offset). */
bool pv_rfc3339_valid(const char *s);
/* Writes the current UTC time as RFC 3339 with milliseconds (out >= 32). */
void pv_rfc3339_now(char out[32]);

#endif
