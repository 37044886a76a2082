/* The judge: one algorithm for every event store.
 *
 * A batch of messages is one unit of work of the store (eventstore.h):
 * decoded, judged in order against the cached aggregates, each accepted
 * event folded in at once so the next one sees it, then handed to the
 * store: one append request per stream of the batch (its accepted events,
 * with the version they were checked against), a check of the streams whose
 * rejections were judged on the cache, and the verdicts as the unit's sink,
 * committed with the appends where the store has a transaction (postgres)
 * and right after them where it has none (esdb).  One message is a batch
 * of one.
 *
 * State: a bounded LRU cache of Election aggregates, one per election id,
 * each with the stream version it has folded.  The cache is only a guess
 * of the stream: every append names the version the check ran against, so
 * a stale entry (another appender wrote meanwhile) fails the unit with
 * PV_ERR_CONFLICT.  A rejection meets no expected version, so the
 * elections whose rejections were judged on the cache alone are checked
 * against the store in the same unit (batch_verify).  Stale entries come
 * from a failover between appenders (single active consumer) and from
 * streams written or deleted by hand.  A unit that fails drops the cache
 * entries it touched; the caller then judges its messages one at a time
 * (pv_judge_one), each reading its stream again, which settles conflicts by
 * reading on.
 *
 * Idempotency, by event id, in this order:
 *   1. a verdict in the log: it is durable already, ack;
 *   2. the id in the stream (searched when the message is "suspect", i.e.
 *      redelivered or retried here, and seen while reading the stream):
 *      record "appended" with its number, never re-check it, so it can
 *      never become a rejection;
 *   3. otherwise judge, and append with the expected version.
 * Where the store has no transaction, a crash between the appends and the
 * verdicts leaves appended events without a verdict: the redelivery is
 * suspect and takes path 2; a failed unit drops the cache, so the one-by-
 * one pass reads each stream from its start and finds them too.
 *
 * Deleted streams: a stream deleted by hand since the cache read it
 * (soft: not found) starts its election from nothing; appended again with
 * expected -1 its numbers go on from its last one (the store says so:
 * `continued`), and the verdicts carry the numbers the store gave.  A
 * stream deleted for good is the verdict stream_deleted. */
#define _POSIX_C_SOURCE 200809L

#include "judge.h"
#include "audit.h"
#include "buf.h"
#include "domain/election.h"
#include "domain/event.h"
#include "domain/stream.h"
#include "log.h"
#include "lru.h"
#include "pgutil.h"
#include "recorded.h"
#include "xalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define READ_PAGE 500
/* Conflicts in a row before giving the message back for a later try. */
#define MAX_CONFLICTS 32

struct entry {
	struct pv_lru_node node; /* pinned: used by the batch in hand, not to be evicted */
	char id[PV_ULID_LEN + 1];
	struct pv_election *election;
	int64_t version;     /* last stream number read into election; -1 none */
	bool loaded;         /* has read the stream at least once */
	struct group *group; /* its append in the batch in hand, if any */
	/* The batch in hand: read from the store in it (fresh); a rejection
	 * judged on the cache, to be checked against the store (verify); the
	 * version judged from before its own events (base, once based). */
	bool fresh, verify, based;
	int64_t base;
};

/* The arrays of a batch, kept from one batch to the next: allocating and
 * freeing hundreds of kilobytes per batch made the allocator sweep its
 * small free chunks each time (a tenth of the appender's time). */
struct scratch {
	size_t cap; /* messages the arrays have room for */
	struct group *groups;
	struct entry **touched;
	const char **ids;
	bool *present, *repeated;
	struct pv_audit_entry *rows;
};

struct pv_judge {
	struct pv_es *es;
	struct pv_judge_log *log;
	size_t cap;
	struct pv_lru *cache;
	struct scratch scratch;
	struct pv_judge_decoded *own; /* pv_judge_batch's */
	void (*hook)(enum pv_judge_point point);
	struct pv_judge_stats stats;
	struct pv_judge_observer obs;
};

void pv_judge_observe(struct pv_judge *j, const struct pv_judge_observer *o)
{
	j->obs = *o;
}

static void observe_verdict(struct pv_judge *j, enum pv_audit_status s)
{
	if (j->obs.verdict)
		j->obs.verdict(j->obs.ctx, pv_audit_status_name(s));
}

