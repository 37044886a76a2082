/* Event codec: data of every event type (data-driven from
 * tests/data/domain/events/<Type>.json, plus variants generated from each
 * file's field list), the envelope, the metadata and the value checks. */
#include "config.h"

#include "pv_test.h"
#include "domain-test-util.h"

#include "domain/event.h"
#include "domain/stream.h"
#include "domain/table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AT "2024-05-01T10:00:00Z"
#define EID "01HZXE0000000000000000000E"

static int type_index[PV_EV__COUNT];

/* Kinds that are about shape (PV_ERR_JSON) rather than values. */
static enum pv_err expected_code(const char *kind)
{
	static const char *const shape[] = {"not_object", "missing_field", "unknown_field",
					    "invalid_type"};

	for (size_t i = 0; i < sizeof shape / sizeof shape[0]; i++)
		if (strcmp(kind, shape[i]) == 0)
			return PV_ERR_JSON;
	return PV_ERR_INVALID;
}

/* Validates data and compares with expect: NULL = ok, else kind + field. */
static void expect_data(enum pv_event_type type, const json_t *data, const char *kind,
			const char *field, const char *what)
{
	char got_field[PV_FIELD_NAME_MAX];
	enum pv_field_error fe = PV_FIELD_ERR_NONE;
	struct pv_error err = {0};
	enum pv_err rc;

	rc = pv_event_validate_data(type, data, &fe, got_field, &err);
	if (!kind) {
		if (rc != PV_OK)
			fail_msg("%s: %s: expected ok, got %s", pv_event_type_name(type), what,
				 err.msg);
		assert_int_equal(fe, PV_FIELD_ERR_NONE);
		return;
	}
	if (rc == PV_OK)
		fail_msg("%s: %s: expected %s on %s, got ok", pv_event_type_name(type), what, kind,
			 field);
	if (strcmp(pv_field_error_name(fe), kind) != 0 || strcmp(got_field, field) != 0)
		fail_msg("%s: %s: expected %s on %s, got %s on %s (%s)", pv_event_type_name(type),
			 what, kind, field, pv_field_error_name(fe), got_field, err.msg);
	assert_int_equal(rc, expected_code(kind));
	assert_int_equal(err.code, rc);
	/* The message names the field (not_object names none). */
	if (*field && !strstr(err.msg, field))
		fail_msg("%s: %s: message does not name %s: %s", pv_event_type_name(type), what,
			 field, err.msg);
}

static json_t *with(const json_t *base, const char *key, json_t *value)
{
	json_t *d = json_deep_copy(base);

	assert_non_null(d);
	if (value)
		json_object_set_new(d, key, value);
	else
		json_object_del(d, key);
	return d;
}

/* Envelope round trip of a valid event. */
static void roundtrip(enum pv_event_type type, const json_t *data)
{
	struct pv_event ev, back;
	struct pv_error err = {0};
	json_t *j1, *j2;
	char *s1, *s2;

	td_event(&ev, type, data, "owner@example.org", 0, AT);
	assert_string_equal(pv_event_election_id(&ev), EID);
	j1 = pv_event_to_json(&ev);
	if (pv_event_from_json(j1, &back, &err) != PV_OK)
		fail_msg("%s: envelope refused: %s", pv_event_type_name(type), err.msg);
	assert_int_equal(back.type, type);
	assert_string_equal(back.id, ev.id);
	assert_true(json_equal(back.data, data));
	j2 = pv_event_to_json(&back);
	s1 = td_dump(j1);
	s2 = td_dump(j2);
	assert_string_equal(s1, s2);
	free(s1);
	free(s2);
	json_decref(j1);
	json_decref(j2);
	pv_event_clear(&ev);
	pv_event_clear(&back);
}

