/* Searching the audit log (sql/003_audit_log.sql): the verdicts of the
 * appender, newest first, filtered and paged, for `photovote-admin audit`
 * and the console's audit screen and event detail.
 *
 * Paging is by keyset, not offset: each row carries a cursor (its recorded
 * time in microseconds since the epoch, "_", its event id) and the next
 * page is the rows strictly older than the last row's cursor, so rows
 * recorded meanwhile neither repeat nor hide older ones. */
#ifndef PV_ADMIN_AUDIT_QUERY_H
#define PV_ADMIN_AUDIT_QUERY_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* Every field NULL (or 0) is no filter.  Times are anything PostgreSQL
 * reads as a timestamptz (RFC 3339 is); since is inclusive, until not. */
struct pv_audit_filter {
	const char *event_id; /* one event (a UUID) */
	const char *user;
	const char *election_id; /* a ULID: the stream Election-<id> */
	const char *type;        /* an event type, e.g. BallotCast */
	const char *status;      /* "appended" or "rejected" */
	const char *since, *until;
	const char *correlation_id;
	const char *before; /* a cursor: rows older than it */
	size_t limit;       /* rows in the page (0: PV_AUDIT_PAGE) */
};
#define PV_AUDIT_PAGE 50
#define PV_AUDIT_PAGE_MAX 10000

/* Checks the filter's values (election id, status, cursor); PV_ERR_INVALID
 * with a message naming the option when one is wrong. */
enum pv_err pv_audit_filter_check(const struct pv_audit_filter *f, struct pv_error *err);

/* Sets the filter named key (event, user, election, type, status,
 * correlation, since, until) to value (borrowed): the console's
 * "key=value" words.  PV_ERR_INVALID naming the key when there is none
 * such. */
enum pv_err pv_audit_filter_set(struct pv_audit_filter *f, const char *key, const char *value,
				struct pv_error *err);

/* One page: *rows is an array of objects {"event_id", "recorded",
 * "received", "accepted", "status", "kind", "rule", "reason", "type",
 * "stream", "number", "user", "source", "correlation_id", "cursor"}
 * (absent values are null; strings are the database's, untrusted: escape
 * them for a screen); *more says whether older rows match.  A time
 * PostgreSQL cannot read: PV_ERR_INVALID. */
enum pv_err pv_audit_query(PGconn *conn, const struct pv_audit_filter *f, json_t **rows, bool *more,
			   struct pv_error *err);

#endif
