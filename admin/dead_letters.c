/* Requeueing and purging dead letters (rules in dead_letters.h).
 *
 * The copy a requeue publishes
 *   The body byte for byte, persistent, with the dead letter's content
 *   type, content encoding, message id, type, timestamp, app id,
 *   correlation id, priority and reply-to.  Not kept: expiration (a
 *   message that expired once would expire again), user id (RabbitMQ
 *   refuses one that is not the connection's user) and cluster id.  Its
 *   headers are the dead letter's less those that describe the
 *   dead-lettering: x-photovote-* (the appender's reason, queue and
 *   routing key), RabbitMQ's x-death, x-first-death-* and x-last-death-*.
 *
 *   pv_amqp_consumer_dead_letter (the appender's way, recognised by its
 *   x-photovote-reason header) keeps neither the API's headers nor its app
 *   id.  When the body is the API's envelope, what the API put there is
 *   restored from it as photovote.fcgi does (fcgi/api.c publish_event,
 *   lib/amqp_publisher.c publish_job): app id "photovote", the headers
 *   correlation_id, user and source (in that order) and the correlation id
 *   property from the envelope's metadata, each only when it is missing.
 *   A dead letter made by RabbitMQ itself (x-dead-letter-exchange) kept
 *   them all, so nothing is added to it.
 *
 * The routing key
 *   The copy goes to the commands exchange ([amqp] exchange).  With
 *   [amqp] partitions > 1 it is a consistent-hash exchange, which picks the
 *   partition queue from a hash of the routing key, so the key must be the
 *   one the API published with, or the command could overtake or fall
 *   behind the others of its election.  It is, in this order: the header
 *   x-photovote-routing-key the appender records; the routing key the dead
 *   letter carries (the appender's copy and RabbitMQ's dead-lettering both
 *   keep the original one); else the election id of the body's data
 *   (data.election_id), which is what the API routes by
 *   (pv_event_election_id).  A dead letter with none of these is left in
 *   the dead-letter queue and counted (no_key).
 *
 * Channels
 *   basic.get, ack and nack use the session's channel 1; the copies go out
 *   on channel 2 in confirm mode, mandatory, one in flight at a time, so a
 *   basic.return or a nack can only be about that one copy. */
#define _POSIX_C_SOURCE 200809L

#include "dead_letters.h"

#include "xalloc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GET_CHANNEL 1
#define PUBLISH_CHANNEL 2
#define CONFIRM_TIMEOUT_S 30

/* Headers about the dead-lettering, not the command. */
static const struct {
	const char *name;
	bool prefix;
} dropped_headers[] = {
	{"x-photovote-", true},
	{"x-death", false},
	{"x-first-death-", true},
	{"x-last-death-", true},
};

/* The headers the API sets from the envelope's metadata, in its order. */
static const char *const api_headers[] = {"correlation_id", "user", "source"};

#define KEPT_FLAGS                                                                                 \
	(AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_CONTENT_ENCODING_FLAG |                         \
	 AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |           \
	 AMQP_BASIC_APP_ID_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_PRIORITY_FLAG |      \
	 AMQP_BASIC_REPLY_TO_FLAG)

struct copy {
	amqp_basic_properties_t props;
	amqp_table_entry_t *headers;
	char *routing_key; /* NULL: none found */
	json_t *envelope;  /* the body when it is a JSON object; strings above point into it */
};

static bool key_is(amqp_bytes_t key, const char *name, bool prefix)
{
	size_t n = strlen(name);

	if (prefix ? key.len < n : key.len != n)
		return false;
	return memcmp(key.bytes, name, n) == 0;
}

static bool header_dropped(amqp_bytes_t key)
{
	for (size_t i = 0; i < sizeof dropped_headers / sizeof dropped_headers[0]; i++)
		if (key_is(key, dropped_headers[i].name, dropped_headers[i].prefix))
			return true;
	return false;
}

static bool has_header(const amqp_table_entry_t *h, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (key_is(h[i].key, name, false))
			return true;
	return false;
}

