/* The event store: one interface, three backends chosen by name.
 *
 *   esdb       EventStoreDB / KurrentDB over the AtomPub HTTP API (libcurl)
 *   kurrentdb  KurrentDB / EventStoreDB over gRPC (libcurl, protobuf-c)
 *   postgres   streams kept in PostgreSQL (libpq), sql/ migrations
 *
 * A backend is a struct of function pointers (struct pv_es_ops) filled with
 * designated initialisers; pv_es_open() picks it by name from the table in
 * eventstore.c.  A new backend fills in the required operations, and may
 * fill in the unit-of-work ones (below) where it can do better than the
 * generic unit built on its append and read_stream.  Stream names are
 * opaque UTF-8 strings ("Election-<ulid>"); the category of a stream is the
 * text before its first '-', as EventStoreDB's $by_category does.
 *
 * Numbers: the first event of a stream is 0; a stream's version is the
 * number of its last event, -1 when it has none.  The category feed has
 * its own position per event (0, 1, 2, ...; EventStoreDB: the event number
 * in the $ce-<category> stream; PostgreSQL: a gap-free sequence per
 * category), in commit order; a reader that checkpoints on `position` never
 * skips one.  Deleted events leave holes: positions only ever increase. */
#ifndef PV_EVENTSTORE_H
#define PV_EVENTSTORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "id.h"

/* Expected version: a number >= 0, or one of these. */
#define PV_ES_ANY (-2)           /* no check */
#define PV_ES_NO_STREAM (-1)     /* the stream must not exist */
#define PV_ES_STREAM_EXISTS (-4) /* the stream must exist */

/* Largest data + metadata of one event, as EventStoreDB's default. */
#define PV_ES_EVENT_MAX (4u * 1024u * 1024u)

/* An event to append: borrowed pointers. */
struct pv_es_new_event {
	const char *id;         /* UUID text */
	const char *type;       /* event type name */
	const json_t *data;     /* JSON object */
	const json_t *metadata; /* JSON object or NULL */
};

/* A recorded event: owned by the page/list that holds it. */
struct pv_es_event {
	char id[PV_UUID_LEN + 1];
	char *type;
	char *stream;
	int64_t number;   /* in its stream */
	int64_t position; /* in the category feed; -1 when read from a stream */
	char *created;    /* RFC 3339 UTC */
	json_t *data;     /* owned reference */
	json_t *metadata; /* owned reference, JSON null when none */
};

struct pv_es_page {
	struct pv_es_event *events;
	size_t count;
	bool end_of_stream; /* forward: nothing after; backward: reached event 0 */
	int64_t next;       /* where the next page starts (number or position), -1 if none */
};
void pv_es_page_clear(struct pv_es_page *page);
/* For backends: PV_ERR_PROTOCOL ("WHO: read ...") unless the page of a
 * stream read holds only the events asked for, in order, and says where
 * the next page starts past them. */
enum pv_err pv_es_check_stream_page(const char *who, const struct pv_es_page *page,
				    const char *stream, int64_t from, size_t max, bool backward,
				    struct pv_error *err);

struct pv_es_stream_info {
	char *name;
	int64_t version; /* last event number */
	char *updated;   /* RFC 3339 time of the last event */
};

struct pv_es_stream_list {
	struct pv_es_stream_info *streams;
	size_t count;
};
void pv_es_stream_list_clear(struct pv_es_stream_list *list);

struct pv_es; /* an open store; backends extend it */

/* ---- units of work ---------------------------------------------------
 *
 * A unit groups appends to several streams (each with the version its
 * events were checked against), checks that other streams are still at the
 * versions a judgment assumed, and records of the caller's that must be
 * durable with the appends: the sink (photovote-appender: its audit rows).
 *
 *   pv_es_begin(es, sink)      sink->ops->begin(shared)
 *   pv_es_check_versions(...)  any number of times, in any order
 *   pv_es_append_many(...)
 *   pv_es_commit(es)           sink->ops->write(), then the store's commit
 *   or pv_es_rollback(es)
 *
 * A backend that can (postgres) runs the unit as one transaction on one
 * connection, which it hands to the sink as `shared`: appends and records
 * commit together or not at all, and reads of es inside the unit see its
 * writes.  Elsewhere (esdb) `shared` is NULL and the sink uses a connection
 * of its own; each stream's append is atomic and durable on its own when
 * pv_es_append_many returns, a check is a read, and the records are
 * written at commit, after the appends.  A crash or failure in between
 * leaves appended events without records, and a rollback cannot take back
 * what was appended: the caller must recognise its events in the streams
 * by id (the appender does: an event id found in its stream is "appended",
 * never judged again).  Whatever a unit's call answers, end it with
 * pv_es_commit or pv_es_rollback. */
