/* Health answers from background probes (design in health.h). */
#include "health.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "options.h"
#include "cosmos.h"
#include "log.h"
#include "thread.h"
#include "projection.h"
#include "xalloc.h"

#define RETRY_AFTER_SECONDS 5

struct pv_health;

/* One probe: a thread, and what it saw (under h->lock). */
struct probe {
	struct pv_health *h;
	const char *name;
	pthread_t thread;
	bool started;
	atomic_bool alive;
	bool (*run)(struct probe *pr, struct pv_error *err);
	bool disabled;
	bool ever_ok;
	struct timespec ok_mono;
	time_t ok_wall;
	char error[512];
};

/* The projector as the PostgreSQL probe read it. */
struct projector_view {
	char error[600]; /* PostgreSQL answered, but not the projector's query */
	bool beat;       /* a heartbeat row exists */
	double beat_age;
	int64_t checkpoint, head; /* -1: none */
	long parked;
};

struct pv_health {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;
	int interval_ms, stale_ms, projector_stale_s;
	bool feed_in_pg;
	char *conninfo, *feed;
	struct pv_cosmos_options co;
	char *endpoint, *key, *database, *container, *ca_file;
	struct pv_amqp_publisher *pub;
	struct probe pg, cosmos;
	struct projector_view proj; /* under lock */

	/* Probe threads only. */
	PGconn *conn;
	struct pv_cosmos *client;
};

static double since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static void rfc3339(time_t t, char out[32])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- PostgreSQL, with a deadline on every wait ---- */

/* Names the failure (libpq's first line) and drops the connection. */
static bool pg_fail(struct pv_health *h, struct pv_error *err, const char *what, const char *why)
{
	int n = (int)strcspn(why, "\n");

	pv_error_set(err, PV_ERR_UNAVAILABLE, "%s: %.*s", what, n, why);
	if (h->conn)
		PQfinish(h->conn);
	h->conn = NULL;
	return false;
}

static bool pg_connect(struct pv_health *h, struct pv_error *err)
{
	/* libpq's connect_timeout is whole seconds, at least 2. */
	char timeout[16];
	const char *keys[] = {"dbname", "connect_timeout", NULL};
	const char *values[] = {h->conninfo, timeout, NULL};

	snprintf(timeout, sizeof timeout, "%d", h->stale_ms < 2000 ? 2 : h->stale_ms / 1000);
	h->conn = PQconnectdbParams(keys, values, 1);
	if (!h->conn)
		return pg_fail(h, err, "libpq", "out of memory");
	if (PQstatus(h->conn) != CONNECTION_OK)
		return pg_fail(h, err, "libpq: connect", PQerrorMessage(h->conn));
	return true;
}

/* Sends the query and waits for its one result at most stale_ms. */
static PGresult *pg_query(struct pv_health *h, const char *sql, int n, const char *const *params,
			  struct pv_error *err)
{
	struct timespec start;
	PGresult *res = NULL, *r;

	clock_gettime(CLOCK_MONOTONIC, &start);
	if (!PQsendQueryParams(h->conn, sql, n, NULL, params, NULL, NULL, 0)) {
		pg_fail(h, err, "libpq: send", PQerrorMessage(h->conn));
		return NULL;
	}
	for (;;) {
		struct pollfd pfd = {.fd = PQsocket(h->conn), .events = POLLIN};
		int left = h->stale_ms - (int)(since(&start) * 1000);

		if (!PQconsumeInput(h->conn)) {
			pg_fail(h, err, "libpq: receive", PQerrorMessage(h->conn));
			return NULL;
		}
		if (!PQisBusy(h->conn))
			break;
		if (left <= 0) {
			pg_fail(h, err, "PostgreSQL", "no answer to the health query in time");
			return NULL;
		}
		if (poll(&pfd, 1, left) < 0 && errno != EINTR) {
			pg_fail(h, err, "poll", strerror(errno));
			return NULL;
		}
	}
	while ((r = PQgetResult(h->conn)))
		if (!res)
			res = r;
		else
			PQclear(r);
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		char msg[300];

		snprintf(msg, sizeof msg, "%s", res ? PQresultErrorMessage(res) : "no result");
		msg[strcspn(msg, "\n")] = '\0';
		PQclear(res);
		if (PQstatus(h->conn) != CONNECTION_OK)
			pg_fail(h, err, "libpq: query", msg);
		else
			pv_error_set(err, PV_ERR_DATABASE, "%s", msg);
		return NULL;
	}
	return res;
}

