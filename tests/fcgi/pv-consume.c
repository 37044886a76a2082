/* pv-consume: takes messages off a RabbitMQ queue and prints each as one
 * JSON line, properties included, for the FastCGI tests to compare:
 *
 *   {"routing_key": ..., "exchange": ..., "redelivered": false,
 *    "properties": {"content_type", "delivery_mode", "message_id", "type",
 *                   "timestamp", "correlation_id", "app_id",
 *                   "headers": {...}},
 *    "body": <the body as JSON, or as a string when it is not JSON>}
 *
 * usage: pv-consume AMQP_URL QUEUE MAX WAIT_MS
 * Gets messages (basic.get, acked) until MAX were printed or WAIT_MS
 * passed without one.  Exits 1 on a broker error. */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static json_t *bytes_json(amqp_bytes_t b)
{
	return json_stringn(b.bytes ? b.bytes : "", b.len);
}

static json_t *headers_json(const amqp_table_t *t)
{
	json_t *o = json_object();

	for (int i = 0; i < t->num_entries; i++) {
		const amqp_table_entry_t *e = &t->entries[i];
		char *key = strndup(e->key.bytes, e->key.len);

		if (e->value.kind == AMQP_FIELD_KIND_UTF8 || e->value.kind == AMQP_FIELD_KIND_BYTES)
			json_object_set_new(o, key, bytes_json(e->value.value.bytes));
		else
			json_object_set_new(o, key, json_string("(non-string)"));
		free(key);
	}
	return o;
}

static json_t *props_json(const amqp_basic_properties_t *p)
{
	json_t *o = json_object();

	if (p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG)
		json_object_set_new(o, "content_type", bytes_json(p->content_type));
	if (p->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG)
		json_object_set_new(o, "delivery_mode", json_integer(p->delivery_mode));
	if (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
		json_object_set_new(o, "message_id", bytes_json(p->message_id));
	if (p->_flags & AMQP_BASIC_TYPE_FLAG)
		json_object_set_new(o, "type", bytes_json(p->type));
	if (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG)
		json_object_set_new(o, "timestamp", json_integer((json_int_t)p->timestamp));
	if (p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG)
		json_object_set_new(o, "correlation_id", bytes_json(p->correlation_id));
	if (p->_flags & AMQP_BASIC_APP_ID_FLAG)
		json_object_set_new(o, "app_id", bytes_json(p->app_id));
	if (p->_flags & AMQP_BASIC_HEADERS_FLAG)
		json_object_set_new(o, "headers", headers_json(&p->headers));
	return o;
}

static int fail(const char *what, amqp_rpc_reply_t r)
{
	fprintf(stderr, "pv-consume: %s failed (reply type %d, library error %s)\n", what,
		r.reply_type, amqp_error_string2(r.library_error));
	return 1;
}

int main(int argc, char **argv)
{
	struct amqp_connection_info ci;
	amqp_connection_state_t conn;
	amqp_socket_t *sock;
	amqp_rpc_reply_t r;
	char *url;
	long max, wait_ms, got = 0, idle = 0;

	if (argc != 5) {
		fprintf(stderr, "usage: pv-consume AMQP_URL QUEUE MAX WAIT_MS\n");
		return 2;
	}
	url = strdup(argv[1]);
	max = atol(argv[3]);
	wait_ms = atol(argv[4]);
	if (amqp_parse_url(url, &ci) != AMQP_STATUS_OK) {
		fprintf(stderr, "pv-consume: bad URL\n");
		return 2;
	}
	conn = amqp_new_connection();
	sock = amqp_tcp_socket_new(conn);
	if (!sock || amqp_socket_open(sock, ci.host, ci.port) != AMQP_STATUS_OK) {
		fprintf(stderr, "pv-consume: cannot connect to %s:%d\n", ci.host, ci.port);
		return 1;
	}
	r = amqp_login(conn, ci.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, ci.user, ci.password);
	if (r.reply_type != AMQP_RESPONSE_NORMAL)
		return fail("login", r);
	amqp_channel_open(conn, 1);
	r = amqp_get_rpc_reply(conn);
	if (r.reply_type != AMQP_RESPONSE_NORMAL)
		return fail("channel.open", r);
	while (got < max && idle < wait_ms) {
		amqp_message_t msg;
		json_error_t jerr;
		json_t *line, *body;
		char *text;

		r = amqp_basic_get(conn, 1, amqp_cstring_bytes(argv[2]), 0);
		if (r.reply_type != AMQP_RESPONSE_NORMAL)
			return fail("basic.get", r);
		if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) {
			struct timespec ts = {0, 20 * 1000 * 1000};
			nanosleep(&ts, NULL);
			idle += 20;
			continue;
		}
		idle = 0;
		const amqp_basic_get_ok_t *ok = r.reply.decoded;
		uint64_t tag = ok->delivery_tag;
		line = json_object();
		json_object_set_new(line, "routing_key", bytes_json(ok->routing_key));
		json_object_set_new(line, "exchange", bytes_json(ok->exchange));
		json_object_set_new(line, "redelivered", json_boolean(ok->redelivered));
		r = amqp_read_message(conn, 1, &msg, 0);
		if (r.reply_type != AMQP_RESPONSE_NORMAL)
			return fail("reading the message", r);
		json_object_set_new(line, "properties", props_json(&msg.properties));
		body = json_loadb(msg.body.bytes, msg.body.len, 0, &jerr);
		json_object_set_new(line, "body", body ? body : bytes_json(msg.body));
		text = json_dumps(line, JSON_COMPACT | JSON_SORT_KEYS);
		printf("%s\n", text);
		fflush(stdout);
		free(text);
		json_decref(line);
		amqp_destroy_message(&msg);
		amqp_basic_ack(conn, 1, tag, 0);
		got++;
	}
	amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
	amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(conn);
	free(url);
	return 0;
}
