/*
 * client_int: the state behind fcc_t, shared by the client modules
 * (client.c: connection, requests, accounts; client_msg.c: sending and
 * delivery; client_profile.c: files of the profile directory;
 * client_inner.c: the inner plaintext format). Not for callers of client.h.
 */
#ifndef FC_CLIENT_CLIENT_INT_H
#define FC_CLIENT_CLIENT_INT_H

#include <limits.h>
#include <stdint.h>

#include "client/client.h"
#include "client/e2e.h"
#include "client/wsc.h"
#include "proto/wire.h"

/* Caps on what waits between receive and processing. Past them a DELIVER is
 * dropped and a SYNC scheduled: the mailbox still has it (nothing is acked
 * before it is processed), so dropping here loses nothing. */
#define FCC_QUEUE_MAX_ITEMS 4096
#define FCC_QUEUE_MAX_BYTES (64u << 20)
#define FCC_PENDING_MAX 1024
/* Accounts whose device lists and usernames are remembered. */
#define FCC_DEVCACHE 64
/* Resends of one request after RATE_LIMITED / UNAVAILABLE. */
#define FCC_MAX_RETRIES 6
/* Reconnects inside one fcc_send_text() after the connection was lost. */
#define FCC_SEND_RECONNECTS 5
/* STALE_DEVICES rounds one send follows before giving up. */
#define FCC_MAX_STALE_ROUNDS 5
/* Connection attempts refused with 503 that one connect waits out. */
#define FCC_CONNECT_BUSY_RETRIES 3
#define FCC_SYNC_LIMIT 200
/* Request timeout (docs/protocol.md section 13: failed after 30 s). */
#define FCC_DEFAULT_TIMEOUT_MS 30000
/* The backoff counter resets once a connection stayed authenticated this long. */
#define FCC_STABLE_MS 60000
/* Cumulative ACKs go out at most this often while messages keep coming. */
#define FCC_ACK_INTERVAL_MS 1000
/* The client pings after this much silence on its side (mobile NATs). */
#define FCC_PING_IDLE_MS 25000
/* RESYNC ranges that start above the cursor, kept until it gets there. */
#define FCC_LOST_RANGES 16

typedef struct fcc_qitem {
	struct fcc_qitem *next;
	size_t len;
	uint8_t data[]; /* one complete server frame */
} fcc_qitem_t;

/* A DELIVER that arrived ahead of the cursor, waiting for the gap to fill. */
typedef struct fcc_pend {
	uint64_t seq, sender_account, timestamp_ms;
	uint32_t sender_device;
	int via_sync;
	size_t len;
	uint8_t *ct;
} fcc_pend_t;

typedef struct fcc_devs {
	uint64_t account;
	uint64_t used; /* LRU tick; 0 = free slot */
	int have_devices;
	uint16_t n;
	uint32_t dev[FCC_MAX_DEVICES];
	int have_name;
	char username[FCC_MAX_USERNAME + 1];
} fcc_devs_t;

struct fcc {
	char dir[PATH_MAX];
	e2e_t *e2e;

	/* identity (DIR/identity) */
	int has_id;
	uint64_t account;
	uint32_t device;
	uint8_t auth_pk[32], auth_sk[64];
	char server[FCC_MAX_URL + 1];
	int id_insecure;
	char id_ca[PATH_MAX];
	char username[FCC_MAX_USERNAME + 1];

	/* connection */
	wsc_t *ws;
	char url[FCC_MAX_URL + 1];
	int insecure;
	char ca_file[PATH_MAX];
	int timeout_ms;
	int authed;
	uint8_t nonce[WIRE_KEY_LEN];
	uint32_t next_req;
	wire_buf_t out;
	uint16_t last_close; /* close code of the last lost connection */
	uint32_t hint_ms;    /* the server's requested delay before reconnecting */
	unsigned attempt;    /* consecutive failed connection attempts */
	int64_t authed_ms;   /* when the current/last connection authenticated */
	int64_t tx_ms;       /* when we last sent anything */
	int64_t ack_ms;      /* when we last sent an ACK */

