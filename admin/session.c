/* What photovote-admin talks to (session.h).
 *
 * Design
 *   - Connections open on first use and stay open; any failure closes the
 *     one that failed, so the next call (the console's next refresh)
 *     connects again.  One thread: librabbitmq and libpq connections are
 *     not shared.
 *   - Read-only towards the pipeline: passive queue.declare, basic.get
 *     without ack followed by one basic.nack(multiple, requeue) for the
 *     peeked dead letters, a SELECT of the checkpoint, reads of the event
 *     store.  Only a rebuild writes, and only Cosmos DB documents; moving
 *     and deleting dead letters is dead_letters.c's, on this connection.
 *
 * Rebuilding while photovote-projector runs
 *   The rebuild is lib/projection.c's own (pv_projection_rebuild): it
 *   replays the whole stream, writes the changed parts, then writes the
 *   election's head with If-Match on the ETag it read first (or creates it
 *   when there was none).  The head is the commit point and carries the
 *   number of the last event applied and the digests of its parts, so:
 *   - If the projector writes the head in between, our If-Match fails
 *     (PV_ERR_CONFLICT) and we replay again, up to REBUILD_TRIES times.
 *   - If we write the head first, the projector's own If-Match fails with
 *     the ETag it cached; it drops its cache, reads our head and skips
 *     every event at or below its version, so nothing is applied twice.
 *   - Parts written by one side under the other's head show up as digest
 *     mismatches, which make the projector (and the readers, who retry)
 *     rebuild or wait; the documents always end as the fold of the
 *     stream.
 *   The rebuild never touches the checkpoint: the projector keeps going
 *   from where it was and skips what the rebuild already applied.
 *   A rebuild that succeeds deletes the election's row of
 *   projection_parked (un-parks it); the projector reads the parked set
 *   again within a second, and a batch of the election that starts past
 *   the documents' version (events skipped while parked, or written
 *   between the rebuild and the un-park) makes it replay the stream. */
#define _POSIX_C_SOURCE 200809L

#include "session.h"

#include "escape.h"
#include "id.h"
#include "log.h"
#include "options.h"
#include "pgutil.h"
#include "projection.h"
#include "xalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHANNEL 1
#define FEED_PAGE 1000
#define REBUILD_TRIES 5
#define SETTLE_WAIT_MS 5000
#define SETTLE_NAP_MS 20

struct pv_session {
	struct pv_config *cfg;
	bool cfg_borrowed; /* a twin's: its sibling owns it */
	struct pv_es_options eso;
	struct pv_amqp_params ap;
	struct pv_cosmos_options co;
	const char *conninfo;
	char *feed;     /* checkpoint name, of the active container */
	char *active;   /* the container the read model is served from */
	char *es_label; /* "event store (...)" */

	struct pv_es *es;
	PGconn *pg;
	amqp_connection_state_t amqp;
	struct pv_cosmos *cosmos;
};

static void nap_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

struct pv_session *pv_session_new(struct pv_config *cfg)
{
	struct pv_session *s = pv_xcalloc(1, sizeof *s);
	char *label;

	s->cfg = cfg;
	s->conninfo = pv_config_str(cfg, "postgres", "conninfo");
	pv_es_options_from_config(cfg, &s->eso);
	pv_amqp_params_from_config(&s->ap, cfg);
	pv_cosmos_options_from_config(cfg, &s->co);
	/* The same name as workers/projector.c gives its checkpoint. */
	s->active = pv_xstrdup(s->co.container);
	s->feed = pv_session_feed_of(s, s->active);
	label = pv_es_options_label(&s->eso);
	s->es_label = pv_xasprintf("event store (%s)", label);
	free(label);
	return s;
}

struct pv_session *pv_session_twin(struct pv_session *s)
{
	struct pv_session *t = pv_session_new(s->cfg);

	t->cfg_borrowed = true;
	return t;
}

static void broker_close(struct pv_session *s)
{
	pv_amqp_disconnect(s->amqp);
	s->amqp = NULL;
}

