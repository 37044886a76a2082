/* The `kurrentdb` event-store backend: KurrentDB / EventStoreDB over its
 * gRPC API (lib/eventstore/grpc.c, messages from lib/eventstore/proto/).
 * pv_es_open() calls pv_es_kurrentdb_open() when opts->backend is
 * "kurrentdb". */
#ifndef PV_EVENTSTORE_KURRENTDB_H
#define PV_EVENTSTORE_KURRENTDB_H

#include "eventstore.h"
#include "eventstore/grpc.h"

/* Opens a store on opts->url, a connection string (kurrentdb://...,
 * esdb://..., see kurrentdb_conn.h).  Credentials in the string win over
 * opts->username/password, tlsCAFile over opts->ca_file, defaultDeadline
 * over opts->timeout_ms.  No request is made here: the first operation
 * connects.  The store is not thread-safe; open one per thread. */
enum pv_err pv_es_kurrentdb_open(const struct pv_es_options *opts, struct pv_es **out,
				 struct pv_error *err);

/* A stand-in for the gRPC exchange, for the fuzz target
 * (tests/fuzz/fuzz-kurrentdb.c): every call of `es` (a kurrentdb store) is
 * answered by fn instead of a server (pv_grpc_set_transport, grpc.h).
 * Everything after that is the production code. */
void pv_es_kurrentdb_set_transport(struct pv_es *es, pv_grpc_transport_fn *fn, void *ctx);

#endif
