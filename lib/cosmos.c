/* Azure Cosmos DB REST client (see cosmos.h for the contract).
 *
 * Design: a client is an HTTP client (lib/http_client.h, which keeps the
 * connections alive) plus the decoded master key.  Each call builds one
 * request (verb, resource type, resource link, URL path, body, extra
 * headers) and hands it to cosmos_exchange(), which runs the retry loop:
 * every attempt stamps a fresh x-ms-date and signature (the service refuses
 * dates more than 15 minutes old, and a retry after a long throttle must
 * not reuse an old one), performs, and classifies the answer as done,
 * retry-after-wait, or failed.  The response keeps the headers of interest
 * (etag, x-ms-continuation, x-ms-retry-after-ms).  No state survives a call
 * except the client, its connections and the counters.
 *
 * Wire facts and the stand-in's quirks are from protocols.md §6-§8. */
#include "cosmos.h"

#include "buf.h"
#include "http_client.h"
#include "log.h"
#include "xalloc.h"

#include <ctype.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#define API_VERSION "2018-12-31"
#define DEFAULT_TIMEOUT_MS 10000L
#define DEFAULT_RETRIES 6
/* Backoff for 408/5xx/transport failures: base * 2^attempt, capped. */
#define BACKOFF_BASE_MS 50L
#define BACKOFF_CAP_MS 2000L
/* A 429 without x-ms-retry-after-ms waits this long; the server's value is
 * capped so a bad header cannot park a worker. */
#define THROTTLE_DEFAULT_MS 100L
#define THROTTLE_CAP_MS 5000L
/* Query pages are at most 4 MB and items 2 MB; anything far larger is not
 * a Cosmos DB answer. */
#define MAX_RESPONSE_BYTES (32u << 20)
#define MAX_KEY_BYTES 256
#define MAX_NAME_LEN 255

struct pv_cosmos {
	struct pv_http_client *http;
	char *endpoint; /* without a trailing slash */
	char *database;
	char *container;
	unsigned char key[MAX_KEY_BYTES];
	size_t key_len;
	int max_retries;
	bool quirks;
	long last_status;
	unsigned long requests;
	pv_cosmos_observer *observe;
	void *observe_ctx;
	uint64_t rng;
};

/* One logical request; cosmos_exchange() may send it several times. */
struct req {
	const char *op;    /* for messages: "read", "create", ... */
	const char *verb;  /* GET POST PUT DELETE */
	const char *rtype; /* signed resource type: dbs, colls, docs */
	const char *link;  /* signed resource link, no leading slash */
	const char *path;  /* URL path after the endpoint, leading slash */
	const char *body;  /* NULL: none */
	size_t body_len;
	const char *content_type;
	const struct pv_http_header_list *headers; /* operation-specific headers */
};

/* The answer's headers the calls read (responses keep only these). */
static const char *const answer_headers[] = {"etag", "x-ms-continuation", "x-ms-retry-after-ms",
					     NULL};
#define COSMOS_RESPONSE                                                                            \
	{                                                                                          \
		.want = answer_headers                                                             \
	}

/* ------------------------------------------------------------------ */
/* Signing                                                             */
/* ------------------------------------------------------------------ */

static const char *const day_names[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
void pv_cosmos_strip_system(json_t *doc)
{
	const char *key;
	json_t *v;
	void *tmp;

	json_object_foreach_safe(doc, tmp, key, v)
	{
		if (key[0] == '_')
			json_object_del(doc, key);
	}
}

static const char *const month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void pv_cosmos_date(long long t, char out[30])
{
	time_t tt = (time_t)t;
	struct tm tm;

	/* Names by table: strftime's %a and %b follow the locale, and the
	 * header must be English. */
	gmtime_r(&tt, &tm);
	snprintf(out, 30, "%s, %02d %s %04d %02d:%02d:%02d GMT", day_names[tm.tm_wday % 7],
		 tm.tm_mday, month_names[tm.tm_mon % 12], (tm.tm_year + 1900) % 10000, tm.tm_hour,
		 tm.tm_min, tm.tm_sec);
}

static bool is_b64_char(unsigned char ch)
{
	return isalnum(ch) || ch == '+' || ch == '/';
}

/* Strict base64: whole quanta, the alphabet, '=' only as final padding.
 * EVP_DecodeBlock alone skips whitespace and keeps padding bytes. */
static enum pv_err key_decode(const char *b64, unsigned char *out, size_t outsize, size_t *outlen,
			      struct pv_error *err)
{
	size_t n = b64 ? strlen(b64) : 0, pad = 0;

	if (n == 0)
		return pv_error_set(err, PV_ERR_CONFIG, "cosmos: the master key is empty");
	if (n % 4 != 0)
		return pv_error_set(err, PV_ERR_CONFIG,
				    "cosmos: the master key is not base64 (length %zu is not a "
				    "multiple of 4)",
				    n);
	if (b64[n - 1] == '=')
		pad = b64[n - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < n - pad; i++)
		if (!is_b64_char((unsigned char)b64[i]))
			return pv_error_set(err, PV_ERR_CONFIG,
					    "cosmos: the master key is not base64 (bad character "
					    "at offset %zu)",
					    i);
	if (n / 4 * 3 > outsize || n > INT_MAX)
		return pv_error_set(err, PV_ERR_CONFIG, "cosmos: the master key is too long");
	int got = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)n);
	if (got < 0 || (size_t)got < pad)
		return pv_error_set(err, PV_ERR_CONFIG,
				    "cosmos: the master key is not base64 (OpenSSL "
				    "EVP_DecodeBlock failed)");
	*outlen = (size_t)got - pad;
	if (*outlen == 0)
		return pv_error_set(err, PV_ERR_CONFIG, "cosmos: the master key is empty");
	return PV_OK;
}

