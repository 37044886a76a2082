/* The Election aggregate.
 *
 * State: the election's own fields, then its entities kept twice: in
 * arrays in insertion order (so documents are deterministic) and in hash
 * maps (one for every entity id of the election, one for voters' emails in
 * lower case) so that each event is checked and folded in O(1), whatever
 * the size of the election.
 *
 * Candidates are only added or removed while the election is a draft and
 * ballots only exist once it is open, so when the first ballot appears the
 * candidate set is frozen: each candidate has a slot (its index in the
 * election-wide candidate array) and a ballot's ratings are a byte array
 * indexed by slot (0 = not rated).  Casting a ballot adds its ratings to
 * the candidates' tallies (count, sum); a cast ballot never changes again,
 * so results are read from the tallies without visiting any ballot.
 *
 * pv_election_check() runs the gates of the event's table row (existence,
 * authorization, lifecycle) and then the row's own check; it never changes
 * the state.  pv_election_apply() runs the same rules without the
 * authorization gate, so a fold never sees an event that does not fit,
 * and then the row's fold. */

#include "domain/election.h"
#include "domain/table.h"
#include "xalloc.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A string-keyed open-addressing hash map; keys are owned by the values. */

struct map_slot {
	const char *key;
	void *val;
};

struct map {
	struct map_slot *slots;
	size_t cap;  /* power of two, or 0 */
	size_t used; /* live keys plus tombstones */
	size_t len;  /* live keys */
};

static const char map_tombstone[] = "";

static size_t map_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)(h ^ (h >> 29));
}

static struct map_slot *map_find(const struct map *m, const char *key)
{
	if (!m->cap)
		return NULL;
	for (size_t i = map_hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		struct map_slot *s = &m->slots[i];

		if (!s->key)
			return NULL;
		if (s->key != map_tombstone && strcmp(s->key, key) == 0)
			return s;
	}
}

static void *map_get(const struct map *m, const char *key)
{
	struct map_slot *s = map_find(m, key);

	return s ? s->val : NULL;
}

static void map_put(struct map *m, const char *key, void *val);

static void map_grow(struct map *m)
{
	struct map_slot *old = m->slots;
	size_t oldcap = m->cap;

	m->cap = oldcap ? oldcap * 2 : 64;
	/* Rehashing into the same size drops the tombstones. */
	if (m->len * 2 < oldcap)
		m->cap = oldcap;
	m->slots = pv_xcalloc(m->cap, sizeof *m->slots);
	m->used = m->len = 0;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].key && old[i].key != map_tombstone)
			map_put(m, old[i].key, old[i].val);
	free(old);
}

/* The caller made sure key is absent. */
static void map_put(struct map *m, const char *key, void *val)
{
	size_t i;

	if ((m->used + 1) * 4 > m->cap * 3)
		map_grow(m);
	for (i = map_hash(key) & (m->cap - 1); m->slots[i].key; i = (i + 1) & (m->cap - 1))
		if (m->slots[i].key == map_tombstone)
			break;
	if (!m->slots[i].key)
		m->used++;
	m->slots[i].key = key;
	m->slots[i].val = val;
	m->len++;
}

static void map_del(struct map *m, const char *key)
{
	struct map_slot *s = map_find(m, key);

	if (s) {
		s->key = map_tombstone;
		s->val = NULL;
		m->len--;
	}
}

/* A growable array of pointers. */

struct vec {
	void **v;
	size_t len, cap;
};

static void vec_push(struct vec *a, void *p)
{
	if (a->len == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 8;
		a->v = pv_xreallocarray(a->v, a->cap, sizeof *a->v);
	}
	a->v[a->len++] = p;
}

static void vec_remove(struct vec *a, const void *p)
{
	for (size_t i = 0; i < a->len; i++) {
		if (a->v[i] == p) {
			memmove(&a->v[i], &a->v[i + 1], (a->len - i - 1) * sizeof *a->v);
			a->len--;
			return;
		}
	}
}

/* Entities.  Every entity starts with its kind and id, so one map holds
 * them all and "ids are unique within the election" is one lookup. */

enum ent_kind { ENT_COMPETITION, ENT_CANDIDATE, ENT_VOTER, ENT_BALLOT };

struct entity {
	enum ent_kind kind;
	char id[PV_ULID_LEN + 1];
};

struct competition {
	struct entity ent;
	char *name, *description;
	struct vec candidates;
};

struct candidate {
	struct entity ent;
	struct competition *competition;
	size_t slot; /* index in pv_election.candidates */
	char *name, *description, *image_url, *image_caption;
	int64_t count, sum; /* over cast ballots */
};

struct voter {
	struct entity ent;
	char *name, *email;
	char *email_key; /* lower case, the key of pv_election.emails */
	struct ballot *ballot;
};

struct ballot {
	struct entity ent;
	struct voter *voter;
	bool cast;
	unsigned char *ratings; /* by candidate slot, 0 = not rated */
	size_t nslots, nrated;
};

struct pv_election {
	char id[PV_ULID_LEN + 1];
	int64_t version;
	bool created, deleted;
	char *name, *description, *owner, *created_at, *opened_at, *closed_at;
	struct vec competitions, candidates, voters, ballots;
	struct map ids, emails;
	size_t ncast;
};

static void *entity_get(const struct pv_election *e, const char *id, enum ent_kind kind)
{
	struct entity *ent = id ? map_get(&e->ids, id) : NULL;

	return ent && ent->kind == kind ? ent : NULL;
}

static void set_str(char **dst, const char *s)
{
	free(*dst);
	*dst = s ? pv_xstrdup(s) : NULL;
}

static void candidate_free(struct candidate *k)
{
	free(k->name);
	free(k->description);
	free(k->image_url);
	free(k->image_caption);
	free(k);
}

static void competition_free(struct competition *c)
{
	for (size_t i = 0; i < c->candidates.len; i++)
		candidate_free(c->candidates.v[i]);
	free(c->candidates.v);
	free(c->name);
	free(c->description);
	free(c);
}

static void voter_free(struct voter *v)
{
	free(v->name);
	free(v->email);
	free(v->email_key);
	free(v);
}

static void ballot_free(struct ballot *b)
{
	free(b->ratings);
	free(b);
}

struct pv_election *pv_election_new(const char *election_id)
{
	struct pv_election *e = pv_xcalloc(1, sizeof *e);

	snprintf(e->id, sizeof e->id, "%s", election_id ? election_id : "");
	e->version = -1;
	return e;
}

void pv_election_free(struct pv_election *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->competitions.len; i++)
		competition_free(e->competitions.v[i]);
	for (size_t i = 0; i < e->voters.len; i++)
		voter_free(e->voters.v[i]);
	for (size_t i = 0; i < e->ballots.len; i++)
		ballot_free(e->ballots.v[i]);
	free(e->competitions.v);
	free(e->candidates.v);
	free(e->voters.v);
	free(e->ballots.v);
	free(e->ids.slots);
	free(e->emails.slots);
	free(e->name);
	free(e->description);
	free(e->owner);
	free(e->created_at);
	free(e->opened_at);
	free(e->closed_at);
	free(e);
}

