/* The audit log (sql/003_audit_log.sql): the appender's verdict on every
 * event id, appended or rejected, read back by GET /commands/{event_id}
 * and the admin console.
 *
 * One row per event id, written once: pv_audit_record() never replaces a
 * row, it tells the caller whether it inserted one or found one already
 * there (and then the first verdict stands).  Functions take a libpq
 * connection of the caller's, so the API, the console and the appender
 * each use their own; a caller may wrap a record in its own transaction. */
#ifndef PV_AUDIT_H
#define PV_AUDIT_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "id.h"

enum pv_audit_status {
	PV_AUDIT_APPENDED,
	PV_AUDIT_REJECTED,
};

/* The kind of a rejection (the HTTP status it maps to in the API). */
enum pv_audit_kind {
	PV_AUDIT_KIND_NONE,          /* appended */
	PV_AUDIT_KIND_STATE,         /* 409 */
	PV_AUDIT_KIND_VALUE,         /* 422 */
	PV_AUDIT_KIND_AUTHORIZATION, /* 403 */
	PV_AUDIT_KIND_MALFORMED,     /* the message could not be decoded: dead-lettered */
};

/* One row.  Strings and JSON are owned by the entry when it was filled by
 * pv_audit_get(); a caller that fills one for pv_audit_record() keeps
 * ownership of what it points to.  NULL / -1 for absent values. */
struct pv_audit_entry {
	char event_id[PV_UUID_LEN + 1];
	char *stream;
	int64_t number; /* appended: event number in the stream; -1 otherwise */
	char *type;
	json_t *data;
	json_t *metadata;
	char *user;
	char *source;
	char *correlation_id;
	char *accepted; /* RFC 3339: when the API accepted the command */
	char *received; /* RFC 3339: when the appender received it (required) */
	char *recorded; /* RFC 3339, set by the database; read only */
	enum pv_audit_status status;
	enum pv_audit_kind kind;
	char *rule;
	char *reason;
};

/* "appended", "rejected"; "state", "value", "authorization", "malformed"
 * (NULL for PV_AUDIT_KIND_NONE). */
const char *pv_audit_status_name(enum pv_audit_status status);
const char *pv_audit_kind_name(enum pv_audit_kind kind);

/* Inserts e unless a row for e->event_id exists.  *inserted (may be NULL)
 * says which happened.  An appended entry needs stream and number >= 0; a
 * rejected one kind and rule (checked here: PV_ERR_INVALID). */
enum pv_err pv_audit_record(PGconn *conn, const struct pv_audit_entry *e, bool *inserted,
			    struct pv_error *err);

/* Inserts n new entries in one statement (the appender's batches): the
 * caller has made sure, in the same transaction, that none of the event
 * ids has a row (pv_audit_present).  One that has, because another writer
 * got there in between, fails the whole statement with PV_ERR_CONFLICT:
 * roll back and record those entries one by one.  Every entry is checked
 * first, as above.  The rows are built in *scratch when given (a buffer of
 * the caller's, kept between calls to spare the allocator), else in one of
 * their own. */
struct pv_buf;
enum pv_err pv_audit_insert_new(PGconn *conn, const struct pv_audit_entry *entries, size_t n,
				struct pv_buf *scratch, struct pv_error *err);

/* Which of the n event ids have a row: present[i] set for each (ids that
 * are not UUIDs have none).  One statement. */
enum pv_err pv_audit_present(PGconn *conn, const char *const *ids, size_t n, bool *present,
			     struct pv_error *err);

/* Reads the row of event_id into *out (then pv_audit_entry_clear() it).
 * PV_ERR_NOT_FOUND when there is none (the command is still pending or
 * unknown); PV_ERR_INVALID when event_id is not a UUID. */
enum pv_err pv_audit_get(PGconn *conn, const char *event_id, struct pv_audit_entry *out,
			 struct pv_error *err);

/* Frees what pv_audit_get() filled in. */
void pv_audit_entry_clear(struct pv_audit_entry *e);

#endif
