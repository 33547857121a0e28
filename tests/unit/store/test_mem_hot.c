/* Unit tests for the embedded hotstore: presence replace/drop rules, batched
 * lookups, one-use link codes with expiry and a cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/mem_hot.h"

typedef struct {
	int calls;
	int status;
	hot_presence_t prev;
	hot_presence_t res[8];
	size_t n;
	uint64_t account;
} got_t;

static void on_presence(void *arg, int status, const hot_presence_t *prev)
{
	got_t *g = arg;
	g->calls++;
	g->status = status;
	g->prev = *prev;
}

static void on_lookup(void *arg, int status, const hot_presence_t *res, size_t n)
{
	got_t *g = arg;
	g->calls++;
	g->status = status;
	g->n = n;
	memcpy(g->res, res, n * sizeof *res);
}

static void on_link(void *arg, int status, uint64_t account)
{
	got_t *g = arg;
	g->calls++;
	g->status = status;
	g->account = account;
}

static void test_presence(void **state)
{
	(void)state;
	hotstore_t *hs;
	assert_int_equal(mem_hot_open(&hs), 0);
	hot_dev_t a1 = {7, 1}, a2 = {7, 2}, b1 = {9, 1};
	got_t g = {0};
	assert_int_equal(hot_presence_set(hs, a1, 0, 100, on_presence, &g), 0);
	assert_int_equal(g.calls, 1); /* completes inline */
	assert_int_equal(g.prev.found, 0);
	/* A newer connection replaces the older one, which is reported. */
	assert_int_equal(hot_presence_set(hs, a1, 1, 200, on_presence, &g), 0);
	assert_int_equal(g.prev.found, 1);
	assert_int_equal(g.prev.gw, 0);
	assert_int_equal(g.prev.conn_id, 100);
	assert_int_equal(hot_presence_set(hs, b1, 0, 300, on_presence, &g), 0);
	hot_dev_t q[3] = {a1, a2, b1};
	assert_int_equal(hot_presence_get(hs, q, 3, on_lookup, &g), 0);
	assert_int_equal(g.n, 3);
	assert_int_equal(g.res[0].found, 1);
	assert_int_equal(g.res[0].conn_id, 200);
	assert_int_equal(g.res[1].found, 0);
	assert_int_equal(g.res[2].conn_id, 300);
	/* Dropping with the old connection id leaves the newer entry. */
	assert_int_equal(hot_presence_drop(hs, a1, 0, 100, on_presence, &g), 0);
	assert_int_equal(g.prev.found, 0);
	assert_int_equal(hot_presence_get(hs, &a1, 1, on_lookup, &g), 0);
	assert_int_equal(g.res[0].found, 1);
	assert_int_equal(hot_presence_drop(hs, a1, 1, 200, on_presence, &g), 0);
	assert_int_equal(g.prev.found, 1);
	assert_int_equal(hot_presence_get(hs, &a1, 1, on_lookup, &g), 0);
	assert_int_equal(g.res[0].found, 0);
	/* conn_id 0 drops whatever holds the device; cb may be NULL. */
	assert_int_equal(hot_presence_drop(hs, b1, 0, 0, NULL, NULL), 0);
	assert_int_equal(hot_presence_get(hs, &b1, 1, on_lookup, &g), 0);
	assert_int_equal(g.res[0].found, 0);
	hot_close(hs);
}

