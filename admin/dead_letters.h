/* Acting on dead letters: moving them back to the appender (requeue) or
 * deleting them (purge), all of them or those of one message id.
 *
 * Both walk the dead letters that are in the queue when the call starts,
 * and no further, with basic.get: a dead letter that comes back while the
 * walk runs (a poison message the appender sets aside again) lands behind
 * them and is left alone, so a walk always ends.  Dead letters that do not
 * match are held unacked and given back at the end with one
 * basic.nack(multiple, requeue), which puts them back in their places.
 *
 * requeue publishes each match again to the commands exchange on a second
 * channel in confirm mode, one at a time, and acks the dead letter only
 * after the broker confirmed the copy; anything refused, unroutable or not
 * confirmed in time stops the walk, and closing the connection then gives
 * every unacked dead letter back to its queue.  A crash of the tool loses
 * nothing: the dead letter in hand is still unacked until its copy is
 * confirmed, so the broker gives it back.  Only that one message can end
 * in both queues, when the tool dies after publishing its copy and before
 * the ack (the copy may be stored although its confirm never arrived); the
 * appender, idempotent by event id (the message id), takes the second copy
 * as a duplicate.  See dead_letters.c for what the copy
 * carries and how its routing key is found. */
#ifndef PV_ADMIN_DEAD_LETTERS_H
#define PV_ADMIN_DEAD_LETTERS_H

#include <stdbool.h>

#include "session.h"

enum pv_dl_action {
	PV_DL_COUNT,   /* count the matches, change nothing */
	PV_DL_REQUEUE, /* republish (confirmed), then ack */
	PV_DL_PURGE,   /* ack: deleted for good */
};

struct pv_dl_op {
	enum pv_dl_action action;
	const char *id;    /* only dead letters with this message id; NULL: all */
	unsigned long max; /* at most this many matches; 0: no limit */

	/* Results, also set when the call fails part-way. */
	unsigned long matched; /* matches seen */
	unsigned long done;    /* requeued or deleted (confirmed and acked) */
	unsigned long no_key;  /* requeue: matches without a routing key, left queued */
	unsigned long left;    /* in the dead-letter queue at the end (when PV_OK) */
};

enum pv_err pv_dead_letters_act(struct pv_session *s, struct pv_dl_op *op, struct pv_error *err);

#endif
