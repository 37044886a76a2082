/* The console's worker thread: every call to a server runs here, so the
 * thread that reads keys and draws never waits on a network.
 *
 * Design
 *   - One thread owns the session (its connections are not shared): jobs
 *     run one at a time, in the order they were queued.
 *   - A finished job goes on the answer list and one byte is written to a
 *     pipe; the console polls that pipe beside the terminal, so an answer
 *     wakes it at once.  pv_cw_wake() writes the same byte and is
 *     async-signal-safe: the console's SIGTERM/SIGINT handlers use it to
 *     end a poll() without a race.
 *   - A job cannot be interrupted inside libpq, librabbitmq or libcurl.
 *     The console cancels a read by abandoning the worker (pv_cw_abandon):
 *     the thread goes on alone with its session until the call returns
 *     (the server answers or its timeout ends it), then frees the job, the
 *     session and itself; the console starts a new worker on a new session
 *     and hands it the jobs that had not started, so nothing waits behind
 *     the hung call.  A job that changes something (keep) is never
 *     abandoned: its result must be seen.  pv_cw_busy() says what runs and
 *     since when, so the screen can show it.
 *   - pv_cw_stop() waits a bounded time.  A worker still inside a call is
 *     left running: the caller must then neither free the session nor
 *     return into code that would, and ends the process (_exit). */
#ifndef PV_ADMIN_CONSOLE_WORKER_H
#define PV_ADMIN_CONSOLE_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "session.h"

/* Embed as the first member of a job; the worker calls run, the console
 * takes the job back with pv_cw_take(). */
struct pv_cw_job {
	const char *what; /* what it waits for, e.g. "RabbitMQ: dead letters" (static) */
	bool keep;        /* changes something: never abandoned */
	void (*run)(struct pv_session *s, struct pv_cw_job *job);
	struct pv_cw_job *next;
};

struct pv_cw;

/* Starts the thread; NULL (err set) without its wake-up pipe.  A thread
 * that cannot start ends the program (pv_thread_start), before the
 * console takes the terminal. */
struct pv_cw *pv_cw_start(struct pv_session *s, struct pv_error *err);
/* The descriptor that becomes readable when an answer waits. */
int pv_cw_fd(const struct pv_cw *w);
/* The descriptor pv_cw_wake() writes to, for a signal handler. */
int pv_cw_wake_fd(const struct pv_cw *w);
/* Wakes a poll() on pv_cw_fd(); async-signal-safe. */
void pv_cw_wake(int fd);
/* Queues job (the worker borrows it until pv_cw_take() gives it back). */
void pv_cw_submit(struct pv_cw *w, struct pv_cw_job *job);
/* The oldest finished job, or NULL; drains the wake-up pipe. */
struct pv_cw_job *pv_cw_take(struct pv_cw *w);
/* Whether a job is running: its label and for how many milliseconds;
 * also how many wait behind it. */
bool pv_cw_busy(struct pv_cw *w, const char **what, long *ms, size_t *queued);
/* Stops the thread once its current job ends, waiting at most ms: true
 * when it ended (w freed, with the jobs still queued or unanswered handed
 * to release); false when a call is still running (w left alone). */
bool pv_cw_stop(struct pv_cw *w, long ms, void (*release)(struct pv_cw_job *job));
/* Gives up on w's running job, unless none runs, it is a keep job, or max
 * abandoned workers are still inside their calls (false: w unchanged).
 * Then w is no longer the caller's: the thread ends by itself once the
 * call returns, handing the job to release and its session to
 * free_session (the session must not be the owner of a configuration
 * others borrow).  *queued gets the jobs that had not started, in order,
 * for another worker.  Take the answers first (pv_cw_take): those left
 * are released. */
bool pv_cw_abandon(struct pv_cw *w, size_t max, void (*release)(struct pv_cw_job *job),
		   void (*free_session)(struct pv_session *s), struct pv_cw_job **queued);
/* How many abandoned workers are still inside a call: while any is, the
 * sessions they borrow a configuration from must stay. */
size_t pv_cw_abandoned(void);

#endif
