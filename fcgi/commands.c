/* Verdicts over HTTP; see commands.h.
 *
 * Waiting (Prefer: wait=N) holds the request thread: it LISTENs on channel
 * pv_audit (sql/005_audit_notify.sql: one notification per statement that
 * records verdicts), looks the event id up, and sleeps in poll() on the
 * connection's socket until a notification or the deadline.  LISTEN comes
 * before the first look, so a verdict committed in between still wakes
 * it; a look at least every WAKE_MS covers a database without the trigger.
 * The thread's connection is shared with its other requests, so the wait
 * ends with UNLISTEN and drops what notifications arrived. */
#define _POSIX_C_SOURCE 200809L

#include "commands.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "audit.h"
#include "command_ids.h"
#include "config.h"
#include "log.h"
#include "pgutil.h"
#include "xalloc.h"

#define RETRY_AFTER_SECONDS 5
#define WAKE_MS 1000
#define CHANNEL "pv_audit"

static int max_wait = 30;

/* The HTTP status of each kind of rejection (http-api.md). */
static const int kind_status[] = {
	[PV_AUDIT_KIND_NONE] = 200,      [PV_AUDIT_KIND_STATE] = 409,
	[PV_AUDIT_KIND_VALUE] = 422,     [PV_AUDIT_KIND_AUTHORIZATION] = 403,
	[PV_AUDIT_KIND_MALFORMED] = 422,
};

void pv_commands_configure(const struct pv_config *cfg)
{
	max_wait = (int)pv_config_int(cfg, "http", "max_wait");
}

/* Skips optional whitespace. */
static const char *ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

int pv_commands_prefer_wait(const char *prefer)
{
	const char *p = prefer;

	if (!p)
		return -1;
	while (*p) {
		const char *name = ows(p), *end = name;
		long n;

		while (*end && *end != '=' && *end != ',' && *end != ';' && *end != ' ' &&
		       *end != '\t')
			end++;
		p = ows(end);
		if ((size_t)(end - name) == 4 && strncasecmp(name, "wait", 4) == 0 && *p == '=') {
			const char *v = ows(p + 1);
			char *stop;
			bool quoted = *v == '"';

			if (quoted)
				v++;
			errno = 0;
			n = isdigit((unsigned char)*v) ? strtol(v, &stop, 10) : -1;
			if (n >= 0 && !errno && (!quoted || *stop == '"'))
				return n > INT_MAX ? INT_MAX : (int)n;
			return -1;
		}
		/* On to the next preference, past its value and parameters
		 * (a quoted string may hold a comma). */
		for (bool q = false; *p && (q || *p != ','); p++)
			if (*p == '"')
				q = !q;
		if (*p == ',')
			p++;
	}
	return -1;
}

static enum pv_err thread_pg(struct pv_api_thread *t, struct pv_error *err)
{
	if (!t->pg)
		return pv_pg_connect(t->api->pg_conninfo, &t->pg, err);
	return pv_pg_ensure(t->pg, err);
}

static void unavailable(struct pv_http_response *resp, const struct pv_error *err)
{
	pv_http_header(resp, "Retry-After", "%d", RETRY_AFTER_SECONDS);
	pv_http_error(resp, 503, "audit_unavailable",
		      "the audit log is unavailable, try again later");
	pv_log_warnx("http", "503 audit_unavailable: %s", err->msg);
}

static void set_new(json_t *obj, const char *key, json_t *value)
{
	if (!value || json_object_set_new(obj, key, value) != 0)
		pv_oom("json_object_set_new", 0);
}

/* The verdict fields of a row, added to obj. */
static void verdict_fields(json_t *obj, const struct pv_audit_entry *a)
{
	set_new(obj, "status", json_string(pv_audit_status_name(a->status)));
	if (a->type)
		set_new(obj, "type", json_string(a->type));
	if (a->status == PV_AUDIT_APPENDED) {
		set_new(obj, "stream", json_string(a->stream));
		set_new(obj, "number", json_integer(a->number));
	} else {
		set_new(obj, "kind", json_string(pv_audit_kind_name(a->kind)));
		set_new(obj, "rule", json_string(a->rule));
		if (a->reason)
			set_new(obj, "reason", json_string(a->reason));
	}
	if (a->recorded)
		set_new(obj, "recorded", json_string(a->recorded));
}

void pv_commands_get(struct pv_api_thread *t, const char *event_id, const char *user, bool admin,
		     struct pv_http_response *resp)
{
	enum pv_command_state state = PV_COMMAND_UNKNOWN;
	struct pv_audit_entry a;
	struct pv_error err;
	enum pv_err rc;
	json_t *body;

