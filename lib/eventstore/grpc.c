/* gRPC over HTTP/2 with libcurl (see grpc.h).  One easy handle per
 * connection, set up again for each call, so that libcurl's connection
 * cache keeps the HTTP/2 connection between calls.  What every libcurl
 * user here shares (global init, naming libcurl's failures, the capped
 * body, header lines) is the HTTP client's (http_client.h); the framing,
 * trailers and deadlines are gRPC's and stay here. */
#include "eventstore/grpc.h"

#include "http_client.h"
#include "log.h"
#include "xalloc.h"

#include <ctype.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <protobuf-c/protobuf-c.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define GRPC_UPKEEP_MS 10000L /* an idle connection older than this is pinged */
#define GRPC_DEADLINE_SLACK_MS 250L
#define GRPC_POLL_MS 1000

struct pv_grpc {
	CURL *curl;
	CURLM *multi; /* pv_grpc_call_many's, made on first use */
	char *host;
	int port;
	bool tls;
	bool tls_verify;
	char *ca_file;
	char *username;
	char *password;
	long connect_timeout_ms;
	char target[300];
	char curl_err[CURL_ERROR_SIZE];
	pv_grpc_transport_fn *transport; /* the fuzz target's stand-in, else NULL */
	void *transport_ctx;
};

/* ---- names and mappings -------------------------------------------------- */

static const struct {
	const char *name;
	enum pv_err code;
} status_table[] = {
	[PV_GRPC_OK] = {"OK", PV_OK},
	[PV_GRPC_CANCELLED] = {"CANCELLED", PV_ERR_UNAVAILABLE},
	[PV_GRPC_UNKNOWN] = {"UNKNOWN", PV_ERR_PROTOCOL},
	[PV_GRPC_INVALID_ARGUMENT] = {"INVALID_ARGUMENT", PV_ERR_INVALID},
	[PV_GRPC_DEADLINE_EXCEEDED] = {"DEADLINE_EXCEEDED", PV_ERR_TIMEOUT},
	[PV_GRPC_NOT_FOUND] = {"NOT_FOUND", PV_ERR_NOT_FOUND},
	[PV_GRPC_ALREADY_EXISTS] = {"ALREADY_EXISTS", PV_ERR_CONFLICT},
	[PV_GRPC_PERMISSION_DENIED] = {"PERMISSION_DENIED", PV_ERR_FORBIDDEN},
	[PV_GRPC_RESOURCE_EXHAUSTED] = {"RESOURCE_EXHAUSTED", PV_ERR_UNAVAILABLE},
	[PV_GRPC_FAILED_PRECONDITION] = {"FAILED_PRECONDITION", PV_ERR_CONFLICT},
	/* KurrentDB answers its own operation timeouts with ABORTED. */
	[PV_GRPC_ABORTED] = {"ABORTED", PV_ERR_TIMEOUT},
	[PV_GRPC_OUT_OF_RANGE] = {"OUT_OF_RANGE", PV_ERR_INVALID},
	[PV_GRPC_UNIMPLEMENTED] = {"UNIMPLEMENTED", PV_ERR_PROTOCOL},
	[PV_GRPC_INTERNAL] = {"INTERNAL", PV_ERR_UNAVAILABLE},
	[PV_GRPC_UNAVAILABLE] = {"UNAVAILABLE", PV_ERR_UNAVAILABLE},
	[PV_GRPC_DATA_LOSS] = {"DATA_LOSS", PV_ERR_UNAVAILABLE},
	[PV_GRPC_UNAUTHENTICATED] = {"UNAUTHENTICATED", PV_ERR_UNAUTHORIZED},
};

/* Headers that are HTTP/2's or gRPC's own, not the server's metadata. */
static const char *const plain_headers[] = {
	"content-type",
	"content-length",
	"date",
	"server",
	"grpc-encoding",
	"grpc-accept-encoding",
	"te",
	"trailer",
	"grpc-status",
	"grpc-message",
	"grpc-status-details-bin",
};

/* ---- the connection --------------------------------------------------------- */

static void set_target(struct pv_grpc *g)
{
	bool v6 = strchr(g->host, ':') != NULL;
	char shown[256];

	pv_log_escape(shown, sizeof shown, g->host, strlen(g->host));
	snprintf(g->target, sizeof g->target, "%s%s%s:%d", v6 ? "[" : "", shown, v6 ? "]" : "",
		 g->port);
}

