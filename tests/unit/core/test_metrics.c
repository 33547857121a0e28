/* Unit tests for core/metrics: counters, error kinds and the latency
 * histogram as Prometheus text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/metrics.h"

static void test_render(void **state)
{
	(void)state;
	metrics_add(M_CONNECTIONS, 3);
	metrics_add(M_CONNECTIONS, -1);
	metrics_add(M_MSG_ACCEPTED, 5);
	metrics_err(E_WS_PROTOCOL);
	metrics_err(E_WS_PROTOCOL);
	metrics_latency_us(80);   /* le 0.0001 */
	metrics_latency_us(3000); /* le 0.005 */
	metrics_latency_us(2e7);  /* +Inf only */
	char buf[16384];
	size_t n = metrics_render(buf, sizeof buf);
	buf[n] = 0;
	assert_non_null(strstr(buf, "# TYPE fourc_connections gauge\nfourc_connections 2\n"));
	assert_non_null(strstr(buf, "\nfourc_messages_accepted_total 5\n"));
	assert_non_null(strstr(buf, "fourc_errors_total{kind=\"ws_protocol\"} 2\n"));
	assert_non_null(strstr(buf, "fourc_errors_total{kind=\"ws_utf8\"} 0\n"));
	assert_non_null(strstr(buf, "fourc_delivery_latency_seconds_bucket{le=\"0.0001\"} 1\n"));
	assert_non_null(strstr(buf, "fourc_delivery_latency_seconds_bucket{le=\"0.0025\"} 1\n"));
	assert_non_null(strstr(buf, "fourc_delivery_latency_seconds_bucket{le=\"0.005\"} 2\n"));
	assert_non_null(strstr(buf, "fourc_delivery_latency_seconds_bucket{le=\"10\"} 2\n"));
	assert_non_null(strstr(buf, "fourc_delivery_latency_seconds_bucket{le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(buf, "fourc_delivery_latency_seconds_count 3\n"));
	assert_int_equal(metrics_get(M_MSG_ACCEPTED), 5);
}

static void test_truncates_at_cap(void **state)
{
	(void)state;
	char buf[100];
	memset(buf, 'x', sizeof buf);
	size_t n = metrics_render(buf, 64);
	assert_true(n <= 64);
	assert_int_equal(buf[99], 'x');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_truncates_at_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
