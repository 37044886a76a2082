/* Confirmed, pipelined publishing to RabbitMQ for many request threads.
 *
 * One publisher thread owns the AMQP connection (librabbitmq connections
 * are not thread-safe) with publisher confirms on.  Request threads call
 * pv_amqp_publisher_publish(), which queues the message, wakes the
 * publisher thread and waits on a condition until the broker acked or
 * nacked that message's delivery tag, or the timeout passed.  The
 * publisher thread publishes everything queued in one burst and then reads
 * confirms, so concurrent requests share round trips instead of waiting one
 * after another.  See amqp_publisher.c for the ownership rules.
 *
 * When the connection breaks, messages waiting for it fail with
 * PV_ERR_UNAVAILABLE and the thread reconnects at once, then with a backoff
 * from 50 ms doubling to a cap of 250 ms (and declares the topology again),
 * so a broker that is back is tried within a quarter of a second.  A request
 * that arrives while there is no connection (at start, or during an
 * outage) waits for one up to its connect_wait_ms instead of failing at
 * once.  A message whose confirm never came is reported as failed with
 * *maybe_published set: it was handed to the broker, which may have stored
 * it; that is why the event id (the message id) makes every later step
 * idempotent, and why callers must say so to their own clients. */
#ifndef PV_AMQP_PUBLISHER_H
#define PV_AMQP_PUBLISHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "amqp_conn.h"
#include "error.h"

struct pv_amqp_publisher;

/* One message.  Everything is copied by publish(); NULL strings are left
 * out of the message. */
struct pv_amqp_message {
	const char *routing_key; /* the election id */
	const void *body;
	size_t body_len;
	const char *content_type;   /* "application/json" */
	const char *message_id;     /* the event id */
	const char *type;           /* the event type */
	uint64_t timestamp;         /* seconds since the epoch */
	const char *user;           /* header "user" */
	const char *correlation_id; /* property and header "correlation_id" */
	const char *source;         /* header "source": the client's address */
};

/* Counters since start, for /metrics. */
struct pv_amqp_publisher_stats {
	uint64_t published; /* basic.publish sent */
	uint64_t batches;   /* bursts they were sent in (each flushed once) */
	uint64_t acked;     /* confirmed by the broker */
	uint64_t nacked;    /* refused by the broker (nack or returned) */
	uint64_t failed;    /* not published or lost with a connection */
	uint64_t timeouts;  /* no confirm within the caller's timeout */
	uint64_t connects;  /* successful (re)connections */
	uint64_t blocked;   /* connection.blocked notifications */
	bool connected;
};

/* What /healthz tells of the broker (see amqp_publisher.c). */
struct pv_amqp_publisher_health {
	bool connected;
	bool blocked;             /* RabbitMQ blocks publishing (a resource alarm) */
	char blocked_reason[128]; /* the broker's words, escaped */
	double silent_seconds;    /* since the broker last sent a frame; -1 unconnected */
	time_t heard_at;          /* wall-clock time of that frame; 0: never */
	char error[512];          /* unconnected: why */
};

/* Starts the publisher thread; it connects in the background (see
 * pv_amqp_publisher_wait_connected).  params is copied. */
struct pv_amqp_publisher *pv_amqp_publisher_start(const struct pv_amqp_params *params);
/* Fails what is still waiting, closes the connection, joins the thread. */
void pv_amqp_publisher_stop(struct pv_amqp_publisher *pub);

/* Publishes msg: waits at most connect_wait_ms for a connection, then at
 * most timeout_ms for the broker's confirm.  PV_OK only when the broker
 * acked.  PV_ERR_UNAVAILABLE: no connection in time, or it was lost;
 * PV_ERR_BROKER: nacked or unroutable; PV_ERR_TIMEOUT.  On failure
 * *maybe_published (may be NULL) tells whether the message had reached the
 * socket, so the broker may hold it (lost connection, nack or timeout after
 * sending); false means it was certainly not published. */
enum pv_err pv_amqp_publisher_publish(struct pv_amqp_publisher *pub,
				      const struct pv_amqp_message *msg, int connect_wait_ms,
				      int timeout_ms, bool *maybe_published, struct pv_error *err);

bool pv_amqp_publisher_connected(struct pv_amqp_publisher *pub);
/* Waits until connected (true) or timeout_ms passed (false). */
bool pv_amqp_publisher_wait_connected(struct pv_amqp_publisher *pub, int timeout_ms);
void pv_amqp_publisher_stats(struct pv_amqp_publisher *pub, struct pv_amqp_publisher_stats *out);
/* Never waits for the broker: reads what the publisher thread saw. */
void pv_amqp_publisher_health(struct pv_amqp_publisher *pub, struct pv_amqp_publisher_health *out);

#endif
