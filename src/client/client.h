/*
 * client: the fourc reference client library (fcc_*). It implements the
 * client side of docs/protocol.md on top of wsc (WebSocket) and e2e (Signal
 * sessions), and keeps one device's state in a profile directory:
 *
 *   DIR/            created 0700
 *   DIR/identity    account, device, Ed25519 auth secret key, server URL and
 *                   connection options; mode 0600 (text, see docs/client.md)
 *   DIR/e2e/        the end-to-end state (e2e_open)
 *   DIR/cursor      the last contiguous mailbox seq processed, in decimal
 *
 * The model is blocking and single-threaded: every call runs on the
 * caller's thread, waits on the socket with a bounded timeout, and returns.
 * Requests and responses are matched by request id; server pushes (DELIVER,
 * RESYNC, PREKEYS_LOW, GOAWAY) that arrive while a call waits for its answer
 * are queued (DELIVER, RESYNC) or noted (PREKEYS_LOW, GOAWAY) and handled by
 * the next fcc_poll() or fcc_sync(), never lost.
 *
 * Delivery: incoming messages are de-duplicated by seq, decrypted, decoded
 * (inner format below) and handed to the message handler in seq order. The
 * cursor advances only over contiguous seqs; out-of-order live messages wait
 * until SYNC fills the gap. The cursor is written to DIR/cursor and then
 * acknowledged with a cumulative ACK (request id 0, no answer), at most once
 * per second while messages keep coming and at once when they stop, so a
 * crash in between only causes a redelivery, which the e2e layer recognises
 * as a duplicate.
 *
 * Sending: fcc_send_text() addresses every device of the recipient and every
 * other device of the sender, building Signal sessions from fetched bundles
 * where needed; it follows STALE_DEVICES (refresh, adjust sessions,
 * re-encrypt, resend with the same client_msg_id), retries RATE_LIMITED and
 * UNAVAILABLE after retry_after_ms with the same bytes, and after a lost
 * connection reconnects and resends the same bytes (the server's idempotency
 * turns a duplicate into the original ACCEPTED).
 *
 * Inner plaintext (what e2e encrypts), version 1:
 *   u8 version = 1 | u8 kind (1 = text) | u64 peer account, big-endian | UTF-8 text
 * The peer is the conversation partner from the receiving device's point of
 * view: the sender's account in envelopes for the recipient's devices, the
 * recipient's account in the copies for the sender's own other devices.
 *
 * Errors are negative codes (core/err.h); fcc_errmsg() returns a one-line
 * description of the last failure, fit for "fourc: <msg>".
 */
#ifndef FC_CLIENT_CLIENT_H
#define FC_CLIENT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/slice.h"

#define FCC_INNER_VERSION 1
#define FCC_INNER_TEXT 1
#define FCC_INNER_HDR_LEN 10
/* Largest text fcc_send_text() accepts: one message must fit every
 * envelope into one SEND frame, and each envelope into WIRE_MAX_CIPHERTEXT. */
#define FCC_MAX_TEXT 16384
/* One-time prekeys made at registration and on each PREKEYS_LOW. */
#define FCC_PREKEY_BATCH 100
#define FCC_MAX_DEVICES 32
#define FCC_MAX_USERNAME 32
#define FCC_MAX_URL 1100
#define FCC_LINK_CODE_MAX 64
/* Path used when a server URL names no path ("ws://127.0.0.1:8080"). */
#define FCC_DEFAULT_PATH "/v1/ws"
/* Reconnect backoff with full jitter: uniform in [0, min(cap, base * 2^n)).
 * The short cap makes recovery after an outage quick and the arrivals at the
 * returning server nearly uniform (every client soon draws from the same
 * window); the server's admission control (503 + Retry-After slots) shapes
 * what it accepts. Measured by tests/integration/test_storm.py (C17). */
#define FCC_BACKOFF_BASE_MS 500
#define FCC_BACKOFF_CAP_MS 5000

typedef struct fcc fcc_t;

/* ---- inner plaintext format ------------------------------------------------- */

