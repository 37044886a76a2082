/* The event store conformance suite: one program, run against either
 * backend, so both keep one behaviour.
 *
 *   PV_TEST_ES_BACKEND=postgres  PV_TEST_PG_CONNINFO=<libpq string>
 *   PV_TEST_ES_BACKEND=esdb      PV_TEST_ES_URL, PV_TEST_ES_USER,
 *                                PV_TEST_ES_PASSWORD, PV_TEST_ES_CA (optional)
 *
 * Every test writes to streams of its own fresh category ("c" + a ULID), so
 * runs never see each other's events.  Threads each open their own handle
 * (handles are not thread-safe) and never call cmocka: they record what
 * went wrong and the main thread asserts. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "eventstore.h"
#include "id.h"
#include "xalloc.h"

#include "pv_test.h"

static struct pv_es_options opts;
static struct pv_es *es; /* the main thread's handle */
/* The category feed's positions are 0, 1, 2, ... (postgres, esdb), or only
 * increasing (kurrentdb: the events' prepare positions in $all). */
static bool dense_positions = true;

static struct pv_es *open_store(void)
{
	struct pv_error err;
	struct pv_es *s = NULL;

	if (pv_es_open(&opts, &s, &err) != PV_OK) {
		fprintf(stderr, "# open %s: %s\n", opts.backend, err.msg);
		return NULL;
	}
	return s;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A fresh category: "c" + ULID (no '-'). */
static void fresh_category(char out[PV_ULID_LEN + 2])
{
	char ulid[PV_ULID_LEN + 1];

	assert_int_equal(pv_ulid_new(ulid, NULL), PV_OK);
	snprintf(out, PV_ULID_LEN + 2, "c%s", ulid);
}

static char *fresh_stream(void)
{
	char cat[PV_ULID_LEN + 2];

	fresh_category(cat);
	return pv_xasprintf("%s-s", cat);
}

/* Events with fresh ids; data {"i": base + k}. */
struct batch {
	char ids[64][PV_UUID_LEN + 1];
	json_t *data[64];
	struct pv_es_new_event ev[64];
	size_t count;
};

static void batch_make(struct batch *b, size_t count, int base)
{
	b->count = count;
	for (size_t k = 0; k < count; k++) {
		pv_uuid_new(b->ids[k]);
		b->data[k] = json_pack("{s:i, s:s}", "i", base + (int)k, "note", "conformance");
		b->ev[k] = (struct pv_es_new_event){b->ids[k], "Tested", b->data[k], NULL};
	}
}

static void batch_free(struct batch *b)
{
	for (size_t k = 0; k < b->count; k++)
		json_decref(b->data[k]);
}

static enum pv_err append(struct pv_es *s, const char *stream, int64_t expected,
			  const struct batch *b, int64_t *version)
{
	struct pv_error err;
	enum pv_err rc = pv_es_append(s, stream, expected, b->ev, b->count, version, &err);

	if (rc != PV_OK)
		fprintf(stderr, "# append %s (expected %lld): %s\n", stream, (long long)expected,
			err.msg);
	return rc;
}

/* Reads the whole stream forward; returns the number of events. */
static size_t count_events(const char *stream)
{
	struct pv_es_page page;
	struct pv_error err;
	size_t total = 0;
	int64_t from = 0;

	for (;;) {
		assert_int_equal(pv_es_read_stream(es, stream, from, 100, false, &page, &err),
				 PV_OK);
		total += page.count;
		from = page.next;
		bool end = page.end_of_stream;
		pv_es_page_clear(&page);
		if (end)
			return total;
	}
}

static void append_with_each_expected_version(void **state)
{
	char *stream = fresh_stream();
	struct batch b;
	int64_t v = 99;

	batch_make(&b, 1, 0);
	assert_int_equal(append(es, stream, PV_ES_STREAM_EXISTS, &b, &v), PV_ERR_CONFLICT);
	assert_int_equal(v, -1);
	v = 99;
	assert_int_equal(append(es, stream, 0, &b, &v), PV_ERR_CONFLICT);
	assert_int_equal(v, -1);
	assert_int_equal(append(es, stream, PV_ES_NO_STREAM, &b, &v), PV_OK);
	assert_int_equal(v, 0);
	batch_free(&b);

	batch_make(&b, 1, 1);
	assert_int_equal(append(es, stream, PV_ES_NO_STREAM, &b, &v), PV_ERR_CONFLICT);
	assert_int_equal(v, 0);
	batch_free(&b);

	batch_make(&b, 2, 1);
	assert_int_equal(append(es, stream, 0, &b, &v), PV_OK);
	assert_int_equal(v, 2);
	batch_free(&b);

	batch_make(&b, 1, 3);
	v = 99;
	assert_int_equal(append(es, stream, 1, &b, &v), PV_ERR_CONFLICT);
	assert_int_equal(v, 2);
	v = 99;
	assert_int_equal(append(es, stream, 5, &b, &v), PV_ERR_CONFLICT);
	assert_int_equal(v, 2);
	assert_int_equal(append(es, stream, PV_ES_STREAM_EXISTS, &b, &v), PV_OK);
	assert_int_equal(v, 3);
	batch_free(&b);

	batch_make(&b, 1, 4);
	assert_int_equal(append(es, stream, PV_ES_ANY, &b, &v), PV_OK);
	assert_int_equal(v, 4);
	batch_free(&b);

	/* What was written reads back in order, with its data. */
	struct pv_es_page page;
	struct pv_error err;
	assert_int_equal(pv_es_read_stream(es, stream, 0, 20, false, &page, &err), PV_OK);
	assert_int_equal(page.count, 5);
	assert_true(page.end_of_stream);
	for (size_t i = 0; i < page.count; i++) {
		assert_int_equal(page.events[i].number, (int64_t)i);
		assert_string_equal(page.events[i].stream, stream);
		assert_string_equal(page.events[i].type, "Tested");
		assert_int_equal(json_integer_value(json_object_get(page.events[i].data, "i")), i);
		assert_true(json_is_null(page.events[i].metadata));
		assert_non_null(page.events[i].created);
	}
	pv_es_page_clear(&page);
	free(stream);
}

static void bad_appends_are_refused(void **state)
{
	char *stream = fresh_stream();
	struct pv_es_page page;
	struct pv_error err;
	struct batch b;
	int64_t v;

	batch_make(&b, 1, 0);
	assert_int_equal(pv_es_append(es, stream, PV_ES_ANY, b.ev, 0, &v, &err), PV_ERR_INVALID);
	b.ev[0].id = "not-a-uuid";
	assert_int_equal(pv_es_append(es, stream, PV_ES_ANY, b.ev, 1, &v, &err), PV_ERR_INVALID);
	b.ev[0].id = b.ids[0];
	b.ev[0].type = "";
	assert_int_equal(pv_es_append(es, stream, PV_ES_ANY, b.ev, 1, &v, &err), PV_ERR_INVALID);
	assert_int_equal(pv_es_read_stream(es, stream, 0, 10, false, &page, &err),
			 PV_ERR_NOT_FOUND);
	batch_free(&b);
	free(stream);
}

static void resending_the_same_ids_is_idempotent(void **state)
{
	char *stream = fresh_stream();
	struct batch ab, c, d, mixed;
	int64_t v = 99;

	batch_make(&ab, 2, 0);
	assert_int_equal(append(es, stream, PV_ES_NO_STREAM, &ab, &v), PV_OK);
	assert_int_equal(v, 1);
	/* The same batch at the same expected version: success, nothing new. */
	v = 99;
	assert_int_equal(append(es, stream, PV_ES_NO_STREAM, &ab, &v), PV_OK);
	assert_int_equal(v, 1);

	batch_make(&c, 1, 2);
	assert_int_equal(append(es, stream, 1, &c, &v), PV_OK);
	assert_int_equal(v, 2);
	v = 99;
	assert_int_equal(append(es, stream, 1, &c, &v), PV_OK);
	assert_int_equal(v, 2);

	/* A partial match at the position is a conflict, not a write. */
	batch_make(&mixed, 2, 9);
	strcpy(mixed.ids[0], ab.ids[0]);
	v = 99;
	assert_int_equal(append(es, stream, PV_ES_NO_STREAM, &mixed, &v), PV_ERR_CONFLICT);
	assert_int_equal(v, 2);

	/* Any-version re-sends are recognised by id. */
	batch_make(&d, 1, 3);
	assert_int_equal(append(es, stream, PV_ES_ANY, &d, &v), PV_OK);
	assert_int_equal(v, 3);
	v = 99;
	assert_int_equal(append(es, stream, PV_ES_ANY, &d, &v), PV_OK);
	assert_int_equal(v, 3);
	v = 99;
	assert_int_equal(append(es, stream, PV_ES_ANY, &ab, &v), PV_OK);
	assert_int_equal(v, 1);
	/* First id known, the next not: conflict. */
	strcpy(mixed.ids[0], c.ids[0]);
	assert_int_equal(append(es, stream, PV_ES_ANY, &mixed, &v), PV_ERR_CONFLICT);

	assert_int_equal(count_events(stream), 4);
	batch_free(&ab);
	batch_free(&c);
	batch_free(&d);
	batch_free(&mixed);
	free(stream);
}

#define PAGING_EVENTS 3000

static void paging_forward_and_backward(void **state)
{
	char *stream = fresh_stream();
	struct pv_es_page page;
	struct pv_error err;
	int64_t v = -1, from, expect;
	int pages = 0;

	for (int i = 0; i < PAGING_EVENTS; i += 50) {
		struct batch b;
		batch_make(&b, 50, i);
		assert_int_equal(append(es, stream, v, &b, &v), PV_OK);
		batch_free(&b);
	}
	assert_int_equal(v, PAGING_EVENTS - 1);

	for (from = 0, expect = 0;; pages++) {
		assert_int_equal(pv_es_read_stream(es, stream, from, 250, false, &page, &err),
				 PV_OK);
		assert_true(page.count <= 250);
		for (size_t i = 0; i < page.count; i++, expect++) {
			assert_int_equal(page.events[i].number, expect);
			json_t *n = json_object_get(page.events[i].data, "i");
			assert_int_equal(json_integer_value(n), expect);
		}
		bool end = page.end_of_stream;
		from = page.next;
		pv_es_page_clear(&page);
		if (end)
			break;
		assert_true(pages < 100);
	}
	assert_int_equal(expect, PAGING_EVENTS);

	for (from = -1, expect = PAGING_EVENTS - 1, pages = 0;; pages++) {
		assert_int_equal(pv_es_read_stream(es, stream, from, 300, true, &page, &err),
				 PV_OK);
		for (size_t i = 0; i < page.count; i++, expect--)
			assert_int_equal(page.events[i].number, expect);
		bool end = page.end_of_stream;
		if (end)
			assert_int_equal(page.next, -1);
		from = page.next;
		pv_es_page_clear(&page);
		if (end)
			break;
		assert_true(pages < 100);
	}
	assert_int_equal(expect, -1);

	/* Backward from a given number, and forward past the end. */
	assert_int_equal(pv_es_read_stream(es, stream, 10, 3, true, &page, &err), PV_OK);
	assert_int_equal(page.count, 3);
	assert_int_equal(page.events[0].number, 10);
	assert_int_equal(page.events[2].number, 8);
	assert_false(page.end_of_stream);
	assert_int_equal(page.next, 7);
	pv_es_page_clear(&page);
	assert_int_equal(pv_es_read_stream(es, stream, PAGING_EVENTS + 5, 10, false, &page, &err),
			 PV_OK);
	assert_int_equal(page.count, 0);
	assert_true(page.end_of_stream);
	pv_es_page_clear(&page);
	free(stream);
}

/* ---- category order with concurrent writers -------------------------- */

#define WRITERS 4
#define APPENDS_PER_WRITER 40
#define STREAMS_PER_WRITER 3

struct writer {
	pthread_t thread;
	const char *category;
	int index;
	int written; /* events */
	char failure[256];
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct pv_es *s = open_store();
	int64_t versions[STREAMS_PER_WRITER];

