/* The read model's documents: folding events into them and reading them
 * back (see projection.h for the layout and the write protocol). */
#define _POSIX_C_SOURCE 200809L

#include "projection.h"
#include "id.h"
#include "log.h"
#include "lru.h"
#include "recorded.h"
#include "xalloc.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define STREAM_PREFIX PV_PROJECTION_CATEGORY "-"
#define READ_PAGE 1024
/* A head write refused by If-Match reloads and folds again, this often. */
#define WRITE_ATTEMPTS 3
/* A reader meeting a half-done write (parts newer than the head) retries. */
#define READ_ATTEMPTS 5
#define DIGEST_HEX 64
#define DOC_ID_MAX (PV_ULID_LEN + 32)

/* Keys the head carries beyond the domain's split head. */
static const char *const head_extra[] = {"election_id", "part_digests", "results"};
/* Keys of the FULL head that the public view leaves out. */
static const char *const public_hidden[] = {"owner", "parts", "election_id", "part_digests",
					    "results"};
static const char *const tally_keys[] = {"ratings_count", "ratings_sum"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

struct entry {
	struct pv_lru_node node;
	char id[PV_ULID_LEN + 1];
	struct pv_election *state; /* as the documents will be once written */
	char *etag;                /* of the head; NULL: no head */
	json_t *digests;           /* part digests the documents have; NULL: unknown */
	size_t parts;              /* parts the documents have (to delete stale ones) */
	bool dirty;                /* documents differ from state (rebuilt) */
};

struct pv_projection {
	struct pv_cosmos *cosmos;
	struct pv_es *es;
	size_t per_part;
	size_t cap;
	struct pv_lru *cache;
	struct pv_projection_stats stats;
	void (*hook)(void);
};

/* ---- small JSON helpers (allocation failures abort, as pv_x* do) ---- */

static json_t *jobject(void)
{
	json_t *o = json_object();

	if (!o)
		pv_oom("json_object", 0);
	return o;
}

static void jset(json_t *o, const char *key, json_t *v)
{
	if (!v || json_object_set_new(o, key, v) != 0)
		pv_oom("json_object_set_new", 0);
}

static void jappend(json_t *a, json_t *v)
{
	if (!v || json_array_append_new(a, v) != 0)
		pv_oom("json_array_append_new", 0);
}

/* Removes Cosmos DB's system properties (_rid, _etag, _ts, ...). */
static void strip_system(json_t *doc)
{
	const char *key;
	json_t *v;
	void *tmp;

	json_object_foreach_safe(doc, tmp, key, v)
	{
		if (key[0] == '_')
			json_object_del(doc, key);
	}
}

/* SHA-256 (hex) of the canonical text of a part: content only. */
static void digest_of(const json_t *part, char out[DIGEST_HEX + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char *text = json_dumps(part, JSON_COMPACT | JSON_SORT_KEYS);

	if (!text)
		pv_oom("json_dumps", 0);
	if (!EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		pv_oom("EVP_Digest sha256", 0);
	free(text);
	for (unsigned i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[DIGEST_HEX] = '\0';
}

static void part_id(const char *eid, size_t k, char out[DOC_ID_MAX])
{
	snprintf(out, DOC_ID_MAX, "%s-part-%zu", eid, k);
}

/* The election id of stream Election-<ULID>, or NULL. */
static const char *stream_election(const char *stream)
{
	size_t n = strlen(STREAM_PREFIX);

	if (!stream || strncmp(stream, STREAM_PREFIX, n) != 0 || !pv_ulid_valid(stream + n))
		return NULL;
	return stream + n;
}

/* ---- the cache ---- */

static void entry_free(struct entry *e)
{
	if (!e)
		return;
	pv_election_free(e->state);
	free(e->etag);
	json_decref(e->digests);
	free(e);
}

static void node_free(struct pv_lru_node *node)
{
	entry_free(PV_LRU_ENTRY(node, struct entry, node));
}

static void cache_drop(struct pv_projection *p, struct entry *e)
{
	pv_lru_remove(p->cache, &e->node);
}

static struct entry *cache_find(struct pv_projection *p, const char *id)
{
	return PV_LRU_ENTRY(pv_lru_find(p->cache, id), struct entry, node);
}

/* Takes e; evicts the least recently used past the cache's size. */
static void cache_insert(struct pv_projection *p, struct entry *e)
{
	pv_lru_put(p->cache, &e->node, e->id);
}

struct pv_projection *pv_projection_new(struct pv_cosmos *cosmos, struct pv_es *es, size_t per_part,
					size_t cache_elections)
{
	struct pv_projection *p = pv_xcalloc(1, sizeof *p);

	p->cosmos = cosmos;
	p->es = es;
	p->per_part = per_part ? per_part : PV_PROJECTION_PER_PART;
	p->cap = cache_elections;
	p->cache = pv_lru_new(cache_elections, node_free);
	return p;
}

void pv_projection_forget(struct pv_projection *p)
{
	pv_lru_clear(p->cache);
}

void pv_projection_free(struct pv_projection *p)
{
	if (!p)
		return;
	pv_lru_free(p->cache);
	free(p);
}

void pv_projection_get_stats(const struct pv_projection *p, struct pv_projection_stats *out)
{
	*out = p->stats;
}

void pv_projection_set_write_hook(struct pv_projection *p, void (*hook)(void))
{
	p->hook = hook;
}

static void wrote(struct pv_projection *p)
{
	if (p->hook)
		p->hook();
}

/* ---- folding ---- */

/* Folds one event unless the state already holds it.  An event the fold
 * refuses is logged and left out: the appender checked it, so this means
 * the stream holds something written by another tool. */
static void fold(struct pv_projection *p, struct pv_election **state, const struct pv_es_event *r)
{
	struct pv_error why;
	bool restarted;

	if (r->number <= pv_election_version(*state)) {
		p->stats.skipped++;
		return;
	}
	if (pv_recorded_fold(state, r, &restarted, &why) != PV_OK) {
		pv_log_warnx("projector", "%s event %" PRId64 " (%s, %s) does not fold: %s",
			     r->stream, r->number, r->id, r->type, why.msg);
		p->stats.refused++;
	} else {
		p->stats.events++;
	}
	if (restarted)
		pv_log_info("projector", "%s starts again at event %" PRId64 " (deleted by hand)",
			    r->stream, r->number);
}

/* The state of an election after its stream's events up to `target`
 * (INT64_MAX: all), read from the event store. */
static enum pv_err replay(struct pv_projection *p, const char *eid, int64_t target,
			  struct pv_election **out, struct pv_error *err)
{
	struct pv_election *state = pv_election_new(eid);
	char *stream = pv_xasprintf("%s%s", STREAM_PREFIX, eid);
	int64_t from = 0;
	enum pv_err rc = PV_OK;

	p->stats.rebuilds++;
	while (from <= target) {
		struct pv_es_page page = {0};
		bool end;

		rc = pv_es_read_stream(p->es, stream, from, READ_PAGE, false, &page, err);
		if (rc == PV_ERR_NOT_FOUND || rc == PV_ERR_GONE) {
			rc = PV_OK;
			break;
		}
		if (rc != PV_OK) {
			pv_error_prefix(err, "rebuild %s", stream);
			break;
		}
		for (size_t i = 0; i < page.count && page.events[i].number <= target; i++)
			fold(p, &state, &page.events[i]);
		end = page.count == 0 || page.end_of_stream;
		if (page.count > 0)
			from = page.events[page.count - 1].number + 1;
		pv_es_page_clear(&page);
		if (end)
			break;
	}
	free(stream);
	if (rc != PV_OK) {
		pv_election_free(state);
		return rc;
	}
	*out = state;
	return PV_OK;
}

/* ---- reading documents ---- */

enum pv_err pv_projection_read_head(struct pv_cosmos *c, const char *election_id, json_t **head,
				    struct pv_error *err)
{
	return pv_projection_read_head_etag(c, election_id, head, NULL, err);
}

/* Reads the parts a head names and checks them against its digests.
 * PV_ERR_CONFLICT: a part is missing or differs (a write is half done). */
static enum pv_err read_parts(struct pv_cosmos *c, const json_t *head, json_t **parts,
			      struct pv_error *err)
{
	const char *eid = json_string_value(json_object_get(head, "id"));
	const json_t *digests = json_object_get(head, "part_digests");
	json_t *jn = json_object_get(head, "parts");
	json_t *out;
	size_t n;

	*parts = NULL;
	if (!eid || !json_is_integer(jn) || json_integer_value(jn) < 0 || !json_is_array(digests) ||
	    json_array_size(digests) != (size_t)json_integer_value(jn))
		return pv_error_set(err, PV_ERR_CONFLICT,
				    "election document %s: head without parts or part digests",
				    eid ? eid : "?");
	n = (size_t)json_integer_value(jn);
	out = json_array();
	if (!out)
		pv_oom("json_array", 0);
	for (size_t k = 1; k <= n; k++) {
		char id[DOC_ID_MAX], d[DIGEST_HEX + 1];
		const char *want = json_string_value(json_array_get(digests, k - 1));
		json_t *part;
		enum pv_err rc;

		part_id(eid, k, id);
		rc = pv_cosmos_read(c, eid, id, &part, NULL, err);

		if (rc == PV_ERR_NOT_FOUND)
			rc = pv_error_set(err, PV_ERR_CONFLICT,
					  "election document %s: part %zu missing", eid, k);
		if (rc != PV_OK) {
			json_decref(out);
			return rc;
		}
		strip_system(part);
		digest_of(part, d);
		if (!want || strcmp(want, d) != 0) {
			json_decref(part);
			json_decref(out);
			return pv_error_set(
				err, PV_ERR_CONFLICT,
				"election document %s: part %zu is not the one the head "
				"names",
				eid, k);
		}
		jappend(out, part);
	}
	*parts = out;
	return PV_OK;
}

/* The FULL document from a head and its parts (both borrowed). */
static enum pv_err join(const json_t *head, const json_t *parts, json_t **full,
			struct pv_error *err)
{
	json_t *h = json_copy((json_t *)head);
	enum pv_err rc;

	if (!h)
		pv_oom("json_copy", 0);
	for (size_t i = 0; i < COUNT(head_extra); i++)
		json_object_del(h, head_extra[i]);
	rc = pv_election_doc_join(h, parts, full, err);
	json_decref(h);
	return rc;
}

/* Head and parts -> state, or PV_ERR_CONFLICT when they do not agree. */
static enum pv_err state_from_docs(struct pv_cosmos *c, const json_t *head,
				   struct pv_election **state, struct pv_error *err)
{
	json_t *parts, *full;
	enum pv_err rc = read_parts(c, head, &parts, err);

	*state = NULL;
	if (rc != PV_OK)
		return rc;
	rc = join(head, parts, &full, err);
	json_decref(parts);
	if (rc != PV_OK)
		return pv_error_set(err, PV_ERR_CONFLICT, "%s", err->msg);
	rc = pv_election_from_json(full, state, err);
	json_decref(full);
	if (rc != PV_OK)
		return pv_error_set(err, PV_ERR_CONFLICT, "election document: %s", err->msg);
	return PV_OK;
}

/* A cache entry for election eid, about to fold events first..target. */
static enum pv_err load(struct pv_projection *p, const char *eid, int64_t first, int64_t target,
			struct entry **out, struct pv_error *err)
{
	struct entry *e = pv_xcalloc(1, sizeof *e);
	json_t *head = NULL;
	enum pv_err rc;

	*out = NULL;
	snprintf(e->id, sizeof e->id, "%s", eid);
	rc = pv_projection_read_head_etag(p->cosmos, eid, &head, &e->etag, err);
	if (rc == PV_ERR_PROTOCOL) {
		/* Not a head of ours under the election's id: replace it. */
		pv_log_warnx("projector", "%s; deleting it and rebuilding from the stream",
			     err->msg);
		rc = pv_cosmos_delete(p->cosmos, eid, eid, NULL, err);
		if (rc != PV_OK && rc != PV_ERR_NOT_FOUND)
			goto fail;
		goto rebuild;
	}
	if (rc == PV_ERR_NOT_FOUND) {
		if (first <= 0) {
			e->state = pv_election_new(eid);
			*out = e;
			return PV_OK;
		}
		/* Deleted (a replay), or documents lost: the stream knows. */
		pv_log_info("projector",
			    "election %s has no document at event %" PRId64
			    "; rebuilding it from its stream",
			    eid, first);
		goto rebuild;
	}
	if (rc != PV_OK)
		goto fail;
	{
		json_t *jn = json_object_get(head, "parts");

		e->parts = json_is_integer(jn) && json_integer_value(jn) > 0
				   ? (size_t)json_integer_value(jn)
				   : 0;
	}
	rc = state_from_docs(p->cosmos, head, &e->state, err);
	if (rc == PV_OK) {
		e->digests = json_incref(json_object_get(head, "part_digests"));
		json_decref(head);
		*out = e;
		return PV_OK;
	}
	if (rc != PV_ERR_CONFLICT)
		goto fail;
	pv_log_warnx("projector", "%s; rebuilding election %s from its stream", err->msg, eid);
rebuild:
	json_decref(head);
	head = NULL;
	rc = replay(p, eid, target, &e->state, err);
	if (rc != PV_OK)
		goto fail;
	e->dirty = true;
	*out = e;
	return PV_OK;
fail:
	json_decref(head);
	entry_free(e);
	return rc;
}

/* ---- writing documents ---- */

/* Deletes every document of the election's partition, the head last. */
static enum pv_err delete_all(struct pv_projection *p, const char *eid, struct pv_error *err)
{
	json_t *params = json_pack("{s:s}", "@e", eid), *ids = json_array();
	char *cont = NULL;
	enum pv_err rc = PV_OK;
	bool head = false;
	size_t i;
	json_t *v;

	if (!params || !ids)
		pv_oom("json_pack", 0);
	do {
		json_t *docs = NULL;
		char *next = NULL;

		rc = pv_cosmos_query(p->cosmos, "SELECT c.id FROM c WHERE c.election_id = @e",
				     params, eid, 100, cont, &docs, &next, err);
		free(cont);
		cont = next;
		if (rc != PV_OK)
			break;
		json_array_foreach(docs, i, v)
		{
			const char *id = json_string_value(json_object_get(v, "id"));

			if (!id)
				continue;
			if (strcmp(id, eid) == 0)
				head = true;
			else
				jappend(ids, json_string(id));
		}
		json_decref(docs);
	} while (cont);
	free(cont);
	if (head)
		jappend(ids, json_string(eid));
	json_array_foreach(ids, i, v)
	{
		if (rc != PV_OK)
			break;
		rc = pv_cosmos_delete(p->cosmos, eid, json_string_value(v), NULL, err);
		if (rc == PV_ERR_NOT_FOUND)
			rc = PV_OK;
		if (rc == PV_OK) {
			p->stats.deletes++;
			wrote(p);
		}
	}
	json_decref(ids);
	json_decref(params);
	return rc;
}

/* Writes the documents of e->state: changed parts, stale parts, head. */
static enum pv_err write_docs(struct pv_projection *p, struct entry *e, struct pv_error *err)
{
	json_t *full, *docs, *digests, *head, *stored = NULL;
	enum pv_err rc = PV_OK;
	char *etag = NULL;
	size_t n;

	if (pv_election_deleted(e->state)) {
		rc = delete_all(p, e->id, err);
		if (rc == PV_OK) {
			free(e->etag);
			e->etag = NULL;
			json_decref(e->digests);
			e->digests = NULL;
			e->parts = 0;
		}
		return rc;
	}
	if (!pv_election_exists(e->state))
		return PV_OK; /* nothing folded yet that makes an election */
	full = pv_election_to_json(e->state, PV_VIEW_FULL);
	docs = pv_election_doc_split(full, p->per_part);
	json_decref(full);
	n = json_array_size(docs) - 1;
	digests = json_array();
	if (!digests)
		pv_oom("json_array", 0);
	for (size_t k = 1; k <= n && rc == PV_OK; k++) {
		json_t *part = json_array_get(docs, k);
		const char *old = json_string_value(json_array_get(e->digests, k - 1));
		char d[DIGEST_HEX + 1];

		digest_of(part, d);
		jappend(digests, json_string(d));
		if (old && strcmp(old, d) == 0)
			continue;
		rc = pv_cosmos_upsert(p->cosmos, e->id, part, NULL, NULL, NULL, err);
		if (rc == PV_OK) {
			p->stats.parts++;
			wrote(p);
		}
	}
	for (size_t k = n + 1; k <= e->parts && rc == PV_OK; k++) {
		char id[DOC_ID_MAX];

		part_id(e->id, k, id);
		rc = pv_cosmos_delete(p->cosmos, e->id, id, NULL, err);
		if (rc == PV_ERR_NOT_FOUND)
			rc = PV_OK;
		if (rc == PV_OK) {
			p->stats.deletes++;
			wrote(p);
		}
	}
	if (rc != PV_OK)
		goto out;
	head = json_array_get(docs, 0);
	jset(head, "election_id", json_string(e->id));
	jset(head, "part_digests", json_incref(digests));
	jset(head, "results", pv_election_results(e->state));
	if (e->etag)
		rc = pv_cosmos_replace(p->cosmos, e->id, head, e->etag, &stored, &etag, err);
	else
		rc = pv_cosmos_create(p->cosmos, e->id, head, &stored, &etag, err);
	json_decref(stored);
	if (rc != PV_OK)
		goto out;
	p->stats.elections++;
	free(e->etag);
	e->etag = etag;
	json_decref(e->digests);
	e->digests = json_incref(digests);
	e->parts = n;
	wrote(p);
out:
	json_decref(digests);
	json_decref(docs);
	return rc;
}

/* Folds one election's events (in stream order) and writes it. */
static enum pv_err project(struct pv_projection *p, const char *eid,
			   const struct pv_es_event *const *evs, size_t n, struct pv_error *err)
{
	for (int attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
		struct entry *e = cache_find(p, eid);
		int64_t before;
		enum pv_err rc;

		if (!e) {
			rc = load(p, eid, evs[0]->number, evs[n - 1]->number, &e, err);
			if (rc != PV_OK)
				return rc;
			cache_insert(p, e);
		}
		before = pv_election_version(e->state);
		for (size_t i = 0; i < n; i++)
			fold(p, &e->state, evs[i]);
		if (pv_election_version(e->state) == before && !e->dirty)
			return PV_OK;
		rc = write_docs(p, e, err);
		if (rc == PV_OK) {
			e->dirty = false;
			if (p->cap == 0)
				cache_drop(p, e);
			return PV_OK;
		}
		/* The state is now ahead of the documents. */
		cache_drop(p, e);
		if (rc != PV_ERR_CONFLICT)
			return pv_error_prefix(err, "election %s", eid);
		p->stats.conflicts++;
		pv_log_info("projector", "election %s: %s; reading it again", eid, err->msg);
	}
	return pv_error_set(err, PV_ERR_CONFLICT,
			    "election %s: its head kept changing under this projector (%d tries)",
			    eid, WRITE_ATTEMPTS);
}

static int by_stream(const void *a, const void *b)
{
	const struct pv_es_event *x = *(const struct pv_es_event *const *)a;
	const struct pv_es_event *y = *(const struct pv_es_event *const *)b;
	int c = strcmp(x->stream ? x->stream : "", y->stream ? y->stream : "");

	if (c)
		return c;
	return x->number < y->number ? -1 : x->number > y->number;
}

enum pv_err pv_projection_apply(struct pv_projection *p, const struct pv_es_event *events,
				size_t count, const volatile sig_atomic_t *stop, bool *complete,
				struct pv_error *err)
{
	const struct pv_es_event **v;
	size_t n = 0, i = 0;
	enum pv_err rc = PV_OK;

	*complete = false;
	if (count == 0) {
		*complete = true;
		return PV_OK;
	}
	v = pv_xreallocarray(NULL, count, sizeof *v);
	for (size_t k = 0; k < count; k++) {
		if (!stream_election(events[k].stream)) {
			pv_log_warnx("projector",
				     "event %s of stream %s at %" PRId64
				     " is not an election's; ignored",
				     events[k].id, events[k].stream ? events[k].stream : "(none)",
				     events[k].position);
			continue;
		}
		v[n++] = &events[k];
	}
	/* Stable enough: within a stream, numbers are unique. */
	qsort(v, n, sizeof *v, by_stream);
	while (i < n) {
		size_t j = i + 1;

		if (stop && *stop)
			goto out;
		while (j < n && strcmp(v[j]->stream, v[i]->stream) == 0)
			j++;
		rc = project(p, stream_election(v[i]->stream), v + i, j - i, err);
		if (rc != PV_OK)
			goto out;
		i = j;
	}
	*complete = true;
out:
	free(v);
	return rc;
}

enum pv_err pv_projection_rebuild(struct pv_projection *p, const char *election_id,
				  struct pv_error *err)
{
	struct entry *e = cache_find(p, election_id);
	json_t *head = NULL;
	enum pv_err rc;

	if (!pv_ulid_valid(election_id))
		return pv_error_set(err, PV_ERR_INVALID, "rebuild: %s is not an election id",
				    election_id);
	if (e)
		cache_drop(p, e);
	e = pv_xcalloc(1, sizeof *e);
	snprintf(e->id, sizeof e->id, "%s", election_id);
	rc = pv_projection_read_head_etag(p->cosmos, election_id, &head, &e->etag, err);
	if (rc == PV_OK) {
		json_t *jn = json_object_get(head, "parts");

		e->parts = json_is_integer(jn) && json_integer_value(jn) > 0
				   ? (size_t)json_integer_value(jn)
				   : 0;
		json_decref(head);
	} else if (rc != PV_ERR_NOT_FOUND) {
		entry_free(e);
		return rc;
	}
	rc = replay(p, election_id, INT64_MAX, &e->state, err);
	if (rc == PV_OK && !pv_election_exists(e->state) && !pv_election_deleted(e->state))
		rc = delete_all(p, election_id, err); /* no stream: no documents */
	else if (rc == PV_OK)
		rc = write_docs(p, e, err);
	entry_free(e);
	return rc;
}

/* ---- views for readers ---- */

/* JSON stores may keep a mean of 5.0 as 5 (the stand-in's JavaScript
 * does); the results give means as reals, as the domain computes them. */
static void reals_back(json_t *head)
{
	json_t *comps = json_object_get(json_object_get(head, "results"), "competitions");
	json_t *c, *k, *mean;
	size_t i, j;

	json_array_foreach(comps, i, c)
	{
		json_array_foreach(json_object_get(c, "candidates"), j, k)
		{
			mean = json_object_get(k, "mean");
			if (json_is_integer(mean))
				jset(k, "mean", json_real((double)json_integer_value(mean)));
		}
	}
}

enum pv_err pv_projection_read_head_etag(struct pv_cosmos *c, const char *election_id,
					 json_t **head, char **etag, struct pv_error *err)
{
	enum pv_err rc;

	*head = NULL;
	if (etag)
		*etag = NULL;
	if (!pv_ulid_valid(election_id))
		return pv_error_set(err, PV_ERR_NOT_FOUND, "no election %s", election_id);
	rc = pv_cosmos_read(c, election_id, election_id, head, etag, err);
	if (rc != PV_OK)
		return rc;
	if (!json_is_object(*head) || !json_is_object(json_object_get(*head, "results"))) {
		json_decref(*head);
		*head = NULL;
		if (etag) {
			free(*etag);
			*etag = NULL;
		}
		return pv_error_set(err, PV_ERR_PROTOCOL, "election document %s is not a head",
				    election_id);
	}
	strip_system(*head);
	reals_back(*head);
	return PV_OK;
}

const char *pv_projection_head_owner(const json_t *head)
{
	return json_string_value(json_object_get(head, "owner"));
}

int64_t pv_projection_head_version(const json_t *head)
{
	json_t *v = json_object_get(head, "version");

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

const json_t *pv_projection_head_results(const json_t *head)
{
	return json_object_get(head, "results");
}

static bool listed(const char *key, const char *const *keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(key, keys[i]) == 0)
			return true;
	return false;
}

/* Competitions without the candidates' tallies. */
static json_t *competitions_public(const json_t *comps)
{
	json_t *out = json_array(), *c, *k;
	size_t i, j;

	if (!out)
		pv_oom("json_array", 0);
	json_array_foreach(comps, i, c)
	{
		json_t *oc = json_deep_copy(c), *cands = json_array();

		if (!oc || !cands)
			pv_oom("json_deep_copy", 0);
		json_array_foreach(json_object_get(c, "candidates"), j, k)
		{
			json_t *ok = json_copy(k);

			if (!ok)
				pv_oom("json_copy", 0);
			for (size_t t = 0; t < COUNT(tally_keys); t++)
				json_object_del(ok, tally_keys[t]);
			jappend(cands, ok);
		}
		if (json_object_get(oc, "candidates"))
			jset(oc, "candidates", cands);
		else
			json_decref(cands);
		jappend(out, oc);
	}
	return out;
}

json_t *pv_projection_public_view(const json_t *head)
{
	json_t *out = jobject(), *v;
	const char *key;

	json_object_foreach((json_t *)head, key, v)
	{
		if (listed(key, public_hidden, COUNT(public_hidden)) || key[0] == '_')
			continue;
		if (strcmp(key, "competitions") == 0)
			jset(out, key, competitions_public(v));
		else
			jset(out, key, json_deep_copy(v));
	}
	return out;
}

static void nap_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

enum pv_err pv_projection_view(struct pv_cosmos *c, const char *election_id,
			       enum pv_election_view view, json_t **out, int64_t *version,
			       struct pv_error *err)
{
	enum pv_err rc = PV_OK;

	*out = NULL;
	for (int attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
		json_t *head, *parts, *full;
		struct pv_election *state;

		if (attempt > 0)
			nap_ms(20 * attempt);
		rc = pv_projection_read_head(c, election_id, &head, err);
		if (rc != PV_OK)
			return rc;
		if (version)
			*version = pv_projection_head_version(head);
		if (view == PV_VIEW_PUBLIC) {
			*out = pv_projection_public_view(head);
			json_decref(head);
			return PV_OK;
		}
		rc = read_parts(c, head, &parts, err);
		if (rc == PV_OK) {
			rc = join(head, parts, &full, err);
			json_decref(parts);
		}
		json_decref(head);
		if (rc == PV_ERR_CONFLICT)
			continue; /* the projector is between part and head writes */
		if (rc != PV_OK)
			return rc;
		if (view == PV_VIEW_FULL) {
			*out = full;
			return PV_OK;
		}
		rc = pv_election_from_json(full, &state, err);
		json_decref(full);
		if (rc != PV_OK)
			return pv_error_set(err, PV_ERR_PROTOCOL, "election document %s: %s",
					    election_id, err->msg);
		*out = pv_election_to_json(state, view);
		pv_election_free(state);
		return PV_OK;
	}
	return pv_error_set(err, PV_ERR_UNAVAILABLE,
			    "election %s: its documents kept changing while being read (%s)",
			    election_id, err->msg);
}

enum pv_err pv_projection_list(struct pv_cosmos *c, int limit, const char *continuation,
			       json_t **elections, char **next, struct pv_error *err)
{
	/* Heads are the documents with part digests; no ORDER BY, which the
	 * service's gateway does not run across partitions for REST clients. */
	static const char sql[] =
		"SELECT c.id, c.version, c.status, c.name, c.description, c.created_at, "
		"c.opened_at, c.closed_at, c.voter_count, c.ballot_count, c.cast_count "
		"FROM c WHERE IS_DEFINED(c.part_digests)";
	json_t *docs;
	enum pv_err rc;
	size_t i;
	json_t *d;

	*elections = NULL;
	*next = NULL;
	rc = pv_cosmos_query(c, sql, NULL, NULL, limit, continuation, &docs, next, err);
	if (rc != PV_OK)
		return rc;
	json_array_foreach(docs, i, d) strip_system(d);
	*elections = docs;
	return PV_OK;
}