/* The body as a JSON object, or NULL (a poison body is often no JSON). */
static json_t *parse_object(amqp_bytes_t body)
{
	json_error_t jerr;
	json_t *j = json_loadb(body.bytes, body.len, 0, &jerr);

	if (!j && json_error_code(&jerr) == json_error_out_of_memory)
		pv_oom("json_loadb", 0);
	if (j && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* The routing key (see the top), NULL when there is none. */
static char *routing_key(const amqp_message_t *m, amqp_bytes_t got, const json_t *envelope)
{
	const amqp_bytes_t *h = pv_amqp_header_text(&m->properties, "x-photovote-routing-key");
	const char *eid;

	if (h && h->len)
		return pv_amqp_bytes_strdup(*h);
	if (got.len)
		return pv_amqp_bytes_strdup(got);
	eid = json_string_value(json_object_get(json_object_get(envelope, "data"), "election_id"));
	return eid && *eid ? pv_xstrdup(eid) : NULL;
}

/* What the API put in the headers and properties, back from the envelope
 * (see the top); n is the number of headers so far, returns the new one. */
static int restore_api_fields(struct copy *c, int n)
{
	const json_t *meta = json_object_get(c->envelope, "metadata");
	const char *corr = json_string_value(json_object_get(meta, "correlation_id"));

	if (!json_is_object(meta))
		return n;
	if (!(c->props._flags & AMQP_BASIC_APP_ID_FLAG)) {
		c->props._flags |= AMQP_BASIC_APP_ID_FLAG;
		c->props.app_id = amqp_cstring_bytes("photovote");
	}
	if (corr && !(c->props._flags & AMQP_BASIC_CORRELATION_ID_FLAG)) {
		c->props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
		c->props.correlation_id = amqp_cstring_bytes(corr);
	}
	for (size_t i = 0; i < sizeof api_headers / sizeof api_headers[0]; i++) {
		const char *v = json_string_value(json_object_get(meta, api_headers[i]));
		amqp_table_entry_t *e = &c->headers[n];

		if (!v || has_header(c->headers, n, api_headers[i]))
			continue;
		e->key = amqp_cstring_bytes(api_headers[i]);
		e->value.kind = AMQP_FIELD_KIND_UTF8;
		e->value.value.bytes = amqp_cstring_bytes(v);
		n++;
	}
	return n;
}

/* The copy of dead letter m, which arrived with routing key got.  Its
 * strings point into m and c->envelope: clear it before m is destroyed. */
static void build_copy(const amqp_message_t *m, amqp_bytes_t got, struct copy *c)
{
	const amqp_basic_properties_t *o = &m->properties;
	int norig = (o->_flags & AMQP_BASIC_HEADERS_FLAG) ? o->headers.num_entries : 0;
	int n = 0;

	memset(c, 0, sizeof *c);
	c->envelope = parse_object(m->body);
	c->routing_key = routing_key(m, got, c->envelope);
	/* Fields whose flag is off are ignored by librabbitmq. */
	c->props = *o;
	c->props._flags = (o->_flags & KEPT_FLAGS) | AMQP_BASIC_DELIVERY_MODE_FLAG;
	c->props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
	c->headers = pv_xcalloc((size_t)norig + sizeof api_headers / sizeof api_headers[0],
				sizeof *c->headers);
	for (int i = 0; i < norig; i++)
		if (!header_dropped(o->headers.entries[i].key))
			c->headers[n++] = o->headers.entries[i];
	if (pv_amqp_header_text(o, "x-photovote-reason"))
		n = restore_api_fields(c, n);
	if (n) {
		c->props._flags |= AMQP_BASIC_HEADERS_FLAG;
		c->props.headers.num_entries = n;
		c->props.headers.entries = c->headers;
	} else {
		c->props.headers = amqp_empty_table;
	}
}

static void copy_clear(struct copy *c)
{
	free(c->headers);
	free(c->routing_key);
	json_decref(c->envelope);
	memset(c, 0, sizeof *c);
}

/* ---- publishing with a confirm ---- */

static enum pv_err publish_confirmed(amqp_connection_state_t conn, const char *exchange,
				     const struct copy *c, amqp_bytes_t body, struct pv_error *err)
{
	/* mandatory: a copy no queue takes comes back instead of vanishing. */
	return pv_amqp_publish_confirmed(conn, PUBLISH_CHANNEL, exchange, c->routing_key, &c->props,
					 body, 1000 * CONFIRM_TIMEOUT_S, err);
}

static enum pv_err open_publish_channel(amqp_connection_state_t conn, struct pv_error *err)
{
	amqp_channel_open(conn, PUBLISH_CHANNEL);
	if (pv_amqp_reply_check(amqp_get_rpc_reply(conn), "channel.open", err) != PV_OK)
		return err->code;
	amqp_confirm_select(conn, PUBLISH_CHANNEL);
	return pv_amqp_reply_check(amqp_get_rpc_reply(conn), "confirm.select", err);
}

/* ---- the walk ---- */

static bool same_id(const amqp_basic_properties_t *p, const char *id)
{
	return (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) && p->message_id.len == strlen(id) &&
	       memcmp(p->message_id.bytes, id, p->message_id.len) == 0;
}

/* Takes the next dead letter and deals with it; *empty when there was
 * none.  *held becomes its delivery tag when it stays unacked. */
static enum pv_err step(amqp_connection_state_t conn, const struct pv_amqp_params *p,
			struct pv_dl_op *op, uint64_t *held, bool *empty, struct pv_error *err)
{
	amqp_rpc_reply_t r =
		amqp_basic_get(conn, GET_CHANNEL, amqp_cstring_bytes(p->dead_letter_queue), 0);
	const amqp_basic_get_ok_t *ok;
	amqp_message_t msg;
	struct copy c;
	amqp_bytes_t got;
	uint64_t tag;
	enum pv_err rc;

	rc = pv_amqp_reply_check(r, "basic.get", err);
	if (rc != PV_OK)
		return rc;
	if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) {
		*empty = true;
		return PV_OK;
	}
	/* The decoded method lives in the pool amqp_read_message reuses. */
	ok = r.reply.decoded;
	tag = ok->delivery_tag;
	got = amqp_bytes_malloc_dup(ok->routing_key);
	if (ok->routing_key.len && !got.bytes)
		pv_oom("amqp_bytes_malloc_dup", ok->routing_key.len);
	rc = pv_amqp_reply_check(amqp_read_message(conn, GET_CHANNEL, &msg, 0),
				 "read a dead letter", err);
	if (rc != PV_OK) {
		amqp_bytes_free(got);
		return rc;
	}
	if (op->id && !same_id(&msg.properties, op->id)) {
		*held = tag;
		goto out;
	}
	op->matched++;
	if (op->action == PV_DL_COUNT) {
		*held = tag;
		goto out;
	}
	if (op->action == PV_DL_REQUEUE) {
		build_copy(&msg, got, &c);
		if (!c.routing_key) {
			op->no_key++;
			*held = tag;
		} else {
			rc = publish_confirmed(conn, p->exchange, &c, msg.body, err);
		}
		copy_clear(&c);
		if (rc != PV_OK || *held == tag)
			goto out;
	}
	/* Only now, with the copy confirmed: the dead letter goes. */
	rc = pv_amqp_status_check(amqp_basic_ack(conn, GET_CHANNEL, tag, 0), "basic.ack", err);
	if (rc == PV_OK)
		op->done++;
out:
	amqp_destroy_message(&msg);
	amqp_bytes_free(got);
	amqp_maybe_release_buffers(conn);
	return rc;
}

enum pv_err pv_dead_letters_act(struct pv_session *s, struct pv_dl_op *op, struct pv_error *err)
{
	const struct pv_amqp_params *p;
	amqp_connection_state_t conn;
	unsigned long start;
	uint64_t held = 0;
	bool publishing = false, empty = false;
	enum pv_err rc;

	op->matched = op->done = op->no_key = op->left = 0;
	rc = pv_session_dead_letter_depth(s, &start, err);
	if (rc == PV_OK)
		rc = pv_session_broker(s, &conn, &p, err);
	if (rc != PV_OK)
		return rc;
	if (op->action == PV_DL_REQUEUE && start) {
		rc = open_publish_channel(conn, err);
		publishing = rc == PV_OK;
	}
	/* Only the dead letters there at the start: see dead_letters.h. */
	for (unsigned long i = 0; rc == PV_OK && !empty && i < start; i++) {
		if (op->max && op->matched >= op->max)
			break;
		rc = step(conn, p, op, &held, &empty, err);
	}
	/* The ones we passed over go back to their places. */
	if (rc == PV_OK && held)
		rc = pv_amqp_status_check(amqp_basic_nack(conn, GET_CHANNEL, held, 1, 1),
					  "basic.nack (requeue)", err);
	if (rc == PV_OK && publishing) {
		amqp_channel_close(conn, PUBLISH_CHANNEL, AMQP_REPLY_SUCCESS);
		rc = pv_amqp_reply_check(amqp_get_rpc_reply(conn), "channel.close", err);
	}
	/* Closing the connection gives every unacked dead letter back. */
	if (rc != PV_OK)
		return pv_session_broker_failed(s, err);
	/* The first passive queue.declare is a round trip on the channel of
	 * the acks and the nack: had the broker refused one, it would have
	 * closed the channel and this would fail.  Wait for the nacked ones
	 * (dead_letters_left counts them). */
	return pv_session_dead_letters_settle(s, start - op->done, &op->left, err);
}
