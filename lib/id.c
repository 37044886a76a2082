#include "id.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <uuid/uuid.h>

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static pthread_mutex_t ulid_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t ulid_last_ms;
static unsigned char ulid_last_rand[10];

static int crockford_value(char c)
{
	const char *p = c ? strchr(crockford, c) : NULL;
	return p ? (int)(p - crockford) : -1;
}

static void ulid_encode(char out[PV_ULID_LEN + 1], uint64_t ms, const unsigned char rnd[10])
{
	unsigned char b[16];

	for (int i = 0; i < 6; i++)
		b[i] = (unsigned char)(ms >> (8 * (5 - i)));
	memcpy(b + 6, rnd, 10);
	/* 128 bits as 26 base32 digits: the first digit carries 3 bits. */
	for (int i = PV_ULID_LEN - 1, bit = 0; i >= 0; i--, bit += 5) {
		unsigned v = 0;
		for (int k = 0; k < 5; k++) {
			int pos = bit + k; /* bit index from the least significant */
			if (pos < 128 && (b[15 - pos / 8] >> (pos % 8)) & 1)
				v |= 1u << k;
		}
		out[i] = crockford[v];
	}
	out[PV_ULID_LEN] = '\0';
}

enum pv_err pv_ulid_new_at(char out[PV_ULID_LEN + 1], uint64_t unix_ms, struct pv_error *err)
{
	unsigned char rnd[10];
	int carry_out = 0;

	if (unix_ms >> 48)
		return pv_error_set(err, PV_ERR_INVALID, "ULID time %llu is past 48 bits",
				    (unsigned long long)unix_ms);
	pthread_mutex_lock(&ulid_lock);
	if (unix_ms <= ulid_last_ms && ulid_last_ms != 0) {
		/* Same (or earlier: clock stepped back) millisecond: increment
		 * the previous random part so that ids keep sorting. */
		unix_ms = ulid_last_ms;
		memcpy(rnd, ulid_last_rand, sizeof rnd);
		int i = 9;
		while (i >= 0 && ++rnd[i] == 0)
			i--;
		carry_out = i < 0;
	} else if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
		pthread_mutex_unlock(&ulid_lock);
		return pv_error_set(err, PV_ERR_SYSTEM, "getrandom for a ULID failed");
	}
	if (carry_out) {
		pthread_mutex_unlock(&ulid_lock);
		return pv_error_set(err, PV_ERR_INVALID,
				    "ULID random part overflowed within one millisecond");
	}
	ulid_last_ms = unix_ms;
	memcpy(ulid_last_rand, rnd, sizeof rnd);
	pthread_mutex_unlock(&ulid_lock);
	ulid_encode(out, unix_ms, rnd);
	return PV_OK;
}

enum pv_err pv_ulid_new(char out[PV_ULID_LEN + 1], struct pv_error *err)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return pv_ulid_new_at(out, (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u,
			      err);
}

bool pv_ulid_valid(const char *s)
{
	if (!s || strlen(s) != PV_ULID_LEN)
		return false;
	if (s[0] < '0' || s[0] > '7')
		return false;
	for (size_t i = 0; i < PV_ULID_LEN; i++)
		if (crockford_value(s[i]) < 0)
			return false;
	return true;
}

uint64_t pv_ulid_time_ms(const char *ulid)
{
	uint64_t v = 0;

	/* 26 digits carry 130 bits, the top 2 always zero: the first 10
	 * digits are exactly the 48-bit time. */
	for (int i = 0; i < 10; i++)
		v = (v << 5) | (uint64_t)crockford_value(ulid[i]);
	return v;
}

/* A version 4 UUID from getrandom().  libuuid's uuid_generate_random()
 * also stirs random() after every read, reseeding it from getpid(),
 * getuid() and the time: five more system calls per UUID and a process-wide
 * lock, on every request.  It remains the fallback if getrandom() fails. */
void pv_uuid_new(char out[PV_UUID_LEN + 1])
{
	uuid_t u;

	if (getrandom(u, sizeof u, 0) == (ssize_t)sizeof u) {
		u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4 */
		u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	} else {
		uuid_generate_random(u);
	}
	uuid_unparse_lower(u, out);
}

bool pv_uuid_valid(const char *s)
{
	uuid_t u;

	if (!s || strlen(s) != PV_UUID_LEN || uuid_parse(s, u) != 0)
		return false;
	return !uuid_is_null(u);
}

enum pv_err pv_uuid_v5(char out[PV_UUID_LEN + 1], const char *ns, const char *name, size_t namelen,
		       struct pv_error *err)
{
	uuid_t nsu, res;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;

	if (uuid_parse(ns, nsu) != 0)
		return pv_error_set(err, PV_ERR_INVALID, "namespace '%s' is not a UUID", ns);
	/* RFC 9562 section 5.5: SHA-1 over namespace bytes then the name. */
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return pv_error_set(err, PV_ERR_NOMEM, "OpenSSL EVP_MD_CTX_new failed");
	if (EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, nsu, sizeof nsu) != 1 ||
	    EVP_DigestUpdate(ctx, name, namelen) != 1 || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1) {
		EVP_MD_CTX_free(ctx);
		return pv_error_set(err, PV_ERR_SYSTEM, "OpenSSL SHA-1 digest failed");
	}
	EVP_MD_CTX_free(ctx);
	memcpy(res, md, sizeof res);
	res[6] = (unsigned char)((res[6] & 0x0f) | 0x50);
	res[8] = (unsigned char)((res[8] & 0x3f) | 0x80);
	uuid_unparse_lower(res, out);
	return PV_OK;
}
