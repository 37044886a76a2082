/* The appender's core: one message in, one verdict out, made durable in
 * the event store and the audit log before the caller may ack.
 *
 * State: a bounded LRU cache of Election aggregates, one per election id,
 * each with the stream version it has folded.  The cache is only a guess
 * of the stream: every append names the version the check ran against, so
 * a stale entry (another appender wrote meanwhile) gets PV_ERR_CONFLICT,
 * reads the stream forward from its version and checks again.  A rejection
 * meets no expected version, so before one is recorded the entry is checked
 * against the store: read on (one message at a time), or one statement for
 * the batch's elections that were judged on the cache (batch_verify).
 * Stale entries come from a failover between appenders (single active
 * consumer) and from streams deleted or written by hand.
 *
 * Idempotency, by event id, in this order:
 *   1. a row in the audit log: the verdict is already durable, ack;
 *   2. the id in the stream (searched when the message is "suspect", i.e.
 *      redelivered or retried here, and before any rejection, and seen
 *      while reading forward after a conflict): record "appended" with its
 *      number, never re-check it, so it can never become a rejection;
 *   3. otherwise check and append with the expected version.
 * With the esdb backend the audit row is written after the append (no
 * shared transaction), so a crash in between leaves an appended event
 * without a row: the redelivery takes path 2.
 *
 * With the postgres backend (pv_appender_core_batches) messages are handled
 * in batches, one transaction each (pv_es_pg_begin): the batch is judged in
 * order against the cached aggregates, each accepted event folded in at
 * once so the next one sees it; then one append for all streams of the
 * batch (pv_es_pg_append_many: each stream's accepted events with the
 * version they were checked against, a handful of statements however many
 * elections the batch touches), one statement of audit rows, commit.
 * Nothing of a batch is durable before the commit, so a crash anywhere
 * leaves it for the redelivery.  A failure (a version
 * conflict: another appender wrote; a server down) rolls the batch back,
 * drops the cache entries it touched, and the caller handles the messages
 * one by one, each a batch of one, which settles conflicts by reading on. */
#define _POSIX_C_SOURCE 200809L

#include "appender.h"
#include "audit.h"
#include "buf.h"
#include "domain/election.h"
#include "domain/event.h"
#include "eventstore/pg.h"
#include "log.h"
#include "lru.h"
#include "recorded.h"
#include "pgutil.h"
#include "xalloc.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define STREAM_PREFIX "Election-"
#define READ_PAGE 500
/* The most COPY text kept between batches. */
#define SCRATCH_COPY_MAX (16u << 20)
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
	struct item *items;
	struct group *groups;
	struct entry **touched;
	const char **ids;
	bool *present, *repeated;
	struct pv_audit_entry *rows;
	struct pv_buf copy; /* the audit rows as COPY text */
};

struct pv_appender_core {
	struct pv_es *es;
	char *conninfo;
	PGconn *pg;
	size_t cap;
	struct pv_lru *cache;
	struct scratch scratch;
	struct pv_appender_observer obs; /* metrics (appender_metrics.c) */
};

void pv_appender_core_observe(struct pv_appender_core *c, const struct pv_appender_observer *o)
{
	c->obs = *o;
}

/* The observer's calls, for the metrics: a durable verdict, a step's time. */
static void observe_verdict(struct pv_appender_core *c, enum pv_audit_status s)
{
	if (c->obs.verdict)
		c->obs.verdict(c->obs.ctx, pv_audit_status_name(s));
}

static void observe_step(struct pv_appender_core *c, const char *step, struct timespec *since)
{
	struct timespec now;

	if (!c->obs.latency)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	c->obs.latency(c->obs.ctx, step,
		       (double)(now.tv_sec - since->tv_sec) +
			       (double)(now.tv_nsec - since->tv_nsec) / 1e9);
}

/* Fault points. */

static const char *const fault_names[] = {
	[PV_FAULT_NONE] = "none",
	[PV_FAULT_AFTER_APPEND] = "after_append",
	[PV_FAULT_AFTER_AUDIT] = "after_audit",
	[PV_FAULT_BEFORE_ACK] = "before_ack",
};
static enum pv_appender_fault fault_point = PV_FAULT_NONE;
static long fault_countdown;

