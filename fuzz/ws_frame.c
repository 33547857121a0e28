/*
 * Fuzz target for ws_rx_frame(). The first input byte picks the limits and
 * a chunk size; the rest is a client byte stream. The stream is decoded
 * twice: handed over whole, and trickled in chunks into a connection buffer
 * that is reallocated to its exact fill level, so the sanitizers see any
 * read past len. Both runs must produce the same events and the same
 * failure; every event must respect the protocol invariants (valid opcodes,
 * control payloads <= 125 bytes, valid close codes, complete text messages
 * valid UTF-8). A violation aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "net/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct transcript {
	uint64_t hash;
	size_t events;
	int failed;
	uint16_t fail_code;
	size_t consumed;
	/* Reassembly of the current text message, to re-check its UTF-8. */
	uint8_t *msg;
	size_t msg_len, msg_cap;
} transcript_t;

static void mix(transcript_t *t, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++) {
		t->hash ^= b[i];
		t->hash *= UINT64_C(0x100000001b3);
	}
}

static void check_event(transcript_t *t, const ws_event_t *ev, const uint8_t *buf, size_t len)
{
	if (ev->payload.len &&
	    (ev->payload.ptr < buf || ev->payload.ptr + ev->payload.len > buf + len))
		abort();
	switch (ev->kind) {
	case WS_EV_DATA:
		if (ev->opcode != WS_OP_TEXT && ev->opcode != WS_OP_BINARY)
			abort();
		if (ev->opcode == WS_OP_TEXT) {
			size_t need = t->msg_len + ev->payload.len;
			if (need > t->msg_cap) {
				uint8_t *m = realloc(t->msg, need);
				if (!m)
					abort();
				t->msg = m;
				t->msg_cap = need;
			}
			if (ev->payload.len)
				memcpy(t->msg + t->msg_len, ev->payload.ptr, ev->payload.len);
			t->msg_len = need;
			if (ev->fin) {
				if (!utf8_valid(t->msg, t->msg_len))
					abort();
				t->msg_len = 0;
			}
		}
		break;
	case WS_EV_PING:
	case WS_EV_PONG:
		if (ev->payload.len > WS_MAX_CONTROL_PAYLOAD)
			abort();
		break;
	case WS_EV_CLOSE:
		if (ev->payload.len > WS_MAX_CONTROL_PAYLOAD)
			abort();
		if (ev->close_code != WS_CLOSE_NO_STATUS && !ws_close_code_valid(ev->close_code))
			abort();
		if (!utf8_valid(ev->close_reason.ptr, ev->close_reason.len))
			abort();
		break;
	default:
		abort();
	}
	mix(t, &ev->kind, sizeof ev->kind);
	mix(t, &ev->opcode, sizeof ev->opcode);
	mix(t, &ev->fin, sizeof ev->fin);
	mix(t, &ev->close_code, sizeof ev->close_code);
	if (ev->payload.len)
		mix(t, ev->payload.ptr, ev->payload.len);
	t->events++;
}

/* Consumes every complete frame in *buf; returns 0, or -1 after a failure. */
static int drain(ws_rx_t *rx, const ws_limits_t *lim, uint8_t **buf, size_t *have, transcript_t *t)
{
	for (;;) {
		ws_event_t ev;
		uint16_t code = 0;
		int rc = ws_rx_frame(rx, lim, *buf, *have, &ev, &code);
		if (rc < 0) {
			if (rc != -1 || (code != 1002 && code != 1007 && code != 1009))
				abort();
			t->failed = 1;
			t->fail_code = code;
			return -1;
		}
		if (rc == 0)
			return 0;
		if ((size_t)rc > *have)
			abort();
		check_event(t, &ev, *buf, *have);
		t->consumed += (size_t)rc;
		memmove(*buf, *buf + rc, *have - (size_t)rc);
		*have -= (size_t)rc;
	}
}

static void run(const uint8_t *in, size_t n, const ws_limits_t *lim, size_t step, transcript_t *t)
{
	ws_rx_t rx;
	uint8_t *buf = NULL;
	size_t have = 0, fed = 0;

	memset(&rx, 0, sizeof rx);
	memset(t, 0, sizeof *t);
	t->hash = UINT64_C(0xcbf29ce484222325);
	while (fed < n) {
		size_t k = n - fed < step ? n - fed : step;
		uint8_t *nb = realloc(buf, have + k);
		if (!nb)
			abort();
		buf = nb;
		memcpy(buf + have, in + fed, k);
		have += k;
		fed += k;
		if (drain(&rx, lim, &buf, &have, t) < 0)
			break;
		/* Shrink to the exact fill level so overreads are caught. */
		if (have) {
			nb = realloc(buf, have);
			if (!nb)
				abort();
			buf = nb;
		}
	}
	free(buf);
	free(t->msg);
	t->msg = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t caps[4] = {125, 1000, 65536, 1u << 20};
	transcript_t whole, chunked;

	if (size < 1)
		return 0;
	uint8_t cfg = data[0];
	ws_limits_t lim = {caps[cfg & 3], caps[(cfg >> 2) & 3]};
	size_t step = 1 + (cfg >> 4);
	data++;
	size--;

	run(data, size, &lim, size ? size : 1, &whole);
	run(data, size, &lim, step, &chunked);
	if (whole.hash != chunked.hash || whole.events != chunked.events ||
	    whole.failed != chunked.failed || whole.fail_code != chunked.fail_code ||
	    whole.consumed != chunked.consumed)
		abort();
	return 0;
}