static void lower_into(struct pv_buf *b, const char *s)
{
	for (; *s; s++) {
		char ch = (char)tolower((unsigned char)*s);
		pv_buf_append(b, &ch, 1);
	}
}

/* Percent-encodes everything but RFC 3986 unreserved characters.  Returns
 * false (out holding a cut prefix) when out is too small. */
static bool url_encode(const char *s, char *out, size_t outsize)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	if (outsize == 0)
		return false;
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		bool plain = isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~';
		if (o + (plain ? 1 : 3) >= outsize) {
			out[o] = '\0';
			return false;
		}
		if (plain) {
			out[o++] = (char)ch;
		} else {
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
	return true;
}

static enum pv_err sign(const unsigned char *key, size_t key_len, const char *verb,
			const char *type, const char *link, const char *date, char *out,
			size_t outsize, struct pv_error *err)
{
	struct pv_buf text = PV_BUF_INIT;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	unsigned char sig[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
	char plain[sizeof sig + 32];
	enum pv_err rc = PV_OK;

	lower_into(&text, verb);
	pv_buf_puts(&text, "\n");
	lower_into(&text, type);
	pv_buf_puts(&text, "\n");
	pv_buf_puts(&text, link); /* the link keeps its case */
	pv_buf_puts(&text, "\n");
	lower_into(&text, date);
	pv_buf_puts(&text, "\n\n");
	if (!HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)text.data, text.len, mac,
		  &mac_len)) {
		rc = pv_error_set(err, PV_ERR_SYSTEM, "cosmos: OpenSSL HMAC-SHA256 failed");
		goto out;
	}
	EVP_EncodeBlock(sig, mac, (int)mac_len);
	snprintf(plain, sizeof plain, "type=master&ver=1.0&sig=%s", (const char *)sig);
	if (!url_encode(plain, out, outsize))
		rc = pv_error_set(err, PV_ERR_INVALID, "cosmos: authorization buffer too small");
out:
	pv_buf_free(&text);
	return rc;
}

enum pv_err pv_cosmos_auth_header(const char *key_b64, const char *verb, const char *type,
				  const char *link, const char *date, char *out, size_t outsize,
				  struct pv_error *err)
{
	unsigned char key[MAX_KEY_BYTES];
	size_t key_len;
	enum pv_err rc;

