/* What photovote-admin talks to, opened when first needed and kept for
 * the run: the event store, PostgreSQL (the projector's checkpoint),
 * RabbitMQ (queue depths, dead letters) and Cosmos DB (rebuilds).
 *
 * Every error that leaves this module names the server it came from
 * ("RabbitMQ at 127.0.0.1:5672: ...", "event store (esdb at URL): ...",
 * "PostgreSQL: ...", "Cosmos DB at URL: ...") before the library's own
 * message, so callers print err.msg as it is (escaped: servers' answers
 * are quoted in it).  A failed connection is dropped and opened again on
 * the next call, so the console recovers when a server comes back.
 *
 * Nothing here changes the broker's topology or the projector's
 * checkpoint: queues are only declared passively, and dead letters are
 * peeked (basic.get without ack, then one basic.nack with requeue for all
 * of them, which puts them back in their places with the redelivered flag
 * set; if the connection drops first the broker requeues them the same
 * way).  Requeueing and purging dead letters (dead_letters.h) are the
 * only changes to the broker's contents, and they are asked for by name. */
#ifndef PV_ADMIN_SESSION_H
#define PV_ADMIN_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amqp_conn.h"
#include "config.h"
#include "cosmos.h"
#include "error.h"
#include "eventstore.h"

#include <jansson.h>
#include <libpq-fe.h>

struct pv_session;

/* Takes over cfg (freed by pv_session_free). */
struct pv_session *pv_session_new(struct pv_config *cfg);
void pv_session_free(struct pv_session *s);
/* A second session on s's configuration, with connections of its own, for
 * another thread (the console reads its status line on one, so that a
 * hung broker does not hold up its screens).  Free it before s. */
struct pv_session *pv_session_twin(struct pv_session *s);

/* The open event store (borrowed), opening it first if need be. */
enum pv_err pv_session_es(struct pv_session *s, struct pv_es **es, struct pv_error *err);
/* After a failed call on the store: adds the store's name to err and
 * closes it, so that the next pv_session_es() opens it again. */
enum pv_err pv_session_es_failed(struct pv_session *s, struct pv_error *err);

/* The PostgreSQL connection (borrowed: API tokens, the checkpoint), and
 * the same "failed" rule as the event store's. */
enum pv_err pv_session_pg(struct pv_session *s, PGconn **conn, struct pv_error *err);
enum pv_err pv_session_pg_failed(struct pv_session *s, struct pv_error *err);

/* The figures of `status`; each part has its own outcome, so the console
 * can show what it got while one server is down. */
struct pv_status {
	/* RabbitMQ: the appender's queue(s), summed over partitions, and the
	 * dead-letter queue.  ready = messages waiting (not those a consumer
	 * holds unacked). */
	enum pv_err broker_rc;
	struct pv_error broker_err;
	unsigned long queue_ready, queue_consumers, dead_letters;
	/* The event store's category feed and the projector's checkpoint. */
	enum pv_err store_rc, checkpoint_rc;
	struct pv_error store_err, checkpoint_err;
	int64_t head;       /* last feed position, -1 when the feed is empty */
	int64_t checkpoint; /* -1 when the projector has not written one */
	unsigned long lag;  /* events after the checkpoint */
	bool lag_capped;    /* counting stopped at PV_STATUS_LAG_MAX */
};
#define PV_STATUS_LAG_MAX 1000000ul

/* The checkpoint's name, as the projector writes it (borrowed). */
const char *pv_session_feed(const struct pv_session *s);
/* The elections the projector parked on this feed (projection_parked),
 * oldest first: [{"election_id", "position", "event_number", "status",
 * "reason", "parked_at"}].  Untrusted text: escape it for a screen. */
enum pv_err pv_session_parked(struct pv_session *s, json_t **out, struct pv_error *err);
/* Fills *st; returns the first error (each part's is also in *st). */
enum pv_err pv_session_status(struct pv_session *s, struct pv_status *st, struct pv_error *err);

