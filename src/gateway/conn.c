/*
 * One client connection: reads (through TLS when enabled), the HTTP request
 * head and body, the WebSocket upgrade and frames, the output queue with its
 * hard cap, and closing. Every function runs on the connection's loop.
 *
 * Input handling keeps no buffer for an idle connection: bytes are parsed
 * straight out of the loop's read buffer, and only an unfinished unit (a
 * partial request head, a partial frame) is copied into the connection's
 * tail, which is freed as soon as it is consumed. Buffers grow with bytes
 * actually received, never with a length the peer merely declared.
 */
#include "gateway/gw_internal.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "proto/wire.h"

static void on_closed(uv_handle_t *h);

static const fc_config_t *cfg_of(gw_conn_t *c)
{
	return &c->lp->srv->cfg;
}

static void mark_dirty(gw_conn_t *c)
{
	if (c->flags & (CF_DIRTY | CF_CLOSING))
		return;
	c->flags |= CF_DIRTY;
	c->dirty_next = c->lp->dirty;
	c->lp->dirty = c;
}

static void unlink_dirty(gw_conn_t *c)
{
	if (!(c->flags & CF_DIRTY))
		return;
	gw_conn_t **pp = &c->lp->dirty;
	while (*pp && *pp != c)
		pp = &(*pp)->dirty_next;
	if (*pp)
		*pp = c->dirty_next;
	c->dirty_next = NULL;
	c->flags &= (uint16_t)~CF_DIRTY;
}

static void free_chunks(gw_chunk_t *ch)
{
	while (ch) {
		gw_chunk_t *n = ch->next;
		free(ch);
		ch = n;
	}
}

