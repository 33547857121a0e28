/*
 * Gateway server: loops, listening sockets, the per-loop timer wheel, the
 * connection slot table, admission control, bus inbox handling and graceful
 * shutdown. Per-connection I/O lives in conn.c.
 */
#include "gateway/gw_internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/metrics.h"
#include "proto/wire.h"

uint64_t gw_now_ms(gw_loop_t *lp)
{
	return uv_now(&lp->loop);
}

/* ---- timer wheel ----------------------------------------------------------
 * Every connection has at most one deadline. Buckets hold connections whose
 * deadline falls on that tick modulo the wheel size; deadlines beyond one
 * revolution simply stay in their bucket until their tick comes round. */

static void tw_unlink(gw_loop_t *lp, gw_conn_t *c)
{
	if (!c->dl_kind)
		return;
	if (c->tw_prev)
		c->tw_prev->tw_next = c->tw_next;
	else
		lp->wheel[(c->deadline_ms / GW_TW_TICK_MS) % GW_TW_SLOTS] = c->tw_next;
	if (c->tw_next)
		c->tw_next->tw_prev = c->tw_prev;
	c->tw_next = c->tw_prev = NULL;
	c->dl_kind = DL_NONE;
}

void gw_deadline_clear(gw_conn_t *c)
{
	tw_unlink(c->lp, c);
}

void gw_deadline_set(gw_conn_t *c, int kind, uint64_t at_ms)
{
	gw_loop_t *lp = c->lp;
	/* A closing connection is about to be released: linking it into the
	 * wheel again would leave a dangling pointer there. */
	if (c->flags & CF_CLOSING)
		return;
	tw_unlink(lp, c);
	/* Never schedule into a tick the wheel has already passed. */
	uint64_t min_at = (lp->wheel_tick + 1) * GW_TW_TICK_MS;
	if (at_ms < min_at)
		at_ms = min_at;
	c->deadline_ms = at_ms;
	c->dl_kind = (uint8_t)kind;
	gw_conn_t **b = &lp->wheel[(at_ms / GW_TW_TICK_MS) % GW_TW_SLOTS];
	c->tw_prev = NULL;
	c->tw_next = *b;
	if (*b)
		(*b)->tw_prev = c;
	*b = c;
}

static void on_tick(uv_timer_t *t)
{
	gw_loop_t *lp = t->data;
	uint64_t now = gw_now_ms(lp);
	uint64_t now_tick = now / GW_TW_TICK_MS;
	while (lp->wheel_tick < now_tick) {
		lp->wheel_tick++;
		gw_conn_t **b = &lp->wheel[lp->wheel_tick % GW_TW_SLOTS];
		gw_conn_t *due = NULL;
		/* Detach the due connections first: handlers reschedule. */
		gw_conn_t *c = *b;
		while (c) {
			gw_conn_t *n = c->tw_next;
			if (c->deadline_ms / GW_TW_TICK_MS <= lp->wheel_tick) {
				c->due_kind = c->dl_kind;
				tw_unlink(lp, c);
				c->tw_next = due;
				due = c;
			}
			c = n;
		}
		while (due) {
			gw_conn_t *n = due->tw_next;
			due->tw_next = NULL;
			if (!(due->flags & CF_CLOSING))
				gw_conn_on_deadline(due, due->due_kind, now);
			due = n;
		}
	}
	if (lp->stopping && lp->nconns && now >= lp->stop_deadline_ms) {
		/* Shutdown grace period is over: drop whatever still lingers. */
		for (uint32_t i = 0; i < lp->nslots; i++)
			if (lp->slots[i] && !(lp->slots[i]->flags & CF_CLOSING))
				gw_conn_close_now(lp->slots[i]);
	}
}

/* ---- connection slots -------------------------------------------------- */