/* Reports the time since *since as step's, when someone listens. */
static void observe_step(struct pv_judge *j, const char *step, const struct timespec *since)
{
	struct timespec now;

	if (!j->obs.latency)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	j->obs.latency(j->obs.ctx, step,
		       (double)(now.tv_sec - since->tv_sec) +
			       (double)(now.tv_nsec - since->tv_nsec) / 1e9);
}

static void at(struct pv_judge *j, enum pv_judge_point point)
{
	if (j->hook)
		j->hook(point);
}

/* The cache. */

static void entry_free(struct pv_lru_node *node)
{
	struct entry *e = PV_LRU_ENTRY(node, struct entry, node);

	pv_election_free(e->election);
	free(e);
}

static void cache_drop(struct pv_judge *c, struct entry *e)
{
	pv_lru_remove(c->cache, &e->node);
}

/* Back to an election that has no events. */
static void entry_reset(struct entry *e)
{
	pv_election_free(e->election);
	e->election = pv_election_new(e->id);
	e->version = -1;
}

/* The entry of election id, created empty (not loaded) when missing.  Adding
 * one evicts the least recently used past the cache's size, never an entry
 * the batch in hand holds state in (pinned: the cache may grow past its size
 * for a batch). */
static struct entry *cache_get(struct pv_judge *c, const char *id)
{
	struct entry *e = PV_LRU_ENTRY(pv_lru_find(c->cache, id), struct entry, node);

	if (e)
		return e;
	e = pv_xcalloc(1, sizeof *e);
	snprintf(e->id, sizeof e->id, "%s", id);
	e->election = pv_election_new(id);
	e->version = -1;
	pv_lru_put(c->cache, &e->node, e->id);
	return e;
}

static void scratch_free(struct scratch *s)
{
	free(s->groups);
	free(s->touched);
	free(s->ids);
	free(s->present);
	free(s->repeated);
	free(s->rows);
}

struct pv_judge *pv_judge_new(struct pv_es *es, struct pv_judge_log *log, size_t cache_elections)
{
	struct pv_judge *c = pv_xcalloc(1, sizeof *c);

	c->es = es;
	c->log = log;
	c->cap = cache_elections;
	c->cache = pv_lru_new(cache_elections, entry_free);
	c->own = pv_judge_decoded_new();
	return c;
}

void pv_judge_free(struct pv_judge *c)
{
	if (!c)
		return;
	pv_lru_free(c->cache);
	scratch_free(&c->scratch);
	pv_judge_decoded_free(c->own);
	free(c);
}

void pv_judge_get_stats(const struct pv_judge *j, struct pv_judge_stats *out)
{
	*out = j->stats;
}

void pv_judge_set_hook(struct pv_judge *j, void (*hook)(enum pv_judge_point point))
{
	j->hook = hook;
}

/* The event store. */

/* Reads the stream forward from e->version + 1 and folds what it finds.
 * If an event with id `want` goes by, *found is set to its number. */
static enum pv_err catch_up(struct pv_judge *c, struct entry *e, const char *stream,
			    const char *want, int64_t *found, struct pv_error *err)
{
	for (;;) {
		struct pv_es_page page = {0};
		enum pv_err rc = pv_es_read_stream(c->es, stream, e->version + 1, READ_PAGE, false,
						   &page, err);

		if (rc == PV_ERR_NOT_FOUND) {
			/* Deleted (by hand) since it was read: what was folded is
			 * gone.  Not while a batch holds events of its own for it,
			 * which the store has not seen yet. */
			if (e->version >= 0 && !e->group) {
				pv_log_info("judge", "%s was deleted: starting from nothing",
					    stream);
				entry_reset(e);
			}
			e->loaded = true;
			return PV_OK;
		}
		if (rc != PV_OK)
			return pv_error_prefix(err, "read %s", stream);
		for (size_t i = 0; i < page.count; i++) {
			const struct pv_es_event *r = &page.events[i];
			struct pv_error why;
			bool restarted;

			if (r->number <= e->version)
				continue;
			if (want && strcmp(r->id, want) == 0)
				*found = r->number;
			if (pv_recorded_fold(&e->election, r, &restarted, &why) != PV_OK)
				pv_log_warnx("judge", "%s event %" PRId64 " (%s) does not fold: %s",
					     stream, r->number, r->id, why.msg);
			if (restarted)
				pv_log_info("judge", "%s starts again at event %" PRId64, stream,
					    r->number);
			e->version = r->number;
		}
		{
			bool more = page.count > 0 && !page.end_of_stream;
			pv_es_page_clear(&page);
			if (!more)
				break;
		}
	}
	e->loaded = true;
	return PV_OK;
}

