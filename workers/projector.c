/* photovote-projector: follows the event store's Election category feed
 * and keeps the elections' documents in Cosmos DB (lib/projection.h).
 *
 * Design
 *   - One active projector per feed: it holds a PostgreSQL session
 *     advisory lock keyed by its checkpoint name; a second one polls for
 *     the lock and takes over when the first goes away.
 *   - Loop: read a page of the feed from the checkpoint (long poll), fold
 *     and write it (every election of the page once), then write the
 *     checkpoint, the last position of the page.  Documents first,
 *     checkpoint after: a crash replays at most a page, and replays change
 *     nothing (documents carry the last event number applied).
 *   - Writers ([projector] writers, lib/projection_writers.h): a page's
 *     elections are written by that many threads at once, each with its own
 *     Cosmos DB client and event-store connection, an election always by
 *     the same one; the checkpoint waits for them all.
 *   - Outages (Cosmos DB, the event store, PostgreSQL) are retried with a
 *     capped exponential backoff; the page is read again, so no event is
 *     skipped.  Losing the PostgreSQL connection loses the lock: the
 *     projector then takes the lock again, re-reads its checkpoint and
 *     forgets its cache (another projector may have written meanwhile).
 *   - Heartbeat: after a round that went well (a page checkpointed, or a
 *     long poll that found nothing) the projector writes its row of
 *     projector_heartbeats at most every [projector] heartbeat_ms, which
 *     also caps the long poll; /healthz judges it by that row.
 *   - Metrics (projector_metrics.h) on [projector] metrics_listen.
 *   - Parking: a failure that is one election's own (Cosmos DB refused a
 *     write for good with 400/413, a document over max_document_bytes, an
 *     event the fold refuses) parks that election: a row in
 *     projection_parked (sql/007), one log line and a counter; the page
 *     goes on with the others and is checkpointed.  Its later events are
 *     skipped.  The parked set is read at take-over and again at most every
 *     PARKED_RELOAD_MS while it is not empty, so that `photovote-admin
 *     rebuild` un-parks an election without a restart.
 *   - Catching up: a read that brings CATCH_UP_MIN events or more means a
 *     backlog, and the projector reads on (without waiting), up to
 *     CATCH_UP_EVENTS events as one page: each read is folded into the
 *     cached elections and let go (pv_projection_fold), and the elections
 *     changed are written once at the end (pv_projection_flush), or sooner
 *     when a writer's pending elections fill its share of the cache.  So a
 *     large election behind by many events is written a few times instead
 *     of once per feed page, and memory holds one read's events, not the
 *     backlog's.  A projector that keeps up reads small pages and writes
 *     each at once.
 *   - Blue-green (sql/011 read_model_containers, `photovote-admin rebuild
 *     --switch`): the projector writes the container whose row is
 *     'active' (else the configured one), and its feed name, checkpoint and
 *     lock are that container's.  Before each page it looks at the rows:
 *     when another container is 'switching' it lets go of its lock at a
 *     page boundary (its documents then stand exactly at its checkpoint)
 *     and waits; the switch command takes that lock, brings the new
 *     container past the old one and makes it 'active'; the projector then
 *     takes the new container's lock and goes on from its checkpoint.
 *   - SIGTERM/SIGINT: stop after the current document write (a page left
 *     half done is not checkpointed, and is replayed by the next run);
 *     SIGHUP reopens the log.
 *   - --once: stop when the feed has nothing more (benchmarks, tests);
 *     --naive: one event per page, no cache (the benchmark's baseline).
 *   - PHOTOVOTE_FAULT=after_write[:N]|after_checkpoint[:N]: SIGKILL after
 *     the N-th document write or checkpoint, for the crash tests;
 *     term_after_write[:N]: SIGTERM after the N-th write (a stop mid-page). */
#define _POSIX_C_SOURCE 200809L

#include "config.h"
#include "options.h"
#include "daemon.h"
#include "cosmos.h"
#include "eventstore.h"
#include "log.h"
#include "notify.h"
#include "outage.h"
#include "pgutil.h"
#include "projection.h"
#include "projection_writers.h"
#include "projector_metrics.h"
#include "prom.h"
#include "xalloc.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOCK_POLL_MS 1000
#define LOCK_CLASS "7031846"
#define REPORT_SECONDS 30
#define PARKED_RELOAD_MS 1000
#define CATCH_UP_MIN 256
#define CATCH_UP_EVENTS 32768

