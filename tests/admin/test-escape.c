/* admin/escape.c: what photovote-admin prints of untrusted text. */
#include "pv_test.h"

#include <stdlib.h>
#include <string.h>

#include "escape.h"

static const struct {
	const char *in;
	size_t len;
	const char *out;
} cases[] = {
/* sizeof - 1: the inputs may hold NUL bytes. */
#define CASE(in, out)                                                                              \
	{                                                                                          \
		in, sizeof in - 1, out                                                             \
	}
	CASE("plain text, 100% ASCII", "plain text, 100% ASCII"),
	CASE("", ""),
	CASE("a\tb\nc\r", "a\\x09b\\x0ac\\x0d"),
	CASE("\x1b[31mred\x1b]0;title\x07", "\\x1b[31mred\\x1b]0;title\\x07"),
	CASE("del\x7f", "del\\x7f"),
	CASE("nul\0byte", "nul\\x00byte"),
	CASE("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xb7",
	     "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xb7"),
	CASE("csi\xc2\x9b"
	     "2J",
	     "csi\\u{009b}2J"),
	CASE("rlo\xe2\x80\xae"
	     "txt",
	     "rlo\\u{202e}txt"),
	CASE("zw\xe2\x80\x8b"
	     "sp \xef\xbb\xbf",
	     "zw\\u{200b}sp \\u{feff}"),
	CASE("bad \xff end", "bad \\xff end"),
	CASE("overlong \xc0\x80", "overlong \\xc0\\x80"),
	CASE("surrogate \xed\xa0\x80", "surrogate \\xed\\xa0\\x80"),
	CASE("cut \xe2\x82", "cut \\xe2\\x82"),
	CASE("back\\slash", "back\\slash"),
#undef CASE
};

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *got = pv_escape_mem(cases[i].in, cases[i].len);

		if (strcmp(got, cases[i].out) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, got, cases[i].out);
		free(got);
	}
}

static void test_str(void **state)
{
	char *s = pv_escape_str(NULL), *t = pv_escape_str("x\x1by");

	(void)state;
	assert_string_equal(s, "");
	assert_string_equal(t, "x\\x1by");
	free(s);
	free(t);
}

static void test_json(void **state)
{
	char *j = pv_escape_json("{\"a\":\"x\x7fy\"}");

	(void)state;
	assert_string_equal(j, "{\"a\":\"x\\u007fy\"}");
	free(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_str),
		cmocka_unit_test(test_json),
	};

	return PV_RUN_TESTS(tests);
}
