/*
 * Idle-connection density. One epoll loop opens connections with a bounded
 * number of set-ups in flight; each connection walks connect -> (TLS 1.3
 * handshake) -> request -> answer and is then left alone (removed from
 * epoll, socket and SSL object kept). Against fourcd the request is the
 * WebSocket upgrade to /v1/ws and the answer is the 101 plus the CHALLENGE
 * frame; against the baseline it is a short probe the server echoes, which
 * proves the server accepted the connection and holds it in user space.
 *
 * Memory is read from /proc once the server is idle after the warm-up
 * connections (kept open, so code pages, allocator arenas and tables touched
 * by the first connections are part of the "before" figure) and again after
 * the N measured connections: per connection = growth / N.
 */
#define _GNU_SOURCE
#include "density.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "json.h"
#include "proc.h"
#include "proto/wire.h"
#include "servers.h"
#include "wsc.h"

#define D_BUF 1024
#define D_WINDOW 256   /* connection set-ups in flight */
#define D_SRC_ADDRS 16 /* 127.0.0.10 .. 127.0.0.25 as source addresses */
#define D_IDLE_MAX_MS 15000
#define D_PROBE "fourc-bench-probe"
#define D_PROBE_LEN (sizeof D_PROBE - 1)

enum { DM_WS = 0, DM_PROBE };
enum { DS_NONE = 0, DS_CONNECT, DS_TLS, DS_WRITE, DS_READ, DS_DONE, DS_FAILED };

typedef struct dconn {
	int fd;
	uint8_t state;
	uint32_t ev; /* epoll interest currently registered */
	uint16_t wlen, woff, rlen;
	SSL *ssl;
	uint8_t *buf; /* set-up only: the request, then the answer */
	char accept[WSC_ACCEPT_LEN + 1];
} dconn_t;

typedef struct dload {
	int ep;
	int port;
	int mode;
	SSL_CTX *ctx; /* NULL: plain TCP */
	dconn_t *c;
	long cap, n;
	long active, done, failed;
	char why[160]; /* first failure */
} dload_t;

/* Figures of one server under the load. */
typedef struct dfig {
	long done, failed, alive;
	proc_mem_t m0, mh, m1, m2; /* after warm-up, after N/2, after N, after close */
	int idle0, idle1, idle2;
	double setup_s;
	long done_half;
	double per_rss, per_dirty, per_anon, marginal;
	int exit_code;
} dfig_t;

/* ---- load client ---------------------------------------------------------- */

static void d_interest(dload_t *L, dconn_t *c, uint32_t ev)
{
	if (c->ev == ev)
		return;
	struct epoll_event e = {.events = ev, .data.u64 = (uint64_t)(c - L->c)};
	epoll_ctl(L->ep, c->ev ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e);
	c->ev = ev;
}

static void d_settle(dload_t *L, dconn_t *c)
{
	if (c->ev)
		epoll_ctl(L->ep, EPOLL_CTL_DEL, c->fd, NULL);
	c->ev = 0;
	free(c->buf);
	c->buf = NULL;
	L->active--;
}

static void d_fail(dload_t *L, dconn_t *c, const char *why)
{
	if (!L->why[0]) {
		unsigned long e = ERR_peek_error();
		char detail[120] = "";
		if (e)
			ERR_error_string_n(e, detail, sizeof detail);
		snprintf(L->why, sizeof L->why, "%s%s%s", why, detail[0] ? ": " : "", detail);
	}
	ERR_clear_error();
	d_settle(L, c);
	SSL_free(c->ssl);
	c->ssl = NULL;
	close(c->fd);
	c->fd = -1;
	c->state = DS_FAILED;
	L->failed++;
}

static void d_done(dload_t *L, dconn_t *c)
{
	d_settle(L, c);
	c->state = DS_DONE;
	L->done++;
}

static int d_prepare(dload_t *L, dconn_t *c)
{
	c->buf = malloc(D_BUF);
	if (!c->buf)
		return -1;
	if (L->mode == DM_PROBE) {
		memcpy(c->buf, D_PROBE, D_PROBE_LEN);
		c->wlen = D_PROBE_LEN;
	} else {
		int n = wsc_request((char *)c->buf, D_BUF, "127.0.0.1", L->port, "/v1/ws",
				    c->accept);
		if (n < 0)
			return -1;
		c->wlen = (uint16_t)n;
	}
	c->woff = 0;
	c->rlen = 0;
	c->state = DS_WRITE;
	return 0;
}

