/* The bounded LRU map (design in lru.h). */
#include "lru.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define FIRST_BUCKETS 16

struct pv_lru {
	size_t capacity;
	size_t count;
	size_t nbuckets; /* a power of two */
	struct pv_lru_node **buckets;
	struct pv_lru_node *newest, *oldest;
	pv_lru_free_fn *free_entry;
};

static size_t hash_key(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return (size_t)(h ^ (h >> 32));
}

struct pv_lru *pv_lru_new(size_t capacity, pv_lru_free_fn *free_entry)
{
	struct pv_lru *lru = pv_xcalloc(1, sizeof *lru);

	lru->capacity = capacity ? capacity : 1;
	lru->nbuckets = FIRST_BUCKETS;
	lru->buckets = pv_xcalloc(lru->nbuckets, sizeof *lru->buckets);
	lru->free_entry = free_entry;
	return lru;
}

/* Doubles the buckets: chains stay about one entry long however far the
 * map grows (pinned entries may take it past its capacity). */
static void grow(struct pv_lru *lru)
{
	size_t n = lru->nbuckets * 2;
	struct pv_lru_node **b = pv_xcalloc(n, sizeof *b);

	for (size_t i = 0; i < lru->nbuckets; i++) {
		struct pv_lru_node *node = lru->buckets[i];

		while (node) {
			struct pv_lru_node *next = node->chain;

			node->chain = b[node->hash & (n - 1)];
			b[node->hash & (n - 1)] = node;
			node = next;
		}
	}
	free(lru->buckets);
	lru->buckets = b;
	lru->nbuckets = n;
}

static struct pv_lru_node **slot_of(const struct pv_lru *lru, size_t hash)
{
	return &lru->buckets[hash & (lru->nbuckets - 1)];
}

static void unlink_recency(struct pv_lru *lru, struct pv_lru_node *node)
{
	if (node->newer)
		node->newer->older = node->older;
	else
		lru->newest = node->older;
	if (node->older)
		node->older->newer = node->newer;
	else
		lru->oldest = node->newer;
	node->newer = node->older = NULL;
}

static void push_newest(struct pv_lru *lru, struct pv_lru_node *node)
{
	node->newer = NULL;
	node->older = lru->newest;
	if (lru->newest)
		lru->newest->newer = node;
	else
		lru->oldest = node;
	lru->newest = node;
}

void pv_lru_remove(struct pv_lru *lru, struct pv_lru_node *node)
{
	struct pv_lru_node **pp = slot_of(lru, node->hash);

	while (*pp != node)
		pp = &(*pp)->chain;
	*pp = node->chain;
	node->chain = NULL;
	unlink_recency(lru, node);
	lru->count--;
	lru->free_entry(node);
}

void pv_lru_clear(struct pv_lru *lru)
{
	while (lru->newest)
		pv_lru_remove(lru, lru->newest);
}

void pv_lru_free(struct pv_lru *lru)
{
	if (!lru)
		return;
	pv_lru_clear(lru);
	free(lru->buckets);
	free(lru);
}

static struct pv_lru_node *lookup(const struct pv_lru *lru, const char *key, size_t hash)
{
	struct pv_lru_node *node = *slot_of(lru, hash);

	while (node && (node->hash != hash || strcmp(node->key, key) != 0))
		node = node->chain;
	return node;
}

struct pv_lru_node *pv_lru_peek(const struct pv_lru *lru, const char *key)
{
	return lookup(lru, key, hash_key(key));
}

struct pv_lru_node *pv_lru_find(struct pv_lru *lru, const char *key)
{
	struct pv_lru_node *node = pv_lru_peek(lru, key);

	if (node && node != lru->newest) {
		unlink_recency(lru, node);
		push_newest(lru, node);
	}
	return node;
}

void pv_lru_put(struct pv_lru *lru, struct pv_lru_node *node, const char *key)
{
	size_t hash = hash_key(key);
	struct pv_lru_node *old = lookup(lru, key, hash);
	struct pv_lru_node **slot, *victim;

	if (old)
		pv_lru_remove(lru, old);
	if (lru->count >= lru->nbuckets)
		grow(lru);
	node->key = key;
	node->hash = hash;
	slot = slot_of(lru, hash);
	node->chain = *slot;
	*slot = node;
	push_newest(lru, node);
	lru->count++;
	/* One walk from the oldest end: the pinned entries it passes stay. */
	victim = lru->oldest;
	while (lru->count > lru->capacity && victim) {
		struct pv_lru_node *newer = victim->newer;

		if (!victim->pinned && victim != node)
			pv_lru_remove(lru, victim);
		victim = newer;
	}
}

size_t pv_lru_count(const struct pv_lru *lru)
{
	return lru->count;
}

struct pv_lru_node *pv_lru_oldest(const struct pv_lru *lru)
{
	return lru->oldest;
}

struct pv_lru_node *pv_lru_newer(const struct pv_lru_node *node)
{
	return node->newer;
}
