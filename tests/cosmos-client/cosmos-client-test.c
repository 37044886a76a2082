/* The Cosmos DB client against the real stand-in (@vercel/cosmosdb-server),
 * over HTTP, over TLS with the run's CA, and through fault-proxy.py for the
 * 429/5xx/timeout paths the stand-in does not have.  Driven by
 * cosmos-client.sh, which exports:
 *
 *   PV_TEST_COSMOS_URL       http://127.0.0.1:port of the stand-in
 *   PV_TEST_COSMOS_TLS_URL   https://127.0.0.1:port, PV_TEST_COSMOS_CA its CA
 *   PV_TEST_COSMOS_PROXY_URL the fault proxy in front of the HTTP stand-in
 *
 * Each test uses a database of its own, so tests do not see each other's
 * documents. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cosmos.h"

#include "pv_test.h"

/* Any base64 key: the stand-in checks no signature (protocols.md §8). */
#define KEY                                                                                        \
	"uuTPhTbkOL5ZmYdw2XH0GjKNSb8d6fdAetfog1oH7YVNG1YNl163hVW7PW8qaPHrMxJrHv1Hi+eHcXEqxiyLYQ=="

static const char *env(const char *name)
{
	const char *v = getenv(name);

	if (!v || !*v) {
		fprintf(stderr, "cosmos-client-test: %s is not set (run cosmos-client.sh)\n", name);
		exit(1);
	}
	return v;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A database name no other test (or earlier run on a shared server) uses. */
static void unique_db(char *out, size_t n)
{
	static int seq;

	snprintf(out, n, "pvtest-%ld-%lld-%d", (long)getpid(), now_ms(), ++seq);
}

static struct pv_cosmos_options options(const char *endpoint, const char *db)
{
	struct pv_cosmos_options o = {
		.endpoint = endpoint,
		.key = KEY,
		.database = db,
		.container = "elections",
		.timeout_ms = 5000,
		.create_if_missing = true,
		.emulator_quirks = true,
	};
	return o;
}

static struct pv_cosmos *open_ok(const struct pv_cosmos_options *o)
{
	struct pv_cosmos *c = NULL;
	struct pv_error err = {0};

	if (pv_cosmos_open(o, &c, &err) != PV_OK)
		fail_msg("pv_cosmos_open %s: %s", o->endpoint, err.msg);
	return c;
}

static json_t *ballot(const char *id, const char *eid, int n)
{
	json_t *d = json_pack("{ss ss si ss}", "id", id, "election_id", eid, "n", n, "note",
			      "h\xc3\xa9 \"quoted\" \\ line\nbreak");
	assert_non_null(d);
	return d;
}

/* ---- fault proxy control (plain libcurl: test equipment) ---- */

static size_t sink(char *p, size_t s, size_t n, void *u)
{
	json_t **out = u;
	json_error_t je;

	*out = json_loadb(p, s * n, 0, &je);
	return s * n;
}

static json_t *proxy(const char *method, const char *what, const char *body)
{
	char url[512];
	json_t *answer = NULL;
	CURL *h = curl_easy_init();
	long status = 0;

	assert_non_null(h);
	snprintf(url, sizeof url, "%s/__proxy/%s", env("PV_TEST_COSMOS_PROXY_URL"), what);
	curl_easy_setopt(h, CURLOPT_URL, url);
	if (strcmp(method, "POST") == 0)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &answer);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
	assert_int_equal(curl_easy_perform(h), CURLE_OK);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	assert_int_equal(status, 200);
	curl_easy_cleanup(h);
	assert_non_null(answer);
	return answer;
}

static void proxy_reset(void)
{
	json_decref(proxy("POST", "reset", NULL));
}

static void proxy_faults(const char *json_list)
{
	json_decref(proxy("POST", "faults", json_list));
}

static long proxy_stat(const char *name)
{
	json_t *s = proxy("GET", "stats", NULL);
	long n = (long)json_integer_value(json_object_get(s, name));

	json_decref(s);
	return n;
}

