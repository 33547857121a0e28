/*
 * bus: the embedded profile's in-process event bus between gateway loops and
 * the router.
 *
 * The gateway never touches storage and the router never touches sockets;
 * everything between them is a bus_msg_t. In the cell profile the same
 * messages travel over NATS; here each endpoint (the router, each gateway
 * loop) owns one inbox: a lock-free multi-producer, single-consumer list plus
 * a uv_async_t wake-up. Producers on any thread push; the owning loop drains
 * the whole inbox at once, oldest first.
 *
 * A message is one malloc'd block with its payload inline. Ownership moves
 * with the message: whoever pops it frees it with bus_msg_free().
 */
#ifndef FC_BUS_BUS_H
#define FC_BUS_BUS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/slice.h"

enum bus_kind {
	/* gateway -> router */
	BUS_REQUEST = 1, /* a client protocol frame */
	BUS_CONN_CLOSED, /* the connection is gone */
	/* router -> gateway */
	BUS_FRAME,  /* a protocol frame to send to the connection */
	BUS_AUTHED, /* the connection is now authenticated as (account, device) */
	BUS_CLOSE,  /* close the connection with `code` */
};

typedef struct bus_msg {
	struct bus_msg *next;
	uint16_t kind;
	uint16_t gw;      /* gateway loop index of the connection */
	uint16_t code;    /* BUS_CLOSE: WebSocket close code */
	uint64_t conn_id; /* connection id, unique within its gateway loop */
	uint64_t account; /* connection identity (0 before authentication) */
	uint32_t device;
	uint64_t t0_us;    /* BUS_FRAME of a DELIVER: acceptance time, for latency */
	uint8_t nonce[32]; /* BUS_REQUEST: the connection's challenge */
	size_t len;
	uint8_t data[];
} bus_msg_t;

typedef struct bus_inbox bus_inbox_t;
typedef void (*bus_wake_cb)(bus_inbox_t *in);

/*
 * The wake-up is our own eventfd under a uv_poll_t, not a uv_async_t: libuv's
 * async handle makes the receiving loop spin (and sched_yield) whenever it
 * wakes while the sender is still between its two atomic steps, which on a
 * loaded core costs a context switch per message. Here a producer writes the
 * eventfd only when it pushes onto an empty list, the consumer swaps the
 * whole list out, and nobody ever waits for anybody.
 */
struct bus_inbox {
	bus_msg_t *head; /* pushed newest first; atomically swapped out */
	int closed;      /* set by bus_inbox_close(); later pushes are dropped */
	int pushers;     /* producers inside bus_push() right now */
	int efd;         /* eventfd, -1 when closed */
	uv_poll_t poll;
	bus_wake_cb cb;
	void *data; /* for the owner */
};

/* Allocates a message with room for len payload bytes (copied from data when
 * data is non-NULL). Returns NULL on allocation failure. */
bus_msg_t *bus_msg_new(uint16_t kind, const void *data, size_t len);
void bus_msg_free(bus_msg_t *m);

/* Initialises the inbox on loop; cb (may be NULL) runs on that loop when
 * messages arrive and is expected to call bus_drain(). */
int bus_inbox_init(bus_inbox_t *in, uv_loop_t *loop, bus_wake_cb cb);

/* Pushes from any thread and wakes the owner. Never blocks. Returns 0, or
 * -EPIPE when the inbox is closed (the message is then freed). */
int bus_push(bus_inbox_t *in, bus_msg_t *m);

/* Owner loop only: refuses further pushes, waits for producers already inside
 * bus_push() to leave (a few instructions), frees queued messages and closes
 * the poll handle and the eventfd. Safe against concurrent bus_push(). */
void bus_inbox_close(bus_inbox_t *in);

/* 1 if h is the inbox's internal handle (for walkers closing handles). */
int bus_inbox_owns(const bus_inbox_t *in, const uv_handle_t *h);

/* Takes every queued message, oldest first, as a NULL-terminated list.
 * Owner loop only. */
bus_msg_t *bus_drain(bus_inbox_t *in);

#endif
