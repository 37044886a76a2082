/* Test equipment for the appender tests, configured like the programs
 * (PHOTOVOTE_* environment variables, no file):
 *
 *   pv-appender-tool publish      publishes each line of stdin as one persistent
 *                                 message with confirms; routing key: the
 *                                 line's data.election_id, or "poison"
 *   pv-appender-tool dead-letters drains the dead-letter queue, printing
 *                                 "<x-photovote-reason>\t<body>" per message
 *   pv-appender-tool stream ID    prints "<number> <event id> <type>" for each
 *                                 event of stream Election-ID, from the
 *                                 configured event store
 *   pv-appender-tool pending      prints how many messages the appender's
 *                                 queues hold (ready, not unacked)
 *   pv-appender-tool drain N BATCH consumes N messages as the appender does
 *                                 (prefetch from PHOTOVOTE_AMQP_PREFETCH,
 *                                 batches of up to BATCH, one multiple ack
 *                                 each) and does nothing else: the broker's
 *                                 share of the appender benchmark.  N = 0:
 *                                 until killed (bench-latency's command API
 *                                 alone, its queue kept short as in use)
 */
#define _POSIX_C_SOURCE 200809L

#include "amqp_conn.h"
#include "amqp_consumer.h"
#include "config.h"
#include "options.h"
#include "eventstore.h"
#include "log.h"
#include "xalloc.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct pv_config *cfg;
static struct pv_amqp_params params;

static void die(const char *what, const struct pv_error *err)
{
	fprintf(stderr, "pv-appender-tool: %s: %s\n", what, err->msg);
	exit(1);
}

static amqp_connection_state_t connect_broker(void)
{
	amqp_connection_state_t conn;
	struct pv_error err;

	if (pv_amqp_connect(&params, &conn, &err) != PV_OK)
		die("connect", &err);
	if (pv_amqp_declare_topology(conn, &params, &err) != PV_OK)
		die("declare", &err);
	return conn;
}

static int publish(void)
{
	amqp_connection_state_t conn = connect_broker();
	char *line = NULL;
	size_t cap = 0, sent = 0, acked = 0;
	ssize_t n;
	struct pv_error err;

	amqp_confirm_select(conn, 1);
	if (pv_amqp_reply_check(amqp_get_rpc_reply(conn), "confirm.select", &err) != PV_OK)
		die("publish", &err);
	while ((n = getline(&line, &cap, stdin)) > 0) {
		amqp_basic_properties_t props;
		json_t *root;
		const char *key = "poison", *id = NULL;
		int status;

		if (line[n - 1] == '\n')
			line[--n] = '\0';
		root = json_loadb(line, (size_t)n, 0, NULL);
		if (root) {
			const char *eid = json_string_value(
				json_object_get(json_object_get(root, "data"), "election_id"));
			if (eid)
				key = eid;
			id = json_string_value(json_object_get(root, "event_id"));
		}
		memset(&props, 0, sizeof props);
		props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
		props.delivery_mode = 2;
		props.content_type = amqp_cstring_bytes("application/json");
		if (id) {
			props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
			props.message_id = amqp_cstring_bytes(id);
		}
		status = amqp_basic_publish(conn, 1, amqp_cstring_bytes(params.exchange),
					    amqp_cstring_bytes(key), 1, 0, &props,
					    (amqp_bytes_t){.len = (size_t)n, .bytes = line});
		json_decref(root);
		if (pv_amqp_status_check(status, "basic.publish", &err) != PV_OK)
			die("publish", &err);
		sent++;
	}
	free(line);
	while (acked < sent) {
		amqp_frame_t frame;
		/* Bounded: a test must fail, not hang, when confirms stop. */
		struct timeval tv = {.tv_sec = 60};
		int status = amqp_simple_wait_frame_noblock(conn, &frame, &tv);

		if (status == AMQP_STATUS_TIMEOUT) {
			fprintf(stderr,
				"pv-appender-tool: %zu of %zu publishes confirmed after 60 s\n",
				acked, sent);
			return 1;
		}
		if (pv_amqp_status_check(status, "wait for confirms", &err) != PV_OK)
			die("publish", &err);
		if (frame.frame_type != AMQP_FRAME_METHOD)
			continue;
		if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
			const amqp_basic_ack_t *a = frame.payload.method.decoded;
			acked = a->multiple ? (size_t)a->delivery_tag : acked + 1;
		} else if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD ||
			   frame.payload.method.id == AMQP_BASIC_RETURN_METHOD) {
			fprintf(stderr, "pv-appender-tool: a message was nacked or returned\n");
			return 1;
		}
	}
	pv_amqp_disconnect(conn);
	return 0;
}

