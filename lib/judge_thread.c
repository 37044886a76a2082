#include "judge_thread.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "thread.h"
#include "xalloc.h"

struct pv_judge_thread {
	struct pv_judge *judge;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;             /* signalled on a hand-over, a verdict and the stop */
	struct pv_judge_decoded *handed; /* in hand until judged; NULL: none */
	bool quit;
	enum pv_err rc;
	struct pv_error err;
};

static void *judge_main(void *arg)
{
	struct pv_judge_thread *t = arg;

	pthread_mutex_lock(&t->lock);
	for (;;) {
		struct pv_judge_decoded *d;
		struct pv_error err = {0};
		enum pv_err rc;

		while (!t->handed && !t->quit)
			pthread_cond_wait(&t->cond, &t->lock);
		if (!t->handed)
			break;
		d = t->handed;
		pthread_mutex_unlock(&t->lock);
		rc = pv_judge_run(t->judge, d, &err);
		pthread_mutex_lock(&t->lock);
		t->rc = rc;
		t->err = err;
		t->handed = NULL;
		pthread_cond_broadcast(&t->cond);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

struct pv_judge_thread *pv_judge_thread_start(struct pv_judge *j)
{
	struct pv_judge_thread *t = pv_xcalloc(1, sizeof *t);
	sigset_t all, old;

	t->judge = j;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	/* A stop request must reach the owner's loop, not interrupt a store
	 * call here: the thread starts with every signal blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pv_thread_start(&t->thread, judge_main, t, "judge", "the judge's thread");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return t;
}

void pv_judge_thread_stop(struct pv_judge_thread *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->quit = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

void pv_judge_thread_hand(struct pv_judge_thread *t, struct pv_judge_decoded *d)
{
	pthread_mutex_lock(&t->lock);
	t->handed = d;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

enum pv_err pv_judge_thread_wait(struct pv_judge_thread *t, struct pv_error *err)
{
	enum pv_err rc;

	pthread_mutex_lock(&t->lock);
	while (t->handed)
		pthread_cond_wait(&t->cond, &t->lock);
	rc = t->rc;
	if (rc != PV_OK && err)
		*err = t->err;
	pthread_mutex_unlock(&t->lock);
	return rc;
}
