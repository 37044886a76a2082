/* Splitting the election document into documents that fit a store's item
 * size limit, by encoded size, and joining them back (see election.h).
 * The head keeps what does not grow with the election (the election, its
 * competitions, the counts, the results' totals); every list that grows
 * (candidates, results rows, voters, ballots) goes into parts of its own,
 * packed in order until the next item would pass the budget. */

#include "domain/election.h"
#include "domain/table.h"
#include "xalloc.h"

#include <stdio.h>
#include <string.h>

/* A part with its id, partition key, list, number (up to this many
 * digits) and an empty "items": its size is counted with this. */
#define PART_DIGITS_MAX 9

const char *const pv_election_doc_lists[PV_DOC__COUNT] = {
	[PV_DOC_CANDIDATES] = "candidates",
	[PV_DOC_RESULTS] = "results",
	[PV_DOC_VOTERS] = "voters",
	[PV_DOC_BALLOTS] = "ballots",
};

void pv_election_doc_part_id(const char *eid, enum pv_doc_list list, size_t k,
			     char out[PV_DOC_ID_MAX])
{
	snprintf(out, PV_DOC_ID_MAX, "%s-%s-%zu", eid, pv_election_doc_lists[list], k);
}

static size_t encoded_size(const json_t *v)
{
	return json_dumpb(v, NULL, 0, JSON_COMPACT);
}

static json_t *part_new(const char *eid, enum pv_doc_list list, size_t k)
{
	json_t *part = pv_jobject();
	char id[PV_DOC_ID_MAX];

	pv_election_doc_part_id(eid, list, k, id);
	pv_jset(part, "id", pv_jstring(id));
	pv_jset(part, "election_id", pv_jstring(eid));
	pv_jset(part, "list", pv_jstring(pv_election_doc_lists[list]));
	pv_jset(part, "part", pv_jinteger((json_int_t)k));
	pv_jset(part, "items", pv_jarray());
	return part;
}

/* Items of competition-scoped lists carry the competition's index. */
static json_t *scoped(size_t ci, json_t *item)
{
	json_t *a = pv_jarray();

	pv_jappend(a, pv_jinteger((json_int_t)ci));
	pv_jappend(a, json_incref(item));
	return a;
}

/* The items of one list, in order (new references). */
static json_t *items_of(const json_t *full, const json_t *results, enum pv_doc_list list)
{
	json_t *out = pv_jarray(), *c, *x;
	const json_t *comps =
		json_object_get(list == PV_DOC_RESULTS ? results : full, "competitions");
	size_t i, j;

	switch (list) {
	case PV_DOC_CANDIDATES:
	case PV_DOC_RESULTS:
		json_array_foreach(comps, i, c)
		{
			json_array_foreach(json_object_get(c, "candidates"), j, x)
				pv_jappend(out, scoped(i, x));
		}
		break;
	case PV_DOC_VOTERS:
	case PV_DOC_BALLOTS:
		json_array_foreach(json_object_get(full, pv_election_doc_lists[list]), i, x)
			pv_jappend(out, json_incref(x));
		break;
	case PV_DOC__COUNT: break;
	}
	return out;
}

/* Competitions (of the document or of the results) copied without their
 * candidates, or with an empty "candidates" (last, as in the original) to
 * be filled from the parts. */
static json_t *competitions_copy(const json_t *comps, bool open)
{
	json_t *out = pv_jarray(), *c;
	size_t i;

	json_array_foreach(comps, i, c)
	{
		json_t *oc = json_copy(c);

		if (!oc)
			pv_oom("json_copy", 0);
		if (open)
			pv_jset(oc, "candidates", pv_jarray());
		else
			json_object_del(oc, "candidates");
		pv_jappend(out, oc);
	}
	return out;
}

