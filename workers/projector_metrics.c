#include "projector_metrics.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "config.h"
#include "domain/table.h"
#include "log.h"
#include "prom.h"
#include "xalloc.h"

struct pv_projector_metrics {
	struct pv_prom *prom;
	struct pv_prom_family *events, *pages, *page_seconds, *delay;
	struct pv_prom_family *cosmos_requests, *cosmos_retries;
	struct pv_prom_family *checkpoint, *head, *lag_events, *lag_seconds, *parked;
	/* Events folded since the last page written: when each was accepted
	 * and stored (seconds since the epoch; NAN: not known). */
	struct folded_times {
		double accepted, stored;
	} * folded;
	size_t nfolded, folded_cap;
};

struct pv_projector_metrics *pv_projector_metrics_new(const struct pv_config *cfg)
{
	struct pv_projector_metrics *m = pv_xcalloc(1, sizeof *m);
	const char *addr = pv_config_str(cfg, "projector", "metrics_listen");
	struct pv_prom *p = pv_prom_new();
	struct pv_error err;

	m->prom = p;
	m->events = pv_prom_counter(p, "photovote_projector_events_total",
				    "Events projected (pages written and checkpointed).", NULL);
	m->pages = pv_prom_counter(p, "photovote_projector_pages_total",
				   "Feed pages projected and checkpointed.", NULL);
	m->page_seconds = pv_prom_histogram(p, "photovote_projector_page_duration_seconds",
					    "Time to fold and write one page of the feed.", NULL,
					    pv_prom_seconds_buckets, pv_prom_seconds_nbuckets);
	m->delay = pv_prom_histogram(
		p, "photovote_projector_visible_delay_seconds",
		"Delay from an event's acceptance by the API (since=\"accepted\", its metadata "
		"\"at\") or its storing in the event store (since=\"stored\", its created time) "
		"to its documents being written.",
		"since", pv_prom_seconds_buckets, pv_prom_seconds_nbuckets);
	m->cosmos_requests =
		pv_prom_counter(p, "photovote_cosmos_requests_total",
				"Cosmos DB requests by HTTP status (attempts, retries included; "
				"code \"none\": no answer, a connection failure or timeout).",
				"code");
	m->cosmos_retries = pv_prom_counter(
		p, "photovote_cosmos_retries_total",
		"Cosmos DB attempts that were retries (after 429, 408, 449, 5xx or no answer).",
		NULL);
	m->checkpoint =
		pv_prom_gauge(p, "photovote_projector_checkpoint_position",
			      "Last feed position whose event the documents reflect.", NULL);
	m->head = pv_prom_gauge(p, "photovote_projector_head_position",
				"Last feed position the projector knows of.", NULL);
	m->lag_events =
		pv_prom_gauge(p, "photovote_projector_lag_events",
			      "Events between the checkpoint and the head of the feed.", NULL);
	m->lag_seconds = pv_prom_gauge(
		p, "photovote_projector_lag_seconds",
		"Seconds since the projector last advanced or found the feed idle.", NULL);
	m->parked = pv_prom_gauge(p, "photovote_projector_parked_elections",
				  "Elections parked (table projection_parked) for this projection.",
				  NULL);
	if (*addr) {
		if (pv_prom_listen(p, addr, &err) != PV_OK)
			pv_log_fatalx("config", "[projector] metrics_listen: %s", err.msg);
		pv_log_info("projector", "metrics on http://%s/metrics", addr);
	}
	return m;
}

void pv_projector_metrics_free(struct pv_projector_metrics *m)
{
	if (!m)
		return;
	pv_prom_free(m->prom);
	free(m->folded);
	free(m);
}

void pv_projector_metrics_cosmos(void *ctx, long status, int attempt)
{
	struct pv_projector_metrics *m = ctx;
	char code[24];

	if (status > 0)
		snprintf(code, sizeof code, "%ld", status);
	else
		snprintf(code, sizeof code, "none");
	pv_prom_inc(m->cosmos_requests, code, 1);
	if (attempt > 0)
		pv_prom_inc(m->cosmos_retries, NULL, 1);
}

/* An RFC 3339 time in seconds since the epoch; NAN when it does not parse. */
static double epoch_seconds(const char *when)
{
	int64_t sec;
	long nsec;

	if (!when || !pv_rfc3339_parse(when, &sec, &nsec))
		return NAN;
	return (double)sec + (double)nsec / 1e9;
}

void pv_projector_metrics_folded(struct pv_projector_metrics *m, const struct pv_es_event *events,
				 size_t count)
{
	if (m->nfolded + count > m->folded_cap) {
		m->folded_cap = m->nfolded + count > 2 * m->folded_cap ? m->nfolded + count
								       : 2 * m->folded_cap;
		m->folded = pv_xreallocarray(m->folded, m->folded_cap, sizeof *m->folded);
	}
	for (size_t i = 0; i < count; i++)
		m->folded[m->nfolded++] = (struct folded_times){
			.accepted = epoch_seconds(
				json_string_value(json_object_get(events[i].metadata, "at"))),
			.stored = epoch_seconds(events[i].created),
		};
}

/* Seconds from `then` to now, 0 if the clocks disagree (other machines'). */
static void observe_since(struct pv_prom_family *h, const char *since, double then, double now)
{
	if (!isnan(then))
		pv_prom_observe(h, since, now > then ? now - then : 0);
}

void pv_projector_metrics_page(struct pv_projector_metrics *m, double seconds)
{
	struct timespec ts;
	double now;

	clock_gettime(CLOCK_REALTIME, &ts);
	now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	pv_prom_inc(m->events, NULL, (double)m->nfolded);
	pv_prom_inc(m->pages, NULL, 1);
	pv_prom_observe(m->page_seconds, NULL, seconds);
	for (size_t i = 0; i < m->nfolded; i++) {
		observe_since(m->delay, "accepted", m->folded[i].accepted, now);
		observe_since(m->delay, "stored", m->folded[i].stored, now);
	}
	m->nfolded = 0;
}

void pv_projector_metrics_unwritten(struct pv_projector_metrics *m)
{
	m->nfolded = 0;
}

void pv_projector_metrics_state(struct pv_projector_metrics *m, int64_t checkpoint, int64_t head,
				double since_progress, long parked)
{
	pv_prom_set(m->checkpoint, NULL, (double)checkpoint);
	pv_prom_set(m->head, NULL, (double)head);
	pv_prom_set(m->lag_events, NULL, head > checkpoint ? (double)(head - checkpoint) : 0);
	pv_prom_set(m->lag_seconds, NULL, since_progress);
	if (parked >= 0)
		pv_prom_set(m->parked, NULL, (double)parked);
}
