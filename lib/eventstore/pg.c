/* The `postgres` event store: streams in PostgreSQL (sql/001_event_store.sql).
 *
 * Outwardly it behaves as EventStoreDB's HTTP API does (protocols.md 1-4):
 * expected versions, idempotent re-sends, soft and hard delete, 4 MiB events.
 *
 * Append is one transaction:
 *   1. upsert the stream's row in es_streams and hold its row lock: appenders
 *      and deleters of one stream run one at a time, so two cannot both win;
 *   2. check the expected version (or recognise a re-send of the same ids,
 *      then answer success and write nothing);
 *   3. take the next positions from the category's row in es_categories,
 *      whose row lock is held until commit;
 *   4. insert the events, update the stream's version, pg_notify, commit.
 * Locks are always taken stream first, then category, so appenders cannot
 * deadlock.  Because step 3 serialises the appenders of a category up to
 * their commit, positions are committed in increasing order with no holes:
 * once a reader sees position p, every position below p is visible too, and
 * a reader that checkpoints on positions never skips an event committed
 * late.  The cost is that appends to one category are serialised for the
 * short end of their transactions; other categories do not wait.  (A global
 * sequence read by transaction id would avoid that, but needs snapshot
 * arithmetic that is easy to get wrong; one counter row is easy to prove.)
 * Positions are therefore per category, starting at 0, as the event
 * numbers of EventStoreDB's $ce-<category> stream.  A delete removes events,
 * which leaves holes in a category's positions; readers never rely on
 * positions being dense, only increasing.
 *
 * Data and metadata are stored as `json` (the text as jansson wrote it,
 * validated by the server) rather than `jsonb`, which would reorder keys
 * and drop duplicates: events come back exactly as they were appended.
 *
 * read_category waits with LISTEN/NOTIFY: every append notifies channel
 * `pv_es` with its category as payload at commit; a reader that found
 * nothing LISTENs (once per connection), queries again and sleeps in poll()
 * on the connection's socket until a notification for its category or the
 * deadline.  The query after LISTEN closes the race with a commit that
 * happens between the first look and the LISTEN.
 *
 * The unit of work (eventstore.h) is one transaction on the handle's
 * connection, which the caller's sink shares: appends then skip their
 * BEGIN/COMMIT and leave the ending to the unit.
 *
 * A handle is one connection and is not thread-safe.  When the server went
 * away, the next call reconnects once (pv_pg_ensure) and sets the session
 * up again. */
#include "eventstore/pg.h"
#include "buf.h"
#include "log.h"
#include "pgutil.h"
#include "xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Longest stream name (also enforced by the schema). */
#define PG_NAME_MAX 1024
/* Most events one read returns, whatever the caller asks. */
#define PG_PAGE_MAX 4096
#define PG_CHANNEL "pv_es"
/* The most COPY text kept between appends. */
#define PG_COPY_KEEP_MAX (16u << 20)

#define TIME_SQL(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

struct pg_es {
	struct pv_es base;
	PGconn *conn;
	long timeout_ms;
	bool listening;
	bool in_tx;         /* a unit of work is open (pg_begin) */
	struct pv_buf copy; /* COPY text of append_many, kept to spare the allocator */
};

static struct pg_es *pg_of(struct pv_es *es)
{
	return (struct pg_es *)es;
}

/* Session settings, again after a reconnect. */
static enum pv_err session_setup(struct pg_es *pg, struct pv_error *err)
{
	char sql[64];

	pg->listening = false;
	if (pg->timeout_ms <= 0)
		return PV_OK;
	snprintf(sql, sizeof sql, "SET statement_timeout = %ld", pg->timeout_ms);
	return pv_pg_command(pg->conn, "event store: session setup", sql, err);
}

/* Frees notifications libpq has already read.  They all stand for commits
 * made before now, which the caller's next query sees anyway; without this
 * a handle that once listened and then only appends would pile them up. */
static void drain_notifies(struct pg_es *pg)
{
	PGnotify *n;

	while ((n = PQnotifies(pg->conn)) != NULL)
		PQfreemem(n);
}

static enum pv_err ensure(struct pg_es *pg, struct pv_error *err)
{
	enum pv_err rc;

	drain_notifies(pg);
	if (PQstatus(pg->conn) == CONNECTION_OK)
		return PV_OK;
	/* A new connection would silently run the rest of the caller's
	 * transaction outside of it. */
	if (pg->in_tx)
		return pv_error_set(err, PV_ERR_UNAVAILABLE,
				    "event store: connection lost inside a transaction");
	rc = pv_pg_ensure(pg->conn, err);
	if (rc == PV_OK)
		rc = session_setup(pg, err);
	return rc;
}

static enum pv_err check_stream_name(const char *stream, struct pv_error *err)
{
	if (!stream || !*stream)
		return pv_error_set(err, PV_ERR_INVALID, "event store: empty stream name");
	if (strlen(stream) > PG_NAME_MAX)
		return pv_error_set(err, PV_ERR_INVALID,
				    "event store: stream name longer than %d bytes", PG_NAME_MAX);
	if (stream[0] == '$')
		return pv_error_set(err, PV_ERR_INVALID,
				    "event store: stream names starting with '$' are reserved");
	return PV_OK;
}

/* The category: the text before the first '-' (none: the empty category,
 * which no category reader can ask for, as $by_category skips such names). */
static char *category_of(const char *stream)
{
	const char *dash = strchr(stream, '-');

	return dash ? pv_xstrndup(stream, (size_t)(dash - stream)) : pv_xstrdup("");
}

static void fmt_i64(char buf[24], int64_t v)
{
	snprintf(buf, 24, "%" PRId64, v);
}

/* Appends one element of a PostgreSQL array literal: quoted, with " and \
 * escaped; NULL as the unquoted keyword. */
static void array_elem(struct pv_buf *b, const char *text)
{
	pv_buf_puts(b, b->len > 1 ? "," : "");
	if (!text) {
		pv_buf_puts(b, "NULL");
		return;
	}
	pv_buf_puts(b, "\"");
	for (;;) {
		size_t run = strcspn(text, "\"\\");

		pv_buf_append(b, text, run);
		text += run;
		if (!*text)
			break;
		pv_buf_append(b, "\\", 1);
		pv_buf_append(b, text++, 1);
	}
	pv_buf_puts(b, "\"");
}

/* The two parameters of a statement over (name, count) pairs: a text[] and
 * a bigint[] literal, built pair by pair and freed by names_counts_exec. */
struct names_counts {
	struct pv_buf names, counts;
	size_t n;
};

static void names_counts_init(struct names_counts *nc)
{
	*nc = (struct names_counts){PV_BUF_INIT, PV_BUF_INIT, 0};
	pv_buf_puts(&nc->names, "{");
	pv_buf_puts(&nc->counts, "{");
}

static void names_counts_add(struct names_counts *nc, const char *name, int64_t count)
{
	array_elem(&nc->names, name);
	pv_buf_printf(&nc->counts, "%s%" PRId64, nc->n++ ? "," : "", count);
}