	if (!s) {
		snprintf(w->failure, sizeof w->failure, "writer %d: open failed", w->index);
		return NULL;
	}
	for (int k = 0; k < STREAMS_PER_WRITER; k++)
		versions[k] = PV_ES_NO_STREAM;
	for (int a = 0; a < APPENDS_PER_WRITER; a++) {
		int k = a % STREAMS_PER_WRITER;
		char stream[128];
		struct batch b;

		snprintf(stream, sizeof stream, "%s-w%d-%d", w->category, w->index, k);
		batch_make(&b, 1 + (size_t)(a % 3), w->written);
		if (append(s, stream, versions[k], &b, &versions[k]) != PV_OK)
			snprintf(w->failure, sizeof w->failure, "writer %d: append %d failed",
				 w->index, a);
		else
			w->written += (int)b.count;
		batch_free(&b);
		if (w->failure[0])
			break;
	}
	pv_es_close(s);
	return NULL;
}

struct seen {
	char stream[128];
	int64_t number;
	int64_t position;
};

struct follower {
	pthread_t thread;
	const char *category;
	int expect;        /* stop after this many */
	struct seen *seen; /* in arrival order */
	int count;
	char failure[256];
};

static void *follower_main(void *arg)
{
	struct follower *f = arg;
	struct pv_es *s = open_store();
	int64_t from = 0, deadline = now_ms() + 120000;

	if (!s) {
		snprintf(f->failure, sizeof f->failure, "follower: open failed");
		return NULL;
	}
	while (f->count < f->expect && now_ms() < deadline) {
		struct pv_es_page page;
		struct pv_error err;

		if (pv_es_read_category(s, f->category, from, 37, 1000, &page, &err) != PV_OK) {
			snprintf(f->failure, sizeof f->failure, "follower: %.200s", err.msg);
			break;
		}
		for (size_t i = 0; i < page.count && f->count < f->expect * 2; i++) {
			struct seen *x = &f->seen[f->count++];
			snprintf(x->stream, sizeof x->stream, "%s", page.events[i].stream);
			x->number = page.events[i].number;
			x->position = page.events[i].position;
		}
		from = page.next;
		pv_es_page_clear(&page);
	}
	pv_es_close(s);
	return NULL;
}

/* Every event once, positions 0, 1, 2, ... (or increasing where the
 * backend's positions are not dense) and each stream in order. */
static void check_feed(const struct seen *seen, int count, int expect)
{
	assert_int_equal(count, expect);
	for (int i = 0; i < count; i++) {
		if (dense_positions)
			assert_int_equal(seen[i].position, i);
		else
			assert_true(i == 0 ? seen[i].position >= 0
					   : seen[i].position > seen[i - 1].position);
		/* The previous event of the same stream came earlier, and only once. */
		int64_t prev = -1;
		for (int j = 0; j < i; j++)
			if (strcmp(seen[j].stream, seen[i].stream) == 0) {
				assert_int_not_equal(seen[j].number, seen[i].number);
				if (seen[j].number > prev)
					prev = seen[j].number;
			}
		assert_int_equal(seen[i].number, prev + 1);
	}
}

static void category_order_with_concurrent_writers(void **state)
{
	char cat[PV_ULID_LEN + 2];
	struct writer w[WRITERS];
	struct follower f;
	int total = 0;

	fresh_category(cat);
	/* Each writer appends 1, 2 or 3 events per append, in turn. */
	for (int a = 0; a < APPENDS_PER_WRITER; a++)
		total += WRITERS * (1 + a % 3);
	f = (struct follower){.category = cat, .expect = total};
	f.seen = pv_xcalloc((size_t)total * 2, sizeof *f.seen);
	assert_int_equal(pthread_create(&f.thread, NULL, follower_main, &f), 0);
	for (int i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){.category = cat, .index = i};
		assert_int_equal(pthread_create(&w[i].thread, NULL, writer_main, &w[i]), 0);
	}
	for (int i = 0; i < WRITERS; i++) {
		pthread_join(w[i].thread, NULL);
		assert_string_equal(w[i].failure, "");
	}
	pthread_join(f.thread, NULL);
	assert_string_equal(f.failure, "");
	check_feed(f.seen, f.count, total);