const char *pv_election_id(const struct pv_election *e)
{
	return e->id;
}

int64_t pv_election_version(const struct pv_election *e)
{
	return e->version;
}

bool pv_election_exists(const struct pv_election *e)
{
	return e->created && !e->deleted;
}

bool pv_election_deleted(const struct pv_election *e)
{
	return e->deleted;
}

const char *pv_election_owner(const struct pv_election *e)
{
	return e->owner;
}

const char *pv_election_status(const struct pv_election *e)
{
	if (!e->created)
		return "new";
	if (e->deleted)
		return "deleted";
	if (e->closed_at)
		return "closed";
	if (e->opened_at)
		return "open";
	return "draft";
}

static char *email_key(const char *email)
{
	char *k = pv_xstrdup(email);

	for (char *p = k; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return k;
}

/* Verdicts. */

static const char *const verdict_kind_words[] = {
	[PV_VERDICT_ACCEPTED] = "accepted",
	[PV_VERDICT_STATE] = "state",
	[PV_VERDICT_VALUE] = "value",
	[PV_VERDICT_AUTHORIZATION] = "authorization",
};

const char *pv_verdict_kind_name(enum pv_verdict_kind kind)
{
	if ((unsigned)kind >= sizeof verdict_kind_words / sizeof verdict_kind_words[0])
		return "unknown";
	return verdict_kind_words[kind];
}

static enum pv_verdict_kind refuse(struct pv_verdict *v, enum pv_verdict_kind kind,
				   const char *rule, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static enum pv_verdict_kind refuse(struct pv_verdict *v, enum pv_verdict_kind kind,
				   const char *rule, const char *fmt, ...)
{
	va_list ap;

	v->kind = kind;
	v->rule = rule;
	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof v->reason, fmt, ap);
	va_end(ap);
	return kind;
}

/* Borrowed string field of the event's data, NULL when absent or null. */
static const char *ev_str(const struct pv_event *ev, const char *key)
{
	return json_string_value(json_object_get(ev->data, key));
}

/* Looks up the voter a ballot event acts for: by voter_id, or through
 * ballot_id.  NULL if there is none (the row's check reports it). */
static const struct voter *ev_voter(const struct pv_election *e, const struct pv_event *ev)
{
	const struct ballot *b;

	if (json_object_get(ev->data, "voter_id"))
		return entity_get(e, ev_str(ev, "voter_id"), ENT_VOTER);
	b = entity_get(e, ev_str(ev, "ballot_id"), ENT_BALLOT);
	return b ? b->voter : NULL;
}

static enum pv_verdict_kind gates(const struct pv_election *e, const struct pv_event_def *def,
				  const struct pv_event *ev, bool authz, struct pv_verdict *v)
{
	const char *eid = pv_event_election_id(ev);

	if (!eid || strcmp(eid, e->id) != 0)
		return refuse(v, PV_VERDICT_VALUE, "election_mismatch",
			      "the event is about election %.30s, not %s", eid ? eid : "(none)",
			      e->id);
	if (e->deleted)
		return refuse(v, PV_VERDICT_STATE, "election_deleted", "election %s was deleted",
			      e->id);
	if (def->gates & PV_GATE_CREATE) {
		if (e->created)
			return refuse(v, PV_VERDICT_STATE, "election_exists",
				      "election %s already exists", e->id);
		return PV_VERDICT_ACCEPTED;
	}
	if (!e->created)
		return refuse(v, PV_VERDICT_STATE, "election_not_found",
			      "election %s does not exist", e->id);
	if (authz && (def->gates & PV_GATE_OWNER) && !ev->meta.admin &&
	    !pv_ident_equal(ev->meta.user, e->owner))
		return refuse(v, PV_VERDICT_AUTHORIZATION, "not_owner",
			      "only the election's owner or an administrator may do this");
	if ((def->gates & (PV_GATE_NOT_CLOSED | PV_GATE_DRAFT | PV_GATE_OPEN)) && e->closed_at)
		return refuse(v, PV_VERDICT_STATE, "election_closed", "the election is closed");
	if ((def->gates & PV_GATE_DRAFT) && e->opened_at)
		return refuse(v, PV_VERDICT_STATE, "not_draft",
			      "competitions and candidates change only before the election opens");
	if ((def->gates & PV_GATE_OPEN) && !e->opened_at)
		return refuse(v, PV_VERDICT_STATE, "election_not_open", "the election is not open");
	if (authz && (def->gates & PV_GATE_VOTER) && !ev->meta.admin) {
		/* Ballots: only the voter (by email) or an administrator. */
		const struct voter *vo = ev_voter(e, ev);

		if (vo && !pv_ident_equal(ev->meta.user, vo->email))
			return refuse(v, PV_VERDICT_AUTHORIZATION, "not_voter",
				      "only the voter or an administrator may do this");
	}
	return PV_VERDICT_ACCEPTED;
}

/* Row checks: the gates have passed. */

static enum pv_verdict_kind check_none(const struct pv_election *e, const struct pv_event *ev,
				       struct pv_verdict *v)
{
	return PV_VERDICT_ACCEPTED;
}

static enum pv_verdict_kind check_opened(const struct pv_election *e, const struct pv_event *ev,
					 struct pv_verdict *v)
{
	if (e->opened_at)
		return refuse(v, PV_VERDICT_STATE, "already_opened",
			      "the election is already open");
	return PV_VERDICT_ACCEPTED;
}

static enum pv_verdict_kind check_closed(const struct pv_election *e, const struct pv_event *ev,
					 struct pv_verdict *v)
{
	int64_t os, cs;
	long ons, cns;

	if (!e->opened_at)
		return refuse(v, PV_VERDICT_STATE, "election_not_open",
			      "an election closes only after it opened");
	if (pv_rfc3339_parse(e->opened_at, &os, &ons) &&
	    pv_rfc3339_parse(ev_str(ev, "close_date"), &cs, &cns) &&
	    (cs < os || (cs == os && cns < ons)))
		return refuse(v, PV_VERDICT_VALUE, "close_before_open",
			      "close_date is before the open date %s", e->opened_at);
	return PV_VERDICT_ACCEPTED;
}

static enum pv_verdict_kind check_new_id(const struct pv_election *e, const char *id,
					 struct pv_verdict *v)
{
	if (map_get(&e->ids, id) || strcmp(id, e->id) == 0)
		return refuse(v, PV_VERDICT_STATE, "duplicate_id",
			      "id %s is already used in this election", id);
	return PV_VERDICT_ACCEPTED;
}

static enum pv_verdict_kind need_competition(const struct pv_election *e, const struct pv_event *ev,
					     struct pv_verdict *v)
{
	const char *id = ev_str(ev, "competition_id");

	if (!entity_get(e, id, ENT_COMPETITION))
		return refuse(v, PV_VERDICT_STATE, "competition_not_found",
			      "competition %s does not exist", id);
	return PV_VERDICT_ACCEPTED;
}

static enum pv_verdict_kind need_candidate(const struct pv_election *e, const struct pv_event *ev,
					   struct pv_verdict *v)
{
	const char *id = ev_str(ev, "candidate_id");
	const struct candidate *k;

	if (need_competition(e, ev, v) != PV_VERDICT_ACCEPTED)
		return v->kind;
	k = entity_get(e, id, ENT_CANDIDATE);
	if (!k || strcmp(k->competition->ent.id, ev_str(ev, "competition_id")) != 0)
		return refuse(v, PV_VERDICT_STATE, "candidate_not_found",
			      "candidate %s does not exist in competition %s", id,
			      ev_str(ev, "competition_id"));
	return PV_VERDICT_ACCEPTED;
}

static enum pv_verdict_kind check_competition_added(const struct pv_election *e,
						    const struct pv_event *ev, struct pv_verdict *v)
{
	return check_new_id(e, ev_str(ev, "competition_id"), v);
}

static enum pv_verdict_kind check_candidate_added(const struct pv_election *e,
						  const struct pv_event *ev, struct pv_verdict *v)
{
	if (need_competition(e, ev, v) != PV_VERDICT_ACCEPTED)
		return v->kind;
	return check_new_id(e, ev_str(ev, "candidate_id"), v);
}

static enum pv_verdict_kind check_voter_registered(const struct pv_election *e,
						   const struct pv_event *ev, struct pv_verdict *v)
{
	char *key;
	bool taken;

	if (check_new_id(e, ev_str(ev, "voter_id"), v) != PV_VERDICT_ACCEPTED)
		return v->kind;
	key = email_key(ev_str(ev, "email"));
	taken = map_get(&e->emails, key) != NULL;
	free(key);
	if (taken)
		return refuse(v, PV_VERDICT_STATE, "email_already_registered",
			      "a voter with this email is already registered");
	return PV_VERDICT_ACCEPTED;
}

static enum pv_verdict_kind check_ballot_created(const struct pv_election *e,
						 const struct pv_event *ev, struct pv_verdict *v)
{
	const struct voter *vo = entity_get(e, ev_str(ev, "voter_id"), ENT_VOTER);

	if (!vo)
		return refuse(v, PV_VERDICT_STATE, "voter_not_found", "voter %s does not exist",
			      ev_str(ev, "voter_id"));
	if (vo->ballot)
		return refuse(v, PV_VERDICT_STATE, "already_voted",
			      "the voter already has a ballot");
	return check_new_id(e, ev_str(ev, "ballot_id"), v);
}

static enum pv_verdict_kind need_open_ballot(const struct pv_election *e, const struct pv_event *ev,
					     struct pv_verdict *v)
{
	const struct ballot *b = entity_get(e, ev_str(ev, "ballot_id"), ENT_BALLOT);

	if (!b)
		return refuse(v, PV_VERDICT_STATE, "ballot_not_found", "ballot %s does not exist",
			      ev_str(ev, "ballot_id"));
	if (b->cast)
		return refuse(v, PV_VERDICT_STATE, "ballot_cast", "the ballot is already cast");
	return PV_VERDICT_ACCEPTED;
}

static enum pv_verdict_kind check_ballot_rated(const struct pv_election *e,
					       const struct pv_event *ev, struct pv_verdict *v)
{
	if (need_open_ballot(e, ev, v) != PV_VERDICT_ACCEPTED)
		return v->kind;
	return need_candidate(e, ev, v);
}

static enum pv_verdict_kind check_ballot_cast(const struct pv_election *e,
					      const struct pv_event *ev, struct pv_verdict *v)
{
	const struct ballot *b;

	if (need_open_ballot(e, ev, v) != PV_VERDICT_ACCEPTED)
		return v->kind;
	b = entity_get(e, ev_str(ev, "ballot_id"), ENT_BALLOT);
	if (b->nrated == 0)
		return refuse(v, PV_VERDICT_STATE, "ballot_empty",
			      "a ballot is cast only with at least one rating");
	return PV_VERDICT_ACCEPTED;
}

/* Folds: the event fits (gates and check passed). */

static void fold_created(struct pv_election *e, const struct pv_event *ev)
{
	e->created = true;
	set_str(&e->name, ev_str(ev, "name"));
	set_str(&e->description, ev_str(ev, "description"));
	set_str(&e->owner, ev->meta.user);
	set_str(&e->created_at, ev->meta.at);
}

static void fold_name(struct pv_election *e, const struct pv_event *ev)
{
	set_str(&e->name, ev_str(ev, "name"));
}

static void fold_description(struct pv_election *e, const struct pv_event *ev)
{
	set_str(&e->description, ev_str(ev, "description"));
}

static void fold_opened(struct pv_election *e, const struct pv_event *ev)
{
	set_str(&e->opened_at, ev_str(ev, "open_date"));
}

static void fold_closed(struct pv_election *e, const struct pv_event *ev)
{
	set_str(&e->closed_at, ev_str(ev, "close_date"));
}

static void fold_deleted(struct pv_election *e, const struct pv_event *ev)
{
	e->deleted = true;
}

static struct competition *competition_add(struct pv_election *e, const char *id, const char *name,
					   const char *description)
{
	struct competition *c = pv_xcalloc(1, sizeof *c);

	c->ent.kind = ENT_COMPETITION;
	snprintf(c->ent.id, sizeof c->ent.id, "%s", id);
	set_str(&c->name, name);
	set_str(&c->description, description);
	vec_push(&e->competitions, c);
	map_put(&e->ids, c->ent.id, c);
	return c;
}

static void fold_competition_added(struct pv_election *e, const struct pv_event *ev)
{
	competition_add(e, ev_str(ev, "competition_id"), ev_str(ev, "name"),
			ev_str(ev, "description"));
}

static struct competition *ev_competition(struct pv_election *e, const struct pv_event *ev)
{
	return entity_get(e, ev_str(ev, "competition_id"), ENT_COMPETITION);
}

static struct candidate *ev_candidate(struct pv_election *e, const struct pv_event *ev)
{
	return entity_get(e, ev_str(ev, "candidate_id"), ENT_CANDIDATE);
}

static void fold_competition_name(struct pv_election *e, const struct pv_event *ev)
{
	set_str(&ev_competition(e, ev)->name, ev_str(ev, "name"));
}

static void fold_competition_description(struct pv_election *e, const struct pv_event *ev)
{
	set_str(&ev_competition(e, ev)->description, ev_str(ev, "description"));
}

/* Slots are indexes into e->candidates: renumber after a removal (drafts
 * only, when no ballot holds a slot). */
static void renumber_slots(struct pv_election *e)
{
	for (size_t i = 0; i < e->candidates.len; i++)
		((struct candidate *)e->candidates.v[i])->slot = i;
}

static void candidate_unlink(struct pv_election *e, struct candidate *k)
{
	map_del(&e->ids, k->ent.id);
	vec_remove(&e->candidates, k);
	vec_remove(&k->competition->candidates, k);
}

static void fold_competition_removed(struct pv_election *e, const struct pv_event *ev)
{
	struct competition *c = ev_competition(e, ev);

	while (c->candidates.len) {
		struct candidate *k = c->candidates.v[0];

		candidate_unlink(e, k);
		candidate_free(k);
	}
	renumber_slots(e);
	map_del(&e->ids, c->ent.id);
	vec_remove(&e->competitions, c);
	competition_free(c);
}

static struct candidate *candidate_add(struct pv_election *e, struct competition *c, const char *id)
{
	struct candidate *k = pv_xcalloc(1, sizeof *k);

	k->ent.kind = ENT_CANDIDATE;
	snprintf(k->ent.id, sizeof k->ent.id, "%s", id);
	k->competition = c;
	k->slot = e->candidates.len;
	vec_push(&e->candidates, k);
	vec_push(&c->candidates, k);
	map_put(&e->ids, k->ent.id, k);
	return k;
}

static void fold_candidate_added(struct pv_election *e, const struct pv_event *ev)
{
	struct candidate *k = candidate_add(e, ev_competition(e, ev), ev_str(ev, "candidate_id"));

	set_str(&k->name, ev_str(ev, "name"));
	set_str(&k->description, ev_str(ev, "description"));
	set_str(&k->image_url, ev_str(ev, "image_url"));
	set_str(&k->image_caption, ev_str(ev, "image_caption"));
}

static void fold_candidate_name(struct pv_election *e, const struct pv_event *ev)
{
	set_str(&ev_candidate(e, ev)->name, ev_str(ev, "name"));
}

static void fold_candidate_description(struct pv_election *e, const struct pv_event *ev)
{
	set_str(&ev_candidate(e, ev)->description, ev_str(ev, "description"));
}

static void fold_candidate_image(struct pv_election *e, const struct pv_event *ev)
{
	struct candidate *k = ev_candidate(e, ev);

	set_str(&k->image_url, ev_str(ev, "image_url"));
	set_str(&k->image_caption, ev_str(ev, "image_caption"));
}

static void fold_candidate_removed(struct pv_election *e, const struct pv_event *ev)
{
	struct candidate *k = ev_candidate(e, ev);

	candidate_unlink(e, k);
	candidate_free(k);
	renumber_slots(e);
}

static struct voter *voter_add(struct pv_election *e, const char *id, const char *name,
			       const char *email)
{
	struct voter *vo = pv_xcalloc(1, sizeof *vo);

	vo->ent.kind = ENT_VOTER;
	snprintf(vo->ent.id, sizeof vo->ent.id, "%s", id);
	set_str(&vo->name, name);
	set_str(&vo->email, email);
	vo->email_key = email_key(email);
	vec_push(&e->voters, vo);
	map_put(&e->ids, vo->ent.id, vo);
	map_put(&e->emails, vo->email_key, vo);
	return vo;
}

static void fold_voter_registered(struct pv_election *e, const struct pv_event *ev)
{
	voter_add(e, ev_str(ev, "voter_id"), ev_str(ev, "name"), ev_str(ev, "email"));
}

static struct ballot *ballot_add(struct pv_election *e, struct voter *vo, const char *id)
{
	struct ballot *b = pv_xcalloc(1, sizeof *b);

	b->ent.kind = ENT_BALLOT;
	snprintf(b->ent.id, sizeof b->ent.id, "%s", id);
	b->voter = vo;
	vo->ballot = b;
	vec_push(&e->ballots, b);
	map_put(&e->ids, b->ent.id, b);
	return b;
}

static void fold_ballot_created(struct pv_election *e, const struct pv_event *ev)
{
	ballot_add(e, entity_get(e, ev_str(ev, "voter_id"), ENT_VOTER), ev_str(ev, "ballot_id"));
}

static void ballot_rate(struct ballot *b, size_t slot, size_t nslots, int rating)
{
	if (slot >= b->nslots) {
		/* Sized once: the candidate set is frozen while ballots exist. */
		b->ratings = pv_xrealloc(b->ratings, nslots);
		memset(b->ratings + b->nslots, 0, nslots - b->nslots);
		b->nslots = nslots;
	}
	if (b->ratings[slot] && !rating)
		b->nrated--;
	else if (!b->ratings[slot] && rating)
		b->nrated++;
	b->ratings[slot] = (unsigned char)rating;
}

static void fold_ballot_rated(struct pv_election *e, const struct pv_event *ev)
{
	struct ballot *b = entity_get(e, ev_str(ev, "ballot_id"), ENT_BALLOT);
	struct candidate *k = ev_candidate(e, ev);
	const json_t *r = json_object_get(ev->data, "rating");

	/* null removes the rating. */
	ballot_rate(b, k->slot, e->candidates.len,
		    json_is_integer(r) ? (int)json_integer_value(r) : 0);
}

static void ballot_cast(struct pv_election *e, struct ballot *b)
{
	b->cast = true;
	e->ncast++;
	for (size_t i = 0; i < b->nslots; i++) {
		struct candidate *k;

		if (!b->ratings[i])
			continue;
		k = e->candidates.v[i];
		k->count++;
		k->sum += b->ratings[i];
	}
}

static void fold_ballot_cast(struct pv_election *e, const struct pv_event *ev)
{
	ballot_cast(e, entity_get(e, ev_str(ev, "ballot_id"), ENT_BALLOT));
}

/* Check and apply. */

enum pv_verdict_kind pv_election_check(const struct pv_election *e, const struct pv_event *ev,
				       struct pv_verdict *verdict)
{
	const struct pv_event_def *def;

	verdict->kind = PV_VERDICT_ACCEPTED;
	verdict->rule = NULL;
	verdict->reason[0] = '\0';
	if ((unsigned)ev->type >= PV_EV__COUNT || !ev->data)
		return refuse(verdict, PV_VERDICT_VALUE, "unknown_type", "unknown event type");
	def = &pv_event_table[ev->type];
	if (gates(e, def, ev, true, verdict) != PV_VERDICT_ACCEPTED)
		return verdict->kind;
	return def->check(e, ev, verdict);
}

enum pv_err pv_election_apply(struct pv_election *e, const struct pv_event *ev, int64_t number,
			      struct pv_error *err)
{
	const struct pv_event_def *def;
	struct pv_verdict v = {PV_VERDICT_ACCEPTED, NULL, ""};

	if ((unsigned)ev->type >= PV_EV__COUNT || !ev->data)
		return pv_error_set(err, PV_ERR_INVALID, "unknown event type %d", (int)ev->type);
	def = &pv_event_table[ev->type];
	if (number <= e->version)
		return pv_error_set(err, PV_ERR_CONFLICT,
				    "%s: event number %lld is not after version %lld", def->name,
				    (long long)number, (long long)e->version);
	/* The stream may hold events the appender never checked (written by
	 * another tool): refuse them here rather than fold nonsense. */
	if (gates(e, def, ev, false, &v) == PV_VERDICT_ACCEPTED)
		def->check(e, ev, &v);
	if (v.kind != PV_VERDICT_ACCEPTED)
		return pv_error_set(
			err, v.kind == PV_VERDICT_VALUE ? PV_ERR_INVALID : PV_ERR_CONFLICT,
			"%s does not fit election %s (%s): %s", def->name, e->id, v.rule, v.reason);
	def->fold(e, ev);
	e->version = number;
	return PV_OK;
}

/* The document. */

static json_t *candidate_to_json(const struct candidate *k, enum pv_election_view view)
{
	json_t *o = pv_jobject();

	pv_jset(o, "id", pv_jstring(k->ent.id));
	pv_jset(o, "name", pv_jstring(k->name));
	pv_jset(o, "description", pv_jstring_or_null(k->description));
	pv_jset(o, "image_url", pv_jstring_or_null(k->image_url));
	pv_jset(o, "image_caption", pv_jstring_or_null(k->image_caption));
	if (view == PV_VIEW_FULL) {
		pv_jset(o, "ratings_count", pv_jinteger(k->count));
		pv_jset(o, "ratings_sum", pv_jinteger(k->sum));
	}
	return o;
}

static json_t *competitions_to_json(const struct pv_election *e, enum pv_election_view view)
{
	json_t *a = pv_jarray();

	for (size_t i = 0; i < e->competitions.len; i++) {
		const struct competition *c = e->competitions.v[i];
		json_t *o = pv_jobject(), *ks = pv_jarray();

		pv_jset(o, "id", pv_jstring(c->ent.id));
		pv_jset(o, "name", pv_jstring(c->name));
		pv_jset(o, "description", pv_jstring_or_null(c->description));
		for (size_t j = 0; j < c->candidates.len; j++)
			pv_jappend(ks, candidate_to_json(c->candidates.v[j], view));
		pv_jset(o, "candidates", ks);
		pv_jappend(a, o);
	}
	return a;
}

static json_t *ballot_to_json(const struct pv_election *e, const struct ballot *b)
{
	json_t *o = pv_jobject(), *r = pv_jobject();

	pv_jset(o, "id", pv_jstring(b->ent.id));
	pv_jset(o, "voter_id", pv_jstring(b->voter->ent.id));
	pv_jset(o, "cast", json_boolean(b->cast));
	/* Document order (competitions, then their candidates), not slot
	 * order, so that a decoded document encodes to the same text. */
	for (size_t i = 0; b->nrated && i < e->competitions.len; i++) {
		const struct competition *c = e->competitions.v[i];

		for (size_t j = 0; j < c->candidates.len; j++) {
			const struct candidate *k = c->candidates.v[j];

			if (k->slot < b->nslots && b->ratings[k->slot])
				pv_jset(r, k->ent.id, pv_jinteger(b->ratings[k->slot]));
		}
	}
	pv_jset(o, "ratings", r);
	return o;
}

json_t *pv_election_to_json(const struct pv_election *e, enum pv_election_view view)
{
	json_t *o = pv_jobject();

	pv_jset(o, "id", pv_jstring(e->id));
	pv_jset(o, "version", pv_jinteger(e->version));
	pv_jset(o, "status", pv_jstring(pv_election_status(e)));
	pv_jset(o, "name", pv_jstring_or_null(e->name));
	pv_jset(o, "description", pv_jstring_or_null(e->description));
	if (view != PV_VIEW_PUBLIC)
		pv_jset(o, "owner", pv_jstring_or_null(e->owner));
	pv_jset(o, "created_at", pv_jstring_or_null(e->created_at));
	pv_jset(o, "opened_at", pv_jstring_or_null(e->opened_at));
	pv_jset(o, "closed_at", pv_jstring_or_null(e->closed_at));
	pv_jset(o, "competitions", competitions_to_json(e, view));
	pv_jset(o, "voter_count", pv_jinteger((json_int_t)e->voters.len));
	pv_jset(o, "ballot_count", pv_jinteger((json_int_t)e->ballots.len));
	pv_jset(o, "cast_count", pv_jinteger((json_int_t)e->ncast));
	if (view != PV_VIEW_PUBLIC) {
		json_t *a = pv_jarray();

		for (size_t i = 0; i < e->voters.len; i++) {
			const struct voter *vo = e->voters.v[i];
			json_t *v = pv_jobject();

			pv_jset(v, "id", pv_jstring(vo->ent.id));
			pv_jset(v, "name", pv_jstring(vo->name));
			pv_jset(v, "email", pv_jstring(vo->email));
			pv_jappend(a, v);
		}
		pv_jset(o, "voters", a);
	}
	if (view == PV_VIEW_FULL) {
		json_t *a = pv_jarray();

		for (size_t i = 0; i < e->ballots.len; i++)
			pv_jappend(a, ballot_to_json(e, e->ballots.v[i]));
		pv_jset(o, "ballots", a);
	}
	return o;
}

/* Decoding the FULL document: as strict as event data, and every
 * invariant the folds rely on is checked again (unique ids and emails, one
 * ballot per voter, ratings of existing candidates, tallies that match the
 * cast ballots), so a tampered or truncated document never becomes state. */

struct doc_ctx {
	struct pv_error *err;
	const char *where; /* "competitions[3]" ... */
};

static enum pv_err doc_fail(struct doc_ctx *c, const char *key, const char *why)
{
	return pv_error_set(c->err, PV_ERR_INVALID, "election document: %s: field \"%s\" %s",
			    c->where, key, why);
}

static enum pv_err doc_keys(struct doc_ctx *c, const json_t *o, const char *const *keys)
{
	const char *key;
	const json_t *v;

	if (!json_is_object(o))
		return pv_error_set(c->err, PV_ERR_INVALID,
				    "election document: %s must be an object", c->where);
	json_object_foreach((json_t *)o, key, v)
	{
		bool known = false;

		for (const char *const *k = keys; *k; k++)
			known = known || strcmp(*k, key) == 0;
		if (!known)
			return doc_fail(c, key, "is unknown");
	}
	for (const char *const *k = keys; *k; k++)
		if (!json_object_get(o, *k))
			return doc_fail(c, *k, "is missing");
	return PV_OK;
}

/* A string of a field kind, or NULL when nullable and null. */
static enum pv_err doc_str(struct doc_ctx *c, const json_t *o, const char *key,
			   enum pv_field_kind kind, bool nullable, const char **out)
{
	const json_t *v = json_object_get(o, key);
	const char *why = "";

	*out = NULL;
	if (json_is_null(v)) {
		if (nullable)
			return PV_OK;
		return doc_fail(c, key, "must not be null");
	}
	if (pv_field_value_check(kind, v, &why) != PV_FIELD_ERR_NONE)
		return doc_fail(c, key, why);
	*out = json_string_value(v);
	return PV_OK;
}

static enum pv_err doc_int(struct doc_ctx *c, const json_t *o, const char *key, json_int_t min,
			   json_int_t *out)
{
	const json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < min)
		return doc_fail(c, key, "must be an integer in range");
	*out = json_integer_value(v);
	return PV_OK;
}