/* Runs sql with $1 the names and $2 the counts; frees them either way. */
static enum pv_err names_counts_exec(struct pg_es *pg, struct names_counts *nc, const char *what,
				     const char *sql, PGresult **res, struct pv_error *err)
{
	const char *params[2];
	enum pv_err rc;

	pv_buf_puts(&nc->names, "}");
	pv_buf_puts(&nc->counts, "}");
	params[0] = nc->names.data;
	params[1] = nc->counts.data;
	rc = pv_pg_exec(pg->conn, what, sql, 2, params, res, err);
	pv_buf_free(&nc->names);
	pv_buf_free(&nc->counts);
	return rc;
}

static enum pv_err fail_txn(struct pg_es *pg, enum pv_err rc)
{
	pv_pg_rollback(pg->conn);
	return rc;
}

/* ---- append ---------------------------------------------------------- */

struct batch {
	struct pv_buf ids, types, datas, metas; /* array literals */
};

static void batch_free(struct batch *b)
{
	pv_buf_free(&b->ids);
	pv_buf_free(&b->types);
	pv_buf_free(&b->datas);
	pv_buf_free(&b->metas);
}

static void batch_open(struct batch *b)
{
	*b = (struct batch){PV_BUF_INIT, PV_BUF_INIT, PV_BUF_INIT, PV_BUF_INIT};
	pv_buf_puts(&b->ids, "{");
	pv_buf_puts(&b->types, "{");
	pv_buf_puts(&b->datas, "{");
	pv_buf_puts(&b->metas, "{");
}

static void batch_close(struct batch *b)
{
	pv_buf_puts(&b->ids, "}");
	pv_buf_puts(&b->types, "}");
	pv_buf_puts(&b->datas, "}");
	pv_buf_puts(&b->metas, "}");
}

/* Validates event i and encodes its data and metadata (NULL: none); the
 * caller frees both. */
static enum pv_err event_texts(const struct pv_es_new_event *e, size_t i, char **data_out,
			       char **meta_out, struct pv_error *err)
{
	const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
	char *data, *meta = NULL;
	size_t size;

	if (!e->id || !pv_uuid_valid(e->id))
		return pv_error_set(err, PV_ERR_INVALID, "append: event %zu: bad event id", i);
	if (!e->type || !*e->type)
		return pv_error_set(err, PV_ERR_INVALID, "append: event %zu: empty type", i);
	if (!e->data || !(json_is_object(e->data) || json_is_array(e->data)))
		return pv_error_set(err, PV_ERR_INVALID,
				    "append: event %zu: data is not a JSON object or array", i);
	data = json_dumps(e->data, flags);
	if (e->metadata && !json_is_null(e->metadata))
		meta = json_dumps(e->metadata, flags);
	if (!data || (e->metadata && !json_is_null(e->metadata) && !meta)) {
		free(data);
		free(meta);
		return pv_error_set(err, PV_ERR_JSON,
				    "append: event %zu: jansson could not encode its data", i);
	}
	size = strlen(data) + (meta ? strlen(meta) : 0);
	if (size > PV_ES_EVENT_MAX) {
		free(data);
		free(meta);
		return pv_error_set(err, PV_ERR_TOO_LARGE,
				    "append: event %zu: data and metadata are %zu bytes, over %u",
				    i, size, PV_ES_EVENT_MAX);
	}
	*data_out = data;
	*meta_out = meta;
	return PV_OK;
}

/* Validates event i and adds it to the four array literals. */
static enum pv_err batch_add(struct batch *b, const struct pv_es_new_event *e, size_t i,
			     struct pv_error *err)
{
	char *data, *meta;
	enum pv_err rc = event_texts(e, i, &data, &meta, err);

	if (rc != PV_OK)
		return rc;
	array_elem(&b->ids, e->id);
	array_elem(&b->types, e->type);
	array_elem(&b->datas, data);
	array_elem(&b->metas, meta);
	free(data);
	free(meta);
	return PV_OK;
}

/* Validates the events and encodes them as four array literals. */
static enum pv_err batch_build(const struct pv_es_new_event *events, size_t count, struct batch *b,
			       struct pv_error *err)
{
	batch_open(b);
	for (size_t i = 0; i < count; i++) {
		enum pv_err rc = batch_add(b, &events[i], i, err);
		if (rc != PV_OK)
			return rc;
	}
	batch_close(b);
	return PV_OK;
}

/* Expected N (or -1, first = 0): do the ids already sit at first...?  Yes:
 * *version is the last of them.  No, or only some: PV_ERR_CONFLICT. */
static enum pv_err resent_at(struct pg_es *pg, const char *stream, int64_t first,
			     const struct pv_es_new_event *events, size_t count, int64_t *version,
			     struct pv_error *err)
{
	char from[24], limit[24];
	const char *params[3] = {stream, from, limit};
	PGresult *res;
	enum pv_err rc;
	size_t i;

	fmt_i64(from, first);
	fmt_i64(limit, (int64_t)count);
	rc = pv_pg_exec(pg->conn, "append: idempotency check",
			"SELECT number, id FROM es_events"
			" WHERE stream = $1 AND number >= $2::bigint"
			" ORDER BY number LIMIT $3::bigint",
			3, params, &res, err);
	if (rc != PV_OK)
		return rc;
	for (i = 0; i < count && i < (size_t)PQntuples(res); i++)
		if (strtoll(PQgetvalue(res, (int)i, 0), NULL, 10) != first + (int64_t)i ||
		    strcasecmp(PQgetvalue(res, (int)i, 1), events[i].id) != 0)
			break;
	PQclear(res);
	if (i < count)
		return PV_ERR_CONFLICT;
	*version = first + (int64_t)count - 1;
	return PV_OK;
}

/* Expected -2/-4: are the ids in the stream?  All of them: PV_OK with the
 * last one's number.  The first not: PV_ERR_NOT_FOUND (write them).  The
 * first but not all: PV_ERR_CONFLICT. */
static enum pv_err resent_any(struct pg_es *pg, const char *stream, const struct batch *b,
			      const struct pv_es_new_event *events, size_t count, int64_t *version,
			      struct pv_error *err)
{
	const char *params[2] = {stream, b->ids.data};
	PGresult *res;
	enum pv_err rc;
	int64_t last = -1;
	size_t found = 0;

	rc = pv_pg_exec(pg->conn, "append: idempotency look-up",
			"SELECT id, max(number) FROM es_events"
			" WHERE stream = $1 AND id = ANY ($2::uuid[]) GROUP BY id",
			2, params, &res, err);
	if (rc != PV_OK)
		return rc;
	for (size_t i = 0; i < count; i++) {
		int r;
		for (r = 0; r < PQntuples(res); r++)
			if (strcasecmp(PQgetvalue(res, r, 0), events[i].id) == 0)
				break;
		if (r == PQntuples(res))
			break;
		found++;
		last = strtoll(PQgetvalue(res, r, 1), NULL, 10);
	}
	PQclear(res);
	if (found == 0)
		return PV_ERR_NOT_FOUND;
	if (found < count)
		return PV_ERR_CONFLICT;
	*version = last;
	return PV_OK;
}

