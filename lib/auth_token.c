#include "auth_token.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "pgutil.h"
#include "xalloc.h"

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void pv_token_hash(const char *token, char out[PV_TOKEN_HASH_HEX + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!EVP_Digest(token, strlen(token), md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		pv_oom("EVP_Digest(sha256)", 0);
	for (unsigned i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[PV_TOKEN_HASH_HEX] = '\0';
}

/* Well-formed: the prefix and 43 base64url characters, nothing else.
 * Checked before hashing so that junk never costs a query. */
static bool token_well_formed(const char *t)
{
	size_t n = strlen(PV_TOKEN_PREFIX);

	if (strlen(t) != PV_TOKEN_LEN || strncmp(t, PV_TOKEN_PREFIX, n) != 0)
		return false;
	for (const char *p = t + n; *p; p++)
		if (!strchr(b64url, *p))
			return false;
	return true;
}

enum pv_err pv_token_create(PGconn *conn, const char *user, bool admin, char out[PV_TOKEN_LEN + 1],
			    struct pv_error *err)
{
	unsigned char rnd[33];
	char hash[PV_TOKEN_HASH_HEX + 1];
	const char *params[3];
	char *p = out;

	if (!user || !*user || strlen(user) > PV_TOKEN_USER_MAX)
		return pv_error_set(err, PV_ERR_INVALID, "token user must be 1 to %d bytes",
				    PV_TOKEN_USER_MAX);
	/* 32 random bytes are 256 bits; 43 base64url digits carry 258, so
	 * one more byte feeds the last two bits. */
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		return pv_error_set(err, PV_ERR_SYSTEM, "getrandom for a token failed");
	p += sprintf(p, "%s", PV_TOKEN_PREFIX);
	for (int i = 0, bit = 0; i < 43; i++, bit += 6) {
		unsigned v = ((unsigned)rnd[bit / 8] << 8 | rnd[bit / 8 + 1]) >> (10 - bit % 8);
		*p++ = b64url[v & 63];
	}
	*p = '\0';
	pv_token_hash(out, hash);
	params[0] = hash;
	params[1] = user;
	params[2] = admin ? "true" : "false";
	return pv_pg_exec(conn, "create token",
			  "INSERT INTO api_tokens (token_hash, user_email, is_admin) "
			  "VALUES ($1, $2, $3)",
			  3, params, NULL, err);
}

enum pv_err pv_token_revoke(PGconn *conn, const char *user, const char *token, int *count,
			    struct pv_error *err)
{
	char hash[PV_TOKEN_HASH_HEX + 1] = "";
	const char *params[2] = {user, NULL};
	PGresult *res;
	enum pv_err rc;

	if (token) {
		pv_token_hash(token, hash);
		params[1] = hash;
	}
	rc = pv_pg_exec(conn, "revoke token",
			"UPDATE api_tokens SET revoked_at = now() WHERE revoked_at IS NULL "
			"AND user_email = $1 AND ($2::text IS NULL OR token_hash = $2)",
			2, params, &res, err);
	if (rc != PV_OK)
		return rc;
	if (count)
		*count = atoi(PQcmdTuples(res));
	PQclear(res);
	return PV_OK;
}

enum pv_err pv_token_lookup(PGconn *conn, const char *token, struct pv_token_identity *id,
			    struct pv_error *err)
{
	char hash[PV_TOKEN_HASH_HEX + 1];
	const char *params[1] = {hash};
	PGresult *res;
	enum pv_err rc;

	memset(id, 0, sizeof *id);
	if (!token_well_formed(token))
		return pv_error_set(err, PV_ERR_UNAUTHORIZED, "malformed bearer token");
	pv_token_hash(token, hash);
	rc = pv_pg_exec(conn, "look up token",
			"SELECT user_email, is_admin FROM api_tokens "
			"WHERE token_hash = $1 AND revoked_at IS NULL",
			1, params, &res, err);
	if (rc != PV_OK)
		return rc;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return pv_error_set(err, PV_ERR_UNAUTHORIZED, "unknown or revoked bearer token");
	}
	snprintf(id->user, sizeof id->user, "%s", PQgetvalue(res, 0, 0));
	id->admin = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	PQclear(res);
	return PV_OK;
}

/* The token cache (design in auth_token.h).  Slots are picked by the first
 * hex digits of the SHA-256, which are uniformly spread, so a direct-mapped
 * table needs no eviction policy: a newcomer takes the slot. */
struct cache_slot {
	char hash[PV_TOKEN_HASH_HEX + 1]; /* "" when empty */
	struct pv_token_identity id;
	struct timespec verified; /* CLOCK_MONOTONIC */
};

struct pv_token_cache {
	pthread_mutex_t lock;
	size_t capacity;
	int ttl;
	int grace;
	struct cache_slot *slots;
};

struct pv_token_cache *pv_token_cache_new(size_t capacity, int ttl_seconds, int grace_seconds)
{
	struct pv_token_cache *c;

	if ((ttl_seconds <= 0 && grace_seconds <= 0) || capacity == 0)
		return NULL;
	c = pv_xcalloc(1, sizeof *c);
	pthread_mutex_init(&c->lock, NULL);
	c->capacity = capacity;
	c->ttl = ttl_seconds > 0 ? ttl_seconds : 0;
	c->grace = grace_seconds > 0 ? grace_seconds : 0;
	c->slots = pv_xcalloc(capacity, sizeof *c->slots);
	return c;
}

void pv_token_cache_free(struct pv_token_cache *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	/* Identities are not secrets, but there is no reason to leave them. */
	memset(c->slots, 0, c->capacity * sizeof *c->slots);
	free(c->slots);
	free(c);
}

static size_t cache_index(const struct pv_token_cache *c, const char *hash)
{
	uint64_t v = 0;

	for (int i = 0; i < 15; i++)
		v = v << 4 | (uint64_t)(hash[i] <= '9' ? hash[i] - '0' : hash[i] - 'a' + 10);
	return (size_t)(v % c->capacity);
}

/* Seconds from a to b (b later). */
static double elapsed(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* A hit when the token was verified less than max_age seconds ago. */
static bool cache_find(struct pv_token_cache *c, const char *token, int max_age,
		       struct pv_token_identity *id)
{
	char hash[PV_TOKEN_HASH_HEX + 1];
	struct cache_slot *s;
	struct timespec now;
	bool hit;

	if (!c || max_age <= 0 || !token_well_formed(token))
		return false;
	pv_token_hash(token, hash);
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&c->lock);
	s = &c->slots[cache_index(c, hash)];
	hit = strcmp(s->hash, hash) == 0 && elapsed(&s->verified, &now) < max_age;
	if (hit)
		*id = s->id;
	pthread_mutex_unlock(&c->lock);
	return hit;
}

bool pv_token_cache_find(struct pv_token_cache *c, const char *token, struct pv_token_identity *id)
{
	return c && cache_find(c, token, c->ttl, id);
}

bool pv_token_cache_find_grace(struct pv_token_cache *c, const char *token,
			       struct pv_token_identity *id)
{
	return c && cache_find(c, token, c->ttl > c->grace ? c->ttl : c->grace, id);
}

void pv_token_cache_add(struct pv_token_cache *c, const char *token,
			const struct pv_token_identity *id)
{
	char hash[PV_TOKEN_HASH_HEX + 1];
	struct cache_slot *s;
	struct timespec now;

	if (!c || !token_well_formed(token))
		return;
	pv_token_hash(token, hash);
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&c->lock);
	s = &c->slots[cache_index(c, hash)];
	memcpy(s->hash, hash, sizeof s->hash);
	s->id = *id;
	s->verified = now;
	pthread_mutex_unlock(&c->lock);
}
