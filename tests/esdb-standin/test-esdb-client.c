/* The esdb backend against the EventStoreDB stand-in, on 127.0.0.1.
 *
 * Most tests share one stand-in (python3 esdb-standin.py 0); the others
 * start their own so that faults, header generations, TLS and AtomPub being
 * off can be tried in isolation.  The stand-in's test-only /_standin/faults
 * route injects 500s, delays, dropped connections and lost answers.
 * Needs $top_srcdir. */
#include "pv_test.h"

#include "eventstore.h"
#include "eventstore/esdb.h"
#include "id.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct standin {
	pid_t pid;
	int port;
	char url[64];
};

/* Starts a stand-in with up to 4 options (NULL-terminated list or NULL). */
static void standin_start(struct standin *s, const char *const *opts)
{
	const char *srcdir = getenv("top_srcdir");
	char script[1024], line[128];
	int fds[2];
	FILE *f;

	snprintf(script, sizeof script, "%s/tests/esdb-standin/esdb-standin.py",
		 srcdir ? srcdir : ".");
	assert_int_equal(pipe(fds), 0);
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0) {
		const char *argv[8] = {"python3", script, "0"};
		for (int i = 0; opts && opts[i] && i < 4; i++)
			argv[3 + i] = opts[i];
		/* A failed assertion must not leave the server running. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execvp("python3", (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	f = fdopen(fds[0], "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof line, f));
	fclose(f);
	assert_int_equal(sscanf(line, "listening on 127.0.0.1:%d", &s->port), 1);
	snprintf(s->url, sizeof s->url, "%s://127.0.0.1:%d",
		 opts && opts[0] && strcmp(opts[0], "--tls-cert") == 0 ? "https" : "http", s->port);
}

static void standin_stop(struct standin *s)
{
	int status;

	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		waitpid(s->pid, &status, 0);
		s->pid = 0;
	}
}

/* Most tests share one stand-in (python starts slowly on a loaded
 * machine); each uses its own stream and category names. */
static struct standin shared;

static struct standin *shared_standin(void)
{
	if (shared.pid == 0)
		standin_start(&shared, NULL);
	return &shared;
}

static size_t sink(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

/* POSTs a fault setting to the stand-in's control route. */
static void standin_faults(struct standin *s, const char *json)
{
	char url[128];
	CURL *c = curl_easy_init();
	long status = 0;

	assert_non_null(c);
	snprintf(url, sizeof url, "%s/_standin/faults", s->url);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	assert_int_equal(status, 200);
	curl_easy_cleanup(c);
}

/* A counter of the stand-in: "requests" (the control route not counted)
 * or "connections". */
static long standin_counter(struct standin *s, const char *name)
{
	char url[128], buf[512] = "";
	FILE *f;
	long n = -1;
	const char *p;
	CURL *c = curl_easy_init();

	assert_non_null(c);
	f = fmemopen(buf, sizeof buf - 1, "w");
	assert_non_null(f);
	snprintf(url, sizeof url, "%s/_standin/faults", s->url);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	fclose(f);
	curl_easy_cleanup(c);
	snprintf(url, sizeof url, "\"%s\": ", name);
	p = strstr(buf, url);
	assert_non_null(p);
	n = strtol(p + strlen(url), NULL, 10);
	return n;
}

static struct pv_es *open_store(struct standin *s, const char *user, const char *pw,
				long timeout_ms)
{
	struct pv_es_options o = {.backend = "esdb",
				  .url = s->url,
				  .username = user,
				  .password = pw,
				  .timeout_ms = timeout_ms};
	struct pv_es *es = NULL;
	struct pv_error err = {0};

	assert_int_equal(pv_es_esdb_open(&o, &es, &err), PV_OK);
	assert_non_null(es);
	return es;
}

/* Appends n events {"i": k} (k = base..base+n-1) with fresh ids. */
static enum pv_err append_n(struct pv_es *es, const char *stream, int64_t expected, int n, int base,
			    int64_t *version, struct pv_error *err)
{
	struct pv_es_new_event ev[8];
	char ids[8][PV_UUID_LEN + 1];
	json_t *data[8];
	enum pv_err code;

	assert_true(n <= 8);
	for (int i = 0; i < n; i++) {
		pv_uuid_new(ids[i]);
		data[i] = json_pack("{s:i, s:s}", "i", base + i, "name",
				    "Wahl \xc3\xa9t\xc3\xa9 \xe2\x9c\x93");
		ev[i] = (struct pv_es_new_event){.id = ids[i], .type = "Tested", .data = data[i]};
	}
	code = pv_es_append(es, stream, expected, ev, (size_t)n, version, err);
	for (int i = 0; i < n; i++)
		json_decref(data[i]);
	return code;
}

static void test_append_and_read(void **state)
{
	struct standin *s = shared_standin();
	struct pv_es *es;
	struct pv_es_page page;
	struct pv_error err = {0};
	int64_t v = -99;
	/* Non-ASCII and reserved characters in the name must survive the URL. */
	const char *stream = "Election-\xc3\xa9lection 1/2?#%";

	es = open_store(s, "admin", "changeit", 5000);
	assert_int_equal(append_n(es, stream, PV_ES_NO_STREAM, 3, 0, &v, &err), PV_OK);
	assert_int_equal(v, 2);
	assert_int_equal(append_n(es, stream, 2, 2, 3, &v, &err), PV_OK);
	assert_int_equal(v, 4);

	assert_int_equal(pv_es_read_stream(es, stream, 0, 3, false, &page, &err), PV_OK);
	assert_int_equal(page.count, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(page.events[i].number, (int64_t)i);
		assert_int_equal(page.events[i].position, -1);
		assert_string_equal(page.events[i].stream, stream);
		assert_string_equal(page.events[i].type, "Tested");
		assert_int_equal(json_integer_value(json_object_get(page.events[i].data, "i")), i);
		assert_string_equal(json_string_value(json_object_get(page.events[i].data, "name")),
				    "Wahl \xc3\xa9t\xc3\xa9 \xe2\x9c\x93");
		assert_true(json_is_null(page.events[i].metadata));
		assert_true(pv_uuid_valid(page.events[i].id));
		assert_true(strlen(page.events[i].created) >= 20);
	}
	assert_false(page.end_of_stream);
	assert_int_equal(page.next, 3);
	pv_es_page_clear(&page);

	assert_int_equal(pv_es_read_stream(es, stream, 3, 10, false, &page, &err), PV_OK);
	assert_int_equal(page.count, 2);
	assert_true(page.end_of_stream);
	assert_int_equal(page.next, 5);
	pv_es_page_clear(&page);

	/* Backward from the head, two at a time, then to event 0. */
	assert_int_equal(pv_es_read_stream(es, stream, -1, 2, true, &page, &err), PV_OK);
	assert_int_equal(page.count, 2);
	assert_int_equal(page.events[0].number, 4);
	assert_int_equal(page.events[1].number, 3);
	assert_false(page.end_of_stream);
	assert_int_equal(page.next, 2);
	pv_es_page_clear(&page);
	assert_int_equal(pv_es_read_stream(es, stream, 1, 5, true, &page, &err), PV_OK);
	assert_int_equal(page.count, 2);
	assert_int_equal(page.events[0].number, 1);
	assert_true(page.end_of_stream);
	assert_int_equal(page.next, -1);
	pv_es_page_clear(&page);

	assert_int_equal(pv_es_read_stream(es, "Election-none", 0, 5, false, &page, &err),
			 PV_ERR_NOT_FOUND);
	pv_es_close(es);
}

static void test_expected_versions(void **state)
{
	struct standin *s = shared_standin();
	struct pv_es *es;
	struct pv_error err = {0};
	int64_t v = -99;
	struct pv_es_new_event ev;
	char id[PV_UUID_LEN + 1];
	json_t *data = json_pack("{s:s}", "k", "v");

	es = open_store(s, "admin", "changeit", 5000);
	assert_int_equal(append_n(es, "Election-ev", PV_ES_STREAM_EXISTS, 1, 0, &v, &err),
			 PV_ERR_CONFLICT);
	assert_int_equal(v, -1);
	assert_non_null(strstr(err.msg, "Wrong expected EventNumber"));
	assert_int_equal(append_n(es, "Election-ev", PV_ES_ANY, 2, 0, &v, &err), PV_OK);
	assert_int_equal(v, 1);
	assert_int_equal(append_n(es, "Election-ev", 0, 1, 0, &v, &err), PV_ERR_CONFLICT);
	assert_int_equal(v, 1);
	assert_int_equal(append_n(es, "Election-ev", PV_ES_NO_STREAM, 1, 0, &v, &err),
			 PV_ERR_CONFLICT);
	assert_int_equal(v, 1);

	/* The same id at the same place again: success, nothing written. */
	pv_uuid_new(id);
	ev = (struct pv_es_new_event){.id = id, .type = "Once", .data = data};
	assert_int_equal(pv_es_append(es, "Election-ev", 1, &ev, 1, &v, &err), PV_OK);
	assert_int_equal(v, 2);
	assert_int_equal(pv_es_append(es, "Election-ev", 1, &ev, 1, &v, &err), PV_OK);
	assert_int_equal(v, 2);
	assert_int_equal(pv_es_append(es, "Election-ev", PV_ES_ANY, &ev, 1, &v, &err), PV_OK);
	assert_int_equal(v, 2);
	assert_int_equal(append_n(es, "Election-ev", 2, 1, 0, &v, &err), PV_OK);
	assert_int_equal(v, 3);

	/* Refused before any request. */
	ev.id = "not-a-uuid";
	assert_int_equal(pv_es_append(es, "Election-ev", PV_ES_ANY, &ev, 1, &v, &err),
			 PV_ERR_INVALID);
	assert_int_equal(pv_es_append(es, "Election-ev", PV_ES_ANY, &ev, 0, &v, &err),
			 PV_ERR_INVALID);
	json_decref(data);
	pv_es_close(es);
}

static void test_header_generation_es(void **state)
{
	struct standin s;
	struct pv_es *es;
	struct pv_error err = {0};
	int64_t v = -99;

	/* A v24.10 server: only ES-* headers, in both directions. */
	standin_start(&s, (const char *const[]){"--header-generation", "es", NULL});
	es = open_store(&s, "admin", "changeit", 5000);
	assert_int_equal(append_n(es, "Election-es", PV_ES_NO_STREAM, 2, 0, &v, &err), PV_OK);
	assert_int_equal(v, 1);
	assert_int_equal(append_n(es, "Election-es", 5, 1, 0, &v, &err), PV_ERR_CONFLICT);
	assert_int_equal(v, 1);
	assert_int_equal(pv_es_delete_stream(es, "Election-es", 0, false, &err), PV_ERR_CONFLICT);
	assert_int_equal(pv_es_delete_stream(es, "Election-es", 1, true, &err), PV_OK);
	assert_int_equal(append_n(es, "Election-es", PV_ES_ANY, 1, 0, &v, &err), PV_ERR_GONE);
	pv_es_close(es);
	standin_stop(&s);
}

static void test_category_feed(void **state)
{
	struct standin *s = shared_standin();
	struct pv_es *es;
	struct pv_es_page page;
	struct pv_error err = {0};
	int64_t v, from = 0;
	int seen = 0;

	es = open_store(s, "admin", "changeit", 5000);
	assert_int_equal(pv_es_read_category(es, "Ballot", 0, 10, 0, &page, &err), PV_OK);
	assert_int_equal(page.count, 0);
	assert_int_equal(page.next, 0);
	pv_es_page_clear(&page);

	assert_int_equal(append_n(es, "Ballot-a", PV_ES_ANY, 2, 0, &v, &err), PV_OK);
	assert_int_equal(append_n(es, "Other-x", PV_ES_ANY, 1, 0, &v, &err), PV_OK);
	assert_int_equal(append_n(es, "Ballot-b", PV_ES_ANY, 3, 2, &v, &err), PV_OK);

	/* One event per page, checkpointing on `next`. */
	while (seen < 10) {
		assert_int_equal(pv_es_read_category(es, "Ballot", from, 2, 0, &page, &err), PV_OK);
		for (size_t i = 0; i < page.count; i++) {
			assert_int_equal(page.events[i].position, from + (int64_t)i);
			assert_int_equal(
				json_integer_value(json_object_get(page.events[i].data, "i")),
				seen + (int)i);
		}
		seen += (int)page.count;
		from = page.next;
		if (page.count == 0) {
			assert_true(page.end_of_stream);
			pv_es_page_clear(&page);
			break;
		}
		pv_es_page_clear(&page);
	}
	assert_int_equal(seen, 5);
	assert_int_equal(from, 5);

	/* A deleted stream's links are skipped, positions still advance. */
	assert_int_equal(pv_es_delete_stream(es, "Ballot-a", PV_ES_ANY, false, &err), PV_OK);
	assert_int_equal(pv_es_read_category(es, "Ballot", 0, 10, 0, &page, &err), PV_OK);
	assert_int_equal(page.count, 3);
	assert_int_equal(page.events[0].position, 2);
	assert_string_equal(page.events[0].stream, "Ballot-b");
	assert_int_equal(page.next, 5);
	pv_es_page_clear(&page);
	assert_int_equal(pv_es_read_category(es, "Ballot", 0, 2, 0, &page, &err), PV_OK);
	assert_int_equal(page.count, 0);
	assert_int_equal(page.next, 2);
	assert_false(page.end_of_stream);
	pv_es_page_clear(&page);

	assert_int_equal(pv_es_read_category(es, "Bad-category", 0, 2, 0, &page, &err),
			 PV_ERR_INVALID);
	pv_es_close(es);
}

struct later {
	const char *url;
	int delay_ms;
};

static void *append_later(void *arg)
{
	struct later *l = arg;
	struct pv_es_options o = {.backend = "esdb",
				  .url = l->url,
				  .username = "admin",
				  .password = "changeit",
				  .timeout_ms = 5000};
	struct pv_es *es = NULL;
	struct pv_error err;
	struct timespec ts = {0, l->delay_ms * 1000000L};
	int64_t v;

	nanosleep(&ts, NULL);
	if (pv_es_esdb_open(&o, &es, &err) == PV_OK) {
		append_n(es, "Poll-1", PV_ES_ANY, 1, 7, &v, &err);
		pv_es_close(es);
	}
	return NULL;
}

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

static void test_long_poll(void **state)
{
	struct standin *s = shared_standin();
	struct pv_es *es;
	struct pv_es_page page;
	struct pv_error err = {0};
	struct timespec t0;
	pthread_t th;
	struct later l;
	int64_t v;

	es = open_store(s, "admin", "changeit", 2000);
	assert_int_equal(append_n(es, "Poll-0", PV_ES_ANY, 1, 0, &v, &err), PV_OK);

	/* Nothing arrives: the read waits about the time asked for. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(pv_es_read_category(es, "Poll", 1, 10, 1000, &page, &err), PV_OK);
	assert_int_equal(page.count, 0);
	assert_int_equal(page.next, 1);
	assert_true(elapsed_ms(&t0) >= 900);
	pv_es_page_clear(&page);

	/* An event arrives while we wait: the answer comes at once. */
	l = (struct later){s->url, 300};
	assert_int_equal(pthread_create(&th, NULL, append_later, &l), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(pv_es_read_category(es, "Poll", 1, 10, 3000, &page, &err), PV_OK);
	pthread_join(th, NULL);
	assert_int_equal(page.count, 1);
	assert_int_equal(page.events[0].position, 1);
	assert_string_equal(page.events[0].stream, "Poll-1");
	assert_true(elapsed_ms(&t0) < 2500);
	pv_es_page_clear(&page);
	pv_es_close(es);
}

static void test_deletes(void **state)
{
	struct standin *s = shared_standin();
	struct pv_es *es;
	struct pv_es_page page;
	struct pv_error err = {0};
	int64_t v;

	es = open_store(s, "admin", "changeit", 5000);
	assert_int_equal(append_n(es, "Election-soft", PV_ES_ANY, 2, 0, &v, &err), PV_OK);
	assert_int_equal(pv_es_delete_stream(es, "Election-soft", 1, false, &err), PV_OK);
	assert_int_equal(pv_es_read_stream(es, "Election-soft", 0, 5, false, &page, &err),
			 PV_ERR_NOT_FOUND);
	/* Re-created by an append; numbering continues. */
	assert_int_equal(append_n(es, "Election-soft", PV_ES_NO_STREAM, 1, 9, &v, &err), PV_OK);
	assert_int_equal(v, 2);
	assert_int_equal(pv_es_read_stream(es, "Election-soft", 0, 5, false, &page, &err), PV_OK);
	assert_int_equal(page.count, 1);
	assert_int_equal(page.events[0].number, 2);
	pv_es_page_clear(&page);

	assert_int_equal(append_n(es, "Election-hard", PV_ES_ANY, 1, 0, &v, &err), PV_OK);
	assert_int_equal(pv_es_delete_stream(es, "Election-hard", PV_ES_ANY, true, &err), PV_OK);
	assert_int_equal(pv_es_read_stream(es, "Election-hard", 0, 5, false, &page, &err),
			 PV_ERR_GONE);
	assert_int_equal(append_n(es, "Election-hard", PV_ES_ANY, 1, 0, &v, &err), PV_ERR_GONE);
	assert_int_equal(pv_es_delete_stream(es, "Election-hard", PV_ES_ANY, false, &err),
			 PV_ERR_GONE);
	pv_es_close(es);
}

static void test_list_streams(void **state)
{
	struct standin *s = shared_standin();
	struct pv_es *es;
	struct pv_es_stream_list list;
	struct pv_error err = {0};
	int64_t v;

	es = open_store(s, "admin", "changeit", 5000);
	assert_int_equal(pv_es_list_streams(es, "Listed", &list, &err), PV_OK);
	assert_int_equal(list.count, 0);
	pv_es_stream_list_clear(&list);
	assert_int_equal(append_n(es, "Listed-1", PV_ES_ANY, 3, 0, &v, &err), PV_OK);
	assert_int_equal(append_n(es, "Other-1", PV_ES_ANY, 1, 0, &v, &err), PV_OK);
	assert_int_equal(append_n(es, "Listed-\xc3\xa9", PV_ES_ANY, 1, 0, &v, &err), PV_OK);
	assert_int_equal(append_n(es, "Listed-gone", PV_ES_ANY, 1, 0, &v, &err), PV_OK);
	assert_int_equal(pv_es_delete_stream(es, "Listed-gone", PV_ES_ANY, true, &err), PV_OK);

	assert_int_equal(pv_es_list_streams(es, "Listed", &list, &err), PV_OK);
	assert_int_equal(list.count, 2);
	assert_string_equal(list.streams[0].name, "Listed-1");
	assert_int_equal(list.streams[0].version, 2);
	assert_true(strlen(list.streams[0].updated) >= 20);
	assert_string_equal(list.streams[1].name, "Listed-\xc3\xa9");
	assert_int_equal(list.streams[1].version, 0);
	pv_es_stream_list_clear(&list);
	assert_int_equal(pv_es_list_streams(es, NULL, &list, &err), PV_OK);
	assert_true(list.count >= 3);
	pv_es_stream_list_clear(&list);
	pv_es_close(es);
}

static void test_auth_and_server_features(void **state)
{
	struct standin s;
	struct pv_es *es;
	struct pv_es_page page;
	struct pv_es_stream_list list;
	struct pv_error err = {0};
	int64_t v;

	es = open_store(shared_standin(), "admin", "wrong", 5000);
	assert_int_equal(append_n(es, "Election-a", PV_ES_ANY, 1, 0, &v, &err),
			 PV_ERR_UNAUTHORIZED);
	assert_non_null(strstr(err.msg, "401"));
	assert_null(strstr(err.msg, "wrong"));
	pv_es_close(es);

	standin_start(&s, (const char *const[]){"--atompub-disabled", NULL});
	es = open_store(&s, "admin", "changeit", 5000);
	assert_int_equal(pv_es_read_stream(es, "Election-a", 0, 5, false, &page, &err),
			 PV_ERR_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "AtomPub"));
	assert_int_equal(append_n(es, "Election-a", PV_ES_ANY, 1, 0, &v, &err), PV_ERR_UNAVAILABLE);
	assert_int_equal(pv_es_read_category(es, "Election", 0, 5, 0, &page, &err),
			 PV_ERR_UNAVAILABLE);
	pv_es_close(es);
	standin_stop(&s);

	/* Without projections the category feed would stay empty for ever. */
	standin_start(&s, (const char *const[]){"--projections-disabled", NULL});
	es = open_store(&s, "admin", "changeit", 5000);
	assert_int_equal(append_n(es, "Election-p", PV_ES_ANY, 1, 0, &v, &err), PV_OK);
	assert_int_equal(pv_es_read_stream(es, "Election-p", 0, 5, false, &page, &err), PV_OK);
	pv_es_page_clear(&page);
	assert_int_equal(pv_es_read_stream(es, "Election-q", 0, 5, false, &page, &err),
			 PV_ERR_NOT_FOUND);
	assert_int_equal(pv_es_read_category(es, "Election", 0, 5, 0, &page, &err),
			 PV_ERR_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "projections"));
	assert_int_equal(pv_es_list_streams(es, "Election", &list, &err), PV_ERR_UNAVAILABLE);
	pv_es_close(es);
	standin_stop(&s);
}

static void test_open_refuses(void **state)
{
	struct pv_es *es = NULL;
	struct pv_error err = {0};
	struct pv_es_options o = {.backend = "esdb", .url = "http://admin:changeit@127.0.0.1:1"};

	assert_int_equal(pv_es_esdb_open(&o, &es, &err), PV_ERR_CONFIG);
	assert_null(strstr(err.msg, "changeit"));
	o.url = "ftp://127.0.0.1";
	assert_int_equal(pv_es_esdb_open(&o, &es, &err), PV_ERR_CONFIG);
	o.url = NULL;
	assert_int_equal(pv_es_esdb_open(&o, &es, &err), PV_ERR_CONFIG);
	assert_null(es);
}

static void test_faults(void **state)
{
	struct standin s;
	struct pv_es *es;
	struct pv_es_page page;
	struct pv_es_stream_list list;
	struct pv_error err = {0};
	int64_t v;
	long before;

	standin_start(&s, NULL);
	es = open_store(&s, "admin", "changeit", 800);
	assert_int_equal(append_n(es, "Election-f", PV_ES_ANY, 1, 0, &v, &err), PV_OK);

	/* One kept-alive connection for many requests (the control route's
	 * own connection counts one). */
	before = standin_counter(&s, "connections");
	for (int i = 0; i < 5; i++) {
		assert_int_equal(pv_es_read_stream(es, "Election-f", 0, 5, false, &page, &err),
				 PV_OK);
		pv_es_page_clear(&page);
	}
	assert_true(standin_counter(&s, "connections") <= before + 2);

	/* Reads are retried through a few 500s... */
	standin_faults(&s, "{\"fail_next\": 2, \"status\": 500}");
	assert_int_equal(pv_es_read_stream(es, "Election-f", 0, 5, false, &page, &err), PV_OK);
	assert_int_equal(page.count, 1);
	pv_es_page_clear(&page);
	/* ...but not forever, and the status reaches the message. */
	standin_faults(&s, "{\"fail_next\": 10, \"status\": 503}");
	assert_int_equal(pv_es_read_stream(es, "Election-f", 0, 5, false, &page, &err),
			 PV_ERR_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "503"));
	standin_faults(&s, "{\"fail_next\": 0}");

	/* An append with "any" is never repeated: it could write twice. */
	standin_faults(&s, "{\"fail_next\": 1, \"status\": 500}");
	before = standin_counter(&s, "requests");
	assert_int_equal(append_n(es, "Election-f", PV_ES_ANY, 1, 0, &v, &err), PV_ERR_UNAVAILABLE);
	assert_int_equal(standin_counter(&s, "requests"), before + 1);
	assert_non_null(strstr(err.msg, "may or may not have been written"));

	/* An answer that is not JSON: a protocol error, for every reader. */
	standin_faults(&s, "{\"garbage_next\": 3}");
	assert_int_equal(pv_es_read_stream(es, "Election-f", 0, 5, false, &page, &err),
			 PV_ERR_PROTOCOL);
	assert_int_equal(pv_es_read_category(es, "Election", 0, 5, 0, &page, &err),
			 PV_ERR_PROTOCOL);
	assert_int_equal(pv_es_list_streams(es, "Election", &list, &err), PV_ERR_PROTOCOL);

	/* An append with a version is repeated after a lost answer, and the
	 * server's idempotency makes the repeat a success without a copy. */
	standin_faults(&s, "{\"lose_next\": 1}");
	assert_int_equal(append_n(es, "Election-f", 0, 1, 1, &v, &err), PV_OK);
	assert_int_equal(v, 1);
	assert_int_equal(pv_es_read_stream(es, "Election-f", 0, 10, false, &page, &err), PV_OK);
	assert_int_equal(page.count, 2);
	pv_es_page_clear(&page);

	/* Dropped connections: retried for reads. */
	standin_faults(&s, "{\"drop_next\": 1}");
	assert_int_equal(pv_es_read_stream(es, "Election-f", 0, 10, false, &page, &err), PV_OK);
	pv_es_page_clear(&page);

	/* Too slow: a named timeout. */
	standin_faults(&s, "{\"delay_ms\": 1500}");
	assert_int_equal(pv_es_read_stream(es, "Election-f", 0, 5, false, &page, &err),
			 PV_ERR_TIMEOUT);
	assert_int_equal(append_n(es, "Election-f", PV_ES_ANY, 1, 0, &v, &err), PV_ERR_TIMEOUT);
	standin_faults(&s, "{\"delay_ms\": 0}");

	/* Stopped: unavailable, promptly. */
	standin_stop(&s);
	assert_int_equal(pv_es_read_stream(es, "Election-f", 0, 5, false, &page, &err),
			 PV_ERR_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "libcurl"));
	assert_int_equal(append_n(es, "Election-f", PV_ES_ANY, 1, 0, &v, &err), PV_ERR_UNAVAILABLE);
	pv_es_close(es);
}

