/*
 * Round trip and sustainable rate. One epoll loop drives every connection:
 * senders A_i and receivers B_i (pair i). Every message carries its index
 * and its phase number in the first 12 bytes of its ciphertext (fourcd) or
 * record (baseline), so a receiver maps what it reads back to the time the
 * message was written or scheduled, and a straggler from an earlier phase is
 * counted as such instead of being mistaken for a current message.
 *
 * Output goes through a per-connection queue that is flushed right after the
 * messages that are due were queued; input is read into a per-connection
 * buffer and parsed in place. Both buffers have hard caps; exceeding one
 * breaks the run with a message rather than growing without bound.
 */
#define _GNU_SOURCE
#include "rtt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "proc.h"
#include "proto/wire.h"
#include "servers.h"
#include "stats.h"
#include "wsc.h"

#define R_IN_CAP (4u << 20)
#define R_OUT_CAP (64u << 20)
#define R_ACK_EVERY 64
#define R_SETTLE_MS 5000 /* closed loop: give up on one message */
#define R_DRAIN_MS 2000  /* open loop: wait after the last send */
#define R_SETUP_MS 20000
#define R_P99_MAX_US 50000.0
#define R_ACHIEVED_MIN 0.95
#define R_PHASE_HELLO 0xFFFFFFFFu

enum { K_FOURC, K_RAW };
enum { ST_DELIVERED = 1, ST_ACCEPTED = 2, ST_FAILED = 4 };

typedef struct rconn {
	int fd;
	int pair;
	int sender;
	uint32_t ev;
	int open; /* fourc: the 101 was read */
	uint8_t *in;
	size_t in_len, in_cap;
	uint8_t *out;
	size_t out_len, out_off, out_cap;
	char accept[WSC_ACCEPT_LEN + 1];
	int have_nonce;
	uint8_t nonce[WIRE_KEY_LEN];
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	uint64_t account;
	uint32_t device;
	int registered;
	uint64_t last_seq;
	unsigned unacked;
	int paired; /* raw receiver: its sender's hello arrived */
} rconn_t;

typedef struct phase {
	uint32_t id;
	uint32_t n;
	uint32_t record_from; /* latencies of messages below this are not kept */
	uint64_t *t_ref;
	uint8_t *st;
	uint32_t delivered, accepted, failed, rate_limited, stale, stray;
	uint64_t t_last_recv;
	stats_t lat;
} phase_t;

typedef struct rtt {
	int kind;
	int ep;
	int port;
	int npairs;
	rconn_t *c; /* [2i] sender of pair i, [2i + 1] its receiver */
	size_t ct_len;
	size_t rec_len; /* fourc: SEND frame on the wire; raw: record size */
	phase_t ph;
	uint32_t cap_msgs;
	wire_buf_t wb;
	uint8_t *ct;
	uint8_t *frame;
	int spin; /* busy-poll: measuring, the client's wake-ups must not count */
	int broken;
	char why[240];
} rtt_t;

typedef struct stepfig {
	long offered, sent, delivered, failed, rate_limited;
	double achieved, cpu_pct;
	stats_sum_t s;
	int ok;
} stepfig_t;

typedef struct rfig {
	stats_sum_t closed;
	long closed_sent, closed_lost;
	double closed_rate;
	stepfig_t steps[RTT_MAX_STEPS];
	int nsteps;
	long max_rate;
	int top_sustained; /* the highest offered step held: max_rate is a lower bound */
	int exit_code;
} rfig_t;

__attribute__((format(printf, 2, 3))) static void r_break(rtt_t *x, const char *fmt, ...)
{
	if (x->broken)
		return;
	x->broken = 1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->why, sizeof x->why, fmt, ap);
	va_end(ap);
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* ---- connection I/O -------------------------------------------------------- */

static void r_interest(rtt_t *x, rconn_t *c, uint32_t ev)
{
	if (c->ev == ev)
		return;
	struct epoll_event e = {.events = ev, .data.u64 = (uint64_t)(c - x->c)};
	epoll_ctl(x->ep, c->ev ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e);
	c->ev = ev;
}

static int grow(uint8_t **p, size_t *cap, size_t need, size_t max)
{
	if (need <= *cap)
		return 0;
	if (need > max)
		return -1;
	size_t ncap = *cap ? *cap : 4096;
	while (ncap < need)
		ncap *= 2;
	if (ncap > max)
		ncap = max;
	uint8_t *n = realloc(*p, ncap);
	if (!n)
		return -1;
	*p = n;
	*cap = ncap;
	return 0;
}

