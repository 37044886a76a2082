/* ULID and UUID properties. */
#include <stdlib.h>
#include <string.h>

#include "id.h"

#include "pv_test.h"

static void ulid_is_valid_and_sorted(void **state)
{
	char prev[PV_ULID_LEN + 1] = "", cur[PV_ULID_LEN + 1];
	struct pv_error err;

	for (int i = 0; i < 5000; i++) {
		assert_int_equal(pv_ulid_new(cur, &err), PV_OK);
		assert_int_equal(strlen(cur), PV_ULID_LEN);
		assert_true(pv_ulid_valid(cur));
		/* Monotonic: strictly increasing even within one millisecond. */
		assert_true(strcmp(prev, cur) < 0);
		memcpy(prev, cur, sizeof cur);
	}
}

static void ulid_monotonic_within_a_millisecond(void **state)
{
	char a[PV_ULID_LEN + 1], b[PV_ULID_LEN + 1];
	struct pv_error err;
	uint64_t ms = 1900000000000ull;

	assert_int_equal(pv_ulid_new_at(a, ms, &err), PV_OK);
	assert_int_equal(pv_ulid_new_at(b, ms, &err), PV_OK);
	assert_true(strcmp(a, b) < 0);
	/* Same time prefix; only the random part moved. */
	assert_memory_equal(a, b, 10);
	/* A clock that steps back does not break the order. */
	assert_int_equal(pv_ulid_new_at(a, ms - 5000, &err), PV_OK);
	assert_true(strcmp(b, a) < 0);
}

static void ulid_time_round_trips(void **state)
{
	char id[PV_ULID_LEN + 1];
	struct pv_error err;
	/* Far in the future so that the monotonic state does not hold it back. */
	uint64_t ms = 250000000000000ull;

	assert_int_equal(pv_ulid_new_at(id, ms, &err), PV_OK);
	assert_int_equal(pv_ulid_time_ms(id), ms);
	assert_int_equal(pv_ulid_new_at(id, 1ull << 48, &err), PV_ERR_INVALID);
}

static void ulid_known_encoding(void **state)
{
	/* The ULID specification's example time 1469918176385 encodes as 01ARYZ6S41. */
	assert_int_equal(pv_ulid_time_ms("01ARYZ6S41TSV4RRFFQ69G5FAV"), 1469918176385ull);
}

static void ulid_validation(void **state)
{
	static const char *const bad[] = {
		"",
		"01ARYZ6S41TSV4RRFFQ69G5FA",   /* 25 */
		"01ARYZ6S41TSV4RRFFQ69G5FAVX", /* 27 */
		"01ARYZ6S41TSV4RRFFQ69G5FAI",  /* I is not Crockford */
		"01ARYZ6S41TSV4RRFFQ69G5FAL",
		"01ARYZ6S41TSV4RRFFQ69G5FAO",
		"01ARYZ6S41TSV4RRFFQ69G5FAU",
		"81ARYZ6S41TSV4RRFFQ69G5FAV", /* past 48 bits */
		"01aryz6s41tsv4rrffq69g5fav", /* lower case refused */
		"01ARYZ6S41TSV4RR-FQ69G5FAV",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_false(pv_ulid_valid(bad[i]));
	assert_false(pv_ulid_valid(NULL));
	assert_true(pv_ulid_valid("01ARYZ6S41TSV4RRFFQ69G5FAV"));
	assert_true(pv_ulid_valid("7ZZZZZZZZZZZZZZZZZZZZZZZZZ"));
}

static void uuid_random_and_valid(void **state)
{
	char a[PV_UUID_LEN + 1], b[PV_UUID_LEN + 1];

	pv_uuid_new(a);
	pv_uuid_new(b);
	assert_true(pv_uuid_valid(a));
	assert_string_not_equal(a, b);
	assert_int_equal(a[14], '4');
	/* Version 4 and the RFC 4122 variant on every one, whatever the bits. */
	for (int i = 0; i < 1000; i++) {
		pv_uuid_new(a);
		assert_int_equal(a[14], '4');
		assert_non_null(strchr("89ab", a[19]));
		assert_true(pv_uuid_valid(a));
	}
	assert_false(pv_uuid_valid("00000000-0000-0000-0000-000000000000"));
	assert_false(pv_uuid_valid("not-a-uuid"));
	assert_false(pv_uuid_valid("0b9d4f5e-6c1a-5d2e-9f3b-7a4c8e2d1f6"));
	assert_true(pv_uuid_valid("0B9D4F5E-6C1A-5D2E-9F3B-7A4C8E2D1F60"));
}

static void uuid_v5_matches_rfc_example(void **state)
{
	char out[PV_UUID_LEN + 1];
	struct pv_error err;

	/* RFC 9562 appendix A.4: v5 of "www.example.com" in the DNS namespace. */
	assert_int_equal(pv_uuid_v5(out, "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "www.example.com",
				    15, &err),
			 PV_OK);
	assert_string_equal(out, "2ed6657d-e927-568b-95e1-2665a8aea6a2");
	/* Deterministic, and sensitive to the name. */
	char again[PV_UUID_LEN + 1], other[PV_UUID_LEN + 1];
	pv_uuid_v5(again, PV_UUID_NS_IDEMPOTENCY, "user\nkey", 8, &err);
	pv_uuid_v5(other, PV_UUID_NS_IDEMPOTENCY, "user\nkey", 8, &err);
	assert_string_equal(again, other);
	pv_uuid_v5(other, PV_UUID_NS_IDEMPOTENCY, "user\nkez", 8, &err);
	assert_string_not_equal(again, other);
	assert_int_equal(pv_uuid_v5(out, "nope", "x", 1, &err), PV_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ulid_is_valid_and_sorted),
		cmocka_unit_test(ulid_monotonic_within_a_millisecond),
		cmocka_unit_test(ulid_time_round_trips),
		cmocka_unit_test(ulid_known_encoding),
		cmocka_unit_test(ulid_validation),
		cmocka_unit_test(uuid_random_and_valid),
		cmocka_unit_test(uuid_v5_matches_rfc_example),
	};
	return PV_RUN_TESTS(tests);
}