/* Variants generated from the file's field list: the same for every type. */
static void generated(enum pv_event_type type, const json_t *fields, const json_t *valid)
{
	const char *f;
	const json_t *jk;
	json_t *d;

	json_object_foreach((json_t *)fields, f, jk)
	{
		const char *k = json_string_value(jk);
		bool optional = k[strlen(k) - 1] == '?';
		bool rating = strcmp(k, "rating") == 0;
		char what[128];

		snprintf(what, sizeof what, "%s absent", f);
		d = with(valid, f, NULL);
		expect_data(type, d, optional ? NULL : "missing_field", f, what);
		json_decref(d);

		snprintf(what, sizeof what, "%s null", f);
		d = with(valid, f, json_null());
		expect_data(type, d, optional || rating ? NULL : "invalid_type", f, what);
		json_decref(d);

		snprintf(what, sizeof what, "%s true", f);
		d = with(valid, f, json_true());
		expect_data(type, d, "invalid_type", f, what);
		json_decref(d);

		snprintf(what, sizeof what, "%s 42", f);
		d = with(valid, f, json_integer(42));
		expect_data(type, d, rating ? "invalid_value" : "invalid_type", f, what);
		json_decref(d);

		snprintf(what, sizeof what, "%s object", f);
		d = with(valid, f, json_object());
		expect_data(type, d, "invalid_type", f, what);
		json_decref(d);

		snprintf(what, sizeof what, "%s array", f);
		d = with(valid, f, json_array());
		expect_data(type, d, "invalid_type", f, what);
		json_decref(d);
	}
	d = with(valid, "extra", json_integer(1));
	expect_data(type, d, "unknown_field", "extra", "unknown field");
	json_decref(d);
	d = with(valid, "Election_Id", json_string(EID));
	expect_data(type, d, "unknown_field", "Election_Id", "field name in other case");
	json_decref(d);
	d = with(valid, "type", json_string(pv_event_type_name(type)));
	expect_data(type, d, "unknown_field", "type", "envelope key inside data");
	json_decref(d);

	{
		json_t *not_objects[] = {json_array(), json_string("x"), json_null(),
					 json_integer(1)};

		for (size_t i = 0; i < sizeof not_objects / sizeof not_objects[0]; i++) {
			expect_data(type, not_objects[i], "not_object", "", "not an object");
			json_decref(not_objects[i]);
		}
	}
	expect_data(type, NULL, "not_object", "", "NULL data");
}

static void test_event_type(void **state)
{
	enum pv_event_type type = (enum pv_event_type) * (int *)*state;
	char rel[128];
	const json_t *c, *fields, *valid;
	json_t *doc;
	size_t i, n = 0;

	snprintf(rel, sizeof rel, "events/%s.json", pv_event_type_name(type));
	doc = td_load(rel);
	assert_string_equal(json_string_value(json_object_get(doc, "type")),
			    pv_event_type_name(type));
	fields = json_object_get(doc, "fields");
	valid = json_object_get(doc, "valid");
	assert_true(json_is_object(fields) && json_is_object(valid));
	json_array_foreach(json_object_get(doc, "cases"), i, c)
	{
		const json_t *expect = json_object_get(c, "expect");
		const char *name = json_string_value(json_object_get(c, "name"));

		assert_non_null(name);
		if (json_is_string(expect)) {
			assert_string_equal(json_string_value(expect), "ok");
			expect_data(type, json_object_get(c, "data"), NULL, NULL, name);
			roundtrip(type, json_object_get(c, "data"));
		} else {
			expect_data(type, json_object_get(c, "data"),
				    json_string_value(json_object_get(expect, "kind")),
				    json_string_value(json_object_get(expect, "field")), name);
		}
		n++;
	}
	assert_true(n >= 8);
	generated(type, fields, valid);
	json_decref(doc);
}

static void test_type_names(void **state)
{
	for (int i = 0; i < PV_EV__COUNT; i++) {
		const char *name = pv_event_type_name((enum pv_event_type)i);

		assert_int_equal(pv_event_type_parse(name), i);
		for (int j = 0; j < i; j++)
			assert_string_not_equal(name, pv_event_type_name((enum pv_event_type)j));
	}
	assert_int_equal(PV_EV__COUNT, 19);
	assert_string_equal(pv_event_type_name(PV_EV_BALLOT_CANDIDATE_RATED),
			    "BallotCandidateRated");
	assert_int_equal(pv_event_type_parse("electioncreated"), -1);
	assert_int_equal(pv_event_type_parse("Nope"), -1);
	assert_int_equal(pv_event_type_parse(""), -1);
	assert_int_equal(pv_event_type_parse(NULL), -1);
	assert_string_equal(pv_event_type_name(PV_EV__COUNT), "unknown");
	assert_string_equal(pv_field_error_name(PV_FIELD_ERR_TOO_LONG), "field_too_long");
}

