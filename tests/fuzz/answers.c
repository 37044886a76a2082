#include "answers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fuzz_answers_init(struct fuzz_answers *a, const uint8_t *data, size_t size, char *op,
		       size_t opsize)
{
	const char *s = (const char *)data, *nl = memchr(s, '\n', size);
	size_t len = nl ? (size_t)(nl - s) : size;

	snprintf(op, opsize, "%.*s", (int)(len < opsize ? len : opsize - 1), s);
	a->p = nl ? nl + 1 : s + size;
	a->end = s + size;
}

bool fuzz_answers_op(struct fuzz_answers *a, const uint8_t *data, size_t size, struct fuzz_op *op)
{
	op->word[0] = '\0';
	op->a = 0;
	op->b = 1;
	fuzz_answers_init(a, data, size, op->line, sizeof op->line);
	if (sscanf(op->line, "%15s %lld %lld", op->word, &op->a, &op->b) < 1)
		return false;
	if (op->b < 1 || op->b > 5000)
		op->b = 1 + (op->b < 0 ? -(op->b % 5000) : op->b % 5000);
	return true;
}

/* The next separator line "\n--\n".  Not a memcmp at every byte: under
 * libFuzzer each memcmp call is intercepted and recorded, and that was a
 * third of the HTTP targets' time. */
static const char *find_separator(const char *p, const char *end)
{
	for (const char *nl; (nl = memchr(p, '\n', (size_t)(end - p))); p = nl + 1)
		if (end - nl >= 4 && nl[1] == '-' && nl[2] == '-' && nl[3] == '\n')
			return nl;
	return NULL;
}

bool fuzz_answers_take(struct fuzz_answers *a, const char **p, const char **stop)
{
	const char *sep;

	if (a->p >= a->end)
		return false;
	*p = a->p;
	sep = find_separator(a->p, a->end);
	a->p = sep ? sep + 4 : a->end;
	*stop = sep ? sep : a->end;
	return true;
}

long fuzz_answers_status(const char *p, const char *stop)
{
	const char *sp;
	long status = 0;

	if (stop - p < 10 || memcmp(p, "HTTP/", 5) != 0)
		return -1;
	/* "HTTP/1.1 200 ...", "HTTP/2 200": three digits after the first space. */
	sp = memchr(p, ' ', (size_t)(stop - p));
	if (!sp || stop - sp < 4)
		return -1;
	for (int i = 1; i <= 3; i++) {
		if (sp[i] < '0' || sp[i] > '9')
			return -1;
		status = status * 10 + (sp[i] - '0');
	}
	return status;
}

const char *fuzz_answers_lines(const char *p, const char *stop, fuzz_line_fn *fn, void *ctx)
{
	for (const char *nl;; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(stop - p));
		if (!nl) {
			if (p < stop)
				fn(ctx, p, (size_t)(stop - p));
			return stop;
		}
		fn(ctx, p, (size_t)(nl + 1 - p));
		if (nl == p || (nl == p + 1 && p[0] == '\r'))
			return nl + 1;
	}
}

static void http_header(void *ctx, const char *line, size_t len)
{
	pv_http_answer_header(ctx, line, len);
}

int fuzz_answers_next(struct fuzz_answers *a, struct pv_http_answer *resp)
{
	const char *p, *stop, *body;
	long status;

	if (!fuzz_answers_take(a, &p, &stop))
		return -1;
	if ((status = fuzz_answers_status(p, stop)) < 0)
		return -2;
	/* Header lines, the status line first, up to and with the empty one. */
	body = fuzz_answers_lines(p, stop, http_header, resp);
	pv_http_answer_status(resp, status);
	if (body < stop)
		pv_http_answer_body(resp, body, (size_t)(stop - body));
	return 0;
}

enum pv_err fuzz_answers_transport(void *ctx, const char *method, const char *url,
				   struct pv_http_answer *resp, struct pv_error *err)
{
	(void)method; /* the client names them in its message */
	(void)url;
	switch (fuzz_answers_next(ctx, resp)) {
	case 0: return PV_OK;
	case -1: return pv_error_set(err, PV_ERR_UNAVAILABLE, "no answer left in the input");
	default: return pv_error_set(err, PV_ERR_PROTOCOL, "an unreadable answer in the input");
	}
}

void fuzz_check_message(const char *target, const char *msg)
{
	for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
		if (*p < 0x20 || *p == 0x7f) {
			fprintf(stderr, "%s: raw control character 0x%02x in message: %s\n", target,
				*p, msg);
			abort();
		}
}
