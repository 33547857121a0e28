/*
 * Router: request dispatch, presence, link codes, retention sweeps, and the
 * bus plumbing. The handlers for each domain live in handlers.c.
 */
#include "router/router_int.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/assert.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"

uint64_t rt_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- link codes (hot state; a lost code just means linking again) -------- */

static const char b32[] = "abcdefghijkmnpqrstuvwxyz23456789";

void rt_link_code_make(char out[RT_LINK_CODE_LEN + 1])
{
	uint8_t rnd[RT_LINK_CODE_LEN];
	randombytes_buf(rnd, sizeof rnd);
	for (int i = 0; i < RT_LINK_CODE_LEN; i++)
		out[i] = b32[rnd[i] & 31];
	out[RT_LINK_CODE_LEN] = 0;
}

/* ---- bus output ------------------------------------------------------------ */

void rt_send_bytes(router_t *r, uint16_t gw, uint64_t conn_id, const uint8_t *p, size_t n,
		   int final, uint64_t t0_us)
{
	if (gw >= r->ngw)
		return;
	bus_msg_t *m = bus_msg_new(BUS_FRAME, p, n);
	if (!m)
		return;
	m->gw = gw;
	m->conn_id = conn_id;
	m->code = (uint16_t)(final ? 1 : 0);
	m->t0_us = t0_us;
	bus_push(r->gws[gw], m);
}

void rt_send_encoded(router_t *r, uint16_t gw, uint64_t conn_id, int enc_rc, int final)
{
	wire_buf_t *b = &r->out;
	if (enc_rc != 0 || b->err) {
		/* Encoding what the store returned cannot fail for valid data;
		 * if it does, nothing half-built leaves, and a final answer still
		 * releases the request's in-flight slot at the gateway. */
		LOGE("encode_failed", "err=\"%s\"", err_str(enc_rc ? enc_rc : b->err));
		wire_buf_reset(b);
		rt_send_bytes(r, gw, conn_id, NULL, 0, final, 0);
		return;
	}
	rt_send_bytes(r, gw, conn_id, b->p, b->len, final, 0);
	wire_buf_reset(b);
}

void rt_send_error(router_t *r, uint16_t gw, uint64_t conn_id, uint32_t req_id, uint16_t code,
		   uint32_t retry_ms, const char *detail)
{
	wire_buf_t *b = &r->out;
	wire_buf_reset(b);
	rt_send_encoded(r, gw, conn_id, wire_error_send(b, req_id, code, retry_ms, detail), 1);
}

void rt_send_authed(router_t *r, uint16_t gw, uint64_t conn_id, uint64_t account, uint32_t device)
{
	if (gw >= r->ngw)
		return;
	bus_msg_t *m = bus_msg_new(BUS_AUTHED, NULL, 0);
	if (!m)
		return;
	m->gw = gw;
	m->conn_id = conn_id;
	m->account = account;
	m->device = device;
	bus_push(r->gws[gw], m);
}

void rt_send_close(router_t *r, uint16_t gw, uint64_t conn_id, uint16_t code)
{
	if (gw >= r->ngw)
		return;
	bus_msg_t *m = bus_msg_new(BUS_CLOSE, NULL, 0);
	if (!m)
		return;
	m->gw = gw;
	m->conn_id = conn_id;
	m->code = code;
	bus_push(r->gws[gw], m);
}

/* ---- request contexts ------------------------------------------------------ */

rt_req_t *rt_req_new(router_t *r, bus_msg_t *m, uint32_t req_id, uint8_t type)
{
	rt_req_t *q = calloc(1, sizeof *q);
	if (!q)
		return NULL;
	q->r = r;
	q->m = m;
	q->gw = m->gw;
	q->conn_id = m->conn_id;
	q->account = m->account;
	q->device = m->device;
	q->req_id = req_id;
	q->type = type;
	r->pending++;
	return q;
}

void rt_req_done(rt_req_t *q)
{
	q->r->pending--;
	bus_msg_free(q->m);
	free(q->arr);
	free(q->arr2);
	free(q);
}

const char *rt_detail(int status)
{
	/* err_str() would say "Invalid argument" for a field that broke a
	 * value rule; ERROR details are for client developers. */
	return status == -EINVAL ? "invalid field value" : err_str(status);
}

/* Maps a store outcome to an ERROR frame and finishes the request. */
void rt_req_fail(rt_req_t *q, int status)
{
	uint16_t code = wire_err_from_code(status);
	uint32_t retry = 0;
	if (status == -FC_ESTORE || status == -FC_EUNAVAIL || status == -ENOMEM) {
		code = WIRE_ERR_UNAVAILABLE;
		retry = 1000;
		metrics_err(E_STORE);
		LOGW("store_failed", "type=%s err=\"%s\"", wire_type_name(q->type),
		     err_str(status));
	}
	rt_send_error(q->r, q->gw, q->conn_id, q->req_id, code, retry, rt_detail(status));
	rt_req_done(q);
}

