#include "thread.h"

#include <errno.h>
#include <time.h>

#include "log.h"

void pv_thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *area,
		     const char *what)
{
	int rc = pthread_create(t, NULL, fn, arg);

	if (rc != 0) {
		errno = rc;
		pv_log_fatal(area, "starting %s", what);
	}
}

void pv_cond_init_monotonic(pthread_cond_t *cond)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
}
