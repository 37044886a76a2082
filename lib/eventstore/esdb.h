/* The `esdb` event-store backend: EventStoreDB / KurrentDB over the AtomPub
 * HTTP API, spoken with libcurl.  pv_es_open() calls pv_es_esdb_open() when
 * opts->backend is "esdb". */
#ifndef PV_EVENTSTORE_ESDB_H
#define PV_EVENTSTORE_ESDB_H

#include "eventstore.h"
#include "http_client.h"

/* Opens a store on opts->url (http:// or https://, no credentials in the URL;
 * they go in opts->username/password).  No request is made here: the first
 * operation connects.  The store is not thread-safe; open one per thread. */
enum pv_err pv_es_esdb_open(const struct pv_es_options *opts, struct pv_es **out,
			    struct pv_error *err);

/* A stand-in for the HTTP exchange, for the fuzz target
 * (tests/fuzz/fuzz-esdb.c): every request of `es` (an esdb store) is
 * answered by fn instead of a server (pv_http_client_set_transport, lib/http.h).
 * Everything after that is the production code; retries do not sleep. */
void pv_es_esdb_set_transport(struct pv_es *es, pv_http_transport_fn *fn, void *ctx);

#endif
