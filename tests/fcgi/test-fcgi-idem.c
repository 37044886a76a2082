/* fcgi/idem.c: the Idempotency-Key answers: new, replay, mismatch, busy,
 * forgetting failed requests, waiting for a pending one, capacity and
 * expiry. */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "idem.h"

#include "pv_test.h"

#define FP_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define FP_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define KEY1 "6f1c2a34-0000-5000-8000-000000000001"
#define KEY2 "6f1c2a34-0000-5000-8000-000000000002"
#define KEY3 "6f1c2a34-0000-5000-8000-000000000003"

static void finish_202(struct pv_idem *c, const char *key, const char *body)
{
	struct pv_idem_answer a = {202, (char *)"/api/commands/x", (char *)body};

	pv_idem_finish(c, key, &a);
}

static void new_then_replay_then_mismatch(void **state)
{
	struct pv_idem *c = pv_idem_new(10, 3600);
	struct pv_idem_answer a;

	assert_int_equal(pv_idem_begin(c, KEY1, FP_A, 0, &a), PV_IDEM_NEW);
	assert_int_equal(pv_idem_count(c), 1);
	finish_202(c, KEY1, "{\"status\":\"accepted\"}\n");

	assert_int_equal(pv_idem_begin(c, KEY1, FP_A, 0, &a), PV_IDEM_REPLAY);
	assert_int_equal(a.status, 202);
	assert_string_equal(a.location, "/api/commands/x");
	assert_string_equal(a.body, "{\"status\":\"accepted\"}\n");
	pv_idem_answer_clear(&a);
	assert_null(a.body);

	/* The same key with another request. */
	assert_int_equal(pv_idem_begin(c, KEY1, FP_B, 0, &a), PV_IDEM_MISMATCH);
	assert_null(a.body);
	/* Another key is independent. */
	assert_int_equal(pv_idem_begin(c, KEY2, FP_B, 0, &a), PV_IDEM_NEW);
	assert_int_equal(pv_idem_count(c), 2);
	pv_idem_free(c);
}

static void the_answer_is_copied(void **state)
{
	struct pv_idem *c = pv_idem_new(10, 3600);
	struct pv_idem_answer a;
	char body[] = "first";

	assert_int_equal(pv_idem_begin(c, KEY1, FP_A, 0, &a), PV_IDEM_NEW);
	finish_202(c, KEY1, body);
	body[0] = 'X'; /* the caller's buffer goes away with its request */
	assert_int_equal(pv_idem_begin(c, KEY1, FP_A, 0, &a), PV_IDEM_REPLAY);
	assert_string_equal(a.body, "first");
	pv_idem_answer_clear(&a);
	pv_idem_free(c);
}

static void a_failed_request_is_forgotten(void **state)
{
	struct pv_idem *c = pv_idem_new(10, 3600);
	struct pv_idem_answer a;

	assert_int_equal(pv_idem_begin(c, KEY1, FP_A, 0, &a), PV_IDEM_NEW);
	pv_idem_finish(c, KEY1, NULL);
	assert_int_equal(pv_idem_count(c), 0);
	/* The retry publishes: it may even carry another body. */
	assert_int_equal(pv_idem_begin(c, KEY1, FP_B, 0, &a), PV_IDEM_NEW);
	/* Finishing a key nobody began is harmless. */
	pv_idem_finish(c, KEY3, NULL);
	finish_202(c, KEY3, "x");
	assert_int_equal(pv_idem_count(c), 1);
	pv_idem_free(c);
}

static void pending_key_is_busy_after_the_wait(void **state)
{
	struct pv_idem *c = pv_idem_new(10, 3600);
	struct pv_idem_answer a;
	struct timespec t0, t1;
	long ms;

	assert_int_equal(pv_idem_begin(c, KEY1, FP_A, 0, &a), PV_IDEM_NEW);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(pv_idem_begin(c, KEY1, FP_A, 150, &a), PV_IDEM_BUSY);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 140);
	assert_true(ms < 5000);
	/* A different request with the pending key is refused at once. */
	assert_int_equal(pv_idem_begin(c, KEY1, FP_B, 10000, &a), PV_IDEM_MISMATCH);
	pv_idem_free(c);
}

struct waiter {
	struct pv_idem *c;
	enum pv_idem_result result;
	struct pv_idem_answer answer;
};

static void *wait_for_key1(void *arg)
{
	struct waiter *w = arg;

	w->result = pv_idem_begin(w->c, KEY1, FP_A, 10000, &w->answer);
	return NULL;
}

static void a_waiting_retry_gets_the_first_answer(void **state)
{
	struct waiter w = {pv_idem_new(10, 3600), PV_IDEM_NEW, {0, NULL, NULL}};
	struct timespec pause = {0, 100 * 1000 * 1000};
	struct pv_idem_answer a;
	pthread_t th;

	assert_int_equal(pv_idem_begin(w.c, KEY1, FP_A, 0, &a), PV_IDEM_NEW);
	assert_int_equal(pthread_create(&th, NULL, wait_for_key1, &w), 0);
	nanosleep(&pause, NULL);
	finish_202(w.c, KEY1, "the first answer");
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(w.result, PV_IDEM_REPLAY);
	assert_int_equal(w.answer.status, 202);
	assert_string_equal(w.answer.body, "the first answer");
	pv_idem_answer_clear(&w.answer);
	pv_idem_free(w.c);
}

