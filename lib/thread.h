/* Small threading helpers shared by the programs' background threads. */
#ifndef PV_THREAD_H
#define PV_THREAD_H

#include <pthread.h>

/* A condition variable whose timed waits count on CLOCK_MONOTONIC, so a
 * step of the wall clock neither shortens nor stretches a deadline. */
void pv_cond_init_monotonic(pthread_cond_t *cond);

/* Starts fn(arg) on *t; a thread that cannot start ends the program with
 * "<area>: starting <what>: <reason>" (pthread_create's error, which it
 * returns rather than sets in errno). */
void pv_thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *area,
		     const char *what);

#endif
