/* raw-publish: the broker's own rate, a baseline for bench-fcgi.sh and
 * bench-latency.sh.
 *
 * Closed loop (the default): P publishers, each with its own connection
 * and a channel in confirm mode, publish persistent messages of B bytes to
 * a durable queue (through the default exchange) for S seconds, each
 * waiting for the broker's confirm of its message before publishing the
 * next: the rate a server gets that publishes one message per request and
 * answers only after the confirm, with P requests in flight.
 *
 * Open loop (-r RATE): one connection publishes RATE messages a second on
 * a fixed schedule for S seconds, never waiting for a confirm before the
 * next message (photovote.fcgi's publisher thread pipelines them on its
 * one connection the same way), and reads the confirms as they come.  A
 * message's latency runs from its scheduled time to its confirm, so a
 * stall of the broker counts against every message scheduled during it,
 * as the open-loop HTTP load (open-loop.c) counts answers.  -w WARMUP
 * publishes that many seconds first, unmeasured.  PUBLISHERS must be 1.
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
 * -x EXCHANGE (photovote shape only) publishes through an existing
 * exchange instead of a queue and exchange of the run's own, which are
 * then neither declared nor deleted: bench-latency.sh publishes to the
 * exchange whose queue its consumer drains, so that the queue stays as
 * short as it does for photovote.fcgi's messages.
 *
 * The clock starts once every publisher is connected and ready (a
 * barrier), so connection set-up and teardown are not counted.
 *
 * usage: raw-publish [-r RATE [-w WARMUP]] [-x EXCHANGE] HOST PORT SECONDS PUBLISHERS BYTES [SHAPE]
 * Prints "confirms N seconds S rate R p50 A p90 B p99 C p99.9 D max E
 * client_cpu_ms F" on one line: latencies in milliseconds, and F this
 * program's own CPU per message it sent, set-up and warm-up included.  The queue
 * (photovote.bench.raw.<pid>) and the exchange of the same name are
 * deleted at the end.  Exits 1 when the broker fails or refuses a message. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* ppoll */
#endif
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define CHANNEL 1
#define MAX_PUBLISHERS 1024

static const char *host;
static int port;
static char queue[64];
static bool photovote_shape;
static const char *exchange_name; /* -x: publish there; NULL: our own */
static double rate, warmup;       /* -r, -w: open loop */
static amqp_bytes_t body;
static double start, deadline;
static pthread_barrier_t ready;

struct publisher {
	pthread_t thread;
	unsigned index;
	double *lat; /* seconds per confirmed message */
	double last; /* when the last confirm came */
	size_t n, cap;
	size_t sent; /* messages published, measured or not */
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

/* Publishes message number `seq` of publisher `index` in the chosen shape. */
static int publish_one(amqp_connection_state_t conn, unsigned index, uint64_t seq)
{
	amqp_basic_properties_t props;
	amqp_table_entry_t headers[3];
	amqp_bytes_t exchange = amqp_empty_bytes, key = amqp_cstring_bytes(queue);
	char id[40];

	memset(&props, 0, sizeof props);
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
	props.content_type = amqp_cstring_bytes("application/json");
	props.delivery_mode = 2; /* persistent */
	if (photovote_shape) {
		/* A fresh UUID-shaped id per message, as each event has. */
		snprintf(id, sizeof id, "00000000-0000-4000-8000-%04x%08llx", index & 0xffff,
			 (unsigned long long)seq);
		photovote_properties(&props, headers, id);
		exchange = amqp_cstring_bytes(exchange_name ? exchange_name : queue);
		key = amqp_cstring_bytes("01JBENCHRAWPUBLISH00000000");
	}
	return amqp_basic_publish(conn, CHANNEL, exchange, key, photovote_shape, 0, &props, body);
}

static void record(struct publisher *p, double latency)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 4096;
		p->lat = realloc(p->lat, p->cap * sizeof *p->lat);
		if (!p->lat) {
			fprintf(stderr, "raw-publish: out of memory\n");
			abort();
		}
	}
	p->lat[p->n++] = latency;
}

static amqp_connection_state_t connect_confirming(void)
{
	amqp_connection_state_t conn = connect_broker();

	if (conn) {
		amqp_confirm_select(conn, CHANNEL);
		if (!reply_ok(amqp_get_rpc_reply(conn), "confirm.select")) {
			amqp_destroy_connection(conn);
			conn = NULL;
		}
	}
	return conn;
}

