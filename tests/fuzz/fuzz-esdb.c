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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ids[] = {"3f1c2a9e-8b7d-4c6e-9a5b-1d2e3f4a5b6c",
					  "4a2d3b0f-9c8e-4d7f-8b6c-2e3f4a5b6c7d"};
	struct pv_es_options opts = {.backend = "esdb", .url = "http://127.0.0.1:1"};
	struct fuzz_answers answers;
	struct pv_es_page page;
	struct pv_es_stream_list list;
	struct pv_error err = {PV_OK, ""};
	struct pv_es *es;
	char op[64], word[16] = "";
	long long a = 0, b = 1;
	enum pv_err rc;

	pv_log_set_level(PV_LOG_ERROR);
	fuzz_answers_init(&answers, data, size, op, sizeof op);
	if (sscanf(op, "%15s %lld %lld", word, &a, &b) < 1)
		return 0;
	if (b < 1 || b > 5000)
		b = 1 + (b < 0 ? -(b % 5000) : b % 5000);
	if (pv_es_esdb_open(&opts, &es, &err) != PV_OK)
		FAIL("open: %s", err.msg);
	pv_es_esdb_set_transport(es, fuzz_answers_transport, &answers);
	memset(&page, 0, sizeof page);
	if (strcmp(word, "forward") == 0 || strcmp(word, "backward") == 0) {
		bool backward = word[0] == 'b';

		rc = pv_es_read_stream(es, "Election-01ARZ3NDEKTSV4RRFFQ69G5FAV", a, (size_t)b,
				       backward, &page, &err);
		if (rc == PV_OK)
			check_page(word, &page, a, (size_t)b);
		pv_es_page_clear(&page);
	} else if (strcmp(word, "category") == 0) {
		rc = pv_es_read_category(es, "Election", a, (size_t)b, 0, &page, &err);
		if (rc == PV_OK)
			check_page(word, &page, a, (size_t)b);
		pv_es_page_clear(&page);
	} else if (strcmp(word, "append") == 0) {
		json_t *d = json_pack("{s:s}", "election_id", "01ARZ3NDEKTSV4RRFFQ69G5FAV");
		struct pv_es_new_event evs[2] = {{ids[0], "ElectionCreated", d, NULL},
						 {ids[1], "ElectionOpened", d, NULL}};
		size_t count = b > 1 ? 2 : 1;
		int64_t version = -5;

		rc = pv_es_append(es, "Election-01ARZ3NDEKTSV4RRFFQ69G5FAV", a, evs, count,
				  &version, &err);
		if (rc == PV_OK && version < (int64_t)count - 1)
			FAIL("append of %zu: version %" PRId64, count, version);
		json_decref(d);
	} else if (strcmp(word, "list") == 0) {
		rc = pv_es_list_streams(es, "Election", &list, &err);
		if (rc == PV_OK) {
			for (size_t i = 0; i < list.count; i++)
				if (!list.streams[i].name || list.streams[i].version < 0)
					FAIL("list: stream %zu without a name or version", i);
			pv_es_stream_list_clear(&list);
		}
	} else if (strcmp(word, "delete") == 0) {
		rc = pv_es_delete_stream(es, "Election-01ARZ3NDEKTSV4RRFFQ69G5FAV", a, b > 1, &err);
	} else {
		pv_es_close(es);
		return 0;
	}
	if (rc != PV_OK)
		fuzz_check_message("fuzz-esdb", err.msg);
	if (getenv("PV_FUZZ_VERBOSE")) /* what a corpus file does, for its author */
		fprintf(stderr, "%s: %s\n", op, rc == PV_OK ? "ok" : err.msg);
	pv_es_close(es);
	return 0;
}
