/* The appender's verdicts as the API shows them: GET /commands/{event_id}
 * and `Prefer: wait=N` on writes (http-api.md), both read from the audit
 * log (lib/audit.h) over the request thread's PostgreSQL connection. */
#ifndef PV_FCGI_COMMANDS_H
#define PV_FCGI_COMMANDS_H

#include <stdbool.h>

#include "api.h"
#include "http.h"

struct pv_config;

/* Reads [http] max_wait, the cap on Prefer: wait. */
void pv_commands_configure(const struct pv_config *cfg);

/* The N of a `wait=N` preference in a Prefer header (RFC 7240: comma
 * separated preferences, names case-insensitive, the value may be
 * quoted); -1 when there is none or it is not a number.  Not yet capped. */
int pv_commands_prefer_wait(const char *prefer);

/* GET /commands/{event_id} for `user` (admins see every command, others
 * their own): 200 with status pending / appended / rejected. */
void pv_commands_get(struct pv_api_thread *t, const char *event_id, const char *user, bool admin,
		     struct pv_http_response *resp);

/* Called with the 202 answer of a write of event_id: waits up to `seconds`
 * (capped by max_wait) for its verdict and turns resp into 201 (appended,
 * `creates`), 200 (appended), 409/422/403 (rejected by a state, value or
 * authorization rule) or leaves the 202 when the time passes first.  Adds
 * Preference-Applied: wait=N. */
void pv_commands_wait(struct pv_api_thread *t, const char *event_id, int seconds, bool creates,
		      struct pv_http_response *resp);

#endif