/* Searches the whole stream, newest first, for event id; *number = -1
 * when it is not there. */
static enum pv_err stream_find(struct pv_judge *c, const char *stream, const char *id,
			       int64_t *number, struct pv_error *err)
{
	int64_t from = -1;

	*number = -1;
	for (;;) {
		struct pv_es_page page = {0};
		enum pv_err rc =
			pv_es_read_stream(c->es, stream, from, READ_PAGE, true, &page, err);
		bool more;

		if (rc == PV_ERR_NOT_FOUND)
			return PV_OK;
		if (rc != PV_OK)
			return pv_error_prefix(err, "search %s", stream);
		for (size_t i = 0; i < page.count && *number < 0; i++)
			if (strcmp(page.events[i].id, id) == 0)
				*number = page.events[i].number;
		more = *number < 0 && page.count > 0 && !page.end_of_stream && page.next >= 0;
		from = page.next;
		pv_es_page_clear(&page);
		if (!more)
			return PV_OK;
	}
}

/* Verdicts. */

static void entry_from_event(struct pv_audit_entry *a, const struct pv_event *ev,
			     const char *stream, json_t *meta, const char *received)
{
	memset(a, 0, sizeof *a);
	snprintf(a->event_id, sizeof a->event_id, "%s", ev->id);
	a->stream = (char *)stream;
	a->number = -1;
	a->type = (char *)pv_event_type_name(ev->type);
	a->data = ev->data;
	a->metadata = meta;
	a->user = ev->meta.user;
	a->source = ev->meta.source;
	a->correlation_id = ev->meta.correlation_id;
	a->accepted = ev->meta.at;
	a->received = (char *)received;
}

static const enum pv_audit_kind verdict_kinds[] = {
	[PV_VERDICT_ACCEPTED] = PV_AUDIT_KIND_NONE,
	[PV_VERDICT_STATE] = PV_AUDIT_KIND_STATE,
	[PV_VERDICT_VALUE] = PV_AUDIT_KIND_VALUE,
	[PV_VERDICT_AUTHORIZATION] = PV_AUDIT_KIND_AUTHORIZATION,
};

/* What a failure of the event store means for the message. */
static enum pv_judge_action store_failure(enum pv_err code)
{
	switch (code) {
	case PV_ERR_JSON:
	case PV_ERR_INVALID:
	case PV_ERR_TOO_LARGE: return PV_JUDGE_DEAD_LETTER; /* no retry will ever store it */
	default: return PV_JUDGE_RETRY;
	}
}

/* A message of the batch in hand. */
struct item {
	struct pv_judge_msg *m;
	json_t *root;       /* the decoded body while it is needed: a malformed one's */
	struct pv_event ev; /* valid when decoded */
	bool decoded;
	const char *id; /* event id: ev.id, or the malformed body's, or NULL */
	json_t *meta;   /* ev's metadata as JSON, for the store and the audit log */
	char stream[PV_ELECTION_STREAM_SIZE];
	bool audit; /* a row for it goes into the audit statement */
	struct pv_audit_entry row;
	struct group *g; /* its stream's append, when accepted */
};

/* One append request: the accepted events of one stream, in order. */
struct group {
	struct entry *e;
	const char *stream;
	int64_t expected;
	struct pv_es_new_event *events;
	size_t count, cap;
	/* The stream had been soft-deleted: its numbers went on from its last
	 * one, shift past where the batch counted from. */
	bool continued;
	int64_t shift;
};

/* Messages decoded: what depends on no judge's state, so that a batch can
 * be decoded on one thread while the judge works on another. */
struct pv_judge_decoded {
	struct item *items;
	size_t n, cap;
	char received[32]; /* when decoded: the verdicts' received time */
};