static void *publish_loop(void *arg)
{
	struct publisher *p = arg;
	amqp_connection_state_t conn = connect_confirming();
	uint64_t tag = 0;

	/* Everyone, ready or failed, meets here; the main thread then sets
	 * the clock and the deadline and meets us a second time. */
	pthread_barrier_wait(&ready);
	pthread_barrier_wait(&ready);
	if (!conn) {
		p->failed = true;
		return NULL;
	}
	while (now() < deadline) {
		double t0 = now();

		if (publish_one(conn, p->index, tag) != AMQP_STATUS_OK) {
			fprintf(stderr, "raw-publish: basic.publish failed\n");
			p->failed = true;
			break;
		}
		p->sent++;
		if (!wait_confirm(conn, ++tag)) {
			p->failed = true;
			break;
		}
		p->last = now();
		record(p, p->last - t0);
	}
	close_broker(conn);
	return NULL;
}

/* When message i of the open loop (tag i + 1) is due. */
static double due(size_t i)
{
	return start + (double)i / rate;
}

/* The open loop (-r): message i (tag i + 1) is due at due(i).
 * Everything due is sent before the confirms are read, as a publisher
 * that falls behind its schedule would; confirms are read until the next
 * message is due. */
static bool open_loop(struct publisher *p, amqp_connection_state_t conn)
{
	size_t total = (size_t)((warmup + (deadline - start)) * rate);
	bool *confirmed = calloc(total ? total : 1, sizeof *confirmed);
	size_t sent = 0, done = 0, lowest = 0; /* lowest: first tag - 1 not confirmed */
	double measured_from = start + warmup, give_up = 0;
	bool ok = true;

	if (!confirmed) {
		fprintf(stderr, "raw-publish: out of memory\n");
		abort();
	}
	while (ok && done < total) {
		double t = now(), wait;
		struct timeval zero = {0, 0};
		amqp_frame_t f;
		int rc;

		while (sent < total && due(sent) <= t) {
			if (publish_one(conn, p->index, sent) != AMQP_STATUS_OK) {
				fprintf(stderr, "raw-publish: basic.publish failed\n");
				ok = false;
				break;
			}
			sent++;
		}
		p->sent = sent;
		if (!ok)
			break;
		if (sent == total && give_up == 0)
			give_up = now() + 10;
		if (give_up > 0 && now() > give_up) {
			fprintf(stderr,
				"raw-publish: %zu confirms missing 10 s after the last message\n",
				total - done);
			ok = false;
			break;
		}
		/* librabbitmq's own wait counts whole milliseconds and would spin
		 * through the half millisecond between two messages at 2,000 a
		 * second; ppoll sleeps to the microsecond. */
		if (!amqp_frames_enqueued(conn) && !amqp_data_in_buffer(conn)) {
			struct pollfd pfd = {.fd = amqp_get_sockfd(conn), .events = POLLIN};
			struct timespec ts;

			wait = (sent < total ? due(sent) : give_up) - now();
			if (wait < 0)
				wait = 0;
			ts.tv_sec = (time_t)wait;
			ts.tv_nsec = (long)((wait - (double)ts.tv_sec) * 1e9);
			if (ppoll(&pfd, 1, &ts, NULL) <= 0)
				continue;
		}
		rc = amqp_simple_wait_frame_noblock(conn, &f, &zero);
		if (rc == AMQP_STATUS_TIMEOUT)
			continue;
		if (rc != AMQP_STATUS_OK) {
			fprintf(stderr, "raw-publish: waiting for confirms: %s\n",
				amqp_error_string2(rc));
			ok = false;
			break;
		}
		if (f.frame_type != AMQP_FRAME_METHOD)
			continue;
		if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
			const amqp_basic_ack_t *a = f.payload.method.decoded;
			size_t tag = (size_t)a->delivery_tag;
			size_t from = a->multiple ? lowest + 1 : tag;

			if (tag < 1 || tag > sent) {
				fprintf(stderr, "raw-publish: a confirm of tag %zu, never sent\n",
					tag);
				ok = false;
				break;
			}
			t = now();
			for (size_t k = from; k <= tag; k++) {
				if (confirmed[k - 1])
					continue;
				confirmed[k - 1] = true;
				done++;
				if (due(k - 1) >= measured_from)
					record(p, t - due(k - 1));
			}
			while (lowest < sent && confirmed[lowest])
				lowest++;
			p->last = t;
			continue;
		}
		/* A nack, a return (the exchange routed the message nowhere), or
		 * the channel closed (no such exchange). */
		if (f.payload.method.id == AMQP_BASIC_RETURN_METHOD) {
			const amqp_basic_return_t *r = f.payload.method.decoded;

			fprintf(stderr, "raw-publish: the broker returned a message: %u %.*s\n",
				r->reply_code, (int)r->reply_text.len,
				(const char *)r->reply_text.bytes);
		} else if (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD) {
			const amqp_channel_close_t *c = f.payload.method.decoded;

			fprintf(stderr, "raw-publish: the broker closed the channel: %u %.*s\n",
				c->reply_code, (int)c->reply_text.len,
				(const char *)c->reply_text.bytes);
		} else {
			fprintf(stderr, "raw-publish: method 0x%08x instead of a confirm\n",
				(unsigned)f.payload.method.id);
		}
		ok = false;
	}
	free(confirmed);
	return ok;
}