	if (outsize)
		out[0] = '\0';
	rc = key_decode(key_b64, key, sizeof key, &key_len, err);
	if (rc != PV_OK)
		return rc;
	rc = sign(key, key_len, verb, type, link ? link : "", date, out, outsize, err);
	OPENSSL_cleanse(key, sizeof key);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Validation                                                          */
/* ------------------------------------------------------------------ */

/* Ids and names travel unescaped in the URL path and in the signed link,
 * so they are limited to characters that need no escaping in either. */
static bool valid_name(const char *s)
{
	size_t n = 0;

	if (!s)
		return false;
	for (; s[n]; n++) {
		unsigned char ch = (unsigned char)s[n];
		if (!(isalnum(ch) || strchr("._~:@-", ch)))
			return false;
	}
	return n >= 1 && n <= MAX_NAME_LEN;
}

/* A value copied into a header (ETag, continuation, partition key) must not
 * be able to end the header or start another one. */
static bool valid_header_value(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* ------------------------------------------------------------------ */
/* HTTP exchange                                                       */
/* ------------------------------------------------------------------ */

/* The value of x-ms-retry-after-ms, or -1 when absent or not a number. */
static long retry_after_ms(const struct pv_http_answer *r)
{
	const char *v = pv_http_answer_get(r, "x-ms-retry-after-ms");
	char *end;
	long ms;

	if (!v)
		return -1;
	ms = strtol(v, &end, 10);
	return (end != v && *end == '\0' && ms >= 0) ? ms : -1;
}

/* The server's own words: "message" (or "code") of a JSON error body, else
 * the start of the body; escaped, since it is untrusted. */
static void server_message(const struct pv_http_answer *r, char *out, size_t outsize)
{
	const char *text = NULL;
	size_t len = 0;
	json_t *j = r->body.len ? json_loadb(r->body.data, r->body.len, 0, NULL) : NULL;

	if (json_is_object(j)) {
		const char *m = json_string_value(json_object_get(j, "message"));
		if (!m || !*m)
			m = json_string_value(json_object_get(j, "code"));
		if (m && *m) {
			text = m;
			len = strlen(m);
		}
	}
	if (!text && r->body.len) {
		text = r->body.data;
		len = r->body.len;
	}
	if (!text) {
		text = "(no message)";
		len = strlen(text);
	}
	if (len > 300)
		len = 300;
	pv_log_escape(out, outsize, text, len);
	json_decref(j);
}

/* HTTP status -> error code, for answers that are failures. */
static const struct {
	long status;
	enum pv_err code;
} status_map[] = {
	{400, PV_ERR_INVALID},     {401, PV_ERR_UNAUTHORIZED}, {403, PV_ERR_FORBIDDEN},
	{404, PV_ERR_NOT_FOUND},   {408, PV_ERR_TIMEOUT},      {409, PV_ERR_CONFLICT},
	{410, PV_ERR_GONE},        {412, PV_ERR_CONFLICT},     {413, PV_ERR_TOO_LARGE},
	{429, PV_ERR_UNAVAILABLE}, {502, PV_ERR_UNAVAILABLE},  {503, PV_ERR_UNAVAILABLE},
	{504, PV_ERR_UNAVAILABLE},
};

static enum pv_err status_code(long status)
{
	for (size_t i = 0; i < sizeof status_map / sizeof status_map[0]; i++)
		if (status_map[i].status == status)
			return status_map[i].code;
	return PV_ERR_HTTP;
}

static uint64_t next_random(struct pv_cosmos *c)
{
	/* xorshift64: jitter only, not security. */
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	return c->rng;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0)
		;
}

static long backoff_ms(struct pv_cosmos *c, int attempt)
{
	long ms = BACKOFF_BASE_MS;

	for (int i = 0; i < attempt && ms < BACKOFF_CAP_MS; i++)
		ms *= 2;
	if (ms > BACKOFF_CAP_MS)
		ms = BACKOFF_CAP_MS;
	/* Between half and all of it, so that clients do not retry in step. */
	return ms / 2 + (long)(next_random(c) % (uint64_t)(ms / 2 + 1));
}

/* One attempt: a fresh date and signature, then the request.  PV_OK: an
 * answer (any status) is in r.  *sign_failed: the signature could not be
 * made (err says why). */
static enum pv_err attempt_once(struct pv_cosmos *c, const struct req *q, struct pv_http_answer *r,
				bool *sign_failed, struct pv_error *err)
{
	char date[30], auth[256];
	struct pv_http_header_list h = {0};
	struct pv_http_call rq;
	enum pv_err code;
	char *url;

	*sign_failed = false;
	pv_cosmos_date((long long)time(NULL), date);
	code = sign(c->key, c->key_len, q->verb, q->rtype, q->link, date, auth, sizeof auth, err);
	if (code != PV_OK) {
		*sign_failed = true;
		return code;
	}
	pv_http_header_list_add(&h, "x-ms-date", date);
	pv_http_header_list_add(&h, "authorization", auth);
	pv_http_header_list_add(&h, "x-ms-version", API_VERSION);
	pv_http_header_list_add(&h, "Accept", "application/json");
	pv_http_header_list_add(&h, "Content-Type",
				q->content_type ? q->content_type : "application/json");
	pv_http_header_list_append(&h, q->headers);
	url = pv_xasprintf("%s%s", c->endpoint, q->path);
	rq = (struct pv_http_call){.method = q->verb,
				   .url = url,
				   .headers = &h,
				   .body = q->body,
				   .body_len = q->body ? q->body_len : 0};
	c->requests++;
	code = pv_http_client_run(c->http, &rq, r, err);
	pv_http_header_list_clear(&h);
	free(url);
	return code;
}

/* What to do after an attempt. */
enum verdict { DONE, RETRY, FAIL };

/* Sends q until an answer that is not retried, or the retries run out.
 * PV_OK means an HTTP answer is in r (any status; the caller judges it);
 * an error means no usable answer, with err naming libcurl's cause. */
static enum pv_err cosmos_exchange(struct pv_cosmos *c, const struct req *q, const char *target,
				   struct pv_http_answer *r, bool *may_have_landed,
				   struct pv_error *err)
{
	*may_have_landed = false;
	for (int attempt = 0;; attempt++) {
		bool sign_failed, last = attempt >= c->max_retries;
		struct pv_error e;
		enum pv_err code = attempt_once(c, q, r, &sign_failed, &e);
		long wait = 0;

		if (sign_failed)
			return pv_error_set(err, code, "%s", e.msg);
		c->last_status = r->status;
		if (c->observe)
			c->observe(c->observe_ctx, r->status, attempt);
		if (code != PV_OK) {
			/* Transient: no connection, or it broke before an answer (the
			 * stand-in closes every connection, so a reused one may be
			 * dead).  A timeout is not retried: callers see a bounded wait. */
			bool transient =
				r->failure == PV_HTTP_UNSENT || r->failure == PV_HTTP_BROKEN;
			/* The HTTP client's message names the method, URL and cause. */
			const char *why = strncmp(e.msg, "cosmos: ", 8) == 0 ? e.msg + 8 : e.msg;

			if (r->too_large)
				return pv_error_set(err, code, "cosmos %s %s: %s", q->op, target,
						    why);
			if (!transient || last)
				return pv_error_set(err, code,
						    "cosmos %s %s: %s, no HTTP status, after %d "
						    "attempt%s",
						    q->op, target, why, attempt + 1,
						    attempt ? "s" : "");
			if (r->failure == PV_HTTP_BROKEN)
				*may_have_landed = true;
			wait = backoff_ms(c, attempt);
			pv_log_warnx("cosmos", "%s %s: %s; retrying in %ld ms", q->op, target, why,
				     wait);
		} else if (r->status == 429) {
			long asked = retry_after_ms(r);

			if (last)
				return PV_OK;
			wait = asked >= 0 ? asked : THROTTLE_DEFAULT_MS;
			if (wait > THROTTLE_CAP_MS)
				wait = THROTTLE_CAP_MS;
			pv_log_debug("cosmos", "%s %s: throttled (429); retrying in %ld ms", q->op,
				     target, wait);
		} else if (r->status == 408 || r->status == 449 || r->status >= 500) {
			if (last)
				return PV_OK;
			*may_have_landed = true;
			wait = backoff_ms(c, attempt);
			pv_log_warnx("cosmos", "%s %s: HTTP %ld; retrying in %ld ms", q->op, target,
				     r->status, wait);
		} else {
			return PV_OK;
		}
		if (!pv_http_client_is_hooked(c->http)) /* a replayed answer needs no wait */
			sleep_ms(wait);
	}
}

/* Runs q and judges the status: PV_OK for the expected ones (ok1, ok2;
 * 0 = unused), else an error naming the status and the server's words. */
static enum pv_err cosmos_call(struct pv_cosmos *c, const struct req *q, const char *target,
			       long ok1, long ok2, struct pv_http_answer *r, struct pv_error *err)
{
	bool landed;
	char said[512];
	enum pv_err rc = cosmos_exchange(c, q, target, r, &landed, err);

	if (rc != PV_OK)
		return rc;
	if (r->status == ok1 || (ok2 && r->status == ok2))
		return PV_OK;
	server_message(r, said, sizeof said);
	rc = status_code(r->status);
	return pv_error_set(err, rc, "cosmos %s %s: HTTP %ld%s: %s", q->op, target, r->status,
			    r->status == 409 && landed ? " after a retried attempt that may have "
							 "been applied"
			    : r->status == 412 ? " (If-Match did not match the current ETag)"
			    : r->status == 429 ? " (still throttled after the retries)"
					       : "",
			    said);
}

static enum pv_err parse_body(const struct req *q, const char *target,
			      const struct pv_http_answer *r, json_t **out, struct pv_error *err)
{
	json_error_t je;
	json_t *j = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, &je);

