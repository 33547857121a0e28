#include "net/ws.h"

#include <limits.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "core/assert.h"
#include "core/utf8.h"
#include "net/http.h"

/* RFC 6455 section 1.3: appended to the key before hashing. */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static int fail(uint16_t *fail_code, uint16_t code)
{
	*fail_code = code;
	return -1;
}

static uint64_t load_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* XORs p[0..n) with the repeating 4-byte key, eight bytes per step. */
static void unmask(uint8_t *p, size_t n, const uint8_t key[4])
{
	uint8_t k8[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
	uint64_t k;
	size_t i = 0;

	memcpy(&k, k8, sizeof k);
	for (; n - i >= 8; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, sizeof w);
		w ^= k;
		memcpy(p + i, &w, sizeof w);
	}
	/* i is a multiple of 8 here, so the key phase is still i & 3. */
	for (; i < n; i++)
		p[i] ^= key[i & 3];
}

/*
 * Checks what the first two header bytes alone decide: reserved bits, the
 * mask bit, the opcode against the fragmentation state, and the control
 * frame rules. Returns 0 or a close code.
 */
static uint16_t check_first_bytes(const ws_rx_t *rx, uint8_t b0, uint8_t b1)
{
	int fin = b0 >> 7;
	uint8_t op = b0 & 0x0f;

	if (b0 & 0x70)
		return WS_CLOSE_PROTOCOL;
	/* Checked before reading any further byte, so an unmasked frame never
	 * makes us wait for (or swallow) a mask key that is not there. */
	if (!(b1 & 0x80))
		return WS_CLOSE_PROTOCOL;
	switch (op) {
	case WS_OP_CONT:
		return rx->frag_opcode ? 0 : WS_CLOSE_PROTOCOL;
	case WS_OP_TEXT:
	case WS_OP_BINARY:
		return rx->frag_opcode ? WS_CLOSE_PROTOCOL : 0;
	case WS_OP_CLOSE:
	case WS_OP_PING:
	case WS_OP_PONG:
		if (!fin || (b1 & 0x7f) > WS_MAX_CONTROL_PAYLOAD)
			return WS_CLOSE_PROTOCOL;
		return 0;
	default:
		return WS_CLOSE_PROTOCOL;
	}
}

/*
 * Reads the payload length and the header size. Returns 1 when known, 0 when
 * more bytes are needed, or -1 with *code set for a bad length encoding.
 */
static int read_length(const uint8_t *buf, size_t len, uint64_t *plen, size_t *hlen, uint16_t *code)
{
	uint8_t l7 = buf[1] & 0x7f;

	if (l7 < 126) {
		*plen = l7;
		*hlen = 2 + 4;
		return 1;
	}
	if (l7 == 126) {
		if (len < 4)
			return 0;
		*plen = load_be(buf + 2, 2);
		*hlen = 4 + 4;
		if (*plen < 126)
			return fail(code, WS_CLOSE_PROTOCOL);
		return 1;
	}
	if (len < 10)
		return 0;
	*plen = load_be(buf + 2, 8);
	*hlen = 10 + 4;
	if ((*plen >> 63) || *plen < 65536)
		return fail(code, WS_CLOSE_PROTOCOL);
	return 1;
}

static int rx_data(ws_rx_t *rx, uint8_t op, int fin, slice_t payload, ws_event_t *ev,
		   uint16_t *fail_code)
{
	uint8_t msg_op = op == WS_OP_CONT ? rx->frag_opcode : op;
	uint32_t u = op == WS_OP_CONT ? rx->utf8_state : UTF8_ACCEPT;

	if (msg_op == WS_OP_TEXT) {
		if (utf8_feed(&u, payload.ptr, payload.len) < 0)
			return fail(fail_code, WS_CLOSE_BAD_DATA);
		if (fin && !utf8_is_complete(u))
			return fail(fail_code, WS_CLOSE_BAD_DATA);
	}
	if (fin) {
		rx->frag_opcode = 0;
		rx->msg_len = 0;
		rx->utf8_state = UTF8_ACCEPT;
	} else {
		rx->frag_opcode = msg_op;
		rx->msg_len += payload.len;
		rx->utf8_state = u;
	}
	ev->kind = WS_EV_DATA;
	ev->opcode = msg_op;
	ev->fin = fin;
	return 0;
}

static int rx_close(slice_t payload, ws_event_t *ev, uint16_t *fail_code)
{
	ev->kind = WS_EV_CLOSE;
	if (payload.len == 0) {
		ev->close_code = WS_CLOSE_NO_STATUS;
		ev->close_reason = slice_make(payload.ptr, 0);
		return 0;
	}
	if (payload.len == 1)
		return fail(fail_code, WS_CLOSE_PROTOCOL);
	uint16_t code = (uint16_t)load_be(payload.ptr, 2);
	if (!ws_close_code_valid(code))
		return fail(fail_code, WS_CLOSE_PROTOCOL);
	slice_t reason = slice_make(payload.ptr + 2, payload.len - 2);
	if (!utf8_valid(reason.ptr, reason.len))
		return fail(fail_code, WS_CLOSE_BAD_DATA);
	ev->close_code = code;
	ev->close_reason = reason;
	return 0;
}

