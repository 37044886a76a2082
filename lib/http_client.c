/* The shared HTTP client (see http_client.h).
 *
 * State: one easy handle for single requests, reset and configured again
 * for each (curl_easy_reset keeps its connection cache, DNS and TLS session
 * caches); for concurrent requests a multi handle, made when first used,
 * and a pool of in_flight easy handles on it, which share the multi
 * handle's connection cache.  A transfer's header list lives in its slot
 * until the transfer is done, since libcurl does not copy it. */
#include "http_client.h"

#include "log.h"
#include "xalloc.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTTP_POLL_MS 1000

/* A transfer's libcurl state: the handle and what must live until done. */
struct slot {
	CURL *c;
	struct curl_slist *hdrs;
	struct pv_http_exchange *x; /* the exchange running on it; NULL: free */
	char errbuf[CURL_ERROR_SIZE];
};

struct pv_http_client {
	char *who;
	long timeout_ms;
	long connect_timeout_ms;
	char *ca_file;
	char *username;
	char *password;
	bool http1_1;
	size_t max_body;
	size_t in_flight;
	struct slot single;
	CURLM *multi;
	struct slot *pool; /* in_flight slots on multi */
	pv_http_transport_fn *transport;
	void *transport_ctx;
};

/* ---- libcurl failures ---------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

enum pv_err pv_http_client_global_init(struct pv_error *err)
{
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK)
		return pv_error_set(err, PV_ERR_SYSTEM, "libcurl: curl_global_init: %s",
				    curl_easy_strerror(curl_init_rc));
	return PV_OK;
}

/* libcurl results worth their own code; anything else is PV_ERR_HTTP and
 * PV_HTTP_FAILED. */
static const struct {
	CURLcode rc;
	enum pv_err code;
	enum pv_http_failure failure;
} curl_table[] = {
	{CURLE_COULDNT_RESOLVE_HOST, PV_ERR_UNAVAILABLE, PV_HTTP_UNSENT},
	{CURLE_COULDNT_CONNECT, PV_ERR_UNAVAILABLE, PV_HTTP_UNSENT},
	{CURLE_SEND_ERROR, PV_ERR_UNAVAILABLE, PV_HTTP_BROKEN},
	{CURLE_RECV_ERROR, PV_ERR_UNAVAILABLE, PV_HTTP_BROKEN},
	{CURLE_GOT_NOTHING, PV_ERR_UNAVAILABLE, PV_HTTP_BROKEN},
	{CURLE_PARTIAL_FILE, PV_ERR_UNAVAILABLE, PV_HTTP_BROKEN},
	{CURLE_HTTP2, PV_ERR_UNAVAILABLE, PV_HTTP_BROKEN},
	{CURLE_HTTP2_STREAM, PV_ERR_UNAVAILABLE, PV_HTTP_BROKEN},
	{CURLE_OPERATION_TIMEDOUT, PV_ERR_TIMEOUT, PV_HTTP_TIMED_OUT},
	{CURLE_SSL_CONNECT_ERROR, PV_ERR_UNAVAILABLE, PV_HTTP_HANDSHAKE},
	{CURLE_PEER_FAILED_VERIFICATION, PV_ERR_UNAVAILABLE, PV_HTTP_FAILED},
	{CURLE_SSL_CACERT_BADFILE, PV_ERR_CONFIG, PV_HTTP_FAILED},
	{CURLE_SSL_CERTPROBLEM, PV_ERR_CONFIG, PV_HTTP_FAILED},
	{CURLE_URL_MALFORMAT, PV_ERR_CONFIG, PV_HTTP_FAILED},
	{CURLE_UNSUPPORTED_PROTOCOL, PV_ERR_CONFIG, PV_HTTP_FAILED},
	{CURLE_OUT_OF_MEMORY, PV_ERR_NOMEM, PV_HTTP_FAILED},
	{CURLE_WRITE_ERROR, PV_ERR_TOO_LARGE, PV_HTTP_FAILED},
};

