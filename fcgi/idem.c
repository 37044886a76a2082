/* Idempotency answers (design in idem.h).  One mutex guards a chained hash
 * table and a FIFO list of entries in insertion order; eviction and expiry
 * take from the FIFO's head.  Pending entries are never evicted (their
 * requests hold the key); the table may then exceed capacity briefly. */
#include "idem.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xalloc.h"

struct entry {
	struct entry *hnext;       /* hash chain */
	struct entry *prev, *next; /* FIFO */
	char key[PV_IDEM_KEY_MAX + 1];
	char fp[PV_IDEM_FP_LEN + 1];
	bool pending;
	time_t at;
	struct pv_idem_answer answer;
};

struct pv_idem {
	pthread_mutex_t lock;
	pthread_cond_t done;
	size_t capacity;
	int ttl;
	size_t count;
	size_t nbuckets;
	struct entry **buckets;
	struct entry *head, *tail;
};

static uint64_t hash_key(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

static time_t now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

struct pv_idem *pv_idem_new(size_t capacity, int ttl)
{
	struct pv_idem *c = pv_xcalloc(1, sizeof *c);
	pthread_condattr_t attr;

	c->capacity = capacity ? capacity : 1;
	c->ttl = ttl;
	c->nbuckets = 64;
	while (c->nbuckets < c->capacity * 2)
		c->nbuckets *= 2;
	c->buckets = pv_xcalloc(c->nbuckets, sizeof *c->buckets);
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->done, &attr);
	pthread_condattr_destroy(&attr);
	return c;
}

void pv_idem_answer_clear(struct pv_idem_answer *a)
{
	free(a->location);
	free(a->body);
	memset(a, 0, sizeof *a);
}

static struct entry **find_slot(struct pv_idem *c, const char *key)
{
	struct entry **pp = &c->buckets[hash_key(key) & (c->nbuckets - 1)];

	while (*pp && strcmp((*pp)->key, key) != 0)
		pp = &(*pp)->hnext;
	return pp;
}

static void remove_entry(struct pv_idem *c, struct entry *e)
{
	struct entry **pp = find_slot(c, e->key);

	*pp = e->hnext;
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	pv_idem_answer_clear(&e->answer);
	free(e);
	c->count--;
}

/* Drops expired answers and, past capacity, the oldest answers. */
static void trim(struct pv_idem *c, time_t now)
{
	struct entry *e = c->head;

	while (e) {
		struct entry *next = e->next;
		bool expired = now - e->at >= c->ttl;

		if (!e->pending && (expired || c->count >= c->capacity))
			remove_entry(c, e);
		else if (!expired && c->count < c->capacity)
			break;
		e = next;
	}
}

void pv_idem_free(struct pv_idem *c)
{
	if (!c)
		return;
	while (c->head)
		remove_entry(c, c->head);
	free(c->buckets);
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
		e = *find_slot(c, key);
		if (!e) {
			e = pv_xcalloc(1, sizeof *e);
			strncpy(e->key, key, PV_IDEM_KEY_MAX);
			strncpy(e->fp, fingerprint, PV_IDEM_FP_LEN);
			e->pending = true;
			e->at = now_mono();
			*find_slot(c, key) = e;
			e->prev = c->tail;
			if (c->tail)
				c->tail->next = e;
			else
				c->head = e;
			c->tail = e;
			c->count++;
			r = PV_IDEM_NEW;
			break;
		}
		if (strcmp(e->fp, fingerprint) != 0) {
			r = PV_IDEM_MISMATCH;
			break;
		}
		if (!e->pending) {
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
	e = *find_slot(c, key);
	if (e && e->pending) {
		if (answer) {
			copy_answer(&e->answer, answer);
			e->pending = false;
			e->at = now_mono();
		} else {
			remove_entry(c, e);
		}
	}
	pthread_cond_broadcast(&c->done);
	pthread_mutex_unlock(&c->lock);
}

size_t pv_idem_count(struct pv_idem *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = c->count;
	pthread_mutex_unlock(&c->lock);
	return n;
}