	/* A reader starting afterwards, in small pages, sees the same feed. */
	struct seen *again = pv_xcalloc((size_t)total, sizeof *again);
	int n = 0;
	int64_t from = 0;
	for (;;) {
		struct pv_es_page page;
		struct pv_error err;
		assert_int_equal(pv_es_read_category(es, cat, from, 100, 0, &page, &err), PV_OK);
		for (size_t i = 0; i < page.count; i++, n++) {
			assert_true(n < total);
			snprintf(again[n].stream, sizeof again[n].stream, "%s",
				 page.events[i].stream);
			again[n].number = page.events[i].number;
			again[n].position = page.events[i].position;
		}
		from = page.next;
		bool done = page.count == 0;
		pv_es_page_clear(&page);
		if (done)
			break;
	}
	check_feed(again, n, total);
	for (int i = 0; i < n; i++) {
		assert_string_equal(again[i].stream, f.seen[i].stream);
		assert_int_equal(again[i].number, f.seen[i].number);
	}
	free(again);
	free(f.seen);
}

/* ---- racing appenders -------------------------------------------------- */

#define RACERS 6

struct racer {
	pthread_t thread;
	const char *stream;
	pthread_barrier_t *start;
	enum pv_err rc;
	int64_t version;
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;
	struct pv_es *s = open_store();
	struct batch b;

