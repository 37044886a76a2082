/* Azure Cosmos DB (SQL API) REST client: libcurl for HTTP, OpenSSL for the
 * master-key signature, jansson for bodies.
 *
 * One client holds one libcurl easy handle (so connections are reused when
 * the server allows it) and is NOT thread-safe: use one client per thread.
 * pv_cosmos_open() may be called from any thread; it initialises libcurl
 * once per process.  libcurl runs with CURLOPT_NOSIGNAL (threads), so it
 * does not ignore SIGPIPE itself: programs ignore SIGPIPE, as the services
 * here do.
 *
 * Every item operation names the partition-key value (the container is
 * partitioned on /election_id).  Document ids, database and container names
 * must be 1..255 characters of [A-Za-z0-9._~:@-] so they travel in a URL path
 * and in the signed resource link unchanged.
 *
 * ETags are opaque strings echoed verbatim: the real service's are quoted,
 * the stand-in's bare; this module never adds or strips quotes.
 *
 * Errors: 404 -> PV_ERR_NOT_FOUND; 409 (id taken) and 412 (If-Match failed)
 * -> PV_ERR_CONFLICT (pv_cosmos_last_status() tells them apart); 400 ->
 * PV_ERR_INVALID; 401 -> PV_ERR_UNAUTHORIZED; 403 -> PV_ERR_FORBIDDEN;
 * 413 -> PV_ERR_TOO_LARGE; 408 and libcurl timeouts -> PV_ERR_TIMEOUT;
 * 429 after the retries, 502-504 and unreachable servers ->
 * PV_ERR_UNAVAILABLE; other statuses -> PV_ERR_HTTP.  Messages name the
 * verb, the resource, the HTTP status and the server's own message.
 *
 * Retries (inside each call, bounded by max_retries):
 *  - 429 is always retried after the x-ms-retry-after-ms the server asks
 *    for (capped), since a throttled request was not executed;
 *  - 408, 5xx and connections that fail before or during the exchange are
 *    retried with exponential backoff and jitter.  Every operation here is
 *    safe to repeat: reads, queries, upserts, deletes and replaces with
 *    If-Match are idempotent or guarded.  A create is retried too, so when an
 *    earlier attempt landed but its answer was lost the retry answers 409 and
 *    the call reports PV_ERR_CONFLICT with "after a retried attempt" in the
 *    message; likewise a retried delete may report PV_ERR_NOT_FOUND and a
 *    retried replace PV_ERR_CONFLICT although the first attempt succeeded.
 *    Callers that care re-read the document.
 *  - A libcurl timeout (timeout_ms per attempt) is not retried: the call
 *    returns PV_ERR_TIMEOUT so that callers see a bounded wait. */
#ifndef PV_COSMOS_H
#define PV_COSMOS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "error.h"
#include "http_client.h"

struct pv_cosmos;

/* See pv_cosmos_set_observer. */
typedef void pv_cosmos_observer(void *ctx, long status, int attempt);

struct pv_cosmos_options {
	const char *endpoint; /* "https://host:port" (a trailing slash is ignored) */
	const char *key;      /* base64 master key */
	const char *database;
	const char *container;
	const char *ca_file;    /* NULL or "": the system's CA store */
	long timeout_ms;        /* per attempt; <= 0: 10000 */
	int max_retries;        /* < 0: none; 0: the default (6) */
	bool create_if_missing; /* create the database and container (/election_id) */
	/* Work around the stand-in @vercel/cosmosdb-server (protocols.md §8):
	 * send x-ms-documentdb-query-enablecrosspartition on point reads, which
	 * the stand-in needs to answer 404 rather than 500 for a missing
	 * document.  Off for the real service. */
	bool emulator_quirks;
	/* NULL: libcurl.  For the fuzz target (tests/fuzz/fuzz-cosmos.c) only:
	 * every request is answered by transport (see below). */
	struct pv_cosmos_transport *transport;
	/* NULL: none.  Set here, it also sees the requests of pv_cosmos_open
	 * (the database and container checks). */
	pv_cosmos_observer *observe;
	void *observe_ctx;
};

/* A stand-in for the HTTP exchange (pv_http_client_set_transport, lib/http_client.h):
 * fn answers each attempt.  Everything after that is the production code;
 * retries do not sleep. */
struct pv_cosmos_transport {
	pv_http_transport_fn *fn;
	void *ctx;
};

/* The partition key path of the container this project uses. */
#define PV_COSMOS_PARTITION_PATH "/election_id"