enum pv_err pv_grpc_open(const struct pv_grpc_options *opts, struct pv_grpc **out,
			 struct pv_error *err)
{
	struct pv_grpc *g;
	enum pv_err code;

	*out = NULL;
	if ((code = pv_http_client_global_init(err)) != PV_OK)
		return code;
	if (!(curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_HTTP2))
		return pv_error_set(err, PV_ERR_CONFIG,
				    "libcurl: built without HTTP/2, which gRPC needs");
	g = pv_xcalloc(1, sizeof *g);
	g->curl = curl_easy_init();
	if (!g->curl) {
		free(g);
		return pv_error_set(err, PV_ERR_NOMEM, "libcurl: curl_easy_init failed");
	}
	g->host = pv_xstrdup(opts->host);
	g->port = opts->port;
	g->tls = opts->tls;
	g->tls_verify = opts->tls_verify;
	g->ca_file = opts->ca_file ? pv_xstrdup(opts->ca_file) : NULL;
	g->username = opts->username && *opts->username ? pv_xstrdup(opts->username) : NULL;
	g->password = opts->password ? pv_xstrdup(opts->password) : NULL;
	g->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 5000;
	set_target(g);
	*out = g;
	return PV_OK;
}

void pv_grpc_close(struct pv_grpc *g)
{
	if (!g)
		return;
	curl_easy_cleanup(g->curl);
	if (g->multi)
		curl_multi_cleanup(g->multi);
	free(g->host);
	free(g->ca_file);
	free(g->username);
	pv_free_secret(g->password);
	free(g);
}

void pv_grpc_retarget(struct pv_grpc *g, const char *host, int port)
{
	free(g->host);
	g->host = pv_xstrdup(host);
	g->port = port;
	set_target(g);
}

const char *pv_grpc_target(const struct pv_grpc *g)
{
	return g->target;
}

void pv_grpc_set_transport(struct pv_grpc *g, pv_grpc_transport_fn *fn, void *ctx)
{
	g->transport = fn;
	g->transport_ctx = ctx;
}

/* ---- framing ------------------------------------------------------------------ */

void pv_grpc_frame(struct pv_buf *out, const struct ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t prefix[5];

	if (len > UINT32_MAX)
		pv_oom("grpc frame", len);
	prefix[0] = 0; /* not compressed */
	prefix[1] = (uint8_t)(len >> 24);
	prefix[2] = (uint8_t)(len >> 16);
	prefix[3] = (uint8_t)(len >> 8);
	prefix[4] = (uint8_t)len;
	pv_buf_append(out, prefix, sizeof prefix);
	pv_buf_reserve(out, len);
	protobuf_c_message_pack(msg, (uint8_t *)out->data + out->len);
	out->len += len;
	out->data[out->len] = '\0';
}

enum pv_err pv_grpc_reply_next(struct pv_grpc_reply *reply, const uint8_t **msg, size_t *len,
			       struct pv_error *err)
{
	size_t left = reply->body.len - reply->offset;
	const uint8_t *p;
	uint32_t n;

	*msg = NULL;
	*len = 0;
	if (left == 0)
		return PV_OK;
	/* Only now: an answer without a body has no buffer, and NULL + 0 is undefined. */
	p = (const uint8_t *)reply->body.data + reply->offset;
	if (left < 5)
		return pv_error_set(err, PV_ERR_PROTOCOL, "gRPC: a message frame cut short");
	if (p[0] != 0)
		return pv_error_set(err, PV_ERR_PROTOCOL,
				    "gRPC: a compressed message, though none was offered");
	n = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
	if (n > left - 5)
		return pv_error_set(err, PV_ERR_PROTOCOL,
				    "gRPC: a message of %" PRIu32 " bytes with %zu left", n,
				    left - 5);
	*msg = p + 5;
	*len = n;
	reply->offset += 5 + (size_t)n;
	return PV_OK;
}

/* ---- the answer ------------------------------------------------------------------ */

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct pv_grpc_reply *r = arg;
	size_t n = size * nmemb;

	if (!pv_http_client_body_add(&r->body, r->max_body, data, n)) {
		r->too_large = true;
		return 0; /* libcurl stops with CURLE_WRITE_ERROR */
	}
	return n;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* grpc-message is percent-encoded UTF-8; decoded, then escaped for logs. */