void pv_session_free(struct pv_session *s)
{
	if (!s)
		return;
	pv_es_close(s->es);
	if (s->pg)
		PQfinish(s->pg);
	broker_close(s);
	pv_cosmos_close(s->cosmos);
	pv_amqp_params_clear(&s->ap);
	free(s->feed);
	free(s->active);
	free(s->es_label);
	if (!s->cfg_borrowed)
		pv_config_free(s->cfg);
	free(s);
}

const char *pv_session_feed(const struct pv_session *s)
{
	return s->feed;
}

const struct pv_config *pv_session_config(const struct pv_session *s)
{
	return s->cfg;
}

const struct pv_cosmos_options *pv_session_cosmos_options(const struct pv_session *s)
{
	return &s->co;
}

const char *pv_session_es_label(const struct pv_session *s)
{
	return s->es_label;
}

char *pv_session_feed_of(const struct pv_session *s, const char *container)
{
	return pv_xasprintf("%s@%s:%s/%s", PV_ELECTION_CATEGORY, s->eso.backend, s->co.database,
			    container);
}

enum pv_err pv_session_name_server(struct pv_error *err, const char *label)
{
	size_t n = strlen(label);

	if (strncmp(err->msg, label, n) == 0 && (err->msg[n] == ':' || err->msg[n] == ' '))
		return err->code;
	return pv_error_prefix(err, "%s", label);
}

/* ---- event store ---- */

enum pv_err pv_session_es(struct pv_session *s, struct pv_es **es, struct pv_error *err)
{
	if (!s->es && pv_es_open(&s->eso, &s->es, err) != PV_OK)
		return pv_session_es_failed(s, err);
	*es = s->es;
	return PV_OK;
}

enum pv_err pv_session_es_failed(struct pv_session *s, struct pv_error *err)
{
	/* A missing stream is an answer, not a broken connection. */
	if (err->code != PV_ERR_NOT_FOUND && err->code != PV_ERR_GONE &&
	    err->code != PV_ERR_INVALID) {
		pv_es_close(s->es);
		s->es = NULL;
	}
	return pv_session_name_server(err, s->es_label);
}

/* ---- PostgreSQL: the projector's checkpoint, API tokens ---- */

enum pv_err pv_session_pg_failed(struct pv_session *s, struct pv_error *err)
{
	if (s->pg)
		PQfinish(s->pg);
	s->pg = NULL;
	return pv_session_name_server(err, "PostgreSQL");
}

enum pv_err pv_session_pg(struct pv_session *s, PGconn **conn, struct pv_error *err)
{
	if (!s->pg && pv_pg_connect(s->conninfo, &s->pg, err) != PV_OK)
		return pv_session_pg_failed(s, err);
	*conn = s->pg;
	return PV_OK;
}

/* Follows a blue-green switch: s->active and s->feed name the container
 * the read model is served from now.  When PostgreSQL fails they stay (the
 * caller's own query then says so). */
static void follow_active(struct pv_session *s)
{
	struct pv_error err;
	char *active;

	if (pv_session_active_container(s, &active, &err) != PV_OK)
		return;
	if (strcmp(active, s->active) == 0) {
		free(active);
		return;
	}
	free(s->active);
	s->active = active;
	free(s->feed);
	s->feed = pv_session_feed_of(s, active);
	/* The client of the old container is of no use now. */
	pv_cosmos_close(s->cosmos);
	s->cosmos = NULL;
}

static enum pv_err read_checkpoint(struct pv_session *s, int64_t *pos, struct pv_error *err)
{
	const char *params[1];
	PGconn *conn = NULL;
	PGresult *res;

	follow_active(s);
	params[0] = s->feed;
	*pos = -1;
	if (pv_session_pg(s, &conn, err) != PV_OK)
		return err->code;
	if (pv_pg_exec(conn, "read the projector's checkpoint",
		       "SELECT position FROM projector_checkpoints WHERE name = $1", 1, params,
		       &res, err) != PV_OK)
		return pv_session_pg_failed(s, err);
	if (PQntuples(res) == 1)
		*pos = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return PV_OK;
}

enum pv_err pv_session_parked(struct pv_session *s, json_t **out, struct pv_error *err)
{
	const char *params[1];
	PGconn *conn = NULL;
	PGresult *res;
	json_t *list;