static enum pv_err doc_array(struct doc_ctx *c, const json_t *o, const char *key)
{
	if (!json_is_array(json_object_get(o, key)))
		return doc_fail(c, key, "must be an array");
	return PV_OK;
}

/* The owner is an identity, not an entity field: checked like metadata. */
static enum pv_err doc_identity(struct doc_ctx *c, const json_t *o, const char *key,
				const char **out)
{
	const json_t *v = json_object_get(o, key);
	long n;

	*out = NULL;
	if (json_is_null(v))
		return PV_OK;
	if (!json_is_string(v))
		return doc_fail(c, key, "must be a string or null");
	*out = json_string_value(v);
	n = pv_utf8_count(*out, json_string_length(v));
	if (strlen(*out) != json_string_length(v) || n < 1 || n > PV_USER_MAX)
		return doc_fail(c, key, "is not a valid identity");
	return PV_OK;
}

static enum pv_err doc_competitions(struct doc_ctx *c, struct pv_election *e, const json_t *arr)
{
	static const char *const ckeys[] = {"id", "name", "description", "candidates", NULL};
	static const char *const kkeys[] = {
		"id",          "name", "description", "image_url", "image_caption", "ratings_count",
		"ratings_sum", NULL};
	char where[96];
	size_t i, j;
	const json_t *jc, *jk;
	enum pv_err rc;

