/* lib/auth_token.c: the cache of verified tokens that saves photovote.fcgi
 * a PostgreSQL query per request: hits within the TTL, misses after it (so
 * a revoked token stops working within the TTL), never a hit for a token
 * that was not added or is malformed, off with TTL 0, and bounded; the
 * grace period for a PostgreSQL outage outlives the TTL for
 * pv_token_cache_find_grace only, and ends too. */
#include <string.h>
#include <time.h>

#include "auth_token.h"

#include "pv_test.h"

#define TOKEN_A "pv_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define TOKEN_B "pv_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"

static const struct pv_token_identity alice = {"alice@example.org", false};
static const struct pv_token_identity root = {"root@example.org", true};

static void hit_within_ttl(void **state)
{
	struct pv_token_cache *c = pv_token_cache_new(16, 60, 0);
	struct pv_token_identity id;

	assert_non_null(c);
	assert_false(pv_token_cache_find(c, TOKEN_A, &id));
	pv_token_cache_add(c, TOKEN_A, &alice);
	pv_token_cache_add(c, TOKEN_B, &root);
	memset(&id, 0, sizeof id);
	assert_true(pv_token_cache_find(c, TOKEN_A, &id));
	assert_string_equal(id.user, "alice@example.org");
	assert_false(id.admin);
	assert_true(pv_token_cache_find(c, TOKEN_B, &id));
	assert_string_equal(id.user, "root@example.org");
	assert_true(id.admin);
	pv_token_cache_free(c);
}

static void unknown_and_malformed_miss(void **state)
{
	struct pv_token_cache *c = pv_token_cache_new(16, 60, 0);
	struct pv_token_identity id;

	pv_token_cache_add(c, TOKEN_A, &alice);
	/* One character off: another hash. */
	assert_false(pv_token_cache_find(c, "pv_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB", &id));
	assert_false(pv_token_cache_find(c, "pv_AAAA", &id));
	assert_false(pv_token_cache_find(c, "", &id));
	/* A malformed token is never stored, so it can never hit. */
	pv_token_cache_add(c, "not-a-token", &root);
	assert_false(pv_token_cache_find(c, "not-a-token", &id));
	pv_token_cache_free(c);
}

static void expires_after_ttl(void **state)
{
	struct pv_token_cache *c = pv_token_cache_new(16, 1, 0);
	struct timespec pause = {1, 100 * 1000 * 1000};
	struct pv_token_identity id;

	pv_token_cache_add(c, TOKEN_A, &alice);
	assert_true(pv_token_cache_find(c, TOKEN_A, &id));
	nanosleep(&pause, NULL);
	/* A revoked token is asked about again at the latest now. */
	assert_false(pv_token_cache_find(c, TOKEN_A, &id));
	pv_token_cache_add(c, TOKEN_A, &alice);
	assert_true(pv_token_cache_find(c, TOKEN_A, &id));
	pv_token_cache_free(c);
}

static void ttl_zero_disables(void **state)
{
	struct pv_token_cache *c = pv_token_cache_new(16, 0, 0);
	struct pv_token_identity id;

	assert_null(c);
	pv_token_cache_add(c, TOKEN_A, &alice);
	assert_false(pv_token_cache_find(c, TOKEN_A, &id));
	pv_token_cache_free(c);
}

static void bounded(void **state)
{
	struct pv_token_cache *c = pv_token_cache_new(1, 60, 0);
	struct pv_token_identity id;

	pv_token_cache_add(c, TOKEN_A, &alice);
	pv_token_cache_add(c, TOKEN_B, &root);
	/* One slot: the newcomer evicted the first token. */
	assert_false(pv_token_cache_find(c, TOKEN_A, &id));
	assert_true(pv_token_cache_find(c, TOKEN_B, &id));
	assert_string_equal(id.user, "root@example.org");
	pv_token_cache_free(c);
}

static void grace_outlives_ttl(void **state)
{
	struct pv_token_cache *c = pv_token_cache_new(16, 1, 2);
	struct timespec pause = {1, 100 * 1000 * 1000};
	struct pv_token_identity id;

	assert_false(pv_token_cache_find_grace(c, TOKEN_A, &id));
	pv_token_cache_add(c, TOKEN_A, &alice);
	nanosleep(&pause, NULL);
	/* Past the TTL: PostgreSQL must be asked, but if it cannot be... */
	assert_false(pv_token_cache_find(c, TOKEN_A, &id));
	memset(&id, 0, sizeof id);
	assert_true(pv_token_cache_find_grace(c, TOKEN_A, &id));
	assert_string_equal(id.user, "alice@example.org");
	assert_false(pv_token_cache_find_grace(c, TOKEN_B, &id));
	nanosleep(&pause, NULL);
	/* ...only for the grace period. */
	assert_false(pv_token_cache_find_grace(c, TOKEN_A, &id));
	pv_token_cache_free(c);
}

static void grace_without_ttl(void **state)
{
	struct pv_token_cache *c = pv_token_cache_new(16, 0, 60);
	struct pv_token_identity id;

	/* Every request asks PostgreSQL, yet an outage is bridged. */
	assert_non_null(c);
	pv_token_cache_add(c, TOKEN_A, &alice);
	assert_false(pv_token_cache_find(c, TOKEN_A, &id));
	assert_true(pv_token_cache_find_grace(c, TOKEN_A, &id));
	pv_token_cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hit_within_ttl),    cmocka_unit_test(unknown_and_malformed_miss),
		cmocka_unit_test(expires_after_ttl), cmocka_unit_test(ttl_zero_disables),
		cmocka_unit_test(bounded),           cmocka_unit_test(grace_outlives_ttl),
		cmocka_unit_test(grace_without_ttl),
	};

	return PV_RUN_TESTS(tests);
}