static long proxy_requests(void)
{
	return proxy_stat("requests");
}

/* ---- plain HTTP ---- */

static void open_creates_and_checks_the_container(void **state)
{
	char db[64];
	struct pv_cosmos_options o;
	struct pv_cosmos *c = NULL;
	struct pv_error err = {0};

	(void)state;
	unique_db(db, sizeof db);
	o = options(env("PV_TEST_COSMOS_URL"), db);
	/* Not there and not to be created: named as missing. */
	o.create_if_missing = false;
	assert_int_equal(pv_cosmos_open(&o, &c, &err), PV_ERR_NOT_FOUND);
	assert_null(c);
	assert_non_null(strstr(err.msg, "create_if_missing is off"));
	/* Created, then found (409 on the second create is fine). */
	o.create_if_missing = true;
	c = open_ok(&o);
	assert_int_equal(pv_cosmos_ping(c, &err), PV_OK);
	pv_cosmos_close(c);
	c = open_ok(&o);
	pv_cosmos_close(c);
	o.create_if_missing = false;
	c = open_ok(&o);
	pv_cosmos_close(c);
}

static void open_refuses_bad_options(void **state)
{
	struct pv_cosmos_options o;
	struct pv_cosmos *c = NULL;
	struct pv_error err = {0};

	(void)state;
	o = options(env("PV_TEST_COSMOS_URL"), "pvtest-bad");
	o.key = "not base64!";
	assert_int_equal(pv_cosmos_open(&o, &c, &err), PV_ERR_CONFIG);
	assert_non_null(strstr(err.msg, "master key"));
	o.key = "";
	assert_int_equal(pv_cosmos_open(&o, &c, &err), PV_ERR_CONFIG);
	o = options("ftp://127.0.0.1:1", "pvtest-bad");
	assert_int_equal(pv_cosmos_open(&o, &c, &err), PV_ERR_CONFIG);
	o = options(env("PV_TEST_COSMOS_URL"), "bad/name");
	assert_int_equal(pv_cosmos_open(&o, &c, &err), PV_ERR_CONFIG);
	assert_null(c);
}

static void unreachable_server_is_unavailable(void **state)
{
	struct pv_cosmos_options o;
	struct pv_cosmos *c = NULL;
	struct pv_error err = {0};

	(void)state;
	/* Port 9 on loopback: nobody listens (discard is never enabled here). */
	o = options("http://127.0.0.1:9", "pvtest-down");
	o.max_retries = 2;
	assert_int_equal(pv_cosmos_open(&o, &c, &err), PV_ERR_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "libcurl"));
	assert_non_null(strstr(err.msg, "after 3 attempts"));
}

