/* The `esdb` event-store backend: EventStoreDB / KurrentDB over the AtomPub
 * HTTP API, spoken with libcurl.  pv_es_open() calls pv_es_esdb_open() when
 * opts->backend is "esdb". */
#ifndef PV_EVENTSTORE_ESDB_H
#define PV_EVENTSTORE_ESDB_H

#include "eventstore.h"

/* Opens a store on opts->url (http:// or https://, no credentials in the URL;
 * they go in opts->username/password).  No request is made here: the first
 * operation connects.  The store is not thread-safe; open one per thread. */
enum pv_err pv_es_esdb_open(const struct pv_es_options *opts, struct pv_es **out,
			    struct pv_error *err);

/* A stand-in for the HTTP exchange, for the fuzz target
 * (tests/fuzz/fuzz-esdb.c): every request of `es` (an esdb store) is
 * answered by fn instead of a server.  fn gets the method and the path and
 * fills the answer through pv_esdb_answer_* as libcurl's callbacks would
 * (the status line and each header line to _header, the body to _body);
 * PV_OK means an answer came, an error stands for a failed transport.
 * Everything after that is the production code; retries do not sleep. */
struct pv_esdb_answer;
typedef enum pv_err pv_esdb_transport_fn(void *ctx, const char *method, const char *path,
					 struct pv_esdb_answer *answer, struct pv_error *err);
void pv_es_esdb_set_transport(struct pv_es *es, pv_esdb_transport_fn *fn, void *ctx);
void pv_esdb_answer_status(struct pv_esdb_answer *a, long status);
void pv_esdb_answer_header(struct pv_esdb_answer *a, const char *line, size_t len);
/* False when the answer went over the size we hold (libcurl would stop). */
bool pv_esdb_answer_body(struct pv_esdb_answer *a, const char *data, size_t len);

#endif
