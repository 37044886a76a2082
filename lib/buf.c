#include "buf.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pv_buf_reserve(struct pv_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;

	if (need <= b->cap)
		return;
	if (need < b->len)
		pv_oom("buffer size overflow", extra);
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap * 2 > cap ? cap * 2 : need;
	b->data = pv_xrealloc(b->data, cap);
	b->cap = cap;
}

void pv_buf_append(struct pv_buf *b, const void *data, size_t len)
{
	pv_buf_reserve(b, len);
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void pv_buf_puts(struct pv_buf *b, const char *s)
{
	pv_buf_append(b, s, strlen(s));
}

void pv_buf_printf(struct pv_buf *b, const char *fmt, ...)
{
	va_list ap, copy;
	int n;

	va_start(ap, fmt);
	va_copy(copy, ap);
	n = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (n > 0) {
		pv_buf_reserve(b, (size_t)n);
		vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
		b->len += (size_t)n;
	}
	va_end(ap);
}

void pv_buf_reset(struct pv_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

char *pv_buf_steal(struct pv_buf *b)
{
	char *s = b->data ? b->data : pv_xstrdup("");
	b->data = NULL;
	b->len = b->cap = 0;
	return s;
}

void pv_buf_free(struct pv_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