	if (!j) {
		pv_log_escape_in_place(je.text, sizeof je.text); /* quotes the answer */
		return pv_error_set(err, PV_ERR_PROTOCOL,
				    "cosmos %s %s: HTTP %ld answer is not JSON: jansson: %s "
				    "(line %d)",
				    q->op, target, r->status, je.text, je.line);
	}
	if (!json_is_object(j)) {
		json_decref(j);
		return pv_error_set(err, PV_ERR_PROTOCOL,
				    "cosmos %s %s: HTTP %ld answer is not a JSON object", q->op,
				    target, r->status);
	}
	*out = j;
	return PV_OK;
}

/* Appends "name: value" to *list. */
static void add_header(struct pv_http_header_list *list, const char *name, const char *value)
{
	pv_http_header_list_add(list, name, value);
}

/* x-ms-documentdb-partitionkey: ["value"], JSON-escaped (ASCII only, so
 * no byte of the value can break the header). */
static void add_partition_header(struct pv_http_header_list *list, const char *pk)
{
	json_t *a = json_pack("[s]", pk);
	char *s = a ? json_dumps(a, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;

	if (!s)
		pv_oom("partition key header", strlen(pk));
	add_header(list, "x-ms-documentdb-partitionkey", s);
	free(s);
	json_decref(a);
}

/* ------------------------------------------------------------------ */
/* Open / close                                                        */
/* ------------------------------------------------------------------ */

static enum pv_err check_partition_path(const char *target, json_t *coll, struct pv_error *err)
{
	json_t *paths = json_object_get(json_object_get(coll, "partitionKey"), "paths");
	const char *p = json_string_value(json_array_get(paths, 0));

	if (!p || strcmp(p, PV_COSMOS_PARTITION_PATH) != 0 || json_array_size(paths) != 1) {
		/* The path is the server's text: escaped like the rest of an answer. */
		pv_error_set(err, PV_ERR_CONFIG,
			     "cosmos: container %s is not partitioned on %s (found %s)", target,
			     PV_COSMOS_PARTITION_PATH, p ? p : "no partition key");
		pv_log_escape_in_place(err->msg, sizeof err->msg);
		return err->code;
	}
	return PV_OK;
}

static enum pv_err create_if_missing(struct pv_cosmos *c, struct pv_error *err)
{
	struct pv_http_answer r = COSMOS_RESPONSE;
	char *body = NULL, *link = NULL, *path = NULL;
	json_t *j;
	enum pv_err rc;

	j = json_pack("{ss}", "id", c->database);
	if (!j || !(body = json_dumps(j, JSON_COMPACT)))
		pv_oom("cosmos database body", 0);
	json_decref(j);
	struct req qd = {.op = "create database",
			 .verb = "POST",
			 .rtype = "dbs",
			 .link = "",
			 .path = "/dbs",
			 .body = body,
			 .body_len = strlen(body)};
	rc = cosmos_call(c, &qd, c->database, 201, 409, &r, err);
	free(body);
	body = NULL;
	if (rc != PV_OK)
		goto out;

	j = json_pack("{ss s{s[s] ss si}}", "id", c->container, "partitionKey", "paths",
		      PV_COSMOS_PARTITION_PATH, "kind", "Hash", "version", 2);
	if (!j || !(body = json_dumps(j, JSON_COMPACT)))
		pv_oom("cosmos container body", 0);
	json_decref(j);
	link = pv_xasprintf("dbs/%s", c->database);
	path = pv_xasprintf("/dbs/%s/colls", c->database);
	struct req qc = {.op = "create container",
			 .verb = "POST",
			 .rtype = "colls",
			 .link = link,
			 .path = path,
			 .body = body,
			 .body_len = strlen(body)};
	rc = cosmos_call(c, &qc, c->container, 201, 409, &r, err);
out:
	free(body);
	free(link);
	free(path);
	pv_http_answer_clear(&r);
	return rc;
}

enum pv_err pv_cosmos_ping(struct pv_cosmos *c, struct pv_error *err)
{
	struct pv_http_answer r = COSMOS_RESPONSE;
	char *link = pv_xasprintf("dbs/%s/colls/%s", c->database, c->container);
	char *path = pv_xasprintf("/%s", link);
	struct req q = {.op = "read container",
			.verb = "GET",
			.rtype = "colls",
			.link = link,
			.path = path};
	json_t *coll = NULL;
	enum pv_err rc = cosmos_call(c, &q, link, 200, 0, &r, err);

	if (rc == PV_OK)
		rc = parse_body(&q, link, &r, &coll, err);
	if (rc == PV_OK)
		rc = check_partition_path(link, coll, err);
	json_decref(coll);
	pv_http_answer_clear(&r);
	free(link);
	free(path);
	return rc;
}

enum pv_err pv_cosmos_delete_container(struct pv_cosmos *c, struct pv_error *err)
{
	struct pv_http_answer r = COSMOS_RESPONSE;
	char *link = pv_xasprintf("dbs/%s/colls/%s", c->database, c->container);
	char *path = pv_xasprintf("/%s", link);
	struct req q = {.op = "delete container",
			.verb = "DELETE",
			.rtype = "colls",
			.link = link,
			.path = path};
	enum pv_err rc = cosmos_call(c, &q, link, 204, 200, &r, err);

	pv_http_answer_clear(&r);
	free(link);
	free(path);
	return rc;
}

void pv_cosmos_close(struct pv_cosmos *c)
{
	if (!c)
		return;
	pv_http_client_close(c->http);
	OPENSSL_cleanse(c->key, sizeof c->key);
	free(c->endpoint);
	free(c->database);
	free(c->container);
	free(c);
}

enum pv_err pv_cosmos_open(const struct pv_cosmos_options *opt, struct pv_cosmos **out,
			   struct pv_error *err)
{
	struct pv_http_client_options http_opts;
	struct pv_cosmos *c;
	enum pv_err rc;
	size_t n;

	*out = NULL;
	if (!opt->endpoint || (strncmp(opt->endpoint, "https://", 8) != 0 &&
			       strncmp(opt->endpoint, "http://", 7) != 0))
		return pv_error_set(err, PV_ERR_CONFIG,
				    "cosmos: endpoint '%s' is not an http:// or https:// URL",
				    opt->endpoint ? opt->endpoint : "");
	if (!valid_header_value(opt->endpoint) || strchr(opt->endpoint, ' '))
		return pv_error_set(err, PV_ERR_CONFIG,
				    "cosmos: endpoint holds a space or a "
				    "control character");
	if (!valid_name(opt->database))
		return pv_error_set(err, PV_ERR_CONFIG,
				    "cosmos: database name must be 1-%d characters of "
				    "[A-Za-z0-9._~:@-]",
				    MAX_NAME_LEN);
	if (!valid_name(opt->container))
		return pv_error_set(err, PV_ERR_CONFIG,
				    "cosmos: container name must be 1-%d characters of "
				    "[A-Za-z0-9._~:@-]",
				    MAX_NAME_LEN);
	c = pv_xcalloc(1, sizeof *c);
	rc = key_decode(opt->key, c->key, sizeof c->key, &c->key_len, err);
	if (rc != PV_OK)
		goto fail;
	c->endpoint = pv_xstrdup(opt->endpoint);
	n = strlen(c->endpoint);
	while (n > 0 && c->endpoint[n - 1] == '/')
		c->endpoint[--n] = '\0';
	c->database = pv_xstrdup(opt->database);
	c->container = pv_xstrdup(opt->container);
	c->observe = opt->observe;
	c->observe_ctx = opt->observe_ctx;
	c->max_retries = opt->max_retries < 0    ? 0
			 : opt->max_retries == 0 ? DEFAULT_RETRIES
						 : opt->max_retries;
	c->quirks = opt->emulator_quirks;
	c->rng = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)c << 16) ^ 0x9e3779b97f4a7c15ull;
	http_opts = (struct pv_http_client_options){
		.who = "cosmos",
		.timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : DEFAULT_TIMEOUT_MS,
		.ca_file = opt->ca_file,
		.max_body = MAX_RESPONSE_BYTES,
	};
	if ((rc = pv_http_client_open(&http_opts, &c->http, err)) != PV_OK)
		goto fail;
	if (opt->transport)
		pv_http_client_set_transport(c->http, opt->transport->fn, opt->transport->ctx);
	if (opt->create_if_missing && (rc = create_if_missing(c, err)) != PV_OK)
		goto fail;
	/* Checked here once: the stand-in answers a write into a missing
	 * container with 500, not 404 (protocols.md §8), so later failures
	 * would not say what is wrong.  Its GET of a container does say 404. */
	if ((rc = pv_cosmos_ping(c, err)) != PV_OK) {
		if (rc == PV_ERR_NOT_FOUND && !opt->create_if_missing)
			pv_error_prefix(err,
					"cosmos: container %s/%s is missing and "
					"create_if_missing is off",
					c->database, c->container);
		goto fail;
	}
	*out = c;
	return PV_OK;