static enum pv_err conflict(struct pv_error *err, const char *op, const char *stream,
			    int64_t expected, int64_t current, int64_t *version)
{
	if (version)
		*version = current;
	return pv_error_set(err, PV_ERR_CONFLICT,
			    "%s %s: wrong expected version %" PRId64 ", current version %" PRId64,
			    op, stream, expected, current);
}

/* Locks the stream's row (creating it, uncommitted, in state `state` when
 * missing) and reports its version and whether it exists and was erased. */
static enum pv_err lock_stream(struct pg_es *pg, const char *stream, const char *category,
			       const char *state, int64_t *cur, char *cur_state,
			       struct pv_error *err)
{
	const char *params[3] = {stream, category, state};
	PGresult *res;
	enum pv_err rc;

	rc = pv_pg_exec(pg->conn, "event store: lock stream",
			"INSERT INTO es_streams (name, category, state) VALUES ($1, $2, $3)"
			" ON CONFLICT (name) DO UPDATE SET name = excluded.name"
			" RETURNING version, state",
			3, params, &res, err);
	if (rc != PV_OK)
		return rc;
	*cur = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	*cur_state = PQgetvalue(res, 0, 1)[0]; /* 'l'ive, 's'oft, 'h'ard */
	PQclear(res);
	return PV_OK;
}

static enum pv_err write_events(struct pg_es *pg, const char *stream, const char *category,
				const struct batch *b, size_t count, int64_t first,
				struct pv_error *err)
{
	char cnt[24], num[24], pos[24], last[24];
	const char *cat_params[2] = {category, cnt};
	const char *ins_params[8] = {stream,      num,           category,      pos,
				     b->ids.data, b->types.data, b->datas.data, b->metas.data};
	const char *upd_params[2] = {stream, last};
	const char *ntf_params[1] = {category};
	PGresult *res;
	enum pv_err rc;

	fmt_i64(cnt, (int64_t)count);
	fmt_i64(num, first);
	fmt_i64(last, first + (int64_t)count - 1);
	rc = pv_pg_exec(pg->conn, "append: allocate positions",
			"INSERT INTO es_categories (name, next_position) VALUES ($1, $2::bigint)"
			" ON CONFLICT (name) DO UPDATE"
			" SET next_position = es_categories.next_position + excluded.next_position"
			" RETURNING next_position - $2::bigint",
			2, cat_params, &res, err);
	if (rc != PV_OK)
		return rc;
	snprintf(pos, sizeof pos, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	rc = pv_pg_exec(pg->conn, "append: insert events",
			"INSERT INTO es_events"
			" (stream, number, category, position, id, type, data, metadata)"
			" SELECT $1, $2::bigint + u.o - 1, $3, $4::bigint + u.o - 1,"
			" u.id, u.type, u.data, u.metadata"
			" FROM unnest($5::uuid[], $6::text[], $7::json[], $8::json[])"
			" WITH ORDINALITY AS u (id, type, data, metadata, o)",
			8, ins_params, NULL, err);
	if (rc != PV_OK)
		return rc;
	rc = pv_pg_exec(pg->conn, "append: update stream",
			"UPDATE es_streams"
			" SET version = $2::bigint, state = 'live', updated = now()"
			" WHERE name = $1",
			2, upd_params, NULL, err);
	if (rc != PV_OK)
		return rc;
	return pv_pg_exec(pg->conn, "append: notify", "SELECT pg_notify('" PG_CHANNEL "', $1)", 1,
			  ntf_params, NULL, err);
}

static enum pv_err append_once(struct pv_es *es, const char *stream, int64_t expected,
			       const struct pv_es_new_event *events, size_t count, int64_t *version,
			       struct pv_error *err)
{
	struct pg_es *pg = pg_of(es);
	struct batch b;
	char *category = NULL;
	int64_t cur, first;
	char state;
	bool exists;
	enum pv_err rc;

	rc = check_stream_name(stream, err);
	if (rc != PV_OK)
		return rc;
	if (count == 0)
		return pv_error_set(err, PV_ERR_INVALID, "append to %s: no events", stream);
	if (expected < PV_ES_STREAM_EXISTS || expected == -3)
		return pv_error_set(err, PV_ERR_INVALID,
				    "append to %s: bad expected version %" PRId64, stream,
				    expected);
	rc = batch_build(events, count, &b, err);
	if (rc != PV_OK)
		goto out;
	category = category_of(stream);
	if (!pg->in_tx) {
		rc = ensure(pg, err);
		if (rc == PV_OK)
			rc = pv_pg_command(pg->conn, "append: begin", "BEGIN", err);
		if (rc != PV_OK)
			goto out;
	}
	rc = lock_stream(pg, stream, category, "live", &cur, &state, err);
	if (rc != PV_OK)
		goto rollback;
	if (state == 'h') {
		rc = pv_error_set(err, PV_ERR_GONE, "append to %s: stream is deleted for good",
				  stream);
		goto rollback;
	}
	exists = state == 'l' && cur >= 0;
	first = cur + 1;
	if (expected == PV_ES_ANY || expected == PV_ES_STREAM_EXISTS) {
		if (expected == PV_ES_STREAM_EXISTS && !exists) {
			rc = conflict(err, "append to", stream, expected, cur, version);
			goto rollback;
		}
		rc = PV_ERR_NOT_FOUND; /* none of the ids there: write them */
		if (exists)
			rc = resent_any(pg, stream, &b, events, count, version, err);
		if (rc == PV_ERR_CONFLICT)
			rc = conflict(err, "append to", stream, expected, cur, version);
		if (rc != PV_ERR_NOT_FOUND)
			goto rollback; /* done (re-send), or failed: nothing to write */
	} else if (expected == PV_ES_NO_STREAM ? exists : cur != expected) {
		/* Not where the caller thought: a re-send, or a conflict. */
		if (cur > expected) {
			rc = resent_at(pg, stream, expected + 1, events, count, version, err);
			if (rc != PV_ERR_CONFLICT)
				goto rollback;
		}
		rc = conflict(err, "append to", stream, expected, cur, version);
		goto rollback;
	}
	rc = write_events(pg, stream, category, &b, count, first, err);
	if (rc != PV_OK)
		goto rollback;
	if (!pg->in_tx)
		rc = pv_pg_command(pg->conn, "append: commit", "COMMIT", err);
	if (rc != PV_OK)
		goto rollback;
	*version = first + (int64_t)count - 1;
	goto out;
rollback:
	/* Also the way out of a successful re-send: nothing was written.  In
	 * the caller's transaction, ending it is the caller's business. */
	if (!pg->in_tx)
		fail_txn(pg, rc);
out:
	free(category);
	batch_free(&b);
	return rc;
}

/* ---- appends to many streams at once (pg.h) ---------------------------- */

/* One stream of a multi-stream append, as the statements see it. */
struct slot {
	const char *name;
	size_t index; /* in the caller's array */
	char *category;
	size_t cat;     /* index into the distinct categories */
	bool moved;     /* at its new version (many_move) */
	bool continued; /* was soft-deleted; numbering goes on from its last number */
	int64_t base;   /* the number before its first new event */
};

static int slot_cmp(const void *a, const void *b)
{
	return strcmp(((const struct slot *)a)->name, ((const struct slot *)b)->name);
}

/* A distinct category of the batch: its share of positions. */
struct cat_share {
	const char *name;
	int64_t count, next;
};

/* Checks the names and sorts the requests by stream name into slots (the
 * dispatcher has refused empty requests, bad versions and repeated
 * names). */
static enum pv_err many_slots(const struct pv_es_append_req *appends, size_t n, struct slot *slots,
			      struct pv_error *err)
{
	for (size_t i = 0; i < n; i++) {
		enum pv_err rc = check_stream_name(appends[i].stream, err);

		if (rc != PV_OK)
			return rc;
		slots[i] = (struct slot){.name = appends[i].stream, .index = i};
	}
	qsort(slots, n, sizeof *slots, slot_cmp);
	return PV_OK;
}

/* Moves every stream to its new version if it is where the caller
 * expected: one UPDATE for the existing streams (its WHERE is the version
 * check, and it takes the row locks: a writer that committed meanwhile is
 * seen, as READ COMMITTED re-checks an updated row), one INSERT for the
 * new ones.  Rows are visited in name order, as another batch would visit
 * them, which keeps two appenders from deadlocking in the common case (the
 * server breaks the rare other one, and the caller starts over).  A stream
 * that did not move keeps moved false, for many_refused. */
static enum pv_err many_continue(struct pg_es *pg, const struct pv_es_append_req *appends,
				 struct slot *slots, size_t n, struct pv_error *err);

static enum pv_err many_move(struct pg_es *pg, const struct pv_es_append_req *appends,
			     struct slot *slots, size_t n, struct pv_error *err)
{
	struct pv_buf names[2] = {PV_BUF_INIT, PV_BUF_INIT}, cats = PV_BUF_INIT,
		      expected = PV_BUF_INIT, versions[2] = {PV_BUF_INIT, PV_BUF_INIT};
	size_t counts[2] = {0, 0};
	enum pv_err rc = PV_OK;