static void document_lifecycle(void **state)
{
	char db[64];
	struct pv_cosmos_options o;
	struct pv_cosmos *c;
	struct pv_error err = {0};
	json_t *d = ballot("b1", "E1", 1), *stored = NULL, *got = NULL;
	char *etag1 = NULL, *etag2 = NULL, *etag_read = NULL, *etag3 = NULL;

	(void)state;
	unique_db(db, sizeof db);
	o = options(env("PV_TEST_COSMOS_URL"), db);
	c = open_ok(&o);

	/* Create: 201, the stored document and its ETag (echoed verbatim:
	 * header value equals the body's _etag, nothing added). */
	assert_int_equal(pv_cosmos_create(c, "E1", d, &stored, &etag1, &err), PV_OK);
	assert_int_equal(pv_cosmos_last_status(c), 201);
	assert_non_null(etag1);
	assert_string_equal(etag1, json_string_value(json_object_get(stored, "_etag")));
	assert_true(json_equal(json_object_get(stored, "note"), json_object_get(d, "note")));
	json_decref(stored);

	/* Create again: the id is taken. */
	assert_int_equal(pv_cosmos_create(c, "E1", d, NULL, NULL, &err), PV_ERR_CONFLICT);
	assert_int_equal(pv_cosmos_last_status(c), 409);
	assert_non_null(strstr(err.msg, "HTTP 409"));

	/* Read it back. */
	assert_int_equal(pv_cosmos_read(c, "E1", "b1", &got, &etag_read, &err), PV_OK);
	assert_string_equal(etag_read, etag1);
	assert_int_equal(json_integer_value(json_object_get(got, "n")), 1);
	assert_true(json_equal(json_object_get(got, "note"), json_object_get(d, "note")));
	json_decref(got);

	/* Upsert of an existing document replaces it: 200 and a new ETag. */
	json_object_set_new(d, "n", json_integer(2));
	assert_int_equal(pv_cosmos_upsert(c, "E1", d, NULL, NULL, &etag2, &err), PV_OK);
	assert_int_equal(pv_cosmos_last_status(c), 200);
	assert_string_not_equal(etag1, etag2);

	/* Replace with the stale ETag: 412, reported as a conflict. */
	json_object_set_new(d, "n", json_integer(3));
	assert_int_equal(pv_cosmos_replace(c, "E1", d, etag1, NULL, NULL, &err), PV_ERR_CONFLICT);
	assert_int_equal(pv_cosmos_last_status(c), 412);
	assert_non_null(strstr(err.msg, "If-Match"));
	/* Upsert guarded by the stale ETag fails the same way. */
	assert_int_equal(pv_cosmos_upsert(c, "E1", d, etag1, NULL, NULL, &err), PV_ERR_CONFLICT);
	/* With the current one it succeeds. */
	assert_int_equal(pv_cosmos_replace(c, "E1", d, etag2, &stored, &etag3, &err), PV_OK);
	assert_int_equal(json_integer_value(json_object_get(stored, "n")), 3);
	json_decref(stored);

	/* Delete with a stale ETag: conflict; with none: gone. */
	assert_int_equal(pv_cosmos_delete(c, "E1", "b1", etag2, &err), PV_ERR_CONFLICT);
	assert_int_equal(pv_cosmos_delete(c, "E1", "b1", etag3, &err), PV_OK);
	assert_int_equal(pv_cosmos_last_status(c), 204);
	assert_int_equal(pv_cosmos_read(c, "E1", "b1", &got, NULL, &err), PV_ERR_NOT_FOUND);
	assert_null(got);
	assert_int_equal(pv_cosmos_delete(c, "E1", "b1", NULL, &err), PV_ERR_NOT_FOUND);
	/* Replace of a missing document. */
	assert_int_equal(pv_cosmos_replace(c, "E1", d, NULL, NULL, NULL, &err), PV_ERR_NOT_FOUND);

	/* Upsert of a new document creates it: 201. */
	assert_int_equal(pv_cosmos_upsert(c, "E1", d, NULL, NULL, NULL, &err), PV_OK);
	assert_int_equal(pv_cosmos_last_status(c), 201);

	free(etag1);
	free(etag2);
	free(etag3);
	free(etag_read);
	json_decref(d);
	pv_cosmos_close(c);
}

/* A document of {"id", "election_id", "pad": "x" * pad} whose JSON text is
 * `bytes` long, as the client sends it. */
static json_t *padded(const char *id, size_t bytes)
{
	json_t *d = json_pack("{s:s, s:s, s:s}", "id", id, "election_id", "E1", "pad", "");
	char *text = json_dumps(d, JSON_COMPACT);
	size_t base = strlen(text);
	char *pad;

	assert_true(bytes >= base);
	pad = malloc(bytes - base + 1);
	assert_non_null(pad);
	memset(pad, 'x', bytes - base);
	pad[bytes - base] = '\0';
	json_object_set_new(d, "pad", json_string(pad));
	free(pad);
	free(text);
	return d;
}

/* The test equipment enforces the service's item limit (tests/servers/
 * cosmos-limits.js): 2 MB of stored JSON, system properties counted, is
 * refused with 413 and the service's words; nothing is stored. */
