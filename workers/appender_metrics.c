#include "appender_metrics.h"

#include <stdlib.h>

#include "config.h"
#include "log.h"
#include "prom.h"
#include "xalloc.h"

struct pv_appender_metrics {
	struct pv_prom *prom;
	struct pv_prom_family *messages, *verdicts, *batch_size, *batch_seconds, *step_seconds;
	struct pv_prom_family *retries, *connects, *connected;
};

static void on_verdict(void *ctx, const char *status)
{
	struct pv_appender_metrics *m = ctx;

	pv_prom_inc(m->verdicts, status, 1);
}

static void on_latency(void *ctx, const char *step, double seconds)
{
	struct pv_appender_metrics *m = ctx;

	pv_prom_observe(m->step_seconds, step, seconds);
}

struct pv_appender_metrics *pv_appender_metrics_new(const struct pv_config *cfg,
						    struct pv_judge *judge)
{
	struct pv_appender_metrics *m = pv_xcalloc(1, sizeof *m);
	const char *addr = pv_config_str(cfg, "appender", "metrics_listen");
	struct pv_prom *p = pv_prom_new();
	struct pv_error err;

	m->prom = p;
	m->messages = pv_prom_counter(p, "photovote_appender_messages_total",
				      "Messages settled (acked or dead-lettered).", NULL);
	m->verdicts = pv_prom_counter(
		p, "photovote_appender_verdicts_total",
		"Verdicts by status: appended and rejected as recorded in the audit log for the "
		"first time (a redelivered message already recorded counts once), dead_letter "
		"for poison sent to the dead-letter exchange.",
		"status");
	m->batch_size =
		pv_prom_histogram(p, "photovote_appender_batch_size_messages",
				  "Messages handled together (one transaction when batched).", NULL,
				  pv_prom_count_buckets, pv_prom_count_nbuckets);
	m->batch_seconds = pv_prom_histogram(
		p, "photovote_appender_batch_duration_seconds",
		"Time from taking a batch to its last ack, retries and outages included.", NULL,
		pv_prom_seconds_buckets, pv_prom_seconds_nbuckets);
	m->step_seconds = pv_prom_histogram(
		p, "photovote_appender_step_duration_seconds",
		"Time of one step: append (the event store) and audit (the audit rows, with the "
		"commit when batched).",
		"step", pv_prom_seconds_buckets, pv_prom_seconds_nbuckets);
	m->retries = pv_prom_counter(p, "photovote_appender_retries_total",
				     "Transient failures (event store, audit log) after which a "
				     "message was tried again.",
				     NULL);
	m->connects = pv_prom_counter(p, "photovote_appender_broker_connects_total",
				      "Successful connections to RabbitMQ.", NULL);
	m->connected = pv_prom_gauge(p, "photovote_appender_broker_connected",
				     "1 while the appender is connected to RabbitMQ.", NULL);
	pv_judge_observe(judge, &(struct pv_judge_observer){
					.verdict = on_verdict,
					.latency = on_latency,
					.ctx = m,
				});
	if (*addr) {
		if (pv_prom_listen(p, addr, &err) != PV_OK)
			pv_log_fatalx("config", "[appender] metrics_listen: %s", err.msg);
		pv_log_info("appender", "metrics on http://%s/metrics", addr);
	}
	return m;
}

void pv_appender_metrics_free(struct pv_appender_metrics *m)
{
	if (!m)
		return;
	pv_prom_free(m->prom);
	free(m);
}

void pv_appender_metrics_batch(struct pv_appender_metrics *m, size_t n, double seconds)
{
	pv_prom_inc(m->messages, NULL, (double)n);
	pv_prom_observe(m->batch_size, NULL, (double)n);
	pv_prom_observe(m->batch_seconds, NULL, seconds);
}

void pv_appender_metrics_dead_letter(struct pv_appender_metrics *m)
{
	pv_prom_inc(m->verdicts, "dead_letter", 1);
}

void pv_appender_metrics_retry(struct pv_appender_metrics *m)
{
	pv_prom_inc(m->retries, NULL, 1);
}

void pv_appender_metrics_broker(struct pv_appender_metrics *m, bool connected)
{
	if (connected)
		pv_prom_inc(m->connects, NULL, 1);
	pv_prom_set(m->connected, NULL, connected ? 1 : 0);
}
