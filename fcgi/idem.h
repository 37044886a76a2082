/* Answers to Idempotency-Key requests, kept in memory.
 *
 * The key of an entry is the event id the request derives from (user,
 * Idempotency-Key) as a v5 UUID, so the same key of two users never
 * collides.  An entry is pending while its first request publishes, then
 * holds the answer that request gave.  A retry that finds a pending entry
 * waits for it; a retry with another request body (fingerprint) is refused.
 * A request that failed (503) forgets its entry so that a retry publishes.
 *
 * Bounded: at most `capacity` answers, oldest evicted first, each kept at
 * most `ttl` seconds.  Across processes (several photovote.fcgi behind one
 * web server, or a restart) the map is not shared; a retry that reaches
 * another process publishes again, but with the same event id, so the event
 * store and the audit log still hold the event once. */
#ifndef PV_FCGI_IDEM_H
#define PV_FCGI_IDEM_H

#include <stddef.h>

#define PV_IDEM_KEY_MAX 36
#define PV_IDEM_FP_LEN 64

struct pv_idem;

struct pv_idem_answer {
	int status;
	char *location; /* owned */
	char *body;     /* owned */
};

enum pv_idem_result {
	PV_IDEM_NEW,      /* go ahead, then call pv_idem_finish */
	PV_IDEM_REPLAY,   /* *answer holds a copy of the first answer */
	PV_IDEM_MISMATCH, /* same key, other request */
	PV_IDEM_BUSY,     /* the first request is still running after wait_ms */
};

struct pv_idem *pv_idem_new(size_t capacity, int ttl);
void pv_idem_free(struct pv_idem *c);

enum pv_idem_result pv_idem_begin(struct pv_idem *c, const char *key, const char *fingerprint,
				  int wait_ms, struct pv_idem_answer *answer);
/* Records the answer for key (copied), or forgets key when answer is NULL. */
void pv_idem_finish(struct pv_idem *c, const char *key, const struct pv_idem_answer *answer);
void pv_idem_answer_clear(struct pv_idem_answer *a);
size_t pv_idem_count(struct pv_idem *c);

#endif