enum pv_err pv_http_client_curl_error(struct pv_error *err, int curl_rc, const char *errbuf,
				      enum pv_http_failure *failure, const char *fmt, ...)
{
	enum pv_err code = PV_ERR_HTTP;
	enum pv_http_failure how = PV_HTTP_FAILED;
	char context[256];
	va_list ap;

	for (size_t i = 0; i < sizeof curl_table / sizeof curl_table[0]; i++) {
		if ((int)curl_table[i].rc == curl_rc) {
			code = curl_table[i].code;
			how = curl_table[i].failure;
			break;
		}
	}
	if (failure)
		*failure = how;
	va_start(ap, fmt);
	vsnprintf(context, sizeof context, fmt, ap);
	va_end(ap);
	/* The error buffer says it in more detail when it says anything. */
	return pv_error_set(err, code, "%s: libcurl: %s", context,
			    errbuf && errbuf[0] ? errbuf : curl_easy_strerror((CURLcode)curl_rc));
}

/* ---- header lists --------------------------------------------------------- */

static struct curl_slist *slist_add(struct curl_slist *list, const char *line)
{
	struct curl_slist *n = curl_slist_append(list, line);

	if (!n)
		pv_oom("curl_slist_append", strlen(line));
	return n;
}

void pv_http_header_list_add(struct pv_http_header_list *hs, const char *name, const char *value)
{
	char *line = pv_xasprintf("%s: %s", name, value);

	hs->list = slist_add(hs->list, line);
	free(line);
}

void pv_http_header_list_append(struct pv_http_header_list *hs,
				const struct pv_http_header_list *from)
{
	for (const struct curl_slist *l = from ? from->list : NULL; l; l = l->next)
		hs->list = slist_add(hs->list, l->data);
}

void pv_http_header_list_clear(struct pv_http_header_list *hs)
{
	curl_slist_free_all(hs->list);
	hs->list = NULL;
}

/* ---- responses ------------------------------------------------------------ */

void pv_http_answer_init(struct pv_http_answer *r, const char *const *want)
{
	memset(r, 0, sizeof *r);
	r->want = want;
}

static void forget_headers(struct pv_http_answer *r)
{
	for (size_t i = 0; i < PV_HTTP_WANT_MAX; i++) {
		free(r->got[i]);
		r->got[i] = NULL;
	}
	r->reason[0] = '\0';
}

void pv_http_answer_clear(struct pv_http_answer *r)
{
	forget_headers(r);
	pv_buf_free(&r->body);
	r->status = 0;
	r->too_large = false;
	r->failure = PV_HTTP_ANSWERED;
}

static int want_index(const struct pv_http_answer *r, const char *name, size_t len)
{
	for (size_t i = 0; r->want && i < PV_HTTP_WANT_MAX && r->want[i]; i++)
		if (strlen(r->want[i]) == len && strncasecmp(r->want[i], name, len) == 0)
			return (int)i;
	return -1;
}

const char *pv_http_answer_get(const struct pv_http_answer *r, const char *name)
{
	int i = want_index(r, name, strlen(name));

	return i < 0 ? NULL : r->got[i];
}

char *pv_http_answer_take(struct pv_http_answer *r, const char *name)
{
	int i = want_index(r, name, strlen(name));
	char *v;

	if (i < 0)
		return NULL;
	v = r->got[i];
	r->got[i] = NULL;
	return v;
}

void pv_http_answer_status(struct pv_http_answer *r, long status)
{
	r->status = status;
}

bool pv_http_client_body_add(struct pv_buf *body, size_t max, const char *data, size_t len)
{
	if (len > max || body->len > max - len)
		return false;
	pv_buf_append(body, data, len);
	return true;
}

static void trim(const char **s, size_t *len)
{
	while (*len && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*len)--;
	}
	while (*len && ((*s)[*len - 1] == '\r' || (*s)[*len - 1] == '\n' || (*s)[*len - 1] == ' ' ||
			(*s)[*len - 1] == '\t'))
		(*len)--;
}