static void r_queue(rtt_t *x, rconn_t *c, const uint8_t *p, size_t n)
{
	if (c->out_off && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (grow(&c->out, &c->out_cap, c->out_len + n, R_OUT_CAP) != 0) {
		r_break(x, "client output queue over %u bytes (server not reading)", R_OUT_CAP);
		return;
	}
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
}

static void r_flush(rtt_t *x, rconn_t *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
		if (w > 0) {
			c->out_off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			r_interest(x, c, EPOLLIN | EPOLLOUT);
			return;
		}
		r_break(x, "write to the server failed: %s", strerror(errno));
		return;
	}
	c->out_off = c->out_len = 0;
	r_interest(x, c, EPOLLIN);
}

static void r_ws_send(rtt_t *x, rconn_t *c, uint8_t opcode, const uint8_t *p, size_t n)
{
	size_t fl = wsc_frame_write(x->frame, opcode, p, n);
	r_queue(x, c, x->frame, fl);
}

/* ---- messages ----------------------------------------------------------------- */

static void fill_payload(uint8_t *p, size_t len, uint32_t idx, uint32_t phase)
{
	memset(p, 0xA5, len);
	put_be64(p, idx);
	put_be32(p + 8, phase);
}

/* Queues message idx of the current phase on pair `pair` (not flushed). */
static void r_send_msg(rtt_t *x, int pair, uint32_t idx)
{
	rconn_t *a = &x->c[2 * pair], *b = &x->c[2 * pair + 1];
	if (x->kind == K_RAW) {
		fill_payload(x->ct, x->rec_len, idx, x->ph.id);
		r_queue(x, a, x->ct, x->rec_len);
		return;
	}
	fill_payload(x->ct, x->ct_len, idx, x->ph.id);
	wire_envelope_t env = {.account = b->account,
			       .device = b->device,
			       .ciphertext = slice_make(x->ct, x->ct_len)};
	wire_send_t m = {.client_msg_id = ((uint64_t)x->ph.id << 32) | (idx + 1u),
			 .recipient = b->account,
			 .envelopes_out = &env,
			 .n_envelopes_out = 1};
	wire_buf_reset(&x->wb);
	uint32_t req_id = ((x->ph.id & 0xFFu) << 24) | ((idx + 1u) & 0xFFFFFFu);
	if (wire_send_encode(&x->wb, req_id, &m) != 0) {
		r_break(x, "cannot encode SEND");
		return;
	}
	r_ws_send(x, a, WSC_OP_BINARY, x->wb.p, x->wb.len);
}

static void on_payload(rtt_t *x, rconn_t *c, const uint8_t *p, size_t len, uint64_t now)
{
	if (len < 12) {
		x->ph.stray++;
		return;
	}
	uint64_t idx = get_be64(p);
	uint32_t phase = get_be32(p + 8);
	if (phase == R_PHASE_HELLO) {
		if (idx == (uint64_t)c->pair)
			c->paired = 1;
		else
			r_break(x, "relay paired connection %d with sender %llu", c->pair,
				(unsigned long long)idx);
		return;
	}
	phase_t *ph = &x->ph;
	if (phase != ph->id || idx >= ph->n || (ph->st[idx] & ST_DELIVERED)) {
		ph->stray++;
		return;
	}
	ph->st[idx] |= ST_DELIVERED;
	ph->delivered++;
	ph->t_last_recv = now;
	if (idx >= ph->record_from)
		stats_add(&ph->lat, now > ph->t_ref[idx] ? now - ph->t_ref[idx] : 0);
}

/* The message a request id or client message id names, or NULL if it is
 * from another phase. */
static uint8_t *msg_state(rtt_t *x, uint32_t phase, uint64_t idx1)
{
	if (phase != x->ph.id || idx1 == 0 || idx1 > x->ph.n)
		return NULL;
	return &x->ph.st[idx1 - 1];
}

static void fail_msg(rtt_t *x, uint8_t *st)
{
	if (!st || (*st & (ST_FAILED | ST_DELIVERED)))
		return;
	*st |= ST_FAILED;
	x->ph.failed++;
}

