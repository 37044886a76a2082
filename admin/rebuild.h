/* Rebuilding the read model by replay: one election, every election (in
 * place, resumable), or every election into another container that is
 * then caught up with the feed (blue-green).  Used by `photovote-admin
 * rebuild` (cli.c) and meant for the console too.
 *
 * Driving it from a user interface
 *   - pv_rebuild_run() blocks; run it on a thread of its own with a
 *     session no other thread uses meanwhile (sessions are single-threaded).
 *   - o->progress is called on that thread after each election and at
 *     most every PV_REBUILD_PROGRESS_MS in between phases, and once at the
 *     end; the figures it gets are a snapshot (copy what you keep).
 *   - o->cancel: set *cancel non-zero from anywhere (a key, a signal
 *     handler); the run stops after the election in hand, saves where it
 *     is and returns PV_OK with progress->cancelled.  The next rebuild of
 *     every election resumes there (o->restart starts over).
 *   - A server that fails (Cosmos DB, the event store, PostgreSQL) stops
 *     the run at once with one error that names it; an election whose own
 *     documents cannot be written (Cosmos DB refused them for good, an
 *     event that does not fold) is counted, reported through o->failed,
 *     and the run goes on.
 *
 * Safe while photovote-projector runs: see session.c (the head document is
 * the commit point, written with If-Match). */
#ifndef PV_ADMIN_REBUILD_H
#define PV_ADMIN_REBUILD_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "session.h"

#define PV_REBUILD_PROGRESS_MS 200

struct pv_rebuild_progress {
	const char *phase;    /* "replaying", "catching up", "done" (static text) */
	const char *election; /* the last election done (borrowed), or NULL */
	unsigned long elections_done, elections_failed, elections_total;
	int64_t events_done, events_total; /* events replayed / in the streams */
	double elapsed;                    /* seconds since the start of this run */
	double rate;                       /* events/s over this run (0 until known) */
	double eta;                        /* seconds left, -1 when unknown */
	unsigned long cosmos_requests;     /* made by this run */
	unsigned long documents;           /* documents it wrote or deleted */
	bool resumed;                      /* it went on from a saved position */
	bool cancelled;                    /* stopped by *cancel */
	int64_t caught_up_to;              /* into: the feed position reached, -1 none */
};

typedef void pv_rebuild_progress_fn(void *ctx, const struct pv_rebuild_progress *p);
typedef void pv_rebuild_failed_fn(void *ctx, const char *election_id, const struct pv_error *err);

struct pv_rebuild_options {
	const char *election_id; /* one election, or NULL: every election */
	const char *into;        /* NULL: the active container; else build this one */
	bool restart;            /* every election: forget a saved position */
	pv_rebuild_progress_fn *progress;
	pv_rebuild_failed_fn *failed;
	void *ctx; /* for both callbacks */
	const volatile sig_atomic_t *cancel;
};

/* Runs a rebuild; *p holds the final figures whatever the outcome. */
enum pv_err pv_rebuild_run(struct pv_session *s, const struct pv_rebuild_options *o,
			   struct pv_rebuild_progress *p, struct pv_error *err);

/* Blue-green: makes `container` (built by pv_rebuild_run with into) the
 * one the read model is served from, for photovote.fcgi and
 * photovote-projector together.  See rebuild.c for the protocol; it waits
 * up to PV_REBUILD_SWITCH_WAIT_S for the live projector to let go of the
 * old container.  *cancel stops the wait (the switch is then undone). */
#define PV_REBUILD_SWITCH_WAIT_S 60
enum pv_err pv_rebuild_switch(struct pv_session *s, const char *container,
			      const volatile sig_atomic_t *cancel, struct pv_error *err);
/* Deletes a container the read model is not served from (a retired one,
 * or one built and never switched to) with its documents and its
 * checkpoint. */
enum pv_err pv_rebuild_drop(struct pv_session *s, const char *container, struct pv_error *err);

#endif
