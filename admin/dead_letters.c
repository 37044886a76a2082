/* Requeueing and purging dead letters (rules in dead_letters.h).
 *
 * The copy a requeue publishes
 *   The body byte for byte, persistent, with the dead letter's content
 *   type, content encoding, message id, type, timestamp, app id,
 *   correlation id, priority and reply-to.  Not kept: expiration (a
 *   message that expired once would expire again), user id (RabbitMQ
 *   refuses one that is not the connection's user) and cluster id.  Its
 *   headers are the dead letter's less those that describe the
 *   dead-lettering: x-photovote-* (the appender's reason, queue and
 *   routing key), RabbitMQ's x-death, x-first-death-* and x-last-death-*.
 *
 *   pv_amqp_consumer_dead_letter (the appender's way, recognised by its
 *   x-photovote-reason header) keeps neither the API's headers nor its app
 *   id.  When the body is the API's envelope, what the API put there is
 *   restored from it as photovote.fcgi does (fcgi/api.c publish_event,
 *   lib/amqp_publisher.c publish_job): app id "photovote", the headers
 *   correlation_id, user and source (in that order) and the correlation id
 *   property from the envelope's metadata, each only when it is missing.
 *   A dead letter made by RabbitMQ itself (x-dead-letter-exchange) kept
 *   them all, so nothing is added to it.
 *
 * The routing key
 *   The copy goes to the commands exchange ([amqp] exchange).  With
 *   [amqp] partitions > 1 it is a consistent-hash exchange, which picks the
 *   partition queue from a hash of the routing key, so the key must be the
 *   one the API published with, or the command could overtake or fall
 *   behind the others of its election.  It is, in this order: the header
 *   x-photovote-routing-key the appender records; the routing key the dead
 *   letter carries (the appender's copy and RabbitMQ's dead-lettering both
 *   keep the original one); else the election id of the body's data
 *   (data.election_id), which is what the API routes by
 *   (pv_event_election_id).  A dead letter with none of these is left in
 *   the dead-letter queue and counted (no_key).
 *
 * Channels
 *   basic.get, ack and nack use the session's channel 1; the copies go out
 *   on channel 2 in confirm mode, mandatory, one in flight at a time, so a
 *   basic.return or a nack can only be about that one copy. */
#define _POSIX_C_SOURCE 200809L

#include "dead_letters.h"

#include "dead_letter_copy.h"

#include "xalloc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GET_CHANNEL 1
#define PUBLISH_CHANNEL 2
#define CONFIRM_TIMEOUT_S 30

/* ---- publishing with a confirm ---- */

static enum pv_err publish_confirmed(amqp_connection_state_t conn, const char *exchange,
				     const struct pv_dl_copy *c, amqp_bytes_t body,
				     struct pv_error *err)
{
	/* mandatory: a copy no queue takes comes back instead of vanishing. */
	return pv_amqp_publish_confirmed(conn, PUBLISH_CHANNEL, exchange, c->routing_key, &c->props,
					 body, 1000 * CONFIRM_TIMEOUT_S, err);
}

static enum pv_err open_publish_channel(amqp_connection_state_t conn, struct pv_error *err)
{
	amqp_channel_open(conn, PUBLISH_CHANNEL);
	if (pv_amqp_reply_check(amqp_get_rpc_reply(conn), "channel.open", err) != PV_OK)
		return err->code;
	amqp_confirm_select(conn, PUBLISH_CHANNEL);
	return pv_amqp_reply_check(amqp_get_rpc_reply(conn), "confirm.select", err);
}

/* ---- the walk ---- */

static bool same_id(const amqp_basic_properties_t *p, const char *id)
{
	return (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) && p->message_id.len == strlen(id) &&
	       memcmp(p->message_id.bytes, id, p->message_id.len) == 0;
}

/* Takes the next dead letter and deals with it; *empty when there was
 * none.  *held becomes its delivery tag when it stays unacked. */
