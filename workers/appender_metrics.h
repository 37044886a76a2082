/* photovote-appender's Prometheus metrics (lib/prom.h), served on
 * [appender] metrics_listen when it is set.  docs/metrics.md lists them. */
#ifndef PV_WORKERS_APPENDER_METRICS_H
#define PV_WORKERS_APPENDER_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "judge.h"

struct pv_config;
struct pv_appender_metrics;

/* Registers the metrics, becomes the judge's observer and starts the listener
 * when configured; a listener that cannot start is fatal. */
struct pv_appender_metrics *pv_appender_metrics_new(const struct pv_config *cfg,
						    struct pv_judge *judge);
void pv_appender_metrics_free(struct pv_appender_metrics *m);

/* A batch of n deliveries settled (verdicts durable, acked or
 * dead-lettered) in `seconds`. */
void pv_appender_metrics_batch(struct pv_appender_metrics *m, size_t n, double seconds);
void pv_appender_metrics_dead_letter(struct pv_appender_metrics *m);
/* A transient failure: the message stays unacked and is tried again. */
void pv_appender_metrics_retry(struct pv_appender_metrics *m);
void pv_appender_metrics_broker(struct pv_appender_metrics *m, bool connected);

#endif
