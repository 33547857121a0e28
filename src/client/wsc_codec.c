/*
 * The pure parts of the WebSocket client: URL parsing, the frame header
 * codec, masking, and the Sec-WebSocket-Accept computation. Nothing here does
 * I/O; wsc.c builds the connection on top of these.
 */
#include "client/wsc.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- URLs ----------------------------------------------------------------- */

static int host_char_ok(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '.' || ch == '_';
}

/* Parses the decimal port in s[0..n): 1..65535, digits only. */
static int port_parse(const char *s, size_t n, uint16_t *out)
{
	if (n == 0 || n > 5)
		return -EINVAL;
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

static int host_set(wsc_url_t *u, const char *h, size_t n, int bracketed)
{
	if (n == 0)
		return -EINVAL;
	if (n > WSC_MAX_HOST)
		return -ENAMETOOLONG;
	memcpy(u->host, h, n);
	u->host[n] = 0;
	if (bracketed) {
		struct in6_addr a6;
		if (inet_pton(AF_INET6, u->host, &a6) != 1)
			return -EINVAL;
		u->ipv6 = 1;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if (!host_char_ok(h[i]))
			return -EINVAL;
	return 0;
}

static int authority_parse(wsc_url_t *u, const char *a, size_t n)
{
	const char *port = NULL;
	size_t port_len = 0;
	int rc;
	if (memchr(a, '@', n))
		return -EINVAL; /* userinfo has no place in a ws URL we accept */
	if (n > 0 && a[0] == '[') {
		const char *close = memchr(a, ']', n);
		if (!close)
			return -EINVAL;
		rc = host_set(u, a + 1, (size_t)(close - a - 1), 1);
		if (rc < 0)
			return rc;
		size_t rest = n - (size_t)(close - a) - 1;
		if (rest > 0) {
			if (close[1] != ':')
				return -EINVAL;
			port = close + 2;
			port_len = rest - 1;
		}
	} else {
		const char *colon = memchr(a, ':', n);
		size_t hn = colon ? (size_t)(colon - a) : n;
		rc = host_set(u, a, hn, 0);
		if (rc < 0)
			return rc;
		if (colon) {
			port = colon + 1;
			port_len = n - hn - 1;
		}
	}
	if (port) {
		rc = port_parse(port, port_len, &u->port);
		if (rc < 0)
			return rc;
		u->port_explicit = 1;
	}
	return 0;
}

int wsc_url_parse(const char *url, wsc_url_t *out)
{
	if (!url || !out)
		return -EINVAL;
	wsc_url_t u;
	memset(&u, 0, sizeof u);
	for (const char *q = url; *q; q++)
		if ((unsigned char)*q <= 0x20 || *q == 0x7f || *q == '#')
			return -EINVAL;
	const char *p;
	if (strncasecmp(url, "ws://", 5) == 0) {
		p = url + 5;
	} else if (strncasecmp(url, "wss://", 6) == 0) {
		p = url + 6;
		u.tls = 1;
	} else {
		return -EINVAL;
	}
	size_t alen = strcspn(p, "/?");
	int rc = authority_parse(&u, p, alen);
	if (rc < 0)
		return rc;
	if (!u.port_explicit)
		u.port = u.tls ? 443 : 80;
	const char *path = p + alen;
	size_t plen = strlen(path);
	if (plen + 1 > WSC_MAX_PATH)
		return -ENAMETOOLONG;
	if (plen == 0) {
		u.path[0] = '/';
	} else if (path[0] == '?') {
		/* "ws://h?x" means path "/" with query "x" */
		u.path[0] = '/';
		memcpy(u.path + 1, path, plen);
	} else {
		memcpy(u.path, path, plen);
	}
	*out = u;
	return 0;
}

/* ---- frames --------------------------------------------------------------- */

static int opcode_known(uint8_t op)
{
	return op <= WSC_OP_BINARY || (op >= WSC_OP_CLOSE && op <= WSC_OP_PONG);
}

int wsc_frame_parse(const uint8_t *p, size_t n, wsc_frame_t *f)
{
	if (n < 2)
		return 0;
	uint8_t b0 = p[0], b1 = p[1];
	uint8_t op = b0 & 0x0F;
	int fin = (b0 & 0x80) != 0;
	if ((b0 & 0x70) || !opcode_known(op))
		return -FC_EMALFORMED;
	int control = op >= WSC_OP_CLOSE;
	if (control && !fin)
		return -FC_EMALFORMED;
	uint64_t len = b1 & 0x7F;
	size_t h = 2;
	if (len == 126) {
		if (n < 4)
			return 0;
		len = (uint64_t)p[2] << 8 | p[3];
		h = 4;
		if (len < 126)
			return -FC_EMALFORMED;
	} else if (len == 127) {
		if (n < 10)
			return 0;
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | p[2 + i];
		h = 10;
		if ((len >> 63) || len < 65536)
			return -FC_EMALFORMED;
	}
	if (control && len > 125)
		return -FC_EMALFORMED;
	int masked = (b1 & 0x80) != 0;
	if (masked) {
		if (n < h + 4)
			return 0;
		memcpy(f->mask, p + h, 4);
		h += 4;
	} else {
		memset(f->mask, 0, sizeof f->mask);
	}
	f->fin = fin;
	f->opcode = op;
	f->masked = masked;
	f->len = len;
	f->hdr_len = h;
	return (int)h;
}

size_t wsc_frame_header(uint8_t out[WSC_MAX_HEADER], uint8_t opcode, int fin, uint64_t len,
			const uint8_t mask[4])
{
	size_t h;
	out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
	uint8_t mbit = mask ? 0x80 : 0;
	if (len < 126) {
		out[1] = (uint8_t)(mbit | len);
		h = 2;
	} else if (len <= 0xFFFF) {
		out[1] = (uint8_t)(mbit | 126);
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
		h = 4;
	} else {
		out[1] = (uint8_t)(mbit | 127);
		for (int i = 0; i < 8; i++)
			out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
		h = 10;
	}
	if (mask) {
		memcpy(out + h, mask, 4);
		h += 4;
	}
	return h;
}

void wsc_mask(uint8_t *p, size_t n, const uint8_t key[4], uint64_t off)
{
	for (size_t i = 0; i < n; i++)
		p[i] ^= key[(off + i) & 3];
}

int wsc_accept_value(const char *key, char out[29])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	char buf[128];
	out[0] = 0;
	int n = snprintf(buf, sizeof buf, "%s%s", key, guid);
	if (n < 0 || (size_t)n >= sizeof buf)
		return -EINVAL;
	if (EVP_Digest(buf, (size_t)n, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
		return -EPROTO;
	sodium_bin2base64(out, 29, md, 20, sodium_base64_VARIANT_ORIGINAL);
	return 0;
}