/* Every event file names a type, and every type has its file. */
static void test_event_files(void **state)
{
	char **names = td_list("events");
	int seen[PV_EV__COUNT] = {0};
	size_t n = 0;

	for (char **p = names; *p; p++, n++) {
		json_t *doc = td_load(*p);
		int t = pv_event_type_parse(json_string_value(json_object_get(doc, "type")));

		if (t < 0)
			fail_msg("%s: unknown type", *p);
		seen[t]++;
		json_decref(doc);
	}
	for (int i = 0; i < PV_EV__COUNT; i++)
		assert_int_equal(seen[i], 1);
	assert_int_equal(n, PV_EV__COUNT);
	td_names_free(names);
}

static json_t *envelope(void)
{
	json_error_t jerr;
	json_t *j = json_loads("{\"event_id\": \"6f1c1b8e-2a57-4a8e-9b1e-0c6a4c1d2e3f\","
			       " \"type\": \"ElectionNameChanged\","
			       " \"data\": {\"election_id\": \"" EID "\", \"name\": \"N\"},"
			       " \"metadata\": {\"user\": \"owner@example.org\", \"admin\": true,"
			       " \"at\": \"" AT "\", \"correlation_id\": \"c-1\","
			       " \"source\": \"192.0.2.7\"}}",
			       0, &jerr);

	assert_non_null(j);
	return j;
}

static void test_envelope(void **state)
{
	static const struct {
		const char *path;  /* "key" or "metadata.key" */
		const char *value; /* JSON text, NULL = remove */
		enum pv_err code;
		const char *needle;
	} cases[] = {
		{"event_id", NULL, PV_ERR_JSON, "event_id"},
		{"type", NULL, PV_ERR_JSON, "type"},
		{"data", NULL, PV_ERR_JSON, "data"},
		{"metadata", NULL, PV_ERR_JSON, "metadata"},
		{"extra", "1", PV_ERR_JSON, "extra"},
		{"event_id", "\"nope\"", PV_ERR_INVALID, "event_id"},
		{"event_id", "\"00000000-0000-0000-0000-000000000000\"", PV_ERR_INVALID,
		 "event_id"},
		{"event_id", "7", PV_ERR_INVALID, "event_id"},
		{"type", "\"ElectionRenamed\"", PV_ERR_INVALID, "ElectionRenamed"},
		{"type", "3", PV_ERR_JSON, "type"},
		{"type", "\"ElectionOpened\"", PV_ERR_JSON, "open_date"},
		{"data", "[]", PV_ERR_JSON, "data"},
		{"data", "{\"election_id\": \"" EID "\"}", PV_ERR_JSON, "name"},
		{"data", "{\"election_id\": \"" EID "\", \"name\": \"\"}", PV_ERR_INVALID, "name"},
		{"metadata", "[]", PV_ERR_JSON, "metadata"},
		{"metadata.user", NULL, PV_ERR_JSON, "user"},
		{"metadata.user", "\"\"", PV_ERR_INVALID, "user"},
		{"metadata.user", "\"a\\nb\"", PV_ERR_INVALID, "user"},
		{"metadata.user", "5", PV_ERR_JSON, "user"},
		{"metadata.at", NULL, PV_ERR_JSON, "at"},
		{"metadata.at", "\"now\"", PV_ERR_INVALID, "at"},
		{"metadata.admin", "\"yes\"", PV_ERR_JSON, "admin"},
		{"metadata.extra", "1", PV_ERR_JSON, "extra"},
		{"metadata.correlation_id", "7", PV_ERR_JSON, "correlation_id"},
		{"metadata.correlation_id", "\"\"", PV_ERR_INVALID, "correlation_id"},
		{"metadata.source", "\"a\\u0001b\"", PV_ERR_INVALID, "source"},
	};
	struct pv_error err;
	struct pv_event ev;
	json_t *j;

	/* The reference envelope is fine and round-trips. */
	j = envelope();
	assert_int_equal(pv_event_from_json(j, &ev, &err), PV_OK);
	assert_true(ev.meta.admin);
	assert_string_equal(ev.meta.correlation_id, "c-1");
	assert_string_equal(ev.meta.source, "192.0.2.7");
	{
		json_t *back = pv_event_to_json(&ev);

		assert_true(json_equal(back, j));
		json_decref(back);
	}
	pv_event_clear(&ev);
	json_decref(j);

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *key = cases[i].path;
		json_t *obj;

		j = envelope();
		obj = j;
		if (strncmp(key, "metadata.", 9) == 0) {
			obj = json_object_get(j, "metadata");
			key += 9;
		}
		if (cases[i].value)
			json_object_set_new(obj, key,
					    json_loads(cases[i].value, JSON_DECODE_ANY, NULL));
		else
			json_object_del(obj, key);
		pv_error_clear(&err);
		if (pv_event_from_json(j, &ev, &err) == PV_OK)
			fail_msg("case %zu (%s): accepted", i, cases[i].path);
		if (err.code != cases[i].code || !strstr(err.msg, cases[i].needle))
			fail_msg("case %zu (%s): got %s: %s", i, cases[i].path,
				 pv_err_name(err.code), err.msg);
		/* A refused envelope leaves nothing to free. */
		assert_null(ev.data);
		assert_null(ev.meta.user);
		json_decref(j);
	}
	assert_int_not_equal(pv_event_from_json(NULL, &ev, &err), PV_OK);
}