static void *open_loop_main(void *arg)
{
	struct publisher *p = arg;
	amqp_connection_state_t conn = connect_confirming();

	pthread_barrier_wait(&ready);
	pthread_barrier_wait(&ready);
	if (!conn || !open_loop(p, conn))
		p->failed = true;
	if (conn)
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
	bool failed = false, own_queue;
	double client_ms = 0;
	size_t sent_all = 0;
	struct rusage use;
	char *text;
	int opt;

	while ((opt = getopt(argc, argv, "r:w:x:")) != -1) {
		switch (opt) {
		case 'r': rate = atof(optarg); break;
		case 'w': warmup = atof(optarg); break;
		case 'x': exchange_name = optarg; break;
		default: argc = 0; break;
		}
	}
	argv += optind;
	argc -= optind;
	if (argc != 5 && argc != 6) {
		fprintf(stderr, "usage: raw-publish [-r RATE [-w WARMUP]] [-x EXCHANGE] "
				"HOST PORT SECONDS PUBLISHERS BYTES [SHAPE]\n");
		return 2;
	}
	if (argc == 6 && strcmp(argv[5], "photovote") == 0) {
		photovote_shape = true;
	} else if (argc == 6 && strcmp(argv[5], "bare") != 0) {
		fprintf(stderr, "raw-publish: SHAPE is bare or photovote\n");
		return 2;
	}
	host = argv[0];
	port = atoi(argv[1]);
	seconds = atof(argv[2]);
	npub = atoi(argv[3]);
	bytes = atoi(argv[4]);
	if (port < 1 || port > 65535 || seconds <= 0 || seconds > 3600 || npub < 1 ||
	    npub > MAX_PUBLISHERS || bytes < 1 || bytes > 1 << 20) {
		fprintf(stderr, "raw-publish: bad arguments\n");
		return 2;
	}
	if ((rate != 0 && rate < 1) || rate > 100000 || warmup < 0 || warmup > 600 ||
	    (warmup > 0 && !rate) || (rate > 0 && npub != 1) ||
	    (exchange_name && !photovote_shape)) {
		fprintf(stderr, "raw-publish: -r needs RATE 1..100000 and one publisher, -w a "
				"WARMUP of 0..600 s and -r, -x the photovote shape\n");
		return 2;
	}
	own_queue = !exchange_name;
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
	if (own_queue) {
		amqp_queue_declare(admin, CHANNEL, amqp_cstring_bytes(queue), 0, 1, 0, 0,
				   amqp_empty_table);
		if (!reply_ok(amqp_get_rpc_reply(admin), "queue.declare"))
			return 1;
	}
	if (own_queue && photovote_shape) {
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
		if (pthread_create(&pubs[i].thread, NULL, rate > 0 ? open_loop_main : publish_loop,
				   &pubs[i]) != 0) {
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
		sent_all += pubs[i].sent;
		failed |= pubs[i].failed;
		if (pubs[i].last > end)
			end = pubs[i].last;
	}
	/* From the start to the last confirm: the connections' closing is
	 * not the broker's publishing time.  The open loop's rate is its
	 * schedule's. */
	elapsed = rate > 0 ? seconds : end > start ? end - start : seconds;

	if (own_queue) {
		amqp_queue_delete(admin, CHANNEL, amqp_cstring_bytes(queue), 0, 0);
		if (!reply_ok(amqp_get_rpc_reply(admin), "queue.delete"))
			failed = true;
	}
	if (own_queue && photovote_shape) {
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
	/* Our own CPU per message sent (the warm-up's included), set-up and
	 * all: what a client spends on a confirmed publish. */
	if (getrusage(RUSAGE_SELF, &use) == 0 && sent_all > 0)
		client_ms = ((double)use.ru_utime.tv_sec + (double)use.ru_stime.tv_sec +
			     (double)(use.ru_utime.tv_usec + use.ru_stime.tv_usec) / 1e6) *
			    1000 / (double)sent_all;
	printf("confirms %zu seconds %.2f rate %.0f p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.2f "
	       "client_cpu_ms %.3f\n",
	       total, elapsed, (double)total / elapsed, pct(all, total, 0.50),
	       pct(all, total, 0.90), pct(all, total, 0.99), pct(all, total, 0.999),
	       pct(all, total, 1.0), client_ms);
	free(all);
	free(pubs);
	free(text);
	return failed ? 1 : 0;
}
