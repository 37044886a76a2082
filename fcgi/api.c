#include "api.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth_token.h"
#include "command_ids.h"
#include "commands.h"
#include "config.h"
#include "options.h"
#include "domain/event.h"
#include "health.h"
#include "id.h"
#include "idem.h"
#include "log.h"
#include "metrics.h"
#include "openapi.h"
#include "pgutil.h"
#include "reads.h"
#include "router.h"
#include "xalloc.h"

#define JSON_MAX_DEPTH 32
#define IDEM_KEY_MAX 255
#define CORRELATION_MAX 128
#define RETRY_AFTER_SECONDS 5
#define PATH_ID_MAX 64

struct identity {
	char user[PV_TOKEN_USER_MAX + 1];
	bool admin;
};

struct api_route;
typedef void handler_fn(struct pv_api_thread *t, const struct api_route *route,
			const struct pv_http_request *req, const struct pv_route_match *m,
			struct pv_http_response *resp);

/* One row per route.  Write rows name their event, the id field the
 * server generates when the client omits it (what the write creates), and
 * a date field that defaults to now. */
struct api_route {
	struct pv_route r; /* first: the router reads rows through it */
	handler_fn *fn;
	enum pv_event_type event;
	const char *generate;
	const char *default_now;
};

/* Path placeholders and the event fields they fill. */
static const struct {
	const char *param;
	const char *field;
} path_fields[] = {
	{"eid", "election_id"},
	{"cid", "competition_id"},
	{"kid", "candidate_id"},
	{"bid", "ballot_id"},
};

static handler_fn handle_election, handle_elections, handle_results;
static handler_fn handle_write, handle_healthz, handle_readyz, handle_livez, handle_metrics,
	handle_command, handle_openapi;

#define E "/elections/{eid}"
#define C E "/competitions/{cid}"
#define K C "/candidates/{kid}"
#define B E "/ballots/{bid}"
static const struct api_route routes[] = {
	{{"POST", "/elections"}, handle_write, PV_EV_ELECTION_CREATED, "election_id", NULL},
	{{"PUT", E "/name"}, handle_write, PV_EV_ELECTION_NAME_CHANGED, NULL, NULL},
	{{"PUT", E "/description"}, handle_write, PV_EV_ELECTION_DESCRIPTION_CHANGED, NULL, NULL},
	{{"POST", E "/open"}, handle_write, PV_EV_ELECTION_OPENED, NULL, "open_date"},
	{{"POST", E "/close"}, handle_write, PV_EV_ELECTION_CLOSED, NULL, "close_date"},
	{{"DELETE", E}, handle_write, PV_EV_ELECTION_DELETED, NULL, NULL},
	{{"POST", E "/competitions"},
	 handle_write,
	 PV_EV_COMPETITION_ADDED,
	 "competition_id",
	 NULL},
	{{"PUT", C "/name"}, handle_write, PV_EV_COMPETITION_NAME_CHANGED, NULL, NULL},
	{{"PUT", C "/description"},
	 handle_write,
	 PV_EV_COMPETITION_DESCRIPTION_CHANGED,
	 NULL,
	 NULL},
	{{"DELETE", C}, handle_write, PV_EV_COMPETITION_REMOVED, NULL, NULL},
	{{"POST", C "/candidates"}, handle_write, PV_EV_CANDIDATE_ADDED, "candidate_id", NULL},
	{{"PUT", K "/name"}, handle_write, PV_EV_CANDIDATE_NAME_CHANGED, NULL, NULL},
	{{"PUT", K "/description"}, handle_write, PV_EV_CANDIDATE_DESCRIPTION_CHANGED, NULL, NULL},
	{{"PUT", K "/image"}, handle_write, PV_EV_CANDIDATE_IMAGE_CHANGED, NULL, NULL},
	{{"DELETE", K}, handle_write, PV_EV_CANDIDATE_REMOVED, NULL, NULL},
	{{"POST", E "/voters"}, handle_write, PV_EV_VOTER_REGISTERED, "voter_id", NULL},
	{{"POST", E "/ballots"}, handle_write, PV_EV_BALLOT_CREATED, "ballot_id", NULL},
	{{"PUT", B "/ratings/{kid}"}, handle_write, PV_EV_BALLOT_CANDIDATE_RATED, NULL, NULL},
	{{"POST", B "/cast"}, handle_write, PV_EV_BALLOT_CAST, NULL, NULL},
	/* Reads (GET /elections..., /commands/{id}) join here with their issues. */
	{{"GET", "/commands/{id}"}, handle_command, PV_EV__COUNT, NULL, NULL},
	{{"GET", "/elections"}, handle_elections, PV_EV__COUNT, NULL, NULL},
	{{"GET", E}, handle_election, PV_EV__COUNT, NULL, NULL},
	{{"GET", E "/results"}, handle_results, PV_EV__COUNT, NULL, NULL},
	{{"GET", "/healthz"}, handle_healthz, PV_EV__COUNT, NULL, NULL},
	{{"GET", "/readyz"}, handle_readyz, PV_EV__COUNT, NULL, NULL},
	{{"GET", "/livez"}, handle_livez, PV_EV__COUNT, NULL, NULL},
	{{"GET", "/metrics"}, handle_metrics, PV_EV__COUNT, NULL, NULL},
	{{"GET", "/openapi.json"}, handle_openapi, PV_EV__COUNT, NULL, NULL},
};
#undef E
#undef C
#undef K
#undef B
#define NROUTES (sizeof routes / sizeof routes[0])

