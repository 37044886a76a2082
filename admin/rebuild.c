/* Rebuilding the read model by replay (rebuild.h).
 *
 * Design
 *   - Every election: the Election category's streams, in id order, each
 *     replayed with the projector's own code (pv_projection_rebuild), so
 *     the documents equal the live projection's.  After each election the
 *     row of rebuild_progress (sql/011) names it: a run that stops (cancel,
 *     a server down, a crash) resumes after it.  One run per target at a
 *     time: a session advisory lock (REBUILD_LOCK, the target's feed name).
 *   - Into another container (blue-green): the same, into that container,
 *     under the projector's own advisory lock of that container's feed so
 *     no projector writes it meanwhile; then it follows the category feed
 *     from the live projector's checkpoint as it was when the build started
 *     (every event at or before it was in its stream by then, so the
 *     replays hold it) to the head, and writes that container's checkpoint,
 *     from which a projector (after `rebuild --switch`) goes on.
 *   - Servers: the Cosmos DB client makes no retries of its own (a server
 *     that is down would cost every election its backoff); a throttled
 *     request (429) is retried here after the time the service asks for.
 *     Any other failure of a server stops the run with one error naming it.
 *     A failure that is the election's own (PV_ERR_INVALID, _TOO_LARGE,
 *     _CONFLICT after REBUILD_TRIES, _JSON) is counted and the run goes on. */
#define _POSIX_C_SOURCE 200809L

#include "rebuild.h"

#include "config.h"
#include "cosmos.h"
#include "id.h"
#include "log.h"
#include "pgutil.h"
#include "projection.h"
#include "xalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A running projector that keeps writing an election (a backlog of its
 * events) makes the rebuild's head write fail (If-Match): it tries again
 * after 50 ms, doubling to CONFLICT_NAP_MAX_MS, about 7 s in all, by which
 * time a projector that catches up has let the election be. */
#define REBUILD_TRIES 8
#define CONFLICT_NAP_MAX_MS 2000L
#define THROTTLE_NAP_MS 1000
#define FEED_PAGE 1000
#define PROJECTOR_LOCK "7031846" /* workers/projector.c's LOCK_CLASS */
#define REBUILD_LOCK "7031847"
#define CATCH_UP_CACHE 1024

struct election {
	char id[PV_ULID_LEN + 1];
	int64_t events; /* in its stream */
};

struct run {
	struct pv_session *s;
	const struct pv_rebuild_options *o;
	struct pv_rebuild_progress *p;
	struct pv_es *es;
	struct pv_cosmos *cosmos;
	struct pv_projection *proj;
	PGconn *pg;
	char *container, *target, *live, *cosmos_label; /* target, live: feed names */
	bool in_place;
	struct election *elections;
	size_t count;
	int64_t events_before; /* done by earlier runs (resumed) */
	double started, reported;
	unsigned long requests_before;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void nap_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* 50 ms after the first conflict, doubling up to CONFLICT_NAP_MAX_MS. */
static long conflict_nap_ms(int attempt)
{
	long ms = 50L << (attempt - 1);

	return ms < CONFLICT_NAP_MAX_MS ? ms : CONFLICT_NAP_MAX_MS;
}

static bool cancelled(const struct run *r)
{
	return r->o->cancel && *r->o->cancel;
}

static void figures(struct run *r)
{
	struct pv_rebuild_progress *p = r->p;
	struct pv_projection_stats st;
	int64_t here = p->events_done - r->events_before;

	p->elapsed = now() - r->started;
	p->rate = p->elapsed > 0 && here > 0 ? (double)here / p->elapsed : 0;
	p->eta = p->rate > 0 && p->events_total >= p->events_done
			 ? (double)(p->events_total - p->events_done) / p->rate
			 : -1;
	if (r->cosmos)
		p->cosmos_requests = pv_cosmos_request_count(r->cosmos) - r->requests_before;
	if (r->proj) {
		pv_projection_get_stats(r->proj, &st);
		p->documents = st.elections + st.parts + st.deletes;
	}
}

static void report(struct run *r, bool force)
{
	double t = now();

	if (!r->o->progress || (!force && t - r->reported < PV_REBUILD_PROGRESS_MS / 1000.0))
		return;
	r->reported = t;
	figures(r);
	r->o->progress(r->o->ctx, r->p);
}

/* Names the server a failure came from, once: lib/cosmos.c's messages
 * start with "cosmos", the others come from the event store or libpq. */
static enum pv_err server_failed(struct run *r, struct pv_error *err)
{
	if (strncmp(err->msg, "cosmos", 6) == 0)
		return pv_session_name_server(err, r->cosmos_label);
	if (strncmp(err->msg, "PostgreSQL", 10) == 0 || strstr(err->msg, ": PostgreSQL"))
		return pv_session_name_server(err, "PostgreSQL");
	return pv_session_name_server(err, pv_session_es_label(r->s));
}

/* A failure that is the election's own: the run goes on without it. */
static bool own_failure(enum pv_err rc)
{
	return rc == PV_ERR_INVALID || rc == PV_ERR_TOO_LARGE || rc == PV_ERR_CONFLICT ||
	       rc == PV_ERR_JSON;
}

/* ---- PostgreSQL: the saved position, the locks ---- */

static enum pv_err pg_failed(struct run *r, struct pv_error *err)
{
	pv_session_pg_failed(r->s, err);
	r->pg = NULL;
	return err->code;
}

/* Takes a session advisory lock (class, hashtext(name)) on r->pg, held
 * until released at the end of the run or the connection closes.  A lock
 * another holds: PV_ERR_UNAVAILABLE, "<who> <name> is running". */
static enum pv_err try_lock(struct run *r, const char *class, const char *name, const char *who,
			    struct pv_error *err)
{
	const char *params[2] = {class, name};
	PGresult *res;
	bool got;

