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

#define READ_PAGE 1024
/* A head write refused by If-Match reloads and folds again, this often. */
#define WRITE_ATTEMPTS 3
/* Pending elections a projection may hold, per election its cache keeps
 * (pending entries are pinned, past the cache's size): a backlog spread
 * over about as many elections as the cache holds is still written once
 * per flush. */
#define PENDING_PER_CACHED 2
/* A reader meeting a half-done write (parts newer than the head) retries. */
#define READ_ATTEMPTS 5
#define DIGEST_HEX 64
/* Kept out of the byte budget for the system properties Cosmos DB adds to
 * every item (_rid, _self, _etag, _attachments, _ts: about 200 bytes). */
#define SYSTEM_RESERVE 512

/* Keys the head carries beyond the domain's split head. */
static const char *const head_extra[] = {"election_id", "part_digests"};
/* Keys of the FULL document that the public view leaves out. */
static const char *const public_hidden[] = {"owner",   "parts",  "election_id", "part_digests",
					    "results", "voters", "ballots"};
static const char *const tally_keys[] = {"ratings_count", "ratings_sum"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

struct entry {
	struct pv_lru_node node;
	char id[PV_ULID_LEN + 1];
	struct pv_election *state;   /* as the documents will be once written */
	char *etag;                  /* of the head; NULL: no head */
	json_t *digests;             /* part digests the documents have, by list; NULL: unknown */
	size_t parts[PV_DOC__COUNT]; /* parts the documents have (to delete stale ones) */
	bool dirty;                  /* documents differ from state (rebuilt) */
	bool unread;                 /* head never read, taken as absent (see load) */
	/* Folded by pv_projection_fold and not yet written: pinned in the
	 * cache until pv_projection_flush writes it; `since` is its first
	 * event not yet written (the one a parking names). */
	bool pending;
	struct pv_es_event since;
};

struct pv_projection {
	struct pv_cosmos *cosmos;
	struct pv_es *es;
	size_t max_bytes;
	size_t cap;
	struct pv_lru *cache;
	struct pv_projection_stats stats;
	void (*hook)(void);
	/* Parking (see projection.h): the callback, the parked elections, and
	 * what the last failure of project() says about itself. */
	pv_projection_park_fn park;
	void *park_ctx;
	char (*parked)[PV_ULID_LEN + 1];
	size_t nparked, parked_cap;
	bool for_good;                     /* the last failure is the election's own */
	long refused_status;               /* Cosmos DB's status for it, 0: none */
	const struct pv_es_event *culprit; /* the event a fold refused, or NULL */
	size_t npending;                   /* entries pending (see struct entry) */
	struct pv_es_event unwritten;      /* the first event a failed write leaves out */
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

static int digest_chunk(const char *buffer, size_t size, void *ctx)
{
	return EVP_DigestUpdate(ctx, buffer, size) ? 0 : -1;
}

/* SHA-256 (hex) of the canonical text of a part: content only.  The text
 * goes straight into the digest (parts are up to a megabyte, and every
 * part of an election is digested at each write). */
static void digest_of(const json_t *part, char out[DIGEST_HEX + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		pv_oom("EVP_DigestInit_ex sha256", 0);
	if (json_dump_callback(part, digest_chunk, ctx, JSON_COMPACT | JSON_SORT_KEYS) != 0)
		pv_oom("json_dump_callback", 0);
	if (!EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 32)
		pv_oom("EVP_DigestFinal_ex sha256", 0);
	EVP_MD_CTX_free(ctx);
	for (unsigned i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[DIGEST_HEX] = '\0';
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
	if (e->pending)
		p->npending--;
	pv_lru_remove(p->cache, &e->node);
}

/* Marks e folded past its documents, from event `at` on. */
static void pend(struct pv_projection *p, struct entry *e, const struct pv_es_event *at)
{
	if (e->pending)
		return;
	e->pending = true;
	e->node.pinned = true;
	e->since = (struct pv_es_event){.position = at->position, .number = at->number};
	p->npending++;
}

/* e's documents are written. */
static void written(struct pv_projection *p, struct entry *e)
{
	e->dirty = false;
	if (e->pending) {
		e->pending = false;
		e->node.pinned = false;
		p->npending--;
	}
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

struct pv_projection *pv_projection_new(struct pv_cosmos *cosmos, struct pv_es *es,
					size_t max_bytes, size_t cache_elections)
{
	struct pv_projection *p = pv_xcalloc(1, sizeof *p);

	p->cosmos = cosmos;
	p->es = es;
	p->max_bytes = max_bytes > SYSTEM_RESERVE ? max_bytes : PV_PROJECTION_MAX_BYTES;
	p->cap = cache_elections;
	p->cache = pv_lru_new(cache_elections, node_free);
	return p;
}

void pv_projection_forget(struct pv_projection *p)
{
	pv_lru_clear(p->cache);
	p->npending = 0;
}

void pv_projection_free(struct pv_projection *p)
{
	if (!p)
		return;
	pv_lru_free(p->cache);
	free(p->parked);
	free(p);
}

void pv_projection_get_stats(const struct pv_projection *p, struct pv_projection_stats *out)
{
	*out = p->stats;
}

void pv_projection_stats_add(struct pv_projection_stats *a, const struct pv_projection_stats *b)
{
	a->events += b->events;
	a->skipped += b->skipped;
	a->refused += b->refused;
	a->elections += b->elections;
	a->parts += b->parts;
	a->deletes += b->deletes;
	a->rebuilds += b->rebuilds;
	a->conflicts += b->conflicts;
	a->parked += b->parked;
	a->parked_skipped += b->parked_skipped;
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
 * refuses (the appender checked it, so the stream holds something another
 * tool wrote) fails the election for good: PV_ERR_INVALID, and the
 * election is parked rather than projected without it. */
static enum pv_err fold(struct pv_projection *p, struct pv_election **state,
			const struct pv_es_event *r, struct pv_error *err)
{
	bool restarted;

	if (r->number <= pv_election_version(*state)) {
		p->stats.skipped++;
		return PV_OK;
	}
	if (pv_recorded_fold(state, r, &restarted, err) != PV_OK) {
		p->stats.refused++;
		p->for_good = true;
		p->refused_status = 0;
		p->culprit = r;
		return pv_error_prefix(err, "event %" PRId64 " (%s) does not fold", r->number,
				       r->type);
	}
	p->stats.events++;
	if (restarted)
		pv_log_info("projector", "%s starts again at event %" PRId64 " (deleted by hand)",
			    r->stream, r->number);
	return PV_OK;
}

/* The state of an election after its stream's events up to `target`
 * (INT64_MAX: all), read from the event store. */
static enum pv_err replay(struct pv_projection *p, const char *eid, int64_t target,
			  struct pv_election **out, struct pv_error *err)
{
	struct pv_election *state;
	char stream[PV_ELECTION_STREAM_SIZE];
	int64_t from = 0;
	enum pv_err rc = PV_OK;

	if (!pv_ulid_valid(eid))
		return pv_error_set(err, PV_ERR_INVALID, "rebuild: the election id is not a ULID");
	state = pv_election_new(eid);
	pv_election_stream(stream, eid);
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
		for (size_t i = 0; rc == PV_OK && i < page.count && page.events[i].number <= target;
		     i++)
			rc = fold(p, &state, &page.events[i], err);
		end = page.count == 0 || page.end_of_stream;
		if (page.count > 0)
			from = page.events[page.count - 1].number + 1;
		if (rc != PV_OK)
			p->culprit = NULL; /* the page's events go now */
		pv_es_page_clear(&page);
		if (end || rc != PV_OK)
			break;
	}
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

/* Reads the parts of `lists` (a mask of 1 << enum pv_doc_list) a head
 * names, in list order, and checks them against its digests.
 * PV_ERR_CONFLICT: a part is missing or differs (a write is half done). */
static enum pv_err read_parts(struct pv_cosmos *c, const json_t *head, unsigned lists,
			      json_t **parts, struct pv_error *err)
{
	const char *eid = json_string_value(json_object_get(head, "id"));
	const json_t *digests = json_object_get(head, "part_digests");
	size_t counts[PV_DOC__COUNT];
	json_t *out;

	*parts = NULL;
	if (!eid || !pv_election_doc_counts(head, counts) || !json_is_object(digests))
		return pv_error_set(err, PV_ERR_CONFLICT,
				    "election document %s: head without parts or part digests",
				    eid ? eid : "?");
	out = json_array();
	if (!out)
		pv_oom("json_array", 0);
	for (int l = 0; l < PV_DOC__COUNT; l++) {
		const json_t *ld = json_object_get(digests, pv_election_doc_lists[l]);

		if (!(lists & (1u << l)))
			continue;
		for (size_t k = 1; k <= counts[l]; k++) {
			char id[PV_DOC_ID_MAX], d[DIGEST_HEX + 1];
			const char *want = json_string_value(json_array_get(ld, k - 1));
			json_t *part;
			enum pv_err rc;

			pv_election_doc_part_id(eid, (enum pv_doc_list)l, k, id);
			rc = pv_cosmos_read(c, eid, id, &part, NULL, err);
			if (rc == PV_ERR_NOT_FOUND)
				rc = pv_error_set(err, PV_ERR_CONFLICT,
						  "election document %s: part %s missing", eid, id);
			if (rc != PV_OK) {
				json_decref(out);
				return rc;
			}
			pv_cosmos_strip_system(part);
			digest_of(part, d);
			if (!want || strcmp(want, d) != 0) {
				json_decref(part);
				json_decref(out);
				return pv_error_set(err, PV_ERR_CONFLICT,
						    "election document %s: part %s is not the one "
						    "the head names",
						    eid, id);
			}
			jappend(out, part);
		}
	}
	*parts = out;
	return PV_OK;
}

/* The FULL document (with the lists asked) and the results from a head and
 * its parts (both borrowed). */
static enum pv_err join(const json_t *head, const json_t *parts, unsigned lists, json_t **full,
			json_t **results, struct pv_error *err)
{
	json_t *h = json_copy((json_t *)head);
	enum pv_err rc;

	if (!h)
		pv_oom("json_copy", 0);
	for (size_t i = 0; i < COUNT(head_extra); i++)
		json_object_del(h, head_extra[i]);
	rc = pv_election_doc_join(h, parts, lists, full, results, err);
	json_decref(h);
	return rc;
}

/* Head and parts -> state, or PV_ERR_CONFLICT when they do not agree. */
static enum pv_err state_from_docs(struct pv_cosmos *c, const json_t *head,
				   struct pv_election **state, struct pv_error *err)
{
	const unsigned lists = PV_DOC_ALL & ~(1u << PV_DOC_RESULTS);
	json_t *parts, *full;
	enum pv_err rc = read_parts(c, head, lists, &parts, err);

	*state = NULL;
	if (rc != PV_OK)
		return rc;
	rc = join(head, parts, lists, &full, NULL, err);
	json_decref(parts);
	if (rc != PV_OK)
		return pv_error_set(err, PV_ERR_CONFLICT, "%s", err->msg);
	rc = pv_election_from_json(full, state, err);
	json_decref(full);
	if (rc != PV_OK)
		return pv_error_set(err, PV_ERR_CONFLICT, "election document: %s", err->msg);
	return PV_OK;
}

static enum pv_err delete_all(struct pv_projection *p, const char *eid, struct pv_error *err);

/* A head of an earlier layout (voters and ballots in parts by count):
 * its documents are deleted and the election rebuilt from its stream. */
static enum pv_err drop_old_layout(struct pv_projection *p, const char *eid, struct pv_error *err)
{
	pv_log_info("projector",
		    "election %s: documents of an earlier layout; replacing them from its stream",
		    eid);
	return delete_all(p, eid, err);
}

/* A cache entry for election eid, about to fold events first..target.
 * A batch from the stream's first event is a new election unless this is
 * a replay: its head is not read (half the requests of a new election),
 * write_docs creates it, and a head that exists after all (409, or found
 * before parts are written) makes project() load it again with
 * force_read. */
static enum pv_err load(struct pv_projection *p, const char *eid, int64_t first, int64_t target,
			bool force_read, struct entry **out, struct pv_error *err)
{
	struct entry *e = pv_xcalloc(1, sizeof *e);
	json_t *head = NULL;
	enum pv_err rc;

	*out = NULL;
	snprintf(e->id, sizeof e->id, "%s", eid);
	if (first == 0 && !force_read) {
		e->state = pv_election_new(eid);
		e->unread = true;
		*out = e;
		return PV_OK;
	}
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
	if (!pv_election_doc_counts(head, e->parts)) {
		rc = drop_old_layout(p, eid, err);
		if (rc != PV_OK)
			goto fail;
		free(e->etag);
		e->etag = NULL;
		goto rebuild;
	}
	rc = state_from_docs(p->cosmos, head, &e->state, err);
	if (rc == PV_OK && pv_election_version(e->state) < first - 1) {
		/* Events between the documents and this batch never reached
		 * them (skipped while the election was parked): replay. */
		pv_log_info("projector",
			    "election %s: documents at event %" PRId64 ", batch from %" PRId64
			    "; rebuilding it from its stream",
			    eid, pv_election_version(e->state), first);
		pv_election_free(e->state);
		e->state = NULL;
		e->digests = json_incref(json_object_get(head, "part_digests"));
		goto rebuild;
	}
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

/* A write Cosmos DB refused for good (400, 413): the election's own. */
static enum pv_err refused(struct pv_projection *p, enum pv_err rc)
{
	long status = pv_cosmos_last_status(p->cosmos);

	if (rc != PV_OK && rc != PV_ERR_CONFLICT && (status == 400 || status == 413)) {
		p->for_good = true;
		p->refused_status = status;
	}
	return rc;
}

/* Means that are whole numbers stored as integers: JSON stores may give
 * 5.0 back as 5 (the stand-in's JavaScript does), and the part's digest
 * must be of what comes back.  Readers make them reals again (reals_back). */
static void whole_means(json_t *docs)
{
	json_t *part, *item, *mean;
	size_t i, j;

	json_array_foreach(docs, i, part)
	{
		const char *list = json_string_value(json_object_get(part, "list"));

		if (!list || strcmp(list, pv_election_doc_lists[PV_DOC_RESULTS]) != 0)
			continue;
		json_array_foreach(json_object_get(part, "items"), j, item)
		{
			json_t *row = json_array_get(item, 1);
			double m;

			mean = json_object_get(row, "mean");
			m = json_real_value(mean);
			if (json_is_real(mean) && m == (double)(json_int_t)m)
				jset(row, "mean", json_integer((json_int_t)m));
		}
	}
}

/* The documents of a state, each checked against the budget; a document
 * that cannot be built fails the election for good. */
static enum pv_err build_docs(struct pv_projection *p, struct entry *e, json_t **docs,
			      struct pv_error *err)
{
	size_t payload = p->max_bytes - SYSTEM_RESERVE;
	json_t *full = pv_election_to_json(e->state, PV_VIEW_FULL);
	json_t *results = pv_election_results(e->state);
	enum pv_err rc = pv_election_doc_split(full, results, payload, docs, err);

	json_decref(full);
	json_decref(results);
	if (rc != PV_OK) {
		p->for_good = true;
		p->refused_status = 0;
		return rc;
	}
	whole_means(*docs);
	return PV_OK;
}

static void no_docs(struct entry *e)
{
	free(e->etag);
	e->etag = NULL;
	json_decref(e->digests);
	e->digests = NULL;
	memset(e->parts, 0, sizeof e->parts);
}

static bool any_parts(const size_t n[PV_DOC__COUNT])
{
	for (int l = 0; l < PV_DOC__COUNT; l++)
		if (n[l])
			return true;
	return false;
}

/* Writes the documents of e->state: changed parts, stale parts, head. */
/* The head replaced with If-Match on the ETag read.  A head deleted since
 * (a rebuild or the projector writing the election's deletion meanwhile)
 * answers 404: the same as another writer's head (412), a conflict, so the
 * caller reads again and replays rather than failing. */
static enum pv_err head_replace(struct pv_projection *p, struct entry *e, json_t *head, char **etag,
				struct pv_error *err)
{
	enum pv_err rc = pv_cosmos_replace(p->cosmos, e->id, head, e->etag, NULL, etag, err);

	if (rc == PV_ERR_NOT_FOUND) {
		err->code = PV_ERR_CONFLICT;
		rc = pv_error_suffix(err, " (the head was deleted since it was read)");
	}
	return rc;
}

static enum pv_err write_docs(struct pv_projection *p, struct entry *e, struct pv_error *err)
{
	json_t *docs, *digests, *head, *stored = NULL, *part;
	size_t n[PV_DOC__COUNT], i, size;
	enum pv_err rc = PV_OK;
	char *etag = NULL;

	if (pv_election_deleted(e->state)) {
		rc = delete_all(p, e->id, err);
		if (rc == PV_OK)
			no_docs(e);
		return rc;
	}
	if (!pv_election_exists(e->state))
		return PV_OK; /* nothing folded yet that makes an election */
	rc = build_docs(p, e, &docs, err);
	if (rc != PV_OK)
		return rc;
	head = json_array_get(docs, 0);
	pv_election_doc_counts(head, n);
	if (e->unread && any_parts(n)) {
		/* Parts go before the head: make sure there is none to overwrite. */
		rc = pv_projection_read_head_etag(p->cosmos, e->id, &stored, NULL, err);
		json_decref(stored);
		stored = NULL;
		if (rc == PV_OK)
			rc = pv_error_set(err, PV_ERR_CONFLICT, "its documents exist (a replay)");
		if (rc != PV_ERR_NOT_FOUND) {
			json_decref(docs);
			return rc;
		}
		e->unread = false;
	}
	digests = jobject();
	for (int l = 0; l < PV_DOC__COUNT; l++)
		jset(digests, pv_election_doc_lists[l], json_array());
	json_array_foreach(docs, i, part)
	{
		const char *list = json_string_value(json_object_get(part, "list"));
		json_t *ld = list ? json_object_get(digests, list) : NULL;
		const char *old;
		char d[DIGEST_HEX + 1];

		if (i == 0)
			continue;
		old = json_string_value(
			json_array_get(json_object_get(e->digests, list), json_array_size(ld)));
		digest_of(part, d);
		jappend(ld, json_string(d));
		if (old && strcmp(old, d) == 0)
			continue;
		rc = refused(p, pv_cosmos_upsert(p->cosmos, e->id, part, NULL, NULL, NULL, err));
		if (rc != PV_OK)
			goto out;
		p->stats.parts++;
		wrote(p);
	}
	for (int l = 0; l < PV_DOC__COUNT; l++) {
		for (size_t k = n[l] + 1; k <= e->parts[l]; k++) {
			char id[PV_DOC_ID_MAX];

			pv_election_doc_part_id(e->id, (enum pv_doc_list)l, k, id);
			rc = pv_cosmos_delete(p->cosmos, e->id, id, NULL, err);
			if (rc == PV_ERR_NOT_FOUND)
				rc = PV_OK;
			if (rc != PV_OK)
				goto out;
			p->stats.deletes++;
			wrote(p);
		}
	}
	jset(head, "election_id", json_string(e->id));
	jset(head, "part_digests", json_incref(digests));
	size = json_dumpb(head, NULL, 0, JSON_COMPACT) + SYSTEM_RESERVE;
	if (size > p->max_bytes) {
		p->for_good = true;
		p->refused_status = 0;
		rc = pv_error_set(err, PV_ERR_TOO_LARGE,
				  "election %s: its head is %zu bytes (competitions and part "
				  "digests), over the budget of %zu ([projector] "
				  "max_document_bytes)",
				  e->id, size, p->max_bytes);
		goto out;
	}
	if (e->etag)
		rc = head_replace(p, e, head, &etag, err);
	else
		rc = pv_cosmos_create(p->cosmos, e->id, head, NULL, &etag, err);
	refused(p, rc);
	if (rc != PV_OK)
		goto out;
	p->stats.elections++;
	e->unread = false;
	free(e->etag);
	e->etag = etag;
	json_decref(e->digests);
	e->digests = json_incref(digests);
	memcpy(e->parts, n, sizeof e->parts);
	wrote(p);
out:
	json_decref(digests);
	json_decref(docs);
	return rc;
}

/* Writes e, which holds `eid`'s state (cached), after a load or a fold.
 * A conflict (the head changed under us) reads the documents again and
 * brings them to e's version from the stream.  On failure e is dropped. */
static enum pv_err write_entry(struct pv_projection *p, struct entry *e, struct pv_error *err)
{
	char eid[PV_ULID_LEN + 1];
	int64_t version = pv_election_version(e->state);
	struct pv_es_event since = e->since;
	bool was_pending = e->pending;

	p->unwritten = since;
	snprintf(eid, sizeof eid, "%s", e->id);
	for (int attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
		enum pv_err rc;

		if (attempt > 0) {
			/* Documents at or past `version` (another writer's) are
			 * as good as ours; short of it, the stream fills in. */
			rc = load(p, eid, version + 1, version, true, &e, err);
			if (rc != PV_OK)
				return pv_error_prefix(err, "election %s", eid);
			cache_insert(p, e);
			if (pv_election_version(e->state) >= version && !e->dirty)
				return PV_OK;
			if (was_pending)
				pend(p, e, &since);
		}
		rc = write_docs(p, e, err);
		if (rc == PV_OK) {
			written(p, e);
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

/* Folds one election's events (in stream order) and writes it, or with
 * `defer` leaves it pending for pv_projection_flush. */
static enum pv_err project(struct pv_projection *p, const char *eid,
			   const struct pv_es_event *const *evs, size_t n, bool defer,
			   struct pv_error *err)
{
	struct entry *e = cache_find(p, eid);
	int64_t before;
	enum pv_err rc;

	if (!e) {
		rc = load(p, eid, evs[0]->number, evs[n - 1]->number, false, &e, err);
		if (rc != PV_OK)
			return rc;
		cache_insert(p, e);
	}
	before = pv_election_version(e->state);
	rc = PV_OK;
	for (size_t i = 0; i < n && rc == PV_OK; i++)
		rc = fold(p, &e->state, evs[i], err);
	if (rc != PV_OK) {
		cache_drop(p, e);
		return pv_error_prefix(err, "election %s", eid);
	}
	if (pv_election_version(e->state) == before && !e->dirty && !e->pending)
		return PV_OK;
	/* Without a cache nothing can wait. */
	if (defer && p->cap > 0) {
		pend(p, e, evs[0]);
		return PV_OK;
	}
	if (!e->pending)
		e->since = (struct pv_es_event){.position = evs[0]->position,
						.number = evs[0]->number};
	return write_entry(p, e, err);
}

/* ---- parking ---- */

static bool parked_find(const struct pv_projection *p, const char *eid)
{
	for (size_t i = 0; i < p->nparked; i++)
		if (strcmp(p->parked[i], eid) == 0)
			return true;
	return false;
}

static void parked_add(struct pv_projection *p, const char *eid)
{
	if (parked_find(p, eid))
		return;
	if (p->nparked == p->parked_cap) {
		p->parked_cap = p->parked_cap ? 2 * p->parked_cap : 8;
		p->parked = pv_xreallocarray(p->parked, p->parked_cap, sizeof *p->parked);
	}
	snprintf(p->parked[p->nparked++], PV_ULID_LEN + 1, "%s", eid);
}

void pv_projection_set_park(struct pv_projection *p, pv_projection_park_fn fn, void *ctx)
{
	p->park = fn;
	p->park_ctx = ctx;
}

void pv_projection_set_parked(struct pv_projection *p, const char *const *ids, size_t n)
{
	p->nparked = 0;
	for (size_t i = 0; i < n; i++)
		if (pv_ulid_valid(ids[i]))
			parked_add(p, ids[i]);
}

size_t pv_projection_parked_count(const struct pv_projection *p)
{
	return p->nparked;
}

/* Hands a failure that is the election's own to the park callback; on
 * success the batch goes on without the election. */
static enum pv_err park(struct pv_projection *p, const char *eid, const struct pv_es_event *at,
			struct pv_error *err)
{
	struct pv_projection_parking what = {
		.election_id = eid,
		.position = at->position,
		.event_number = at->number,
		.status = p->refused_status,
		.reason = err->msg,
	};
	struct pv_error why;
	enum pv_err rc = p->park(p->park_ctx, &what, &why);

	if (rc != PV_OK) {
		*err = why;
		return rc;
	}
	parked_add(p, eid);
	p->stats.parked++;
	return PV_OK;
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

/* Where a failure that is the election's own may park it. */
static enum pv_err park_failed(struct pv_projection *p, const char *eid, enum pv_err rc,
			       struct pv_error *err)
{
	if (rc != PV_OK && p->for_good && p->park)
		rc = park(p, eid, p->culprit ? p->culprit : &p->unwritten, err);
	return rc;
}

static enum pv_err apply(struct pv_projection *p, const struct pv_es_event *events, size_t count,
			 bool defer, const volatile sig_atomic_t *stop, bool *complete,
			 struct pv_error *err)
{
	const struct pv_es_event **v;
	size_t n = 0, i = 0;
	enum pv_err rc = PV_OK;
	const char *eid;

	*complete = false;
	if (count == 0) {
		*complete = true;
		return PV_OK;
	}
	v = pv_xreallocarray(NULL, count, sizeof *v);
	for (size_t k = 0; k < count; k++) {
		if (!pv_election_of_stream(events[k].stream)) {
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
		eid = pv_election_of_stream(v[i]->stream);
		if (parked_find(p, eid)) {
			p->stats.parked_skipped += j - i;
			i = j;
			continue;
		}
		p->for_good = false;
		p->culprit = NULL;
		rc = park_failed(p, eid, project(p, eid, v + i, j - i, defer, err), err);
		if (rc != PV_OK)
			goto out;
		i = j;
	}
	*complete = true;
out:
	free(v);
	return rc;
}

enum pv_err pv_projection_apply(struct pv_projection *p, const struct pv_es_event *events,
				size_t count, const volatile sig_atomic_t *stop, bool *complete,
				struct pv_error *err)
{
	return apply(p, events, count, false, stop, complete, err);
}

enum pv_err pv_projection_fold(struct pv_projection *p, const struct pv_es_event *events,
			       size_t count, const volatile sig_atomic_t *stop, bool *complete,
			       struct pv_error *err)
{
	return apply(p, events, count, true, stop, complete, err);
}

enum pv_err pv_projection_flush(struct pv_projection *p, const volatile sig_atomic_t *stop,
				bool *complete, struct pv_error *err)
{
	*complete = false;
	while (p->npending > 0) {
		struct pv_lru_node *node = pv_lru_oldest(p->cache);
		struct entry *e;
		char eid[PV_ULID_LEN + 1];
		enum pv_err rc;

		if (stop && *stop)
			return PV_OK;
		/* Pending entries are pinned, so never evicted: one is there. */
		while (node && !PV_LRU_ENTRY(node, struct entry, node)->pending)
			node = pv_lru_newer(node);
		e = PV_LRU_ENTRY(node, struct entry, node);
		snprintf(eid, sizeof eid, "%s", e->id);
		p->for_good = false;
		p->culprit = NULL;
		rc = park_failed(p, eid, write_entry(p, e, err), err);
		if (rc != PV_OK)
			return rc;
	}
	*complete = true;
	return PV_OK;
}

size_t pv_projection_pending(const struct pv_projection *p)
{
	return p->npending;
}

bool pv_projection_pending_full(const struct pv_projection *p)
{
	return p->npending >= PENDING_PER_CACHED * p->cap;
}

/* Rebuilds an election; read_head: read its head (and ETag) first, else
 * take it that there is none. */
static enum pv_err rebuild(struct pv_projection *p, const char *election_id, bool read_head,
			   struct pv_error *err)
{
	struct entry *e = cache_find(p, election_id);
	json_t *head = NULL;
	enum pv_err rc = PV_ERR_NOT_FOUND;

	if (!pv_ulid_valid(election_id))
		return pv_error_set(err, PV_ERR_INVALID, "rebuild: %s is not an election id",
				    election_id);
	if (e)
		cache_drop(p, e);
	e = pv_xcalloc(1, sizeof *e);
	snprintf(e->id, sizeof e->id, "%s", election_id);
	if (read_head)
		rc = pv_projection_read_head_etag(p->cosmos, election_id, &head, &e->etag, err);
	if (rc == PV_OK && !pv_election_doc_counts(head, e->parts)) {
		rc = drop_old_layout(p, election_id, err);
		free(e->etag);
		e->etag = NULL;
	}
	json_decref(head);
	if (rc != PV_OK && rc != PV_ERR_NOT_FOUND) {
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

enum pv_err pv_projection_rebuild(struct pv_projection *p, const char *election_id,
				  struct pv_error *err)
{
	return rebuild(p, election_id, true, err);
}

enum pv_err pv_projection_rebuild_new(struct pv_projection *p, const char *election_id,
				      struct pv_error *err)
{
	return rebuild(p, election_id, false, err);
}

/* ---- views for readers ---- */

/* JSON stores may keep a mean of 5.0 as 5 (the stand-in's JavaScript
 * does); the results give means as reals, as the domain computes them. */
static void reals_back(json_t *results)
{
	json_t *comps = json_object_get(results, "competitions");
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
	pv_cosmos_strip_system(*head);
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

/* The public view of a FULL document (with or without its lists). */
static json_t *public_view(const json_t *head)
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

/* The lists each answer needs. */
static const unsigned lists_of[] = {
	[PV_ANSWER_PUBLIC] = 1u << PV_DOC_CANDIDATES,
	[PV_ANSWER_OWNER] = 1u << PV_DOC_CANDIDATES | 1u << PV_DOC_VOTERS,
	[PV_ANSWER_FULL] = 1u << PV_DOC_CANDIDATES | 1u << PV_DOC_VOTERS | 1u << PV_DOC_BALLOTS,
	[PV_ANSWER_RESULTS] = 1u << PV_DOC_RESULTS,
};

/* Candidates without their tallies, in place (the owner's view). */
static void drop_tallies(json_t *full)
{
	json_t *c, *k;
	size_t i, j;

	json_array_foreach(json_object_get(full, "competitions"), i, c)
	{
		json_array_foreach(json_object_get(c, "candidates"), j, k)
		{
			for (size_t t = 0; t < COUNT(tally_keys); t++)
				json_object_del(k, tally_keys[t]);
		}
	}
}

enum pv_err pv_projection_answer_of(struct pv_cosmos *c, const json_t *head,
				    enum pv_projection_answer what, json_t **out,
				    struct pv_error *err)
{
	json_t *parts, *full = NULL, *results = NULL;
	enum pv_err rc = read_parts(c, head, lists_of[what], &parts, err);

	*out = NULL;
	if (rc != PV_OK)
		return rc;
	rc = join(head, parts, lists_of[what], &full, &results, err);
	json_decref(parts);
	if (rc != PV_OK)
		return pv_error_set(err, PV_ERR_CONFLICT, "%s", err->msg);
	switch (what) {
	case PV_ANSWER_PUBLIC:
		*out = public_view(full);
		json_decref(full);
		break;
	case PV_ANSWER_OWNER: drop_tallies(full); /* fall through */
	case PV_ANSWER_FULL: *out = full; break;
	case PV_ANSWER_RESULTS:
		reals_back(results);
		*out = results;
		json_decref(full);
		break;
	}
	return PV_OK;
}

enum pv_err pv_projection_answer(struct pv_cosmos *c, const char *election_id, const json_t *head,
				 enum pv_projection_answer what, json_t **out, int64_t *version,
				 struct pv_error *err)
{
	enum pv_err rc = PV_OK;

	*out = NULL;
	for (int attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
		json_t *fresh = NULL;

		if (attempt > 0)
			nap_ms(20 * attempt);
		if (!head || attempt > 0) {
			rc = pv_projection_read_head(c, election_id, &fresh, err);
			if (rc != PV_OK)
				return rc;
		}
		if (version)
			*version = pv_projection_head_version(fresh ? fresh : head);
		rc = pv_projection_answer_of(c, fresh ? fresh : head, what, out, err);
		json_decref(fresh);
		if (rc != PV_ERR_CONFLICT)
			return rc; /* else the projector is between part and head writes */
	}
	{
		struct pv_error last = *err;

		return pv_error_set(
			err, PV_ERR_UNAVAILABLE,
			"election %s: its documents kept changing while being read (%s)",
			election_id, last.msg);
	}
}

enum pv_err pv_projection_view(struct pv_cosmos *c, const char *election_id,
			       enum pv_election_view view, json_t **out, int64_t *version,
			       struct pv_error *err)
{
	static const enum pv_projection_answer of_view[] = {
		[PV_VIEW_FULL] = PV_ANSWER_FULL,
		[PV_VIEW_OWNER] = PV_ANSWER_OWNER,
		[PV_VIEW_PUBLIC] = PV_ANSWER_PUBLIC,
	};

	return pv_projection_answer(c, election_id, NULL, of_view[view], out, version, err);
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
	json_array_foreach(docs, i, d) pv_cosmos_strip_system(d);
	*elections = docs;
	return PV_OK;
}
