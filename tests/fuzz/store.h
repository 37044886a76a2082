/* The operations of the event-store targets (fuzz-esdb, fuzz-kurrentdb):
 * the operation line's word picks one of the store's public operations,
 * run on stream STREAM (or category "Election") through the ops table as
 * production runs them; each target adds its backend's invariants. */
#ifndef PV_FUZZ_STORE_H
#define PV_FUZZ_STORE_H

#include "answers.h"
#include "eventstore.h"

#define FUZZ_STREAM "Election-01ARZ3NDEKTSV4RRFFQ69G5FAV"
#define FUZZ_STREAM_2 "Election-01ARZ3NDEKTSV4RRFFQ69G5FB2" /* "many": the unit's others */
#define FUZZ_STREAM_3 "Election-01ARZ3NDEKTSV4RRFFQ69G5FB3"
#define FUZZ_STREAM_4 "Election-01ARZ3NDEKTSV4RRFFQ69G5FB4"

struct fuzz_store_checks {
	/* A page read by "forward"/"backward" (a stream) or "category" from `from`. */
	void (*page)(const char *word, const struct pv_es_page *page, int64_t from, size_t max);
	/* An append of count events after `expected`, whatever its result. */
	void (*append)(enum pv_err rc, int64_t expected, size_t count, int64_t version,
		       const char *msg);
	void (*list)(const struct pv_es_stream_list *list);
};

/* Runs op on es (forward FROM MAX, backward FROM MAX, category FROM MAX,
 * append EXPECTED COUNT, many EXPECTED COUNT, list, delete EXPECTED HARD) with the checks, checks
 * an error's message for raw control characters (as `target`), and closes
 * es. */
void fuzz_store_run(struct pv_es *es, const struct fuzz_op *op, const char *target,
		    const struct fuzz_store_checks *checks);

#endif
