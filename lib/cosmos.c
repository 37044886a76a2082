/* Azure Cosmos DB REST client (see cosmos.h for the contract).
 *
 * Design: a client is one libcurl easy handle plus the decoded master key.
 * Each call builds one request (verb, resource type, resource link, URL
 * path, body, extra headers) and hands it to cosmos_exchange(), which runs
 * the retry loop: every attempt resets the handle (curl_easy_reset keeps the
 * live connections and the TLS session cache), stamps a fresh x-ms-date and
 * signature (the service refuses dates more than 15 minutes old, and a retry
 * after a long throttle must not reuse an old one), performs, and classifies
 * the answer as done, retry-after-wait, or failed.  Response headers of
 * interest (etag, x-ms-continuation, x-ms-retry-after-ms) are captured by the
 * header callback and reset at each new status line.  No state survives a
 * call except the handle, its connections and the counters.
 *
 * Wire facts and the stand-in's quirks are from protocols.md §6-§8. */
#include "cosmos.h"

#include "buf.h"
#include "log.h"
#include "xalloc.h"

#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
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
	CURL *curl;
	char *endpoint; /* without a trailing slash */
	char *database;
	char *container;
	char *ca_file; /* NULL: system store */
	unsigned char key[MAX_KEY_BYTES];
	size_t key_len;
	long timeout_ms;
	int max_retries;
	bool quirks;
	struct pv_cosmos_transport transport; /* fn NULL: libcurl */
	long last_status;
	unsigned long requests;
	pv_cosmos_observer *observe;
	void *observe_ctx;
	uint64_t rng;
	char curl_err[CURL_ERROR_SIZE];
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
	struct curl_slist *headers; /* operation-specific headers */
};

struct pv_cosmos_answer {
	long status;
	struct pv_buf body;
	char *etag;
	char *continuation;
	long retry_after_ms; /* -1: none */
	bool too_large;
};

/* ------------------------------------------------------------------ */
/* Signing                                                             */
/* ------------------------------------------------------------------ */

static const char *const day_names[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
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

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
	struct pv_cosmos_answer *r = user;
	size_t n = size * nmemb;

	if (r->body.len + n > MAX_RESPONSE_BYTES) {
		r->too_large = true;
		return 0; /* libcurl stops with CURLE_WRITE_ERROR */
	}
	pv_buf_append(&r->body, data, n);
	return n;
}

static char *header_value(const char *line, size_t len, const char *name)
{
	size_t nl = strlen(name);

	if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
		return NULL;
	const char *v = line + nl + 1, *end = line + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	return pv_xstrndup(v, (size_t)(end - v));
}

static void resp_clear_headers(struct pv_cosmos_answer *r)
{
	free(r->etag);
	free(r->continuation);
	r->etag = NULL;
	r->continuation = NULL;
	r->retry_after_ms = -1;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *user)
{
	struct pv_cosmos_answer *r = user;
	size_t n = size * nmemb;
	char *v;

	/* A new status line (after a 100 Continue, say) starts a new header set. */
	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		resp_clear_headers(r);
		return n;
	}
	if ((v = header_value(line, n, "etag"))) {
		free(r->etag);
		r->etag = v;
	} else if ((v = header_value(line, n, "x-ms-continuation"))) {
		free(r->continuation);
		r->continuation = v;
	} else if ((v = header_value(line, n, "x-ms-retry-after-ms"))) {
		char *end;
		long ms = strtol(v, &end, 10);
		r->retry_after_ms = (end != v && *end == '\0' && ms >= 0) ? ms : -1;
		free(v);
	}
	return n;
}

void pv_cosmos_answer_status(struct pv_cosmos_answer *a, long status)
{
	a->status = status;
}

void pv_cosmos_answer_header(struct pv_cosmos_answer *a, const char *line, size_t len)
{
	on_header((char *)line, 1, len, a);
}

bool pv_cosmos_answer_body(struct pv_cosmos_answer *a, const char *data, size_t len)
{
	return on_body((char *)data, 1, len, a) == len;
}

static void resp_free(struct pv_cosmos_answer *r)
{
	resp_clear_headers(r);
	pv_buf_free(&r->body);
}