static int dead_letters(void)
{
	amqp_connection_state_t conn = connect_broker();
	struct pv_error err;

	for (;;) {
		amqp_rpc_reply_t r =
			amqp_basic_get(conn, 1, amqp_cstring_bytes(params.dead_letter_queue), 1);
		amqp_message_t msg;
		const amqp_bytes_t *reason;

		if (pv_amqp_reply_check(r, "basic.get", &err) != PV_OK)
			die("dead-letters", &err);
		if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
			break;
		r = amqp_read_message(conn, 1, &msg, 0);
		if (pv_amqp_reply_check(r, "read message", &err) != PV_OK)
			die("dead-letters", &err);
		reason = pv_amqp_header_text(&msg.properties, "x-photovote-reason");
		printf("%.*s\t%.*s\n", reason ? (int)reason->len : 6,
		       reason ? (const char *)reason->bytes : "(none)", (int)msg.body.len,
		       (const char *)msg.body.bytes);
		amqp_destroy_message(&msg);
		amqp_maybe_release_buffers(conn);
	}
	pv_amqp_disconnect(conn);
	return 0;
}

/* Prints the messages ready in the appender's queues (all partitions), or
 * with dead set in the dead-letter queue, without taking any. */
static int pending(bool dead)
{
	amqp_connection_state_t conn = connect_broker();
	struct pv_error err;
	unsigned long total = 0;
	int queues = dead || params.partitions <= 1 ? 1 : params.partitions;

	for (int i = 0; i < queues; i++) {
		char name[300];
		amqp_queue_declare_ok_t *ok;

		if (dead)
			snprintf(name, sizeof name, "%s", params.dead_letter_queue);
		else if (params.partitions > 1)
			snprintf(name, sizeof name, "%s.%d", params.queue, i);
		else
			snprintf(name, sizeof name, "%s", params.queue);
		ok = amqp_queue_declare(conn, 1, amqp_cstring_bytes(name), 1, 0, 0, 0,
					amqp_empty_table);
		if (pv_amqp_reply_check(amqp_get_rpc_reply(conn), "queue.declare passive", &err) !=
		    PV_OK)
			die("pending", &err);
		total += ok->message_count;
	}
	printf("%lu\n", total);
	pv_amqp_disconnect(conn);
	return 0;
}

static int drain(const char *count, const char *batch_size)
{
	long want = strtol(count, NULL, 10), batch = strtol(batch_size, NULL, 10), got = 0;
	struct pv_amqp_consumer *c;
	struct pv_amqp_delivery *d;
	struct pv_error err;

	if (want < 0 || batch < 1) {
		fprintf(stderr, "pv-appender-tool: drain N BATCH: N >= 0, BATCH >= 1\n");
		return 2;
	}
	d = pv_xcalloc((size_t)batch, sizeof *d);
	if (pv_amqp_consumer_open(&params, (int)pv_config_int(cfg, "amqp", "prefetch"), &c, &err) !=
	    PV_OK)
		die("drain", &err);
	while (!want || got < want) {
		/* As the appender: wait for one, then take what is already there. */
		long n = 0;
		enum pv_err rc = pv_amqp_consumer_next(c, 10000, &d[0], &err);

		if (rc == PV_ERR_TIMEOUT && !want)
			continue;
		if (rc != PV_OK)
			die("drain: first of a batch", &err);
		for (n = 1; n < batch && (!want || got + n < want); n++)
			if (pv_amqp_consumer_next(c, 0, &d[n], &err) != PV_OK)
				break;
		if (pv_amqp_consumer_ack_upto(c, d[n - 1].tag, &err) != PV_OK)
			die("drain: ack", &err);
		for (long i = 0; i < n; i++)
			pv_amqp_delivery_clear(&d[i]);
		got += n;
	}
	pv_amqp_consumer_close(c);
	free(d);
	return 0;
}