enum pv_err pv_appender_fault_parse(const char *spec, struct pv_error *err)
{
	const char *colon;
	size_t len;
	long n = 1;

	fault_point = PV_FAULT_NONE;
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
			fault_point = (enum pv_appender_fault)i;
			fault_countdown = n;
			return PV_OK;
		}
	}
	return pv_error_set(
		err, PV_ERR_CONFIG,
		"PHOTOVOTE_FAULT: \"%s\" is not after_append, after_audit or before_ack", spec);
}

void pv_appender_fault(enum pv_appender_fault point)
{
	if (point != fault_point || fault_point == PV_FAULT_NONE)
		return;
	if (--fault_countdown > 0)
		return;
	pv_log_warnx("fault", "PHOTOVOTE_FAULT: killing myself at %s", fault_names[point]);
	kill(getpid(), SIGKILL);
}

/* The cache. */

static void entry_free(struct pv_lru_node *node)
{
	struct entry *e = PV_LRU_ENTRY(node, struct entry, node);

	pv_election_free(e->election);
	free(e);
}

static void cache_drop(struct pv_appender_core *c, struct entry *e)
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
static struct entry *cache_get(struct pv_appender_core *c, const char *id)
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
	free(s->items);
	free(s->groups);
	free(s->touched);
	free(s->ids);
	free(s->present);
	free(s->repeated);
	free(s->rows);
	pv_buf_free(&s->copy);
}

struct pv_appender_core *pv_appender_core_new(struct pv_es *es, const char *pg_conninfo,
					      size_t cache_elections)
{
	struct pv_appender_core *c = pv_xcalloc(1, sizeof *c);

	c->es = es;
	c->conninfo = pv_xstrdup(pg_conninfo);
	c->cap = cache_elections;
	c->cache = pv_lru_new(cache_elections, entry_free);
	return c;
}

void pv_appender_core_free(struct pv_appender_core *c)
{
	if (!c)
		return;
	pv_lru_free(c->cache);
	scratch_free(&c->scratch);
	if (c->pg)
		PQfinish(c->pg);
	free(c->conninfo);
	free(c);
}

/* The event store. */

/* Reads the stream forward from e->version + 1 and folds what it finds.
 * If an event with id `want` goes by, *found is set to its number. */
