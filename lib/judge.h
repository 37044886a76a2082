/* The judge: commands in, verdicts out, durable in the event store and in a
 * log of verdicts (the audit log) before the caller may settle the
 * messages.  photovote-appender feeds it broker messages; the rules are the
 * same for every event store, since the store's part is its unit of work
 * (eventstore.h).  judge.c states the rules. */
#ifndef PV_JUDGE_H
#define PV_JUDGE_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "eventstore.h"

enum pv_judge_action {
	PV_JUDGE_ACK,         /* verdict durable in store and log: ack */
	PV_JUDGE_DEAD_LETTER, /* poison: to the dead letters, with the reason */
	PV_JUDGE_RETRY,       /* transient failure: keep unacked, back off, retry */
};

/* A message: body and flag in, action (and for dead letters the reason)
 * out.  `suspect` says it may have been handled before (redelivered, or an
 * earlier attempt failed half way): its stream is searched for its id
 * before any verdict. */
struct pv_judge_msg {
	const char *body;
	size_t len;
	bool suspect;
	enum pv_judge_action action;
	char reason[600];
};

/* Where verdicts go: a sink of the store's unit of work, which the store
 * begins (on its own connection when it has one to share), writes at
 * commit and ends; and a look-up of the ids that have a verdict already.
 * pv_judge_audit_log() is the PostgreSQL audit log; tests bring their own. */
struct pv_audit_entry;
struct pv_judge_log {
	struct pv_es_sink sink;
	/* Inside the unit: present[i] when ids[i] has a verdict. */
	enum pv_err (*present)(struct pv_judge_log *log, const char *const *ids, size_t n,
			       bool *present, struct pv_error *err);
	/* What the sink's write records: new verdicts (an id that has one by
	 * then fails the write with PV_ERR_CONFLICT), set before the commit,
	 * borrowed until the unit ends. */
	const struct pv_audit_entry *rows;
	size_t nrows;
};

/* The audit log (audit.h) on conninfo (copied), sharing the store's
 * connection when it offers one. */
struct pv_judge_log *pv_judge_audit_log_new(const char *conninfo);
void pv_judge_audit_log_free(struct pv_judge_log *log);

/* Points a crash-safety test may stop the process at. */
enum pv_judge_point {
	PV_JUDGE_AFTER_APPEND, /* the unit's appends are done, its verdicts not */
	PV_JUDGE_AFTER_RECORD, /* the unit is committed */
};

struct pv_judge;

/* Takes over neither es nor log.  cache_elections bounds the cache of
 * elections (0: none, every batch reads its streams). */
struct pv_judge *pv_judge_new(struct pv_es *es, struct pv_judge_log *log, size_t cache_elections);
void pv_judge_free(struct pv_judge *j);
/* Called at each point (NULL: none). */
void pv_judge_set_hook(struct pv_judge *j, void (*hook)(enum pv_judge_point point));

/* What the judge tells an observer (the appender's metrics): each durable
 * verdict by audit status ("appended", "rejected") and the time of each
 * step ("append": the event store's appends; "audit": the verdicts written
 * and the unit committed).  Any member may be NULL. */
struct pv_judge_observer {
	void (*verdict)(void *ctx, const char *status);
	void (*latency)(void *ctx, const char *step, double seconds);
	void *ctx;
};
void pv_judge_observe(struct pv_judge *j, const struct pv_judge_observer *o);

/* What the committed units held, since pv_judge_new. */
struct pv_judge_stats {
	unsigned long long units;    /* committed */
	unsigned long long messages; /* in them */
	unsigned long long streams;  /* streams appended to, summed over the units */
	unsigned long long appended; /* events appended */
};
void pv_judge_get_stats(const struct pv_judge *j, struct pv_judge_stats *out);

/* Judges n messages as one unit of work: in order, each with its own
 * verdict as if judged one by one.  PV_OK: every action is set and the
 * verdicts are durable.  Anything else: no verdict was recorded (events may
 * have been appended where the store has no transaction), every message is
 * now suspect; judge them one at a time with pv_judge_one. */
enum pv_err pv_judge_batch(struct pv_judge *j, struct pv_judge_msg *msgs, size_t n,
			   struct pv_error *err);

/* The same in two steps, for a caller that decodes the next batch while
 * the judge works on this one.  pv_judge_decode needs no judge: it may run
 * on another thread than the judge, on messages that stay borrowed until
 * the decoded batch is cleared or decoded again.  pv_judge_run judges a
 * decoded batch once, as pv_judge_batch does; then
 * pv_judge_decoded_clear lets the decoded values go. */
struct pv_judge_decoded;
struct pv_judge_decoded *pv_judge_decoded_new(void);
void pv_judge_decoded_free(struct pv_judge_decoded *d);
void pv_judge_decode(struct pv_judge_decoded *d, struct pv_judge_msg *msgs, size_t n);
enum pv_err pv_judge_run(struct pv_judge *j, struct pv_judge_decoded *d, struct pv_error *err);
void pv_judge_decoded_clear(struct pv_judge_decoded *d);

/* A batch of one, until it has its verdict: a version conflict (another
 * writer) is settled by reading on and judging again.  Sets m->action; for
 * PV_JUDGE_RETRY err says what failed. */
void pv_judge_one(struct pv_judge *j, struct pv_judge_msg *m, struct pv_error *err);

#endif