/* ---- loop -------------------------------------------------------------------- */

/* Flushes until no callback has submitted follow-up work. Each chain of
 * dependent operations is short (at most three steps), so this ends. */
void rt_flush(router_t *r)
{
	int rounds = 0;
	do {
		cold_flush(r->cs);
		metrics_add(M_STORE_COMMITS, 1);
	} while (r->pending > 0 && ++rounds < 16);
}

static void on_inbox(bus_inbox_t *in)
{
	router_t *r = in->data;
	bus_msg_t *m = bus_drain(&r->inbox);
	while (m) {
		bus_msg_t *next = m->next;
		m->next = NULL;
		if (m->kind == BUS_REQUEST) {
			rt_dispatch(r, m); /* takes ownership */
		} else {
			if (m->kind == BUS_CONN_CLOSED && m->account) {
				hot_dev_t d = {m->account, m->device};
				if (hot_presence_drop(r->hs, d, m->gw, m->conn_id, NULL, NULL) != 0)
					LOGW("presence_drop_failed", "conn=%llu",
					     (unsigned long long)m->conn_id);
			}
			bus_msg_free(m);
		}
		m = next;
	}
	rt_flush(r);
}

static void on_expired(void *arg, int status, const cold_expire_res_t *res)
{
	router_t *r = arg;
	r->pending--;
	if (status != 0) {
		LOGW("sweep_failed", "err=\"%s\"", err_str(status));
		return;
	}
	if (res->removed) {
		metrics_add(M_MSG_EXPIRED, (int64_t)res->removed);
		LOGI("mailbox_expired", "removed=%llu", (unsigned long long)res->removed);
	}
	if (res->more)
		uv_timer_start(&r->sweep, r->sweep_cb, 10, r->cfg.sweep_interval_ms);
}

static void on_sweep(uv_timer_t *t)
{
	router_t *r = t->data;
	if (cold_expire(r->cs, rt_now_ms(), on_expired, r) == 0) {
		r->pending++;
		rt_flush(r);
	}
}

static void on_stop(uv_async_t *a)
{
	router_t *r = a->data;
	/* Take what is still queued, then refuse more. */
	on_inbox(&r->inbox);
	bus_inbox_close(&r->inbox);
	uv_close((uv_handle_t *)&r->stop, NULL);
	uv_timer_stop(&r->sweep);
	uv_close((uv_handle_t *)&r->sweep, NULL);
}

static void router_main(void *arg)
{
	router_t *r = arg;
	uv_run(&r->loop, UV_RUN_DEFAULT);
	cold_close(r->cs);
	r->cs = NULL;
	hot_close(r->hs);
	r->hs = NULL;
}

int router_create(router_t **out, const fc_config_t *cfg, coldstore_t *cs, hotstore_t *hs)
{
	router_t *r = calloc(1, sizeof *r);
	if (!r)
		return -ENOMEM;
	r->cfg = *cfg;
	r->cs = cs;
	r->hs = hs;
	if (verifier_init(&r->verifier, &r->cfg) != 0) {
		free(r);
		return -FC_ECONFIG;
	}
	if (strcmp(r->verifier.name, "open") == 0)
		LOGW("registration_open", "verifier=open anyone can register");
	else if (cfg->n_invites == 0)
		LOGW("registration_closed", "verifier=invite no invite_codes configured: every "
					    "REGISTER is refused");
	wire_buf_init(&r->out, WIRE_MAX_FRAME);
	int rc = uv_loop_init(&r->loop);
	if (rc == 0)
		rc = bus_inbox_init(&r->inbox, &r->loop, on_inbox);
	if (rc == 0)
		rc = uv_async_init(&r->loop, &r->stop, on_stop);
	if (rc == 0)
		rc = uv_timer_init(&r->loop, &r->sweep);
	if (rc != 0) {
		free(r);
		return rc;
	}
	r->inbox.data = r;
	r->stop.data = r;
	r->sweep.data = r;
	r->sweep_cb = on_sweep;
	*out = r;
	return 0;
}

bus_inbox_t *router_inbox(router_t *r)
{
	return &r->inbox;
}

void router_set_gateways(router_t *r, bus_inbox_t **gws, unsigned n)
{
	r->gws = calloc(n, sizeof *r->gws);
	ASSERT(r->gws);
	memcpy(r->gws, gws, n * sizeof *gws);
	r->ngw = n;
}

int router_start(router_t *r)
{
	uv_timer_start(&r->sweep, on_sweep, r->cfg.sweep_interval_ms, r->cfg.sweep_interval_ms);
	return uv_thread_create(&r->thread, router_main, r);
}

void router_stop(router_t *r)
{
	uv_async_send(&r->stop);
	uv_thread_join(&r->thread);
	uv_loop_close(&r->loop);
	wire_buf_free(&r->out);
	free(r->gws);
	free(r);
}