struct batch {
	struct item *items; /* the decoded's */
	size_t n;
	struct group *groups;
	size_t ngroups;
	struct entry **touched; /* pinned entries, to unpin or drop at the end */
	size_t ntouched;
	const char *received;
};

static void batch_touch(struct batch *b, struct entry *e)
{
	if (e->node.pinned)
		return;
	e->node.pinned = true;
	e->group = NULL;
	e->fresh = e->verify = e->based = false;
	b->touched[b->ntouched++] = e;
}

static struct group *batch_group(struct batch *b, struct item *it, struct entry *e)
{
	struct group *g = e->group;

	if (g) {
		if (g->count == g->cap) {
			g->cap *= 2;
			g->events = pv_xreallocarray(g->events, g->cap, sizeof *g->events);
		}
		return g;
	}
	g = &b->groups[b->ngroups++];
	g->e = e;
	g->stream = it->stream;
	g->expected = e->version;
	/* Most elections get one or two events of a batch. */
	g->cap = 4;
	g->events = pv_xcalloc(g->cap, sizeof *g->events);
	g->count = 0;
	e->group = g;
	return g;
}

static void item_verdict(struct batch *b, struct item *it, int64_t number, enum pv_audit_kind kind,
			 const char *rule, const char *reason)
{
	entry_from_event(&it->row, &it->ev, it->stream, it->meta, b->received);
	it->row.status = number >= 0 ? PV_AUDIT_APPENDED : PV_AUDIT_REJECTED;
	it->row.number = number;
	it->row.kind = kind;
	it->row.rule = (char *)rule;
	/* The verdict's reason lives in the item: the check's buffer is reused. */
	snprintf(it->m->reason, sizeof it->m->reason, "%s", reason ? reason : "");
	it->row.reason = reason ? it->m->reason : NULL;
	it->audit = true;
	it->m->action = PV_JUDGE_ACK;
}

struct pv_judge_decoded *pv_judge_decoded_new(void)
{
	return pv_xcalloc(1, sizeof(struct pv_judge_decoded));
}

void pv_judge_decoded_clear(struct pv_judge_decoded *d)
{
	for (size_t i = 0; i < d->n; i++) {
		struct item *it = &d->items[i];

		if (it->decoded)
			pv_event_clear(&it->ev);
		json_decref(it->meta);
		json_decref(it->root);
	}
	d->n = 0;
}

void pv_judge_decoded_free(struct pv_judge_decoded *d)
{
	if (!d)
		return;
	pv_judge_decoded_clear(d);
	free(d->items);
	free(d);
}

/* Decodes msgs into items; poison is settled here (dead letter, with a
 * "malformed" row when it names a valid event id). */
void pv_judge_decode(struct pv_judge_decoded *d, struct pv_judge_msg *msgs, size_t n)
{
	pv_judge_decoded_clear(d);
	if (n > d->cap) {
		d->items = pv_xreallocarray(d->items, n, sizeof *d->items);
		d->cap = n;
	}
	memset(d->items, 0, n * sizeof *d->items);
	d->n = n;
	pv_rfc3339_now(d->received);
	for (size_t i = 0; i < n; i++) {
		struct item *it = &d->items[i];
		struct pv_judge_msg *m = &msgs[i];
		json_error_t jerr;
		struct pv_error why;

		it->m = m;
		m->reason[0] = '\0';
		it->root = json_loadb(m->body, m->len, JSON_REJECT_DUPLICATES, &jerr);
		if (!it->root) {
			snprintf(m->reason, sizeof m->reason, "not JSON: %s (line %d, column %d)",
				 jerr.text, jerr.line, jerr.column);
			m->action = PV_JUDGE_DEAD_LETTER;
			continue;
		}
		if (pv_event_from_json(it->root, &it->ev, &why) != PV_OK) {
			const char *id = json_string_value(json_object_get(it->root, "event_id"));

			snprintf(m->reason, sizeof m->reason, "%s", why.msg);
			m->action = PV_JUDGE_DEAD_LETTER;
			if (!id || !pv_uuid_valid(id))
				continue;
			it->id = id;
			memset(&it->row, 0, sizeof it->row);
			snprintf(it->row.event_id, sizeof it->row.event_id, "%s", id);
			it->row.number = -1;
			it->row.type = (char *)json_string_value(json_object_get(it->root, "type"));
			it->row.data = json_object_get(it->root, "data");
			it->row.metadata = json_object_get(it->root, "metadata");
			it->row.received = d->received;
			it->row.status = PV_AUDIT_REJECTED;
			it->row.kind = PV_AUDIT_KIND_MALFORMED;
			it->row.rule = "malformed_message";
			it->row.reason = m->reason;
			it->audit = true;
			continue;
		}
		/* The event holds copies of what it needs: a batch decoded
		 * ahead of its turn weighs half as much without the tree. */
		json_decref(it->root);
		it->root = NULL;
		it->decoded = true;
		it->id = it->ev.id;
		it->meta = pv_event_meta_to_json(&it->ev.meta);
		pv_election_stream(it->stream, pv_event_election_id(&it->ev));
	}
}

