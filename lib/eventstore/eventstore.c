/* The event store dispatcher: pv_es_open() picks a backend by name from a
 * table; the unit of work, with the generic one for backends that leave
 * its operations out; the page/list helpers shared by every backend. */
#include "eventstore.h"
#include "eventstore/esdb.h"
#include "eventstore/kurrentdb.h"
#include "eventstore/pg.h"
#include "xalloc.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const struct backend {
	const char *name;
	enum pv_err (*open)(const struct pv_es_options *opts, struct pv_es **out,
			    struct pv_error *err);
	bool url_shown;  /* its url names the server without secrets (a kurrentdb
				connection string may hold a password) */
	bool feed_in_pg; /* the category feed's head is in PostgreSQL's es_categories */
} backends[] = {
	{"esdb", pv_es_esdb_open, true, false},
	{"kurrentdb", pv_es_kurrentdb_open, false, false},
	{"postgres", pv_es_pg_open, false, true},
};

static const struct backend *backend_of(const struct pv_es_options *opts)
{
	for (size_t i = 0; opts && opts->backend && i < sizeof backends / sizeof backends[0]; i++)
		if (strcmp(backends[i].name, opts->backend) == 0)
			return &backends[i];
	return NULL;
}

char *pv_es_options_label(const struct pv_es_options *opts)
{
	const struct backend *b = backend_of(opts);

	if (b && b->url_shown && opts->url)
		return pv_xasprintf("%s at %s", b->name, opts->url);
	return pv_xstrdup(opts && opts->backend ? opts->backend : "no backend");
}

bool pv_es_options_feed_in_postgres(const struct pv_es_options *opts)
{
	const struct backend *b = backend_of(opts);

	return b && b->feed_in_pg;
}

enum pv_err pv_es_open(const struct pv_es_options *opts, struct pv_es **out, struct pv_error *err)
{
	*out = NULL;
	if (!opts || !opts->backend)
		return pv_error_set(err, PV_ERR_CONFIG, "event store: no backend named");
	if (backend_of(opts))
		return backend_of(opts)->open(opts, out, err);
	return pv_error_set(err, PV_ERR_CONFIG, "event store: unknown backend \"%s\"",
			    opts->backend);
}

/* ---- the unit of work ------------------------------------------------- */

enum pv_err pv_es_begin(struct pv_es *es, struct pv_es_sink *sink, struct pv_error *err)
{
	struct pg_conn *shared = NULL;
	enum pv_err rc;

	if (es->sink)
		return pv_error_set(err, PV_ERR_INVALID, "event store: a unit of work is open");
	if (es->ops->begin) {
		rc = es->ops->begin(es, &shared, err);
		if (rc != PV_OK)
			return rc;
	}
	rc = sink->ops->begin(sink, shared, err);
	if (rc != PV_OK) {
		if (es->ops->rollback)
			es->ops->rollback(es);
		sink->ops->end(sink, false);
		return rc;
	}
	es->sink = sink;
	return PV_OK;
}

/* One append per stream, in order; a soft-deleted stream taken with -1
 * goes on from its last number, which the version tells. */
static enum pv_err append_each(struct pv_es *es, struct pv_es_append_req *reqs, size_t n,
			       size_t *failed, struct pv_error *err)
{
	for (size_t i = 0; i < n; i++) {
		struct pv_es_append_req *r = &reqs[i];
		enum pv_err rc;

		r->continued = false;
		rc = pv_es_append(es, r->stream, r->expected, r->events, r->count, &r->version,
				  err);
		if (rc != PV_OK) {
			*failed = i;
			return rc;
		}
		r->continued =
			r->expected == PV_ES_NO_STREAM && r->version != (int64_t)r->count - 1;
	}
	return PV_OK;
}

/* The head of each stream, read backward one event. */
static enum pv_err check_each(struct pv_es *es, const struct pv_es_expect *x, size_t n,
			      size_t *failed, struct pv_error *err)
{
	for (size_t i = 0; i < n; i++) {
		struct pv_es_page page = {0};
		enum pv_err rc = pv_es_read_stream(es, x[i].stream, -1, 1, true, &page, err);
		int64_t now = -1;

		*failed = i;
		if (rc == PV_ERR_GONE)
			return pv_error_set(err, PV_ERR_CONFLICT, "%s is deleted for good",
					    x[i].stream);
		if (rc != PV_OK && rc != PV_ERR_NOT_FOUND)
			return rc;
		if (rc == PV_OK && page.count > 0)
			now = page.events[0].number;
		pv_es_page_clear(&page);
		if (now != x[i].version)
			return pv_error_set(err, PV_ERR_CONFLICT,
					    "%s is no longer at version %" PRId64 " (now %" PRId64
					    ")",
					    x[i].stream, x[i].version, now);
	}
	return PV_OK;
}

static int by_stream(const void *a, const void *b)
{
	return strcmp((*(const struct pv_es_append_req *const *)a)->stream,
		      (*(const struct pv_es_append_req *const *)b)->stream);
}

/* What every backend refuses before any work: no events, an expected
 * version that is neither -1 nor a number, a stream named twice. */
static enum pv_err check_requests(struct pv_es_append_req *reqs, size_t n, size_t *failed,
				  struct pv_error *err)
{
	const struct pv_es_append_req **sorted;
	enum pv_err rc = PV_OK;

