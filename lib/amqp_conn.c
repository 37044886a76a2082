
#include "amqp_conn.h"

#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "xalloc.h"

#define PV_AMQP_CHANNEL 1
#define PV_AMQP_FRAME_MAX 131072

void pv_amqp_params_clear(struct pv_amqp_params *p)
{
	free(p->host);
	free(p->vhost);
	free(p->user);
	free(p->password);
	free(p->exchange);
	free(p->queue);
	free(p->dead_letter_exchange);
	free(p->dead_letter_queue);
	memset(p, 0, sizeof *p);
}

char *pv_amqp_bytes_strdup(amqp_bytes_t b)
{
	return pv_xstrndup(b.bytes ? b.bytes : "", b.len);
}

const amqp_bytes_t *pv_amqp_header_text(const amqp_basic_properties_t *p, const char *name)
{
	size_t len = strlen(name);

	if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
		return NULL;
	for (int i = 0; i < p->headers.num_entries; i++) {
		const amqp_table_entry_t *e = &p->headers.entries[i];

		if (e->key.len == len && memcmp(e->key.bytes, name, len) == 0 &&
		    (e->value.kind == AMQP_FIELD_KIND_UTF8 ||
		     e->value.kind == AMQP_FIELD_KIND_BYTES))
			return &e->value.value.bytes;
	}
	return NULL;
}

enum pv_err pv_amqp_status_check(int status, const char *what, struct pv_error *err)
{
	if (status >= 0)
		return PV_OK;
	if (status == AMQP_STATUS_NO_MEMORY)
		pv_oom("librabbitmq", 0);
	if (status == AMQP_STATUS_TIMEOUT || status == AMQP_STATUS_HEARTBEAT_TIMEOUT)
		return pv_error_set(err, PV_ERR_TIMEOUT, "librabbitmq: %s: %s", what,
				    amqp_error_string2(status));
	return pv_error_set(err, PV_ERR_UNAVAILABLE, "librabbitmq: %s: %s", what,
			    amqp_error_string2(status));
}

enum pv_err pv_amqp_reply_check(amqp_rpc_reply_t r, const char *what, struct pv_error *err)
{
	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL: return PV_OK;
	case AMQP_RESPONSE_NONE:
		return pv_error_set(err, PV_ERR_UNAVAILABLE, "librabbitmq: %s: no reply (EOF)",
				    what);
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		return pv_amqp_status_check(r.library_error < 0 ? r.library_error
								: AMQP_STATUS_UNEXPECTED_STATE,
					    what, err);
	case AMQP_RESPONSE_SERVER_EXCEPTION: break;
	}
	if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
		const amqp_channel_close_t *m = r.reply.decoded;
		return pv_error_set(
			err, PV_ERR_BROKER, "RabbitMQ closed the channel on %s: %u %.*s", what,
			m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
	}
	if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
		const amqp_connection_close_t *m = r.reply.decoded;
		return pv_error_set(
			err, PV_ERR_BROKER, "RabbitMQ closed the connection on %s: %u %.*s", what,
			m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
	}
	return pv_error_set(err, PV_ERR_PROTOCOL, "RabbitMQ answered %s with method 0x%08x", what,
			    (unsigned)r.reply.id);
}

/* Logs in; a connection that wants connection.blocked/unblocked announces
 * the capability in its client properties (librabbitmq merges it with its
 * own), and RabbitMQ then sends them on channel 0. */
static amqp_rpc_reply_t login(amqp_connection_state_t conn, const struct pv_amqp_params *p)
{
	amqp_table_entry_t cap = {.key = amqp_cstring_bytes("connection.blocked"),
				  .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}};
	amqp_table_entry_t prop = {.key = amqp_cstring_bytes("capabilities"),
				   .value = {.kind = AMQP_FIELD_KIND_TABLE,
					     .value.table = {.num_entries = 1, .entries = &cap}}};
	amqp_table_t props = {.num_entries = 1, .entries = &prop};

	if (!p->blocked_notifications)
		return amqp_login(conn, p->vhost, 0, PV_AMQP_FRAME_MAX, p->heartbeat,
				  AMQP_SASL_METHOD_PLAIN, p->user, p->password);
	return amqp_login_with_properties(conn, p->vhost, 0, PV_AMQP_FRAME_MAX, p->heartbeat,
					  &props, AMQP_SASL_METHOD_PLAIN, p->user, p->password);
}

