/* The reads of photovote.fcgi (http-api.md "Reads"): elections, a page of
 * them, and results, from the read model's Cosmos DB documents
 * (lib/projection.h), with an ETag from the document's version and
 * If-None-Match answered 304.
 *
 * What a read shows depends on who asks: the election's owner and
 * administrators get the owner view (voters' names and emails), others the
 * public view; individual ballots are never served.
 *
 * Each request thread has its own Cosmos DB client (the client is not
 * thread-safe), opened when first needed.  With no [cosmos] key configured
 * the read model is disabled: reads answer 503 and /healthz says
 * "disabled" without failing (health.c reads the same keys), so a write-only deployment stays healthy. */
#ifndef PV_FCGI_READS_H
#define PV_FCGI_READS_H

#include <stdbool.h>

#include "api.h"
#include "http.h"

struct pv_config;
struct pv_reads;

/* Copies the [cosmos] settings. */
struct pv_reads *pv_reads_new(const struct pv_config *cfg);
void pv_reads_free(struct pv_reads *r);
/* Closes the thread's client. */
void pv_reads_thread_clear(struct pv_api_thread *t);

/* GET /elections/{eid}, GET /elections?limit=&continuation=,
 * GET /elections/{eid}/results, for an authenticated user. */
void pv_reads_election(struct pv_api_thread *t, const char *eid, const char *user, bool admin,
		       const struct pv_http_request *req, struct pv_http_response *resp);
void pv_reads_list(struct pv_api_thread *t, const struct pv_http_request *req,
		   struct pv_http_response *resp);
void pv_reads_results(struct pv_api_thread *t, const char *eid, const struct pv_http_request *req,
		      struct pv_http_response *resp);

#endif
