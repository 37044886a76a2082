/* Internal to lib/domain: the event table and the value checks that the
 * codec (event.c) and the aggregate (election.c) share.
 *
 * One row per event type (the table itself is at the end of election.c,
 * beside the check and fold functions it names): the type's name, its
 * JSON field spec, the gates every check of that type passes first
 * (existence, authorization, lifecycle), its own invariant check and its
 * fold into the state.  The codec walks the field spec; the aggregate runs
 * the gates, then the check, then the fold. */
#ifndef PV_DOMAIN_TABLE_H
#define PV_DOMAIN_TABLE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "domain/election.h"
#include "domain/event.h"

/* What a field holds; each kind has one value check (pv_field_value_check). */
enum pv_field_kind {
	PV_FK_ULID,   /* entity id */
	PV_FK_NAME,   /* non-empty, <= PV_NAME_MAX characters, no control characters */
	PV_FK_TEXT,   /* description or caption: <= PV_DESCRIPTION_MAX characters */
	PV_FK_URL,    /* http or https URL, <= PV_URL_MAX */
	PV_FK_EMAIL,  /* local@domain.tld, <= PV_EMAIL_MAX */
	PV_FK_DATE,   /* RFC 3339 date-time */
	PV_FK_RATING, /* integer PV_RATING_MIN..PV_RATING_MAX */
};

/* Field flags: `?` fields of domain.md may be absent or null; NULLABLE
 * fields must be present but may be null (the rating). */
#define PV_FF_OPTIONAL 0x1u
#define PV_FF_NULLABLE 0x2u

struct pv_field_spec {
	const char *name;
	enum pv_field_kind kind;
	unsigned flags;
};

/* Gates, checked in this order before the row's own check. */
#define PV_GATE_CREATE 0x01u     /* only on an empty stream (else: needs a live election) */
#define PV_GATE_OWNER 0x02u      /* the owner or an administrator */
#define PV_GATE_NOT_CLOSED 0x04u /* refused once the election is closed */
#define PV_GATE_DRAFT 0x08u      /* only before the election opens */
#define PV_GATE_OPEN 0x10u       /* only while the election is open */
#define PV_GATE_VOTER 0x20u      /* the ballot's voter (by email) or an administrator */

typedef enum pv_verdict_kind (*pv_check_fn)(const struct pv_election *e, const struct pv_event *ev,
					    struct pv_verdict *v);
typedef void (*pv_fold_fn)(struct pv_election *e, const struct pv_event *ev);

struct pv_event_def {
	const char *name;
	const struct pv_field_spec *fields; /* after election_id; ends with {NULL} */
	unsigned gates;
	pv_check_fn check;
	pv_fold_fn fold;
};

extern const struct pv_event_def pv_event_table[PV_EV__COUNT];

/* Checks a non-null JSON value against a field kind.  Returns
 * PV_FIELD_ERR_NONE or the error kind, with *why a static phrase. */
enum pv_field_error pv_field_value_check(enum pv_field_kind kind, const json_t *v,
					 const char **why);

/* Number of Unicode characters of a UTF-8 string, or -1 if it is not valid UTF-8. */
long pv_utf8_count(const char *s, size_t len);

/* Parses an RFC 3339 date-time into seconds since the epoch (UTC) and
 * nanoseconds, for ordering. */
bool pv_rfc3339_parse(const char *s, int64_t *sec, long *nsec);

/* ASCII case-insensitive equality of identities and emails. */
bool pv_ident_equal(const char *a, const char *b);

/* jansson constructors that treat NULL (out of memory) like pv_xmalloc. */
json_t *pv_jobject(void);
json_t *pv_jarray(void);
json_t *pv_jstring(const char *s);
json_t *pv_jinteger(json_int_t i);
void pv_jset(json_t *obj, const char *key, json_t *value); /* steals value */
void pv_jappend(json_t *array, json_t *value);             /* steals value */
json_t *pv_jstring_or_null(const char *s);

#endif