void gw_conn_close_now(gw_conn_t *c)
{
	if (c->flags & CF_CLOSING)
		return;
	c->flags |= CF_CLOSING;
	gw_deadline_clear(c);
	unlink_dirty(c);
	uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_closed(uv_handle_t *h)
{
	gw_conn_t *c = h->data;
	gw_loop_t *lp = c->lp;
	gw_deadline_clear(c); /* backstop: nothing in the wheel may point here */
	unlink_dirty(c);
	/* Not keyed on state: a WebSocket close handshake leaves the
	 * connection in ST_DRAIN, and its presence must go all the same. */
	if (c->flags & (CF_AUTHED | CF_AUTH_PENDING)) {
		/* The router drops presence for this connection. */
		bus_msg_t *m = bus_msg_new(BUS_CONN_CLOSED, NULL, 0);
		if (m) {
			m->gw = lp->idx;
			m->conn_id = c->id;
			m->account = c->account;
			m->device = c->device;
			bus_push(lp->srv->router, m);
		}
	}
	lp->preauth_bytes -= c->preauth_acct;
	c->preauth_acct = 0;
	if (c->flags & CF_TLS)
		tls_conn_free(&c->tls);
	free(c->tail);
	free(c->msg);
	free_chunks(c->out_head);
	gw_slot_release(lp, c);
	if (!(c->flags & CF_ADMIN))
		metrics_add(M_CONNECTIONS, -1);
	gw_conn_release(lp, c);
}

/* ---- output --------------------------------------------------------------- */

static void enqueue(gw_conn_t *c, gw_chunk_t *ch)
{
	if (c->flags & CF_CLOSING) {
		free(ch);
		return;
	}
	if ((uint64_t)c->out_bytes + ch->len > cfg_of(c)->max_outbound_bytes) {
		/* A slow reader is dropped rather than buffered without bound; its
		 * undelivered messages stay in its mailbox for the next sync. */
		free(ch);
		metrics_err(E_SLOW_READER);
		LOGW("slow_reader_dropped", "conn=%llu queued=%u", (unsigned long long)c->id,
		     c->out_bytes);
		gw_conn_close_now(c);
		return;
	}
	ch->next = NULL;
	if (c->out_tail)
		c->out_tail->next = ch;
	else
		c->out_head = ch;
	c->out_tail = ch;
	c->out_bytes += ch->len;
	metrics_add(M_BYTES_OUT, ch->len);
	mark_dirty(c);
}

static gw_chunk_t *chunk_new(size_t len)
{
	gw_chunk_t *ch = malloc(sizeof *ch + len);
	if (ch) {
		ch->next = NULL;
		ch->len = (uint32_t)len;
	}
	return ch;
}

static void on_written(uv_write_t *req, int status)
{
	gw_write_t *w = (gw_write_t *)req;
	gw_conn_t *c = w->conn;
	free_chunks(w->chunks);
	c->out_bytes -= w->bytes;
	c->flags &= (uint16_t)~CF_WRITING;
	free(w);
	if (c->flags & CF_CLOSING)
		return;
	if (status < 0) {
		LOGD("write_failed", "conn=%llu err=\"%s\"", (unsigned long long)c->id,
		     uv_strerror(status));
		gw_conn_close_now(c);
		return;
	}
	if (c->out_head || ((c->flags & CF_TLS) && tls_conn_pending_out(&c->tls))) {
		mark_dirty(c);
	} else if (c->flags & CF_CLOSE_AFTER_FLUSH) {
		gw_conn_close_now(c);
	} else if ((c->flags & CF_TLS) && tls_conn_handshake_done(&c->tls) && !c->tail_len) {
		/* Everything written and nothing half-read: give the BIO buffers
		 * back so an idle TLS connection holds no buffer. */
		tls_conn_trim(&c->tls);
	}
}

/* Moves TLS output into one ciphertext chunk at the front of the queue. */
static int tls_encrypt_queue(gw_conn_t *c)
{
	while (c->out_head) {
		gw_chunk_t *ch = c->out_head;
		if (tls_conn_write(&c->tls, ch->data, ch->len) != 0)
			return -1;
		/* Unlink before freeing, so a failure on a later chunk leaves
		 * a queue that on_closed() can free without a double free. */
		c->out_head = ch->next;
		if (!c->out_head)
			c->out_tail = NULL;
		c->out_bytes -= ch->len;
		free(ch);
	}
	size_t pend = tls_conn_pending_out(&c->tls);
	if (!pend)
		return 0;
	gw_chunk_t *ct = chunk_new(pend);
	if (!ct)
		return -1;
	ct->len = (uint32_t)tls_conn_take_out(&c->tls, ct->data, pend);
	c->out_head = c->out_tail = ct;
	c->out_bytes += ct->len;
	return 0;
}

void gw_conn_flush(gw_conn_t *c)
{
	if (c->flags & (CF_WRITING | CF_CLOSING))
		return;
	if ((c->flags & CF_TLS) && tls_encrypt_queue(c) != 0) {
		metrics_err(E_TLS_HANDSHAKE);
		gw_conn_close_now(c);
		return;
	}
	if (!c->out_head) {
		if (c->flags & CF_CLOSE_AFTER_FLUSH)
			gw_conn_close_now(c);
		return;
	}
	enum { MAXB = 64 };
	uv_buf_t bufs[MAXB];
	unsigned nb = 0;
	gw_write_t *w = malloc(sizeof *w);
	if (!w) {
		gw_conn_close_now(c);
		return;
	}
	w->conn = c;
	w->chunks = c->out_head;
	w->bytes = 0;
	gw_chunk_t *ch = c->out_head, *last = NULL;
	while (ch && nb < MAXB) {
		bufs[nb++] = uv_buf_init((char *)ch->data, ch->len);
		w->bytes += ch->len;
		last = ch;
		ch = ch->next;
	}
	last->next = NULL;
	c->out_head = ch;
	if (!ch)
		c->out_tail = NULL;
	c->flags |= CF_WRITING;
	int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, nb, on_written);
	if (rc != 0) {
		c->flags &= (uint16_t)~CF_WRITING;
		free_chunks(w->chunks);
		c->out_bytes -= w->bytes;
		free(w);
		gw_conn_close_now(c);
	}
}

static void send_ws(gw_conn_t *c, uint8_t opcode, const uint8_t *p, size_t len)
{
	gw_chunk_t *ch = chunk_new(10 + len);
	if (!ch) {
		gw_conn_close_now(c);
		return;
	}
	size_t h = ws_frame_header(ch->data, opcode, 1, len);
	if (len)
		memcpy(ch->data + h, p, len);
	ch->len = (uint32_t)(h + len);
	enqueue(c, ch);
}

void gw_conn_send_frame(gw_conn_t *c, const uint8_t *frame, size_t len)
{
	if (!len || c->state != ST_WS || (c->flags & CF_SENT_CLOSE))
		return;
	metrics_add(M_FRAMES_OUT, 1);
	send_ws(c, WS_OP_BINARY, frame, len);
}

void gw_conn_send_error(gw_conn_t *c, uint32_t req_id, uint16_t code, uint32_t retry_ms,
			const char *detail)
{
	wire_buf_t b;
	wire_buf_init(&b, 512);
	if (wire_error_send(&b, req_id, code, retry_ms, detail) == 0)
		gw_conn_send_frame(c, b.p, b.len);
	wire_buf_free(&b);
}

