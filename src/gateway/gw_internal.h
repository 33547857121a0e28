/*
 * Internal types shared by the gateway's files (gateway.c: server, loops,
 * timers, bus; conn.c: one connection's I/O, HTTP and WebSocket handling).
 * Not part of any public interface.
 */
#ifndef FC_GATEWAY_GW_INTERNAL_H
#define FC_GATEWAY_GW_INTERNAL_H

#include <openssl/ssl.h>
#include <stdint.h>
#include <uv.h>

#include "bus/bus.h"
#include "core/config.h"
#include "gateway/gateway.h"
#include "net/http.h"
#include "net/tls.h"
#include "net/ws.h"

#define GW_RBUF 65536
#define GW_MAX_LOOPS 64 /* as [server] loops allows */
#define GW_TW_SLOTS 512
#define GW_TW_TICK_MS 100
#define GW_SLOT_BITS 24
#define GW_LINGER_MS 2000
#define GW_CONN_POOL 1024 /* closed connection structs kept for reuse per loop */

typedef struct gw_loop gw_loop_t;
typedef struct gw_conn gw_conn_t;

/* One queued chunk of output bytes (a WebSocket frame or HTTP response). */
typedef struct gw_chunk {
	struct gw_chunk *next;
	uint32_t len;
	uint8_t data[];
} gw_chunk_t;

typedef struct gw_write {
	uv_write_t req;
	gw_conn_t *conn;
	gw_chunk_t *chunks; /* owned until the write completes */
	uint32_t bytes;
} gw_write_t;

enum gw_state { ST_HTTP_HEAD = 0, ST_HTTP_BODY, ST_WS, ST_DRAIN };

enum gw_flag {
	CF_TLS = 1 << 0,
	CF_ADMIN = 1 << 1,
	CF_AUTHED = 1 << 2,
	CF_CLOSE_AFTER_FLUSH = 1 << 3,
	CF_WRITING = 1 << 4,
	CF_DIRTY = 1 << 5,
	CF_CLOSING = 1 << 6, /* uv_close called */
	CF_PING_SENT = 1 << 7,
	CF_AUTH_PENDING = 1 << 8,
	CF_SENT_CLOSE = 1 << 9,
};

enum gw_deadline { DL_NONE = 0, DL_HEADER, DL_AUTH, DL_PING, DL_LINGER };

enum gw_route { R_NONE = 0, R_PING, R_NOT_FOUND, R_HEALTHZ, R_READYZ, R_METRICS };

struct gw_conn {
	uv_tcp_t tcp; /* tcp.data == this */
	gw_loop_t *lp;
	uint64_t id;
	uint16_t flags;
	uint8_t state;
	uint8_t dl_kind;
	uint8_t due_kind;
	uint8_t route;
	uint8_t keep_alive;
	uint16_t inflight;
	uint32_t preauth_acct; /* bytes counted in lp->preauth_bytes */
	ws_rx_t rx;
	tls_conn_t tls;
	/* unfinished input */
	uint8_t *tail;
	uint32_t tail_len, tail_cap;
	/* WebSocket message reassembly */
	uint8_t *msg;
	uint32_t msg_len;
	/* HTTP body */
	http_chunked_t chunked;
	uint64_t body_left;
	uint64_t body_seen;
	/* output */
	gw_chunk_t *out_head, *out_tail;
	uint32_t out_bytes; /* queued + in flight */
	gw_conn_t *dirty_next;
	/* identity */
	uint64_t account;
	uint32_t device;
	uint8_t nonce[32];
	/* timer wheel */
	gw_conn_t *tw_next, *tw_prev;
	uint64_t deadline_ms;
	uint64_t last_rx_ms;
	uint64_t accept_ms;
};

struct gw_loop {
	gw_server_t *srv;
	uint16_t idx;
	int is_admin;
	uv_loop_t loop;
	uv_thread_t thread;
	int fd_plain, fd_tls, fd_admin; /* pre-bound sockets, -1 if none */
	uv_tcp_t l_plain, l_tls, l_admin;
	bus_inbox_t inbox;
	uv_async_t stop_async;
	uv_timer_t tick;
	uv_prepare_t flush;
	uv_signal_t sig_int, sig_term;
	/* connections: slot table with generations */
	gw_conn_t **slots;
	uint32_t nslots, slots_cap;
	uint32_t *free_slots;
	uint32_t nfree;
	uint32_t gen;
	uint32_t nconns;
	gw_conn_t *dirty;
	gw_conn_t *pool; /* free list of connection structs, linked by dirty_next */
	uint32_t npool;
	/* timer wheel */
	gw_conn_t *wheel[GW_TW_SLOTS];
	uint64_t wheel_tick; /* last processed tick */
	/* admission */
	double tokens;
	uint64_t tokens_ms;
	uint64_t next_slot_ms;  /* virtual queue of refused upgrades */
	uint64_t preauth_bytes; /* input buffered by unauthenticated connections */
	int stopping;
	uint64_t stop_deadline_ms;
	uint8_t rbuf[GW_RBUF];
	uint8_t pbuf[GW_RBUF]; /* TLS plaintext */
};

struct gw_server {
	fc_config_t cfg;
	bus_inbox_t *router;
	SSL_CTX *tls_ctx;
	gw_loop_t **loops;
	unsigned nloops;
	gw_loop_t *admin;
	int ready;
	volatile int stopping;
	ws_limits_t ws_lim;
};

/* gateway.c */
uint64_t gw_now_ms(gw_loop_t *lp);
void gw_deadline_set(gw_conn_t *c, int kind, uint64_t at_ms);
void gw_deadline_clear(gw_conn_t *c);
void gw_slot_release(gw_loop_t *lp, gw_conn_t *c);
int gw_slot_take(gw_loop_t *lp, gw_conn_t *c);
gw_conn_t *gw_conn_lookup(gw_loop_t *lp, uint64_t id);
gw_conn_t *gw_conn_alloc(gw_loop_t *lp);
void gw_conn_release(gw_loop_t *lp, gw_conn_t *c);
int gw_admit_upgrade(gw_loop_t *lp, uint32_t *retry_after_s);

/* conn.c */
void gw_on_connection(uv_stream_t *server, int status);
void gw_conn_on_deadline(gw_conn_t *c, int kind, uint64_t now);
void gw_conn_flush(gw_conn_t *c);
void gw_conn_send_frame(gw_conn_t *c, const uint8_t *frame, size_t len);
void gw_conn_send_error(gw_conn_t *c, uint32_t req_id, uint16_t code, uint32_t retry_ms,
			const char *detail);
void gw_conn_close_ws(gw_conn_t *c, uint16_t code, const char *reason);
void gw_conn_close_now(gw_conn_t *c);
void gw_conn_goaway(gw_conn_t *c);
/* Re-counts c's buffered input against its loop's pre-authentication budget;
 * returns 1 when that budget is exceeded. */
int gw_conn_preauth_account(gw_conn_t *c);

#endif
