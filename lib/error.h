/* One error vocabulary for the whole project.
 *
 * Every module maps the failures of the library it wraps (libpq,
 * librabbitmq, libcurl, jansson, the OS) into enum pv_err at its boundary
 * and writes a human sentence naming the library and the cause into a
 * struct pv_error.  Callers branch on the code; people read the message. */
#ifndef PV_ERROR_H
#define PV_ERROR_H

#include <stddef.h>

enum pv_err {
	PV_OK = 0,
	PV_ERR_NOMEM,        /* allocation failed */
	PV_ERR_SYSTEM,       /* an OS call failed (errno in the message) */
	PV_ERR_CONFIG,       /* configuration missing or invalid */
	PV_ERR_JSON,         /* not JSON, or JSON of the wrong shape */
	PV_ERR_INVALID,      /* a value breaks a rule on values */
	PV_ERR_CONFLICT,     /* a state rule, or an expected version, failed */
	PV_ERR_FORBIDDEN,    /* authenticated but not allowed */
	PV_ERR_UNAUTHORIZED, /* no or bad credentials */
	PV_ERR_NOT_FOUND,    /* the thing does not exist */
	PV_ERR_GONE,         /* the thing existed and was removed for good */
	PV_ERR_TOO_LARGE,    /* over a size limit */
	PV_ERR_UNAVAILABLE,  /* a server is down or refuses service */
	PV_ERR_TIMEOUT,      /* no answer in time */
	PV_ERR_PROTOCOL,     /* a server answered something we cannot use */
	PV_ERR_DATABASE,     /* PostgreSQL reported an error */
	PV_ERR_BROKER,       /* RabbitMQ reported an error */
	PV_ERR_HTTP,         /* an HTTP peer reported an error */
	PV_ERR__COUNT
};

/* A code and the sentence that explains it.  Fixed size: no allocation on
 * error paths, which matter most when memory is short. */
struct pv_error {
	enum pv_err code;
	char msg[512];
};

/* Stable lower-case word for a code ("conflict", "not_found", ...). */
const char *pv_err_name(enum pv_err code);
/* A short English description of a code. */
const char *pv_strerror(enum pv_err code);

/* Sets *err (when err is not NULL) and returns code, so that
 * `return pv_error_set(err, PV_ERR_X, "...")` reads naturally. */
enum pv_err pv_error_set(struct pv_error *err, enum pv_err code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Prefixes the message already in *err with more context, joined with ": "
 * (which fmt leaves out). */
enum pv_err pv_error_prefix(struct pv_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Appends to the message already in *err (fmt gives its own separator,
 * e.g. "; ..." or " (...)"); the end is cut when it does not fit. */
enum pv_err pv_error_suffix(struct pv_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void pv_error_clear(struct pv_error *err);

#endif