static void test_meta(void **state)
{
	struct pv_event_meta m = {"voter@example.org", false, AT, NULL, NULL}, back;
	struct pv_error err;
	json_t *j;

	j = pv_event_meta_to_json(&m);
	/* Absent optional members are left out. */
	assert_int_equal(json_object_size(j), 3);
	assert_true(json_is_false(json_object_get(j, "admin")));
	assert_int_equal(pv_event_meta_from_json(j, &back, &err), PV_OK);
	assert_string_equal(back.user, m.user);
	assert_string_equal(back.at, AT);
	assert_false(back.admin);
	assert_null(back.correlation_id);
	assert_null(back.source);
	pv_event_meta_clear(&back);
	/* admin may be absent (false); optional members may be null. */
	json_object_del(j, "admin");
	json_object_set_new(j, "source", json_null());
	assert_int_equal(pv_event_meta_from_json(j, &back, &err), PV_OK);
	assert_false(back.admin);
	assert_null(back.source);
	pv_event_meta_clear(&back);
	json_decref(j);
}

static void test_init(void **state)
{
	struct pv_event_meta m = {"owner@example.org", false, NULL, NULL, NULL};
	struct pv_error err;
	struct pv_event ev;
	json_t *data = json_pack("{s:s, s:s}", "election_id", EID, "name", "N");
	char id[PV_UUID_LEN + 1];

	pv_uuid_new(id);
	/* Without a time the event is stamped now. */
	assert_int_equal(pv_event_init(&ev, id, PV_EV_ELECTION_CREATED, data, &m, &err), PV_OK);
	assert_true(pv_rfc3339_valid(ev.meta.at));
	assert_string_equal(ev.id, id);
	assert_ptr_equal(ev.data, data);
	pv_event_clear(&ev);
	pv_event_clear(&ev); /* clearing twice is harmless */

	/* Refusals take over the data all the same (ASan checks for leaks). */
	data = json_pack("{s:s, s:s}", "election_id", EID, "name", "N");
	assert_int_equal(pv_event_init(&ev, "not-a-uuid", PV_EV_ELECTION_CREATED, data, &m, &err),
			 PV_ERR_INVALID);
	data = json_pack("{s:s}", "election_id", EID);
	assert_int_equal(pv_event_init(&ev, id, PV_EV_ELECTION_CREATED, data, &m, &err),
			 PV_ERR_JSON);
	assert_non_null(strstr(err.msg, "name"));
	m.user = NULL;
	data = json_pack("{s:s, s:s}", "election_id", EID, "name", "N");
	assert_int_equal(pv_event_init(&ev, id, PV_EV_ELECTION_CREATED, data, &m, &err),
			 PV_ERR_INVALID);
	assert_non_null(strstr(err.msg, "user"));
	m.user = "owner@example.org";
	m.at = "2024-05-01";
	data = json_pack("{s:s, s:s}", "election_id", EID, "name", "N");
	assert_int_equal(pv_event_init(&ev, id, PV_EV_ELECTION_CREATED, data, &m, &err),
			 PV_ERR_INVALID);
	assert_non_null(strstr(err.msg, "at"));
	data = json_pack("{s:s}", "election_id", EID);
	assert_int_equal(pv_event_init(&ev, id, PV_EV__COUNT, data, &m, &err), PV_ERR_INVALID);
}

