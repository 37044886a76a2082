/* The HTTP API of photovote.fcgi (../shared/reference/http-api.md):
 * the routing table, authentication, the write handlers that turn a
 * request into one event and publish it, /healthz and /metrics.
 *
 * One struct pv_api is shared by all request threads; each thread has a
 * struct pv_api_thread for what cannot be shared (its PostgreSQL
 * connection, opened when first needed and reset when it breaks). */
#ifndef PV_FCGI_API_H
#define PV_FCGI_API_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>

#include "amqp_publisher.h"
#include "http.h"

struct pv_command_ids;
struct pv_config;
struct pv_cosmos;
struct pv_idem;
struct pv_metrics;
struct pv_reads;
struct pv_token_cache;

enum pv_auth_mode { PV_AUTH_TOKEN, PV_AUTH_REMOTE_USER };

/* Where a write's event goes: PV_OK once the broker confirmed it. */
typedef enum pv_err pv_api_publish_fn(void *ctx, const struct pv_amqp_message *msg, int timeout_ms,
				      struct pv_error *err);

struct pv_api {
	enum pv_auth_mode auth_mode;
	size_t body_limit;
	int publish_timeout_ms;
	int broker_wait_ms; /* for a connection to the broker */
	char *pg_conninfo;
	struct pv_amqp_publisher *publisher; /* NULL when publish is set */
	/* Set instead of a broker by pv_api_new_with_publish (the fuzz
	 * target, which counts what would have been published). */
	pv_api_publish_fn *publish;
	void *publish_ctx;
	struct pv_idem *idem;
	struct pv_token_cache *tokens; /* NULL: every token is looked up */
	struct pv_metrics *metrics;
	struct pv_reads *reads;     /* reads.h */
	struct pv_command_ids *ids; /* command_ids.h: event ids minted and recorded */
	struct pv_health *health;   /* health.h: the probes behind /healthz */
};

struct pv_api_thread {
	struct pv_api *api;
	PGconn *pg;
	struct pv_cosmos *cosmos; /* reads.c: the read model, opened when first needed */
	char *container;          /* reads.c: the container cosmos reads (malloc'd) */
};

/* Reads the [http] and [postgres] settings and starts the publisher. */
struct pv_api *pv_api_new(const struct pv_config *cfg);
/* The same without a broker: every event goes to publish(ctx, ...), and
 * /healthz reports the broker as connected. */
struct pv_api *pv_api_new_with_publish(const struct pv_config *cfg, pv_api_publish_fn *publish,
				       void *ctx);
void pv_api_free(struct pv_api *api);

/* Answers one request into resp (status, headers, body). */
void pv_api_handle(struct pv_api_thread *t, const struct pv_http_request *req,
		   struct pv_http_response *resp);
void pv_api_thread_clear(struct pv_api_thread *t);
/* PostgreSQL: this thread's connection (t->pg), opened or reset as needed. */
enum pv_err pv_api_thread_pg(struct pv_api_thread *t, struct pv_error *err);
/* Prints the routing table, one "METHOD PATTERN EVENT GENERATED DATE" line
 * per route ("-" for none), for the tests that hold the OpenAPI document
 * against the program (photovote.fcgi --list-routes). */
void pv_api_print_routes(FILE *out);

#endif
