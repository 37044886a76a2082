/* The HTTP client the servers' REST clients share (the esdb event-store
 * backend, Cosmos DB), over libcurl.
 *
 * A client holds the options every request of one server shares (timeouts,
 * TLS CA file, credentials, user agent, the largest body it accepts) and
 * the libcurl handles it reuses, so that connections are kept alive: one
 * easy handle for pv_http_client_run, a multi handle and `in_flight` easy handles
 * for pv_http_client_run_many.  A client is used by one thread at a time.
 *
 * A request is a method, a URL, header lines and a body; its response is
 * the status, the reason phrase, the header values the caller asked for
 * (`want`) and the body, which stops the transfer when it grows over the
 * client's max_body: an untrusted server cannot make us allocate without
 * bound.  Every libcurl failure is mapped into enum pv_err and named once,
 * with the client's name, method and URL:
 *   "esdb: POST http://host:2113/streams/X: libcurl: Failed to connect ..."
 * Retries are the callers' (their rules differ): pv_http_answer.failure
 * tells them whether the request can have reached the server.
 *
 * Credentials go to libcurl only, never into a URL or a message. */
#ifndef PV_HTTP_CLIENT_H
#define PV_HTTP_CLIENT_H

#include "buf.h"
#include "error.h"

#include <stdbool.h>
#include <stddef.h>

#define PV_HTTP_WANT_MAX 8 /* header values a response keeps */

struct pv_http_client;
struct curl_slist;

struct pv_http_client_options {
	const char *who;         /* the first word of every message: "esdb", "cosmos" */
	long timeout_ms;         /* a whole request (> 0) */
	long connect_timeout_ms; /* 0: timeout_ms */
	const char *ca_file;     /* NULL or "": the system store */
	const char *username;    /* HTTP basic authentication; NULL or "": none */
	const char *password;    /* NULL: empty */
	bool http1_1;            /* HTTP/1.1 even over TLS (reason phrases) */
	size_t max_body;         /* the largest body held (> 0) */
	size_t in_flight;        /* pv_http_client_run_many's bound; 0: 1 */
};

/* Request header lines ("Name: value"); zero-initialised is empty. */
struct pv_http_header_list {
	struct curl_slist *list;
};

struct pv_http_call {
	const char *method; /* GET, POST, PUT, DELETE */
	const char *url;
	const struct pv_http_header_list *headers; /* NULL: none */
	const char *body;                          /* NULL: none (a POST sends an empty one) */
	size_t body_len;
	long extra_timeout_ms; /* added to the client's timeout (a long poll) */
};

/* How a request without an answer failed, for the caller's retry rules. */
enum pv_http_failure {
	PV_HTTP_ANSWERED = 0, /* not a failure: status holds the answer's */
	PV_HTTP_UNSENT,       /* no connection: the request cannot have reached the server */
	PV_HTTP_BROKEN,       /* the connection broke: the request may have landed */
	PV_HTTP_TIMED_OUT,    /* no complete answer within the timeout */
	PV_HTTP_HANDSHAKE,    /* the TLS handshake failed (not the certificate check) */
	PV_HTTP_FAILED,       /* anything else: trying again would not help */
};

struct pv_http_answer {
	const char *const *want;     /* header names to keep (any case), NULL-terminated;
				    borrowed, at most PV_HTTP_WANT_MAX */
	char *got[PV_HTTP_WANT_MAX]; /* their values (the last one sent), trimmed, raw */
	long status;                 /* 0: no answer */
	char reason[128];            /* the reason phrase, escaped */
	struct pv_buf body;
	size_t max_body; /* set by pv_http_client_run */
	bool too_large;  /* the body went over max_body: the transfer stopped */
	enum pv_http_failure failure;
};

/* One of pv_http_client_run_many's requests and its outcome (pv_http_client_run's). */
struct pv_http_exchange {
	const struct pv_http_call *rq;
	struct pv_http_answer *resp;
	enum pv_err code;
	struct pv_error err;
};