bool pv_http_client_header_split(const char *line, size_t len, size_t *name_len, const char **value,
				 size_t *value_len)
{
	const char *colon = memchr(line, ':', len);

	if (!colon)
		return false;
	*name_len = (size_t)(colon - line);
	*value = colon + 1;
	*value_len = len - *name_len - 1;
	trim(value, value_len);
	return true;
}

void pv_http_answer_header(struct pv_http_answer *r, const char *line, size_t len)
{
	const char *v;
	size_t vlen, name_len;
	int i;

	if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
		/* A new status line (after 100 Continue or a redirect): what
		 * the previous answer said is gone. */
		const char *sp = memchr(line, ' ', len);

		forget_headers(r);
		if (sp)
			sp = memchr(sp + 1, ' ', len - (size_t)(sp + 1 - line));
		if (sp) {
			v = sp + 1;
			vlen = len - (size_t)(v - line);
			trim(&v, &vlen);
			/* Untrusted: it ends up in messages and logs. */
			pv_log_escape(r->reason, sizeof r->reason, v, vlen);
		}
		return;
	}
	if (!pv_http_client_header_split(line, len, &name_len, &v, &vlen) ||
	    (i = want_index(r, line, name_len)) < 0)
		return;
	free(r->got[i]);
	r->got[i] = pv_xstrndup(v, vlen);
}

bool pv_http_answer_body(struct pv_http_answer *r, const char *data, size_t len)
{
	if (!pv_http_client_body_add(&r->body, r->max_body, data, len))
		r->too_large = true;
	return !r->too_large;
}

/* ---- libcurl callbacks ---------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	/* 0 makes libcurl stop with CURLE_WRITE_ERROR. */
	return pv_http_answer_body(arg, data, size * nmemb) ? size * nmemb : 0;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *arg)
{
	pv_http_answer_header(arg, line, size * nmemb);
	return size * nmemb;
}

/* ---- the client ----------------------------------------------------------- */

enum pv_err pv_http_client_open(const struct pv_http_client_options *opts,
				struct pv_http_client **out, struct pv_error *err)
{
	struct pv_http_client *h;
	enum pv_err code;

	*out = NULL;
	if ((code = pv_http_client_global_init(err)) != PV_OK) {
		pv_error_prefix(err, "%s", opts->who);
		return code;
	}
	h = pv_xcalloc(1, sizeof *h);
	h->single.c = curl_easy_init();
	if (!h->single.c) {
		free(h);
		return pv_error_set(err, PV_ERR_NOMEM, "%s: libcurl: curl_easy_init failed",
				    opts->who);
	}
	h->who = pv_xstrdup(opts->who);
	h->timeout_ms = opts->timeout_ms;
	h->connect_timeout_ms =
		opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : opts->timeout_ms;
	h->ca_file = opts->ca_file && *opts->ca_file ? pv_xstrdup(opts->ca_file) : NULL;
	h->username = opts->username && *opts->username ? pv_xstrdup(opts->username) : NULL;
	h->password = opts->password ? pv_xstrdup(opts->password) : NULL;
	h->http1_1 = opts->http1_1;
	h->max_body = opts->max_body;
	h->in_flight = opts->in_flight > 0 ? opts->in_flight : 1;
	*out = h;
	return PV_OK;
}

void pv_http_client_close(struct pv_http_client *h)
{
	if (!h)
		return;
	curl_easy_cleanup(h->single.c);
	curl_slist_free_all(h->single.hdrs);
	for (size_t i = 0; h->pool && i < h->in_flight; i++) {
		if (h->pool[i].c) {
			if (h->pool[i].x)
				curl_multi_remove_handle(h->multi, h->pool[i].c);
			curl_easy_cleanup(h->pool[i].c);
		}
		curl_slist_free_all(h->pool[i].hdrs);
	}
	free(h->pool);
	if (h->multi)
		curl_multi_cleanup(h->multi);
	free(h->who);
	free(h->ca_file);
	free(h->username);
	pv_free_secret(h->password);
	free(h);
}

