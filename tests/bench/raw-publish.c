/* raw-publish: the broker's own rate, a baseline for bench-fcgi.sh.
 * P publishers, each with its own connection and a channel in confirm
 * mode, publish persistent messages of B bytes to a durable queue (through
 * the default exchange) for S seconds, each waiting for the broker's
 * confirm of its message before publishing the next: the rate a server
 * gets that publishes one message per request and answers only after the
 * confirm, with P requests in flight.
 *
 * SHAPE says what each message looks like to the broker:
 *   bare       (the default) the default exchange straight to the queue,
 *              content type and persistence only;
 *   photovote  what photovote.fcgi publishes: through a durable topic
 *              exchange bound to the queue with "#", mandatory, with a
 *              message id, type, timestamp, app id and correlation id, and
 *              the headers user, correlation_id and source, each message
 *              with ids of its own.  The broker's work per message differs
 *              between the two (the headers table above all), so this one
 *              tells the broker's share of photovote.fcgi's figures.
 *
 * The clock starts once every publisher is connected and ready (a
 * barrier), so connection set-up and teardown are not counted.
 *
 * usage: raw-publish HOST PORT SECONDS PUBLISHERS BYTES [SHAPE]
 * Prints "confirms N seconds S rate R p50 A p90 B p99 C max D" (latencies
 * in milliseconds) on one line.  The queue (photovote.bench.raw.<pid>) and
 * the exchange of the same name are deleted at the end.  Exits 1 when the broker fails. */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define CHANNEL 1
#define MAX_PUBLISHERS 1024

static const char *host;
static int port;
static char queue[64];
static bool photovote_shape;
static amqp_bytes_t body;
static double start, deadline;
static pthread_barrier_t ready;