/* Sends a close frame and closes once it is written. The server never puts
 * 1005, 1006 or 1015 on the wire (ws_close_frame refuses them). */
void gw_conn_close_ws(gw_conn_t *c, uint16_t code, const char *reason)
{
	if (c->flags & (CF_SENT_CLOSE | CF_CLOSING))
		return;
	uint8_t fr[2 + 125];
	int n = ws_close_frame(fr, sizeof fr, code, slice_cstr(reason));
	if (n < 0)
		n = ws_close_frame(fr, sizeof fr, WS_CLOSE_INTERNAL, slice_cstr(""));
	c->state = ST_DRAIN;
	uv_read_stop((uv_stream_t *)&c->tcp);
	gw_chunk_t *ch = chunk_new((size_t)n);
	if (ch) {
		memcpy(ch->data, fr, (size_t)n);
		enqueue(c, ch);
	}
	c->flags |= CF_SENT_CLOSE | CF_CLOSE_AFTER_FLUSH;
	if (!(c->flags & CF_CLOSING))
		gw_deadline_set(c, DL_LINGER, gw_now_ms(c->lp) + GW_LINGER_MS);
}

void gw_conn_goaway(gw_conn_t *c)
{
	if (c->state == ST_WS) {
		wire_buf_t b;
		wire_buf_init(&b, 64);
		/* Spread reconnects over a few seconds so clients do not return in
		 * lockstep (they add their own jitter on top). */
		wire_goaway_t g = {.reconnect_after_ms = 1000 + randombytes_uniform(4000)};
		if (wire_goaway_encode(&b, 0, &g) == 0)
			gw_conn_send_frame(c, b.p, b.len);
		wire_buf_free(&b);
		gw_conn_close_ws(c, WS_CLOSE_GOING_AWAY, "server shutting down");
	} else if (!(c->flags & CF_CLOSE_AFTER_FLUSH)) {
		gw_conn_close_now(c);
	}
}

/* ---- HTTP ------------------------------------------------------------------ */

