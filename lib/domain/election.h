/* The Election aggregate: the state that events fold into, the invariants
 * checked before a fold, the results and the JSON document.
 *
 * check() never changes the state; apply() folds an event that check()
 * accepted (or that the store already holds: the projector trusts the
 * stream, yet apply() never crashes on an event that does not fit and
 * reports it instead). */
#ifndef PV_DOMAIN_ELECTION_H
#define PV_DOMAIN_ELECTION_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "domain/event.h"
#include "error.h"

struct pv_election; /* opaque */

enum pv_verdict_kind {
	PV_VERDICT_ACCEPTED,
	PV_VERDICT_STATE,         /* a state rule: HTTP 409 */
	PV_VERDICT_VALUE,         /* a rule on values: HTTP 422 */
	PV_VERDICT_AUTHORIZATION, /* not allowed: HTTP 403 */
};

struct pv_verdict {
	enum pv_verdict_kind kind;
	const char *rule; /* static stable word, e.g. "already_voted", NULL if accepted */
	char reason[256]; /* human sentence */
};

/* A new empty election (no ElectionCreated yet) for stream Election-<id>. */
struct pv_election *pv_election_new(const char *election_id);
void pv_election_free(struct pv_election *e);
const char *pv_election_id(const struct pv_election *e);
/* Number of the last event folded (-1: none), as in the stream. */
int64_t pv_election_version(const struct pv_election *e);
bool pv_election_exists(const struct pv_election *e); /* created, not deleted */
bool pv_election_deleted(const struct pv_election *e);
const char *pv_election_owner(const struct pv_election *e);
/* "new" (no ElectionCreated yet), "draft", "open", "closed" or "deleted". */
const char *pv_election_status(const struct pv_election *e);

/* "accepted", "state", "value", "authorization". */
const char *pv_verdict_kind_name(enum pv_verdict_kind kind);

/* Checks every invariant of domain.md, authorization included (the user
 * and admin flag come from ev->meta).  Returns PV_VERDICT_ACCEPTED or the
 * first rule broken. */
enum pv_verdict_kind pv_election_check(const struct pv_election *e, const struct pv_event *ev,
				       struct pv_verdict *verdict);
/* Folds ev as event number `number` of the stream. */
enum pv_err pv_election_apply(struct pv_election *e, const struct pv_event *ev, int64_t number,
			      struct pv_error *err);

/* Views of the document. */
enum pv_election_view {
	PV_VIEW_FULL,   /* everything: the stored document, round-trips exactly */
	PV_VIEW_OWNER,  /* API for the owner/admin: no individual ballots */
	PV_VIEW_PUBLIC, /* API for others: no ballots, no voter names/emails */
};
/* Document (snake_case), arrays in insertion order:
 *   {"id", "version", "status", "name", "description", "owner"*,
 *    "created_at", "opened_at", "closed_at",
 *    "competitions": [{"id", "name", "description", "candidates": [
 *        {"id", "name", "description", "image_url", "image_caption",
 *         "ratings_count"+, "ratings_sum"+}]}],
 *    "voter_count", "ballot_count", "cast_count",
 *    "voters"*: [{"id", "name", "email"}],
 *    "ballots"+: [{"id", "voter_id", "cast", "ratings": {"<candidate_id>": 1..5}}]}
 * (* not in PV_VIEW_PUBLIC; + only in PV_VIEW_FULL).  Absent optional
 * values are null.  A new election (no ElectionCreated) has status "new"
 * and version -1. */
json_t *pv_election_to_json(const struct pv_election *e, enum pv_election_view view);
/* Inverse of PV_VIEW_FULL: from_json(to_json(e, FULL)) is equal to e. */
enum pv_err pv_election_from_json(const json_t *doc, struct pv_election **out,
				  struct pv_error *err);

/* Stores limit an item's size (Cosmos DB refuses items over 2 MB), so the
 * FULL document and the results of an election are stored as documents
 * that each fit a byte budget, whatever the election's size:
 *   head    the FULL document without "voters", "ballots" and the
 *           competitions' "candidates", plus "results" (pv_election_results
 *           without the competitions' "candidates") and "parts": {"<list>":
 *           n, ...} for each list below;
 *   part k  of each list, k = 1..n: {"id": "<election id>-<list>-<k>",
 *           "election_id", "list", "part": k, "items": [...]}.
 * Lists, in order: "candidates" (items [competition index, candidate]),
 * "results" ([competition index, ranked row]), "voters", "ballots".  Each
 * list is packed in its order into as few parts as fit max_bytes (the
 * compact JSON text of a part), so the same election always gives the same
 * documents.  pv_election_doc_split() returns [head, parts...];
 * PV_ERR_TOO_LARGE when one item alone does not fit (the head's own size is
 * the caller's to check, with what it adds).
 * pv_election_doc_join() takes the head and the parts of the lists in
 * `lists` (a mask of 1 << enum pv_doc_list), in list order, checks them
 * (count, order, election) and gives the FULL document back, key order
 * included, with only those lists: without PV_DOC_CANDIDATES the
 * competitions have no "candidates", without voters or ballots those keys
 * are absent; *results (may be NULL) is set when PV_DOC_RESULTS is asked.
 * Both work on JSON; inputs are borrowed. */
enum pv_doc_list {
	PV_DOC_CANDIDATES,
	PV_DOC_RESULTS,
	PV_DOC_VOTERS,
	PV_DOC_BALLOTS,
	PV_DOC__COUNT
};
#define PV_DOC_ALL ((1u << PV_DOC__COUNT) - 1)
#define PV_DOC_ID_MAX 64
extern const char *const pv_election_doc_lists[PV_DOC__COUNT];
void pv_election_doc_part_id(const char *eid, enum pv_doc_list list, size_t k,
			     char out[PV_DOC_ID_MAX]);
enum pv_err pv_election_doc_split(const json_t *full, const json_t *results, size_t max_bytes,
				  json_t **docs, struct pv_error *err);
/* The part counts a head names; false when it names none (not this layout). */
bool pv_election_doc_counts(const json_t *head, size_t counts[PV_DOC__COUNT]);
enum pv_err pv_election_doc_join(const json_t *head, const json_t *parts, unsigned lists,
				 json_t **full, json_t **results, struct pv_error *err);

/* Results per competition: for each candidate the count of cast ballots
 * that rated it, the sum and the mean; candidates ranked by mean, ties by
 * count (then by id for a stable order).
 *   {"election_id", "version", "status", "cast_count",
 *    "competitions": [{"id", "name", "candidates": [
 *        {"rank", "id", "name", "count", "sum", "mean"}]}]}
 * mean is null for a candidate no cast ballot rated; such candidates rank
 * after every rated one.  rank is competition ranking ("1224"): candidates
 * with the same mean and count share a rank (listed by id). */
json_t *pv_election_results(const struct pv_election *e);

#endif