fail:
	pv_cosmos_close(c);
	return rc;
}

void pv_cosmos_set_observer(struct pv_cosmos *c, pv_cosmos_observer *fn, void *ctx)
{
	c->observe = fn;
	c->observe_ctx = ctx;
}

long pv_cosmos_last_status(const struct pv_cosmos *c)
{
	return c->last_status;
}

unsigned long pv_cosmos_request_count(const struct pv_cosmos *c)
{
	return c->requests;
}

/* ------------------------------------------------------------------ */
/* Documents                                                           */
/* ------------------------------------------------------------------ */

static enum pv_err check_pk(const char *pk, struct pv_error *err)
{
	if (!pk || !*pk || strlen(pk) > 1024)
		return pv_error_set(err, PV_ERR_INVALID,
				    "cosmos: the partition key value must be 1-1024 bytes");
	return PV_OK;
}

static enum pv_err check_id(const char *id, struct pv_error *err)
{
	if (!valid_name(id))
		return pv_error_set(err, PV_ERR_INVALID,
				    "cosmos: document id must be 1-%d characters of "
				    "[A-Za-z0-9._~:@-]",
				    MAX_NAME_LEN);
	return PV_OK;
}

static enum pv_err check_if_match(const char *etag, struct pv_error *err)
{
	if (etag && !valid_header_value(etag))
		return pv_error_set(err, PV_ERR_INVALID,
				    "cosmos: an ETag must be non-empty without control characters");
	return PV_OK;
}

