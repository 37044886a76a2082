/* What only the postgres backend promises, beyond the conformance suite:
 * it survives a lost connection, a lock wait ends at the configured
 * timeout, and event data is stored as the text that was sent.  Needs
 * PV_TEST_PG_CONNINFO naming a migrated database (pg-backend.sh). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eventstore.h"
#include "eventstore/pg.h"
#include "id.h"
#include "pgutil.h"
#include "xalloc.h"

#include "pv_test.h"

static const char *conninfo;

static struct pv_es *open_store(long timeout_ms)
{
	struct pv_es_options opts = {
		.backend = "postgres", .pg_conninfo = conninfo, .timeout_ms = timeout_ms};
	struct pv_error err;
	struct pv_es *es;

	if (pv_es_open(&opts, &es, &err) != PV_OK)
		fail_msg("%s", err.msg);
	return es;
}

static PGconn *admin(void)
{
	struct pv_error err;
	PGconn *conn;

	if (pv_pg_connect(conninfo, &conn, &err) != PV_OK)
		fail_msg("%s", err.msg);
	return conn;
}

static void sql(PGconn *conn, const char *text)
{
	struct pv_error err;

	if (pv_pg_command(conn, "test", text, &err) != PV_OK)
		fail_msg("%s", err.msg);
}

static char *fresh_stream(void)
{
	char ulid[PV_ULID_LEN + 1];

	assert_int_equal(pv_ulid_new(ulid, NULL), PV_OK);
	return pv_xasprintf("pg%s-s", ulid);
}

static enum pv_err append_one(struct pv_es *es, const char *stream, json_t *data,
			      struct pv_error *err)
{
	char id[PV_UUID_LEN + 1];
	int64_t v;

	pv_uuid_new(id);
	struct pv_es_new_event ev = {id, "Probe", data, NULL};
	return pv_es_append(es, stream, PV_ES_ANY, &ev, 1, &v, err);
}

static enum pv_err append_probe(struct pv_es *es, const char *stream, struct pv_error *err)
{
	json_t *data = json_object();
	enum pv_err rc = append_one(es, stream, data, err);

	json_decref(data);
	return rc;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void survives_a_lost_connection(void **state)
{
	struct pv_es *es = open_store(0);
	char *stream = fresh_stream();
	json_t *data = json_pack("{s:i}", "n", 1);
	struct pv_es_page page;
	struct pv_error err;
	PGconn *conn = admin();
	PGresult *res;

	assert_int_equal(append_one(es, stream, data, &err), PV_OK);
	/* Every other session of this database ends, ours among them. */
	assert_int_equal(pv_pg_exec(conn, "terminate",
				    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
				    " WHERE datname = current_database()"
				    " AND pid <> pg_backend_pid()",
				    0, NULL, &res, &err),
			 PV_OK);
	assert_true(atoi(PQgetvalue(res, 0, 0)) >= 1);
	PQclear(res);
	/* The next append notices, reconnects and succeeds. */
	if (append_one(es, stream, data, &err) != PV_OK)
		fail_msg("append after terminate: %s", err.msg);
	assert_int_equal(pv_es_read_stream(es, stream, 0, 10, false, &page, &err), PV_OK);
	assert_int_equal(page.count, 2);
	pv_es_page_clear(&page);

	/* A reader too, also one that was listening. */
	char *cat = pv_xstrndup(stream, strcspn(stream, "-"));
	assert_int_equal(pv_es_read_category(es, cat, 2, 10, 100, &page, &err), PV_OK);
	assert_int_equal(page.count, 0);
	pv_es_page_clear(&page);
	assert_int_equal(pv_pg_exec(conn, "terminate",
				    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
				    " WHERE datname = current_database()"
				    " AND pid <> pg_backend_pid()",
				    0, NULL, NULL, &err),
			 PV_OK);
	assert_int_equal(pv_es_read_category(es, cat, 0, 10, 100, &page, &err), PV_OK);
	assert_int_equal(page.count, 2);
	pv_es_page_clear(&page);
	free(cat);

	PQfinish(conn);
	json_decref(data);
	free(stream);
	pv_es_close(es);
}

