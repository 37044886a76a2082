/* The Election aggregate: scenarios (tests/data/domain/scenarios/NAME.json,
 * each a list of events with the verdict expected for each, then the
 * expected document, views and results), document round trips, tampered
 * documents, and a large election folded in O(1) per event. */
#include "config.h"

#include "pv_test.h"
#include "domain-test-util.h"

#include "domain/election.h"
#include "domain/event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AT "2024-05-01T09:00:00Z"
#define EID "01HZXE0000000000000000000E"

static void expect_json(const char *what, const json_t *want, const json_t *got)
{
	if (!json_equal(want, got)) {
		char *w = td_dump(want), *g = td_dump(got);

		print_message("# want %s\n# got  %s\n", w, g);
		free(w);
		free(g);
		fail_msg("%s differs", what);
	}
}

/* FULL -> from_json -> FULL gives the same text, and the same results. */
static void expect_roundtrip(const struct pv_election *e, const char *what)
{
	json_t *doc = pv_election_to_json(e, PV_VIEW_FULL), *doc2, *r1, *r2;
	struct pv_election *back = NULL;
	struct pv_error err = {0};
	char *s1, *s2;

	if (pv_election_from_json(doc, &back, &err) != PV_OK)
		fail_msg("%s: document refused: %s", what, err.msg);
	doc2 = pv_election_to_json(back, PV_VIEW_FULL);
	s1 = td_dump(doc);
	s2 = td_dump(doc2);
	if (strcmp(s1, s2) != 0)
		fail_msg("%s: round trip differs:\n# %s\n# %s", what, s1, s2);
	r1 = pv_election_results(e);
	r2 = pv_election_results(back);
	expect_json("results after round trip", r1, r2);
	assert_int_equal(pv_election_version(back), pv_election_version(e));
	assert_int_equal(pv_election_exists(back), pv_election_exists(e));
	assert_int_equal(pv_election_deleted(back), pv_election_deleted(e));
	assert_string_equal(pv_election_status(back), pv_election_status(e));
	free(s1);
	free(s2);
	json_decref(doc);
	json_decref(doc2);
	json_decref(r1);
	json_decref(r2);
	pv_election_free(back);
}

/* Views: public shows no owner, voters or ballots (and no email at all);
 * the owner's view shows voters but no ballots. */
static void expect_views(const struct pv_election *e)
{
	json_t *full = pv_election_to_json(e, PV_VIEW_FULL);
	json_t *own = pv_election_to_json(e, PV_VIEW_OWNER);
	json_t *pub = pv_election_to_json(e, PV_VIEW_PUBLIC);
	char *pubtext = td_dump(pub), *owntext = td_dump(own);
	const json_t *v;
	size_t i;

	assert_non_null(json_object_get(full, "ballots"));
	assert_null(json_object_get(own, "ballots"));
	assert_non_null(json_object_get(own, "voters"));
	assert_non_null(json_object_get(own, "owner"));
	assert_null(json_object_get(pub, "ballots"));
	assert_null(json_object_get(pub, "voters"));
	assert_null(json_object_get(pub, "owner"));
	assert_null(strstr(owntext, "ratings"));
	assert_null(strstr(pubtext, "ratings"));
	assert_null(strstr(pubtext, "@"));
	json_array_foreach(json_object_get(full, "voters"), i, v)
		assert_null(strstr(pubtext, json_string_value(json_object_get(v, "email"))));
	/* Every view carries the version (ETags) and the counts. */
	assert_true(json_equal(json_object_get(pub, "version"), json_object_get(full, "version")));
	assert_true(json_equal(json_object_get(pub, "cast_count"),
			       json_object_get(full, "cast_count")));
	free(pubtext);
	free(owntext);
	json_decref(full);
	json_decref(own);
	json_decref(pub);
}

/* Runs one scenario file; returns the final state. */
static struct pv_election *run_scenario(const char *rel)
{
	json_t *sc = td_load(rel);
	const char *eid = json_string_value(json_object_get(sc, "election_id"));
	const char *owner = json_string_value(json_object_get(sc, "owner"));
	struct pv_election *e = pv_election_new(eid);
	const json_t *jev, *want;
	int64_t number = 0;
	size_t i;