static void on_fourc_frame(rtt_t *x, rconn_t *c, const uint8_t *p, size_t len, uint64_t now)
{
	wire_msg_t m;
	if (wire_msg_decode(slice_make(p, len), &m) != 0) {
		r_break(x, "undecodable frame from the server");
		return;
	}
	switch (m.hdr.type) {
	case WIRE_MSG_CHALLENGE:
		memcpy(c->nonce, m.u.challenge.nonce, WIRE_KEY_LEN);
		c->have_nonce = 1;
		break;
	case WIRE_MSG_REGISTERED:
		c->account = m.u.registered.account;
		c->device = m.u.registered.device;
		c->registered = 1;
		break;
	case WIRE_MSG_DELIVER: {
		const wire_deliver_t *d = &m.u.deliver;
		on_payload(x, c, d->ciphertext.ptr, d->ciphertext.len, now);
		c->last_seq = d->seq;
		if (++c->unacked >= R_ACK_EVERY) {
			/* Silent cumulative ACK (request id 0: no answer), as a
			 * real client keeps its mailbox short. */
			wire_ack_t a = {.upto_seq = d->seq};
			wire_buf_reset(&x->wb);
			if (wire_ack_encode(&x->wb, 0, &a) == 0)
				r_ws_send(x, c, WSC_OP_BINARY, x->wb.p, x->wb.len);
			c->unacked = 0;
		}
		break;
	}
	case WIRE_MSG_ACCEPTED: {
		uint64_t id = m.u.accepted.client_msg_id;
		uint8_t *st = msg_state(x, (uint32_t)(id >> 32), id & 0xFFFFFFFFu);
		if (st && !(*st & ST_ACCEPTED)) {
			*st |= ST_ACCEPTED;
			x->ph.accepted++;
		}
		break;
	}
	case WIRE_MSG_STALE_DEVICES: {
		uint64_t id = m.u.stale.client_msg_id;
		x->ph.stale++;
		fail_msg(x, msg_state(x, (uint32_t)(id >> 32), id & 0xFFFFFFFFu));
		break;
	}
	case WIRE_MSG_ERROR: {
		/* Request ids carry the low 8 bits of the phase number. */
		uint32_t rid = m.hdr.req_id;
		uint32_t phase = (x->ph.id & ~0xFFu) | (rid >> 24);
		uint8_t *st = msg_state(x, phase, rid & 0xFFFFFFu);
		if (m.u.error.code == WIRE_ERR_RATE_LIMITED)
			x->ph.rate_limited++;
		if (st) {
			fail_msg(x, st);
		} else if (!c->registered) {
			r_break(x, "server answered %s: %.*s", wire_err_name(m.u.error.code),
				(int)m.u.error.detail.len, (const char *)m.u.error.detail.ptr);
		}
		break;
	}
	default:
		break;
	}
}

