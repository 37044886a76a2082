/* gRPC calls over HTTP/2 with libcurl, for the kurrentdb backend.
 *
 * A call is a POST of /<package>.<Service>/<Method> with content-type
 * application/grpc and te: trailers; each message in either direction is
 * framed by a compressed flag (0 here: no compression is offered) and a
 * 4-byte big-endian length.  The call's status comes in the grpc-status and
 * grpc-message trailers, or in the headers of an answer without a body
 * ("trailers-only").  Unary, client-streaming (all the messages sent in one
 * body, then the half-close) and server-streaming calls that end by
 * themselves (a read with a count) are all the same here: the request's
 * messages go out, the answer's messages are collected until the status.
 *
 * Plain HTTP/2 ("h2c", prior knowledge) without TLS, HTTP/2 negotiated by
 * ALPN with TLS.  Deadlines go in grpc-timeout and bound the transfer.  An
 * idle connection is checked with an HTTP/2 PING before it is used again
 * (libcurl's upkeep), and TCP keepalive is on.  Credentials go as HTTP
 * Basic, and only over TLS: a server without TLS runs --insecure, which has
 * no authentication, and a password is never sent in the clear. */
#ifndef PV_EVENTSTORE_GRPC_H
#define PV_EVENTSTORE_GRPC_H

#include "buf.h"
#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pv_grpc; /* one connection (libcurl easy handle); one thread at a time */

struct pv_grpc_options {
	const char *host; /* name, IPv4 or IPv6 address (no brackets) */
	int port;
	bool tls;
	bool tls_verify;
	const char *ca_file; /* NULL: the system's CAs */
	const char *username;
	const char *password;
	long connect_timeout_ms;
};

/* Takes copies of what it needs; no connection is made here. */
enum pv_err pv_grpc_open(const struct pv_grpc_options *opts, struct pv_grpc **out,
			 struct pv_error *err);
void pv_grpc_close(struct pv_grpc *g);
/* Points the connection at another node (a "not leader" answer names it). */
void pv_grpc_retarget(struct pv_grpc *g, const char *host, int port);
/* "host:port" of the node in use, for messages. */
const char *pv_grpc_target(const struct pv_grpc *g);

/* gRPC status codes (grpc/doc/statuscodes.md). */
enum pv_grpc_code {
	PV_GRPC_OK = 0,
	PV_GRPC_CANCELLED = 1,
	PV_GRPC_UNKNOWN = 2,
	PV_GRPC_INVALID_ARGUMENT = 3,
	PV_GRPC_DEADLINE_EXCEEDED = 4,
	PV_GRPC_NOT_FOUND = 5,
	PV_GRPC_ALREADY_EXISTS = 6,
	PV_GRPC_PERMISSION_DENIED = 7,
	PV_GRPC_RESOURCE_EXHAUSTED = 8,
	PV_GRPC_FAILED_PRECONDITION = 9,
	PV_GRPC_ABORTED = 10,
	PV_GRPC_OUT_OF_RANGE = 11,
	PV_GRPC_UNIMPLEMENTED = 12,
	PV_GRPC_INTERNAL = 13,
	PV_GRPC_UNAVAILABLE = 14,
	PV_GRPC_DATA_LOSS = 15,
	PV_GRPC_UNAUTHENTICATED = 16,
};

#define PV_GRPC_META_MAX 16

/* The answer to a call. */
struct pv_grpc_reply {
	int status;        /* grpc-status */
	char message[256]; /* grpc-message, percent-decoded, escaped for logs */
	/* Custom metadata (headers and trailers that are not HTTP/2's or
	 * gRPC's own), names in lower case, values escaped. */
	struct {
		char name[48];
		char value[160];
	} meta[PV_GRPC_META_MAX];
	size_t meta_count;
	struct pv_buf body; /* the framed messages */
	size_t offset;      /* of the next message in body */
	/* private */
	long http_status;
	bool has_status;
	bool too_large;
	size_t max_body;
};

/* Appends one framed message: the 5-byte prefix and the packed bytes. */
struct ProtobufCMessage;
void pv_grpc_frame(struct pv_buf *out, const struct ProtobufCMessage *msg);

/* Makes the call: path "/pkg.Service/Method", the framed request messages,
 * extra request headers ("requires-leader: true", NULL-terminated, may be
 * NULL), the deadline.  PV_OK means an answer with a grpc-status came, which
 * may be an error status (see pv_grpc_status_error); a failure to get one
 * (connection, HTTP status, a missing grpc-status, an answer larger than
 * max_body bytes) is the error returned, named.  Clear the reply with
 * pv_grpc_reply_clear, whatever the result. */
enum pv_err pv_grpc_call(struct pv_grpc *g, const char *path, const struct pv_buf *request,
			 const char *const *headers, long deadline_ms, size_t max_body,
			 struct pv_grpc_reply *reply, struct pv_error *err);
void pv_grpc_reply_clear(struct pv_grpc_reply *reply);

/* One of pv_grpc_call_many's calls and its outcome. */
struct pv_grpc_job {
	const char *path;
	const struct pv_buf *request;
	struct pv_grpc_reply reply; /* out: clear it, whatever the code */
	enum pv_err code;           /* out: as pv_grpc_call's */
	struct pv_error err;
};

/* Makes the n calls concurrently, in_flight (at least 1) at a time, each on
 * a connection of its own (kept for the next calls over TLS; see grpc.c).  Each job's code, err and reply are what pv_grpc_call would
 * have given it; a call the kept connection failed goes again once. */
void pv_grpc_call_many(struct pv_grpc *g, struct pv_grpc_job *jobs, size_t n,
		       const char *const *headers, long deadline_ms, size_t max_body,
		       size_t in_flight);

/* A stand-in for the HTTP/2 exchange, for the fuzz target
 * (tests/fuzz/fuzz-kurrentdb.c): every call of g is answered by fn instead
 * of a server.  fn feeds the answer as libcurl's callbacks do, through
 * pv_grpc_reply_header (the status line "HTTP/2 200", each header line,
 * then after the body each trailer line) and pv_grpc_reply_body, and sets
 * *http_status; PV_OK means an answer came, an error stands for a failed
 * transport (PV_ERR_UNAVAILABLE: a broken connection).  Everything after
 * that (HTTP status, content type, grpc-status, framing) is the production
 * code's. */
typedef enum pv_err pv_grpc_transport_fn(void *ctx, const char *path, const struct pv_buf *request,
					 struct pv_grpc_reply *reply, long *http_status,
					 struct pv_error *err);
void pv_grpc_set_transport(struct pv_grpc *g, pv_grpc_transport_fn *fn, void *ctx);
void pv_grpc_reply_header(struct pv_grpc_reply *reply, const char *line, size_t len);
/* false when the body went over the call's max_body (the transfer stops). */
bool pv_grpc_reply_body(struct pv_grpc_reply *reply, const char *data, size_t len);

/* The next message of the answer: *msg and *len point into the reply.
 * PV_OK with *msg NULL after the last; PV_ERR_PROTOCOL for a truncated or
 * compressed frame. */
enum pv_err pv_grpc_reply_next(struct pv_grpc_reply *reply, const uint8_t **msg, size_t *len,
			       struct pv_error *err);

/* A metadata value of the answer, NULL when absent. */
const char *pv_grpc_reply_meta(const struct pv_grpc_reply *reply, const char *name);

/* The error for a non-OK status: the code mapped into enum pv_err (the
 * table in grpc.c), the message "what: STATUS_NAME: grpc-message". */
enum pv_err pv_grpc_status_error(const struct pv_grpc_reply *reply, const char *what,
				 struct pv_error *err);

#endif