/* Hands the caller the stored document and its ETag. */
static enum pv_err take_result(const struct req *q, const char *target, struct pv_http_answer *r,
			       json_t **stored, char **etag, struct pv_error *err)
{
	json_t *doc = NULL;
	enum pv_err rc;

	if (stored) {
		rc = parse_body(q, target, r, &doc, err);
		if (rc != PV_OK)
			return rc;
		*stored = doc;
	}
	if (etag) {
		*etag = pv_http_answer_take(r, "etag");
	}
	return PV_OK;
}

enum pv_err pv_cosmos_read(struct pv_cosmos *c, const char *pk, const char *id, json_t **doc,
			   char **etag, struct pv_error *err)
{
	struct pv_http_answer r = COSMOS_RESPONSE;
	struct pv_http_header_list h = {0};
	char *link, *path;
	enum pv_err rc;

	*doc = NULL;
	if (etag)
		*etag = NULL;
	if ((rc = check_pk(pk, err)) != PV_OK || (rc = check_id(id, err)) != PV_OK)
		return rc;
	link = pv_xasprintf("dbs/%s/colls/%s/docs/%s", c->database, c->container, id);
	path = pv_xasprintf("/%s", link);
	add_partition_header(&h, pk);
	/* protocols.md §8: the stand-in answers 500 ("Cannot read properties of
	 * undefined") for a missing document unless this header is on the GET;
	 * with it, 404.  The real service documents it for queries only, so it
	 * is sent only when configured for the stand-in. */
	if (c->quirks)
		add_header(&h, "x-ms-documentdb-query-enablecrosspartition", "true");
	struct req q = {.op = "read",
			.verb = "GET",
			.rtype = "docs",
			.link = link,
			.path = path,
			.headers = &h};
	rc = cosmos_call(c, &q, link, 200, 0, &r, err);
	if (rc == PV_OK)
		rc = take_result(&q, link, &r, doc, etag, err);
	pv_http_answer_clear(&r);
	pv_http_header_list_clear(&h);
	free(link);
	free(path);
	return rc;
}