	c->where = where;
	json_array_foreach(arr, i, jc)
	{
		const char *id, *name, *desc;
		struct competition *comp;

		snprintf(where, sizeof where, "competitions[%zu]", i);
		if ((rc = doc_keys(c, jc, ckeys)) != PV_OK ||
		    (rc = doc_str(c, jc, "id", PV_FK_ULID, false, &id)) != PV_OK ||
		    (rc = doc_str(c, jc, "name", PV_FK_NAME, false, &name)) != PV_OK ||
		    (rc = doc_str(c, jc, "description", PV_FK_TEXT, true, &desc)) != PV_OK ||
		    (rc = doc_array(c, jc, "candidates")) != PV_OK)
			return rc;
		if (map_get(&e->ids, id) || strcmp(id, e->id) == 0)
			return doc_fail(c, "id", "is used twice");
		comp = competition_add(e, id, name, desc);
		json_array_foreach(json_object_get(jc, "candidates"), j, jk)
		{
			const char *kid, *kname, *kdesc, *url, *caption;
			json_int_t count, sum;
			struct candidate *k;

			snprintf(where, sizeof where, "competitions[%zu].candidates[%zu]", i, j);
			if ((rc = doc_keys(c, jk, kkeys)) != PV_OK ||
			    (rc = doc_str(c, jk, "id", PV_FK_ULID, false, &kid)) != PV_OK ||
			    (rc = doc_str(c, jk, "name", PV_FK_NAME, false, &kname)) != PV_OK ||
			    (rc = doc_str(c, jk, "description", PV_FK_TEXT, true, &kdesc)) !=
				    PV_OK ||
			    (rc = doc_str(c, jk, "image_url", PV_FK_URL, true, &url)) != PV_OK ||
			    (rc = doc_str(c, jk, "image_caption", PV_FK_TEXT, true, &caption)) !=
				    PV_OK ||
			    (rc = doc_int(c, jk, "ratings_count", 0, &count)) != PV_OK ||
			    (rc = doc_int(c, jk, "ratings_sum", 0, &sum)) != PV_OK)
				return rc;
			if (map_get(&e->ids, kid) || strcmp(kid, e->id) == 0)
				return doc_fail(c, "id", "is used twice");
			k = candidate_add(e, comp, kid);
			set_str(&k->name, kname);
			set_str(&k->description, kdesc);
			set_str(&k->image_url, url);
			set_str(&k->image_caption, caption);
			/* count and sum are recounted from the ballots (doc_tallies). */
		}
	}
	return PV_OK;
}