	if (pv_pg_exec(r->pg, "take a rebuild lock",
		       "SELECT pg_try_advisory_lock($1::integer, hashtext($2))", 2, params, &res,
		       err) != PV_OK)
		return pg_failed(r, err);
	got = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!got)
		return pv_error_set(err, PV_ERR_UNAVAILABLE, "%s %s is running", who, name);
	return PV_OK;
}

static void unlock_all(struct run *r)
{
	struct pv_error err;

	if (r->pg)
		pv_pg_exec(r->pg, "release the rebuild locks", "SELECT pg_advisory_unlock_all()", 0,
			   NULL, NULL, &err);
}

/* The saved position of an earlier run of every election, if any. */
static enum pv_err load_saved(struct run *r, char last[PV_ULID_LEN + 1], int64_t *feed_from,
			      struct pv_error *err)
{
	const char *params[1] = {r->target};
	PGresult *res;

	last[0] = '\0';
	if (pv_pg_exec(r->pg, "read the saved rebuild position",
		       "SELECT last_election, elections_done, elections_failed, feed_from"
		       " FROM rebuild_progress WHERE target = $1",
		       1, params, &res, err) != PV_OK)
		return pg_failed(r, err);
	if (PQntuples(res) == 1) {
		snprintf(last, PV_ULID_LEN + 1, "%s", PQgetvalue(res, 0, 0));
		r->p->elections_done = strtoul(PQgetvalue(res, 0, 1), NULL, 10);
		r->p->elections_failed = strtoul(PQgetvalue(res, 0, 2), NULL, 10);
		*feed_from = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
		r->p->resumed = true;
	}
	PQclear(res);
	return PV_OK;
}

static enum pv_err save(struct run *r, const char *last, int64_t feed_from, struct pv_error *err)
{
	char done[24], failed[24], events[24], from[24];
	const char *params[6] = {r->target, last, done, failed, events, from};

