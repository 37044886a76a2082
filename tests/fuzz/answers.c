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

int fuzz_answers_next(struct fuzz_answers *a, struct pv_http_answer *resp)
{
	const char *p = a->p, *stop, *nl, *body;
	long status = 0;

	if (p >= a->end)
		return -1;
	stop = find_separator(p, a->end);
	a->p = stop ? stop + 4 : a->end;
	if (!stop)
		stop = a->end;
	if (stop - p < 12 || memcmp(p, "HTTP/", 5) != 0)
		return -2;
	/* "HTTP/1.1 200 ...": three digits after the first space. */
	nl = memchr(p, ' ', (size_t)(stop - p));
	if (!nl || stop - nl < 4)
		return -2;
	for (int i = 1; i <= 3; i++) {
		if (nl[i] < '0' || nl[i] > '9')
			return -2;
		status = status * 10 + (nl[i] - '0');
	}
	/* Header lines, the status line first, up to and with the empty one. */
	for (;;) {
		nl = memchr(p, '\n', (size_t)(stop - p));
		if (!nl) {
			pv_http_answer_header(resp, p, (size_t)(stop - p));
			body = stop;
			break;
		}
		pv_http_answer_header(resp, p, (size_t)(nl + 1 - p));
		if (nl == p || (nl == p + 1 && p[0] == '\r')) {
			body = nl + 1;
			break;
		}
		p = nl + 1;
	}
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