	follow_active(s);
	params[0] = s->feed;
	*out = NULL;
	if (pv_session_pg(s, &conn, err) != PV_OK)
		return err->code;
	if (pv_pg_exec(conn, "read the parked elections",
		       "SELECT election_id, position, event_number, status, reason,"
		       " to_char(parked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
		       " FROM projection_parked WHERE name = $1 ORDER BY parked_at, election_id",
		       1, params, &res, err) != PV_OK)
		return pv_session_pg_failed(s, err);
	list = json_array();
	if (!list)
		pv_oom("json_array", 0);
	for (int i = 0; i < PQntuples(res); i++) {
		json_t *row = json_pack(
			"{s:s, s:I, s:I, s:i, s:s, s:s}", "election_id", PQgetvalue(res, i, 0),
			"position", (json_int_t)strtoll(PQgetvalue(res, i, 1), NULL, 10),
			"event_number", (json_int_t)strtoll(PQgetvalue(res, i, 2), NULL, 10),
			"status", atoi(PQgetvalue(res, i, 3)), "reason", PQgetvalue(res, i, 4),
			"parked_at", PQgetvalue(res, i, 5));

		/* json_pack refuses text that is not UTF-8: keep the row, say so. */
		if (!row)
			row = json_pack("{s:s, s:s}", "election_id", PQgetvalue(res, i, 0),
					"reason", "(not UTF-8)");
		if (!row || json_array_append_new(list, row) != 0)
			pv_oom("json_pack", 0);
	}
	PQclear(res);
	*out = list;
	return PV_OK;
}

/* ---- RabbitMQ ---- */

/* "RabbitMQ at HOST:PORT: ...", once: librabbitmq's connect errors
 * (lib/amqp_conn.c) already start with "HOST:PORT". */
static enum pv_err broker_named(struct pv_session *s, struct pv_error *err)
{
	char *at = pv_xasprintf("%s:%d", s->ap.host, s->ap.port);
	size_t n = strlen(at);
	enum pv_err rc;

	if (strncmp(err->msg, at, n) == 0 && (err->msg[n] == ':' || err->msg[n] == ' ')) {
		struct pv_error said = *err;

		rc = pv_error_set(err, said.code, "RabbitMQ at %s", said.msg);
	} else {
		rc = pv_error_prefix(err, "RabbitMQ at %s", at);
	}
	free(at);
	return rc;
}

static enum pv_err broker_failed(struct pv_session *s, struct pv_error *err)
{
	broker_close(s);
	return broker_named(s, err);
}

static enum pv_err broker(struct pv_session *s, struct pv_error *err)
{
	if (!s->amqp && pv_amqp_connect(&s->ap, &s->amqp, err) != PV_OK)
		return broker_failed(s, err);
	return PV_OK;
}

/* Passive queue.declare: the queue's ready messages and consumers.  A
 * missing queue closes the channel: we acknowledge and reopen it. */
static enum pv_err queue_depth(struct pv_session *s, const char *name, unsigned long *ready,
			       unsigned long *consumers, struct pv_error *err)
{
	amqp_queue_declare_ok_t *ok;
	amqp_rpc_reply_t r;

	ok = amqp_queue_declare(s->amqp, CHANNEL, amqp_cstring_bytes(name), 1, 0, 0, 0,
				amqp_empty_table);
	r = amqp_get_rpc_reply(s->amqp);
	if (r.reply_type == AMQP_RESPONSE_NORMAL && ok) {
		*ready += ok->message_count;
		if (consumers)
			*consumers += ok->consumer_count;
		return PV_OK;
	}
	if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
	    r.reply.id == AMQP_CHANNEL_CLOSE_METHOD &&
	    ((const amqp_channel_close_t *)r.reply.decoded)->reply_code == AMQP_NOT_FOUND) {
		amqp_channel_close_ok_t close_ok = {0};
		int status =
			amqp_send_method(s->amqp, CHANNEL, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok);

		if (pv_amqp_status_check(status, "channel.close-ok", err) != PV_OK)
			return err->code;
		amqp_channel_open(s->amqp, CHANNEL);
		if (pv_amqp_reply_check(amqp_get_rpc_reply(s->amqp), "channel.open", err) != PV_OK)
			return err->code;
		return pv_error_set(err, PV_ERR_NOT_FOUND,
				    "queue %s does not exist (no appender or API has declared it)",
				    name);
	}
	return pv_amqp_reply_check(r, "queue.declare (passive)", err);
}