	for (size_t i = 0; i < n; i++) {
		*failed = i;
		if (!reqs[i].stream || !*reqs[i].stream)
			return pv_error_set(err, PV_ERR_INVALID, "append: empty stream name");
		if (reqs[i].count == 0)
			return pv_error_set(err, PV_ERR_INVALID, "append to %s: no events",
					    reqs[i].stream);
		if (reqs[i].expected < PV_ES_NO_STREAM)
			return pv_error_set(err, PV_ERR_INVALID,
					    "append to %s: expected version %" PRId64
					    " is not a number or -1 here",
					    reqs[i].stream, reqs[i].expected);
	}
	*failed = 0;
	sorted = pv_xcalloc(n, sizeof *sorted);
	for (size_t i = 0; i < n; i++)
		sorted[i] = &reqs[i];
	qsort(sorted, n, sizeof *sorted, by_stream);
	for (size_t i = 1; i < n && rc == PV_OK; i++)
		if (strcmp(sorted[i - 1]->stream, sorted[i]->stream) == 0) {
			*failed = (size_t)(sorted[i] - reqs);
			rc = pv_error_set(err, PV_ERR_INVALID,
					  "append: stream %s named twice in one request",
					  sorted[i]->stream);
		}
	free(sorted);
	return rc;
}

enum pv_err pv_es_append_many(struct pv_es *es, struct pv_es_append_req *reqs, size_t n,
			      size_t *failed, struct pv_error *err)
{
	enum pv_err rc;

	*failed = 0;
	if (n == 0)
		return PV_OK;
	rc = check_requests(reqs, n, failed, err);
	if (rc != PV_OK)
		return rc;
	if (es->ops->append_many)
		return es->ops->append_many(es, reqs, n, failed, err);
	return append_each(es, reqs, n, failed, err);
}

enum pv_err pv_es_check_versions(struct pv_es *es, const struct pv_es_expect *x, size_t n,
				 size_t *failed, struct pv_error *err)
{
	*failed = 0;
	if (n == 0)
		return PV_OK;
	if (es->ops->check_versions)
		return es->ops->check_versions(es, x, n, failed, err);
	return check_each(es, x, n, failed, err);
}

enum pv_err pv_es_commit(struct pv_es *es, struct pv_error *err)
{
	struct pv_es_sink *sink = es->sink;
	enum pv_err rc;

	if (!sink)
		return pv_error_set(err, PV_ERR_INVALID, "event store: no unit of work is open");
	es->sink = NULL;
	rc = sink->ops->write(sink, err);
	if (es->ops->commit) {
		if (rc == PV_OK)
			rc = es->ops->commit(es, err);
		else
			es->ops->rollback(es);
	}
	sink->ops->end(sink, rc == PV_OK);
	return rc;
}

void pv_es_rollback(struct pv_es *es)
{
	struct pv_es_sink *sink = es->sink;

	if (!sink)
		return;
	es->sink = NULL;
	if (es->ops->rollback)
		es->ops->rollback(es);
	sink->ops->end(sink, false);
}

void pv_es_page_clear(struct pv_es_page *page)
{
	if (!page)
		return;
	for (size_t i = 0; i < page->count; i++) {
		struct pv_es_event *e = &page->events[i];
		free(e->type);
		free(e->stream);
		free(e->created);
		json_decref(e->data);
		json_decref(e->metadata);
	}
	free(page->events);
	*page = (struct pv_es_page){.next = -1};
}

/* A page is about the events asked for, or it is not used: forward, the
 * numbers rise from `from` and stay below from + max; backward, they fall
 * from `from` (or the head, from < 0) and there are at most max; the next
 * page starts past them.  A server that says otherwise (a proxy's cached
 * page, another stream's feed) must not make the caller skip or repeat. */
enum pv_err pv_es_check_stream_page(const char *who, const struct pv_es_page *page,
				    const char *stream, int64_t from, size_t max, bool backward,
				    struct pv_error *err)
{
	for (size_t i = 0; i < page->count; i++) {
		int64_t n = page->events[i].number;
		bool inside = backward ? (from < 0 || (n <= from && n > from - (int64_t)max))
				       : (n >= from && (uint64_t)n - (uint64_t)from < max);
		bool ordered = i == 0 || (backward ? n < page->events[i - 1].number
						   : n > page->events[i - 1].number);

		if (!inside || !ordered || i >= max)
			return pv_error_set(err, PV_ERR_PROTOCOL,
					    "%s: read %s %s from %" PRId64 " (%zu): the page holds "
					    "event %" PRId64 " out of place",
					    who, stream, backward ? "backward" : "forward", from,
					    max, n);
	}
	if (backward && page->count && page->next >= page->events[page->count - 1].number)
		return pv_error_set(err, PV_ERR_PROTOCOL,
				    "%s: read %s backward: the next page starts at %" PRId64
				    ", not below this one",
				    who, stream, page->next);
	if (!backward && page->count && page->next <= page->events[page->count - 1].number)
		return pv_error_set(err, PV_ERR_PROTOCOL,
				    "%s: read %s forward: the next page starts at %" PRId64
				    ", not past this one",
				    who, stream, page->next);
	return PV_OK;
}

void pv_es_stream_list_clear(struct pv_es_stream_list *list)
{
	if (!list)
		return;
	for (size_t i = 0; i < list->count; i++) {
		free(list->streams[i].name);
		free(list->streams[i].updated);
	}
	free(list->streams);
	list->streams = NULL;
	list->count = 0;
}
