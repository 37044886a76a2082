/* The read model written by several writers at once (see projection_writers.h). */
#define _POSIX_C_SOURCE 200809L

#include "projection_writers.h"
#include "domain/stream.h"
#include "thread.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct writer {
	struct pv_cosmos *cosmos;
	struct pv_es *es;
	struct pv_projection *proj;
	/* This round's work (the page's share, or a flush), and how it went. */
	struct pv_es_event *events;
	size_t count, cap;
	bool busy;
	bool flush; /* pv_projection_flush, else pv_projection_fold */
	const volatile sig_atomic_t *stop;
	bool complete;
	enum pv_err rc;
	struct pv_error err;
	pthread_t thread;
};

struct pv_writers {
	struct writer writer[PV_WRITERS_MAX];
	size_t n;
	pthread_mutex_t lock; /* the caller's park callback and write hook */
	void (*write_hook)(void);
	pv_projection_park_fn park;
	void *park_ctx;
};

/* The writers run on threads; the caller's callbacks are called one at a time.
 * The write hook has no context, so one lock for every set of writers. */
static pthread_mutex_t hook_lock = PTHREAD_MUTEX_INITIALIZER;
static void (*hook_of_writers)(void);

static void write_hook(void)
{
	pthread_mutex_lock(&hook_lock);
	if (hook_of_writers)
		hook_of_writers();
	pthread_mutex_unlock(&hook_lock);
}

static enum pv_err park(void *ctx, const struct pv_projection_parking *what, struct pv_error *err)
{
	struct pv_writers *l = ctx;
	enum pv_err rc;

	pthread_mutex_lock(&l->lock);
	rc = l->park(l->park_ctx, what, err);
	pthread_mutex_unlock(&l->lock);
	return rc;
}

/* FNV-1a: the same election, the same writer. */
static size_t writer_of_election(const struct pv_writers *l, const char *eid)
{
	uint32_t h = 2166136261u;

	for (; *eid; eid++)
		h = (h ^ (unsigned char)*eid) * 16777619u;
	return h % l->n;
}

static size_t writer_of(const struct pv_writers *l, const char *stream)
{
	const char *eid = pv_election_of_stream(stream);

	/* Not an election's: writer 0 logs and ignores it. */
	return eid ? writer_of_election(l, eid) : 0;
}

void pv_writers_close(struct pv_writers *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++) {
		pv_projection_free(l->writer[i].proj);
		pv_cosmos_close(l->writer[i].cosmos);
		pv_es_close(l->writer[i].es);
		free(l->writer[i].events);
	}
	pthread_mutex_destroy(&l->lock);
	free(l);
}

enum pv_err pv_writers_open(const struct pv_writers_options *opts,
			    const struct pv_cosmos_options *co, const struct pv_es_options *eso,
			    struct pv_writers **out, struct pv_error *err)
{
	struct pv_writers *l;
	size_t cache;

	*out = NULL;
	if (opts->writers < 1 || opts->writers > PV_WRITERS_MAX)
		return pv_error_set(err, PV_ERR_CONFIG, "[projector] writers: %zu is not 1 to %d",
				    opts->writers, PV_WRITERS_MAX);
	l = pv_xcalloc(1, sizeof *l);
	pthread_mutex_init(&l->lock, NULL);
	l->write_hook = opts->write_hook;
	l->park = opts->park;
	l->park_ctx = opts->park_ctx;
	cache = opts->cache_elections ? (opts->cache_elections + opts->writers - 1) / opts->writers
				      : 0;
	for (size_t i = 0; i < opts->writers; i++) {
		struct writer *ln = &l->writer[i];
		enum pv_err rc = pv_cosmos_open(co, &ln->cosmos, err);

		if (rc == PV_OK)
			rc = pv_es_open(eso, &ln->es, err);
		if (rc != PV_OK) {
			l->n = i + 1;
			pv_writers_close(l);
			return rc;
		}
		ln->proj = pv_projection_new(ln->cosmos, ln->es, opts->max_bytes, cache);
		if (l->write_hook)
			pv_projection_set_write_hook(ln->proj, write_hook);
		if (l->park)
			pv_projection_set_park(ln->proj, park, l);
	}
	l->n = opts->writers;
	pthread_mutex_lock(&hook_lock);
	hook_of_writers = l->write_hook;
	pthread_mutex_unlock(&hook_lock);
	*out = l;
	return PV_OK;
}

static void *writer_run(void *arg)
{
	struct writer *ln = arg;

	if (ln->flush)
		ln->rc = pv_projection_flush(ln->proj, ln->stop, &ln->complete, &ln->err);
	else
		ln->rc = pv_projection_fold(ln->proj, ln->events, ln->count, ln->stop,
					    &ln->complete, &ln->err);
	return NULL;
}