enum pv_err pv_session_broker(struct pv_session *s, amqp_connection_state_t *conn,
			      const struct pv_amqp_params **params, struct pv_error *err)
{
	enum pv_err rc = broker(s, err);

	*conn = s->amqp;
	*params = &s->ap;
	return rc;
}

enum pv_err pv_session_broker_failed(struct pv_session *s, struct pv_error *err)
{
	return broker_failed(s, err);
}

enum pv_err pv_session_dead_letter_depth(struct pv_session *s, unsigned long *n,
					 struct pv_error *err)
{
	enum pv_err rc = broker(s, err);

	*n = 0;
	if (rc == PV_OK)
		rc = queue_depth(s, s->ap.dead_letter_queue, n, NULL, err);
	if (rc == PV_ERR_NOT_FOUND)
		return broker_named(s, err);
	if (rc != PV_OK && s->amqp)
		return broker_failed(s, err);
	return rc;
}

enum pv_err pv_session_dead_letters_settle(struct pv_session *s, unsigned long least,
					   unsigned long *n, struct pv_error *err)
{
	enum pv_err rc;

	for (long waited = 0;; waited += SETTLE_NAP_MS) {
		rc = pv_session_dead_letter_depth(s, n, err);
		if (rc != PV_OK || *n >= least || waited >= SETTLE_WAIT_MS)
			return rc;
		nap_ms(SETTLE_NAP_MS);
	}
}

static enum pv_err broker_status(struct pv_session *s, struct pv_status *st, struct pv_error *err)
{
	int n = s->ap.partitions > 1 ? s->ap.partitions : 1;
	enum pv_err rc = broker(s, err);

	for (int i = 0; i < n && rc == PV_OK; i++) {
		char *name =
			n > 1 ? pv_xasprintf("%s.%d", s->ap.queue, i) : pv_xstrdup(s->ap.queue);

		rc = queue_depth(s, name, &st->queue_ready, &st->queue_consumers, err);
		free(name);
	}
	if (rc == PV_OK)
		rc = queue_depth(s, s->ap.dead_letter_queue, &st->dead_letters, NULL, err);
	if (rc == PV_ERR_NOT_FOUND)
		return broker_named(s, err);
	if (rc != PV_OK && s->amqp)
		return broker_failed(s, err);
	return rc;
}

/* ---- status ---- */

/* The feed after `after`: how many events, and the last position. */
static enum pv_err scan_feed(struct pv_session *s, struct pv_status *st, int64_t after,
			     struct pv_error *err)
{
	int64_t from = after + 1;
	struct pv_es *es = NULL;
	enum pv_err rc;

	st->head = after;
	rc = pv_session_es(s, &es, err);
	if (rc != PV_OK)
		return rc;
	for (;;) {
		struct pv_es_page page = {0};

		rc = pv_es_read_category(es, PV_ELECTION_CATEGORY, from, FEED_PAGE, 0, &page, err);
		if (rc != PV_OK)
			return pv_session_es_failed(s, err);
		if (page.count == 0) {
			pv_es_page_clear(&page);
			return PV_OK;
		}
		st->head = page.events[page.count - 1].position;
		st->lag += page.count;
		from = st->head + 1;
		pv_es_page_clear(&page);
		if (st->lag >= PV_STATUS_LAG_MAX) {
			/* The head is further on; say so rather than read it all. */
			st->lag_capped = true;
			return PV_OK;
		}
	}
}

enum pv_err pv_session_status(struct pv_session *s, struct pv_status *st, struct pv_error *err)
{
	memset(st, 0, sizeof *st);
	st->broker_rc = broker_status(s, st, &st->broker_err);
	st->checkpoint_rc = read_checkpoint(s, &st->checkpoint, &st->checkpoint_err);
	st->store_rc =
		scan_feed(s, st, st->checkpoint_rc == PV_OK ? st->checkpoint : -1, &st->store_err);
	if (st->broker_rc != PV_OK)
		*err = st->broker_err;
	else if (st->store_rc != PV_OK)
		*err = st->store_err;
	else if (st->checkpoint_rc != PV_OK)
		*err = st->checkpoint_err;
	else
		return PV_OK;
	return err->code;
}