static void test_too_large(void **state)
{
	struct standin *s = shared_standin();
	struct pv_es *es;
	struct pv_error err = {0};
	struct pv_es_new_event ev;
	char id[PV_UUID_LEN + 1];
	char *big = malloc(PV_ES_EVENT_MAX + 1);
	json_t *data;
	int64_t v;

	assert_non_null(big);
	memset(big, 'x', PV_ES_EVENT_MAX);
	big[PV_ES_EVENT_MAX] = '\0';
	data = json_pack("{s:s}", "blob", big);
	free(big);
	es = open_store(s, "admin", "changeit", 5000);
	pv_uuid_new(id);
	ev = (struct pv_es_new_event){.id = id, .type = "Big", .data = data};
	assert_int_equal(pv_es_append(es, "Election-big", PV_ES_ANY, &ev, 1, &v, &err),
			 PV_ERR_TOO_LARGE);
	json_decref(data);
	pv_es_close(es);
}

/* HTTPS with a private CA: works with ca_file, refused without. */
static void test_tls(void **state)
{
	char dir[] = "/tmp/pv-esdb-tls.XXXXXX", cmd[1024], cert[64], key[64];
	struct standin s;
	struct pv_es *es;
	struct pv_es_options o = {
		.backend = "esdb", .username = "admin", .password = "changeit", .timeout_ms = 5000};
	struct pv_error err = {0};
	struct pv_es_page page;
	int64_t v;

	if (system("command -v openssl >/dev/null 2>&1") != 0)
		skip();
	assert_non_null(mkdtemp(dir));
	snprintf(cert, sizeof cert, "%s/cert.pem", dir);
	snprintf(key, sizeof key, "%s/key.pem", dir);
	snprintf(cmd, sizeof cmd,
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
		 "-keyout %s -out %s -days 1 -subj /CN=127.0.0.1 "
		 "-addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
		 key, cert);
	assert_int_equal(system(cmd), 0);
	standin_start(&s, (const char *const[]){"--tls-cert", cert, "--tls-key", key, NULL});
	o.url = s.url;
	o.ca_file = cert;
	assert_int_equal(pv_es_esdb_open(&o, &es, &err), PV_OK);
	assert_int_equal(append_n(es, "Tls-1", PV_ES_NO_STREAM, 2, 0, &v, &err), PV_OK);
	assert_int_equal(v, 1);
	assert_int_equal(pv_es_read_stream(es, "Tls-1", 0, 5, false, &page, &err), PV_OK);
	assert_int_equal(page.count, 2);
	pv_es_page_clear(&page);
	pv_es_close(es);

	/* The system CAs do not know our private one: a named refusal. */
	o.ca_file = NULL;
	assert_int_equal(pv_es_esdb_open(&o, &es, &err), PV_OK);
	assert_int_equal(pv_es_read_stream(es, "Tls-1", 0, 5, false, &page, &err),
			 PV_ERR_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "libcurl"));
	pv_es_close(es);
	standin_stop(&s);
	unlink(cert);
	unlink(key);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_refuses),
		cmocka_unit_test(test_append_and_read),
		cmocka_unit_test(test_expected_versions),
		cmocka_unit_test(test_header_generation_es),
		cmocka_unit_test(test_category_feed),
		cmocka_unit_test(test_long_poll),
		cmocka_unit_test(test_deletes),
		cmocka_unit_test(test_list_streams),
		cmocka_unit_test(test_auth_and_server_features),
		cmocka_unit_test(test_faults),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_tls),
	};

	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = PV_RUN_TESTS(tests);
	standin_stop(&shared);
	return rc;
}
