#include "http.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "xalloc.h"

static const struct {
	int status;
	const char *reason;
} reasons[] = {
	{200, "OK"},
	{201, "Created"},
	{202, "Accepted"},
	{204, "No Content"},
	{400, "Bad Request"},
	{401, "Unauthorized"},
	{403, "Forbidden"},
	{404, "Not Found"},
	{405, "Method Not Allowed"},
	{409, "Conflict"},
	{413, "Content Too Large"},
	{415, "Unsupported Media Type"},
	{422, "Unprocessable Content"},
	{500, "Internal Server Error"},
	{503, "Service Unavailable"},
};

const char *pv_http_reason(int status)
{
	for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
		if (reasons[i].status == status)
			return reasons[i].reason;
	return "Unknown";
}

void pv_http_response_init(struct pv_http_response *r)
{
	memset(r, 0, sizeof *r);
	r->status = 500;
	r->content_type = "application/json";
}

void pv_http_response_clear(struct pv_http_response *r)
{
	pv_buf_free(&r->headers);
	pv_buf_free(&r->body);
}

void pv_http_header(struct pv_http_response *r, const char *name, const char *fmt, ...)
{
	va_list ap;
	char *v;

	va_start(ap, fmt);
	v = pv_xvasprintf(fmt, ap);
	va_end(ap);
	/* A header value never carries a line break (response splitting). */
	for (char *p = v; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	pv_buf_printf(&r->headers, "%s: %s\r\n", name, v);
	free(v);
}

void pv_http_json(struct pv_http_response *r, int status, const struct json_t *body)
{
	char *s = json_dumps((const json_t *)body, JSON_COMPACT);

	if (!s)
		pv_oom("json_dumps", 0);
	r->status = status;
	pv_buf_reset(&r->body);
	pv_buf_puts(&r->body, s);
	pv_buf_puts(&r->body, "\n");
	free(s);
}

void pv_http_error(struct pv_http_response *r, int status, const char *code, const char *fmt, ...)
{
	va_list ap;
	char *msg;
	json_t *j;

	va_start(ap, fmt);
	msg = pv_xvasprintf(fmt, ap);
	va_end(ap);
	/* json_string refuses invalid UTF-8; messages may quote input. */
	j = json_pack("{s:{s:s,s:s%}}", "error", "code", code, "message", msg, strlen(msg));
	if (!j)
		j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message",
			      "(message not valid UTF-8)");
	if (!j)
		pv_oom("json_pack", 0);
	pv_http_json(r, status, j);
	json_decref(j);
	free(msg);
}

bool pv_http_is_json_type(const char *ct)
{
	const char *p;

	if (!ct || strncasecmp(ct, "application/json", 16) != 0)
		return false;
	p = ct + 16;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		return true;
	if (*p++ != ';')
		return false;
	while (*p == ' ' || *p == '\t')
		p++;
	if (strncasecmp(p, "charset=", 8) != 0)
		return false;
	p += 8;
	if (*p == '"')
		p++;
	if (strncasecmp(p, "utf-8", 5) != 0)
		return false;
	p += 5;
	if (*p == '"')
		p++;
	while (*p == ' ' || *p == '\t')
		p++;
	return *p == '\0';
}

enum pv_body_result pv_http_read_body(const struct pv_http_request *req, size_t limit,
				      struct pv_buf *out)
{
	size_t want;

	if (req->content_length > (long long)limit)
		return PV_BODY_TOO_LARGE;
	/* Without a declared length read to the end, but never past limit+1:
	 * one byte over is enough to know. */
	want = req->content_length >= 0 ? (size_t)req->content_length : limit + 1;
	pv_buf_reserve(out, want + 1);
	while (out->len < want) {
		size_t chunk = want - out->len > 16384 ? 16384 : want - out->len;
		int n = req->read(req->read_ctx, out->data + out->len, (int)chunk);

		if (n < 0)
			return PV_BODY_READ_ERROR;
		if (n == 0)
			break;
		out->len += (size_t)n;
		out->data[out->len] = '\0';
	}
	if (out->len > limit)
		return PV_BODY_TOO_LARGE;
	if (req->content_length >= 0 && out->len != (size_t)req->content_length)
		return PV_BODY_READ_ERROR;
	return PV_BODY_OK;
}

int pv_json_depth(const char *text, size_t len, int max)
{
	int depth = 0, deepest = 0;
	bool in_string = false;

	for (size_t i = 0; i < len; i++) {
		char c = text[i];

		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
			continue;
		}
		if (c == '"') {
			in_string = true;
		} else if (c == '{' || c == '[') {
			if (++depth > deepest)
				deepest = depth;
			if (deepest > max)
				return deepest;
		} else if ((c == '}' || c == ']') && depth > 0) {
			depth--;
		}
	}
	return deepest;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

bool pv_http_path_decode(char *path)
{
	char *w = path;

	for (const char *r = path; *r; r++) {
		if (*r != '%') {
			*w++ = *r;
			continue;
		}
		int hi = hexval(r[1]), lo = hi < 0 ? -1 : hexval(r[2]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			return false;
		*w++ = (char)(hi * 16 + lo);
		r += 2;
	}
	*w = '\0';
	return true;
}
