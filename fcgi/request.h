/* From what the web server sent to what the handlers see: the FastCGI
 * parameters (method, paths, headers as HTTP_*) and the body reader become
 * a struct pv_http_request, which pv_api_handle answers.  Kept apart from
 * the socket so that the fuzz target (tests/fuzz/fuzz-request.c) sends its
 * requests through exactly this path. */
#ifndef PV_FCGI_REQUEST_H
#define PV_FCGI_REQUEST_H

#include "api.h"
#include "http.h"

#define PV_REQUEST_PATH_MAX 4096

/* Answers one request into resp.  envp: the parameters as "NAME=value"
 * strings, NULL-terminated (libfcgi's FCGX_Request.envp); read/read_ctx:
 * the body.  path and prefix are the caller's buffers of
 * PV_REQUEST_PATH_MAX bytes (no allocation per request).  A bad
 * CONTENT_LENGTH, no method or a path that cannot be decoded is answered
 * 400 here.  Returns the declared body length, -1 when none was given. */
long long pv_request_serve(struct pv_api_thread *t, char **envp,
			   int (*read)(void *ctx, char *buf, int n), void *read_ctx, char *path,
			   char *prefix, struct pv_http_response *resp);

#endif