/* ---- crash points for the tests ---- */

enum fault_point { AT_WRITE, AT_CHECKPOINT };

static const struct fault_kind {
	const char *name;
	enum fault_point at;
	int signal;
} fault_kinds[] = {
	{"after_write", AT_WRITE, SIGKILL},
	{"after_checkpoint", AT_CHECKPOINT, SIGKILL},
	/* A stop (as systemd asks for one) at a known point. */
	{"term_after_write", AT_WRITE, SIGTERM},
};
static const struct fault_kind *fault_kind;
static long fault_countdown;

static enum pv_err fault_parse(const char *spec, struct pv_error *err)
{
	if (!spec || !*spec)
		return PV_OK;
	for (size_t i = 0; i < sizeof fault_kinds / sizeof fault_kinds[0]; i++) {
		size_t n = strlen(fault_kinds[i].name);
		char *end;
		long count = 1;

		if (strncmp(spec, fault_kinds[i].name, n) != 0 || (spec[n] && spec[n] != ':'))
			continue;
		if (spec[n] == ':') {
			errno = 0;
			count = strtol(spec + n + 1, &end, 10);
			if (errno || *end || count < 1)
				break;
		}
		fault_kind = &fault_kinds[i];
		fault_countdown = count;
		return PV_OK;
	}
	return pv_error_set(err, PV_ERR_CONFIG,
			    "PHOTOVOTE_FAULT: \"%s\" is not after_write[:N], "
			    "after_checkpoint[:N] or term_after_write[:N]",
			    spec);
}

static void fault(enum fault_point point)
{
	const struct fault_kind *k = fault_kind;

	if (!k || point != k->at || --fault_countdown > 0)
		return;
	fault_kind = NULL; /* once */
	pv_log_warnx("fault", "PHOTOVOTE_FAULT: sending myself %s at %s",
		     k->signal == SIGKILL ? "SIGKILL" : "SIGTERM", k->name);
	kill(getpid(), k->signal);
}

static void after_write(void)
{
	fault(AT_WRITE);
}

/* ---- outages ---- */

/* ---- the projector ---- */

struct projector {
	const char *conninfo;
	struct pv_es_options eso;
	struct pv_cosmos_options co; /* co.container: the one written (container) */
	const char *configured;      /* [cosmos] container */
	char *container;             /* the active container, written now */
	char *name;                  /* checkpoint name (of container) */
	size_t batch, max_bytes, nwriters, cache_elections;
	int wait_ms;
	int heartbeat_ms;
	bool once, naive;

	PGconn *pg; /* holds the lock while `locked` */
	bool locked;
	struct pv_es *es;           /* the feed's reader */
	struct pv_writers *writers; /* the documents' writers, each with its own clients */
	int64_t next;               /* feed position to read next */
	struct pv_outage pg_out, es_out, cosmos_out, apply_out;
	bool waiting_logged;
	unsigned long pages;
	double applying; /* seconds spent folding and writing pages */
	time_t reported;
	struct pv_projector_metrics *metrics;
	int64_t head;                /* last feed position known (-1: none) */
	double progressed;           /* pv_prom_now() of the last advance or idle round */
	double beaten;               /* pv_prom_now() of the last heartbeat written */
	struct timespec parked_read; /* when the parked set was last read */
	bool park_failed;            /* PostgreSQL failed a park: reconnect */
};

static void drop_pg(struct projector *p)
{
	if (p->pg)
		PQfinish(p->pg);
	p->pg = NULL;
	if (p->locked)
		pv_log_warnx("projector", "lost the PostgreSQL session and with it the feed lock");
	p->locked = false;
}

static enum pv_err read_parked(struct projector *p, struct pv_error *err);

static void name_feed(struct projector *p)
{
	free(p->name);
	p->name = pv_xasprintf("%s@%s:%s/%s", PV_ELECTION_CATEGORY, p->eso.backend, p->co.database,
			       p->container);
}

/* Which container to write: the 'active' one of read_model_containers,
 * else the configured one (also before migration 011); *switching: a
 * switch to another is under way (wait). */