	assert_non_null(eid);
	assert_non_null(owner);
	assert_int_equal(pv_election_version(e), -1);
	json_array_foreach(json_object_get(sc, "events"), i, jev)
	{
		const char *tname = json_string_value(json_object_get(jev, "type"));
		const char *user = json_string_value(json_object_get(jev, "user"));
		const char *at = json_string_value(json_object_get(jev, "at"));
		const json_t *expect = json_object_get(jev, "expect");
		int type = pv_event_type_parse(tname);
		json_t *data = json_deep_copy(json_object_get(jev, "data"));
		struct pv_verdict v;
		struct pv_error err = {0};
		struct pv_event ev;
		enum pv_verdict_kind k;

		if (type < 0)
			fail_msg("%s: event %zu: unknown type %s", rel, i, tname);
		if (!json_object_get(data, "election_id"))
			json_object_set_new(data, "election_id", json_string(eid));
		td_event(&ev, (enum pv_event_type)type, data, user ? user : owner,
			 json_is_true(json_object_get(jev, "admin")), at ? at : AT);
		json_decref(data);
		k = pv_election_check(e, &ev, &v);
		assert_int_equal(k, v.kind);
		if (json_is_string(expect)) {
			if (k != PV_VERDICT_ACCEPTED)
				fail_msg("%s: event %zu (%s): refused %s (%s): %s", rel, i, tname,
					 v.rule, pv_verdict_kind_name(k), v.reason);
			assert_null(v.rule);
			if (pv_election_apply(e, &ev, number, &err) != PV_OK)
				fail_msg("%s: event %zu (%s): apply: %s", rel, i, tname, err.msg);
			assert_int_equal(pv_election_version(e), number);
			number++;
		} else {
			const char *rule = json_string_value(json_object_get(expect, "rule"));
			const char *kind = json_string_value(json_object_get(expect, "kind"));

			if (k == PV_VERDICT_ACCEPTED)
				fail_msg("%s: event %zu (%s): accepted, expected %s", rel, i, tname,
					 rule);
			if (strcmp(v.rule, rule) != 0 || strcmp(pv_verdict_kind_name(k), kind) != 0)
				fail_msg("%s: event %zu (%s): got %s (%s), expected %s (%s): %s",
					 rel, i, tname, v.rule, pv_verdict_kind_name(k), rule, kind,
					 v.reason);
			assert_true(strlen(v.reason) > 0);
			/* apply() enforces the same rules, except who may do it. */
			if (k != PV_VERDICT_AUTHORIZATION) {
				json_t *before = pv_election_to_json(e, PV_VIEW_FULL), *after;
				enum pv_err rc = pv_election_apply(e, &ev, number, &err);

				if (rc == PV_OK)
					fail_msg("%s: event %zu (%s): apply accepted what check "
						 "refused",
						 rel, i, tname);
				assert_int_equal(rc, k == PV_VERDICT_VALUE ? PV_ERR_INVALID
									   : PV_ERR_CONFLICT);
				assert_non_null(strstr(err.msg, rule));
				after = pv_election_to_json(e, PV_VIEW_FULL);
				expect_json("state after a refused apply", before, after);
				json_decref(before);
				json_decref(after);
			}
		}
		pv_event_clear(&ev);
	}
	assert_true(number > 0);
	if ((want = json_object_get(sc, "document"))) {
		json_t *got = pv_election_to_json(e, PV_VIEW_FULL);

		expect_json(rel, want, got);
		json_decref(got);
	}
	if ((want = json_object_get(sc, "public"))) {
		json_t *got = pv_election_to_json(e, PV_VIEW_PUBLIC);

		expect_json("public view", want, got);
		json_decref(got);
	}
	if ((want = json_object_get(sc, "owner_view"))) {
		json_t *got = pv_election_to_json(e, PV_VIEW_OWNER);

		expect_json("owner view", want, got);
		json_decref(got);
	}
	if ((want = json_object_get(sc, "results"))) {
		json_t *got = pv_election_results(e);

		expect_json("results", want, got);
		json_decref(got);
	}
	if ((want = json_object_get(sc, "counts"))) {
		json_t *got = pv_election_to_json(e, PV_VIEW_PUBLIC);
		const char *key;
		const json_t *val;

		json_object_foreach((json_t *)want, key, val)
			assert_true(json_equal(val, json_object_get(got, key)));
		json_decref(got);
	}
	expect_roundtrip(e, rel);
	expect_views(e);
	json_decref(sc);
	return e;
}

static void test_scenarios(void **state)
{
	char **names = td_list("scenarios");
	size_t n = 0;

	for (char **p = names; *p; p++, n++)
		pv_election_free(run_scenario(*p));
	assert_true(n >= 4);
	td_names_free(names);
}

