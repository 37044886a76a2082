/* fcgi/http.c: responses, JSON error bodies, the media type check, the
 * bounded body reader, the nesting depth scan and path decoding. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#include "pv_test.h"

static void reasons(void **state)
{
	assert_string_equal(pv_http_reason(200), "OK");
	assert_string_equal(pv_http_reason(202), "Accepted");
	assert_string_equal(pv_http_reason(405), "Method Not Allowed");
	assert_string_equal(pv_http_reason(413), "Content Too Large");
	assert_string_equal(pv_http_reason(503), "Service Unavailable");
	assert_string_equal(pv_http_reason(299), "Unknown");
}

static void response_defaults_and_headers(void **state)
{
	struct pv_http_response r;

	pv_http_response_init(&r);
	/* A handler that forgets to answer gives a 500, never a 200. */
	assert_int_equal(r.status, 500);
	assert_string_equal(r.content_type, "application/json");
	pv_http_header(&r, "Retry-After", "%d", 5);
	pv_http_header(&r, "X-Test", "a\r\nSet-Cookie: evil\n");
	assert_string_equal(r.headers.data, "Retry-After: 5\r\nX-Test: a  Set-Cookie: evil \r\n");
	pv_http_response_clear(&r);
	assert_null(r.headers.data);
}

static json_t *body_json(const struct pv_http_response *r)
{
	json_error_t jerr;
	json_t *j = json_loadb(r->body.data, r->body.len, 0, &jerr);

	assert_non_null(j);
	return j;
}

static void error_bodies(void **state)
{
	struct pv_http_response r;
	json_t *j;

	pv_http_response_init(&r);
	pv_http_error(&r, 404, "not_found", "no %s here", "election");
	assert_int_equal(r.status, 404);
	assert_true(r.body.len > 0 && r.body.data[r.body.len - 1] == '\n');
	j = body_json(&r);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
			    "not_found");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(j, "error"), "message")),
		"no election here");
	assert_int_equal(json_object_size(j), 1);
	json_decref(j);

	/* A second answer replaces the first body. */
	pv_http_error(&r, 400, "invalid_json", "quoted input: %s", "\xff\xfe");
	assert_int_equal(r.status, 400);
	j = body_json(&r);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
			    "invalid_json");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(j, "error"), "message")),
		"(message not valid UTF-8)");
	json_decref(j);
	pv_http_response_clear(&r);
}

static void json_bodies(void **state)
{
	struct pv_http_response r;
	json_t *v = json_pack("{s:s,s:i}", "status", "accepted", "n", 3);

	pv_http_response_init(&r);
	pv_http_json(&r, 202, v);
	assert_int_equal(r.status, 202);
	assert_string_equal(r.body.data, "{\"status\":\"accepted\",\"n\":3}\n");
	json_decref(v);
	pv_http_response_clear(&r);
}

static void json_media_types(void **state)
{
	static const struct {
		const char *ct;
		bool ok;
	} cases[] = {
		{"application/json", true},
		{"Application/JSON", true},
		{"application/json;charset=utf-8", true},
		{"application/json; charset=UTF-8", true},
		{"application/json ; charset=\"utf-8\" ", true},
		{"application/json\t", true},
		{"application/json; charset=latin1", false},
		{"application/json; boundary=x", false},
		{"application/json; charset=utf-8; x=y", false},
		{"application/jsonx", false},
		{"application/json-patch+json", false},
		{"text/json", false},
		{"text/plain", false},
		{"", false},
		{NULL, false},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (pv_http_is_json_type(cases[i].ct) != cases[i].ok)
			fail_msg("content type \"%s\" should be %s",
				 cases[i].ct ? cases[i].ct : "(null)",
				 cases[i].ok ? "JSON" : "refused");
	}
}

/* A body source: hands out `data` in chunks of at most `chunk` bytes, or
 * fails after `fail_after` bytes; counts what was read. */
struct source {
	const char *data;
	size_t len, pos, chunk, fail_after;
	int calls;
};

static int source_read(void *ctx, char *buf, int n)
{
	struct source *s = ctx;
	size_t want = (size_t)n;

	s->calls++;
	if (s->pos >= s->fail_after)
		return -1;
	if (want > s->chunk)
		want = s->chunk;
	if (want > s->len - s->pos)
		want = s->len - s->pos;
	memcpy(buf, s->data + s->pos, want);
	s->pos += want;
	return (int)want;
}

static enum pv_body_result read_body(struct source *s, long long content_length, size_t limit,
				     struct pv_buf *out)
{
	struct pv_http_request req;

	memset(&req, 0, sizeof req);
	req.content_length = content_length;
	req.read = source_read;
	req.read_ctx = s;
	return pv_http_read_body(&req, limit, out);
}

