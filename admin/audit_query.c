/* Searching the audit log (audit_query.h).  One parameterised statement:
 * each filter given adds one condition from the table below, and its value
 * travels as a parameter, never in the SQL text. */
#define _POSIX_C_SOURCE 200809L

#include "audit_query.h"

#include "buf.h"
#include "id.h"
#include "pgutil.h"
#include "projection.h"
#include "xalloc.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The columns of a row, in the SELECT's order, and how each is typed. */
enum col_kind { TEXT, NUMBER };
static const struct {
	const char *name, *sql;
	enum col_kind kind;
} cols[] = {
	{"event_id", "event_id::text", TEXT},
	{"recorded", "to_char(recorded AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
	 TEXT},
	{"received", "to_char(received AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
	 TEXT},
	{"accepted", "to_char(accepted AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
	 TEXT},
	{"status", "status", TEXT},
	{"kind", "kind", TEXT},
	{"rule", "rule", TEXT},
	{"reason", "reason", TEXT},
	{"type", "type", TEXT},
	{"stream", "stream", TEXT},
	{"number", "number", NUMBER},
	{"user", "user_name", TEXT},
	{"source", "source", TEXT},
	{"correlation_id", "correlation_id", TEXT},
	{"cursor", "(extract(epoch FROM recorded) * 1000000)::bigint || '_' || event_id", TEXT},
};

/* One condition per filter; "$" stands for the filter's parameter. */
/* key: its name for pv_audit_filter_set (NULL: not set that way). */
#define FILTER(key, field, cond)                                                                   \
	{                                                                                          \
		key, offsetof(struct pv_audit_filter, field), cond                                 \
	}
static const struct {
	const char *key;
	size_t offset;
	const char *cond;
} filters[] = {
	FILTER("event", event_id, "event_id::text = $"),
	FILTER("user", user, "user_name = $"),
	FILTER("election", election_id, "stream = '" PV_ELECTION_CATEGORY "-' || $"),
	FILTER("type", type, "type = $"),
	FILTER("status", status, "status = $"),
	FILTER("since", since, "recorded >= $::timestamptz"),
	FILTER("until", until, "recorded < $::timestamptz"),
	FILTER("correlation", correlation_id, "correlation_id = $"),
	FILTER(NULL, before,
	       "(recorded, event_id) < ('epoch'::timestamptz + split_part($, '_', 1)::bigint"
	       " * interval '1 microsecond', split_part($, '_', 2)::uuid)"),
};

static const char *field(const struct pv_audit_filter *f, size_t offset)
{
	return *(const char *const *)((const char *)f + offset);
}

/* A cursor: digits, "_", a UUID. */
static bool cursor_valid(const char *c)
{
	const char *sep = strchr(c, '_');

	if (!sep || sep == c || sep - c > 19 || !pv_uuid_valid(sep + 1))
		return false;
	for (const char *p = c; p < sep; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

enum pv_err pv_audit_filter_set(struct pv_audit_filter *f, const char *key, const char *value,
				struct pv_error *err)
{
	for (size_t i = 0; i < COUNT(filters); i++)
		if (filters[i].key && strcmp(filters[i].key, key) == 0) {
			*(const char **)((char *)f + filters[i].offset) = value;
			return PV_OK;
		}
	return pv_error_set(err, PV_ERR_INVALID,
			    "no audit filter \"%.40s\" (event, user, election, type, status,"
			    " correlation, since, until)",
			    key);
}

enum pv_err pv_audit_filter_check(const struct pv_audit_filter *f, struct pv_error *err)
{
	if (f->election_id && !pv_ulid_valid(f->election_id))
		return pv_error_set(err, PV_ERR_INVALID, "--election: \"%s\" is not an election id",
				    f->election_id);
	if (f->status && strcmp(f->status, "appended") != 0 && strcmp(f->status, "rejected") != 0)
		return pv_error_set(err, PV_ERR_INVALID,
				    "--status: \"%s\" is neither appended nor rejected", f->status);
	if (f->before && !cursor_valid(f->before))
		return pv_error_set(err, PV_ERR_INVALID,
				    "--before: \"%s\" is not a cursor of this command", f->before);
	if (f->limit > PV_AUDIT_PAGE_MAX)
		return pv_error_set(err, PV_ERR_INVALID, "--count: at most %d", PV_AUDIT_PAGE_MAX);
	return PV_OK;
}

enum pv_err pv_audit_query(PGconn *conn, const struct pv_audit_filter *f, json_t **rows, bool *more,
			   struct pv_error *err)
{
	const char *params[COUNT(filters) + 1];
	size_t limit = f->limit ? f->limit : PV_AUDIT_PAGE;
	char limit_text[24];
	struct pv_buf sql = PV_BUF_INIT;
	char *text;
	PGresult *res;
	int n = 0;
	enum pv_err rc;

	*rows = NULL;
	*more = false;
	if (pv_audit_filter_check(f, err) != PV_OK)
		return err->code;
	pv_buf_puts(&sql, "SELECT ");
	for (size_t i = 0; i < COUNT(cols); i++)
		pv_buf_printf(&sql, "%s%s", i ? ", " : "", cols[i].sql);
	pv_buf_puts(&sql, " FROM audit_log WHERE true");
	for (size_t i = 0; i < COUNT(filters); i++) {
		const char *v = field(f, filters[i].offset);

		if (!v)
			continue;
		params[n++] = v;
		pv_buf_puts(&sql, " AND ");
		for (const char *c = filters[i].cond; *c; c++) {
			if (*c == '$')
				pv_buf_printf(&sql, "$%d", n);
			else
				pv_buf_append(&sql, c, 1);
		}
	}
	/* One more than the page: whether there are older rows. */
	snprintf(limit_text, sizeof limit_text, "%zu", limit + 1);
	params[n++] = limit_text;
	pv_buf_printf(&sql, " ORDER BY recorded DESC, event_id DESC LIMIT $%d::bigint", n);
	text = pv_buf_steal(&sql);
	rc = pv_pg_exec(conn, "search the audit log", text, n, params, &res, err);
	free(text);
	if (rc != PV_OK)
		return rc;
	*rows = json_array();
	if (!*rows)
		pv_oom("json_array", 0);
	for (int r = 0; r < PQntuples(res); r++) {
		json_t *row;

		if ((size_t)r == limit) {
			*more = true;
			break;
		}
		row = json_object();
		if (!row)
			pv_oom("json_object", 0);
		for (size_t c = 0; c < COUNT(cols); c++) {
			const char *v = PQgetvalue(res, r, (int)c);
			json_t *j;

			if (PQgetisnull(res, r, (int)c))
				j = json_null();
			else if (cols[c].kind == NUMBER)
				j = json_integer(strtoll(v, NULL, 10));
			else if (!(j = json_string(v)))
				j = json_null(); /* not UTF-8: jansson refuses it */
			if (!j || json_object_set_new(row, cols[c].name, j) != 0)
				pv_oom("json_object_set_new", 0);
		}
		if (json_array_append_new(*rows, row) != 0)
			pv_oom("json_array_append_new", 0);
	}
	PQclear(res);
	return PV_OK;
}
