/* Event ids the API can vouch for, so that GET /commands/{id} tells a
 * command in flight from an id no server published (issue 14).
 *
 * Minting.  A server-made event id is a UUIDv7: 48 bits of Unix time in
 * ms, 42 random bits, and in its last 32 bits a MAC: the first 4 bytes of
 * HMAC-SHA256 under a key every photovote.fcgi process shares, over the
 * id's first 12 bytes.  A mistyped, random or forged id fails the MAC
 * (one chance in 2^32) and is unknown without a lookup of its own kind; a
 * minted one carries its age.  The key is [http] command_key (or
 * command_key_file) when set, otherwise the one row of table command_key
 * (sql/008_command_ids.sql), read by the recorder thread at start.
 *
 * Recording.  A request thread whose publish the broker confirmed hands
 * the id to the recorder thread, which inserts the ids it has collected
 * into table command_confirmed in one statement every RECORD_MS (never on
 * the request path); an id whose outcome is unknown (sent, then no
 * confirm) is recorded as such.  Until written, ids stay in this process's
 * memory (bounded), where its own GET finds them.
 *
 * Judging an id with no verdict in the audit log: recorded (here or in
 * the table) is "pending" (confirmed) or "unconfirmed" (unknown outcome);
 * a minted id younger than PV_COMMAND_YOUNG_MS is "pending" too, since
 * another process may not have written it yet; anything else is unknown.
 * Limits: see docs/http-api.md ("Which ids are known"). */
#ifndef PV_FCGI_COMMAND_IDS_H
#define PV_FCGI_COMMAND_IDS_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "error.h"
#include "id.h"

#define PV_COMMAND_YOUNG_MS 15000

struct pv_config;
struct pv_command_ids;

enum pv_command_state {
	PV_COMMAND_UNKNOWN,     /* no server published it */
	PV_COMMAND_PENDING,     /* confirmed by the broker (or too young to tell) */
	PV_COMMAND_UNCONFIRMED, /* sent, no confirm came: the broker may hold it */
};

/* Starts the recorder thread (its own PostgreSQL connection). */
struct pv_command_ids *pv_command_ids_new(const struct pv_config *cfg);
/* Writes what is still unrecorded (one try), stops the thread. */
void pv_command_ids_free(struct pv_command_ids *ids);

/* A new event id; waits up to wait_ms for the key when it is not loaded
 * yet (PV_ERR_UNAVAILABLE after that). */
enum pv_err pv_command_ids_mint(struct pv_command_ids *ids, int wait_ms, char out[PV_UUID_LEN + 1],
				struct pv_error *err);
/* Records the broker's confirm of id, or (confirmed false) that its
 * outcome is unknown. */
void pv_command_ids_record(struct pv_command_ids *ids, const char *id, bool confirmed);
/* The state of an id the audit log has no verdict for, asking the table
 * on pg when needed.  PV_ERR_UNAVAILABLE when the key is not loaded yet
 * or PostgreSQL fails. */
enum pv_err pv_command_ids_judge(struct pv_command_ids *ids, PGconn *pg, const char *id,
				 enum pv_command_state *out, struct pv_error *err);

/* For the tests: mints with key at unix time ms / checks an id's MAC. */
void pv_command_id_make(const unsigned char *key, size_t keylen, long long unix_ms,
			char out[PV_UUID_LEN + 1]);
bool pv_command_id_check(const unsigned char *key, size_t keylen, const char *id,
			 long long *unix_ms);

#endif
