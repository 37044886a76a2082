/* The judge's rules (lib/judge.h) against an event store and a log of
 * verdicts kept in memory.  The store fills in only the required
 * operations of the ops table, so the unit of work is the generic one, as
 * EventStoreDB's: each stream's append is durable on its own, the
 * verdicts are written right after the appends.  It follows EventStoreDB's
 * rules (protocols.md 1-4): expected versions, re-sends of the same ids at
 * the same place answered with the original numbers, soft deletes whose
 * numbering goes on, hard deletes for good.  Faults are injected by
 * counters: an append that fails before or after writing, a log write
 * that fails (a crash between the appends and the verdicts). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audit.h"
#include "eventstore.h"
#include "id.h"
#include "judge.h"
#include "judge_thread.h"
#include "xalloc.h"

#include "pv_test.h"

/* ---- the store --------------------------------------------------------- */

struct mem_event {
	char id[PV_UUID_LEN + 1];
	char *type;
	int64_t number;
	json_t *data, *metadata;
};

enum mem_state { MEM_LIVE, MEM_SOFT, MEM_HARD };

struct mem_stream {
	char name[64];
	enum mem_state state;
	int64_t version; /* last number; a soft delete keeps it */
	struct mem_event ev[64];
	size_t n;
};

struct mem_es {
	struct pv_es base;
	struct mem_stream streams[16];
	size_t n;
	int appends;           /* append requests seen */
	int reads;             /* stream reads seen */
	int fail_before_write; /* the next ones fail, nothing written */
	int fail_after_write;  /* the next ones are written, then time out */
};

static struct mem_es *mem_of(struct pv_es *es)
{
	return (struct mem_es *)es;
}

static struct mem_stream *mem_find(struct mem_es *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->streams[i].name, name) == 0)
			return &m->streams[i];
	return NULL;
}

/* Whether ids occupy the stream from number first on. */
static bool mem_has_at(const struct mem_stream *s, int64_t first,
		       const struct pv_es_new_event *events, size_t count)
{
	for (size_t k = 0; k < count; k++) {
		bool found = false;

		for (size_t i = 0; i < s->n; i++)
			if (s->ev[i].number == first + (int64_t)k &&
			    strcmp(s->ev[i].id, events[k].id) == 0)
				found = true;
		if (!found)
			return false;
	}
	return true;
}

static enum pv_err mem_append(struct pv_es *es, const char *stream, int64_t expected,
			      const struct pv_es_new_event *events, size_t count, int64_t *version,
			      struct pv_error *err)
{
	struct mem_es *m = mem_of(es);
	struct mem_stream *s = mem_find(m, stream);
	int64_t first;

	m->appends++;
	if (m->fail_before_write > 0) {
		m->fail_before_write--;
		return pv_error_set(err, PV_ERR_UNAVAILABLE, "mem: server down");
	}
	if (s && s->state == MEM_HARD)
		return pv_error_set(err, PV_ERR_GONE, "mem: %s is deleted for good", stream);
	if (expected == PV_ES_NO_STREAM && s && s->state == MEM_LIVE) {
		*version = s->version;
		if (mem_has_at(s, 0, events, count)) {
			*version = (int64_t)count - 1;
			return PV_OK;
		}
		return pv_error_set(err, PV_ERR_CONFLICT, "mem: %s exists", stream);
	}
	if (expected >= 0) {
		int64_t now = s && s->state == MEM_LIVE ? s->version : -1;

		if (now > expected && mem_has_at(s, expected + 1, events, count)) {
			*version = expected + (int64_t)count;
			return PV_OK;
		}
		if (now != expected) {
			*version = now;
			return pv_error_set(err, PV_ERR_CONFLICT, "mem: %s is at %lld", stream,
					    (long long)now);
		}
	}
	if (!s) {
		assert_true(m->n < sizeof m->streams / sizeof m->streams[0]);
		s = &m->streams[m->n++];
		snprintf(s->name, sizeof s->name, "%s", stream);
		s->version = -1;
	}
	s->state = MEM_LIVE;
	first = s->version + 1;
	for (size_t k = 0; k < count; k++) {
		struct mem_event *e = &s->ev[s->n++];

		assert_true(s->n <= sizeof s->ev / sizeof s->ev[0]);
		snprintf(e->id, sizeof e->id, "%s", events[k].id);
		e->type = pv_xstrdup(events[k].type);
		e->number = first + (int64_t)k;
		e->data = json_deep_copy(events[k].data);
		e->metadata = events[k].metadata ? json_deep_copy(events[k].metadata) : json_null();
	}
	s->version = first + (int64_t)count - 1;
	*version = s->version;
	if (m->fail_after_write > 0) {
		m->fail_after_write--;
		return pv_error_set(err, PV_ERR_TIMEOUT, "mem: timed out after the write");
	}
	return PV_OK;
}

