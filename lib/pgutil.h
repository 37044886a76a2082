/* Small helpers over libpq, so that every PostgreSQL failure reaches the
 * caller as an enum pv_err with libpq's own words in the message.
 *
 * Connections are opened with client_encoding UTF8 (stream names and event
 * data are UTF-8 text) and are not shared between threads.  Queries use the
 * text protocol; parameters are C strings, NULL for SQL NULL. */
#ifndef PV_PGUTIL_H
#define PV_PGUTIL_H

#include <libpq-fe.h>

#include "error.h"

/* Opens a connection; on failure *out is NULL and err carries libpq's
 * message (PV_ERR_UNAVAILABLE when the server cannot be reached or refuses
 * us, PV_ERR_CONFIG when conninfo itself is malformed). */
enum pv_err pv_pg_connect(const char *conninfo, PGconn **out, struct pv_error *err);

/* Runs one statement with parameters.  `what` names the operation for the
 * message ("append: lock stream").  On success *out (when out is not NULL)
 * holds the result, which the caller PQclear()s; on failure nothing is held
 * and the code comes from pv_pg_sqlstate_err() or the connection state. */
enum pv_err pv_pg_exec(PGconn *conn, const char *what, const char *sql, int nparams,
		       const char *const *params, PGresult **out, struct pv_error *err);

/* Runs a string of SQL commands without parameters (simple query
 * protocol: BEGIN, COMMIT, a migration file).  Results are discarded. */
enum pv_err pv_pg_command(PGconn *conn, const char *what, const char *sql, struct pv_error *err);

/* Bulk loading with COPY (text format), much cheaper for the server than
 * the same rows sent as array or JSON parameters.  pv_pg_copy_in() runs
 * `sql` (a COPY ... FROM STDIN), sends len bytes of rows and reads the
 * outcome; a bad row fails the whole COPY, as a statement would.
 * pv_pg_copy_field() appends one field to a row being built: NULL as \N,
 * backslash, tab, newline and carriage return escaped, then `end` ('\t'
 * between fields, '\n' after the last). */
struct pv_buf;
enum pv_err pv_pg_copy_in(PGconn *conn, const char *what, const char *sql, const char *data,
			  size_t len, struct pv_error *err);
void pv_pg_copy_field(struct pv_buf *b, const char *text, char end);

/* Rolls back an open or failed transaction, if any; errors are only
 * logged, since this runs on paths that already report one. */
void pv_pg_rollback(PGconn *conn);

/* The pv_err for a five-character SQLSTATE (NULL: PV_ERR_DATABASE). */
enum pv_err pv_pg_sqlstate_err(const char *sqlstate);

/* Makes sure the connection is usable, resetting it once if the server
 * went away.  PV_ERR_UNAVAILABLE if it still is not. */
enum pv_err pv_pg_ensure(PGconn *conn, struct pv_error *err);

#endif
