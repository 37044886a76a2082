/* libFuzzer target: a request to photovote.fcgi as the router and the body
 * validation see it.  The input is the FastCGI parameters libfcgi hands
 * over, "NAME=value" strings each ended by a NUL (REQUEST_METHOD,
 * PATH_INFO or REQUEST_URI, QUERY_STRING, CONTENT_TYPE, CONTENT_LENGTH,
 * HTTP_AUTHORIZATION, HTTP_PREFER, HTTP_IDEMPOTENCY_KEY, ...), an empty
 * one, then the body.  A first parameter "#remote_user" serves the request
 * in remote_user mode, else in token mode, where the bearer tokens
 * pv_fuzz... (below) are known.  They go through pv_request_serve, the
 * function photovote.fcgi calls for every request, with PostgreSQL and
 * Cosmos DB unreachable and the broker replaced by a counter.
 *
 * Invariants: a refused request (any answer but 202) publishes nothing and
 * an accepted one at most one event (none when it replays an
 * Idempotency-Key); what is published is an envelope the appender decodes
 * (pv_event_from_json) and encodes back equal, that keeps the text rule,
 * routed by its election id under its event id; every answer is a JSON
 * object (an error carries its code) or the metrics text. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "api.h"
#include "auth_token.h"
#include "config.h"
#include "domain/event.h"
#include "log.h"
#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...) FUZZ_FAIL("fuzz-request: " __VA_ARGS__)

static int published;

/* The broker: what the appender would do with the message, checked. */
static enum pv_err publish(void *ctx, const struct pv_amqp_message *msg, int timeout_ms,
			   struct pv_error *err)
{
	json_t *root = json_loadb(msg->body, msg->body_len, JSON_REJECT_DUPLICATES, NULL), *back;
	struct pv_event ev;
	struct pv_error why;

	(void)ctx;
	(void)timeout_ms;
	published++;
	if (!root)
		FAIL("published a body that is not JSON");
	if (pv_event_from_json(root, &ev, &why) != PV_OK)
		FAIL("published an envelope the appender refuses: %s", why.msg);
	back = pv_event_to_json(&ev);
	if (!json_equal(root, back))
		FAIL("the published envelope does not encode back equal");
	if (pv_event_check_text(ev.type, ev.data, NULL, NULL, &why) != PV_OK)
		FAIL("published text the API's rule refuses: %s", why.msg);
	if (strcmp(msg->routing_key, pv_event_election_id(&ev)) != 0 ||
	    strcmp(msg->message_id, ev.id) != 0 ||
	    strcmp(msg->type, pv_event_type_name(ev.type)) != 0)
		FAIL("message properties differ from the envelope");
	json_decref(back);
	json_decref(root);
	pv_event_clear(&ev);
	(void)err;
	return PV_OK;
}

struct body {
	const char *p;
	size_t left;
};

static int read_body(void *ctx, char *buf, int n)
{
	struct body *b = ctx;
	size_t k = b->left < (size_t)n ? b->left : (size_t)n;

	memcpy(buf, b->p, k);
	b->p += k;
	b->left -= k;
	return (int)k;
}

static struct pv_api *make_api(const char *mode)
{
	char mode_var[64];
	char *env[] = {
		mode_var,
		"PHOTOVOTE_LOG_LEVEL=error",
		/* Unreachable at once: a Unix socket in a folder that is not there. */
		"PHOTOVOTE_POSTGRES_CONNINFO=host=/nonexistent/pv-fuzz connect_timeout=1",
		"PHOTOVOTE_HTTP_BODY_LIMIT=8192",
		"PHOTOVOTE_HTTP_TOKEN_CACHE_TTL=3600",
		"PHOTOVOTE_HTTP_IDEMPOTENCY_CAPACITY=64",
		"PHOTOVOTE_HTTP_ADMINS=root@example.org",
		/* Event ids are minted with this key instead of one read from
		 * PostgreSQL (fcgi/command_ids.c), so writes reach the publish. */
		"PHOTOVOTE_HTTP_COMMAND_KEY=pv-fuzz-command-key",
		NULL,
	};
	struct pv_token_identity alice = {"alice@example.org", false};
	struct pv_token_identity root = {"root@example.org", true};
	struct pv_config *cfg;
	struct pv_error err;
	struct pv_api *api;