typedef struct fcc_inner {
	uint8_t version, kind;
	uint64_t peer;
	slice_t text; /* view into the decoded buffer */
} fcc_inner_t;

/*
 * Encodes version 1 of the inner format into a malloc'd buffer the caller
 * frees. Refuses kind != FCC_INNER_TEXT (-FC_ETYPE), text that is not UTF-8
 * (-FC_EUTF8) or longer than FCC_MAX_TEXT (-FC_ETOOBIG); -ENOMEM.
 */
int fcc_inner_encode(uint8_t kind, uint64_t peer, slice_t text, uint8_t **out, size_t *len) FC_WUR;

/*
 * Decodes a decrypted plaintext. Returns 0 with *m viewing pt, or
 * -FC_ETRUNC (shorter than the 10-byte header), -FC_EVERSION (version other
 * than 1), -FC_ETYPE (unknown kind), -FC_EUTF8 (text not UTF-8),
 * -FC_ETOOBIG (text over FCC_MAX_TEXT). Pure; any thread.
 */
int fcc_inner_decode(slice_t pt, fcc_inner_t *m) FC_WUR;

/* ---- handlers ------------------------------------------------------------------- */

typedef struct fcc_message {
	uint64_t seq;
	uint64_t sender_account;
	uint32_t sender_device;
	uint64_t timestamp_ms; /* server time of acceptance */
	uint64_t peer;         /* conversation partner (see the inner format) */
	int outgoing;          /* 1: a copy of a message one of our own devices sent to peer */
	int via_sync;          /* 1: arrived in answer to SYNC, 0: pushed live */
	int status;            /* 0, or why it could not be decrypted or decoded */
	slice_t text;          /* UTF-8; valid during the call only; empty when status < 0 */
} fcc_message_t;

typedef struct fcc_handlers {
	/* One call per mailbox entry, in seq order. The handler may call fcc_*
	 * functions that make requests (fcc_account_name, fcc_send_text) but
	 * not fcc_poll or fcc_sync. */
	void (*on_message)(void *arg, const fcc_message_t *m);
	/* The server reported seqs from..to (inclusive) as expired before
	 * this device fetched them (RESYNC), or a sync ended with them missing. */
	void (*on_lost)(void *arg, uint64_t from, uint64_t to);
} fcc_handlers_t;

typedef struct fcc_conn_opts {
	int insecure;        /* wss: skip certificate verification */
	const char *ca_file; /* wss: trust anchors (PEM) instead of the system store */
	int timeout_ms;      /* connect and per-request timeout; 0: 30000 */
} fcc_conn_opts_t;

typedef struct fcc_account {
	uint64_t account;
	char username[FCC_MAX_USERNAME + 1]; /* empty when the account has none */
	uint16_t n_devices;
	uint32_t devices[FCC_MAX_DEVICES];
} fcc_account_t;

typedef struct fcc_sent {
	uint64_t client_msg_id;
	uint64_t timestamp_ms;
	unsigned n_envelopes;  /* devices addressed in the accepted SEND */
	unsigned stale_rounds; /* STALE_DEVICES answers followed */
	unsigned retries;      /* resends after ERROR or a lost connection */
} fcc_sent_t;

typedef struct fcc_stats {
	uint64_t delivered;  /* handed to on_message with status 0 */
	uint64_t failed;     /* handed to on_message with status < 0 */
	uint64_t duplicates; /* dropped by seq or as already decrypted */
	uint64_t lost;       /* seqs reported through on_lost */
	uint64_t reconnects; /* successful fcc_reconnect() */
	uint64_t prekey_uploads;
} fcc_stats_t;

/* ---- lifetime ------------------------------------------------------------------- */

/*
 * Opens (creating when missing, with parents, mode 0700) the profile
 * directory dir, its e2e state and, when present, its identity and cursor.
 * *out is released with fcc_close(). Errors: -EINVAL, -ENAMETOOLONG,
 * -FC_EMALFORMED (an unreadable identity or cursor file), e2e_open errors,
 * -ENOMEM, negated errno.
 */
