/* Test equipment for photovote-admin's dead-letter commands, configured like
 * the programs (PHOTOVOTE_* environment variables, no file):
 *
 *   pv-dlq-tool publish            publishes each line of stdin (an event
 *                                  envelope) as photovote.fcgi does, with
 *                                  lib's publisher: routing key
 *                                  data.election_id, message id event_id,
 *                                  type, timestamp, app id, the headers
 *                                  correlation_id/user/source from the
 *                                  metadata; declares the topology
 *   pv-dlq-tool dump QUEUE keep|take
 *                                  prints every ready message of QUEUE as one
 *                                  JSON object a line (exchange, routing key,
 *                                  properties, headers in wire order, body in
 *                                  hex); keep gives them back in their places,
 *                                  take acks them
 *   pv-dlq-tool dead-letter N      takes N messages from the appender's
 *                                  queue(s) and sets them aside as the
 *                                  appender does (pv_amqp_consumer_dead_letter)
 *   pv-dlq-tool reject QUEUE N     takes N messages from QUEUE and rejects
 *                                  them without requeue, so that RabbitMQ
 *                                  dead-letters them itself (x-death)
 *   pv-dlq-tool exchange NAME      declares a topic exchange with no queue
 *   pv-dlq-tool depth QUEUE        prints how many messages QUEUE holds (ready)
 *   pv-dlq-tool raw EXCHANGE KEY   publishes stdin as one persistent message
 *                                  with routing key KEY and nothing else but
 *                                  the message id event_id when the body
 *                                  has one (what another publisher might
 *                                  leave in the dead-letter exchange)
 */
#define _POSIX_C_SOURCE 200809L

#include "amqp_conn.h"
#include "amqp_consumer.h"
#include "amqp_publisher.h"
#include "config.h"
#include "options.h"
#include "log.h"
#include "xalloc.h"

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct pv_amqp_params params;

static void die(const char *what, const struct pv_error *err)
{
	fprintf(stderr, "pv-dlq-tool: %s: %s\n", what, err->msg);
	exit(1);
}

static const char *meta_str(const json_t *env, const char *key)
{
	return json_string_value(json_object_get(json_object_get(env, "metadata"), key));
}

static int publish(void)
{
	struct pv_amqp_publisher *pub = pv_amqp_publisher_start(&params);
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;

	if (!pv_amqp_publisher_wait_connected(pub, 30000)) {
		fprintf(stderr, "pv-dlq-tool: publish: not connected after 30 s\n");
		pv_amqp_publisher_stop(pub);
		return 1;
	}
	while (rc == 0 && (n = getline(&line, &cap, stdin)) > 0) {
		struct pv_amqp_message m;
		struct pv_error err;
		json_t *env;

		if (line[n - 1] == '\n')
			line[--n] = '\0';
		env = json_loadb(line, (size_t)n, 0, NULL);
		memset(&m, 0, sizeof m);
		m.routing_key = json_string_value(
			json_object_get(json_object_get(env, "data"), "election_id"));
		m.body = line;
		m.body_len = (size_t)n;
		m.content_type = "application/json";
		m.message_id = json_string_value(json_object_get(env, "event_id"));
		m.type = json_string_value(json_object_get(env, "type"));
		m.timestamp = (uint64_t)time(NULL);
		m.user = meta_str(env, "user");
		m.correlation_id = meta_str(env, "correlation_id");
		m.source = meta_str(env, "source");
		if (pv_amqp_publisher_publish(pub, &m, 30000, 30000, NULL, &err) != PV_OK) {
			fprintf(stderr, "pv-dlq-tool: publish: %s\n", err.msg);
			rc = 1;
		}
		json_decref(env);
	}
	free(line);
	pv_amqp_publisher_stop(pub);
	return rc;
}

static json_t *hex(amqp_bytes_t b)
{
	static const char digits[] = "0123456789abcdef";
	char *s = pv_xmalloc(2 * b.len + 1);
	json_t *j;

	for (size_t i = 0; i < b.len; i++) {
		s[2 * i] = digits[((const unsigned char *)b.bytes)[i] >> 4];
		s[2 * i + 1] = digits[((const unsigned char *)b.bytes)[i] & 15];
	}
	s[2 * b.len] = '\0';
	j = json_string(s);
	free(s);
	return j;
}