void pv_http_client_set_transport(struct pv_http_client *h, pv_http_transport_fn *fn, void *ctx)
{
	h->transport = fn;
	h->transport_ctx = ctx;
}

bool pv_http_client_is_hooked(const struct pv_http_client *h)
{
	return h->transport != NULL;
}

/* A fresh start for an attempt: status, headers, body and failure go. */
static void response_start(const struct pv_http_client *h, struct pv_http_answer *resp)
{
	pv_http_answer_clear(resp);
	resp->max_body = h->max_body;
}

/* Sets s->c up for rq, the answer going into resp.  The handle is reset
 * first, which keeps its connection cache (or the multi handle's). */
static enum pv_err slot_setup(struct pv_http_client *h, struct slot *s,
			      const struct pv_http_call *rq, struct pv_http_answer *resp,
			      struct pv_error *err)
{
	CURL *c = s->c;
	CURLcode rc = CURLE_OK;
	bool get = strcmp(rq->method, "GET") == 0, post = strcmp(rq->method, "POST") == 0;

	response_start(h, resp);
	curl_slist_free_all(s->hdrs);
	s->hdrs = NULL;
	curl_easy_reset(c);
	s->errbuf[0] = '\0';
	for (const struct curl_slist *l = rq->headers ? rq->headers->list : NULL; l; l = l->next)
		s->hdrs = slist_add(s->hdrs, l->data);
	/* No "Expect: 100-continue" round trip before large bodies. */
	s->hdrs = slist_add(s->hdrs, "Expect:");

#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (rc == CURLE_OK)                                                                \
			rc = curl_easy_setopt(c, opt, val);                                        \
	} while (0)
	SET(CURLOPT_URL, rq->url);
	SET(CURLOPT_ERRORBUFFER, s->errbuf);
	SET(CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS timeouts */
#if LIBCURL_VERSION_NUM >= 0x075500
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
	SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	SET(CURLOPT_HTTPHEADER, s->hdrs);
	SET(CURLOPT_USERAGENT, "photovote/" PACKAGE_VERSION);
	if (h->http1_1)
		SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SET(CURLOPT_TIMEOUT_MS, h->timeout_ms + rq->extra_timeout_ms);
	SET(CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms);
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	if (h->username) {
		SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		SET(CURLOPT_USERNAME, h->username);
		SET(CURLOPT_PASSWORD, h->password ? h->password : "");
	}
	if (h->ca_file)
		SET(CURLOPT_CAINFO, h->ca_file);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, resp);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, resp);
	if (get) {
		SET(CURLOPT_HTTPGET, 1L);
	} else {
		if (!post)
			SET(CURLOPT_CUSTOMREQUEST, rq->method);
		if (post || rq->body) {
			SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(rq->body ? rq->body_len : 0));
			SET(CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
		}
	}
#undef SET
	if (rc != CURLE_OK) {
		resp->failure = PV_HTTP_FAILED;
		return pv_error_set(err, rc == CURLE_OUT_OF_MEMORY ? PV_ERR_NOMEM : PV_ERR_CONFIG,
				    "%s: %s %s: libcurl refused an option: %s", h->who, rq->method,
				    rq->url, curl_easy_strerror(rc));
	}
	return PV_OK;
}

static enum pv_err too_large(const struct pv_http_client *h, const struct pv_http_call *rq,
			     struct pv_http_answer *resp, struct pv_error *err)
{
	resp->status = 0;
	resp->failure = PV_HTTP_FAILED;
	return pv_error_set(err, PV_ERR_TOO_LARGE, "%s: %s %s: answer larger than %zu bytes",
			    h->who, rq->method, rq->url, h->max_body);
}

/* What a finished transfer says: PV_OK with the answer's status in resp,
 * or the failure, named once. */