static char *route_labels[NROUTES];

struct pv_api *pv_api_new(const struct pv_config *cfg)
{
	return pv_api_new_with_publish(cfg, NULL, NULL);
}

struct pv_api *pv_api_new_with_publish(const struct pv_config *cfg, pv_api_publish_fn *publish,
				       void *ctx)
{
	struct pv_api *api = pv_xcalloc(1, sizeof *api);
	struct pv_amqp_params params;

	api->auth_mode = strcmp(pv_config_str(cfg, "http", "auth_mode"), "remote_user") == 0
				 ? PV_AUTH_REMOTE_USER
				 : PV_AUTH_TOKEN;
	api->body_limit = (size_t)pv_config_int(cfg, "http", "body_limit");
	api->publish_timeout_ms = (int)pv_config_int(cfg, "http", "publish_timeout_ms");
	api->broker_wait_ms = (int)pv_config_int(cfg, "http", "broker_wait_ms");
	api->pg_conninfo = pv_xstrdup(pv_config_str(cfg, "postgres", "conninfo"));
	if (api->auth_mode == PV_AUTH_TOKEN)
		api->tokens = pv_token_cache_new(PV_TOKEN_CACHE_CAPACITY,
						 (int)pv_config_int(cfg, "http", "token_cache_ttl"),
						 (int)pv_config_int(cfg, "http", "token_grace"));
	pv_commands_configure(cfg);
	api->ids = pv_command_ids_new(cfg);
	api->reads = pv_reads_new(cfg);
	for (size_t i = 0; i < NROUTES; i++)
		if (!route_labels[i])
			route_labels[i] =
				pv_xasprintf("%s %s", routes[i].r.method, routes[i].r.pattern);
	api->metrics = pv_metrics_new((const char *const *)route_labels, NROUTES);
	api->idem = pv_idem_new((size_t)pv_config_int(cfg, "http", "idempotency_capacity"),
				(int)pv_config_int(cfg, "http", "idempotency_ttl"));
	api->publish = publish;
	api->publish_ctx = ctx;
	if (!publish) {
		pv_amqp_params_from_config(&params, cfg);
		api->publisher = pv_amqp_publisher_start(&params);
		pv_amqp_params_clear(&params);
		api->health = pv_health_start(cfg, api->publisher);
	}
	return api;
}

