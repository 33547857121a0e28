#include "bus/bus.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

bus_msg_t *bus_msg_new(uint16_t kind, const void *data, size_t len)
{
	bus_msg_t *m = malloc(sizeof *m + len);
	if (!m)
		return NULL;
	memset(m, 0, sizeof *m);
	m->kind = kind;
	m->len = len;
	if (data && len)
		memcpy(m->data, data, len);
	return m;
}

void bus_msg_free(bus_msg_t *m)
{
	free(m);
}

int bus_inbox_init(bus_inbox_t *in, uv_loop_t *loop, uv_async_cb cb)
{
	in->head = NULL;
	in->closed = 0;
	in->pushers = 0;
	return uv_async_init(loop, &in->async, cb);
}

int bus_push(bus_inbox_t *in, bus_msg_t *m)
{
	__atomic_add_fetch(&in->pushers, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&in->closed, __ATOMIC_SEQ_CST)) {
		__atomic_sub_fetch(&in->pushers, 1, __ATOMIC_SEQ_CST);
		bus_msg_free(m);
		return -EPIPE;
	}
	bus_msg_t *old = __atomic_load_n(&in->head, __ATOMIC_RELAXED);
	do {
		m->next = old;
	} while (!__atomic_compare_exchange_n(&in->head, &old, m, 1, __ATOMIC_RELEASE,
					      __ATOMIC_RELAXED));
	/* uv_async_send coalesces wake-ups, so a burst costs one wake. */
	uv_async_send(&in->async);
	__atomic_sub_fetch(&in->pushers, 1, __ATOMIC_SEQ_CST);
	return 0;
}

void bus_inbox_close(bus_inbox_t *in)
{
	__atomic_store_n(&in->closed, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&in->pushers, __ATOMIC_SEQ_CST) != 0)
		sched_yield();
	bus_msg_t *m = bus_drain(in);
	while (m) {
		bus_msg_t *n = m->next;
		bus_msg_free(m);
		m = n;
	}
	if (!uv_is_closing((uv_handle_t *)&in->async))
		uv_close((uv_handle_t *)&in->async, NULL);
}

bus_msg_t *bus_drain(bus_inbox_t *in)
{
	bus_msg_t *list = __atomic_exchange_n(&in->head, NULL, __ATOMIC_ACQUIRE);
	/* The stack is newest first; reverse it to preserve order. */
	bus_msg_t *out = NULL;
	while (list) {
		bus_msg_t *n = list->next;
		list->next = out;
		out = list;
		list = n;
	}
	return out;
}