static enum pv_err slot_result(struct pv_http_client *h, struct slot *s, CURLcode rc,
			       const struct pv_http_call *rq, struct pv_http_answer *resp,
			       struct pv_error *err)
{
	if (rc != CURLE_OK) {
		if (resp->too_large)
			return too_large(h, rq, resp, err);
		resp->status = 0;
		return pv_http_client_curl_error(err, rc, s->errbuf, &resp->failure, "%s: %s %s",
						 h->who, rq->method, rq->url);
	}
	rc = curl_easy_getinfo(s->c, CURLINFO_RESPONSE_CODE, &resp->status);
	if (rc != CURLE_OK || resp->status <= 0) {
		resp->status = 0;
		resp->failure = PV_HTTP_FAILED;
		return pv_error_set(err, PV_ERR_PROTOCOL, "%s: %s %s: no HTTP status: libcurl: %s",
				    h->who, rq->method, rq->url, curl_easy_strerror(rc));
	}
	return PV_OK;
}

/* The exchange through the transport stand-in instead of libcurl. */
static enum pv_err hooked(struct pv_http_client *h, const struct pv_http_call *rq,
			  struct pv_http_answer *resp, struct pv_error *err)
{
	struct pv_error terr;
	enum pv_err code;

	response_start(h, resp);
	code = h->transport(h->transport_ctx, rq->method, rq->url, resp, &terr);
	if (code != PV_OK) {
		resp->status = 0;
		resp->failure = code == PV_ERR_UNAVAILABLE ? PV_HTTP_BROKEN : PV_HTTP_FAILED;
		return pv_error_set(err, code, "%s: %s %s: %s", h->who, rq->method, rq->url,
				    terr.msg);
	}
	if (resp->too_large)
		return too_large(h, rq, resp, err);
	return PV_OK;
}

enum pv_err pv_http_client_run(struct pv_http_client *h, const struct pv_http_call *rq,
			       struct pv_http_answer *resp, struct pv_error *err)
{
	struct slot *s = &h->single;
	enum pv_err code;