/* Judges one decoded event against its election, in batch order. */
static enum pv_err batch_judge(struct pv_judge *c, struct batch *b, struct item *it,
			       struct pv_error *err)
{
	struct pv_verdict verdict;
	enum pv_verdict_kind kind;
	struct pv_error why;
	struct entry *e;
	struct group *g;
	int64_t found = -1;
	enum pv_err rc;

	e = cache_get(c, pv_event_election_id(&it->ev));
	batch_touch(b, e);
	if (!e->loaded && !it->m->suspect && it->ev.type == PV_EV_ELECTION_CREATED) {
		/* A new election's stream does not exist yet: taken as read, which
		 * spares a read per new election.  Checked all the same: the
		 * append expects no stream, and a rejection is verified. */
		e->loaded = true;
		e->fresh = false;
	} else if (!e->loaded || it->m->suspect) {
		rc = catch_up(c, e, it->stream, it->id, &found, err);
		if (rc == PV_ERR_GONE) {
			item_verdict(b, it, -1, PV_AUDIT_KIND_STATE, "stream_deleted",
				     "the election's stream was deleted");
			return PV_OK;
		}
		if (rc != PV_OK)
			return rc;
		e->fresh = true;
	}
	if (!e->based) {
		e->base = e->version;
		e->based = true;
	}
	/* Appends and audit rows commit together here, so only a message
	 * that may have been handled before (by an older run, or the esdb
	 * path) can be in the stream without a row. */
	if (it->m->suspect && found < 0) {
		rc = stream_find(c, it->stream, it->id, &found, err);
		if (rc != PV_OK)
			return rc;
	}
	if (found >= 0) {
		item_verdict(b, it, found, PV_AUDIT_KIND_NONE, NULL, NULL);
		return PV_OK;
	}
	kind = pv_election_check(e->election, &it->ev, &verdict);
	if (kind != PV_VERDICT_ACCEPTED) {
		/* Judged on the cache: batch_verify checks it was current. */
		e->verify |= !e->fresh;
		item_verdict(b, it, -1, verdict_kinds[kind],
			     verdict.rule ? verdict.rule : "rejected", verdict.reason);
		return PV_OK;
	}
	g = batch_group(b, it, e);
	it->g = g;
	g->events[g->count++] = (struct pv_es_new_event){
		.id = it->ev.id,
		.type = pv_event_type_name(it->ev.type),
		.data = it->ev.data,
		.metadata = it->meta,
	};
	if (pv_election_apply(e->election, &it->ev, e->version + 1, &why) != PV_OK)
		pv_log_warnx("judge", "%s: %s", it->stream, why.msg);
	e->version++;
	item_verdict(b, it, e->version, PV_AUDIT_KIND_NONE, NULL, NULL);
	return PV_OK;
}

static int by_id_then_place(const void *a, const void *b)
{
	const struct item *x = *(const struct item *const *)a, *y = *(const struct item *const *)b;
	int d = strcasecmp(x->id, y->id);

	return d ? d : (x < y ? -1 : x > y);
}

/* repeated[i]: the id of item i came earlier in the batch, whose first
 * copy decides.  Sorted, not compared pairwise: batches are large. */
