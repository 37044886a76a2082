#include "request.h"

#include <errno.h>
#include <fcgiapp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The path relative to the mount point, and the mount point itself.
 * PATH_INFO when the server gives it; otherwise REQUEST_URI without its
 * query, decoded, minus SCRIPT_NAME (a server that mounts us at "/" may
 * call the whole path SCRIPT_NAME: then the prefix is empty). */
static bool request_path(char **envp, char *path, char *prefix)
{
	const char *info = FCGX_GetParam("PATH_INFO", envp);
	const char *script = FCGX_GetParam("SCRIPT_NAME", envp);
	const char *uri = FCGX_GetParam("REQUEST_URI", envp);
	size_t slen = script ? strlen(script) : 0;

	snprintf(prefix, PV_REQUEST_PATH_MAX, "%s", script ? script : "");
	if (info && *info) {
		snprintf(path, PV_REQUEST_PATH_MAX, "%s", info);
		return true;
	}
	if (!uri || strlen(uri) >= PV_REQUEST_PATH_MAX)
		return false;
	snprintf(path, PV_REQUEST_PATH_MAX, "%.*s", (int)strcspn(uri, "?"), uri);
	if (!pv_http_path_decode(path))
		return false;
	if (slen && strncmp(path, script, slen) == 0 && path[slen] == '/') {
		memmove(path, path + slen, strlen(path + slen) + 1);
	} else {
		prefix[0] = '\0';
	}
	return true;
}

long long pv_request_serve(struct pv_api_thread *t, char **envp,
			   int (*read)(void *ctx, char *buf, int n), void *read_ctx, char *path,
			   char *prefix, struct pv_http_response *resp)
{
	const char *len = FCGX_GetParam("CONTENT_LENGTH", envp);
	struct pv_http_request req = {
		.method = FCGX_GetParam("REQUEST_METHOD", envp),
		.path = path,
		.prefix = prefix,
		.content_type = FCGX_GetParam("CONTENT_TYPE", envp),
		.content_length = -1,
		.authorization = FCGX_GetParam("HTTP_AUTHORIZATION", envp),
		.remote_user = FCGX_GetParam("REMOTE_USER", envp),
		.remote_addr = FCGX_GetParam("REMOTE_ADDR", envp),
		.idempotency_key = FCGX_GetParam("HTTP_IDEMPOTENCY_KEY", envp),
		.correlation_id = FCGX_GetParam("HTTP_X_CORRELATION_ID", envp),
		.prefer = FCGX_GetParam("HTTP_PREFER", envp),
		.query = FCGX_GetParam("QUERY_STRING", envp),
		.if_none_match = FCGX_GetParam("HTTP_IF_NONE_MATCH", envp),
		.read = read,
		.read_ctx = read_ctx,
	};

	if (!req.correlation_id)
		req.correlation_id = FCGX_GetParam("HTTP_X_REQUEST_ID", envp);
	if (req.content_type && !*req.content_type)
		req.content_type = NULL;
	if (len && *len) {
		char *end;

		errno = 0;
		req.content_length = strtoll(len, &end, 10);
		if (errno || *end || req.content_length < 0) {
			pv_http_error(resp, 400, "invalid_request", "bad CONTENT_LENGTH");
			return -1;
		}
	}
	if (!req.method || !request_path(envp, path, prefix)) {
		pv_http_error(resp, 400, "invalid_request", "no method or a bad path");
		return req.content_length;
	}
	pv_api_handle(t, &req, resp);
	return req.content_length;
}
