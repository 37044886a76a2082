/* photovote-appender: consumes commands from RabbitMQ, checks each against
 * its election's state, appends it to the event store and mirrors every
 * verdict into the PostgreSQL audit log.
 *
 * Design
 *   - Queue: the appender queue, or the N partition queues of the
 *     consistent-hash exchange (amqp_conn.h); each has single active
 *     consumer, so one election's commands are handled in the order they
 *     were accepted even with several appenders.  Manual acks, a prefetch
 *     window of [amqp] prefetch messages.
 *   - Verdicts: the judge (lib/judge.h), the same for every event store.
 *     Up to [appender] batch_size messages, those already waiting and
 *     those arriving within [appender] batch_wait_ms of the first (fewer,
 *     larger units cost the store less), are judged as one unit of work of the
 *     store, appends and audit rows together, then acked with one
 *     multiple ack; dead letters first, each on its own.  A batch that
 *     fails is judged again one message at a time, which keeps per-event
 *     verdicts and the retry rules below.
 *   - Ack only after both are durable.
 *   - Poison (not JSON, not an event envelope, unknown type, no election
 *     id): published to the dead-letter exchange with the reason in the
 *     header x-photovote-reason, then acked (amqp_consumer.h); never
 *     requeued.
 *   - Transient failures (PostgreSQL, event store, broker): the message
 *     stays unacked and is retried with a capped exponential backoff; one
 *     warning when an outage starts and one line when it ends.  A broken
 *     broker connection is dropped and opened again; the broker redelivers
 *     what was unacked (flagged redelivered: searched for in the stream).
 *   - SIGTERM/SIGINT: stop taking messages, finish the one in hand (a
 *     message waiting out an outage is left unacked), close, exit 0.
 *     Prefetched messages go back to the queue when the channel closes.
 *     SIGHUP reopens the log.
 *   - Metrics (appender_metrics.h) on [appender] metrics_listen.
 *   - PHOTOVOTE_FAULT=after_append|after_audit|before_ack[:N]: SIGKILL at
 *     that point (the N-th time), for the crash-safety tests. */
#define _POSIX_C_SOURCE 200809L

#include "amqp_conn.h"
#include "amqp_consumer.h"
#include "appender_metrics.h"
#include "config.h"
#include "options.h"
#include "daemon.h"
#include "eventstore.h"
#include "judge.h"
#include "log.h"
#include "notify.h"
#include "outage.h"
#include "pgutil.h"
#include "prom.h"
#include "xalloc.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 250

/* Crash points for the crash-safety tests (PHOTOVOTE_FAULT). */
enum fault {
	FAULT_NONE,
	FAULT_AFTER_APPEND,
	FAULT_AFTER_AUDIT,
	FAULT_BEFORE_ACK,
};

/* Fault points. */

static const char *const fault_names[] = {
	[FAULT_NONE] = "none",
	[FAULT_AFTER_APPEND] = "after_append",
	[FAULT_AFTER_AUDIT] = "after_audit",
	[FAULT_BEFORE_ACK] = "before_ack",
};
static enum fault fault_point = FAULT_NONE;
static long fault_countdown;

static enum pv_err fault_parse(const char *spec, struct pv_error *err)
{
	const char *colon;
	size_t len;
	long n = 1;

	fault_point = FAULT_NONE;
	if (!spec || !*spec)
		return PV_OK;
	colon = strchr(spec, ':');
	len = colon ? (size_t)(colon - spec) : strlen(spec);
	if (colon) {
		char *end;
		n = strtol(colon + 1, &end, 10);
		if (end == colon + 1 || *end || n < 1)
			return pv_error_set(err, PV_ERR_CONFIG,
					    "PHOTOVOTE_FAULT: \"%s\": count must be a number >= 1",
					    spec);
	}
	for (size_t i = 1; i < sizeof fault_names / sizeof fault_names[0]; i++) {
		if (strlen(fault_names[i]) == len && strncmp(spec, fault_names[i], len) == 0) {
			fault_point = (enum fault)i;
			fault_countdown = n;
			return PV_OK;
		}
	}
	return pv_error_set(
		err, PV_ERR_CONFIG,
		"PHOTOVOTE_FAULT: \"%s\" is not after_append, after_audit or before_ack", spec);
}