	snprintf(done, sizeof done, "%lu", r->p->elections_done);
	snprintf(failed, sizeof failed, "%lu", r->p->elections_failed);
	snprintf(events, sizeof events, "%" PRId64, r->p->events_done);
	snprintf(from, sizeof from, "%" PRId64, feed_from);
	if (pv_pg_exec(r->pg, "save the rebuild position",
		       "INSERT INTO rebuild_progress (target, last_election, elections_done,"
		       " elections_failed, events_done, feed_from)"
		       " VALUES ($1, $2, $3::bigint, $4::bigint, $5::bigint, $6::bigint)"
		       " ON CONFLICT (target) DO UPDATE SET last_election = EXCLUDED.last_election,"
		       " elections_done = EXCLUDED.elections_done,"
		       " elections_failed = EXCLUDED.elections_failed,"
		       " events_done = EXCLUDED.events_done, feed_from = EXCLUDED.feed_from,"
		       " updated = now()",
		       6, params, NULL, err) != PV_OK)
		return pg_failed(r, err);
	return PV_OK;
}

static enum pv_err forget_saved(struct run *r, struct pv_error *err)
{
	const char *params[1] = {r->target};

	if (pv_pg_exec(r->pg, "end the rebuild", "DELETE FROM rebuild_progress WHERE target = $1",
		       1, params, NULL, err) != PV_OK)
		return pg_failed(r, err);
	return PV_OK;
}

static enum pv_err read_position(struct run *r, const char *feed, int64_t *pos,
				 struct pv_error *err)
{
	const char *params[1] = {feed};
	PGresult *res;

	*pos = -1;
	if (pv_pg_exec(r->pg, "read a checkpoint",
		       "SELECT position FROM projector_checkpoints WHERE name = $1", 1, params,
		       &res, err) != PV_OK)
		return pg_failed(r, err);
	if (PQntuples(res) == 1)
		*pos = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return PV_OK;
}

static enum pv_err write_position(struct run *r, int64_t position, struct pv_error *err)
{
	char pos[24];
	const char *params[2] = {r->target, pos};

	snprintf(pos, sizeof pos, "%" PRId64, position);
	if (pv_pg_exec(r->pg, "write the new container's checkpoint",
		       "INSERT INTO projector_checkpoints (name, position) VALUES ($1, $2::bigint)"
		       " ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position,"
		       " updated = now() WHERE projector_checkpoints.position < EXCLUDED.position",
		       2, params, NULL, err) != PV_OK)
		return pg_failed(r, err);
	return PV_OK;
}

static enum pv_err set_state(struct run *r, const char *state, struct pv_error *err)
{
	const struct pv_cosmos_options *co = pv_session_cosmos_options(r->s);
	const char *params[3] = {co->database, r->container, state};

	if (pv_pg_exec(r->pg, "record the container's state",
		       "INSERT INTO read_model_containers (database, container, state)"
		       " VALUES ($1, $2, $3) ON CONFLICT (database, container)"
		       " DO UPDATE SET state = EXCLUDED.state, updated = now()",
		       3, params, NULL, err) != PV_OK)
		return pg_failed(r, err);
	return PV_OK;
}

/* ---- the elections ---- */

static int by_id(const void *a, const void *b)
{
	return strcmp(((const struct election *)a)->id, ((const struct election *)b)->id);
}

/* The elections of the Election category (or the one asked for), by id. */
static enum pv_err list_elections(struct run *r, struct pv_error *err)
{
	struct pv_es_stream_list list = {0};
	const char *only = r->o->election_id;

	if (pv_es_list_streams(r->es, PV_ELECTION_CATEGORY, &list, err) != PV_OK) {
		pv_session_es_failed(r->s, err);
		r->es = NULL;
		return err->code;
	}
	r->elections = pv_xreallocarray(NULL, list.count + 1, sizeof *r->elections);
	for (size_t i = 0; i < list.count; i++) {
		const char *id = pv_election_of_stream(list.streams[i].name);

		if (!id)
			continue; /* not an election's (the projector ignores it too) */
		if (only && strcmp(id, only) != 0)
			continue;
		snprintf(r->elections[r->count].id, sizeof r->elections[0].id, "%s", id);
		r->elections[r->count++].events = list.streams[i].version + 1;
	}
	pv_es_stream_list_clear(&list);
	if (only && r->count == 0) {
		/* No stream: the rebuild deletes whatever documents it has. */
		snprintf(r->elections[0].id, sizeof r->elections[0].id, "%s", only);
		r->elections[r->count++].events = 0;
	}
	qsort(r->elections, r->count, sizeof *r->elections, by_id);
	r->p->elections_total = r->count;
	for (size_t i = 0; i < r->count; i++)
		r->p->events_total += r->elections[i].events;
	return PV_OK;
}

