/* The read model: elections as Cosmos DB documents, written by folding the
 * event store's events with the domain fold, and read back by the API.
 *
 * One module owns the document layout, so the live projector
 * (workers/projector.c), a rebuild by replay and the readers agree on it.
 *
 * Documents (container partitioned on /election_id, all in the election's
 * partition), each at most max_bytes as Cosmos DB counts it (the compact
 * JSON text plus SYSTEM_RESERVE bytes for the system properties the
 * service adds), whatever the election's size (pv_election_doc_split):
 *   head    id = <election id>: the election without its growing lists:
 *           the FULL document without candidates, voters and ballots, the
 *           results without their ranked rows, "parts": {"<list>": n},
 *           plus "election_id" (the partition key) and "part_digests":
 *           {"<list>": [SHA-256 hex of each part]}.
 *   part k  id = <election id>-<list>-<k>, for the lists "candidates",
 *           "results", "voters", "ballots": the list's items packed in
 *           order until the next would pass the budget.
 * The same state always gives the same documents (ids and contents), so a
 * rebuild equals the live projection, and a list that shrinks leaves parts
 * past its new count, which the write deletes.
 *
 * Reads: point reads by id, head first.  The head alone answers the list
 * of elections; a view or the results read the head and the parts of the
 * lists they need (see PV_ANSWER_*): 1 + that many reads.
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
 * a projection interrupted and resumed equals one made in one go.  A batch
 * that starts past the head's version + 1 (events skipped while the
 * election was parked) rebuilds the election from its stream.
 *
 * ElectionDeleted: every document of the partition is deleted (parts
 * first, head last).  An event that finds no head and is not the stream's
 * first (a replay after the deletion, or documents lost) makes the
 * projector rebuild the election from its stream, which ends deleted or
 * current.  A head of the earlier layout (parts by count) is replaced the
 * same way.
 *
 * Parking: a failure that is the election's own (Cosmos DB refused a write
 * for good with 400 or 413, a document over the budget, an event the fold
 * refuses) does not fail the batch when a park callback is set: the
 * callback records it, the election is skipped from then on (its events
 * are counted in parked_skipped) and the others go on.  Everything else
 * (429, 408, 449, 5xx, connection errors, the event store) fails the batch
 * as before, to be retried.
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
#include "domain/stream.h"
#include "error.h"
#include "eventstore.h"

/* The default budget of a document, as Cosmos DB counts it: half of the
 * service's 2 MB item limit ([projector] max_document_bytes). */
#define PV_PROJECTION_MAX_BYTES 1048576

struct pv_projection;

struct pv_projection_stats {
	unsigned long events;         /* events folded */
	unsigned long skipped;        /* at or below the document's version */
	unsigned long refused;        /* the fold refused them (logged) */
	unsigned long elections;      /* elections written (head writes) */
	unsigned long parts;          /* part writes */
	unsigned long deletes;        /* documents deleted */
	unsigned long rebuilds;       /* elections rebuilt from their stream */
	unsigned long conflicts;      /* head writes refused by If-Match */
	unsigned long parked;         /* elections parked */
	unsigned long parked_skipped; /* events of parked elections skipped */
};

/* Neither cosmos nor es is taken over.  max_bytes 0: the default;
 * cache_elections 0: no cache (every batch reads the documents). */
struct pv_projection *pv_projection_new(struct pv_cosmos *cosmos, struct pv_es *es,
					size_t max_bytes, size_t cache_elections);
void pv_projection_free(struct pv_projection *p);
/* Forgets every cached election (another writer may have written). */
void pv_projection_forget(struct pv_projection *p);
void pv_projection_get_stats(const struct pv_projection *p, struct pv_projection_stats *out);
/* Adds b's counts to a's (the lanes of projection_lanes.h). */
void pv_projection_stats_add(struct pv_projection_stats *a, const struct pv_projection_stats *b);

/* What made an election park: the event (feed position, number in its
 * stream) that could not be projected, Cosmos DB's status (0: no request
 * was refused) and the reason (untrusted text: escape it). */
struct pv_projection_parking {
	const char *election_id;
	int64_t position, event_number;
	long status;
	const char *reason;
};
/* Records a parking (PostgreSQL's projection_parked); a failure fails the
 * batch, which is retried. */
typedef enum pv_err (*pv_projection_park_fn)(void *ctx, const struct pv_projection_parking *what,
					     struct pv_error *err);
