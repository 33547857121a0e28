/*
 * Internal types of the router (router.c: loop, presence, bus; handlers.c:
 * one handler per request type). Router thread only.
 */
#ifndef FC_ROUTER_ROUTER_INT_H
#define FC_ROUTER_ROUTER_INT_H

#include <uv.h>

#include "proto/wire.h"
#include "router/router.h"
#include "router/verifier.h"
#include "store/hotstore.h"

#define RT_LINK_CODE_LEN 10

struct router {
	fc_config_t cfg;
	coldstore_t *cs;
	hotstore_t *hs;
	reg_verifier_t verifier;
	uv_loop_t loop;
	uv_thread_t thread;
	bus_inbox_t inbox;
	uv_async_t stop;
	uv_timer_t sweep;
	void (*sweep_cb)(uv_timer_t *);
	bus_inbox_t **gws;
	unsigned ngw;
	int pending;    /* store operations awaiting their callback */
	wire_buf_t out; /* scratch encoder, reset after each frame */
};

/* One request in flight through the store. Owns the bus message whose bytes
 * the decoded fields view. */
typedef struct rt_req {
	router_t *r;
	bus_msg_t *m;
	uint16_t gw;
	uint64_t conn_id;
	uint64_t account; /* connection identity (0 before authentication) */
	uint32_t device;
	uint32_t req_id;
	uint8_t type;
	wire_msg_t msg; /* decoded request, views m->data */
	void *arr;      /* scratch arrays owned by the request (prekeys, entries) */
	void *arr2;
	uint64_t t0_us;
	uint64_t aux, aux2, aux3; /* per-handler scratch values */
	uint32_t aux_dev;
} rt_req_t;

uint64_t rt_now_ms(void);

/* Writes a fresh random link code (RT_LINK_CODE_LEN characters + NUL). */
void rt_link_code_make(char out[RT_LINK_CODE_LEN + 1]);

void rt_send_bytes(router_t *r, uint16_t gw, uint64_t conn_id, const uint8_t *p, size_t n,
		   int final, uint64_t t0_us);
/* Sends the frame just encoded into r->out (enc_rc is the encoder's result)
 * and resets r->out; a failed encoding sends nothing but the final marker. */
void rt_send_encoded(router_t *r, uint16_t gw, uint64_t conn_id, int enc_rc, int final);
void rt_send_error(router_t *r, uint16_t gw, uint64_t conn_id, uint32_t req_id, uint16_t code,
		   uint32_t retry_ms, const char *detail);
void rt_send_authed(router_t *r, uint16_t gw, uint64_t conn_id, uint64_t account, uint32_t device);
void rt_send_close(router_t *r, uint16_t gw, uint64_t conn_id, uint16_t code);

rt_req_t *rt_req_new(router_t *r, bus_msg_t *m, uint32_t req_id, uint8_t type);
void rt_req_done(rt_req_t *q);
void rt_req_fail(rt_req_t *q, int status);
/* The ERROR detail text for a project error code. */
const char *rt_detail(int status);
void rt_flush(router_t *r);

/* handlers.c: decodes and handles one request; takes ownership of m. */
void rt_dispatch(router_t *r, bus_msg_t *m);

#endif
