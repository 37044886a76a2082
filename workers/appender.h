/* photovote-appender internals shared by appender.c (main loop, broker,
 * signals) and appender_core.c (verdicts, event store, audit log).  The
 * core never sees the broker: it is given a message body and answers
 * what to do with the delivery. */
#ifndef PV_WORKERS_APPENDER_H
#define PV_WORKERS_APPENDER_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "eventstore.h"

enum pv_appender_action {
	PV_APPENDER_ACK,         /* verdict durable in store and audit log: ack */
	PV_APPENDER_DEAD_LETTER, /* poison: to the dead-letter exchange, with the reason */
	PV_APPENDER_RETRY,       /* transient failure: keep unacked, back off, retry */
};

/* Crash points for the crash-safety tests (PHOTOVOTE_FAULT). */
enum pv_appender_fault {
	PV_FAULT_NONE,
	PV_FAULT_AFTER_APPEND,
	PV_FAULT_AFTER_AUDIT,
	PV_FAULT_BEFORE_ACK,
};

struct pv_appender_core;

/* Takes over neither es nor conninfo's string (it is copied). */
struct pv_appender_core *pv_appender_core_new(struct pv_es *es, const char *pg_conninfo,
					      size_t cache_elections);
void pv_appender_core_free(struct pv_appender_core *core);

/* What the core tells the metrics (appender_metrics.h): each durable
 * verdict by audit status ("appended", "rejected") and the time of each
 * step ("append": the event store; "audit": the audit rows, with the
 * commit when batched).  Any member may be NULL. */
struct pv_appender_observer {
	void (*verdict)(void *ctx, const char *status);
	void (*latency)(void *ctx, const char *step, double seconds);
	void *ctx;
};
void pv_appender_core_observe(struct pv_appender_core *core, const struct pv_appender_observer *o);

/* Reads PHOTOVOTE_FAULT ("after_append", "after_audit" or "before_ack",
 * optionally ":N" for the N-th time the point is reached; default 1).
 * PV_ERR_CONFIG for anything else. */
enum pv_err pv_appender_fault_parse(const char *spec, struct pv_error *err);
/* Kills the process with SIGKILL if the configured point is reached for
 * the configured time. */
void pv_appender_fault(enum pv_appender_fault point);

/* A message of a batch: body and flag in, action (and for dead letters
 * the reason) out. */
struct pv_appender_msg {
	const char *body;
	size_t len;
	bool suspect;
	enum pv_appender_action action;
	char reason[600];
};

/* Whether the core batches: the postgres event store, whose appends can
 * share a transaction with the audit rows. */
bool pv_appender_core_batches(const struct pv_appender_core *core);

/* Handles n messages in one PostgreSQL transaction: appends (one request
 * per stream, several events each) and audit rows commit together, each
 * message with its own verdict as if handled one by one in order.  PV_OK:
 * every msgs[i].action is set and durable.  Anything else: nothing was
 * committed; handle the messages one at a time with
 * pv_appender_core_handle().  Only when pv_appender_core_batches(). */
enum pv_err pv_appender_core_handle_batch(struct pv_appender_core *core,
					  struct pv_appender_msg *msgs, size_t n,
					  struct pv_error *err);

/* Handles one message.  `suspect` says the event may already have been
 * handled (the broker redelivered it, or an earlier attempt in this
 * process failed half way): the stream is then searched for its id before
 * any verdict.  For PV_APPENDER_DEAD_LETTER the reason is in `reason`; for
 * PV_APPENDER_RETRY err says what failed. */
enum pv_appender_action pv_appender_core_handle(struct pv_appender_core *core, const char *body,
						size_t len, bool suspect, char *reason,
						size_t reason_size, struct pv_error *err);

#endif