	r->rc = PV_ERR_UNAVAILABLE;
	pthread_barrier_wait(r->start);
	if (!s)
		return NULL;
	batch_make(&b, 2, 0);
	r->rc = pv_es_append(s, r->stream, 0, b.ev, b.count, &r->version, NULL);
	batch_free(&b);
	pv_es_close(s);
	return NULL;
}

static void racing_appenders_cannot_both_win(void **state)
{
	char *stream = fresh_stream();
	pthread_barrier_t start;
	struct racer r[RACERS];
	struct batch b;
	int64_t v;
	int wins = 0;

	batch_make(&b, 1, 0);
	assert_int_equal(append(es, stream, PV_ES_NO_STREAM, &b, &v), PV_OK);
	batch_free(&b);
	assert_int_equal(pthread_barrier_init(&start, NULL, RACERS), 0);
	for (int i = 0; i < RACERS; i++) {
		r[i] = (struct racer){.stream = stream, .start = &start};
		assert_int_equal(pthread_create(&r[i].thread, NULL, racer_main, &r[i]), 0);
	}
	for (int i = 0; i < RACERS; i++) {
		pthread_join(r[i].thread, NULL);
		if (r[i].rc == PV_OK) {
			wins++;
			assert_int_equal(r[i].version, 2);
		} else {
			/* The losers learn where the stream is now. */
			assert_int_equal(r[i].rc, PV_ERR_CONFLICT);
			assert_int_equal(r[i].version, 2);
		}
	}
	pthread_barrier_destroy(&start);
	assert_int_equal(wins, 1);
	assert_int_equal(count_events(stream), 3);
	free(stream);
}

/* ---- long poll -------------------------------------------------------- */

struct late_writer {
	pthread_t thread;
	const char *stream;
	int delay_ms;
	enum pv_err rc;
};

static void *late_writer_main(void *arg)
{
	struct late_writer *lw = arg;
	struct pv_es *s = open_store();
	struct timespec ts = {lw->delay_ms / 1000, (long)(lw->delay_ms % 1000) * 1000000L};
	struct batch b;
	int64_t v;

	lw->rc = PV_ERR_UNAVAILABLE;
	if (!s)
		return NULL;
	nanosleep(&ts, NULL);
	batch_make(&b, 1, 0);
	lw->rc = append(s, lw->stream, PV_ES_ANY, &b, &v);
	batch_free(&b);
	pv_es_close(s);
	return NULL;
}

static void long_poll_wakes_on_append(void **state)
{
	char cat[PV_ULID_LEN + 2];
	struct pv_es_page page;
	struct pv_error err;
	struct late_writer lw;
	int64_t t0, waited;

	fresh_category(cat);
	/* Nothing comes: the wait lasts about as long as asked. */
	t0 = now_ms();
	assert_int_equal(pv_es_read_category(es, cat, 0, 10, 400, &page, &err), PV_OK);
	waited = now_ms() - t0;
	assert_int_equal(page.count, 0);
	assert_true(waited >= 300);
	assert_true(waited < 5000);
	pv_es_page_clear(&page);

	char *stream = pv_xasprintf("%s-late", cat);
	lw = (struct late_writer){.stream = stream, .delay_ms = 300};
	t0 = now_ms();
	assert_int_equal(pthread_create(&lw.thread, NULL, late_writer_main, &lw), 0);
	assert_int_equal(pv_es_read_category(es, cat, 0, 10, 20000, &page, &err), PV_OK);
	waited = now_ms() - t0;
	pthread_join(lw.thread, NULL);
	assert_int_equal(lw.rc, PV_OK);
	assert_int_equal(page.count, 1);
	assert_string_equal(page.events[0].stream, stream);
	if (dense_positions)
		assert_int_equal(page.events[0].position, 0);
	else
		assert_true(page.events[0].position >= 0);
	/* Woken by the append, far before the 20 s timeout. */
	assert_true(waited < 5000);
	pv_es_page_clear(&page);
	free(stream);
}

/* ---- delete ----------------------------------------------------------- */