static void mem_copy(struct pv_es_event *out, const struct mem_event *e, const char *stream)
{
	memset(out, 0, sizeof *out);
	snprintf(out->id, sizeof out->id, "%s", e->id);
	out->type = pv_xstrdup(e->type);
	out->stream = pv_xstrdup(stream);
	out->number = e->number;
	out->position = -1;
	out->created = pv_xstrdup("2024-01-01T00:00:00.000000Z");
	out->data = json_incref(e->data);
	out->metadata = json_incref(e->metadata);
}

static enum pv_err mem_read_stream(struct pv_es *es, const char *stream, int64_t from, size_t max,
				   bool backward, struct pv_es_page *page, struct pv_error *err)
{
	struct mem_stream *s = mem_find(mem_of(es), stream);

	mem_of(es)->reads++;
	*page = (struct pv_es_page){.next = -1};
	if (!s || s->state == MEM_SOFT)
		return pv_error_set(err, PV_ERR_NOT_FOUND, "mem: no stream %s", stream);
	if (s->state == MEM_HARD)
		return pv_error_set(err, PV_ERR_GONE, "mem: %s is deleted for good", stream);
	page->events = pv_xcalloc(s->n + 1, sizeof *page->events);
	if (!backward) {
		for (size_t i = 0; i < s->n && page->count < max; i++)
			if (s->ev[i].number >= from)
				mem_copy(&page->events[page->count++], &s->ev[i], stream);
		page->end_of_stream =
			page->count == 0 || page->events[page->count - 1].number == s->version;
		page->next = page->count ? page->events[page->count - 1].number + 1 : from;
		return PV_OK;
	}
	for (size_t i = s->n; i-- > 0 && page->count < max;)
		if (from < 0 || s->ev[i].number <= from)
			mem_copy(&page->events[page->count++], &s->ev[i], stream);
	page->end_of_stream =
		page->count == 0 || page->events[page->count - 1].number == s->ev[0].number;
	page->next = page->end_of_stream ? -1 : page->events[page->count - 1].number - 1;
	return PV_OK;
}

static enum pv_err mem_read_category(struct pv_es *es, const char *category, int64_t from,
				     size_t max, int wait_ms, struct pv_es_page *page,
				     struct pv_error *err)
{
	(void)es, (void)category, (void)from, (void)max, (void)wait_ms, (void)err;
	*page = (struct pv_es_page){.next = -1};
	return PV_OK;
}

static enum pv_err mem_list_streams(struct pv_es *es, const char *category,
				    struct pv_es_stream_list *list, struct pv_error *err)
{
	(void)es, (void)category, (void)err;
	*list = (struct pv_es_stream_list){0};
	return PV_OK;
}

static void mem_drop_events(struct mem_stream *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->ev[i].type);
		json_decref(s->ev[i].data);
		json_decref(s->ev[i].metadata);
	}
	s->n = 0;
}

static enum pv_err mem_delete_stream(struct pv_es *es, const char *stream, int64_t expected,
				     bool hard, struct pv_error *err)
{
	struct mem_stream *s = mem_find(mem_of(es), stream);

	(void)expected;
	if (!s || s->state == MEM_HARD)
		return pv_error_set(err, s ? PV_ERR_GONE : PV_ERR_NOT_FOUND, "mem: %s", stream);
	mem_drop_events(s);
	s->state = hard ? MEM_HARD : MEM_SOFT;
	return PV_OK;
}