static enum pv_err doc_voters(struct doc_ctx *c, struct pv_election *e, const json_t *arr)
{
	static const char *const keys[] = {"id", "name", "email", NULL};
	char where[96];
	const json_t *jv;
	size_t i;
	enum pv_err rc;

	c->where = where;
	json_array_foreach(arr, i, jv)
	{
		const char *id, *name, *email;
		char *key;
		bool taken;

		snprintf(where, sizeof where, "voters[%zu]", i);
		if ((rc = doc_keys(c, jv, keys)) != PV_OK ||
		    (rc = doc_str(c, jv, "id", PV_FK_ULID, false, &id)) != PV_OK ||
		    (rc = doc_str(c, jv, "name", PV_FK_NAME, false, &name)) != PV_OK ||
		    (rc = doc_str(c, jv, "email", PV_FK_EMAIL, false, &email)) != PV_OK)
			return rc;
		if (map_get(&e->ids, id) || strcmp(id, e->id) == 0)
			return doc_fail(c, "id", "is used twice");
		key = email_key(email);
		taken = map_get(&e->emails, key) != NULL;
		free(key);
		if (taken)
			return doc_fail(c, "email", "is registered twice");
		voter_add(e, id, name, email);
	}
	return PV_OK;
}

static enum pv_err doc_ballots(struct doc_ctx *c, struct pv_election *e, const json_t *arr)
{
	static const char *const keys[] = {"id", "voter_id", "cast", "ratings", NULL};
	char where[96];
	const json_t *jb, *jr;
	const char *kid;
	size_t i;
	enum pv_err rc;