static void mark_repeats(const struct batch *b, bool *repeated)
{
	const struct item **by_id = pv_xcalloc(b->n, sizeof *by_id);
	size_t n = 0;

	for (size_t i = 0; i < b->n; i++)
		if (b->items[i].id)
			by_id[n++] = &b->items[i];
	qsort(by_id, n, sizeof *by_id, by_id_then_place);
	for (size_t i = 1; i < n; i++)
		if (strcasecmp(by_id[i - 1]->id, by_id[i]->id) == 0)
			repeated[by_id[i] - b->items] = true;
	free(by_id);
}

/* A rejection is final and, unlike an append, meets no expected version
 * in the store: the elections whose rejections were judged on the cache
 * alone, and that append nothing in this batch (an append's expected
 * version checks the rest), must still be at the version the cache knew.
 * One statement for all of them; a stale one is a conflict: the batch is
 * rolled back and its messages handled again from the stream. */
static enum pv_err batch_verify(struct pv_judge *c, struct batch *b, struct pv_error *err)
{
	struct pv_es_expect *x = NULL;
	char(*names)[PV_ELECTION_STREAM_SIZE] = NULL;
	size_t n = 0, failed;
	enum pv_err rc;

	for (size_t i = 0; i < b->ntouched; i++) {
		const struct entry *e = b->touched[i];

		if (!e->verify || e->group)
			continue;
		if (!x) {
			x = pv_xcalloc(b->ntouched, sizeof *x);
			names = pv_xcalloc(b->ntouched, sizeof *names);
		}
		pv_election_stream(names[n], e->id);
		x[n] = (struct pv_es_expect){.stream = names[n], .version = e->base};
		n++;
	}
	if (n == 0)
		return PV_OK;
	rc = pv_es_check_versions(c->es, x, n, &failed, err);
	if (rc == PV_ERR_CONFLICT)
		pv_log_info("judge", "%s changed behind the cache: judging the batch again",
			    x[failed].stream);
	free(x);
	free(names);
	return rc;
}

static enum pv_err batch_append(struct pv_judge *c, struct batch *b, struct pv_error *err)
{
	struct pv_es_append_req *reqs;
	struct timespec t0;
	size_t failed;
	enum pv_err rc;

	if (b->ngroups == 0)
		return PV_OK;
	reqs = pv_xcalloc(b->ngroups, sizeof *reqs);
	for (size_t i = 0; i < b->ngroups; i++)
		reqs[i] = (struct pv_es_append_req){
			.stream = b->groups[i].stream,
			.expected = b->groups[i].expected,
			.events = b->groups[i].events,
			.count = b->groups[i].count,
		};
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = pv_es_append_many(c->es, reqs, b->ngroups, &failed, err);
	observe_step(c, "append", &t0);
	for (size_t i = 0; i < b->ngroups && rc == PV_OK; i++) {
		struct group *g = &b->groups[i];

		if (reqs[i].continued) {
			g->continued = true;
			g->shift = reqs[i].version - (g->expected + (int64_t)g->count);
			pv_log_info("judge",
				    "%s had been deleted: its numbering goes on at %" PRId64,
				    g->stream, g->expected + 1 + g->shift);
		} else if (reqs[i].version != g->expected + (int64_t)g->count)
			rc = pv_error_set(err, PV_ERR_CONFLICT,
					  "%s: appended up to %" PRId64 ", expected %" PRId64,
					  g->stream, reqs[i].version,
					  g->expected + (int64_t)g->count);
	}
	free(reqs);
	return rc;
}

static enum pv_err batch_run(struct pv_judge *c, struct batch *b, struct pv_error *err)
{
	const char **ids = c->scratch.ids;
	bool *present = c->scratch.present, *repeated = c->scratch.repeated;
	struct pv_audit_entry *rows = c->scratch.rows;
	struct timespec t0;
	size_t nrows = 0;
	enum pv_err rc;