int ws_rx_frame(ws_rx_t *rx, const ws_limits_t *lim, uint8_t *buf, size_t len, ws_event_t *ev,
		uint16_t *fail_code)
{
	uint64_t plen;
	size_t hlen;
	uint16_t code;
	int rc;

	ASSERT(rx != NULL && lim != NULL && ev != NULL && fail_code != NULL);
	ASSERT(buf != NULL || len == 0);
	if (len < 2)
		return 0;

	uint8_t op = buf[0] & 0x0f;
	int fin = buf[0] >> 7;
	int control = (op & 0x08) != 0;

	code = check_first_bytes(rx, buf[0], buf[1]);
	if (code)
		return fail(fail_code, code);
	rc = read_length(buf, len, &plen, &hlen, fail_code);
	if (rc <= 0)
		return rc;

	/* Limits come before waiting for the payload: the caller must never
	 * buffer towards a frame or message that will be refused anyway. The
	 * INT_MAX bound keeps the return value representable. */
	if (plen > lim->max_frame || plen > (uint64_t)(INT_MAX - hlen))
		return fail(fail_code, WS_CLOSE_TOO_BIG);
	if (!control && (rx->msg_len > lim->max_message || plen > lim->max_message - rx->msg_len))
		return fail(fail_code, WS_CLOSE_TOO_BIG);
	if (len < hlen || len - hlen < plen)
		return 0;

	uint8_t *p = buf + hlen;
	unmask(p, (size_t)plen, buf + hlen - 4);
	memset(ev, 0, sizeof *ev);
	ev->payload = slice_make(p, (size_t)plen);

	switch (op) {
	case WS_OP_PING:
		ev->kind = WS_EV_PING;
		break;
	case WS_OP_PONG:
		ev->kind = WS_EV_PONG;
		break;
	case WS_OP_CLOSE:
		rc = rx_close(ev->payload, ev, fail_code);
		if (rc < 0)
			return rc;
		break;
	default:
		rc = rx_data(rx, op, fin, ev->payload, ev, fail_code);
		if (rc < 0)
			return rc;
		break;
	}
	return (int)(hlen + plen);
}

size_t ws_frame_header(uint8_t out[10], uint8_t opcode, int fin, uint64_t payload_len)
{
	out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
	if (payload_len < 126) {
		out[1] = (uint8_t)payload_len;
		return 2;
	}
	if (payload_len <= 0xffff) {
		out[1] = 126;
		out[2] = (uint8_t)(payload_len >> 8);
		out[3] = (uint8_t)payload_len;
		return 4;
	}
	out[1] = 127;
	for (int i = 0; i < 8; i++)
		out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
	return 10;
}

int ws_control_frame(uint8_t *out, size_t cap, uint8_t opcode, slice_t payload)
{
	if (opcode != WS_OP_PING && opcode != WS_OP_PONG)
		return -EINVAL;
	if (payload.len > WS_MAX_CONTROL_PAYLOAD)
		return -FC_ETOOBIG;
	if (cap < 2 + payload.len)
		return -ENOBUFS;
	out[0] = (uint8_t)(0x80 | opcode);
	out[1] = (uint8_t)payload.len;
	if (payload.len)
		memcpy(out + 2, payload.ptr, payload.len);
	return (int)(2 + payload.len);
}

int ws_close_frame(uint8_t *out, size_t cap, uint16_t code, slice_t reason)
{
	if (code == 0) {
		if (reason.len)
			return -EINVAL;
		if (cap < 2)
			return -ENOBUFS;
		out[0] = 0x80 | WS_OP_CLOSE;
		out[1] = 0;
		return 2;
	}
	if (!ws_close_code_valid(code))
		return -EINVAL;
	if (reason.len > WS_MAX_CLOSE_REASON || !utf8_valid(reason.ptr, reason.len))
		return -EINVAL;
	if (cap < 4 + reason.len)
		return -ENOBUFS;
	out[0] = 0x80 | WS_OP_CLOSE;
	out[1] = (uint8_t)(2 + reason.len);
	out[2] = (uint8_t)(code >> 8);
	out[3] = (uint8_t)code;
	if (reason.len)
		memcpy(out + 4, reason.ptr, reason.len);
	return (int)(4 + reason.len);
}

int ws_close_code_valid(uint16_t code)
{
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
	       (code >= 3000 && code <= 4999);
}

static int b64_value(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * 16 bytes encode to 22 base64 digits and "==". The last digit carries two
 * data bits and four padding bits, which canonical encoders set to zero;
 * anything else is a different length, bad padding or not base64 at all.
 */
static int key_valid(slice_t k)
{
	if (k.len != 24 || k.ptr[22] != '=' || k.ptr[23] != '=')
		return 0;
	for (size_t i = 0; i < 22; i++)
		if (b64_value(k.ptr[i]) < 0)
			return 0;
	return (b64_value(k.ptr[21]) & 0x0f) == 0;
}

int ws_handshake_check(const struct http_req *req, char accept[29])
{
	int n;

	ASSERT(req != NULL && accept != NULL);
	accept[0] = '\0';
	if (!slice_eq(req->method, SLICE_LIT("GET")) || req->version_minor < 1)
		return 400;
	slice_t host = http_header_get(req, "Host", &n);
	if (n != 1 || host.len == 0)
		return 400;
	if (!http_header_has_token(req, "Upgrade", "websocket"))
		return 400;
	if (!http_header_has_token(req, "Connection", "Upgrade"))
		return 400;
	slice_t key = http_header_get(req, "Sec-WebSocket-Key", &n);
	if (n != 1 || !key_valid(key))
		return 400;
	slice_t ver = http_header_get(req, "Sec-WebSocket-Version", &n);
	if (n != 1 || !slice_eq(ver, SLICE_LIT("13")))
		return 426;

	uint8_t in[24 + sizeof ws_guid - 1];
	uint8_t md[SHA_DIGEST_LENGTH];
	memcpy(in, key.ptr, 24);
	memcpy(in + 24, ws_guid, sizeof ws_guid - 1);
	SHA1(in, sizeof in, md);
	int n64 = EVP_EncodeBlock((unsigned char *)accept, md, SHA_DIGEST_LENGTH);
	ASSERT(n64 == 28);
	return 0;
}