/* A string as JSON text, or as hex when it is not UTF-8. */
static json_t *text(amqp_bytes_t b)
{
	json_t *j = json_stringn(b.bytes ? b.bytes : "", b.len);

	return j ? j : hex(b);
}

static void set(json_t *o, const char *key, json_t *v)
{
	if (!v || json_object_set_new(o, key, v) != 0)
		pv_oom("json", 0);
}

static json_t *describe(const amqp_bytes_t *exchange, const amqp_bytes_t *key,
			const amqp_message_t *m)
{
	static const struct {
		amqp_flags_t flag;
		const char *name;
		size_t offset;
	} strings[] = {
		{AMQP_BASIC_CONTENT_TYPE_FLAG, "content_type",
		 offsetof(amqp_basic_properties_t, content_type)},
		{AMQP_BASIC_CONTENT_ENCODING_FLAG, "content_encoding",
		 offsetof(amqp_basic_properties_t, content_encoding)},
		{AMQP_BASIC_CORRELATION_ID_FLAG, "correlation_id",
		 offsetof(amqp_basic_properties_t, correlation_id)},
		{AMQP_BASIC_REPLY_TO_FLAG, "reply_to", offsetof(amqp_basic_properties_t, reply_to)},
		{AMQP_BASIC_EXPIRATION_FLAG, "expiration",
		 offsetof(amqp_basic_properties_t, expiration)},
		{AMQP_BASIC_MESSAGE_ID_FLAG, "message_id",
		 offsetof(amqp_basic_properties_t, message_id)},
		{AMQP_BASIC_TYPE_FLAG, "type", offsetof(amqp_basic_properties_t, type)},
		{AMQP_BASIC_USER_ID_FLAG, "user_id", offsetof(amqp_basic_properties_t, user_id)},
		{AMQP_BASIC_APP_ID_FLAG, "app_id", offsetof(amqp_basic_properties_t, app_id)},
	};
	const amqp_basic_properties_t *p = &m->properties;
	json_t *o = json_object(), *props = json_object(), *headers = json_array();

	if (!o || !props || !headers)
		pv_oom("json", 0);
	set(o, "exchange", text(*exchange));
	set(o, "routing_key", text(*key));
	for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
		if (p->_flags & strings[i].flag)
			set(props, strings[i].name,
			    text(*(const amqp_bytes_t *)((const char *)p + strings[i].offset)));
	if (p->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG)
		set(props, "delivery_mode", json_integer(p->delivery_mode));
	if (p->_flags & AMQP_BASIC_PRIORITY_FLAG)
		set(props, "priority", json_integer(p->priority));
	if (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG)
		set(props, "timestamp", json_integer((json_int_t)p->timestamp));
	for (int i = 0; (p->_flags & AMQP_BASIC_HEADERS_FLAG) && i < p->headers.num_entries; i++) {
		const amqp_table_entry_t *e = &p->headers.entries[i];
		json_t *h = json_pack("[o, s#]", text(e->key), (const char *)&e->value.kind, 1);

		if (!h)
			pv_oom("json", 0);
		if (e->value.kind == AMQP_FIELD_KIND_UTF8 || e->value.kind == AMQP_FIELD_KIND_BYTES)
			json_array_append_new(h, text(e->value.value.bytes));
		json_array_append_new(headers, h);
	}
	set(o, "properties", props);
	set(o, "headers", headers);
	set(o, "body", hex(m->body));
	return o;
}

/* basic.get (no ack) of the next message of queue into *msg; false when
 * the queue is empty.  exchange and key, when not NULL, get copies. */
static bool get_one(amqp_connection_state_t conn, const char *queue, uint64_t *tag,
		    amqp_bytes_t *exchange, amqp_bytes_t *key, amqp_message_t *msg)
{
	amqp_rpc_reply_t r = amqp_basic_get(conn, 1, amqp_cstring_bytes(queue), 0);
	const amqp_basic_get_ok_t *ok;
	struct pv_error err;

	if (pv_amqp_reply_check(r, "basic.get", &err) != PV_OK)
		die(queue, &err);
	if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
		return false;
	/* The decoded method lives in the pool amqp_read_message reuses. */
	ok = r.reply.decoded;
	*tag = ok->delivery_tag;
	if (exchange)
		*exchange = amqp_bytes_malloc_dup(ok->exchange);
	if (key)
		*key = amqp_bytes_malloc_dup(ok->routing_key);
	if (pv_amqp_reply_check(amqp_read_message(conn, 1, msg, 0), "read message", &err) != PV_OK)
		die(queue, &err);
	return true;
}