static void test_new_election(void **state)
{
	struct pv_election *e = pv_election_new(EID);
	json_t *doc = pv_election_to_json(e, PV_VIEW_FULL);

	assert_string_equal(pv_election_id(e), EID);
	assert_false(pv_election_exists(e));
	assert_false(pv_election_deleted(e));
	assert_null(pv_election_owner(e));
	assert_string_equal(pv_election_status(e), "new");
	assert_int_equal(json_integer_value(json_object_get(doc, "version")), -1);
	assert_true(json_is_null(json_object_get(doc, "name")));
	expect_roundtrip(e, "new election");
	json_decref(doc);
	pv_election_free(e);
	pv_election_free(NULL);
}

static void test_verdict_words(void **state)
{
	assert_string_equal(pv_verdict_kind_name(PV_VERDICT_ACCEPTED), "accepted");
	assert_string_equal(pv_verdict_kind_name(PV_VERDICT_STATE), "state");
	assert_string_equal(pv_verdict_kind_name(PV_VERDICT_VALUE), "value");
	assert_string_equal(pv_verdict_kind_name(PV_VERDICT_AUTHORIZATION), "authorization");
}

/* Event numbers only go forward: a replayed event is refused, state kept. */
static void test_apply_numbers(void **state)
{
	struct pv_election *e = pv_election_new(EID);
	json_t *d = json_pack("{s:s, s:s}", "election_id", EID, "name", "N");
	struct pv_error err;
	struct pv_event ev, ev2;

	td_event(&ev, PV_EV_ELECTION_CREATED, d, "o@example.org", 0, AT);
	json_decref(d);
	assert_int_equal(pv_election_apply(e, &ev, 5, &err), PV_OK);
	assert_int_equal(pv_election_version(e), 5);
	d = json_pack("{s:s, s:s}", "election_id", EID, "name", "M");
	td_event(&ev2, PV_EV_ELECTION_NAME_CHANGED, d, "o@example.org", 0, AT);
	json_decref(d);
	assert_int_equal(pv_election_apply(e, &ev2, 5, &err), PV_ERR_CONFLICT);
	assert_int_equal(pv_election_apply(e, &ev2, 4, &err), PV_ERR_CONFLICT);
	assert_int_equal(pv_election_apply(e, &ev2, 6, &err), PV_OK);
	/* A second ElectionCreated does not fit, whatever its number. */
	assert_int_equal(pv_election_apply(e, &ev, 7, &err), PV_ERR_CONFLICT);
	assert_non_null(strstr(err.msg, "election_exists"));
	assert_int_equal(pv_election_version(e), 6);
	assert_string_equal(pv_election_owner(e), "o@example.org");
	pv_event_clear(&ev);
	pv_event_clear(&ev2);
	pv_election_free(e);
}

/* Tampered documents: each mutation of a good FULL document is refused. */
static void set_path(json_t *doc, const char *path, json_t *value)
{
	char buf[256], *save = NULL, *tok, *next;
	json_t *cur = doc;

	snprintf(buf, sizeof buf, "%s", path);
	tok = strtok_r(buf, ".", &save);
	while ((next = strtok_r(NULL, ".", &save)) != NULL) {
		cur = json_is_array(cur) ? json_array_get(cur, strtoul(tok, NULL, 10))
					 : json_object_get(cur, tok);
		assert_non_null(cur);
		tok = next;
	}
	if (json_is_array(cur)) {
		if (value)
			json_array_set_new(cur, strtoul(tok, NULL, 10), value);
		else
			json_array_remove(cur, strtoul(tok, NULL, 10));
	} else if (value) {
		json_object_set_new(cur, tok, value);
	} else {
		json_object_del(cur, tok);
	}
}