int gw_slot_take(gw_loop_t *lp, gw_conn_t *c)
{
	uint32_t slot;
	if (lp->nfree) {
		slot = lp->free_slots[--lp->nfree];
	} else {
		if (lp->nslots == lp->slots_cap) {
			uint32_t ncap = lp->slots_cap ? lp->slots_cap * 2 : 1024;
			if (ncap > (1u << GW_SLOT_BITS))
				return -FC_ELIMIT;
			gw_conn_t **ns = realloc(lp->slots, ncap * sizeof *ns);
			if (!ns)
				return -ENOMEM;
			lp->slots = ns;
			uint32_t *nf = realloc(lp->free_slots, ncap * sizeof *nf);
			if (!nf)
				return -ENOMEM;
			lp->free_slots = nf;
			lp->slots_cap = ncap;
		}
		slot = lp->nslots++;
	}
	lp->gen++;
	c->id = ((uint64_t)lp->gen << GW_SLOT_BITS) | slot;
	lp->slots[slot] = c;
	lp->nconns++;
	return 0;
}

void gw_slot_release(gw_loop_t *lp, gw_conn_t *c)
{
	uint32_t slot = (uint32_t)(c->id & ((1u << GW_SLOT_BITS) - 1));
	ASSERT(lp->slots[slot] == c);
	lp->slots[slot] = NULL;
	lp->free_slots[lp->nfree++] = slot;
	lp->nconns--;
}

gw_conn_t *gw_conn_lookup(gw_loop_t *lp, uint64_t id)
{
	uint32_t slot = (uint32_t)(id & ((1u << GW_SLOT_BITS) - 1));
	if (slot >= lp->nslots)
		return NULL;
	gw_conn_t *c = lp->slots[slot];
	return (c && c->id == id && !(c->flags & CF_CLOSING)) ? c : NULL;
}

/* Connection structs come from a per-loop free list, so a reconnect storm
 * reuses memory instead of churning the allocator. A zeroed struct is the
 * valid initial state. */
gw_conn_t *gw_conn_alloc(gw_loop_t *lp)
{
	gw_conn_t *c = lp->pool;
	if (!c)
		return calloc(1, sizeof *c);
	lp->pool = c->dirty_next;
	lp->npool--;
	memset(c, 0, sizeof *c);
	return c;
}

void gw_conn_release(gw_loop_t *lp, gw_conn_t *c)
{
	if (lp->npool >= GW_CONN_POOL) {
		free(c);
		return;
	}
	c->dirty_next = lp->pool;
	lp->pool = c;
	lp->npool++;
}

/* ---- admission control ---------------------------------------------------
 * A token bucket per loop bounds the rate of WebSocket upgrades, so a
 * reconnect storm after a restart is shaped instead of absorbed all at once.
 * Refused upgrades get 503 with Retry-After before any per-connection work. */

int gw_admit_upgrade(gw_loop_t *lp, uint32_t *retry_after_s)
{
	const fc_config_t *cfg = &lp->srv->cfg;
	uint64_t now = gw_now_ms(lp);
	double rate = cfg->upgrade_rate;
	lp->tokens += (double)(now - lp->tokens_ms) * rate / 1000.0;
	if (lp->tokens > cfg->upgrade_burst)
		lp->tokens = cfg->upgrade_burst;
	lp->tokens_ms = now;
	if (lp->tokens >= 1.0) {
		lp->tokens -= 1.0;
		return 1;
	}
	/* A virtual queue: each refused client is given the next free
	 * admission slot, so the refused come back spread at the admission
	 * rate instead of all at once when one common Retry-After runs out. */
	uint64_t step_ms = 1000 / (uint64_t)rate;
	if (step_ms == 0)
		step_ms = 1;
	if (lp->next_slot_ms < now)
		lp->next_slot_ms = now;
	lp->next_slot_ms += step_ms;
	uint64_t wait_ms = lp->next_slot_ms - now;
	if (wait_ms > 60000)
		wait_ms = 60000;
	*retry_after_s = (uint32_t)((wait_ms + 999) / 1000);
	return 0;
}

/* ---- bus ------------------------------------------------------------------ */