/* Runs the busy writers (one of them on the calling thread) and gathers
 * how they went. */
static enum pv_err run_busy(struct pv_writers *l, bool flush, const volatile sig_atomic_t *stop,
			    bool *complete, struct pv_error *err)
{
	size_t busy = 0, last = 0;
	enum pv_err rc = PV_OK;

	for (size_t i = 0; i < l->n; i++) {
		struct writer *ln = &l->writer[i];

		ln->flush = flush;
		ln->stop = stop;
		ln->complete = !ln->busy;
		ln->rc = PV_OK;
		if (ln->busy) {
			busy++;
			last = i;
		}
	}
	if (busy == 1) {
		writer_run(&l->writer[last]);
	} else if (busy > 1) {
		for (size_t i = 0; i < l->n; i++)
			if (l->writer[i].busy && i != last)
				pv_thread_start(&l->writer[i].thread, writer_run, &l->writer[i],
						"projector", "a writer");
		writer_run(&l->writer[last]);
		for (size_t i = 0; i < l->n; i++)
			if (l->writer[i].busy && i != last)
				pthread_join(l->writer[i].thread, NULL);
	}
	*complete = true;
	for (size_t i = 0; i < l->n; i++) {
		struct writer *ln = &l->writer[i];

		if (ln->rc != PV_OK && rc == PV_OK) {
			rc = ln->rc;
			*err = ln->err;
		}
		if (!ln->complete)
			*complete = false;
	}
	if (rc != PV_OK)
		*complete = false;
	return rc;
}

enum pv_err pv_writers_fold(struct pv_writers *l, const struct pv_es_event *events, size_t count,
			    const volatile sig_atomic_t *stop, bool *complete, struct pv_error *err)
{
	for (size_t i = 0; i < l->n; i++)
		l->writer[i].count = 0;
	/* Shallow copies: the events stay the caller's. */
	for (size_t k = 0; k < count; k++) {
		struct writer *ln = &l->writer[writer_of(l, events[k].stream)];

		if (ln->count == ln->cap) {
			ln->cap = ln->cap ? 2 * ln->cap : 64;
			ln->events = pv_xreallocarray(ln->events, ln->cap, sizeof *ln->events);
		}
		ln->events[ln->count++] = events[k];
	}
	for (size_t i = 0; i < l->n; i++)
		l->writer[i].busy = l->writer[i].count > 0;
	return run_busy(l, false, stop, complete, err);
}

enum pv_err pv_writers_flush(struct pv_writers *l, const volatile sig_atomic_t *stop,
			     bool *complete, struct pv_error *err)
{
	for (size_t i = 0; i < l->n; i++)
		l->writer[i].busy = pv_projection_pending(l->writer[i].proj) > 0;
	return run_busy(l, true, stop, complete, err);
}

bool pv_writers_pending_full(const struct pv_writers *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (pv_projection_pending_full(l->writer[i].proj))
			return true;
	return false;
}

void pv_writers_forget(struct pv_writers *l)
{
	for (size_t i = 0; i < l->n; i++)
		pv_projection_forget(l->writer[i].proj);
}

/* Each writer holds the parked elections that go to it, so the counts add up. */
void pv_writers_set_parked(struct pv_writers *l, const char *const *ids, size_t n)
{
	const char **mine = pv_xreallocarray(NULL, n ? n : 1, sizeof *mine);

	for (size_t i = 0; i < l->n; i++) {
		size_t k = 0;

		for (size_t j = 0; j < n; j++)
			if (writer_of_election(l, ids[j]) == i)
				mine[k++] = ids[j];
		pv_projection_set_parked(l->writer[i].proj, mine, k);
	}
	free(mine);
}

size_t pv_writers_parked_count(const struct pv_writers *l)
{
	size_t n = 0;

	for (size_t i = 0; l && i < l->n; i++)
		n += pv_projection_parked_count(l->writer[i].proj);
	return n;
}

void pv_writers_get_stats(const struct pv_writers *l, struct pv_projection_stats *out)
{
	memset(out, 0, sizeof *out);
	for (size_t i = 0; l && i < l->n; i++) {
		struct pv_projection_stats s;

		pv_projection_get_stats(l->writer[i].proj, &s);
		pv_projection_stats_add(out, &s);
	}
}

unsigned long pv_writers_request_count(const struct pv_writers *l)
{
	unsigned long n = 0;

	for (size_t i = 0; l && i < l->n; i++)
		n += pv_cosmos_request_count(l->writer[i].cosmos);
	return n;
}