static void items_over_2mb_are_refused(void **state)
{
	const size_t limit = 2u * 1024 * 1024;
	char db[64];
	struct pv_cosmos_options o;
	struct pv_cosmos *c;
	struct pv_error err = {0};
	json_t *fits = padded("fits", limit - 1024), *nearly = padded("nearly", limit - 64);
	json_t *over = padded("over", limit + 4096), *got = NULL;

	(void)state;
	unique_db(db, sizeof db);
	o = options(env("PV_TEST_COSMOS_URL"), db);
	c = open_ok(&o);
	assert_int_equal(pv_cosmos_upsert(c, "E1", fits, NULL, NULL, NULL, &err), PV_OK);
	assert_int_equal(pv_cosmos_last_status(c), 201);
	/* Under 2 MB as sent, over it once _rid, _self, _etag, _attachments
	 * and _ts are added. */
	assert_int_equal(pv_cosmos_upsert(c, "E1", nearly, NULL, NULL, NULL, &err),
			 PV_ERR_TOO_LARGE);
	assert_int_equal(pv_cosmos_last_status(c), 413);
	assert_non_null(strstr(err.msg, "HTTP 413"));
	assert_non_null(strstr(err.msg, "Request size is too large"));
	assert_int_equal(pv_cosmos_create(c, "E1", over, NULL, NULL, &err), PV_ERR_TOO_LARGE);
	assert_int_equal(pv_cosmos_last_status(c), 413);
	assert_int_equal(pv_cosmos_read(c, "E1", "nearly", &got, NULL, &err), PV_ERR_NOT_FOUND);
	assert_int_equal(pv_cosmos_read(c, "E1", "over", &got, NULL, &err), PV_ERR_NOT_FOUND);
	/* A replace that would grow a stored item past the limit leaves it. */
	json_object_set_new(over, "id", json_string("fits"));
	assert_int_equal(pv_cosmos_replace(c, "E1", over, NULL, NULL, NULL, &err),
			 PV_ERR_TOO_LARGE);
	assert_int_equal(pv_cosmos_read(c, "E1", "fits", &got, NULL, &err), PV_OK);
	assert_int_equal(json_string_length(json_object_get(got, "pad")),
			 json_string_length(json_object_get(fits, "pad")));
	json_decref(got);
	json_decref(fits);
	json_decref(nearly);
	json_decref(over);
	pv_cosmos_close(c);
}

static void missing_document_and_the_read_quirk(void **state)
{
	char db[64];
	struct pv_cosmos_options o;
	struct pv_cosmos *c;
	struct pv_error err = {0};
	json_t *got = NULL;
	char *etag = NULL;

	(void)state;
	unique_db(db, sizeof db);
	o = options(env("PV_TEST_COSMOS_URL"), db);
	c = open_ok(&o);
	assert_int_equal(pv_cosmos_read(c, "E1", "nope", &got, &etag, &err), PV_ERR_NOT_FOUND);
	assert_int_equal(pv_cosmos_last_status(c), 404);
	assert_null(got);
	assert_null(etag);
	pv_cosmos_close(c);

	/* Without the workaround the stand-in answers 500 (protocols.md §8):
	 * reported as an HTTP error naming the status and the server's words. */
	o.emulator_quirks = false;
	o.max_retries = -1;
	c = open_ok(&o);
	assert_int_equal(pv_cosmos_read(c, "E1", "nope", &got, NULL, &err), PV_ERR_HTTP);
	assert_int_equal(pv_cosmos_last_status(c), 500);
	assert_non_null(strstr(err.msg, "HTTP 500"));
	assert_non_null(strstr(err.msg, "undefined"));
	pv_cosmos_close(c);
}

