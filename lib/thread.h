/* Small threading helpers shared by the programs' background threads. */
#ifndef PV_THREAD_H
#define PV_THREAD_H

#include <pthread.h>

/* A condition variable whose timed waits count on CLOCK_MONOTONIC, so a
 * step of the wall clock neither shortens nor stretches a deadline. */
void pv_cond_init_monotonic(pthread_cond_t *cond);

#endif