static void test_link_codes(void **state)
{
	(void)state;
	hotstore_t *hs;
	assert_int_equal(mem_hot_open(&hs), 0);
	got_t g = {0};
	slice_t code = SLICE_LIT("abcdefghjk");
	assert_int_equal(hot_link_put(hs, code, 42, 60000, on_link, &g), 0);
	assert_int_equal(g.status, 0);
	assert_int_equal(hot_link_put(hs, code, 43, 60000, on_link, &g), 0);
	assert_true(g.status == -FC_EEXIST);
	assert_int_equal(hot_link_take(hs, SLICE_LIT("abcdefghjx"), on_link, &g), 0);
	assert_true(g.status == -FC_ENOTFOUND);
	assert_int_equal(hot_link_take(hs, code, on_link, &g), 0);
	assert_int_equal(g.status, 0);
	assert_int_equal(g.account, 42);
	/* One use only. */
	assert_int_equal(hot_link_take(hs, code, on_link, &g), 0);
	assert_true(g.status == -FC_ENOTFOUND);
	/* Expiry. */
	assert_int_equal(hot_link_put(hs, SLICE_LIT("shortlived"), 5, 1, on_link, &g), 0);
	usleep(5000);
	assert_int_equal(hot_link_take(hs, SLICE_LIT("shortlived"), on_link, &g), 0);
	assert_true(g.status == -FC_ENOTFOUND);
	/* Cap: the table holds MEM_HOT_LINKS live codes. */
	char buf[16];
	for (int i = 0; i < MEM_HOT_LINKS; i++) {
		snprintf(buf, sizeof buf, "code%06d", i);
		/* Spread over accounts: each may hold only a few codes. */
		uint64_t acct = 1000 + (uint64_t)(i / MEM_HOT_LINKS_PER_ACCOUNT);
		assert_int_equal(hot_link_put(hs, slice_cstr(buf), acct, 60000, on_link, &g), 0);
		assert_int_equal(g.status, 0);
	}
	assert_int_equal(hot_link_put(hs, SLICE_LIT("onetoomany"), 1, 60000, on_link, &g), 0);
	assert_true(g.status == -FC_ELIMIT);
	assert_true(hot_link_put(hs, SLICE_LIT(""), 1, 60000, on_link, &g) == -EINVAL);
	hot_close(hs);
	/* Per-account cap. */
	assert_int_equal(mem_hot_open(&hs), 0);
	for (int i = 0; i < MEM_HOT_LINKS_PER_ACCOUNT; i++) {
		snprintf(buf, sizeof buf, "mine%06d", i);
		assert_int_equal(hot_link_put(hs, slice_cstr(buf), 77, 60000, on_link, &g), 0);
		assert_int_equal(g.status, 0);
	}
	assert_int_equal(hot_link_put(hs, SLICE_LIT("mine-extra"), 77, 60000, on_link, &g), 0);
	assert_true(g.status == -FC_ELIMIT);
	assert_int_equal(hot_link_put(hs, SLICE_LIT("yours00001"), 78, 60000, on_link, &g), 0);
	assert_int_equal(g.status, 0);
	hot_close(hs);
}

static void on_rate(void *arg, int status, int allowed, uint32_t retry_ms)
{
	got_t *g = arg;
	g->calls++;
	g->status = status;
	g->n = (size_t)allowed;
	g->account = retry_ms;
}

static void test_rate_windows(void **state)
{
	(void)state;
	hotstore_t *hs;
	assert_int_equal(mem_hot_open(&hs), 0);
	got_t g = {0};
	hot_dev_t a = {5, 1}, b = {5, 2};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(hot_rate_take(hs, a, HOT_RATE_BUNDLE, 3, 200, on_rate, &g), 0);
		assert_int_equal(g.n, 1);
	}
	assert_int_equal(hot_rate_take(hs, a, HOT_RATE_BUNDLE, 3, 200, on_rate, &g), 0);
	assert_int_equal(g.n, 0);
	assert_true(g.account > 0 && g.account <= 200); /* retry within the window */
	/* Another device has its own budget. */
	assert_int_equal(hot_rate_take(hs, b, HOT_RATE_BUNDLE, 3, 200, on_rate, &g), 0);
	assert_int_equal(g.n, 1);
	/* A new window refills it. */
	usleep(250000);
	assert_int_equal(hot_rate_take(hs, a, HOT_RATE_BUNDLE, 3, 200, on_rate, &g), 0);
	assert_int_equal(g.n, 1);
	hot_close(hs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_presence),
		cmocka_unit_test(test_link_codes),
		cmocka_unit_test(test_rate_windows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