	snprintf(mode_var, sizeof mode_var, "PHOTOVOTE_HTTP_AUTH_MODE=%s", mode);
	if (pv_config_load(NULL, env, &cfg, &err) != PV_OK)
		FAIL("configuration: %s", err.msg);
	api = pv_api_new_with_publish(cfg, publish, NULL);
	pv_config_free(cfg);
	if (api->tokens) {
		pv_token_cache_add(api->tokens, "pv_fuzzAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
				   &alice);
		pv_token_cache_add(api->tokens, "pv_fuzzBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
				   &root);
	}
	return api;
}

/* The last large answer found good.  GET /openapi.json answers the same
 * 138 KB document every time, and parsing it again for each of the many
 * inputs that reach it was most of this target's time: an answer equal
 * byte for byte (and status) to one already checked is that one. */
#define CHECKED_MIN 16384
static struct {
	int status;
	size_t len;
	char *body;
} checked;

static bool already_checked(const struct pv_http_response *resp)
{
	return resp->body.len >= CHECKED_MIN && resp->status == checked.status &&
	       resp->body.len == checked.len &&
	       memcmp(resp->body.data, checked.body, checked.len) == 0;
}

static void remember_checked(const struct pv_http_response *resp)
{
	if (resp->body.len < CHECKED_MIN)
		return;
	free(checked.body);
	checked.body = malloc(resp->body.len);
	if (!checked.body)
		abort();
	memcpy(checked.body, resp->body.data, resp->body.len);
	checked.len = resp->body.len;
	checked.status = resp->status;
}

static void check_answer(const struct pv_http_response *resp)
{
	json_t *body, *code;

	if (resp->status < 200 || resp->status > 599)
		FAIL("status %d", resp->status);
	if (strcmp(resp->content_type, "application/json") != 0)
		return;
	if (already_checked(resp))
		return;
	body = json_loadb(resp->body.data ? resp->body.data : "", resp->body.len, 0, NULL);
	if (!json_is_object(body))
		FAIL("%d answer is not a JSON object", resp->status);
	code = json_object_get(json_object_get(body, "error"), "code");
	/* Errors carry their code; /healthz's 503 is its health document. */
	if (resp->status >= 400 && !json_is_string(code) &&
	    !(resp->status == 503 && json_is_string(json_object_get(body, "status"))))
		FAIL("%d answer without an error code", resp->status);
	json_decref(body);
	remember_checked(resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct pv_api *apis[2];
	static struct pv_api_thread threads[2];
	static char path[PV_REQUEST_PATH_MAX], prefix[PV_REQUEST_PATH_MAX];
	char *text = malloc(size + 1), *p, *end;
	char **envp = NULL;
	size_t n = 0;
	struct pv_http_response resp;
	struct body body;
	int mode = 0;

	if (!apis[0]) {
		pv_log_init("fuzz-request", PV_LOG_STDERR, PV_LOG_ERROR);
		apis[0] = make_api("token");
		apis[1] = make_api("remote_user");
		threads[0].api = apis[0];
		threads[1].api = apis[1];
	}
	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	/* Parameters up to an empty one (or the end), then the body. */
	p = text;
	end = text + size;
	envp = calloc(size / 2 + 2, sizeof *envp);
	if (!envp)
		abort();
	while (p < end && *p) {
		if (strcmp(p, "#remote_user") == 0)
			mode = 1;
		else
			envp[n++] = p;
		p += strlen(p) + 1;
	}
	if (p < end)
		p++;
	body.p = p < end ? p : end;
	body.left = (size_t)(end - body.p);

	published = 0;
	pv_http_response_init(&resp);
	pv_request_serve(&threads[mode], envp, read_body, &body, path, prefix, &resp);
	check_answer(&resp);
	if (getenv("PV_FUZZ_VERBOSE")) /* what a corpus file does, for its author */
		fprintf(stderr, "%d, %d published: %.*s\n", resp.status, published,
			(int)(resp.body.len < 160 ? resp.body.len : 160),
			resp.body.data ? resp.body.data : "");
	if (resp.status != 202 && published)
		FAIL("a %d answer published %d events", resp.status, published);
	if (published > 1)
		FAIL("one request published %d events", published);
	pv_http_response_clear(&resp);
	free(envp);
	free(text);
	return 0;
}