static void on_inbox(bus_inbox_t *in)
{
	gw_loop_t *lp = in->data;
	bus_msg_t *m = bus_drain(&lp->inbox);
	while (m) {
		bus_msg_t *next = m->next;
		gw_conn_t *c = gw_conn_lookup(lp, m->conn_id);
		if (!c && m->kind == BUS_AUTHED) {
			/* The connection closed while its authentication was in
			 * flight: hand the router back a close for the identity it
			 * just bound, so no presence outlives its connection. */
			m->kind = BUS_CONN_CLOSED;
			m->next = NULL;
			bus_push(lp->srv->router, m);
			m = next;
			continue;
		}
		if (c) {
			switch (m->kind) {
			case BUS_FRAME:
				if (m->code) {
					/* Final answer to a request. */
					if (c->inflight)
						c->inflight--;
					c->flags &= (uint16_t)~CF_AUTH_PENDING;
				}
				if (m->t0_us) {
					uint64_t now_us = uv_hrtime() / 1000;
					metrics_latency_us(now_us > m->t0_us ? now_us - m->t0_us :
									       0);
				}
				gw_conn_send_frame(c, m->data, m->len);
				break;
			case BUS_AUTHED:
				c->flags |= CF_AUTHED;
				c->flags &= (uint16_t)~CF_AUTH_PENDING;
				c->account = m->account;
				c->device = m->device;
				memset(c->nonce, 0, sizeof c->nonce);
				(void)gw_conn_preauth_account(c); /* no longer counted */
				/* A connection already closing keeps its linger deadline
				 * (it still reports CONN_CLOSED as authenticated). */
				if (!(c->flags & CF_SENT_CLOSE) && c->state == ST_WS)
					gw_deadline_set(c, DL_PING,
							gw_now_ms(lp) +
								lp->srv->cfg.ping_interval_ms);
				break;
			case BUS_CLOSE:
				gw_conn_close_ws(c, m->code, "");
				break;
			default:
				break;
			}
		}
		bus_msg_free(m);
		m = next;
	}
}

/* ---- flush: one coalesced write per connection per loop iteration ------- */

static void on_flush(uv_prepare_t *p)
{
	gw_loop_t *lp = p->data;
	gw_conn_t *c = lp->dirty;
	lp->dirty = NULL;
	while (c) {
		gw_conn_t *n = c->dirty_next;
		c->dirty_next = NULL;
		c->flags &= (uint16_t)~CF_DIRTY;
		if (!(c->flags & CF_CLOSING))
			gw_conn_flush(c);
		c = n;
	}
}

/* ---- listening sockets ------------------------------------------------- */

static int bind_socket(const char *addr, int reuseport, int first, char *err, size_t errlen)
{
	char host[128];
	int port;
	if (config_split_addr(addr, host, sizeof host, &port) != 0) {
		snprintf(err, errlen, "bad listen address '%s' (want HOST:PORT)", addr);
		return -FC_ECONFIG;
	}
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	socklen_t sl;
	int fam;
	if (strchr(host, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			goto bad_host;
		fam = AF_INET6;
		sl = sizeof *s6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			goto bad_host;
		fam = AF_INET;
		sl = sizeof *s4;
	}
	if (reuseport && first) {
		/* SO_REUSEPORT would let us join another process's listening
		 * group on the same port and split its clients with it; a plain
		 * bind first makes a port in use a start-up error. */
		int probe = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0) {
			int on = 1;
			setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
			int brc = bind(probe, (struct sockaddr *)&ss, sl);
			int e = errno;
			close(probe);
			if (brc != 0) {
				snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(e));
				return -e;
			}
		}
	}
	int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, sl) != 0) {
		int e = errno;
		snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(e));
		close(fd);
		return -e;
	}
	return fd;
bad_host:
	snprintf(err, errlen, "bad listen address '%s' (want a numeric IP)", addr);
	return -FC_ECONFIG;
}

