#include "bus/bus.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>
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

static void on_poll(uv_poll_t *p, int status, int events)
{
	bus_inbox_t *in = p->data;
	(void)events;
	if (status < 0)
		return;
	uint64_t v;
	/* Reset the counter first: a push after this read writes again. */
	ssize_t r = read(in->efd, &v, sizeof v);
	(void)r;
	if (in->cb)
		in->cb(in);
}

int bus_inbox_init(bus_inbox_t *in, uv_loop_t *loop, bus_wake_cb cb)
{
	in->head = NULL;
	in->closed = 0;
	in->pushers = 0;
	in->cb = cb;
	in->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (in->efd < 0)
		return -errno;
	int rc = uv_poll_init(loop, &in->poll, in->efd);
	if (rc == 0) {
		in->poll.data = in;
		rc = uv_poll_start(&in->poll, UV_READABLE, on_poll);
	}
	if (rc != 0) {
		close(in->efd);
		in->efd = -1;
	}
	return rc;
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
	} while (!__atomic_compare_exchange_n(&in->head, &old, m, 1, __ATOMIC_SEQ_CST,
					      __ATOMIC_RELAXED));
	/* Only the push that finds the list empty wakes the owner: the owner
	 * empties the list with one exchange, so any later push sees NULL
	 * again and wakes it again. A burst costs one eventfd write. */
	if (old == NULL) {
		uint64_t one = 1;
		ssize_t r = write(in->efd, &one, sizeof one);
		(void)r; /* EAGAIN only when the counter is saturated: awake anyway */
	}
	__atomic_sub_fetch(&in->pushers, 1, __ATOMIC_SEQ_CST);
	return 0;
}

static void on_poll_closed(uv_handle_t *h)
{
	bus_inbox_t *in = h->data;
	close(in->efd);
	in->efd = -1;
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
	if (in->efd >= 0 && !uv_is_closing((uv_handle_t *)&in->poll))
		uv_close((uv_handle_t *)&in->poll, on_poll_closed);
}

int bus_inbox_owns(const bus_inbox_t *in, const uv_handle_t *h)
{
	return h == (const uv_handle_t *)&in->poll;
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
