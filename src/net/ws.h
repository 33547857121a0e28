/*
 * ws: the server side of the RFC 6455 WebSocket wire protocol, as pure
 * codecs: a frame decoder that unmasks in place, writers for server frame
 * headers and control frames, and the opening-handshake check.
 *
 * Nothing here does I/O or allocates. The receive side keeps a few bytes of
 * per-connection state (ws_rx_t) and works on whatever the connection has
 * buffered: it consumes one complete frame at a time, or asks for more bytes,
 * or tells the caller to fail the connection and with which close code.
 * Limits are checked from the frame header alone, so a peer that declares a
 * huge frame or a message that would grow past the cap is refused before a
 * single payload byte is buffered (RFC 6455 section 10.4).
 *
 * Decisions where the RFC leaves room:
 *  - No extension is ever negotiated, so any frame with RSV1, RSV2 or RSV3
 *    set fails with 1002. In particular permessage-deflate (RFC 7692) frames
 *    are refused: the handshake never accepts Sec-WebSocket-Extensions, and a
 *    peer that compresses anyway is failed at the first header byte, before
 *    anything is inflated.
 *  - The payload length must use the minimal encoding (section 5.2 says it
 *    MUST): the 16-bit form for a length below 126 and the 64-bit form for a
 *    length below 65536 fail with 1002, as does a 64-bit length with its most
 *    significant bit set.
 *  - Client frames must be masked; there is no switch to allow unmasked ones.
 *  - Data frames are reported as they arrive (zero copy). A text message is
 *    validated across fragments as each frame arrives and fails with 1007 at
 *    the first frame that makes it invalid UTF-8; a message is only known to
 *    be good when its FIN frame has been returned, so callers reassemble and
 *    act on the message only then.
 *
 * All functions may be called from any thread on data that thread owns.
 */
#ifndef FC_NET_WS_H
#define FC_NET_WS_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/slice.h"

struct http_req;

#define WS_MAX_CONTROL_PAYLOAD 125
/* Largest reason text in a close frame: 125 minus the 2-byte code. */
#define WS_MAX_CLOSE_REASON 123
/* Largest frame header a client may send: 2 + 8-byte length + mask key. */
#define WS_MAX_CLIENT_HEADER 14

enum {
	WS_OP_CONT = 0,
	WS_OP_TEXT = 1,
	WS_OP_BINARY = 2,
	WS_OP_CLOSE = 8,
	WS_OP_PING = 9,
	WS_OP_PONG = 10
};

enum {
	WS_CLOSE_NORMAL = 1000,
	WS_CLOSE_GOING_AWAY = 1001,
	WS_CLOSE_PROTOCOL = 1002,
	WS_CLOSE_UNSUPPORTED = 1003,
	WS_CLOSE_NO_STATUS = 1005,
	WS_CLOSE_BAD_DATA = 1007,
	WS_CLOSE_POLICY = 1008,
	WS_CLOSE_TOO_BIG = 1009,
	WS_CLOSE_INTERNAL = 1011,
	WS_CLOSE_TRY_AGAIN = 1013
};

/* Hard caps on received payload sizes, in bytes. They are literal: 0 allows
 * only empty frames. max_frame applies to every frame, control frames
 * included; max_message to the sum of the frames of one data message. */
typedef struct ws_limits {
	uint64_t max_frame;
	uint64_t max_message;
} ws_limits_t;

/* Per-connection receive state; all-zero is the valid initial state. */
typedef struct ws_rx {
	uint8_t frag_opcode; /* opcode of the data message in progress, 0 if none */
	uint32_t utf8_state; /* incremental UTF-8 state of a text message in progress */
	uint64_t msg_len;    /* payload bytes of the data message in progress so far */
} ws_rx_t;

enum { WS_EV_DATA = 1, WS_EV_PING, WS_EV_PONG, WS_EV_CLOSE };

typedef struct ws_event {
	int kind;
	uint8_t opcode; /* WS_EV_DATA: WS_OP_TEXT or WS_OP_BINARY (the message's opcode, also for continuation frames) */
	int fin;         /* WS_EV_DATA: 1 if this frame completes the message */
	slice_t payload; /* unmasked IN PLACE inside the caller's buffer (zero copy); for WS_EV_CLOSE the whole body, code included */
	uint16_t close_code;  /* WS_EV_CLOSE: received code, 1005 when the close had no body */
	slice_t close_reason; /* WS_EV_CLOSE: validated UTF-8 reason */
} ws_event_t;

