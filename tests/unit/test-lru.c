/* lib/lru.c: lookup, recency, eviction, pinning, replacement, removal and
 * freeing.  Every entry is heap-allocated and counted when the map frees
 * it, so a miss or a double free fails here and a leak fails under ASan. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lru.h"

#include "pv_test.h"

#define MANY 5000

struct item {
	struct pv_lru_node node;
	char key[24];
	int value;
};

/* How often the map freed the item of each value. */
static int freed[2 * MANY + 10];
static size_t freed_total;

static void item_free(struct pv_lru_node *node)
{
	struct item *it = PV_LRU_ENTRY(node, struct item, node);

	/* Out of the map before it is freed. */
	assert_null(node->newer);
	assert_null(node->older);
	freed[it->value]++;
	freed_total++;
	free(it);
}

static int reset(void **state)
{
	memset(freed, 0, sizeof freed);
	freed_total = 0;
	return 0;
}

static struct item *put(struct pv_lru *lru, const char *key, int value)
{
	struct item *it = calloc(1, sizeof *it);

	assert_non_null(it);
	snprintf(it->key, sizeof it->key, "%s", key);
	it->value = value;
	pv_lru_put(lru, &it->node, it->key);
	return it;
}

/* A map of capacity cap with an entry per letter of keys, valued 1, 2, ...
 * in that order (the first the oldest). */
static struct pv_lru *letters(size_t cap, const char *keys)
{
	struct pv_lru *lru = pv_lru_new(cap, item_free);

	for (int i = 0; keys[i]; i++) {
		char key[2] = {keys[i], '\0'};

		put(lru, key, i + 1);
	}
	return lru;
}

/* The value under key (-1: none), without touching the order. */
static int peek(struct pv_lru *lru, const char *key)
{
	struct item *it = PV_LRU_ENTRY(pv_lru_peek(lru, key), struct item, node);

	return it ? it->value : -1;
}

static int find(struct pv_lru *lru, const char *key)
{
	struct item *it = PV_LRU_ENTRY(pv_lru_find(lru, key), struct item, node);

	return it ? it->value : -1;
}

static void insert_and_lookup(void **state)
{
	struct pv_lru *lru = pv_lru_new(10, item_free);

	assert_int_equal(pv_lru_count(lru), 0);
	assert_null(pv_lru_find(lru, "a"));
	assert_null(pv_lru_oldest(lru));
	put(lru, "a", 1);
	put(lru, "b", 2);
	put(lru, "", 3); /* the empty key is a key */
	assert_int_equal(pv_lru_count(lru), 3);
	assert_int_equal(find(lru, "a"), 1);
	assert_int_equal(find(lru, "b"), 2);
	assert_int_equal(find(lru, ""), 3);
	assert_int_equal(peek(lru, "a"), 1);
	/* Keys match whole: no prefix, no case folding. */
	assert_int_equal(find(lru, "A"), -1);
	assert_int_equal(find(lru, "ab"), -1);
	assert_int_equal(freed_total, 0);
	pv_lru_free(lru);
	assert_int_equal(freed_total, 3);
}

static void a_hit_moves_to_the_front(void **state)
{
	struct pv_lru *lru = letters(3, "abc");

	/* Without the hit, "a" (the oldest) would go. */
	assert_int_equal(find(lru, "a"), 1);
	put(lru, "d", 4);
	assert_int_equal(freed[2], 1);
	assert_int_equal(freed_total, 1);
	assert_int_equal(peek(lru, "b"), -1);
	assert_int_equal(peek(lru, "a"), 1);
	/* A peek is no use: "c" is now the oldest and goes next. */
	assert_int_equal(peek(lru, "c"), 3);
	put(lru, "e", 5);
	assert_int_equal(freed[3], 1);
	assert_int_equal(peek(lru, "c"), -1);
	assert_int_equal(peek(lru, "a"), 1);
	assert_int_equal(pv_lru_count(lru), 3);
	pv_lru_free(lru);
}

static void eviction_frees_each_entry_once(void **state)
{
	struct pv_lru *lru = pv_lru_new(10, item_free);
	char key[16];

	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof key, "k%d", i);
		put(lru, key, i);
		assert_int_equal(pv_lru_count(lru), i < 10 ? i + 1 : 10);
		assert_int_equal(freed_total, i < 10 ? 0 : (size_t)(i - 9));
	}
	/* The 90 oldest went, each once; the 10 newest stay. */
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof key, "k%d", i);
		assert_int_equal(freed[i], i < 90 ? 1 : 0);
		assert_int_equal(peek(lru, key), i < 90 ? -1 : i);
	}
	pv_lru_free(lru);
	for (int i = 0; i < 100; i++)
		assert_int_equal(freed[i], 1);
	assert_int_equal(freed_total, 100);
}