/* A round trip on channel 1, so that what was sent before is handled, and
 * then until queue holds at least `least` messages (at most 10 s): RabbitMQ
 * puts nacked messages back after it answered. */
static void sync_queue(amqp_connection_state_t conn, const char *queue, uint32_t least)
{
	struct timespec nap = {.tv_nsec = 20000000L};
	struct pv_error err;

	for (int i = 0; i < 500; i++) {
		amqp_queue_declare_ok_t *ok = amqp_queue_declare(conn, 1, amqp_cstring_bytes(queue),
								 1, 0, 0, 0, amqp_empty_table);

		if (pv_amqp_reply_check(amqp_get_rpc_reply(conn), "queue.declare", &err) != PV_OK)
			die(queue, &err);
		if (ok->message_count >= least)
			return;
		nanosleep(&nap, NULL);
	}
}

static int dump(amqp_connection_state_t conn, const char *queue, const char *mode)
{
	bool take = strcmp(mode, "take") == 0;
	amqp_bytes_t exchange, key;
	amqp_message_t msg;
	uint64_t tag, last = 0;
	uint32_t n = 0;
	struct pv_error err;

	if (!take && strcmp(mode, "keep") != 0)
		return 2;
	while (get_one(conn, queue, &tag, &exchange, &key, &msg)) {
		json_t *o = describe(&exchange, &key, &msg);
		char *line = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);

		if (!line)
			pv_oom("json_dumps", 0);
		puts(line);
		free(line);
		json_decref(o);
		amqp_bytes_free(exchange);
		amqp_bytes_free(key);
		amqp_destroy_message(&msg);
		amqp_maybe_release_buffers(conn);
		last = tag;
		n++;
	}
	if (last && pv_amqp_status_check(take ? amqp_basic_ack(conn, 1, last, 1)
					      : amqp_basic_nack(conn, 1, last, 1, 1),
					 take ? "basic.ack" : "basic.nack", &err) != PV_OK)
		die("dump", &err);
	sync_queue(conn, queue, take ? 0 : n);
	return 0;
}

static long count_arg(const char *s)
{
	char *end;
	long n = strtol(s, &end, 10);

	if (*end || n < 1) {
		fprintf(stderr, "pv-dlq-tool: %s is not a count\n", s);
		exit(2);
	}
	return n;
}

static int dead_letter(const char *count)
{
	long want = count_arg(count);
	struct pv_amqp_consumer *c;
	struct pv_error err;

	if (pv_amqp_consumer_open(&params, 1, &c, &err) != PV_OK)
		die("dead-letter", &err);
	for (long i = 0; i < want; i++) {
		struct pv_amqp_delivery d;

		if (pv_amqp_consumer_next(c, 10000, &d, &err) != PV_OK)
			die("dead-letter: next", &err);
		if (pv_amqp_consumer_dead_letter(c, &d, "test: set aside by pv-dlq-tool", &err) !=
		    PV_OK)
			die("dead-letter", &err);
		pv_amqp_delivery_clear(&d);
	}
	pv_amqp_consumer_close(c);
	return 0;
}

static int reject(amqp_connection_state_t conn, const char *queue, const char *count)
{
	long want = count_arg(count);
	amqp_message_t msg;
	struct pv_error err;
	uint64_t tag;

	for (long i = 0; i < want; i++) {
		if (!get_one(conn, queue, &tag, NULL, NULL, &msg)) {
			fprintf(stderr, "pv-dlq-tool: reject: %s is empty\n", queue);
			return 1;
		}
		amqp_destroy_message(&msg);
		if (pv_amqp_status_check(amqp_basic_reject(conn, 1, tag, 0), "basic.reject",
					 &err) != PV_OK)
			die("reject", &err);
		amqp_maybe_release_buffers(conn);
	}
	sync_queue(conn, queue, 0);
	return 0;
}

