/* Cosmos DB master-key signing against the published vectors of
 * protocols.md §6 (the stand-in checks no signature, so this is the test
 * of the signer), and the negative cases that must not match. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "config.h"
#include "options.h"
#include "cosmos.h"

#include "pv_test.h"

#define V1_KEY                                                                                     \
	"dsZQi3KtZmCv1ljt3VNWNm7sQUF1y5rJfC6kv5JiwvW0EndXdDku/dkKBp8/ufDToSxLzR4y+O/0H/t4bQtVNw=="
#define V1_DATE "Thu, 27 Apr 2017 00:51:12 GMT"
#define V2_KEY                                                                                     \
	"8F8xXXOptJxkblM1DBXW7a6NMI5oE8NnwPGYBmwxLCKfejOK7B7yhcCHMGvN3PBrlMLIOeol1Hv9RCdzAZR5sg=="
#define V2_DATE "Mon, 01 Jan 1900 01:00:00 GMT"

/* The header value for a raw base64 signature, URL-encoded the JS SDK's way
 * (upper-case hex); compared case-insensitively with ours since Microsoft's
 * own C# sample writes lower case. */
static void expect_sig(const char *got, const char *raw_sig)
{
	char want[256] = "type%3Dmaster%26ver%3D1.0%26sig%3D";
	size_t o = strlen(want);

	for (const char *s = raw_sig; *s; s++) {
		if (*s == '+')
			o += (size_t)snprintf(want + o, sizeof want - o, "%%2B");
		else if (*s == '/')
			o += (size_t)snprintf(want + o, sizeof want - o, "%%2F");
		else if (*s == '=')
			o += (size_t)snprintf(want + o, sizeof want - o, "%%3D");
		else
			want[o++] = *s;
	}
	want[o] = '\0';
	if (strcasecmp(got, want) != 0)
		fail_msg("signature header\n got  %s\n want %s", got, want);
}

static void v1_microsoft_example(void **state)
{
	char out[256];
	struct pv_error err;

	(void)state;
	assert_int_equal(pv_cosmos_auth_header(V1_KEY, "GET", "dbs", "dbs/ToDoList", V1_DATE, out,
					       sizeof out, &err),
			 PV_OK);
	/* Exactly as published, lower-case escapes and all. */
	assert_true(strcasecmp(out, "type%3dmaster%26ver%3d1.0%26sig%"
				    "3dc09PEVJrgp2uQRkr934kFbTqhByc7TVr3OHyqlu%2bc%2bc%3d") == 0);
	expect_sig(out, "c09PEVJrgp2uQRkr934kFbTqhByc7TVr3OHyqlu+c+c=");
}

static void v1_is_case_insensitive_in_verb_type_and_date(void **state)
{
	char a[256], b[256];
	struct pv_error err;

	(void)state;
	/* The string to sign lower-cases verb, type and date itself. */
	assert_int_equal(pv_cosmos_auth_header(V1_KEY, "get", "DBS", "dbs/ToDoList",
					       "thu, 27 apr 2017 00:51:12 gmt", a, sizeof a, &err),
			 PV_OK);
	assert_int_equal(pv_cosmos_auth_header(V1_KEY, "GET", "dbs", "dbs/ToDoList", V1_DATE, b,
					       sizeof b, &err),
			 PV_OK);
	assert_string_equal(a, b);
}

static void v1_link_keeps_its_case(void **state)
{
	char out[256];
	struct pv_error err;

	(void)state;
	assert_int_equal(pv_cosmos_auth_header(V1_KEY, "GET", "dbs", "dbs/todolist", V1_DATE, out,
					       sizeof out, &err),
			 PV_OK);
	assert_true(strstr(out, "c09PEVJrgp2uQRkr934kFbTqhByc7TVr3OHyqlu") == NULL);
}

static void v2_rust_sdk_vector(void **state)
{
	char out[256];
	struct pv_error err;

	(void)state;
	assert_int_equal(pv_cosmos_auth_header(V2_KEY, "GET", "colls",
					       "dbs/MyDatabase/colls/MyCollection", V2_DATE, out,
					       sizeof out, &err),
			 PV_OK);
	expect_sig(out, "vrHmd02almbIg1e4htVWH+Eg/OhEHip3VTwFivZLH0A=");
}

static void negative_cut_key(void **state)
{
	char key[69], out[256];
	struct pv_error err;

	(void)state;
	/* The key cut to 68 characters (ends "ufDToSxL") is still base64 and
	 * gives the signature protocols.md records, which is not V1's. */
	memcpy(key, V1_KEY, 68);
	key[68] = '\0';
	assert_string_equal(key + 60, "ufDToSxL");
	assert_int_equal(pv_cosmos_auth_header(key, "GET", "dbs", "dbs/ToDoList", V1_DATE, out,
					       sizeof out, &err),
			 PV_OK);
	expect_sig(out, "KvBM8vONofkv3yKm/8zD9MEGlbu6jjHDJBp4E9c2ZZI=");
	assert_null(strcasestr(out, "c09PEVJrgp2uQRkr934kFbTqhByc7TVr3OHyqlu"));
}