/* The server's own words: "message" (or "code") of a JSON error body, else
 * the start of the body; escaped, since it is untrusted. */
static void server_message(const struct pv_cosmos_answer *r, char *out, size_t outsize)
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

/* libcurl failures worth another attempt: the request did not reach the
 * server, or the connection broke before an answer (the stand-in closes
 * every connection, so a reused one may be dead). */
static const CURLcode curl_transient[] = {
	CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_CONNECT, CURLE_SEND_ERROR,
	CURLE_RECV_ERROR,           CURLE_GOT_NOTHING,     CURLE_PARTIAL_FILE,
};
/* Of those, the ones where the request cannot have been sent. */
static const CURLcode curl_unsent[] = {CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_CONNECT};

static bool curl_in(CURLcode cc, const CURLcode *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (set[i] == cc)
			return true;
	return false;
}

static enum pv_err curl_code(CURLcode cc)
{
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT: return PV_ERR_TIMEOUT;
	case CURLE_OUT_OF_MEMORY: return PV_ERR_NOMEM;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_SSL_CACERT_BADFILE: return PV_ERR_CONFIG;
	default: return PV_ERR_UNAVAILABLE;
	}
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

/* Appends a formatted header line to *list. */
static void add_line(struct curl_slist **list, const char *line)
{
	struct curl_slist *n = curl_slist_append(*list, line);

	if (!n)
		pv_oom("libcurl header list", strlen(line));
	*list = n;
}

/* One attempt.  Returns the libcurl result; r->status is 0 without answer.
 * A signing failure is reported through *sign_rc. */
static CURLcode attempt_once(struct pv_cosmos *c, const struct req *q, struct pv_cosmos_answer *r,
			     struct pv_error *err, enum pv_err *sign_rc)
{
	char date[30], auth[256], line[320];
	struct curl_slist *h = NULL;
	CURLcode cc;
	char *url;

	resp_clear_headers(r);
	pv_buf_reset(&r->body);
	r->status = 0;
	r->too_large = false;
	c->curl_err[0] = '\0';

	pv_cosmos_date((long long)time(NULL), date);
	*sign_rc =
		sign(c->key, c->key_len, q->verb, q->rtype, q->link, date, auth, sizeof auth, err);
	if (*sign_rc != PV_OK)
		return CURLE_OK;
	if (c->transport.fn) {
		struct pv_error terr;

		c->requests++;
		if (c->transport.fn(c->transport.ctx, q->verb, q->path, r, &terr) == PV_OK)
			return r->too_large ? CURLE_WRITE_ERROR : CURLE_OK;
		r->status = 0;
		snprintf(c->curl_err, sizeof c->curl_err, "%.200s", terr.msg);
		return CURLE_RECV_ERROR;
	}
	snprintf(line, sizeof line, "x-ms-date: %s", date);
	add_line(&h, line);
	snprintf(line, sizeof line, "authorization: %s", auth);
	add_line(&h, line);
	add_line(&h, "x-ms-version: " API_VERSION);
	add_line(&h, "Accept: application/json");
	/* No "Expect: 100-continue" round trip before large bodies. */
	add_line(&h, "Expect:");
	snprintf(line, sizeof line, "Content-Type: %s",
		 q->content_type ? q->content_type : "application/json");
	add_line(&h, line);
	for (const struct curl_slist *s = q->headers; s; s = s->next)
		add_line(&h, s->data);
	url = pv_xasprintf("%s%s", c->endpoint, q->path);