static void http_respond(gw_conn_t *c, int status, const char *reason, const char *extra,
			 const char *ctype, const char *body, size_t blen, int close)
{
	char head[512];
	int n = snprintf(head, sizeof head,
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
			 status, reason, ctype, blen, extra ? extra : "",
			 close ? "Connection: close\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof head)
		n = 0;
	gw_chunk_t *ch = chunk_new((size_t)n + blen);
	if (!ch) {
		gw_conn_close_now(c);
		return;
	}
	memcpy(ch->data, head, (size_t)n);
	if (blen)
		memcpy(ch->data + n, body, blen);
	enqueue(c, ch);
	if (close) {
		c->state = ST_DRAIN;
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->flags |= CF_CLOSE_AFTER_FLUSH;
		if (!(c->flags & CF_CLOSING))
			gw_deadline_set(c, DL_LINGER, gw_now_ms(c->lp) + GW_LINGER_MS);
	}
}

static void http_error(gw_conn_t *c, int status, const char *reason, const char *extra)
{
	char body[64];
	int n = snprintf(body, sizeof body, "%d %s\n", status, reason);
	http_respond(c, status, reason, extra, "text/plain", body, (size_t)n, 1);
	LOGI("http_rejected", "conn=%llu status=%d", (unsigned long long)c->id, status);
}

static void send_challenge(gw_conn_t *c)
{
	randombytes_buf(c->nonce, sizeof c->nonce);
	wire_challenge_t ch = {.min_version = WIRE_VERSION,
			       .max_version = WIRE_VERSION,
			       .nonce = c->nonce,
			       .server_time_ms = (uint64_t)time(NULL) * 1000};
	wire_buf_t b;
	wire_buf_init(&b, 128);
	if (wire_challenge_encode(&b, 0, &ch) == 0)
		gw_conn_send_frame(c, b.p, b.len);
	wire_buf_free(&b);
}

static int ws_upgrade(gw_conn_t *c, const http_req_t *req)
{
	if (req->content_length > 0 || req->chunked) {
		metrics_err(E_HTTP_BAD_REQUEST);
		http_error(c, 400, "Bad Request", NULL);
		return -1;
	}
	char accept[29];
	int st = ws_handshake_check(req, accept);
	if (st == 426) {
		metrics_err(E_HTTP_BAD_REQUEST);
		http_error(c, 426, "Upgrade Required", "Sec-WebSocket-Version: 13\r\n");
		return -1;
	}
	if (st != 0) {
		metrics_err(E_HTTP_BAD_REQUEST);
		http_error(c, 400, "Bad Request", NULL);
		return -1;
	}
	uint32_t retry_s = 1;
	if (c->lp->stopping || !gw_admit_upgrade(c->lp, &retry_s)) {
		char extra[64];
		snprintf(extra, sizeof extra, "Retry-After: %u\r\n", retry_s);
		metrics_add(M_UPGRADES_REJECTED, 1);
		http_error(c, 503, "Service Unavailable", extra);
		return -1;
	}
	char resp[256];
	int n = snprintf(resp, sizeof resp,
			 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			 accept);
	gw_chunk_t *ch = chunk_new((size_t)n);
	if (!ch)
		return -1;
	memcpy(ch->data, resp, (size_t)n);
	enqueue(c, ch);
	c->state = ST_WS;
	metrics_add(M_WS_UPGRADES, 1);
	LOGD("ws_upgraded", "conn=%llu", (unsigned long long)c->id);
	send_challenge(c);
	gw_deadline_set(c, DL_AUTH, gw_now_ms(c->lp) + cfg_of(c)->auth_timeout_ms);
	return 0;
}

static void finish_request(gw_conn_t *c)
{
	static const char pong[] = "pong";
	gw_server_t *s = c->lp->srv;
	int close = !c->keep_alive || c->lp->stopping;
	switch (c->route) {
	case R_PING:
		http_respond(c, 200, "OK", NULL, "text/plain", pong, sizeof pong - 1, close);
		break;
	case R_HEALTHZ:
		http_respond(c, 200, "OK", NULL, "text/plain", "ok", 2, close);
		break;
	case R_READYZ:
		if (__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE))
			http_respond(c, 200, "OK", NULL, "text/plain", "ready", 5, close);
		else
			http_respond(c, 503, "Service Unavailable", NULL, "text/plain", "not ready",
				     9, close);
		break;
	case R_METRICS: {
		size_t cap = 64 * 1024;
		char *buf = malloc(cap);
		if (!buf) {
			gw_conn_close_now(c);
			return;
		}
		size_t n = metrics_render(buf, cap);
		http_respond(c, 200, "OK", NULL, "text/plain; version=0.0.4", buf, n, close);
		free(buf);
		break;
	}
	default:
		http_respond(c, 404, "Not Found", NULL, "text/plain", "not found\n", 10, close);
		break;
	}
	c->route = R_NONE;
	if (!close) {
		c->state = ST_HTTP_HEAD;
		gw_deadline_set(c, DL_HEADER, gw_now_ms(c->lp) + cfg_of(c)->header_timeout_ms);
	}
}

static int route_of(gw_conn_t *c, const http_req_t *req)
{
	int get = slice_eq(req->method, SLICE_LIT("GET"));
	int post = slice_eq(req->method, SLICE_LIT("POST"));
	if (c->flags & CF_ADMIN) {
		if (get && slice_eq(req->path, SLICE_LIT("/healthz")))
			return R_HEALTHZ;
		if (get && slice_eq(req->path, SLICE_LIT("/readyz")))
			return R_READYZ;
		if (get && slice_eq(req->path, SLICE_LIT("/metrics")))
			return R_METRICS;
		return R_NOT_FOUND;
	}
	if ((get || post) && slice_eq(req->path, SLICE_LIT("/v1/ping")))
		return R_PING;
	return R_NOT_FOUND;
}

