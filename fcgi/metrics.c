/* Metrics store: one mutex, fixed arrays sized at start (routes x a few
 * status codes), so recording never allocates on the request path. */
#include "metrics.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define MAX_STATUSES 16

static const double buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
				 0.25,  0.5,    1,     2.5,  5,     10};
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

static const char *const counter_names[] = {"idempotent_replays", "auth_failures", "auth_grace"};
#define NCOUNTERS (sizeof counter_names / sizeof counter_names[0])

struct route_stats {
	const char *name;
	int statuses[MAX_STATUSES];
	uint64_t by_status[MAX_STATUSES];
	uint64_t hist[NBUCKETS];
	uint64_t count;
	double sum;
};

struct pv_metrics {
	pthread_mutex_t lock;
	size_t nroutes; /* including "unmatched" at index 0 */
	struct route_stats *routes;
	uint64_t counters[NCOUNTERS];
};

struct pv_metrics *pv_metrics_new(const char *const *route_names, size_t nroutes)
{
	struct pv_metrics *m = pv_xcalloc(1, sizeof *m);

	pthread_mutex_init(&m->lock, NULL);
	m->nroutes = nroutes + 1;
	m->routes = pv_xcalloc(m->nroutes, sizeof *m->routes);
	m->routes[0].name = "unmatched";
	for (size_t i = 0; i < nroutes; i++)
		m->routes[i + 1].name = route_names[i];
	return m;
}

void pv_metrics_free(struct pv_metrics *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m->routes);
	free(m);
}

void pv_metrics_request(struct pv_metrics *m, int route, int status, double seconds)
{
	size_t idx = route < 0 || (size_t)route + 1 >= m->nroutes ? 0 : (size_t)route + 1;
	struct route_stats *r;

	pthread_mutex_lock(&m->lock);
	r = &m->routes[idx];
	for (int i = 0; i < MAX_STATUSES; i++) {
		if (r->statuses[i] == 0)
			r->statuses[i] = status;
		if (r->statuses[i] == status) {
			r->by_status[i]++;
			break;
		}
	}
	for (size_t b = 0; b < NBUCKETS; b++)
		if (seconds <= buckets[b])
			r->hist[b]++;
	r->count++;
	r->sum += seconds;
	pthread_mutex_unlock(&m->lock);
}

void pv_metrics_count(struct pv_metrics *m, const char *counter)
{
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < NCOUNTERS; i++)
		if (strcmp(counter_names[i], counter) == 0)
			m->counters[i]++;
	pthread_mutex_unlock(&m->lock);
}

void pv_metrics_render(struct pv_metrics *m, const struct pv_amqp_publisher_stats *pub,
		       struct pv_buf *out)
{
	pthread_mutex_lock(&m->lock);
	pv_buf_puts(out, "# HELP photovote_http_requests_total HTTP requests by route and status.\n"
			 "# TYPE photovote_http_requests_total counter\n");
	for (size_t i = 0; i < m->nroutes; i++) {
		const struct route_stats *r = &m->routes[i];

		for (int s = 0; s < MAX_STATUSES && r->statuses[s]; s++)
			pv_buf_printf(
				out,
				"photovote_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
				r->name, r->statuses[s], (unsigned long long)r->by_status[s]);
	}
	pv_buf_puts(out, "# HELP photovote_http_request_duration_seconds Time to answer a "
			 "request.\n# TYPE photovote_http_request_duration_seconds histogram\n");
	for (size_t i = 0; i < m->nroutes; i++) {
		const struct route_stats *r = &m->routes[i];

		if (!r->count)
			continue;
		for (size_t b = 0; b < NBUCKETS; b++)
			pv_buf_printf(out,
				      "photovote_http_request_duration_seconds_bucket{route=\"%s\","
				      "le=\"%g\"} %llu\n",
				      r->name, buckets[b], (unsigned long long)r->hist[b]);
		pv_buf_printf(out,
			      "photovote_http_request_duration_seconds_bucket{route=\"%s\","
			      "le=\"+Inf\"} %llu\n",
			      r->name, (unsigned long long)r->count);
		pv_buf_printf(out,
			      "photovote_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n",
			      r->name, r->sum);
		pv_buf_printf(out,
			      "photovote_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
			      r->name, (unsigned long long)r->count);
	}
	for (size_t i = 0; i < NCOUNTERS; i++)
		pv_buf_printf(out, "# TYPE photovote_%s_total counter\nphotovote_%s_total %llu\n",
			      counter_names[i], counter_names[i],
			      (unsigned long long)m->counters[i]);
	pthread_mutex_unlock(&m->lock);
	if (!pub)
		return;
	static const struct {
		const char *name, *help;
		size_t off;
	} pubc[] = {
		{"amqp_publishes", "messages published",
		 offsetof(struct pv_amqp_publisher_stats, published)},
		{"amqp_publish_batches",
		 "bursts the messages were published in (publishes / batches: the mean burst)",
		 offsetof(struct pv_amqp_publisher_stats, batches)},
		{"amqp_confirms", "messages confirmed (acked) by the broker",
		 offsetof(struct pv_amqp_publisher_stats, acked)},
		{"amqp_nacks", "messages refused or returned by the broker",
		 offsetof(struct pv_amqp_publisher_stats, nacked)},
		{"amqp_publish_failures", "messages not published or lost with a connection",
		 offsetof(struct pv_amqp_publisher_stats, failed)},
		{"amqp_confirm_timeouts", "messages without a confirm in time",
		 offsetof(struct pv_amqp_publisher_stats, timeouts)},
		{"amqp_connects", "successful connections to the broker",
		 offsetof(struct pv_amqp_publisher_stats, connects)},
		{"amqp_blocked", "times RabbitMQ blocked publishing (connection.blocked)",
		 offsetof(struct pv_amqp_publisher_stats, blocked)},
	};
	for (size_t i = 0; i < sizeof pubc / sizeof pubc[0]; i++) {
		uint64_t v;

		memcpy(&v, (const char *)pub + pubc[i].off, sizeof v);
		pv_buf_printf(out,
			      "# HELP photovote_%s_total %s.\n# TYPE photovote_%s_total counter\n"
			      "photovote_%s_total %llu\n",
			      pubc[i].name, pubc[i].help, pubc[i].name, pubc[i].name,
			      (unsigned long long)v);
	}
	pv_buf_printf(out, "# TYPE photovote_amqp_connected gauge\nphotovote_amqp_connected %d\n",
		      pub->connected ? 1 : 0);
}