/* A deliberately wrong signer: HMAC over the date as sent, not lower-cased. */
static void sign_without_lowercasing_date(char out[64])
{
	static const char text[] = "get\ndbs\ndbs/ToDoList\n" V1_DATE "\n\n";
	unsigned char key[64], mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	int n = EVP_DecodeBlock(key, (const unsigned char *)V1_KEY, (int)strlen(V1_KEY));

	assert_int_equal(n, 66); /* 64 bytes plus two of padding */
	assert_non_null(HMAC(EVP_sha256(), key, 64, (const unsigned char *)text, strlen(text), mac,
			     &mac_len));
	EVP_EncodeBlock((unsigned char *)out, mac, (int)mac_len);
}

static void negative_date_not_lowercased(void **state)
{
	char wrong[64], out[256];
	struct pv_error err;

	(void)state;
	/* The wrong signer reproduces the recorded negative value ... */
	sign_without_lowercasing_date(wrong);
	assert_string_equal(wrong, "2VcgFqfJCqanOOk6Bt9IMeGnOC/sHzYjtO1mMqWVucU=");
	/* ... and ours, given the same mixed-case date, does not produce it. */
	assert_int_equal(pv_cosmos_auth_header(V1_KEY, "GET", "dbs", "dbs/ToDoList", V1_DATE, out,
					       sizeof out, &err),
			 PV_OK);
	assert_null(strcasestr(out, "2VcgFqfJCqanOOk6Bt9IMeGnOC"));
	expect_sig(out, "c09PEVJrgp2uQRkr934kFbTqhByc7TVr3OHyqlu+c+c=");
}

static void bad_keys_are_config_errors(void **state)
{
	static const char *const bad[] = {
		"",
		"abc",  /* not whole quanta */
		"ab$d", /* outside the alphabet */
		"ab=d", /* padding in the middle */
		"ab d", /* whitespace */
		"a===", /* too much padding */
		"====",
		"dsZQi3KtZmCv1ljt3VNWNm7sQUF1y5rJfC6kv5JiwvW0EndXdDku/dkKBp8/ufDToSxLzR4y+O/0H/"
		"t4bQtVNw=\n",
	};
	char out[256];
	struct pv_error err;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		pv_error_clear(&err);
		assert_int_equal(pv_cosmos_auth_header(bad[i], "GET", "dbs", "dbs/x", V1_DATE, out,
						       sizeof out, &err),
				 PV_ERR_CONFIG);
		assert_int_equal(err.code, PV_ERR_CONFIG);
		assert_non_null(strstr(err.msg, "master key"));
		assert_string_equal(out, "");
	}
	assert_int_equal(
		pv_cosmos_auth_header(NULL, "GET", "dbs", "dbs/x", V1_DATE, out, sizeof out, &err),
		PV_ERR_CONFIG);
}

static void small_buffer_is_an_error(void **state)
{
	char out[40];
	struct pv_error err;

	(void)state;
	assert_int_equal(pv_cosmos_auth_header(V1_KEY, "GET", "dbs", "dbs/ToDoList", V1_DATE, out,
					       sizeof out, &err),
			 PV_ERR_INVALID);
	assert_true(strlen(out) < sizeof out);
}

static void date_is_rfc1123_in_english(void **state)
{
	char d[30];

	(void)state;
	pv_cosmos_date(1493254272LL, d);
	assert_string_equal(d, V1_DATE);
	pv_cosmos_date(-2208985200LL, d);
	assert_string_equal(d, V2_DATE);
	pv_cosmos_date(784111777LL, d);
	assert_string_equal(d, "Sun, 06 Nov 1994 08:49:37 GMT");
}

static void options_from_config(void **state)
{
	char *const envp[] = {
		"PHOTOVOTE_COSMOS_ENDPOINT=http://127.0.0.1:1234",
		"PHOTOVOTE_COSMOS_KEY=" V2_KEY,
		"PHOTOVOTE_COSMOS_CONTAINER=c1",
		"PHOTOVOTE_COSMOS_CREATE_IF_MISSING=false",
		"PHOTOVOTE_COSMOS_TIMEOUT_MS=1500",
		NULL,
	};
	struct pv_config *cfg = NULL;
	struct pv_cosmos_options o;
	struct pv_error err;

	(void)state;
	if (pv_config_load(NULL, envp, &cfg, &err) != PV_OK)
		fail_msg("pv_config_load: %s", err.msg);
	pv_cosmos_options_from_config(cfg, &o);
	assert_string_equal(o.endpoint, "http://127.0.0.1:1234");
	assert_string_equal(o.key, V2_KEY);
	assert_string_equal(o.database, "photovote");
	assert_string_equal(o.container, "c1");
	assert_string_equal(o.ca_file, "");
	assert_false(o.create_if_missing);
	assert_int_equal(o.timeout_ms, 1500);
	assert_false(o.emulator_quirks);
	assert_int_equal(o.max_retries, 0);
	pv_config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(v1_microsoft_example),
		cmocka_unit_test(v1_is_case_insensitive_in_verb_type_and_date),
		cmocka_unit_test(v1_link_keeps_its_case),
		cmocka_unit_test(v2_rust_sdk_vector),
		cmocka_unit_test(negative_cut_key),
		cmocka_unit_test(negative_date_not_lowercased),
		cmocka_unit_test(bad_keys_are_config_errors),
		cmocka_unit_test(small_buffer_is_an_error),
		cmocka_unit_test(date_is_rfc1123_in_english),
		cmocka_unit_test(options_from_config),
	};
	return PV_RUN_TESTS(tests);
}