	for (size_t i = 0; i < b->n; i++)
		ids[i] = b->items[i].id;
	mark_repeats(b, repeated);
	c->log->rows = NULL;
	c->log->nrows = 0;
	rc = pv_es_begin(c->es, &c->log->sink, err);
	if (rc != PV_OK)
		return rc;
	rc = c->log->present(c->log, ids, b->n, present, err);
	for (size_t i = 0; i < b->n && rc == PV_OK; i++) {
		struct item *it = &b->items[i];
		bool again = present[i] || repeated[i];

		if (again) {
			it->audit = false;
			if (it->decoded)
				it->m->action = PV_JUDGE_ACK;
			continue;
		}
		if (it->decoded)
			rc = batch_judge(c, b, it, err);
	}
	if (rc == PV_OK)
		rc = batch_verify(c, b, err);
	if (rc == PV_OK)
		rc = batch_append(c, b, err);
	if (rc != PV_OK) {
		pv_es_rollback(c->es);
		return rc;
	}
	at(c, PV_JUDGE_AFTER_APPEND);
	for (size_t i = 0; i < b->n; i++) {
		struct item *it = &b->items[i];

		if (it->g && it->row.number >= 0)
			it->row.number += it->g->shift;
		if (it->audit)
			rows[nrows++] = it->row;
	}
	c->log->rows = rows;
	c->log->nrows = nrows;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = pv_es_commit(c->es, err);
	c->log->rows = NULL;
	c->log->nrows = 0;
	if (rc == PV_OK) {
		observe_step(c, "audit", &t0);
		for (size_t i = 0; i < nrows; i++)
			observe_verdict(c, rows[i].status);
		at(c, PV_JUDGE_AFTER_RECORD);
	}
	return rc;
}

/* Room for n messages, cleared. */
static void scratch_reserve(struct scratch *s, size_t n)
{
	if (n > s->cap) {
		s->groups = pv_xreallocarray(s->groups, n, sizeof *s->groups);
		s->touched = pv_xreallocarray(s->touched, n, sizeof *s->touched);
		s->ids = pv_xreallocarray(s->ids, n, sizeof *s->ids);
		s->present = pv_xreallocarray(s->present, n, sizeof *s->present);
		s->repeated = pv_xreallocarray(s->repeated, n, sizeof *s->repeated);
		s->rows = pv_xreallocarray(s->rows, n, sizeof *s->rows);
		s->cap = n;
	}
	memset(s->groups, 0, n * sizeof *s->groups);
	memset(s->touched, 0, n * sizeof *s->touched);
	memset(s->ids, 0, n * sizeof *s->ids);
	memset(s->present, 0, n * sizeof *s->present);
	memset(s->repeated, 0, n * sizeof *s->repeated);
	memset(s->rows, 0, n * sizeof *s->rows);
}

enum pv_err pv_judge_run(struct pv_judge *c, struct pv_judge_decoded *d, struct pv_error *err)
{
	struct batch b;
	size_t n = d->n, appended = 0;
	enum pv_err rc;

	memset(&b, 0, sizeof b);
	b.n = n;
	b.items = d->items;
	b.received = d->received;
	scratch_reserve(&c->scratch, n);
	b.groups = c->scratch.groups;
	b.touched = c->scratch.touched;
	rc = batch_run(c, &b, err);
	/* A store without transactions may have taken some of the appends,
	 * which a read of their streams may fold into the cache before their
	 * own turn comes: from now on each looks for itself first. */
	if (rc != PV_OK)
		for (size_t i = 0; i < n; i++)
			b.items[i].m->suspect = true;
	for (size_t i = 0; i < b.ntouched; i++) {
		const struct group *g = b.touched[i]->group;

		b.touched[i]->node.pinned = false;
		b.touched[i]->group = NULL;
		/* Uncommitted state, folded with other numbers than the stream's,
		 * or no cache wanted. */
		if (rc != PV_OK || (g && g->continued) || c->cap == 0)
			cache_drop(c, b.touched[i]);
	}
	for (size_t i = 0; i < b.ngroups; i++) {
		appended += b.groups[i].count;
		free(b.groups[i].events);
	}
	for (size_t i = 0; i < n; i++) {
		struct item *it = &b.items[i];

		if (rc == PV_OK && it->decoded && it->row.status == PV_AUDIT_REJECTED && it->audit)
			pv_log_info("judge", "%s %s on %s rejected: %s: %s", it->id,
				    pv_event_type_name(it->ev.type), it->stream, it->row.rule,
				    it->m->reason);
		/* The verdict's reason is not a dead letter's. */
		if (it->m->action != PV_JUDGE_DEAD_LETTER)
			it->m->reason[0] = '\0';
	}
	if (rc == PV_OK) {
		pv_log_debug("judge", "batch of %zu: %zu appended in %zu stream request(s)", n,
			     appended, b.ngroups);
		c->stats.units++;
		c->stats.messages += n;
		c->stats.streams += b.ngroups;
		c->stats.appended += appended;
	}
	return rc;
}

