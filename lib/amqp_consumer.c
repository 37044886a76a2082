/* RabbitMQ consumer with manual acks and confirmed dead letters; see
 * amqp_consumer.h for the rules. */
#include "amqp_consumer.h"
#include "log.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define CHANNEL 1

struct consumer_tag {
	char *tag;
	char *queue;
};

struct pv_amqp_consumer {
	const struct pv_amqp_params *params;
	amqp_connection_state_t conn;
	amqp_connection_state_t dlconn; /* NULL until the first dead letter */
	struct consumer_tag *tags;
	size_t ntags;
};

static struct timeval ms_to_tv(int ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	return tv;
}

static enum pv_err consume_queue(struct pv_amqp_consumer *c, const char *queue,
				 struct pv_error *err)
{
	amqp_basic_consume_ok_t *ok;
	char what[300];
	enum pv_err rc;

	snprintf(what, sizeof what, "basic.consume %s", queue);
	ok = amqp_basic_consume(c->conn, CHANNEL, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0,
				0, amqp_empty_table);
	rc = pv_amqp_reply_check(amqp_get_rpc_reply(c->conn), what, err);
	if (rc != PV_OK)
		return rc;
	if (!ok)
		return pv_error_set(err, PV_ERR_PROTOCOL, "librabbitmq: %s: no consume-ok", what);
	c->tags = pv_xreallocarray(c->tags, c->ntags + 1, sizeof *c->tags);
	c->tags[c->ntags].tag = pv_amqp_bytes_strdup(ok->consumer_tag);
	c->tags[c->ntags].queue = pv_xstrdup(queue);
	c->ntags++;
	return PV_OK;
}

enum pv_err pv_amqp_consumer_open(const struct pv_amqp_params *params, int prefetch,
				  struct pv_amqp_consumer **out, struct pv_error *err)
{
	struct pv_amqp_consumer *c;
	enum pv_err rc;

	*out = NULL;
	c = pv_xcalloc(1, sizeof *c);
	c->params = params;
	rc = pv_amqp_connect(params, &c->conn, err);
	if (rc != PV_OK)
		goto fail;
	rc = pv_amqp_declare_topology(c->conn, params, err);
	if (rc != PV_OK)
		goto fail;
	amqp_basic_qos(c->conn, CHANNEL, 0, (uint16_t)(prefetch > 0 ? prefetch : 1), 0);
	rc = pv_amqp_reply_check(amqp_get_rpc_reply(c->conn), "basic.qos", err);
	if (rc != PV_OK)
		goto fail;
	if (params->partitions <= 1) {
		rc = consume_queue(c, params->queue, err);
	} else {
		for (int i = 0; i < params->partitions && rc == PV_OK; i++) {
			char name[300];

			snprintf(name, sizeof name, "%s.%d", params->queue, i);
			rc = consume_queue(c, name, err);
		}
	}
	if (rc != PV_OK)
		goto fail;
	*out = c;
	return PV_OK;
fail:
	pv_amqp_consumer_close(c);
	return rc;
}

void pv_amqp_consumer_close(struct pv_amqp_consumer *c)
{
	if (!c)
		return;
	pv_amqp_disconnect(c->conn);
	pv_amqp_disconnect(c->dlconn);
	for (size_t i = 0; i < c->ntags; i++) {
		free(c->tags[i].tag);
		free(c->tags[i].queue);
	}
	free(c->tags);
	free(c);
}

void pv_amqp_delivery_clear(struct pv_amqp_delivery *d)
{
	if (!d)
		return;
	free(d->body);
	free(d->routing_key);
	free(d->queue);
	free(d->message_id);
	free(d->content_type.bytes);
	free(d->type.bytes);
	free(d->correlation_id.bytes);
	free(d->message_id_bytes.bytes);
	memset(d, 0, sizeof *d);
}

/* A frame other than a delivery arrived on the consuming connection: the
 * broker closing something, or cancelling our consumer (queue deleted). */
static enum pv_err other_frame(struct pv_amqp_consumer *c, struct pv_error *err)
{
	amqp_frame_t frame;
	int status = amqp_simple_wait_frame(c->conn, &frame);