static void test_document_tampered(void **state)
{
	static const struct {
		const char *path;
		const char *value; /* JSON, NULL = remove */
		const char *needle;
	} cases[] = {
		{"extra", "1", "extra"},
		{"version", NULL, "version"},
		{"version", "\"3\"", "version"},
		{"version", "-2", "version"},
		{"id", "\"nope\"", "id"},
		{"status", "\"archived\"", "status"},
		{"status", "\"draft\"", "status"},
		{"status", "\"new\"", "status"},
		{"opened_at", "null", "status"},
		{"closed_at", "\"yesterday\"", "closed_at"},
		{"name", "\"\"", "name"},
		{"owner", "7", "owner"},
		{"competitions", "{}", "competitions"},
		{"competitions.0.extra", "true", "extra"},
		{"competitions.0.id", "\"01HZXC00000000000000000C02\"", "id"},
		{"competitions.1.candidates.0.id", "\"01HZXK00000000000000000K11\"", "id"},
		{"competitions.0.candidates.0.ratings_count", "99", "ratings_count"},
		{"competitions.0.candidates.0.ratings_sum", "1", "ratings_sum"},
		{"competitions.0.candidates.0.image_url", "\"ftp://x.example.org/a\"", "image_url"},
		{"competitions.0.candidates.0.ratings_count", "-1", "ratings_count"},
		{"voters.0.email", "\"VOTER2@example.org\"", "email"},
		{"voters.1.id", "\"01HZXV00000000000000000V01\"", "id"},
		{"voters.0", NULL, "voter_id"},
		{"voter_count", "7", "voter_count"},
		{"ballot_count", "1", "ballot_count"},
		{"cast_count", "5", "cast_count"},
		{"ballots.0.voter_id", "\"01HZXV00000000000000000V02\"", "voter_id"},
		{"ballots.0.ratings.01HZXK00000000000000000K11", "6", "ratings"},
		{"ballots.0.ratings.01HZXK00000000000000000K11", "null", "ratings"},
		{"ballots.0.ratings.01HZXK00000000000000000K99", "3", "ratings"},
		{"ballots.0.ratings", "[]", "ratings"},
		{"ballots.0.cast", "1", "cast"},
		{"ballots.0.cast", "false", "ratings_count"},
		{"ballots.4.ratings", "{}", "cast"},
		{"ballots.0.id", "\"01HZXK00000000000000000K11\"", "id"},
		{"ballots.0.extra", "1", "extra"},
		{"ballots", "[1]", "ballots[0]"},
	};
	struct pv_election *e = run_scenario("scenarios/voting.json"), *back;
	json_t *good = pv_election_to_json(e, PV_VIEW_FULL);
	struct pv_error err;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *doc = json_deep_copy(good);

		set_path(doc, cases[i].path,
			 cases[i].value ? json_loads(cases[i].value, JSON_DECODE_ANY, NULL) : NULL);
		pv_error_clear(&err);
		back = (struct pv_election *)&err; /* must be reset to NULL */
		if (pv_election_from_json(doc, &back, &err) == PV_OK)
			fail_msg("case %zu (%s): accepted", i, cases[i].path);
		assert_null(back);
		if (err.code != PV_ERR_INVALID || !strstr(err.msg, cases[i].needle))
			fail_msg("case %zu (%s): %s", i, cases[i].path, err.msg);
		json_decref(doc);
	}
	assert_int_not_equal(pv_election_from_json(NULL, &back, &err), PV_OK);
	json_decref(good);
	pv_election_free(e);
}

/* Split into documents of at most max_bytes, joined back: the same text
 * (document and results); broken part sets refused.  Returns the count of
 * documents. */