/* ---- dead letters ---- */

void pv_dead_letters_clear(struct pv_dead_letters *d)
{
	for (size_t i = 0; i < d->count; i++) {
		free(d->items[i].message_id);
		free(d->items[i].type);
		free(d->items[i].reason);
		free(d->items[i].body);
		free(d->items[i].headers);
	}
	free(d->items);
	memset(d, 0, sizeof *d);
}

static char *prop_dup(const amqp_basic_properties_t *p, amqp_flags_t flag, amqp_bytes_t b)
{
	return (p->_flags & flag) ? pv_amqp_bytes_strdup(b) : NULL;
}

/* One header value as text; nested tables and arrays by their size. */
static void field_text(struct pv_buf *b, const amqp_field_value_t *v)
{
	switch (v->kind) {
	case AMQP_FIELD_KIND_UTF8:
	case AMQP_FIELD_KIND_BYTES:
		pv_escape_append(b, v->value.bytes.bytes, v->value.bytes.len);
		break;
	case AMQP_FIELD_KIND_BOOLEAN: pv_buf_puts(b, v->value.boolean ? "true" : "false"); break;
	case AMQP_FIELD_KIND_I8: pv_buf_printf(b, "%d", v->value.i8); break;
	case AMQP_FIELD_KIND_U8: pv_buf_printf(b, "%u", v->value.u8); break;
	case AMQP_FIELD_KIND_I16: pv_buf_printf(b, "%d", v->value.i16); break;
	case AMQP_FIELD_KIND_U16: pv_buf_printf(b, "%u", v->value.u16); break;
	case AMQP_FIELD_KIND_I32: pv_buf_printf(b, "%" PRId32, v->value.i32); break;
	case AMQP_FIELD_KIND_U32: pv_buf_printf(b, "%" PRIu32, v->value.u32); break;
	case AMQP_FIELD_KIND_I64: pv_buf_printf(b, "%" PRId64, v->value.i64); break;
	case AMQP_FIELD_KIND_U64:
	case AMQP_FIELD_KIND_TIMESTAMP: pv_buf_printf(b, "%" PRIu64, v->value.u64); break;
	case AMQP_FIELD_KIND_F32: pv_buf_printf(b, "%g", (double)v->value.f32); break;
	case AMQP_FIELD_KIND_F64: pv_buf_printf(b, "%g", v->value.f64); break;
	case AMQP_FIELD_KIND_TABLE:
		pv_buf_printf(b, "(table of %d)", v->value.table.num_entries);
		break;
	case AMQP_FIELD_KIND_ARRAY:
		pv_buf_printf(b, "(array of %d)", v->value.array.num_entries);
		break;
	default: pv_buf_puts(b, "(?)"); break;
	}
}

static char *headers_text(const amqp_basic_properties_t *p)
{
	struct pv_buf b = PV_BUF_INIT;

	if (p->_flags & AMQP_BASIC_HEADERS_FLAG)
		for (int i = 0; i < p->headers.num_entries; i++) {
			const amqp_table_entry_t *e = &p->headers.entries[i];

			pv_escape_append(&b, e->key.bytes, e->key.len);
			pv_buf_puts(&b, ": ");
			field_text(&b, &e->value);
			pv_buf_puts(&b, "\n");
		}
	return pv_buf_steal(&b);
}

static char *header_dup(const amqp_basic_properties_t *p, const char *name)
{
	const amqp_bytes_t *v = pv_amqp_header_text(p, name);

	return v ? pv_amqp_bytes_strdup(*v) : NULL;
}

enum pv_err pv_session_dead_letters(struct pv_session *s, size_t max, size_t keep,
				    struct pv_dead_letters *out, struct pv_error *err)
{
	unsigned long back;
	uint64_t last = 0;
	size_t cap = 0;
	enum pv_err rc;

