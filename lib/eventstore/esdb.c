/* The `esdb` backend: EventStoreDB / KurrentDB over the AtomPub HTTP API.
 *
 * State: the store's HTTP client (lib/http_client.h), which keeps the connections
 * alive between requests and runs a unit's requests concurrently.  A store
 * is therefore used by one thread at a time.
 *
 * Wire rules (reference/protocols.md sections 1-4):
 *  - appends POST a JSON array with application/vnd.eventstore.events+json,
 *    which every server generation accepts;
 *  - request headers are sent as ES-X and Kurrent-X with the same value:
 *    servers up to v24.10 read ES-X only, v25+ read Kurrent-X first;
 *    responses are read as Kurrent-X, then ES-X;
 *  - reads ask for application/vnd.eventstore.atom+json with embed=body, in
 *    which `data` and `metaData` are strings of JSON text (parsed again
 *    here), and entries come newest first (reversed here);
 *  - the category feed is the $ce-<category> stream with links resolved;
 *    its checkpoint is positionEventNumber, and a link whose target was
 *    deleted has no rich fields: it is skipped, the page's `previous` link
 *    still tells where the next page starts.
 *
 * Retries: transport failures and 5xx answers are retried, with a bounded
 * exponential backoff, only where a repeat cannot write twice: reads, and
 * appends with an expected version >= -1 (the server answers a repeat of
 * the same ids at the same place with the original numbers).  Appends with
 * "any"/"exists" and deletes are tried once.
 *
 * A 404 is ambiguous: a missing stream, or AtomPub switched off (then no
 * /streams route exists), or for $ce-<category> and $streams, projections
 * not running.  The first 404 makes us ask GET /info once; when
 * features.atomPub (or .projections) is false the operation fails with
 * PV_ERR_UNAVAILABLE saying so.
 *
 * Credentials go to the HTTP client only; they are never part of a URL, a
 * message or a log line. */
#include "eventstore/esdb.h"

#include "buf.h"
#include "http_client.h"
#include "log.h"
#include "xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ESDB_DEFAULT_TIMEOUT_MS 10000L
#define ESDB_DEFAULT_IN_FLIGHT 8u
#define ESDB_CONNECT_TIMEOUT_MS 5000L
#define ESDB_ATTEMPTS 4      /* first try + 3 retries */
#define ESDB_BACKOFF_MS 100L /* doubled per retry */
#define ESDB_BACKOFF_MAX_MS 2000L
#define ESDB_PAGE_MAX 4096u /* the server refuses larger counts */
#define ESDB_LIST_PAGE 200u
#define ESDB_BODY_MAX (256u * 1024u * 1024u) /* largest answer we hold */

#define ESDB_EVENTS_TYPE "application/vnd.eventstore.events+json"
#define ESDB_ATOM_TYPE "application/vnd.eventstore.atom+json"

struct esdb {
	struct pv_es base;
	struct pv_http_client *http; /* its connections: one request, or a unit's concurrently */
	char *url;                   /* base URL without a final '/' */
	bool info_known;             /* GET /info answered: */
	bool atompub_off;
	bool projections_off;
};

struct esdb_request {
	const char *method; /* GET, POST, DELETE */
	const char *path;   /* escaped, starts with '/' */
	const char *body;
	size_t body_len;
	struct pv_http_header_list headers; /* Accept, Content-Type and the ES-/Kurrent- ones */
	long extra_timeout_ms;              /* added to the store's timeout (long poll) */
	bool retry;                         /* a repeat cannot change the outcome */
};

/* The answer's headers the operations read (responses keep only these). */
static const char *const answer_headers[] = {"Location", "Kurrent-CurrentVersion",
					     "ES-CurrentVersion", NULL};
#define ESDB_RESPONSE                                                                              \
	{                                                                                          \
		.want = answer_headers                                                             \
	}

/* ---- HTTP status mapping ---------------------------------------------- */

/* HTTP statuses every operation maps the same way.  Operations look at
 * 201/204/400-with-CurrentVersion/404 themselves first. */
static const struct {
	long status;
	enum pv_err code;
	bool retry;
} status_table[] = {
	{307, PV_ERR_PROTOCOL, false},     {400, PV_ERR_INVALID, false},
	{401, PV_ERR_UNAUTHORIZED, false}, {403, PV_ERR_FORBIDDEN, false},
	{404, PV_ERR_NOT_FOUND, false},    {406, PV_ERR_PROTOCOL, false},
	{408, PV_ERR_TIMEOUT, true},       {410, PV_ERR_GONE, false},
	{413, PV_ERR_TOO_LARGE, false},    {415, PV_ERR_PROTOCOL, false},
	{429, PV_ERR_UNAVAILABLE, true},   {500, PV_ERR_UNAVAILABLE, true},
	{502, PV_ERR_UNAVAILABLE, true},   {503, PV_ERR_UNAVAILABLE, true},
	{504, PV_ERR_TIMEOUT, true},
};

static enum pv_err status_code(long status, bool *retry)
{
	for (size_t i = 0; i < sizeof status_table / sizeof status_table[0]; i++) {
		if (status_table[i].status == status) {
			*retry = status_table[i].retry;
			return status_table[i].code;
		}
	}
	*retry = status >= 500;
	return status >= 500 ? PV_ERR_UNAVAILABLE : PV_ERR_HTTP;
}

/* ---- small helpers ---------------------------------------------------- */

/* Appends s percent-encoded as Uri.EscapeDataString does: RFC 3986
 * unreserved characters stay, every other byte (UTF-8 included) is %XX. */
static void esc_append(struct pv_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
			pv_buf_append(b, p, 1);
		} else {
			char enc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
			pv_buf_append(b, enc, 3);
		}
	}
}