/* Serialises doc after checking its id and partition value; sets *id. */
static enum pv_err doc_body(json_t *doc, const char *pk, const char **id, char **body,
			    struct pv_error *err)
{
	const char *eid;
	enum pv_err rc;

	if (!json_is_object(doc))
		return pv_error_set(err, PV_ERR_INVALID,
				    "cosmos: a document must be a JSON object");
	*id = json_string_value(json_object_get(doc, "id"));
	if ((rc = check_pk(pk, err)) != PV_OK || (rc = check_id(*id, err)) != PV_OK)
		return rc;
	/* The real service refuses (400) a body whose partition value differs
	 * from the header; the stand-in files it under the body's.  Say so here. */
	eid = json_string_value(json_object_get(doc, &PV_COSMOS_PARTITION_PATH[1]));
	if (!eid || strcmp(eid, pk) != 0)
		return pv_error_set(err, PV_ERR_INVALID,
				    "cosmos: document %s: its %s must be the string %s", *id,
				    &PV_COSMOS_PARTITION_PATH[1], pk);
	/* Always serialised here, never passed through: the stand-in answers
	 * malformed JSON with 500 rather than 400 (protocols.md §8). */
	*body = json_dumps(doc, JSON_COMPACT);
	if (!*body)
		return pv_error_set(err, PV_ERR_JSON,
				    "cosmos: document %s: jansson json_dumps failed", *id);
	return PV_OK;
}

/* create / upsert (POST) and replace (PUT). */
static enum pv_err write_doc(struct pv_cosmos *c, const char *op, const char *pk, json_t *doc,
			     const char *if_match, json_t **stored, char **etag,
			     struct pv_error *err)
{
	struct pv_http_answer r = COSMOS_RESPONSE;
	struct pv_http_header_list h = {0};
	bool put = strcmp(op, "replace") == 0, upsert = strcmp(op, "upsert") == 0;
	char *body = NULL, *link = NULL, *path = NULL, *target = NULL;
	const char *id = NULL;
	enum pv_err rc;

	if (stored)
		*stored = NULL;
	if (etag)
		*etag = NULL;
	if ((rc = check_if_match(if_match, err)) != PV_OK)
		return rc;
	if ((rc = doc_body(doc, pk, &id, &body, err)) != PV_OK)
		return rc;
	target = pv_xasprintf("dbs/%s/colls/%s/docs/%s", c->database, c->container, id);
	if (put) {
		link = pv_xstrdup(target);
		path = pv_xasprintf("/%s", link);
	} else {
		link = pv_xasprintf("dbs/%s/colls/%s", c->database, c->container);
		path = pv_xasprintf("/%s/docs", link);
	}
	/* Create ignores the header on the stand-in but the real service needs
	 * it; upsert and replace need it on both (protocols.md §7, §8). */
	add_partition_header(&h, pk);
	/* "true", not "1": the stand-in takes only the word (protocols.md §8). */
	if (upsert)
		add_header(&h, "x-ms-documentdb-is-upsert", "true");
	/* Verbatim: the stand-in's ETags are bare UUIDs and it compares If-Match
	 * byte for byte, the real service's are quoted (protocols.md §7, §8);
	 * adding or removing quotes would break one or the other. */
	if (if_match)
		add_header(&h, "If-Match", if_match);
	struct req q = {.op = op,
			.verb = put ? "PUT" : "POST",
			.rtype = "docs",
			.link = link,
			.path = path,
			.body = body,
			.body_len = strlen(body),
			.headers = &h};
	rc = cosmos_call(c, &q, target, put ? 200 : 201, upsert ? 200 : 0, &r, err);
	if (rc == PV_OK)
		rc = take_result(&q, target, &r, stored, etag, err);
	pv_http_answer_clear(&r);
	pv_http_header_list_clear(&h);
	free(body);
	free(link);
	free(path);
	free(target);
	return rc;
}

enum pv_err pv_cosmos_create(struct pv_cosmos *c, const char *pk, json_t *doc, json_t **stored,
			     char **etag, struct pv_error *err)
{
	return write_doc(c, "create", pk, doc, NULL, stored, etag, err);
}

enum pv_err pv_cosmos_upsert(struct pv_cosmos *c, const char *pk, json_t *doc, const char *if_match,
			     json_t **stored, char **etag, struct pv_error *err)
{
	return write_doc(c, "upsert", pk, doc, if_match, stored, etag, err);
}

