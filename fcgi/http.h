/* HTTP plumbing independent of FastCGI: the request as the handlers see
 * it, the response they fill, JSON error bodies, and the checks every
 * write body goes through (media type, size, nesting depth). */
#ifndef PV_FCGI_HTTP_H
#define PV_FCGI_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

struct pv_http_request {
	const char *method;
	const char *path;   /* relative to the mount point, decoded */
	const char *prefix; /* the mount point (SCRIPT_NAME), for Location */
	const char *content_type;
	long long content_length; /* -1 when not given */
	const char *authorization;
	const char *remote_user;
	const char *remote_addr;
	const char *idempotency_key;
	const char *correlation_id;
	const char *prefer;        /* the Prefer header (RFC 7240), NULL when absent */
	const char *query;         /* QUERY_STRING, still %-encoded; NULL when none */
	const char *if_none_match; /* the If-None-Match header, NULL when absent */
	/* Reads at most n body bytes; 0 at the end, < 0 on error. */
	int (*read)(void *ctx, char *buf, int n);
	void *read_ctx;
};

struct pv_http_response {
	int status;
	const char *content_type; /* static; "application/json" by default */
	struct pv_buf headers;    /* "Name: value\r\n" lines */
	struct pv_buf body;
};

void pv_http_response_init(struct pv_http_response *r);
void pv_http_response_clear(struct pv_http_response *r);
void pv_http_header(struct pv_http_response *r, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Sets status and the body {"error": {"code": code, "message": ...}}. */
void pv_http_error(struct pv_http_response *r, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Sets status and a JSON body (compact dump of a jansson value). */
struct json_t;
void pv_http_json(struct pv_http_response *r, int status, const struct json_t *body);
const char *pv_http_reason(int status);

/* True for "application/json" with at most a charset=utf-8 parameter
 * (case-insensitive, optional spaces). */
bool pv_http_is_json_type(const char *content_type);

enum pv_body_result { PV_BODY_OK, PV_BODY_TOO_LARGE, PV_BODY_READ_ERROR };
/* Reads the body into out without ever reading more than limit + 1 bytes:
 * a declared length over the limit is refused before reading anything. */
enum pv_body_result pv_http_read_body(const struct pv_http_request *req, size_t limit,
				      struct pv_buf *out);

/* Deepest nesting of arrays and objects in a JSON text (strings skipped),
 * counting stops past max + 1. */
int pv_json_depth(const char *text, size_t len, int max);

/* Decodes %XX escapes of a URL path in place; false on a bad escape or an
 * encoded NUL. */
bool pv_http_path_decode(char *path);

#endif