	/* Keeps live connections, the DNS and TLS session caches. */
	curl_easy_reset(c->curl);
#define TRY(opt, val)                                                                              \
	do {                                                                                       \
		if ((cc = curl_easy_setopt(c->curl, opt, val)) != CURLE_OK)                        \
			goto out;                                                                  \
	} while (0)
	TRY(CURLOPT_URL, url);
	TRY(CURLOPT_ERRORBUFFER, c->curl_err);
	TRY(CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS timeouts */
	TRY(CURLOPT_HTTPHEADER, h);
	TRY(CURLOPT_WRITEFUNCTION, on_body);
	TRY(CURLOPT_WRITEDATA, r);
	TRY(CURLOPT_HEADERFUNCTION, on_header);
	TRY(CURLOPT_HEADERDATA, r);
	TRY(CURLOPT_TIMEOUT_MS, c->timeout_ms);
	TRY(CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms);
	TRY(CURLOPT_FOLLOWLOCATION, 0L);
	TRY(CURLOPT_SSL_VERIFYPEER, 1L);
	TRY(CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->ca_file)
		TRY(CURLOPT_CAINFO, c->ca_file);
	if (strcmp(q->verb, "GET") == 0) {
		TRY(CURLOPT_HTTPGET, 1L);
	} else {
		if (strcmp(q->verb, "POST") != 0)
			TRY(CURLOPT_CUSTOMREQUEST, q->verb);
		if (q->body || strcmp(q->verb, "POST") == 0) {
			TRY(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(q->body ? q->body_len : 0));
			TRY(CURLOPT_POSTFIELDS, q->body ? q->body : "");
		}
	}
#undef TRY
	c->requests++;
	cc = curl_easy_perform(c->curl);
	if (cc != CURLE_OK ||
	    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &r->status) != CURLE_OK)
		r->status = 0;
out:
	/* The handle points at url and h: drop those pointers before freeing. */
	curl_easy_reset(c->curl);
	curl_slist_free_all(h);
	free(url);
	return cc;
}

/* What to do after an attempt. */
enum verdict { DONE, RETRY, FAIL };

/* Sends q until an answer that is not retried, or the retries run out.
 * PV_OK means an HTTP answer is in r (any status; the caller judges it);
 * an error means no usable answer, with err naming libcurl's cause. */
static enum pv_err cosmos_exchange(struct pv_cosmos *c, const struct req *q, const char *target,
				   struct pv_cosmos_answer *r, bool *may_have_landed,
				   struct pv_error *err)
{
	*may_have_landed = false;
	for (int attempt = 0;; attempt++) {
		enum pv_err sign_rc = PV_OK;
		CURLcode cc = attempt_once(c, q, r, err, &sign_rc);
		bool last = attempt >= c->max_retries;
		long wait = 0;

		if (sign_rc != PV_OK)
			return sign_rc;
		c->last_status = r->status;
		if (c->observe)
			c->observe(c->observe_ctx, r->status, attempt);
		if (cc != CURLE_OK) {
			bool transient = curl_in(cc, curl_transient,
						 sizeof curl_transient / sizeof curl_transient[0]);
			if (r->too_large)
				return pv_error_set(err, PV_ERR_TOO_LARGE,
						    "cosmos %s %s: answer over %u bytes", q->op,
						    target, MAX_RESPONSE_BYTES);
			if (!transient || last)
				return pv_error_set(
					err, curl_code(cc),
					"cosmos %s %s: libcurl: %s (%s), no HTTP status, "
					"after %d attempt%s",
					q->op, target, curl_easy_strerror(cc),
					c->curl_err[0] ? c->curl_err : "no detail", attempt + 1,
					attempt ? "s" : "");
			if (!curl_in(cc, curl_unsent, sizeof curl_unsent / sizeof curl_unsent[0]))
				*may_have_landed = true;
			wait = backoff_ms(c, attempt);
			pv_log_warnx("cosmos", "%s %s: libcurl: %s (%s); retrying in %ld ms", q->op,
				     target, curl_easy_strerror(cc), c->curl_err, wait);
		} else if (r->status == 429) {
			if (last)
				return PV_OK;
			wait = r->retry_after_ms >= 0 ? r->retry_after_ms : THROTTLE_DEFAULT_MS;
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
		if (!c->transport.fn) /* a replayed answer needs no wait */
			sleep_ms(wait);
	}
}

/* Runs q and judges the status: PV_OK for the expected ones (ok1, ok2;
 * 0 = unused), else an error naming the status and the server's words. */
static enum pv_err cosmos_call(struct pv_cosmos *c, const struct req *q, const char *target,
			       long ok1, long ok2, struct pv_cosmos_answer *r, struct pv_error *err)
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
			      const struct pv_cosmos_answer *r, json_t **out, struct pv_error *err)
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
static void add_header(struct curl_slist **list, const char *name, const char *value)
{
	char *line = pv_xasprintf("%s: %s", name, value);

	add_line(list, line);
	free(line);
}