static void test_rfc3339(void **state)
{
	char now[32];
	int64_t a, b;
	long na, nb;

	pv_rfc3339_now(now);
	assert_true(pv_rfc3339_valid(now));
	assert_int_equal(strlen(now), 24);
	assert_true(pv_rfc3339_parse("2024-05-01T12:00:00+02:00", &a, &na));
	assert_true(pv_rfc3339_parse("2024-05-01T10:00:00Z", &b, &nb));
	assert_int_equal(a, b);
	assert_true(pv_rfc3339_parse("1970-01-01T00:00:00Z", &a, &na));
	assert_int_equal(a, 0);
	assert_true(pv_rfc3339_parse("2000-03-01T00:00:01.5Z", &a, &na));
	assert_int_equal(a, 951868801);
	assert_int_equal(na, 500000000);
	assert_true(pv_rfc3339_parse("1969-12-31T23:59:59Z", &a, &na));
	assert_int_equal(a, -1);
	assert_true(pv_rfc3339_valid("2016-12-31T23:59:60Z")); /* leap second */
	assert_false(pv_rfc3339_valid("2024-04-31T00:00:00Z"));
	assert_false(pv_rfc3339_valid("2024-05-01T10:00:00+2:00"));
	assert_false(pv_rfc3339_valid("2024-05-01T10:60:00Z"));
	assert_false(pv_rfc3339_valid(NULL));
	assert_false(pv_rfc3339_valid(""));
}

/* The API's text rule (pv_event_check_text): which characters each kind of
 * field refuses, on data that passed pv_event_validate_data. */
