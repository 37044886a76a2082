/* The read model: elections as Cosmos DB documents, written by folding the
 * event store's events with the domain fold, and read back by the API.
 *
 * One module owns the document layout, so the live projector
 * (workers/projector.c), a rebuild by replay and the readers agree on it.
 *
 * Documents (container partitioned on /election_id, all in the election's
 * partition):
 *   head    id = <election id>: the FULL document without voters and
 *           ballots (pv_election_doc_split's head, "parts": n), plus
 *           "election_id" (the partition key), "part_digests" (SHA-256 hex
 *           of each part, see below) and "results" (pv_election_results),
 *           so that views and results are one point read.
 *   part k  id = <election id>-part-<k>: voters and ballots, at most
 *           per_part of each (pv_election_doc_split).
 *
 * Writing one election (after folding a batch of its events): the parts
 * whose digest changed are upserted first, stale parts deleted, then the
 * head is replaced with If-Match on the ETag it had when it was read (or
 * created when new).  The head is the commit point: it names the digests
 * of the parts it goes with, so a reader or a restarted projector that
 * finds a part whose digest differs (a crash between the part and head
 * writes) knows the documents are mid-update.  The projector then rebuilds
 * the election from its stream; a reader retries.
 *
 * "version" in the head is the number of the last event applied; events at
 * or below it are skipped, so a replay changes nothing.  Digests are of
 * the content only, so documents do not depend on how events were batched:
 * a projection interrupted and resumed equals one made in one go.
 *
 * ElectionDeleted: every document of the partition is deleted (parts
 * first, head last).  An event that finds no head and is not the stream's
 * first (a replay after the deletion, or documents lost) makes the
 * projector rebuild the election from its stream, which ends deleted or
 * current.
 *
 * A struct pv_projection keeps an LRU cache of elections as last written
 * (state, head ETag, part digests); it is not thread-safe.  Any failure to
 * write an election drops it from the cache, since its state is then ahead
 * of the documents. */
#ifndef PV_PROJECTION_H
#define PV_PROJECTION_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cosmos.h"
#include "domain/election.h"
#include "error.h"
#include "eventstore.h"

/* The event-store category the elections live in. */
#define PV_PROJECTION_CATEGORY "Election"
/* Voters and ballots per part: a 20,000 ballot election stays far under
 * Cosmos DB's 2 MB per item. */
#define PV_PROJECTION_PER_PART 2000

struct pv_projection;

struct pv_projection_stats {
	unsigned long events;    /* events folded */
	unsigned long skipped;   /* at or below the document's version */
	unsigned long refused;   /* the fold refused them (logged) */
	unsigned long elections; /* elections written (head writes) */
	unsigned long parts;     /* part writes */
	unsigned long deletes;   /* documents deleted */
	unsigned long rebuilds;  /* elections rebuilt from their stream */
	unsigned long conflicts; /* head writes refused by If-Match */
};

/* Neither cosmos nor es is taken over.  per_part 0: the default;
 * cache_elections 0: no cache (every batch reads the documents). */
struct pv_projection *pv_projection_new(struct pv_cosmos *cosmos, struct pv_es *es, size_t per_part,
					size_t cache_elections);
void pv_projection_free(struct pv_projection *p);
/* Forgets every cached election (another writer may have written). */
void pv_projection_forget(struct pv_projection *p);
void pv_projection_get_stats(const struct pv_projection *p, struct pv_projection_stats *out);

/* Hook called after each document write (tests kill the process there). */
void pv_projection_set_write_hook(struct pv_projection *p, void (*hook)(void));

/* Folds events (category feed order, any mix of elections) and writes
 * each election's documents once.  Events not of an Election-<ULID>
 * stream are logged and ignored.  If *stop becomes non-zero, returns after
 * the current election's write with *complete false.  On PV_OK with
 * *complete true, every event is reflected in the documents and the
 * caller may checkpoint past the last one.  On failure (Cosmos DB or the
 * event store unavailable...) nothing may be checkpointed; calling again
 * with the same events is safe. */
enum pv_err pv_projection_apply(struct pv_projection *p, const struct pv_es_event *events,
				size_t count, const volatile sig_atomic_t *stop, bool *complete,
				struct pv_error *err);

/* Rebuilds one election's documents by replaying its whole stream
 * (deleting them if it ends deleted or does not exist). */
enum pv_err pv_projection_rebuild(struct pv_projection *p, const char *election_id,
				  struct pv_error *err);

/* ---- reading (the API, tests) ---- */

/* The head of an election with Cosmos DB's system properties removed.
 * PV_ERR_NOT_FOUND when there is none. */
enum pv_err pv_projection_read_head(struct pv_cosmos *c, const char *election_id, json_t **head,
				    struct pv_error *err);
/* The same with the head's ETag (malloc'd; may be NULL if none came). */
enum pv_err pv_projection_read_head_etag(struct pv_cosmos *c, const char *election_id,
					 json_t **head, char **etag, struct pv_error *err);
/* The view of an election (PV_VIEW_PUBLIC from the head alone; OWNER and
 * FULL join the parts, retrying while a write is half done), exactly as
 * pv_election_to_json() would give it; *version is the head's version. */
enum pv_err pv_projection_view(struct pv_cosmos *c, const char *election_id,
			       enum pv_election_view view, json_t **out, int64_t *version,
			       struct pv_error *err);
/* The same from a head already read (public view only needs the head). */
json_t *pv_projection_public_view(const json_t *head);
/* The owner of a head (borrowed; NULL if none). */
const char *pv_projection_head_owner(const json_t *head);
int64_t pv_projection_head_version(const json_t *head);
/* The results stored in a head (borrowed). */
const json_t *pv_projection_head_results(const json_t *head);

/* A page of election summaries (id, version, status, name, description,
 * dates, counts), across partitions.  continuation: NULL for the first
 * page, then *next verbatim; *next NULL on the last page. */
enum pv_err pv_projection_list(struct pv_cosmos *c, int limit, const char *continuation,
			       json_t **elections, char **next, struct pv_error *err);

#endif
