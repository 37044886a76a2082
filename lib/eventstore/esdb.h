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

#endif
