/*
 * wsc: a small blocking WebSocket client (RFC 6455) over TCP or TLS.
 *
 * The reference client talks to the gateway through one wsc_t: it connects
 * (name resolution, TCP, optionally TLS with certificate verification), runs
 * the opening handshake with a random Sec-WebSocket-Key and checks the
 * server's Sec-WebSocket-Accept, then sends masked frames (a fresh random
 * mask per frame) and receives whole messages. Received fragments are
 * reassembled up to a hard cap; pings are answered with pongs inside
 * wsc_recv(); a close frame from the server is echoed, which completes the
 * close handshake. wsc_close() runs the handshake from our side.
 *
 * I/O is blocking from the caller's point of view, but the socket itself is
 * non-blocking and every wait goes through poll(2) with a deadline, so every
 * call is bounded: wsc_recv() by its timeout, sends by the I/O timeout given
 * at connect time. A signal interrupts a wait in wsc_recv() (-EINTR) without
 * losing any state; sends retry after a signal, because a half-written frame
 * cannot be taken back.
 *
 * SIGPIPE: writes to a socket the peer has reset never raise SIGPIPE (plain
 * sockets use MSG_NOSIGNAL; TLS writes block the signal for the calling
 * thread and discard one it caused), so callers need not ignore it.
 *
 * The frame codec (wsc_frame_parse, wsc_frame_header, wsc_mask) is exposed
 * as pure functions for the unit tests and for anyone who needs to build or
 * read frames by hand.
 *
 * A wsc_t belongs to one thread at a time. Errors are negative codes (errno
 * values or FC_E*, see core/err.h); wsc_status_t carries a one-line human
 * description and, for a refused upgrade, the HTTP status and Retry-After.
 */
#ifndef FC_CLIENT_WSC_H
#define FC_CLIENT_WSC_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/slice.h"

#define WSC_MAX_HOST 253
#define WSC_MAX_PATH 1024
/* Largest response head accepted during the upgrade. */
#define WSC_MAX_HTTP_HEAD 8192
/* Default cap on a reassembled message (sum of its frames' payloads). */
#define WSC_DEFAULT_MAX_MESSAGE (1u << 20)
/* Default bound on connect + TLS + upgrade, and on each send. */
#define WSC_DEFAULT_TIMEOUT_MS 10000
/* Largest frame header a client writes: 2 + 8-byte length + 4-byte mask. */
#define WSC_MAX_HEADER 14

enum {
	WSC_OP_CONT = 0,
	WSC_OP_TEXT = 1,
	WSC_OP_BINARY = 2,
	WSC_OP_CLOSE = 8,
	WSC_OP_PING = 9,
	WSC_OP_PONG = 10
};

/* Close codes the client sends or reports. 1005 (no code in the close) and
 * 1006 (no close frame at all) are only ever reported, never sent. */
enum {
	WSC_CLOSE_NORMAL = 1000,
	WSC_CLOSE_GOING_AWAY = 1001,
	WSC_CLOSE_PROTOCOL = 1002,
	WSC_CLOSE_NO_STATUS = 1005,
	WSC_CLOSE_ABNORMAL = 1006,
	WSC_CLOSE_BAD_DATA = 1007,
	WSC_CLOSE_POLICY = 1008,
	WSC_CLOSE_TOO_BIG = 1009,
	WSC_CLOSE_TRY_AGAIN = 1013
};

/* ---- URLs ----------------------------------------------------------------- */

typedef struct wsc_url {
	int tls;                     /* 1 for wss:// */
	int ipv6;                    /* host is an IPv6 literal (bracketed in the URL) */
	uint16_t port;               /* explicit, or 80 / 443 */
	int port_explicit;           /* the URL named the port */
	char host[WSC_MAX_HOST + 1]; /* name or IP literal, without brackets */
	char path[WSC_MAX_PATH + 1]; /* request target: path and query, starts with '/' */
} wsc_url_t;

/*
 * Parses "ws://host[:port][/path][?query]" or the wss form. The scheme is
 * case-insensitive. host is a DNS name ([A-Za-z0-9.-_]), an IPv4 literal, or
 * an IPv6 literal in brackets. Rejected with -EINVAL: any other scheme,
 * userinfo ("user@"), a fragment ('#', RFC 6455 section 3), an empty host, a
 * port outside 1..65535, and spaces or control bytes anywhere. A host or path
 * over its cap is -ENAMETOOLONG. The path defaults to "/".
 */
int wsc_url_parse(const char *url, wsc_url_t *out) FC_WUR;

/* ---- frame codec ------------------------------------------------------------ */

typedef struct wsc_frame {
	int fin;
	uint8_t opcode;
	int masked;
	uint8_t mask[4]; /* valid when masked */
	uint64_t len;    /* payload length */
	size_t hdr_len;  /* bytes before the payload (2..14) */
} wsc_frame_t;

/*
 * Parses the header of one frame at p[0..n). Returns the header length (> 0)
 * once the whole header is present (the payload may still be incomplete: the
 * caller compares n with hdr_len + len), 0 when more bytes are needed, or
 * -FC_EMALFORMED when the header breaks RFC 6455: RSV bits set, a reserved
 * opcode, a fragmented control frame, a control payload over 125 bytes, a
 * length that does not use the minimal encoding, or a 64-bit length with the
 * top bit set. Masked frames are reported (masked = 1), not refused: whether
 * a mask is allowed depends on the direction, which the caller knows.
 */
int wsc_frame_parse(const uint8_t *p, size_t n, wsc_frame_t *f) FC_WUR;

/*
 * Writes a frame header with the minimal length encoding into out and
 * returns its length: 2, 4 or 10 bytes, plus 4 when mask is non-NULL (the
 * MASK bit is then set and the key follows the length). opcode is taken
 * modulo 16.
 */