static void soft_delete_then_recreate(void **state)
{
	char *stream = fresh_stream();
	struct pv_es_stream_list list;
	struct pv_es_page page;
	struct pv_error err;
	struct batch b;
	int64_t v;

	batch_make(&b, 3, 0);
	assert_int_equal(append(es, stream, PV_ES_NO_STREAM, &b, &v), PV_OK);
	batch_free(&b);
	assert_int_equal(pv_es_delete_stream(es, stream, 7, false, &err), PV_ERR_CONFLICT);
	assert_int_equal(pv_es_delete_stream(es, stream, 2, false, &err), PV_OK);
	assert_int_equal(pv_es_read_stream(es, stream, 0, 10, false, &page, &err),
			 PV_ERR_NOT_FOUND);
	assert_int_equal(pv_es_read_stream(es, stream, -1, 10, true, &page, &err),
			 PV_ERR_NOT_FOUND);

	char *cat = pv_xstrndup(stream, strcspn(stream, "-"));
	assert_int_equal(pv_es_list_streams(es, cat, &list, &err), PV_OK);
	assert_int_equal(list.count, 0);
	pv_es_stream_list_clear(&list);

	/* Must exist: a soft-deleted stream does not. */
	batch_make(&b, 1, 3);
	assert_int_equal(append(es, stream, PV_ES_STREAM_EXISTS, &b, &v), PV_ERR_CONFLICT);
	/* Must not exist: a soft-deleted stream passes, numbering continues. */
	assert_int_equal(append(es, stream, PV_ES_NO_STREAM, &b, &v), PV_OK);
	assert_int_equal(v, 3);
	batch_free(&b);
	assert_int_equal(pv_es_read_stream(es, stream, 0, 10, false, &page, &err), PV_OK);
	assert_int_equal(page.count, 1);
	assert_int_equal(page.events[0].number, 3);
	pv_es_page_clear(&page);

	assert_int_equal(pv_es_list_streams(es, cat, &list, &err), PV_OK);
	assert_int_equal(list.count, 1);
	assert_int_equal(list.streams[0].version, 3);
	pv_es_stream_list_clear(&list);
	free(cat);
	free(stream);
}

static void hard_delete_is_forever(void **state)
{
	char *stream = fresh_stream();
	struct pv_es_page page;
	struct pv_error err;
	struct batch b;
	int64_t v;

	batch_make(&b, 2, 0);
	assert_int_equal(append(es, stream, PV_ES_NO_STREAM, &b, &v), PV_OK);
	batch_free(&b);
	assert_int_equal(pv_es_delete_stream(es, stream, 0, true, &err), PV_ERR_CONFLICT);
	assert_int_equal(pv_es_read_stream(es, stream, 0, 10, false, &page, &err), PV_OK);
	assert_int_equal(page.count, 2);
	pv_es_page_clear(&page);
	assert_int_equal(pv_es_delete_stream(es, stream, 1, true, &err), PV_OK);
	assert_int_equal(pv_es_read_stream(es, stream, 0, 10, false, &page, &err), PV_ERR_GONE);
	assert_int_equal(pv_es_read_stream(es, stream, -1, 10, true, &page, &err), PV_ERR_GONE);
	batch_make(&b, 1, 2);
	assert_int_equal(pv_es_append(es, stream, PV_ES_ANY, b.ev, 1, &v, &err), PV_ERR_GONE);
	assert_int_equal(pv_es_append(es, stream, PV_ES_NO_STREAM, b.ev, 1, &v, &err), PV_ERR_GONE);
	assert_int_equal(pv_es_append(es, stream, 1, b.ev, 1, &v, &err), PV_ERR_GONE);
	batch_free(&b);
	assert_int_equal(pv_es_delete_stream(es, stream, PV_ES_ANY, false, &err), PV_ERR_GONE);
	free(stream);
}

/* ---- text, sizes, listing -------------------------------------------- */

static void non_ascii_names_and_data(void **state)
{
	char cat[PV_ULID_LEN + 2];
	struct pv_es_stream_list list;
	struct pv_es_page page;
	struct pv_error err;
	char id[PV_UUID_LEN + 1];
	int64_t v;

	fresh_category(cat);
	char *category = pv_xasprintf("Wahl\xc3\xa9%s", cat); /* Wahlé */
	char *stream = pv_xasprintf("%s-\xe6\x8a\x95\xe7\xa5\xa8 \xf0\x9f\x97\xb3",
				    category); /* 投票 🗳 */
	/* Keys deliberately out of order: they must come back as written. */
	json_t *data = json_pack("{s:s, s:s, s:[i,i], s:s}", "zeta",
				 "\xc3\xb1"
				 "and\xc3\xba",
				 "alpha", "\xe2\x80\x94 \"quoted\" \\ back", "mid", 1, 2, "emoji",
				 "\xf0\x9f\x98\x80");
	json_t *meta = json_pack("{s:s}", "who", "J\xc3\xbcrgen");
	pv_uuid_new(id);
	struct pv_es_new_event ev = {id, "Gew\xc3\xa4hlt", data, meta};

	assert_int_equal(pv_es_append(es, stream, PV_ES_NO_STREAM, &ev, 1, &v, &err), PV_OK);
	assert_int_equal(pv_es_read_stream(es, stream, 0, 10, false, &page, &err), PV_OK);
	assert_int_equal(page.count, 1);
	assert_string_equal(page.events[0].stream, stream);
	assert_string_equal(page.events[0].type, "Gew\xc3\xa4hlt");
	assert_string_equal(page.events[0].id, id);
	char *want = json_dumps(data, JSON_COMPACT),
	     *got = json_dumps(page.events[0].data, JSON_COMPACT);
	assert_string_equal(got, want);
	free(want);
	free(got);
	assert_true(json_equal(page.events[0].metadata, meta));
	pv_es_page_clear(&page);

	assert_int_equal(pv_es_read_category(es, category, 0, 10, 0, &page, &err), PV_OK);
	assert_int_equal(page.count, 1);
	assert_string_equal(page.events[0].stream, stream);
	pv_es_page_clear(&page);

	assert_int_equal(pv_es_list_streams(es, category, &list, &err), PV_OK);
	assert_int_equal(list.count, 1);
	assert_string_equal(list.streams[0].name, stream);
	assert_int_equal(list.streams[0].version, 0);
	pv_es_stream_list_clear(&list);
	json_decref(data);
	json_decref(meta);
	free(stream);
	free(category);
}

static json_t *blob(size_t size)
{
	char *s = pv_xmalloc(size + 1);
	json_t *j;

	memset(s, 'x', size);
	s[size] = '\0';
	j = json_pack("{s:s}", "blob", s);
	free(s);
	return j;
}