enum pv_err pv_amqp_connect(const struct pv_amqp_params *p, amqp_connection_state_t *out,
			    struct pv_error *err)
{
	struct timeval tv = {.tv_sec = p->connect_timeout > 0 ? p->connect_timeout : 5};
	amqp_connection_state_t conn;
	amqp_socket_t *sock;
	enum pv_err rc;
	int status;

	*out = NULL;
	conn = amqp_new_connection();
	if (!conn)
		pv_oom("amqp_new_connection", 0);
	sock = amqp_tcp_socket_new(conn);
	if (!sock) {
		amqp_destroy_connection(conn);
		pv_oom("amqp_tcp_socket_new", 0);
	}
	/* A broker that accepts TCP and then says nothing must not hang us. */
	amqp_set_handshake_timeout(conn, &tv);
	amqp_set_rpc_timeout(conn, &tv);
	status = amqp_socket_open_noblock(sock, p->host, p->port, &tv);
	if (status < 0) {
		rc = pv_amqp_status_check(status, "connect", err);
		pv_error_prefix(err, "%s:%d", p->host, p->port);
		goto fail;
	}
	rc = pv_amqp_reply_check(login(conn, p), "login", err);
	if (rc != PV_OK) {
		pv_error_prefix(err, "%s:%d vhost %s user %s", p->host, p->port, p->vhost, p->user);
		goto fail;
	}
	amqp_channel_open(conn, PV_AMQP_CHANNEL);
	rc = pv_amqp_reply_check(amqp_get_rpc_reply(conn), "channel.open", err);
	if (rc != PV_OK)
		goto fail;
	*out = conn;
	return PV_OK;
fail:
	amqp_destroy_connection(conn);
	return rc;
}

void pv_amqp_disconnect(amqp_connection_state_t conn)
{
	if (!conn)
		return;
	/* Errors here only mean the peer is already gone. */
	amqp_channel_close(conn, PV_AMQP_CHANNEL, AMQP_REPLY_SUCCESS);
	amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(conn);
}

static enum pv_err declare_exchange(amqp_connection_state_t conn, const char *name,
				    const char *type, struct pv_error *err)
{
	char what[300];

	amqp_exchange_declare(conn, PV_AMQP_CHANNEL, amqp_cstring_bytes(name),
			      amqp_cstring_bytes(type), 0, 1, 0, 0, amqp_empty_table);
	snprintf(what, sizeof what, "exchange.declare %s (%s)", name, type);
	return pv_amqp_reply_check(amqp_get_rpc_reply(conn), what, err);
}

static enum pv_err declare_queue(amqp_connection_state_t conn, const char *name, amqp_table_t args,
				 struct pv_error *err)
{
	char what[300];

	amqp_queue_declare(conn, PV_AMQP_CHANNEL, amqp_cstring_bytes(name), 0, 1, 0, 0, args);
	snprintf(what, sizeof what, "queue.declare %s", name);
	return pv_amqp_reply_check(amqp_get_rpc_reply(conn), what, err);
}

static enum pv_err bind_queue(amqp_connection_state_t conn, const char *queue, const char *exchange,
			      const char *key, struct pv_error *err)
{
	char what[600];

	amqp_queue_bind(conn, PV_AMQP_CHANNEL, amqp_cstring_bytes(queue),
			amqp_cstring_bytes(exchange), amqp_cstring_bytes(key), amqp_empty_table);
	snprintf(what, sizeof what, "queue.bind %s to %s", queue, exchange);
	return pv_amqp_reply_check(amqp_get_rpc_reply(conn), what, err);
}

enum pv_err pv_amqp_declare_topology(amqp_connection_state_t conn, const struct pv_amqp_params *p,
				     struct pv_error *err)
{
	amqp_table_entry_t entries[2];
	amqp_table_t args = {.num_entries = 2, .entries = entries};
	bool hashed = p->partitions > 1;
	enum pv_err rc;

	entries[0].key = amqp_cstring_bytes("x-dead-letter-exchange");
	entries[0].value.kind = AMQP_FIELD_KIND_UTF8;
	entries[0].value.value.bytes = amqp_cstring_bytes(p->dead_letter_exchange);
	entries[1].key = amqp_cstring_bytes("x-single-active-consumer");
	entries[1].value.kind = AMQP_FIELD_KIND_BOOLEAN;
	entries[1].value.value.boolean = 1;

