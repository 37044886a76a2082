/* The judge on a thread of its own: it judges one decoded batch at a time
 * (pv_judge_run) while its owner takes the next batch from the broker and
 * decodes it, so that the owner's CPU work overlaps the store's round trips
 * of the batch before.  The judge is the thread's alone from
 * pv_judge_thread_hand until pv_judge_thread_wait returns. */
#ifndef PV_JUDGE_THREAD_H
#define PV_JUDGE_THREAD_H

#include <stdbool.h>

#include "error.h"
#include "judge.h"

struct pv_judge_thread;

/* Starts the thread (with every signal blocked: they are the owner's);
 * takes over nothing.  A thread that cannot start ends the program. */
struct pv_judge_thread *pv_judge_thread_start(struct pv_judge *j);
/* Waits for the batch in hand, if any, and ends the thread. */
void pv_judge_thread_stop(struct pv_judge_thread *t);

/* Hands d over to be judged; none may be in hand. */
void pv_judge_thread_hand(struct pv_judge_thread *t, struct pv_judge_decoded *d);
/* Waits until the batch in hand is judged: pv_judge_run's answer. */
enum pv_err pv_judge_thread_wait(struct pv_judge_thread *t, struct pv_error *err);

#endif