static void oversized_events_are_refused(void **state)
{
	char *stream = fresh_stream();
	struct pv_es_page page;
	struct pv_error err;
	char id[PV_UUID_LEN + 1];
	int64_t v;

	json_t *big = blob(PV_ES_EVENT_MAX);
	pv_uuid_new(id);
	struct pv_es_new_event ev = {id, "Big", big, NULL};
	assert_int_equal(pv_es_append(es, stream, PV_ES_ANY, &ev, 1, &v, &err), PV_ERR_TOO_LARGE);
	assert_int_equal(pv_es_read_stream(es, stream, 0, 10, false, &page, &err),
			 PV_ERR_NOT_FOUND);
	json_decref(big);

	/* Data and metadata count together. */
	json_t *half = blob(PV_ES_EVENT_MAX / 2 + 16);
	ev = (struct pv_es_new_event){id, "Big", half, half};
	assert_int_equal(pv_es_append(es, stream, PV_ES_ANY, &ev, 1, &v, &err), PV_ERR_TOO_LARGE);
	json_decref(half);

	/* Large but allowed. */
	json_t *ok = blob(512 * 1024);
	ev = (struct pv_es_new_event){id, "Big", ok, NULL};
	assert_int_equal(pv_es_append(es, stream, PV_ES_ANY, &ev, 1, &v, &err), PV_OK);
	assert_int_equal(pv_es_read_stream(es, stream, 0, 10, false, &page, &err), PV_OK);
	assert_int_equal(page.count, 1);
	assert_true(json_equal(page.events[0].data, ok));
	pv_es_page_clear(&page);
	json_decref(ok);
	free(stream);
}

static void list_streams_of_a_category(void **state)
{
	char cat[PV_ULID_LEN + 2], other[PV_ULID_LEN + 2];
	struct pv_es_stream_list list;
	struct pv_error err;
	int64_t v;

	fresh_category(cat);
	fresh_category(other);
	for (int k = 0; k < 3; k++) {
		char stream[64];
		struct batch b;
		snprintf(stream, sizeof stream, "%s-%d", cat, k);
		batch_make(&b, (size_t)k + 1, 0);
		assert_int_equal(append(es, stream, PV_ES_NO_STREAM, &b, &v), PV_OK);
		batch_free(&b);
	}
	assert_int_equal(pv_es_list_streams(es, cat, &list, &err), PV_OK);
	assert_int_equal(list.count, 3);
	for (size_t i = 0; i < list.count; i++) {
		char want[64];
		snprintf(want, sizeof want, "%s-%zu", cat, i);
		/* Order is not promised: find it. */
		size_t j = 0;
		while (j < list.count && strcmp(list.streams[j].name, want) != 0)
			j++;
		assert_true(j < list.count);
		assert_int_equal(list.streams[j].version, (int64_t)i);
		assert_non_null(list.streams[j].updated);
		assert_true(strlen(list.streams[j].updated) >= 20);
		assert_int_equal(list.streams[j].updated[strlen(list.streams[j].updated) - 1], 'Z');
	}
	pv_es_stream_list_clear(&list);
	assert_int_equal(pv_es_list_streams(es, other, &list, &err), PV_OK);
	assert_int_equal(list.count, 0);
	pv_es_stream_list_clear(&list);
}

static int setup(void **state)
{
	es = open_store();
	return es ? 0 : -1;
}

static int teardown(void **state)
{
	pv_es_close(es);
	es = NULL;
	return 0;
}

/* ---- the unit of work ------------------------------------------------ */

/* A sink that counts what the store asked of it. */
struct probe_sink {
	struct pv_es_sink base;
	bool shared; /* the store shared a connection: the unit is a transaction */
	int begins, writes, ends;
	bool committed;
};

static enum pv_err probe_begin(struct pv_es_sink *s, struct pg_conn *shared, struct pv_error *err)
{
	struct probe_sink *p = (struct probe_sink *)s;

	(void)err;
	p->shared = shared != NULL;
	p->begins++;
	return PV_OK;
}

static enum pv_err probe_write(struct pv_es_sink *s, struct pv_error *err)
{
	(void)err;
	((struct probe_sink *)s)->writes++;
	return PV_OK;
}

static void probe_end(struct pv_es_sink *s, bool committed)
{
	struct probe_sink *p = (struct probe_sink *)s;

	p->ends++;
	p->committed = committed;
}

static const struct pv_es_sink_ops probe_ops = {probe_begin, probe_write, probe_end};

static void unit_begin(struct probe_sink *sink)
{
	struct pv_error err;

	*sink = (struct probe_sink){.base.ops = &probe_ops};
	assert_int_equal(pv_es_begin(es, &sink->base, &err), PV_OK);
	assert_int_equal(sink->begins, 1);
}

static void unit_commit(struct probe_sink *sink)
{
	struct pv_error err;

	assert_int_equal(pv_es_commit(es, &err), PV_OK);
	assert_int_equal(sink->writes, 1);
	assert_int_equal(sink->ends, 1);
	assert_true(sink->committed);
}

static void unit_rollback(struct probe_sink *sink)
{
	pv_es_rollback(es);
	assert_int_equal(sink->writes, 0);
	assert_int_equal(sink->ends, 1);
	assert_false(sink->committed);
}