enum pv_err pv_cosmos_replace(struct pv_cosmos *c, const char *pk, json_t *doc,
			      const char *if_match, json_t **stored, char **etag,
			      struct pv_error *err)
{
	return write_doc(c, "replace", pk, doc, if_match, stored, etag, err);
}

enum pv_err pv_cosmos_delete(struct pv_cosmos *c, const char *pk, const char *id,
			     const char *if_match, struct pv_error *err)
{
	struct pv_http_answer r = COSMOS_RESPONSE;
	struct pv_http_header_list h = {0};
	char *link, *path;
	enum pv_err rc;

	if ((rc = check_pk(pk, err)) != PV_OK || (rc = check_id(id, err)) != PV_OK ||
	    (rc = check_if_match(if_match, err)) != PV_OK)
		return rc;
	link = pv_xasprintf("dbs/%s/colls/%s/docs/%s", c->database, c->container, id);
	path = pv_xasprintf("/%s", link);
	add_partition_header(&h, pk);
	if (if_match)
		add_header(&h, "If-Match", if_match);
	struct req q = {.op = "delete",
			.verb = "DELETE",
			.rtype = "docs",
			.link = link,
			.path = path,
			.headers = &h};
	rc = cosmos_call(c, &q, link, 204, 200, &r, err);
	pv_http_answer_clear(&r);
	pv_http_header_list_clear(&h);
	free(link);
	free(path);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Queries                                                             */
/* ------------------------------------------------------------------ */

enum pv_err pv_cosmos_query(struct pv_cosmos *c, const char *sql, json_t *params, const char *pk,
			    int max_items, const char *continuation, json_t **documents,
			    char **next, struct pv_error *err)
{
	struct pv_http_answer r = COSMOS_RESPONSE;
	struct pv_http_header_list h = {0};
	json_t *body_j = NULL, *plist, *page = NULL, *docs;
	char *body = NULL, *link, *path, num[24];
	const char *name;
	json_t *value;
	enum pv_err rc;

	*documents = NULL;
	*next = NULL;
	if (!sql || !*sql)
		return pv_error_set(err, PV_ERR_INVALID, "cosmos query: empty SQL");
	if (params && !json_is_object(params))
		return pv_error_set(err, PV_ERR_INVALID,
				    "cosmos query: parameters must be a JSON object");
	if (pk && (rc = check_pk(pk, err)) != PV_OK)
		return rc;
	if (continuation && !valid_header_value(continuation))
		return pv_error_set(err, PV_ERR_INVALID,
				    "cosmos query: the continuation token is empty or holds "
				    "control characters");

	plist = json_array();
	if (!plist)
		pv_oom("cosmos query parameters", 0);
	json_object_foreach(params, name, value)
	{
		json_t *p = json_pack("{sssO}", "name", name, "value", value);
		if (!p || json_array_append_new(plist, p) != 0)
			pv_oom("cosmos query parameter", strlen(name));
	}
	body_j = json_pack("{sssO}", "query", sql, "parameters", plist);
	json_decref(plist);
	if (!body_j || !(body = json_dumps(body_j, JSON_COMPACT)))
		pv_oom("cosmos query body", strlen(sql));
	json_decref(body_j);

	link = pv_xasprintf("dbs/%s/colls/%s", c->database, c->container);
	path = pv_xasprintf("/%s/docs", link);
	add_header(&h, "x-ms-documentdb-isquery", "True");
	if (pk)
		add_partition_header(&h, pk);
	else
		add_header(&h, "x-ms-documentdb-query-enablecrosspartition", "True");
	if (max_items > 0) {
		snprintf(num, sizeof num, "%d", max_items);
		add_header(&h, "x-ms-max-item-count", num);
	}
	if (continuation)
		add_header(&h, "x-ms-continuation", continuation);
	struct req q = {.op = "query",
			.verb = "POST",
			.rtype = "docs",
			.link = link,
			.path = path,
			.body = body,
			.body_len = strlen(body),
			.content_type = "application/query+json",
			.headers = &h};
	rc = cosmos_call(c, &q, link, 200, 0, &r, err);
	if (rc == PV_OK)
		rc = parse_body(&q, link, &r, &page, err);
	if (rc == PV_OK) {
		docs = json_object_get(page, "Documents");
		if (!json_is_array(docs)) {
			rc = pv_error_set(err, PV_ERR_PROTOCOL,
					  "cosmos query %s: answer has no Documents array", link);
		} else {
			*documents = json_incref(docs);
			/* Untrusted: it goes back out in a header. */
			const char *token = pv_http_answer_get(&r, "x-ms-continuation");

			if (token && valid_header_value(token)) {
				*next = pv_http_answer_take(&r, "x-ms-continuation");
			} else if (token && *token) {
				json_decref(*documents);
				*documents = NULL;
				rc = pv_error_set(err, PV_ERR_PROTOCOL,
						  "cosmos query %s: continuation token holds "
						  "control characters",
						  link);
			}
		}
	}
	json_decref(page);
	pv_http_answer_clear(&r);
	pv_http_header_list_clear(&h);
	free(body);
	free(link);
	free(path);
	return rc;
}