	if (status != AMQP_STATUS_OK)
		return pv_amqp_status_check(status, "read frame", err);
	if (frame.frame_type != AMQP_FRAME_METHOD)
		return PV_OK;
	switch (frame.payload.method.id) {
	case AMQP_CHANNEL_CLOSE_METHOD: {
		const amqp_channel_close_t *m = frame.payload.method.decoded;
		return pv_error_set(err, PV_ERR_BROKER, "RabbitMQ closed the channel: %u %.*s",
				    m->reply_code, (int)m->reply_text.len,
				    (const char *)m->reply_text.bytes);
	}
	case AMQP_CONNECTION_CLOSE_METHOD: {
		const amqp_connection_close_t *m = frame.payload.method.decoded;
		return pv_error_set(err, PV_ERR_BROKER, "RabbitMQ closed the connection: %u %.*s",
				    m->reply_code, (int)m->reply_text.len,
				    (const char *)m->reply_text.bytes);
	}
	case AMQP_BASIC_CANCEL_METHOD:
		return pv_error_set(err, PV_ERR_UNAVAILABLE,
				    "RabbitMQ cancelled the consumer (queue deleted?)");
	default: return PV_OK;
	}
}

/* A copy of b that outlives its envelope (never NULL, even when empty). */
static amqp_bytes_t bytes_dup(amqp_bytes_t b)
{
	amqp_bytes_t out = {.len = b.len, .bytes = pv_xmalloc(b.len ? b.len : 1)};

	if (b.len)
		memcpy(out.bytes, b.bytes, b.len);
	return out;
}

enum pv_err pv_amqp_consumer_next(struct pv_amqp_consumer *c, int timeout_ms,
				  struct pv_amqp_delivery *d, struct pv_error *err)
{
	struct timeval tv = ms_to_tv(timeout_ms);
	amqp_envelope_t env;
	amqp_rpc_reply_t r;
	const amqp_basic_properties_t *p;

	memset(d, 0, sizeof *d);
	amqp_maybe_release_buffers(c->conn);
	r = amqp_consume_message(c->conn, &env, &tv, 0);
	if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
		if (r.library_error == AMQP_STATUS_TIMEOUT)
			return pv_error_set(err, PV_ERR_TIMEOUT, "no message");
		if (r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
			enum pv_err rc = other_frame(c, err);
			return rc != PV_OK ? rc : pv_error_set(err, PV_ERR_TIMEOUT, "no message");
		}
	}
	if (r.reply_type != AMQP_RESPONSE_NORMAL)
		return pv_amqp_reply_check(r, "basic.consume", err);
	d->held = true;
	d->tag = env.delivery_tag;
	d->redelivered = env.redelivered;
	d->body_len = env.message.body.len;
	d->body = bytes_dup(env.message.body).bytes;
	d->routing_key = pv_amqp_bytes_strdup(env.routing_key);
	for (size_t i = 0; i < c->ntags; i++) {
		const char *t = c->tags[i].tag;
		if (strlen(t) == env.consumer_tag.len &&
		    memcmp(t, env.consumer_tag.bytes, strlen(t)) == 0)
			d->queue = pv_xstrdup(c->tags[i].queue);
	}
	if (!d->queue)
		d->queue = pv_xstrdup(c->params->queue);
	p = &env.message.properties;
	d->flags = p->_flags;
	if (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) {
		d->message_id = pv_amqp_bytes_strdup(p->message_id);
		d->message_id_bytes = bytes_dup(p->message_id);
	}
	if (p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG)
		d->content_type = bytes_dup(p->content_type);
	if (p->_flags & AMQP_BASIC_TYPE_FLAG)
		d->type = bytes_dup(p->type);
	if (p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG)
		d->correlation_id = bytes_dup(p->correlation_id);
	d->timestamp = p->timestamp;
	amqp_destroy_envelope(&env);
	return PV_OK;
}

enum pv_err pv_amqp_consumer_ack(struct pv_amqp_consumer *c, uint64_t tag, struct pv_error *err)
{
	return pv_amqp_status_check(amqp_basic_ack(c->conn, CHANNEL, tag, 0), "basic.ack", err);
}

