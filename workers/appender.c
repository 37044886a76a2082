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
 *   - Two threads: while the judge's thread (lib/judge_thread.h) judges
 *     one batch, this one takes the next from the broker and decodes it,
 *     which overlaps the decoding with the store's round trips.  A batch
 *     is handed over only once the one before is settled: verdicts and
 *     acks keep the order of the queue.  A batch of one is judged here.
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
#include "judge_thread.h"
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

/* Deliveries taken together, their messages and, for a batch of several,
 * the messages decoded. */
struct batch {
	struct pv_amqp_delivery *deliveries; /* batch_size */
	struct pv_judge_msg *msgs;           /* batch_size */
	struct pv_judge_decoded *decoded;
	size_t n;
	double started; /* when taken: its duration counts from here, not the wait */
};

struct appender {
	struct pv_amqp_params amqp;
	int prefetch;
	size_t batch_size;
	int batch_wait_ms; /* how long a batch waits for more after its first */
	/* One being taken from the broker and decoded while the other is with
	 * the judge's thread. */
	struct batch batches[2];
	struct pv_amqp_consumer *consumer;
	struct pv_judge *judge;
	struct pv_judge_thread *judging;
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

/* Settles a batch its judge answered for: dead letters first, each on its
 * own, then one ack for the rest. */
static void settle(struct appender *a, struct batch *b)
{
	struct pv_error err;
	uint64_t upto = 0; /* delivery tags start at 1 */

	if (!a->consumer)
		return; /* lost meanwhile: the broker delivers them again */
	fault_at(FAULT_BEFORE_ACK);
	for (size_t i = 0; i < b->n; i++) {
		struct pv_amqp_delivery *d = &b->deliveries[i];

		if (b->msgs[i].action != PV_JUDGE_DEAD_LETTER) {
			upto = d->tag;
			continue;
		}
		pv_log_warnx("appender", "dead letter (message %s from %s): %s",
			     d->message_id ? d->message_id : "without id", d->queue,
			     b->msgs[i].reason);
		pv_appender_metrics_dead_letter(a->metrics);
		if (pv_amqp_consumer_dead_letter(a->consumer, d, b->msgs[i].reason, &err) !=
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
	if (upto != 0 && pv_amqp_consumer_ack_upto(a->consumer, upto, &err) != PV_OK)
		broker_lost(a, &err);
}

/* Each message of b on its own, in order: a batch of one, or a batch whose
 * unit failed. */
static void deliver_each(struct appender *a, struct batch *b)
{
	for (size_t i = 0; i < b->n && a->consumer && !pv_daemon_stop; i++)
		deliver(a, &b->deliveries[i], b->msgs[i].suspect);
}

static void batch_clear(struct batch *b)
{
	pv_judge_decoded_clear(b->decoded);
	for (size_t i = 0; i < b->n; i++)
		pv_amqp_delivery_clear(&b->deliveries[i]);
	b->n = 0;
}

/* Lets a handled batch go. */
static void batch_done(struct appender *a, struct batch *b)
{
	pv_appender_metrics_batch(a->metrics, b->n, pv_prom_now() - b->started);
	batch_clear(b);
}

/* The judge's answer for the batch it has: settled, or on failure judged
 * again one message at a time. */
static void judged(struct appender *a, struct batch *b)
{
	struct pv_error err;

	if (pv_judge_thread_wait(a->judging, &err) != PV_OK) {
		pv_log_debug("appender", "batch of %zu: %s; one by one", b->n, err.msg);
		deliver_each(a, b);
	} else {
		settle(a, b);
	}
	batch_done(a, b);
}

/* Takes into b what is waiting, the first within first_ms, the others
 * within batch_wait_ms of it: the first receive's answer. */
static enum pv_err take(struct appender *a, struct batch *b, int first_ms, struct pv_error *err)
{
	struct pv_error more;
	enum pv_err rc;
	double first;

	b->n = 0;
	rc = pv_amqp_consumer_next(a->consumer, first_ms, &b->deliveries[0], err);
	if (rc != PV_OK)
		return rc;
	first = pv_prom_now();
	b->n = 1;
	while (b->n < a->batch_size) {
		double left = a->batch_wait_ms - (pv_prom_now() - first) * 1000.0;

		rc = pv_amqp_consumer_next(a->consumer, left > 0 ? (int)left + 1 : 0,
					   &b->deliveries[b->n], &more);
		if (rc != PV_OK)
			break;
		b->n++;
	}
	if (rc != PV_OK && rc != PV_ERR_TIMEOUT)
		pv_log_debug("appender", "%s", more.msg); /* the next call tells again */
	b->started = pv_prom_now();
	for (size_t i = 0; i < b->n; i++)
		b->msgs[i] = (struct pv_judge_msg){
			.body = b->deliveries[i].body,
			.len = b->deliveries[i].body_len,
			.suspect = b->deliveries[i].redelivered,
		};
	return PV_OK;
}

static bool consumer_open(struct appender *a)
{
	struct pv_error err;

	if (pv_amqp_consumer_open(&a->amqp, a->prefetch, &a->consumer, &err) != PV_OK) {
		pv_outage_fail(&a->broker, &err);
		return false;
	}
	pv_outage_ok(&a->broker);
	pv_appender_metrics_broker(a->metrics, true);
	pv_log_info("appender", "consuming %s (%d partition(s), prefetch %d)", a->amqp.queue,
		    a->amqp.partitions, a->prefetch);
	/* The event store was opened before: both connections are up. */
	pv_notify_ready("consuming: the broker and the event store are connected");
	return true;
}

/* Batch after batch: while the judge's thread judges one, the next is taken
 * and decoded here; it is handed over once the one before is settled, so
 * messages are judged and acked in the order they came. */
static void run(struct appender *a)
{
	struct batch *with_judge = NULL;
	unsigned next = 0;

	while (!pv_daemon_stop) {
		struct batch *b = &a->batches[next];
		struct pv_error err;
		enum pv_err rc;

		if (pv_daemon_reopen) {
			pv_daemon_reopen = 0;
			pv_log_reopen();
		}
		if (!a->consumer && !consumer_open(a))
			continue;
		/* With a batch at the judge, wait no longer than a batch waits
		 * to fill, or its acks would wait for the next message. */
		rc = take(a, b, with_judge ? a->batch_wait_ms : POLL_MS, &err);
		if (b->n > 1)
			pv_judge_decode(b->decoded, b->msgs, b->n);
		if (with_judge)
			judged(a, with_judge);
		with_judge = NULL;
		if (rc != PV_OK && rc != PV_ERR_TIMEOUT && a->consumer) {
			pv_amqp_consumer_close(a->consumer);
			a->consumer = NULL;
			pv_appender_metrics_broker(a->metrics, false);
			pv_outage_fail(&a->broker, &err);
		}
		if (b->n == 0)
			continue;
		if (!a->consumer || pv_daemon_stop) {
			/* Not judged: back to the queue with the channel. */
			batch_clear(b);
		} else if (b->n == 1) {
			deliver_each(a, b);
			batch_done(a, b);
		} else {
			pv_judge_thread_hand(a->judging, b->decoded);
			with_judge = b;
			next ^= 1;
		}
	}
	if (with_judge)
		judged(a, with_judge);
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
	for (size_t i = 0; i < 2; i++) {
		a.batches[i].deliveries = pv_xcalloc(a.batch_size, sizeof *a.batches[i].deliveries);
		a.batches[i].msgs = pv_xcalloc(a.batch_size, sizeof *a.batches[i].msgs);
		a.batches[i].decoded = pv_judge_decoded_new();
	}
	pv_outage_init(&a.broker, "appender", "broker", &pv_daemon_stop);
	pv_outage_set_backoff(&a.broker, PV_OUTAGE_BROKER_MIN_MS, PV_OUTAGE_BROKER_MAX_MS);
	pv_outage_init(&a.work, "appender", "event store or audit log", &pv_daemon_stop);
	log = pv_judge_audit_log_new(eso.pg_conninfo);
	a.judge = pv_judge_new(es, log, (size_t)pv_config_int(cfg, "appender", "cache_elections"));
	pv_judge_set_hook(a.judge, judge_point);
	a.metrics = pv_appender_metrics_new(cfg, a.judge);
	a.judging = pv_judge_thread_start(a.judge);
	pv_log_info("appender", "started (event store: %s)", eso.backend);
	run(&a);
	pv_judge_thread_stop(a.judging);
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
	for (size_t i = 0; i < 2; i++) {
		free(a.batches[i].deliveries);
		free(a.batches[i].msgs);
		pv_judge_decoded_free(a.batches[i].decoded);
	}
	pv_appender_metrics_free(a.metrics);
	pv_judge_free(a.judge);
	pv_judge_audit_log_free(log);
	pv_es_close(es);
	pv_amqp_params_clear(&a.amqp);
	pv_config_free(cfg);
	pv_log_info("appender", "stopped");
	return 0;
}