static enum pv_err catch_up(struct pv_appender_core *c, struct entry *e, const char *stream,
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
				pv_log_info("appender", "%s was deleted: starting from nothing",
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
				pv_log_warnx("appender",
					     "%s event %" PRId64 " (%s) does not fold: %s", stream,
					     r->number, r->id, why.msg);
			if (restarted)
				pv_log_info("appender", "%s starts again at event %" PRId64, stream,
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
static enum pv_err stream_find(struct pv_appender_core *c, const char *stream, const char *id,
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

/* The audit log. */

static enum pv_err pg_ready(struct pv_appender_core *c, struct pv_error *err)
{
	if (!c->pg)
		return pv_pg_connect(c->conninfo, &c->pg, err);
	return pv_pg_ensure(c->pg, err);
}

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

static enum pv_err record(struct pv_appender_core *c, const struct pv_event *ev, const char *stream,
			  json_t *meta, const char *received, int64_t number,
			  enum pv_audit_kind kind, const char *rule, const char *reason,
			  struct pv_error *err)
{
	struct pv_audit_entry a;
	struct timespec t0;
	bool inserted;
	enum pv_err rc;

	entry_from_event(&a, ev, stream, meta, received);
	a.status = number >= 0 ? PV_AUDIT_APPENDED : PV_AUDIT_REJECTED;
	a.number = number;
	a.kind = kind;
	a.rule = (char *)rule;
	a.reason = (char *)reason;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = pv_audit_record(c->pg, &a, &inserted, err);
	if (rc != PV_OK)
		return pv_error_prefix(err, "event %s", ev->id);
	observe_step(c, "audit", &t0);
	if (inserted)
		observe_verdict(c, a.status);
	if (number >= 0)
		pv_log_debug("appender", "%s %s appended as %s #%" PRId64 "%s", ev->id, a.type,
			     stream, number, inserted ? "" : " (already recorded)");
	else
		pv_log_info("appender", "%s %s on %s rejected: %s: %s%s", ev->id, a.type, stream,
			    rule, reason ? reason : "", inserted ? "" : " (already recorded)");
	return PV_OK;
}

/* What a failure of the event store means for the message. */
static enum pv_appender_action store_failure(enum pv_err code)
{
	switch (code) {
	case PV_ERR_JSON:
	case PV_ERR_INVALID:
	case PV_ERR_TOO_LARGE: return PV_APPENDER_DEAD_LETTER; /* no retry will ever store it */
	default: return PV_APPENDER_RETRY;
	}
}

static enum pv_appender_action done(enum pv_err rc)
{
	return rc == PV_OK ? PV_APPENDER_ACK : PV_APPENDER_RETRY;
}

static enum pv_appender_action handle_event(struct pv_appender_core *c, const struct pv_event *ev,
					    bool suspect, const char *received, char *reason,
					    size_t reason_size, struct pv_error *err)
{
	char stream[sizeof STREAM_PREFIX + PV_ULID_LEN];
	struct pv_audit_entry old;
	struct pv_es_new_event ne;
	struct pv_verdict verdict;
	struct entry *e;
	bool searched = false, fresh = false;
	int64_t found = -1;
	json_t *meta = NULL;
	enum pv_err rc;

	if ((rc = pg_ready(c, err)) != PV_OK)
		return PV_APPENDER_RETRY;
	rc = pv_audit_get(c->pg, ev->id, &old, err);
	if (rc == PV_OK) {
		pv_log_debug("appender", "%s already %s", ev->id, pv_audit_status_name(old.status));
		pv_audit_entry_clear(&old);
		return PV_APPENDER_ACK;
	}
	if (rc != PV_ERR_NOT_FOUND)
		return PV_APPENDER_RETRY;

	snprintf(stream, sizeof stream, STREAM_PREFIX "%s", pv_event_election_id(ev));
	meta = pv_event_meta_to_json(&ev->meta);
	e = cache_get(c, pv_event_election_id(ev));
	if (!e->loaded || suspect) {
		rc = catch_up(c, e, stream, ev->id, &found, err);
		if (rc != PV_OK)
			goto fail;
		fresh = true;
	}
	if (suspect && found < 0) {
		rc = stream_find(c, stream, ev->id, &found, err);
		if (rc != PV_OK)
			goto fail;
		searched = true;
	}
	ne = (struct pv_es_new_event){
		.id = ev->id,
		.type = pv_event_type_name(ev->type),
		.data = ev->data,
		.metadata = meta,
	};
	for (int conflicts = 0; conflicts < MAX_CONFLICTS; conflicts++) {
		int64_t version = -1;
		struct timespec t0;
		enum pv_verdict_kind kind;

		if (found >= 0) {
			rc = record(c, ev, stream, meta, received, found, PV_AUDIT_KIND_NONE, NULL,
				    NULL, err);
			goto out;
		}
		kind = pv_election_check(e->election, ev, &verdict);
		if (kind != PV_VERDICT_ACCEPTED) {
			/* A rejection is final, and unlike an append no expected
			 * version checks it: judge it on the stream as it is, not
			 * on the cache, which misses what another appender (after
			 * a failover) or an operator wrote. */
			if (!fresh) {
				int64_t before = e->version;

				rc = catch_up(c, e, stream, ev->id, &found, err);
				if (rc != PV_OK)
					goto fail;
				fresh = true;
				if (found >= 0 || e->version != before)
					continue;
			}
			/* Never turn an event that is in the stream into a
			 * rejection: look before recording one. */
			if (!searched) {
				rc = stream_find(c, stream, ev->id, &found, err);
				if (rc != PV_OK)
					goto fail;
				searched = true;
				if (found >= 0)
					continue;
			}
			rc = record(c, ev, stream, meta, received, -1, verdict_kinds[kind],
				    verdict.rule ? verdict.rule : "rejected", verdict.reason, err);
			goto out;
		}
		clock_gettime(CLOCK_MONOTONIC, &t0);
		rc = pv_es_append(c->es, stream, e->version, &ne, 1, &version, err);
		observe_step(c, "append", &t0);
		if (rc == PV_OK) {
			pv_appender_fault(PV_FAULT_AFTER_APPEND);
			if (version == e->version + 1) {
				struct pv_error why;
				if (pv_election_apply(e->election, ev, version, &why) != PV_OK)
					pv_log_warnx("appender", "%s: %s", stream, why.msg);
				e->version = version;
			} else {
				/* An idempotent re-append at an older position:
				 * the cache no longer knows where it is. */
				cache_drop(c, e);
				e = NULL;
			}
			rc = record(c, ev, stream, meta, received, version, PV_AUDIT_KIND_NONE,
				    NULL, NULL, err);
			if (rc == PV_OK)
				pv_appender_fault(PV_FAULT_AFTER_AUDIT);
			goto out;
		}
		if (rc == PV_ERR_CONFLICT) {
			pv_log_debug("appender",
				     "%s: expected version %" PRId64 ", now %" PRId64
				     ": reading on",
				     stream, e->version, version);
			rc = catch_up(c, e, stream, ev->id, &found, err);
			if (rc != PV_OK)
				goto fail;
			fresh = true;
			continue;
		}
		if (store_failure(rc) == PV_APPENDER_DEAD_LETTER) {
			snprintf(reason, reason_size, "event store refused the event: %s",
				 err->msg);
			json_decref(meta);
			return PV_APPENDER_DEAD_LETTER;
		}
		goto fail;
	}
	rc = pv_error_set(err, PV_ERR_CONFLICT, "%s: %d version conflicts in a row", stream,
			  MAX_CONFLICTS);
fail:
	/* Deleted for good (read or append): that is the verdict. */
	if (rc == PV_ERR_GONE) {
		rc = record(c, ev, stream, meta, received, -1, PV_AUDIT_KIND_STATE,
			    "stream_deleted", "the election's stream was deleted", err);
		goto out;
	}
	/* Whether the store took it is unknown: start over from the stream. */
	if (e)
		cache_drop(c, e);
	e = NULL;
out:
	if (e && c->cap == 0)
		cache_drop(c, e);
	json_decref(meta);
	return done(rc);
}

/* A message that is not an event.  If it names a valid event id the
 * verdict is recorded too, so that the API can say "rejected" instead of
 * "pending" forever; the message itself goes to the dead letters. */
static enum pv_appender_action malformed(struct pv_appender_core *c, const json_t *root,
					 const char *received, const char *reason,
					 struct pv_error *err)
{
	const char *id = json_string_value(json_object_get(root, "event_id"));
	struct pv_audit_entry a;

	if (!id || !pv_uuid_valid(id))
		return PV_APPENDER_DEAD_LETTER;
	if (pg_ready(c, err) != PV_OK)
		return PV_APPENDER_RETRY;
	memset(&a, 0, sizeof a);
	snprintf(a.event_id, sizeof a.event_id, "%s", id);
	a.number = -1;
	a.type = (char *)json_string_value(json_object_get(root, "type"));
	a.data = json_object_get(root, "data");
	a.metadata = json_object_get(root, "metadata");
	a.received = (char *)received;
	a.status = PV_AUDIT_REJECTED;
	a.kind = PV_AUDIT_KIND_MALFORMED;
	a.rule = "malformed_message";
	a.reason = (char *)reason;
	if (pv_audit_record(c->pg, &a, NULL, err) != PV_OK)
		return store_failure(err->code) == PV_APPENDER_DEAD_LETTER ? PV_APPENDER_DEAD_LETTER
									   : PV_APPENDER_RETRY;
	return PV_APPENDER_DEAD_LETTER;
}

/* Batches (postgres backend). */

bool pv_appender_core_batches(const struct pv_appender_core *c)
{
	return pv_es_is_pg(c->es);
}

/* A message of the batch in hand. */
struct item {
	struct pv_appender_msg *m;
	json_t *root;       /* the decoded body, NULL if not JSON */
	struct pv_event ev; /* valid when decoded */
	bool decoded;
	const char *id; /* event id: ev.id, or the malformed body's, or NULL */
	json_t *meta;   /* ev's metadata as JSON, for the store and the audit log */
	char stream[sizeof STREAM_PREFIX + PV_ULID_LEN];
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

struct batch {
	struct item *items;
	size_t n;
	struct group *groups;
	size_t ngroups;
	struct entry **touched; /* pinned entries, to unpin or drop at the end */
	size_t ntouched;
	char received[32];
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
	it->m->action = PV_APPENDER_ACK;
}

/* Decodes msgs into items; poison is settled here (dead letter, with a
 * "malformed" row when it names a valid event id). */
static void batch_decode(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		struct item *it = &b->items[i];
		struct pv_appender_msg *m = it->m;
		json_error_t jerr;
		struct pv_error why;

		m->reason[0] = '\0';
		it->root = json_loadb(m->body, m->len, JSON_REJECT_DUPLICATES, &jerr);
		if (!it->root) {
			snprintf(m->reason, sizeof m->reason, "not JSON: %s (line %d, column %d)",
				 jerr.text, jerr.line, jerr.column);
			m->action = PV_APPENDER_DEAD_LETTER;
			continue;
		}
		if (pv_event_from_json(it->root, &it->ev, &why) != PV_OK) {
			const char *id = json_string_value(json_object_get(it->root, "event_id"));

			snprintf(m->reason, sizeof m->reason, "%s", why.msg);
			m->action = PV_APPENDER_DEAD_LETTER;
			if (!id || !pv_uuid_valid(id))
				continue;
			it->id = id;
			memset(&it->row, 0, sizeof it->row);
			snprintf(it->row.event_id, sizeof it->row.event_id, "%s", id);
			it->row.number = -1;
			it->row.type = (char *)json_string_value(json_object_get(it->root, "type"));
			it->row.data = json_object_get(it->root, "data");
			it->row.metadata = json_object_get(it->root, "metadata");
			it->row.received = b->received;
			it->row.status = PV_AUDIT_REJECTED;
			it->row.kind = PV_AUDIT_KIND_MALFORMED;
			it->row.rule = "malformed_message";
			it->row.reason = m->reason;
			it->audit = true;
			continue;
		}
		it->decoded = true;
		it->id = it->ev.id;
		it->meta = pv_event_meta_to_json(&it->ev.meta);
		snprintf(it->stream, sizeof it->stream, STREAM_PREFIX "%s",
			 pv_event_election_id(&it->ev));
	}
}

/* Judges one decoded event against its election, in batch order. */
static enum pv_err batch_judge(struct pv_appender_core *c, struct batch *b, struct item *it,
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
	if (!e->loaded || it->m->suspect) {
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
		pv_log_warnx("appender", "%s: %s", it->stream, why.msg);
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
static enum pv_err batch_verify(struct pv_appender_core *c, struct batch *b, struct pv_error *err)
{
	struct pv_es_pg_expect *x = NULL;
	char(*names)[sizeof STREAM_PREFIX + PV_ULID_LEN] = NULL;
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
		snprintf(names[n], sizeof names[n], STREAM_PREFIX "%s", e->id);
		x[n] = (struct pv_es_pg_expect){.stream = names[n], .version = e->base};
		n++;
	}
	if (n == 0)
		return PV_OK;
	rc = pv_es_pg_check_versions(c->es, x, n, &failed, err);
	if (rc == PV_ERR_CONFLICT)
		pv_log_info("appender", "%s changed behind the cache: judging the batch again",
			    x[failed].stream);
	free(x);
	free(names);
	return rc;
}

static enum pv_err batch_run(struct pv_appender_core *c, struct batch *b, struct pv_error *err)
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
	rc = pv_es_pg_begin(c->es, err);
	if (rc != PV_OK)
		goto out;
	rc = pv_audit_present(pv_es_pg_conn(c->es), ids, b->n, present, err);
	for (size_t i = 0; i < b->n && rc == PV_OK; i++) {
		struct item *it = &b->items[i];
		bool again = present[i] || repeated[i];

		if (again) {
			it->audit = false;
			if (it->decoded)
				it->m->action = PV_APPENDER_ACK;
			continue;
		}
		if (it->decoded)
			rc = batch_judge(c, b, it, err);
	}
	if (rc == PV_OK)
		rc = batch_verify(c, b, err);
	if (rc == PV_OK && b->ngroups > 0) {
		struct pv_es_pg_append *appends = pv_xcalloc(b->ngroups, sizeof *appends);
		size_t failed;

		for (size_t i = 0; i < b->ngroups; i++)
			appends[i] = (struct pv_es_pg_append){
				.stream = b->groups[i].stream,
				.expected = b->groups[i].expected,
				.events = b->groups[i].events,
				.count = b->groups[i].count,
			};
		clock_gettime(CLOCK_MONOTONIC, &t0);
		rc = pv_es_pg_append_many(c->es, appends, b->ngroups, &failed, err);
		observe_step(c, "append", &t0);
		for (size_t i = 0; i < b->ngroups && rc == PV_OK; i++) {
			struct group *g = &b->groups[i];

			if (appends[i].continued) {
				g->continued = true;
				g->shift = appends[i].version - (g->expected + (int64_t)g->count);
				pv_log_info(
					"appender",
					"%s had been deleted: its numbering goes on at %" PRId64,
					g->stream, g->expected + 1 + g->shift);
			} else if (appends[i].version != g->expected + (int64_t)g->count)
				rc = pv_error_set(err, PV_ERR_CONFLICT,
						  "%s: appended up to %" PRId64
						  ", expected %" PRId64,
						  g->stream, appends[i].version,
						  g->expected + (int64_t)g->count);
		}
		free(appends);
	}
	if (rc != PV_OK)
		goto out;
	pv_appender_fault(PV_FAULT_AFTER_APPEND);
	for (size_t i = 0; i < b->n; i++) {
		struct item *it = &b->items[i];

		if (it->g && it->row.number >= 0)
			it->row.number += it->g->shift;
		if (it->audit)
			rows[nrows++] = it->row;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = pv_audit_insert_new(pv_es_pg_conn(c->es), rows, nrows, &c->scratch.copy, err);
	if (rc == PV_OK)
		rc = pv_es_pg_commit(c->es, err);
	if (rc == PV_OK) {
		observe_step(c, "audit", &t0);
		for (size_t i = 0; i < nrows; i++)
			observe_verdict(c, rows[i].status);
	}
	pv_appender_fault(PV_FAULT_AFTER_AUDIT);
out:
	if (rc != PV_OK)
		pv_es_pg_rollback(c->es);
	return rc;
}

/* Room for n messages, cleared. */
static void scratch_reserve(struct scratch *s, size_t n)
{
	if (n > s->cap) {
		s->items = pv_xreallocarray(s->items, n, sizeof *s->items);
		s->groups = pv_xreallocarray(s->groups, n, sizeof *s->groups);
		s->touched = pv_xreallocarray(s->touched, n, sizeof *s->touched);
		s->ids = pv_xreallocarray(s->ids, n, sizeof *s->ids);
		s->present = pv_xreallocarray(s->present, n, sizeof *s->present);
		s->repeated = pv_xreallocarray(s->repeated, n, sizeof *s->repeated);
		s->rows = pv_xreallocarray(s->rows, n, sizeof *s->rows);
		s->cap = n;
	}
	memset(s->items, 0, n * sizeof *s->items);
	memset(s->groups, 0, n * sizeof *s->groups);
	memset(s->touched, 0, n * sizeof *s->touched);
	memset(s->ids, 0, n * sizeof *s->ids);
	memset(s->present, 0, n * sizeof *s->present);
	memset(s->repeated, 0, n * sizeof *s->repeated);
	memset(s->rows, 0, n * sizeof *s->rows);
}

enum pv_err pv_appender_core_handle_batch(struct pv_appender_core *c, struct pv_appender_msg *msgs,
					  size_t n, struct pv_error *err)
{
	struct batch b;
	size_t appended = 0;
	enum pv_err rc;

	memset(&b, 0, sizeof b);
	b.n = n;
	scratch_reserve(&c->scratch, n);
	b.items = c->scratch.items;
	b.groups = c->scratch.groups;
	b.touched = c->scratch.touched;
	pv_rfc3339_now(b.received);
	for (size_t i = 0; i < n; i++)
		b.items[i].m = &msgs[i];
	batch_decode(&b);
	rc = batch_run(c, &b, err);
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
			pv_log_info("appender", "%s %s on %s rejected: %s: %s", it->id,
				    pv_event_type_name(it->ev.type), it->stream, it->row.rule,
				    it->m->reason);
		if (it->decoded)
			pv_event_clear(&it->ev);
		json_decref(it->meta);
		json_decref(it->root);
		/* The verdict's reason is not a dead letter's. */
		if (it->m->action != PV_APPENDER_DEAD_LETTER)
			it->m->reason[0] = '\0';
	}
	if (rc == PV_OK)
		pv_log_debug("appender", "batch of %zu: %zu appended in %zu stream request(s)", n,
			     appended, b.ngroups);
	/* Room for a usual batch is worth keeping; for one of huge events not. */
	if (c->scratch.copy.cap > SCRATCH_COPY_MAX)
		pv_buf_free(&c->scratch.copy);
	return rc;
}

/* One message through the batch path: conflicts (another appender wrote)
 * are settled by reading on and trying again. */
static enum pv_appender_action handle_one_tx(struct pv_appender_core *c, const char *body,
					     size_t len, bool suspect, char *reason,
					     size_t reason_size, struct pv_error *err)
{
	struct pv_appender_msg m = {.body = body, .len = len, .suspect = suspect};
	enum pv_err rc = PV_OK;

	for (int conflicts = 0; conflicts < MAX_CONFLICTS; conflicts++) {
		rc = pv_appender_core_handle_batch(c, &m, 1, err);
		if (rc == PV_OK) {
			snprintf(reason, reason_size, "%s", m.reason);
			return m.action;
		}
		if (rc != PV_ERR_CONFLICT && rc != PV_ERR_GONE)
			break;
	}
	if (rc == PV_ERR_CONFLICT)
		pv_error_set(err, PV_ERR_CONFLICT, "%d version conflicts in a row", MAX_CONFLICTS);
	if (store_failure(rc) == PV_APPENDER_DEAD_LETTER) {
		snprintf(reason, reason_size, "event store refused the event: %s", err->msg);
		return PV_APPENDER_DEAD_LETTER;
	}
	return PV_APPENDER_RETRY;
}

enum pv_appender_action pv_appender_core_handle(struct pv_appender_core *c, const char *body,
						size_t len, bool suspect, char *reason,
						size_t reason_size, struct pv_error *err)
{
	enum pv_appender_action act;
	char received[32];
	struct pv_event ev;
	json_error_t jerr;
	json_t *root;

	if (pv_appender_core_batches(c))
		return handle_one_tx(c, body, len, suspect, reason, reason_size, err);
	pv_rfc3339_now(received);
	reason[0] = '\0';
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(reason, reason_size, "not JSON: %s (line %d, column %d)", jerr.text,
			 jerr.line, jerr.column);
		return PV_APPENDER_DEAD_LETTER;
	}
	if (pv_event_from_json(root, &ev, err) != PV_OK) {
		snprintf(reason, reason_size, "%s", err->msg);
		act = malformed(c, root, received, reason, err);
		json_decref(root);
		return act;
	}
	json_decref(root);
	act = handle_event(c, &ev, suspect, received, reason, reason_size, err);
	pv_event_clear(&ev);
	return act;
}