/* 1 once the answer in c->buf is complete and right, 0 for more, -1 bad. */
static int d_answer(dload_t *L, dconn_t *c)
{
	if (L->mode == DM_PROBE) {
		if (c->rlen < D_PROBE_LEN)
			return 0;
		return memcmp(c->buf, D_PROBE, D_PROBE_LEN) == 0 ? 1 : -1;
	}
	long hl = wsc_response(c->buf, c->rlen, c->accept);
	if (hl <= 0)
		return (int)hl;
	wsc_frame_t f;
	long fl = wsc_frame_parse(c->buf + hl, c->rlen - (size_t)hl, D_BUF, &f);
	if (fl <= 0)
		return (int)fl;
	wire_msg_t m;
	if (f.opcode != WSC_OP_BINARY || wire_msg_decode(slice_make(f.payload, f.len), &m) != 0 ||
	    m.hdr.type != WIRE_MSG_CHALLENGE)
		return -1;
	return 1;
}

/* Plain or TLS I/O: >0 bytes, 0 would block, -1 failed or closed. */
static int d_io(dconn_t *c, int wr, void *p, size_t n, uint32_t *want)
{
	if (!c->ssl) {
		ssize_t r = wr ? write(c->fd, p, n) : read(c->fd, p, n);
		if (r > 0)
			return (int)r;
		if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
			*want = wr ? EPOLLOUT : EPOLLIN;
			return 0;
		}
		return -1;
	}
	int r = wr ? SSL_write(c->ssl, p, (int)n) : SSL_read(c->ssl, p, (int)n);
	if (r > 0)
		return r;
	int e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		*want = e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
		return 0;
	}
	return -1;
}

static void d_step(dload_t *L, dconn_t *c)
{
	for (;;) {
		uint32_t want = 0;
		int r;
		switch (c->state) {
		case DS_CONNECT: {
			int err = 0;
			socklen_t el = sizeof err;
			getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
			if (err) {
				d_fail(L, c, strerror(err));
				return;
			}
			if (L->ctx) {
				c->ssl = SSL_new(L->ctx);
				if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
					d_fail(L, c, "SSL_new");
					return;
				}
				SSL_set_connect_state(c->ssl);
				c->state = DS_TLS;
			} else if (d_prepare(L, c) != 0) {
				d_fail(L, c, "out of memory");
				return;
			}
			break;
		}
		case DS_TLS:
			r = SSL_do_handshake(c->ssl);
			if (r != 1) {
				int e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
					d_interest(L, c,
						   e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
					return;
				}
				d_fail(L, c, "TLS handshake");
				return;
			}
			if (d_prepare(L, c) != 0) {
				d_fail(L, c, "out of memory");
				return;
			}
			break;
		case DS_WRITE:
			r = d_io(c, 1, c->buf + c->woff, (size_t)(c->wlen - c->woff), &want);
			if (r < 0) {
				d_fail(L, c, "write");
				return;
			}
			if (r == 0) {
				d_interest(L, c, want);
				return;
			}
			c->woff = (uint16_t)(c->woff + r);
			if (c->woff == c->wlen)
				c->state = DS_READ;
			break;
		case DS_READ:
			if (c->rlen >= D_BUF) {
				d_fail(L, c, "answer too long");
				return;
			}
			r = d_io(c, 0, c->buf + c->rlen, (size_t)(D_BUF - c->rlen), &want);
			if (r < 0) {
				d_fail(L, c, "read (closed by server?)");
				return;
			}
			if (r == 0) {
				d_interest(L, c, want);
				return;
			}
			c->rlen = (uint16_t)(c->rlen + r);
			r = d_answer(L, c);
			if (r < 0) {
				d_fail(L, c, "unexpected answer");
				return;
			}
			if (r > 0) {
				d_done(L, c);
				return;
			}
			break;
		default:
			return;
		}
	}
}

