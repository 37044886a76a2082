/* The kurrentdb backend's own cases: connection strings (no server), and
 * against KurrentDB gRPC stand-ins that tests/kurrentdb/test-kurrentdb-client.sh
 * starts on 127.0.0.1: a follower that names its leader, a server that
 * answers appends late (deadlines), and no server at all.
 *
 *   PV_TEST_KDB_LEADER    kurrentdb://127.0.0.1:P?tls=false
 *   PV_TEST_KDB_FOLLOWER  the same for a stand-in run with --follower <leader>
 *   PV_TEST_KDB_SLOW      a stand-in run with --append-delay-ms 2000
 *   PV_TEST_KDB_DEAD      a port nothing listens on
 *   PV_TEST_KDB_DISCOVER  kurrentdb+discover:// with the dead port and a seed: a
 *                         follower whose "not leader" answers name the dead
 *                         port, whose gossip names a dead leader, then the leader
 *   PV_TEST_KDB_NO_NODE   kurrentdb+discover:// of a node whose gossip names only
 *                         itself, catching up
 *   PV_TEST_KDB_TLS       127.0.0.1:P of a stand-in run with --tls (users admin
 *                         and ops, password changeit)
 *   PV_TEST_KDB_TLS_CA    the CA file that signed its certificate
 *   PV_TEST_KDB_STATS     the leader's --stats file (its calls answered)
 *   PV_TEST_KDB_OLD       a stand-in run with --no-sessions (a server before
 *                         25.1: no AppendSession), and PV_TEST_KDB_OLD_STATS */
#include "pv_test.h"

#include "eventstore.h"
#include "eventstore/kurrentdb_conn.h"
#include "id.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- connection strings ---------------------------------------------------- */

static void conn_string_full(void **state)
{
	struct pv_kdb_conn c;
	struct pv_error err;

	(void)state;
	assert_int_equal(
		pv_kdb_conn_parse("kurrentdb://ad%40min:p%3Ass@node1:2113,node2,[::1]:2114/"
				  "?tls=false&tlsCAFile=%2Fetc%2Fca.pem"
				  "&nodePreference=Follower&defaultDeadline=1500"
				  "&keepAliveInterval=10000",
				  &c, &err),
		PV_OK);
	assert_false(c.discover);
	assert_int_equal(c.host_count, 3);
	assert_string_equal(c.hosts[0].host, "node1");
	assert_int_equal(c.hosts[0].port, 2113);
	assert_string_equal(c.hosts[1].host, "node2");
	assert_int_equal(c.hosts[1].port, 2113);
	assert_string_equal(c.hosts[2].host, "::1");
	assert_int_equal(c.hosts[2].port, 2114);
	assert_string_equal(c.username, "ad@min");
	assert_string_equal(c.password, "p:ss");
	assert_false(c.tls);
	assert_true(c.tls_verify);
	assert_string_equal(c.ca_file, "/etc/ca.pem");
	assert_int_equal(c.node_preference, PV_KDB_NODE_FOLLOWER);
	assert_int_equal(c.deadline_ms, 1500);
	pv_kdb_conn_clear(&c);

	assert_int_equal(pv_kdb_conn_parse("esdb+discover://cluster.example", &c, &err), PV_OK);
	assert_true(c.discover);
	assert_true(c.tls);
	assert_null(c.username);
	assert_int_equal(c.node_preference, PV_KDB_NODE_LEADER);
	assert_int_equal(c.deadline_ms, -1);
	pv_kdb_conn_clear(&c);
	assert_true(pv_kdb_conn_is_string("KurrentDB://h"));
	assert_false(pv_kdb_conn_is_string("https://h:2113"));
}