static void invalid_arguments(void **state)
{
	char db[64];
	struct pv_cosmos_options o;
	struct pv_cosmos *c;
	struct pv_error err = {0};
	json_t *d, *got = NULL, *docs = NULL;
	char *next = NULL;

	(void)state;
	unique_db(db, sizeof db);
	o = options(env("PV_TEST_COSMOS_URL"), db);
	c = open_ok(&o);
	d = ballot("a/b", "E1", 1);
	assert_int_equal(pv_cosmos_create(c, "E1", d, NULL, NULL, &err), PV_ERR_INVALID);
	json_decref(d);
	/* The body's election_id must be the partition value. */
	d = ballot("ok", "E2", 1);
	assert_int_equal(pv_cosmos_create(c, "E1", d, NULL, NULL, &err), PV_ERR_INVALID);
	assert_non_null(strstr(err.msg, "election_id"));
	json_decref(d);
	d = json_pack("{ss}", "election_id", "E1");
	assert_int_equal(pv_cosmos_upsert(c, "E1", d, NULL, NULL, NULL, &err), PV_ERR_INVALID);
	json_decref(d);
	d = ballot("ok", "E1", 1);
	assert_int_equal(pv_cosmos_replace(c, "E1", d, "\"x\"\r\nX-Evil: 1", NULL, NULL, &err),
			 PV_ERR_INVALID);
	json_decref(d);
	assert_int_equal(pv_cosmos_read(c, "E1", "", &got, NULL, &err), PV_ERR_INVALID);
	assert_int_equal(pv_cosmos_read(c, "", "x", &got, NULL, &err), PV_ERR_INVALID);
	assert_int_equal(pv_cosmos_query(c, "SELECT * FROM c", NULL, NULL, 10, "tok\nen", &docs,
					 &next, &err),
			 PV_ERR_INVALID);
	/* Bad SQL: the server's 400, as invalid. */
	assert_int_equal(pv_cosmos_query(c, "SELEKT nonsense FROM", NULL, NULL, 10, NULL, &docs,
					 &next, &err),
			 PV_ERR_INVALID);
	assert_int_equal(pv_cosmos_last_status(c), 400);
	assert_null(docs);
	pv_cosmos_close(c);
}

static void query_pages(struct pv_cosmos *c, const char *sql, json_t *params, const char *pk,
			int page_size, json_t *seen, int *pages)
{
	struct pv_error err = {0};
	char *token = NULL;

	*pages = 0;
	do {
		json_t *docs = NULL;
		char *next = NULL;
		size_t i;
		json_t *doc;

		if (pv_cosmos_query(c, sql, params, pk, page_size, token, &docs, &next, &err) !=
		    PV_OK)
			fail_msg("query page %d: %s", *pages + 1, err.msg);
		assert_true(json_array_size(docs) <= (size_t)page_size);
		json_array_foreach(docs, i, doc)
		{
			const char *id = json_string_value(json_object_get(doc, "id"));
			assert_non_null(id);
			/* No document twice across pages. */
			assert_null(json_object_get(seen, id));
			json_object_set(seen, id, doc);
		}
		json_decref(docs);
		free(token);
		token = next;
		(*pages)++;
		assert_true(*pages < 50);
	} while (token);
}