static void decode_message(char *dst, size_t size, const char *src, size_t n)
{
	char raw[512];
	size_t o = 0;

	for (size_t i = 0; i < n && o + 1 < sizeof raw; i++) {
		int hi, lo;
		if (src[i] == '%' && i + 2 < n && (hi = hexval((unsigned char)src[i + 1])) >= 0 &&
		    (lo = hexval((unsigned char)src[i + 2])) >= 0) {
			raw[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			raw[o++] = src[i];
		}
	}
	pv_log_escape(dst, size, raw, o);
}

static bool is_plain_header(const char *name)
{
	for (size_t i = 0; i < sizeof plain_headers / sizeof plain_headers[0]; i++)
		if (strcmp(name, plain_headers[i]) == 0)
			return true;
	return false;
}

/* Headers and, after the body, trailers: libcurl hands both here. */
static size_t on_header(char *line, size_t size, size_t nmemb, void *arg)
{
	struct pv_grpc_reply *r = arg;
	size_t n = size * nmemb, name_len;
	const char *value;
	size_t value_len;
	char name[48];

	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		/* A new status line: what came before (an interim answer) is gone. */
		r->meta_count = 0;
		r->has_status = false;
		return n;
	}
	if (!pv_http_client_header_split(line, n, &name_len, &value, &value_len) || name_len == 0 ||
	    name_len >= sizeof name)
		return n;
	for (size_t i = 0; i < name_len; i++)
		name[i] = (char)tolower((unsigned char)line[i]);
	name[name_len] = '\0';
	if (strcmp(name, "grpc-status") == 0) {
		int status = 0;
		bool ok = value_len > 0 && value_len <= 3;
		for (size_t i = 0; ok && i < value_len; i++) {
			ok = isdigit((unsigned char)value[i]);
			status = status * 10 + (value[i] - '0');
		}
		r->status = ok ? status : -1;
		r->has_status = true;
	} else if (strcmp(name, "grpc-message") == 0) {
		decode_message(r->message, sizeof r->message, value, value_len);
	} else if (strcmp(name, "content-type") == 0) {
		/* Checked after the call: an answer that is not gRPC's. */
		if (!(value_len >= 16 && strncasecmp(value, "application/grpc", 16) == 0))
			r->http_status = r->http_status ? r->http_status : -1;
	} else if (!is_plain_header(name) && r->meta_count < PV_GRPC_META_MAX) {
		memcpy(r->meta[r->meta_count].name, name, name_len + 1);
		pv_log_escape(r->meta[r->meta_count].value, sizeof r->meta[0].value, value,
			      value_len);
		r->meta_count++;
	}
	return n;
}

void pv_grpc_reply_header(struct pv_grpc_reply *reply, const char *line, size_t len)
{
	on_header((char *)line, 1, len, reply);
}

bool pv_grpc_reply_body(struct pv_grpc_reply *reply, const char *data, size_t len)
{
	return on_body((char *)data, 1, len, reply) == len;
}

const char *pv_grpc_reply_meta(const struct pv_grpc_reply *reply, const char *name)
{
	for (size_t i = 0; i < reply->meta_count; i++)
		if (strcmp(reply->meta[i].name, name) == 0)
			return reply->meta[i].value;
	return NULL;
}

void pv_grpc_reply_clear(struct pv_grpc_reply *reply)
{
	pv_buf_free(&reply->body);
	memset(reply, 0, sizeof *reply);
}

enum pv_err pv_grpc_status_error(const struct pv_grpc_reply *reply, const char *what,
				 struct pv_error *err)
{
	int s = reply->status;

	if (s < 0 || (size_t)s >= sizeof status_table / sizeof status_table[0])
		return pv_error_set(err, PV_ERR_PROTOCOL, "%s: gRPC status %d: %s", what, s,
				    reply->message);
	return pv_error_set(err, status_table[s].code, "%s: %s: %s", what, status_table[s].name,
			    reply->message[0] ? reply->message : "(no message)");
}

/* ---- the call ---------------------------------------------------------------------- */

/* HTTP statuses where a gRPC server would have answered with a status of
 * its own: a proxy, or no gRPC at that address. */
static enum pv_err http_status_error(const struct pv_grpc *g, const char *path, long status,
				     struct pv_error *err)
{
	enum pv_err code = PV_ERR_PROTOCOL;

