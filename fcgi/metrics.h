/* Request metrics in Prometheus text format: requests by route and status,
 * a latency histogram per route, and counters from the publisher.  Routes
 * are the patterns of the routing table (a bounded label set) plus
 * "unmatched" for paths that match no route. */
#ifndef PV_FCGI_METRICS_H
#define PV_FCGI_METRICS_H

#include <stddef.h>

#include "amqp_publisher.h"
#include "buf.h"

struct pv_metrics;

/* route_names[i] labels route index i; index -1 is "unmatched". */
struct pv_metrics *pv_metrics_new(const char *const *route_names, size_t nroutes);
void pv_metrics_free(struct pv_metrics *m);

void pv_metrics_request(struct pv_metrics *m, int route, int status, double seconds);
/* Named event counters: "idempotent_replays", "auth_failures". */
void pv_metrics_count(struct pv_metrics *m, const char *counter);

/* Appends the whole exposition; pub may be NULL. */
void pv_metrics_render(struct pv_metrics *m, const struct pv_amqp_publisher_stats *pub,
		       struct pv_buf *out);

#endif
