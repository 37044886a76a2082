/* Where the projector stands (projection_state.h). */
/* timegm: _DEFAULT_SOURCE comes from the build. */

#include "projection_state.h"

#include "pgutil.h"
#include "projection.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

long pv_seconds_since(const char *t)
{
	struct tm tm;
	int n = 0;
	time_t at;

	memset(&tm, 0, sizeof tm);
	if (!t ||
	    sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 ||
	    n == 0)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	at = timegm(&tm);
	if (at == (time_t)-1)
		return -1;
	return (long)difftime(time(NULL), at);
}

void pv_projection_state_clear(struct pv_projection_state *p)
{
	free(p->oldest_waiting);
	free(p->checkpoint_at);
	free(p->beat_at);
	json_decref(p->parked);
	json_decref(p->containers);
	memset(p, 0, sizeof *p);
}

/* The first event after the checkpoint: how long it has waited. */
static void oldest_waiting(struct pv_session *s, struct pv_projection_state *p)
{
	struct pv_es_page page = {0};
	struct pv_error err;
	struct pv_es *es = NULL;

	p->lag_seconds = -1;
	if (p->st.store_rc != PV_OK || p->st.checkpoint_rc != PV_OK)
		return;
	if (p->st.lag == 0) {
		p->lag_seconds = 0;
		return;
	}
	if (pv_session_es(s, &es, &err) != PV_OK)
		return;
	if (pv_es_read_category(es, PV_ELECTION_CATEGORY, p->st.checkpoint + 1, 1, 0, &page,
				&err) != PV_OK) {
		pv_session_es_failed(s, &err);
		return;
	}
	if (page.count > 0) {
		p->oldest_waiting = pv_xstrdup(page.events[0].created);
		p->lag_seconds = pv_seconds_since(p->oldest_waiting);
	}
	pv_es_page_clear(&page);
}

#define TIME(col)                                                                                  \
	"coalesce(to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '')"

/* The checkpoint's last write and the heartbeat (sql/004, sql/009). */
static enum pv_err progress(struct pv_session *s, struct pv_projection_state *p,
			    struct pv_error *err)
{
	const char *params[1] = {pv_session_feed(s)};
	PGconn *conn = NULL;
	PGresult *res;

	p->beat_age = -1;
	p->beat_head = -1;
	if (pv_session_pg(s, &conn, err) != PV_OK)
		return err->code;
	if (pv_pg_exec(conn, "read the projector's progress",
		       "SELECT " TIME("c.updated") ", " TIME(
			       "h.beat_at") ", coalesce(h.head, -1)"
					    " FROM (SELECT $1::text AS name) n"
					    " LEFT JOIN projector_checkpoints c ON c.name = n.name"
					    " LEFT JOIN projector_heartbeats h ON h.name = n.name",
		       1, params, &res, err) != PV_OK)
		return pv_session_pg_failed(s, err);
	if (PQntuples(res) == 1) {
		if (*PQgetvalue(res, 0, 0))
			p->checkpoint_at = pv_xstrdup(PQgetvalue(res, 0, 0));
		if (*PQgetvalue(res, 0, 1)) {
			p->beat_at = pv_xstrdup(PQgetvalue(res, 0, 1));
			p->beat_age = pv_seconds_since(p->beat_at);
		}
		p->beat_head = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	}
	PQclear(res);
	return PV_OK;
}

void pv_projection_state_read(struct pv_session *s, struct pv_projection_state *p)
{
	struct pv_error err;

	memset(p, 0, sizeof *p);
	pv_session_status(s, &p->st, &err);
	oldest_waiting(s, p);
	p->progress_rc = progress(s, p, &p->progress_err);
	p->parked_rc = pv_session_parked(s, &p->parked, &p->parked_err);
	p->containers_rc = pv_session_containers(s, &p->containers, &p->containers_err);
}
