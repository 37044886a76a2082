/* fcgi/router.c: matching paths against a table of rows with a pv_route
 * first; 200 with the placeholders, 405 with Allow, 404. */
#include <string.h>

#include "router.h"

#include "pv_test.h"

/* Rows carry data after the pv_route, as api.c's do: stride matters. */
struct row {
	struct pv_route r;
	int tag;
	const char *pad[3];
};

static const struct row table[] = {
	{{"POST", "/elections"}, 1, {NULL}},
	{{"GET", "/elections"}, 2, {NULL}},
	{{"GET", "/elections/{eid}"}, 3, {NULL}},
	{{"DELETE", "/elections/{eid}"}, 4, {NULL}},
	{{"PUT", "/elections/{eid}/name"}, 5, {NULL}},
	{{"PUT", "/elections/{eid}/ballots/{bid}/ratings/{kid}"}, 6, {NULL}},
	{{"GET", "/healthz"}, 7, {NULL}},
	{{"GET", "/elections/special"}, 8, {NULL}},
};
#define N (sizeof table / sizeof table[0])

static int match(const char *method, const char *path, struct pv_route_match *m)
{
	return pv_router_match(table, N, sizeof table[0], method, path, m);
}

static const struct row *row_of(const struct pv_route_match *m)
{
	return (const struct row *)m->route;
}

static void literal_routes_match(void **state)
{
	struct pv_route_match m;

	assert_int_equal(match("POST", "/elections", &m), 200);
	assert_int_equal(m.index, 0);
	assert_int_equal(row_of(&m)->tag, 1);
	assert_int_equal(m.nparams, 0);
	assert_int_equal(match("GET", "/elections", &m), 200);
	assert_int_equal(row_of(&m)->tag, 2);
	assert_int_equal(match("GET", "/healthz", &m), 200);
	assert_int_equal(m.index, 6);
}

static void placeholders_capture_segments(void **state)
{
	struct pv_route_match m;
	char out[64];

	assert_int_equal(match("PUT", "/elections/E1/ballots/B2/ratings/K3", &m), 200);
	assert_int_equal(row_of(&m)->tag, 6);
	assert_int_equal(m.nparams, 3);
	assert_string_equal(pv_route_param(&m, "eid", out, sizeof out), "E1");
	assert_string_equal(pv_route_param(&m, "bid", out, sizeof out), "B2");
	assert_string_equal(pv_route_param(&m, "kid", out, sizeof out), "K3");
	assert_null(pv_route_param(&m, "cid", out, sizeof out));
	/* A prefix of a placeholder's name is another name. */
	assert_null(pv_route_param(&m, "ei", out, sizeof out));
	assert_null(pv_route_param(&m, "eidx", out, sizeof out));
}

static void param_that_does_not_fit_is_refused(void **state)
{
	struct pv_route_match m;
	char small[4];

	assert_int_equal(match("GET", "/elections/ABCD", &m), 200);
	/* "ABCD" needs 5 bytes with its NUL. */
	assert_null(pv_route_param(&m, "eid", small, sizeof small));
	assert_int_equal(match("GET", "/elections/ABC", &m), 200);
	assert_string_equal(pv_route_param(&m, "eid", small, sizeof small), "ABC");
}

static void first_matching_row_wins(void **state)
{
	struct pv_route_match m;
	char out[32];

	/* The placeholder row comes before the literal one: it wins. */
	assert_int_equal(match("GET", "/elections/special", &m), 200);
	assert_int_equal(row_of(&m)->tag, 3);
	assert_string_equal(pv_route_param(&m, "eid", out, sizeof out), "special");
}

