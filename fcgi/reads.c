/* GET routes over the read model (see reads.h). */
#include "reads.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "options.h"
#include "cosmos.h"
#include "id.h"
#include "log.h"
#include "pgutil.h"
#include "projection.h"
#include "xalloc.h"

#define RETRY_AFTER_SECONDS 5
#define LIST_DEFAULT 20
#define LIST_MAX 100
/* Longest continuation token accepted from a client (base64url). */
#define CONTINUATION_MAX 4096
/* Empty pages followed before answering (the real service may page
 * partition by partition and return empty pages with a token). */
#define LIST_EMPTY_PAGES 8

struct pv_reads {
	bool enabled;
	char *endpoint, *key, *database, *container, *ca_file;
	char *feed_suffix; /* ":<database>/<container>", the end of the projector's feed name */
	struct pv_cosmos_options opt;
};

struct pv_reads *pv_reads_new(const struct pv_config *cfg)
{
	struct pv_reads *r = pv_xcalloc(1, sizeof *r);
	struct pv_cosmos_options o;

	pv_cosmos_options_from_config(cfg, &o);
	r->enabled = o.key && *o.key;
	r->endpoint = pv_xstrdup(o.endpoint ? o.endpoint : "");
	r->key = pv_xstrdup(o.key ? o.key : "");
	r->database = pv_xstrdup(o.database ? o.database : "");
	r->container = pv_xstrdup(o.container ? o.container : "");
	r->ca_file = pv_xstrdup(o.ca_file ? o.ca_file : "");
	r->feed_suffix = pv_xasprintf(":%s/%s", r->database, r->container);
	r->opt = o;
	r->opt.endpoint = r->endpoint;
	r->opt.key = r->key;
	r->opt.database = r->database;
	r->opt.container = r->container;
	r->opt.ca_file = r->ca_file;
	r->opt.emulator_quirks = pv_config_bool(cfg, "cosmos", "emulator_quirks");
	/* A request thread should not wait long for a read model that is down. */
	r->opt.max_retries = 2;
	if (!r->enabled)
		pv_log_info("http", "no [cosmos] key: the read model is disabled");
	return r;
}

void pv_reads_free(struct pv_reads *r)
{
	if (!r)
		return;
	free(r->endpoint);
	free(r->key);
	free(r->database);
	free(r->container);
	free(r->ca_file);
	free(r->feed_suffix);
	free(r);
}

void pv_reads_thread_clear(struct pv_api_thread *t)
{
	pv_cosmos_close(t->cosmos);
	t->cosmos = NULL;
}

/* The thread's client, opened when first needed. */
static enum pv_err thread_cosmos(struct pv_api_thread *t, struct pv_error *err)
{
	struct pv_reads *r = t->api->reads;

	if (!r || !r->enabled)
		return pv_error_set(err, PV_ERR_CONFIG, "the read model is not configured");
	if (t->cosmos)
		return PV_OK;
	return pv_cosmos_open(&r->opt, &t->cosmos, err);
}

/* Answers a failure of the read model: 404 or 503. */
static void read_failed(struct pv_http_response *resp, enum pv_err rc, const char *what,
			const struct pv_error *err)
{
	if (rc == PV_ERR_NOT_FOUND) {
		pv_http_error(resp, 404, "not_found", "no %s with this id", what);
		return;
	}
	pv_log_warnx("http", "503 read_model_unavailable: %s", err->msg);
	pv_http_header(resp, "Retry-After", "%d", RETRY_AFTER_SECONDS);
	pv_http_error(resp, 503, "read_model_unavailable",
		      "the read model is unavailable, try again later");
}

/* True (and a 503 projection_parked answer) when the projector parked the
 * election (projection_parked, sql/007): its documents are stale or
 * missing, so no answer comes from them.  The projector's feed name ends
 * with this read model's database and container.  When PostgreSQL does
 * not answer, the documents are served (logged): the read model does not
 * depend on it otherwise. */