	if (status == 401)
		code = PV_ERR_UNAUTHORIZED;
	else if (status == 403)
		code = PV_ERR_FORBIDDEN;
	else if (status == 429 || status >= 500)
		code = PV_ERR_UNAVAILABLE;
	return pv_error_set(err, code,
			    "gRPC %s at %s: HTTP status %ld without a gRPC status (is this "
			    "KurrentDB's gRPC port?)",
			    path, g->target, status);
}

static struct curl_slist *request_headers(long deadline_ms, const char *const *extra)
{
	struct curl_slist *h = NULL, *t;
	char timeout[48];
	const char *fixed[] = {"Content-Type: application/grpc", "TE: trailers",
			       "grpc-accept-encoding: identity", "Expect:", "Accept:"};

	snprintf(timeout, sizeof timeout, "grpc-timeout: %ldm", deadline_ms);
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
		if (!(t = curl_slist_append(h, fixed[i])))
			goto oom;
		h = t;
	}
	if (!(t = curl_slist_append(h, timeout)))
		goto oom;
	h = t;
	for (size_t i = 0; extra && extra[i]; i++) {
		if (!(t = curl_slist_append(h, extra[i])))
			goto oom;
		h = t;
	}
	return h;
oom:
	curl_slist_free_all(h);
	pv_oom("curl_slist_append", 0);
}

static CURLcode setup(const struct pv_grpc *g, CURL *c, char *errbuf, const char *url,
		      const struct pv_buf *request, struct curl_slist *headers, long deadline_ms,
		      struct pv_grpc_reply *reply)
{
	CURLcode rc = CURLE_OK;

	curl_easy_reset(c);
#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (rc == CURLE_OK)                                                                \
			rc = curl_easy_setopt(c, opt, val);                                        \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_HTTP_VERSION,
	    g->tls ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
	SET(CURLOPT_POST, 1L);
	SET(CURLOPT_POSTFIELDS, request->data ? request->data : "");
	SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)request->len);
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_USERAGENT, "photovote/" PACKAGE_VERSION " grpc-libcurl");
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, reply);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, reply);
	SET(CURLOPT_CONNECTTIMEOUT_MS, g->connect_timeout_ms);
	SET(CURLOPT_TIMEOUT_MS, deadline_ms + GRPC_DEADLINE_SLACK_MS);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_UPKEEP_INTERVAL_MS, GRPC_UPKEEP_MS);
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	if (g->tls) {
		SET(CURLOPT_SSL_VERIFYPEER, g->tls_verify ? 1L : 0L);
		SET(CURLOPT_SSL_VERIFYHOST, g->tls_verify ? 2L : 0L);
		if (g->ca_file)
			SET(CURLOPT_CAINFO, g->ca_file);
		if (g->username) {
			SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
			SET(CURLOPT_USERNAME, g->username);
			SET(CURLOPT_PASSWORD, g->password ? g->password : "");
		}
	}
#undef SET
	return rc;
}

/* A new easy handle, so the next call opens a connection of its own. */
static bool fresh_handle(struct pv_grpc *g)
{
	CURL *fresh = curl_easy_init();

	if (!fresh)
		return false;
	curl_easy_cleanup(g->curl);
	g->curl = fresh;
	return true;
}

/* The way out of a certificate the client does not trust, in the
 * connection string's own words. */
static enum pv_err certificate_hint(struct pv_error *err)
{
	return pv_error_suffix(err, " (tlsCAFile=FILE names the CA that signed the server's "
				    "certificate; tlsVerifyCert=false skips the check)");
}

/* What an answer that came says: an error for an HTTP status other than
 * 200, a content type that is not gRPC's, no valid grpc-status. */
static enum pv_err answer_result(const struct pv_grpc *g, const char *path, long status,
				 struct pv_grpc_reply *reply, struct pv_error *err)
{
	if (status != 200)
		return http_status_error(g, path, status, err);
	if (reply->http_status == -1)
		return pv_error_set(err, PV_ERR_PROTOCOL,
				    "gRPC %s at %s: the answer's content type is not "
				    "application/grpc",
				    path, g->target);
	reply->http_status = status;
	if (!reply->has_status || reply->status < 0)
		return pv_error_set(err, PV_ERR_PROTOCOL,
				    "gRPC %s at %s: the answer ended without a valid grpc-status",
				    path, g->target);
	return PV_OK;
}

