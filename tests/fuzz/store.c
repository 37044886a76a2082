#include "store.h"

#include "fuzz.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "many EXPECTED COUNT": one event in each of COUNT streams (2 to 4) as one
 * unit (pv_es_append_many: the backend's sessions or concurrent calls).  A
 * success gives every stream a version that fits; a failure names a stream
 * of the unit. */
static enum pv_err run_many(struct pv_es *es, int64_t expected, int64_t count, struct pv_error *err)
{
	static const char *const streams[] = {FUZZ_STREAM, FUZZ_STREAM_2, FUZZ_STREAM_3,
					      FUZZ_STREAM_4};
	static const char *const ids[] = {
		"5b1c2a9e-8b7d-4c6e-9a5b-000000000001", "5b1c2a9e-8b7d-4c6e-9a5b-000000000002",
		"5b1c2a9e-8b7d-4c6e-9a5b-000000000003", "5b1c2a9e-8b7d-4c6e-9a5b-000000000004"};
	json_t *d = json_pack("{s:s}", "election_id", "01ARZ3NDEKTSV4RRFFQ69G5FAV");
	json_t *m = json_pack("{s:s}", "user", "alice@example.org");
	struct pv_es_new_event evs[4];
	struct pv_es_append_req reqs[4];
	size_t n = count < 2 ? 2 : count > 4 ? 4 : (size_t)count, failed = 99;
	enum pv_err rc;

	for (size_t i = 0; i < n; i++) {
		evs[i] = (struct pv_es_new_event){ids[i], "ElectionCreated", d, m};
		reqs[i] = (struct pv_es_append_req){streams[i], expected, &evs[i], 1, -5, false};
	}
	rc = pv_es_append_many(es, reqs, n, &failed, err);
	if (rc != PV_OK && failed >= n)
		FUZZ_FAIL("many: failed (%s) at %zu of %zu streams", err->msg, failed, n);
	for (size_t i = 0; rc == PV_OK && i < n; i++)
		if (reqs[i].version < 0 || (expected >= 0 && reqs[i].version != expected + 1))
			FUZZ_FAIL("many: stream %zu appended after %" PRId64 " at version %" PRId64,
				  i, expected, reqs[i].version);
	json_decref(d);
	json_decref(m);
	return rc;
}

void fuzz_store_run(struct pv_es *es, const struct fuzz_op *op, const char *target,
		    const struct fuzz_store_checks *checks)
{
	static const char *const ids[] = {"3f1c2a9e-8b7d-4c6e-9a5b-1d2e3f4a5b6c",
					  "4a2d3b0f-9c8e-4d7f-8b6c-2e3f4a5b6c7d"};
	struct pv_es_page page = {0};
	struct pv_es_stream_list list;
	struct pv_error err = {PV_OK, ""};
	const char *word = op->word;
	enum pv_err rc;

	if (strcmp(word, "forward") == 0 || strcmp(word, "backward") == 0) {
		rc = pv_es_read_stream(es, FUZZ_STREAM, op->a, (size_t)op->b, word[0] == 'b', &page,
				       &err);
		if (rc == PV_OK)
			checks->page(word, &page, op->a, (size_t)op->b);
		pv_es_page_clear(&page);
	} else if (strcmp(word, "category") == 0) {
		rc = pv_es_read_category(es, "Election", op->a, (size_t)op->b, 0, &page, &err);
		if (rc == PV_OK)
			checks->page(word, &page, op->a, (size_t)op->b);
		pv_es_page_clear(&page);
	} else if (strcmp(word, "append") == 0) {
		json_t *d = json_pack("{s:s}", "election_id", "01ARZ3NDEKTSV4RRFFQ69G5FAV");
		struct pv_es_new_event evs[2] = {{ids[0], "ElectionCreated", d, NULL},
						 {ids[1], "ElectionOpened", d, NULL}};
		size_t count = op->b > 1 ? 2 : 1;
		int64_t version = -5;

		rc = pv_es_append(es, FUZZ_STREAM, op->a, evs, count, &version, &err);
		checks->append(rc, op->a, count, version, err.msg);
		json_decref(d);
	} else if (strcmp(word, "many") == 0) {
		rc = run_many(es, op->a, op->b, &err);
	} else if (strcmp(word, "list") == 0) {
		rc = pv_es_list_streams(es, "Election", &list, &err);
		if (rc == PV_OK) {
			checks->list(&list);
			pv_es_stream_list_clear(&list);
		}
	} else if (strcmp(word, "delete") == 0) {
		rc = pv_es_delete_stream(es, FUZZ_STREAM, op->a, op->b > 1, &err);
	} else {
		pv_es_close(es);
		return;
	}
	if (rc != PV_OK)
		fuzz_check_message(target, err.msg);
	if (getenv("PV_FUZZ_VERBOSE")) /* what a corpus file does, for its author */
		fprintf(stderr, "%s: %s\n", op->line, rc == PV_OK ? "ok" : err.msg);
	pv_es_close(es);
}