struct pv_dead_letter {
	char *message_id; /* NULL when absent */
	char *type;       /* the AMQP type property, NULL when absent */
	char *reason;     /* header x-photovote-reason, NULL when absent */
	char *body;       /* the first body_kept bytes (not NUL-safe: use body_kept) */
	size_t body_kept, body_len;
	bool redelivered;
	char *headers;      /* "name: value" lines, each name and value escaped */
	uint64_t timestamp; /* the AMQP timestamp property (s since 1970), 0 when absent */
};
struct pv_dead_letters {
	struct pv_dead_letter *items;
	size_t count;
	unsigned long total; /* messages in the queue */
};
void pv_dead_letters_clear(struct pv_dead_letters *d);
/* Peeks at up to max dead letters from the head of the queue, keeping at
 * most keep bytes of each body, and gives them all back to the queue. */
enum pv_err pv_session_dead_letters(struct pv_session *s, size_t max, size_t keep,
				    struct pv_dead_letters *out, struct pv_error *err);

/* The RabbitMQ connection (borrowed; channel 1 is the session's) and its
 * parameters, connecting first if need be (dead_letters.c).  After a failed
 * call on it, pv_session_broker_failed() names the broker in err and
 * closes the connection: the broker then requeues every delivery the
 * session held unacked, and the next call connects again. */
enum pv_err pv_session_broker(struct pv_session *s, amqp_connection_state_t *conn,
			      const struct pv_amqp_params **params, struct pv_error *err);
enum pv_err pv_session_broker_failed(struct pv_session *s, struct pv_error *err);
/* The ready messages of the dead-letter queue (passive queue.declare). */
enum pv_err pv_session_dead_letter_depth(struct pv_session *s, unsigned long *n,
					 struct pv_error *err);
/* The same once it is at least `least`, or after 5 s.  RabbitMQ answers a
 * basic.nack (requeue) before the messages are back in the queue, and
 * until then its depth is short by them: a command that gave messages
 * back waits for them, so that the next one (a requeue or purge right
 * after a peek, which counts the queue first) finds them all. */
enum pv_err pv_session_dead_letters_settle(struct pv_session *s, unsigned long least,
					   unsigned long *n, struct pv_error *err);

/* For the rebuild module (rebuild.c): the configuration, the Cosmos DB
 * options as configured (borrowed), the event store's label ("event store
 * (postgres)") and the feed name of a container ("Election@<backend>:
 * <database>/<container>", as photovote-projector names its checkpoint;
 * malloc'd). */
const struct pv_config *pv_session_config(const struct pv_session *s);
const struct pv_cosmos_options *pv_session_cosmos_options(const struct pv_session *s);
const char *pv_session_es_label(const struct pv_session *s);
char *pv_session_feed_of(const struct pv_session *s, const char *container);
/* The container the read model is served from: the 'active' row of
 * read_model_containers (sql/011) for the configured database, else the
 * configured [cosmos] container (also when the table is not there yet).
 * malloc'd. */
enum pv_err pv_session_active_container(struct pv_session *s, char **out, struct pv_error *err);
/* The read model's containers of the configured database (sql/011), newest
 * change first: [{"container", "state", "updated"}]; before migration 011,
 * or before any blue-green rebuild, the configured one alone as active. */
enum pv_err pv_session_containers(struct pv_session *s, json_t **out, struct pv_error *err);
/* Deletes the election's row of projection_parked for feed; *was says
 * whether there was one. */
enum pv_err pv_session_unpark(struct pv_session *s, const char *feed, const char *election_id,
			      bool *was, struct pv_error *err);
/* Puts label in front of err's message unless the message already starts
 * with it (libpq's and librabbitmq's own messages may name the server),
 * so a server is named once. */
enum pv_err pv_session_name_server(struct pv_error *err, const char *label);

/* Rebuilds one election's documents by replaying its stream
 * (pv_projection_rebuild), retrying while a running projector writes the
 * same head.  Safe while the projector runs: see session.c.  Once it
 * succeeds, a parked election is un-parked (its projection_parked row
 * deleted). */
enum pv_err pv_session_rebuild(struct pv_session *s, const char *election_id, struct pv_error *err);

#endif