static size_t expect_split_join(const struct pv_election *e, size_t max_bytes)
{
	json_t *full = pv_election_to_json(e, PV_VIEW_FULL), *split, *parts, *joined, *res;
	json_t *results = pv_election_results(e), *again;
	struct pv_election *back = NULL;
	struct pv_error err;
	char *s1, *s2;
	size_t i, n, counts[PV_DOC__COUNT] = {0}, seen[PV_DOC__COUNT] = {0};
	const json_t *p;

	assert_int_equal(pv_election_doc_split(full, results, max_bytes, &split, &err), PV_OK);
	assert_true(json_array_size(split) >= 1);
	assert_true(pv_election_doc_counts(json_array_get(split, 0), counts));
	parts = json_array();
	json_array_foreach(split, i, p)
	{
		char *text = td_dump(p);

		if (i == 0) {
			assert_null(json_object_get(p, "ballots"));
			assert_null(json_object_get(p, "voters"));
			free(text);
			continue;
		}
		/* Parts fit; the head's size is the projection's to check. */
		assert_true(strlen(text) <= max_bytes);
		free(text);
		for (int l = 0; l < PV_DOC__COUNT; l++)
			if (strcmp(json_string_value(json_object_get(p, "list")),
				   pv_election_doc_lists[l]) == 0)
				seen[l]++;
		json_array_append(parts, (json_t *)p);
	}
	for (int l = 0; l < PV_DOC__COUNT; l++)
		assert_int_equal(seen[l], counts[l]);
	/* The same election, the same documents. */
	assert_int_equal(pv_election_doc_split(full, results, max_bytes, &again, &err), PV_OK);
	assert_true(json_equal(split, again));
	json_decref(again);
	assert_int_equal(pv_election_doc_join(json_array_get(split, 0), parts, PV_DOC_ALL, &joined,
					      &res, &err),
			 PV_OK);
	s1 = td_dump(full);
	s2 = td_dump(joined);
	assert_string_equal(s1, s2);
	free(s1);
	free(s2);
	s1 = td_dump(results);
	s2 = td_dump(res);
	assert_string_equal(s1, s2);
	json_decref(res);
	assert_int_equal(pv_election_from_json(joined, &back, &err), PV_OK);
	pv_election_free(back);
	json_decref(joined);
	for (i = 0; i + 1 < json_array_size(parts); i++) {
		/* Two parts of a list out of order. */
		json_t *swapped = json_copy(parts), *a = json_array_get(parts, i);

		if (!json_equal(json_object_get(a, "list"),
				json_object_get(json_array_get(parts, i + 1), "list"))) {
			json_decref(swapped);
			continue;
		}
		json_array_set(swapped, i, json_array_get(parts, i + 1));
		json_array_set(swapped, i + 1, a);
		assert_int_equal(pv_election_doc_join(json_array_get(split, 0), swapped, PV_DOC_ALL,
						      &joined, NULL, &err),
				 PV_ERR_INVALID);
		assert_null(joined);
		json_decref(swapped);
		break;
	}
	for (i = 0; i < json_array_size(parts); i++) {
		/* Any one part missing. */
		json_t *less = json_copy(parts);

		json_array_remove(less, i);
		assert_int_equal(pv_election_doc_join(json_array_get(split, 0), less, PV_DOC_ALL,
						      &joined, NULL, &err),
				 PV_ERR_INVALID);
		assert_non_null(strstr(err.msg, "part"));
		json_decref(less);
		if (i > 8)
			break;
	}
	if (json_array_size(parts) >= 1) {
		/* A part of another election. */
		json_t *other = json_deep_copy(parts);

		json_object_set_new(json_array_get(other, 0), "election_id",
				    json_string("01HZXE0000000000000000000F"));
		assert_int_equal(pv_election_doc_join(json_array_get(split, 0), other, PV_DOC_ALL,
						      &joined, NULL, &err),
				 PV_ERR_INVALID);
		json_decref(other);
	}
	n = json_array_size(split);
	free(s1);
	free(s2);
	json_decref(parts);
	json_decref(split);
	json_decref(full);
	json_decref(results);
	return n;
}

static void test_split_join(void **state)
{
	struct pv_election *e = run_scenario("scenarios/voting.json");
	struct pv_election *n = pv_election_new(EID);

	json_t *full = pv_election_to_json(e, PV_VIEW_FULL), *res = pv_election_results(e), *docs;
	struct pv_error err;

	(void)state;
	/* One part a list, or many: a budget of 1000 bytes holds a few items. */
	assert_int_equal(expect_split_join(e, 1 << 20), 1 + 4);
	assert_true(expect_split_join(e, 1000) > 1 + 4);
	assert_int_equal(expect_split_join(n, 1 << 20), 1); /* no parts at all */
	/* An item that no part of the budget can hold. */
	assert_int_equal(pv_election_doc_split(full, res, 120, &docs, &err), PV_ERR_TOO_LARGE);
	assert_null(docs);
	assert_non_null(strstr(err.msg, "more than a document of 120 bytes can hold"));
	json_decref(full);
	json_decref(res);
	pv_election_free(e);
	pv_election_free(n);
}

/* 20,000 voters, ballots with three ratings each, cast: every event is
 * checked and applied.  Linear scans per event would take minutes here. */