/* x-ms-documentdb-partitionkey: ["value"], JSON-escaped (ASCII only, so
 * no byte of the value can break the header). */
static void add_partition_header(struct curl_slist **list, const char *pk)
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
	struct pv_cosmos_answer r = {.retry_after_ms = -1};
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
	resp_free(&r);
	return rc;
}

enum pv_err pv_cosmos_ping(struct pv_cosmos *c, struct pv_error *err)
{
	struct pv_cosmos_answer r = {.retry_after_ms = -1};
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
	resp_free(&r);
	free(link);
	free(path);
	return rc;
}

void pv_cosmos_close(struct pv_cosmos *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	OPENSSL_cleanse(c->key, sizeof c->key);
	free(c->endpoint);
	free(c->database);
	free(c->container);
	free(c->ca_file);
	free(c);
}

enum pv_err pv_cosmos_open(const struct pv_cosmos_options *opt, struct pv_cosmos **out,
			   struct pv_error *err)
{
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
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK)
		return pv_error_set(err, PV_ERR_SYSTEM, "cosmos: libcurl: curl_global_init: %s",
				    curl_easy_strerror(curl_init_rc));

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
	c->ca_file = opt->ca_file && *opt->ca_file ? pv_xstrdup(opt->ca_file) : NULL;
	c->timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : DEFAULT_TIMEOUT_MS;
	c->max_retries = opt->max_retries < 0    ? 0
			 : opt->max_retries == 0 ? DEFAULT_RETRIES
						 : opt->max_retries;
	c->quirks = opt->emulator_quirks;
	if (opt->transport)
		c->transport = *opt->transport;
	c->rng = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)c << 16) ^ 0x9e3779b97f4a7c15ull;
	if (!(c->curl = curl_easy_init())) {
		rc = pv_error_set(err, PV_ERR_SYSTEM, "cosmos: libcurl: curl_easy_init failed");
		goto fail;
	}
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
static enum pv_err take_result(const struct req *q, const char *target, struct pv_cosmos_answer *r,
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
		*etag = r->etag;
		r->etag = NULL;
	}
	return PV_OK;
}

enum pv_err pv_cosmos_read(struct pv_cosmos *c, const char *pk, const char *id, json_t **doc,
			   char **etag, struct pv_error *err)
{
	struct pv_cosmos_answer r = {.retry_after_ms = -1};
	struct curl_slist *h = NULL;
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
			.headers = h};
	rc = cosmos_call(c, &q, link, 200, 0, &r, err);
	if (rc == PV_OK)
		rc = take_result(&q, link, &r, doc, etag, err);
	resp_free(&r);
	curl_slist_free_all(h);
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
	struct pv_cosmos_answer r = {.retry_after_ms = -1};
	struct curl_slist *h = NULL;
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
			.headers = h};
	rc = cosmos_call(c, &q, target, put ? 200 : 201, upsert ? 200 : 0, &r, err);
	if (rc == PV_OK)
		rc = take_result(&q, target, &r, stored, etag, err);
	resp_free(&r);
	curl_slist_free_all(h);
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
	struct pv_cosmos_answer r = {.retry_after_ms = -1};
	struct curl_slist *h = NULL;
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
			.headers = h};
	rc = cosmos_call(c, &q, link, 204, 200, &r, err);
	resp_free(&r);
	curl_slist_free_all(h);
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
	struct pv_cosmos_answer r = {.retry_after_ms = -1};
	struct curl_slist *h = NULL;
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
			.headers = h};
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
			if (r.continuation && valid_header_value(r.continuation)) {
				*next = r.continuation;
				r.continuation = NULL;
			} else if (r.continuation && *r.continuation) {
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
	resp_free(&r);
	curl_slist_free_all(h);
	free(body);
	free(link);
	free(path);
	return rc;
}