/* Returns bytes consumed, 0 for "need more", -1 when input must stop. */
static long on_http_head(gw_conn_t *c, uint8_t *p, size_t n)
{
	http_req_t req;
	const fc_config_t *cfg = cfg_of(c);
	int r = http_req_parse(p, n, &req);
	if (r == 0) {
		if (n >= cfg->max_header_bytes) {
			metrics_err(E_HTTP_TOO_LARGE);
			http_error(c, 431, "Request Header Fields Too Large", NULL);
			return -1;
		}
		return 0;
	}
	if (r == -FC_ETOOBIG || (r > 0 && (size_t)r > cfg->max_header_bytes)) {
		metrics_err(E_HTTP_TOO_LARGE);
		http_error(c, 431, "Request Header Fields Too Large", NULL);
		return -1;
	}
	if (r < 0) {
		metrics_err(E_HTTP_BAD_REQUEST);
		http_error(c, 400, "Bad Request", NULL);
		return -1;
	}
	c->keep_alive = (uint8_t)req.keep_alive;
	if (!(c->flags & CF_ADMIN) && slice_eq(req.path, SLICE_LIT("/v1/ws"))) {
		if (!slice_eq(req.method, SLICE_LIT("GET"))) {
			http_error(c, 405, "Method Not Allowed", "Allow: GET\r\n");
			return -1;
		}
		return ws_upgrade(c, &req) == 0 ? r : -1;
	}
	c->route = (uint8_t)route_of(c, &req);
	if (req.chunked) {
		memset(&c->chunked, 0, sizeof c->chunked);
		c->body_seen = 0;
		c->body_left = UINT64_MAX;
		c->state = ST_HTTP_BODY;
	} else if (req.content_length > 0) {
		if ((uint64_t)req.content_length > cfg->max_body_bytes) {
			metrics_err(E_HTTP_TOO_LARGE);
			http_error(c, 413, "Content Too Large", NULL);
			return -1;
		}
		c->body_left = (uint64_t)req.content_length;
		c->state = ST_HTTP_BODY;
	} else {
		finish_request(c);
	}
	return r;
}

static long on_http_body(gw_conn_t *c, uint8_t *p, size_t n)
{
	if (c->body_left != UINT64_MAX) {
		size_t take = n < c->body_left ? n : (size_t)c->body_left;
		c->body_left -= take;
		if (c->body_left == 0)
			finish_request(c);
		return (long)take;
	}
	size_t out_len = 0;
	int done = 0;
	int r = http_chunked_decode(&c->chunked, p, n, &out_len, &done);
	if (r < 0) {
		metrics_err(E_HTTP_BAD_REQUEST);
		http_error(c, 400, "Bad Request", NULL);
		return -1;
	}
	c->body_seen += out_len;
	if (c->body_seen > cfg_of(c)->max_body_bytes) {
		metrics_err(E_HTTP_TOO_LARGE);
		http_error(c, 413, "Content Too Large", NULL);
		return -1;
	}
	if (done)
		finish_request(c);
	return r;
}

/* ---- WebSocket ------------------------------------------------------------- */

static int is_preauth(uint8_t type)
{
	return type == WIRE_MSG_REGISTER || type == WIRE_MSG_AUTH || type == WIRE_MSG_LINK_DEVICE;
}

static void on_ws_message(gw_conn_t *c, slice_t payload)
{
	wire_hdr_t h;
	slice_t body;
	memset(&h, 0, sizeof h);
	metrics_add(M_FRAMES_IN, 1);
	int rc = wire_hdr_decode(payload, &h, &body);
	if (rc < 0) {
		uint16_t code = rc == -FC_EVERSION ? WIRE_ERR_UNSUPPORTED_VERSION :
				rc == -FC_ETYPE    ? WIRE_ERR_UNKNOWN_TYPE :
				rc == -FC_ETOOBIG  ? WIRE_ERR_TOO_LARGE :
						     WIRE_ERR_BAD_FRAME;
		metrics_err(E_PROTO_BAD_FRAME);
		LOGI("bad_frame", "conn=%llu len=%zu err=\"%s\"", (unsigned long long)c->id,
		     payload.len, err_str(rc));
		gw_conn_send_error(c, h.req_id, code, 0,
				   code == WIRE_ERR_UNSUPPORTED_VERSION ?
					   "unsupported protocol version" :
				   code == WIRE_ERR_UNKNOWN_TYPE ? "unknown message type" :
				   code == WIRE_ERR_TOO_LARGE    ? "frame too large" :
								   "malformed frame header");
		return;
	}
	if (!wire_type_is_request(h.type)) {
		metrics_err(E_PROTO_BAD_FRAME);
		gw_conn_send_error(c, h.req_id, WIRE_ERR_UNKNOWN_TYPE, 0, "not a request type");
		return;
	}
	if (!(c->flags & CF_AUTHED)) {
		if (!is_preauth(h.type)) {
			gw_conn_send_error(c, h.req_id, WIRE_ERR_NOT_AUTHENTICATED, 0,
					   "authenticate first");
			return;
		}
		if (c->flags & CF_AUTH_PENDING) {
			gw_conn_send_error(c, h.req_id, WIRE_ERR_RATE_LIMITED, 100,
					   "authentication in progress");
			return;
		}
	} else if (is_preauth(h.type)) {
		gw_conn_send_error(c, h.req_id, WIRE_ERR_ALREADY_AUTHENTICATED, 0,
				   "already authenticated");
		return;
	}
	if (c->inflight >= cfg_of(c)->max_inflight) {
		metrics_err(E_RATE_LIMITED);
		/* A silent ACK asks for no answer, and acks are cumulative: the
		 * next one covers it, so under pressure it is simply dropped. */
		if (!(h.type == WIRE_MSG_ACK && h.req_id == 0))
			gw_conn_send_error(c, h.req_id, WIRE_ERR_RATE_LIMITED, 100,
					   "too many requests");
		return;
	}
	bus_msg_t *m = bus_msg_new(BUS_REQUEST, payload.ptr, payload.len);
	if (!m) {
		gw_conn_send_error(c, h.req_id, WIRE_ERR_UNAVAILABLE, 1000, "out of memory");
		return;
	}
	m->gw = c->lp->idx;
	m->conn_id = c->id;
	m->account = c->account;
	m->device = c->device;
	memcpy(m->nonce, c->nonce, sizeof m->nonce);
	if (!(c->flags & CF_AUTHED))
		c->flags |= CF_AUTH_PENDING;
	c->inflight++;
	if (bus_push(c->lp->srv->router, m) != 0) {
		c->inflight--;
		gw_conn_send_error(c, h.req_id, WIRE_ERR_UNAVAILABLE, 1000, "shutting down");
	}
}