static enum pv_err step(amqp_connection_state_t conn, const struct pv_amqp_params *p,
			struct pv_dl_op *op, uint64_t *held, bool *empty, struct pv_error *err)
{
	amqp_rpc_reply_t r =
		amqp_basic_get(conn, GET_CHANNEL, amqp_cstring_bytes(p->dead_letter_queue), 0);
	const amqp_basic_get_ok_t *ok;
	amqp_message_t msg;
	struct pv_dl_copy c;
	amqp_bytes_t got;
	uint64_t tag;
	enum pv_err rc;

	rc = pv_amqp_reply_check(r, "basic.get", err);
	if (rc != PV_OK)
		return rc;
	if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) {
		*empty = true;
		return PV_OK;
	}
	/* The decoded method lives in the pool amqp_read_message reuses. */
	ok = r.reply.decoded;
	tag = ok->delivery_tag;
	got = amqp_bytes_malloc_dup(ok->routing_key);
	if (ok->routing_key.len && !got.bytes)
		pv_oom("amqp_bytes_malloc_dup", ok->routing_key.len);
	rc = pv_amqp_reply_check(amqp_read_message(conn, GET_CHANNEL, &msg, 0),
				 "read a dead letter", err);
	if (rc != PV_OK) {
		amqp_bytes_free(got);
		return rc;
	}
	if (op->id && !same_id(&msg.properties, op->id)) {
		*held = tag;
		goto out;
	}
	op->matched++;
	if (op->action == PV_DL_COUNT) {
		*held = tag;
		goto out;
	}
	if (op->action == PV_DL_REQUEUE) {
		pv_dl_copy_build(&msg, got, &c);
		if (!c.routing_key) {
			op->no_key++;
			*held = tag;
		} else {
			rc = publish_confirmed(conn, p->exchange, &c, msg.body, err);
		}
		pv_dl_copy_clear(&c);
		if (rc != PV_OK || *held == tag)
			goto out;
	}
	/* Only now, with the copy confirmed: the dead letter goes. */
	rc = pv_amqp_status_check(amqp_basic_ack(conn, GET_CHANNEL, tag, 0), "basic.ack", err);
	if (rc == PV_OK)
		op->done++;
out:
	amqp_destroy_message(&msg);
	amqp_bytes_free(got);
	amqp_maybe_release_buffers(conn);
	return rc;
}

enum pv_err pv_dead_letters_act(struct pv_session *s, struct pv_dl_op *op, struct pv_error *err)
{
	const struct pv_amqp_params *p;
	amqp_connection_state_t conn;
	unsigned long start;
	uint64_t held = 0;
	bool publishing = false, empty = false;
	enum pv_err rc;

	op->matched = op->done = op->no_key = op->left = 0;
	rc = pv_session_dead_letter_depth(s, &start, err);
	if (rc == PV_OK)
		rc = pv_session_broker(s, &conn, &p, err);
	if (rc != PV_OK)
		return rc;
	if (op->action == PV_DL_REQUEUE && start) {
		rc = open_publish_channel(conn, err);
		publishing = rc == PV_OK;
	}
	/* Only the dead letters there at the start: see dead_letters.h. */
	for (unsigned long i = 0; rc == PV_OK && !empty && i < start; i++) {
		if (op->max && op->matched >= op->max)
			break;
		rc = step(conn, p, op, &held, &empty, err);
	}
	/* The ones we passed over go back to their places. */
	if (rc == PV_OK && held)
		rc = pv_amqp_status_check(amqp_basic_nack(conn, GET_CHANNEL, held, 1, 1),
					  "basic.nack (requeue)", err);
	if (rc == PV_OK && publishing) {
		amqp_channel_close(conn, PUBLISH_CHANNEL, AMQP_REPLY_SUCCESS);
		rc = pv_amqp_reply_check(amqp_get_rpc_reply(conn), "channel.close", err);
	}
	/* Closing the connection gives every unacked dead letter back. */
	if (rc != PV_OK)
		return pv_session_broker_failed(s, err);
	/* The first passive queue.declare is a round trip on the channel of
	 * the acks and the nack: had the broker refused one, it would have
	 * closed the channel and this would fail.  Wait for the nacked ones
	 * (dead_letters_left counts them). */
	return pv_session_dead_letters_settle(s, start - op->done, &op->left, err);
}
