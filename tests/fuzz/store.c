#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