static int listen_on(gw_loop_t *lp, uv_tcp_t *h, int fd, const char *what)
{
	int rc = uv_tcp_init(&lp->loop, h);
	if (rc == 0)
		rc = uv_tcp_open(h, fd);
	if (rc == 0) {
		h->data = lp;
		rc = uv_listen((uv_stream_t *)h, 4096, gw_on_connection);
	}
	if (rc != 0)
		LOGE("listen_failed", "loop=%u socket=%s err=\"%s\"", lp->idx, what,
		     uv_strerror(rc));
	return rc;
}

static void close_listeners(gw_loop_t *lp)
{
	uv_tcp_t *ls[3] = {&lp->l_plain, &lp->l_tls, &lp->l_admin};
	for (int i = 0; i < 3; i++)
		if (uv_is_active((uv_handle_t *)ls[i]) && !uv_is_closing((uv_handle_t *)ls[i]))
			uv_close((uv_handle_t *)ls[i], NULL);
}

static void close_all_handles(uv_handle_t *h, void *arg)
{
	gw_loop_t *lp = arg;
	if (bus_inbox_owns(&lp->inbox, h))
		bus_inbox_close(&lp->inbox);
	else if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* Stop: no new connections; GOAWAY + 1001 to every WebSocket client; other
 * connections closed. The tick handler enforces the grace period. */
static void loop_begin_stop(gw_loop_t *lp)
{
	if (lp->stopping)
		return;
	lp->stopping = 1;
	lp->stop_deadline_ms = gw_now_ms(lp) + GW_LINGER_MS;
	close_listeners(lp);
	for (uint32_t i = 0; i < lp->nslots; i++) {
		gw_conn_t *c = lp->slots[i];
		if (c && !(c->flags & CF_CLOSING))
			gw_conn_goaway(c);
	}
}

static void on_stop(uv_async_t *a)
{
	loop_begin_stop(a->data);
}

/* Once stopping and empty, a worker closes its remaining handles so that
 * uv_run() returns. Checked from the tick. */
static void on_idle_check(uv_timer_t *t);

static int loop_init(gw_loop_t *lp)
{
	int rc = uv_loop_init(&lp->loop);
	if (rc)
		return rc;
	lp->loop.data = lp;
	if ((rc = bus_inbox_init(&lp->inbox, &lp->loop, on_inbox)) != 0)
		return rc;
	lp->inbox.data = lp;
	if ((rc = uv_async_init(&lp->loop, &lp->stop_async, on_stop)) != 0)
		return rc;
	lp->stop_async.data = lp;
	if ((rc = uv_timer_init(&lp->loop, &lp->tick)) != 0)
		return rc;
	lp->tick.data = lp;
	if ((rc = uv_prepare_init(&lp->loop, &lp->flush)) != 0)
		return rc;
	lp->flush.data = lp;
	lp->wheel_tick = uv_now(&lp->loop) / GW_TW_TICK_MS;
	lp->tokens = lp->srv->cfg.upgrade_burst;
	lp->tokens_ms = uv_now(&lp->loop);
	return 0;
}

static int loop_listen(gw_loop_t *lp)
{
	int rc = 0;
	if (lp->fd_plain >= 0 && (rc = listen_on(lp, &lp->l_plain, lp->fd_plain, "plain")) != 0)
		return rc;
	if (lp->fd_tls >= 0 && (rc = listen_on(lp, &lp->l_tls, lp->fd_tls, "tls")) != 0)
		return rc;
	if (lp->fd_admin >= 0 && (rc = listen_on(lp, &lp->l_admin, lp->fd_admin, "admin")) != 0)
		return rc;
	lp->fd_plain = lp->fd_tls = lp->fd_admin = -1; /* owned by the handles now */
	uv_timer_start(&lp->tick, on_tick, GW_TW_TICK_MS, GW_TW_TICK_MS);
	uv_prepare_start(&lp->flush, on_flush);
	return 0;
}

static void on_idle_check(uv_timer_t *t)
{
	gw_loop_t *lp = t->data;
	on_tick(t);
	if (lp->stopping && lp->nconns == 0)
		uv_walk(&lp->loop, close_all_handles, lp);
}

static void worker_main(void *arg)
{
	gw_loop_t *lp = arg;
	uv_timer_stop(&lp->tick);
	uv_timer_start(&lp->tick, on_idle_check, GW_TW_TICK_MS, GW_TW_TICK_MS);
	uv_run(&lp->loop, UV_RUN_DEFAULT);
	LOGD("loop_exit", "loop=%u", lp->idx);
}

static gw_loop_t *loop_new(gw_server_t *s, unsigned idx)
{
	gw_loop_t *lp = calloc(1, sizeof *lp);
	if (!lp)
		return NULL;
	lp->srv = s;
	lp->idx = (uint16_t)idx;
	lp->fd_plain = lp->fd_tls = lp->fd_admin = -1;
	return lp;
}

static int setup_tls(gw_server_t *s, char *err, size_t errlen)
{
	const fc_config_t *cfg = &s->cfg;
	char cert[CONFIG_STR + 32], key[CONFIG_STR + 32];
	if (cfg->tls_cert[0]) {
		snprintf(cert, sizeof cert, "%s", cfg->tls_cert);
		snprintf(key, sizeof key, "%s", cfg->tls_key[0] ? cfg->tls_key : cfg->tls_cert);
	} else {
		char dir[CONFIG_STR + 8];
		snprintf(dir, sizeof dir, "%s/tls", cfg->data);
		int rc = fs_mkdir_p(dir, 0700);
		if (rc < 0) {
			snprintf(err, errlen, "cannot create %s: %s", dir, strerror(-rc));
			return rc;
		}
		snprintf(cert, sizeof cert, "%s/dev-cert.pem", dir);
		snprintf(key, sizeof key, "%s/dev-key.pem", dir);
		rc = tls_dev_cert_ensure(cert, key);
		if (rc < 0) {
			snprintf(err, errlen, "cannot create development certificate %s", cert);
			return rc;
		}
		if (rc == 1)
			LOGI("tls_dev_cert_created", "path=%s", cert);
	}
	if (tls_ctx_create(&s->tls_ctx, cert, key) != 0) {
		snprintf(err, errlen, "cannot load TLS certificate %s / key %s", cert, key);
		return -FC_ECONFIG;
	}
	return 0;
}

int gw_create(gw_server_t **out, const fc_config_t *cfg, bus_inbox_t *router_inbox, char *err,
	      size_t errlen)
{
	gw_server_t *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	s->router = router_inbox;
	s->ws_lim.max_frame = cfg->max_message;
	s->ws_lim.max_message = cfg->max_message;
	unsigned n = cfg->loops;
	if (n == 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		n = cpus > 0 ? (unsigned)cpus : 1;
		if (n > GW_MAX_LOOPS)
			n = GW_MAX_LOOPS;
	}
	int rc = 0;
	if (cfg->tls_listen[0] && (rc = setup_tls(s, err, errlen)) != 0)
		goto fail;
	s->nloops = n;
	s->loops = calloc(n, sizeof *s->loops);
	s->admin = loop_new(s, n);
	if (!s->loops || !s->admin) {
		rc = -ENOMEM;
		goto fail;
	}
	s->admin->is_admin = 1;
	for (unsigned i = 0; i < n; i++) {
		gw_loop_t *lp = s->loops[i] = loop_new(s, i);
		if (!lp) {
			rc = -ENOMEM;
			goto fail;
		}
		if (cfg->listen[0] &&
		    (lp->fd_plain = bind_socket(cfg->listen, 1, i == 0, err, errlen)) < 0) {
			rc = lp->fd_plain;
			lp->fd_plain = -1;
			goto fail;
		}
		if (cfg->tls_listen[0] &&
		    (lp->fd_tls = bind_socket(cfg->tls_listen, 1, i == 0, err, errlen)) < 0) {
			rc = lp->fd_tls;
			lp->fd_tls = -1;
			goto fail;
		}
		if ((rc = loop_init(lp)) != 0) {
			snprintf(err, errlen, "loop init: %s", uv_strerror(rc));
			goto fail;
		}
	}
	if (cfg->admin[0] &&
	    (s->admin->fd_admin = bind_socket(cfg->admin, 0, 1, err, errlen)) < 0) {
		rc = s->admin->fd_admin;
		s->admin->fd_admin = -1;
		goto fail;
	}
	if ((rc = loop_init(s->admin)) != 0) {
		snprintf(err, errlen, "loop init: %s", uv_strerror(rc));
		goto fail;
	}
	*out = s;
	return 0;
fail:
	gw_destroy(s);
	return rc < 0 ? rc : -FC_ECONFIG;
}

bus_inbox_t *gw_inbox(gw_server_t *s, unsigned i)
{
	return &s->loops[i]->inbox;
}

unsigned gw_loop_count(const gw_server_t *s)
{
	return s->nloops;
}

void gw_set_ready(gw_server_t *s, int ready)
{
	__atomic_store_n(&s->ready, ready, __ATOMIC_RELEASE);
}

int gw_start(gw_server_t *s)
{
	for (unsigned i = 0; i < s->nloops; i++) {
		gw_loop_t *lp = s->loops[i];
		int rc = loop_listen(lp);
		if (rc == 0)
			rc = uv_thread_create(&lp->thread, worker_main, lp);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static void on_signal(uv_signal_t *sig, int signum)
{
	gw_loop_t *admin = sig->data;
	gw_server_t *s = admin->srv;
	LOGI("shutdown_begin", "signal=%d", signum);
	s->stopping = 1;
	gw_set_ready(s, 0);
	for (unsigned i = 0; i < s->nloops; i++)
		uv_async_send(&s->loops[i]->stop_async);
	uv_signal_stop(&admin->sig_int);
	uv_signal_stop(&admin->sig_term);
	/* The admin loop itself winds down right away; workers finish on their
	 * own threads and are joined below. */
	loop_begin_stop(admin);
}

int gw_run_admin(gw_server_t *s)
{
	gw_loop_t *a = s->admin;
	if (loop_listen(a) != 0)
		return -FC_ECONFIG;
	uv_signal_init(&a->loop, &a->sig_int);
	uv_signal_init(&a->loop, &a->sig_term);
	a->sig_int.data = a->sig_term.data = a;
	uv_signal_start(&a->sig_int, on_signal, SIGINT);
	uv_signal_start(&a->sig_term, on_signal, SIGTERM);
	uv_timer_stop(&a->tick);
	uv_timer_start(&a->tick, on_idle_check, GW_TW_TICK_MS, GW_TW_TICK_MS);
	uv_run(&a->loop, UV_RUN_DEFAULT);
	for (unsigned i = 0; i < s->nloops; i++)
		uv_thread_join(&s->loops[i]->thread);
	LOGI("gateway_stopped", "loops=%u", s->nloops);
	return 0;
}

static void loop_free(gw_loop_t *lp)
{
	if (!lp)
		return;
	if (lp->fd_plain >= 0)
		close(lp->fd_plain);
	if (lp->fd_tls >= 0)
		close(lp->fd_tls);
	if (lp->fd_admin >= 0)
		close(lp->fd_admin);
	if (lp->loop.data) {
		uv_walk(&lp->loop, close_all_handles, lp);
		uv_run(&lp->loop, UV_RUN_DEFAULT);
		uv_loop_close(&lp->loop);
	}
	while (lp->pool) {
		gw_conn_t *n = lp->pool->dirty_next;
		free(lp->pool);
		lp->pool = n;
	}
	free(lp->slots);
	free(lp->free_slots);
	free(lp);
}

void gw_destroy(gw_server_t *s)
{
	if (!s)
		return;
	for (unsigned i = 0; s->loops && i < s->nloops; i++)
		loop_free(s->loops[i]);
	free(s->loops);
	loop_free(s->admin);
	if (s->tls_ctx)
		SSL_CTX_free(s->tls_ctx);
	free(s);
}