static void lock_wait_ends_at_the_timeout(void **state)
{
	struct pv_es *es = open_store(300);
	char *stream = fresh_stream();
	json_t *data = json_pack("{s:i}", "n", 1);
	struct pv_error err;
	PGconn *conn = admin();
	int64_t t0, took;
	char *lock;

	assert_int_equal(append_one(es, stream, data, &err), PV_OK);
	lock = pv_xasprintf("BEGIN; SELECT 1 FROM es_streams WHERE name = '%s' FOR UPDATE", stream);
	sql(conn, lock);
	t0 = now_ms();
	assert_int_equal(append_one(es, stream, data, &err), PV_ERR_TIMEOUT);
	took = now_ms() - t0;
	assert_true(took >= 250);
	assert_true(took < 5000);
	assert_non_null(strstr(err.msg, "57014"));
	sql(conn, "ROLLBACK");
	/* The handle is fine afterwards. */
	assert_int_equal(append_one(es, stream, data, &err), PV_OK);
	free(lock);
	PQfinish(conn);
	json_decref(data);
	free(stream);
	pv_es_close(es);
}

static void data_is_stored_as_sent(void **state)
{
	struct pv_es *es = open_store(0);
	char *stream = fresh_stream();
	json_t *data = json_pack("{s:i, s:s, s:{s:b, s:n}}", "zulu", 1, "alpha",
				 "\xc3\xa9t\xc3\xa9", "mike", "y", 1, "b", "z");
	const char *params[1] = {stream};
	struct pv_error err;
	PGconn *conn = admin();
	PGresult *res;
	char *want = json_dumps(data, JSON_COMPACT);

	assert_int_equal(append_one(es, stream, data, &err), PV_OK);
	assert_int_equal(pv_pg_exec(conn, "raw",
				    "SELECT data::text, metadata IS NULL, position"
				    " FROM es_events WHERE stream = $1",
				    1, params, &res, &err),
			 PV_OK);
	assert_int_equal(PQntuples(res), 1);
	assert_string_equal(PQgetvalue(res, 0, 0), want);
	assert_string_equal(PQgetvalue(res, 0, 1), "t");
	assert_string_equal(PQgetvalue(res, 0, 2), "0");
	PQclear(res);
	free(want);
	PQfinish(conn);
	json_decref(data);
	free(stream);
	pv_es_close(es);
}

/* Events for pv_es_pg_append_many: n of them, data {"i": k, "s": text}. */
struct many_events {
	char ids[4][PV_UUID_LEN + 1];
	json_t *data[4];
	struct pv_es_new_event ev[4];
};

static void many_events_make(struct many_events *m, size_t n, const char *text)
{
	assert_true(n <= 4);
	for (size_t k = 0; k < n; k++) {
		pv_uuid_new(m->ids[k]);
		m->data[k] = json_pack("{s:i, s:s}", "i", (int)k, "s", text);
		m->ev[k] = (struct pv_es_new_event){m->ids[k], "Probe", m->data[k], NULL};
	}
}

static void many_events_clear(struct many_events *m, size_t n)
{
	for (size_t k = 0; k < n; k++)
		json_decref(m->data[k]);
}

static void append_many_writes_each_stream(void **state)
{
	struct pv_es *es = open_store(0);
	char *old = fresh_stream(), *fresh = fresh_stream();
	/* Tabs, newlines and backslashes travel through COPY's escapes. */
	const char *text = "tab\there, line\nend, back\\slash, quote\", \xc3\xa9t\xc3\xa9";
	struct many_events a, b;
	struct pv_error err;
	struct pv_es_page page = {0};
	size_t failed = 99;

	assert_int_equal(append_probe(es, old, &err), PV_OK);
	many_events_make(&a, 2, text);
	many_events_make(&b, 3, text);
	struct pv_es_pg_append req[2] = {
		{.stream = fresh, .expected = PV_ES_NO_STREAM, .events = b.ev, .count = 3},
		{.stream = old, .expected = 0, .events = a.ev, .count = 2},
	};
	assert_int_equal(pv_es_pg_begin(es, &err), PV_OK);
	assert_int_equal(pv_es_pg_append_many(es, req, 2, &failed, &err), PV_OK);
	assert_int_equal(pv_es_pg_commit(es, &err), PV_OK);
	assert_int_equal(req[0].version, 2);
	assert_int_equal(req[1].version, 2);

	assert_int_equal(pv_es_read_stream(es, old, 0, 10, false, &page, &err), PV_OK);
	assert_int_equal(page.count, 3);
	for (size_t k = 1; k < 3; k++) {
		assert_int_equal(page.events[k].number, (int64_t)k);
		assert_string_equal(page.events[k].id, a.ids[k - 1]);
		assert_true(json_equal(page.events[k].data, a.data[k - 1]));
	}
	pv_es_page_clear(&page);
	assert_int_equal(pv_es_read_stream(es, fresh, 0, 10, false, &page, &err), PV_OK);
	assert_int_equal(page.count, 3);
	assert_string_equal(json_string_value(json_object_get(page.events[2].data, "s")), text);
	pv_es_page_clear(&page);

	many_events_clear(&a, 2);
	many_events_clear(&b, 3);
	free(old);
	free(fresh);
	pv_es_close(es);
}