	rc = declare_exchange(conn, p->dead_letter_exchange, "fanout", err);
	if (rc == PV_OK)
		rc = declare_queue(conn, p->dead_letter_queue, amqp_empty_table, err);
	if (rc == PV_OK)
		rc = bind_queue(conn, p->dead_letter_queue, p->dead_letter_exchange, "", err);
	if (rc == PV_OK)
		rc = declare_exchange(conn, p->exchange, hashed ? "x-consistent-hash" : "topic",
				      err);
	if (rc != PV_OK || !hashed) {
		if (rc == PV_OK)
			rc = declare_queue(conn, p->queue, args, err);
		if (rc == PV_OK)
			rc = bind_queue(conn, p->queue, p->exchange, "#", err);
		return rc;
	}
	for (int i = 0; i < p->partitions && rc == PV_OK; i++) {
		char name[300];

		snprintf(name, sizeof name, "%s.%d", p->queue, i);
		rc = declare_queue(conn, name, args, err);
		/* For the consistent-hash exchange the binding key is a weight. */
		if (rc == PV_OK)
			rc = bind_queue(conn, name, p->exchange, "1", err);
	}
	return rc;
}

static long ms_until(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

enum pv_err pv_amqp_publish_confirmed(amqp_connection_state_t conn, amqp_channel_t channel,
				      const char *exchange, const char *routing_key,
				      const amqp_basic_properties_t *props, amqp_bytes_t body,
				      int timeout_ms, struct pv_error *err)
{
	char returned[300] = "";
	struct timespec deadline;
	int status = amqp_basic_publish(conn, channel, amqp_cstring_bytes(exchange),
					amqp_cstring_bytes(routing_key), 1, 0, props, body);

	if (status != AMQP_STATUS_OK)
		return pv_amqp_status_check(status, "basic.publish", err);
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	for (;;) {
		long ms = ms_until(&deadline);
		struct timeval tv = {.tv_sec = ms > 0 ? ms / 1000 : 0,
				     .tv_usec = ms > 0 ? (ms % 1000) * 1000 : 0};
		amqp_frame_t f;

		status = amqp_simple_wait_frame_noblock(conn, &f, &tv);
		if (status == AMQP_STATUS_TIMEOUT)
			return pv_error_set(err, PV_ERR_TIMEOUT,
					    "no confirm from the broker within %d ms (the message "
					    "may have been routed all the same)",
					    timeout_ms);
		if (status != AMQP_STATUS_OK)
			return pv_amqp_status_check(status, "wait for the publish confirm", err);
		if (f.frame_type != AMQP_FRAME_METHOD)
			continue; /* header and body of a returned message */
		switch (f.payload.method.id) {
		case AMQP_BASIC_ACK_METHOD:
			if (*returned)
				return pv_error_set(err, PV_ERR_BROKER,
						    "exchange %s routed it to no queue (%s)",
						    exchange, returned);
			return PV_OK;
		case AMQP_BASIC_NACK_METHOD:
			return pv_error_set(err, PV_ERR_BROKER,
					    "the broker refused it (basic.nack)");
		case AMQP_BASIC_RETURN_METHOD: {
			const amqp_basic_return_t *m = f.payload.method.decoded;

			snprintf(returned, sizeof returned, "returned: %u %.*s", m->reply_code,
				 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
			break;
		}
		case AMQP_CHANNEL_CLOSE_METHOD: {
			const amqp_channel_close_t *m = f.payload.method.decoded;

			return pv_error_set(err, PV_ERR_BROKER,
					    "RabbitMQ closed channel %u: %u %.*s", f.channel,
					    m->reply_code, (int)m->reply_text.len,
					    (const char *)m->reply_text.bytes);
		}
		case AMQP_CONNECTION_CLOSE_METHOD: {
			const amqp_connection_close_t *m = f.payload.method.decoded;

			return pv_error_set(err, PV_ERR_BROKER,
					    "RabbitMQ closed the connection: %u %.*s",
					    m->reply_code, (int)m->reply_text.len,
					    (const char *)m->reply_text.bytes);
		}
		default: break;
		}
	}
}