static void query_with_continuation(void **state)
{
	char db[64], id[32];
	struct pv_cosmos_options o;
	struct pv_cosmos *c;
	struct pv_error err = {0};
	json_t *seen, *params;
	int pages;

	(void)state;
	unique_db(db, sizeof db);
	o = options(env("PV_TEST_COSMOS_URL"), db);
	c = open_ok(&o);
	for (int i = 0; i < 25; i++) {
		snprintf(id, sizeof id, "b%02d", i);
		json_t *d = ballot(id, "E1", i);
		assert_int_equal(pv_cosmos_create(c, "E1", d, NULL, NULL, &err), PV_OK);
		json_decref(d);
	}
	for (int i = 0; i < 5; i++) {
		snprintf(id, sizeof id, "o%02d", i);
		json_t *d = ballot(id, "E2", 100 + i);
		assert_int_equal(pv_cosmos_create(c, "E2", d, NULL, NULL, &err), PV_OK);
		json_decref(d);
	}

	/* One partition, 25 documents, pages of 10: 10 + 10 + 5. */
	seen = json_object();
	params = json_pack("{ss}", "@e", "E1");
	query_pages(c, "SELECT * FROM c WHERE c.election_id = @e", params, "E1", 10, seen, &pages);
	assert_int_equal(json_object_size(seen), 25);
	assert_int_equal(pages, 3);
	for (int i = 0; i < 25; i++) {
		snprintf(id, sizeof id, "b%02d", i);
		assert_non_null(json_object_get(seen, id));
	}
	json_decref(params);
	json_decref(seen);

	/* Across partitions, with a numeric parameter. */
	seen = json_object();
	params = json_pack("{si}", "@n", 20);
	query_pages(c, "SELECT * FROM c WHERE c.n >= @n", params, NULL, 4, seen, &pages);
	assert_int_equal(json_object_size(seen), 5 + 5);
	assert_non_null(json_object_get(seen, "o04"));
	assert_non_null(json_object_get(seen, "b24"));
	json_decref(params);
	json_decref(seen);

	/* Nothing matches: one empty page, no continuation. */
	seen = json_object();
	params = json_pack("{ss}", "@e", "E3");
	query_pages(c, "SELECT * FROM c WHERE c.election_id = @e", params, "E3", 10, seen, &pages);
	assert_int_equal(json_object_size(seen), 0);
	assert_int_equal(pages, 1);
	json_decref(params);
	json_decref(seen);
	pv_cosmos_close(c);
}

/* ---- TLS ---- */

static void tls_with_the_run_ca(void **state)
{
	char db[64];
	struct pv_cosmos_options o;
	struct pv_cosmos *c;
	struct pv_error err = {0};
	json_t *d = ballot("t1", "E1", 7), *got = NULL;

	(void)state;
	unique_db(db, sizeof db);
	o = options(env("PV_TEST_COSMOS_TLS_URL"), db);
	o.ca_file = env("PV_TEST_COSMOS_CA");
	c = open_ok(&o);
	assert_int_equal(pv_cosmos_create(c, "E1", d, NULL, NULL, &err), PV_OK);
	assert_int_equal(pv_cosmos_read(c, "E1", "t1", &got, NULL, &err), PV_OK);
	assert_int_equal(json_integer_value(json_object_get(got, "n")), 7);
	json_decref(got);
	assert_int_equal(pv_cosmos_read(c, "E1", "t2", &got, NULL, &err), PV_ERR_NOT_FOUND);
	assert_int_equal(pv_cosmos_delete(c, "E1", "t1", NULL, &err), PV_OK);
	json_decref(d);
	pv_cosmos_close(c);
}

static void tls_verification_is_on_by_default(void **state)
{
	struct pv_cosmos_options o;
	struct pv_cosmos *c = NULL;
	struct pv_error err = {0};

	(void)state;
	/* The system store does not know the run's throwaway CA. */
	o = options(env("PV_TEST_COSMOS_TLS_URL"), "pvtest-tls");
	assert_int_equal(pv_cosmos_open(&o, &c, &err), PV_ERR_UNAVAILABLE);
	assert_null(c);
	assert_non_null(strstr(err.msg, "libcurl"));
	assert_non_null(strstr(err.msg, "no HTTP status"));
	/* A CA file that does not exist is a configuration error. */
	o.ca_file = "/nonexistent/ca.pem";
	assert_int_equal(pv_cosmos_open(&o, &c, &err), PV_ERR_CONFIG);
}

/* ---- faults through the proxy ---- */

static struct pv_cosmos *proxied(char *db, size_t n, long timeout_ms, int retries)
{
	struct pv_cosmos_options o;

	unique_db(db, n);
	o = options(env("PV_TEST_COSMOS_PROXY_URL"), db);
	o.timeout_ms = timeout_ms;
	o.max_retries = retries;
	proxy_reset();
	struct pv_cosmos *c = open_ok(&o);
	proxy_reset();
	return c;
}