static void append_many_refuses_a_stale_or_deleted_stream(void **state)
{
	struct pv_es *es = open_store(0);
	char *live = fresh_stream(), *other = fresh_stream(), *gone = fresh_stream();
	struct many_events a;
	struct pv_error err;
	struct pv_es_page page = {0};
	size_t failed = 99;

	assert_int_equal(append_probe(es, live, &err), PV_OK);
	assert_int_equal(append_probe(es, live, &err), PV_OK);
	assert_int_equal(append_probe(es, gone, &err), PV_OK);
	assert_int_equal(pv_es_delete_stream(es, gone, PV_ES_ANY, true, &err), PV_OK);
	many_events_make(&a, 1, "x");

	/* live is at 1, not 0: a conflict naming it, and nothing written. */
	struct pv_es_pg_append req[2] = {
		{.stream = other, .expected = PV_ES_NO_STREAM, .events = a.ev, .count = 1},
		{.stream = live, .expected = 0, .events = a.ev, .count = 1},
	};
	assert_int_equal(pv_es_pg_begin(es, &err), PV_OK);
	assert_int_equal(pv_es_pg_append_many(es, req, 2, &failed, &err), PV_ERR_CONFLICT);
	pv_es_pg_rollback(es);
	assert_int_equal(failed, 1);
	assert_int_equal(req[1].version, 1);
	assert_non_null(strstr(err.msg, live));
	assert_int_equal(pv_es_read_stream(es, other, 0, 10, false, &page, &err), PV_ERR_NOT_FOUND);

	/* A new stream that exists after all is a conflict too. */
	req[1] = (struct pv_es_pg_append){
		.stream = live, .expected = PV_ES_NO_STREAM, .events = a.ev, .count = 1};
	assert_int_equal(pv_es_pg_begin(es, &err), PV_OK);
	assert_int_equal(pv_es_pg_append_many(es, &req[1], 1, &failed, &err), PV_ERR_CONFLICT);
	pv_es_pg_rollback(es);
	assert_int_equal(req[1].version, 1);

	/* Deleted for good: gone. */
	req[1] =
		(struct pv_es_pg_append){.stream = gone, .expected = 0, .events = a.ev, .count = 1};
	assert_int_equal(pv_es_pg_begin(es, &err), PV_OK);
	assert_int_equal(pv_es_pg_append_many(es, req, 2, &failed, &err), PV_ERR_GONE);
	pv_es_pg_rollback(es);
	assert_int_equal(failed, 1);

	/* Named twice, or outside a transaction: refused before any work. */
	req[1] = req[0];
	assert_int_equal(pv_es_pg_begin(es, &err), PV_OK);
	assert_int_equal(pv_es_pg_append_many(es, req, 2, &failed, &err), PV_ERR_INVALID);
	pv_es_pg_rollback(es);
	assert_int_equal(pv_es_pg_append_many(es, req, 1, &failed, &err), PV_ERR_INVALID);
	assert_int_equal(pv_es_read_stream(es, other, 0, 10, false, &page, &err), PV_ERR_NOT_FOUND);

	many_events_clear(&a, 1);
	free(live);
	free(other);
	free(gone);
	pv_es_close(es);
}

/* As a single append does (and EventStoreDB): a soft-deleted stream is
 * created again with expected -1, its numbers going on from its last one;
 * expected at its old number it is a conflict (it has no events now). */