static int64_t int_or(const PGresult *res, int col, int64_t none)
{
	return PQgetisnull(res, 0, col) ? none : strtoll(PQgetvalue(res, 0, col), NULL, 10);
}

/* One query answers both: PostgreSQL works, and where the projector is.
 * Without a read model there is no projector to ask about. */
static bool probe_pg(struct probe *pr, struct pv_error *err)
{
	struct pv_health *h = pr->h;
	const char *params[4] = {h->feed, h->feed_in_pg ? "t" : "f", h->database, h->container};
	struct projector_view v = {.checkpoint = -1, .head = -1};
	PGresult *res;

	if (!h->conn && !pg_connect(h, err))
		return false;
	if (h->cosmos.disabled) {
		res = pg_query(h, "SELECT 1", 0, NULL, err);
		PQclear(res);
		return res != NULL;
	}
	/* The projector's feed is the active container's (sql/011): h->feed
	 * is the configured one's, whose container name it ends with. */
	res = pg_query(h,
		       "WITH f AS (SELECT left($1, length($1) - length($4)) || coalesce("
		       "   (SELECT container FROM read_model_containers"
		       "    WHERE database = $3 AND state = 'active'), $4) AS name)"
		       " SELECT (SELECT position FROM projector_checkpoints, f WHERE"
		       "   projector_checkpoints.name = f.name),"
		       " (SELECT head FROM projector_heartbeats, f WHERE"
		       "   projector_heartbeats.name = f.name),"
		       " (SELECT extract(epoch FROM clock_timestamp() - beat_at)"
		       "   FROM projector_heartbeats, f WHERE projector_heartbeats.name = f.name),"
		       " (SELECT count(*) FROM projection_parked, f WHERE"
		       "   projection_parked.name = f.name),"
		       " CASE WHEN $2::boolean THEN (SELECT next_position - 1 FROM es_categories"
		       "   WHERE name = '" PV_ELECTION_CATEGORY "') END",
		       4, params, err);
	if (!res && h->conn) {
		/* It answered: an error of the query, e.g. migrations not applied. */
		snprintf(v.error, sizeof v.error, "PostgreSQL: %s", err->msg);
		pthread_mutex_lock(&h->lock);
		h->proj = v;
		pthread_mutex_unlock(&h->lock);
		return true;
	}
	if (!res)
		return false;
	v.checkpoint = int_or(res, 0, -1);
	v.head = int_or(res, 1, -1);
	v.beat = !PQgetisnull(res, 0, 2);
	v.beat_age = v.beat ? strtod(PQgetvalue(res, 0, 2), NULL) : -1;
	v.parked = (long)int_or(res, 3, 0);
	/* The postgres store's own head beats what the projector last saw. */
	if (int_or(res, 4, -1) > v.head)
		v.head = int_or(res, 4, -1);
	PQclear(res);
	pthread_mutex_lock(&h->lock);
	h->proj = v;
	pthread_mutex_unlock(&h->lock);
	return true;
}

static bool probe_cosmos(struct probe *pr, struct pv_error *err)
{
	struct pv_health *h = pr->h;

	if (!h->client && pv_cosmos_open(&h->co, &h->client, err) != PV_OK)
		return false;
	if (pv_cosmos_ping(h->client, err) == PV_OK)
		return true;
	pv_cosmos_close(h->client);
	h->client = NULL;
	return false;
}