static void test_big_election(void **state)
{
	enum { N = 20000, NK = 3 };
	struct pv_election *e = pv_election_new(EID);
	struct pv_verdict v;
	struct pv_error err;
	struct pv_event ev;
	char ids[NK + 1][PV_ULID_LEN + 1];
	int64_t number = 0;
	clock_t t0 = clock();
	json_t *d, *res, *doc;
	double secs;

#define FOLD(type, data, user, admin)                                                              \
	do {                                                                                       \
		json_t *d_ = (data);                                                               \
		td_event(&ev, type, d_, user, admin, AT);                                          \
		json_decref(d_);                                                                   \
		if (pv_election_check(e, &ev, &v) != PV_VERDICT_ACCEPTED)                          \
			fail_msg("%s refused: %s", pv_event_type_name(type), v.reason);            \
		assert_int_equal(pv_election_apply(e, &ev, number++, &err), PV_OK);                \
		pv_event_clear(&ev);                                                               \
	} while (0)

	for (int i = 0; i <= NK; i++)
		assert_int_equal(pv_ulid_new(ids[i], &err), PV_OK);
	FOLD(PV_EV_ELECTION_CREATED, json_pack("{s:s,s:s}", "election_id", EID, "name", "Big"),
	     "o@example.org", 0);
	FOLD(PV_EV_COMPETITION_ADDED,
	     json_pack("{s:s,s:s,s:s}", "election_id", EID, "competition_id", ids[0], "name", "C"),
	     "o@example.org", 0);
	for (int k = 1; k <= NK; k++)
		FOLD(PV_EV_CANDIDATE_ADDED,
		     json_pack("{s:s,s:s,s:s,s:s}", "election_id", EID, "competition_id", ids[0],
			       "candidate_id", ids[k], "name", "K"),
		     "o@example.org", 0);
	for (int i = 0; i < N; i++) {
		char vid[PV_ULID_LEN + 1], email[64];

		assert_int_equal(pv_ulid_new(vid, &err), PV_OK);
		snprintf(email, sizeof email, "voter%d@example.org", i);
		FOLD(PV_EV_VOTER_REGISTERED,
		     json_pack("{s:s,s:s,s:s,s:s}", "election_id", EID, "voter_id", vid, "name",
			       "V", "email", email),
		     "o@example.org", 0);
	}
	FOLD(PV_EV_ELECTION_OPENED,
	     json_pack("{s:s,s:s}", "election_id", EID, "open_date", "2024-05-01T10:00:00Z"),
	     "o@example.org", 0);
	doc = pv_election_to_json(e, PV_VIEW_FULL);
	for (int i = 0; i < N; i++) {
		const char *vid = json_string_value(
			json_object_get(json_array_get(json_object_get(doc, "voters"), i), "id"));
		char bid[PV_ULID_LEN + 1], email[64];

		assert_int_equal(pv_ulid_new(bid, &err), PV_OK);
		snprintf(email, sizeof email, "VOTER%d@example.org", i);
		FOLD(PV_EV_BALLOT_CREATED,
		     json_pack("{s:s,s:s,s:s}", "election_id", EID, "ballot_id", bid, "voter_id",
			       vid),
		     email, 0);
		for (int k = 1; k <= NK; k++)
			FOLD(PV_EV_BALLOT_CANDIDATE_RATED,
			     json_pack("{s:s,s:s,s:s,s:s,s:i}", "election_id", EID, "ballot_id",
				       bid, "competition_id", ids[0], "candidate_id", ids[k],
				       "rating", 1 + (i + k) % 5),
			     email, 0);
		FOLD(PV_EV_BALLOT_CAST,
		     json_pack("{s:s,s:s}", "election_id", EID, "ballot_id", bid), email, 0);
	}
	json_decref(doc);
	secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
	print_message("# folded %lld events in %.2f s\n", (long long)number, secs);
	/* Generous for sanitizer builds; quadratic folding takes far longer. */
	assert_true(secs < 60.0);
	res = pv_election_results(e);
	d = json_array_get(json_object_get(json_array_get(json_object_get(res, "competitions"), 0),
					   "candidates"),
			   0);
	assert_int_equal(json_integer_value(json_object_get(d, "count")), N);
	assert_int_equal(json_integer_value(json_object_get(res, "cast_count")), N);
	expect_roundtrip(e, "big election");
	/* Every part stays under the projector's default budget. */
	assert_true(expect_split_join(e, 1024 * 1024) > 1 + 4);
	json_decref(res);
	pv_election_free(e);
#undef FOLD
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scenarios),         cmocka_unit_test(test_new_election),
		cmocka_unit_test(test_verdict_words),     cmocka_unit_test(test_apply_numbers),
		cmocka_unit_test(test_document_tampered), cmocka_unit_test(test_split_join),
		cmocka_unit_test(test_big_election),
	};

	return PV_RUN_TESTS(tests);
}