enum pv_err pv_amqp_consumer_ack_upto(struct pv_amqp_consumer *c, uint64_t tag,
				      struct pv_error *err)
{
	return pv_amqp_status_check(amqp_basic_ack(c->conn, CHANNEL, tag, 1), "basic.ack", err);
}

static enum pv_err dl_open(struct pv_amqp_consumer *c, struct pv_error *err)
{
	/* Idle for hours between poison messages: no heartbeats on this one,
	 * a dead connection is found on use and opened again. */
	struct pv_amqp_params p = *c->params;
	enum pv_err rc;

	p.heartbeat = 0;
	rc = pv_amqp_connect(&p, &c->dlconn, err);
	if (rc != PV_OK)
		return rc;
	amqp_confirm_select(c->dlconn, CHANNEL);
	rc = pv_amqp_reply_check(amqp_get_rpc_reply(c->dlconn), "confirm.select", err);
	if (rc != PV_OK) {
		pv_amqp_disconnect(c->dlconn);
		c->dlconn = NULL;
	}
	return rc;
}

static enum pv_err dl_publish(struct pv_amqp_consumer *c, const struct pv_amqp_delivery *d,
			      const char *reason, struct pv_error *err)
{
	amqp_basic_properties_t props;
	amqp_table_entry_t headers[3];
	enum pv_err rc;

	memset(&props, 0, sizeof props);
	props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_HEADERS_FLAG;
	props.delivery_mode = 2; /* persistent */
	/* Keep what identifies the message; the original headers are dropped
	 * (they came from whoever published the poison). */
	props._flags |= d->flags & (AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
				    AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG |
				    AMQP_BASIC_TIMESTAMP_FLAG);
	props.content_type = d->content_type;
	props.message_id = d->message_id_bytes;
	props.type = d->type;
	props.correlation_id = d->correlation_id;
	props.timestamp = d->timestamp;
	headers[0].key = amqp_cstring_bytes("x-photovote-reason");
	headers[0].value.kind = AMQP_FIELD_KIND_UTF8;
	headers[0].value.value.bytes = amqp_cstring_bytes(reason);
	headers[1].key = amqp_cstring_bytes("x-photovote-queue");
	headers[1].value.kind = AMQP_FIELD_KIND_UTF8;
	headers[1].value.value.bytes = amqp_cstring_bytes(d->queue ? d->queue : "");
	headers[2].key = amqp_cstring_bytes("x-photovote-routing-key");
	headers[2].value.kind = AMQP_FIELD_KIND_UTF8;
	headers[2].value.value.bytes = amqp_cstring_bytes(d->routing_key ? d->routing_key : "");
	props.headers.num_entries = 3;
	props.headers.entries = headers;
	rc = pv_amqp_publish_confirmed(
		c->dlconn, CHANNEL, c->params->dead_letter_exchange,
		d->routing_key ? d->routing_key : "", &props,
		(amqp_bytes_t){.len = d->body_len, .bytes = d->body},
		1000 * (c->params->connect_timeout > 0 ? c->params->connect_timeout : 5), err);
	return rc == PV_OK ? PV_OK : pv_error_prefix(err, "dead letter");
}

enum pv_err pv_amqp_consumer_dead_letter(struct pv_amqp_consumer *c,
					 const struct pv_amqp_delivery *d, const char *reason,
					 struct pv_error *err)
{
	enum pv_err rc = PV_ERR_UNAVAILABLE;

	if (!d->held)
		return pv_error_set(err, PV_ERR_INVALID, "dead letter: no delivery");
	/* A kept connection may have died while idle: one fresh try. */
	for (int attempt = 0; attempt < 2; attempt++) {
		if (!c->dlconn && (rc = dl_open(c, err)) != PV_OK)
			return pv_error_prefix(err, "dead letter");
		rc = dl_publish(c, d, reason, err);
		if (rc == PV_OK)
			break;
		pv_amqp_disconnect(c->dlconn);
		c->dlconn = NULL;
	}
	if (rc != PV_OK)
		return rc;
	return pv_amqp_consumer_ack(c, d->tag, err);
}