static int stream(const char *id)
{
	struct pv_es_options o;
	char name[100];
	struct pv_error err;
	struct pv_es *es;
	int64_t from = 0;

	pv_es_options_from_config(cfg, &o);
	snprintf(name, sizeof name, "Election-%s", id);
	if (pv_es_open(&o, &es, &err) != PV_OK)
		die("open event store", &err);
	for (;;) {
		struct pv_es_page page = {0};
		enum pv_err rc = pv_es_read_stream(es, name, from, 500, false, &page, &err);
		bool more;

		if (rc == PV_ERR_NOT_FOUND)
			break;
		if (rc != PV_OK)
			die("read", &err);
		for (size_t i = 0; i < page.count; i++)
			printf("%" PRId64 " %s %s\n", page.events[i].number, page.events[i].id,
			       page.events[i].type);
		more = page.count > 0 && !page.end_of_stream;
		from = page.next;
		pv_es_page_clear(&page);
		if (!more || from < 0)
			break;
	}
	pv_es_close(es);
	return 0;
}

/* Deletes an election's stream, as an operator would by hand: soft (a later
 * ElectionCreated for the same id continues its numbering) or hard (for
 * good). */
static int delete_stream(const char *id, bool hard)
{
	struct pv_es_options o;
	char name[100];
	struct pv_error err;
	struct pv_es *es;

	pv_es_options_from_config(cfg, &o);
	snprintf(name, sizeof name, "Election-%s", id);
	if (pv_es_open(&o, &es, &err) != PV_OK)
		die("open event store", &err);
	if (pv_es_delete_stream(es, name, PV_ES_ANY, hard, &err) != PV_OK)
		die("delete", &err);
	pv_es_close(es);
	return 0;
}

int main(int argc, char **argv)
{
	struct pv_error err;
	int rc;

	pv_log_init("pv-appender-tool", PV_LOG_STDERR, PV_LOG_WARNING);
	if (argc < 2) {
		fprintf(stderr,
			"usage: pv-appender-tool publish|dead-letters|dead-count|pending|drain N "
			"BATCH|stream ID|delete-stream ID [hard]\n");
		return 2;
	}
	if (pv_config_load(NULL, NULL, &cfg, &err) != PV_OK)
		die("config", &err);
	pv_amqp_params_from_config(&params, cfg);
	if (strcmp(argv[1], "publish") == 0)
		rc = publish();
	else if (strcmp(argv[1], "dead-letters") == 0)
		rc = dead_letters();
	else if (strcmp(argv[1], "pending") == 0)
		rc = pending(false);
	else if (strcmp(argv[1], "dead-count") == 0)
		rc = pending(true);
	else if (strcmp(argv[1], "drain") == 0 && argc == 4)
		rc = drain(argv[2], argv[3]);
	else if (strcmp(argv[1], "stream") == 0 && argc == 3)
		rc = stream(argv[2]);
	else if (strcmp(argv[1], "delete-stream") == 0 && argc == 3)
		rc = delete_stream(argv[2], false);
	else if (strcmp(argv[1], "delete-stream") == 0 && argc == 4 && strcmp(argv[3], "hard") == 0)
		rc = delete_stream(argv[2], true);
	else
		rc = 2;
	pv_amqp_params_clear(&params);
	pv_config_free(cfg);
	return rc;
}
