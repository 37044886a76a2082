/* The audit log; see audit.h.  Rows are only ever inserted: the primary
 * key on event_id with ON CONFLICT DO NOTHING is what makes a redelivered
 * message harmless, so there is no UPDATE anywhere in this file. */
#include "audit.h"
#include "buf.h"
#include "pgutil.h"
#include "xalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const status_names[] = {
	[PV_AUDIT_APPENDED] = "appended",
	[PV_AUDIT_REJECTED] = "rejected",
};

static const char *const kind_names[] = {
	[PV_AUDIT_KIND_NONE] = NULL,
	[PV_AUDIT_KIND_STATE] = "state",
	[PV_AUDIT_KIND_VALUE] = "value",
	[PV_AUDIT_KIND_AUTHORIZATION] = "authorization",
	[PV_AUDIT_KIND_MALFORMED] = "malformed",
};

const char *pv_audit_status_name(enum pv_audit_status status)
{
	if ((unsigned)status >= sizeof status_names / sizeof status_names[0])
		return "unknown";
	return status_names[status];
}

const char *pv_audit_kind_name(enum pv_audit_kind kind)
{
	if ((unsigned)kind >= sizeof kind_names / sizeof kind_names[0])
		return NULL;
	return kind_names[kind];
}

static int name_index(const char *const *names, size_t count, const char *s)
{
	for (size_t i = 0; i < count; i++)
		if (names[i] && s && strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

/* JSON text for a parameter, NULL for none; the caller frees it. */
static char *json_param(const json_t *v)
{
	char *s;

	if (!v)
		return NULL;
	s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!s)
		pv_oom("json_dumps", 0);
	return s;
}

static enum pv_err entry_check(const struct pv_audit_entry *e, struct pv_error *err)
{
	if (!pv_uuid_valid(e->event_id))
		return pv_error_set(err, PV_ERR_INVALID, "audit: event id is not a UUID");
	if (!e->received)
		return pv_error_set(err, PV_ERR_INVALID, "audit: no received time");
	if (e->status == PV_AUDIT_APPENDED && (!e->stream || e->number < 0))
		return pv_error_set(err, PV_ERR_INVALID,
				    "audit: an appended event needs its stream and number");
	if (e->status == PV_AUDIT_REJECTED && (!pv_audit_kind_name(e->kind) || !e->rule))
		return pv_error_set(err, PV_ERR_INVALID,
				    "audit: a rejected event needs its kind and rule");
	return PV_OK;
}

/* A JSON value as COPY text: NULL for none or JSON null. */
static char *json_text(const json_t *v)
{
	char *text;

	if (!v || json_is_null(v))
		return NULL;
	text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!text)
		pv_oom("json_dumps", 0);
	return text;
}

/* One entry as a row of COPY text (columns as in insert_new_sql). */
static void entry_row(struct pv_buf *rows, const struct pv_audit_entry *e)
{
	bool rejected = e->status == PV_AUDIT_REJECTED;
	char *data = json_text(e->data), *meta = json_text(e->metadata);
	char number[24];

	snprintf(number, sizeof number, "%" PRId64, e->number);
	pv_pg_copy_field(rows, e->event_id, '\t');
	pv_pg_copy_field(rows, e->stream, '\t');
	pv_pg_copy_field(rows, rejected ? NULL : number, '\t');
	pv_pg_copy_field(rows, e->type, '\t');
	pv_pg_copy_field(rows, data, '\t');
	pv_pg_copy_field(rows, meta, '\t');
	pv_pg_copy_field(rows, e->user, '\t');
	pv_pg_copy_field(rows, e->source, '\t');
	pv_pg_copy_field(rows, e->correlation_id, '\t');
	pv_pg_copy_field(rows, e->accepted, '\t');
	pv_pg_copy_field(rows, e->received, '\t');
	pv_pg_copy_field(rows, pv_audit_status_name(e->status), '\t');
	pv_pg_copy_field(rows, rejected ? pv_audit_kind_name(e->kind) : NULL, '\t');
	pv_pg_copy_field(rows, rejected ? e->rule : NULL, '\t');
	pv_pg_copy_field(rows, rejected ? e->reason : NULL, '\n');
	free(data);
	free(meta);
}

