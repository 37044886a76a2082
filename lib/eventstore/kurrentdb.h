/* The `kurrentdb` event-store backend: KurrentDB / EventStoreDB over its
 * gRPC API (lib/eventstore/grpc.c, messages from lib/eventstore/proto/).
 * pv_es_open() calls pv_es_kurrentdb_open() when opts->backend is
 * "kurrentdb". */
#ifndef PV_EVENTSTORE_KURRENTDB_H
#define PV_EVENTSTORE_KURRENTDB_H

#include "eventstore.h"

/* Opens a store on opts->url, a connection string (kurrentdb://...,
 * esdb://..., see kurrentdb_conn.h).  Credentials in the string win over
 * opts->username/password, tlsCAFile over opts->ca_file, defaultDeadline
 * over opts->timeout_ms.  No request is made here: the first operation
 * connects.  The store is not thread-safe; open one per thread. */
enum pv_err pv_es_kurrentdb_open(const struct pv_es_options *opts, struct pv_es **out,
				 struct pv_error *err);

#endif