void pv_api_free(struct pv_api *api)
{
	if (!api)
		return;
	pv_health_stop(api->health);
	pv_amqp_publisher_stop(api->publisher);
	pv_command_ids_free(api->ids); /* after the publisher: its last confirms */
	pv_idem_free(api->idem);
	pv_token_cache_free(api->tokens);
	pv_metrics_free(api->metrics);
	pv_reads_free(api->reads);
	free(api->pg_conninfo);
	free(api);
	for (size_t i = 0; i < NROUTES; i++) {
		free(route_labels[i]);
		route_labels[i] = NULL;
	}
}

void pv_api_thread_clear(struct pv_api_thread *t)
{
	if (t->pg)
		PQfinish(t->pg);
	t->pg = NULL;
	pv_reads_thread_clear(t);
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void pv_api_handle(struct pv_api_thread *t, const struct pv_http_request *req,
		   struct pv_http_response *resp)
{
	double start = now_seconds();
	struct pv_route_match m;
	int status;

	status = pv_router_match(routes, NROUTES, sizeof routes[0], req->method, req->path, &m);
	if (status == 404) {
		pv_http_error(resp, 404, "not_found", "no resource at this path");
	} else if (status == 405) {
		pv_http_header(resp, "Allow", "%s", m.allow);
		pv_http_error(resp, 405, "method_not_allowed",
			      "%s is not allowed here; allowed: %s", req->method, m.allow);
	} else {
		const struct api_route *route = (const struct api_route *)m.route;

		route->fn(t, route, req, &m, resp);
	}
	pv_metrics_request(t->api->metrics, m.index, resp->status, now_seconds() - start);
}

/* PostgreSQL: this thread's connection, opened or reset as needed. */
enum pv_err pv_api_thread_pg(struct pv_api_thread *t, struct pv_error *err)
{
	if (!t->pg)
		return pv_pg_connect(t->api->pg_conninfo, &t->pg, err);
	return pv_pg_ensure(t->pg, err);
}

/* A 503 with Retry-After.  On a write, `published` says whether the broker
 * may hold the command ("no" or "unknown") and event_id (when not NULL)
 * names it in the body and in Location, so that a client settles an
 * unknown outcome with GET /commands/{id} instead of guessing. */
static void unavailable(struct pv_http_response *resp, const char *code, const char *what,
			const struct pv_error *err, const char *published, const char *prefix,
			const char *event_id)
{
	json_t *body, *e;

	pv_http_header(resp, "Retry-After", "%d", RETRY_AFTER_SECONDS);
	pv_log_warnx("http", "503 %s%s%s: %s", code, event_id ? " " : "", event_id ? event_id : "",
		     err ? err->msg : what);
	if (!published) {
		pv_http_error(resp, 503, code, "%s is unavailable, try again later", what);
		return;
	}
	if (strcmp(published, "no") == 0)
		body = json_pack("{s:{s:s,s:s+,s:s}}", "error", "code", code, "message", what,
				 " is unavailable; the command was not published, retry it later",
				 "published", published);
	else
		body = json_pack("{s:{s:s,s:s++,s:s}}", "error", "code", code, "message", what,
				 " did not confirm the command; it may have been published: ",
				 "GET its Location before retrying", "published", published);
	if (!body)
		pv_oom("json_pack", 0);
	e = json_object_get(body, "error");
	if (event_id) {
		if (json_object_set_new(e, "event_id", json_string(event_id)) != 0)
			pv_oom("json_object_set_new", 0);
		pv_http_header(resp, "Location", "%s/commands/%s", prefix, event_id);
	}
	pv_http_json(resp, 503, body);
	json_decref(body);
}

/* Fills *id or answers 401/503 and returns false.  A write's 503 says that
 * nothing was published. */
static bool authenticate(struct pv_api_thread *t, const struct pv_http_request *req,
			 struct pv_http_response *resp, struct identity *id, bool write)
{
	struct pv_token_identity tid;
	struct pv_error err;
	const char *token;
	enum pv_err rc;

	memset(id, 0, sizeof *id);
	if (t->api->auth_mode == PV_AUTH_REMOTE_USER) {
		if (!req->remote_user || !*req->remote_user ||
		    strlen(req->remote_user) > PV_TOKEN_USER_MAX) {
			pv_metrics_count(t->api->metrics, "auth_failures");
			pv_http_header(resp, "WWW-Authenticate", "Basic realm=\"photovote\"");
			pv_http_error(resp, 401, "unauthenticated",
				      "the web server passed no authenticated user");
			return false;
		}
		snprintf(id->user, sizeof id->user, "%s", req->remote_user);
		return true;
	}
	if (!req->authorization || strncasecmp(req->authorization, "Bearer ", 7) != 0) {
		pv_metrics_count(t->api->metrics, "auth_failures");
		pv_http_header(resp, "WWW-Authenticate", "Bearer realm=\"photovote\"");
		pv_http_error(resp, 401, "unauthenticated",
			      "an Authorization: Bearer token is required");
		return false;
	}
	token = req->authorization + 7;
	while (*token == ' ')
		token++;
	/* A token verified less than token_cache_ttl ago costs no query. */
	if (pv_token_cache_find(t->api->tokens, token, &tid)) {
		rc = PV_OK;
	} else {
		rc = pv_api_thread_pg(t, &err);
		if (rc == PV_OK)
			rc = pv_token_lookup(t->pg, token, &tid, &err);
		if (rc == PV_OK)
			pv_token_cache_add(t->api->tokens, token, &tid);
	}
	if (rc == PV_ERR_UNAUTHORIZED) {
		pv_metrics_count(t->api->metrics, "auth_failures");
		pv_http_header(resp, "WWW-Authenticate",
			       "Bearer realm=\"photovote\", error=\"invalid_token\"");
		pv_http_error(resp, 401, "unauthenticated", "the bearer token is not valid");
		return false;
	}
	/* PostgreSQL cannot answer: a token it accepted lately still counts. */
	if (rc != PV_OK && rc != PV_ERR_UNAUTHORIZED &&
	    pv_token_cache_find_grace(t->api->tokens, token, &tid)) {
		pv_metrics_count(t->api->metrics, "auth_grace");
		rc = PV_OK;
	}
	if (rc != PV_OK) {
		unavailable(resp, "auth_unavailable", "the token store", &err, write ? "no" : NULL,
			    req->prefix, NULL);
		return false;
	}
	snprintf(id->user, sizeof id->user, "%s", tid.user);
	id->admin = tid.admin;
	return true;
}

/* SHA-256 hex of the parts of a request that must match on a retry. */
static void fingerprint(const struct pv_http_request *req, const struct pv_buf *body,
			char out[PV_IDEM_FP_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(ctx, req->method, strlen(req->method) + 1) ||
	    !EVP_DigestUpdate(ctx, req->path, strlen(req->path) + 1) ||
	    !EVP_DigestUpdate(ctx, body->data ? body->data : "", body->len) ||
	    !EVP_DigestFinal_ex(ctx, md, &mdlen))
		pv_oom("EVP sha256", 0);
	EVP_MD_CTX_free(ctx);
	for (unsigned i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[PV_IDEM_FP_LEN] = '\0';
}

static bool printable_ascii(const char *s, size_t max)
{
	size_t n = 0;

	for (; *s; s++, n++)
		if (*s < 0x21 || *s > 0x7e || n >= max)
			return false;
	return n > 0;
}

/* Parses the body into a JSON object or answers 400. */
static json_t *parse_body(const struct pv_buf *body, struct pv_http_response *resp)
{
	json_error_t jerr;
	json_t *data;

	if (body->len == 0)
		return json_object();
	if (pv_json_depth(body->data, body->len, JSON_MAX_DEPTH) > JSON_MAX_DEPTH) {
		pv_http_error(resp, 400, "invalid_json", "the body is nested deeper than %d",
			      JSON_MAX_DEPTH);
		return NULL;
	}
	data = json_loadb(body->data, body->len, JSON_REJECT_DUPLICATES, &jerr);
	if (!data) {
		pv_http_error(resp, 400, "invalid_json", "the body is not valid JSON: %s (line %d)",
			      jerr.text, jerr.line);
		return NULL;
	}
	if (!json_is_object(data)) {
		json_decref(data);
		pv_http_error(resp, 400, "invalid_json", "the body must be a JSON object");
		return NULL;
	}
	return data;
}

/* Puts the path's ids into data; answers 400 on a bad id or a body that
 * names another one. */
static bool merge_path_ids(const struct pv_route_match *m, json_t *data,
			   struct pv_http_response *resp)
{
	for (size_t i = 0; i < sizeof path_fields / sizeof path_fields[0]; i++) {
		char value[PATH_ID_MAX + 1];
		const char *field = path_fields[i].field;
		const json_t *given;

		if (!strstr(m->route->pattern, path_fields[i].param))
			continue;
		if (!pv_route_param(m, path_fields[i].param, value, sizeof value) ||
		    !pv_ulid_valid(value)) {
			pv_http_error(resp, 400, "invalid_id", "%s in the path is not a ULID",
				      field);
			return false;
		}
		given = json_object_get(data, field);
		if (given &&
		    !(json_is_string(given) && strcmp(json_string_value(given), value) == 0)) {
			pv_http_error(resp, 400, "id_mismatch",
				      "%s in the body differs from the one in the path", field);
			return false;
		}
		if (json_object_set_new(data, field, json_string(value)) != 0)
			pv_oom("json_object_set_new", 0);
	}
	return true;
}

/* Fills what the client may omit: the created entity's id, a date. */
static bool fill_defaults(const struct api_route *route, json_t *data,
			  struct pv_http_response *resp)
{
	if (route->generate && !json_object_get(data, route->generate)) {
		char ulid[PV_ULID_LEN + 1];
		struct pv_error err;

		if (pv_ulid_new(ulid, &err) != PV_OK) {
			pv_log_warnx("http", "%s", err.msg);
			pv_http_error(resp, 500, "internal_error", "could not generate an id");
			return false;
		}
		if (json_object_set_new(data, route->generate, json_string(ulid)) != 0)
			pv_oom("json_object_set_new", 0);
	}
	if (route->default_now && !json_object_get(data, route->default_now)) {
		char now[32];

		pv_rfc3339_now(now);
		if (json_object_set_new(data, route->default_now, json_string(now)) != 0)
			pv_oom("json_object_set_new", 0);
	}
	return true;
}

static void accepted(const struct api_route *route, const struct pv_http_request *req,
		     const struct pv_event *ev, struct pv_http_response *resp)
{
	json_t *body = json_object();

	if (!body)
		pv_oom("json_object", 0);
	json_object_set_new(body, "event_id", json_string(ev->id));
	json_object_set_new(body, "election_id", json_string(pv_event_election_id(ev)));
	if (route->generate && strcmp(route->generate, "election_id") != 0)
		json_object_set(body, route->generate, json_object_get(ev->data, route->generate));
	json_object_set_new(body, "status", json_string("accepted"));
	pv_http_header(resp, "Location", "%s/commands/%s", req->prefix, ev->id);
	pv_http_json(resp, 202, body);
	json_decref(body);
}

/* Validated data -> event -> broker.  Answers 202 or an error. */
static void publish_event(struct pv_api_thread *t, const struct api_route *route,
			  const struct pv_http_request *req, const struct identity *id,
			  const char *event_id, json_t *data, struct pv_http_response *resp)
{
	char correlation[PV_UUID_LEN + 1], field[PV_FIELD_NAME_MAX] = "";
	enum pv_field_error kind = PV_FIELD_ERR_NONE;
	struct pv_amqp_message msg;
	struct pv_event_meta meta;
	struct pv_event ev;
	struct pv_error err;
	bool maybe = false;
	char *text;
	json_t *env;

	if (pv_event_validate_data(route->event, data, &kind, field, &err) != PV_OK ||
	    pv_event_check_text(route->event, data, &kind, field, &err) != PV_OK) {
		json_decref(data);
		pv_http_error(resp, 400, pv_field_error_name(kind), "%s", err.msg);
		return;
	}
	memset(&meta, 0, sizeof meta);
	meta.user = (char *)id->user;
	meta.admin = id->admin;
	if (req->correlation_id && printable_ascii(req->correlation_id, CORRELATION_MAX)) {
		meta.correlation_id = (char *)req->correlation_id;
	} else {
		pv_uuid_new(correlation);
		meta.correlation_id = correlation;
	}
	meta.source = req->remote_addr && *req->remote_addr ? (char *)req->remote_addr : NULL;
	if (pv_event_init(&ev, event_id, route->event, data, &meta, &err) != PV_OK) {
		pv_http_error(resp, 400, "invalid_request", "%s", err.msg);
		return;
	}
	env = pv_event_to_json(&ev);
	text = json_dumps(env, JSON_COMPACT);
	if (!text)
		pv_oom("json_dumps", 0);
	json_decref(env);

	memset(&msg, 0, sizeof msg);
	msg.routing_key = pv_event_election_id(&ev);
	msg.body = text;
	msg.body_len = strlen(text);
	msg.content_type = "application/json";
	msg.message_id = ev.id;
	msg.type = pv_event_type_name(ev.type);
	msg.timestamp = (uint64_t)time(NULL);
	msg.user = ev.meta.user;
	msg.correlation_id = ev.meta.correlation_id;
	msg.source = ev.meta.source;
	if ((t->api->publish
		     ? t->api->publish(t->api->publish_ctx, &msg, t->api->publish_timeout_ms, &err)
		     : pv_amqp_publisher_publish(t->api->publisher, &msg, t->api->broker_wait_ms,
						 t->api->publish_timeout_ms, &maybe, &err)) ==
	    PV_OK) {
		pv_command_ids_record(t->api->ids, ev.id, true);
		accepted(route, req, &ev, resp);
	} else {
		if (maybe)
			pv_command_ids_record(t->api->ids, ev.id, false);
		unavailable(resp, "broker_unavailable", "the message broker", &err,
			    maybe ? "unknown" : "no", req->prefix, ev.id);
	}
	free(text);
	pv_event_clear(&ev);
}

static void handle_write(struct pv_api_thread *t, const struct api_route *route,
			 const struct pv_http_request *req, const struct pv_route_match *m,
			 struct pv_http_response *resp)
{
	struct pv_buf body = PV_BUF_INIT;
	char event_id[PV_UUID_LEN + 1], fp[PV_IDEM_FP_LEN + 1];
	struct pv_idem_answer answer;
	struct identity id;
	bool idem = false;
	json_t *data = NULL;
	int wait = pv_commands_prefer_wait(req->prefer);

	event_id[0] = '\0';
	if (!authenticate(t, req, resp, &id, true))
		return;
	/* A body needs the JSON media type; an empty one may come without. */
	if ((req->content_length > 0 || (req->content_length < 0 && req->content_type)) &&
	    !pv_http_is_json_type(req->content_type)) {
		pv_http_error(resp, 415, "unsupported_media_type",
			      "the body must be application/json");
		return;
	}
	switch (pv_http_read_body(req, t->api->body_limit, &body)) {
	case PV_BODY_OK: break;
	case PV_BODY_TOO_LARGE:
		pv_http_error(resp, 413, "body_too_large", "the body is over %zu bytes",
			      t->api->body_limit);
		goto out;
	case PV_BODY_READ_ERROR:
		pv_http_error(resp, 400, "invalid_body", "the body ended before its length");
		goto out;
	}
	data = parse_body(&body, resp);
	if (!data || !merge_path_ids(m, data, resp))
		goto out;

	if (req->idempotency_key) {
		struct pv_buf name = PV_BUF_INIT;
		struct pv_error err;
		enum pv_err rc;

		if (!printable_ascii(req->idempotency_key, IDEM_KEY_MAX)) {
			pv_http_error(resp, 400, "invalid_idempotency_key",
				      "Idempotency-Key must be 1 to %d printable ASCII characters",
				      IDEM_KEY_MAX);
			goto out;
		}
		/* user NUL key: neither part can contain a NUL. */
		pv_buf_append(&name, id.user, strlen(id.user) + 1);
		pv_buf_puts(&name, req->idempotency_key);
		rc = pv_uuid_v5(event_id, PV_UUID_NS_IDEMPOTENCY, name.data, name.len, &err);
		pv_buf_free(&name);
		if (rc != PV_OK) {
			pv_http_error(resp, 500, "internal_error", "%s", err.msg);
			goto out;
		}
		fingerprint(req, &body, fp);
		switch (pv_idem_begin(t->api->idem, event_id, fp, t->api->publish_timeout_ms,
				      &answer)) {
		case PV_IDEM_NEW: idem = true; break;
		case PV_IDEM_REPLAY:
			pv_metrics_count(t->api->metrics, "idempotent_replays");
			resp->status = answer.status;
			if (answer.location)
				pv_http_header(resp, "Location", "%s", answer.location);
			pv_buf_puts(&resp->body, answer.body ? answer.body : "");
			pv_idem_answer_clear(&answer);
			goto out;
		case PV_IDEM_MISMATCH:
			pv_http_error(resp, 422, "idempotency_key_reused",
				      "this Idempotency-Key was used for another request");
			goto out;
		case PV_IDEM_BUSY:
			pv_http_error(resp, 409, "idempotency_key_in_progress",
				      "a request with this Idempotency-Key is still running");
			goto out;
		}
	} else {
		struct pv_error err;

		if (pv_command_ids_mint(t->api->ids, t->api->broker_wait_ms, event_id, &err) !=
		    PV_OK) {
			unavailable(resp, "id_key_unavailable", "the command id key", &err, "no",
				    req->prefix, NULL);
			event_id[0] = '\0';
			goto out;
		}
	}
	if (fill_defaults(route, data, resp)) {
		publish_event(t, route, req, &id, event_id, data, resp);
		data = NULL; /* taken over */
	}
	if (idem) {
		/* Only an accepted write fixes the answer; anything else may be
		 * retried with the same key. */
		if (resp->status == 202) {
			char location[256];

			snprintf(location, sizeof location, "%s/commands/%s", req->prefix,
				 event_id);
			answer.status = 202;
			answer.location = location;
			answer.body = resp->body.data;
			pv_idem_finish(t->api->idem, event_id, &answer);
		} else {
			pv_idem_finish(t->api->idem, event_id, NULL);
		}
	}
out:
	/* Prefer: wait=N turns the 202 (first answer or replay) into the verdict. */
	if (wait >= 0 && resp->status == 202 && event_id[0])
		pv_commands_wait(t, event_id, wait, route->generate != NULL, resp);
	json_decref(data);
	pv_buf_free(&body);
}

/* GET /commands/{id}: the appender's verdict (commands.c). */
static void handle_command(struct pv_api_thread *t, const struct api_route *route,
			   const struct pv_http_request *req, const struct pv_route_match *m,
			   struct pv_http_response *resp)
{
	char event_id[PV_UUID_LEN + 1];
	struct identity id;

	if (!authenticate(t, req, resp, &id, false))
		return;
	if (!pv_route_param(m, "id", event_id, sizeof event_id)) {
		pv_http_error(resp, 400, "invalid_id", "the command id is not a UUID");
		return;
	}
	pv_commands_get(t, event_id, id.user, id.admin, resp);
}

/* GET /elections/{eid}, /elections/{eid}/results, /elections (reads.c). */
static void handle_election(struct pv_api_thread *t, const struct api_route *route,
			    const struct pv_http_request *req, const struct pv_route_match *m,
			    struct pv_http_response *resp)
{
	char eid[PATH_ID_MAX + 1];
	struct identity id;

	if (!authenticate(t, req, resp, &id, false))
		return;
	if (!pv_route_param(m, "eid", eid, sizeof eid))
		eid[0] = '\0';
	pv_reads_election(t, eid, id.user, id.admin, req, resp);
}

static void handle_results(struct pv_api_thread *t, const struct api_route *route,
			   const struct pv_http_request *req, const struct pv_route_match *m,
			   struct pv_http_response *resp)
{
	char eid[PATH_ID_MAX + 1];
	struct identity id;

	if (!authenticate(t, req, resp, &id, false))
		return;
	if (!pv_route_param(m, "eid", eid, sizeof eid))
		eid[0] = '\0';
	pv_reads_results(t, eid, req, resp);
}

static void handle_elections(struct pv_api_thread *t, const struct api_route *route,
			     const struct pv_http_request *req, const struct pv_route_match *m,
			     struct pv_http_response *resp)
{
	struct identity id;

	if (!authenticate(t, req, resp, &id, false))
		return;
	pv_reads_list(t, req, resp);
}

/* GET /healthz, /readyz, /livez (health.c): what the probes last saw. */
static void handle_healthz(struct pv_api_thread *t, const struct api_route *route,
			   const struct pv_http_request *req, const struct pv_route_match *m,
			   struct pv_http_response *resp)
{
	pv_health_answer(t->api->health, PV_HEALTH_ALL, resp);
}

static void handle_readyz(struct pv_api_thread *t, const struct api_route *route,
			  const struct pv_http_request *req, const struct pv_route_match *m,
			  struct pv_http_response *resp)
{
	pv_health_answer(t->api->health, PV_HEALTH_READY, resp);
}

static void handle_livez(struct pv_api_thread *t, const struct api_route *route,
			 const struct pv_http_request *req, const struct pv_route_match *m,
			 struct pv_http_response *resp)
{
	pv_health_answer(t->api->health, PV_HEALTH_LIVE, resp);
}

static void handle_metrics(struct pv_api_thread *t, const struct api_route *route,
			   const struct pv_http_request *req, const struct pv_route_match *m,
			   struct pv_http_response *resp)
{
	struct pv_amqp_publisher_stats stats;

	memset(&stats, 0, sizeof stats);
	if (t->api->publisher)
		pv_amqp_publisher_stats(t->api->publisher, &stats);
	resp->status = 200;
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
	pv_metrics_render(t->api->metrics, &stats, &resp->body);
}

/* GET /openapi.json: the document compiled in from fcgi/openapi.json. */
static void handle_openapi(struct pv_api_thread *t, const struct api_route *route,
			   const struct pv_http_request *req, const struct pv_route_match *m,
			   struct pv_http_response *resp)
{
	resp->status = 200;
	pv_buf_append(&resp->body, pv_openapi_json, pv_openapi_json_len);
}

void pv_api_print_routes(FILE *out)
{
	for (size_t i = 0; i < NROUTES; i++) {
		const struct api_route *r = &routes[i];

		fprintf(out, "%s %s %s %s %s\n", r->r.method, r->r.pattern,
			r->fn == handle_write ? pv_event_type_name(r->event) : "-",
			r->generate ? r->generate : "-", r->default_now ? r->default_now : "-");
	}
}