enum pv_err pv_judge_batch(struct pv_judge *c, struct pv_judge_msg *msgs, size_t n,
			   struct pv_error *err)
{
	enum pv_err rc;

	pv_judge_decode(c->own, msgs, n);
	rc = pv_judge_run(c, c->own, err);
	pv_judge_decoded_clear(c->own);
	return rc;
}

void pv_judge_one(struct pv_judge *c, struct pv_judge_msg *m, struct pv_error *err)
{
	enum pv_err rc = PV_OK;

	for (int conflicts = 0; conflicts < MAX_CONFLICTS; conflicts++) {
		rc = pv_judge_batch(c, m, 1, err);
		if (rc == PV_OK)
			return;
		/* Another writer, or a stream deleted for good: read again. */
		if (rc != PV_ERR_CONFLICT && rc != PV_ERR_GONE)
			break;
	}
	if (rc == PV_ERR_CONFLICT)
		pv_error_set(err, PV_ERR_CONFLICT, "%d version conflicts in a row", MAX_CONFLICTS);
	m->action = store_failure(rc);
	if (m->action == PV_JUDGE_DEAD_LETTER)
		snprintf(m->reason, sizeof m->reason, "event store refused the event: %s",
			 err->msg);
}

/* The audit log as the judge's log. */

/* The most COPY text kept between units. */
#define AUDIT_COPY_KEEP_MAX (16u << 20)

struct audit_log {
	struct pv_judge_log base;
	char *conninfo;
	PGconn *own;        /* for stores that share no connection */
	PGconn *conn;       /* of the unit in hand: the store's or own */
	struct pv_buf copy; /* the rows as COPY text, kept to spare the allocator */
};

static struct audit_log *audit_of(struct pv_es_sink *sink)
{
	return (struct audit_log *)sink;
}

static enum pv_err audit_begin(struct pv_es_sink *sink, struct pg_conn *shared,
			       struct pv_error *err)
{
	struct audit_log *a = audit_of(sink);
	enum pv_err rc;

	a->conn = shared;
	if (shared)
		return PV_OK;
	rc = a->own ? pv_pg_ensure(a->own, err) : pv_pg_connect(a->conninfo, &a->own, err);
	if (rc != PV_OK)
		return pv_error_prefix(err, "audit log");
	a->conn = a->own;
	return PV_OK;
}

static enum pv_err audit_write(struct pv_es_sink *sink, struct pv_error *err)
{
	struct audit_log *a = audit_of(sink);

	return pv_audit_insert_new(a->conn, a->base.rows, a->base.nrows, &a->copy, err);
}

static void audit_end(struct pv_es_sink *sink, bool committed)
{
	struct audit_log *a = audit_of(sink);

	(void)committed;
	a->conn = NULL;
	/* Room for a usual batch is worth keeping; for one of huge events not. */
	if (a->copy.cap > AUDIT_COPY_KEEP_MAX)
		pv_buf_free(&a->copy);
}

static enum pv_err audit_present(struct pv_judge_log *log, const char *const *ids, size_t n,
				 bool *present, struct pv_error *err)
{
	return pv_audit_present(((struct audit_log *)log)->conn, ids, n, present, err);
}

static const struct pv_es_sink_ops audit_sink_ops = {
	.begin = audit_begin,
	.write = audit_write,
	.end = audit_end,
};

struct pv_judge_log *pv_judge_audit_log_new(const char *conninfo)
{
	struct audit_log *a = pv_xcalloc(1, sizeof *a);

	a->base.sink.ops = &audit_sink_ops;
	a->base.present = audit_present;
	a->conninfo = pv_xstrdup(conninfo);
	return &a->base;
}

void pv_judge_audit_log_free(struct pv_judge_log *log)
{
	struct audit_log *a = (struct audit_log *)log;

	if (!a)
		return;
	if (a->own)
		PQfinish(a->own);
	pv_buf_free(&a->copy);
	free(a->conninfo);
	free(a);
}
