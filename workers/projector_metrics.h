/* photovote-projector's Prometheus metrics (lib/prom.h), served on
 * [projector] metrics_listen when it is set.  docs/metrics.md lists them. */
#ifndef PV_WORKERS_PROJECTOR_METRICS_H
#define PV_WORKERS_PROJECTOR_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "cosmos.h"
#include "eventstore.h"

struct pv_config;
struct pv_projector_metrics;

/* Registers the metrics and starts the listener when configured; a
 * listener that cannot start is fatal (a mistyped address must not pass). */
struct pv_projector_metrics *pv_projector_metrics_new(const struct pv_config *cfg);
void pv_projector_metrics_free(struct pv_projector_metrics *m);

/* A pv_cosmos_observer: requests by HTTP status, retries. */
void pv_projector_metrics_cosmos(void *m, long status, int attempt);

/* Events folded: when each was accepted by the API and stored, kept until
 * their documents are written (a page may be folded read after read). */
void pv_projector_metrics_folded(struct pv_projector_metrics *m, const struct pv_es_event *events,
				 size_t count);
/* The page folded since the last call is written and checkpointed: its
 * events, the seconds it took, and each event's delay from its acceptance
 * and from its storing to now. */
void pv_projector_metrics_page(struct pv_projector_metrics *m, double seconds);
/* The events folded since the last page were not written (a failure or a
 * stop): they will be folded again. */
void pv_projector_metrics_unwritten(struct pv_projector_metrics *m);

/* State after a round: the checkpoint, the head of the feed as known, the
 * seconds since the projector last advanced or was idle, and the parked
 * elections (-1: unknown, left as it was). */
void pv_projector_metrics_state(struct pv_projector_metrics *m, int64_t checkpoint, int64_t head,
				double since_progress, long parked);

#endif