static void unknown_paths_are_404(void **state)
{
	static const char *const paths[] = {
		"/",
		"/nothing",
		"/elections/", /* empty segment for {eid} */
		"/elections//name",
		"/elections/E/", /* trailing slash is another path */
		"/elections/E/name/extra",
		"/elections/E/ballots/B/ratings",
		"/healthz/",
		"/Elections", /* case matters */
		"elections",  /* no leading slash */
		"",
	};
	struct pv_route_match m;

	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		assert_int_equal(match("GET", paths[i], &m), 404);
		assert_null(m.route);
		assert_int_equal(m.index, -1);
		assert_string_equal(m.allow, "");
	}
}

static void known_path_wrong_method_is_405_with_allow(void **state)
{
	struct pv_route_match m;

	assert_int_equal(match("PATCH", "/elections/E1", &m), 405);
	assert_null(m.route);
	assert_int_equal(m.index, -1);
	assert_int_equal(m.nparams, 0);
	/* Table order; the literal row adds nothing for another path. */
	assert_string_equal(m.allow, "GET, DELETE");
	assert_int_equal(match("DELETE", "/elections", &m), 405);
	assert_string_equal(m.allow, "POST, GET");
	assert_int_equal(match("GET", "/elections/E1/name", &m), 405);
	assert_string_equal(m.allow, "PUT");
	/* Methods are case-sensitive (RFC 9110). */
	assert_int_equal(match("get", "/healthz", &m), 405);
	assert_string_equal(m.allow, "GET");
}

static void allow_lists_each_method_once(void **state)
{
	static const struct pv_route dup[] = {
		{"GET", "/x/{a}"},
		{"GET", "/x/{b}"},
		{"PUT", "/x/{c}"},
	};
	struct pv_route_match m;

	assert_int_equal(pv_router_match(dup, 3, sizeof dup[0], "POST", "/x/1", &m), 405);
	assert_string_equal(m.allow, "GET, PUT");
}

static void too_many_placeholders_never_match(void **state)
{
	static const struct pv_route deep[] = {
		{"GET", "/{a}/{b}/{c}/{d}/{e}"},
		{"GET", "/{a}/{b}/{c}/{d}"},
	};
	struct pv_route_match m;
	char out[8];

	assert_int_equal(PV_ROUTE_MAX_PARAMS, 4);
	assert_int_equal(pv_router_match(deep, 2, sizeof deep[0], "GET", "/1/2/3/4/5", &m), 404);
	assert_int_equal(pv_router_match(deep, 2, sizeof deep[0], "GET", "/1/2/3/4", &m), 200);
	assert_int_equal(m.index, 1);
	assert_string_equal(pv_route_param(&m, "d", out, sizeof out), "4");
}

static void braces_inside_a_segment_are_literal(void **state)
{
	static const struct pv_route odd[] = {
		{"GET", "/a{b}"},
		{"GET", "/{"},
	};
	struct pv_route_match m;

	assert_int_equal(pv_router_match(odd, 2, sizeof odd[0], "GET", "/anything", &m), 404);
	assert_int_equal(pv_router_match(odd, 2, sizeof odd[0], "GET", "/a{b}", &m), 200);
	assert_int_equal(m.nparams, 0);
	assert_int_equal(pv_router_match(odd, 2, sizeof odd[0], "GET", "/{", &m), 200);
	assert_int_equal(m.index, 1);
}

static void empty_table_is_404(void **state)
{
	struct pv_route_match m;

	assert_int_equal(pv_router_match(NULL, 0, sizeof(struct pv_route), "GET", "/", &m), 404);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(literal_routes_match),
		cmocka_unit_test(placeholders_capture_segments),
		cmocka_unit_test(param_that_does_not_fit_is_refused),
		cmocka_unit_test(first_matching_row_wins),
		cmocka_unit_test(unknown_paths_are_404),
		cmocka_unit_test(known_path_wrong_method_is_405_with_allow),
		cmocka_unit_test(allow_lists_each_method_once),
		cmocka_unit_test(too_many_placeholders_never_match),
		cmocka_unit_test(braces_inside_a_segment_are_literal),
		cmocka_unit_test(empty_table_is_404),
	};

	return PV_RUN_TESTS(tests);
}