struct publisher {
	pthread_t thread;
	unsigned index;
	double *lat; /* seconds per confirmed message */
	double last; /* when the last confirm came */
	size_t n, cap;
	bool failed;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool reply_ok(amqp_rpc_reply_t r, const char *what)
{
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return true;
	if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
		fprintf(stderr, "raw-publish: %s: %s\n", what, amqp_error_string2(r.library_error));
	else
		fprintf(stderr, "raw-publish: %s: refused by the broker\n", what);
	return false;
}

static amqp_connection_state_t connect_broker(void)
{
	amqp_connection_state_t conn = amqp_new_connection();
	amqp_socket_t *sock;
	struct timeval tv = {10, 0};

	if (!conn)
		return NULL;
	sock = amqp_tcp_socket_new(conn);
	if (!sock || amqp_socket_open_noblock(sock, host, port, &tv) != AMQP_STATUS_OK) {
		fprintf(stderr, "raw-publish: cannot connect to %s:%d\n", host, port);
		amqp_destroy_connection(conn);
		return NULL;
	}
	if (!reply_ok(amqp_login(conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"),
		      "login") ||
	    !amqp_channel_open(conn, CHANNEL) ||
	    !reply_ok(amqp_get_rpc_reply(conn), "channel.open")) {
		amqp_destroy_connection(conn);
		return NULL;
	}
	return conn;
}

static void close_broker(amqp_connection_state_t conn)
{
	amqp_channel_close(conn, CHANNEL, AMQP_REPLY_SUCCESS);
	amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(conn);
}

/* Waits for the confirm of delivery tag `tag`: true on ack. */
static bool wait_confirm(amqp_connection_state_t conn, uint64_t tag)
{
	for (;;) {
		struct timeval tv = {10, 0};
		amqp_frame_t f;
		int rc = amqp_simple_wait_frame_noblock(conn, &f, &tv);

		if (rc != AMQP_STATUS_OK) {
			fprintf(stderr, "raw-publish: waiting for a confirm: %s\n",
				amqp_error_string2(rc));
			return false;
		}
		if (f.frame_type != AMQP_FRAME_METHOD)
			continue;
		if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
			const amqp_basic_ack_t *a = f.payload.method.decoded;

			if (a->delivery_tag == tag || (a->multiple && a->delivery_tag >= tag))
				return true;
			continue;
		}
		fprintf(stderr, "raw-publish: unexpected method 0x%08x instead of a confirm\n",
			(unsigned)f.payload.method.id);
		return false;
	}
}

static void set_header(amqp_table_entry_t *e, const char *key, const char *value)
{
	e->key = amqp_cstring_bytes(key);
	e->value.kind = AMQP_FIELD_KIND_UTF8;
	e->value.value.bytes = amqp_cstring_bytes(value);
}

/* The properties photovote.fcgi sets on an event (lib/amqp_publisher.c). */
static void photovote_properties(amqp_basic_properties_t *props, amqp_table_entry_t *headers,
				 const char *id)
{
	props->_flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
			AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_APP_ID_FLAG |
			AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG |
			AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_HEADERS_FLAG;
	props->timestamp = (uint64_t)time(NULL);
	props->app_id = amqp_cstring_bytes("photovote");
	props->message_id = amqp_cstring_bytes(id);
	props->type = amqp_cstring_bytes("ElectionCreated");
	props->correlation_id = amqp_cstring_bytes(id);
	set_header(&headers[0], "correlation_id", id);
	set_header(&headers[1], "user", "alice@example.org");
	set_header(&headers[2], "source", "127.0.0.1");
	props->headers.num_entries = 3;
	props->headers.entries = headers;
}

static void *publish_loop(void *arg)
{
	struct publisher *p = arg;
	amqp_connection_state_t conn = connect_broker();
	amqp_basic_properties_t props;
	uint64_t tag = 0;

	if (conn) {
		amqp_confirm_select(conn, CHANNEL);
		if (!reply_ok(amqp_get_rpc_reply(conn), "confirm.select")) {
			amqp_destroy_connection(conn);
			conn = NULL;
		}
	}
	/* Everyone, ready or failed, meets here; the main thread then sets
	 * the clock and the deadline and meets us a second time. */
	pthread_barrier_wait(&ready);
	pthread_barrier_wait(&ready);
	if (!conn) {
		p->failed = true;
		return NULL;
	}
	memset(&props, 0, sizeof props);
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
	props.content_type = amqp_cstring_bytes("application/json");
	props.delivery_mode = 2; /* persistent */
	while (now() < deadline) {
		double t0 = now();
		char id[40];
		amqp_table_entry_t headers[3];
		amqp_bytes_t exchange = amqp_empty_bytes, key = amqp_cstring_bytes(queue);

		if (photovote_shape) {
			/* A fresh UUID-shaped id per message, as each event has. */
			snprintf(id, sizeof id, "00000000-0000-4000-8000-%04x%08llx",
				 p->index & 0xffff, (unsigned long long)tag);
			photovote_properties(&props, headers, id);
			exchange = amqp_cstring_bytes(queue);
			key = amqp_cstring_bytes("01JBENCHRAWPUBLISH00000000");
		}
		if (amqp_basic_publish(conn, CHANNEL, exchange, key, photovote_shape, 0, &props,
				       body) != AMQP_STATUS_OK) {
			fprintf(stderr, "raw-publish: basic.publish failed\n");
			p->failed = true;
			break;
		}
		if (!wait_confirm(conn, ++tag)) {
			p->failed = true;
			break;
		}
		if (p->n == p->cap) {
			p->cap = p->cap ? p->cap * 2 : 4096;
			p->lat = realloc(p->lat, p->cap * sizeof *p->lat);
			if (!p->lat) {
				fprintf(stderr, "raw-publish: out of memory\n");
				abort();
			}
		}
		p->last = now();
		p->lat[p->n++] = p->last - t0;
	}
	close_broker(conn);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The q-quantile of sorted v, in milliseconds. */
static double pct(const double *v, size_t n, double q)
{
	if (!n)
		return 0;
	return v[(size_t)(q * (double)(n - 1) + 0.5)] * 1000;
}

int main(int argc, char **argv)
{
	struct publisher *pubs;
	amqp_connection_state_t admin;
	double seconds, elapsed, end = 0;
	int npub, bytes;
	size_t total = 0, k = 0;
	double *all;
	bool failed = false;
	char *text;

	if (argc != 6 && argc != 7) {
		fprintf(stderr, "usage: raw-publish HOST PORT SECONDS PUBLISHERS BYTES [SHAPE]\n");
		return 2;
	}
	if (argc == 7 && strcmp(argv[6], "photovote") == 0) {
		photovote_shape = true;
	} else if (argc == 7 && strcmp(argv[6], "bare") != 0) {
		fprintf(stderr, "raw-publish: SHAPE is bare or photovote\n");
		return 2;
	}
	host = argv[1];
	port = atoi(argv[2]);
	seconds = atof(argv[3]);
	npub = atoi(argv[4]);
	bytes = atoi(argv[5]);
	if (port < 1 || port > 65535 || seconds <= 0 || seconds > 3600 || npub < 1 ||
	    npub > MAX_PUBLISHERS || bytes < 1 || bytes > 1 << 20) {
		fprintf(stderr, "raw-publish: bad arguments\n");
		return 2;
	}
	text = malloc((size_t)bytes);
	pubs = calloc((size_t)npub, sizeof *pubs);
	if (!text || !pubs)
		return 1;
	memset(text, 'x', (size_t)bytes);
	body.bytes = text;
	body.len = (size_t)bytes;
	snprintf(queue, sizeof queue, "photovote.bench.raw.%ld", (long)getpid());

	admin = connect_broker();
	if (!admin)
		return 1;
	amqp_queue_declare(admin, CHANNEL, amqp_cstring_bytes(queue), 0, 1, 0, 0, amqp_empty_table);
	if (!reply_ok(amqp_get_rpc_reply(admin), "queue.declare"))
		return 1;
	if (photovote_shape) {
		amqp_exchange_declare(admin, CHANNEL, amqp_cstring_bytes(queue),
				      amqp_cstring_bytes("topic"), 0, 1, 0, 0, amqp_empty_table);
		if (!reply_ok(amqp_get_rpc_reply(admin), "exchange.declare"))
			return 1;
		amqp_queue_bind(admin, CHANNEL, amqp_cstring_bytes(queue),
				amqp_cstring_bytes(queue), amqp_cstring_bytes("#"),
				amqp_empty_table);
		if (!reply_ok(amqp_get_rpc_reply(admin), "queue.bind"))
			return 1;
	}

	if (pthread_barrier_init(&ready, NULL, (unsigned)npub + 1) != 0)
		return 1;
	for (int i = 0; i < npub; i++) {
		pubs[i].index = (unsigned)i;
		if (pthread_create(&pubs[i].thread, NULL, publish_loop, &pubs[i]) != 0) {
			fprintf(stderr, "raw-publish: cannot start publisher %d\n", i);
			return 1;
		}
	}
	pthread_barrier_wait(&ready);
	start = now();
	deadline = start + seconds;
	pthread_barrier_wait(&ready);
	for (int i = 0; i < npub; i++) {
		pthread_join(pubs[i].thread, NULL);
		total += pubs[i].n;
		failed |= pubs[i].failed;
		if (pubs[i].last > end)
			end = pubs[i].last;
	}
	/* From the start to the last confirm: the connections' closing is
	 * not the broker's publishing time. */
	elapsed = end > start ? end - start : seconds;

	amqp_queue_delete(admin, CHANNEL, amqp_cstring_bytes(queue), 0, 0);
	if (!reply_ok(amqp_get_rpc_reply(admin), "queue.delete"))
		failed = true;
	if (photovote_shape) {
		amqp_exchange_delete(admin, CHANNEL, amqp_cstring_bytes(queue), 0);
		if (!reply_ok(amqp_get_rpc_reply(admin), "exchange.delete"))
			failed = true;
	}
	close_broker(admin);

	all = malloc((total ? total : 1) * sizeof *all);
	if (!all)
		return 1;
	for (int i = 0; i < npub; i++) {
		memcpy(all + k, pubs[i].lat, pubs[i].n * sizeof *all);
		k += pubs[i].n;
		free(pubs[i].lat);
	}
	qsort(all, total, sizeof *all, cmp_double);
	printf("confirms %zu seconds %.2f rate %.0f p50 %.2f p90 %.2f p99 %.2f max %.2f\n", total,
	       elapsed, (double)total / elapsed, pct(all, total, 0.50), pct(all, total, 0.90),
	       pct(all, total, 0.99), pct(all, total, 1.0));
	free(all);
	free(pubs);
	free(text);
	return failed ? 1 : 0;
}
