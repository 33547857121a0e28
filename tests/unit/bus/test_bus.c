/* Unit tests for bus: order across producers, wake-ups, close semantics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bus/bus.h"

#define PRODUCERS 4
#define PER_PRODUCER 20000

typedef struct {
	bus_inbox_t in;
	uint64_t seen[PRODUCERS];
	uint64_t total;
	int order_ok;
} sink_t;

static void on_msgs(bus_inbox_t *in)
{
	sink_t *s = in->data;
	bus_msg_t *m = bus_drain(&s->in);
	while (m) {
		bus_msg_t *n = m->next;
		/* Per producer, messages arrive in the order they were pushed. */
		if (m->conn_id != s->seen[m->gw])
			s->order_ok = 0;
		s->seen[m->gw] = m->conn_id + 1;
		s->total++;
		bus_msg_free(m);
		m = n;
	}
	if (s->total == (uint64_t)PRODUCERS * PER_PRODUCER)
		bus_inbox_close(&s->in);
}

static void producer(void *arg)
{
	void **a = arg;
	sink_t *s = a[0];
	uint16_t id = (uint16_t)(uintptr_t)a[1];
	for (uint64_t i = 0; i < PER_PRODUCER; i++) {
		bus_msg_t *m = bus_msg_new(BUS_FRAME, &i, sizeof i);
		assert_non_null(m);
		m->gw = id;
		m->conn_id = i;
		assert_int_equal(bus_push(&s->in, m), 0);
	}
}

static void test_mpsc_order_and_count(void **state)
{
	(void)state;
	uv_loop_t loop;
	sink_t s;
	memset(&s, 0, sizeof s);
	s.order_ok = 1;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(bus_inbox_init(&s.in, &loop, on_msgs), 0);
	s.in.data = &s;
	uv_thread_t th[PRODUCERS];
	void *args[PRODUCERS][2];
	for (int i = 0; i < PRODUCERS; i++) {
		args[i][0] = &s;
		args[i][1] = (void *)(uintptr_t)i;
		assert_int_equal(uv_thread_create(&th[i], producer, args[i]), 0);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	for (int i = 0; i < PRODUCERS; i++)
		uv_thread_join(&th[i]);
	assert_int_equal(s.total, (uint64_t)PRODUCERS * PER_PRODUCER);
	assert_true(s.order_ok);
	for (int i = 0; i < PRODUCERS; i++)
		assert_int_equal(s.seen[i], PER_PRODUCER);
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_push_after_close_is_refused(void **state)
{
	(void)state;
	uv_loop_t loop;
	bus_inbox_t in;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(bus_inbox_init(&in, &loop, NULL), 0);
	bus_msg_t *queued = bus_msg_new(BUS_FRAME, "abc", 3);
	assert_int_equal(bus_push(&in, queued), 0);
	bus_inbox_close(&in); /* frees the queued message */
	bus_msg_t *late = bus_msg_new(BUS_FRAME, "x", 1);
	assert_int_equal(bus_push(&in, late), -EPIPE); /* and frees it */
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_msg_payload(void **state)
{
	(void)state;
	bus_msg_t *m = bus_msg_new(BUS_REQUEST, "hello", 5);
	assert_non_null(m);
	assert_int_equal(m->kind, BUS_REQUEST);
	assert_int_equal(m->len, 5);
	assert_memory_equal(m->data, "hello", 5);
	assert_int_equal(m->account, 0);
	assert_null(m->next);
	bus_msg_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mpsc_order_and_count),
		cmocka_unit_test(test_push_after_close_is_refused),
		cmocka_unit_test(test_msg_payload),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
