#include "pgutil.h"
#include "buf.h"
#include "log.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SQLSTATE classes and codes we tell apart; the first match wins, so
 * specific codes come before their class.  Anything else is a database
 * error that callers report as is. */
static const struct {
	const char *prefix;
	enum pv_err code;
} sqlstate_table[] = {
	{"57014", PV_ERR_TIMEOUT},   /* query_canceled: statement_timeout */
	{"55P03", PV_ERR_TIMEOUT},   /* lock_not_available: lock_timeout */
	{"23505", PV_ERR_CONFLICT},  /* unique_violation */
	{"40", PV_ERR_CONFLICT},     /* serialization failure, deadlock: retry */
	{"08", PV_ERR_UNAVAILABLE},  /* connection exception */
	{"53", PV_ERR_UNAVAILABLE},  /* insufficient resources */
	{"57P", PV_ERR_UNAVAILABLE}, /* shutdown, cannot connect now */
	{"28", PV_ERR_UNAUTHORIZED}, /* invalid authorization */
	{"42501", PV_ERR_FORBIDDEN}, /* insufficient_privilege */
	{"22", PV_ERR_INVALID},      /* data exception: bad JSON, bad UTF-8 */
	{"23", PV_ERR_INVALID},      /* other integrity violations */
};

enum pv_err pv_pg_sqlstate_err(const char *sqlstate)
{
	if (!sqlstate)
		return PV_ERR_DATABASE;
	for (size_t i = 0; i < sizeof sqlstate_table / sizeof sqlstate_table[0]; i++) {
		const char *p = sqlstate_table[i].prefix;
		if (strncmp(sqlstate, p, strlen(p)) == 0)
			return sqlstate_table[i].code;
	}
	return PV_ERR_DATABASE;
}

