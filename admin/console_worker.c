/* The console's worker thread (console_worker.h). */
#define _POSIX_C_SOURCE 200809L

#include "console_worker.h"

#include "thread.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct pv_cw {
	struct pv_session *s;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t more; /* a job was queued, or stopping */
	pthread_cond_t idle; /* the running job ended */
	int pipe[2];
	bool stopping, ended;
	/* Given up (pv_cw_abandon): the thread frees everything itself once
	 * its call returns. */
	bool abandoned;
	void (*release)(struct pv_cw_job *job);
	void (*free_session)(struct pv_session *s);
	/* Under lock. */
	struct pv_cw_job *queue, **queue_tail;
	struct pv_cw_job *answers, **answers_tail;
	struct pv_cw_job *running;
	struct timespec started;
	size_t queued;
};

/* Abandoned workers still inside a call, process-wide. */
static pthread_mutex_t abandoned_lock = PTHREAD_MUTEX_INITIALIZER;
static size_t abandoned_running;

static long ms_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t->tv_sec) * 1000L + (now.tv_nsec - t->tv_nsec) / 1000000L;
}

void pv_cw_wake(int fd)
{
	int saved = errno;
	char c = 1;

	/* Full pipe: a wake-up is already pending, which is all we need. */
	if (write(fd, &c, 1) < 0) {
	}
	errno = saved;
}

static void destroy(struct pv_cw *w)
{
	close(w->pipe[0]);
	close(w->pipe[1]);
	pthread_cond_destroy(&w->idle);
	pthread_cond_destroy(&w->more);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

/* The end of an abandoned worker's thread, after its call returned: no
 * one else holds w any more (the console let go of it in pv_cw_abandon). */
static void finish_abandoned(struct pv_cw *w)
{
	w->free_session(w->s);
	destroy(w);
	pthread_mutex_lock(&abandoned_lock);
	abandoned_running--;
	pthread_mutex_unlock(&abandoned_lock);
}

static void *worker(void *arg)
{
	struct pv_cw *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct pv_cw_job *job;

		while (!w->queue && !w->stopping)
			pthread_cond_wait(&w->more, &w->lock);
		if (w->stopping)
			break;
		job = w->queue;
		w->queue = job->next;
		if (!w->queue)
			w->queue_tail = &w->queue;
		w->queued--;
		w->running = job;
		clock_gettime(CLOCK_MONOTONIC, &w->started);
		pthread_mutex_unlock(&w->lock);

		job->run(w->s, job);

		pthread_mutex_lock(&w->lock);
		if (w->abandoned) {
			pthread_mutex_unlock(&w->lock);
			w->release(job);
			finish_abandoned(w);
			return NULL;
		}
		w->running = NULL;
		job->next = NULL;
		*w->answers_tail = job;
		w->answers_tail = &job->next;
		pv_cw_wake(w->pipe[1]);
		pthread_cond_broadcast(&w->idle);
	}
	w->ended = true;
	pthread_cond_broadcast(&w->idle);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

struct pv_cw *pv_cw_start(struct pv_session *s, struct pv_error *err)
{
	struct pv_cw *w = pv_xcalloc(1, sizeof *w);

	w->s = s;
	w->queue_tail = &w->queue;
	w->answers_tail = &w->answers;
	if (pipe(w->pipe) != 0) {
		pv_error_set(err, PV_ERR_SYSTEM, "console: pipe: %s", strerror(errno));
		free(w);
		return NULL;
	}
	for (int i = 0; i < 2; i++) {
		fcntl(w->pipe[i], F_SETFL, fcntl(w->pipe[i], F_GETFL) | O_NONBLOCK);
		fcntl(w->pipe[i], F_SETFD, FD_CLOEXEC);
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->more, NULL);
	pv_cond_init_monotonic(&w->idle);
	pv_thread_start(&w->thread, worker, w, "console", "its worker thread");
	return w;
}

int pv_cw_fd(const struct pv_cw *w)
{
	return w->pipe[0];
}

int pv_cw_wake_fd(const struct pv_cw *w)
{
	return w->pipe[1];
}

void pv_cw_submit(struct pv_cw *w, struct pv_cw_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&w->lock);
	*w->queue_tail = job;
	w->queue_tail = &job->next;
	w->queued++;
	pthread_cond_signal(&w->more);
	pthread_mutex_unlock(&w->lock);
}

struct pv_cw_job *pv_cw_take(struct pv_cw *w)
{
	struct pv_cw_job *job;
	char drain[64];

	while (read(w->pipe[0], drain, sizeof drain) > 0)
		;
	pthread_mutex_lock(&w->lock);
	job = w->answers;
	if (job) {
		w->answers = job->next;
		if (!w->answers)
			w->answers_tail = &w->answers;
		job->next = NULL;
	}
	pthread_mutex_unlock(&w->lock);
	return job;
}

bool pv_cw_busy(struct pv_cw *w, const char **what, long *ms, size_t *queued)
{
	bool busy;

	pthread_mutex_lock(&w->lock);
	busy = w->running != NULL;
	*what = busy ? w->running->what : NULL;
	*ms = busy ? ms_since(&w->started) : 0;
	*queued = w->queued;
	pthread_mutex_unlock(&w->lock);
	return busy;
}

static void release_list(struct pv_cw_job *job, void (*release)(struct pv_cw_job *job))
{
	while (job) {
		struct pv_cw_job *next = job->next;

		release(job);
		job = next;
	}
}

bool pv_cw_stop(struct pv_cw *w, long ms, void (*release)(struct pv_cw_job *job))
{
	struct timespec deadline;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += ms / 1000;
	deadline.tv_nsec += (ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_signal(&w->more);
	while (!w->ended)
		if (pthread_cond_timedwait(&w->idle, &w->lock, &deadline) == ETIMEDOUT)
			break;
	if (!w->ended) {
		pthread_mutex_unlock(&w->lock);
		return false;
	}
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	release_list(w->queue, release);
	release_list(w->answers, release);
	destroy(w);
	return true;
}

bool pv_cw_abandon(struct pv_cw *w, size_t max, void (*release)(struct pv_cw_job *job),
		   void (*free_session)(struct pv_session *s), struct pv_cw_job **queued)
{
	pthread_mutex_lock(&w->lock);
	pthread_mutex_lock(&abandoned_lock);
	if (!w->running || w->running->keep || abandoned_running >= max) {
		pthread_mutex_unlock(&abandoned_lock);
		pthread_mutex_unlock(&w->lock);
		return false;
	}
	abandoned_running++;
	pthread_mutex_unlock(&abandoned_lock);
	w->abandoned = true;
	w->release = release;
	w->free_session = free_session;
	*queued = w->queue;
	w->queue = NULL;
	w->queue_tail = &w->queue;
	w->queued = 0;
	/* Answers already made are the caller's to have taken first; any left
	 * are released with the worker's own job. */
	release_list(w->answers, release);
	w->answers = NULL;
	w->answers_tail = &w->answers;
	pthread_detach(w->thread);
	pthread_mutex_unlock(&w->lock);
	return true;
}

size_t pv_cw_abandoned(void)
{
	size_t n;

	pthread_mutex_lock(&abandoned_lock);
	n = abandoned_running;
	pthread_mutex_unlock(&abandoned_lock);
	return n;
}
