/* Consuming the appender's queues from RabbitMQ with manual acks.
 *
 * One consumer owns two connections (librabbitmq connections are not
 * thread-safe; use a consumer from one thread):
 *
 *   - the consuming connection: declares the topology (amqp_conn.h), sets
 *     basic.qos to the prefetch window and consumes the queue (or each of
 *     the N partition queues) with manual acks;
 *   - a publishing connection with publisher confirms, opened on the first
 *     dead letter, for poison messages.
 *
 * Dead letters: basic.reject(requeue=false) on a queue with
 * x-dead-letter-exchange would route the message to the dead-letter
 * exchange, but it cannot say why.  So a poison message is published to the
 * dead-letter exchange ourselves, persistent, with the header
 * `x-photovote-reason` (and `x-photovote-queue`, `x-photovote-routing-key`),
 * and only after the broker confirmed that copy is the original acked.  A
 * crash in between leaves the original unacked: it comes back and is
 * dead-lettered a second time (at least once, never lost, never looped).
 *
 * Errors: PV_ERR_TIMEOUT from next() just means nothing arrived in time;
 * any other error means the connection is unusable: close the consumer,
 * back off and open a new one (the broker redelivers what was unacked, with
 * the redelivered flag set). */
#ifndef PV_AMQP_CONSUMER_H
#define PV_AMQP_CONSUMER_H

#include <amqp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amqp_conn.h"
#include "error.h"

struct pv_amqp_consumer;

/* One delivery; body and strings are valid until pv_amqp_delivery_clear().
 * It holds its own copies of what it needs, the envelope freed at once:
 * librabbitmq gives each envelope a pool of at least a 4 KB page, and a
 * batch holds a thousand deliveries (4 MB of the appender's peak for
 * bodies of a few hundred bytes). */
struct pv_amqp_delivery {
	uint64_t tag;
	bool redelivered;
	char *body; /* not NUL-terminated */
	size_t body_len;
	char *routing_key;
	char *queue;      /* the queue it came from */
	char *message_id; /* property, NULL when absent */
	/* private: the properties a dead letter keeps, byte for byte */
	amqp_flags_t flags;
	amqp_bytes_t content_type, type, correlation_id, message_id_bytes;
	uint64_t timestamp;
	bool held; /* private: a delivery is in it */
};

/* Connects, declares the topology, sets the prefetch window (messages per
 * queue consumer) and starts consuming.  params must outlive the
 * consumer. */
enum pv_err pv_amqp_consumer_open(const struct pv_amqp_params *params, int prefetch,
				  struct pv_amqp_consumer **out, struct pv_error *err);
/* Closes both connections; unacked deliveries go back to their queues. */
void pv_amqp_consumer_close(struct pv_amqp_consumer *c);

/* Waits up to timeout_ms for the next delivery.  PV_ERR_TIMEOUT: none. */
enum pv_err pv_amqp_consumer_next(struct pv_amqp_consumer *c, int timeout_ms,
				  struct pv_amqp_delivery *d, struct pv_error *err);
void pv_amqp_delivery_clear(struct pv_amqp_delivery *d);

/* Acks one delivery. */
enum pv_err pv_amqp_consumer_ack(struct pv_amqp_consumer *c, uint64_t tag, struct pv_error *err);
/* Acks every delivery up to and including tag. */
enum pv_err pv_amqp_consumer_ack_upto(struct pv_amqp_consumer *c, uint64_t tag,
				      struct pv_error *err);

/* Publishes a copy of d to the dead-letter exchange with the reason in the
 * header x-photovote-reason, waits for the broker's confirm, then acks d. */
enum pv_err pv_amqp_consumer_dead_letter(struct pv_amqp_consumer *c,
					 const struct pv_amqp_delivery *d, const char *reason,
					 struct pv_error *err);

#endif
