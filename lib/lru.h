/* A bounded map from string keys to the caller's entries that lets the least
 * recently used entry go first when it is full.
 *
 * Intrusive: the caller embeds a struct pv_lru_node in its entry and keeps
 * the key inside the entry too (the map keeps a pointer to it, never a
 * copy); PV_LRU_ENTRY gets the entry back from its node.  Once put, an entry
 * belongs to the map: the map calls the free function given to pv_lru_new
 * for each entry it lets go (evicted, replaced under its key, removed, or
 * still held by pv_lru_clear / pv_lru_free), exactly once, after unlinking
 * it.
 *
 * Lookup is a chained hash table (FNV-1a, power-of-two buckets, doubled when
 * the entries outnumber the buckets); recency is a doubly linked list, newest
 * first.  pv_lru_find moves a hit to the front, pv_lru_peek does not (a map
 * used as a FIFO, oldest out first, peeks only).
 *
 * Capacity: pv_lru_put evicts the oldest entries until the map holds at most
 * `capacity` (0 counts as 1), never the entry it has just put and never a
 * pinned one: a caller pins the entries it is still using (node->pinned),
 * and the map may then hold more than its capacity until they are unpinned
 * and a later put evicts them.
 *
 * Not thread-safe: a map is used by one thread at a time; callers that share
 * one between threads hold their own lock around every call. */
#ifndef PV_LRU_H
#define PV_LRU_H

#include <stdbool.h>
#include <stddef.h>

struct pv_lru;

struct pv_lru_node {
	bool pinned; /* the caller's: never evicted while set */
	/* The map's own, to leave alone: */
	const char *key;
	size_t hash;
	struct pv_lru_node *chain;         /* next in its bucket */
	struct pv_lru_node *newer, *older; /* recency list */
};

/* Releases the entry that holds node (called once it is out of the map). */
typedef void pv_lru_free_fn(struct pv_lru_node *node);

/* The entry of type `type` whose member `member` is node; NULL for NULL
 * (node is evaluated twice). */
#define PV_LRU_ENTRY(node, type, member)                                                           \
	((node) ? (type *)(void *)((char *)(node)-offsetof(type, member)) : (type *)NULL)

struct pv_lru *pv_lru_new(size_t capacity, pv_lru_free_fn *free_entry);
/* Frees every entry, then the map.  NULL is fine. */
void pv_lru_free(struct pv_lru *lru);
/* Frees every entry; the map stays usable. */
void pv_lru_clear(struct pv_lru *lru);

/* The node under key, made the most recently used; NULL if none. */
struct pv_lru_node *pv_lru_find(struct pv_lru *lru, const char *key);
/* The node under key, its place left as it is; NULL if none. */
struct pv_lru_node *pv_lru_peek(const struct pv_lru *lru, const char *key);

/* Takes node (not in any map) under key, which must stay valid and
 * unchanged while node is in the map (keep it in the entry).  The node
 * becomes the most recently used; an entry already under key is freed
 * first, pinned or not; then the oldest unpinned entries are evicted past
 * the capacity.  node->pinned is left as the caller set it. */
void pv_lru_put(struct pv_lru *lru, struct pv_lru_node *node, const char *key);
/* Takes node out of the map and frees its entry. */
void pv_lru_remove(struct pv_lru *lru, struct pv_lru_node *node);

size_t pv_lru_count(const struct pv_lru *lru);

/* Walking from the oldest entry to the newest, e.g. to expire entries:
 * fetch the next node before removing the current one. */
struct pv_lru_node *pv_lru_oldest(const struct pv_lru *lru);
struct pv_lru_node *pv_lru_newer(const struct pv_lru_node *node);

#endif
