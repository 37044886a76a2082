/* Reading the audit log (sql/003_audit_log.sql): the appender's verdict
 * on every event, newest first, filtered and paged.  Shared by the
 * console's audit screen and event detail; the `audit` subcommand can use
 * the same filter.
 *
 * Paging is by key, not offset: a page after `before` holds the rows
 * recorded before that row (recorded, event_id), so rows written while an
 * operator pages never shift the pages.  Every text field is untrusted
 * (it came through the API): escape it before it reaches a screen. */
#ifndef PV_ADMIN_AUDIT_QUERY_H
#define PV_ADMIN_AUDIT_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "session.h"

/* NULL fields do not filter.  Times are anything PostgreSQL reads as a
 * timestamptz ("2026-12-06", "2026-12-06T09:00:00Z"). */
struct pv_audit_filter {
	const char *event_id;       /* one event (a UUID) */
	const char *user;           /* user_name */
	const char *election;       /* an election id (stream Election-<id>) */
	const char *type;           /* event type */
	const char *status;         /* appended or rejected */
	const char *correlation_id; /* as the API received it */
	const char *since, *until;  /* recorded >= since, < until */
};

struct pv_audit_row {
	char *event_id, *stream, *type, *user, *source, *correlation_id;
	char *accepted, *received, *recorded; /* RFC 3339 UTC, microseconds; "" when NULL */
	char *status, *kind, *rule, *reason;  /* "" when NULL */
	int64_t number;                       /* -1 when not appended */
};

struct pv_audit_rows {
	struct pv_audit_row *rows;
	size_t count;
};
void pv_audit_rows_clear(struct pv_audit_rows *r);

/* Sets the field named key (event, user, election, type, status,
 * correlation, since, until) to value (borrowed); PV_ERR_INVALID naming
 * the key when there is none such.  For parsers of "key=value" words. */
enum pv_err pv_audit_filter_set(struct pv_audit_filter *f, const char *key, const char *value,
				struct pv_error *err);

/* Up to limit rows matching f, newest first, recorded before the row
 * `before` (NULL: from the newest). */
enum pv_err pv_audit_query(struct pv_session *s, const struct pv_audit_filter *f,
			   const struct pv_audit_row *before, size_t limit,
			   struct pv_audit_rows *out, struct pv_error *err);

#endif