/* One election: replays retried while the live projector writes the same
 * head (If-Match refused) or Cosmos DB throttles. */
static enum pv_err rebuild_one(struct run *r, const char *id, struct pv_error *err)
{
	enum pv_err rc = PV_OK;

	/* A container being built is ours alone: no head to read first. */
	if (!r->in_place) {
		rc = pv_projection_rebuild_new(r->proj, id, err);
		if (rc != PV_ERR_CONFLICT)
			return rc;
	}
	for (int attempt = 1; attempt <= REBUILD_TRIES; attempt++) {
		rc = pv_projection_rebuild(r->proj, id, err);
		if (rc == PV_OK)
			break;
		if (rc == PV_ERR_CONFLICT) {
			pv_log_info("rebuild", "election %s: %s; trying again", id, err->msg);
			nap_ms(conflict_nap_ms(attempt));
		} else if (pv_cosmos_last_status(r->cosmos) == 429) {
			nap_ms(THROTTLE_NAP_MS);
		} else {
			break;
		}
	}
	if (rc == PV_OK && r->in_place) {
		bool was;

		rc = pv_session_unpark(r->s, r->target, id, &was, err);
		if (rc != PV_OK)
			r->pg = NULL; /* the session closed it */
		if (rc != PV_OK)
			return pv_error_prefix(err, "rebuilt %s, but it stays parked", id);
		if (was)
			pv_log_info("rebuild", "election %s un-parked", id);
	}
	return rc;
}

/* Every election (resuming after a saved one), or the one asked for. */
static enum pv_err replay_all(struct run *r, int64_t *feed_from, struct pv_error *err)
{
	char last[PV_ULID_LEN + 1] = "";
	size_t i = 0;

	if (!r->o->election_id) {
		if (r->o->restart && forget_saved(r, err) != PV_OK)
			return err->code;
		if (load_saved(r, last, feed_from, err) != PV_OK)
			return err->code;
		while (i < r->count && strcmp(r->elections[i].id, last) <= 0)
			r->p->events_done += r->elections[i++].events;
		r->events_before = r->p->events_done;
		if (!r->p->resumed && save(r, "", *feed_from, err) != PV_OK)
			return err->code;
	}
	r->p->phase = "replaying";
	report(r, true);
	for (; i < r->count; i++) {
		const char *id = r->elections[i].id;
		enum pv_err rc;

		if (cancelled(r)) {
			r->p->cancelled = true;
			return PV_OK;
		}
		rc = rebuild_one(r, id, err);
		if (rc != PV_OK && !own_failure(rc))
			return server_failed(r, err);
		if (rc != PV_OK) {
			r->p->elections_failed++;
			if (r->o->failed)
				r->o->failed(r->o->ctx, id, err);
		} else {
			r->p->elections_done++;
		}
		r->p->events_done += r->elections[i].events;
		r->p->election = id;
		if (!r->o->election_id && save(r, id, *feed_from, err) != PV_OK)
			return err->code;
		report(r, false);
	}
	return PV_OK;
}

/* Into another container: the feed from feed_from + 1 (or that
 * container's checkpoint, if further) to the head, then its checkpoint. */
static enum pv_err catch_up(struct run *r, int64_t feed_from, struct pv_error *err)
{
	struct pv_projection *proj;
	int64_t next, at;
	enum pv_err rc = PV_OK;