static long on_ws_bytes(gw_conn_t *c, uint8_t *p, size_t n)
{
	ws_event_t ev;
	uint16_t fail = 0;
	int r = ws_rx_frame(&c->rx, &c->lp->srv->ws_lim, p, n, &ev, &fail);
	if (r == 0)
		return 0;
	if (r < 0) {
		metrics_err(fail == WS_CLOSE_TOO_BIG  ? E_WS_TOO_BIG :
			    fail == WS_CLOSE_BAD_DATA ? E_WS_UTF8 :
							E_WS_PROTOCOL);
		LOGI("ws_failed", "conn=%llu close=%u", (unsigned long long)c->id, fail);
		gw_conn_close_ws(c, fail, "");
		return -1;
	}
	switch (ev.kind) {
	case WS_EV_DATA:
		if (ev.opcode == WS_OP_TEXT) {
			/* The protocol is binary; a complete (valid) text message is
			 * refused with 1003. Fragments are validated, not kept. */
			if (ev.fin) {
				metrics_err(E_WS_UNSUPPORTED);
				gw_conn_close_ws(c, WS_CLOSE_UNSUPPORTED, "binary frames only");
				return -1;
			}
			break;
		}
		if (ev.fin && !c->msg) {
			on_ws_message(c, ev.payload);
			break;
		}
		if (ev.payload.len) {
			uint8_t *nm = realloc(c->msg, c->msg_len + ev.payload.len);
			if (!nm) {
				gw_conn_close_ws(c, WS_CLOSE_INTERNAL, "");
				return -1;
			}
			memcpy(nm + c->msg_len, ev.payload.ptr, ev.payload.len);
			c->msg = nm;
			c->msg_len += (uint32_t)ev.payload.len;
		}
		if (ev.fin) {
			on_ws_message(c, slice_make(c->msg, c->msg_len));
			free(c->msg);
			c->msg = NULL;
			c->msg_len = 0;
		}
		break;
	case WS_EV_PING: {
		uint8_t fr[2 + WS_MAX_CONTROL_PAYLOAD];
		int fl = ws_control_frame(fr, sizeof fr, WS_OP_PONG, ev.payload);
		if (fl > 0) {
			gw_chunk_t *ch = chunk_new((size_t)fl);
			if (ch) {
				memcpy(ch->data, fr, (size_t)fl);
				enqueue(c, ch);
			}
		}
		break;
	}
	case WS_EV_PONG:
		c->flags &= (uint16_t)~CF_PING_SENT;
		break;
	case WS_EV_CLOSE:
		/* Echo the peer's code; an empty close is answered with an empty
		 * close (1005 is never sent). */
		gw_conn_close_ws(c, ev.close_code == WS_CLOSE_NO_STATUS ? 0 : ev.close_code, "");
		return -1;
	default:
		break;
	}
	return r;
}

/* ---- input ------------------------------------------------------------------ */

static size_t tail_cap_for(gw_conn_t *c)
{
	const fc_config_t *cfg = cfg_of(c);
	switch (c->state) {
	case ST_HTTP_HEAD:
		return cfg->max_header_bytes;
	case ST_WS:
		return (size_t)cfg->max_message + 14;
	default:
		return 65536;
	}
}