enum pv_err pv_audit_insert_new(PGconn *conn, const struct pv_audit_entry *entries, size_t n,
				struct pv_buf *scratch, struct pv_error *err)
{
	/* COPY rather than INSERT ... ON CONFLICT: a few times cheaper for the
	 * server, which is the appender's bottleneck.  Hence the contract
	 * that the rows are new. */
	static const char insert_new_sql[] =
		"COPY audit_log (event_id, stream, number, type, data, metadata, user_name,"
		" source, correlation_id, accepted, received, status, kind, rule, reason)"
		" FROM STDIN";
	struct pv_buf own = PV_BUF_INIT, *rows = scratch ? scratch : &own;
	enum pv_err rc = PV_OK;

	if (n == 0)
		return PV_OK;
	pv_buf_reset(rows);
	for (size_t i = 0; i < n && rc == PV_OK; i++) {
		rc = entry_check(&entries[i], err);
		if (rc != PV_OK)
			pv_error_prefix(err, "event %s", entries[i].event_id);
		else
			entry_row(rows, &entries[i]);
	}
	if (rc == PV_OK)
		rc = pv_pg_copy_in(conn, "audit: insert rows", insert_new_sql, rows->data,
				   rows->len, err);
	pv_buf_free(&own);
	return rc;
}

enum pv_err pv_audit_present(PGconn *conn, const char *const *ids, size_t n, bool *present,
			     struct pv_error *err)
{
	struct pv_buf arr = PV_BUF_INIT;
	const char *params[1];
	PGresult *res = NULL;
	enum pv_err rc;
	size_t valid = 0;

	pv_buf_puts(&arr, "{");
	for (size_t i = 0; i < n; i++) {
		present[i] = false;
		if (!ids[i] || !pv_uuid_valid(ids[i]))
			continue;
		pv_buf_puts(&arr, valid++ ? "," : "");
		pv_buf_puts(&arr, ids[i]);
	}
	pv_buf_puts(&arr, "}");
	if (valid == 0) {
		pv_buf_free(&arr);
		return PV_OK;
	}
	params[0] = arr.data;
	rc = pv_pg_exec(conn, "audit: look up rows",
			"SELECT event_id FROM audit_log WHERE event_id = ANY ($1::uuid[])", 1,
			params, &res, err);
	if (rc == PV_OK) {
		for (int r = 0; r < PQntuples(res); r++)
			for (size_t i = 0; i < n; i++)
				if (ids[i] && strcasecmp(ids[i], PQgetvalue(res, r, 0)) == 0)
					present[i] = true;
	}
	PQclear(res);
	pv_buf_free(&arr);
	return rc;
}

enum pv_err pv_audit_record(PGconn *conn, const struct pv_audit_entry *e, bool *inserted,
			    struct pv_error *err)
{
	static const char sql[] =
		"INSERT INTO audit_log (event_id, stream, number, type, data, metadata, user_name,"
		" source, correlation_id, accepted, received, status, kind, rule, reason)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
		" ON CONFLICT (event_id) DO NOTHING";
	const char *params[15];
	char number[32];
	char *data = NULL, *meta = NULL;
	PGresult *res = NULL;
	enum pv_err rc;

	if (inserted)
		*inserted = false;
	rc = entry_check(e, err);
	if (rc != PV_OK)
		return rc;
	snprintf(number, sizeof number, "%" PRId64, e->number);
	data = json_param(e->data);
	meta = json_param(e->metadata);
	params[0] = e->event_id;
	params[1] = e->stream;
	params[2] = e->status == PV_AUDIT_APPENDED ? number : NULL;
	params[3] = e->type;
	params[4] = data;
	params[5] = meta;
	params[6] = e->user;
	params[7] = e->source;
	params[8] = e->correlation_id;
	params[9] = e->accepted;
	params[10] = e->received;
	params[11] = pv_audit_status_name(e->status);
	params[12] = e->status == PV_AUDIT_REJECTED ? pv_audit_kind_name(e->kind) : NULL;
	params[13] = e->status == PV_AUDIT_REJECTED ? e->rule : NULL;
	params[14] = e->status == PV_AUDIT_REJECTED ? e->reason : NULL;
	rc = pv_pg_exec(conn, "audit: insert", sql, 15, params, &res, err);
	if (rc == PV_OK && inserted)
		*inserted = strcmp(PQcmdTuples(res), "1") == 0;
	PQclear(res);
	free(data);
	free(meta);
	return rc;
}

