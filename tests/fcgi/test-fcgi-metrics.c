/* fcgi/metrics.c: requests by route and status, the latency histogram,
 * named counters and the publisher's counters in Prometheus text. */
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

#include "pv_test.h"

static const char *const routes[] = {"POST /elections", "GET /healthz"};

static char *render(struct pv_metrics *m, const struct pv_amqp_publisher_stats *pub)
{
	struct pv_buf b = PV_BUF_INIT;

	pv_metrics_render(m, pub, &b);
	return pv_buf_steal(&b);
}

static void assert_line(const char *text, const char *line)
{
	const char *p = text;
	size_t n = strlen(line);

	while ((p = strstr(p, line)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return;
		p++;
	}
	fail_msg("missing line: %s", line);
}

static void assert_no_text(const char *text, const char *what)
{
	if (strstr(text, what))
		fail_msg("unexpected: %s", what);
}

static void empty_store_renders_types_and_zero_counters(void **state)
{
	struct pv_metrics *m = pv_metrics_new(routes, 2);
	char *t = render(m, NULL);

	assert_line(t, "# TYPE photovote_http_requests_total counter");
	assert_line(t, "# TYPE photovote_http_request_duration_seconds histogram");
	assert_line(t, "photovote_idempotent_replays_total 0");
	assert_line(t, "photovote_auth_failures_total 0");
	/* No requests: no samples, and nothing from a publisher. */
	assert_no_text(t, "photovote_http_requests_total{");
	assert_no_text(t, "_bucket{");
	assert_no_text(t, "photovote_amqp");
	free(t);
	pv_metrics_free(m);
	pv_metrics_free(NULL);
}

static void requests_by_route_and_status(void **state)
{
	struct pv_metrics *m = pv_metrics_new(routes, 2);
	char *t;

	pv_metrics_request(m, 0, 202, 0.002);
	pv_metrics_request(m, 0, 202, 0.004);
	pv_metrics_request(m, 0, 400, 0.0001);
	pv_metrics_request(m, 1, 200, 0.5);
	pv_metrics_request(m, -1, 404, 0.0001);
	pv_metrics_request(m, 7, 405, 0.0001); /* out of range counts as unmatched */
	t = render(m, NULL);
	assert_line(t, "photovote_http_requests_total{route=\"POST /elections\",status=\"202\"} 2");
	assert_line(t, "photovote_http_requests_total{route=\"POST /elections\",status=\"400\"} 1");
	assert_line(t, "photovote_http_requests_total{route=\"GET /healthz\",status=\"200\"} 1");
	assert_line(t, "photovote_http_requests_total{route=\"unmatched\",status=\"404\"} 1");
	assert_line(t, "photovote_http_requests_total{route=\"unmatched\",status=\"405\"} 1");
	free(t);
	pv_metrics_free(m);
}

static void histogram_is_cumulative(void **state)
{
	struct pv_metrics *m = pv_metrics_new(routes, 2);
	char *t;

	pv_metrics_request(m, 0, 202, 0.002);  /* <= 0.0025 */
	pv_metrics_request(m, 0, 202, 0.004);  /* <= 0.005 */
	pv_metrics_request(m, 0, 202, 0.0001); /* <= 0.001 */
	pv_metrics_request(m, 0, 202, 60);     /* only +Inf */
	t = render(m, NULL);
	assert_line(t, "photovote_http_request_duration_seconds_bucket{route=\"POST /elections\","
		       "le=\"0.001\"} 1");
	assert_line(t, "photovote_http_request_duration_seconds_bucket{route=\"POST /elections\","
		       "le=\"0.0025\"} 2");
	assert_line(t, "photovote_http_request_duration_seconds_bucket{route=\"POST /elections\","
		       "le=\"0.005\"} 3");
	assert_line(t, "photovote_http_request_duration_seconds_bucket{route=\"POST /elections\","
		       "le=\"10\"} 3");
	assert_line(t, "photovote_http_request_duration_seconds_bucket{route=\"POST /elections\","
		       "le=\"+Inf\"} 4");
	assert_line(t,
		    "photovote_http_request_duration_seconds_count{route=\"POST /elections\"} 4");
	assert_line(t, "photovote_http_request_duration_seconds_sum{route=\"POST /elections\"} "
		       "60.006100");
	/* A route without requests has no histogram. */
	assert_no_text(t, "_count{route=\"GET /healthz\"}");
	free(t);
	pv_metrics_free(m);
}

static void named_counters(void **state)
{
	struct pv_metrics *m = pv_metrics_new(routes, 2);
	char *t;

	pv_metrics_count(m, "auth_failures");
	pv_metrics_count(m, "auth_failures");
	pv_metrics_count(m, "idempotent_replays");
	pv_metrics_count(m, "no_such_counter"); /* ignored */
	t = render(m, NULL);
	assert_line(t, "photovote_auth_failures_total 2");
	assert_line(t, "photovote_idempotent_replays_total 1");
	assert_no_text(t, "no_such_counter");
	free(t);
	pv_metrics_free(m);
}

static void publisher_counters(void **state)
{
	struct pv_metrics *m = pv_metrics_new(routes, 2);
	struct pv_amqp_publisher_stats pub = {.published = 10,
					      .acked = 9,
					      .nacked = 1,
					      .failed = 2,
					      .timeouts = 3,
					      .connects = 4,
					      .connected = true};
	char *t = render(m, &pub);

	assert_line(t, "photovote_amqp_publishes_total 10");
	assert_line(t, "photovote_amqp_confirms_total 9");
	assert_line(t, "photovote_amqp_nacks_total 1");
	assert_line(t, "photovote_amqp_publish_failures_total 2");
	assert_line(t, "photovote_amqp_confirm_timeouts_total 3");
	assert_line(t, "photovote_amqp_connects_total 4");
	assert_line(t, "# TYPE photovote_amqp_connected gauge");
	assert_line(t, "photovote_amqp_connected 1");
	free(t);
	pub.connected = false;
	t = render(m, &pub);
	assert_line(t, "photovote_amqp_connected 0");
	free(t);
	pv_metrics_free(m);
}

static void many_statuses_stay_bounded(void **state)
{
	struct pv_metrics *m = pv_metrics_new(routes, 2);
	char *t;

	/* More distinct statuses than the store has slots for: the extra
	 * ones are not labelled, but still timed, and nothing overflows. */
	for (int s = 200; s < 240; s++)
		pv_metrics_request(m, 1, s, 0.001);
	t = render(m, NULL);
	assert_line(t, "photovote_http_requests_total{route=\"GET /healthz\",status=\"200\"} 1");
	assert_line(t, "photovote_http_requests_total{route=\"GET /healthz\",status=\"215\"} 1");
	assert_no_text(t, "status=\"216\"");
	assert_line(t, "photovote_http_request_duration_seconds_count{route=\"GET /healthz\"} 40");
	free(t);
	pv_metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(empty_store_renders_types_and_zero_counters),
		cmocka_unit_test(requests_by_route_and_status),
		cmocka_unit_test(histogram_is_cumulative),
		cmocka_unit_test(named_counters),
		cmocka_unit_test(publisher_counters),
		cmocka_unit_test(many_statuses_stay_bounded),
	};

	return PV_RUN_TESTS(tests);
}