	for (int k = 0; k < 2; k++) {
		pv_buf_puts(&names[k], "{");
		pv_buf_puts(&versions[k], "{");
	}
	pv_buf_puts(&cats, "{");
	pv_buf_puts(&expected, "{");
	for (size_t i = 0; i < n; i++) {
		const struct pv_es_append_req *a = &appends[slots[i].index];
		int k = a->expected == PV_ES_NO_STREAM; /* 0: update, 1: insert */

		slots[i].moved = slots[i].continued = false;
		slots[i].base = a->expected;
		array_elem(&names[k], slots[i].name);
		pv_buf_printf(&versions[k], "%s%" PRId64, counts[k] ? "," : "",
			      a->expected + (int64_t)a->count);
		if (k)
			array_elem(&cats, slots[i].category);
		else
			pv_buf_printf(&expected, "%s%" PRId64, counts[k] ? "," : "", a->expected);
		counts[k]++;
	}
	for (int k = 0; k < 2; k++) {
		pv_buf_puts(&names[k], "}");
		pv_buf_puts(&versions[k], "}");
	}
	pv_buf_puts(&cats, "}");
	pv_buf_puts(&expected, "}");
	for (int k = 0; k < 2 && rc == PV_OK; k++) {
		const char *params[3] = {names[k].data, versions[k].data,
					 k ? cats.data : expected.data};
		PGresult *res;

		if (counts[k] == 0)
			continue;
		if (k == 0)
			rc = pv_pg_exec(pg->conn, "append: move streams",
					"UPDATE es_streams AS s SET version = u.version,"
					" updated = now()"
					" FROM (SELECT * FROM unnest($1::text[], $2::bigint[],"
					" $3::bigint[]) AS u (name, version, expected)"
					" ORDER BY name COLLATE \"C\") AS u"
					" WHERE s.name = u.name AND s.state = 'live'"
					" AND s.version = u.expected RETURNING s.name",
					3, params, &res, err);
		else
			rc = pv_pg_exec(
				pg->conn, "append: create streams",
				"INSERT INTO es_streams (name, version, category)"
				" SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[])"
				" AS u (name, version, category) ORDER BY name COLLATE \"C\""
				" ON CONFLICT (name) DO NOTHING RETURNING name",
				3, params, &res, err);
		if (rc != PV_OK)
			break;
		for (int r = 0; r < PQntuples(res); r++) {
			struct slot key = {.name = PQgetvalue(res, r, 0)};
			struct slot *s = bsearch(&key, slots, n, sizeof *slots, slot_cmp);

			if (s)
				s->moved = true;
		}
		PQclear(res);
	}
	for (int k = 0; k < 2; k++) {
		pv_buf_free(&names[k]);
		pv_buf_free(&versions[k]);
	}
	pv_buf_free(&cats);
	pv_buf_free(&expected);
	if (rc == PV_OK && counts[1] > 0)
		rc = many_continue(pg, appends, slots, n, err);
	return rc;
}

/* The new streams that were not created because they exist soft-deleted:
 * brought back, their numbering going on from their last number (a soft
 * delete keeps the version), which is what append_once does for them. */
static enum pv_err many_continue(struct pg_es *pg, const struct pv_es_append_req *appends,
				 struct slot *slots, size_t n, struct pv_error *err)
{
	struct names_counts nc;
	PGresult *res;
	enum pv_err rc;

	names_counts_init(&nc);
	for (size_t i = 0; i < n; i++) {
		const struct pv_es_append_req *a = &appends[slots[i].index];

		if (!slots[i].moved && a->expected == PV_ES_NO_STREAM)
			names_counts_add(&nc, slots[i].name, (int64_t)a->count);
	}
	/* Most batches create no stream that exists. */
	if (nc.n == 0) {
		pv_buf_free(&nc.names);
		pv_buf_free(&nc.counts);
		return PV_OK;
	}
	rc = names_counts_exec(pg, &nc, "append: continue soft-deleted streams",
			       "UPDATE es_streams AS s SET version = s.version + u.count,"
			       " state = 'live', updated = now()"
			       " FROM (SELECT * FROM unnest($1::text[], $2::bigint[])"
			       " AS u (name, count) ORDER BY name COLLATE \"C\") AS u"
			       " WHERE s.name = u.name AND s.state = 'soft'"
			       " RETURNING s.name, s.version - u.count",
			       &res, err);
	if (rc != PV_OK)
		return rc;
	for (int r = 0; r < PQntuples(res); r++) {
		struct slot key = {.name = PQgetvalue(res, r, 0)};
		struct slot *s = bsearch(&key, slots, n, sizeof *slots, slot_cmp);

		if (!s)
			continue;
		s->moved = s->continued = true;
		s->base = strtoll(PQgetvalue(res, r, 1), NULL, 10);
	}
	PQclear(res);
	return PV_OK;
}

/* A stream that did not move: deleted for good, or not at the expected
 * version (a soft-deleted one expected at a number: it has none now). */
static enum pv_err many_refused(struct pg_es *pg, struct pv_es_append_req *a, struct pv_error *err)
{
	const char *params[1] = {a->stream};
	PGresult *res;
	enum pv_err rc;
	int64_t cur = -1;
	char state = 'l';