/* Packs one list into parts appended to docs; counts them in *n. */
static enum pv_err pack(const char *eid, enum pv_doc_list list, json_t *items, size_t max_bytes,
			json_t *docs, size_t *n, struct pv_error *err)
{
	json_t *probe = part_new(eid, list, 999999999), *part = NULL, *item;
	size_t base = encoded_size(probe), used = 0, i;

	json_decref(probe);
	*n = 0;
	json_array_foreach(items, i, item)
	{
		size_t size = encoded_size(item) + 1; /* and a comma */

		if (base + size > max_bytes) {
			json_t *id = json_is_array(item) ? json_array_get(item, 1) : item;
			const char *iid = json_string_value(json_object_get(id, "id"));

			return pv_error_set(err, PV_ERR_TOO_LARGE,
					    "election %s: one of its %s (%s) is %zu bytes, more "
					    "than a document of %zu bytes can hold",
					    eid, pv_election_doc_lists[list], iid ? iid : "?", size,
					    max_bytes);
		}
		if (!part || base + used + size > max_bytes) {
			part = part_new(eid, list, ++*n);
			pv_jappend(docs, part);
			used = 0;
		}
		pv_jappend(json_object_get(part, "items"), json_incref(item));
		used += size;
	}
	return PV_OK;
}

enum pv_err pv_election_doc_split(const json_t *full, const json_t *results, size_t max_bytes,
				  json_t **docs, struct pv_error *err)
{
	const char *eid = json_string_value(json_object_get(full, "id"));
	json_t *out = pv_jarray(), *head = pv_jobject(), *counts = pv_jobject(), *rhead, *v;
	const char *key;
	enum pv_err rc = PV_OK;

	*docs = NULL;
	if (!eid || !json_is_object(results)) {
		json_decref(out);
		json_decref(head);
		json_decref(counts);
		return pv_error_set(err, PV_ERR_INVALID,
				    "election document: needs an \"id\" and results");
	}
	json_object_foreach((json_t *)full, key, v)
	{
		if (strcmp(key, "voters") == 0 || strcmp(key, "ballots") == 0)
			continue;
		pv_jset(head, key,
			strcmp(key, "competitions") == 0 ? competitions_copy(v, false)
							 : json_incref(v));
	}
	rhead = json_copy((json_t *)results);
	if (!rhead)
		pv_oom("json_copy", 0);
	pv_jset(rhead, "competitions",
		competitions_copy(json_object_get(results, "competitions"), false));
	pv_jset(head, "results", rhead);
	pv_jset(head, "parts", counts);
	pv_jappend(out, head);
	for (int l = 0; l < PV_DOC__COUNT && rc == PV_OK; l++) {
		json_t *items = items_of(full, results, (enum pv_doc_list)l);
		size_t n = 0;

		rc = pack(eid, (enum pv_doc_list)l, items, max_bytes, out, &n, err);
		json_decref(items);
		pv_jset(counts, pv_election_doc_lists[l], pv_jinteger((json_int_t)n));
	}
	if (rc != PV_OK) {
		json_decref(out);
		return rc;
	}
	*docs = out;
	return PV_OK;
}

bool pv_election_doc_counts(const json_t *head, size_t counts[PV_DOC__COUNT])
{
	const json_t *parts = json_object_get(head, "parts");

	if (!json_is_object(parts))
		return false;
	for (int l = 0; l < PV_DOC__COUNT; l++) {
		const json_t *n = json_object_get(parts, pv_election_doc_lists[l]);

		if (!json_is_integer(n) || json_integer_value(n) < 0)
			return false;
		counts[l] = (size_t)json_integer_value(n);
	}
	return true;
}

/* Puts a competition-scoped item back into its competition. */
static bool unscope(json_t *comps, const json_t *item)
{
	const json_t *ci = json_array_get(item, 0);
	json_t *c;

	if (!json_is_array(item) || json_array_size(item) != 2 || !json_is_integer(ci) ||
	    json_integer_value(ci) < 0)
		return false;
	c = json_array_get(comps, (size_t)json_integer_value(ci));
	if (!c)
		return false;
	pv_jappend(json_object_get(c, "candidates"), json_incref(json_array_get(item, 1)));
	return true;
}