/* libpq's messages end with a newline (sometimes several lines). */
static void chomp_copy(char *dst, size_t size, const char *src)
{
	size_t n;

	snprintf(dst, size, "%s", src ? src : "(no message)");
	n = strlen(dst);
	while (n > 0 && (dst[n - 1] == '\n' || dst[n - 1] == ' '))
		dst[--n] = '\0';
	for (char *p = dst; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
}

/* Server notices go to our log, not libpq's stderr: warnings as such,
 * NOTICE/INFO (CREATE TABLE IF NOT EXISTS chatter) at debug level. */
static void notice_receiver(void *arg, const PGresult *res)
{
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	char msg[400];

	chomp_copy(msg, sizeof msg, PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
	if (sev && strcmp(sev, "WARNING") == 0)
		pv_log_warnx("pg", "PostgreSQL warning: %s", msg);
	else
		pv_log_debug("pg", "PostgreSQL %s: %s", sev ? sev : "notice", msg);
}

/* What every session needs, after a connect or a reset: UTF-8, and commits
 * that are durable when COMMIT returns.  A server (or database) configured
 * with synchronous_commit = off would otherwise lose the last commits when
 * it crashes, after the appender had acked their messages to the broker:
 * commands answered 202 and gone (the chaos test found it with an immediate
 * stop of PostgreSQL).  A session may still turn it off for itself. */
static enum pv_err session_defaults(PGconn *conn, struct pv_error *err)
{
	char msg[400];
	PGresult *res;

	if (PQsetClientEncoding(conn, "UTF8") != 0) {
		chomp_copy(msg, sizeof msg, PQerrorMessage(conn));
		return pv_error_set(err, PV_ERR_DATABASE, "PostgreSQL client_encoding UTF8: %s",
				    msg);
	}
	res = PQexec(conn, "SET synchronous_commit TO on");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		enum pv_err code =
			PQstatus(conn) == CONNECTION_OK ? PV_ERR_DATABASE : PV_ERR_UNAVAILABLE;

		chomp_copy(msg, sizeof msg, PQerrorMessage(conn));
		PQclear(res);
		return pv_error_set(err, code, "PostgreSQL SET synchronous_commit: %s", msg);
	}
	PQclear(res);
	return PV_OK;
}

/* libpq waits for a server's answer to a connection without end when the
 * connection string sets no connect_timeout: a paused or hung PostgreSQL
 * (one whose kernel still accepts) then held `photovote-admin status` and
 * every program's reconnect for good.  This bound applies unless the
 * connection string or PGCONNECT_TIMEOUT sets one; listed before the
 * string, which is expanded after it and so overrides it. */
#define PG_CONNECT_TIMEOUT "5"

static PGconn *connect_bounded(const char *conninfo)
{
	const char *const keys[] = {"connect_timeout", "dbname", NULL};
	const char *const vals[] = {PG_CONNECT_TIMEOUT, conninfo ? conninfo : "", NULL};
	const char *env = getenv("PGCONNECT_TIMEOUT");

	if (env && *env)
		return PQconnectdb(conninfo ? conninfo : "");
	return PQconnectdbParams(keys, vals, 1);
}

enum pv_err pv_pg_connect(const char *conninfo, PGconn **out, struct pv_error *err)
{
	char msg[400];
	char *perr = NULL;
	PQconninfoOption *parsed;
	PGconn *conn;

	*out = NULL;
	parsed = PQconninfoParse(conninfo ? conninfo : "", &perr);
	if (!parsed) {
		chomp_copy(msg, sizeof msg, perr ? perr : "out of memory");
		PQfreemem(perr);
		return pv_error_set(err, PV_ERR_CONFIG, "PostgreSQL connection string: %s", msg);
	}
	PQconninfoFree(parsed);
	conn = connect_bounded(conninfo);
	if (!conn)
		pv_oom("libpq connection", 0);
	if (PQstatus(conn) != CONNECTION_OK) {
		chomp_copy(msg, sizeof msg, PQerrorMessage(conn));
		PQfinish(conn);
		return pv_error_set(err, PV_ERR_UNAVAILABLE, "PostgreSQL connect: %s", msg);
	}
	if (session_defaults(conn, err) != PV_OK) {
		PQfinish(conn);
		return err->code;
	}
	PQsetNoticeReceiver(conn, notice_receiver, NULL);
	*out = conn;
	return PV_OK;
}

/* Maps a finished result (possibly NULL) to a code and message. */
static enum pv_err result_check(PGconn *conn, PGresult *res, const char *what, struct pv_error *err)
{
	char msg[400];
	const char *state;
	enum pv_err code;

	if (!res) {
		/* NULL: out of memory or the command could not be sent. */
		chomp_copy(msg, sizeof msg, PQerrorMessage(conn));
		code = PQstatus(conn) == CONNECTION_OK ? PV_ERR_DATABASE : PV_ERR_UNAVAILABLE;
		return pv_error_set(err, code, "%s: PostgreSQL: %s", what, msg);
	}
	switch (PQresultStatus(res)) {
	case PGRES_COMMAND_OK:
	case PGRES_TUPLES_OK:
	case PGRES_EMPTY_QUERY: return PV_OK;
	default: break;
	}
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	chomp_copy(msg, sizeof msg, PQresultErrorMessage(res));
	code = pv_pg_sqlstate_err(state);
	if (PQstatus(conn) != CONNECTION_OK)
		code = PV_ERR_UNAVAILABLE;
	return pv_error_set(err, code, "%s: PostgreSQL %s (%s): %s", what,
			    PQresStatus(PQresultStatus(res)), state ? state : "no SQLSTATE", msg);
}

enum pv_err pv_pg_exec(PGconn *conn, const char *what, const char *sql, int nparams,
		       const char *const *params, PGresult **out, struct pv_error *err)
{
	PGresult *res;
	enum pv_err rc;

	if (out)
		*out = NULL;
	res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	rc = result_check(conn, res, what, err);
	if (rc != PV_OK || !out)
		PQclear(res);
	else
		*out = res;
	return rc;
}

enum pv_err pv_pg_copy_in(PGconn *conn, const char *what, const char *sql, const char *data,
			  size_t len, struct pv_error *err)
{
	/* libpq takes COPY data in pieces of at most INT_MAX bytes. */
	const size_t piece = 1u << 20;
	PGresult *res = PQexec(conn, sql);
	enum pv_err rc = PV_OK;
	char msg[400];

	if (!res || PQresultStatus(res) != PGRES_COPY_IN) {
		rc = result_check(conn, res, what, err);
		PQclear(res);
		/* A statement that is not COPY ... FROM STDIN "succeeds" here. */
		return rc != PV_OK ? rc
				   : pv_error_set(err, PV_ERR_DATABASE, "%s: not a COPY FROM STDIN",
						  what);
	}
	PQclear(res);
	for (size_t off = 0; off < len && rc == PV_OK; off += piece) {
		size_t n = len - off < piece ? len - off : piece;

		if (PQputCopyData(conn, data + off, (int)n) != 1) {
			chomp_copy(msg, sizeof msg, PQerrorMessage(conn));
			rc = pv_error_set(err, PV_ERR_UNAVAILABLE,
					  "%s: PostgreSQL: sending rows: %s", what, msg);
		}
	}
	/* Ended with an error message on failure, so the server aborts it. */
	if (PQputCopyEnd(conn, rc == PV_OK ? NULL : "client failed to send the rows") != 1 &&
	    rc == PV_OK) {
		chomp_copy(msg, sizeof msg, PQerrorMessage(conn));
		rc = pv_error_set(err, PV_ERR_UNAVAILABLE, "%s: PostgreSQL: ending COPY: %s", what,
				  msg);
	}
	/* Drain every result, keeping the first failure. */
	while ((res = PQgetResult(conn)) != NULL) {
		if (rc == PV_OK)
			rc = result_check(conn, res, what, err);
		PQclear(res);
	}
	return rc;
}

void pv_pg_copy_field(struct pv_buf *b, const char *text, char end)
{
	static const char *const escapes[] = {
		['\\'] = "\\\\", ['\t'] = "\\t", ['\n'] = "\\n", ['\r'] = "\\r"};

	if (!text) {
		pv_buf_append(b, "\\N", 2);
	} else {
		for (;;) {
			size_t run = strcspn(text, "\\\t\n\r");

			pv_buf_append(b, text, run);
			text += run;
			if (!*text)
				break;
			pv_buf_append(b, escapes[(unsigned char)*text++], 2);
		}
	}
	pv_buf_append(b, &end, 1);
}

enum pv_err pv_pg_command(PGconn *conn, const char *what, const char *sql, struct pv_error *err)
{
	PGresult *res = PQexec(conn, sql);
	enum pv_err rc = result_check(conn, res, what, err);

	PQclear(res);
	return rc;
}

void pv_pg_rollback(PGconn *conn)
{
	struct pv_error err;

	if (PQstatus(conn) != CONNECTION_OK || PQtransactionStatus(conn) == PQTRANS_IDLE)
		return;
	if (pv_pg_command(conn, "rollback", "ROLLBACK", &err) != PV_OK)
		pv_log_warnx("pg", "%s", err.msg);
}

enum pv_err pv_pg_ensure(PGconn *conn, struct pv_error *err)
{
	char msg[400];

	if (PQstatus(conn) == CONNECTION_OK)
		return PV_OK;
	PQreset(conn);
	if (PQstatus(conn) != CONNECTION_OK) {
		chomp_copy(msg, sizeof msg, PQerrorMessage(conn));
		return pv_error_set(err, PV_ERR_UNAVAILABLE, "PostgreSQL reconnect: %s", msg);
	}
	return session_defaults(conn, err);
}