	rc = pv_pg_exec(pg->conn, "append: look at a stream that did not move",
			"SELECT version, state FROM es_streams WHERE name = $1", 1, params, &res,
			err);
	if (rc != PV_OK)
		return rc;
	if (PQntuples(res) == 1) {
		cur = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		state = PQgetvalue(res, 0, 1)[0];
	}
	PQclear(res);
	a->version = cur;
	if (state == 'h')
		return pv_error_set(err, PV_ERR_GONE, "append to %s: stream is deleted for good",
				    a->stream);
	return conflict(err, "append to", a->stream, a->expected, cur, NULL);
}

/* Takes each category's positions: one counter row per category, locked
 * after the streams (the order single appends use too) until commit. */
static enum pv_err many_positions(struct pg_es *pg, struct cat_share *cats, size_t ncats,
				  struct pv_error *err)
{
	struct names_counts nc;
	PGresult *res;
	enum pv_err rc;

	names_counts_init(&nc);
	for (size_t k = 0; k < ncats; k++) {
		names_counts_add(&nc, cats[k].name, cats[k].count);
		cats[k].next = -1;
	}
	rc = names_counts_exec(
		pg, &nc, "append: allocate positions",
		"INSERT INTO es_categories (name, next_position)"
		" SELECT u.name, u.count FROM unnest($1::text[], $2::bigint[])"
		" AS u (name, count) ORDER BY u.name COLLATE \"C\""
		" ON CONFLICT (name) DO UPDATE"
		" SET next_position = es_categories.next_position + excluded.next_position"
		" RETURNING name, next_position",
		&res, err);
	if (rc != PV_OK)
		return rc;
	for (int r = 0; r < PQntuples(res); r++)
		for (size_t k = 0; k < ncats; k++)
			if (strcmp(cats[k].name, PQgetvalue(res, r, 0)) == 0)
				cats[k].next =
					strtoll(PQgetvalue(res, r, 1), NULL, 10) - cats[k].count;
	PQclear(res);
	for (size_t k = 0; k < ncats; k++)
		if (cats[k].next < 0)
			return pv_error_set(err, PV_ERR_DATABASE,
					    "append: allocate positions: no row came back for"
					    " category %s",
					    cats[k].name);
	return PV_OK;
}

/* Inserts every event (COPY: the cheapest way in for the server) and
 * notifies each category: two statements whatever the number of streams. */
static enum pv_err many_write(struct pg_es *pg, const struct pv_es_append_req *appends, size_t n,
			      const struct slot *slots, struct cat_share *cats, size_t ncats,
			      struct pv_error *err)
{
	struct pv_buf *rows = &pg->copy, cat_names = PV_BUF_INIT;
	enum pv_err rc = PV_OK;
	size_t seq = 0;

	pv_buf_reset(rows);
	for (size_t i = 0; i < n && rc == PV_OK; i++) {
		const struct slot *s = &slots[i];
		const struct pv_es_append_req *a = &appends[s->index];
		struct cat_share *c = &cats[s->cat];

		for (size_t j = 0; j < a->count && rc == PV_OK; j++, seq++) {
			char num[24], pos[24], *data, *meta;

			rc = event_texts(&a->events[j], seq, &data, &meta, err);
			if (rc != PV_OK)
				break;
			fmt_i64(num, s->base + 1 + (int64_t)j);
			fmt_i64(pos, c->next++);
			pv_pg_copy_field(rows, s->name, '\t');
			pv_pg_copy_field(rows, num, '\t');
			pv_pg_copy_field(rows, s->category, '\t');
			pv_pg_copy_field(rows, pos, '\t');
			pv_pg_copy_field(rows, a->events[j].id, '\t');
			pv_pg_copy_field(rows, a->events[j].type, '\t');
			pv_pg_copy_field(rows, data, '\t');
			pv_pg_copy_field(rows, meta, '\n');
			free(data);
			free(meta);
		}
	}
	if (rc == PV_OK)
		rc = pv_pg_copy_in(pg->conn, "append: insert events",
				   "COPY es_events"
				   " (stream, number, category, position, id, type, data, metadata)"
				   " FROM STDIN",
				   rows->data, rows->len, err);
	if (rc == PV_OK) {
		const char *params[1];

		pv_buf_puts(&cat_names, "{");
		for (size_t k = 0; k < ncats; k++)
			array_elem(&cat_names, cats[k].name);
		pv_buf_puts(&cat_names, "}");
		params[0] = cat_names.data;
		rc = pv_pg_exec(pg->conn, "append: notify",
				"SELECT pg_notify('" PG_CHANNEL
				"', c) FROM unnest($1::text[]) AS c",
				1, params, NULL, err);
	}
	/* Room for a usual batch is worth keeping; for one of huge events not. */
	if (rows->cap > PG_COPY_KEEP_MAX)
		pv_buf_free(rows);
	pv_buf_free(&cat_names);
	return rc;
}

/* The unit's appends (eventstore.h), in its transaction, with the same few
 * statements whatever the number of streams (move the streams that are at
 * their expected version, create the new ones, take the categories'
 * positions, insert every event, notify): the appender's batches go to
 * hundreds of elections at once.  There is no re-send recognition here: a
 * re-send is a conflict, which the caller settles by reading on. */
static enum pv_err append_many_tx(struct pv_es *es, struct pv_es_append_req *appends, size_t n,
				  size_t *failed, struct pv_error *err)
{
	struct pg_es *pg = pg_of(es);
	struct slot *slots;
	struct cat_share *cats;
	size_t ncats = 0;
	enum pv_err rc;

	*failed = 0;
	if (n == 0)
		return PV_OK;
	for (size_t i = 0; i < n; i++)
		appends[i].continued = false;
	slots = pv_xcalloc(n, sizeof *slots);
	cats = pv_xcalloc(n, sizeof *cats);
	rc = many_slots(appends, n, slots, err);
	for (size_t i = 0; i < n && rc == PV_OK; i++) {
		struct slot *s = &slots[i];
		size_t k;

		s->category = category_of(s->name);
		for (k = 0; k < ncats && strcmp(cats[k].name, s->category) != 0; k++)
			;
		if (k == ncats)
			cats[ncats++].name = s->category;
		cats[k].count += (int64_t)appends[s->index].count;
		s->cat = k;
	}
	if (rc == PV_OK)
		rc = ensure(pg, err);
	if (rc == PV_OK)
		rc = many_move(pg, appends, slots, n, err);
	for (size_t i = 0; i < n && rc == PV_OK; i++) {
		if (slots[i].moved)
			continue;
		*failed = slots[i].index;
		rc = many_refused(pg, &appends[slots[i].index], err);
	}
	if (rc == PV_OK)
		rc = many_positions(pg, cats, ncats, err);
	if (rc == PV_OK)
		rc = many_write(pg, appends, n, slots, cats, ncats, err);
	for (size_t i = 0; i < n && rc == PV_OK; i++) {
		struct pv_es_append_req *a = &appends[slots[i].index];

		a->version = slots[i].base + (int64_t)a->count;
		a->continued = slots[i].continued;
	}
	for (size_t i = 0; i < n; i++)
		free(slots[i].category);
	free(cats);
	free(slots);
	return rc;
}

static enum pv_err pg_check_versions(struct pv_es *es, const struct pv_es_expect *x, size_t n,
				     size_t *failed, struct pv_error *err)
{
	struct pg_es *pg = pg_of(es);
	struct names_counts nc;
	PGresult *res;
	enum pv_err rc;

	*failed = 0;
	if (n == 0)
		return PV_OK;
	if ((rc = ensure(pg, err)) != PV_OK)
		return rc;
	names_counts_init(&nc);
	for (size_t i = 0; i < n; i++)
		names_counts_add(&nc, x[i].stream, x[i].version);
	/* The first stream not where it was expected.  One that is not live
	 * has no events to judge by; a hard-deleted one is never expected. */
	rc = names_counts_exec(pg, &nc, "check versions",
			       "SELECT u.i - 1 FROM unnest($1::text[], $2::bigint[])"
			       " WITH ORDINALITY AS u (name, version, i)"
			       " LEFT JOIN es_streams s ON s.name = u.name"
			       " WHERE CASE WHEN s.state IS NULL OR s.state = 'soft' THEN -1"
			       " WHEN s.state = 'live' THEN s.version END"
			       " IS DISTINCT FROM u.version ORDER BY u.i LIMIT 1",
			       &res, err);
	if (rc != PV_OK)
		return rc;
	if (PQntuples(res) == 1) {
		*failed = (size_t)strtoull(PQgetvalue(res, 0, 0), NULL, 10);
		if (*failed >= n)
			rc = pv_error_set(err, PV_ERR_DATABASE,
					  "check versions: the server named stream %zu of %zu",
					  *failed + 1, n);
		else
			rc = pv_error_set(err, PV_ERR_CONFLICT,
					  "%s is no longer at version %" PRId64, x[*failed].stream,
					  x[*failed].version);
	}
	PQclear(res);
	return rc;
}

/* ---- reads ----------------------------------------------------------- */

/* Fills ev from a row whose columns start at col: stream, number, id, type,
 * position, created, data, metadata. */
static enum pv_err event_from_row(PGresult *res, int row, int col, struct pv_es_event *ev,
				  struct pv_error *err)
{
	const char *meta = PQgetisnull(res, row, col + 7) ? NULL : PQgetvalue(res, row, col + 7);
	json_error_t jerr;