	/* pushes waiting to be handled */
	fcc_qitem_t *qhead, *qtail;
	size_t qn, qbytes;
	int prekeys_low;

	/* delivery */
	uint64_t cursor, acked, saved_cursor;
	fcc_pend_t *pend; /* sorted by seq, all > cursor + 1 */
	size_t npend;
	struct {
		uint64_t from, to;
	} lost[FCC_LOST_RANGES]; /* sorted by from, all from > cursor + 1 */
	size_t nlost;
	int need_sync, dispatching, syncing;
	uint64_t dropped; /* DELIVERs dropped at a cap (a SYNC brings them back) */
	fcc_handlers_t h;
	void *harg;

	fcc_devs_t devs[FCC_DEVCACHE];
	uint64_t tick;
	fcc_stats_t stats;
	char err[512];
};

/* client.c */
void fcc_err_set(fcc_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int64_t fcc_now_ms(void);
/* Sleeps ms milliseconds; -EINTR if a signal cut it short. */
int fcc_sleep_ms(uint32_t ms);
/* Uniform random in [0, n) (0 when n is 0). */
uint32_t fcc_rand_below(uint32_t n);
/* Sends the frame in b (its req id patched to a fresh one) and waits for the
 * answer, retrying RATE_LIMITED / UNAVAILABLE; a server ERROR becomes a
 * negative code with fcc_errmsg set. On success *resp views the receive
 * buffer until the next receive. `what` names the request in messages. */
int fcc_request(fcc_t *c, wire_buf_t *b, wire_msg_t *resp, const char *what) FC_WUR;
/* Like fcc_request but one attempt, and an ERROR answer is returned as the
 * answer (0) rather than mapped. The body bytes go out unchanged; only the
 * header's req id is replaced. For SEND, whose caller owns the retry policy.
 * A timeout drops the connection. */
int fcc_request_once(fcc_t *c, wire_buf_t *b, wire_msg_t *resp, const char *what) FC_WUR;
/* The delay before resending after RATE_LIMITED / UNAVAILABLE: the server's
 * retry_after_ms plus up to 10% jitter, or full-jitter backoff without one. */
uint32_t fcc_retry_delay_ms(uint32_t retry_after_ms, unsigned attempt);
/* Waits ms while still reading (pings answered, pushes queued). */
int fcc_idle_wait(fcc_t *c, uint32_t ms) FC_WUR;
int fcc_server_error(fcc_t *c, const wire_error_t *e, const char *what);
/* Reads one frame and files it (queue, flags). Returns 1 if it was the
 * answer to want_req (then *resp is set), 0 for anything else, -ETIMEDOUT
 * when nothing arrived before deadline, or a connection error. */
int fcc_recv_one(fcc_t *c, int64_t deadline, uint32_t want_req, wire_msg_t *resp) FC_WUR;
/* Drops the connection after an error (no close handshake). */
void fcc_conn_lost(fcc_t *c, int rc);
fcc_devs_t *fcc_devs_get(fcc_t *c, uint64_t account, int create);
void fcc_devs_set(fcc_t *c, uint64_t account, const uint32_t *dev, uint16_t n);
void fcc_devs_from_info(fcc_t *c, const wire_account_info_t *ai);
void fcc_devs_forget(fcc_t *c, uint64_t account);

/* client_msg.c */
/* Queues a copy of a DELIVER or RESYNC frame (bounded; see the caps). */
void fcc_queue_push(fcc_t *c, slice_t frame, uint8_t type);
/* Handles queued pushes: messages, RESYNC. Returns messages delivered. */
int fcc_dispatch(fcc_t *c);
void fcc_queue_clear(fcc_t *c);
void fcc_pending_clear(fcc_t *c);

/* client_profile.c */
int fcc_mkdirs(const char *dir) FC_WUR;
int fcc_identity_load(fcc_t *c) FC_WUR;
int fcc_identity_save(fcc_t *c) FC_WUR;
int fcc_cursor_load(fcc_t *c) FC_WUR;
int fcc_cursor_save(fcc_t *c) FC_WUR;

#endif