size_t wsc_frame_header(uint8_t out[WSC_MAX_HEADER], uint8_t opcode, int fin, uint64_t len,
			const uint8_t mask[4]);

/* XORs p[0..n) with the mask key, as if p started at payload offset `off`
 * (so a payload can be masked in pieces). Masking twice restores the data. */
void wsc_mask(uint8_t *p, size_t n, const uint8_t key[4], uint64_t off);

/* Computes the Sec-WebSocket-Accept value for a key: base64 of the SHA-1 of
 * key || the RFC 6455 GUID, 28 characters plus NUL. Returns 0 or -EPROTO if
 * the digest is unavailable. */
int wsc_accept_value(const char *key, char out[29]) FC_WUR;

/* ---- connections --------------------------------------------------------- */

typedef struct wsc wsc_t;

typedef struct wsc_opts {
	int insecure;        /* wss: accept any certificate (development only) */
	const char *ca_file; /* wss: PEM file of trust anchors instead of the system store */
	int timeout_ms;      /* bound on connect + TLS + upgrade and on each send; 0: default */
	size_t max_message;  /* cap on a reassembled message; 0: WSC_DEFAULT_MAX_MESSAGE */
} wsc_opts_t;

/* Why a connection attempt failed, for people and for retry logic. */
typedef struct wsc_status {
	int http_status;   /* status of a refused upgrade (e.g. 503); 0 if none was read */
	int retry_after_s; /* Retry-After in seconds when the refusal carried one, else -1 */
	char msg[256];     /* one line, e.g. "Connection refused" */
} wsc_status_t;

/*
 * Connects to url and completes the opening handshake. opts may be NULL
 * (defaults, certificates verified). st may be NULL; when given it is always
 * filled. On success *out is a connection the caller releases with
 * wsc_free(). Errors:
 *   -EINVAL, -ENAMETOOLONG   bad URL
 *   -FC_ENOTFOUND            the host name does not resolve
 *   -ECONNREFUSED, -ETIMEDOUT, -ENETUNREACH, ... from the TCP connect
 *   -FC_EAUTH                the certificate did not verify (st->msg says why)
 *   -EPROTO                  TLS failed otherwise, or the handshake response
 *                            was not a valid 101 (st->http_status is set
 *                            when a status line was read)
 *   -FC_EUNAVAIL             the server answered 503 (st->retry_after_s)
 *   -EINTR                   a signal interrupted a wait
 *   -ENOMEM
 * Bytes the server sends right after its 101 response (the first frames)
 * are kept for wsc_recv().
 */
int wsc_connect(wsc_t **out, const char *url, const wsc_opts_t *opts, wsc_status_t *st) FC_WUR;

/*
 * Sends one complete message as a single masked frame (opcode WSC_OP_BINARY
 * or WSC_OP_TEXT; text must be UTF-8, which is the caller's duty). All bytes
 * are written before it returns. Errors: -EINVAL (other opcode), -ENOTCONN
 * (a close was sent or received, or the connection failed), -ETIMEDOUT, and
 * socket or TLS errors (-EPIPE, -ECONNRESET, -EPROTO); after a write error
 * the connection is unusable.
 */
int wsc_send(wsc_t *w, int opcode, const void *p, size_t n) FC_WUR;

/* Sends a ping with up to 125 bytes of payload (-FC_ETOOBIG above). */
int wsc_ping(wsc_t *w, slice_t payload) FC_WUR;

typedef struct wsc_msg {
	int opcode;   /* WSC_OP_BINARY or WSC_OP_TEXT */
	slice_t data; /* valid until the next wsc_recv(), wsc_close() or wsc_free() */
} wsc_msg_t;

/*
 * Waits up to timeout_ms (negative: without limit; 0: only what is already
 * buffered or readable now) for one complete data message. Pings received
 * meanwhile are answered, pongs ignored. Returns 1 with *m filled, 0 when
 * the time ran out (a partial frame stays buffered), or:
 *   -ENOTCONN     the server closed (close frame echoed; see wsc_close_code())
 *                 or the connection was already closed or failed
 *   -ECONNRESET   the stream ended without a close frame (code 1006)
 *   -EPROTO       the server broke RFC 6455 (we closed with 1002)
 *   -FC_ETOOBIG   a message over the cap (we closed with 1009)
 *   -FC_EUTF8     invalid UTF-8 in a text message or close reason (1007)
 *   -EINTR        a signal interrupted the wait; nothing was lost, call again
 *   other socket or TLS errors
 */
int wsc_recv(wsc_t *w, int timeout_ms, wsc_msg_t *m) FC_WUR;

/*
 * Runs the close handshake: sends a close frame with code (1000..4999 except
 * 1005, 1006, 1015; 0 sends an empty close) and a reason (UTF-8, at most 123
 * bytes, may be NULL) unless one was already sent, then reads and discards
 * until the server's close arrives, the stream ends, or timeout_ms passes.
 * Safe on a connection that already failed. Returns 0, or -EINVAL for a bad
 * code or reason (nothing sent then). The caller still calls wsc_free().
 */
int wsc_close(wsc_t *w, uint16_t code, const char *reason, int timeout_ms) FC_WUR;

/* Releases the connection and closes the socket (without a close handshake
 * if none was run). NULL is accepted. */
void wsc_free(wsc_t *w);

/* The close code the server sent: 1005 for a close without a code, 1006 when
 * the connection ended without one, 0 while the connection is open. */
uint16_t wsc_close_code(const wsc_t *w);

/* The reason text of the server's close frame (empty if none); NUL-terminated. */
const char *wsc_close_reason(const wsc_t *w);

/* The parsed URL of the connection. */
const wsc_url_t *wsc_url(const wsc_t *w);

#endif