	if (h->transport)
		return hooked(h, rq, resp, err);
	code = slot_setup(h, s, rq, resp, err);
	if (code == PV_OK)
		code = slot_result(h, s, curl_easy_perform(s->c), rq, resp, err);
	/* The handle points at the header list: drop it before freeing. */
	curl_easy_setopt(s->c, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(s->hdrs);
	s->hdrs = NULL;
	return code;
}

/* ---- concurrently ---------------------------------------------------------- */

/* The multi handle and its pool of easy handles, made when first used. */
static enum pv_err multi_ready(struct pv_http_client *h, struct pv_error *err)
{
	if (h->multi)
		return PV_OK;
	h->pool = pv_xcalloc(h->in_flight, sizeof *h->pool);
	for (size_t i = 0; i < h->in_flight; i++) {
		h->pool[i].c = curl_easy_init();
		if (!h->pool[i].c)
			goto fail;
	}
	h->multi = curl_multi_init();
	if (h->multi)
		return PV_OK;
fail:
	for (size_t i = 0; i < h->in_flight; i++)
		if (h->pool[i].c)
			curl_easy_cleanup(h->pool[i].c);
	free(h->pool);
	h->pool = NULL;
	return pv_error_set(err, PV_ERR_NOMEM, "%s: libcurl: no memory for a multi handle", h->who);
}

/* Ends the transfer in slot s with what libcurl said. */
static void slot_done(struct pv_http_client *h, struct slot *s, CURLcode rc)
{
	struct pv_http_exchange *x = s->x;

	x->code = slot_result(h, s, rc, x->rq, x->resp, &x->err);
	curl_multi_remove_handle(h->multi, s->c);
	curl_slist_free_all(s->hdrs);
	s->hdrs = NULL;
	s->x = NULL;
}

/* Puts x on a free slot of the multi handle; false when that failed (x
 * holds the error). */
static bool slot_start(struct pv_http_client *h, struct slot *s, struct pv_http_exchange *x)
{
	CURLMcode mrc;

	x->code = slot_setup(h, s, x->rq, x->resp, &x->err);
	if (x->code != PV_OK)
		return false;
	mrc = curl_multi_add_handle(h->multi, s->c);
	if (mrc != CURLM_OK) {
		x->resp->failure = PV_HTTP_UNSENT;
		x->code = pv_error_set(&x->err,
				       mrc == CURLM_OUT_OF_MEMORY ? PV_ERR_NOMEM : PV_ERR_HTTP,
				       "%s: %s %s: libcurl refused a transfer: %s", h->who,
				       x->rq->method, x->rq->url, curl_multi_strerror(mrc));
		return false;
	}
	s->x = x;
	return true;
}

/* The multi handle itself failed: so did every transfer on it, and the
 * requests not started yet fail with it. */
static void fail_all(struct pv_http_client *h, struct pv_http_exchange *const *xs, size_t next,
		     size_t n, CURLMcode mrc)
{
	for (size_t s = 0; s < h->in_flight; s++) {
		struct pv_http_exchange *x = h->pool[s].x;

		if (!x)
			continue;
		slot_done(h, &h->pool[s], CURLE_OK);
		x->resp->status = 0;
		x->resp->failure = PV_HTTP_FAILED;
		x->code = pv_error_set(&x->err, PV_ERR_HTTP, "%s: %s %s: libcurl: %s", h->who,
				       x->rq->method, x->rq->url, curl_multi_strerror(mrc));
	}
	for (; next < n; next++) {
		response_start(h, xs[next]->resp);
		xs[next]->resp->failure = PV_HTTP_FAILED;
		xs[next]->code = pv_error_set(&xs[next]->err, PV_ERR_HTTP, "%s: %s %s: libcurl: %s",
					      h->who, xs[next]->rq->method, xs[next]->rq->url,
					      curl_multi_strerror(mrc));
	}
}

/* The pool's slot running easy handle c (NULL: none). */
static struct slot *slot_of(struct pv_http_client *h, const CURL *c)
{
	for (size_t s = 0; s < h->in_flight; s++)
		if (h->pool[s].c == c && h->pool[s].x)
			return &h->pool[s];
	return NULL;
}

void pv_http_client_run_many(struct pv_http_client *h, struct pv_http_exchange *const *xs, size_t n)
{
	struct pv_error err;
	size_t next = 0, busy = 0;

	if (h->transport) {
		for (size_t i = 0; i < n; i++)
			xs[i]->code = hooked(h, xs[i]->rq, xs[i]->resp, &xs[i]->err);
		return;
	}
	if (multi_ready(h, &err) != PV_OK) {
		for (size_t i = 0; i < n; i++) {
			response_start(h, xs[i]->resp);
			xs[i]->resp->failure = PV_HTTP_FAILED;
			xs[i]->code = err.code;
			xs[i]->err = err;
		}
		return;
	}
	while (next < n || busy > 0) {
		CURLMcode mrc;
		CURLMsg *msg;
		int still = 0, queued;

		for (size_t s = 0; s < h->in_flight && next < n; s++) {
			if (!h->pool[s].x && slot_start(h, &h->pool[s], xs[next++]))
				busy++;
		}
		mrc = curl_multi_perform(h->multi, &still);
		while (mrc == CURLM_OK && (msg = curl_multi_info_read(h->multi, &queued))) {
			struct slot *s =
				msg->msg == CURLMSG_DONE ? slot_of(h, msg->easy_handle) : NULL;

			if (!s)
				continue;
			slot_done(h, s, msg->data.result);
			busy--;
		}
		if (mrc == CURLM_OK && busy > 0 && still > 0)
			mrc = curl_multi_poll(h->multi, NULL, 0, HTTP_POLL_MS, NULL);
		if (mrc != CURLM_OK) {
			fail_all(h, xs, next, n, mrc);
			break;
		}
	}
}