static enum pv_err read_active(struct projector *p, char **active, bool *switching,
			       struct pv_error *err)
{
	const char *params[2] = {p->co.database, p->configured};
	PGresult *res = NULL;
	enum pv_err rc;

	*active = NULL;
	*switching = false;
	rc = pv_pg_exec(p->pg, "projector: read the active container",
			"SELECT coalesce((SELECT container FROM read_model_containers"
			" WHERE database = $1 AND state = 'active'), $2),"
			" EXISTS (SELECT 1 FROM read_model_containers"
			" WHERE database = $1 AND state = 'switching')",
			2, params, &res, err);
	if (rc != PV_OK && strstr(err->msg, "read_model_containers") &&
	    strstr(err->msg, "does not exist")) {
		*active = pv_xstrdup(p->configured);
		return PV_OK;
	}
	if (rc != PV_OK)
		return rc;
	*active = pv_xstrdup(PQgetvalue(res, 0, 0));
	*switching = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	PQclear(res);
	return PV_OK;
}

/* Lets go of the feed lock (a switch waits for it). */
static enum pv_err unlock(struct projector *p, struct pv_error *err)
{
	const char *params[1] = {p->name};
	enum pv_err rc = pv_pg_exec(p->pg, "projector: let go of the feed lock",
				    "SELECT pg_advisory_unlock(" LOCK_CLASS ", hashtext($1))", 1,
				    params, NULL, err);

	if (rc == PV_OK)
		p->locked = false;
	return rc;
}

/* Takes the feed lock and reads the checkpoint.  PV_ERR_CONFLICT: another
 * projector holds the lock. */
static enum pv_err take_lock(struct projector *p, struct pv_error *err)
{
	const char *params[1] = {p->name};
	PGresult *res = NULL;
	enum pv_err rc;
	bool got;

	char *active;
	bool switching;

	if (!p->pg) {
		rc = pv_pg_connect(p->conninfo, &p->pg, err);
		if (rc != PV_OK)
			return rc;
	}
	rc = read_active(p, &active, &switching, err);
	if (rc != PV_OK)
		return rc;
	if (switching) {
		free(active);
		return pv_error_set(err, PV_ERR_CONFLICT,
				    "the read model is being switched to another container");
	}
	if (strcmp(active, p->container) != 0) {
		/* Switched: write the new container from its checkpoint on. */
		pv_log_info("projector", "the read model is served from %s now (was %s)", active,
			    p->container);
		free(p->container);
		p->container = active;
		p->co.container = p->container;
		name_feed(p);
		pv_writers_close(p->writers);
		p->writers = NULL;
		return pv_error_set(err, PV_ERR_GONE, "container changed");
	}
	free(active);
	rc = pv_pg_exec(p->pg, "projector: take the feed lock",
			"SELECT pg_try_advisory_lock(" LOCK_CLASS ", hashtext($1))", 1, params,
			&res, err);
	if (rc != PV_OK)
		return rc;
	got = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!got)
		return pv_error_set(err, PV_ERR_CONFLICT, "another projector holds feed %s",
				    p->name);
	p->locked = true;
	rc = pv_pg_exec(p->pg, "projector: read the checkpoint",
			"SELECT position FROM projector_checkpoints WHERE name = $1", 1, params,
			&res, err);
	if (rc != PV_OK)
		return rc;
	p->next = 0;
	if (PQntuples(res) == 1)
		p->next = strtoll(PQgetvalue(res, 0, 0), NULL, 10) + 1;
	PQclear(res);
	/* Whatever we remember may have been overwritten by the last holder. */
	pv_writers_forget(p->writers);
	rc = read_parked(p, err);
	if (rc != PV_OK)
		return rc;
	pv_log_info("projector", "active for feed %s from position %" PRId64, p->name, p->next);
	return PV_OK;
}

