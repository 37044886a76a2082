/* API bearer tokens: created at random, shown once, stored only as the
 * SHA-256 of the token text (table api_tokens, sql/002_api_tokens.sql).
 *
 * A token reads "pv_" followed by 43 characters of unpadded base64url (32
 * random bytes).  Lookup hashes what the client sent and asks PostgreSQL
 * for an unrevoked row with that hash; the token itself never reaches the
 * database or a log.
 *
 * A token cache (pv_token_cache_*) lets photovote.fcgi skip that query for
 * a token it verified less than a TTL ago: a bounded, direct-mapped table
 * of token hashes (never token texts) and their identities, shared by the
 * request threads under one mutex.  Only tokens PostgreSQL accepted are
 * cached, so a new token works at once, while a revoked one keeps working
 * for at most the TTL (the trade-off of [http] token_cache_ttl).
 *
 * The same entries carry authentication through an outage of PostgreSQL:
 * when the lookup cannot be made, a token verified less than the grace
 * period ago ([http] token_grace) still counts (pv_token_cache_find_grace).
 * Nothing found that way is cached again, so once PostgreSQL answers, the
 * token is looked up afresh and a revoked one stops working. */
#ifndef PV_AUTH_TOKEN_H
#define PV_AUTH_TOKEN_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "error.h"

#define PV_TOKEN_PREFIX "pv_"
#define PV_TOKEN_LEN (3 + 43)
#define PV_TOKEN_HASH_HEX 64
#define PV_TOKEN_USER_MAX 254

struct pv_token_identity {
	char user[PV_TOKEN_USER_MAX + 1]; /* the user's email */
	bool admin;
};

/* Lower-case hex SHA-256 of token (out holds PV_TOKEN_HASH_HEX + 1). */
void pv_token_hash(const char *token, char out[PV_TOKEN_HASH_HEX + 1]);

/* Creates a token for user and stores its hash; the token text is written
 * to out (PV_TOKEN_LEN + 1) and exists nowhere else. */
enum pv_err pv_token_create(PGconn *conn, const char *user, bool admin, char out[PV_TOKEN_LEN + 1],
			    struct pv_error *err);

/* Marks every token of user (or the one with this token text when token
 * is not NULL) as revoked.  *count (may be NULL) is how many changed. */
enum pv_err pv_token_revoke(PGconn *conn, const char *user, const char *token, int *count,
			    struct pv_error *err);

/* Finds the identity of an unrevoked token.  PV_ERR_UNAUTHORIZED when the
 * text is malformed, unknown or revoked; PV_ERR_UNAVAILABLE or
 * PV_ERR_DATABASE when PostgreSQL could not answer. */
enum pv_err pv_token_lookup(PGconn *conn, const char *token, struct pv_token_identity *id,
			    struct pv_error *err);

/* Bounded cache of verified tokens; NULL (every call a miss) when both
 * ttl_seconds and grace_seconds are 0.  Two tokens whose hashes share a
 * slot evict each other: the cache never holds more than `capacity`
 * entries. */
struct pv_token_cache;
#define PV_TOKEN_CACHE_CAPACITY 4096

struct pv_token_cache *pv_token_cache_new(size_t capacity, int ttl_seconds, int grace_seconds);
void pv_token_cache_free(struct pv_token_cache *c);
/* True and *id filled when token was verified less than the TTL ago. */
bool pv_token_cache_find(struct pv_token_cache *c, const char *token, struct pv_token_identity *id);
/* For when PostgreSQL cannot be asked: true and *id filled when token was
 * verified less than the larger of the TTL and the grace period ago. */
bool pv_token_cache_find_grace(struct pv_token_cache *c, const char *token,
			       struct pv_token_identity *id);
/* Remembers a token PostgreSQL just accepted, from now for the TTL. */
void pv_token_cache_add(struct pv_token_cache *c, const char *token,
			const struct pv_token_identity *id);

#endif