/* Without a callback nothing parks: such failures fail the batch. */
void pv_projection_set_park(struct pv_projection *p, pv_projection_park_fn fn, void *ctx);
/* The parked elections (replaces the set; ids copied). */
void pv_projection_set_parked(struct pv_projection *p, const char *const *ids, size_t n);
size_t pv_projection_parked_count(const struct pv_projection *p);

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

/* Catching up: pv_projection_fold folds like pv_projection_apply but
 * writes nothing; the elections it changes stay pending (held in the
 * cache past its size) until pv_projection_flush writes each once.  So a
 * backlog read page after page is written once per flush, while only one
 * page of events is held.  The caller may checkpoint past the last event
 * folded when the flush returns PV_OK with *complete true; a failure or a
 * stop leaves the rest pending (folding the same events again is safe).
 * A failure that is an election's own parks it, naming its first event
 * not written.  Without a cache (cache_elections 0) folding writes. */
enum pv_err pv_projection_fold(struct pv_projection *p, const struct pv_es_event *events,
			       size_t count, const volatile sig_atomic_t *stop, bool *complete,
			       struct pv_error *err);
enum pv_err pv_projection_flush(struct pv_projection *p, const volatile sig_atomic_t *stop,
				bool *complete, struct pv_error *err);
/* Elections pending; full: as many as the cache's size (time to flush). */
size_t pv_projection_pending(const struct pv_projection *p);
bool pv_projection_pending_full(const struct pv_projection *p);

/* Rebuilds one election's documents by replaying its whole stream
 * (deleting them if it ends deleted or does not exist). */
enum pv_err pv_projection_rebuild(struct pv_projection *p, const char *election_id,
				  struct pv_error *err);
/* The same into a container that holds no head of the election (a new
 * one that only the caller writes): the head is not read first, which
 * spares a request.  A head that is there after all (a build that was
 * interrupted) makes the head's create fail with PV_ERR_CONFLICT: call
 * pv_projection_rebuild() then. */
enum pv_err pv_projection_rebuild_new(struct pv_projection *p, const char *election_id,
				      struct pv_error *err);

/* ---- reading (the API, tests) ---- */

/* The head of an election with Cosmos DB's system properties removed.
 * PV_ERR_NOT_FOUND when there is none. */
enum pv_err pv_projection_read_head(struct pv_cosmos *c, const char *election_id, json_t **head,
				    struct pv_error *err);
/* The same with the head's ETag (malloc'd; may be NULL if none came). */
enum pv_err pv_projection_read_head_etag(struct pv_cosmos *c, const char *election_id,
					 json_t **head, char **etag, struct pv_error *err);
/* What a reader asks of an election, and the parts it reads beyond the
 * head: PUBLIC view (candidates), OWNER view (candidates, voters), FULL
 * view (candidates, voters, ballots), RESULTS (results). */
enum pv_projection_answer { PV_ANSWER_PUBLIC, PV_ANSWER_OWNER, PV_ANSWER_FULL, PV_ANSWER_RESULTS };
/* The answer from a head already read (borrowed) and its parts, exactly as
 * pv_election_to_json() or pv_election_results() would give it.
 * PV_ERR_CONFLICT: a write is half done (read the head again). */
enum pv_err pv_projection_answer_of(struct pv_cosmos *c, const json_t *head,
				    enum pv_projection_answer what, json_t **out,
				    struct pv_error *err);
/* The same, reading the head again while a write is half done; head: one
 * already read for the first try, or NULL.  *version: the head's. */
enum pv_err pv_projection_answer(struct pv_cosmos *c, const char *election_id, const json_t *head,
				 enum pv_projection_answer what, json_t **out, int64_t *version,
				 struct pv_error *err);
/* pv_projection_answer for a view. */
enum pv_err pv_projection_view(struct pv_cosmos *c, const char *election_id,
			       enum pv_election_view view, json_t **out, int64_t *version,
			       struct pv_error *err);
/* The owner of a head (borrowed; NULL if none). */
const char *pv_projection_head_owner(const json_t *head);
int64_t pv_projection_head_version(const json_t *head);

/* A page of election summaries (id, version, status, name, description,
 * dates, counts), across partitions.  continuation: NULL for the first
 * page, then *next verbatim; *next NULL on the last page. */
enum pv_err pv_projection_list(struct pv_cosmos *c, int limit, const char *continuation,
			       json_t **elections, char **next, struct pv_error *err);

#endif