static void *probe_main(void *arg)
{
	struct probe *pr = arg;
	struct pv_health *h = pr->h;

	pthread_mutex_lock(&h->lock);
	while (!h->stop) {
		struct pv_error err;
		struct timespec until;
		bool ok;

		pthread_mutex_unlock(&h->lock);
		err.msg[0] = '\0';
		ok = pr->run(pr, &err);
		pthread_mutex_lock(&h->lock);
		if (ok) {
			pr->ever_ok = true;
			clock_gettime(CLOCK_MONOTONIC, &pr->ok_mono);
			pr->ok_wall = time(NULL);
			pr->error[0] = '\0';
		} else {
			if (strcmp(pr->error, err.msg) != 0)
				pv_log_warnx("health", "%s: %s", pr->name, err.msg);
			snprintf(pr->error, sizeof pr->error, "%s", err.msg);
		}
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += h->interval_ms / 1000;
		until.tv_nsec += (long)(h->interval_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!h->stop && pthread_cond_timedwait(&h->wake, &h->lock, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&h->lock);
	atomic_store(&pr->alive, false);
	return NULL;
}

static void probe_start(struct pv_health *h, struct probe *pr, const char *name,
			bool (*run)(struct probe *, struct pv_error *))
{
	int rc;

	pr->h = h;
	pr->name = name;
	pr->run = run;
	if (pr->disabled)
		return;
	atomic_store(&pr->alive, true);
	rc = pthread_create(&pr->thread, NULL, probe_main, pr);
	if (rc != 0) {
		errno = rc;
		pv_log_fatal("health", "starting the %s probe thread", name);
	}
	pr->started = true;
}

static char *dup_or_empty(const char *s)
{
	return pv_xstrdup(s ? s : "");
}

struct pv_health *pv_health_start(const struct pv_config *cfg, struct pv_amqp_publisher *pub)
{
	struct pv_health *h = pv_xcalloc(1, sizeof *h);
	struct pv_es_options eso;

	pthread_mutex_init(&h->lock, NULL);
	pv_cond_init_monotonic(&h->wake);
	h->pub = pub;
	h->interval_ms = (int)pv_config_int(cfg, "http", "health_interval_ms");
	h->stale_ms = (int)pv_config_int(cfg, "http", "health_stale_ms");
	h->projector_stale_s = (int)pv_config_int(cfg, "http", "projector_stale_seconds");
	h->conninfo = pv_xstrdup(pv_config_str(cfg, "postgres", "conninfo"));
	pv_es_options_from_config(cfg, &eso);
	h->feed_in_pg = pv_es_options_feed_in_postgres(&eso);
	pv_cosmos_options_from_config(cfg, &h->co);
	h->endpoint = dup_or_empty(h->co.endpoint);
	h->key = dup_or_empty(h->co.key);
	h->database = dup_or_empty(h->co.database);
	h->container = dup_or_empty(h->co.container);
	h->ca_file = dup_or_empty(h->co.ca_file);
	h->co.endpoint = h->endpoint;
	h->co.key = h->key;
	h->co.database = h->database;
	h->co.container = h->container;
	h->co.ca_file = h->ca_file;
	h->co.emulator_quirks = pv_config_bool(cfg, "cosmos", "emulator_quirks");
	h->co.create_if_missing = false; /* the probe only looks */
	h->co.timeout_ms = h->stale_ms;
	h->co.max_retries = -1;
	/* The projection the projector keeps for this read model (projector.c). */
	h->feed = pv_xasprintf("%s@%s:%s/%s", PV_ELECTION_CATEGORY,
			       pv_config_str(cfg, "eventstore", "backend"), h->database,
			       h->container);
	h->cosmos.disabled = !*h->key;
	probe_start(h, &h->pg, "PostgreSQL", probe_pg);
	probe_start(h, &h->cosmos, "Cosmos DB", probe_cosmos);
	return h;
}

void pv_health_stop(struct pv_health *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	h->stop = true;
	pthread_cond_broadcast(&h->wake);
	pthread_mutex_unlock(&h->lock);
	if (h->pg.started)
		pthread_join(h->pg.thread, NULL);
	if (h->cosmos.started)
		pthread_join(h->cosmos.thread, NULL);
	if (h->conn)
		PQfinish(h->conn);
	pv_cosmos_close(h->client);
	pthread_cond_destroy(&h->wake);
	pthread_mutex_destroy(&h->lock);
	free(h->conninfo);
	free(h->feed);
	free(h->endpoint);
	free(h->key);
	free(h->database);
	free(h->container);
	free(h->ca_file);
	free(h);
}

/* ---- the answers (h->lock held while building) ---- */

static void set_time(json_t *o, const char *key, time_t t)
{
	char when[32];

	if (!t) {
		json_object_set_new(o, key, json_null());
		return;
	}
	rfc3339(t, when);
	json_object_set_new(o, key, json_string(when));
}

static json_t *part(const char *status)
{
	json_t *o = json_pack("{s:s}", "status", status);

	if (!o)
		pv_oom("json_pack", 0);
	return o;
}

/* A probed part: ok while its last success is recent. */
static json_t *probed(const struct pv_health *h, const struct probe *pr, bool *ok)
{
	double age = pr->ever_ok ? since(&pr->ok_mono) : -1;
	bool fresh = pr->ever_ok && age * 1000 <= h->stale_ms;
	json_t *o;

	if (pr->disabled)
		return part("disabled");
	o = part(fresh ? "ok" : "failing");
	set_time(o, "last_success", pr->ever_ok ? pr->ok_wall : 0);
	json_object_set_new(o, "age_seconds", age < 0 ? json_null() : json_real(age));
	if (!fresh) {
		*ok = false;
		json_object_set_new(o, "error",
				    json_string(pr->error[0]  ? pr->error
						: pr->ever_ok ? "no answer to the last probe yet"
							      : "not probed successfully yet"));
	}
	return o;
}

static json_t *broker(const struct pv_health *h, bool *ok)
{
	struct pv_amqp_publisher_health b;
	const char *error = NULL;
	char msg[600];
	json_t *o;

	pv_amqp_publisher_health(h->pub, &b);
	if (!b.connected) {
		snprintf(msg, sizeof msg, "not connected: %s", b.error[0] ? b.error : "connecting");
		error = msg;
	} else if (b.blocked) {
		snprintf(msg, sizeof msg, "RabbitMQ blocks publishing: %s", b.blocked_reason);
		error = msg;
	} else if (b.silent_seconds * 1000 > h->stale_ms) {
		snprintf(msg, sizeof msg, "RabbitMQ has not answered for %.1f s", b.silent_seconds);
		error = msg;
	}
	o = part(error ? "failing" : "ok");
	json_object_set_new(o, "connected", json_boolean(b.connected));
	json_object_set_new(o, "blocked", json_boolean(b.blocked));
	set_time(o, "last_success", b.heard_at);
	json_object_set_new(o, "age_seconds",
			    b.connected ? json_real(b.silent_seconds) : json_null());
	if (error) {
		*ok = false;
		json_object_set_new(o, "error", json_string(error));
	}
	return o;
}

static json_t *projector(const struct pv_health *h, bool *ok)
{
	const struct projector_view *v = &h->proj;
	bool known = h->pg.ever_ok && since(&h->pg.ok_mono) * 1000 <= h->stale_ms;
	char msg[200];
	const char *error = NULL;
	json_t *o;

	if (h->cosmos.disabled)
		return part("disabled");
	if (!known)
		error = "unknown: PostgreSQL, where it reports, does not answer";
	else if (v->error[0])
		error = v->error;
	else if (!v->beat)
		error = "no heartbeat from photovote-projector yet";
	else if (v->beat_age > h->projector_stale_s) {
		snprintf(msg, sizeof msg,
			 "photovote-projector has neither advanced nor reported idle for %.0f s",
			 v->beat_age);
		error = msg;
	}
	o = part(error ? "failing" : "ok");
	if (h->pg.ever_ok && !v->error[0]) {
		json_object_set_new(o, "checkpoint", json_integer(v->checkpoint));
		json_object_set_new(o, "head", json_integer(v->head));
		json_object_set_new(
			o, "lag_events",
			json_integer(v->head > v->checkpoint ? v->head - v->checkpoint : 0));
		json_object_set_new(o, "lag_seconds",
				    v->beat ? json_real(v->beat_age) : json_null());
		json_object_set_new(o, "parked_elections", json_integer(v->parked));
	}
	json_object_set_new(o, "stale_after_seconds", json_integer(h->projector_stale_s));
	if (error) {
		*ok = false;
		json_object_set_new(o, "error", json_string(error));
	}
	return o;
}

void pv_health_answer(struct pv_health *h, enum pv_health_view view, struct pv_http_response *resp)
{
	bool ok = true, ignored = true;
	char now[32];
	json_t *body;

	body = json_object();
	if (!body)
		pv_oom("json_object", 0);
	if (!h) { /* an API made with its own publish function (fuzzing): no probes */
		json_object_set_new(body, "status", json_string("failing"));
		pv_http_json(resp, 503, body);
		json_decref(body);
		return;
	}
	rfc3339(time(NULL), now);
	/* First in the answer; the value is settled at the end. */
	json_object_set_new(body, "status", json_string("ok"));
	json_object_set_new(body, "checked_at", json_string(now));
	pthread_mutex_lock(&h->lock);
	if (view == PV_HEALTH_LIVE) {
		/* Answering at all is most of it; dead probes would make the
		 * other answers lie, so they count. */
		ok = (h->pg.disabled || atomic_load(&h->pg.alive)) &&
		     (h->cosmos.disabled || atomic_load(&h->cosmos.alive));
	} else {
		json_object_set_new(body, "broker", broker(h, &ok));
		json_object_set_new(body, "postgres", probed(h, &h->pg, &ok));
		json_object_set_new(body, "cosmos", probed(h, &h->cosmos, &ok));
		json_object_set_new(body, "projector",
				    projector(h, view == PV_HEALTH_ALL ? &ok : &ignored));
	}
	pthread_mutex_unlock(&h->lock);
	json_object_set_new(body, "status", json_string(ok ? "ok" : "failing"));
	if (!ok)
		pv_http_header(resp, "Retry-After", "%d", RETRY_AFTER_SECONDS);
	pv_http_json(resp, ok ? 200 : 503, body);
	json_decref(body);
}
