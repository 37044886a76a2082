/* Idempotency answers (design in idem.h).  One mutex guards a map (lib/lru)
 * used as a FIFO: entries in insertion order, looked up without moving, so
 * eviction and expiry take the oldest first.  Pending entries are pinned,
 * never evicted (their requests hold the key); the map may then exceed
 * capacity briefly. */
#include "idem.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lru.h"
#include "thread.h"
#include "xalloc.h"

struct entry {
	struct pv_lru_node node; /* pinned: pending, its first request still runs */
	char key[PV_IDEM_KEY_MAX + 1];
	char fp[PV_IDEM_FP_LEN + 1];
	time_t at;
	struct pv_idem_answer answer;
};

struct pv_idem {
	pthread_mutex_t lock;
	pthread_cond_t done;
	size_t capacity;
	int ttl;
	struct pv_lru *entries;
};

static time_t now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

void pv_idem_answer_clear(struct pv_idem_answer *a)
{
	free(a->location);
	free(a->body);
	memset(a, 0, sizeof *a);
}

static void entry_free(struct pv_lru_node *node)
{
	struct entry *e = PV_LRU_ENTRY(node, struct entry, node);

	pv_idem_answer_clear(&e->answer);
	free(e);
}

struct pv_idem *pv_idem_new(size_t capacity, int ttl)
{
	struct pv_idem *c = pv_xcalloc(1, sizeof *c);

	c->capacity = capacity ? capacity : 1;
	c->ttl = ttl;
	c->entries = pv_lru_new(c->capacity, entry_free);
	pthread_mutex_init(&c->lock, NULL);
	pv_cond_init_monotonic(&c->done);
	return c;
}

/* The entry under key, or NULL; a hit is not a use (FIFO). */
static struct entry *find(struct pv_idem *c, const char *key)
{
	return PV_LRU_ENTRY(pv_lru_peek(c->entries, key), struct entry, node);
}

/* Drops expired answers and, past capacity, the oldest answers: room for
 * one more before the key is looked up. */
static void trim(struct pv_idem *c, time_t now)
{
	struct pv_lru_node *node = pv_lru_oldest(c->entries);

	while (node) {
		struct pv_lru_node *newer = pv_lru_newer(node);
		struct entry *e = PV_LRU_ENTRY(node, struct entry, node);
		bool expired = now - e->at >= c->ttl;
		bool full = pv_lru_count(c->entries) >= c->capacity;

		if (!node->pinned && (expired || full))
			pv_lru_remove(c->entries, node);
		else if (!expired && !full)
			break;
		node = newer;
	}
}

void pv_idem_free(struct pv_idem *c)
{
	if (!c)
		return;
	pv_lru_free(c->entries);
	pthread_cond_destroy(&c->done);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static void copy_answer(struct pv_idem_answer *dst, const struct pv_idem_answer *src)
{
	dst->status = src->status;
	dst->location = src->location ? pv_xstrdup(src->location) : NULL;
	dst->body = src->body ? pv_xstrdup(src->body) : NULL;
}

enum pv_idem_result pv_idem_begin(struct pv_idem *c, const char *key, const char *fingerprint,
				  int wait_ms, struct pv_idem_answer *answer)
{
	struct timespec deadline;
	enum pv_idem_result r;
	struct entry *e;

	memset(answer, 0, sizeof *answer);
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += wait_ms / 1000;
	deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&c->lock);
	for (;;) {
		trim(c, now_mono());
		e = find(c, key);
		if (!e) {
			e = pv_xcalloc(1, sizeof *e);
			strncpy(e->key, key, PV_IDEM_KEY_MAX);
			strncpy(e->fp, fingerprint, PV_IDEM_FP_LEN);
			e->node.pinned = true;
			e->at = now_mono();
			pv_lru_put(c->entries, &e->node, e->key);
			r = PV_IDEM_NEW;
			break;
		}
		if (strcmp(e->fp, fingerprint) != 0) {
			r = PV_IDEM_MISMATCH;
			break;
		}
		if (!e->node.pinned) {
			copy_answer(answer, &e->answer);
			r = PV_IDEM_REPLAY;
			break;
		}
		if (pthread_cond_timedwait(&c->done, &c->lock, &deadline) == ETIMEDOUT) {
			r = PV_IDEM_BUSY;
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

void pv_idem_finish(struct pv_idem *c, const char *key, const struct pv_idem_answer *answer)
{
	struct entry *e;

	pthread_mutex_lock(&c->lock);
	e = find(c, key);
	if (e && e->node.pinned) {
		if (answer) {
			copy_answer(&e->answer, answer);
			e->node.pinned = false;
			e->at = now_mono();
		} else {
			pv_lru_remove(c->entries, &e->node);
		}
	}
	pthread_cond_broadcast(&c->done);
	pthread_mutex_unlock(&c->lock);
}

size_t pv_idem_count(struct pv_idem *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = pv_lru_count(c->entries);
	pthread_mutex_unlock(&c->lock);
	return n;
}
