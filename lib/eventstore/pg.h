/* The PostgreSQL event store backend (see pg.c for its design). */
#ifndef PV_EVENTSTORE_PG_H
#define PV_EVENTSTORE_PG_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "eventstore.h"

/* Connects with opts->pg_conninfo; the schema of sql/001_event_store.sql
 * must be in place (see migrate.h).  A handle is one connection: use one
 * per thread. */
enum pv_err pv_es_pg_open(const struct pv_es_options *opts, struct pv_es **out,
			  struct pv_error *err);

/* Transactions of the caller's, spanning several appends and statements of
 * its own on the same connection (photovote-appender: a batch of appends
 * and their audit rows commit together or not at all).
 *
 * pv_es_pg_begin() opens one on es's connection (reconnecting first if it
 * was lost).  Until pv_es_pg_commit() or pv_es_pg_rollback(), appends on
 * es run inside it: no BEGIN/COMMIT of their own and no retry after a lost
 * connection, and the stream and category row locks they take are held to
 * the end of the transaction.  An append that answers anything but PV_OK
 * may have left the transaction failed, or (PV_ERR_CONFLICT on a stream
 * that did not exist) an empty row of the stream: roll back.  Reads on es
 * see the transaction's own writes.  pv_es_pg_conn() is the connection,
 * for the caller's statements (valid until the next call on es).  A failed
 * commit is rolled back. */
enum pv_err pv_es_pg_begin(struct pv_es *es, struct pv_error *err);
enum pv_err pv_es_pg_commit(struct pv_es *es, struct pv_error *err);
void pv_es_pg_rollback(struct pv_es *es);
PGconn *pv_es_pg_conn(struct pv_es *es);

/* Appends to several streams in the caller's transaction, with the same
 * few statements whatever their number (move the streams that are at their
 * expected version, create the new ones, take the categories' positions,
 * insert every event, notify): the appender's batches go to hundreds of
 * elections at once.
 * Each request's expected version is -1 or a number; there is no re-send
 * recognition here, a re-send is a conflict for pv_es_append to sort out.
 * A stream that was soft-deleted takes expected -1, as with pv_es_append,
 * and its numbering goes on from its last number: continued is set and
 * version tells where the events went.
 * On success each request's version is its stream's last event number.
 * On PV_ERR_CONFLICT or PV_ERR_GONE, *failed is a request at fault and its
 * version the stream's current one; whatever the error, roll back. */
struct pv_es_pg_append {
	const char *stream;
	int64_t expected;
	const struct pv_es_new_event *events;
	size_t count;
	int64_t version; /* out */
	bool continued;  /* out: the stream had been soft-deleted */
};
enum pv_err pv_es_pg_append_many(struct pv_es *es, struct pv_es_pg_append *appends, size_t n,
				 size_t *failed, struct pv_error *err);

/* Checks, in the caller's transaction, that streams are at the versions a
 * judgment assumed, without writing to them: each at its last event number,
 * or -1 for a stream with no events (none, or soft-deleted).  A stream
 * elsewhere (hard-deleted included) is PV_ERR_CONFLICT, *failed its index. */
struct pv_es_pg_expect {
	const char *stream;
	int64_t version;
};
enum pv_err pv_es_pg_check_versions(struct pv_es *es, const struct pv_es_pg_expect *x, size_t n,
				    size_t *failed, struct pv_error *err);

/* Whether es is a handle of this backend. */
bool pv_es_is_pg(const struct pv_es *es);

#endif
