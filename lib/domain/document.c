/* Splitting the election document into parts that fit a store's item size
 * limit, and joining them back (see election.h).  The head keeps everything
 * small (the election, competitions, candidates with their tallies, the
 * counts); the parts carry the voters and ballots, which grow with the
 * election. */
#include "config.h"

#include "domain/election.h"
#include "domain/table.h"
#include "xalloc.h"

#include <stdio.h>
#include <string.h>

static json_t *slice(const json_t *array, size_t from, size_t count)
{
	json_t *a = pv_jarray();

	for (size_t i = from; i < from + count && i < json_array_size(array); i++)
		pv_jappend(a, json_incref(json_array_get(array, i)));
	return a;
}

json_t *pv_election_doc_split(const json_t *full, size_t per_part)
{
	const json_t *voters = json_object_get(full, "voters");
	const json_t *ballots = json_object_get(full, "ballots");
	const char *eid = json_string_value(json_object_get(full, "id"));
	size_t nv = json_array_size(voters), nb = json_array_size(ballots);
	size_t n, big = nv > nb ? nv : nb;
	json_t *out = pv_jarray(), *head = pv_jobject(), *v;
	const char *key;

	if (per_part == 0)
		per_part = 1;
	n = (big + per_part - 1) / per_part;
	json_object_foreach((json_t *)full, key, v)
	{
		if (strcmp(key, "voters") != 0 && strcmp(key, "ballots") != 0)
			pv_jset(head, key, json_incref(v));
	}
	pv_jset(head, "parts", pv_jinteger((json_int_t)n));
	pv_jappend(out, head);
	for (size_t k = 1; k <= n; k++) {
		json_t *part = pv_jobject();
		char id[PV_ULID_LEN + 32];

		snprintf(id, sizeof id, "%s-part-%zu", eid ? eid : "", k);
		pv_jset(part, "id", pv_jstring(id));
		pv_jset(part, "election_id", pv_jstring(eid ? eid : ""));
		pv_jset(part, "part", pv_jinteger((json_int_t)k));
		pv_jset(part, "voters", slice(voters, (k - 1) * per_part, per_part));
		pv_jset(part, "ballots", slice(ballots, (k - 1) * per_part, per_part));
		pv_jappend(out, part);
	}
	return out;
}

enum pv_err pv_election_doc_join(const json_t *head, const json_t *parts, json_t **full,
				 struct pv_error *err)
{
	const json_t *jn = json_object_get(head, "parts");
	const char *eid = json_string_value(json_object_get(head, "id"));
	json_t *doc, *voters, *ballots, *v;
	const char *key;
	size_t i;
	const json_t *part;

	*full = NULL;
	if (!json_is_object(head) || !eid || !json_is_integer(jn) || !json_is_array(parts))
		return pv_error_set(err, PV_ERR_INVALID,
				    "election document head: needs \"id\" and \"parts\"");
	if (json_integer_value(jn) < 0 || (size_t)json_integer_value(jn) != json_array_size(parts))
		return pv_error_set(err, PV_ERR_INVALID,
				    "election document: head announces %lld parts, %zu given",
				    (long long)json_integer_value(jn), json_array_size(parts));
	doc = pv_jobject();
	voters = pv_jarray();
	ballots = pv_jarray();
	json_object_foreach((json_t *)head, key, v)
	{
		if (strcmp(key, "parts") != 0)
			pv_jset(doc, key, json_incref(v));
	}
	json_array_foreach(parts, i, part)
	{
		const json_t *pv = json_object_get(part, "voters");
		const json_t *pb = json_object_get(part, "ballots");
		const char *pe = json_string_value(json_object_get(part, "election_id"));
		const json_t *pk = json_object_get(part, "part");

		if (!pe || strcmp(pe, eid) != 0 || !json_is_integer(pk) ||
		    json_integer_value(pk) != (json_int_t)i + 1 || !json_is_array(pv) ||
		    !json_is_array(pb) || json_object_size(part) != 5 ||
		    !json_is_string(json_object_get(part, "id"))) {
			json_decref(doc);
			json_decref(voters);
			json_decref(ballots);
			return pv_error_set(err, PV_ERR_INVALID,
					    "election document: part %zu of %s is not part %zu of "
					    "this election",
					    i + 1, eid, i + 1);
		}
		if (json_array_extend(voters, (json_t *)pv) != 0 ||
		    json_array_extend(ballots, (json_t *)pb) != 0)
			pv_oom("json_array_extend", 0);
	}
	pv_jset(doc, "voters", voters);
	pv_jset(doc, "ballots", ballots);
	*full = doc;
	return PV_OK;
}
