/* Errors, buffers, allocation wrappers and log escaping. */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "error.h"
#include "log.h"
#include "xalloc.h"

#include "pv_test.h"

static void every_error_code_has_a_name_and_text(void **state)
{
	for (int c = 0; c < PV_ERR__COUNT; c++) {
		assert_non_null(pv_err_name(c));
		assert_non_null(pv_strerror(c));
		assert_true(strlen(pv_err_name(c)) > 0);
		for (int d = 0; d < c; d++)
			assert_string_not_equal(pv_err_name(c), pv_err_name(d));
	}
	assert_string_equal(pv_err_name(PV_ERR__COUNT), "unknown");
	assert_string_equal(pv_err_name(PV_ERR_CONFLICT), "conflict");
}

static void error_set_and_prefix(void **state)
{
	struct pv_error err;

	assert_int_equal(pv_error_set(&err, PV_ERR_DATABASE, "libpq: %s", "boom"), PV_ERR_DATABASE);
	assert_int_equal(err.code, PV_ERR_DATABASE);
	assert_string_equal(err.msg, "libpq: boom");
	assert_int_equal(pv_error_prefix(&err, "audit %d", 7), PV_ERR_DATABASE);
	assert_string_equal(err.msg, "audit 7: libpq: boom");
	pv_error_clear(&err);
	assert_int_equal(err.code, PV_OK);
	assert_string_equal(err.msg, "");
	/* NULL is allowed where the caller does not want the message. */
	assert_int_equal(pv_error_set(NULL, PV_ERR_SYSTEM, "x"), PV_ERR_SYSTEM);
}

static void error_message_is_truncated_not_overflowed(void **state)
{
	struct pv_error err;
	char big[2000];

	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	pv_error_set(&err, PV_ERR_INVALID, "%s", big);
	assert_int_equal(strlen(err.msg), sizeof err.msg - 1);
}

static void buf_grows_and_steals(void **state)
{
	struct pv_buf b = PV_BUF_INIT;
	char *s;

	for (int i = 0; i < 1000; i++)
		pv_buf_printf(&b, "%d,", i);
	assert_true(b.len > 3000);
	assert_int_equal(strncmp(b.data, "0,1,2,", 6), 0);
	assert_int_equal(b.data[b.len], '\0');
	pv_buf_reset(&b);
	assert_int_equal(b.len, 0);
	pv_buf_append(&b, "ab\0c", 4);
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.data, "ab\0c", 4);
	s = pv_buf_steal(&b);
	assert_null(b.data);
	free(s);
	s = pv_buf_steal(&b);
	assert_string_equal(s, "");
	free(s);
}

static void xasprintf_formats(void **state)
{
	char *s = pv_xasprintf("%s-%03d", "Election", 7);
	assert_string_equal(s, "Election-007");
	free(s);
	s = pv_xstrndup("abcdef", 3);
	assert_string_equal(s, "abc");
	free(s);
}

struct escape_case {
	const char *in;
	size_t inlen;
	const char *out;
};

static void log_escape_table(void **state)
{
	static const struct escape_case cases[] = {
		{"plain text", 10, "plain text"},
		{"line\nbreak", 10, "line\\nbreak"},
		{"cr\r tab\t", 8, "cr\\r tab\\t"},
		{"\x1b[31mred", 8, "\\x1b[31mred"},
		{"back\\slash", 10, "back\\\\slash"},
		{"del\x7f", 4, "del\\x7f"},
		{"nul\0x", 5, "nul\\x00x"},
		{"caf\xc3\xa9", 5, "caf\xc3\xa9"},             /* valid UTF-8 kept */
		{"\xe2\x82\xac euro", 8, "\xe2\x82\xac euro"}, /* 3-byte kept */
		{"\xf0\x9f\x93\xb7", 4, "\xf0\x9f\x93\xb7"},   /* 4-byte kept */
		{"bad\xc3", 4, "bad\\xc3"},                    /* truncated sequence */
		{"\xc0\xaf", 2, "\\xc0\\xaf"},                 /* overlong */
		{"\xed\xa0\x80", 3, "\\xed\\xa0\\x80"},        /* surrogate */
		{"\xc2\x9b", 2, "\\xc2\\x9b"},                 /* C1 CSI */
		{"\xff", 1, "\\xff"},
	};
	char out[128];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t n = pv_log_escape(out, sizeof out, cases[i].in, cases[i].inlen);
		assert_string_equal(out, cases[i].out);
		assert_int_equal(n, strlen(cases[i].out));
	}
}

static void log_escape_never_overflows(void **state)
{
	char out[8];

	/* Each \n needs two bytes: only three fit with the terminator. */
	pv_log_escape(out, sizeof out, "\n\n\n\n\n\n", 6);
	assert_string_equal(out, "\\n\\n\\n");
	/* A multi-byte character is not cut in half. */
	pv_log_escape(out, 7, "abcde\xc3\xa9", 7);
	assert_string_equal(out, "abcde");
	pv_log_escape(out, 8, "abcde\xc3\xa9", 7);
	assert_string_equal(out, "abcde\xc3\xa9");
	assert_int_equal(pv_log_escape(out, 0, "x", 1), 0);
}

static void log_levels_parse(void **state)
{
	assert_int_equal(pv_log_level_parse("error"), PV_LOG_ERROR);
	assert_int_equal(pv_log_level_parse("debug"), PV_LOG_DEBUG);
	assert_int_equal(pv_log_level_parse("verbose"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_error_code_has_a_name_and_text),
		cmocka_unit_test(error_set_and_prefix),
		cmocka_unit_test(error_message_is_truncated_not_overflowed),
		cmocka_unit_test(buf_grows_and_steals),
		cmocka_unit_test(xasprintf_formats),
		cmocka_unit_test(log_escape_table),
		cmocka_unit_test(log_escape_never_overflows),
		cmocka_unit_test(log_levels_parse),
	};
	return PV_RUN_TESTS(tests);
}
