/* The read model written by several writers at once (photovote-projector).
 *
 * A feed page touches many elections, and writing one election's
 * documents is a few Cosmos DB round trips; one after the other, a page of
 * 500 new elections is 500 round trips end to end.  Writers overlap them:
 * each writer is a struct pv_projection (lib/projection.h) with a Cosmos DB
 * client and an event-store handle of its own (neither is thread-safe),
 * run on a thread of its own for the page.  An election always goes to
 * the same writer (a hash of its id), so a writer's cache stays the one view
 * of its elections, and each election's writes keep their order (parts,
 * then the head).  Nothing else changes: the page is complete when every
 * writer is, and only then may the caller checkpoint; a failure in any writer
 * fails the page, which is applied again (replays change nothing).
 *
 * A page whose elections all fall to one writer runs on the calling thread.
 * The park callback and the write hook are called under one lock, so the
 * caller's need not be thread-safe. */
#ifndef PV_PROJECTION_WRITERS_H
#define PV_PROJECTION_WRITERS_H

#include "cosmos.h"
#include "eventstore.h"
#include "projection.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#define PV_WRITERS_MAX 64

struct pv_writers;

struct pv_writers_options {
	size_t writers;         /* 1..PV_WRITERS_MAX */
	size_t max_bytes;       /* pv_projection_new's */
	size_t cache_elections; /* in all (each writer keeps its share); 0: none */
	void (*write_hook)(void);
	pv_projection_park_fn park; /* NULL: nothing parks */
	void *park_ctx;
};

/* Opens a Cosmos DB client (co) and an event-store handle (eso) for each
 * writer; both options are borrowed for the call only.  On failure nothing
 * stays open and err names what failed (PV_ERR_CONFIG: the options). */
enum pv_err pv_writers_open(const struct pv_writers_options *opts,
			    const struct pv_cosmos_options *co, const struct pv_es_options *eso,
			    struct pv_writers **out, struct pv_error *err);
void pv_writers_close(struct pv_writers *l);

/* pv_projection_fold over the writers, same contract: each folds its
 * elections' events and leaves them pending for pv_writers_flush. */
enum pv_err pv_writers_fold(struct pv_writers *l, const struct pv_es_event *events, size_t count,
			    const volatile sig_atomic_t *stop, bool *complete,
			    struct pv_error *err);
/* pv_projection_flush over the writers: each writes its pending elections. */
enum pv_err pv_writers_flush(struct pv_writers *l, const volatile sig_atomic_t *stop,
			     bool *complete, struct pv_error *err);
/* True when a writer holds as many pending elections as its cache's share:
 * flush before folding more. */
bool pv_writers_pending_full(const struct pv_writers *l);

/* What pv_projection_forget, _set_parked, _parked_count and _get_stats do,
 * over every writer.  The counts of writers never opened (NULL) are 0. */
void pv_writers_forget(struct pv_writers *l);
void pv_writers_set_parked(struct pv_writers *l, const char *const *ids, size_t n);
size_t pv_writers_parked_count(const struct pv_writers *l);
void pv_writers_get_stats(const struct pv_writers *l, struct pv_projection_stats *out);
/* Cosmos DB requests of every writer's client. */
unsigned long pv_writers_request_count(const struct pv_writers *l);

#endif