static void fault_at(enum fault point)
{
	if (point != fault_point || fault_point == FAULT_NONE)
		return;
	if (--fault_countdown > 0)
		return;
	pv_log_warnx("fault", "PHOTOVOTE_FAULT: killing myself at %s", fault_names[point]);
	kill(getpid(), SIGKILL);
}

static void judge_point(enum pv_judge_point point)
{
	fault_at(point == PV_JUDGE_AFTER_APPEND ? FAULT_AFTER_APPEND : FAULT_AFTER_AUDIT);
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: photovote-appender [-c FILE] [--migrate DIR]\n"
		"  -c, --config FILE   configuration (default " PV_DAEMON_CONFIG " if it exists,\n"
		"                      or $PHOTOVOTE_CONFIG)\n"
		"  -m, --migrate DIR   apply the PostgreSQL migrations of DIR first\n"
		"  -h, --help          this text\n");
}

struct appender {
	struct pv_amqp_params amqp;
	int prefetch;
	size_t batch_size;
	int batch_wait_ms;              /* how long a batch waits for more after its first */
	struct pv_amqp_delivery *batch; /* batch_size deliveries */
	struct pv_judge_msg *msgs;
	struct pv_amqp_consumer *consumer;
	struct pv_judge *judge;
	struct pv_outage broker, work;
	struct pv_appender_metrics *metrics;
};

/* Drops the broker connection after a failed ack or dead letter: the
 * verdicts are durable, the redelivery will find them. */
static void broker_lost(struct appender *a, const struct pv_error *err)
{
	pv_log_warnx("appender", "%s", err->msg);
	pv_amqp_consumer_close(a->consumer);
	a->consumer = NULL;
	pv_appender_metrics_broker(a->metrics, false);
}

/* Handles one delivery until its verdict is durable and it is acked or
 * dead-lettered, or a stop is requested during an outage.  suspect: it
 * may have been handled before (redelivered, or in a batch that failed). */
static void deliver(struct appender *a, struct pv_amqp_delivery *d, bool suspect)
{
	struct pv_judge_msg m = {.body = d->body, .len = d->body_len, .suspect = suspect};
	struct pv_error err;
	enum pv_err rc;

	for (;;) {
		pv_judge_one(a->judge, &m, &err);
		if (m.action != PV_JUDGE_RETRY)
			break;
		/* Half done, maybe: from now on look before acting. */
		m.suspect = true;
		pv_appender_metrics_retry(a->metrics);
		pv_outage_fail(&a->work, &err);
		if (pv_daemon_stop)
			return;
	}
	pv_outage_ok(&a->work);
	fault_at(FAULT_BEFORE_ACK);
	if (m.action == PV_JUDGE_DEAD_LETTER) {
		pv_log_warnx("appender", "dead letter (message %s from %s): %s",
			     d->message_id ? d->message_id : "without id", d->queue, m.reason);
		pv_appender_metrics_dead_letter(a->metrics);
		rc = pv_amqp_consumer_dead_letter(a->consumer, d, m.reason, &err);
	} else {
		rc = pv_amqp_consumer_ack(a->consumer, d->tag, &err);
	}
	if (rc != PV_OK)
		broker_lost(a, &err);
}

/* Handles the n deliveries of a->batch: as one unit when there are
 * several, else (or when that fails) one by one. */