	c->where = where;
	json_array_foreach(arr, i, jb)
	{
		const char *id, *voter_id;
		struct voter *vo;
		struct ballot *b;

		snprintf(where, sizeof where, "ballots[%zu]", i);
		if ((rc = doc_keys(c, jb, keys)) != PV_OK ||
		    (rc = doc_str(c, jb, "id", PV_FK_ULID, false, &id)) != PV_OK ||
		    (rc = doc_str(c, jb, "voter_id", PV_FK_ULID, false, &voter_id)) != PV_OK)
			return rc;
		if (!json_is_boolean(json_object_get(jb, "cast")))
			return doc_fail(c, "cast", "must be a boolean");
		if (!json_is_object(json_object_get(jb, "ratings")))
			return doc_fail(c, "ratings", "must be an object");
		if (map_get(&e->ids, id) || strcmp(id, e->id) == 0)
			return doc_fail(c, "id", "is used twice");
		vo = entity_get(e, voter_id, ENT_VOTER);
		if (!vo)
			return doc_fail(c, "voter_id", "names no voter");
		if (vo->ballot)
			return doc_fail(c, "voter_id", "names a voter with two ballots");
		b = ballot_add(e, vo, id);
		json_object_foreach(json_object_get(jb, "ratings"), kid, jr)
		{
			const struct candidate *k = entity_get(e, kid, ENT_CANDIDATE);
			const char *why = "";

			if (!k)
				return doc_fail(c, "ratings", "names an unknown candidate");
			if (pv_field_value_check(PV_FK_RATING, jr, &why) != PV_FIELD_ERR_NONE)
				return doc_fail(c, "ratings", why);
			ballot_rate(b, k->slot, e->candidates.len, (int)json_integer_value(jr));
		}
		if (json_is_true(json_object_get(jb, "cast"))) {
			if (!b->nrated)
				return doc_fail(c, "cast", "is true for a ballot without ratings");
			ballot_cast(e, b);
		}
	}
	return PV_OK;
}

/* Compares the tallies the document claims with the recount of its cast
 * ballots; candidates were added in document order. */
