/* Identifiers: ULIDs for entities, UUIDs for events.
 *
 * ULIDs are 26 characters of Crockford base32: 48 bits of milliseconds
 * since the epoch, then 80 random bits.  Generation is monotonic within a
 * millisecond in one process (the random part is incremented), as the ULID
 * specification asks; the generator is thread-safe.  UUIDs come from
 * libuuid; name-based (v5, SHA-1) UUIDs make idempotency keys stable. */
#ifndef PV_ID_H
#define PV_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define PV_ULID_LEN 26
#define PV_UUID_LEN 36

/* out must hold PV_ULID_LEN + 1 bytes. */
enum pv_err pv_ulid_new(char out[PV_ULID_LEN + 1], struct pv_error *err);
/* As pv_ulid_new at a given time, for tests. */
enum pv_err pv_ulid_new_at(char out[PV_ULID_LEN + 1], uint64_t unix_ms, struct pv_error *err);
/* True if s is exactly a canonical ULID (upper-case Crockford base32 and
 * first character 0..7, i.e. within 48 bits).  Lower case is refused so
 * that one id has one spelling in stream names and documents. */
bool pv_ulid_valid(const char *s);
/* Decodes the timestamp part of a valid ULID. */
uint64_t pv_ulid_time_ms(const char *ulid);

/* Random (v4) UUID, lower-case text.  out holds PV_UUID_LEN + 1. */
void pv_uuid_new(char out[PV_UUID_LEN + 1]);
/* Name-based v5 UUID of name within the namespace UUID ns (text form). */
enum pv_err pv_uuid_v5(char out[PV_UUID_LEN + 1], const char *ns, const char *name, size_t namelen,
		       struct pv_error *err);
/* True if s is a UUID in canonical 8-4-4-4-12 hex form (any case), not nil. */
bool pv_uuid_valid(const char *s);

/* The namespace used for Idempotency-Key derived event ids. */
#define PV_UUID_NS_IDEMPOTENCY "0b9d4f5e-6c1a-5d2e-9f3b-7a4c8e2d1f60"

#endif
