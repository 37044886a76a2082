#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	const char *text;
} err_table[PV_ERR__COUNT] = {
	[PV_OK] = {"ok", "success"},
	[PV_ERR_NOMEM] = {"nomem", "out of memory"},
	[PV_ERR_SYSTEM] = {"system", "system call failed"},
	[PV_ERR_CONFIG] = {"config", "invalid configuration"},
	[PV_ERR_JSON] = {"json", "invalid JSON"},
	[PV_ERR_INVALID] = {"invalid", "invalid value"},
	[PV_ERR_CONFLICT] = {"conflict", "conflict with current state"},
	[PV_ERR_FORBIDDEN] = {"forbidden", "not allowed"},
	[PV_ERR_UNAUTHORIZED] = {"unauthorized", "missing or bad credentials"},
	[PV_ERR_NOT_FOUND] = {"not_found", "not found"},
	[PV_ERR_GONE] = {"gone", "permanently deleted"},
	[PV_ERR_TOO_LARGE] = {"too_large", "too large"},
	[PV_ERR_UNAVAILABLE] = {"unavailable", "service unavailable"},
	[PV_ERR_TIMEOUT] = {"timeout", "timed out"},
	[PV_ERR_PROTOCOL] = {"protocol", "unexpected answer from server"},
	[PV_ERR_DATABASE] = {"database", "database error"},
	[PV_ERR_BROKER] = {"broker", "message broker error"},
	[PV_ERR_HTTP] = {"http", "HTTP error"},
};

const char *pv_err_name(enum pv_err code)
{
	if ((unsigned)code >= PV_ERR__COUNT)
		return "unknown";
	return err_table[code].name;
}

const char *pv_strerror(enum pv_err code)
{
	if ((unsigned)code >= PV_ERR__COUNT)
		return "unknown error";
	return err_table[code].text;
}

enum pv_err pv_error_set(struct pv_error *err, enum pv_err code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
	}
	return code;
}

enum pv_err pv_error_suffix(struct pv_error *err, const char *fmt, ...)
{
	size_t used;
	va_list ap;

	if (!err)
		return PV_OK;
	used = strlen(err->msg);
	va_start(ap, fmt);
	vsnprintf(err->msg + used, sizeof err->msg - used, fmt, ap);
	va_end(ap);
	return err->code;
}

enum pv_err pv_error_prefix(struct pv_error *err, const char *fmt, ...)
{
	char head[256], old[sizeof err->msg];
	va_list ap;

	if (!err)
		return PV_OK;
	va_start(ap, fmt);
	vsnprintf(head, sizeof head, fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof old);
	/* Composed by hand: cutting the end of a long message is intended. */
	size_t hl = strlen(head), ol = strlen(old), cap = sizeof err->msg - 1;
	if (hl > cap)
		hl = cap;
	memcpy(err->msg, head, hl);
	size_t o = hl;
	for (const char *sep = ": "; *sep && o < cap; sep++)
		err->msg[o++] = *sep;
	if (ol > cap - o)
		ol = cap - o;
	memcpy(err->msg + o, old, ol);
	err->msg[o + ol] = '\0';
	return err->code;
}

void pv_error_clear(struct pv_error *err)
{
	if (err) {
		err->code = PV_OK;
		err->msg[0] = '\0';
	}
}