static enum pv_err doc_tallies(struct doc_ctx *c, struct pv_election *e, const json_t *arr)
{
	char where[96];
	const json_t *jc, *jk;
	size_t i, j;

	c->where = where;
	json_array_foreach(arr, i, jc)
	{
		const struct competition *comp = e->competitions.v[i];

		json_array_foreach(json_object_get(jc, "candidates"), j, jk)
		{
			const struct candidate *k = comp->candidates.v[j];

			snprintf(where, sizeof where, "competitions[%zu].candidates[%zu]", i, j);
			if (json_integer_value(json_object_get(jk, "ratings_count")) != k->count)
				return doc_fail(c, "ratings_count",
						"does not match the cast ballots");
			if (json_integer_value(json_object_get(jk, "ratings_sum")) != k->sum)
				return doc_fail(c, "ratings_sum",
						"does not match the cast ballots");
		}
	}
	return PV_OK;
}

enum pv_err pv_election_from_json(const json_t *doc, struct pv_election **out, struct pv_error *err)
{
	static const char *const keys[] = {
		"id",          "version",      "status",      "name",
		"description", "owner",        "created_at",  "opened_at",
		"closed_at",   "competitions", "voter_count", "ballot_count",
		"cast_count",  "voters",       "ballots",     NULL};
	static const char *const statuses[] = {"new", "draft", "open", "closed", "deleted", NULL};
	struct doc_ctx c = {err, "election"};
	const char *id, *status, *name, *desc, *owner, *created, *opened, *closed;
	json_int_t version, nvoters, nballots, ncast;
	struct pv_election *e = NULL;
	const json_t *comps;
	enum pv_err rc;
	int st = -1;

	*out = NULL;
	if ((rc = doc_keys(&c, doc, keys)) != PV_OK ||
	    (rc = doc_str(&c, doc, "id", PV_FK_ULID, false, &id)) != PV_OK ||
	    (rc = doc_int(&c, doc, "version", -1, &version)) != PV_OK ||
	    (rc = doc_str(&c, doc, "name", PV_FK_NAME, true, &name)) != PV_OK ||
	    (rc = doc_str(&c, doc, "description", PV_FK_TEXT, true, &desc)) != PV_OK ||
	    (rc = doc_identity(&c, doc, "owner", &owner)) != PV_OK ||
	    (rc = doc_str(&c, doc, "created_at", PV_FK_DATE, true, &created)) != PV_OK ||
	    (rc = doc_str(&c, doc, "opened_at", PV_FK_DATE, true, &opened)) != PV_OK ||
	    (rc = doc_str(&c, doc, "closed_at", PV_FK_DATE, true, &closed)) != PV_OK ||
	    (rc = doc_array(&c, doc, "competitions")) != PV_OK ||
	    (rc = doc_array(&c, doc, "voters")) != PV_OK ||
	    (rc = doc_array(&c, doc, "ballots")) != PV_OK ||
	    (rc = doc_int(&c, doc, "voter_count", 0, &nvoters)) != PV_OK ||
	    (rc = doc_int(&c, doc, "ballot_count", 0, &nballots)) != PV_OK ||
	    (rc = doc_int(&c, doc, "cast_count", 0, &ncast)) != PV_OK)
		return rc;
	status = json_string_value(json_object_get(doc, "status"));
	for (int i = 0; status && statuses[i]; i++)
		if (strcmp(status, statuses[i]) == 0)
			st = i;
	if (st < 0)
		return doc_fail(&c, "status", "is not new, draft, open, closed or deleted");
	comps = json_object_get(doc, "competitions");
	/* The status must say what the dates say. */
	if (st == 0 ? name || owner || created || opened || closed || json_array_size(comps)
		    : !name || !owner || !created)
		return doc_fail(&c, "status", "does not match the name, owner and dates");
	if ((st == 1 && (opened || closed)) || (st == 2 && (!opened || closed)) ||
	    (st == 3 && (!opened || !closed)) || (closed && !opened))
		return doc_fail(&c, "status", "does not match opened_at and closed_at");
	if (json_array_size(json_object_get(doc, "ballots")) && !opened)
		return doc_fail(&c, "ballots", "exist in an election that never opened");

	e = pv_election_new(id);
	e->version = version;
	e->created = st != 0;
	e->deleted = st == 4;
	set_str(&e->name, name);
	set_str(&e->description, desc);
	set_str(&e->owner, owner);
	set_str(&e->created_at, created);
	set_str(&e->opened_at, opened);
	set_str(&e->closed_at, closed);
	if ((rc = doc_competitions(&c, e, comps)) != PV_OK ||
	    (rc = doc_voters(&c, e, json_object_get(doc, "voters"))) != PV_OK ||
	    (rc = doc_ballots(&c, e, json_object_get(doc, "ballots"))) != PV_OK ||
	    (rc = doc_tallies(&c, e, comps)) != PV_OK)
		goto fail;
	c.where = "election";
	if ((size_t)nvoters != e->voters.len || (size_t)nballots != e->ballots.len ||
	    (size_t)ncast != e->ncast) {
		rc = doc_fail(&c, "voter_count", "or ballot_count or cast_count does not match");
		goto fail;
	}
	*out = e;
	return PV_OK;
fail:
	pv_election_free(e);
	return rc;
}

/* Results. */

static int rank_cmp_mean(const struct candidate *a, const struct candidate *b)
{
	/* Means compared exactly: a.sum/a.count vs b.sum/b.count. */
	if (a->count && b->count) {
		int64_t l = a->sum * b->count, r = b->sum * a->count;

		if (l != r)
			return l > r ? -1 : 1;
		return 0;
	}
	if (a->count || b->count)
		return a->count ? -1 : 1; /* rated before unrated */
	return 0;
}

static int rank_cmp_tie(const struct candidate *a, const struct candidate *b)
{
	int c = rank_cmp_mean(a, b);

	if (c)
		return c;
	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	return 0;
}

static int rank_cmp(const void *pa, const void *pb)
{
	const struct candidate *a = *(const struct candidate *const *)pa;
	const struct candidate *b = *(const struct candidate *const *)pb;
	int c = rank_cmp_tie(a, b);

	return c ? c : strcmp(a->ent.id, b->ent.id);
}

