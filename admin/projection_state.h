/* Where the projector stands, for the console's projection screen: its
 * checkpoint against the head of the event store's feed, the lag in
 * events and in seconds, its last progress (checkpoint written, heartbeat),
 * the elections it parked and the read model's containers. */
#ifndef PV_ADMIN_PROJECTION_STATE_H
#define PV_ADMIN_PROJECTION_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "session.h"

#include <jansson.h>

struct pv_projection_state {
	struct pv_status st;  /* head, checkpoint, lag (each with its outcome) */
	char *oldest_waiting; /* created time of the first event after the checkpoint, or NULL */
	long lag_seconds;     /* now - oldest_waiting; 0 when nothing waits, -1 unknown */
	char *checkpoint_at;  /* when the checkpoint was last written (RFC 3339), or NULL */
	char *beat_at;        /* the projector's last heartbeat, or NULL */
	int64_t beat_head;    /* the head it knew then */
	long beat_age;        /* seconds since beat_at, -1 unknown */
	json_t *parked;       /* pv_session_parked()'s list, or NULL */
	json_t *containers;   /* pv_session_containers()'s list (blue-green), or NULL */
	enum pv_err progress_rc, parked_rc, containers_rc;
	struct pv_error progress_err, parked_err, containers_err;
};

void pv_projection_state_clear(struct pv_projection_state *p);
/* Fills *p; each part keeps its own outcome (a server that is down leaves
 * the others' figures). */
void pv_projection_state_read(struct pv_session *s, struct pv_projection_state *p);

/* Seconds since an RFC 3339 UTC time ("2026-12-06T09:00:00.123Z"), -1 when
 * it does not parse. */
long pv_seconds_since(const char *rfc3339);

#endif
