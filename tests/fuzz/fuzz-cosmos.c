/* libFuzzer target: Cosmos DB's answers (documents, query pages, error
 * bodies, x-ms-retry-after-ms, ETags and continuation tokens) as
 * lib/cosmos.c reads them.  The input names an operation (first line:
 * "read", "create", "upsert", "replace", "delete", "query"; "ensure" opens
 * with create_if_missing) and the server's answers (answers.h), the first
 * of them to the container read every client makes when it opens.
 *
 * Invariants: a query gives an array of documents and a continuation token
 * that can go back out in a header (no control character); a read or a
 * write gives a JSON object; error messages carry no raw control
 * character. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answers.h"
#include "fuzz.h"
#include "cosmos.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...) FUZZ_FAIL("fuzz-cosmos: " __VA_ARGS__)

static void check_token(const char *what, const char *s)
{
	if (!s)
		return;
	if (!*s)
		FAIL("%s is empty", what);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			FAIL("%s holds 0x%02x", what, *p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char pk[] = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
	struct pv_cosmos_transport t = {fuzz_answers_transport, NULL};
	struct pv_cosmos_options o = {
		.endpoint = "http://127.0.0.1:1",
		/* The emulator's well-known key: only signs, never leaves. */
		.key = "C2y6yDjf5/"
		       "R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy6"
		       "7XIw/Jw==",
		.database = "photovote",
		.container = "elections",
		.max_retries = 2,
		.transport = &t,
	};
	struct fuzz_answers answers;
	struct pv_error err = {PV_OK, ""};
	struct pv_cosmos *c;
	json_t *doc = NULL, *stored = NULL;
	char op[64], *etag = NULL, *next = NULL;
	enum pv_err rc;

	pv_log_set_level(PV_LOG_ERROR);
	fuzz_answers_init(&answers, data, size, op, sizeof op);
	t.ctx = &answers;
	o.create_if_missing = strcmp(op, "ensure") == 0;
	rc = pv_cosmos_open(&o, &c, &err);
	if (rc != PV_OK) {
		fuzz_check_message("fuzz-cosmos", err.msg);
		return 0;
	}
	if (strcmp(op, "read") == 0) {
		rc = pv_cosmos_read(c, pk,
				    "election-"
				    "01ARZ3NDEKTSV4RRFFQ69G5FAV",
				    &stored, &etag, &err);
		if (rc == PV_OK && !json_is_object(stored))
			FAIL("read gave no object");
	} else if (strcmp(op, "create") == 0 || strcmp(op, "upsert") == 0 ||
		   strcmp(op, "replace") == 0) {
		doc = json_pack("{s:s,s:s,s:i}", "id", "election-01ARZ3NDEKTSV4RRFFQ69G5FAV",
				"election_id", pk, "version", 3);
		rc = op[0] == 'c' ? pv_cosmos_create(c, pk, doc, &stored, &etag, &err)
		     : op[0] == 'u'
			     ? pv_cosmos_upsert(c, pk, doc, "\"0a00-etag\"", &stored, &etag, &err)
			     : pv_cosmos_replace(c, pk, doc, "\"0a00-etag\"", &stored, &etag, &err);
		if (rc == PV_OK && !json_is_object(stored))
			FAIL("%s gave no object", op);
	} else if (strcmp(op, "delete") == 0) {
		rc = pv_cosmos_delete(c, pk, "election-01ARZ3NDEKTSV4RRFFQ69G5FAV", NULL, &err);
	} else if (strcmp(op, "query") == 0) {
		json_t *params = json_pack("{s:s}", "@pk", pk);

		rc = pv_cosmos_query(c, "SELECT * FROM c WHERE c.election_id = @pk", params, NULL,
				     10, "+RID:~abc#RT:1", &doc, &next, &err);
		json_decref(params);
		if (rc == PV_OK && !json_is_array(doc))
			FAIL("query gave no array");
		if (rc == PV_OK)
			check_token("continuation", next);
	}
	if (rc != PV_OK)
		fuzz_check_message("fuzz-cosmos", err.msg);
	if (getenv("PV_FUZZ_VERBOSE")) /* what a corpus file does, for its author */
		fprintf(stderr, "%s: %s\n", op, rc == PV_OK ? "ok" : err.msg);
	json_decref(doc);
	json_decref(stored);
	free(etag);
	free(next);
	pv_cosmos_close(c);
	return 0;
}