static void append_many_continues_a_soft_deleted_stream(void **state)
{
	struct pv_es *es = open_store(0);
	char *soft = fresh_stream(), *fresh = fresh_stream();
	struct many_events a, b;
	struct pv_error err;
	struct pv_es_page page = {0};
	size_t failed = 99;

	for (int k = 0; k < 3; k++)
		assert_int_equal(append_probe(es, soft, &err), PV_OK);
	assert_int_equal(pv_es_delete_stream(es, soft, PV_ES_ANY, false, &err), PV_OK);
	many_events_make(&a, 2, "again");
	many_events_make(&b, 1, "new");

	struct pv_es_pg_append req[2] = {
		{.stream = soft, .expected = 2, .events = a.ev, .count = 2},
		{.stream = fresh, .expected = PV_ES_NO_STREAM, .events = b.ev, .count = 1},
	};
	assert_int_equal(pv_es_pg_begin(es, &err), PV_OK);
	assert_int_equal(pv_es_pg_append_many(es, req, 2, &failed, &err), PV_ERR_CONFLICT);
	pv_es_pg_rollback(es);
	assert_int_equal(failed, 0);

	req[0].expected = PV_ES_NO_STREAM;
	assert_int_equal(pv_es_pg_begin(es, &err), PV_OK);
	assert_int_equal(pv_es_pg_append_many(es, req, 2, &failed, &err), PV_OK);
	assert_int_equal(pv_es_pg_commit(es, &err), PV_OK);
	assert_true(req[0].continued);
	assert_int_equal(req[0].version, 4);
	assert_false(req[1].continued);
	assert_int_equal(req[1].version, 0);

	assert_int_equal(pv_es_read_stream(es, soft, 0, 10, false, &page, &err), PV_OK);
	assert_int_equal(page.count, 2);
	for (size_t k = 0; k < 2; k++) {
		assert_int_equal(page.events[k].number, (int64_t)k + 3);
		assert_string_equal(page.events[k].id, a.ids[k]);
	}
	pv_es_page_clear(&page);

	/* Live again: the next append expects its number, as any stream's. */
	many_events_clear(&b, 1);
	many_events_make(&b, 1, "next");
	req[0] =
		(struct pv_es_pg_append){.stream = soft, .expected = 4, .events = b.ev, .count = 1};
	assert_int_equal(pv_es_pg_begin(es, &err), PV_OK);
	assert_int_equal(pv_es_pg_append_many(es, req, 1, &failed, &err), PV_OK);
	assert_int_equal(pv_es_pg_commit(es, &err), PV_OK);
	assert_false(req[0].continued);
	assert_int_equal(req[0].version, 5);

	many_events_clear(&a, 2);
	many_events_clear(&b, 1);
	free(soft);
	free(fresh);
	pv_es_close(es);
}

static void check_versions_sees_where_streams_are(void **state)
{
	struct pv_es *es = open_store(0);
	char *live = fresh_stream(), *none = fresh_stream(), *soft = fresh_stream(),
	     *hard = fresh_stream();
	struct pv_error err;
	size_t failed = 99;

	for (int k = 0; k < 3; k++)
		assert_int_equal(append_probe(es, live, &err), PV_OK);
	assert_int_equal(append_probe(es, soft, &err), PV_OK);
	assert_int_equal(pv_es_delete_stream(es, soft, PV_ES_ANY, false, &err), PV_OK);
	assert_int_equal(append_probe(es, hard, &err), PV_OK);
	assert_int_equal(pv_es_delete_stream(es, hard, PV_ES_ANY, true, &err), PV_OK);

	struct pv_es_pg_expect x[3] = {{live, 2}, {none, -1}, {soft, -1}};
	assert_int_equal(pv_es_pg_check_versions(es, x, 3, &failed, &err), PV_ERR_INVALID);
	assert_int_equal(pv_es_pg_begin(es, &err), PV_OK);
	assert_int_equal(pv_es_pg_check_versions(es, x, 3, &failed, &err), PV_OK);
	x[0].version = 1;
	assert_int_equal(pv_es_pg_check_versions(es, x, 3, &failed, &err), PV_ERR_CONFLICT);
	assert_int_equal(failed, 0);
	assert_non_null(strstr(err.msg, live));
	x[0].version = 2;
	x[1] = (struct pv_es_pg_expect){hard, -1};
	assert_int_equal(pv_es_pg_check_versions(es, x, 3, &failed, &err), PV_ERR_CONFLICT);
	assert_int_equal(failed, 1);
	x[1] = (struct pv_es_pg_expect){none, 0};
	assert_int_equal(pv_es_pg_check_versions(es, x, 3, &failed, &err), PV_ERR_CONFLICT);
	assert_int_equal(failed, 1);
	pv_es_pg_rollback(es);

	free(live);
	free(none);
	free(soft);
	free(hard);
	pv_es_close(es);
}