static enum pv_err bad_part(const char *eid, enum pv_doc_list list, size_t k, json_t *a, json_t *b,
			    struct pv_error *err)
{
	json_decref(a);
	json_decref(b);
	return pv_error_set(err, PV_ERR_INVALID,
			    "election document: part %zu of the %s of %s is missing or not "
			    "the one its head names",
			    k, pv_election_doc_lists[list], eid);
}

enum pv_err pv_election_doc_join(const json_t *head, const json_t *parts, unsigned lists,
				 json_t **full, json_t **results, struct pv_error *err)
{
	const char *eid = json_string_value(json_object_get(head, "id"));
	const json_t *rh = json_object_get(head, "results");
	size_t counts[PV_DOC__COUNT], i, next[PV_DOC__COUNT] = {0};
	json_t *doc, *res, *lists_out[PV_DOC__COUNT] = {NULL}, *v, *part;
	const char *key;

	*full = NULL;
	if (results)
		*results = NULL;
	if (!json_is_object(head) || !eid || !pv_election_doc_counts(head, counts) ||
	    !json_is_object(rh) || !json_is_array(parts))
		return pv_error_set(err, PV_ERR_INVALID,
				    "election document head: needs \"id\", \"results\" and "
				    "\"parts\" by list");
	doc = pv_jobject();
	json_object_foreach((json_t *)head, key, v)
	{
		if (strcmp(key, "parts") == 0 || strcmp(key, "results") == 0)
			continue;
		pv_jset(doc, key,
			strcmp(key, "competitions") == 0 && (lists & (1u << PV_DOC_CANDIDATES))
				? competitions_copy(v, true)
				: json_incref(v));
	}
	res = json_copy((json_t *)rh);
	if (!res)
		pv_oom("json_copy", 0);
	pv_jset(res, "competitions", competitions_copy(json_object_get(rh, "competitions"), true));
	lists_out[PV_DOC_CANDIDATES] = json_object_get(doc, "competitions");
	lists_out[PV_DOC_RESULTS] = json_object_get(res, "competitions");
	if (lists & (1u << PV_DOC_VOTERS))
		pv_jset(doc, "voters", lists_out[PV_DOC_VOTERS] = pv_jarray());
	if (lists & (1u << PV_DOC_BALLOTS))
		pv_jset(doc, "ballots", lists_out[PV_DOC_BALLOTS] = pv_jarray());
	/* Parts come list by list, each in order. */
	json_array_foreach(parts, i, part)
	{
		const char *pl = json_string_value(json_object_get(part, "list"));
		const char *pe = json_string_value(json_object_get(part, "election_id"));
		const json_t *pk = json_object_get(part, "part"), *items, *item;
		int l;
		size_t j;

		for (l = 0; l < PV_DOC__COUNT; l++)
			if (pl && strcmp(pl, pv_election_doc_lists[l]) == 0)
				break;
		if (l == PV_DOC__COUNT || !(lists & (1u << l)))
			return bad_part(eid, l == PV_DOC__COUNT ? 0 : (enum pv_doc_list)l, 0, doc,
					res, err);
		items = json_object_get(part, "items");
		if (!pe || strcmp(pe, eid) != 0 || !json_is_integer(pk) ||
		    json_integer_value(pk) != (json_int_t)next[l] + 1 || next[l] >= counts[l] ||
		    !json_is_array(items))
			return bad_part(eid, (enum pv_doc_list)l, next[l] + 1, doc, res, err);
		next[l]++;
		json_array_foreach(items, j, item)
		{
			if (l == PV_DOC_CANDIDATES || l == PV_DOC_RESULTS) {
				if (!unscope(lists_out[l], item))
					return bad_part(eid, (enum pv_doc_list)l, next[l], doc, res,
							err);
			} else {
				pv_jappend(lists_out[l], json_incref((json_t *)item));
			}
		}
	}
	for (int l = 0; l < PV_DOC__COUNT; l++)
		if ((lists & (1u << l)) && next[l] != counts[l])
			return bad_part(eid, (enum pv_doc_list)l, next[l] + 1, doc, res, err);
	*full = doc;
	if (results && (lists & (1u << PV_DOC_RESULTS)))
		*results = res;
	else
		json_decref(res);
	return PV_OK;
}