	memset(out, 0, sizeof *out);
	rc = broker(s, err);
	if (rc != PV_OK)
		return rc;
	rc = queue_depth(s, s->ap.dead_letter_queue, &out->total, NULL, err);
	while (rc == PV_OK && out->count < max) {
		amqp_rpc_reply_t r = amqp_basic_get(s->amqp, CHANNEL,
						    amqp_cstring_bytes(s->ap.dead_letter_queue), 0);
		struct pv_dead_letter *d;
		amqp_message_t msg;
		bool redelivered;

		rc = pv_amqp_reply_check(r, "basic.get", err);
		if (rc != PV_OK || r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
			break;
		/* The decoded method lives in the pool amqp_read_message reuses. */
		last = ((const amqp_basic_get_ok_t *)r.reply.decoded)->delivery_tag;
		redelivered = ((const amqp_basic_get_ok_t *)r.reply.decoded)->redelivered;
		r = amqp_read_message(s->amqp, CHANNEL, &msg, 0);
		rc = pv_amqp_reply_check(r, "read a dead letter", err);
		if (rc != PV_OK)
			break;
		if (out->count == cap) {
			cap = cap ? 2 * cap : 16;
			out->items = pv_xreallocarray(out->items, cap, sizeof *out->items);
		}
		d = &out->items[out->count++];
		d->message_id = prop_dup(&msg.properties, AMQP_BASIC_MESSAGE_ID_FLAG,
					 msg.properties.message_id);
		d->type = prop_dup(&msg.properties, AMQP_BASIC_TYPE_FLAG, msg.properties.type);
		d->reason = header_dup(&msg.properties, "x-photovote-reason");
		d->body_len = msg.body.len;
		d->body_kept = msg.body.len < keep ? msg.body.len : keep;
		d->body = pv_xmalloc(d->body_kept + 1);
		if (d->body_kept)
			memcpy(d->body, msg.body.bytes, d->body_kept);
		d->body[d->body_kept] = '\0';
		d->redelivered = redelivered;
		d->headers = headers_text(&msg.properties);
		d->timestamp = (msg.properties._flags & AMQP_BASIC_TIMESTAMP_FLAG)
				       ? msg.properties.timestamp
				       : 0;
		amqp_destroy_message(&msg);
		amqp_maybe_release_buffers(s->amqp);
	}
	/* Give every peeked message back, in its place. */
	if (rc == PV_OK && last) {
		int status = amqp_basic_nack(s->amqp, CHANNEL, last, 1, 1);

		rc = pv_amqp_status_check(status, "basic.nack (requeue)", err);
	}
	if (rc == PV_ERR_NOT_FOUND)
		return broker_named(s, err);
	if (rc != PV_OK) {
		/* Closing the connection also gives back what we held. */
		pv_dead_letters_clear(out);
		return broker_failed(s, err);
	}
	/* So that a requeue or purge right after this sees them all. */
	if (last && pv_session_dead_letters_settle(s, out->total, &back, err) != PV_OK) {
		pv_dead_letters_clear(out);
		return err->code;
	}
	return PV_OK;
}

/* ---- rebuild ---- */

enum pv_err pv_session_rebuild(struct pv_session *s, const char *election_id, struct pv_error *err)
{
	struct pv_projection *proj;
	struct pv_es *es = NULL;
	enum pv_err rc;

	if (!pv_ulid_valid(election_id))
		return pv_error_set(err, PV_ERR_INVALID, "%s is not an election id (a ULID)",
				    election_id);
	rc = pv_session_es(s, &es, err);
	if (rc != PV_OK)
		return rc;
	follow_active(s);
	if (!s->cosmos) {
		struct pv_cosmos_options co = s->co;

		co.container = s->active;
		if (pv_cosmos_open(&co, &s->cosmos, err) != PV_OK)
			return pv_error_prefix(err, "Cosmos DB at %s", s->co.endpoint);
	}
	/* No cache: every try reads the head and its ETag afresh. */
	proj = pv_projection_new(
		s->cosmos, es, (size_t)pv_config_int(s->cfg, "projector", "max_document_bytes"), 0);
	for (int attempt = 1; attempt <= REBUILD_TRIES; attempt++) {
		rc = pv_projection_rebuild(proj, election_id, err);
		if (rc != PV_ERR_CONFLICT)
			break;
		pv_log_info("rebuild", "election %s: %s; trying again", election_id, err->msg);
		nap_ms(50L * attempt);
	}
	pv_projection_free(proj);
	if (rc == PV_OK) {
		bool was;

		if (pv_session_unpark(s, s->feed, election_id, &was, err) != PV_OK)
			return pv_error_prefix(err, "rebuilt %s, but it stays parked", election_id);
		if (was)
			pv_log_info("rebuild", "election %s un-parked", election_id);
		return PV_OK;
	}
	/* Either server may have failed; both are opened again next time. */
	pv_cosmos_close(s->cosmos);
	s->cosmos = NULL;
	pv_es_close(s->es);
	s->es = NULL;
	return pv_error_prefix(err, "rebuild %s (%s, Cosmos DB at %s)", election_id, s->es_label,
			       s->co.endpoint);
}

/* ---- the read model's containers ---- */

enum pv_err pv_session_active_container(struct pv_session *s, char **out, struct pv_error *err)
{
	const char *params[1] = {s->co.database};
	PGconn *conn = NULL;
	PGresult *res;
	enum pv_err rc;