	if (read_position(r, r->target, &at, err) != PV_OK)
		return err->code;
	next = (at > feed_from ? at : feed_from) + 1;
	r->p->phase = "catching up";
	report(r, true);
	proj = pv_projection_new(
		r->cosmos, r->es,
		(size_t)pv_config_int(pv_session_config(r->s), "projector", "max_document_bytes"),
		CATCH_UP_CACHE);
	for (;;) {
		struct pv_es_page page = {0};
		bool complete = false;
		int64_t last;

		if (cancelled(r)) {
			r->p->cancelled = true;
			break;
		}
		rc = pv_es_read_category(r->es, PV_ELECTION_CATEGORY, next, FEED_PAGE, 0, &page,
					 err);
		if (rc != PV_OK) {
			rc = server_failed(r, err);
			break;
		}
		if (page.count == 0) {
			pv_es_page_clear(&page);
			/* At the head: the container holds everything before next,
			 * also when there was nothing to read past feed_from. */
			if (next - 1 > at && next - 1 >= 0 &&
			    write_position(r, next - 1, err) != PV_OK) {
				rc = err->code;
				break;
			}
			if (next - 1 >= 0)
				r->p->caught_up_to = next - 1;
			break;
		}
		last = page.events[page.count - 1].position;
		rc = pv_projection_apply(proj, page.events, page.count, r->o->cancel, &complete,
					 err);
		pv_es_page_clear(&page);
		if (rc != PV_OK) {
			rc = server_failed(r, err);
			break;
		}
		if (!complete) {
			r->p->cancelled = true;
			break;
		}
		if (write_position(r, last, err) != PV_OK) {
			rc = err->code;
			break;
		}
		r->p->caught_up_to = last;
		next = last + 1;
		report(r, false);
	}
	pv_projection_free(proj);
	return rc;
}

/* ---- the run ---- */

static enum pv_err open_all(struct run *r, bool create, struct pv_error *err)
{
	struct pv_cosmos_options co = *pv_session_cosmos_options(r->s);
	char *active = NULL;

	if (pv_session_es(r->s, &r->es, err) != PV_OK)
		return err->code;
	if (pv_session_pg(r->s, &r->pg, err) != PV_OK)
		return err->code;
	if (pv_session_active_container(r->s, &active, err) != PV_OK)
		return err->code;
	if (r->o->into && strcmp(active, r->o->into) == 0) {
		free(active);
		return pv_error_set(err, PV_ERR_INVALID,
				    "%s is the container the read model is served from; rebuild "
				    "without --into to rebuild it in place",
				    r->o->into);
	}
	r->live = pv_session_feed_of(r->s, active);
	r->container = r->o->into ? pv_xstrdup(r->o->into) : active;
	if (r->o->into) {
		free(active);
		co.create_if_missing = create;
	}
	r->in_place = !r->o->into;
	r->target = pv_session_feed_of(r->s, r->container);
	r->cosmos_label = pv_xasprintf("Cosmos DB at %s", co.endpoint);
	co.container = r->container;
	/* No retries of the client's own: one failure stops the run. */
	co.max_retries = -1;
	if (pv_cosmos_open(&co, &r->cosmos, err) != PV_OK)
		return pv_session_name_server(err, r->cosmos_label);
	r->requests_before = pv_cosmos_request_count(r->cosmos);
	/* No cache: every election's head and ETag are read afresh. */
	r->proj = pv_projection_new(
		r->cosmos, r->es,
		(size_t)pv_config_int(pv_session_config(r->s), "projector", "max_document_bytes"),
		0);
	return PV_OK;
}

/* Releases the locks and what open_all() opened. */
static void run_clear(struct run *r)
{
	unlock_all(r);
	pv_projection_free(r->proj);
	pv_cosmos_close(r->cosmos);
	free(r->elections);
	free(r->container);
	free(r->target);
	free(r->live);
	free(r->cosmos_label);
}

enum pv_err pv_rebuild_run(struct pv_session *s, const struct pv_rebuild_options *o,
			   struct pv_rebuild_progress *p, struct pv_error *err)
{
	struct run r = {.s = s, .o = o, .p = p};
	int64_t feed_from = -1;
	enum pv_err rc;