static void a_waiting_retry_runs_when_the_first_failed(void **state)
{
	struct waiter w = {pv_idem_new(10, 3600), PV_IDEM_REPLAY, {0, NULL, NULL}};
	struct timespec pause = {0, 100 * 1000 * 1000};
	struct pv_idem_answer a;
	pthread_t th;

	assert_int_equal(pv_idem_begin(w.c, KEY1, FP_A, 0, &a), PV_IDEM_NEW);
	assert_int_equal(pthread_create(&th, NULL, wait_for_key1, &w), 0);
	nanosleep(&pause, NULL);
	pv_idem_finish(w.c, KEY1, NULL);
	assert_int_equal(pthread_join(th, NULL), 0);
	/* The waiter now owns the key and must finish it. */
	assert_int_equal(w.result, PV_IDEM_NEW);
	assert_int_equal(pv_idem_count(w.c), 1);
	pv_idem_free(w.c);
}

static void oldest_answers_are_evicted_at_capacity(void **state)
{
	struct pv_idem *c = pv_idem_new(2, 3600);
	struct pv_idem_answer a;

	assert_int_equal(pv_idem_begin(c, KEY1, FP_A, 0, &a), PV_IDEM_NEW);
	finish_202(c, KEY1, "1");
	assert_int_equal(pv_idem_begin(c, KEY2, FP_A, 0, &a), PV_IDEM_NEW);
	finish_202(c, KEY2, "2");
	assert_int_equal(pv_idem_begin(c, KEY3, FP_A, 0, &a), PV_IDEM_NEW);
	finish_202(c, KEY3, "3");
	assert_true(pv_idem_count(c) <= 2);
	/* KEY3, the newest, is remembered; KEY1, the oldest, is not. */
	assert_int_equal(pv_idem_begin(c, KEY3, FP_A, 0, &a), PV_IDEM_REPLAY);
	assert_string_equal(a.body, "3");
	pv_idem_answer_clear(&a);
	assert_int_equal(pv_idem_begin(c, KEY1, FP_A, 0, &a), PV_IDEM_NEW);
	pv_idem_free(c);
}

static void pending_entries_are_never_evicted(void **state)
{
	struct pv_idem *c = pv_idem_new(1, 3600);
	struct pv_idem_answer a;

	assert_int_equal(pv_idem_begin(c, KEY1, FP_A, 0, &a), PV_IDEM_NEW);
	assert_int_equal(pv_idem_begin(c, KEY2, FP_A, 0, &a), PV_IDEM_NEW);
	/* Over capacity while both run. */
	assert_int_equal(pv_idem_count(c), 2);
	assert_int_equal(pv_idem_begin(c, KEY1, FP_A, 0, &a), PV_IDEM_BUSY);
	finish_202(c, KEY1, "1");
	finish_202(c, KEY2, "2");
	assert_int_equal(pv_idem_begin(c, KEY3, FP_A, 0, &a), PV_IDEM_NEW);
	assert_true(pv_idem_count(c) <= 2);
	pv_idem_free(c);
}

static void expired_answers_are_dropped(void **state)
{
	/* A TTL of 0 seconds: an answer expires as soon as it is kept. */
	struct pv_idem *c = pv_idem_new(10, 0);
	struct pv_idem_answer a;

	assert_int_equal(pv_idem_begin(c, KEY1, FP_A, 0, &a), PV_IDEM_NEW);
	finish_202(c, KEY1, "1");
	assert_int_equal(pv_idem_begin(c, KEY1, FP_A, 0, &a), PV_IDEM_NEW);
	assert_int_equal(pv_idem_count(c), 1);
	pv_idem_free(c);
}

static void free_with_entries_and_null(void **state)
{
	struct pv_idem *c = pv_idem_new(0, 10); /* capacity 0 counts as 1 */
	struct pv_idem_answer a;

	assert_int_equal(pv_idem_begin(c, KEY1, FP_A, 0, &a), PV_IDEM_NEW);
	assert_int_equal(pv_idem_begin(c, KEY2, FP_A, 0, &a), PV_IDEM_NEW);
	pv_idem_free(c); /* pending entries are released too (ASan checks) */
	pv_idem_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(new_then_replay_then_mismatch),
		cmocka_unit_test(the_answer_is_copied),
		cmocka_unit_test(a_failed_request_is_forgotten),
		cmocka_unit_test(pending_key_is_busy_after_the_wait),
		cmocka_unit_test(a_waiting_retry_gets_the_first_answer),
		cmocka_unit_test(a_waiting_retry_runs_when_the_first_failed),
		cmocka_unit_test(oldest_answers_are_evicted_at_capacity),
		cmocka_unit_test(pending_entries_are_never_evicted),
		cmocka_unit_test(expired_answers_are_dropped),
		cmocka_unit_test(free_with_entries_and_null),
	};

	return PV_RUN_TESTS(tests);
}