static void d_start(dload_t *L, long i)
{
	dconn_t *c = &L->c[i];
	memset(c, 0, sizeof *c);
	L->active++;
	c->state = DS_CONNECT;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		d_fail(L, c, strerror(errno));
		return;
	}
	/* Several loopback source addresses, each with its own ephemeral port
	 * range, so that N is not capped by one address's port range. The port
	 * is chosen at connect time (IP_BIND_ADDRESS_NO_PORT). */
	int one = 1;
	setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
	struct sockaddr_in src = {.sin_family = AF_INET};
	src.sin_addr.s_addr = htonl(0x7F00000Au + (uint32_t)(i % D_SRC_ADDRS));
	struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)L->port)};
	dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(c->fd, (struct sockaddr *)&src, sizeof src) != 0) {
		d_fail(L, c, strerror(errno));
		return;
	}
	if (connect(c->fd, (struct sockaddr *)&dst, sizeof dst) != 0 && errno != EINPROGRESS) {
		d_fail(L, c, strerror(errno));
		return;
	}
	d_interest(L, c, EPOLLOUT);
}

static int d_init(dload_t *L, int port, int mode, SSL_CTX *ctx, long cap)
{
	memset(L, 0, sizeof *L);
	L->port = port;
	L->mode = mode;
	L->ctx = ctx;
	L->cap = cap;
	L->c = calloc((size_t)cap, sizeof *L->c);
	L->ep = epoll_create1(EPOLL_CLOEXEC);
	if (!L->c || L->ep < 0) {
		free(L->c);
		if (L->ep >= 0)
			close(L->ep);
		return -ENOMEM;
	}
	return 0;
}

/* Opens `count` more connections and drives them until each is done or
 * failed, or until timeout_ms passed (the rest then counts as failed). */
static void d_open(dload_t *L, long count, unsigned timeout_ms)
{
	long end_i = L->n + count;
	if (end_i > L->cap)
		end_i = L->cap;
	long settled_goal = L->done + L->failed + (end_i - L->n);
	uint64_t deadline = proc_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	struct epoll_event evs[512];
	while (L->done + L->failed < settled_goal && proc_now_ns() < deadline) {
		while (L->active < D_WINDOW && L->n < end_i)
			d_start(L, L->n++);
		int k = epoll_wait(L->ep, evs, 512, 50);
		for (int i = 0; i < k; i++)
			d_step(L, &L->c[evs[i].data.u64]);
	}
	for (long i = 0; i < L->n; i++) {
		dconn_t *c = &L->c[i];
		if (c->state != DS_DONE && c->state != DS_FAILED)
			d_fail(L, c, "set-up timed out");
	}
	/* Connections the deadline left unstarted count as failed too. */
	for (; L->n < end_i; L->n++) {
		L->c[L->n].fd = -1;
		L->c[L->n].state = DS_FAILED;
		L->failed++;
	}
}

/* Connections the server still holds: a peek sees data or would block;
 * end of file or an error means the server closed it. */
static long d_alive(dload_t *L, long from)
{
	long alive = 0;
	for (long i = from; i < L->n; i++) {
		dconn_t *c = &L->c[i];
		if (c->state != DS_DONE)
			continue;
		char b;
		ssize_t r = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		if (r > 0 || (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)))
			alive++;
	}
	return alive;
}

static void d_close_all(dload_t *L)
{
	for (long i = 0; i < L->n; i++) {
		dconn_t *c = &L->c[i];
		if (c->state == DS_DONE) {
			SSL_free(c->ssl);
			close(c->fd);
		}
		free(c->buf);
	}
	free(L->c);
	close(L->ep);
	memset(L, 0, sizeof *L);
}

/* ---- one server under the load -------------------------------------------- */