/*
 * Consumes at most one complete frame from buf[0..len). Returns the bytes
 * consumed (> 0) and fills *ev; 0 when more bytes are needed (nothing in buf
 * or *rx is changed then); -1 when the connection must be failed, with
 * *fail_code set to the close code to send: 1002 for a protocol violation,
 * 1007 for invalid UTF-8 in a text message or close reason, 1009 for a frame
 * or message over the limits (or a frame too large to report in an int).
 * Protocol and size violations are detected from the header alone, as soon
 * as the bytes that show them have arrived: an unmasked frame fails at its
 * second byte, a 4 GiB declared length as soon as its 8-byte length field is
 * complete, before the mask key or any payload.
 *
 * Rejected with 1002: unmasked frames; RSV bits; opcodes 3-7 and 11-15;
 * control frames that are fragmented or carry more than 125 bytes; a
 * continuation with no message in progress; a new text or binary frame while
 * a fragmented message is in progress; a 64-bit length with the top bit set;
 * a non-minimal length encoding; a close body of 1 byte or with a code
 * ws_close_code_valid() refuses. Control frames between fragments are legal.
 *
 * The payload is unmasked in place, so ev->payload and ev->close_reason point
 * into buf and stay valid as long as the caller keeps those bytes. buf and
 * len are the caller's; bytes past len are never read. lim and fail_code must
 * not be NULL. After -1 the state in *rx is unspecified; the connection is
 * over.
 */
int ws_rx_frame(ws_rx_t *rx, const ws_limits_t *lim, uint8_t *buf, size_t len, ws_event_t *ev,
		uint16_t *fail_code) FC_WUR;

/* Writes an unmasked server frame header (2, 4 or 10 bytes, minimal length
 * encoding) into out[10]; returns its length. opcode is masked to 4 bits. */
size_t ws_frame_header(uint8_t out[10], uint8_t opcode, int fin, uint64_t payload_len);

/*
 * Builds a complete ping or pong frame into out[0..cap); returns its length.
 * Refuses payloads over 125 bytes with -FC_ETOOBIG (so an oversized ping is
 * never echoed as an oversized pong), other opcodes with -EINVAL, and a cap
 * below 2 + payload.len with -ENOBUFS (cap >= 127 always suffices).
 */
int ws_control_frame(uint8_t *out, size_t cap, uint8_t opcode, slice_t payload) FC_WUR;

/*
 * Builds a close frame into out[0..cap); returns its length. Code 0 means an
 * empty close body ("88 00", the reply to a close that had none) and then the
 * reason must be empty. Otherwise the code must pass ws_close_code_valid(),
 * which refuses the local-only values 1005, 1006 and 1015, and the reason
 * must be valid UTF-8 of at most 123 bytes; violations return -EINVAL. A cap
 * below the frame size returns -ENOBUFS (cap >= 127 always suffices).
 */
int ws_close_frame(uint8_t *out, size_t cap, uint16_t code, slice_t reason) FC_WUR;

/* 1 if a close code is allowed on the wire: 1000-1003, 1007-1014, 3000-4999. */
int ws_close_code_valid(uint16_t code);

/*
 * Validates the opening handshake of a request parsed by http_req_parse(),
 * in the order of RFC 6455 section 4.2.1. On success returns 0 and writes
 * the 28-character Sec-WebSocket-Accept value plus a NUL into accept.
 * Otherwise returns the HTTP status to answer and leaves accept empty:
 *   400 - method not GET; HTTP version below 1.1; Host missing, empty or
 *         repeated; Upgrade without the token "websocket"; Connection without
 *         the whole token "Upgrade" (case-insensitive, comma lists, repeated
 *         lines combine); Sec-WebSocket-Key missing, repeated, or not the
 *         canonical base64 form of exactly 16 bytes (24 characters ending in
 *         "==", zero padding bits);
 *   426 - Sec-WebSocket-Version missing, repeated or not exactly 13; the
 *         caller then adds "Sec-WebSocket-Version: 13" to the response.
 * A key too long for the head never gets here: http_req_parse() refuses the
 * head with -FC_ETOOBIG first.
 */
int ws_handshake_check(const struct http_req *req, char accept[29]) FC_WUR;

#endif