	*out = NULL;
	if (pv_session_pg(s, &conn, err) != PV_OK)
		return err->code;
	rc = pv_pg_exec(conn, "read the active container",
			"SELECT container FROM read_model_containers"
			" WHERE database = $1 AND state = 'active'",
			1, params, &res, err);
	if (rc != PV_OK && strstr(err->msg, "read_model_containers") &&
	    strstr(err->msg, "does not exist")) {
		/* Before migration 011: the configured container. */
		*out = pv_xstrdup(s->co.container);
		return PV_OK;
	}
	if (rc != PV_OK)
		return pv_session_pg_failed(s, err);
	*out = pv_xstrdup(PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : s->co.container);
	PQclear(res);
	return PV_OK;
}

static void add_container(json_t *list, const char *name, const char *state, const char *updated)
{
	json_t *row =
		json_pack("{s:s, s:s, s:s}", "container", name, "state", state, "updated", updated);

	/* Names are checked when made; a row written by hand may not be UTF-8. */
	if (!row)
		row = json_pack("{s:s, s:s, s:s}", "container", "(not UTF-8)", "state", state,
				"updated", updated);
	if (!row || json_array_append_new(list, row) != 0)
		pv_oom("json_pack", 0);
}

enum pv_err pv_session_containers(struct pv_session *s, json_t **out, struct pv_error *err)
{
	const char *params[1] = {s->co.database};
	PGconn *conn = NULL;
	PGresult *res;
	json_t *list;
	bool active = false;
	enum pv_err rc;

	*out = NULL;
	if (pv_session_pg(s, &conn, err) != PV_OK)
		return err->code;
	list = json_array();
	if (!list)
		pv_oom("json_array", 0);
	rc = pv_pg_exec(conn, "read the read model's containers",
			"SELECT container, state,"
			" to_char(updated AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
			" FROM read_model_containers WHERE database = $1"
			" ORDER BY updated DESC, container",
			1, params, &res, err);
	if (rc != PV_OK &&
	    !(strstr(err->msg, "read_model_containers") && strstr(err->msg, "does not exist"))) {
		json_decref(list);
		return pv_session_pg_failed(s, err);
	}
	for (int i = 0; rc == PV_OK && i < PQntuples(res); i++) {
		add_container(list, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
			      PQgetvalue(res, i, 2));
		active = active || strcmp(PQgetvalue(res, i, 1), "active") == 0;
	}
	if (rc == PV_OK)
		PQclear(res);
	if (!active)
		add_container(list, s->co.container, "active", "");
	*out = list;
	return PV_OK;
}

enum pv_err pv_session_unpark(struct pv_session *s, const char *feed, const char *election_id,
			      bool *was, struct pv_error *err)
{
	const char *params[2] = {feed, election_id};
	PGconn *conn = NULL;
	PGresult *res;

	*was = false;
	if (pv_session_pg(s, &conn, err) != PV_OK)
		return err->code;
	if (pv_pg_exec(conn, "un-park the election",
		       "DELETE FROM projection_parked WHERE name = $1 AND election_id = $2"
		       " RETURNING election_id",
		       2, params, &res, err) != PV_OK)
		return pv_session_pg_failed(s, err);
	*was = PQntuples(res) > 0;
	PQclear(res);
	return PV_OK;
}