/* A stand-in for the server, for the fuzz targets: every request of the
 * client is answered by fn, which fills the response through
 * pv_http_answer_status/_header/_body as libcurl's callbacks do.  PV_OK
 * means an answer came; an error stands for a failed transport
 * (PV_ERR_UNAVAILABLE: a broken connection).  Everything after that is the
 * production code. */
typedef enum pv_err pv_http_transport_fn(void *ctx, const char *method, const char *url,
					 struct pv_http_answer *resp, struct pv_error *err);

enum pv_err pv_http_client_open(const struct pv_http_client_options *opts,
				struct pv_http_client **out, struct pv_error *err);
void pv_http_client_close(struct pv_http_client *h);
void pv_http_client_set_transport(struct pv_http_client *h, pv_http_transport_fn *fn, void *ctx);
/* True when a transport stand-in answers (callers skip their backoff). */
bool pv_http_client_is_hooked(const struct pv_http_client *h);

/* Performs rq.  PV_OK: an HTTP answer (any status) is in resp.  Otherwise
 * the failure, named, with resp->failure saying how it failed. */
enum pv_err pv_http_client_run(struct pv_http_client *h, const struct pv_http_call *rq,
			       struct pv_http_answer *resp, struct pv_error *err);
/* Performs the n exchanges concurrently, at most in_flight at a time, on
 * the kept-alive connections of the client's multi handle; each one's code
 * (and err, resp) is set as pv_http_client_run's would be. */
void pv_http_client_run_many(struct pv_http_client *h, struct pv_http_exchange *const *xs,
			     size_t n);

void pv_http_header_list_add(struct pv_http_header_list *hs, const char *name, const char *value);
/* Appends a copy of every line of from. */
void pv_http_header_list_append(struct pv_http_header_list *hs,
				const struct pv_http_header_list *from);
void pv_http_header_list_clear(struct pv_http_header_list *hs);

/* A response that keeps the values of the headers named in want. */
void pv_http_answer_init(struct pv_http_answer *r, const char *const *want);
/* Its value of header `name` (one of want), or NULL when none came. */
const char *pv_http_answer_get(const struct pv_http_answer *r, const char *name);
/* The same, handed over to the caller (free it). */
char *pv_http_answer_take(struct pv_http_answer *r, const char *name);
/* Frees what r holds; want stays. */
void pv_http_answer_clear(struct pv_http_answer *r);

/* What libcurl's callbacks (and a transport stand-in) feed a response: the
 * status, each header line as received (the status line first, which
 * starts the header set again), the body in pieces (false when it went
 * over max_body). */
void pv_http_answer_status(struct pv_http_answer *r, long status);
void pv_http_answer_header(struct pv_http_answer *r, const char *line, size_t len);
bool pv_http_answer_body(struct pv_http_answer *r, const char *data, size_t len);

/* For every module that drives libcurl (the gRPC transport too). */

/* libcurl's global initialisation, once per process (pv_http_client_open
 * calls it). */
enum pv_err pv_http_client_global_init(struct pv_error *err);
/* Sets err for a libcurl failure (a CURLcode) and returns its code: the
 * context fmt makes, then "libcurl: " and what libcurl said, once (its
 * error buffer when it holds something, else the code's text).  *failure
 * (may be NULL) says how the request failed. */
enum pv_err pv_http_client_curl_error(struct pv_error *err, int curl_rc, const char *errbuf,
				      enum pv_http_failure *failure, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Appends len bytes to body unless that would make it longer than max:
 * false then, and body is left as it was. */
bool pv_http_client_body_add(struct pv_buf *body, size_t max, const char *data, size_t len);
/* Splits a header line "Name: value\r\n" into its name and its value
 * without the blanks and line end around it; false when it has no ':'. */
bool pv_http_client_header_split(const char *line, size_t len, size_t *name_len, const char **value,
				 size_t *value_len);

#endif
