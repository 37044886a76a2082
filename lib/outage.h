/* Outages of a server a worker depends on: log the start once, retry with
 * capped exponential backoff, log the end once.  Sleeping wakes early when
 * the worker's stop flag is set, so SIGTERM is never held up by a backoff. */
#ifndef PV_OUTAGE_H
#define PV_OUTAGE_H

#include <signal.h>
#include <stdbool.h>
#include <time.h>

#include "error.h"

#define PV_OUTAGE_BACKOFF_MIN_MS 100
#define PV_OUTAGE_BACKOFF_MAX_MS 5000
/* The broker: a consumer tries again within a quarter of a second of it being
 * back (issue 14). */
#define PV_OUTAGE_BROKER_MIN_MS 50
#define PV_OUTAGE_BROKER_MAX_MS 250

struct pv_outage {
	const char *subsys; /* log subsystem word, e.g. "appender" */
	const char *what;   /* the dependency, e.g. "event store" */
	volatile sig_atomic_t *stop;
	bool down;
	int min_ms, max_ms;
	int backoff_ms;
	time_t since;
};

void pv_outage_init(struct pv_outage *o, const char *subsys, const char *what,
		    volatile sig_atomic_t *stop);
/* Another backoff than the default's 100 ms doubling to 5 s. */
void pv_outage_set_backoff(struct pv_outage *o, int min_ms, int max_ms);
/* Records a failure (logged at its first occurrence) and sleeps the backoff. */
void pv_outage_fail(struct pv_outage *o, const struct pv_error *err);
/* Records a success; logs the end of an outage that was under way. */
void pv_outage_ok(struct pv_outage *o);
/* Sleeps ms, waking early once *stop is set. */
void pv_nap(int ms, volatile sig_atomic_t *stop);

#endif