static SSL_CTX *client_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
	/* The servers use self-signed certificates; no verification. Every
	 * connection makes a full handshake: no client session cache. The
	 * client's own buffers are released when idle so that the client's
	 * memory does not limit N; the server side is unaffected. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return ctx;
}

static double per_conn(long before_kib, long after_kib, long n)
{
	return n > 0 ? (double)(after_kib - before_kib) * 1024.0 / (double)n : 0.0;
}

static int measure(const density_opts_t *o, int ours, long n, SSL_CTX *ctx, dfig_t *f, char *err,
		   size_t errlen)
{
	memset(f, 0, sizeof *f);
	const char *what = ours ? "fourcd" : "baseline";
	char name[64];
	snprintf(name, sizeof name, "density-%s-%s", o->tls ? "tls" : "plain", what);
	srv_t s;
	int rc = ours ? srv_fourcd_start(&s, o->fourcd, o->tmp, name, o->server_cpu) :
			srv_baseline_start(&s, o->baseline, o->tmp, name,
					   o->tls ? "hold-tls" : "hold", o->server_cpu);
	if (rc < 0) {
		snprintf(err, errlen, "%s did not start (%s); log: %s", what, strerror(-rc), s.log);
		return rc;
	}
	int port = ours && o->tls ? s.tls_port : s.port;
	dload_t L;
	if ((rc = d_init(&L, port, ours ? DM_WS : DM_PROBE, ctx, o->warm + n)) < 0) {
		srv_stop(&s, NULL);
		snprintf(err, errlen, "load client: out of memory");
		return rc;
	}
	/* Generous bounds that only keep a broken run finite: a minute plus
	 * 10 ms per connection. */
	fprintf(stderr, "bench: %s: %ld warm-up connections\n", what, o->warm);
	d_open(&L, o->warm, 60000 + (unsigned)(o->warm * 10));
	long warm_done = L.done, warm_failed = L.failed, warm_n = L.n;
	f->idle0 = proc_wait_idle(s.pid, D_IDLE_MAX_MS) == 1;
	proc_mem_read(s.pid, &f->m0);
	fprintf(stderr, "bench: %s: opening %ld connections (rss %ld KiB)\n", what, n,
		f->m0.rss_kib);
	/* N opens in two halves with a reading in between: the growth over
	 * the second half is the marginal cost of a connection once the
	 * allocator reached its steady state for this set-up concurrency. */
	long half = n / 2;
	uint64_t t0 = proc_now_ns();
	d_open(&L, half, 60000 + (unsigned)(half * 10));
	double s1 = (double)(proc_now_ns() - t0) / 1e9;
	long half_done = L.done;
	proc_wait_idle(s.pid, D_IDLE_MAX_MS);
	proc_mem_read(s.pid, &f->mh);
	t0 = proc_now_ns();
	d_open(&L, n - half, 60000 + (unsigned)((n - half) * 10));
	f->setup_s = s1 + (double)(proc_now_ns() - t0) / 1e9;
	f->done = L.done - warm_done;
	f->done_half = L.done - half_done;
	f->failed = L.failed - warm_failed;
	f->idle1 = proc_wait_idle(s.pid, D_IDLE_MAX_MS) == 1;
	proc_mem_read(s.pid, &f->m1);
	f->alive = d_alive(&L, warm_n);
	fprintf(stderr, "bench: %s: %ld open, %ld failed%s%s (rss %ld KiB)\n", what, f->done,
		f->failed, L.why[0] ? ", first failure: " : "", L.why, f->m1.rss_kib);
	d_close_all(&L);
	f->idle2 = proc_wait_idle(s.pid, D_IDLE_MAX_MS) == 1;
	proc_mem_read(s.pid, &f->m2);
	srv_stop(&s, &f->exit_code);
	f->per_rss = per_conn(f->m0.rss_kib, f->m1.rss_kib, f->done);
	f->per_dirty = per_conn(f->m0.private_dirty_kib, f->m1.private_dirty_kib, f->done);
	f->per_anon = per_conn(f->m0.anon_kib, f->m1.anon_kib, f->done);
	f->marginal = per_conn(f->mh.rss_kib, f->m1.rss_kib, f->done_half);
	if (f->m1.rss_kib < 0) {
		snprintf(err, errlen, "%s exited during the run (status %d); log: %s", what,
			 f->exit_code, s.log);
		return -ECHILD;
	}
	if (f->done <= 0) {
		snprintf(err, errlen, "%s: no connection could be set up (%s); log: %s", what,
			 L.why[0] ? L.why : "?", s.log);
		return -EIO;
	}
	return 0;
}

static void put_fig(json_t *j, const dfig_t *f)
{
	json_num(j, "bytes_per_conn", f->per_rss, 1);
	json_num(j, "private_dirty_bytes_per_conn", f->per_dirty, 1);
	json_num(j, "rss_anon_bytes_per_conn", f->per_anon, 1);
	json_num(j, "marginal_bytes_per_conn", f->marginal, 1);
	json_int(j, "conns", f->done);
	json_int(j, "conns_failed", f->failed);
	json_int(j, "conns_alive_at_measure", f->alive);
	json_int(j, "rss_before_kib", f->m0.rss_kib);
	json_int(j, "rss_half_kib", f->mh.rss_kib);
	json_int(j, "rss_after_kib", f->m1.rss_kib);
	json_int(j, "rss_after_close_kib", f->m2.rss_kib);
	json_int(j, "private_dirty_before_kib", f->m0.private_dirty_kib);
	json_int(j, "private_dirty_after_kib", f->m1.private_dirty_kib);
	json_int(j, "server_threads", f->m1.threads);
	json_num(j, "setup_conns_per_s", f->setup_s > 0 ? (double)f->done / f->setup_s : 0, 0);
	json_bool(j, "idle_reached", f->idle0 && f->idle1);
	json_int(j, "server_exit_code", f->exit_code);
}