static enum pv_err too_large(const struct pv_grpc *g, const char *path, size_t max_body,
			     struct pv_error *err)
{
	return pv_error_set(err, PV_ERR_TOO_LARGE,
			    "gRPC %s at %s: the answer is larger than %zu bytes", path, g->target,
			    max_body);
}

/* The call answered by the transport stand-in instead of libcurl. */
static enum pv_err hooked_call(struct pv_grpc *g, const char *path, const struct pv_buf *request,
			       struct pv_grpc_reply *reply, struct pv_error *err)
{
	struct pv_error terr = {PV_OK, ""};
	long status = 0;
	enum pv_err code = g->transport(g->transport_ctx, path, request, reply, &status, &terr);

	if (code != PV_OK)
		return pv_error_set(err, code, "gRPC %s at %s: %s", path, g->target, terr.msg);
	if (reply->too_large)
		return too_large(g, path, reply->max_body, err);
	return answer_result(g, path, status, reply, err);
}

static char *call_url(const struct pv_grpc *g, const char *path)
{
	bool v6 = strchr(g->host, ':') != NULL;

	return pv_xasprintf("%s://%s%s%s:%d%s", g->tls ? "https" : "http", v6 ? "[" : "", g->host,
			    v6 ? "]" : "", g->port, path);
}

/* What a finished transfer on c (libcurl's rc, its error buffer) gives. */
static enum pv_err transfer_result(const struct pv_grpc *g, CURL *c, CURLcode rc,
				   const char *errbuf, const char *path, long deadline_ms,
				   struct pv_grpc_reply *reply, struct pv_error *err)
{
	enum pv_err code;
	long status = 0, version = 0;

	if (rc != CURLE_OK) {
		if (reply->too_large)
			code = too_large(g, path, reply->max_body, err);
		else if (rc == CURLE_OPERATION_TIMEDOUT)
			code = pv_error_set(
				err, PV_ERR_TIMEOUT,
				"gRPC %s at %s: no answer within the deadline of %ld ms", path,
				g->target, deadline_ms);
		else
			code = pv_http_client_curl_error(err, rc, errbuf, NULL, "gRPC %s at %s",
							 path, g->target);
		if (rc == CURLE_PEER_FAILED_VERIFICATION)
			code = certificate_hint(err);
		return code;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(c, CURLINFO_HTTP_VERSION, &version);
	if (version != CURL_HTTP_VERSION_2_0)
		code = pv_error_set(err, PV_ERR_PROTOCOL,
				    "gRPC %s at %s: the server did not speak HTTP/2%s", path,
				    g->target, g->tls ? " (ALPN chose another protocol)" : "");
	else
		code = answer_result(g, path, status, reply, err);
	return code;
}

enum pv_err pv_grpc_call(struct pv_grpc *g, const char *path, const struct pv_buf *request,
			 const char *const *headers, long deadline_ms, size_t max_body,
			 struct pv_grpc_reply *reply, struct pv_error *err)
{
	struct curl_slist *h;
	char *url;
	CURLcode rc;
	enum pv_err code;

