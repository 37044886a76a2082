/* The event-store stream of an election: "Election-<ULID>", in the
 * category "Election".  The one place that knows the name's shape; the
 * appender, the projector, photovote.fcgi's health and photovote-admin
 * build and parse stream names through it. */
#ifndef PV_DOMAIN_STREAM_H
#define PV_DOMAIN_STREAM_H

#include "id.h"

/* The event-store category the elections live in. */
#define PV_ELECTION_CATEGORY "Election"
/* Room for a stream name and its NUL. */
#define PV_ELECTION_STREAM_SIZE (sizeof PV_ELECTION_CATEGORY "-" + PV_ULID_LEN)

/* The stream of election_id (a ULID). */
void pv_election_stream(char out[PV_ELECTION_STREAM_SIZE], const char *election_id);
/* The election id in stream (a pointer into it), or NULL when stream is
 * not an election's (another category, or no valid ULID after the dash). */
const char *pv_election_of_stream(const char *stream);

#endif