static void conn_string_errors(void **state)
{
	static const struct {
		const char *s;
		const char *says;
	} bad[] = {
		{"https://h:2113", "must start with"},
		{"kurrentdb://", "no host"},
		{"kurrentdb://h:0", "port"},
		{"kurrentdb://h:70000", "port"},
		{"kurrentdb://h:21x3", "port"},
		{"kurrentdb://h,", "empty host"},
		{"kurrentdb://a:b:c", "two ':'"},
		{"kurrentdb://[::1", "']'"},
		{"kurrentdb://h?tls=maybe", "tls must be true or false"},
		{"kurrentdb://h?nodePreference=nearest", "nodePreference"},
		{"kurrentdb://h?defaultDeadline=-5", "defaultDeadline"},
		{"kurrentdb://h?tls", "key=value"},
		{"kurrentdb://user@h", "user:password@"},
		{"kurrentdb://u:p%zz@h", "%-escape"},
		{"kurrentdb://h/x", "'?'"},
		{"kurrentdb://h o", "host name"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct pv_kdb_conn c;
		struct pv_error err;
		enum pv_err rc = pv_kdb_conn_parse(bad[i].s, &c, &err);
		if (rc != PV_ERR_CONFIG || !strstr(err.msg, bad[i].says))
			fail_msg("%s: %d %s", bad[i].s, rc, rc ? err.msg : "(accepted)");
		/* The password never shows. */
		assert_null(strstr(err.msg, "p%zz"));
	}
}

/* ---- against stand-ins ---------------------------------------------------------- */

static struct pv_es *open_url(const char *var)
{
	const char *url = getenv(var);
	struct pv_es_options o = {.backend = "kurrentdb", .url = url, .timeout_ms = 5000};
	struct pv_es *es = NULL;
	struct pv_error err;

	if (!url)
		fail_msg("%s is not set", var);
	if (pv_es_open(&o, &es, &err) != PV_OK)
		fail_msg("open %s: %s", url, err.msg);
	return es;
}

static char *fresh_stream(void)
{
	char ulid[PV_ULID_LEN + 1];
	struct pv_error err;

	assert_int_equal(pv_ulid_new(ulid, &err), PV_OK);
	return pv_xasprintf("Kdb%s-s", ulid);
}

static void one_event(struct pv_es_new_event *ev, char id[PV_UUID_LEN + 1], json_t **data)
{
	pv_uuid_new(id);
	*data = json_pack("{s:i}", "n", 1);
	*ev = (struct pv_es_new_event){id, "Voted", *data, NULL};
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A follower answers "not leader" with the leader's address; the append
 * goes there and the event is on the leader. */
static void not_leader_leads_to_the_leader(void **state)
{
	struct pv_es *follower = open_url("PV_TEST_KDB_FOLLOWER");
	struct pv_es *leader = open_url("PV_TEST_KDB_LEADER");
	char *stream = fresh_stream(), id[PV_UUID_LEN + 1];
	struct pv_es_new_event ev;
	struct pv_es_page page;
	struct pv_error err;
	json_t *data;
	int64_t v = -5;

	(void)state;
	one_event(&ev, id, &data);
	if (pv_es_append(follower, stream, PV_ES_NO_STREAM, &ev, 1, &v, &err) != PV_OK)
		fail_msg("append through the follower: %s", err.msg);
	assert_int_equal(v, 0);
	assert_int_equal(pv_es_read_stream(leader, stream, 0, 10, false, &page, &err), PV_OK);
	assert_int_equal(page.count, 1);
	assert_string_equal(page.events[0].id, id);
	pv_es_page_clear(&page);
	/* The store now talks to the leader: reads find the event too. */
	assert_int_equal(pv_es_read_stream(follower, stream, 0, 10, false, &page, &err), PV_OK);
	assert_int_equal(page.count, 1);
	pv_es_page_clear(&page);
	json_decref(data);
	free(stream);
	pv_es_close(follower);
	pv_es_close(leader);
}

/* The deadline goes in grpc-timeout: a server that has not answered by
 * then ends the call with DEADLINE_EXCEEDED, named. */
static void a_late_answer_is_a_timeout(void **state)
{
	const char *base = getenv("PV_TEST_KDB_SLOW");
	char *url = pv_xasprintf("%s&defaultDeadline=400", base ? base : "");
	struct pv_es_options o = {.backend = "kurrentdb", .url = url, .timeout_ms = 5000};
	struct pv_es *es;
	char *stream = fresh_stream(), id[PV_UUID_LEN + 1];
	struct pv_es_new_event ev;
	struct pv_error err;
	json_t *data;
	int64_t v, t0, took;

	(void)state;
	assert_int_equal(pv_es_open(&o, &es, &err), PV_OK);
	one_event(&ev, id, &data);
	t0 = now_ms();
	assert_int_equal(pv_es_append(es, stream, PV_ES_NO_STREAM, &ev, 1, &v, &err),
			 PV_ERR_TIMEOUT);
	took = now_ms() - t0;
	if (!strstr(err.msg, "DEADLINE_EXCEEDED") && !strstr(err.msg, "deadline"))
		fail_msg("not named: %s", err.msg);
	assert_true(took >= 350);
	assert_true(took < 1900); /* the server would have answered at 2000 ms */
	json_decref(data);
	free(stream);
	free(url);
	pv_es_close(es);
}

static void no_server_is_unavailable(void **state)
{
	struct pv_es *es = open_url("PV_TEST_KDB_DEAD");
	struct pv_es_page page;
	struct pv_error err;

	(void)state;
	assert_int_equal(pv_es_read_stream(es, "Election-x", 0, 1, false, &page, &err),
			 PV_ERR_UNAVAILABLE);
	if (!strstr(err.msg, "libcurl"))
		fail_msg("not named: %s", err.msg);
	pv_es_close(es);
}

/* The category feed in pages of 3 over appends of 1, 1, 3 and 1 events: a
 * page never ends inside an append, and no event is missed or repeated.
 * (A page holding the record it resumed from looked short, so its last
 * append went untrimmed and the next page, starting inside that append,
 * lost the append's last event.) */
static void category_pages_keep_appends_whole(void **state)
{
	static const size_t sizes[] = {1, 1, 3, 1};
	struct pv_es *es = open_url("PV_TEST_KDB_LEADER");
	char *stream = fresh_stream(), *category, ids[6][PV_UUID_LEN + 1];
	size_t seen = 0, k = 0;
	struct pv_error err;
	int64_t from = 0;

	(void)state;
	category = pv_xstrdup(stream);
	*strchr(category, '-') = '\0';
	for (size_t a = 0; a < sizeof sizes / sizeof sizes[0]; a++) {
		struct pv_es_new_event evs[3];
		json_t *data[3];
		char *name = pv_xasprintf("%s-%zu", category, a);
		int64_t v;

		for (size_t i = 0; i < sizes[a]; i++, k++)
			one_event(&evs[i], ids[k], &data[i]);
		if (pv_es_append(es, name, PV_ES_NO_STREAM, evs, sizes[a], &v, &err) != PV_OK)
			fail_msg("append to %s: %s", name, err.msg);
		for (size_t i = 0; i < sizes[a]; i++)
			json_decref(data[i]);
		free(name);
	}
	for (int pages = 0; pages < 20; pages++) {
		struct pv_es_page page;

		if (pv_es_read_category(es, category, from, 3, 0, &page, &err) != PV_OK)
			fail_msg("read the category from %lld: %s", (long long)from, err.msg);
		for (size_t i = 0; i < page.count; i++, seen++) {
			assert_true(seen < k);
			assert_string_equal(page.events[i].id, ids[seen]);
		}
		from = page.next;
		pv_es_page_clear(&page);
		if (seen == k)
			break;
	}
	assert_int_equal(seen, k);
	free(category);
	free(stream);
	pv_es_close(es);
}

/* ---- TLS and credentials (the stand-in's --tls) ------------------------------ */

static char *tls_url(const char *userinfo, const char *query)
{
	const char *at = getenv("PV_TEST_KDB_TLS");

	if (!at)
		fail_msg("PV_TEST_KDB_TLS is not set");
	return pv_xasprintf("kurrentdb://%s%s?%s", userinfo, at, query);
}

static char *ca_query(void)
{
	const char *ca = getenv("PV_TEST_KDB_TLS_CA");

	if (!ca)
		fail_msg("PV_TEST_KDB_TLS_CA is not set");
	return pv_xasprintf("tlsCAFile=%s", ca);
}

/* Appends one event to a new stream through url: the outcome, err set. */
static enum pv_err append_through(const char *url, struct pv_error *err)
{
	struct pv_es_options o = {.backend = "kurrentdb", .url = url, .timeout_ms = 5000};
	struct pv_es *es = NULL;
	char *stream = fresh_stream(), id[PV_UUID_LEN + 1];
	struct pv_es_new_event ev;
	json_t *data;
	enum pv_err rc;
	int64_t v;

	rc = pv_es_open(&o, &es, err);
	if (rc == PV_OK) {
		one_event(&ev, id, &data);
		rc = pv_es_append(es, stream, PV_ES_NO_STREAM, &ev, 1, &v, err);
		json_decref(data);
	}
	pv_es_close(es);
	free(stream);
	return rc;
}

/* TLS with the CA, Basic credentials: appends and reads, several calls on
 * one store (a connection that ALPN made HTTP/2 is reused). */
static void tls_with_credentials(void **state)
{
	char *q = ca_query(), *url = tls_url("admin:changeit@", q);
	struct pv_es_options o = {.backend = "kurrentdb", .url = url, .timeout_ms = 5000};
	char *stream = fresh_stream(), ids[3][PV_UUID_LEN + 1];
	struct pv_es *es;
	struct pv_es_page page;
	struct pv_error err;
	json_t *data;
	int64_t v;

	(void)state;
	if (pv_es_open(&o, &es, &err) != PV_OK)
		fail_msg("open over TLS: %s", err.msg);
	for (int i = 0; i < 3; i++) {
		struct pv_es_new_event ev;

		one_event(&ev, ids[i], &data);
		if (pv_es_append(es, stream, i - 1, &ev, 1, &v, &err) != PV_OK)
			fail_msg("append %d over TLS: %s", i, err.msg);
		assert_int_equal(v, i);
		json_decref(data);
	}
	if (pv_es_read_stream(es, stream, 0, 10, false, &page, &err) != PV_OK)
		fail_msg("read over TLS: %s", err.msg);
	assert_int_equal(page.count, 3);
	for (int i = 0; i < 3; i++)
		assert_string_equal(page.events[i].id, ids[i]);
	pv_es_page_clear(&page);
	pv_es_close(es);
	free(stream);
	free(url);
	free(q);
}

/* Many calls in a row on the one TLS connection each succeed: libcurl 7.88
 * failed about every thousandth of them with "Error in the HTTP2 framing
 * layer" on the kept connection, and the appender retried its whole batch
 * with backoff; the call now goes again once on a new connection.  2,500
 * calls cross that point twice. */
static void many_calls_on_one_connection(void **state)
{
	char *q = ca_query(), *url = tls_url("admin:changeit@", q);
	struct pv_es_options o = {.backend = "kurrentdb", .url = url, .timeout_ms = 5000};
	const char *env = getenv("PV_TEST_KDB_CALLS");
	int calls = env ? atoi(env) : 2500;
	struct pv_es *es;
	struct pv_error err;

	(void)state;
	if (pv_es_open(&o, &es, &err) != PV_OK)
		fail_msg("open over TLS: %s", err.msg);
	for (int i = 0; i < calls; i++) {
		char *stream = fresh_stream(), id[PV_UUID_LEN + 1];
		struct pv_es_new_event ev;
		json_t *data;
		int64_t v;

		one_event(&ev, id, &data);
		if (pv_es_append(es, stream, PV_ES_NO_STREAM, &ev, 1, &v, &err) != PV_OK)
			fail_msg("call %d of %d: %s", i + 1, calls, err.msg);
		json_decref(data);
		free(stream);
	}
	pv_es_close(es);
	free(url);
	free(q);
}

/* A unit's appends and checks go out at once (HTTP/2 streams over TLS, a
 * connection each without), and each stream's verdict stays its own: a
 * wrong expected version among 200 streams is that stream's conflict, with
 * its current version, and every other stream is appended; the same unit
 * sent again is answered as the first (idempotent); a check names the
 * stream that moved. */
static void unit_at_once(const char *url)
{
	struct pv_es_options o = {.backend = "kurrentdb", .url = url, .timeout_ms = 5000};
	enum { N = 200, TAKEN = 137 };
	struct pv_es_append_req reqs[N];
	struct pv_es_expect x[N];
	struct pv_es_new_event evs[N][2];
	char *streams[N], ids[N][2][PV_UUID_LEN + 1];
	json_t *data[N][2];
	struct pv_es *es;
	struct pv_error err;
	size_t failed = 0;
	int64_t v;

	if (pv_es_open(&o, &es, &err) != PV_OK)
		fail_msg("open %s: %s", url, err.msg);
	for (int i = 0; i < N; i++) {
		streams[i] = fresh_stream();
		for (int j = 0; j < 2; j++)
			one_event(&evs[i][j], ids[i][j], &data[i][j]);
		reqs[i] = (struct pv_es_append_req){streams[i], PV_ES_NO_STREAM, evs[i], 2, 0, 0};
	}
	/* Someone else wrote to one of them first. */
	if (pv_es_append(es, streams[TAKEN], PV_ES_NO_STREAM, &evs[TAKEN][1], 1, &v, &err) != PV_OK)
		fail_msg("the first writer: %s", err.msg);
	assert_int_equal(pv_es_append_many(es, reqs, N, &failed, &err), PV_ERR_CONFLICT);
	assert_int_equal(failed, TAKEN);
	assert_int_equal(reqs[TAKEN].version, 0);
	assert_non_null(strstr(err.msg, streams[TAKEN]));
	for (int i = 0; i < N; i++) {
		struct pv_es_page page;

		if (i == TAKEN)
			continue;
		if (pv_es_read_stream(es, streams[i], 0, 10, false, &page, &err) != PV_OK)
			fail_msg("read %s: %s", streams[i], err.msg);
		assert_int_equal(page.count, 2);
		assert_string_equal(page.events[0].id, ids[i][0]);
		assert_string_equal(page.events[1].id, ids[i][1]);
		pv_es_page_clear(&page);
	}
	/* Sent again without the conflict: the 199 are recognised, the one is appended. */
	reqs[TAKEN].expected = 0;
	if (pv_es_append_many(es, reqs, N, &failed, &err) != PV_OK)
		fail_msg("the unit again: %s (request %zu)", err.msg, failed);
	for (int i = 0; i < N; i++) {
		assert_int_equal(reqs[i].version, i == TAKEN ? 2 : 1);
		x[i] = (struct pv_es_expect){streams[i], reqs[i].version};
	}
	if (pv_es_check_versions(es, x, N, &failed, &err) != PV_OK)
		fail_msg("check: %s (stream %zu)", err.msg, failed);
	x[42].version = 0;
	assert_int_equal(pv_es_check_versions(es, x, N, &failed, &err), PV_ERR_CONFLICT);
	assert_int_equal(failed, 42);
	assert_non_null(strstr(err.msg, "now 1"));
	for (int i = 0; i < N; i++) {
		json_decref(data[i][0]);
		json_decref(data[i][1]);
		free(streams[i]);
	}
	pv_es_close(es);
}

static void unit_at_once_h2c(void **state)
{
	(void)state;
	unit_at_once(getenv("PV_TEST_KDB_LEADER"));
}

static void unit_at_once_tls(void **state)
{
	char *q = ca_query(), *url = tls_url("admin:changeit@", q);

	(void)state;
	unit_at_once(url);
	free(url);
	free(q);
}

/* +discover: the dead seed is passed over, the live seed's gossip is read,
 * its dead leader passed over and the live one used.  The seed's own "not
 * leader" answers lead nowhere, so the append lands on the leader only
 * through gossip. */
static void discover_finds_the_leader(void **state)
{
	struct pv_es *es = open_url("PV_TEST_KDB_DISCOVER"),
		     *leader = open_url("PV_TEST_KDB_LEADER");
	char *stream = fresh_stream(), id[PV_UUID_LEN + 1];
	struct pv_es_new_event ev;
	struct pv_es_page page;
	struct pv_error err;
	json_t *data;
	int64_t v;

	(void)state;
	one_event(&ev, id, &data);
	if (pv_es_append(es, stream, PV_ES_NO_STREAM, &ev, 1, &v, &err) != PV_OK)
		fail_msg("append through gossip: %s", err.msg);
	if (pv_es_read_stream(leader, stream, 0, 10, false, &page, &err) != PV_OK)
		fail_msg("read on the leader: %s", err.msg);
	assert_int_equal(page.count, 1);
	assert_string_equal(page.events[0].id, id);
	pv_es_page_clear(&page);
	json_decref(data);
	pv_es_close(leader);
	pv_es_close(es);
	free(stream);
}

/* No seed names a live node of the kind wanted: the call fails at once,
 * unavailable, and says why. */
static void discover_without_a_node(void **state)
{
	struct pv_es *es = open_url("PV_TEST_KDB_NO_NODE");
	char *stream = fresh_stream(), id[PV_UUID_LEN + 1];
	struct pv_es_new_event ev;
	struct pv_error err;
	json_t *data;
	int64_t v;

	(void)state;
	one_event(&ev, id, &data);
	assert_int_equal(pv_es_append(es, stream, PV_ES_NO_STREAM, &ev, 1, &v, &err),
			 PV_ERR_UNAVAILABLE);
	print_message("# %s\n", err.msg);
	assert_non_null(strstr(err.msg, "no node found through 1 gossip seed(s)"));
	assert_non_null(strstr(err.msg, "none of the 1 member(s) is a live node of the kind "
					"nodePreference=leader takes"));
	json_decref(data);
	pv_es_close(es);
	free(stream);
}

/* A wrong password is UNAUTHENTICATED and says so, without the password;
 * no credentials at all are the anonymous user's, refused PERMISSION_DENIED. */
static void credentials_refused(void **state)
{
	char *q = ca_query(), *wrong = tls_url("admin:s3cret-wrong@", q), *none = tls_url("", q);
	struct pv_error err;
	enum pv_err rc;

	(void)state;
	rc = append_through(wrong, &err);
	if (rc != PV_ERR_UNAUTHORIZED || !strstr(err.msg, "UNAUTHENTICATED") ||
	    !strstr(err.msg, "password of user admin"))
		fail_msg("a wrong password: %d %s", rc, rc ? err.msg : "(accepted)");
	assert_null(strstr(err.msg, "s3cret"));
	printf("# a wrong password: %s\n", err.msg);
	rc = append_through(none, &err);
	if (rc != PV_ERR_FORBIDDEN || !strstr(err.msg, "Access Denied") ||
	    !strstr(err.msg, "anonymous"))
		fail_msg("no credentials: %d %s", rc, rc ? err.msg : "(accepted)");
	printf("# no credentials: %s\n", err.msg);
	free(wrong);
	free(none);
	free(q);
}

/* The server's certificate is checked: without the CA that signed it the
 * call fails naming TLS; tlsVerifyCert=false takes it; and speaking
 * plain HTTP/2 to a TLS port, or TLS to a plain one, fails and says so. */
static void tls_verification(void **state)
{
	char *unknown_ca = tls_url("admin:changeit@", "tls=true"),
	     *unverified = tls_url("admin:changeit@", "tlsVerifyCert=false"),
	     *plain = tls_url("admin:changeit@", "tls=false"),
	     *to_plain = pv_xasprintf("%s", getenv("PV_TEST_KDB_LEADER"));
	struct pv_error err;
	enum pv_err rc;
	char *q;

	(void)state;
	rc = append_through(unknown_ca, &err);
	if (rc == PV_OK || !strstr(err.msg, "SSL certificate problem") ||
	    !strstr(err.msg, "tlsCAFile="))
		fail_msg("an unknown CA: %d %s", rc, rc ? err.msg : "(accepted)");
	printf("# an unknown CA: %s\n", err.msg);
	rc = append_through(unverified, &err);
	if (rc != PV_OK)
		fail_msg("tlsVerifyCert=false: %s", err.msg);
	rc = append_through(plain, &err);
	if (rc == PV_OK)
		fail_msg("plain HTTP/2 to a TLS port was accepted");
	printf("# plain HTTP/2 to a TLS port: %s\n", err.msg);
	/* The leader's string with tls=false taken out: TLS to a plain port. */
	q = strstr(to_plain, "?tls=false");
	assert_non_null(q);
	*q = '\0';
	rc = append_through(to_plain, &err);
	if (rc == PV_OK || (!strstr(err.msg, "SSL") && !strstr(err.msg, "TLS")))
		fail_msg("TLS to a plain port: %d %s", rc, rc ? err.msg : "(accepted)");
	printf("# TLS to a plain port: %s\n", err.msg);
	free(unknown_ca);
	free(unverified);
	free(plain);
	free(to_plain);
}

/* ---- multi-stream appends (AppendSession) ---------------------------------------- */

/* The calls a stand-in answered, from its --stats file, once it has caught
 * up with ours (it writes the file twice a second). */
struct calls {
	json_int_t appends, sessions;
};

static struct calls calls_of(const char *var)
{
	const char *file = getenv(var);
	struct calls c = {-1, -1};
	json_t *j;

	if (!file)
		fail_msg("%s is not set", var);
	usleep(1100 * 1000);
	j = json_load_file(file, 0, NULL);
	if (!j || json_unpack(j, "{s:I,s:I}", "appends", &c.appends, "sessions", &c.sessions) != 0)
		fail_msg("%s: no appends and sessions in it", file);
	json_decref(j);
	return c;
}

/* A unit of n fresh streams, each with `per` events of the given data and
 * metadata; freed by unit_free. */
struct unit {
	size_t n, per;
	struct pv_es_append_req *reqs;
	struct pv_es_new_event *evs;
	char **streams;
	char (*ids)[PV_UUID_LEN + 1];
};

static void unit_make(struct unit *u, size_t n, size_t per, json_t *data, json_t *meta)
{
	u->n = n;
	u->per = per;
	u->reqs = pv_xcalloc(n, sizeof *u->reqs);
	u->evs = pv_xcalloc(n * per, sizeof *u->evs);
	u->streams = pv_xcalloc(n, sizeof *u->streams);
	u->ids = pv_xcalloc(n * per, sizeof *u->ids);
	for (size_t i = 0; i < n; i++) {
		u->streams[i] = fresh_stream();
		for (size_t e = 0; e < per; e++) {
			pv_uuid_new(u->ids[i * per + e]);
			u->evs[i * per + e] =
				(struct pv_es_new_event){u->ids[i * per + e], "Voted", data, meta};
		}
		u->reqs[i] = (struct pv_es_append_req){
			u->streams[i], PV_ES_NO_STREAM, &u->evs[i * per], per, 0, 0};
	}
}

static void unit_free(struct unit *u)
{
	for (size_t i = 0; i < u->n; i++)
		free(u->streams[i]);
	free(u->streams);
	free(u->reqs);
	free(u->evs);
	free(u->ids);
}

/* Each stream holds the unit's events, data and metadata as sent. */
static void unit_reads_back(struct pv_es *es, const struct unit *u)
{
	for (size_t i = 0; i < u->n; i++) {
		struct pv_es_page page;
		struct pv_error err;

		if (pv_es_read_stream(es, u->streams[i], 0, 100, false, &page, &err) != PV_OK)
			fail_msg("read %s: %s", u->streams[i], err.msg);
		assert_int_equal(page.count, u->per);
		for (size_t e = 0; e < u->per; e++) {
			const struct pv_es_new_event *sent = &u->evs[i * u->per + e];
			const struct pv_es_event *got = &page.events[e];
			assert_string_equal(got->id, sent->id);
			assert_string_equal(got->type, "Voted");
			assert_true(json_equal(got->data, sent->data));
			if (sent->metadata)
				assert_true(json_equal(got->metadata, sent->metadata));
			else
				assert_true(json_is_null(got->metadata));
		}
		pv_es_page_clear(&page);
	}
}

/* The unit is appended (each stream from nothing) with the calls the
 * stand-in whose stats are in stats_var answered: `sessions` AppendSession
 * and `appends` Append calls; then it reads back as sent. */
static void unit_goes_in(struct pv_es *es, struct unit *u, const char *stats_var,
			 json_int_t sessions, json_int_t appends)
{
	struct calls before = calls_of(stats_var), after;
	struct pv_error err;
	size_t failed = 0;

	if (pv_es_append_many(es, u->reqs, u->n, &failed, &err) != PV_OK)
		fail_msg("append_many: %s (request %zu)", err.msg, failed);
	for (size_t i = 0; i < u->n; i++)
		assert_int_equal(u->reqs[i].version, (int64_t)u->per - 1);
	after = calls_of(stats_var);
	assert_int_equal(after.sessions - before.sessions, sessions);
	assert_int_equal(after.appends - before.appends, appends);
	unit_reads_back(es, u);
}

/* A unit goes in one AppendSession where the server offers it: one call,
 * no Append; its metadata (strings, booleans, integers, null, nested)
 * reads back as sent, without the schema keys the server adds.  Sent again
 * it is recognised (idempotent) in one call. */
static void unit_in_one_session(void **state)
{
	struct pv_es *es = open_url("PV_TEST_KDB_LEADER");
	json_t *data = json_pack("{s:s,s:i}", "candidate", "c1", "rating", 4);
	json_t *meta = json_pack("{s:s,s:b,s:s,s:s,s:I,s:{s:[i,s,n,b]}}", "user", "alice", "admin",
				 0, "at", "2026-12-07T02:00:00.000Z", "source", "api", "n",
				 (json_int_t)999999999999999LL, "more", "a", -7, "x", 1);
	struct unit u;

	(void)state;
	unit_make(&u, 30, 2, data, meta);
	unit_goes_in(es, &u, "PV_TEST_KDB_STATS", 1, 0);
	unit_goes_in(es, &u, "PV_TEST_KDB_STATS", 1, 0);
	unit_free(&u);
	json_decref(data);
	json_decref(meta);
	pv_es_close(es);
}

/* A follower answers a session "not leader" too: it goes to the leader
 * named, in one call there. */
static void a_session_through_the_follower(void **state)
{
	struct pv_es *es = open_url("PV_TEST_KDB_FOLLOWER");
	json_t *data = json_pack("{s:i}", "n", 1);
	json_t *meta = json_pack("{s:s}", "user", "erin");
	struct unit u;

	(void)state;
	unit_make(&u, 3, 1, data, meta);
	unit_goes_in(es, &u, "PV_TEST_KDB_STATS", 1, 0);
	unit_free(&u);
	json_decref(data);
	json_decref(meta);
	pv_es_close(es);
}

/* Metadata that would not come back the same from properties (a real
 * number: 2.0 would read as 2) goes in one Append call per stream. */
static void inexact_metadata_goes_per_stream(void **state)
{
	struct pv_es *es = open_url("PV_TEST_KDB_LEADER");
	json_t *data = json_pack("{s:i}", "n", 1);
	json_t *meta = json_pack("{s:s,s:f}", "user", "bob", "score", 2.0);
	struct unit u;

	(void)state;
	unit_make(&u, 5, 1, data, meta);
	unit_goes_in(es, &u, "PV_TEST_KDB_STATS", 0, 5);
	unit_free(&u);
	json_decref(data);
	json_decref(meta);
	pv_es_close(es);
}

/* A unit over a session's 1 MiB goes in two sessions. */
static void a_large_unit_in_two_sessions(void **state)
{
	struct pv_es *es = open_url("PV_TEST_KDB_LEADER");
	char *big = pv_xcalloc(200 * 1024 + 1, 1);
	json_t *data;
	struct unit u;

	(void)state;
	memset(big, 'p', 200 * 1024);
	data = json_pack("{s:s}", "photo", big);
	unit_make(&u, 8, 1, data, NULL);
	unit_goes_in(es, &u, "PV_TEST_KDB_STATS", 2, 0);
	unit_free(&u);
	json_decref(data);
	free(big);
	pv_es_close(es);
}

/* A session the server refuses (a tombstoned stream in it) writes nothing;
 * its streams go again one call each, which gives each its own verdict:
 * the tombstoned one is gone, the others are appended. */
static void a_refused_session_gives_each_stream_its_verdict(void **state)
{
	struct pv_es *es = open_url("PV_TEST_KDB_LEADER");
	json_t *data = json_pack("{s:i}", "n", 1);
	json_t *meta = json_pack("{s:s}", "user", "carol");
	struct pv_error err;
	struct calls before, after;
	struct unit u;
	size_t failed = 0;
	int64_t v;

	(void)state;
	unit_make(&u, 5, 1, data, meta);
	/* Stream 3 was written and deleted for good by someone else. */
	if (pv_es_append(es, u.streams[3], PV_ES_NO_STREAM, &u.evs[3], 1, &v, &err) != PV_OK ||
	    pv_es_delete_stream(es, u.streams[3], 0, true, &err) != PV_OK)
		fail_msg("tombstone %s: %s", u.streams[3], err.msg);
	before = calls_of("PV_TEST_KDB_STATS");
	assert_int_equal(pv_es_append_many(es, u.reqs, u.n, &failed, &err), PV_ERR_GONE);
	assert_int_equal(failed, 3);
	after = calls_of("PV_TEST_KDB_STATS");
	assert_int_equal(after.sessions - before.sessions, 1);
	assert_int_equal(after.appends - before.appends, 5);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(u.reqs[i].version, 0);
	unit_free(&u);
	json_decref(data);
	json_decref(meta);
	pv_es_close(es);
}

/* A server that offers no AppendSession (before 25.1), and the option
 * that turns sessions off: one Append call per stream. */
static void no_sessions_where_not_offered_or_turned_off(void **state)
{
	struct pv_es_options o = {.backend = "kurrentdb",
				  .url = getenv("PV_TEST_KDB_LEADER"),
				  .timeout_ms = 5000,
				  .one_call_per_stream = true};
	struct pv_es *es = open_url("PV_TEST_KDB_OLD"), *off = NULL;
	json_t *data = json_pack("{s:i}", "n", 1);
	json_t *meta = json_pack("{s:s}", "user", "dave");
	struct pv_error err;
	struct unit u, w;

	(void)state;
	unit_make(&u, 5, 1, data, meta);
	unit_goes_in(es, &u, "PV_TEST_KDB_OLD_STATS", 0, 5);
	assert_int_equal(calls_of("PV_TEST_KDB_OLD_STATS").sessions, 0);

	if (pv_es_open(&o, &off, &err) != PV_OK)
		fail_msg("open: %s", err.msg);
	unit_make(&w, 5, 1, data, meta);
	unit_goes_in(off, &w, "PV_TEST_KDB_STATS", 0, 5);
	unit_free(&u);
	unit_free(&w);
	json_decref(data);
	json_decref(meta);
	pv_es_close(es);
	pv_es_close(off);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(conn_string_full),
		cmocka_unit_test(conn_string_errors),
		cmocka_unit_test(not_leader_leads_to_the_leader),
		cmocka_unit_test(a_late_answer_is_a_timeout),
		cmocka_unit_test(no_server_is_unavailable),
		cmocka_unit_test(category_pages_keep_appends_whole),
		cmocka_unit_test(tls_with_credentials),
		cmocka_unit_test(many_calls_on_one_connection),
		cmocka_unit_test(discover_finds_the_leader),
		cmocka_unit_test(discover_without_a_node),
		cmocka_unit_test(unit_at_once_h2c),
		cmocka_unit_test(unit_at_once_tls),
		cmocka_unit_test(credentials_refused),
		cmocka_unit_test(tls_verification),
		cmocka_unit_test(unit_in_one_session),
		cmocka_unit_test(a_session_through_the_follower),
		cmocka_unit_test(inexact_metadata_goes_per_stream),
		cmocka_unit_test(a_large_unit_in_two_sessions),
		cmocka_unit_test(a_refused_session_gives_each_stream_its_verdict),
		cmocka_unit_test(no_sessions_where_not_offered_or_turned_off),
	};
	return PV_RUN_TESTS(tests);
}