static bool parked(struct pv_api_thread *t, const char *eid, struct pv_http_response *resp)
{
	const char *params[2] = {eid, t->api->reads->feed_suffix};
	struct pv_error err;
	PGresult *res = NULL;
	bool is = false;

	if (pv_api_thread_pg(t, &err) != PV_OK ||
	    pv_pg_exec(t->pg, "read the parked elections",
		       "SELECT status, reason FROM projection_parked WHERE election_id = $1"
		       " AND right(name, length($2)) = $2 ORDER BY parked_at LIMIT 1",
		       2, params, &res, &err) != PV_OK) {
		pv_log_warnx("http", "election %s: cannot tell whether it is parked: %s", eid,
			     err.msg);
		return false;
	}
	if (PQntuples(res) == 1) {
		is = true;
		pv_http_header(resp, "Retry-After", "%d", RETRY_AFTER_SECONDS);
		pv_http_error(resp, 503, "projection_parked",
			      "the projector parked this election (status %s): %s; its documents "
			      "are not served until an operator fixes the cause and rebuilds it",
			      PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	return is;
}

/* True if an If-None-Match header names etag (weak comparison, RFC 9110
 * 13.1.2: a W/ prefix is ignored; "*" matches any). */
static bool etag_matches(const char *header, const char *etag)
{
	size_t elen = strlen(etag);
	const char *p = header;

	if (!header)
		return false;
	while (*p) {
		const char *start;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return true;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		start = p;
		while (*p && *p != ',')
			p++;
		while (p > start && (p[-1] == ' ' || p[-1] == '\t'))
			p--;
		if ((size_t)(p - start) == elen && strncmp(start, etag, elen) == 0)
			return true;
		while (*p && *p != ',')
			p++;
	}
	return false;
}

/* Sets the ETag; true (and a 304 answer) when the client has it. */
static bool not_modified(const struct pv_http_request *req, struct pv_http_response *resp,
			 int64_t version, const char *what, bool set)
{
	char etag[64];

	snprintf(etag, sizeof etag, "\"%lld-%s\"", (long long)version, what);
	if (!etag_matches(req->if_none_match, etag)) {
		if (set)
			pv_http_header(resp, "ETag", "%s", etag);
		return false;
	}
	pv_http_header(resp, "ETag", "%s", etag);
	resp->status = 304;
	return true;
}

void pv_reads_election(struct pv_api_thread *t, const char *eid, const char *user, bool admin,
		       const struct pv_http_request *req, struct pv_http_response *resp)
{
	struct pv_error err;
	json_t *head = NULL, *body = NULL;
	const char *owner, *what;
	int64_t version;
	enum pv_err rc;
	bool full_view;

	if (!pv_ulid_valid(eid)) {
		pv_http_error(resp, 400, "invalid_id", "election_id in the path is not a ULID");
		return;
	}
	rc = thread_cosmos(t, &err);
	if (rc == PV_OK && parked(t, eid, resp))
		return;
	if (rc == PV_OK)
		rc = pv_projection_read_head(t->cosmos, eid, &head, &err);
	if (rc != PV_OK) {
		read_failed(resp, rc, "election", &err);
		return;
	}
	owner = pv_projection_head_owner(head);
	full_view = admin || (owner && strcasecmp(owner, user) == 0);
	what = full_view ? "owner" : "public";
	version = pv_projection_head_version(head);
	if (not_modified(req, resp, version, what, false))
		goto out;
	/* Candidates (and voters) live in parts: the version may move on
	 * while they are read. */
	rc = pv_projection_answer(t->cosmos, eid, head,
				  full_view ? PV_ANSWER_OWNER : PV_ANSWER_PUBLIC, &body, &version,
				  &err);
	if (rc != PV_OK) {
		read_failed(resp, rc, "election", &err);
		goto out;
	}
	if (!not_modified(req, resp, version, what, true))
		pv_http_json(resp, 200, body);
out:
	json_decref(body);
	json_decref(head);
}

void pv_reads_results(struct pv_api_thread *t, const char *eid, const struct pv_http_request *req,
		      struct pv_http_response *resp)
{
	struct pv_error err;
	json_t *head = NULL, *body = NULL;
	int64_t version;
	enum pv_err rc;

	if (!pv_ulid_valid(eid)) {
		pv_http_error(resp, 400, "invalid_id", "election_id in the path is not a ULID");
		return;
	}
	rc = thread_cosmos(t, &err);
	if (rc == PV_OK && parked(t, eid, resp))
		return;
	if (rc == PV_OK)
		rc = pv_projection_read_head(t->cosmos, eid, &head, &err);
	if (rc != PV_OK) {
		read_failed(resp, rc, "election", &err);
		return;
	}
	if (not_modified(req, resp, pv_projection_head_version(head), "results", false))
		goto out;
	rc = pv_projection_answer(t->cosmos, eid, head, PV_ANSWER_RESULTS, &body, &version, &err);
	if (rc != PV_OK) {
		read_failed(resp, rc, "election", &err);
		goto out;
	}
	if (!not_modified(req, resp, version, "results", true))
		pv_http_json(resp, 200, body);
out:
	json_decref(body);
	json_decref(head);
}

/* ---- the list ---- */

/* The value of query parameter `name`, %-decoded and '+' as space, into
 * out; NULL when absent, "" on a bad escape or when it does not fit. */
static const char *query_param(const char *query, const char *name, char *out, size_t outsize)
{
	size_t nlen = strlen(name);
	const char *p = query;

	while (p && *p) {
		const char *end = p + strcspn(p, "&");

		if ((size_t)(end - p) > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			size_t n = 0;

			for (p += nlen + 1; p < end; p++) {
				unsigned v;

				if (n + 1 >= outsize)
					return "";
				if (*p == '%') {
					if (end - p < 3 || sscanf(p + 1, "%2x", &v) != 1 || v == 0)
						return "";
					out[n++] = (char)v;
					p += 2;
				} else {
					out[n++] = *p == '+' ? ' ' : *p;
				}
			}
			out[n] = '\0';
			return out;
		}
		p = *end ? end + 1 : end;
	}
	return NULL;
}

/* Continuation tokens travel base64url-encoded: the service's are opaque
 * text (the stand-in's are JSON) that does not belong in a URL as is. */
static char *token_encode(const char *token)
{
	size_t len = strlen(token);
	char *out = pv_xmalloc(4 * ((len + 2) / 3) + 1);
	int n = EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)token, (int)len);

	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	for (char *c = out; *c; c++)
		*c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
	return out;
}

