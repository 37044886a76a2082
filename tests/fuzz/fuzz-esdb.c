/* libFuzzer target: EventStoreDB's AtomPub answers (feeds, entries, error
 * answers and their headers) as lib/eventstore/esdb.c reads them.  The
 * input names an operation (first line: "forward FROM MAX", "backward FROM
 * MAX", "category FROM MAX", "append EXPECTED COUNT", "list", "delete
 * EXPECTED") and the server's answers to it (answers.h); the store's public
 * operations run with the answers handed to the same libcurl callbacks.
 *
 * Invariants: a page never holds an event number (or category position)
 * outside what was asked for, nor out of order, and says where the next
 * page starts past it; an append's version covers the events appended;
 * error messages carry no raw control character. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answers.h"
#include "fuzz.h"
#include "store.h"
#include "eventstore.h"
#include "eventstore/esdb.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...) FUZZ_FAIL("fuzz-esdb: " __VA_ARGS__)

static void check_page(const char *op, const struct pv_es_page *page, int64_t from, size_t max)
{
	bool category = strcmp(op, "category") == 0, backward = strcmp(op, "backward") == 0;

	if (page->count > max)
		FAIL("%s: %zu events on a page of %zu", op, page->count, max);
	for (size_t i = 0; i < page->count; i++) {
		const struct pv_es_event *e = &page->events[i];
		int64_t n = category ? e->position : e->number;

		if (!e->type || !e->stream || !e->data || !e->metadata)
			FAIL("%s: event %zu lacks a field", op, i);
		if (backward ? (from >= 0 && (n > from || n <= from - (int64_t)max))
			     : (n < from || n - from >= (int64_t)max))
			FAIL("%s from %" PRId64 " (%zu): event %" PRId64 " outside the page", op,
			     from, max, n);
		if (i && (backward ? n >= (category ? page->events[i - 1].position
						    : page->events[i - 1].number)
				   : n <= (category ? page->events[i - 1].position
						    : page->events[i - 1].number)))
			FAIL("%s: event %" PRId64 " out of order", op, n);
	}
	if (!backward && page->count &&
	    page->next <= (category ? page->events[page->count - 1].position
				    : page->events[page->count - 1].number))
		FAIL("%s: next %" PRId64 " is not past the page", op, page->next);
	if (!backward && page->next < from)
		FAIL("%s: next %" PRId64 " before from %" PRId64, op, page->next, from);
}

static void check_append(enum pv_err rc, int64_t expected, size_t count, int64_t version,
			 const char *msg)
{
	(void)expected;
	(void)msg;
	if (rc == PV_OK && version < (int64_t)count - 1)
		FAIL("append of %zu: version %" PRId64, count, version);
}

static void check_list(const struct pv_es_stream_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		if (!list->streams[i].name || list->streams[i].version < 0)
			FAIL("list: stream %zu without a name or version", i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_store_checks checks = {check_page, check_append, check_list};
	struct pv_es_options opts = {.backend = "esdb", .url = "http://127.0.0.1:1"};
	struct fuzz_answers answers;
	struct pv_error err = {PV_OK, ""};
	struct pv_es *es;
	struct fuzz_op op;

	pv_log_set_level(PV_LOG_ERROR);
	if (!fuzz_answers_op(&answers, data, size, &op))
		return 0;
	if (pv_es_esdb_open(&opts, &es, &err) != PV_OK)
		FAIL("open: %s", err.msg);
	pv_es_esdb_set_transport(es, fuzz_answers_transport, &answers);
	fuzz_store_run(es, &op, "fuzz-esdb", &checks);
	return 0;
}