static void body_with_a_length(void **state)
{
	struct source s = {"{\"name\":\"x\"}", 12, 0, 5, (size_t)-1, 0};
	struct pv_buf b = PV_BUF_INIT;

	assert_int_equal(read_body(&s, 12, 100, &b), PV_BODY_OK);
	assert_int_equal(b.len, 12);
	assert_string_equal(b.data, "{\"name\":\"x\"}");
	assert_true(s.calls >= 3); /* chunks of 5 */
	pv_buf_free(&b);
}

static void declared_length_over_the_limit_reads_nothing(void **state)
{
	struct source s = {"xxxxxxxxxx", 10, 0, 100, (size_t)-1, 0};
	struct pv_buf b = PV_BUF_INIT;

	assert_int_equal(read_body(&s, 1000000, 100, &b), PV_BODY_TOO_LARGE);
	assert_int_equal(s.calls, 0);
	pv_buf_free(&b);
	/* Exactly at the limit is fine. */
	assert_int_equal(read_body(&s, 10, 10, &b), PV_BODY_OK);
	pv_buf_free(&b);
}

static void body_without_a_length(void **state)
{
	static char big[5000];
	struct source s = {"{}", 2, 0, 100, (size_t)-1, 0};
	struct pv_buf b = PV_BUF_INIT;

	assert_int_equal(read_body(&s, -1, 100, &b), PV_BODY_OK);
	assert_string_equal(b.data, "{}");
	pv_buf_free(&b);

	/* Over the limit: refused after reading at most limit + 1 bytes. */
	memset(big, 'x', sizeof big);
	s = (struct source){big, sizeof big, 0, 64, (size_t)-1, 0};
	assert_int_equal(read_body(&s, -1, 100, &b), PV_BODY_TOO_LARGE);
	assert_int_equal(s.pos, 101);
	pv_buf_free(&b);

	/* Empty. */
	s = (struct source){"", 0, 0, 64, (size_t)-1, 0};
	assert_int_equal(read_body(&s, -1, 100, &b), PV_BODY_OK);
	assert_int_equal(b.len, 0);
	pv_buf_free(&b);
}

static void short_and_failing_bodies(void **state)
{
	struct source s = {"{\"a\":1}", 7, 0, 100, (size_t)-1, 0};
	struct pv_buf b = PV_BUF_INIT;

	/* The client promised 20 bytes and sent 7. */
	assert_int_equal(read_body(&s, 20, 100, &b), PV_BODY_READ_ERROR);
	pv_buf_free(&b);
	s = (struct source){"{\"a\":1}", 7, 0, 2, 4, 0};
	assert_int_equal(read_body(&s, 7, 100, &b), PV_BODY_READ_ERROR);
	pv_buf_free(&b);
}

static void nesting_depth(void **state)
{
	static const struct {
		const char *text;
		int depth;
	} cases[] = {
		{"1", 0},
		{"{}", 1},
		{"{\"a\":[1,{\"b\":[]}]}", 4},
		{"[[],[],[[]]]", 3},
		{"{\"s\":\"[[[[{{{{\"}", 1},             /* brackets in strings do not count */
		{"{\"s\":\"\\\"[[[\\\\\",\"t\":[]}", 2}, /* nor after escaped quotes */
		{"]]]]{", 1},                            /* stray closers do not go negative */
	};
	char deep[200];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		assert_int_equal(pv_json_depth(cases[i].text, strlen(cases[i].text), 32),
				 cases[i].depth);
	memset(deep, '[', sizeof deep);
	/* The scan stops past max + 1. */
	assert_int_equal(pv_json_depth(deep, sizeof deep, 32), 33);
	assert_int_equal(pv_json_depth(deep, 32, 32), 32);
}

static void path_decoding(void **state)
{
	static const struct {
		const char *in, *out;
	} good[] = {
		{"/elections", "/elections"},
		{"/a%20b", "/a b"},
		{"/%41%42%43", "/ABC"},
		{"/%7e%7E", "/~~"},
		{"/%2F", "//"},
		{"%", NULL},
		{"/%4", NULL},
		{"/%G0", NULL},
		{"/%0G", NULL},
		{"/%00x", NULL}, /* an encoded NUL would cut the path */
	};

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		char buf[64];

		strcpy(buf, good[i].in);
		if (good[i].out) {
			assert_true(pv_http_path_decode(buf));
			assert_string_equal(buf, good[i].out);
		} else if (pv_http_path_decode(buf)) {
			fail_msg("\"%s\" should not decode", good[i].in);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reasons),
		cmocka_unit_test(response_defaults_and_headers),
		cmocka_unit_test(error_bodies),
		cmocka_unit_test(json_bodies),
		cmocka_unit_test(json_media_types),
		cmocka_unit_test(body_with_a_length),
		cmocka_unit_test(declared_length_over_the_limit_reads_nothing),
		cmocka_unit_test(body_without_a_length),
		cmocka_unit_test(short_and_failing_bodies),
		cmocka_unit_test(nesting_depth),
		cmocka_unit_test(path_decoding),
	};

	return PV_RUN_TESTS(tests);
}