	memset(reply, 0, sizeof *reply);
	reply->status = -1;
	reply->max_body = max_body;
	if (g->transport)
		return hooked_call(g, path, request, reply, err);
	/* libcurl 7.88 (Debian 12) fails every request after the first that an
	 * easy handle sends over HTTP/2 with prior knowledge ("Error in the
	 * HTTP2 framing layer", seen against @grpc/grpc-js and node's own http2
	 * server, even on a new connection): without TLS each call gets a
	 * handle, and so a connection, of its own. */
	if (!g->tls && !fresh_handle(g))
		return pv_error_set(err, PV_ERR_NOMEM, "libcurl: curl_easy_init failed");
	if (deadline_ms <= 0)
		deadline_ms = 10000;
	/* Pings the connection when it has been idle: a dead one is found
	 * before a call is sent on it. */
	curl_easy_upkeep(g->curl);
	url = call_url(g, path);
	h = request_headers(deadline_ms, headers);
	for (int attempt = 0;; attempt++) {
		long fresh_connections = -1;

		memset(reply, 0, sizeof *reply);
		reply->status = -1;
		reply->max_body = max_body;
		g->curl_err[0] = '\0';
		rc = setup(g, g->curl, g->curl_err, url, request, h, deadline_ms, reply);
		if (rc == CURLE_OK)
			rc = curl_easy_perform(g->curl);
		curl_easy_getinfo(g->curl, CURLINFO_NUM_CONNECTS, &fresh_connections);
		/* Over TLS the connection is kept, and libcurl 7.88 fails a call
		 * now and then on it with the same framing error (about one in a
		 * thousand against the stand-in).  Every call this backend makes
		 * may go twice (reads; appends carry their events' ids, which the
		 * server answers again with the first outcome), so it goes again
		 * once, on a new connection. */
		if (attempt > 0 || fresh_connections != 0 ||
		    (rc != CURLE_HTTP2 && rc != CURLE_HTTP2_STREAM))
			break;
		pv_log_info("grpc",
			    "%s at %s: the kept HTTP/2 connection failed (%s); sending the "
			    "call again on a new one",
			    path, g->target, g->curl_err[0] ? g->curl_err : curl_easy_strerror(rc));
		pv_grpc_reply_clear(reply);
		if (!fresh_handle(g)) {
			curl_slist_free_all(h);
			free(url);
			return pv_error_set(err, PV_ERR_NOMEM, "libcurl: curl_easy_init failed");
		}
	}
	code = transfer_result(g, g->curl, rc, g->curl_err, path, deadline_ms, reply, err);
	curl_slist_free_all(h);
	free(url);
	return code;
}

/* ---- concurrent calls ---------------------------------------------------------- */

struct transfer {
	CURL *curl;
	struct pv_grpc_job *job;
	char err[CURL_ERROR_SIZE];
};

static void job_start(struct pv_grpc_job *job, size_t max_body)
{
	memset(&job->reply, 0, sizeof job->reply);
	job->reply.status = -1;
	job->reply.max_body = max_body;
	job->code = PV_OK;
	job->err = (struct pv_error){PV_OK, ""};
}

static bool multi_ready(struct pv_grpc *g)
{
	if (g->multi)
		return true;
	if (!(g->multi = curl_multi_init()))
		return false;
	/* A connection per call in flight, never two calls on one at once:
	 * multiplexed on one TLS connection, libcurl 7.88 against grpc-js
	 * handed over some answers without their trailers (no grpc-status, in
	 * 2 of 5 batches of 500 calls).  Over TLS the connections are kept for
	 * the next calls; without TLS each call has a new one (pv_grpc_call). */
	if (curl_multi_setopt(g->multi, CURLMOPT_PIPELINING, CURLPIPE_NOTHING) == CURLM_OK)
		return true;
	curl_multi_cleanup(g->multi);
	g->multi = NULL;
	return false;
}

/* Adds the job's transfer to the multi handle; false (the job's error set)
 * when it cannot be. */
static bool transfer_start(struct pv_grpc *g, struct transfer *t, struct pv_grpc_job *job,
			   const char *url, struct curl_slist *h, long deadline_ms)
{
	CURLcode rc;

	t->job = job;
	t->err[0] = '\0';
	if (!(t->curl = curl_easy_init())) {
		job->code = pv_error_set(&job->err, PV_ERR_NOMEM, "libcurl: curl_easy_init failed");
		return false;
	}
	rc = setup(g, t->curl, t->err, url, job->request, h, deadline_ms, &job->reply);
	if (rc == CURLE_OK && g->tls)
		rc = curl_easy_setopt(t->curl, CURLOPT_PIPEWAIT, 1L);
	if (rc == CURLE_OK && !g->tls)
		rc = curl_easy_setopt(t->curl, CURLOPT_FORBID_REUSE, 1L);
	if (rc == CURLE_OK && curl_multi_add_handle(g->multi, t->curl) != CURLM_OK)
		rc = CURLE_OUT_OF_MEMORY;
	if (rc != CURLE_OK) {
		job->code = pv_http_client_curl_error(&job->err, rc, t->err, NULL, "gRPC %s at %s",
						      job->path, g->target);
		curl_easy_cleanup(t->curl);
		t->curl = NULL;
		return false;
	}
	return true;
}

/* The transfer ended: the job's outcome, and whether it should go again
 * (the framing failure of a kept connection, as in pv_grpc_call). */
static bool transfer_done(struct pv_grpc *g, struct transfer *t, CURLcode rc, long deadline_ms)
{
	long fresh_connections = -1;
	bool again;

	curl_easy_getinfo(t->curl, CURLINFO_NUM_CONNECTS, &fresh_connections);
	again = fresh_connections == 0 && (rc == CURLE_HTTP2 || rc == CURLE_HTTP2_STREAM);
	if (!again)
		t->job->code = transfer_result(g, t->curl, rc, t->err, t->job->path, deadline_ms,
					       &t->job->reply, &t->job->err);
	curl_multi_remove_handle(g->multi, t->curl);
	curl_easy_cleanup(t->curl);
	t->curl = NULL;
	t->job = NULL;
	return again;
}

void pv_grpc_call_many(struct pv_grpc *g, struct pv_grpc_job *jobs, size_t n,
		       const char *const *headers, long deadline_ms, size_t max_body,
		       size_t in_flight)
{
	struct transfer *slots;
	struct pv_grpc_job **again = NULL;
	struct curl_slist *h = NULL;
	char *url = NULL;
	size_t next = 0, busy = 0, n_again = 0;
	CURLMcode mrc = CURLM_OK;

	for (size_t i = 0; i < n; i++)
		job_start(&jobs[i], max_body);
	if (deadline_ms <= 0)
		deadline_ms = 10000;
	if (g->transport || n == 1 || !multi_ready(g)) {
		for (size_t i = 0; i < n; i++)
			jobs[i].code =
				pv_grpc_call(g, jobs[i].path, jobs[i].request, headers, deadline_ms,
					     max_body, &jobs[i].reply, &jobs[i].err);
		return;
	}
	if (in_flight == 0)
		in_flight = 1;
	slots = pv_xcalloc(in_flight, sizeof *slots);
	again = pv_xcalloc(n, sizeof *again);
	h = request_headers(deadline_ms, headers);
	while (next < n || busy > 0) {
		CURLMsg *msg;
		int still = 0, queued;

		for (size_t s = 0; s < in_flight && next < n; s++) {
			if (slots[s].curl)
				continue;
			free(url);
			url = call_url(g, jobs[next].path);
			if (transfer_start(g, &slots[s], &jobs[next], url, h, deadline_ms))
				busy++;
			next++;
		}
		mrc = curl_multi_perform(g->multi, &still);
		while (mrc == CURLM_OK && (msg = curl_multi_info_read(g->multi, &queued))) {
			for (size_t s = 0; msg->msg == CURLMSG_DONE && s < in_flight; s++) {
				struct pv_grpc_job *job = slots[s].job;

				if (slots[s].curl != msg->easy_handle)
					continue;
				if (transfer_done(g, &slots[s], msg->data.result, deadline_ms))
					again[n_again++] = job;
				busy--;
				break;
			}
		}
		if (mrc == CURLM_OK && busy > 0 && still > 0)
			mrc = curl_multi_poll(g->multi, NULL, 0, GRPC_POLL_MS, NULL);
		if (mrc != CURLM_OK)
			break;
	}
	/* The multi handle failed: every call not finished fails with it. */
	for (size_t s = 0; s < in_flight; s++) {
		if (!slots[s].curl)
			continue;
		slots[s].job->code = pv_error_set(&slots[s].job->err, PV_ERR_UNAVAILABLE,
						  "gRPC %s at %s: libcurl: %s", slots[s].job->path,
						  g->target, curl_multi_strerror(mrc));
		curl_multi_remove_handle(g->multi, slots[s].curl);
		curl_easy_cleanup(slots[s].curl);
	}
	for (; next < n; next++)
		jobs[next].code = pv_error_set(&jobs[next].err, PV_ERR_UNAVAILABLE,
					       "gRPC %s at %s: libcurl: %s", jobs[next].path,
					       g->target, curl_multi_strerror(mrc));
	for (size_t i = 0; i < n_again; i++) {
		struct pv_grpc_job *job = again[i];

		pv_log_info("grpc",
			    "%s at %s: the kept HTTP/2 connection failed; sending the call again",
			    job->path, g->target);
		pv_grpc_reply_clear(&job->reply);
		job->code = pv_grpc_call(g, job->path, job->request, headers, deadline_ms, max_body,
					 &job->reply, &job->err);
	}
	free(again);
	free(slots);
	free(url);
	curl_slist_free_all(h);
}