static void conn_input(gw_conn_t *c, const uint8_t *data, size_t len)
{
	uint8_t *buf;
	size_t blen;
	if (c->tail_len) {
		size_t need = (size_t)c->tail_len + len;
		if (need > c->tail_cap) {
			size_t ncap = c->tail_cap * 2 > need ? c->tail_cap * 2 : need;
			uint8_t *nt = realloc(c->tail, ncap);
			if (!nt) {
				gw_conn_close_now(c);
				return;
			}
			c->tail = nt;
			c->tail_cap = (uint32_t)ncap;
		}
		memcpy(c->tail + c->tail_len, data, len);
		c->tail_len = (uint32_t)need;
		buf = c->tail;
		blen = need;
	} else {
		buf = (uint8_t *)data;
		blen = len;
	}
	size_t off = 0;
	int stop = 0;
	while (off < blen && !stop) {
		long r;
		switch (c->state) {
		case ST_HTTP_HEAD:
			r = on_http_head(c, buf + off, blen - off);
			break;
		case ST_HTTP_BODY:
			r = on_http_body(c, buf + off, blen - off);
			break;
		case ST_WS:
			r = on_ws_bytes(c, buf + off, blen - off);
			break;
		default:
			r = -1;
			break;
		}
		if (r < 0 || c->state == ST_DRAIN || (c->flags & CF_CLOSING))
			stop = 1;
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	size_t rest = blen - off;
	if (stop || rest == 0) {
		free(c->tail);
		c->tail = NULL;
		c->tail_len = c->tail_cap = 0;
		return;
	}
	if (rest > tail_cap_for(c)) {
		/* Cannot happen for well-formed limits: the parsers fail first. */
		gw_conn_close_now(c);
		return;
	}
	if (buf == c->tail) {
		memmove(c->tail, c->tail + off, rest);
		c->tail_len = (uint32_t)rest;
		return;
	}
	size_t cap = rest < 512 ? 512 : rest;
	c->tail = malloc(cap);
	if (!c->tail) {
		gw_conn_close_now(c);
		return;
	}
	memcpy(c->tail, buf + off, rest);
	c->tail_len = (uint32_t)rest;
	c->tail_cap = (uint32_t)cap;
}

/* Unauthenticated connections may each buffer up to a whole message (1 MiB
 * by default) before proving anything; the loop bounds what they hold
 * together, so a crowd of them cannot pin memory without limit. */
int gw_conn_preauth_account(gw_conn_t *c)
{
	gw_loop_t *lp = c->lp;
	uint32_t now = (c->flags & CF_AUTHED) ? 0 : c->tail_cap + c->msg_len;
	lp->preauth_bytes = lp->preauth_bytes - c->preauth_acct + now;
	c->preauth_acct = now;
	return now && lp->preauth_bytes > cfg_of(c)->max_preauth_bytes;
}

static void check_preauth(gw_conn_t *c)
{
	if ((c->flags & CF_CLOSING) || !gw_conn_preauth_account(c))
		return;
	metrics_err(E_PREAUTH_BUDGET);
	LOGW("preauth_budget_exceeded", "conn=%llu held=%u", (unsigned long long)c->id,
	     c->preauth_acct);
	free(c->tail);
	c->tail = NULL;
	c->tail_len = c->tail_cap = 0;
	free(c->msg);
	c->msg = NULL;
	c->msg_len = 0;
	gw_conn_preauth_account(c);
	if (c->state == ST_WS)
		gw_conn_close_ws(c, WS_CLOSE_TRY_AGAIN, "server busy");
	else
		gw_conn_close_now(c);
}

static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf)
{
	gw_conn_t *c = h->data;
	(void)sz;
	*buf = uv_buf_init((char *)c->lp->rbuf, sizeof c->lp->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	gw_conn_t *c = s->data;
	if (n == 0)
		return;
	if (n < 0) {
		gw_conn_close_now(c);
		return;
	}
	metrics_add(M_BYTES_IN, n);
	c->last_rx_ms = gw_now_ms(c->lp);
	if (!(c->flags & CF_TLS)) {
		conn_input(c, (const uint8_t *)buf->base, (size_t)n);
		check_preauth(c);
		return;
	}
	if (tls_conn_feed(&c->tls, (const uint8_t *)buf->base, (size_t)n) != 0) {
		gw_conn_close_now(c);
		return;
	}
	for (;;) {
		int r = tls_conn_read(&c->tls, c->lp->pbuf, sizeof c->lp->pbuf);
		if (r > 0) {
			conn_input(c, c->lp->pbuf, (size_t)r);
			if (c->flags & CF_CLOSING)
				return;
			if (c->state == ST_DRAIN)
				break;
			continue;
		}
		if (r == -1) {
			metrics_err(E_TLS_HANDSHAKE);
			LOGI("tls_failed", "conn=%llu", (unsigned long long)c->id);
			gw_conn_close_now(c);
			return;
		}
		if (r == -2) {
			gw_conn_close_now(c);
			return;
		}
		break;
	}
	check_preauth(c);
	if (!(c->flags & CF_CLOSING) && tls_conn_pending_out(&c->tls))
		mark_dirty(c);
}

void gw_conn_on_deadline(gw_conn_t *c, int kind, uint64_t now)
{
	const fc_config_t *cfg = cfg_of(c);
	switch (kind) {
	case DL_HEADER:
		/* Accept-to-headers deadline: trickling bytes does not extend it. */
		metrics_err(E_HTTP_TIMEOUT);
		http_error(c, 408, "Request Timeout", NULL);
		break;
	case DL_AUTH:
		metrics_err(E_AUTH_TIMEOUT);
		LOGI("auth_timeout", "conn=%llu", (unsigned long long)c->id);
		gw_conn_close_ws(c, WS_CLOSE_POLICY, "authentication timeout");
		break;
	case DL_PING:
		if (c->flags & CF_SENT_CLOSE) {
			gw_conn_close_now(c);
			break;
		}
		if (now - c->last_rx_ms >= 2ull * cfg->ping_interval_ms) {
			metrics_err(E_PING_TIMEOUT);
			LOGI("ping_timeout", "conn=%llu", (unsigned long long)c->id);
			gw_conn_close_ws(c, WS_CLOSE_GOING_AWAY, "idle timeout");
			break;
		}
		if (now - c->last_rx_ms >= cfg->ping_interval_ms) {
			uint8_t fr[2];
			if (ws_control_frame(fr, sizeof fr, WS_OP_PING, slice_make(NULL, 0)) == 2) {
				gw_chunk_t *ch = chunk_new(2);
				if (ch) {
					memcpy(ch->data, fr, 2);
					enqueue(c, ch);
				}
			}
			c->flags |= CF_PING_SENT;
			gw_deadline_set(c, DL_PING, now + cfg->ping_interval_ms);
		} else {
			gw_deadline_set(c, DL_PING, c->last_rx_ms + cfg->ping_interval_ms);
		}
		break;
	case DL_LINGER:
		gw_conn_close_now(c);
		break;
	default:
		break;
	}
}

static void free_unaccepted(uv_handle_t *h)
{
	gw_conn_t *c = h->data;
	gw_conn_release(c->lp, c);
}

void gw_on_connection(uv_stream_t *server, int status)
{
	gw_loop_t *lp = server->data;
	if (status < 0) {
		LOGW("accept_failed", "loop=%u err=\"%s\"", lp->idx, uv_strerror(status));
		return;
	}
	gw_conn_t *c = gw_conn_alloc(lp);
	if (!c)
		return;
	c->lp = lp;
	if (uv_tcp_init(&lp->loop, &c->tcp) != 0) {
		gw_conn_release(lp, c);
		return;
	}
	c->tcp.data = c;
	if (server == (uv_stream_t *)&lp->l_tls)
		c->flags |= CF_TLS;
	if (server == (uv_stream_t *)&lp->l_admin)
		c->flags |= CF_ADMIN;
	int over = !(c->flags & CF_ADMIN) &&
		   metrics_get(M_CONNECTIONS) >= lp->srv->cfg.max_connections;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || gw_slot_take(lp, c) != 0) {
		uv_close((uv_handle_t *)&c->tcp, free_unaccepted);
		return;
	}
	if (!(c->flags & CF_ADMIN)) {
		metrics_add(M_CONNECTIONS, 1);
		metrics_add(M_CONNECTIONS_TOTAL, 1);
	}
	if (over || lp->stopping) {
		gw_conn_close_now(c);
		return;
	}
	if ((c->flags & CF_TLS) && tls_conn_init(&c->tls, lp->srv->tls_ctx) != 0) {
		c->flags &= (uint16_t)~CF_TLS;
		gw_conn_close_now(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	c->accept_ms = c->last_rx_ms = gw_now_ms(lp);
	if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
		gw_conn_close_now(c);
		return;
	}
	gw_deadline_set(c, DL_HEADER, c->accept_ms + lp->srv->cfg.header_timeout_ms);
}