static void mem_close(struct pv_es *es)
{
	struct mem_es *m = mem_of(es);

	for (size_t i = 0; i < m->n; i++)
		mem_drop_events(&m->streams[i]);
	free(m);
}

/* The required operations only: the unit of work is the generic one. */
static const struct pv_es_ops mem_ops = {
	.name = "memory",
	.append = mem_append,
	.read_stream = mem_read_stream,
	.read_category = mem_read_category,
	.list_streams = mem_list_streams,
	.delete_stream = mem_delete_stream,
	.close = mem_close,
};

/* ---- the log of verdicts ---------------------------------------------- */

struct mem_row {
	char id[PV_UUID_LEN + 1];
	enum pv_audit_status status;
	int64_t number;
	char rule[64];
};

struct mem_log {
	struct pv_judge_log base;
	struct mem_row rows[256];
	size_t n;
	bool open;
	int fail_writes; /* the next writes fail (the process died before them) */
};

static struct mem_row *log_find(struct mem_log *l, const char *id)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcasecmp(l->rows[i].id, id) == 0)
			return &l->rows[i];
	return NULL;
}

static enum pv_err log_begin(struct pv_es_sink *s, struct pg_conn *shared, struct pv_error *err)
{
	(void)err;
	assert_null(shared); /* the generic unit shares no connection */
	((struct mem_log *)s)->open = true;
	return PV_OK;
}

static enum pv_err log_write(struct pv_es_sink *s, struct pv_error *err)
{
	struct mem_log *l = (struct mem_log *)s;

	assert_true(l->open);
	if (l->fail_writes > 0) {
		l->fail_writes--;
		return pv_error_set(err, PV_ERR_UNAVAILABLE, "mem log: connection lost");
	}
	for (size_t i = 0; i < l->base.nrows; i++)
		if (log_find(l, l->base.rows[i].event_id))
			return pv_error_set(err, PV_ERR_CONFLICT, "mem log: %s has a row",
					    l->base.rows[i].event_id);
	for (size_t i = 0; i < l->base.nrows; i++) {
		const struct pv_audit_entry *a = &l->base.rows[i];
		struct mem_row *r = &l->rows[l->n++];

		assert_true(l->n <= sizeof l->rows / sizeof l->rows[0]);
		snprintf(r->id, sizeof r->id, "%s", a->event_id);
		r->status = a->status;
		r->number = a->number;
		snprintf(r->rule, sizeof r->rule, "%s", a->rule ? a->rule : "");
	}
	return PV_OK;
}

static void log_end(struct pv_es_sink *s, bool committed)
{
	(void)committed;
	((struct mem_log *)s)->open = false;
}

static enum pv_err log_present(struct pv_judge_log *log, const char *const *ids, size_t n,
			       bool *present, struct pv_error *err)
{
	(void)err;
	assert_true(((struct mem_log *)log)->open);
	for (size_t i = 0; i < n; i++)
		present[i] = ids[i] && log_find((struct mem_log *)log, ids[i]);
	return PV_OK;
}

static const struct pv_es_sink_ops log_ops = {log_begin, log_write, log_end};

/* ---- fixtures ----------------------------------------------------------- */

static struct mem_es *store;
static struct mem_log *verdicts;
static struct pv_judge *judge;
static char election[PV_ULID_LEN + 1], stream[PV_ULID_LEN + 16];

#define OWNER "owner@example.org"
#define STRANGER "mallory@example.org"

static int setup(void **state)
{
	(void)state;
	store = pv_xcalloc(1, sizeof *store);
	store->base.ops = &mem_ops;
	verdicts = pv_xcalloc(1, sizeof *verdicts);
	verdicts->base.sink.ops = &log_ops;
	verdicts->base.present = log_present;
	judge = pv_judge_new(&store->base, &verdicts->base, 100);
	assert_int_equal(pv_ulid_new(election, NULL), PV_OK);
	snprintf(stream, sizeof stream, "Election-%s", election);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pv_judge_free(judge);
	pv_es_close(&store->base);
	free(verdicts);
	return 0;
}