	memset(p, 0, sizeof *p);
	p->phase = "starting";
	p->eta = -1;
	p->caught_up_to = -1;
	r.started = now();
	if (o->election_id && !pv_ulid_valid(o->election_id))
		return pv_error_set(err, PV_ERR_INVALID, "%s is not an election id (a ULID)",
				    o->election_id);
	rc = open_all(&r, true, err);
	if (rc == PV_OK && !o->election_id)
		rc = try_lock(&r, REBUILD_LOCK, r.target, "another rebuild of", err);
	if (rc == PV_OK && o->into)
		rc = try_lock(&r, PROJECTOR_LOCK, r.target, "a projector or rebuild writing", err);
	/* The live projector's checkpoint: see the design above. */
	if (rc == PV_OK && o->into)
		rc = read_position(&r, r.live, &feed_from, err);
	if (rc == PV_OK && o->into)
		rc = set_state(&r, "building", err);
	if (rc == PV_OK)
		rc = list_elections(&r, err);
	if (rc == PV_OK)
		rc = replay_all(&r, &feed_from, err);
	if (rc == PV_OK && o->into && !p->cancelled)
		rc = catch_up(&r, feed_from, err);
	if (rc == PV_OK && o->into && !p->cancelled)
		rc = set_state(&r, "ready", err);
	if (rc == PV_OK && !o->election_id && !p->cancelled)
		rc = forget_saved(&r, err);
	if (rc == PV_OK && !p->cancelled)
		p->phase = "done";
	report(&r, true);
	figures(&r);
	run_clear(&r);
	return rc;
}

/* ---- blue-green: the switch and the drop ---- */

static enum pv_err read_state(struct run *r, const char *container, char **state,
			      struct pv_error *err)
{
	const char *params[2] = {pv_session_cosmos_options(r->s)->database, container};
	PGresult *res;

	*state = NULL;
	if (pv_pg_exec(r->pg, "read the container's state",
		       "SELECT state FROM read_model_containers WHERE database = $1"
		       " AND container = $2",
		       2, params, &res, err) != PV_OK)
		return pg_failed(r, err);
	if (PQntuples(res) == 1)
		*state = pv_xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return PV_OK;
}

/* Waits for the live projector to let go of the active container's feed
 * (it does when it sees a container 'switching'), then holds it. */
static enum pv_err wait_for_live(struct run *r, const volatile sig_atomic_t *cancel,
				 struct pv_error *err)
{
	double until = now() + PV_REBUILD_SWITCH_WAIT_S;

	for (;;) {
		enum pv_err rc = try_lock(r, PROJECTOR_LOCK, r->live, "a projector of", err);

		if (rc != PV_ERR_UNAVAILABLE || !r->pg)
			return rc;
		if (cancel && *cancel)
			return pv_error_set(err, PV_ERR_UNAVAILABLE,
					    "cancelled while waiting for the projector of %s",
					    r->live);
		if (now() > until)
			return pv_error_set(err, PV_ERR_TIMEOUT,
					    "the projector of %s did not let go of it within %d s "
					    "(a projector older than this switch does not)",
					    r->live, PV_REBUILD_SWITCH_WAIT_S);
		nap_ms(100);
	}
}

/* One transaction: the active container retired, the new one active. */
static enum pv_err flip(struct run *r, const char *old, struct pv_error *err)
{
	const char *params[3] = {pv_session_cosmos_options(r->s)->database, old, r->container};

	if (pv_pg_exec(
		    r->pg, "switch the read model",
		    "WITH retire AS (INSERT INTO read_model_containers (database, container, state)"
		    " VALUES ($1, $2, 'retired') ON CONFLICT (database, container)"
		    " DO UPDATE SET state = 'retired', updated = now() RETURNING 1)"
		    " UPDATE read_model_containers SET state = 'active', updated = now()"
		    " WHERE database = $1 AND container = $3 AND (SELECT count(*) FROM retire) = 1",
		    3, params, NULL, err) != PV_OK)
		return pg_failed(r, err);
	return PV_OK;
}