/* Checks the options, decodes the key, connects, and makes sure the
 * database and container exist (creating them when create_if_missing).
 * On failure *out is NULL. */
enum pv_err pv_cosmos_open(const struct pv_cosmos_options *opt, struct pv_cosmos **out,
			   struct pv_error *err);
void pv_cosmos_close(struct pv_cosmos *c);

/* HTTP status of the last answer (0: no answer). */
long pv_cosmos_last_status(const struct pv_cosmos *c);
/* Requests sent by this client, retries included (for benchmarks). */
unsigned long pv_cosmos_request_count(const struct pv_cosmos *c);

/* Called after every attempt of every request with its HTTP status (0:
 * no answer: a connection failure or timeout) and the attempt's number
 * (0 for the first, more for retries), for the workers' metrics. */
void pv_cosmos_set_observer(struct pv_cosmos *c, pv_cosmos_observer *fn, void *ctx);

/* Reads the container's metadata: a cheap health check. */
enum pv_err pv_cosmos_ping(struct pv_cosmos *c, struct pv_error *err);

/* Deletes the client's container and every document in it (204; 404 when
 * there is none).  The client is of no further use but to be closed. */
enum pv_err pv_cosmos_delete_container(struct pv_cosmos *c, struct pv_error *err);

/* Point read.  On success *doc (new reference) and *etag (malloc'd, may be
 * NULL if the server sent none; etag may be NULL to ignore it). */
enum pv_err pv_cosmos_read(struct pv_cosmos *c, const char *pk, const char *id, json_t **doc,
			   char **etag, struct pv_error *err);

/* Writes.  `doc` is borrowed and must be an object with a string "id".
 * `stored` (optional) receives the stored document, `etag` (optional) its
 * ETag.  if_match (optional, verbatim) guards upsert, replace and delete. */
enum pv_err pv_cosmos_create(struct pv_cosmos *c, const char *pk, json_t *doc, json_t **stored,
			     char **etag, struct pv_error *err);
enum pv_err pv_cosmos_upsert(struct pv_cosmos *c, const char *pk, json_t *doc, const char *if_match,
			     json_t **stored, char **etag, struct pv_error *err);
enum pv_err pv_cosmos_replace(struct pv_cosmos *c, const char *pk, json_t *doc,
			      const char *if_match, json_t **stored, char **etag,
			      struct pv_error *err);
enum pv_err pv_cosmos_delete(struct pv_cosmos *c, const char *pk, const char *id,
			     const char *if_match, struct pv_error *err);

/* A parameterised SQL query, one page at a time.
 *
 *   sql          e.g. "SELECT * FROM c WHERE c.election_id = @e"
 *   params       borrowed; NULL or an object {"@e": value, ...}
 *   pk           NULL: cross-partition; else the partition to search.  The
 *                stand-in ignores the header for queries, so queries meant
 *                for one partition should also filter on election_id in the
 *                SQL text (protocols.md §8).
 *   max_items    page size; <= 0: the service decides
 *   continuation NULL for the first page, then the last *next verbatim
 *
 * On success *documents is a new array and *next the continuation token
 * (malloc'd) or NULL on the last page.  A page may be empty while *next is
 * not NULL (the real service pages partition by partition): callers loop
 * until *next is NULL, not until a page comes back empty. */
enum pv_err pv_cosmos_query(struct pv_cosmos *c, const char *sql, json_t *params, const char *pk,
			    int max_items, const char *continuation, json_t **documents,
			    char **next, struct pv_error *err);

/* Removes the system properties the service adds to a stored document
 * (_rid, _self, _etag, _attachments, _ts: every key starting with '_'). */
void pv_cosmos_strip_system(json_t *doc);

/* ---- signing (exposed for tests) ---- */

/* The x-ms-date form of `t`: "Thu, 27 Apr 2017 00:51:12 GMT" (always
 * English names, whatever the locale).  out must hold 30 bytes. */
void pv_cosmos_date(long long t, char out[30]);

/* The Authorization header value for a master key:
 * URL-encoded "type=master&ver=1.0&sig=<base64 HMAC-SHA256>" over
 * "lower(verb)\nlower(type)\nlink\nlower(date)\n\n".  key_b64 is the
 * base64 master key; a key that is empty or not base64 gives PV_ERR_CONFIG.
 * Writes at most outsize bytes (always terminated). */
enum pv_err pv_cosmos_auth_header(const char *key_b64, const char *verb, const char *type,
				  const char *link, const char *date, char *out, size_t outsize,
				  struct pv_error *err);

#endif