static long long ms_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)(now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

/* Reads the parked elections of this feed into the projection. */
static enum pv_err read_parked(struct projector *p, struct pv_error *err)
{
	const char *params[1] = {p->name};
	PGresult *res = NULL;
	const char **ids;
	enum pv_err rc;
	int n;

	rc = pv_pg_exec(p->pg, "projector: read the parked elections",
			"SELECT election_id FROM projection_parked WHERE name = $1", 1, params,
			&res, err);
	if (rc != PV_OK)
		return rc;
	n = PQntuples(res);
	ids = pv_xreallocarray(NULL, n ? (size_t)n : 1, sizeof *ids);
	for (int i = 0; i < n; i++)
		ids[i] = PQgetvalue(res, i, 0);
	pv_writers_set_parked(p->writers, ids, (size_t)n);
	free(ids);
	PQclear(res);
	clock_gettime(CLOCK_MONOTONIC, &p->parked_read);
	return PV_OK;
}

/* The park callback (lib/projection.h): one row, one log line. */
static enum pv_err park(void *ctx, const struct pv_projection_parking *what, struct pv_error *err)
{
	struct projector *p = ctx;
	char pos[24], num[24], status[24];
	const char *params[6] = {p->name, what->election_id, pos, num, status, what->reason};
	enum pv_err rc;

	snprintf(pos, sizeof pos, "%" PRId64, what->position);
	snprintf(num, sizeof num, "%" PRId64, what->event_number);
	snprintf(status, sizeof status, "%ld", what->status);
	rc = pv_pg_exec(
		p->pg, "projector: park an election",
		"INSERT INTO projection_parked"
		" (name, election_id, position, event_number, status, reason)"
		" VALUES ($1, $2, $3::bigint, $4::bigint, $5::integer, $6)"
		" ON CONFLICT (name, election_id) DO UPDATE SET position = EXCLUDED.position,"
		" event_number = EXCLUDED.event_number, status = EXCLUDED.status,"
		" reason = EXCLUDED.reason, parked_at = now()",
		6, params, NULL, err);
	if (rc != PV_OK) {
		p->park_failed = true;
		return rc;
	}
	pv_log_warnx("projector",
		     "parked election %s at event %" PRId64 " (feed position %" PRId64
		     "), status %ld: %s; the other elections go on, `photovote-admin rebuild %s` "
		     "un-parks it once the cause is fixed",
		     what->election_id, what->event_number, what->position, what->status,
		     what->reason, what->election_id);
	return PV_OK;
}

static enum pv_err checkpoint(struct projector *p, int64_t position, struct pv_error *err)
{
	char pos[24];
	const char *params[2] = {p->name, pos};

	snprintf(pos, sizeof pos, "%" PRId64, position);
	return pv_pg_exec(
		p->pg, "projector: write the checkpoint",
		"INSERT INTO projector_checkpoints (name, position) VALUES ($1, $2::bigint)"
		" ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position,"
		" updated = now() WHERE projector_checkpoints.position < EXCLUDED.position",
		2, params, NULL, err);
}

/* Writes the heartbeat (at most every heartbeat_ms) and reads the count
 * of parked elections in the same round trip.  Called after a round that
 * went well, so an outage or a stall stops the beats. */
static enum pv_err heartbeat(struct projector *p, struct pv_error *err)
{
	char pos[24], head[24];
	const char *params[3] = {p->name, pos, head};
	double now = pv_prom_now();
	PGresult *res = NULL;
	long parked = -1;
	enum pv_err rc;

	p->progressed = now;
	if (now - p->beaten < p->heartbeat_ms / 1000.0) {
		pv_projector_metrics_state(p->metrics, p->next - 1, p->head, 0, -1);
		return PV_OK;
	}
	snprintf(pos, sizeof pos, "%" PRId64, p->next - 1);
	snprintf(head, sizeof head, "%" PRId64, p->head);
	rc = pv_pg_exec(p->pg, "projector: write the heartbeat",
			"WITH beat AS (INSERT INTO projector_heartbeats (name, position, head)"
			" VALUES ($1, $2::bigint, $3::bigint) ON CONFLICT (name) DO UPDATE"
			" SET beat_at = now(), position = EXCLUDED.position, head = EXCLUDED.head)"
			" SELECT count(*) FROM projection_parked WHERE name = $1",
			3, params, &res, err);
	if (rc != PV_OK)
		return rc;
	if (PQntuples(res) == 1)
		parked = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	p->beaten = now;
	pv_projector_metrics_state(p->metrics, p->next - 1, p->head, 0, parked);
	return PV_OK;
}

static void report(struct projector *p, bool force)
{
	struct pv_projection_stats s;
	time_t now = time(NULL);

	if (!force && now - p->reported < REPORT_SECONDS)
		return;
	p->reported = now;
	pv_writers_get_stats(p->writers, &s);
	pv_log_info("projector",
		    "at position %" PRId64 ": %lu events folded, %lu skipped, %lu refused; "
		    "%lu head writes, %lu part writes, %lu deletes, %lu rebuilds, %lu conflicts; "
		    "%zu elections parked (%lu parked by this run, %lu of their events skipped); "
		    "%lu pages; %lu Cosmos DB requests; %.2f s folding and writing",
		    p->next, s.events, s.skipped, s.refused, s.elections, s.parts, s.deletes,
		    s.rebuilds, s.conflicts, pv_writers_parked_count(p->writers), s.parked,
		    s.parked_skipped, p->pages, pv_writers_request_count(p->writers), p->applying);
}

/* Opens what is not open yet; false (after a backoff) while something is
 * down or the lock is another's. */
static bool ready(struct projector *p)
{
	struct pv_error err;
	enum pv_err rc;

	if (!p->writers) {
		struct pv_writers_options wo = {
			.writers = p->nwriters,
			.max_bytes = p->max_bytes,
			.cache_elections = p->naive ? 0 : p->cache_elections,
			.write_hook = after_write,
			.park = park,
			.park_ctx = p,
		};

		rc = pv_writers_open(&wo, &p->co, &p->eso, &p->writers, &err);
		if (rc == PV_ERR_CONFIG)
			pv_log_fatalx("projector", "%s", err.msg);
		if (rc != PV_OK) {
			pv_outage_fail(&p->cosmos_out, &err);
			return false;
		}
		pv_outage_ok(&p->cosmos_out);
	}
	if (!p->locked) {
		rc = take_lock(p, &err);
		if (rc == PV_ERR_GONE)
			return false; /* open the new container first */
		if (rc == PV_ERR_CONFLICT) {
			if (!p->waiting_logged) {
				pv_log_info("projector", "%s; waiting to take over", err.msg);
				/* A standby is what it should be: ready. */
				pv_notify_ready("standby: another projector holds the feed");
			}
			p->waiting_logged = true;
			pv_nap(LOCK_POLL_MS, &pv_daemon_stop);
			return false;
		}
		if (rc != PV_OK) {
			drop_pg(p);
			pv_outage_fail(&p->pg_out, &err);
			return false;
		}
		p->waiting_logged = false;
		pv_outage_ok(&p->pg_out);
		pv_notify_ready("projecting: event store, PostgreSQL and Cosmos DB connected");
	}
	return true;
}

/* Projects the page just read and, while the reads bring a backlog
 * (CATCH_UP_MIN events or more), the pages after it, up to CATCH_UP_EVENTS
 * events or until a writer's pending elections fill its cache share: each
 * page is folded as it comes and let go, so only one page of events is held,
 * and each election changed is written once, at the end.  *got: the count
 * of the last read; *last: the position of the last event folded;
 * *reading: the seconds spent reading after the first.  A failed read ends
 * the run (the next step meets the outage). */
static enum pv_err project_pages(struct projector *p, struct pv_es_page *page, size_t max,
				 size_t *got, int64_t *last, double *reading, bool *complete,
				 struct pv_error *err)
{
	size_t folded = 0;
	enum pv_err rc;
	bool read_ok;

	*reading = 0;
	for (;;) {
		double started;
		bool more;

		folded += page->count;
		*last = page->events[page->count - 1].position;
		more = !p->naive && *got >= CATCH_UP_MIN && folded < CATCH_UP_EVENTS;
		pv_projector_metrics_folded(p->metrics, page->events, page->count);
		rc = pv_writers_fold(p->writers, page->events, page->count, &pv_daemon_stop,
				     complete, err);
		pv_es_page_clear(page);
		if (rc != PV_OK || !*complete || !more || pv_writers_pending_full(p->writers) ||
		    pv_daemon_stop)
			break;
		started = pv_prom_now();
		read_ok = pv_es_read_category(p->es, PV_ELECTION_CATEGORY, *last + 1, max, 0, page,
					      err) == PV_OK;
		*reading += pv_prom_now() - started;
		if (!read_ok || page->count == 0) {
			pv_es_page_clear(page);
			break;
		}
		*got = page->count;
	}
	if (rc == PV_OK && *complete)
		rc = pv_writers_flush(p->writers, &pv_daemon_stop, complete, err);
	return rc;
}

/* One page: read, fold and write, checkpoint.  False when the feed had
 * nothing (for --once). */
static bool step(struct projector *p)
{
	struct pv_es_page page = {0};
	struct pv_error err;
	bool complete = false, any;
	size_t max = p->naive ? 1 : p->batch, got;
	double started, took, reading;
	int64_t last;
	enum pv_err rc;
	char *active;
	bool switching;

	/* A switch of container waits for us at a page boundary. */
	rc = read_active(p, &active, &switching, &err);
	if (rc == PV_OK && (switching || strcmp(active, p->container) != 0)) {
		pv_log_info("projector",
			    "the read model moves to another container; letting go of %s", p->name);
		rc = unlock(p, &err);
	}
	free(active);
	if (rc != PV_OK) {
		drop_pg(p);
		pv_outage_fail(&p->pg_out, &err);
		return true;
	}
	if (!p->locked)
		return true;
	rc = pv_es_read_category(p->es, PV_ELECTION_CATEGORY, p->next, max,
				 p->once ? 0 : p->wait_ms, &page, &err);
	if (rc != PV_OK) {
		pv_outage_fail(&p->es_out, &err);
		return true;
	}
	pv_outage_ok(&p->es_out);
	/* Elections un-parked by a rebuild project again. */
	if (pv_writers_parked_count(p->writers) > 0 &&
	    ms_since(&p->parked_read) >= PARKED_RELOAD_MS && read_parked(p, &err) != PV_OK) {
		pv_es_page_clear(&page);
		drop_pg(p);
		pv_outage_fail(&p->pg_out, &err);
		return true;
	}
	any = page.count > 0;
	if (!any) {
		pv_es_page_clear(&page);
		/* Idle: everything before next is projected. */
		p->head = p->next - 1;
		if (heartbeat(p, &err) != PV_OK) {
			drop_pg(p);
			pv_outage_fail(&p->pg_out, &err);
		}
		return false;
	}
	got = page.count;
	started = pv_prom_now();
	rc = project_pages(p, &page, max, &got, &last, &reading, &complete, &err);
	took = pv_prom_now() - started - reading;
	p->applying += took;
	/* A read shorter than asked for ends at the head. */
	if (last > p->head || got < max)
		p->head = last;
	if (rc == PV_OK && complete)
		pv_projector_metrics_page(p->metrics, took);
	else
		pv_projector_metrics_unwritten(p->metrics);
	if (rc != PV_OK && p->park_failed) {
		p->park_failed = false;
		drop_pg(p);
		pv_outage_fail(&p->pg_out, &err);
		return true;
	}
	if (rc != PV_OK) {
		pv_outage_fail(&p->apply_out, &err);
		return true;
	}
	pv_outage_ok(&p->apply_out);
	if (!complete)
		return true; /* stopping: the next run replays this page */
	rc = checkpoint(p, last, &err);
	if (rc != PV_OK) {
		drop_pg(p);
		pv_outage_fail(&p->pg_out, &err);
		return true;
	}
	fault(AT_CHECKPOINT);
	p->next = last + 1;
	p->pages++;
	if (heartbeat(p, &err) != PV_OK) {
		drop_pg(p);
		pv_outage_fail(&p->pg_out, &err);
	}
	report(p, false);
	return true;
}

static void run(struct projector *p)
{
	while (!pv_daemon_stop) {
		if (pv_daemon_reopen) {
			pv_daemon_reopen = 0;
			pv_log_reopen();
		}
		pv_projector_metrics_state(p->metrics, p->next - 1, p->head,
					   pv_prom_now() - p->progressed, -1);
		if (!ready(p))
			continue;
		if (!step(p) && p->once)
			break;
	}
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: photovote-projector [-c FILE] [--migrate DIR] [--once] [--naive]\n"
		"  -c, --config FILE   configuration (default " PV_DAEMON_CONFIG " if it exists,\n"
		"                      or $PHOTOVOTE_CONFIG)\n"
		"  -m, --migrate DIR   apply the PostgreSQL migrations of DIR first\n"
		"      --once          stop when the feed has nothing more\n"
		"      --naive         one event at a time, no cache (benchmark baseline)\n"
		"  -h, --help          this text\n");
}