static char *field_dup(const PGresult *res, int col)
{
	if (PQgetisnull(res, 0, col))
		return NULL;
	return pv_xstrdup(PQgetvalue(res, 0, col));
}

static enum pv_err field_json(const PGresult *res, int col, json_t **out, struct pv_error *err)
{
	json_error_t jerr;

	*out = NULL;
	if (PQgetisnull(res, 0, col))
		return PV_OK;
	*out = json_loads(PQgetvalue(res, 0, col), JSON_DECODE_ANY, &jerr);
	if (!*out)
		return pv_error_set(err, PV_ERR_PROTOCOL, "audit: stored %s is not JSON: %s",
				    PQfname(res, col), jerr.text);
	return PV_OK;
}

enum pv_err pv_audit_get(PGconn *conn, const char *event_id, struct pv_audit_entry *out,
			 struct pv_error *err)
{
	static const char sql[] =
		"SELECT event_id, stream, number, type, data, metadata, user_name, source,"
		" correlation_id,"
		" to_char(accepted AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
		" to_char(received AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
		" to_char(recorded AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
		" status, kind, rule, reason FROM audit_log WHERE event_id = $1";
	const char *params[1] = {event_id};
	PGresult *res = NULL;
	enum pv_err rc;
	int status, kind;

	memset(out, 0, sizeof *out);
	out->number = -1;
	if (!pv_uuid_valid(event_id))
		return pv_error_set(err, PV_ERR_INVALID, "audit: event id is not a UUID");
	rc = pv_pg_exec(conn, "audit: look up", sql, 1, params, &res, err);
	if (rc != PV_OK)
		return rc;
	if (PQntuples(res) != 1) {
		rc = pv_error_set(err, PV_ERR_NOT_FOUND, "audit: no verdict for event %s",
				  event_id);
		goto done;
	}
	status = name_index(status_names, sizeof status_names / sizeof status_names[0],
			    PQgetvalue(res, 0, 12));
	kind = PQgetisnull(res, 0, 13)
		       ? PV_AUDIT_KIND_NONE
		       : name_index(kind_names, sizeof kind_names / sizeof kind_names[0],
				    PQgetvalue(res, 0, 13));
	if (status < 0 || kind < 0) {
		rc = pv_error_set(err, PV_ERR_PROTOCOL, "audit: event %s has an unknown status",
				  event_id);
		goto done;
	}
	snprintf(out->event_id, sizeof out->event_id, "%s", PQgetvalue(res, 0, 0));
	out->stream = field_dup(res, 1);
	if (!PQgetisnull(res, 0, 2))
		out->number = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	out->type = field_dup(res, 3);
	out->user = field_dup(res, 6);
	out->source = field_dup(res, 7);
	out->correlation_id = field_dup(res, 8);
	out->accepted = field_dup(res, 9);
	out->received = field_dup(res, 10);
	out->recorded = field_dup(res, 11);
	out->status = (enum pv_audit_status)status;
	out->kind = (enum pv_audit_kind)kind;
	out->rule = field_dup(res, 14);
	out->reason = field_dup(res, 15);
	if ((rc = field_json(res, 4, &out->data, err)) != PV_OK ||
	    (rc = field_json(res, 5, &out->metadata, err)) != PV_OK)
		pv_audit_entry_clear(out);
done:
	PQclear(res);
	return rc;
}

void pv_audit_entry_clear(struct pv_audit_entry *e)
{
	if (!e)
		return;
	free(e->stream);
	free(e->type);
	json_decref(e->data);
	json_decref(e->metadata);
	free(e->user);
	free(e->source);
	free(e->correlation_id);
	free(e->accepted);
	free(e->received);
	free(e->recorded);
	free(e->rule);
	free(e->reason);
	memset(e, 0, sizeof *e);
	e->number = -1;
}