int fcc_open(fcc_t **out, const char *dir) FC_WUR;

/* Disconnects (close handshake, after writing and acking the cursor) and
 * frees everything. NULL is accepted. */
void fcc_close(fcc_t *c);

/* The last failure in one line (never NULL; empty when nothing failed). */
const char *fcc_errmsg(const fcc_t *c);

void fcc_set_handlers(fcc_t *c, const fcc_handlers_t *h, void *arg);

/* 1 when the profile holds an identity (registered or linked). */
int fcc_has_identity(const fcc_t *c);
uint64_t fcc_account_id(const fcc_t *c);
uint32_t fcc_device_id(const fcc_t *c);
/* The server URL of the identity, or of the current connection. */
const char *fcc_server(const fcc_t *c);
/* The username this profile last set or saw for itself ("" if none). */
const char *fcc_username(const fcc_t *c);
/* The connection options saved in the identity (insecure, CA file). */
void fcc_saved_opts(const fcc_t *c, fcc_conn_opts_t *o);
uint64_t fcc_cursor(const fcc_t *c);
void fcc_stats(const fcc_t *c, fcc_stats_t *out);

/* ---- connection ------------------------------------------------------------------ */

/*
 * Connects and waits for the server's CHALLENGE. url NULL means the
 * identity's server; opts NULL means the identity's saved options. An
 * upgrade refused with 503 is retried up to 3 times after its Retry-After
 * (plus jitter) when that is at most 30 s. Errors:
 * wsc_connect() errors (fcc_errmsg: "cannot connect to URL: why"), -EPROTO
 * (no valid CHALLENGE, or no common protocol version), -ETIMEDOUT, -EINVAL
 * (no URL known).
 */
int fcc_connect(fcc_t *c, const char *url, const fcc_conn_opts_t *opts) FC_WUR;

/* 1 while a connection is open. */
int fcc_connected(const fcc_t *c);

/* Writes and acks the cursor, runs the close handshake (1000) and drops the
 * connection. Safe when not connected. */
void fcc_disconnect(fcc_t *c);

/*
 * Authenticates the profile's device (AUTH). Afterwards the server pushes
 * live messages; call fcc_sync() to fetch the backlog. Errors: -FC_EAUTH
 * (unknown device or bad signature: the device was removed), -ENOENT (no
 * identity), -ENOTCONN, request errors (see below).
 */
int fcc_auth(fcc_t *c) FC_WUR;

/*
 * Closes any connection, waits a backoff delay and connects, authenticates
 * and syncs, repeating until it succeeds, a fatal error occurs (-FC_EAUTH,
 * -ENOENT, -EINVAL, -FC_ECONFIG) or max_wait_ms (negative: no limit) has
 * passed (-ETIMEDOUT). The delay is uniform in [0, min(5 s, 500 ms * 2^n))
 * for the n-th consecutive attempt (n restarts at 0 once a connection has
 * stayed authenticated for 60 s), plus whatever the server asked for
 * (GOAWAY reconnect_after_ms, Retry-After of a 503, at least 1 s after a
 * close with 1013, 2 s after 1008: the device was removed, which the next
 * AUTH reveals as -FC_EAUTH, or it connected elsewhere and the newer
 * connection won). -EINTR when a signal interrupts a wait.
 */
int fcc_reconnect(fcc_t *c, int max_wait_ms) FC_WUR;

/* ---- accounts and devices --------------------------------------------------------- */

/*
 * Registers a new account with this profile as its device 1 (REGISTER):
 * generates the Ed25519 auth key pair and FCC_PREKEY_BATCH one-time
 * prekeys, and on REGISTERED saves the identity (server URL and connection
 * options of the current connection). username may be NULL; otherwise it is
 * set right after (see fcc_set_username; the account exists even when that
 * fails). Errors: -FC_EEXIST (the profile already has an identity),
 * -ENOTCONN, -EACCES (invite refused), request errors.
 */
