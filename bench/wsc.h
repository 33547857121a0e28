/*
 * wsc: the client side of RFC 6455 as the benchmark load clients need it:
 * the opening-handshake request and the check of the server's answer, masked
 * client frames, and parsing of the server's unmasked frames. Pure codecs:
 * no I/O, no allocation. Single-threaded (the masking key generator keeps
 * state).
 */
#ifndef FC_BENCH_WSC_H
#define FC_BENCH_WSC_H

#include <stddef.h>
#include <stdint.h>

#define WSC_ACCEPT_LEN 28
/* Largest client frame header: 2 + 8-byte length + 4-byte mask. */
#define WSC_MAX_HEADER 14

enum { WSC_OP_BINARY = 2, WSC_OP_CLOSE = 8, WSC_OP_PING = 9, WSC_OP_PONG = 10 };

/*
 * Writes "GET path" with a fresh random Sec-WebSocket-Key into out (cap
 * bytes) and the Sec-WebSocket-Accept value the server must answer into
 * accept (29 bytes with the NUL). Returns the request length, or -1 if cap
 * is too small.
 */
int wsc_request(char *out, size_t cap, const char *host, int port, const char *path,
		char accept[WSC_ACCEPT_LEN + 1]);

/*
 * Checks a response head at the start of buf: returns its length (through
 * the blank line) when it is complete, a 101 and carries the expected
 * accept value; 0 while incomplete; -1 for anything else.
 */
long wsc_response(const uint8_t *buf, size_t len, const char *accept);

/* Bytes of a masked client frame carrying len payload bytes. */
size_t wsc_frame_size(size_t len);

/* Writes a masked FIN frame (opcode, payload) into out, which must hold
 * wsc_frame_size(len) bytes; returns that size. */
size_t wsc_frame_write(uint8_t *out, uint8_t opcode, const uint8_t *payload, size_t len);

typedef struct wsc_frame {
	uint8_t opcode;
	uint8_t fin;
	const uint8_t *payload; /* views the parsed buffer */
	size_t len;
} wsc_frame_t;

/* Parses one server frame at the start of buf: returns the frame's total
 * size (>0), 0 if incomplete, -1 if it is masked, uses reserved bits or
 * declares more than max_payload bytes. */
long wsc_frame_parse(const uint8_t *buf, size_t len, size_t max_payload, wsc_frame_t *f);

#endif