/* NULL if text is not base64url of a token without NUL bytes. */
static char *token_decode(const char *text)
{
	size_t len = strlen(text), padded = (len + 3) / 4 * 4;
	char *in = pv_xmalloc(padded + 1), *out;
	int n;

	if (len % 4 == 1) {
		free(in);
		return NULL;
	}
	for (size_t i = 0; i < padded; i++) {
		char c = i < len ? text[i] : '=';

		if (i < len && !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
				 (c >= '0' && c <= '9') || c == '-' || c == '_')) {
			free(in);
			return NULL;
		}
		in[i] = c == '-' ? '+' : c == '_' ? '/' : c;
	}
	in[padded] = '\0';
	out = pv_xmalloc(padded / 4 * 3 + 1);
	n = EVP_DecodeBlock((unsigned char *)out, (unsigned char *)in, (int)padded);
	free(in);
	if (n < 0) {
		free(out);
		return NULL;
	}
	n -= (int)(padded - len); /* EVP_DecodeBlock counts the padding as zero bytes */
	out[n] = '\0';
	if (n == 0 || strlen(out) != (size_t)n) {
		free(out);
		return NULL;
	}
	return out;
}

void pv_reads_list(struct pv_api_thread *t, const struct pv_http_request *req,
		   struct pv_http_response *resp)
{
	char lbuf[16], cbuf[CONTINUATION_MAX + 1], *cont = NULL, *next = NULL;
	const char *ltext = query_param(req->query, "limit", lbuf, sizeof lbuf);
	const char *ctext = query_param(req->query, "continuation", cbuf, sizeof cbuf);
	json_t *items = NULL, *body;
	struct pv_error err;
	long limit = LIST_DEFAULT;
	enum pv_err rc;

	if (ltext) {
		char *end;

		limit = strtol(ltext, &end, 10);
		if (!*ltext || *end || limit < 1 || limit > LIST_MAX) {
			pv_http_error(resp, 400, "invalid_parameter",
				      "limit must be an integer from 1 to %d", LIST_MAX);
			return;
		}
	}
	if (ctext && !(cont = token_decode(ctext))) {
		pv_http_error(resp, 400, "invalid_continuation",
			      "continuation is not a token this API gave out");
		return;
	}
	rc = thread_cosmos(t, &err);
	for (int i = 0; rc == PV_OK && i < LIST_EMPTY_PAGES; i++) {
		json_decref(items);
		items = NULL;
		rc = pv_projection_list(t->cosmos, (int)limit, cont, &items, &next, &err);
		free(cont);
		cont = next;
		next = NULL;
		if (rc != PV_OK || json_array_size(items) > 0 || !cont)
			break;
	}
	if (rc == PV_ERR_INVALID) {
		pv_http_error(resp, 400, "invalid_continuation",
			      "continuation is not a token this API gave out");
		goto out;
	}
	if (rc != PV_OK) {
		read_failed(resp, rc, "page", &err);
		goto out;
	}
	body = json_object();
	if (!body)
		pv_oom("json_object", 0);
	json_object_set(body, "elections", items);
	if (cont) {
		char *enc = token_encode(cont);

		json_object_set_new(body, "continuation", json_string(enc));
		free(enc);
	} else {
		json_object_set_new(body, "continuation", json_null());
	}
	pv_http_json(resp, 200, body);
	json_decref(body);
out:
	json_decref(items);
	free(cont);
}
