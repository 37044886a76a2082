/* RabbitMQ connections and the PhotoVote topology, shared by the API's
 * publisher and the appender.
 *
 * Topology (declared by every program that connects, so that whichever
 * starts first creates it and the declarations always agree):
 *
 *   exchange <exchange>             durable, type "topic" (partitions = 1)
 *                                   or "x-consistent-hash" (partitions > 1)
 *   queue <queue>                   durable, bound with "#" (partitions = 1)
 *   queue <queue>.<i>, i < N        durable, bound with weight "1" (N > 1)
 *       arguments: x-dead-letter-exchange = <dead_letter_exchange>,
 *                  x-single-active-consumer = true (keeps one election's
 *                  commands in order when several appenders share a queue)
 *   exchange <dead_letter_exchange> durable, type "fanout"
 *   queue <dead_letter_queue>       durable, bound to it
 *
 * Messages are routed by election id.  A program that declares the same
 * names with other arguments gets PRECONDITION_FAILED from the broker, so
 * the arguments live here and nowhere else. */
#ifndef PV_AMQP_CONN_H
#define PV_AMQP_CONN_H

#include <amqp.h>
#include <stdbool.h>

#include "error.h"


struct pv_amqp_params {
	char *host;
	int port;
	char *vhost;
	char *user;
	char *password;
	int heartbeat;       /* seconds, 0 disables */
	int connect_timeout; /* seconds, for TCP connect, handshake and RPCs */
	char *exchange;
	char *queue;
	char *dead_letter_exchange;
	char *dead_letter_queue;
	int partitions;
	/* Ask for connection.blocked/unblocked (channel 0 methods, which
	 * only a connection that reads every frame itself may ask for). */
	bool blocked_notifications;
};

void pv_amqp_params_clear(struct pv_amqp_params *p);

/* Opens a connection (TCP, login, channel 1) with timeouts.  On failure
 * *out is NULL and err says which step failed and why. */
enum pv_err pv_amqp_connect(const struct pv_amqp_params *p, amqp_connection_state_t *out,
			    struct pv_error *err);
/* Closes channel 1 and the connection politely when possible; frees it. */
void pv_amqp_disconnect(amqp_connection_state_t conn);

/* Declares the topology above on channel 1. */
enum pv_err pv_amqp_declare_topology(amqp_connection_state_t conn, const struct pv_amqp_params *p,
				     struct pv_error *err);

/* Maps an RPC reply to PV_OK or an error naming `what` and the broker's or
 * the library's reason (PV_ERR_UNAVAILABLE for socket failures,
 * PV_ERR_BROKER for channel or connection exceptions). */
enum pv_err pv_amqp_reply_check(amqp_rpc_reply_t r, const char *what, struct pv_error *err);
/* Maps a librabbitmq status code (< 0) the same way. */
enum pv_err pv_amqp_status_check(int status, const char *what, struct pv_error *err);

/* Publishes one message, mandatory, on a channel in confirm mode and waits
 * at most timeout_ms in all for the broker's answer to it: PV_OK when it
 * was confirmed and routed.  PV_ERR_BROKER when it was nacked, returned (no
 * queue took it: "exchange X routed it to no queue (returned: CODE TEXT)")
 * or RabbitMQ closed the channel or connection (its code and text);
 * PV_ERR_TIMEOUT without an answer.  Only one message may be in flight on
 * the channel, so every answer is about this one. */
enum pv_err pv_amqp_publish_confirmed(amqp_connection_state_t conn, amqp_channel_t channel,
				      const char *exchange, const char *routing_key,
				      const amqp_basic_properties_t *props, amqp_bytes_t body,
				      int timeout_ms, struct pv_error *err);

/* A NUL-terminated copy of an AMQP byte string (for names in messages). */
char *pv_amqp_bytes_strdup(amqp_bytes_t b);

/* The value of the header `name` of a message when it is a string (long
 * string or byte array), else NULL.  Points into p. */
const amqp_bytes_t *pv_amqp_header_text(const amqp_basic_properties_t *p, const char *name);

#endif