/* A broker message: an event of type by user on the election, with the
 * data fields of extra (JSON object text, may be "{}"); id out. */
struct msg {
	char id[PV_UUID_LEN + 1];
	char *body;
};

static void msg_make(struct msg *m, const char *type, const char *user, const char *extra)
{
	json_t *data = json_loads(extra, 0, NULL), *root;

	assert_non_null(data);
	pv_uuid_new(m->id);
	json_object_set_new(data, "election_id", json_string(election));
	root = json_pack("{s:s, s:s, s:o, s:{s:s, s:b, s:s}}", "event_id", m->id, "type", type,
			 "data", data, "metadata", "user", user, "admin", 0, "at",
			 "2024-01-01T00:00:00.000Z");
	assert_non_null(root);
	m->body = json_dumps(root, JSON_COMPACT);
	json_decref(root);
}

static void msgs_free(struct msg *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(m[i].body);
}

static struct pv_judge_msg in(const struct msg *m, bool suspect)
{
	return (struct pv_judge_msg){.body = m->body, .len = strlen(m->body), .suspect = suspect};
}

/* Judges one message to its end; returns its action. */
static enum pv_judge_action one(struct pv_judge *j, const struct msg *m, bool suspect)
{
	struct pv_judge_msg jm = in(m, suspect);
	struct pv_error err;

	pv_judge_one(j, &jm, &err);
	return jm.action;
}

static void assert_appended(const char *id, int64_t number)
{
	struct mem_row *r = log_find(verdicts, id);

	assert_non_null(r);
	assert_int_equal(r->status, PV_AUDIT_APPENDED);
	assert_int_equal(r->number, number);
}

static void assert_rejected(const char *id, const char *rule)
{
	struct mem_row *r = log_find(verdicts, id);

	assert_non_null(r);
	assert_int_equal(r->status, PV_AUDIT_REJECTED);
	assert_string_equal(r->rule, rule);
}