static void connections_are_reused(void **state)
{
	char db[64];
	struct pv_cosmos *c = proxied(db, sizeof db, 5000, 3);
	struct pv_error err = {0};
	json_t *d = ballot("k1", "E1", 1), *got = NULL;
	long before;

	(void)state;
	/* The proxy keeps connections open (the stand-in itself closes each):
	 * one client, one handle, one connection for many requests.  Each
	 * control request of this test opens a connection of its own. */
	before = proxy_stat("connections");
	assert_int_equal(pv_cosmos_create(c, "E1", d, NULL, NULL, &err), PV_OK);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(pv_cosmos_read(c, "E1", "k1", &got, NULL, &err), PV_OK);
		json_decref(got);
	}
	/* At most one new connection for the client (the one opened by
	 * pv_cosmos_open may still be in use) plus this stats request's. */
	assert_in_range(proxy_stat("connections") - before, 1, 2);
	assert_int_equal(proxy_requests(), 6);
	json_decref(d);
	pv_cosmos_close(c);
}

static void throttled_then_succeeds(void **state)
{
	char db[64];
	struct pv_cosmos *c = proxied(db, sizeof db, 5000, 4);
	struct pv_error err = {0};
	json_t *d = ballot("r1", "E1", 1), *got = NULL;
	long long t0;

	(void)state;
	proxy_faults("[{\"status\": 429, \"retry_after_ms\": 150, \"times\": 2}]");
	t0 = now_ms();
	/* A create is retried after 429: the throttled attempts did nothing. */
	assert_int_equal(pv_cosmos_create(c, "E1", d, NULL, NULL, &err), PV_OK);
	assert_true(now_ms() - t0 >= 300);
	assert_int_equal(proxy_requests(), 3);
	assert_int_equal(pv_cosmos_request_count(c) >= 3, 1);
	/* A read throttled without the header waits the default and succeeds. */
	proxy_faults("[{\"status\": 429}]");
	assert_int_equal(pv_cosmos_read(c, "E1", "r1", &got, NULL, &err), PV_OK);
	json_decref(got);
	assert_int_equal(proxy_requests(), 5);
	json_decref(d);
	pv_cosmos_close(c);
}

static void throttled_for_good_is_unavailable(void **state)
{
	char db[64];
	struct pv_cosmos *c = proxied(db, sizeof db, 5000, 2);
	struct pv_error err = {0};
	json_t *got = NULL;

	(void)state;
	proxy_faults("[{\"status\": 429, \"retry_after_ms\": 10, \"times\": 10}]");
	assert_int_equal(pv_cosmos_read(c, "E1", "x", &got, NULL, &err), PV_ERR_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "HTTP 429"));
	assert_non_null(strstr(err.msg, "still throttled"));
	assert_int_equal(proxy_requests(), 3);
	pv_cosmos_close(c);
}

static void persistent_500_is_a_named_error(void **state)
{
	char db[64];
	struct pv_cosmos *c = proxied(db, sizeof db, 5000, 3);
	struct pv_error err = {0};
	json_t *d = ballot("p1", "E1", 1);

	(void)state;
	proxy_faults("[{\"status\": 500, \"times\": 10}]");
	assert_int_equal(pv_cosmos_upsert(c, "E1", d, NULL, NULL, NULL, &err), PV_ERR_HTTP);
	assert_int_equal(pv_cosmos_last_status(c), 500);
	assert_non_null(strstr(err.msg, "upsert"));
	assert_non_null(strstr(err.msg, "HTTP 500"));
	assert_non_null(strstr(err.msg, "injected fault 500"));
	/* One attempt and three retries. */
	assert_int_equal(proxy_requests(), 4);
	json_decref(d);
	pv_cosmos_close(c);
}

