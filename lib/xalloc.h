/* Allocation that never returns NULL.
 *
 * The services decide once what running out of memory means: log the
 * size and the caller's purpose, run the registered emergency hook (the
 * console restores the terminal there), and abort.  Half-handled OOM paths
 * in a service that holds unacked messages are worse than a clean crash:
 * the broker redelivers, and every step is idempotent. */
#ifndef PV_XALLOC_H
#define PV_XALLOC_H

#include <stdarg.h>
#include <stddef.h>

void *pv_xmalloc(size_t size);
void *pv_xcalloc(size_t count, size_t size);
void *pv_xrealloc(void *ptr, size_t size);
/* Grows an array of count elements of size bytes, checking the product. */
void *pv_xreallocarray(void *ptr, size_t count, size_t size);
char *pv_xstrdup(const char *s);
char *pv_xstrndup(const char *s, size_t n);
char *pv_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *pv_xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
/* Frees a secret (a password; NULL is fine) after wiping it, so that it
 * does not outlive its owner in freed memory. */
void pv_free_secret(char *s);

/* Called before abort() on allocation failure (e.g. endwin()). */
void pv_xalloc_set_fatal_hook(void (*hook)(void));
/* Reports an allocation failure the way pv_x* do, for memory obtained from
 * libraries (jansson, libpq) that return NULL.  Never returns. */
void pv_oom(const char *what, size_t size) __attribute__((noreturn));

#endif