/* Strict decimal int64: the whole string, optional '-', no blanks. */
static bool parse_i64(const char *s, size_t len, int64_t *out)
{
	char tmp[24];
	char *end;
	long long v;

	if (len == 0 || len >= sizeof tmp)
		return false;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (!((tmp[0] >= '0' && tmp[0] <= '9') || (tmp[0] == '-' && len > 1)))
		return false;
	errno = 0;
	v = strtoll(tmp, &end, 10);
	if (errno || *end != '\0')
		return false;
	*out = (int64_t)v;
	return true;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Adds "Kurrent-name: value" and "ES-name: value". */
static void header_both(struct pv_http_header_list *hs, const char *name, const char *value)
{
	char line[64];

	snprintf(line, sizeof line, "Kurrent-%s", name);
	pv_http_header_list_add(hs, line, value);
	snprintf(line, sizeof line, "ES-%s", name);
	pv_http_header_list_add(hs, line, value);
}

static void header_version(struct pv_http_header_list *hs, int64_t expected)
{
	char v[24];

	snprintf(v, sizeof v, "%" PRId64, expected);
	header_both(hs, "ExpectedVersion", v);
}

/* The stream's version an answer names: Kurrent-CurrentVersion wins when
 * a v25+ server sends both. */
static bool current_version(const struct pv_http_answer *r, int64_t *v)
{
	const char *k = pv_http_answer_get(r, "Kurrent-CurrentVersion");
	const char *e = pv_http_answer_get(r, "ES-CurrentVersion");

	return (k && parse_i64(k, strlen(k), v)) || (e && parse_i64(e, strlen(e), v));
}

/* ---- one HTTP exchange, with retries ---------------------------------- */

/* What the shared client sends for rq; url is filled here. */
static struct pv_http_call wire_request(const struct esdb *es, const struct esdb_request *rq,
					struct pv_buf *url)
{
	pv_buf_reset(url);
	pv_buf_puts(url, es->url);
	pv_buf_puts(url, rq->path);
	return (struct pv_http_call){.method = rq->method,
				     .url = url->data,
				     .headers = &rq->headers,
				     .body = rq->body,
				     .body_len = rq->body_len,
				     .extra_timeout_ms = rq->extra_timeout_ms};
}

/* What an exchange says: PV_OK with an HTTP answer below 500 (bar 408 and
 * 429) in resp, else the failure, *retry when the same request may
 * succeed.  `code` is the shared client's result. */
static enum pv_err exchange_result(const struct esdb_request *rq, const struct pv_http_answer *resp,
				   enum pv_err code, bool *retry, struct pv_error *err)
{
	if (code != PV_OK) {
		/* Nothing usable came back; a TLS certificate refused or an
		 * answer too large would come back the same. */
		*retry = resp->failure == PV_HTTP_UNSENT || resp->failure == PV_HTTP_BROKEN ||
			 resp->failure == PV_HTTP_TIMED_OUT || resp->failure == PV_HTTP_HANDSHAKE;
		return code;
	}
	*retry = false;
	if (resp->status >= 500 || resp->status == 408 || resp->status == 429)
		return pv_error_set(err, status_code(resp->status, retry),
				    "esdb: %s %s: HTTP %ld %s", rq->method, rq->path, resp->status,
				    resp->reason);
	return PV_OK;
}

/* Performs rq; on PV_OK resp holds an HTTP answer below 500 (the caller
 * interprets it).  Retries retryable failures when rq->retry. */
static enum pv_err exchange(struct esdb *es, const struct esdb_request *rq,
			    struct pv_http_answer *resp, struct pv_error *err)
{
	struct pv_buf url = PV_BUF_INIT;
	struct pv_http_call wire = wire_request(es, rq, &url);
	long backoff = ESDB_BACKOFF_MS;
	enum pv_err code = PV_OK;
	struct pv_error e;
	bool retry;

	for (int attempt = 1; attempt <= ESDB_ATTEMPTS; attempt++) {
		code = pv_http_client_run(es->http, &wire, resp, &e);
		code = exchange_result(rq, resp, code, &retry, &e);
		if (code == PV_OK || !retry || !rq->retry || attempt == ESDB_ATTEMPTS)
			break;
		pv_log_warnx("esdb", "%s (attempt %d of %d, retrying in %ld ms)",
			     strncmp(e.msg, "esdb: ", 6) == 0 ? e.msg + 6 : e.msg, attempt,
			     ESDB_ATTEMPTS, backoff);
		if (!pv_http_client_is_hooked(es->http)) /* a replayed answer needs no wait */
			sleep_ms(backoff);
		backoff = backoff * 2 > ESDB_BACKOFF_MAX_MS ? ESDB_BACKOFF_MAX_MS : backoff * 2;
	}
	if (code != PV_OK)
		pv_error_set(err, code, "%s", e.msg);
	pv_buf_free(&url);
	return code;
}

/* The error for an answer the operation did not expect. */
static enum pv_err status_error(const struct esdb_request *rq, const struct pv_http_answer *resp,
				const char *what, struct pv_error *err)
{
	const char *location = pv_http_answer_get(resp, "Location");
	bool retry;
	enum pv_err code = status_code(resp->status, &retry);

	if (resp->status >= 200 && resp->status < 300)
		code = PV_ERR_PROTOCOL;
	/* A cluster follower sends writes to the leader; we do not follow
	 * (the credentials would go along to wherever Location points). */
	if (resp->status == 307 && location) {
		char where[256];

		pv_log_escape(where, sizeof where, location, strlen(location));
		return pv_error_set(err, code,
				    "esdb: %s %s (%s): HTTP 307 redirect to %s: point the URL at "
				    "the cluster leader",
				    rq->method, rq->path, what, where);
	}
	return pv_error_set(err, code, "esdb: %s %s (%s): HTTP %ld %s", rq->method, rq->path, what,
			    resp->status, resp->reason[0] ? resp->reason : "(no reason)");
}

/* After a 404: is AtomPub off, or (for the $ce- and $streams feeds, which
 * projections write) are projections off?  Asks GET /info once per store;
 * an answer we cannot read counts as "on" so that a missing stream stays
 * missing. */
static enum pv_err check_server(struct esdb *es, bool projections, struct pv_error *err)
{
	struct esdb_request rq = {.method = "GET", .path = "/info", .retry = true};
	struct pv_http_answer resp = ESDB_RESPONSE;
	struct pv_error ierr;
	json_t *doc = NULL, *feat;

	if (!es->info_known) {
		pv_http_header_list_add(&rq.headers, "Accept", "application/json");
		if (exchange(es, &rq, &resp, &ierr) == PV_OK && resp.status == 200) {
			doc = json_loadb(resp.body.data, resp.body.len, 0, NULL);
			feat = json_is_object(doc) ? json_object_get(doc, "features") : NULL;
			es->atompub_off = json_is_false(json_object_get(feat, "atomPub"));
			es->projections_off = json_is_false(json_object_get(feat, "projections"));
			es->info_known = true;
			json_decref(doc);
		}
		/* Transport failure: decide next time. */
		pv_http_answer_clear(&resp);
		pv_http_header_list_clear(&rq.headers);
	}
	if (es->atompub_off)
		return pv_error_set(err, PV_ERR_UNAVAILABLE,
				    "esdb: %s has the AtomPub HTTP API disabled (GET /info: "
				    "features.atomPub is false); start it with "
				    "--enable-atom-pub-over-http",
				    es->url);
	if (projections && es->projections_off)
		return pv_error_set(
			err, PV_ERR_UNAVAILABLE,
			"esdb: %s runs without projections (GET /info: "
			"features.projections is false), so no $ce-<category> or "
			"$streams feed is written; start it with --run-projections=system "
			"--start-standard-projections",
			es->url);
	return PV_OK;
}

/* ---- append ----------------------------------------------------------- */

static bool valid_name(const char *s)
{
	return s && *s;
}

/* The number after n; a server's INT64_MAX stays itself (no overflow), and
 * the page checks then refuse a page that does not move. */
static int64_t number_after(int64_t n)
{
	return n < INT64_MAX ? n + 1 : n;
}

/* The first event number in a 201's Location: ".../streams/{s}/{n}". */
static bool location_number(const char *loc, int64_t *n)
{
	const char *slash = loc ? strrchr(loc, '/') : NULL;

	return slash && parse_i64(slash + 1, strlen(slash + 1), n) && *n >= 0;
}

static enum pv_err build_batch(const struct pv_es_new_event *events, size_t count, char **out,
			       size_t *out_len, struct pv_error *err)
{
	json_t *arr = json_array();
	enum pv_err code = PV_OK;

	if (!arr)
		pv_oom("json_array", 0);
	for (size_t i = 0; i < count; i++) {
		const struct pv_es_new_event *ev = &events[i];
		size_t size;
		json_t *obj;

		if (!pv_uuid_valid(ev->id)) {
			code = pv_error_set(err, PV_ERR_INVALID,
					    "esdb: event %zu: id is not a UUID", i);
			goto out;
		}
		if (!valid_name(ev->type)) {
			code = pv_error_set(err, PV_ERR_INVALID, "esdb: event %zu: empty type", i);
			goto out;
		}
		if (!json_is_object(ev->data) || (ev->metadata && !json_is_object(ev->metadata))) {
			code = pv_error_set(
				err, PV_ERR_INVALID,
				"esdb: event %zu: data and metadata must be JSON objects", i);
			goto out;
		}
		size = json_dumpb(ev->data, NULL, 0, JSON_COMPACT);
		if (ev->metadata)
			size += json_dumpb(ev->metadata, NULL, 0, JSON_COMPACT);
		if (size > PV_ES_EVENT_MAX) {
			code = pv_error_set(
				err, PV_ERR_TOO_LARGE,
				"esdb: event %zu: data and metadata are %zu bytes, more "
				"than the server's limit of %u",
				i, size, PV_ES_EVENT_MAX);
			goto out;
		}
		obj = json_pack("{s:s, s:s, s:O}", "eventId", ev->id, "eventType", ev->type, "data",
				ev->data);
		if (!obj)
			pv_oom("json_pack", 0);
		if (ev->metadata && json_object_set(obj, "metadata", (json_t *)ev->metadata) != 0)
			pv_oom("json_object_set", 0);
		if (json_array_append_new(arr, obj) != 0)
			pv_oom("json_array_append_new", 0);
	}
	*out = json_dumps(arr, JSON_COMPACT);
	if (!*out)
		pv_oom("json_dumps", 0);
	*out_len = strlen(*out);
out:
	json_decref(arr);
	return code;
}

/* One request of its own: what it sends, what came back, how it ended. */
struct esdb_call {
	struct esdb_request rq;
	struct pv_http_answer resp;
	struct pv_buf path;
	char *body;
	enum pv_err code; /* of the exchange */
	struct pv_error err;
	bool retry; /* the failure is worth another try */
	/* What the shared client runs (exchange_many). */
	struct pv_buf url;
	struct pv_http_call wire;
	struct pv_http_exchange x;
};

static void call_init(struct esdb_call *c)
{
	memset(c, 0, sizeof *c);
	pv_http_answer_init(&c->resp, answer_headers);
}

static void call_clear(struct esdb_call *c)
{
	pv_http_header_list_clear(&c->rq.headers);
	pv_http_answer_clear(&c->resp);
	pv_buf_free(&c->path);
	pv_buf_free(&c->url);
	free(c->body);
	call_init(c);
}

/* The POST of an append, ready to go. */
static enum pv_err append_request(const char *stream, int64_t expected,
				  const struct pv_es_new_event *events, size_t count,
				  struct esdb_call *call, struct pv_error *err)
{
	size_t body_len = 0;
	enum pv_err code;

	call_init(call);
	if (!valid_name(stream))
		return pv_error_set(err, PV_ERR_INVALID, "esdb: append: empty stream name");
	if (count == 0)
		return pv_error_set(err, PV_ERR_INVALID, "esdb: append to %s: no events", stream);
	if (expected < PV_ES_STREAM_EXISTS || expected == -3)
		return pv_error_set(err, PV_ERR_INVALID,
				    "esdb: append to %s: bad expected version %" PRId64, stream,
				    expected);
	code = build_batch(events, count, &call->body, &body_len, err);
	if (code != PV_OK)
		return pv_error_prefix(err, "append to %s", stream);
	pv_buf_puts(&call->path, "/streams/");
	esc_append(&call->path, stream);
	call->rq = (struct esdb_request){
		.method = "POST",
		.path = call->path.data,
		.body = call->body,
		.body_len = body_len,
		/* A repeat of the same ids at the same expected place is answered
		 * with the original numbers; with "any"/"exists" it may write
		 * twice. */
		.retry = expected >= PV_ES_NO_STREAM,
	};
	pv_http_header_list_add(&call->rq.headers, "Content-Type", ESDB_EVENTS_TYPE);
	header_version(&call->rq.headers, expected);
	return PV_OK;
}

/* What the server answered an append: *version as pv_es_append's. */
static enum pv_err append_answer(struct esdb *es, struct esdb_call *call, const char *stream,
				 int64_t expected, size_t count, int64_t *version,
				 struct pv_error *err)
{
	struct pv_http_answer *resp = &call->resp;
	int64_t first, current;

	if (call->code != PV_OK) {
		pv_error_set(err, call->code, "%s", call->err.msg);
		/* The server answers 500 when its commit timed out, and an
		 * answer can be lost after the write: say so. */
		if (call->code == PV_ERR_UNAVAILABLE || call->code == PV_ERR_TIMEOUT) {
			size_t used = strlen(err->msg);
			snprintf(err->msg + used, sizeof err->msg - used,
				 " (the events may or may not have been written)");
		}
		return call->code;
	}
	switch (resp->status) {
	case 201:
		/* The last event's number, first + count - 1, must fit. */
		if (!location_number(pv_http_answer_get(resp, "Location"), &first) ||
		    (count && first > INT64_MAX - (int64_t)(count - 1)))
			return pv_error_set(err, PV_ERR_PROTOCOL,
					    "esdb: POST %s: 201 without a usable Location",
					    call->rq.path);
		if (version)
			*version = first + ((int64_t)count - 1); /* first + count may not fit */
		return PV_OK;
	case 400:
		if (!current_version(resp, &current))
			break;
		if (version)
			*version = current;
		return pv_error_set(err, PV_ERR_CONFLICT,
				    "esdb: append to %s: expected version %" PRId64
				    ", stream is at %" PRId64 " (HTTP 400 %s)",
				    stream, expected, current, resp->reason);
	case 404: {
		enum pv_err code = check_server(es, false, err);
		if (code != PV_OK)
			return code;
		break;
	}
	default: break;
	}
	return status_error(&call->rq, resp, "append", err);
}

static enum pv_err esdb_append(struct pv_es *base, const char *stream, int64_t expected,
			       const struct pv_es_new_event *events, size_t count, int64_t *version,
			       struct pv_error *err)
{
	struct esdb *es = (struct esdb *)base;
	struct esdb_call call;
	enum pv_err code;

	code = append_request(stream, expected, events, count, &call, err);
	if (code == PV_OK) {
		call.code = exchange(es, &call.rq, &call.resp, &call.err);
		code = append_answer(es, &call, stream, expected, count, version, err);
	}
	call_clear(&call);
	return code;
}

/* ---- feeds ------------------------------------------------------------ */

/* The event number in a feed link ".../{n}/forward/{count}" or
 * ".../{n}/backward/{count}" of relation rel; false when absent. */
static bool feed_link_number(const json_t *feed, const char *rel, int64_t *n)
{
	const json_t *links = json_object_get(feed, "links");
	size_t i;
	json_t *l;

	if (!json_is_array(links))
		return false;
	json_array_foreach(links, i, l)
	{
		const char *r = json_string_value(json_object_get(l, "relation"));
		const char *uri = json_string_value(json_object_get(l, "uri"));
		const char *end, *p, *seg;
		int slashes = 0;

		if (!r || !uri || strcmp(r, rel) != 0)
			continue;
		/* Walk back over "{count}" and "forward|backward" to "{n}". */
		end = uri + strlen(uri);
		for (p = end; p > uri; p--) {
			if (p[-1] == '/' && ++slashes == 2)
				break;
		}
		if (slashes != 2)
			return false;
		end = p - 1; /* the '/' before "forward" */
		for (seg = end; seg > uri && seg[-1] != '/'; seg--)
			;
		return parse_i64(seg, (size_t)(end - seg), n) && *n >= 0;
	}
	return false;
}

static enum pv_err json_text(const json_t *v, const char *what, json_t **out, struct pv_error *err)
{
	const char *text = json_string_value(v);
	json_error_t jerr;

	*out = NULL;
	if (!text || !*text) {
		*out = json_null();
		return PV_OK;
	}
	*out = json_loadb(text, json_string_length(v), JSON_DECODE_ANY, &jerr);
	if (!*out) {
		pv_log_escape_in_place(jerr.text, sizeof jerr.text); /* quotes the answer */
		return pv_error_set(err, PV_ERR_PROTOCOL, "esdb: %s is not JSON: %s (line %d)",
				    what, jerr.text, jerr.line);
	}
	return PV_OK;
}

static void event_clear(struct pv_es_event *e)
{
	free(e->type);
	free(e->stream);
	free(e->created);
	json_decref(e->data);
	json_decref(e->metadata);
	memset(e, 0, sizeof *e);
}

/* Fills *e from a rich (embed=body) entry.  position is -1 for stream
 * reads.  Returns PV_ERR_PROTOCOL naming the field on a malformed entry. */
static enum pv_err entry_event(const json_t *entry, int64_t position, struct pv_es_event *e,
			       struct pv_error *err)
{
	const char *id = json_string_value(json_object_get(entry, "eventId"));
	const char *type = json_string_value(json_object_get(entry, "eventType"));
	const char *stream = json_string_value(json_object_get(entry, "streamId"));
	const char *updated = json_string_value(json_object_get(entry, "updated"));
	const json_t *num = json_object_get(entry, "eventNumber");
	const json_t *is_json = json_object_get(entry, "isJson");
	const char *meta;
	enum pv_err code;

	memset(e, 0, sizeof *e);
	if (!id || !pv_uuid_valid(id) || !type || !stream || !json_is_integer(num) ||
	    json_integer_value(num) < 0)
		return pv_error_set(err, PV_ERR_PROTOCOL,
				    "esdb: feed entry without eventId, eventType, streamId or "
				    "eventNumber (was embed=body honoured?)");
	memcpy(e->id, id, PV_UUID_LEN + 1);
	e->type = pv_xstrdup(type);
	e->stream = pv_xstrdup(stream);
	e->created = pv_xstrdup(updated ? updated : "");
	e->number = json_integer_value(num);
	e->position = position;
	/* Only JSON data is sent with embed=body; other events get null. */
	if (json_is_true(is_json)) {
		code = json_text(json_object_get(entry, "data"), "event data", &e->data, err);
		if (code != PV_OK)
			goto fail;
	} else {
		e->data = json_null();
	}
	meta = json_string_value(json_object_get(entry, "metaData"));
	if (!meta || !*meta)
		e->metadata = json_null();
	else if (!(e->metadata = json_loads(meta, JSON_DECODE_ANY, NULL)))
		/* Metadata written as plain text by someone else: keep the text. */
		e->metadata = json_string(meta);
	if (!e->metadata)
		e->metadata = json_null();
	return PV_OK;
fail:
	event_clear(e);
	return code;
}

/* Parses a feed body into a page.  The server lists entries newest first;
 * forward pages are reversed into ascending order, backward pages keep it.
 * ce_stream != NULL: entries are resolved links of that $ce- stream. */
static enum pv_err parse_feed(const struct pv_http_answer *resp, const char *ce_stream,
			      bool backward, json_t **feed_out, struct pv_es_page *page,
			      struct pv_error *err)
{
	json_error_t jerr;
	json_t *feed, *entries;
	size_t n;
	enum pv_err code = PV_OK;

	feed = json_loadb(resp->body.data, resp->body.len, 0, &jerr);
	if (!feed) {
		pv_log_escape_in_place(jerr.text, sizeof jerr.text); /* quotes the answer */
		return pv_error_set(err, PV_ERR_PROTOCOL, "esdb: feed is not JSON: %s (line %d)",
				    jerr.text, jerr.line);
	}
	entries = json_object_get(feed, "entries");
	if (!json_is_object(feed) || !json_is_array(entries)) {
		code = pv_error_set(err, PV_ERR_PROTOCOL, "esdb: feed without an entries array");
		goto out;
	}
	n = json_array_size(entries);
	page->events = n ? pv_xcalloc(n, sizeof *page->events) : NULL;
	page->count = 0;
	for (size_t i = 0; i < n; i++) {
		const json_t *entry = json_array_get(entries, backward ? i : n - 1 - i);
		int64_t position = -1;

		if (!json_is_object(entry)) {
			code = pv_error_set(err, PV_ERR_PROTOCOL,
					    "esdb: feed entry is not an object");
			goto out;
		}
		if (ce_stream) {
			const json_t *pos = json_object_get(entry, "positionEventNumber");
			const char *pstream =
				json_string_value(json_object_get(entry, "positionStreamId"));

			/* A link whose target is gone has no rich fields. */
			if (!json_object_get(entry, "eventId"))
				continue;
			if (!json_is_integer(pos) || json_integer_value(pos) < 0 ||
			    (pstream && strcmp(pstream, ce_stream) != 0)) {
				code = pv_error_set(err, PV_ERR_PROTOCOL,
						    "esdb: %s entry without a usable "
						    "positionEventNumber",
						    ce_stream);
				goto out;
			}
			position = json_integer_value(pos);
		}
		code = entry_event(entry, position, &page->events[page->count], err);
		if (code != PV_OK)
			goto out;
		page->count++;
	}
	*feed_out = feed;
	feed = NULL;
out:
	json_decref(feed);
	if (code != PV_OK)
		pv_es_page_clear(page);
	return code;
}

static void page_init(struct pv_es_page *page)
{
	memset(page, 0, sizeof *page);
	page->next = -1;
}

/* ---- read a stream ---------------------------------------------------- */

/* The GET of a stream page, ready to go. */
static enum pv_err read_request(const char *stream, int64_t from, size_t max, bool backward,
				struct esdb_call *call, struct pv_error *err)
{
	call_init(call);
	if (!valid_name(stream))
		return pv_error_set(err, PV_ERR_INVALID, "esdb: read: empty stream name");
	if (max == 0 || from < (backward ? -1 : 0))
		return pv_error_set(err, PV_ERR_INVALID,
				    "esdb: read %s: bad start %" PRId64 " or count %zu", stream,
				    from, max);
	if (max > ESDB_PAGE_MAX)
		max = ESDB_PAGE_MAX;
	pv_buf_puts(&call->path, "/streams/");
	esc_append(&call->path, stream);
	if (backward && from < 0)
		pv_buf_printf(&call->path, "/head/backward/%zu?embed=body", max);
	else
		pv_buf_printf(&call->path, "/%" PRId64 "/%s/%zu?embed=body", from,
			      backward ? "backward" : "forward", max);
	call->rq = (struct esdb_request){.method = "GET", .path = call->path.data, .retry = true};
	pv_http_header_list_add(&call->rq.headers, "Accept", ESDB_ATOM_TYPE);
	return PV_OK;
}

/* The page the server answered. */
static enum pv_err read_answer(struct esdb *es, struct esdb_call *call, const char *stream,
			       int64_t from, bool backward, struct pv_es_page *page,
			       struct pv_error *err)
{
	struct pv_http_answer *resp = &call->resp;
	json_t *feed = NULL;
	int64_t link;
	enum pv_err code;

	if (call->code != PV_OK)
		return pv_error_set(err, call->code, "%s", call->err.msg);
	if (resp->status == 404) {
		code = check_server(es, false, err);
		if (code == PV_OK)
			code = pv_error_set(err, PV_ERR_NOT_FOUND,
					    "esdb: stream %s not found (HTTP 404)", stream);
		return code;
	}
	if (resp->status == 410)
		return pv_error_set(err, PV_ERR_GONE,
				    "esdb: stream %s was deleted for good (HTTP 410)", stream);
	if (resp->status != 200)
		return status_error(&call->rq, resp, "read", err);
	code = parse_feed(resp, NULL, backward, &feed, page, err);
	if (code != PV_OK) {
		json_decref(feed);
		return pv_error_prefix(err, "read %s", stream);
	}
	if (backward) {
		/* No "next" link: the page reached the stream's first event. */
		page->end_of_stream = !feed_link_number(feed, "next", &link);
		page->next = page->end_of_stream ? -1 : link;
	} else {
		page->end_of_stream = json_is_true(json_object_get(feed, "headOfStream"));
		page->next =
			page->count ? number_after(page->events[page->count - 1].number) : from;
	}
	json_decref(feed);
	return PV_OK;
}

static enum pv_err esdb_read_stream(struct pv_es *base, const char *stream, int64_t from,
				    size_t max, bool backward, struct pv_es_page *page,
				    struct pv_error *err)
{
	struct esdb *es = (struct esdb *)base;
	struct esdb_call call;
	enum pv_err code;

	page_init(page);
	code = read_request(stream, from, max, backward, &call, err);
	if (code == PV_OK) {
		call.code = exchange(es, &call.rq, &call.resp, &call.err);
		code = read_answer(es, &call, stream, from, backward, page, err);
	}
	if (code == PV_OK)
		code = pv_es_check_stream_page("esdb", page, stream, from, max, backward, err);
	if (code != PV_OK) {
		pv_es_page_clear(page);
		page_init(page);
	}
	call_clear(&call);
	return code;
}

/* ---- a unit's requests, concurrently ---------------------------------- */

/* Performs the n calls concurrently on the keep-alive connections of the
 * shared client (at most in_flight at a time), with exchange()'s retries:
 * a round for the retryable failures, after one backoff.  Every call's
 * code (and err, retry, resp) is set at the end. */
static void exchange_many(struct esdb *es, struct esdb_call **calls, size_t n)
{
	struct esdb_call **pending = pv_xcalloc(n, sizeof *pending);
	struct pv_http_exchange **xs = pv_xcalloc(n, sizeof *xs);
	long backoff = ESDB_BACKOFF_MS;
	size_t m = n;

	memcpy(pending, calls, n * sizeof *pending);
	for (int attempt = 1;; attempt++) {
		size_t k = 0;

		for (size_t i = 0; i < m; i++) {
			struct esdb_call *c = pending[i];

			c->wire = wire_request(es, &c->rq, &c->url);
			c->x = (struct pv_http_exchange){.rq = &c->wire, .resp = &c->resp};
			xs[i] = &c->x;
		}
		pv_http_client_run_many(es->http, xs, m);
		for (size_t i = 0; i < m; i++) {
			struct esdb_call *c = pending[i];

			c->err = c->x.err;
			c->code = exchange_result(&c->rq, &c->resp, c->x.code, &c->retry, &c->err);
			if (c->code != PV_OK && c->retry && c->rq.retry)
				pending[k++] = c;
		}
		if (k == 0 || attempt == ESDB_ATTEMPTS)
			break;
		pv_log_warnx("esdb", "%s%s (attempt %d of %d, retrying in %ld ms)",
			     strncmp(pending[0]->err.msg, "esdb: ", 6) == 0
				     ? pending[0]->err.msg + 6
				     : pending[0]->err.msg,
			     k > 1 ? " and other requests" : "", attempt, ESDB_ATTEMPTS, backoff);
		if (!pv_http_client_is_hooked(es->http)) /* a replayed answer needs no wait */
			sleep_ms(backoff);
		backoff = backoff * 2 > ESDB_BACKOFF_MAX_MS ? ESDB_BACKOFF_MAX_MS : backoff * 2;
		m = k;
	}
	free(xs);
	free(pending);
}

/* The unit's appends (eventstore.h): one request per stream, all its
 * events in one array, the streams' requests concurrently. */
static enum pv_err esdb_append_many(struct pv_es *base, struct pv_es_append_req *reqs, size_t n,
				    size_t *failed, struct pv_error *err)
{
	struct esdb *es = (struct esdb *)base;
	struct esdb_call *calls = pv_xcalloc(n, sizeof *calls);
	struct esdb_call **ptrs = pv_xcalloc(n, sizeof *ptrs);
	enum pv_err rc = PV_OK;

	for (size_t i = 0; i < n && rc == PV_OK; i++) {
		reqs[i].continued = false;
		ptrs[i] = &calls[i];
		rc = append_request(reqs[i].stream, reqs[i].expected, reqs[i].events, reqs[i].count,
				    &calls[i], err);
		if (rc != PV_OK)
			*failed = i;
	}
	if (rc == PV_OK)
		exchange_many(es, ptrs, n);
	for (size_t i = 0; i < n && rc == PV_OK; i++) {
		struct pv_es_append_req *r = &reqs[i];
		struct pv_error e;
		enum pv_err code = append_answer(es, &calls[i], r->stream, r->expected, r->count,
						 &r->version, &e);

		/* The first failure in request order is the answer. */
		if (code != PV_OK) {
			*failed = i;
			*err = e;
			rc = code;
			break;
		}
		r->continued =
			r->expected == PV_ES_NO_STREAM && r->version != (int64_t)r->count - 1;
	}
	for (size_t i = 0; i < n; i++)
		call_clear(&calls[i]);
	free(ptrs);
	free(calls);
	return rc;
}

/* Each stream's head, read concurrently (a backward page of one). */
static enum pv_err esdb_check_versions(struct pv_es *base, const struct pv_es_expect *x, size_t n,
				       size_t *failed, struct pv_error *err)
{
	struct esdb *es = (struct esdb *)base;
	struct esdb_call *calls = pv_xcalloc(n, sizeof *calls);
	struct esdb_call **ptrs = pv_xcalloc(n, sizeof *ptrs);
	enum pv_err rc = PV_OK;

	for (size_t i = 0; i < n && rc == PV_OK; i++) {
		ptrs[i] = &calls[i];
		rc = read_request(x[i].stream, -1, 1, true, &calls[i], err);
		if (rc != PV_OK)
			*failed = i;
	}
	if (rc == PV_OK)
		exchange_many(es, ptrs, n);
	for (size_t i = 0; i < n && rc == PV_OK; i++) {
		struct pv_es_page page;
		int64_t now = -1;

		page_init(&page);
		*failed = i;
		rc = read_answer(es, &calls[i], x[i].stream, -1, true, &page, err);
		if (rc == PV_ERR_GONE)
			rc = pv_error_set(err, PV_ERR_CONFLICT, "%s is deleted for good",
					  x[i].stream);
		else if (rc == PV_ERR_NOT_FOUND)
			rc = PV_OK;
		else if (rc == PV_OK && page.count > 0)
			now = page.events[0].number;
		pv_es_page_clear(&page);
		if (rc == PV_OK && now != x[i].version)
			rc = pv_error_set(err, PV_ERR_CONFLICT,
					  "%s is no longer at version %" PRId64 " (now %" PRId64
					  ")",
					  x[i].stream, x[i].version, now);
	}
	for (size_t i = 0; i < n; i++)
		call_clear(&calls[i]);
	free(ptrs);
	free(calls);
	return rc;
}

/* ---- category feed ---------------------------------------------------- */

static enum pv_err esdb_read_category(struct pv_es *base, const char *category, int64_t from,
				      size_t max, int wait_ms, struct pv_es_page *page,
				      struct pv_error *err)
{
	struct esdb *es = (struct esdb *)base;
	struct esdb_request rq = {.method = "GET", .retry = true};
	struct pv_http_answer resp = ESDB_RESPONSE;
	struct pv_buf path = PV_BUF_INIT;
	char *ce = NULL;
	json_t *feed = NULL;
	int64_t link;
	int64_t started = now_ms(), waited;
	enum pv_err code;

	page_init(page);
	if (!valid_name(category) || strchr(category, '-'))
		return pv_error_set(err, PV_ERR_INVALID,
				    "esdb: category must be non-empty and without '-'");
	if (max == 0 || from < 0)
		return pv_error_set(err, PV_ERR_INVALID,
				    "esdb: read category %s: bad start %" PRId64 " or count %zu",
				    category, from, max);
	if (max > ESDB_PAGE_MAX)
		max = ESDB_PAGE_MAX;

	ce = pv_xasprintf("$ce-%s", category);
	pv_buf_puts(&path, "/streams/");
	esc_append(&path, ce);
	pv_buf_printf(&path, "/%" PRId64 "/forward/%zu?embed=body", from, max);
	rq.path = path.data;
	pv_http_header_list_add(&rq.headers, "Accept", ESDB_ATOM_TYPE);
	header_both(&rq.headers, "ResolveLinkTos", "true");
	if (wait_ms > 0) {
		/* Long poll counts whole seconds; round up rather than spin. */
		char secs[16];
		snprintf(secs, sizeof secs, "%d", (wait_ms + 999) / 1000);
		header_both(&rq.headers, "LongPoll", secs);
		rq.extra_timeout_ms = (long)wait_ms + 1000;
	}

	code = exchange(es, &rq, &resp, err);
	if (code != PV_OK)
		goto out;
	if (resp.status == 404) {
		/* No event in the category yet: an empty feed, unless AtomPub
		 * or the projections are off. */
		code = check_server(es, true, err);
		if (code != PV_OK)
			goto out;
		waited = now_ms() - started;
		if (wait_ms > 0 && waited < wait_ms)
			sleep_ms((long)(wait_ms - waited));
		page->next = from;
		page->end_of_stream = true;
		goto out;
	}
	if (resp.status == 410) {
		code = pv_error_set(err, PV_ERR_GONE, "esdb: %s was deleted for good (HTTP 410)",
				    ce);
		goto out;
	}
	if (resp.status != 200) {
		code = status_error(&rq, &resp, "read category", err);
		goto out;
	}
	code = parse_feed(&resp, ce, false, &feed, page, err);
	if (code != PV_OK) {
		pv_error_prefix(err, "read %s", ce);
		goto out;
	}
	page->end_of_stream = json_is_true(json_object_get(feed, "headOfStream"));
	/* "previous" points after this page even when its last entries were
	 * links to deleted events; no "previous" = caught up at `from`. */
	if (feed_link_number(feed, "previous", &link))
		page->next = link;
	else
		page->next =
			page->count ? number_after(page->events[page->count - 1].position) : from;
	/* Every position inside the page, rising (see check_stream_page). */
	for (size_t i = 0; i < page->count; i++) {
		int64_t p = page->events[i].position;

		if (p < from || (uint64_t)p - (uint64_t)from >= max ||
		    (i && p <= page->events[i - 1].position)) {
			code = pv_error_set(err, PV_ERR_PROTOCOL,
					    "esdb: %s page from %" PRId64 " (%zu) holds position "
					    "%" PRId64 " out of place",
					    ce, from, max, p);
			pv_es_page_clear(page);
			page_init(page);
			goto out;
		}
	}
	if (page->next < from || (uint64_t)page->next - (uint64_t)from > max ||
	    (page->count && page->events[page->count - 1].position >= page->next)) {
		code = pv_error_set(err, PV_ERR_PROTOCOL,
				    "esdb: %s page from %" PRId64
				    " says the next starts at %" PRId64,
				    ce, from, page->next);
		pv_es_page_clear(page);
		page_init(page);
	}
out:
	json_decref(feed);
	pv_http_header_list_clear(&rq.headers);
	pv_http_answer_clear(&resp);
	pv_buf_free(&path);
	free(ce);
	return code;
}

/* ---- list streams ----------------------------------------------------- */

/* The stream's last event: version and time.  PV_ERR_NOT_FOUND when it is
 * deleted or empty. */
static enum pv_err stream_head(struct esdb *es, const char *name, struct pv_es_stream_info *info,
			       struct pv_error *err)
{
	struct pv_es_page page;
	enum pv_err code;

	code = esdb_read_stream(&es->base, name, -1, 1, true, &page, err);
	if (code == PV_ERR_GONE)
		code = PV_ERR_NOT_FOUND;
	if (code != PV_OK)
		return code;
	if (page.count == 0) {
		pv_es_page_clear(&page);
		return PV_ERR_NOT_FOUND;
	}
	info->name = pv_xstrdup(name);
	info->version = page.events[0].number;
	info->updated = pv_xstrdup(page.events[0].created);
	pv_es_page_clear(&page);
	return PV_OK;
}

static bool in_category(const char *name, const char *category)
{
	size_t n;

	if (name[0] == '$')
		return false;
	if (!category || !*category)
		return true;
	n = strlen(category);
	return strncmp(name, category, n) == 0 && name[n] == '-';
}

/* $streams holds one link "0@<name>" per stream.  Read without resolving
 * (embed=tryharder shows the link's text), then ask each stream of the
 * category for its head: that also drops deleted streams. */
static enum pv_err esdb_list_streams(struct pv_es *base, const char *category,
				     struct pv_es_stream_list *list, struct pv_error *err)
{
	struct esdb *es = (struct esdb *)base;
	struct esdb_request rq = {.method = "GET", .retry = true};
	struct pv_http_answer resp = ESDB_RESPONSE;
	struct pv_buf path = PV_BUF_INIT;
	json_t *feed = NULL;
	size_t cap = 0;
	int64_t from = 0, link;
	enum pv_err code = PV_OK;

	memset(list, 0, sizeof *list);
	pv_http_header_list_add(&rq.headers, "Accept", ESDB_ATOM_TYPE);
	header_both(&rq.headers, "ResolveLinkTos", "false");
	for (;;) {
		json_error_t jerr;
		json_t *entries, *entry;
		size_t n;

		pv_buf_reset(&path);
		pv_buf_printf(&path, "/streams/%%24streams/%" PRId64 "/forward/%u?embed=tryharder",
			      from, ESDB_LIST_PAGE);
		rq.path = path.data;
		code = exchange(es, &rq, &resp, err);
		if (code != PV_OK)
			goto out;
		if (resp.status == 404) {
			code = check_server(es, true, err);
			goto out; /* no stream at all yet */
		}
		if (resp.status != 200) {
			code = status_error(&rq, &resp, "list streams", err);
			goto out;
		}
		feed = json_loadb(resp.body.data, resp.body.len, 0, &jerr);
		entries = json_object_get(feed, "entries");
		if (!json_is_array(entries)) {
			pv_log_escape_in_place(jerr.text, sizeof jerr.text);
			code = pv_error_set(err, PV_ERR_PROTOCOL, "esdb: $streams: not a feed: %s",
					    feed ? "no entries" : jerr.text);
			goto out;
		}
		n = json_array_size(entries);
		for (size_t k = n; k-- > 0;) {
			const char *data, *at;
			struct pv_es_stream_info info;

			entry = json_array_get(entries, k);
			data = json_string_value(json_object_get(entry, "data"));
			at = data ? strchr(data, '@') : NULL;
			if (!at || !at[1] || !in_category(at + 1, category))
				continue;
			code = stream_head(es, at + 1, &info, err);
			if (code == PV_ERR_NOT_FOUND) {
				code = PV_OK; /* deleted since it was listed */
				continue;
			}
			if (code != PV_OK)
				goto out;
			if (list->count == cap) {
				cap = cap ? cap * 2 : 16;
				list->streams =
					pv_xreallocarray(list->streams, cap, sizeof *list->streams);
			}
			list->streams[list->count++] = info;
		}
		if (n == 0 || json_is_true(json_object_get(feed, "headOfStream")) ||
		    !feed_link_number(feed, "previous", &link) || link <= from)
			break;
		from = link;
		json_decref(feed);
		feed = NULL;
	}
out:
	if (code != PV_OK)
		pv_es_stream_list_clear(list);
	json_decref(feed);
	pv_http_header_list_clear(&rq.headers);
	pv_http_answer_clear(&resp);
	pv_buf_free(&path);
	return code;
}

/* ---- delete ----------------------------------------------------------- */

static enum pv_err esdb_delete_stream(struct pv_es *base, const char *stream, int64_t expected,
				      bool hard, struct pv_error *err)
{
	struct esdb *es = (struct esdb *)base;
	struct esdb_request rq = {.method = "DELETE"};
	struct pv_http_answer resp = ESDB_RESPONSE;
	struct pv_buf path = PV_BUF_INIT;
	int64_t current;
	enum pv_err code;

	if (!valid_name(stream))
		return pv_error_set(err, PV_ERR_INVALID, "esdb: delete: empty stream name");
	if (expected < PV_ES_STREAM_EXISTS || expected == -3)
		return pv_error_set(err, PV_ERR_INVALID,
				    "esdb: delete %s: bad expected version %" PRId64, stream,
				    expected);
	pv_buf_puts(&path, "/streams/");
	esc_append(&path, stream);
	rq.path = path.data;
	header_version(&rq.headers, expected);
	if (hard)
		header_both(&rq.headers, "HardDelete", "true");

	code = exchange(es, &rq, &resp, err);
	if (code != PV_OK)
		goto out;
	switch (resp.status) {
	case 200:
	case 204: break;
	case 400:
		if (current_version(&resp, &current)) {
			code = pv_error_set(err, PV_ERR_CONFLICT,
					    "esdb: delete %s: expected version %" PRId64
					    ", stream is at %" PRId64 " (HTTP 400 %s)",
					    stream, expected, current, resp.reason);
			break;
		}
		code = status_error(&rq, &resp, "delete", err);
		break;
	case 404:
		code = check_server(es, false, err);
		if (code == PV_OK)
			code = pv_error_set(err, PV_ERR_NOT_FOUND,
					    "esdb: delete: stream %s not found (HTTP 404)", stream);
		break;
	case 410:
		code = pv_error_set(err, PV_ERR_GONE,
				    "esdb: delete: stream %s was deleted for good (HTTP 410)",
				    stream);
		break;
	default: code = status_error(&rq, &resp, "delete", err); break;
	}
out:
	pv_http_header_list_clear(&rq.headers);
	pv_http_answer_clear(&resp);
	pv_buf_free(&path);
	return code;
}

/* ---- open / close ----------------------------------------------------- */

static void esdb_close(struct pv_es *base)
{
	struct esdb *es = (struct esdb *)base;

	pv_http_client_close(es->http);
	free(es->url);
	free(es);
}

static const struct pv_es_ops esdb_ops = {
	.name = "esdb",
	.append = esdb_append,
	.read_stream = esdb_read_stream,
	.read_category = esdb_read_category,
	.list_streams = esdb_list_streams,
	.delete_stream = esdb_delete_stream,
	.close = esdb_close,
	.append_many = esdb_append_many,
	.check_versions = esdb_check_versions,
};

enum pv_err pv_es_esdb_open(const struct pv_es_options *opts, struct pv_es **out,
			    struct pv_error *err)
{
	struct pv_http_client_options http_opts;
	struct esdb *es;
	enum pv_err code;
	const char *url = opts ? opts->url : NULL;
	const char *authority;
	size_t len;

	*out = NULL;
	if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
		return pv_error_set(err, PV_ERR_CONFIG,
				    "esdb: the URL must start with http:// or https://");
	authority = strstr(url, "://") + 3;
	len = strcspn(authority, "/?#");
	if (memchr(authority, '@', len))
		return pv_error_set(err, PV_ERR_CONFIG,
				    "esdb: put the credentials in the username and password "
				    "settings, not in the URL");
	if (len == 0)
		return pv_error_set(err, PV_ERR_CONFIG, "esdb: the URL has no host");
	if (opts->timeout_ms < 0)
		return pv_error_set(err, PV_ERR_CONFIG, "esdb: negative timeout");
	http_opts = (struct pv_http_client_options){
		.who = "esdb",
		.timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : ESDB_DEFAULT_TIMEOUT_MS,
		.ca_file = opts->ca_file,
		/* Empty settings (an unset environment variable) mean "none". */
		.username = opts->username,
		.password = opts->password,
		/* HTTP/1.1 even over TLS: its reason phrases ("Wrong expected
		 * EventNumber") name the server's reasons in our messages. */
		.http1_1 = true,
		.max_body = ESDB_BODY_MAX,
		.in_flight = opts->in_flight > 0 ? (size_t)opts->in_flight : ESDB_DEFAULT_IN_FLIGHT,
	};
	http_opts.connect_timeout_ms = http_opts.timeout_ms < ESDB_CONNECT_TIMEOUT_MS
					       ? http_opts.timeout_ms
					       : ESDB_CONNECT_TIMEOUT_MS;
	es = pv_xcalloc(1, sizeof *es);
	es->base.ops = &esdb_ops;
	if ((code = pv_http_client_open(&http_opts, &es->http, err)) != PV_OK) {
		free(es);
		return code;
	}
	len = strlen(url);
	while (len > 0 && url[len - 1] == '/')
		len--;
	es->url = pv_xstrndup(url, len);
	*out = &es->base;
	return PV_OK;
}

void pv_es_esdb_set_transport(struct pv_es *base, pv_http_transport_fn *fn, void *ctx)
{
	struct esdb *es = (struct esdb *)base;

	pv_http_client_set_transport(es->http, fn, ctx);
}