static void append_many_writes_each_stream(void **state)
{
	char *old = fresh_stream(), *fresh = fresh_stream();
	struct batch one, a, b;
	struct probe_sink sink;
	struct pv_error err;
	struct pv_es_page page = {0};
	size_t failed = 99;
	int64_t v;

	(void)state;
	batch_make(&one, 1, 0);
	batch_make(&a, 2, 1);
	batch_make(&b, 3, 0);
	assert_int_equal(append(es, old, PV_ES_NO_STREAM, &one, &v), PV_OK);
	struct pv_es_append_req req[2] = {
		{.stream = fresh, .expected = PV_ES_NO_STREAM, .events = b.ev, .count = 3},
		{.stream = old, .expected = 0, .events = a.ev, .count = 2},
	};
	unit_begin(&sink);
	assert_int_equal(pv_es_append_many(es, req, 2, &failed, &err), PV_OK);
	unit_commit(&sink);
	assert_int_equal(req[0].version, 2);
	assert_int_equal(req[1].version, 2);
	assert_false(req[0].continued);
	assert_false(req[1].continued);

	assert_int_equal(pv_es_read_stream(es, old, 0, 10, false, &page, &err), PV_OK);
	assert_int_equal(page.count, 3);
	for (size_t k = 1; k < 3; k++) {
		assert_int_equal(page.events[k].number, (int64_t)k);
		assert_string_equal(page.events[k].id, a.ids[k - 1]);
		assert_true(json_equal(page.events[k].data, a.data[k - 1]));
	}
	pv_es_page_clear(&page);
	assert_int_equal(count_events(fresh), 3);

	/* Outside a unit too. */
	batch_free(&one);
	batch_make(&one, 1, 9);
	req[0] = (struct pv_es_append_req){
		.stream = fresh, .expected = 2, .events = one.ev, .count = 1};
	assert_int_equal(pv_es_append_many(es, req, 1, &failed, &err), PV_OK);
	assert_int_equal(req[0].version, 3);

	batch_free(&one);
	batch_free(&a);
	batch_free(&b);
	free(old);
	free(fresh);
}

static void append_many_refuses_a_stale_or_deleted_stream(void **state)
{
	char *live = fresh_stream(), *other = fresh_stream(), *gone = fresh_stream();
	struct batch two, a;
	struct probe_sink sink;
	struct pv_error err;
	struct pv_es_page page = {0};
	size_t failed = 99;
	int64_t v;

	(void)state;
	batch_make(&two, 2, 0);
	assert_int_equal(append(es, live, PV_ES_NO_STREAM, &two, &v), PV_OK);
	assert_int_equal(append(es, gone, PV_ES_NO_STREAM, &two, &v), PV_OK);
	assert_int_equal(pv_es_delete_stream(es, gone, PV_ES_ANY, true, &err), PV_OK);
	batch_make(&a, 1, 5);

	/* live is at 1, not 0: a conflict naming it; a transaction keeps
	 * the other stream unwritten. */
	struct pv_es_append_req req[2] = {
		{.stream = other, .expected = PV_ES_NO_STREAM, .events = a.ev, .count = 1},
		{.stream = live, .expected = 0, .events = a.ev, .count = 1},
	};
	unit_begin(&sink);
	assert_int_equal(pv_es_append_many(es, req, 2, &failed, &err), PV_ERR_CONFLICT);
	unit_rollback(&sink);
	assert_int_equal(failed, 1);
	assert_int_equal(req[1].version, 1);
	assert_non_null(strstr(err.msg, live));
	if (sink.shared)
		assert_int_equal(pv_es_read_stream(es, other, 0, 10, false, &page, &err),
				 PV_ERR_NOT_FOUND);
	assert_int_equal(count_events(live), 2);

	/* A new stream that exists after all (other ids) is a conflict too. */
	batch_free(&a);
	batch_make(&a, 1, 6);
	req[1] = (struct pv_es_append_req){
		.stream = live, .expected = PV_ES_NO_STREAM, .events = a.ev, .count = 1};
	unit_begin(&sink);
	assert_int_equal(pv_es_append_many(es, &req[1], 1, &failed, &err), PV_ERR_CONFLICT);
	unit_rollback(&sink);
	assert_int_equal(req[1].version, 1);

	/* Deleted for good: gone. */
	req[0].stream = live;
	req[0].expected = 1;
	req[1] = (struct pv_es_append_req){
		.stream = gone, .expected = 1, .events = a.ev, .count = 1};
	unit_begin(&sink);
	assert_int_equal(pv_es_append_many(es, &req[1], 1, &failed, &err), PV_ERR_GONE);
	unit_rollback(&sink);
	assert_int_equal(failed, 0);

	/* Named twice: refused before any work. */
	req[1] = req[0];
	unit_begin(&sink);
	assert_int_equal(pv_es_append_many(es, req, 2, &failed, &err), PV_ERR_INVALID);
	unit_rollback(&sink);
	assert_int_equal(count_events(live), 2);

	batch_free(&two);
	batch_free(&a);
	free(live);
	free(other);
	free(gone);
}

/* As a single append does (and EventStoreDB): a soft-deleted stream is
 * created again with expected -1, its numbers going on from its last one;
 * expected at its old number it is a conflict (it has no events now). */