static void transient_5xx_and_dropped_connections_are_retried(void **state)
{
	char db[64];
	struct pv_cosmos *c = proxied(db, sizeof db, 5000, 4);
	struct pv_error err = {0};
	json_t *d = ballot("q1", "E1", 1), *got = NULL, *docs = NULL;
	char *next = NULL;

	(void)state;
	proxy_faults("[{\"status\": 503}, {\"drop\": true}, {\"status\": 408}]");
	assert_int_equal(pv_cosmos_upsert(c, "E1", d, NULL, NULL, NULL, &err), PV_OK);
	assert_int_equal(proxy_requests(), 4);
	proxy_faults("[{\"drop\": true}]");
	assert_int_equal(pv_cosmos_read(c, "E1", "q1", &got, NULL, &err), PV_OK);
	json_decref(got);
	proxy_faults("[{\"status\": 502}]");
	assert_int_equal(pv_cosmos_query(c, "SELECT * FROM c WHERE c.election_id = 'E1'", NULL,
					 "E1", 10, NULL, &docs, &next, &err),
			 PV_OK);
	assert_int_equal(json_array_size(docs), 1);
	assert_null(next);
	json_decref(docs);
	json_decref(d);
	pv_cosmos_close(c);
}

static void lost_answer_to_a_create_reports_conflict(void **state)
{
	char db[64];
	struct pv_cosmos *c = proxied(db, sizeof db, 5000, 3);
	struct pv_error err = {0};
	json_t *d = ballot("l1", "E1", 1), *got = NULL;

	(void)state;
	/* The first create lands but its answer is replaced by a 500; the
	 * retry finds the id taken.  Documented: a conflict, said so. */
	proxy_faults("[{\"status\": 500, \"forward\": true}]");
	assert_int_equal(pv_cosmos_create(c, "E1", d, NULL, NULL, &err), PV_ERR_CONFLICT);
	assert_non_null(strstr(err.msg, "after a retried attempt"));
	assert_int_equal(pv_cosmos_read(c, "E1", "l1", &got, NULL, &err), PV_OK);
	json_decref(got);
	json_decref(d);
	pv_cosmos_close(c);
}

static void timeout_is_reported_as_timeout(void **state)
{
	char db[64];
	struct pv_cosmos *c = proxied(db, sizeof db, 400, 3);
	struct pv_error err = {0};
	json_t *got = NULL;
	long long t0;

	(void)state;
	proxy_faults("[{\"delay_ms\": 1500}]");
	t0 = now_ms();
	assert_int_equal(pv_cosmos_read(c, "E1", "x", &got, NULL, &err), PV_ERR_TIMEOUT);
	/* Not retried: the wait stays near one timeout. */
	assert_true(now_ms() - t0 < 1200);
	assert_non_null(strstr(err.msg, "libcurl"));
	assert_null(got);
	/* The client is still usable afterwards. */
	sleep(2);
	assert_int_equal(pv_cosmos_read(c, "E1", "x", &got, NULL, &err), PV_ERR_NOT_FOUND);
	pv_cosmos_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(open_creates_and_checks_the_container),
		cmocka_unit_test(open_refuses_bad_options),
		cmocka_unit_test(unreachable_server_is_unavailable),
		cmocka_unit_test(document_lifecycle),
		cmocka_unit_test(missing_document_and_the_read_quirk),
		cmocka_unit_test(items_over_2mb_are_refused),
		cmocka_unit_test(invalid_arguments),
		cmocka_unit_test(query_with_continuation),
		cmocka_unit_test(tls_with_the_run_ca),
		cmocka_unit_test(tls_verification_is_on_by_default),
		cmocka_unit_test(connections_are_reused),
		cmocka_unit_test(throttled_then_succeeds),
		cmocka_unit_test(throttled_for_good_is_unavailable),
		cmocka_unit_test(persistent_500_is_a_named_error),
		cmocka_unit_test(transient_5xx_and_dropped_connections_are_retried),
		cmocka_unit_test(lost_answer_to_a_create_reports_conflict),
		cmocka_unit_test(timeout_is_reported_as_timeout),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = PV_RUN_TESTS(tests);
	curl_global_cleanup();
	return rc;
}