static void deliver_batch(struct appender *a, size_t n)
{
	struct pv_error err;
	uint64_t upto = 0; /* delivery tags start at 1 */
	enum pv_err rc;

	if (n == 1) {
		if (a->consumer && !pv_daemon_stop)
			deliver(a, &a->batch[0], a->batch[0].redelivered);
		return;
	}
	for (size_t i = 0; i < n; i++)
		a->msgs[i] = (struct pv_judge_msg){
			.body = a->batch[i].body,
			.len = a->batch[i].body_len,
			.suspect = a->batch[i].redelivered,
		};
	if (pv_judge_batch(a->judge, a->msgs, n, &err) != PV_OK) {
		pv_log_debug("appender", "batch of %zu: %s; one by one", n, err.msg);
		for (size_t i = 0; i < n && a->consumer && !pv_daemon_stop; i++)
			deliver(a, &a->batch[i], a->msgs[i].suspect);
		return;
	}
	fault_at(FAULT_BEFORE_ACK);
	for (size_t i = 0; i < n; i++) {
		struct pv_amqp_delivery *d = &a->batch[i];

		if (a->msgs[i].action != PV_JUDGE_DEAD_LETTER) {
			upto = d->tag;
			continue;
		}
		pv_log_warnx("appender", "dead letter (message %s from %s): %s",
			     d->message_id ? d->message_id : "without id", d->queue,
			     a->msgs[i].reason);
		pv_appender_metrics_dead_letter(a->metrics);
		if (pv_amqp_consumer_dead_letter(a->consumer, d, a->msgs[i].reason, &err) !=
		    PV_OK) {
			broker_lost(a, &err);
			return;
		}
	}
	/* Deliveries are numbered per channel in order and all of these are
	 * settled: one ack covers them.  It names the last one not dead-lettered:
	 * dead letters were acked already, and RabbitMQ closes the channel on a
	 * multiple ack whose tag is no longer outstanding (406, unknown delivery
	 * tag). */
	if (upto == 0)
		return;
	rc = pv_amqp_consumer_ack_upto(a->consumer, upto, &err);
	if (rc != PV_OK)
		broker_lost(a, &err);
}

