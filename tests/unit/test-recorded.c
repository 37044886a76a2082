/* lib/recorded.c: events read back from the store folded into an election,
 * the stand-in metadata for events written by other tools, refusals, and
 * an ElectionCreated after other events (a stream deleted by hand and
 * created anew) starting the election again. */
#include <stdbool.h>
#include <string.h>

#include "domain/election.h"
#include "recorded.h"

#include "pv_test.h"

#define EID "01ARZ3NDEKTSV4RRFFQ69G5FAV"
#define COMP "01ARZ3NDEKTSV4RRFFQ69G5FAW"

/* A stored event as the event store returns it; data is parsed from text. */
static struct pv_es_event stored(int64_t number, const char *type, const char *data,
				 const char *user)
{
	struct pv_es_event r;

	memset(&r, 0, sizeof r);
	r.stream = "Election-" EID;
	r.number = number;
	snprintf(r.id, sizeof r.id, "6f1c2b1e-0000-4000-8000-%012lld", (long long)number);
	r.type = (char *)type;
	r.data = json_loads(data, 0, NULL);
	assert_non_null(r.data);
	r.metadata = user ? json_pack("{s:s, s:b, s:s}", "user", user, "admin", 0, "at",
				      "2026-01-01T00:00:00Z")
			  : json_null();
	r.created = "2026-01-01T00:00:00Z";
	return r;
}

static void stored_clear(struct pv_es_event *r)
{
	json_decref(r->data);
	json_decref(r->metadata);
}

static enum pv_err fold(struct pv_election **e, int64_t number, const char *type, const char *data,
			const char *user, bool *restarted)
{
	struct pv_es_event r = stored(number, type, data, user);
	struct pv_error err;
	enum pv_err rc = pv_recorded_fold(e, &r, restarted, &err);

	stored_clear(&r);
	return rc;
}

static void folds_in_order(void **state)
{
	struct pv_election *e = pv_election_new(EID);
	bool restarted = true;

	assert_int_equal(fold(&e, 0, "ElectionCreated",
			      "{\"election_id\":\"" EID "\",\"name\":\"One\"}", "ann@example.org",
			      &restarted),
			 PV_OK);
	assert_false(restarted);
	assert_int_equal(fold(&e, 1, "CompetitionAdded",
			      "{\"election_id\":\"" EID "\",\"competition_id\":\"" COMP
			      "\",\"name\":\"Hills\"}",
			      "ann@example.org", &restarted),
			 PV_OK);
	assert_false(restarted);
	assert_int_equal(pv_election_version(e), 1);
	assert_string_equal(pv_election_owner(e), "ann@example.org");
	pv_election_free(e);
}

/* Events written by another tool may lack our metadata: they still fold. */
static void folds_without_metadata(void **state)
{
	struct pv_election *e = pv_election_new(EID);
	bool restarted;

	assert_int_equal(fold(&e, 0, "ElectionCreated",
			      "{\"election_id\":\"" EID "\",\"name\":\"One\"}", NULL, &restarted),
			 PV_OK);
	assert_int_equal(pv_election_version(e), 0);
	assert_string_equal(pv_election_status(e), "draft");
	pv_election_free(e);
}

static void refuses_what_is_not_ours(void **state)
{
	struct pv_election *e = pv_election_new(EID);
	bool restarted;

	assert_int_not_equal(fold(&e, 0, "SomethingElse", "{}", "ann@example.org", &restarted),
			     PV_OK);
	assert_int_not_equal(fold(&e, 0, "ElectionCreated", "[1]", "ann@example.org", &restarted),
			     PV_OK);
	assert_false(restarted);
	assert_int_equal(pv_election_version(e), -1);
	pv_election_free(e);
}

/* The stream was deleted by hand and created anew: its numbers go on, and
 * the election before is gone (another owner, no competition). */
static void election_created_again_starts_over(void **state)
{
	struct pv_election *e = pv_election_new(EID);
	bool restarted;

	assert_int_equal(fold(&e, 0, "ElectionCreated",
			      "{\"election_id\":\"" EID "\",\"name\":\"One\"}", "ann@example.org",
			      &restarted),
			 PV_OK);
	assert_int_equal(fold(&e, 1, "CompetitionAdded",
			      "{\"election_id\":\"" EID "\",\"competition_id\":\"" COMP
			      "\",\"name\":\"Hills\"}",
			      "ann@example.org", &restarted),
			 PV_OK);
	assert_int_equal(fold(&e, 2, "ElectionCreated",
			      "{\"election_id\":\"" EID "\",\"name\":\"Two\"}", "bob@example.org",
			      &restarted),
			 PV_OK);
	assert_true(restarted);
	assert_int_equal(pv_election_version(e), 2);
	assert_string_equal(pv_election_owner(e), "bob@example.org");
	assert_string_equal(pv_election_id(e), EID);
	{
		json_t *doc = pv_election_to_json(e, PV_VIEW_FULL);
		json_t *comps = json_object_get(doc, "competitions");

		assert_non_null(doc);
		assert_true(json_is_array(comps));
		assert_int_equal(json_array_size(comps), 0);
		json_decref(doc);
	}
	pv_election_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(folds_in_order),
		cmocka_unit_test(folds_without_metadata),
		cmocka_unit_test(refuses_what_is_not_ours),
		cmocka_unit_test(election_created_again_starts_over),
	};
	return PV_RUN_TESTS(tests);
}
