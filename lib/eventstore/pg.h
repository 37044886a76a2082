/* The PostgreSQL event store backend (see pg.c for its design). */
#ifndef PV_EVENTSTORE_PG_H
#define PV_EVENTSTORE_PG_H

#include "eventstore.h"

/* Connects with opts->pg_conninfo; the schema of sql/001_event_store.sql
 * must be in place (see migrate.h).  A handle is one connection: use one
 * per thread.  Its unit of work (eventstore.h) is one transaction, shared
 * with the sink. */
enum pv_err pv_es_pg_open(const struct pv_es_options *opts, struct pv_es **out,
			  struct pv_error *err);

#endif