enum pv_err pv_rebuild_switch(struct pv_session *s, const char *container,
			      const volatile sig_atomic_t *cancel, struct pv_error *err)
{
	struct pv_rebuild_options o = {.into = container, .cancel = cancel};
	struct pv_rebuild_progress p = {.eta = -1, .caught_up_to = -1};
	struct run r = {.s = s, .o = &o, .p = &p};
	char *state = NULL, *old = NULL;
	enum pv_err rc;

	r.started = now();
	rc = open_all(&r, false, err);
	if (rc == PV_OK)
		rc = read_state(&r, container, &state, err);
	if (rc == PV_OK &&
	    (!state || (strcmp(state, "ready") != 0 && strcmp(state, "switching") != 0)))
		rc = pv_error_set(err, PV_ERR_INVALID,
				  "container %s is not built (%s): photovote-admin rebuild --all "
				  "--into %s first",
				  container, state ? state : "unknown", container);
	if (rc == PV_OK)
		rc = try_lock(&r, PROJECTOR_LOCK, r.target, "a projector or rebuild writing", err);
	if (rc == PV_OK)
		rc = set_state(&r, "switching", err);
	if (rc == PV_OK) {
		rc = wait_for_live(&r, cancel, err);
		if (rc != PV_OK && r.pg) {
			struct pv_error ignored;

			set_state(&r, "ready", &ignored);
		}
	}
	/* The old container stands still now; the new one goes past it. */
	if (rc == PV_OK) {
		o.cancel = NULL; /* a switch half made is worse than a wait */
		rc = catch_up(&r, -1, err);
	}
	if (rc == PV_OK) {
		old = pv_xstrdup(strrchr(r.live, '/') + 1);
		rc = flip(&r, old, err);
	}
	if (rc == PV_OK)
		pv_log_info("rebuild", "the read model is served from %s (was %s)", container, old);
	run_clear(&r);
	free(state);
	free(old);
	return rc;
}

static enum pv_err forget_container(struct run *r, const char *container, struct pv_error *err)
{
	const char *params[2] = {pv_session_cosmos_options(r->s)->database, container};
	const char *feed[1] = {r->target};

	if (pv_pg_exec(r->pg, "forget the container",
		       "DELETE FROM read_model_containers WHERE database = $1 AND container = $2",
		       2, params, NULL, err) != PV_OK ||
	    pv_pg_exec(r->pg, "forget the container's checkpoint",
		       "DELETE FROM projector_checkpoints WHERE name = $1", 1, feed, NULL,
		       err) != PV_OK ||
	    pv_pg_exec(r->pg, "forget the container's parked elections",
		       "DELETE FROM projection_parked WHERE name = $1", 1, feed, NULL,
		       err) != PV_OK ||
	    pv_pg_exec(r->pg, "forget the container's rebuild",
		       "DELETE FROM rebuild_progress WHERE target = $1", 1, feed, NULL,
		       err) != PV_OK)
		return pg_failed(r, err);
	return PV_OK;
}

enum pv_err pv_rebuild_drop(struct pv_session *s, const char *container, struct pv_error *err)
{
	struct pv_rebuild_options o = {.into = container};
	struct pv_rebuild_progress p = {.eta = -1, .caught_up_to = -1};
	struct run r = {.s = s, .o = &o, .p = &p};
	const char *configured = pv_session_cosmos_options(s)->container;
	char *state = NULL;
	enum pv_err rc;

	if (strcmp(container, configured) == 0)
		return pv_error_set(err, PV_ERR_INVALID,
				    "%s is the configured container ([cosmos] container); name "
				    "the active one there first",
				    container);
	r.started = now();
	rc = open_all(&r, false, err);
	if (rc == PV_ERR_NOT_FOUND) {
		/* Gone from Cosmos DB already: forget it here too. */
		r.target = pv_session_feed_of(s, container);
		rc = pv_session_pg(s, &r.pg, err);
		if (rc == PV_OK)
			rc = forget_container(&r, container, err);
		run_clear(&r);
		return rc;
	}
	if (rc == PV_OK)
		rc = read_state(&r, container, &state, err);
	if (rc == PV_OK && state && strcmp(state, "switching") == 0)
		rc = pv_error_set(err, PV_ERR_INVALID, "container %s is being switched to",
				  container);
	if (rc == PV_OK)
		rc = try_lock(&r, PROJECTOR_LOCK, r.target, "a projector or rebuild writing", err);
	if (rc == PV_OK) {
		rc = pv_cosmos_delete_container(r.cosmos, err);
		if (rc == PV_ERR_NOT_FOUND)
			rc = PV_OK;
		if (rc != PV_OK)
			pv_session_name_server(err, r.cosmos_label);
	}
	if (rc == PV_OK)
		rc = forget_container(&r, container, err);
	run_clear(&r);
	free(state);
	return rc;
}