static void removal(void **state)
{
	struct pv_lru *lru = letters(3, "abc");

	pv_lru_remove(lru, pv_lru_peek(lru, "b"));
	assert_int_equal(freed[2], 1);
	assert_int_equal(pv_lru_count(lru), 2);
	assert_int_equal(peek(lru, "b"), -1);
	assert_int_equal(peek(lru, "a"), 1);
	assert_int_equal(peek(lru, "c"), 3);
	/* Room again: the next put evicts nothing. */
	put(lru, "d", 4);
	assert_int_equal(freed_total, 1);
	/* The oldest and the newest can go too, and the order holds. */
	pv_lru_remove(lru, pv_lru_peek(lru, "a"));
	pv_lru_remove(lru, pv_lru_peek(lru, "d"));
	assert_int_equal(pv_lru_count(lru), 1);
	assert_ptr_equal(pv_lru_oldest(lru), pv_lru_peek(lru, "c"));
	assert_null(pv_lru_newer(pv_lru_oldest(lru)));
	/* A removed key can come back. */
	put(lru, "b", 5);
	assert_int_equal(find(lru, "b"), 5);
	pv_lru_clear(lru);
	assert_int_equal(pv_lru_count(lru), 0);
	assert_null(pv_lru_oldest(lru));
	assert_int_equal(freed_total, 5);
	/* Still usable after clearing. */
	put(lru, "a", 6);
	assert_int_equal(find(lru, "a"), 6);
	pv_lru_free(lru);
	assert_int_equal(freed_total, 6);
}

static void a_put_replaces_the_value_under_its_key(void **state)
{
	struct pv_lru *lru = letters(2, "ab");

	put(lru, "a", 3);
	/* The old entry is freed, not evicted: "b" stays. */
	assert_int_equal(freed[1], 1);
	assert_int_equal(freed_total, 1);
	assert_int_equal(pv_lru_count(lru), 2);
	assert_int_equal(peek(lru, "a"), 3);
	assert_int_equal(peek(lru, "b"), 2);
	/* The new one is the newest: "b" goes first. */
	put(lru, "c", 4);
	assert_int_equal(freed[2], 1);
	assert_int_equal(peek(lru, "a"), 3);
	/* A pinned entry is replaced all the same. */
	pv_lru_peek(lru, "a")->pinned = true;
	put(lru, "a", 5);
	assert_int_equal(freed[3], 1);
	assert_int_equal(peek(lru, "a"), 5);
	assert_false(pv_lru_peek(lru, "a")->pinned);
	pv_lru_free(lru);
	assert_int_equal(freed_total, 5);
}

static void capacity_one_and_zero(void **state)
{
	for (size_t cap = 0; cap <= 1; cap++) {
		struct pv_lru *lru = pv_lru_new(cap, item_free);

		reset(state);
		put(lru, "a", 1);
		assert_int_equal(pv_lru_count(lru), 1);
		put(lru, "b", 2);
		assert_int_equal(pv_lru_count(lru), 1);
		assert_int_equal(freed[1], 1);
		assert_int_equal(find(lru, "b"), 2);
		put(lru, "b", 3);
		assert_int_equal(pv_lru_count(lru), 1);
		assert_int_equal(find(lru, "b"), 3);
		pv_lru_free(lru);
		assert_int_equal(freed_total, 3);
	}
}

static void pinned_entries_stay(void **state)
{
	struct pv_lru *lru = letters(2, "ab");
	struct pv_lru_node *a = pv_lru_peek(lru, "a");

	a->pinned = true;
	pv_lru_peek(lru, "b")->pinned = true;
	/* Past capacity: nothing may go but the new entry is kept. */
	put(lru, "c", 3);
	put(lru, "d", 4);
	assert_int_equal(pv_lru_count(lru), 3);
	assert_int_equal(freed[3], 1);
	assert_int_equal(peek(lru, "d"), 4);
	/* Unpinned, the oldest goes at the next put, back to capacity. */
	a->pinned = false;
	put(lru, "e", 5);
	assert_int_equal(freed[1], 1);
	assert_int_equal(freed[4], 1);
	assert_int_equal(pv_lru_count(lru), 2);
	assert_int_equal(peek(lru, "b"), 2);
	assert_int_equal(peek(lru, "e"), 5);
	/* pv_lru_free frees pinned entries too. */
	pv_lru_free(lru);
	assert_int_equal(freed_total, 5);
}