	memset(ev, 0, sizeof *ev);
	ev->stream = pv_xstrdup(PQgetvalue(res, row, col));
	ev->number = strtoll(PQgetvalue(res, row, col + 1), NULL, 10);
	snprintf(ev->id, sizeof ev->id, "%s", PQgetvalue(res, row, col + 2));
	ev->type = pv_xstrdup(PQgetvalue(res, row, col + 3));
	ev->position = strtoll(PQgetvalue(res, row, col + 4), NULL, 10);
	ev->created = pv_xstrdup(PQgetvalue(res, row, col + 5));
	ev->data = json_loads(PQgetvalue(res, row, col + 6), JSON_DECODE_ANY, &jerr);
	if (!ev->data)
		return pv_error_set(err, PV_ERR_PROTOCOL, "event %" PRId64 "@%s: data: jansson: %s",
				    ev->number, ev->stream, jerr.text);
	ev->metadata = meta ? json_loads(meta, JSON_DECODE_ANY, &jerr) : json_null();
	if (!ev->metadata)
		return pv_error_set(err, PV_ERR_PROTOCOL,
				    "event %" PRId64 "@%s: metadata: jansson: %s", ev->number,
				    ev->stream, jerr.text);
	return PV_OK;
}

/* Converts rows [row0, row0 + n) into page->events. */
static enum pv_err page_fill(PGresult *res, int row0, int col, size_t n, struct pv_es_page *page,
			     struct pv_error *err)
{
	page->events = n ? pv_xcalloc(n, sizeof *page->events) : NULL;
	for (size_t i = 0; i < n; i++) {
		enum pv_err rc = event_from_row(res, row0 + (int)i, col, &page->events[i], err);
		page->count = i + 1;
		if (rc != PV_OK)
			return rc;
	}
	return PV_OK;
}

#define EVENT_COLS(e)                                                                              \
	e ".stream, " e ".number, " e ".id, " e ".type, " e                                        \
	  ".position, " TIME_SQL(e ".created") ", " e ".data, " e ".metadata"

static const char read_forward_sql[] = "SELECT s.state, " EVENT_COLS(
	"e") " FROM es_streams s LEFT JOIN LATERAL"
	     " (SELECT * FROM es_events x WHERE x.stream = s.name AND x.number >= $2::bigint"
	     "  ORDER BY x.number LIMIT $3::bigint) e ON true"
	     " WHERE s.name = $1 ORDER BY e.number";
static const char read_backward_sql[] =
	"SELECT s.state, " EVENT_COLS("e") " FROM es_streams s LEFT JOIN LATERAL"
					   " (SELECT * FROM es_events x WHERE x.stream = s.name"
					   "  AND ($2::bigint < 0 OR x.number <= $2::bigint)"
					   "  ORDER BY x.number DESC LIMIT $3::bigint) e ON true"
					   " WHERE s.name = $1 ORDER BY e.number DESC";

static enum pv_err read_stream_once(struct pv_es *es, const char *stream, int64_t from, size_t max,
				    bool backward, struct pv_es_page *page, struct pv_error *err)
{
	struct pg_es *pg = pg_of(es);
	char from_s[24], limit_s[24];
	const char *params[3] = {stream, from_s, limit_s};
	PGresult *res = NULL;
	size_t rows, n;
	enum pv_err rc;
	char state;

	*page = (struct pv_es_page){.next = -1};
	rc = check_stream_name(stream, err);
	if (rc != PV_OK)
		return rc;
	if (max == 0)
		return pv_error_set(err, PV_ERR_INVALID, "read %s: page size 0", stream);
	if (max > PG_PAGE_MAX)
		max = PG_PAGE_MAX;
	if (!backward && from < 0)
		from = 0;
	rc = ensure(pg, err);
	if (rc != PV_OK)
		return rc;
	fmt_i64(from_s, from);
	fmt_i64(limit_s, (int64_t)max + 1); /* one more tells whether there is more */
	rc = pv_pg_exec(pg->conn, "read stream", backward ? read_backward_sql : read_forward_sql, 3,
			params, &res, err);
	if (rc != PV_OK)
		return rc;
	if (PQntuples(res) == 0) {
		rc = pv_error_set(err, PV_ERR_NOT_FOUND, "read %s: no such stream", stream);
		goto out;
	}
	state = PQgetvalue(res, 0, 0)[0];
	if (state != 'l') {
		rc = state == 'h' ? pv_error_set(err, PV_ERR_GONE,
						 "read %s: stream is deleted for good", stream)
				  : pv_error_set(err, PV_ERR_NOT_FOUND,
						 "read %s: stream is deleted", stream);
		goto out;
	}
	rows = PQgetisnull(res, 0, 2) ? 0 : (size_t)PQntuples(res);
	n = rows > max ? max : rows;
	rc = page_fill(res, 0, 1, n, page, err);
	if (rc != PV_OK) {
		pv_es_page_clear(page);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		page->events[i].position = -1; /* as the interface says for stream reads */
	page->end_of_stream = rows <= max;
	if (backward)
		page->next = rows > max ? page->events[n - 1].number - 1 : -1;
	else
		page->next = n ? page->events[n - 1].number + 1 : from;
out:
	PQclear(res);
	return rc;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps until a notification for category arrives (PV_OK) or deadline
 * (PV_ERR_TIMEOUT).  Notifications already queued count. */
static enum pv_err wait_notify(struct pg_es *pg, const char *category, int64_t deadline,
			       struct pv_error *err)
{
	for (;;) {
		PGnotify *n;
		bool hit = false;
		int64_t left;
		struct pollfd pfd;

		if (!PQconsumeInput(pg->conn))
			return pv_error_set(err, PV_ERR_UNAVAILABLE, "read category %s: wait: %s",
					    category, PQerrorMessage(pg->conn));
		while ((n = PQnotifies(pg->conn)) != NULL) {
			if (strcmp(n->relname, PG_CHANNEL) == 0 && strcmp(n->extra, category) == 0)
				hit = true;
			PQfreemem(n);
		}
		if (hit)
			return PV_OK;
		left = deadline - now_ms();
		if (left <= 0)
			return PV_ERR_TIMEOUT;
		pfd = (struct pollfd){.fd = PQsocket(pg->conn), .events = POLLIN};
		if (pfd.fd < 0)
			return pv_error_set(err, PV_ERR_UNAVAILABLE,
					    "read category %s: wait: no connection", category);
		if (poll(&pfd, 1, left > 60000 ? 60000 : (int)left) < 0 && errno != EINTR)
			return pv_error_set(err, PV_ERR_SYSTEM, "read category %s: poll: %s",
					    category, strerror(errno));
	}
}

static enum pv_err read_category_once(struct pv_es *es, const char *category, int64_t from,
				      size_t max, int wait_ms, struct pv_es_page *page,
				      struct pv_error *err)
{
	struct pg_es *pg = pg_of(es);
	char from_s[24], limit_s[24];
	const char *params[3] = {category, from_s, limit_s};
	int64_t deadline = now_ms() + (wait_ms > 0 ? wait_ms : 0);
	PGresult *res = NULL;
	size_t rows, n;
	enum pv_err rc;

	*page = (struct pv_es_page){.next = -1};
	if (!category || !*category || strchr(category, '-'))
		return pv_error_set(err, PV_ERR_INVALID, "read category: bad category name");
	if (max == 0)
		return pv_error_set(err, PV_ERR_INVALID, "read category %s: page size 0", category);
	if (max > PG_PAGE_MAX)
		max = PG_PAGE_MAX;
	if (from < 0)
		from = 0;
	rc = ensure(pg, err);
	if (rc != PV_OK)
		return rc;
	if (wait_ms > 0 && !pg->listening) {
		rc = pv_pg_command(pg->conn, "read category: listen", "LISTEN " PG_CHANNEL, err);
		if (rc != PV_OK)
			return rc;
		pg->listening = true;
	}
	fmt_i64(from_s, from);
	fmt_i64(limit_s, (int64_t)max + 1);
	for (;;) {
		rc = pv_pg_exec(pg->conn, "read category",
				"SELECT " EVENT_COLS("e") " FROM es_events e WHERE e.category = $1"
							  " AND e.position >= $2::bigint"
							  " ORDER BY e.position LIMIT $3::bigint",
				3, params, &res, err);
		if (rc != PV_OK)
			return rc;
		if (PQntuples(res) > 0 || wait_ms <= 0)
			break;
		PQclear(res);
		res = NULL;
		rc = wait_notify(pg, category, deadline, err);
		if (rc == PV_ERR_TIMEOUT) {
			page->end_of_stream = true;
			page->next = from;
			return PV_OK;
		}
		if (rc != PV_OK)
			return rc;
	}
	rows = (size_t)PQntuples(res);
	n = rows > max ? max : rows;
	rc = page_fill(res, 0, 0, n, page, err);
	if (rc != PV_OK) {
		pv_es_page_clear(page);
		goto out;
	}
	page->end_of_stream = rows <= max;
	page->next = n ? page->events[n - 1].position + 1 : from;
out:
	PQclear(res);
	return rc;
}

static enum pv_err list_streams_once(struct pv_es *es, const char *category,
				     struct pv_es_stream_list *list, struct pv_error *err)
{
	struct pg_es *pg = pg_of(es);
	const char *params[1] = {category};
	PGresult *res;
	enum pv_err rc;

	*list = (struct pv_es_stream_list){0};
	rc = ensure(pg, err);
	if (rc != PV_OK)
		return rc;
	rc = pv_pg_exec(pg->conn, "list streams",
			"SELECT name, version, " TIME_SQL(
				"updated") " FROM es_streams"
					   " WHERE state = 'live' AND version >= 0"
					   " AND ($1::text IS NULL OR category = $1) ORDER BY name",
			1, params, &res, err);
	if (rc != PV_OK)
		return rc;
	list->count = (size_t)PQntuples(res);
	list->streams = list->count ? pv_xcalloc(list->count, sizeof *list->streams) : NULL;
	for (size_t i = 0; i < list->count; i++) {
		list->streams[i].name = pv_xstrdup(PQgetvalue(res, (int)i, 0));
		list->streams[i].version = strtoll(PQgetvalue(res, (int)i, 1), NULL, 10);
		list->streams[i].updated = pv_xstrdup(PQgetvalue(res, (int)i, 2));
	}
	PQclear(res);
	return PV_OK;
}

static enum pv_err pg_delete_stream(struct pv_es *es, const char *stream, int64_t expected,
				    bool hard, struct pv_error *err)
{
	struct pg_es *pg = pg_of(es);
	const char *new_state = hard ? "hard" : "soft";
	const char *params[2] = {stream, new_state};
	char *category = NULL;
	int64_t cur;
	char state;
	bool exists, ok;
	enum pv_err rc;

	rc = check_stream_name(stream, err);
	if (rc != PV_OK)
		return rc;
	if (expected < PV_ES_STREAM_EXISTS || expected == -3)
		return pv_error_set(err, PV_ERR_INVALID, "delete %s: bad expected version %" PRId64,
				    stream, expected);
	rc = ensure(pg, err);
	if (rc != PV_OK)
		return rc;
	category = category_of(stream);
	rc = pv_pg_command(pg->conn, "delete: begin", "BEGIN", err);
	if (rc != PV_OK)
		goto out;
	/* A stream that never existed is recorded as deleted, as EventStoreDB
	 * records a tombstone or metadata for it. */
	rc = lock_stream(pg, stream, category, new_state, &cur, &state, err);
	if (rc != PV_OK)
		goto rollback;
	if (state == 'h') {
		rc = pv_error_set(err, PV_ERR_GONE, "delete %s: stream is deleted for good",
				  stream);
		goto rollback;
	}
	exists = state == 'l' && cur >= 0;
	ok = expected == PV_ES_ANY || (expected == PV_ES_NO_STREAM && !exists) ||
	     (expected == PV_ES_STREAM_EXISTS && exists) || (expected >= 0 && cur == expected);
	if (!ok) {
		rc = conflict(err, "delete", stream, expected, cur, NULL);
		goto rollback;
	}
	rc = pv_pg_exec(pg->conn, "delete: remove events",
			"DELETE FROM es_events WHERE stream = $1", 1, params, NULL, err);
	if (rc == PV_OK)
		rc = pv_pg_exec(pg->conn, "delete: mark stream",
				"UPDATE es_streams SET state = $2, updated = now()"
				" WHERE name = $1",
				2, params, NULL, err);
	if (rc == PV_OK)
		rc = pv_pg_command(pg->conn, "delete: commit", "COMMIT", err);
	if (rc == PV_OK)
		goto out;
rollback:
	fail_txn(pg, rc);
out:
	free(category);
	return rc;
}

/* ---- one retry after a lost connection --------------------------------
 *
 * A connection that died since the last call (server restart, idle
 * timeout, a terminated backend) is only noticed by the call that uses it.
 * Reads and appends are repeated once on a fresh connection: reads change
 * nothing, and an append whose COMMIT may or may not have happened is
 * recognised on the second try by its event ids (idempotency).  Deletes are
 * not repeated: a hard delete that did commit would answer GONE. */

static bool retry_worth(struct pv_es *es, enum pv_err rc)
{
	/* Never inside the caller's transaction: what it did before is gone. */
	return rc == PV_ERR_UNAVAILABLE && !pg_of(es)->in_tx &&
	       PQstatus(pg_of(es)->conn) != CONNECTION_OK;
}

static enum pv_err pg_append(struct pv_es *es, const char *stream, int64_t expected,
			     const struct pv_es_new_event *events, size_t count, int64_t *version,
			     struct pv_error *err)
{
	enum pv_err rc = append_once(es, stream, expected, events, count, version, err);

	if (retry_worth(es, rc)) {
		pv_log_warnx("pg", "%s; reconnecting", err ? err->msg : "connection lost");
		rc = append_once(es, stream, expected, events, count, version, err);
	}
	return rc;
}

static enum pv_err pg_read_stream(struct pv_es *es, const char *stream, int64_t from, size_t max,
				  bool backward, struct pv_es_page *page, struct pv_error *err)
{
	enum pv_err rc = read_stream_once(es, stream, from, max, backward, page, err);

	if (retry_worth(es, rc))
		rc = read_stream_once(es, stream, from, max, backward, page, err);
	return rc;
}

static enum pv_err pg_read_category(struct pv_es *es, const char *category, int64_t from,
				    size_t max, int wait_ms, struct pv_es_page *page,
				    struct pv_error *err)
{
	enum pv_err rc = read_category_once(es, category, from, max, wait_ms, page, err);

	if (retry_worth(es, rc))
		rc = read_category_once(es, category, from, max, wait_ms, page, err);
	return rc;
}

static enum pv_err pg_list_streams(struct pv_es *es, const char *category,
				   struct pv_es_stream_list *list, struct pv_error *err)
{
	enum pv_err rc = list_streams_once(es, category, list, err);

	if (retry_worth(es, rc))
		rc = list_streams_once(es, category, list, err);
	return rc;
}

static void pg_close(struct pv_es *es)
{
	struct pg_es *pg = pg_of(es);

	PQfinish(pg->conn);
	pv_buf_free(&pg->copy);
	free(pg);
}

/* ---- the unit of work (eventstore.h) ---------------------------------- */

/* Until the commit or rollback, appends run inside the unit's transaction:
 * no BEGIN/COMMIT of their own and no retry after a lost connection, and
 * the stream and category row locks they take are held to its end. */
static enum pv_err pg_begin(struct pv_es *es, struct pg_conn **shared, struct pv_error *err)
{
	struct pg_es *pg = pg_of(es);
	enum pv_err rc;

	if (pg->in_tx)
		return pv_error_set(err, PV_ERR_INVALID, "event store: a transaction is open");
	rc = ensure(pg, err);
	if (rc == PV_OK)
		rc = pv_pg_command(pg->conn, "event store: begin", "BEGIN", err);
	pg->in_tx = rc == PV_OK;
	*shared = rc == PV_OK ? pg->conn : NULL;
	return rc;
}

static enum pv_err pg_commit(struct pv_es *es, struct pv_error *err)
{
	struct pg_es *pg = pg_of(es);
	enum pv_err rc;

	if (!pg->in_tx)
		return pv_error_set(err, PV_ERR_INVALID, "event store: no transaction is open");
	pg->in_tx = false;
	rc = pv_pg_command(pg->conn, "event store: commit", "COMMIT", err);
	if (rc != PV_OK)
		pv_pg_rollback(pg->conn);
	return rc;
}

static void pg_rollback(struct pv_es *es)
{
	struct pg_es *pg = pg_of(es);

	if (!pg->in_tx)
		return;
	pg->in_tx = false;
	pv_pg_rollback(pg->conn);
}

/* Outside a unit, a transaction of its own. */
static enum pv_err pg_append_many(struct pv_es *es, struct pv_es_append_req *appends, size_t n,
				  size_t *failed, struct pv_error *err)
{
	struct pg_conn *shared;
	enum pv_err rc;

	if (pg_of(es)->in_tx)
		return append_many_tx(es, appends, n, failed, err);
	*failed = 0;
	rc = pg_begin(es, &shared, err);
	if (rc != PV_OK)
		return rc;
	rc = append_many_tx(es, appends, n, failed, err);
	if (rc == PV_OK)
		return pg_commit(es, err);
	pg_rollback(es);
	return rc;
}

static const struct pv_es_ops pg_ops = {
	.name = "postgres",
	.append = pg_append,
	.read_stream = pg_read_stream,
	.read_category = pg_read_category,
	.list_streams = pg_list_streams,
	.delete_stream = pg_delete_stream,
	.close = pg_close,
	.begin = pg_begin,
	.append_many = pg_append_many,
	.check_versions = pg_check_versions,
	.commit = pg_commit,
	.rollback = pg_rollback,
};

enum pv_err pv_es_pg_open(const struct pv_es_options *opts, struct pv_es **out,
			  struct pv_error *err)
{
	struct pg_es *pg;
	PGconn *conn;
	enum pv_err rc;

	*out = NULL;
	if (!opts->pg_conninfo)
		return pv_error_set(err, PV_ERR_CONFIG,
				    "event store (postgres): no connection string");
	rc = pv_pg_connect(opts->pg_conninfo, &conn, err);
	if (rc != PV_OK)
		return pv_error_prefix(err, "event store (postgres)");
	pg = pv_xcalloc(1, sizeof *pg);
	pg->base.ops = &pg_ops;
	pg->conn = conn;
	pg->timeout_ms = opts->timeout_ms;
	rc = session_setup(pg, err);
	if (rc != PV_OK) {
		pg_close(&pg->base);
		return rc;
	}
	*out = &pg->base;
	return PV_OK;
}