static void run(struct appender *a)
{
	struct pv_error err;
	enum pv_err rc;
	double started;

	while (!pv_daemon_stop) {
		if (pv_daemon_reopen) {
			pv_daemon_reopen = 0;
			pv_log_reopen();
		}
		if (!a->consumer) {
			rc = pv_amqp_consumer_open(&a->amqp, a->prefetch, &a->consumer, &err);
			if (rc != PV_OK) {
				pv_outage_fail(&a->broker, &err);
				continue;
			}
			pv_outage_ok(&a->broker);
			pv_appender_metrics_broker(a->metrics, true);
			pv_log_info("appender", "consuming %s (%d partition(s), prefetch %d)",
				    a->amqp.queue, a->amqp.partitions, a->prefetch);
			/* The event store was opened before: both connections are up. */
			pv_notify_ready("consuming: the broker and the event store are connected");
		}
		rc = pv_amqp_consumer_next(a->consumer, POLL_MS, &a->batch[0], &err);
		if (rc == PV_ERR_TIMEOUT)
			continue;
		if (rc != PV_OK) {
			pv_amqp_consumer_close(a->consumer);
			a->consumer = NULL;
			pv_appender_metrics_broker(a->metrics, false);
			pv_outage_fail(&a->broker, &err);
			continue;
		}
		/* Then whatever is already waiting, or arrives within batch_wait_ms. */
		double first = pv_prom_now();
		size_t n = 1;
		while (n < a->batch_size) {
			double left = a->batch_wait_ms - (pv_prom_now() - first) * 1000.0;

			rc = pv_amqp_consumer_next(a->consumer, left > 0 ? (int)left + 1 : 0,
						   &a->batch[n], &err);
			if (rc != PV_OK)
				break;
			n++;
		}
		if (rc != PV_OK && rc != PV_ERR_TIMEOUT)
			pv_log_debug("appender", "%s", err.msg); /* the next call tells again */
		started = pv_prom_now(); /* the batch's duration counts from here, not the wait */
		deliver_batch(a, n);
		pv_appender_metrics_batch(a->metrics, n, pv_prom_now() - started);
		for (size_t i = 0; i < n; i++)
			pv_amqp_delivery_clear(&a->batch[i]);
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"migrate", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *cfgfile = NULL, *migrate_dir = NULL;
	struct pv_es_options eso;
	struct pv_judge_log *log;
	struct appender a;
	struct pv_config *cfg;
	struct pv_error err;
	struct pv_es *es;
	int opt;

	while ((opt = getopt_long(argc, argv, "c:m:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': cfgfile = optarg; break;
		case 'm': migrate_dir = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	pv_log_init("photovote-appender", PV_LOG_STDERR, PV_LOG_INFO);
#ifdef M_MXFAST
	/* A batch frees some 100,000 small blocks (decoded JSON), then large
	 * ones; with glibc's fast bins each large free first merged all the
	 * small ones (malloc_consolidate): a third of the appender's CPU in
	 * bench-appender.  Without them it uses a quarter less CPU an event
	 * (docs/benchmarks.md). */
	if (!mallopt(M_MXFAST, 0))
		pv_log_warnx("appender", "mallopt M_MXFAST 0 refused; going on without it");
#endif
	/* PHOTOVOTE_FAULT is test equipment, not configuration: the config
	 * module refuses PHOTOVOTE_* variables it does not know, so it is read
	 * and removed first. */
	if (fault_parse(getenv("PHOTOVOTE_FAULT"), &err) != PV_OK)
		pv_log_fatalx("config", "%s", err.msg);
	unsetenv("PHOTOVOTE_FAULT");
	cfg = pv_daemon_config_load("photovote-appender", cfgfile);
	if (migrate_dir)
		pv_daemon_migrate(pv_config_str(cfg, "postgres", "conninfo"), migrate_dir);

	pv_es_options_from_config(cfg, &eso);
	/* A store that is down at start is an outage like any other. */
	pv_daemon_signals();
	struct pv_outage o;
	pv_outage_init(&o, "appender", "event store", &pv_daemon_stop);
	for (;;) {
		enum pv_err rc = pv_es_open(&eso, &es, &err);

		if (rc == PV_OK)
			break;
		if (rc == PV_ERR_CONFIG)
			pv_log_fatalx("eventstore", "%s", err.msg);
		pv_outage_fail(&o, &err);
		if (pv_daemon_stop) {
			pv_config_free(cfg);
			return 0;
		}
	}

	memset(&a, 0, sizeof a);
	pv_amqp_params_from_config(&a.amqp, cfg);
	a.prefetch = (int)pv_config_int(cfg, "amqp", "prefetch");
	a.batch_size = (size_t)pv_config_int(cfg, "appender", "batch_size");
	a.batch_wait_ms = (int)pv_config_int(cfg, "appender", "batch_wait_ms");
	a.batch = pv_xcalloc(a.batch_size, sizeof *a.batch);
	a.msgs = pv_xcalloc(a.batch_size, sizeof *a.msgs);
	pv_outage_init(&a.broker, "appender", "broker", &pv_daemon_stop);
	pv_outage_set_backoff(&a.broker, PV_OUTAGE_BROKER_MIN_MS, PV_OUTAGE_BROKER_MAX_MS);
	pv_outage_init(&a.work, "appender", "event store or audit log", &pv_daemon_stop);
	log = pv_judge_audit_log_new(eso.pg_conninfo);
	a.judge = pv_judge_new(es, log, (size_t)pv_config_int(cfg, "appender", "cache_elections"));
	pv_judge_set_hook(a.judge, judge_point);
	a.metrics = pv_appender_metrics_new(cfg, a.judge);
	pv_log_info("appender", "started (event store: %s)", eso.backend);
	run(&a);
	{
		struct pv_judge_stats st;

		pv_judge_get_stats(a.judge, &st);
		pv_log_info("appender",
			    "judged %llu messages in %llu batches: %llu events appended with "
			    "%llu stream appends",
			    st.messages, st.units, st.appended, st.streams);
	}
	pv_notify_stopping();
	pv_amqp_consumer_close(a.consumer);
	free(a.msgs);
	free(a.batch);
	pv_appender_metrics_free(a.metrics);
	pv_judge_free(a.judge);
	pv_judge_audit_log_free(log);
	pv_es_close(es);
	pv_amqp_params_clear(&a.amqp);
	pv_config_free(cfg);
	pv_log_info("appender", "stopped");
	return 0;
}