static void append_many_continues_a_soft_deleted_stream(void **state)
{
	char *soft = fresh_stream(), *fresh = fresh_stream();
	struct batch three, a, b;
	struct probe_sink sink;
	struct pv_error err;
	struct pv_es_page page = {0};
	size_t failed = 99;
	int64_t v;

	(void)state;
	batch_make(&three, 3, 0);
	assert_int_equal(append(es, soft, PV_ES_NO_STREAM, &three, &v), PV_OK);
	assert_int_equal(pv_es_delete_stream(es, soft, PV_ES_ANY, false, &err), PV_OK);
	batch_make(&a, 2, 3);
	batch_make(&b, 1, 0);

	struct pv_es_append_req req[2] = {
		{.stream = soft, .expected = 2, .events = a.ev, .count = 2},
		{.stream = fresh, .expected = PV_ES_NO_STREAM, .events = b.ev, .count = 1},
	};
	unit_begin(&sink);
	assert_int_equal(pv_es_append_many(es, req, 1, &failed, &err), PV_ERR_CONFLICT);
	unit_rollback(&sink);
	assert_int_equal(failed, 0);

	req[0].expected = PV_ES_NO_STREAM;
	unit_begin(&sink);
	assert_int_equal(pv_es_append_many(es, req, 2, &failed, &err), PV_OK);
	unit_commit(&sink);
	assert_true(req[0].continued);
	assert_int_equal(req[0].version, 4);
	assert_false(req[1].continued);
	assert_int_equal(req[1].version, 0);

	assert_int_equal(pv_es_read_stream(es, soft, 0, 10, false, &page, &err), PV_OK);
	assert_int_equal(page.count, 2);
	for (size_t k = 0; k < 2; k++) {
		assert_int_equal(page.events[k].number, (int64_t)k + 3);
		assert_string_equal(page.events[k].id, a.ids[k]);
	}
	pv_es_page_clear(&page);

	/* Live again: the next append expects its number, as any stream's. */
	batch_free(&b);
	batch_make(&b, 1, 5);
	req[0] = (struct pv_es_append_req){
		.stream = soft, .expected = 4, .events = b.ev, .count = 1};
	unit_begin(&sink);
	assert_int_equal(pv_es_append_many(es, req, 1, &failed, &err), PV_OK);
	unit_commit(&sink);
	assert_false(req[0].continued);
	assert_int_equal(req[0].version, 5);

	batch_free(&three);
	batch_free(&a);
	batch_free(&b);
	free(soft);
	free(fresh);
}

static void check_versions_sees_where_streams_are(void **state)
{
	char *live = fresh_stream(), *none = fresh_stream(), *soft = fresh_stream(),
	     *hard = fresh_stream();
	struct batch three;
	struct probe_sink sink;
	struct pv_error err;
	size_t failed = 99;
	int64_t v;

	(void)state;
	batch_make(&three, 3, 0);
	assert_int_equal(append(es, live, PV_ES_NO_STREAM, &three, &v), PV_OK);
	assert_int_equal(pv_es_append(es, soft, PV_ES_NO_STREAM, three.ev, 1, &v, &err), PV_OK);
	assert_int_equal(pv_es_delete_stream(es, soft, PV_ES_ANY, false, &err), PV_OK);
	assert_int_equal(pv_es_append(es, hard, PV_ES_NO_STREAM, three.ev, 1, &v, &err), PV_OK);
	assert_int_equal(pv_es_delete_stream(es, hard, PV_ES_ANY, true, &err), PV_OK);

	struct pv_es_expect x[3] = {{live, 2}, {none, -1}, {soft, -1}};
	unit_begin(&sink);
	assert_int_equal(pv_es_check_versions(es, x, 3, &failed, &err), PV_OK);
	x[0].version = 1;
	assert_int_equal(pv_es_check_versions(es, x, 3, &failed, &err), PV_ERR_CONFLICT);
	assert_int_equal(failed, 0);
	assert_non_null(strstr(err.msg, live));
	x[0].version = 2;
	x[1] = (struct pv_es_expect){hard, -1};
	assert_int_equal(pv_es_check_versions(es, x, 3, &failed, &err), PV_ERR_CONFLICT);
	assert_int_equal(failed, 1);
	x[1] = (struct pv_es_expect){none, 0};
	assert_int_equal(pv_es_check_versions(es, x, 3, &failed, &err), PV_ERR_CONFLICT);
	assert_int_equal(failed, 1);
	unit_rollback(&sink);
	/* One unit at a time. */
	unit_begin(&sink);
	assert_int_equal(pv_es_begin(es, &sink.base, &err), PV_ERR_INVALID);
	unit_commit(&sink);

	batch_free(&three);
	free(live);
	free(none);
	free(soft);
	free(hard);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(append_with_each_expected_version),
		cmocka_unit_test(bad_appends_are_refused),
		cmocka_unit_test(resending_the_same_ids_is_idempotent),
		cmocka_unit_test(paging_forward_and_backward),
		cmocka_unit_test(category_order_with_concurrent_writers),
		cmocka_unit_test(racing_appenders_cannot_both_win),
		cmocka_unit_test(long_poll_wakes_on_append),
		cmocka_unit_test(soft_delete_then_recreate),
		cmocka_unit_test(hard_delete_is_forever),
		cmocka_unit_test(non_ascii_names_and_data),
		cmocka_unit_test(oversized_events_are_refused),
		cmocka_unit_test(list_streams_of_a_category),
		cmocka_unit_test(append_many_writes_each_stream),
		cmocka_unit_test(append_many_refuses_a_stale_or_deleted_stream),
		cmocka_unit_test(append_many_continues_a_soft_deleted_stream),
		cmocka_unit_test(check_versions_sees_where_streams_are),
	};
	const char *backend = getenv("PV_TEST_ES_BACKEND");

	if (!backend || !*backend) {
		printf("1..0 # SKIP PV_TEST_ES_BACKEND is not set (postgres, esdb or kurrentdb)\n");
		return 0;
	}
	opts.backend = backend;
	dense_positions = strcmp(backend, "kurrentdb") != 0;
	opts.pg_conninfo = getenv("PV_TEST_PG_CONNINFO");
	opts.url = getenv("PV_TEST_ES_URL");
	opts.username = getenv("PV_TEST_ES_USER");
	opts.password = getenv("PV_TEST_ES_PASSWORD");
	opts.ca_file = getenv("PV_TEST_ES_CA");
	opts.timeout_ms = 30000;
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests_name("eventstore conformance", tests, setup, teardown) ? 1
											     : 0;
}
