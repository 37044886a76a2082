/* Reading the audit log (audit_query.h). */
#define _POSIX_C_SOURCE 200809L

#include "audit_query.h"

#include "buf.h"
#include "pgutil.h"
#include "domain/stream.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One row per filter: its name, where it sits in the struct, and the
 * condition it adds, before and after its parameter's number ($N). */
static const struct {
	const char *key;
	size_t offset;
	const char *before, *after;
} filters[] = {
	{"event", offsetof(struct pv_audit_filter, event_id), "event_id::text = $", ""},
	{"user", offsetof(struct pv_audit_filter, user), "user_name = $", ""},
	{"election", offsetof(struct pv_audit_filter, election),
	 "stream = '" PV_ELECTION_CATEGORY "-' || $", ""},
	{"type", offsetof(struct pv_audit_filter, type), "type = $", ""},
	{"status", offsetof(struct pv_audit_filter, status), "status = $", ""},
	{"correlation", offsetof(struct pv_audit_filter, correlation_id), "correlation_id = $", ""},
	{"since", offsetof(struct pv_audit_filter, since), "recorded >= $", "::timestamptz"},
	{"until", offsetof(struct pv_audit_filter, until), "recorded < $", "::timestamptz"},
};
#define NFILTERS (sizeof filters / sizeof filters[0])

static const char **field(const struct pv_audit_filter *f, size_t i)
{
	return (const char **)((const char *)f + filters[i].offset);
}

enum pv_err pv_audit_filter_set(struct pv_audit_filter *f, const char *key, const char *value,
				struct pv_error *err)
{
	for (size_t i = 0; i < NFILTERS; i++)
		if (strcmp(filters[i].key, key) == 0) {
			*field(f, i) = value;
			return PV_OK;
		}
	return pv_error_set(err, PV_ERR_INVALID,
			    "no audit filter \"%s\" (event, user, election, type, status,"
			    " correlation, since, until)",
			    key);
}

void pv_audit_rows_clear(struct pv_audit_rows *r)
{
	for (size_t i = 0; i < r->count; i++) {
		struct pv_audit_row *a = &r->rows[i];
		char *texts[] = {a->event_id, a->stream,         a->type,     a->user,
				 a->source,   a->correlation_id, a->accepted, a->received,
				 a->recorded, a->status,         a->kind,     a->rule,
				 a->reason};

		for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++)
			free(texts[t]);
	}
	free(r->rows);
	memset(r, 0, sizeof *r);
}

#define TIME(col)                                                                                  \
	"coalesce(to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '')"

enum pv_err pv_audit_query(struct pv_session *s, const struct pv_audit_filter *f,
			   const struct pv_audit_row *before, size_t limit,
			   struct pv_audit_rows *out, struct pv_error *err)
{
	const char *params[NFILTERS + 3];
	char limit_text[32];
	struct pv_buf sql = PV_BUF_INIT;
	const char *glue = " WHERE ";
	PGconn *conn = NULL;
	PGresult *res;
	int n = 0;

	memset(out, 0, sizeof *out);
	if (pv_session_pg(s, &conn, err) != PV_OK)
		return err->code;
	pv_buf_puts(
		&sql,
		"SELECT event_id::text, coalesce(stream, ''), coalesce(number, -1),"
		" coalesce(type, ''), coalesce(user_name, ''), coalesce(source, ''),"
		" coalesce(correlation_id, ''), " TIME("accepted") ", " TIME("received") ", " TIME(
			"recorded") ", status, coalesce(kind, ''),"
				    " coalesce(rule, ''), coalesce(reason, '')"
				    " FROM audit_log");
	for (size_t i = 0; i < NFILTERS; i++) {
		if (!*field(f, i))
			continue;
		params[n++] = *field(f, i);
		pv_buf_puts(&sql, glue);
		pv_buf_printf(&sql, "%s%d%s", filters[i].before, n, filters[i].after);
		glue = " AND ";
	}
	if (before) {
		params[n++] = before->recorded;
		params[n++] = before->event_id;
		pv_buf_puts(&sql, glue);
		pv_buf_printf(&sql, "(recorded, event_id) < ($%d::timestamptz, $%d::uuid)", n - 1,
			      n);
	}
	snprintf(limit_text, sizeof limit_text, "%zu", limit);
	params[n++] = limit_text;
	pv_buf_printf(&sql, " ORDER BY recorded DESC, event_id DESC LIMIT $%d", n);
	if (pv_pg_exec(conn, "read the audit log", sql.data, n, params, &res, err) != PV_OK) {
		pv_buf_free(&sql);
		/* A bad filter value is the operator's, not a broken connection. */
		if (err->code == PV_ERR_DATABASE)
			return pv_error_prefix(err, "PostgreSQL");
		return pv_session_pg_failed(s, err);
	}
	pv_buf_free(&sql);
	out->count = (size_t)PQntuples(res);
	out->rows = pv_xcalloc(out->count ? out->count : 1, sizeof *out->rows);
	for (size_t i = 0; i < out->count; i++) {
		struct pv_audit_row *a = &out->rows[i];
		char **texts[] = {
			&a->event_id, &a->stream,         NULL,         &a->type,     &a->user,
			&a->source,   &a->correlation_id, &a->accepted, &a->received, &a->recorded,
			&a->status,   &a->kind,           &a->rule,     &a->reason};

		for (int c = 0; c < (int)(sizeof texts / sizeof texts[0]); c++)
			if (texts[c])
				*texts[c] = pv_xstrdup(PQgetvalue(res, (int)i, c));
		a->number = strtoll(PQgetvalue(res, (int)i, 2), NULL, 10);
	}
	PQclear(res);
	return PV_OK;
}