static int raw(amqp_connection_state_t conn, const char *exchange, const char *key)
{
	char body[65536];
	size_t n = fread(body, 1, sizeof body, stdin);
	json_t *env = json_loadb(body, n, 0, NULL);
	const char *id = json_string_value(json_object_get(env, "event_id"));
	amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG,
					 .delivery_mode = AMQP_DELIVERY_PERSISTENT};
	struct timeval tv = {.tv_sec = 30};
	struct pv_error err;
	amqp_frame_t f;

	if (id) {
		props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
		props.message_id = amqp_cstring_bytes(id);
	}
	amqp_confirm_select(conn, 1);
	if (pv_amqp_reply_check(amqp_get_rpc_reply(conn), "confirm.select", &err) != PV_OK ||
	    pv_amqp_status_check(amqp_basic_publish(conn, 1, amqp_cstring_bytes(exchange),
						    amqp_cstring_bytes(key), 1, 0, &props,
						    (amqp_bytes_t){.len = n, .bytes = body}),
				 "basic.publish", &err) != PV_OK)
		die("raw", &err);
	json_decref(env);
	do {
		if (pv_amqp_status_check(amqp_simple_wait_frame_noblock(conn, &f, &tv),
					 "wait for the confirm", &err) != PV_OK)
			die("raw", &err);
	} while (f.frame_type != AMQP_FRAME_METHOD ||
		 f.payload.method.id == AMQP_BASIC_RETURN_METHOD);
	if (f.payload.method.id != AMQP_BASIC_ACK_METHOD) {
		fprintf(stderr, "pv-dlq-tool: raw: not confirmed (method 0x%08x)\n",
			(unsigned)f.payload.method.id);
		return 1;
	}
	return 0;
}

static int depth(amqp_connection_state_t conn, const char *queue)
{
	amqp_queue_declare_ok_t *ok = amqp_queue_declare(conn, 1, amqp_cstring_bytes(queue), 1, 0,
							 0, 0, amqp_empty_table);
	struct pv_error err;

	if (pv_amqp_reply_check(amqp_get_rpc_reply(conn), "queue.declare", &err) != PV_OK)
		die(queue, &err);
	printf("%u\n", ok->message_count);
	return 0;
}

static int exchange(amqp_connection_state_t conn, const char *name)
{
	struct pv_error err;

	amqp_exchange_declare(conn, 1, amqp_cstring_bytes(name), amqp_cstring_bytes("topic"), 0, 0,
			      0, 0, amqp_empty_table);
	if (pv_amqp_reply_check(amqp_get_rpc_reply(conn), "exchange.declare", &err) != PV_OK)
		die("exchange", &err);
	return 0;
}

int main(int argc, char **argv)
{
	amqp_connection_state_t conn = NULL;
	struct pv_config *cfg;
	struct pv_error err;
	int rc;

	pv_log_init("pv-dlq-tool", PV_LOG_STDERR, PV_LOG_WARNING);
	if (pv_config_load(NULL, NULL, &cfg, &err) != PV_OK)
		die("config", &err);
	pv_amqp_params_from_config(&params, cfg);
	/* dump, reject and exchange share one plain connection. */
	if (argc > 2 && strcmp(argv[1], "dead-letter") != 0 &&
	    pv_amqp_connect(&params, &conn, &err) != PV_OK)
		die("connect", &err);
	if (argc == 2 && strcmp(argv[1], "publish") == 0)
		rc = publish();
	else if (argc == 4 && strcmp(argv[1], "dump") == 0)
		rc = dump(conn, argv[2], argv[3]);
	else if (argc == 3 && strcmp(argv[1], "dead-letter") == 0)
		rc = dead_letter(argv[2]);
	else if (argc == 4 && strcmp(argv[1], "reject") == 0)
		rc = reject(conn, argv[2], argv[3]);
	else if (argc == 3 && strcmp(argv[1], "exchange") == 0)
		rc = exchange(conn, argv[2]);
	else if (argc == 3 && strcmp(argv[1], "depth") == 0)
		rc = depth(conn, argv[2]);
	else if (argc == 4 && strcmp(argv[1], "raw") == 0)
		rc = raw(conn, argv[2], argv[3]);
	else
		rc = 2;
	if (rc == 2)
		fprintf(stderr,
			"usage: pv-dlq-tool publish | dump QUEUE keep|take | dead-letter N "
			"| reject QUEUE N | exchange NAME | depth QUEUE | raw EXCHANGE KEY\n");
	pv_amqp_disconnect(conn);
	pv_amqp_params_clear(&params);
	pv_config_free(cfg);
	return rc;
}
