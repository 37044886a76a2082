#include "xalloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void (*fatal_hook)(void);

void pv_xalloc_set_fatal_hook(void (*hook)(void))
{
	fatal_hook = hook;
}

void pv_oom(const char *what, size_t size)
{
	char line[160];
	int n;

	if (fatal_hook)
		fatal_hook();
	/* No stdio buffers: they may need memory themselves. */
	n = snprintf(line, sizeof line, "fatal: out of memory (%s, %zu bytes)\n", what, size);
	if (n > 0 && write(STDERR_FILENO, line, (size_t)n) < 0)
		abort();
	abort();
}

void *pv_xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (!p)
		pv_oom("malloc", size);
	return p;
}

void *pv_xcalloc(size_t count, size_t size)
{
	void *p = calloc(count ? count : 1, size ? size : 1);
	if (!p)
		pv_oom("calloc", count * size);
	return p;
}

void *pv_xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);
	if (!p)
		pv_oom("realloc", size);
	return p;
}

void *pv_xreallocarray(void *ptr, size_t count, size_t size)
{
	if (size && count > SIZE_MAX / size)
		pv_oom("reallocarray overflow", SIZE_MAX);
	return pv_xrealloc(ptr, count * size);
}

char *pv_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(pv_xmalloc(n), s, n);
}

char *pv_xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = pv_xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void pv_free_secret(char *s)
{
	if (!s)
		return;
	/* volatile: the compiler may not drop stores to memory about to be freed. */
	for (volatile char *p = s; *p; p++)
		*p = '\0';
	free(s);
}

char *pv_xvasprintf(const char *fmt, va_list ap)
{
	va_list copy;
	int n;
	char *p;

	va_copy(copy, ap);
	n = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (n < 0)
		pv_oom("vasprintf format", 0);
	p = pv_xmalloc((size_t)n + 1);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	return p;
}

char *pv_xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = pv_xvasprintf(fmt, ap);
	va_end(ap);
	return p;
}