/* The stream's event ids, in order, each once. */
static void assert_stream(size_t n, const char *const *ids)
{
	struct mem_stream *s = mem_find(store, stream);

	assert_non_null(s);
	assert_int_equal(s->n, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(s->ev[i].id, ids[i]);
}

/* ---- the rules ---------------------------------------------------------- */

/* A batch is judged in order, each event seeing the ones before it, and
 * the stream's accepted events go in one append request. */
static void a_batch_is_judged_in_order(void **state)
{
	struct msg m[4];
	struct pv_judge_msg jm[4];
	struct pv_error err;

	(void)state;
	msg_make(&m[0], "ElectionCreated", OWNER, "{\"name\": \"Photos\"}");
	msg_make(&m[1], "ElectionCreated", OWNER, "{\"name\": \"Again\"}");
	msg_make(&m[2], "ElectionNameChanged", STRANGER, "{\"name\": \"Mine\"}");
	msg_make(&m[3], "ElectionNameChanged", OWNER, "{\"name\": \"Pictures\"}");
	for (size_t i = 0; i < 4; i++)
		jm[i] = in(&m[i], false);
	assert_int_equal(pv_judge_batch(judge, jm, 4, &err), PV_OK);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(jm[i].action, PV_JUDGE_ACK);
	assert_appended(m[0].id, 0);
	assert_rejected(m[1].id, "election_exists");
	assert_rejected(m[2].id, "not_owner");
	assert_appended(m[3].id, 1);
	assert_stream(2, (const char *[]){m[0].id, m[3].id});
	assert_int_equal(store->appends, 1);
	msgs_free(m, 4);
}

/* An appended event delivered again: recorded once, stored once, whether
 * its verdict was recorded (ack) or the process died before that (it is
 * found in the stream, never judged again). */
static void redelivery_of_an_appended_event(void **state)
{
	struct msg m[2];
	struct pv_judge *restarted;

	(void)state;
	msg_make(&m[0], "ElectionCreated", OWNER, "{\"name\": \"Photos\"}");
	msg_make(&m[1], "ElectionNameChanged", OWNER, "{\"name\": \"Pictures\"}");
	assert_int_equal(one(judge, &m[0], false), PV_JUDGE_ACK);
	assert_int_equal(one(judge, &m[1], false), PV_JUDGE_ACK);
	assert_int_equal(one(judge, &m[0], true), PV_JUDGE_ACK);
	assert_int_equal(verdicts->n, 2);

	/* Its verdict lost (as after a crash between append and record), and
	 * judged by a new process: an ElectionCreated judged again would be
	 * "election_exists". */
	verdicts->n = 0;
	restarted = pv_judge_new(&store->base, &verdicts->base, 100);
	assert_int_equal(one(restarted, &m[0], true), PV_JUDGE_ACK);
	assert_appended(m[0].id, 0);
	assert_stream(2, (const char *[]){m[0].id, m[1].id});
	pv_judge_free(restarted);
	msgs_free(m, 2);
}

/* A rejected event delivered again keeps its first verdict, even when the
 * election has changed so that it would now be accepted. */
static void redelivery_of_a_rejected_event(void **state)
{
	struct msg m[2];
	struct mem_row *r;

	(void)state;
	msg_make(&m[0], "ElectionNameChanged", OWNER, "{\"name\": \"Early\"}");
	msg_make(&m[1], "ElectionCreated", OWNER, "{\"name\": \"Photos\"}");
	assert_int_equal(one(judge, &m[0], false), PV_JUDGE_ACK);
	assert_rejected(m[0].id, "election_not_found");
	assert_int_equal(one(judge, &m[1], false), PV_JUDGE_ACK);
	assert_int_equal(one(judge, &m[0], true), PV_JUDGE_ACK);
	r = log_find(verdicts, m[0].id);
	assert_int_equal(r->status, PV_AUDIT_REJECTED);
	assert_int_equal(verdicts->n, 2);
	assert_stream(1, (const char *[]){m[1].id});
	msgs_free(m, 2);
}

/* Another appender wrote to the stream behind this one's cache: the append
 * meets a conflict and the event is judged again on what was read on; a
 * rejection judged on the stale cache is checked against the stream. */
static void a_conflict_with_another_appender(void **state)
{
	struct pv_judge *other = pv_judge_new(&store->base, &verdicts->base, 100);
	struct msg m[4];
	int before;

	(void)state;
	msg_make(&m[0], "ElectionNameChanged", OWNER, "{\"name\": \"Early\"}");
	msg_make(&m[1], "ElectionCreated", OWNER, "{\"name\": \"Photos\"}");
	msg_make(&m[2], "ElectionNameChanged", OWNER, "{\"name\": \"Pictures\"}");
	msg_make(&m[3], "ElectionNameChanged", OWNER, "{\"name\": \"Images\"}");
	/* This one caches the election as not created. */
	assert_int_equal(one(judge, &m[0], false), PV_JUDGE_ACK);
	assert_rejected(m[0].id, "election_not_found");
	/* The other creates it: on the cache m[2] would be election_not_found. */
	assert_int_equal(one(other, &m[1], false), PV_JUDGE_ACK);
	assert_int_equal(one(judge, &m[2], false), PV_JUDGE_ACK);
	assert_appended(m[2].id, 1);
	/* The other's cache is at 0 now: its append conflicts, reads on. */
	before = store->appends;
	assert_int_equal(one(other, &m[3], false), PV_JUDGE_ACK);
	assert_appended(m[3].id, 2);
	assert_int_equal(store->appends - before, 2);
	assert_stream(3, (const char *[]){m[1].id, m[2].id, m[3].id});
	pv_judge_free(other);
	msgs_free(m, 4);
}

/* A new election's stream is not read before its ElectionCreated is
 * appended (it cannot exist yet); when it does exist after all (another
 * appender's, or a create sent twice under two event ids), the append's
 * expected version refuses it and the create is judged on the stream. */
static void a_new_election_is_not_read_first(void **state)
{
	struct pv_judge *other = pv_judge_new(&store->base, &verdicts->base, 100);
	struct msg m[2];

	(void)state;
	msg_make(&m[0], "ElectionCreated", OWNER, "{\"name\": \"Photos\"}");
	msg_make(&m[1], "ElectionCreated", OWNER, "{\"name\": \"Again\"}");
	assert_int_equal(one(judge, &m[0], false), PV_JUDGE_ACK);
	assert_appended(m[0].id, 0);
	assert_int_equal(store->reads, 0);
	assert_int_equal(store->appends, 1);
	/* The other's cache does not hold it: its append conflicts, it reads. */
	assert_int_equal(one(other, &m[1], false), PV_JUDGE_ACK);
	assert_rejected(m[1].id, "election_exists");
	assert_true(store->reads > 0);
	assert_int_equal(store->appends, 2);
	assert_stream(1, (const char *[]){m[0].id});
	pv_judge_free(other);
	msgs_free(m, 2);
}

/* An operator deleted the stream: soft, and the election starts from
 * nothing, its numbers going on; hard, and the verdict is stream_deleted. */
static void a_stream_deleted_by_hand(void **state)
{
	struct msg m[5];
	struct pv_error err;

	(void)state;
	msg_make(&m[0], "ElectionCreated", OWNER, "{\"name\": \"Photos\"}");
	msg_make(&m[1], "ElectionNameChanged", OWNER, "{\"name\": \"Pictures\"}");
	msg_make(&m[2], "ElectionCreated", OWNER, "{\"name\": \"Anew\"}");
	msg_make(&m[3], "ElectionNameChanged", OWNER, "{\"name\": \"Later\"}");
	msg_make(&m[4], "ElectionNameChanged", OWNER, "{\"name\": \"Gone\"}");
	assert_int_equal(one(judge, &m[0], false), PV_JUDGE_ACK);
	assert_int_equal(one(judge, &m[1], false), PV_JUDGE_ACK);
	assert_int_equal(pv_es_delete_stream(&store->base, stream, PV_ES_ANY, false, &err), PV_OK);
	/* On the cache: election_exists; on the stream: a new election. */
	assert_int_equal(one(judge, &m[2], false), PV_JUDGE_ACK);
	assert_appended(m[2].id, 2);
	assert_int_equal(one(judge, &m[3], false), PV_JUDGE_ACK);
	assert_appended(m[3].id, 3);
	assert_stream(2, (const char *[]){m[2].id, m[3].id});
	assert_int_equal(pv_es_delete_stream(&store->base, stream, PV_ES_ANY, true, &err), PV_OK);
	assert_int_equal(one(judge, &m[4], false), PV_JUDGE_ACK);
	assert_rejected(m[4].id, "stream_deleted");
	msgs_free(m, 5);
}

/* Poison in a batch is dead-lettered, with a "malformed" verdict when it
 * names an event id; the rest of the batch is judged as usual. */
static void a_batch_with_a_poison_message(void **state)
{
	struct msg m[4];
	struct pv_judge_msg jm[4];
	struct pv_error err;

	(void)state;
	msg_make(&m[0], "ElectionCreated", OWNER, "{\"name\": \"Photos\"}");
	m[1].body = pv_xstrdup("this is { not json");
	msg_make(&m[2], "Bogus", OWNER, "{}");
	msg_make(&m[3], "ElectionNameChanged", OWNER, "{\"name\": \"Pictures\"}");
	for (size_t i = 0; i < 4; i++)
		jm[i] = in(&m[i], false);
	assert_int_equal(pv_judge_batch(judge, jm, 4, &err), PV_OK);
	assert_int_equal(jm[0].action, PV_JUDGE_ACK);
	assert_int_equal(jm[1].action, PV_JUDGE_DEAD_LETTER);
	assert_non_null(strstr(jm[1].reason, "not JSON"));
	assert_int_equal(jm[2].action, PV_JUDGE_DEAD_LETTER);
	assert_non_null(strstr(jm[2].reason, "Bogus"));
	assert_int_equal(jm[3].action, PV_JUDGE_ACK);
	assert_rejected(m[2].id, "malformed_message");
	assert_appended(m[0].id, 0);
	assert_appended(m[3].id, 1);
	assert_int_equal(verdicts->n, 3);
	msgs_free(m, 4);
}

/* The same event twice in one batch: the first copy decides. */
static void a_repeat_in_one_batch(void **state)
{
	struct msg m;
	struct pv_judge_msg jm[2];
	struct pv_error err;

	(void)state;
	msg_make(&m, "ElectionCreated", OWNER, "{\"name\": \"Photos\"}");
	jm[0] = in(&m, false);
	jm[1] = in(&m, true);
	assert_int_equal(pv_judge_batch(judge, jm, 2, &err), PV_OK);
	assert_int_equal(jm[1].action, PV_JUDGE_ACK);
	assert_int_equal(verdicts->n, 1);
	assert_stream(1, (const char *[]){m.id});
	msgs_free(&m, 1);
}

/* The process dies between the appends and the verdicts (the log's write
 * fails): the events are in the stream without verdicts.  Judged again,
 * by this process (its cache dropped) or by a new one after a redelivery,
 * each gets the verdict of the first judgment: appended with its number,
 * rejected as it was, nothing stored twice. */
static void a_crash_between_append_and_record(void **state)
{
	struct msg m[3];
	struct pv_judge_msg jm[3];
	struct pv_judge *restarted;
	struct pv_error err;

	(void)state;
	msg_make(&m[0], "ElectionCreated", OWNER, "{\"name\": \"Photos\"}");
	msg_make(&m[1], "ElectionCreated", OWNER, "{\"name\": \"Again\"}");
	msg_make(&m[2], "ElectionNameChanged", OWNER, "{\"name\": \"Pictures\"}");
	for (size_t i = 0; i < 3; i++)
		jm[i] = in(&m[i], false);
	verdicts->fail_writes = 1;
	assert_int_equal(pv_judge_batch(judge, jm, 3, &err), PV_ERR_UNAVAILABLE);
	assert_int_equal(verdicts->n, 0);
	assert_stream(2, (const char *[]){m[0].id, m[2].id});

	/* The same process, one by one as photovote-appender does: the
	 * messages of a failed batch are suspect.  (Not suspect, the third
	 * would be judged on a cache that the first one's read of the stream
	 * filled with it, and appended twice.) */
	for (size_t i = 0; i < 3; i++) {
		assert_true(jm[i].suspect);
		pv_judge_one(judge, &jm[i], &err);
		assert_int_equal(jm[i].action, PV_JUDGE_ACK);
	}
	assert_appended(m[0].id, 0);
	assert_rejected(m[1].id, "election_exists");
	assert_appended(m[2].id, 1);
	assert_stream(2, (const char *[]){m[0].id, m[2].id});

	/* A new process after a redelivery, as a batch. */
	verdicts->n = 0;
	restarted = pv_judge_new(&store->base, &verdicts->base, 100);
	for (size_t i = 0; i < 3; i++)
		jm[i] = in(&m[i], true);
	assert_int_equal(pv_judge_batch(restarted, jm, 3, &err), PV_OK);
	assert_appended(m[0].id, 0);
	assert_appended(m[2].id, 1);
	assert_stream(2, (const char *[]){m[0].id, m[2].id});
	pv_judge_free(restarted);
	msgs_free(m, 3);
}

/* A failed append whose answer was lost after the write (a timeout), then
 * one that failed before it: retried as suspect, found, never doubled. */
static void an_append_that_may_have_been_written(void **state)
{
	struct msg m;

	(void)state;
	msg_make(&m, "ElectionCreated", OWNER, "{\"name\": \"Photos\"}");
	store->fail_after_write = 1;
	assert_int_equal(one(judge, &m, false), PV_JUDGE_RETRY);
	assert_null(log_find(verdicts, m.id));
	store->fail_before_write = 1;
	assert_int_equal(one(judge, &m, true), PV_JUDGE_ACK);
	assert_int_equal(store->fail_before_write, 1); /* found: no append tried */
	assert_appended(m.id, 0);
	assert_stream(1, (const char *[]){m.id});
	msgs_free(&m, 1);
}

/* Two batches the way the appender takes them: the second decoded while
 * the judge's thread judges the first, then handed over; verdicts as if
 * judged one after the other.  A unit that fails comes back as the error,
 * its messages suspect, nothing recorded. */
static void batches_decoded_while_the_thread_judges(void **state)
{
	struct msg m[5];
	struct pv_judge_msg jm[5];
	struct pv_judge_decoded *first = pv_judge_decoded_new(), *second = pv_judge_decoded_new();
	struct pv_judge_thread *t = pv_judge_thread_start(judge);
	struct pv_error err;

	(void)state;
	msg_make(&m[0], "ElectionCreated", OWNER, "{\"name\": \"Photos\"}");
	msg_make(&m[1], "ElectionNameChanged", STRANGER, "{\"name\": \"Mine\"}");
	msg_make(&m[2], "ElectionCreated", OWNER, "{\"name\": \"Again\"}");
	msg_make(&m[3], "ElectionNameChanged", OWNER, "{\"name\": \"Pictures\"}");
	msg_make(&m[4], "ElectionNameChanged", OWNER, "{\"name\": \"Prints\"}");
	for (size_t i = 0; i < 5; i++)
		jm[i] = in(&m[i], false);
	pv_judge_decode(first, &jm[0], 2);
	pv_judge_thread_hand(t, first);
	pv_judge_decode(second, &jm[2], 2);
	assert_int_equal(pv_judge_thread_wait(t, &err), PV_OK);
	pv_judge_thread_hand(t, second);
	assert_int_equal(pv_judge_thread_wait(t, &err), PV_OK);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(jm[i].action, PV_JUDGE_ACK);
	assert_appended(m[0].id, 0);
	assert_rejected(m[1].id, "not_owner");
	assert_rejected(m[2].id, "election_exists");
	assert_appended(m[3].id, 1);
	assert_stream(2, (const char *[]){m[0].id, m[3].id});

	store->fail_before_write = 1;
	pv_judge_decode(first, &jm[4], 1);
	pv_judge_thread_hand(t, first);
	assert_int_not_equal(pv_judge_thread_wait(t, &err), PV_OK);
	assert_non_null(strstr(err.msg, "server down"));
	assert_true(jm[4].suspect);
	assert_null(log_find(verdicts, m[4].id));
	pv_judge_thread_stop(t);
	assert_int_equal(one(judge, &m[4], jm[4].suspect), PV_JUDGE_ACK);
	assert_appended(m[4].id, 2);
	pv_judge_decoded_free(first);
	pv_judge_decoded_free(second);
	msgs_free(m, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(a_batch_is_judged_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(redelivery_of_an_appended_event, setup, teardown),
		cmocka_unit_test_setup_teardown(redelivery_of_a_rejected_event, setup, teardown),
		cmocka_unit_test_setup_teardown(a_conflict_with_another_appender, setup, teardown),
		cmocka_unit_test_setup_teardown(a_new_election_is_not_read_first, setup, teardown),
		cmocka_unit_test_setup_teardown(a_stream_deleted_by_hand, setup, teardown),
		cmocka_unit_test_setup_teardown(a_batch_with_a_poison_message, setup, teardown),
		cmocka_unit_test_setup_teardown(a_repeat_in_one_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(a_crash_between_append_and_record, setup, teardown),
		cmocka_unit_test_setup_teardown(an_append_that_may_have_been_written, setup,
						teardown),
		cmocka_unit_test_setup_teardown(batches_decoded_while_the_thread_judges, setup,
						teardown),
	};

	return PV_RUN_TESTS(tests);
}