static void test_text_rule(void **state)
{
	static const char eid[] = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
	static const struct {
		enum pv_event_type type;
		const char *field, *value;
		bool ok;
	} cases[] = {
		{PV_EV_ELECTION_NAME_CHANGED, "name", "Photo 2026", true},
		{PV_EV_ELECTION_NAME_CHANGED, "name", "\u05e9\u05dc\u05d5\u05dd", true},
		{PV_EV_ELECTION_NAME_CHANGED, "name",
		 "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", true}, /* ZWNJ in Persian */
		{PV_EV_ELECTION_NAME_CHANGED, "name", "\U0001f468\u200d\U0001f469", true}, /* ZWJ */
		{PV_EV_ELECTION_NAME_CHANGED, "name",
		 "a\xc2\x9b"
		 "b",
		 false}, /* C1 CSI */
		{PV_EV_ELECTION_NAME_CHANGED, "name",
		 "a\xc2\x85"
		 "b",
		 false},                                                          /* C1 NEL */
		{PV_EV_ELECTION_NAME_CHANGED, "name", "abc\u202egpj.exe", false}, /* RLO */
		{PV_EV_ELECTION_NAME_CHANGED, "name", "a\u202ab", false},
		{PV_EV_ELECTION_NAME_CHANGED, "name", "a\u2066b\u2069", false}, /* isolates */
		{PV_EV_ELECTION_NAME_CHANGED, "name", "ad\u200bmin", false},    /* ZWSP */
		{PV_EV_ELECTION_NAME_CHANGED, "name", "a\u200fb", false},       /* RLM */
		{PV_EV_ELECTION_NAME_CHANGED, "name", "a\u2060b", false},       /* word joiner */
		{PV_EV_ELECTION_NAME_CHANGED, "name", "\ufeffPhoto", false},    /* BOM */
		{PV_EV_ELECTION_DESCRIPTION_CHANGED, "description", "line 1\nline 2\tend", true},
		{PV_EV_ELECTION_DESCRIPTION_CHANGED, "description", "RTL \u200f mark \u202e", true},
		{PV_EV_ELECTION_DESCRIPTION_CHANGED, "description", "red \x1b[31m", false},
		{PV_EV_ELECTION_DESCRIPTION_CHANGED, "description", "a\rb", false},
		{PV_EV_ELECTION_DESCRIPTION_CHANGED, "description",
		 "a\x7f"
		 "b",
		 false},
		{PV_EV_ELECTION_DESCRIPTION_CHANGED, "description",
		 "a\xc2\x9b"
		 "b",
		 false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char field[PV_FIELD_NAME_MAX] = "";
		enum pv_field_error fe = PV_FIELD_ERR_NONE;
		struct pv_error err = {0};
		json_t *data =
			json_pack("{s:s,s:s}", "election_id", eid, cases[i].field, cases[i].value);
		enum pv_err rc;

		assert_non_null(data);
		assert_int_equal(pv_event_validate_data(cases[i].type, data, NULL, NULL, &err),
				 PV_OK);
		rc = pv_event_check_text(cases[i].type, data, &fe, field, &err);
		if ((rc == PV_OK) != cases[i].ok)
			fail_msg("case %zu (%s): expected %s, got %s", i, cases[i].field,
				 cases[i].ok ? "ok" : "a refusal", rc == PV_OK ? "ok" : err.msg);
		if (!cases[i].ok) {
			assert_int_equal(fe, PV_FIELD_ERR_BAD_VALUE);
			assert_string_equal(field, cases[i].field);
			assert_non_null(strstr(err.msg, "U+"));
		}
		json_decref(data);
	}
}

static void test_utf8(void **state)
{
	assert_int_equal(pv_utf8_count("abc", 3), 3);
	assert_int_equal(pv_utf8_count("\xc3\xa9t\xc3\xa9", 5), 3);
	assert_int_equal(pv_utf8_count("\xf0\x9f\x93\xb7", 4), 1);
	assert_int_equal(pv_utf8_count("\xc3", 1), -1);         /* truncated */
	assert_int_equal(pv_utf8_count("\xc0\xaf", 2), -1);     /* overlong */
	assert_int_equal(pv_utf8_count("\xed\xa0\x80", 3), -1); /* surrogate */
	assert_int_equal(pv_utf8_count("\xf4\x90\x80\x80", 4), -1);
	assert_int_equal(pv_utf8_count("\x80", 1), -1);
	assert_true(pv_ident_equal("Alice@Example.ORG", "alice@example.org"));
	assert_false(pv_ident_equal("alice@example.org", "alice@example.com"));
	assert_false(pv_ident_equal(NULL, "a"));
}

/* Stream names round-trip; anything else is not an election's stream. */
static void test_stream_names(void **state)
{
	static const char id[] = "01JBZ3N5Q8R9S0T1V2W3X4Y5Z6";
	char name[PV_ELECTION_STREAM_SIZE];

	(void)state;
	pv_election_stream(name, id);
	assert_string_equal(name, "Election-01JBZ3N5Q8R9S0T1V2W3X4Y5Z6");
	assert_string_equal(pv_election_of_stream(name), id);
	assert_null(pv_election_of_stream(NULL));
	assert_null(pv_election_of_stream("Election-"));
	assert_null(pv_election_of_stream("Election-01JBZ3N5Q8R9S0T1V2W3X4Y5Z"));
	assert_null(pv_election_of_stream("Election-01JBZ3N5Q8R9S0T1V2W3X4Y5Z6x"));
	assert_null(pv_election_of_stream("election-01JBZ3N5Q8R9S0T1V2W3X4Y5Z6"));
	assert_null(pv_election_of_stream("Ballot-01JBZ3N5Q8R9S0T1V2W3X4Y5Z6"));
	assert_null(pv_election_of_stream("$ce-Election"));
}

int main(void)
{
#define T(i, label)                                                                                \
	{                                                                                          \
		.name = "event " label, .test_func = test_event_type,                              \
		.initial_state = &type_index[i]                                                    \
	}
	struct CMUnitTest tests[] = {
		T(0, "ElectionCreated"),
		T(1, "ElectionNameChanged"),
		T(2, "ElectionDescriptionChanged"),
		T(3, "ElectionOpened"),
		T(4, "ElectionClosed"),
		T(5, "ElectionDeleted"),
		T(6, "CompetitionAdded"),
		T(7, "CompetitionNameChanged"),
		T(8, "CompetitionDescriptionChanged"),
		T(9, "CompetitionRemoved"),
		T(10, "CandidateAdded"),
		T(11, "CandidateNameChanged"),
		T(12, "CandidateDescriptionChanged"),
		T(13, "CandidateImageChanged"),
		T(14, "CandidateRemoved"),
		T(15, "VoterRegistered"),
		T(16, "BallotCreated"),
		T(17, "BallotCandidateRated"),
		T(18, "BallotCast"),
		cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_event_files),
		cmocka_unit_test(test_envelope),
		cmocka_unit_test(test_meta),
		cmocka_unit_test(test_init),
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_text_rule),
		cmocka_unit_test(test_stream_names),
	};
#undef T
	_Static_assert(PV_EV__COUNT == 19, "one test per event type");

	for (int i = 0; i < PV_EV__COUNT; i++)
		type_index[i] = i;
	return PV_RUN_TESTS(tests);
}
