/* The event store: one interface, two backends chosen by name.
 *
 *   esdb      EventStoreDB / KurrentDB over the AtomPub HTTP API (libcurl)
 *   postgres  streams kept in PostgreSQL (libpq), sql/ migrations
 *
 * A backend is a struct of function pointers (struct pv_es_ops) filled with
 * designated initialisers; pv_es_open() picks it by name.  Stream names are
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
};

struct pv_es {
	const struct pv_es_ops *ops;
};

/* Options common to both backends; a backend ignores what it does not use. */
struct pv_es_options {
	const char *backend;  /* "esdb" or "postgres" */
	const char *url;      /* esdb: base URL, e.g. https://127.0.0.1:2113 */
	const char *username; /* esdb: Basic auth */
	const char *password;
	const char *ca_file;     /* esdb: CA bundle for TLS, NULL = system */
	long timeout_ms;         /* per request */
	const char *pg_conninfo; /* postgres: libpq connection string */
};

enum pv_err pv_es_open(const struct pv_es_options *opts, struct pv_es **out, struct pv_error *err);

struct pv_config;
/* Fills o from the [eventstore] section and [postgres] conninfo of cfg (the
 * strings stay cfg's).  An empty ca_file means the system's CAs: NULL. */
void pv_es_options_from_config(const struct pv_config *cfg, struct pv_es_options *o);

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
static inline void pv_es_close(struct pv_es *es)
{
	if (es)
		es->ops->close(es);
}

#endif
