/* Prometheus text exposition for the workers: a registry of counters,
 * gauges and histograms, and a listener thread that serves it at
 * GET /metrics on an address of its own (a loopback port, normally).
 *
 * A family has at most one label; its series are created the first time
 * a label value is used, up to PV_PROM_MAX_SERIES per family (label values
 * here come from small closed sets: statuses, verdicts, HTTP codes; a
 * value beyond the cap is counted under "other").  Recording takes one
 * mutex and never blocks on the network: the listener renders into a
 * buffer under the lock and writes it after.  Families are registered once
 * at start and live as long as the registry. */
#ifndef PV_PROM_H
#define PV_PROM_H

#include <stddef.h>

#include "buf.h"
#include "error.h"

#define PV_PROM_MAX_SERIES 32

struct pv_prom;
struct pv_prom_family;

/* Bucket bounds for latencies in seconds (0.5 ms .. 10 s) and for counts
 * (1 .. 5,000). */
extern const double pv_prom_seconds_buckets[];
extern const size_t pv_prom_seconds_nbuckets;
extern const double pv_prom_count_buckets[];
extern const size_t pv_prom_count_nbuckets;

struct pv_prom *pv_prom_new(void);
/* Stops the listener (if any) and frees everything. */
void pv_prom_free(struct pv_prom *p);

/* Registers a family.  name follows Prometheus' conventions (units in
 * the name, counters end in _total); label is NULL or the one label's
 * name.  Histograms copy their bucket bounds (ascending, +Inf implied). */
struct pv_prom_family *pv_prom_counter(struct pv_prom *p, const char *name, const char *help,
				       const char *label);
struct pv_prom_family *pv_prom_gauge(struct pv_prom *p, const char *name, const char *help,
				     const char *label);
struct pv_prom_family *pv_prom_histogram(struct pv_prom *p, const char *name, const char *help,
					 const char *label, const double *bounds, size_t nbounds);

/* label_value is NULL for a family without a label.  inc adds to a
 * counter, set replaces a gauge, observe adds a sample to a histogram. */
void pv_prom_inc(struct pv_prom_family *f, const char *label_value, double by);
void pv_prom_set(struct pv_prom_family *f, const char *label_value, double value);
void pv_prom_observe(struct pv_prom_family *f, const char *label_value, double sample);

/* Appends the exposition (text format 0.0.4). */
void pv_prom_render(struct pv_prom *p, struct pv_buf *out);

/* Starts the listener thread on "HOST:PORT" (IPv4 address or
 * "localhost").  Fails when the address cannot be parsed or bound. */
enum pv_err pv_prom_listen(struct pv_prom *p, const char *addr, struct pv_error *err);

/* Seconds on the monotonic clock, for measuring latencies. */
double pv_prom_now(void);

#endif