static void walk_from_the_oldest(void **state)
{
	struct pv_lru *lru = letters(10, "abcd");
	struct pv_lru_node *node;
	int want[] = {1, 3, 4, 2}, n = 0;

	pv_lru_find(lru, "b");
	for (node = pv_lru_oldest(lru); node; node = pv_lru_newer(node)) {
		assert_true(n < 4);
		assert_int_equal(PV_LRU_ENTRY(node, struct item, node)->value, want[n++]);
	}
	assert_int_equal(n, 4);
	/* Removing while walking, as an expiry does. */
	node = pv_lru_oldest(lru);
	while (node) {
		struct pv_lru_node *newer = pv_lru_newer(node);

		if (PV_LRU_ENTRY(node, struct item, node)->value != 4)
			pv_lru_remove(lru, node);
		node = newer;
	}
	assert_int_equal(pv_lru_count(lru), 1);
	assert_int_equal(peek(lru, "d"), 4);
	pv_lru_free(lru);
	assert_int_equal(freed_total, 4);
}

/* Thousands of keys share buckets (more keys than the table starts with,
 * and similar ones: "k1", "k10", "k100", ...); each is still found with its
 * own value, through growth, removals and evictions. */
static void many_keys_with_collisions(void **state)
{
	struct pv_lru *lru = pv_lru_new(MANY, item_free);
	char key[16];

	for (int i = 0; i < MANY; i++) {
		snprintf(key, sizeof key, "k%d", i);
		put(lru, key, i);
	}
	assert_int_equal(pv_lru_count(lru), MANY);
	assert_int_equal(freed_total, 0);
	for (int i = 0; i < MANY; i++) {
		snprintf(key, sizeof key, "k%d", i);
		assert_int_equal(peek(lru, key), i);
	}
	for (int i = 0; i < MANY; i += 2) {
		snprintf(key, sizeof key, "k%d", i);
		pv_lru_remove(lru, pv_lru_peek(lru, key));
	}
	assert_int_equal(pv_lru_count(lru), MANY / 2);
	for (int i = 0; i < MANY; i++) {
		snprintf(key, sizeof key, "k%d", i);
		assert_int_equal(peek(lru, key), i % 2 ? i : -1);
	}
	/* Touch the odd keys from the top down: k1 is then the newest. */
	for (int i = MANY - 1; i > 0; i -= 2) {
		snprintf(key, sizeof key, "k%d", i);
		assert_int_equal(find(lru, key), i);
	}
	/* A second generation fills the map and evicts the first, oldest
	 * use first. */
	for (int i = MANY; i < 2 * MANY; i++) {
		snprintf(key, sizeof key, "k%d", i);
		put(lru, key, i);
		if (i == MANY + MANY / 2) {
			/* One over: the least recently used key went, only it. */
			assert_int_equal(freed[MANY - 1], 1);
			assert_int_equal(freed[MANY - 3], 0);
			assert_int_equal(peek(lru, "k1"), 1);
		}
	}
	assert_int_equal(pv_lru_count(lru), MANY);
	for (int i = 0; i < 2 * MANY; i++) {
		snprintf(key, sizeof key, "k%d", i);
		assert_int_equal(freed[i], i < MANY ? 1 : 0);
		assert_int_equal(peek(lru, key), i < MANY ? -1 : i);
	}
	pv_lru_free(lru);
	assert_int_equal(freed_total, 2 * MANY);
	for (int i = 0; i < 2 * MANY; i++)
		assert_int_equal(freed[i], 1);
}

static void free_releases_every_entry(void **state)
{
	struct pv_lru *lru = pv_lru_new(1000, item_free);
	char key[16];

	for (int i = 0; i < 300; i++) {
		struct item *it;

		snprintf(key, sizeof key, "x%d", i);
		it = put(lru, key, i);
		it->node.pinned = i % 3 == 0;
	}
	pv_lru_find(lru, "x7");
	pv_lru_free(lru);
	assert_int_equal(freed_total, 300);
	for (int i = 0; i < 300; i++)
		assert_int_equal(freed[i], 1);
	pv_lru_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(insert_and_lookup, reset),
		cmocka_unit_test_setup(a_hit_moves_to_the_front, reset),
		cmocka_unit_test_setup(eviction_frees_each_entry_once, reset),
		cmocka_unit_test_setup(removal, reset),
		cmocka_unit_test_setup(a_put_replaces_the_value_under_its_key, reset),
		cmocka_unit_test_setup(capacity_one_and_zero, reset),
		cmocka_unit_test_setup(pinned_entries_stay, reset),
		cmocka_unit_test_setup(walk_from_the_oldest, reset),
		cmocka_unit_test_setup(many_keys_with_collisions, reset),
		cmocka_unit_test_setup(free_releases_every_entry, reset),
	};

	return PV_RUN_TESTS(tests);
}
