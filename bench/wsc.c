#include "wsc.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

int wsc_request(char *out, size_t cap, const char *host, int port, const char *path,
		char accept[WSC_ACCEPT_LEN + 1])
{
	uint8_t raw[16];
	char key[25];
	randombytes_buf(raw, sizeof raw);
	EVP_EncodeBlock((unsigned char *)key, raw, sizeof raw);
	char cat[24 + sizeof WS_GUID];
	memcpy(cat, key, 24);
	memcpy(cat + 24, WS_GUID, sizeof WS_GUID - 1);
	uint8_t digest[SHA_DIGEST_LENGTH];
	SHA1((const unsigned char *)cat, 24 + sizeof WS_GUID - 1, digest);
	EVP_EncodeBlock((unsigned char *)accept, digest, sizeof digest);
	int n = snprintf(out, cap,
			 "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
			 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
			 "Sec-WebSocket-Version: 13\r\n\r\n",
			 path, host, port, key);
	return n < 0 || (size_t)n >= cap ? -1 : n;
}

static const uint8_t *find_blank_line(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 4 <= len; i++)
		if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n')
			return p + i + 4;
	return NULL;
}

long wsc_response(const uint8_t *buf, size_t len, const char *accept)
{
	const uint8_t *end = find_blank_line(buf, len);
	if (!end)
		return len > 4096 ? -1 : 0;
	size_t hl = (size_t)(end - buf);
	static const char status[] = "HTTP/1.1 101 ";
	if (hl < sizeof status - 1 || memcmp(buf, status, sizeof status - 1) != 0)
		return -1;
	/* Look for the accept header value anywhere in the head; header names
	 * are case-insensitive, so match the value, which is exact. */
	size_t al = strlen(accept);
	int found = 0;
	for (size_t i = 0; i + al <= hl && !found; i++)
		found = memcmp(buf + i, accept, al) == 0;
	return found ? (long)hl : -1;
}

size_t wsc_frame_size(size_t len)
{
	size_t h = len < 126 ? 2 : len < 65536 ? 4 : 10;
	return h + 4 + len;
}

/* The RFC wants unpredictable masking keys to protect intermediaries; on a
 * loopback benchmark a fast xorshift keeps the client's cost per frame
 * small. Seeded once from libsodium. */
static uint32_t next_mask(void)
{
	static uint64_t s;
	if (!s) {
		randombytes_buf(&s, sizeof s);
		s |= 1;
	}
	s ^= s << 13;
	s ^= s >> 7;
	s ^= s << 17;
	return (uint32_t)(s >> 16);
}

size_t wsc_frame_write(uint8_t *out, uint8_t opcode, const uint8_t *payload, size_t len)
{
	size_t h = 0;
	out[h++] = (uint8_t)(0x80 | opcode);
	if (len < 126) {
		out[h++] = (uint8_t)(0x80 | len);
	} else if (len < 65536) {
		out[h++] = 0x80 | 126;
		out[h++] = (uint8_t)(len >> 8);
		out[h++] = (uint8_t)len;
	} else {
		out[h++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			out[h++] = (uint8_t)((uint64_t)len >> (8 * i));
	}
	uint32_t m = next_mask();
	uint8_t mk[4] = {(uint8_t)(m >> 24), (uint8_t)(m >> 16), (uint8_t)(m >> 8), (uint8_t)m};
	memcpy(out + h, mk, 4);
	h += 4;
	for (size_t i = 0; i < len; i++)
		out[h + i] = payload[i] ^ mk[i & 3];
	return h + len;
}

long wsc_frame_parse(const uint8_t *buf, size_t len, size_t max_payload, wsc_frame_t *f)
{
	if (len < 2)
		return 0;
	if ((buf[0] & 0x70) || (buf[1] & 0x80))
		return -1;
	size_t h = 2;
	uint64_t pl = buf[1] & 0x7F;
	if (pl == 126) {
		if (len < 4)
			return 0;
		pl = ((uint64_t)buf[2] << 8) | buf[3];
		h = 4;
	} else if (pl == 127) {
		if (len < 10)
			return 0;
		pl = 0;
		for (int i = 0; i < 8; i++)
			pl = (pl << 8) | buf[2 + i];
		h = 10;
	}
	if (pl > max_payload)
		return -1;
	if (len < h + pl)
		return 0;
	f->opcode = buf[0] & 0x0F;
	f->fin = (buf[0] & 0x80) != 0;
	f->payload = buf + h;
	f->len = (size_t)pl;
	return (long)(h + pl);
}
