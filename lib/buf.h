/* A growable byte buffer, always NUL-terminated for convenience. */
#ifndef PV_BUF_H
#define PV_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct pv_buf {
	char *data;
	size_t len;
	size_t cap;
};

#define PV_BUF_INIT                                                                                \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

void pv_buf_reserve(struct pv_buf *b, size_t extra);
void pv_buf_append(struct pv_buf *b, const void *data, size_t len);
void pv_buf_puts(struct pv_buf *b, const char *s);
void pv_buf_printf(struct pv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pv_buf_reset(struct pv_buf *b);
/* Gives the caller the string (never NULL) and leaves b empty. */
char *pv_buf_steal(struct pv_buf *b);
void pv_buf_free(struct pv_buf *b);

#endif