static void options(struct projector *p, const struct pv_config *cfg)
{
	p->conninfo = pv_config_str(cfg, "postgres", "conninfo");
	pv_es_options_from_config(cfg, &p->eso);
	pv_cosmos_options_from_config(cfg, &p->co);
	p->co.emulator_quirks = pv_config_bool(cfg, "cosmos", "emulator_quirks");
	p->batch = (size_t)pv_config_int(cfg, "projector", "batch_size");
	p->nwriters = p->naive ? 1 : (size_t)pv_config_int(cfg, "projector", "writers");
	p->cache_elections = (size_t)pv_config_int(cfg, "projector", "cache_elections");
	p->heartbeat_ms = (int)pv_config_int(cfg, "projector", "heartbeat_ms");
	/* The long poll is capped by the heartbeat, so an idle projector beats. */
	p->max_bytes = (size_t)pv_config_int(cfg, "projector", "max_document_bytes");
	p->wait_ms = (int)pv_config_int(cfg, "projector", "poll_wait_ms");
	if (p->wait_ms > p->heartbeat_ms)
		p->wait_ms = p->heartbeat_ms;
	p->head = -1;
	p->progressed = pv_prom_now();
	p->metrics = pv_projector_metrics_new(cfg);
	p->co.observe = pv_projector_metrics_cosmos;
	p->co.observe_ctx = p->metrics;
	p->configured = p->co.container;
	p->container = pv_xstrdup(p->configured);
	p->co.container = p->container;
	name_feed(p);
	pv_outage_init(&p->pg_out, "projector", "PostgreSQL (checkpoint)", &pv_daemon_stop);
	pv_outage_init(&p->es_out, "projector", "event store", &pv_daemon_stop);
	pv_outage_init(&p->cosmos_out, "projector", "the writers (Cosmos DB, event store)",
		       &pv_daemon_stop);
	pv_outage_init(&p->apply_out, "projector", "writing documents", &pv_daemon_stop);
	p->reported = time(NULL);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'}, {"migrate", required_argument, NULL, 'm'},
		{"once", no_argument, NULL, 'o'},         {"naive", no_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
	};
	const char *cfgfile = NULL, *migrate_dir = NULL;
	struct projector p;
	struct pv_config *cfg;
	struct pv_error err;
	int opt;

	memset(&p, 0, sizeof p);
	while ((opt = getopt_long(argc, argv, "c:m:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': cfgfile = optarg; break;
		case 'm': migrate_dir = optarg; break;
		case 'o': p.once = true; break;
		case 'n': p.naive = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	pv_log_init("photovote-projector", PV_LOG_STDERR, PV_LOG_INFO);
	/* Test equipment, not configuration: read and removed first, since the
	 * config module refuses PHOTOVOTE_* variables it does not know. */
	if (fault_parse(getenv("PHOTOVOTE_FAULT"), &err) != PV_OK)
		pv_log_fatalx("config", "%s", err.msg);
	unsetenv("PHOTOVOTE_FAULT");
	cfg = pv_daemon_config_load("photovote-projector", cfgfile);
	options(&p, cfg);
	if (migrate_dir)
		pv_daemon_migrate(p.conninfo, migrate_dir);
	pv_daemon_signals();
	/* A store that is down at start is an outage like any other. */
	while (!pv_daemon_stop) {
		enum pv_err rc = pv_es_open(&p.eso, &p.es, &err);

		if (rc == PV_OK)
			break;
		if (rc == PV_ERR_CONFIG)
			pv_log_fatalx("eventstore", "%s", err.msg);
		pv_outage_fail(&p.es_out, &err);
	}
	if (p.es) {
		pv_log_info("projector", "started (event store: %s, feed %s)", p.eso.backend,
			    p.name);
		run(&p);
		pv_notify_stopping();
		report(&p, true);
	}
	pv_writers_close(p.writers);
	pv_projector_metrics_free(p.metrics);
	pv_es_close(p.es);
	if (p.pg)
		PQfinish(p.pg);
	free(p.name);
	free(p.container);
	pv_config_free(cfg);
	pv_log_info("projector", "stopped");
	return 0;
}