struct pg_conn; /* libpq's PGconn */
struct pv_es_sink;
struct pv_es_sink_ops {
	/* The unit begins.  shared: the store's PostgreSQL connection inside
	 * the unit's transaction (the sink's statements commit with the
	 * appends), or NULL (the sink writes on a connection of its own). */
	enum pv_err (*begin)(struct pv_es_sink *sink, struct pg_conn *shared, struct pv_error *err);
	/* Writes the records: at commit, before the store's commit. */
	enum pv_err (*write)(struct pv_es_sink *sink, struct pv_error *err);
	/* The unit ended; committed says whether it is durable. */
	void (*end)(struct pv_es_sink *sink, bool committed);
};
struct pv_es_sink {
	const struct pv_es_sink_ops *ops;
};

/* One stream's share of pv_es_append_many. */
struct pv_es_append_req {
	const char *stream;
	int64_t expected; /* -1 (no stream yet) or the number of its last event */
	const struct pv_es_new_event *events;
	size_t count;
	int64_t version; /* out: the stream's last event number */
	/* out: the stream had been soft-deleted and its numbering went on from
	 * its last number (EventStoreDB's rule): its events are numbered
	 * version - count + 1 .. version, not expected + 1 ... */
	bool continued;
};

/* A stream a judgment assumed to be at version (-1: no events, which is
 * also a soft-deleted stream's state). */
struct pv_es_expect {
	const char *stream;
	int64_t version;
};

struct pv_es_ops {
	const char *name;
	/* Appends count events atomically.  On success *version is the number
	 * of the last event now in the stream.  On PV_ERR_CONFLICT *version is
	 * the stream's current version (-1 none).  Re-appending the same ids at
	 * the same position succeeds without writing (idempotent); *version is
	 * then the number of the last of those events, as EventStoreDB reports
	 * the first one's.  Deleted for good: PV_ERR_GONE. */
	enum pv_err (*append)(struct pv_es *es, const char *stream, int64_t expected,
			      const struct pv_es_new_event *events, size_t count, int64_t *version,
			      struct pv_error *err);
	/* Reads up to max events from number `from` (forward: ascending from
	 * `from`; backward: descending from `from`, -1 = the head). Missing or
	 * soft-deleted stream: PV_ERR_NOT_FOUND; hard-deleted: PV_ERR_GONE. */
	enum pv_err (*read_stream)(struct pv_es *es, const char *stream, int64_t from, size_t max,
				   bool backward, struct pv_es_page *page, struct pv_error *err);
	/* Reads up to max events of the category in feed order, with position
	 * >= from; when none is there yet, waits up to wait_ms for one. */
	enum pv_err (*read_category)(struct pv_es *es, const char *category, int64_t from,
				     size_t max, int wait_ms, struct pv_es_page *page,
				     struct pv_error *err);
	enum pv_err (*list_streams)(struct pv_es *es, const char *category,
				    struct pv_es_stream_list *list, struct pv_error *err);
	enum pv_err (*delete_stream)(struct pv_es *es, const char *stream, int64_t expected,
				     bool hard, struct pv_error *err);
	void (*close)(struct pv_es *es);

	/* Optional: the unit of work (see above).  Left NULL, eventstore.c
	 * provides each: no transaction (shared NULL), append_many as one
	 * append per stream, check_versions as one backward read per stream.
	 * begin, commit and rollback are filled in together or not at all;
	 * begin answers the connection the sink shares.  The semantics of
	 * append_many and check_versions are those of pv_es_append_many and
	 * pv_es_check_versions. */
	enum pv_err (*begin)(struct pv_es *es, struct pg_conn **shared, struct pv_error *err);
	enum pv_err (*append_many)(struct pv_es *es, struct pv_es_append_req *reqs, size_t n,
				   size_t *failed, struct pv_error *err);
	enum pv_err (*check_versions)(struct pv_es *es, const struct pv_es_expect *x, size_t n,
				      size_t *failed, struct pv_error *err);
	enum pv_err (*commit)(struct pv_es *es, struct pv_error *err);
	void (*rollback)(struct pv_es *es);
};