static void parse_fourc(rtt_t *x, rconn_t *c, uint64_t now)
{
	size_t off = 0;
	if (!c->open) {
		long hl = wsc_response(c->in, c->in_len, c->accept);
		if (hl < 0) {
			r_break(x, "WebSocket upgrade refused");
			return;
		}
		if (hl == 0)
			return;
		c->open = 1;
		off = (size_t)hl;
	}
	while (off < c->in_len && !x->broken) {
		wsc_frame_t f;
		long fl = wsc_frame_parse(c->in + off, c->in_len - off, R_IN_CAP, &f);
		if (fl < 0) {
			r_break(x, "bad WebSocket frame from the server");
			return;
		}
		if (fl == 0)
			break;
		if (f.opcode == WSC_OP_BINARY && f.fin) {
			on_fourc_frame(x, c, f.payload, f.len, now);
		} else if (f.opcode == WSC_OP_PING) {
			r_ws_send(x, c, WSC_OP_PONG, f.payload, f.len);
		} else if (f.opcode == WSC_OP_CLOSE) {
			r_break(x, "the server closed a WebSocket (%s)",
				c->sender ? "sender" : "receiver");
			return;
		}
		off += (size_t)fl;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
}

static void parse_raw(rtt_t *x, rconn_t *c, uint64_t now)
{
	size_t off = 0;
	while (c->in_len - off >= x->rec_len) {
		if (!c->sender)
			on_payload(x, c, c->in + off, x->rec_len, now);
		off += x->rec_len;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
}

static void r_read(rtt_t *x, rconn_t *c)
{
	for (;;) {
		if (grow(&c->in, &c->in_cap, c->in_len + 65536, R_IN_CAP) != 0) {
			r_break(x, "client input buffer over %u bytes", R_IN_CAP);
			return;
		}
		ssize_t r = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
		if (r > 0) {
			uint64_t now = proc_now_ns();
			c->in_len += (size_t)r;
			if (x->kind == K_FOURC)
				parse_fourc(x, c, now);
			else
				parse_raw(x, c, now);
			if (x->broken)
				return;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			break;
		r_break(x, "the server closed a connection (%s %d)",
			c->sender ? "sender" : "receiver", c->pair);
		return;
	}
	if (c->out_len > c->out_off)
		r_flush(x, c);
}

/* Waits for events until `until` (monotonic ns; 0 = just poll) and handles
 * them. While measuring (x->spin) it never sleeps: the client has a core of
 * its own, and a sleeping client would add its wake-up latency (timer slack,
 * idle states) to every figure. */
static void r_pump(rtt_t *x, uint64_t until)
{
	struct epoll_event evs[256];
	uint64_t now = proc_now_ns();
	uint64_t wait = until > now && !x->spin ? until - now : 0;
	struct timespec ts = {.tv_sec = (time_t)(wait / 1000000000ull),
			      .tv_nsec = (long)(wait % 1000000000ull)};
	int k = epoll_pwait2(x->ep, evs, 256, &ts, NULL);
	for (int i = 0; i < k && !x->broken; i++) {
		rconn_t *c = &x->c[evs[i].data.u64];
		if (evs[i].events & EPOLLOUT)
			r_flush(x, c);
		if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
			r_read(x, c);
	}
}

/* Pumps until cond(x, arg) holds, the run broke, or `ms` passed. */
static int r_pump_until(rtt_t *x, int (*cond)(rtt_t *, long), long arg, unsigned ms)
{
	uint64_t end = proc_now_ns() + (uint64_t)ms * 1000000ull;
	while (!x->broken && !cond(x, arg)) {
		uint64_t now = proc_now_ns();
		if (now >= end)
			return 0;
		r_pump(x, now + 10000000ull < end ? now + 10000000ull : end);
	}
	return !x->broken;
}

/* ---- set-up ------------------------------------------------------------------- */

static int connect_blocking(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static int r_init(rtt_t *x, int kind, int port, int npairs, size_t ct_len, uint32_t cap_msgs)
{
	memset(x, 0, sizeof *x);
	x->kind = kind;
	x->port = port;
	x->npairs = npairs;
	x->ct_len = ct_len;
	x->cap_msgs = cap_msgs;
	x->ep = epoll_create1(EPOLL_CLOEXEC);
	x->c = calloc((size_t)npairs * 2, sizeof *x->c);
	x->ph.t_ref = calloc(cap_msgs, sizeof *x->ph.t_ref);
	x->ph.st = calloc(cap_msgs, 1);
	x->ct = malloc(ct_len + WIRE_MAX_FRAME);
	x->frame = malloc(WIRE_MAX_FRAME + WSC_MAX_HEADER);
	wire_buf_init(&x->wb, 0);
	if (x->ep < 0 || !x->c || !x->ph.t_ref || !x->ph.st || !x->ct || !x->frame ||
	    stats_init(&x->ph.lat, cap_msgs) != 0)
		return -ENOMEM;
	for (int i = 0; i < npairs * 2; i++) {
		x->c[i].fd = -1;
		x->c[i].pair = i / 2;
		x->c[i].sender = (i % 2) == 0;
	}
	/* The size of a SEND on the wire: the raw relay writes records of
	 * exactly this size. */
	wire_envelope_t env = {.account = 1, .device = 1, .ciphertext = slice_make(x->ct, ct_len)};
	wire_send_t m = {
		.client_msg_id = 1, .recipient = 1, .envelopes_out = &env, .n_envelopes_out = 1};
	memset(x->ct, 0, ct_len);
	if (wire_send_encode(&x->wb, 1, &m) != 0)
		return -EINVAL;
	x->rec_len = wsc_frame_size(x->wb.len);
	wire_buf_reset(&x->wb);
	return 0;
}

static void r_free(rtt_t *x)
{
	for (int i = 0; x->c && i < x->npairs * 2; i++) {
		if (x->c[i].fd >= 0)
			close(x->c[i].fd);
		free(x->c[i].in);
		free(x->c[i].out);
	}
	free(x->c);
	free(x->ph.t_ref);
	free(x->ph.st);
	free(x->ct);
	free(x->frame);
	stats_free(&x->ph.lat);
	wire_buf_free(&x->wb);
	if (x->ep >= 0)
		close(x->ep);
	memset(x, 0, sizeof *x);
}

static int all_have_nonce(rtt_t *x, long unused)
{
	(void)unused;
	for (int i = 0; i < x->npairs * 2; i++)
		if (!x->c[i].have_nonce)
			return 0;
	return 1;
}

static int all_registered(rtt_t *x, long unused)
{
	(void)unused;
	for (int i = 0; i < x->npairs * 2; i++)
		if (!x->c[i].registered)
			return 0;
	return 1;
}

static int all_paired(rtt_t *x, long unused)
{
	(void)unused;
	for (int i = 0; i < x->npairs; i++)
		if (!x->c[2 * i + 1].paired)
			return 0;
	return 1;
}

static void r_register(rtt_t *x, rconn_t *c)
{
	uint8_t identity[33], spk[33], spk_sig[64], sm[WIRE_SIGMSG_MAX], sig[crypto_sign_BYTES];
	crypto_sign_keypair(c->pk, c->sk);
	identity[0] = spk[0] = 0x05;
	randombytes_buf(identity + 1, 32);
	randombytes_buf(spk + 1, 32);
	randombytes_buf(spk_sig, sizeof spk_sig);
	size_t n = wire_register_sigmsg(sm, c->nonce, c->pk);
	crypto_sign_detached(sig, NULL, sm, n, c->sk);
	wire_register_t r = {
		.invite = slice_cstr(SRV_INVITE),
		.auth_pub = c->pk,
		.keys = {.registration_id = 1 + randombytes_uniform(16380),
			 .identity_key = slice_make(identity, sizeof identity),
			 .spk_id = 1,
			 .spk = slice_make(spk, sizeof spk),
			 .spk_sig = slice_make(spk_sig, sizeof spk_sig)},
		.sig = sig,
	};
	wire_buf_reset(&x->wb);
	if (wire_register_encode(&x->wb, 1, &r) != 0) {
		r_break(x, "cannot encode REGISTER");
		return;
	}
	r_ws_send(x, c, WSC_OP_BINARY, x->wb.p, x->wb.len);
	r_flush(x, c);
}

/* fourcd: every connection upgrades, reads its CHALLENGE and registers a
 * new account with one device (the receivers stay online: presence). */
static int setup_fourc(rtt_t *x)
{
	for (int i = 0; i < x->npairs * 2; i++) {
		rconn_t *c = &x->c[i];
		c->fd = connect_blocking(x->port);
		if (c->fd < 0) {
			r_break(x, "connect: %s", strerror(-c->fd));
			return -EIO;
		}
		char req[512];
		int n = wsc_request(req, sizeof req, "127.0.0.1", x->port, "/v1/ws", c->accept);
		r_queue(x, c, (const uint8_t *)req, (size_t)n);
		r_flush(x, c);
	}
	if (!r_pump_until(x, all_have_nonce, 0, R_SETUP_MS)) {
		r_break(x, "no CHALLENGE on every connection");
		return -EIO;
	}
	for (int i = 0; i < x->npairs * 2 && !x->broken; i++)
		r_register(x, &x->c[i]);
	if (!r_pump_until(x, all_registered, 0, R_SETUP_MS)) {
		r_break(x, "REGISTER did not complete on every connection");
		return -EIO;
	}
	return 0;
}

/* Relay: A_i then B_i connect in turn, so the server pairs them; a hello
 * record from each A_i proves which B it reached. */
static int setup_raw(rtt_t *x)
{
	for (int i = 0; i < x->npairs * 2; i++) {
		rconn_t *c = &x->c[i];
		c->fd = connect_blocking(x->port);
		if (c->fd < 0) {
			r_break(x, "connect: %s", strerror(-c->fd));
			return -EIO;
		}
		r_interest(x, c, EPOLLIN);
	}
	for (int i = 0; i < x->npairs; i++) {
		fill_payload(x->ct, x->rec_len, (uint32_t)i, R_PHASE_HELLO);
		r_queue(x, &x->c[2 * i], x->ct, x->rec_len);
		r_flush(x, &x->c[2 * i]);
	}
	if (!r_pump_until(x, all_paired, 0, R_SETUP_MS)) {
		r_break(x, "relay pairing did not complete");
		return -EIO;
	}
	return 0;
}

/* ---- phases ------------------------------------------------------------------- */

static void phase_begin(rtt_t *x, uint32_t n, uint32_t record_from)
{
	phase_t *ph = &x->ph;
	ph->id++;
	ph->n = n;
	ph->record_from = record_from;
	memset(ph->st, 0, n);
	ph->delivered = ph->accepted = ph->failed = ph->rate_limited = ph->stale = ph->stray = 0;
	ph->t_last_recv = 0;
	stats_reset(&ph->lat);
}

static int msg_settled(rtt_t *x, long idx)
{
	uint8_t s = x->ph.st[idx];
	if (s & ST_FAILED)
		return 1;
	if (!(s & ST_DELIVERED))
		return 0;
	return x->kind == K_RAW || (s & ST_ACCEPTED);
}

static int phase_settled(rtt_t *x, long unused)
{
	(void)unused;
	return x->ph.delivered + x->ph.failed >= x->ph.n &&
	       (x->kind == K_RAW || x->ph.accepted + x->ph.failed >= x->ph.n);
}

/* Receivers acknowledge everything they got, so that every phase starts with
 * short mailboxes. */
static void ack_all(rtt_t *x)
{
	if (x->kind != K_FOURC)
		return;
	for (int i = 0; i < x->npairs; i++) {
		rconn_t *b = &x->c[2 * i + 1];
		if (!b->unacked)
			continue;
		wire_ack_t a = {.upto_seq = b->last_seq};
		wire_buf_reset(&x->wb);
		if (wire_ack_encode(&x->wb, 0, &a) == 0)
			r_ws_send(x, b, WSC_OP_BINARY, x->wb.p, x->wb.len);
		b->unacked = 0;
		r_flush(x, b);
	}
}

/* Closed loop on pair 0: one message in flight, the next written `period`
 * after the previous one or as soon as it settled, whichever is later. */
static void closed_loop(rtt_t *x, const rtt_opts_t *o, rfig_t *f)
{
	uint32_t n = (uint32_t)(o->warm_msgs + o->msgs);
	phase_begin(x, n, (uint32_t)o->warm_msgs);
	uint64_t period = (uint64_t)(1e9 / o->rate);
	uint64_t next = proc_now_ns();
	uint64_t t_first = 0, t_end = 0;
	x->spin = 1;
	for (uint32_t i = 0; i < n && !x->broken; i++) {
		while (!x->broken && proc_now_ns() < next)
			r_pump(x, next);
		uint64_t t = proc_now_ns();
		if (i == (uint32_t)o->warm_msgs)
			t_first = t;
		x->ph.t_ref[i] = t;
		r_send_msg(x, 0, i);
		r_flush(x, &x->c[0]);
		uint64_t give_up = t + (uint64_t)R_SETTLE_MS * 1000000ull;
		while (!x->broken && !msg_settled(x, i) && proc_now_ns() < give_up)
			r_pump(x, give_up);
		next = t + period;
	}
	t_end = proc_now_ns();
	x->spin = 0;
	ack_all(x);
	stats_summarize(&x->ph.lat, &f->closed);
	f->closed_sent = o->msgs;
	f->closed_lost = (long)o->msgs - (long)f->closed.n;
	f->closed_rate = t_end > t_first ? (double)o->msgs / ((double)(t_end - t_first) / 1e9) : 0;
}

/* Open loop at `rate`: message k is due at t0 + k / rate whatever happened
 * to the earlier ones, spread over the pairs; latency counts from that due
 * time, so a client or server that falls behind shows it in the figures. */
static void open_step(rtt_t *x, const rtt_opts_t *o, pid_t server, long rate, stepfig_t *f)
{
	memset(f, 0, sizeof *f);
	long n = (long)((double)rate * o->step_ms / 1000.0);
	if (n > o->step_max_msgs)
		n = o->step_max_msgs;
	if (n > (long)x->cap_msgs)
		n = (long)x->cap_msgs;
	if (n < 1)
		n = 1;
	phase_begin(x, (uint32_t)n, 0);
	double period = 1e9 / (double)rate;
	uint64_t cpu0 = 0, cpu1 = 0;
	proc_cpu_ticks(server, &cpu0);
	uint64_t t0 = proc_now_ns() + 5000000ull;
	uint64_t last_due = t0 + (uint64_t)(period * (double)(n - 1));
	uint64_t drain_end = last_due + (uint64_t)R_DRAIN_MS * 1000000ull;
	long next = 0;
	x->spin = 1;
	while (!x->broken) {
		uint64_t now = proc_now_ns();
		if (now >= drain_end)
			break;
		int queued = 0;
		while (next < n && t0 + (uint64_t)(period * (double)next) <= now) {
			x->ph.t_ref[next] = t0 + (uint64_t)(period * (double)next);
			r_send_msg(x, (int)(next % x->npairs), (uint32_t)next);
			next++;
			queued = 1;
		}
		if (queued)
			for (int i = 0; i < x->npairs; i++)
				if (x->c[2 * i].out_len > x->c[2 * i].out_off)
					r_flush(x, &x->c[2 * i]);
		if (next == n && x->ph.delivered + x->ph.failed >= (uint32_t)n)
			break;
		r_pump(x, next < n ? t0 + (uint64_t)(period * (double)next) : drain_end);
	}
	uint64_t t_send_end = proc_now_ns();
	x->spin = 0;
	proc_cpu_ticks(server, &cpu1);
	/* Bounded extra wait for the senders' ACCEPTED frames. */
	r_pump_until(x, phase_settled, 0, R_DRAIN_MS);
	ack_all(x);
	f->offered = rate;
	f->sent = next;
	f->delivered = x->ph.delivered;
	f->failed = x->ph.failed;
	f->rate_limited = x->ph.rate_limited;
	uint64_t span = x->ph.t_last_recv > t0 ? x->ph.t_last_recv - t0 : 0;
	/* Messages sent over [t0, last_due]: the rate is delivered over the time
	 * from the first due send to the last delivery, so a backlog that
	 * drains late lowers it. */
	f->achieved = span ? (double)f->delivered / ((double)span / 1e9 + period / 1e9) : 0;
	stats_summarize(&x->ph.lat, &f->s);
	long tck = sysconf(_SC_CLK_TCK);
	double wall = (double)(t_send_end - t0) / 1e9;
	f->cpu_pct = wall > 0 && tck > 0 ? 100.0 * (double)(cpu1 - cpu0) / (double)tck / wall : 0;
	f->ok = f->delivered > 0 && f->achieved >= R_ACHIEVED_MIN * (double)rate &&
		f->s.p99_us < R_P99_MAX_US;
}

static int nothing(rtt_t *x, long unused)
{
	(void)x;
	(void)unused;
	return 0;
}

/* ---- one server --------------------------------------------------------------- */

static int measure(const rtt_opts_t *o, int ours, rfig_t *f, char *err, size_t errlen)
{
	memset(f, 0, sizeof *f);
	const char *what = ours ? "fourcd" : "baseline";
	char name[64];
	snprintf(name, sizeof name, "rtt-%s", what);
	srv_t s;
	int rc = ours ? srv_fourcd_start(&s, o->fourcd, o->tmp, name, o->server_cpu) :
			srv_baseline_start(&s, o->baseline, o->tmp, name, "relay", o->server_cpu);
	if (rc < 0) {
		snprintf(err, errlen, "%s did not start (%s); log: %s", what, strerror(-rc), s.log);
		return rc;
	}
	long cap = o->warm_msgs + o->msgs;
	if (o->step_max_msgs > cap)
		cap = o->step_max_msgs;
	rtt_t x;
	rc = r_init(&x, ours ? K_FOURC : K_RAW, s.port, o->pairs, o->msg_bytes, (uint32_t)cap);
	if (rc == 0)
		rc = ours ? setup_fourc(&x) : setup_raw(&x);
	if (rc == 0) {
		fprintf(stderr, "bench: rtt %s: closed loop, %ld messages at %.0f/s\n", what,
			o->msgs, o->rate);
		closed_loop(&x, o, f);
		fprintf(stderr, "bench: rtt %s: p50 %.1f us p99 %.1f us lost %ld\n", what,
			f->closed.p50_us, f->closed.p99_us, f->closed_lost);
	}
	for (int i = 0; rc == 0 && !x.broken && i < o->nsteps; i++) {
		r_pump_until(&x, nothing, 0, 200);
		stepfig_t *st = &f->steps[f->nsteps++];
		open_step(&x, o, s.pid, o->steps[i], st);
		fprintf(stderr, "bench: rtt %s: offered %ld/s achieved %.0f/s p99 %.1f us%s\n",
			what, st->offered, st->achieved, st->s.p99_us,
			st->ok ? "" : " (not sustained)");
		if (!st->ok)
			break;
		f->max_rate = st->offered;
		f->top_sustained = i == o->nsteps - 1;
	}
	if (x.broken) {
		snprintf(err, errlen, "%s: %s; log: %s", what, x.why, s.log);
		rc = -EIO;
	}
	r_free(&x);
	srv_stop(&s, &f->exit_code);
	return rc;
}

static void put_sum(json_t *j, const stats_sum_t *s)
{
	json_num(j, "p50_us", s->p50_us, 1);
	json_num(j, "p90_us", s->p90_us, 1);
	json_num(j, "p99_us", s->p99_us, 1);
	json_num(j, "p999_us", s->p999_us, 1);
	json_num(j, "max_us", s->max_us, 1);
	json_num(j, "mean_us", s->mean_us, 1);
}

static void put_fig(json_t *j, const rfig_t *f)
{
	put_sum(j, &f->closed);
	json_int(j, "msgs", f->closed_sent);
	json_int(j, "lost", f->closed_lost);
	json_num(j, "closed_loop_rate", f->closed_rate, 1);
	json_int(j, "max_sustainable_rate", f->max_rate);
	json_bool(j, "max_rate_is_lower_bound", f->top_sustained);
	json_arr_begin(j, "steps");
	for (int i = 0; i < f->nsteps; i++) {
		const stepfig_t *s = &f->steps[i];
		json_obj_begin(j, NULL);
		json_int(j, "offered", s->offered);
		json_num(j, "achieved", s->achieved, 1);
		json_int(j, "sent", s->sent);
		json_int(j, "delivered", s->delivered);
		json_int(j, "failed", s->failed);
		if (s->rate_limited)
			json_int(j, "rate_limited", s->rate_limited);
		json_num(j, "p50_us", s->s.p50_us, 1);
		json_num(j, "p99_us", s->s.p99_us, 1);
		json_num(j, "max_us", s->s.max_us, 1);
		json_num(j, "server_cpu_pct", s->cpu_pct, 0);
		json_bool(j, "sustained", s->ok);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_int(j, "server_exit_code", f->exit_code);
}

static void print_error(const char *msg)
{
	json_t j;
	json_init(&j);
	json_obj_begin(&j, NULL);
	json_str(&j, "scenario", "rtt_1to1");
	json_str(&j, "error", msg);
	json_obj_end(&j);
	printf("%s\n", json_text(&j));
	fflush(stdout);
}

int rtt_run(const rtt_opts_t *o)
{
	if (o->msg_bytes < 12 || o->msg_bytes > WIRE_MAX_CIPHERTEXT || o->pairs < 1 ||
	    o->rate <= 0 || o->msgs < 1) {
		print_error("bad options (msg_bytes 12..65536, pairs >= 1, rate > 0, msgs >= 1)");
		return -EINVAL;
	}
	rfig_t *ours = calloc(1, sizeof *ours), *base = calloc(1, sizeof *base);
	char err[1200] = "";
	int rc = ours && base ? 0 : -ENOMEM;
	if (rc == 0)
		rc = measure(o, 1, ours, err, sizeof err);
	if (rc == 0)
		rc = measure(o, 0, base, err, sizeof err);
	if (rc < 0) {
		print_error(err[0] ? err : "out of memory");
		free(ours);
		free(base);
		return rc;
	}
	rtt_t probe;
	size_t frame_bytes = 0;
	if (r_init(&probe, K_RAW, 0, 1, o->msg_bytes, 1) == 0)
		frame_bytes = probe.rec_len;
	r_free(&probe);
	double ratio = base->closed.p99_us > 0 ? ours->closed.p99_us / base->closed.p99_us : 0;
	json_t *j = malloc(sizeof *j);
	if (!j) {
		free(ours);
		free(base);
		return -ENOMEM;
	}
	json_init(j);
	json_obj_begin(j, NULL);
	json_str(j, "scenario", "rtt_1to1");
	put_fig(j, ours);
	json_obj_begin(j, "baseline");
	put_fig(j, base);
	json_obj_end(j);
	json_num(j, "ratio", ratio, 3);
	json_num(j, "rate_ratio",
		 base->max_rate > 0 ? (double)ours->max_rate / (double)base->max_rate : 0, 3);
	json_obj_begin(j, "target");
	json_num(j, "p99_ratio_max", 1.25, 2);
	json_obj_end(j);
	json_bool(j, "pass", ratio > 0 && ratio <= 1.25);
	json_obj_begin(j, "config");
	json_int(j, "msg_bytes", (long long)o->msg_bytes);
	json_int(j, "send_frame_bytes", (long long)frame_bytes);
	json_num(j, "closed_loop_pacing_per_s", o->rate, 0);
	json_int(j, "warm_msgs", o->warm_msgs);
	json_int(j, "pairs", o->pairs);
	json_arr_begin(j, "steps_offered");
	for (int i = 0; i < o->nsteps; i++)
		json_int(j, NULL, o->steps[i]);
	json_arr_end(j);
	json_int(j, "step_ms", o->step_ms);
	json_int(j, "step_max_msgs", o->step_max_msgs);
	json_str(j, "sustained_when", "achieved >= 95% of offered and p99 < 50 ms");
	json_str(j, "latency",
		 "closed loop: A writes SEND -> B reads DELIVER, one in flight on one pair; "
		 "open loop: from each message's scheduled send time (no coordinated omission); "
		 "the client busy-polls its own core while measuring");
	json_str(j, "acks", "receivers send a silent cumulative ACK every 64 deliveries");
	json_str(j, "data_dir_fs", proc_fs_type(o->tmp));
	json_str(j, "server", srv_fourcd_settings());
	json_str(j, "baseline_server",
		 "bench/baseline_server --mode relay: libuv, pairs connections in accept order "
		 "and forwards A's bytes to B (A -> server -> B, same hop count)");
	json_int(j, "server_cpu", o->server_cpu);
	json_int(j, "client_cpu", o->client_cpu);
	json_obj_end(j);
	json_obj_end(j);
	rc = 0;
	if (json_ok(j)) {
		printf("%s\n", json_text(j));
		fflush(stdout);
	} else {
		print_error("result too large for the JSON buffer");
		rc = -EOVERFLOW;
	}
	free(j);
	free(ours);
	free(base);
	return rc;
}