	if (!pv_uuid_valid(event_id)) {
		pv_http_error(resp, 400, "invalid_id", "the command id is not a UUID");
		return;
	}
	rc = thread_pg(t, &err);
	if (rc == PV_OK)
		rc = pv_audit_get(t->pg, event_id, &a, &err);
	if (rc != PV_OK && rc != PV_ERR_NOT_FOUND) {
		unavailable(resp, &err);
		return;
	}
	/* Another user's command is none of the caller's business. */
	if (rc == PV_OK && !admin && (!a.user || strcmp(a.user, user) != 0)) {
		pv_audit_entry_clear(&a);
		pv_http_error(resp, 404, "not_found", "no command of yours has this id");
		return;
	}
	if (rc == PV_ERR_NOT_FOUND) {
		/* No verdict yet: in flight, or never published (command_ids.h). */
		if (pv_command_ids_judge(t->api->ids, t->pg, event_id, &state, &err) != PV_OK) {
			unavailable(resp, &err);
			return;
		}
		if (state == PV_COMMAND_UNKNOWN) {
			pv_http_error(resp, 404, "unknown_command",
				      "no command with this id was published");
			return;
		}
	}
	body = json_pack("{s:s}", "event_id", event_id);
	if (!body)
		pv_oom("json_pack", 0);
	if (rc == PV_ERR_NOT_FOUND) {
		set_new(body, "status",
			json_string(state == PV_COMMAND_PENDING ? "pending" : "unconfirmed"));
		pv_http_header(resp, "Cache-Control", "no-store");
	} else {
		verdict_fields(body, &a);
		pv_audit_entry_clear(&a);
	}
	pv_http_json(resp, 200, body);
	json_decref(body);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void drop_notifies(PGconn *pg)
{
	PGnotify *n;

	while ((n = PQnotifies(pg)) != NULL)
		PQfreemem(n);
}

/* Waits for the row of event_id until deadline (monotonic ms).  PV_OK with
 * *out filled, PV_ERR_TIMEOUT, or a database error. */
static enum pv_err await_verdict(PGconn *pg, const char *event_id, long long deadline,
				 struct pv_audit_entry *out, struct pv_error *err)
{
	enum pv_err rc;

	rc = pv_pg_command(pg, "wait: listen", "LISTEN " CHANNEL, err);
	if (rc != PV_OK)
		return rc;
	for (;;) {
		struct pollfd pfd = {.fd = PQsocket(pg), .events = POLLIN};
		long long left;

		drop_notifies(pg);
		rc = pv_audit_get(pg, event_id, out, err);
		if (rc != PV_ERR_NOT_FOUND)
			break;
		left = deadline - now_ms();
		if (left <= 0) {
			rc = pv_error_set(err, PV_ERR_TIMEOUT, "no verdict for %s yet", event_id);
			break;
		}
		if (pfd.fd < 0) {
			rc = pv_error_set(err, PV_ERR_UNAVAILABLE, "wait: no connection");
			break;
		}
		if (poll(&pfd, 1, (int)(left < WAKE_MS ? left : WAKE_MS)) < 0 && errno != EINTR) {
			rc = pv_error_set(err, PV_ERR_UNAVAILABLE, "wait: poll: %s",
					  strerror(errno));
			break;
		}
		if (pfd.revents && !PQconsumeInput(pg)) {
			rc = pv_error_set(err, PV_ERR_UNAVAILABLE, "wait: %s", PQerrorMessage(pg));
			break;
		}
	}
	if (PQstatus(pg) == CONNECTION_OK) {
		struct pv_error ignored;

		if (pv_pg_command(pg, "wait: unlisten", "UNLISTEN " CHANNEL, &ignored) != PV_OK)
			pv_log_warnx("http", "%s", ignored.msg);
		drop_notifies(pg);
	}
	return rc;
}

void pv_commands_wait(struct pv_api_thread *t, const char *event_id, int seconds, bool creates,
		      struct pv_http_response *resp)
{
	int applied = seconds < max_wait ? seconds : max_wait;
	struct pv_audit_entry a;
	struct pv_error err;
	json_error_t jerr;
	enum pv_err rc;
	json_t *body;

	pv_http_header(resp, "Preference-Applied", "wait=%d", applied);
	rc = thread_pg(t, &err);
	if (rc == PV_OK)
		rc = await_verdict(t->pg, event_id, now_ms() + (long long)applied * 1000, &a, &err);
	if (rc != PV_OK) {
		/* The command is queued either way: 202 stands, the verdict
		 * will be at /commands/{id}. */
		if (rc != PV_ERR_TIMEOUT)
			pv_log_warnx("http", "waiting for %s: %s", event_id, err.msg);
		return;
	}
	if (a.status == PV_AUDIT_APPENDED) {
		body = json_loadb(resp->body.data ? resp->body.data : "", resp->body.len, 0, &jerr);
		if (!json_is_object(body)) {
			json_decref(body);
			body = json_pack("{s:s}", "event_id", event_id);
			if (!body)
				pv_oom("json_pack", 0);
		}
		verdict_fields(body, &a);
		pv_http_json(resp, creates ? 201 : 200, body);
	} else {
		int status = (unsigned)a.kind < sizeof kind_status / sizeof kind_status[0]
				     ? kind_status[a.kind]
				     : 409;

		body = json_pack("{s:{s:s,s:s}}", "error", "code", a.rule ? a.rule : "rejected",
				 "message", a.reason ? a.reason : "the command was rejected");
		if (!body)
			body = json_pack("{s:{s:s,s:s}}", "error", "code", "rejected", "message",
					 "the command was rejected");
		if (!body)
			pv_oom("json_pack", 0);
		set_new(json_object_get(body, "error"), "event_id", json_string(event_id));
		verdict_fields(json_object_get(body, "error"), &a);
		pv_http_json(resp, status, body);
	}
	json_decref(body);
	pv_audit_entry_clear(&a);
}