/* One text value of a query on conn. */
static char *one_value(PGconn *conn, const char *query)
{
	struct pv_error err;
	PGresult *res;
	char *out;

	if (pv_pg_exec(conn, "test", query, 0, NULL, &res, &err) != PV_OK)
		fail_msg("%s: %s", query, err.msg);
	out = pv_xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return out;
}

static void sql_value_is(PGconn *conn, const char *query, const char *want)
{
	char *got = one_value(conn, query);

	assert_string_equal(got, want);
	free(got);
}

/* Our sessions commit synchronously whatever the server's or the database's
 * default: a commit the appender acks to the broker survives a crash of
 * PostgreSQL (the chaos test lost a verdict to synchronous_commit = off and
 * an immediate stop).  Also after a reconnect by pv_pg_ensure. */
static void sessions_commit_synchronously(void **state)
{
	PGconn *conn = admin(), *ours;
	struct pv_error err;
	PGresult *res;
	char *pid;

	(void)state;
	sql(conn, "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = off',"
		  " current_database()); END $$");
	if (pv_pg_connect(conninfo, &ours, &err) != PV_OK)
		fail_msg("%s", err.msg);
	sql_value_is(ours, "SELECT reset_val FROM pg_settings WHERE name = 'synchronous_commit'",
		     "off");
	sql_value_is(ours, "SHOW synchronous_commit", "on");

	pid = pv_xasprintf("SELECT pg_terminate_backend(%d)::text", PQbackendPID(ours));
	sql_value_is(conn, pid, "true");
	free(pid);
	/* The next query finds the connection gone; pv_pg_ensure makes it again. */
	assert_int_not_equal(pv_pg_exec(ours, "test", "SELECT 1", 0, NULL, &res, &err), PV_OK);
	assert_int_equal(pv_pg_ensure(ours, &err), PV_OK);
	sql_value_is(ours, "SHOW synchronous_commit", "on");

	sql(conn, "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I RESET synchronous_commit',"
		  " current_database()); END $$");
	PQfinish(ours);
	PQfinish(conn);
}

static void bad_options_are_named(void **state)
{
	struct pv_es_options opts = {.backend = "postgres"};
	struct pv_error err;
	struct pv_es *es = (struct pv_es *)1;

	assert_int_equal(pv_es_open(&opts, &es, &err), PV_ERR_CONFIG);
	assert_null(es);
	opts.backend = "nosuch";
	assert_int_equal(pv_es_open(&opts, &es, &err), PV_ERR_CONFIG);
	assert_non_null(strstr(err.msg, "nosuch"));
	opts = (struct pv_es_options){.backend = "postgres",
				      .pg_conninfo = "host=127.0.0.1 port=1 connect_timeout=5"};
	assert_int_equal(pv_es_open(&opts, &es, &err), PV_ERR_UNAVAILABLE);
	assert_null(es);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(survives_a_lost_connection),
		cmocka_unit_test(lock_wait_ends_at_the_timeout),
		cmocka_unit_test(data_is_stored_as_sent),
		cmocka_unit_test(append_many_writes_each_stream),
		cmocka_unit_test(append_many_refuses_a_stale_or_deleted_stream),
		cmocka_unit_test(append_many_continues_a_soft_deleted_stream),
		cmocka_unit_test(check_versions_sees_where_streams_are),
		cmocka_unit_test(bad_options_are_named),
		cmocka_unit_test(sessions_commit_synchronously),
	};

	conninfo = getenv("PV_TEST_PG_CONNINFO");
	if (!conninfo) {
		printf("1..0 # SKIP PV_TEST_PG_CONNINFO is not set\n");
		return 0;
	}
	return PV_RUN_TESTS(tests);
}