int fcc_register(fcc_t *c, const char *invite, const char *username) FC_WUR;

/* Asks the server for a link code (LINK_BEGIN) on an authenticated device.
 * code receives up to FCC_LINK_CODE_MAX bytes plus NUL; expires_s may be
 * NULL. */
int fcc_link_code(fcc_t *c, char code[FCC_LINK_CODE_MAX + 1], uint32_t *expires_s) FC_WUR;

/* Adds this (empty) profile as a new device of the account that made code
 * (LINK_DEVICE). Saves the identity like fcc_register(). Errors: -FC_EEXIST,
 * -FC_EAUTH (code unknown, used or expired), -FC_ELIMIT (too many devices),
 * request errors. */
int fcc_link(fcc_t *c, const char *code) FC_WUR;

/* Sets (or with NULL/"" clears) the account's username. -EINVAL for a name
 * outside [a-z0-9_.]{3,32}, -FC_EEXIST when taken. */
int fcc_set_username(fcc_t *c, const char *username) FC_WUR;

/* Looks up a username (RESOLVE). -FC_ENOTFOUND when nobody has it. */
int fcc_resolve(fcc_t *c, const char *username, fcc_account_t *out) FC_WUR;

/* Lists an account's devices and username (DEVICES_GET). */
int fcc_devices(fcc_t *c, uint64_t account, fcc_account_t *out) FC_WUR;

/* Removes one of the account's devices (DEVICE_REMOVE). Removing the
 * current device ends this profile's access: the server closes the
 * connection. */
int fcc_unlink(fcc_t *c, uint32_t device) FC_WUR;

/* Writes a display name for account into buf: its username when it has one
 * (cached, else asked with DEVICES_GET while connected), else the decimal
 * id. Never fails; returns buf. */
const char *fcc_account_name(fcc_t *c, uint64_t account, char *buf, size_t cap);

/* ---- messaging ---------------------------------------------------------------------- */

/*
 * Sends a text message to an account (see "Sending" above) and returns after
 * ACCEPTED. to may be the profile's own account (a note to its other
 * devices). Errors: -FC_ETOOBIG, -FC_EUTF8, -FC_ENOTFOUND (no such account,
 * or no device to address), -FC_EAUTH (a peer's identity key changed),
 * -FC_ESTALE (the device lists kept changing), -FC_EUNAVAIL (still refused
 * after the retries), -FC_ECONFLICT, connection errors when reconnecting
 * failed, request errors.
 */
int fcc_send_text(fcc_t *c, uint64_t to, const char *text, size_t len, fcc_sent_t *out) FC_WUR;

/*
 * Fetches the backlog: SYNC from the cursor until SYNC_DONE says there is
 * no more, delivering every message through the handler. Returns the number
 * of messages delivered, or a negative code.
 */
int fcc_sync(fcc_t *c) FC_WUR;

/*
 * Handles what is queued, then waits up to timeout_ms for more pushes and
 * handles them: messages through the handler, PREKEYS_LOW by uploading
 * FCC_PREKEY_BATCH new one-time prekeys, RESYNC through on_lost, a gap by
 * syncing. Returns as soon as at least one message was delivered (the
 * count), 0 when the time ran out, or a negative code; -ENOTCONN and
 * -ETIMEDOUT mean the connection is gone (call fcc_reconnect()), -EINTR
 * that a signal interrupted the wait (nothing is lost), -EBUSY that it was
 * called from inside a handler.
 */
int fcc_poll(fcc_t *c, int timeout_ms) FC_WUR;

/* Writes the cursor to DIR/cursor and acknowledges it if it moved since the
 * last ACK. fcc_poll and fcc_sync do this after every batch. */
int fcc_ack(fcc_t *c) FC_WUR;

/* Generates n one-time prekeys and uploads them (KEYS_UPLOAD); *remaining
 * (may be NULL) receives the server's count afterwards. */
int fcc_upload_prekeys(fcc_t *c, unsigned n, uint32_t *remaining) FC_WUR;

#endif