json_t *pv_election_results(const struct pv_election *e)
{
	json_t *o = pv_jobject(), *comps = pv_jarray();

	pv_jset(o, "election_id", pv_jstring(e->id));
	pv_jset(o, "version", pv_jinteger(e->version));
	pv_jset(o, "status", pv_jstring(pv_election_status(e)));
	pv_jset(o, "cast_count", pv_jinteger((json_int_t)e->ncast));
	for (size_t i = 0; i < e->competitions.len; i++) {
		const struct competition *c = e->competitions.v[i];
		json_t *jc = pv_jobject(), *ks = pv_jarray();
		struct candidate **sorted;
		size_t n = c->candidates.len, rank = 0;

		sorted = pv_xreallocarray(NULL, n ? n : 1, sizeof *sorted);
		if (n)
			memcpy(sorted, c->candidates.v, n * sizeof *sorted);
		qsort(sorted, n, sizeof *sorted, rank_cmp);
		for (size_t j = 0; j < n; j++) {
			const struct candidate *k = sorted[j];
			json_t *jk = pv_jobject();

			/* Competition ranking ("1224"): equal mean and count share a rank. */
			if (j == 0 || rank_cmp_tie(sorted[j - 1], k) != 0)
				rank = j + 1;
			pv_jset(jk, "rank", pv_jinteger((json_int_t)rank));
			pv_jset(jk, "id", pv_jstring(k->ent.id));
			pv_jset(jk, "name", pv_jstring(k->name));
			pv_jset(jk, "count", pv_jinteger(k->count));
			pv_jset(jk, "sum", pv_jinteger(k->sum));
			pv_jset(jk, "mean",
				k->count ? json_real((double)k->sum / (double)k->count)
					 : json_null());
			if (!json_object_get(jk, "mean"))
				pv_oom("json_real", sizeof(double));
			pv_jappend(ks, jk);
		}
		free(sorted);
		pv_jset(jc, "id", pv_jstring(c->ent.id));
		pv_jset(jc, "name", pv_jstring(c->name));
		pv_jset(jc, "candidates", ks);
		pv_jappend(comps, jc);
	}
	pv_jset(o, "competitions", comps);
	return o;
}

/* The event table: one row per event type (see table.h and README.md). */

/* clang-format off */
#define FIELDS(...) ((const struct pv_field_spec[]){__VA_ARGS__, {NULL, PV_FK_ULID, 0}})
#define NO_FIELDS ((const struct pv_field_spec[]){{NULL, PV_FK_ULID, 0}})
#define REQ(name, kind) {name, PV_FK_##kind, 0}
#define OPT(name, kind) {name, PV_FK_##kind, PV_FF_OPTIONAL}
#define NUL(name, kind) {name, PV_FK_##kind, PV_FF_NULLABLE}
#define OWNER_NOT_CLOSED (PV_GATE_OWNER | PV_GATE_NOT_CLOSED)
#define OWNER_DRAFT (PV_GATE_OWNER | PV_GATE_DRAFT)
#define VOTER_OPEN (PV_GATE_VOTER | PV_GATE_OPEN)

const struct pv_event_def pv_event_table[PV_EV__COUNT] = {
	[PV_EV_ELECTION_CREATED] = {"ElectionCreated",
		FIELDS(REQ("name", NAME), OPT("description", TEXT)),
		PV_GATE_CREATE, check_none, fold_created},
	[PV_EV_ELECTION_NAME_CHANGED] = {"ElectionNameChanged",
		FIELDS(REQ("name", NAME)),
		OWNER_NOT_CLOSED, check_none, fold_name},
	[PV_EV_ELECTION_DESCRIPTION_CHANGED] = {"ElectionDescriptionChanged",
		FIELDS(OPT("description", TEXT)),
		OWNER_NOT_CLOSED, check_none, fold_description},
	[PV_EV_ELECTION_OPENED] = {"ElectionOpened",
		FIELDS(REQ("open_date", DATE)),
		OWNER_NOT_CLOSED, check_opened, fold_opened},
	[PV_EV_ELECTION_CLOSED] = {"ElectionClosed",
		FIELDS(REQ("close_date", DATE)),
		OWNER_NOT_CLOSED, check_closed, fold_closed},
	[PV_EV_ELECTION_DELETED] = {"ElectionDeleted",
		NO_FIELDS,
		PV_GATE_OWNER, check_none, fold_deleted},
	[PV_EV_COMPETITION_ADDED] = {"CompetitionAdded",
		FIELDS(REQ("competition_id", ULID), REQ("name", NAME), OPT("description", TEXT)),
		OWNER_DRAFT, check_competition_added, fold_competition_added},
	[PV_EV_COMPETITION_NAME_CHANGED] = {"CompetitionNameChanged",
		FIELDS(REQ("competition_id", ULID), REQ("name", NAME)),
		OWNER_NOT_CLOSED, need_competition, fold_competition_name},
	[PV_EV_COMPETITION_DESCRIPTION_CHANGED] = {"CompetitionDescriptionChanged",
		FIELDS(REQ("competition_id", ULID), OPT("description", TEXT)),
		OWNER_NOT_CLOSED, need_competition, fold_competition_description},
	[PV_EV_COMPETITION_REMOVED] = {"CompetitionRemoved",
		FIELDS(REQ("competition_id", ULID)),
		OWNER_DRAFT, need_competition, fold_competition_removed},
	[PV_EV_CANDIDATE_ADDED] = {"CandidateAdded",
		FIELDS(REQ("competition_id", ULID), REQ("candidate_id", ULID), REQ("name", NAME),
		       OPT("description", TEXT), OPT("image_url", URL),
		       OPT("image_caption", TEXT)),
		OWNER_DRAFT, check_candidate_added, fold_candidate_added},
	[PV_EV_CANDIDATE_NAME_CHANGED] = {"CandidateNameChanged",
		FIELDS(REQ("competition_id", ULID), REQ("candidate_id", ULID), REQ("name", NAME)),
		OWNER_NOT_CLOSED, need_candidate, fold_candidate_name},
	[PV_EV_CANDIDATE_DESCRIPTION_CHANGED] = {"CandidateDescriptionChanged",
		FIELDS(REQ("competition_id", ULID), REQ("candidate_id", ULID),
		       OPT("description", TEXT)),
		OWNER_NOT_CLOSED, need_candidate, fold_candidate_description},
	[PV_EV_CANDIDATE_IMAGE_CHANGED] = {"CandidateImageChanged",
		FIELDS(REQ("competition_id", ULID), REQ("candidate_id", ULID),
		       OPT("image_url", URL), OPT("image_caption", TEXT)),
		OWNER_NOT_CLOSED, need_candidate, fold_candidate_image},
	[PV_EV_CANDIDATE_REMOVED] = {"CandidateRemoved",
		FIELDS(REQ("competition_id", ULID), REQ("candidate_id", ULID)),
		OWNER_DRAFT, need_candidate, fold_candidate_removed},
	[PV_EV_VOTER_REGISTERED] = {"VoterRegistered",
		FIELDS(REQ("voter_id", ULID), REQ("name", NAME), REQ("email", EMAIL)),
		OWNER_NOT_CLOSED, check_voter_registered, fold_voter_registered},
	[PV_EV_BALLOT_CREATED] = {"BallotCreated",
		FIELDS(REQ("ballot_id", ULID), REQ("voter_id", ULID)),
		VOTER_OPEN, check_ballot_created, fold_ballot_created},
	[PV_EV_BALLOT_CANDIDATE_RATED] = {"BallotCandidateRated",
		FIELDS(REQ("ballot_id", ULID), REQ("competition_id", ULID),
		       REQ("candidate_id", ULID), NUL("rating", RATING)),
		VOTER_OPEN, check_ballot_rated, fold_ballot_rated},
	[PV_EV_BALLOT_CAST] = {"BallotCast",
		FIELDS(REQ("ballot_id", ULID)),
		VOTER_OPEN, check_ballot_cast, fold_ballot_cast},
};
/* clang-format on */