struct pv_es {
	const struct pv_es_ops *ops;
	struct pv_es_sink *sink; /* of the unit in hand, NULL when none */
};

/* Options common to both backends; a backend ignores what it does not use. */
struct pv_es_options {
	const char *backend;  /* "esdb", "kurrentdb" or "postgres" */
	const char *url;      /* esdb: base URL, e.g. https://127.0.0.1:2113 */
	const char *username; /* esdb: Basic auth */
	const char *password;
	const char *ca_file; /* esdb: CA bundle for TLS, NULL = system */
	long timeout_ms;     /* per request */
	long in_flight;      /* esdb, kurrentdb: most requests of a unit at once (<= 0: 8) */
	/* kurrentdb: never a multi-stream AppendSession, even where offered */
	bool one_call_per_stream;
	const char *pg_conninfo; /* postgres: libpq connection string */
};

enum pv_err pv_es_open(const struct pv_es_options *opts, struct pv_es **out, struct pv_error *err);

/* For messages: "esdb at http://127.0.0.1:2113", "kurrentdb", "postgres"
 * (no secret, even where the connection string holds one).  Free it. */
char *pv_es_options_label(const struct pv_es_options *opts);
/* True when the category feed's head can be read from PostgreSQL's
 * es_categories in the same query as other tables there (the postgres
 * backend): the health check does so. */
bool pv_es_options_feed_in_postgres(const struct pv_es_options *opts);

static inline enum pv_err pv_es_append(struct pv_es *es, const char *stream, int64_t expected,
				       const struct pv_es_new_event *events, size_t count,
				       int64_t *version, struct pv_error *err)
{
	return es->ops->append(es, stream, expected, events, count, version, err);
}
static inline enum pv_err pv_es_read_stream(struct pv_es *es, const char *stream, int64_t from,
					    size_t max, bool backward, struct pv_es_page *page,
					    struct pv_error *err)
{
	return es->ops->read_stream(es, stream, from, max, backward, page, err);
}
static inline enum pv_err pv_es_read_category(struct pv_es *es, const char *category, int64_t from,
					      size_t max, int wait_ms, struct pv_es_page *page,
					      struct pv_error *err)
{
	return es->ops->read_category(es, category, from, max, wait_ms, page, err);
}
static inline enum pv_err pv_es_list_streams(struct pv_es *es, const char *category,
					     struct pv_es_stream_list *list, struct pv_error *err)
{
	return es->ops->list_streams(es, category, list, err);
}
static inline enum pv_err pv_es_delete_stream(struct pv_es *es, const char *stream,
					      int64_t expected, bool hard, struct pv_error *err)
{
	return es->ops->delete_stream(es, stream, expected, hard, err);
}
/* The unit of work (see above).  pv_es_begin fails while one is open.
 *
 * pv_es_append_many appends each request's events to its stream, with the
 * stream's expected version; no stream may be named twice.  Each request
 * is an append as pv_es_append's (idempotent re-sends included).  On
 * success every request's version (and continued) is set.  On
 * PV_ERR_CONFLICT or PV_ERR_GONE *failed is the index of a request at
 * fault, its version the stream's current one; any error: roll back, and
 * outside a transaction some of the other streams may have been appended.
 *
 * pv_es_check_versions checks that each stream is at its version without
 * writing: a stream elsewhere (hard-deleted included) is PV_ERR_CONFLICT,
 * *failed its index.
 *
 * pv_es_commit writes the sink, then commits; a failure is rolled back
 * (what the unit appended outside a transaction stays). */
enum pv_err pv_es_begin(struct pv_es *es, struct pv_es_sink *sink, struct pv_error *err);
enum pv_err pv_es_append_many(struct pv_es *es, struct pv_es_append_req *reqs, size_t n,
			      size_t *failed, struct pv_error *err);
enum pv_err pv_es_check_versions(struct pv_es *es, const struct pv_es_expect *x, size_t n,
				 size_t *failed, struct pv_error *err);
enum pv_err pv_es_commit(struct pv_es *es, struct pv_error *err);
void pv_es_rollback(struct pv_es *es);

static inline void pv_es_close(struct pv_es *es)
{
	if (es)
		es->ops->close(es);
}

#endif