static void print_error(const char *scenario, const char *msg)
{
	json_t j;
	json_init(&j);
	json_obj_begin(&j, NULL);
	json_str(&j, "scenario", scenario);
	json_str(&j, "error", msg);
	json_obj_end(&j);
	printf("%s\n", json_text(&j));
	fflush(stdout);
}

int density_run(const density_opts_t *o)
{
	const char *scenario = o->tls ? "conn_density_tls" : "conn_density_plain";
	const long target = o->tls ? 16384 : 1024;
	/* Each side holds warm + N sockets plus its own few descriptors. */
	long n = o->conns;
	long room = o->nofile - 128 - o->warm;
	int clamped = n > room;
	if (clamped)
		n = room;
	if (n <= 0) {
		print_error(scenario, "RLIMIT_NOFILE too low for any connection");
		return -EMFILE;
	}
	SSL_CTX *ctx = NULL;
	if (o->tls && !(ctx = client_ctx())) {
		print_error(scenario, "cannot create the TLS client context");
		return -ENOMEM;
	}
	dfig_t ours, base;
	char err[1200] = "";
	int rc = measure(o, 1, n, ctx, &ours, err, sizeof err);
	if (rc == 0)
		rc = measure(o, 0, n, ctx, &base, err, sizeof err);
	SSL_CTX_free(ctx);
	if (rc < 0) {
		print_error(scenario, err);
		return rc;
	}
	json_t j;
	json_init(&j);
	json_obj_begin(&j, NULL);
	json_str(&j, "scenario", scenario);
	put_fig(&j, &ours);
	json_obj_begin(&j, "baseline");
	put_fig(&j, &base);
	json_obj_end(&j);
	json_num(&j, "ratio", base.per_rss > 0 ? ours.per_rss / base.per_rss : 0, 3);
	json_obj_begin(&j, "target");
	json_int(&j, "bytes_per_conn_max", target);
	json_obj_end(&j);
	json_bool(&j, "pass", ours.per_rss <= (double)target);
	json_obj_begin(&j, "config");
	json_int(&j, "conns_requested", o->conns);
	json_int(&j, "conns_target", n);
	if (clamped)
		json_str(&j, "conns_limited_by", "RLIMIT_NOFILE of this machine");
	json_int(&j, "rlimit_nofile", o->nofile);
	json_int(&j, "warm_conns_kept_open", o->warm);
	json_str(&j, "connection_state",
		 o->tls ? "TLS 1.3 + WebSocket upgraded (101 and CHALLENGE read), "
			  "unauthenticated; an authenticated connection keeps the same gw_conn_t" :
			  "WebSocket upgraded (101 and CHALLENGE read), unauthenticated; an "
			  "authenticated connection keeps the same gw_conn_t");
	json_str(&j, "server", srv_fourcd_settings());
	json_str(&j, "baseline_server",
		 o->tls ? "bench/baseline_server --mode hold-tls: libuv uv_poll + OpenSSL "
			  "defaults (socket BIO, no SSL_MODE_RELEASE_BUFFERS), echoes a probe" :
			  "bench/baseline_server --mode hold: libuv uv_tcp_t per connection, "
			  "shared read buffer, echoes a probe");
	json_str(&j, "measure",
		 "bytes_per_conn = VmRSS growth / conns between idle after warm-up and idle "
		 "after N (pass/fail and ratio use it); private_dirty from smaps_rollup; "
		 "marginal = VmRSS growth over the second N/2 / its conns");
	json_str(&j, "client", "C epoll client, 256 set-ups in flight, TLS 1.3, SSL objects kept");
	json_int(&j, "server_cpu", o->server_cpu);
	json_int(&j, "client_cpu", o->client_cpu);
	json_obj_end(&j);
	json_obj_end(&j);
	if (!json_ok(&j)) {
		print_error(scenario, "result too large for the JSON buffer");
		return -EOVERFLOW;
	}
	printf("%s\n", json_text(&j));
	fflush(stdout);
	return 0;
}
