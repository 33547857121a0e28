/*
 * Unit tests for client/wsc: the frame codec (header encoding, masking,
 * parsing and its refusals), URL parsing, the accept value, and whole
 * connections against a tiny server running in a thread on 127.0.0.1. The
 * server reads the client's handshake with net/http and net/ws (the gateway's
 * own, independent codecs), so every client frame is checked to be masked
 * and well formed by code that did not produce it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/wsc.h"
#include "net/http.h"
#include "net/ws.h"

#define assert_rc(got, want)                                                     \
	do {                                                                     \
		long long got_ = (long long)(got), want_ = (long long)(want);    \
		if (got_ != want_)                                               \
			fail_msg("%s = %lld, expected %lld", #got, got_, want_); \
	} while (0)

/* ---- frame codec ------------------------------------------------------------- */

static void test_header_lengths(void **state)
{
	(void)state;
	uint8_t h[WSC_MAX_HEADER];
	static const uint8_t k[4] = {1, 2, 3, 4};
	assert_rc(wsc_frame_header(h, WSC_OP_BINARY, 1, 0, NULL), 2);
	assert_memory_equal(h, "\x82\x00", 2);
	assert_rc(wsc_frame_header(h, WSC_OP_BINARY, 1, 125, NULL), 2);
	assert_memory_equal(h, "\x82\x7d", 2);
	assert_rc(wsc_frame_header(h, WSC_OP_TEXT, 0, 126, NULL), 4);
	assert_memory_equal(h, "\x01\x7e\x00\x7e", 4);
	assert_rc(wsc_frame_header(h, WSC_OP_BINARY, 1, 65535, k), 8);
	assert_memory_equal(h, "\x82\xfe\xff\xff\x01\x02\x03\x04", 8);
	assert_rc(wsc_frame_header(h, WSC_OP_BINARY, 1, 65536, k), 14);
	assert_memory_equal(h, "\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00\x01\x02\x03\x04", 14);
	assert_rc(wsc_frame_header(h, WSC_OP_PING, 1, 3, NULL), 2);
	assert_memory_equal(h, "\x89\x03", 2);
}

/* RFC 6455 section 5.7: a single-frame masked text message "Hello". */
static void test_mask_rfc_example(void **state)
{
	(void)state;
	static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
	static const uint8_t want[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
				       0x7f, 0x9f, 0x4d, 0x51, 0x58};
	uint8_t fr[16];
	size_t h = wsc_frame_header(fr, WSC_OP_TEXT, 1, 5, key);
	memcpy(fr + h, "Hello", 5);
	wsc_mask(fr + h, 5, key, 0);
	assert_rc(h + 5, sizeof want);
	assert_memory_equal(fr, want, sizeof want);

	/* Masking in pieces with the right offsets equals masking at once. */
	uint8_t a[11] = "Hello world", b[11] = "Hello world";
	wsc_mask(a, 11, key, 0);
	wsc_mask(b, 3, key, 0);
	wsc_mask(b + 3, 5, key, 3);
	wsc_mask(b + 8, 3, key, 8);
	assert_memory_equal(a, b, 11);
	wsc_mask(a, 11, key, 0);
	assert_memory_equal(a, "Hello world", 11);

	/* And the parser reads the masked frame back. */
	wsc_frame_t f;
	assert_rc(wsc_frame_parse(want, sizeof want, &f), 6);
	assert_true(f.fin && f.masked);
	assert_rc(f.opcode, WSC_OP_TEXT);
	assert_rc(f.len, 5);
	assert_memory_equal(f.mask, key, 4);
}

static void test_parse_frames(void **state)
{
	(void)state;
	wsc_frame_t f;
	static const uint8_t hello[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};
	assert_rc(wsc_frame_parse(hello, sizeof hello, &f), 2);
	assert_true(f.fin && !f.masked);
	assert_rc(f.opcode, WSC_OP_TEXT);
	assert_rc(f.len, 5);
	/* The header alone is enough; the payload may still be missing. */
	assert_rc(wsc_frame_parse(hello, 2, &f), 2);
	assert_rc(wsc_frame_parse(hello, 1, &f), 0);
	assert_rc(wsc_frame_parse(hello, 0, &f), 0);
	/* 16- and 64-bit lengths, incomplete and complete. */
	static const uint8_t l16[] = {0x02, 0x7e, 0x01, 0x00};
	assert_rc(wsc_frame_parse(l16, 3, &f), 0);
	assert_rc(wsc_frame_parse(l16, 4, &f), 4);
	assert_true(!f.fin);
	assert_rc(f.len, 256);
	static const uint8_t l64[] = {0x80, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0};
	assert_rc(wsc_frame_parse(l64, 9, &f), 0);
	assert_rc(wsc_frame_parse(l64, 10, &f), 10);
	assert_rc(f.opcode, WSC_OP_CONT);
	assert_rc(f.len, 65536);
	/* Refusals. */
	static const uint8_t bad[][10] = {
		{0xc2, 0x00},                               /* RSV1 */
		{0xa2, 0x00},                               /* RSV2 */
		{0x83, 0x00},                               /* reserved opcode 3 */
		{0x8b, 0x00},                               /* reserved opcode 11 */
		{0x09, 0x00},                               /* fragmented ping */
		{0x89, 0x7e, 0x00, 0x7e},                   /* ping over 125 */
		{0x82, 0x7e, 0x00, 0x05},                   /* non-minimal 16-bit */
		{0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, /* non-minimal 64-bit */
		{0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0},    /* top bit set */
	};
	static const size_t blen[] = {2, 2, 2, 2, 2, 4, 4, 10, 10};
	for (size_t i = 0; i < sizeof blen / sizeof blen[0]; i++)
		if (wsc_frame_parse(bad[i], blen[i], &f) != -FC_EMALFORMED)
			fail_msg("bad frame %zu accepted", i);
}

static void test_url_parse(void **state)
{
	(void)state;
	wsc_url_t u;
	assert_rc(wsc_url_parse("ws://127.0.0.1:8080/v1/ws", &u), 0);
	assert_false(u.tls);
	assert_string_equal(u.host, "127.0.0.1");
	assert_rc(u.port, 8080);
	assert_string_equal(u.path, "/v1/ws");
	assert_rc(wsc_url_parse("WSS://Example.org", &u), 0);
	assert_true(u.tls);
	assert_rc(u.port, 443);
	assert_false(u.port_explicit);
	assert_string_equal(u.path, "/");
	assert_rc(wsc_url_parse("ws://[::1]:9/a?b=c", &u), 0);
	assert_true(u.ipv6);
	assert_string_equal(u.host, "::1");
	assert_rc(u.port, 9);
	assert_string_equal(u.path, "/a?b=c");
	assert_rc(wsc_url_parse("ws://h?q", &u), 0);
	assert_string_equal(u.path, "/?q");
	assert_rc(u.port, 80);
	static const char *const bad[] = {
		"http://h/",    "ws:/h",        "ws://",      "ws://:80/",
		"ws://h:0/",    "ws://h:65536", "ws://h:8x/", "ws://u@h/",
		"ws://h/#frag", "ws://h/a b",   "ws://[::1/", "ws://[zz]/",
		"ws://[::1]x/", "ws://h*st/",   "ws://h:/",   "ws://h/\x01",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (wsc_url_parse(bad[i], &u) != -EINVAL)
			fail_msg("bad URL accepted: %s", bad[i]);
	char longhost[300];
	memset(longhost, 'a', sizeof longhost);
	memcpy(longhost, "ws://", 5);
	longhost[sizeof longhost - 1] = 0;
	assert_rc(wsc_url_parse(longhost, &u), -ENAMETOOLONG);
}

static void test_accept_value(void **state)
{
	(void)state;
	char out[29];
	/* RFC 6455 section 1.3. */
	assert_rc(wsc_accept_value("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
	assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

/* ---- in-test server ------------------------------------------------------------ */

typedef struct srv srv_t;
typedef void (*script_fn)(srv_t *s);

struct srv {
	int lfd, fd;
	uint16_t port;
	script_fn script;
	pthread_t thr;
	char accept[29];
	char host[128];
	int handshake_ok;
	/* client frames read by the script, as parsed by net/ws */
	uint8_t buf[1 << 18];
	size_t len;
	ws_rx_t rx;
	/* results for the main thread to check */
	int n_frames;
	uint8_t op[8];
	uint16_t close_code;
	size_t plen[8];
	uint8_t *payload[8];
	uint8_t mask_seen[8][4];
	int failed;
	char why[128];
};

static void srv_fail(srv_t *s, const char *why)
{
	if (!s->failed)
		snprintf(s->why, sizeof s->why, "%s", why);
	s->failed = 1;
}

static void write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		b += w;
		n -= (size_t)w;
	}
}

/* Reads the request head and checks it as the gateway would. */
static void srv_handshake_read(srv_t *s)
{
	char head[4096];
	size_t n = 0;
	for (;;) {
		ssize_t r = recv(s->fd, head + n, sizeof head - 1 - n, 0);
		if (r <= 0) {
			srv_fail(s, "eof before head");
			return;
		}
		n += (size_t)r;
		head[n] = 0;
		if (strstr(head, "\r\n\r\n"))
			break;
	}
	http_req_t req;
	int hl = http_req_parse((const uint8_t *)head, n, &req);
	if (hl <= 0) {
		srv_fail(s, "request head does not parse");
		return;
	}
	if (ws_handshake_check(&req, s->accept) != 0) {
		srv_fail(s, "handshake refused by net/ws");
		return;
	}
	for (size_t i = 0; i < req.nheaders; i++)
		if (slice_ieq(req.headers[i].name, SLICE_LIT("Host")))
			snprintf(s->host, sizeof s->host, "%.*s", (int)req.headers[i].value.len,
				 (const char *)req.headers[i].value.ptr);
	s->handshake_ok = 1;
}

static void srv_send_101(srv_t *s, const char *accept, const uint8_t *extra, size_t extra_len)
{
	char resp[512];
	int n = snprintf(resp, sizeof resp,
			 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			 accept);
	uint8_t out[1024];
	memcpy(out, resp, (size_t)n);
	if (extra_len)
		memcpy(out + n, extra, extra_len);
	/* The first frames ride in the same segment as the 101. */
	write_all(s->fd, out, (size_t)n + extra_len);
}

static size_t frame(uint8_t *out, uint8_t op, int fin, const void *p, size_t n)
{
	size_t h = ws_frame_header(out, op, fin, n);
	if (n)
		memcpy(out + h, p, n);
	return h + n;
}

static void srv_frame(srv_t *s, uint8_t op, int fin, const void *p, size_t n)
{
	uint8_t *out = malloc(n + 10);
	write_all(s->fd, out, frame(out, op, fin, p, n));
	free(out);
}

/* Reads one client frame through net/ws (which refuses unmasked frames). */
static int srv_read_frame(srv_t *s)
{
	static const ws_limits_t lim = {1u << 17, 1u << 17};
	for (;;) {
		ws_event_t ev;
		uint16_t code = 0;
		if (s->len >= 2 && s->n_frames < 8) {
			/* Remember the mask key before ws_rx_frame unmasks. */
			size_t ko = (s->buf[1] & 0x7f) == 126 ? 4 :
				    (s->buf[1] & 0x7f) == 127 ? 10 :
								2;
			if (s->len >= ko + 4)
				memcpy(s->mask_seen[s->n_frames], s->buf + ko, 4);
		}
		int r = s->len ? ws_rx_frame(&s->rx, &lim, s->buf, s->len, &ev, &code) : 0;
		if (r < 0) {
			srv_fail(s, "client frame refused by net/ws");
			return -1;
		}
		if (r > 0) {
			int i = s->n_frames < 8 ? s->n_frames++ : 7;
			s->op[i] = ev.kind == WS_EV_CLOSE ? WS_OP_CLOSE :
				   ev.kind == WS_EV_PONG  ? WS_OP_PONG :
				   ev.kind == WS_EV_PING  ? WS_OP_PING :
							    ev.opcode;
			/* For a close, keep the reason (after the code). */
			slice_t pl = ev.kind == WS_EV_CLOSE ? ev.close_reason : ev.payload;
			if (ev.kind == WS_EV_CLOSE)
				s->close_code = ev.close_code;
			s->plen[i] = pl.len;
			s->payload[i] = malloc(pl.len + 1);
			if (pl.len)
				memcpy(s->payload[i], pl.ptr, pl.len);
			memmove(s->buf, s->buf + r, s->len - (size_t)r);
			s->len -= (size_t)r;
			return i;
		}
		ssize_t n = recv(s->fd, s->buf + s->len, sizeof s->buf - s->len, 0);
		if (n <= 0) {
			srv_fail(s, "eof while reading a client frame");
			return -1;
		}
		s->len += (size_t)n;
	}
}

static void *srv_main(void *arg)
{
	srv_t *s = arg;
	s->fd = accept(s->lfd, NULL, NULL);
	if (s->fd < 0) {
		srv_fail(s, "accept");
		return NULL;
	}
	s->script(s);
	close(s->fd);
	return NULL;
}

static void srv_start(srv_t *s, script_fn fn)
{
	memset(s, 0, sizeof *s);
	s->script = fn;
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->lfd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	assert_rc(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
	assert_rc(listen(s->lfd, 1), 0);
	assert_rc(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
	s->port = ntohs(a.sin_port);
	assert_rc(pthread_create(&s->thr, NULL, srv_main, s), 0);
}

static void srv_join(srv_t *s)
{
	pthread_join(s->thr, NULL);
	close(s->lfd);
	if (s->failed)
		fail_msg("server: %s", s->why);
}

static void srv_free(srv_t *s)
{
	for (int i = 0; i < 8; i++)
		free(s->payload[i]);
}

static wsc_t *client_connect(srv_t *s, const wsc_opts_t *o)
{
	char url[64];
	snprintf(url, sizeof url, "ws://127.0.0.1:%u/v1/ws", s->port);
	wsc_t *w = NULL;
	wsc_status_t st;
	int rc = wsc_connect(&w, url, o, &st);
	if (rc != 0)
		fail_msg("connect: %d %s", rc, st.msg);
	return w;
}

/* ---- whole connections ------------------------------------------------------------ */

static void script_echo(srv_t *s)
{
	srv_handshake_read(s);
	uint8_t first[64];
	size_t n = frame(first, WS_OP_BINARY, 1, "\x01\x02\x03", 3);
	srv_send_101(s, s->accept, first, n);
	srv_read_frame(s); /* large binary */
	srv_read_frame(s); /* small binary */
	srv_read_frame(s); /* text */
	static const uint8_t close1000[] = {0x03, 0xe8, 'b', 'y', 'e'};
	srv_frame(s, WS_OP_CLOSE, 1, close1000, sizeof close1000);
	srv_read_frame(s); /* the client's echo */
}

static void test_handshake_send_close(void **state)
{
	(void)state;
	srv_t s;
	srv_start(&s, script_echo);
	wsc_t *w = client_connect(&s, NULL);
	wsc_msg_t m;
	assert_rc(wsc_recv(w, 2000, &m), 1);
	assert_rc(m.opcode, WSC_OP_BINARY);
	assert_rc(m.data.len, 3);
	assert_memory_equal(m.data.ptr, "\x01\x02\x03", 3);

	size_t big = 70000;
	uint8_t *p = malloc(big);
	for (size_t i = 0; i < big; i++)
		p[i] = (uint8_t)(i * 7);
	assert_rc(wsc_send(w, WSC_OP_BINARY, p, big), 0);
	assert_rc(wsc_send(w, WSC_OP_BINARY, "abc", 3), 0);
	assert_rc(wsc_send(w, WSC_OP_TEXT, "h\xc3\xa9", 3), 0);
	assert_rc(wsc_send(w, 5, "x", 1), -EINVAL);
	assert_rc(wsc_recv(w, 2000, &m), -ENOTCONN);
	assert_rc(wsc_close_code(w), 1000);
	assert_string_equal(wsc_close_reason(w), "bye");
	assert_rc(wsc_send(w, WSC_OP_BINARY, "x", 1), -ENOTCONN);
	assert_rc(wsc_close(w, 1000, NULL, 100), 0);
	wsc_free(w);
	srv_join(&s);

	char host[64];
	snprintf(host, sizeof host, "127.0.0.1:%u", s.port);
	assert_string_equal(s.host, host);
	assert_rc(s.n_frames, 4);
	assert_rc(s.op[0], WS_OP_BINARY);
	assert_rc(s.plen[0], big);
	assert_memory_equal(s.payload[0], p, big);
	assert_rc(s.op[1], WS_OP_BINARY);
	assert_memory_equal(s.payload[1], "abc", 3);
	assert_rc(s.op[2], WS_OP_TEXT);
	assert_memory_equal(s.payload[2], "h\xc3\xa9", 3);
	assert_rc(s.op[3], WS_OP_CLOSE);
	assert_rc(s.close_code, 1000);
	/* Fresh random masks: three frames with the same key would be a
	 * one-in-2^64 accident. */
	assert_true(memcmp(s.mask_seen[0], s.mask_seen[1], 4) != 0 ||
		    memcmp(s.mask_seen[1], s.mask_seen[2], 4) != 0);
	free(p);
	srv_free(&s);
}

static void script_fragments(srv_t *s)
{
	srv_handshake_read(s);
	srv_send_101(s, s->accept, NULL, 0);
	srv_frame(s, WS_OP_BINARY, 0, "frag-1|", 7);
	srv_frame(s, WS_OP_PING, 1, "p!", 2); /* between fragments: legal */
	srv_frame(s, WS_OP_CONT, 0, "frag-2|", 7);
	srv_frame(s, WS_OP_CONT, 1, "end", 3);
	srv_read_frame(s); /* the pong */
	/* A text message split inside a two-byte character. */
	srv_frame(s, WS_OP_TEXT, 0, "gr\xc3", 3);
	srv_frame(s, WS_OP_CONT, 1, "\xbc\xc3\x9f", 3);
	srv_frame(s, WS_OP_PONG, 1, "", 0); /* unsolicited pong: ignored */
	srv_frame(s, WS_OP_BINARY, 1, "last", 4);
	srv_read_frame(s); /* the client's close */
	srv_frame(s, WS_OP_CLOSE, 1, "\x03\xe8", 2);
}

static void test_fragments_and_ping(void **state)
{
	(void)state;
	srv_t s;
	srv_start(&s, script_fragments);
	wsc_t *w = client_connect(&s, NULL);
	wsc_msg_t m;
	assert_rc(wsc_recv(w, 2000, &m), 1);
	assert_rc(m.opcode, WSC_OP_BINARY);
	assert_rc(m.data.len, 17);
	assert_memory_equal(m.data.ptr, "frag-1|frag-2|end", 17);
	assert_rc(wsc_recv(w, 2000, &m), 1);
	assert_rc(m.opcode, WSC_OP_TEXT);
	assert_rc(m.data.len, 6);
	assert_memory_equal(m.data.ptr, "gr\xc3\xbc\xc3\x9f", 6);
	assert_rc(wsc_recv(w, 2000, &m), 1);
	assert_memory_equal(m.data.ptr, "last", 4);
	assert_rc(wsc_close(w, 1000, "done", 2000), 0);
	assert_rc(wsc_close_code(w), 1000);
	wsc_free(w);
	srv_join(&s);
	assert_rc(s.op[0], WS_OP_PONG);
	assert_rc(s.plen[0], 2);
	assert_memory_equal(s.payload[0], "p!", 2);
	assert_rc(s.op[1], WS_OP_CLOSE);
	assert_rc(s.close_code, 1000);
	assert_memory_equal(s.payload[1], "done", 4);
	srv_free(&s);
}

static void script_too_big(srv_t *s)
{
	static uint8_t junk[600];
	srv_handshake_read(s);
	srv_send_101(s, s->accept, NULL, 0);
	srv_frame(s, WS_OP_BINARY, 0, junk, sizeof junk);
	srv_frame(s, WS_OP_CONT, 1, junk, sizeof junk);
	srv_read_frame(s);
}

static void test_message_cap(void **state)
{
	(void)state;
	srv_t s;
	srv_start(&s, script_too_big);
	wsc_opts_t o = {.max_message = 1000};
	wsc_t *w = client_connect(&s, &o);
	wsc_msg_t m;
	assert_rc(wsc_recv(w, 2000, &m), -FC_ETOOBIG);
	assert_rc(wsc_recv(w, 10, &m), -ENOTCONN);
	wsc_free(w);
	srv_join(&s);
	assert_rc(s.op[0], WS_OP_CLOSE);
	assert_rc(s.close_code, 1009);
	srv_free(&s);
}

static void script_masked(srv_t *s)
{
	srv_handshake_read(s);
	srv_send_101(s, s->accept, NULL, 0);
	static const uint8_t masked[] = {0x82, 0x81, 1, 2, 3, 4, 'x' ^ 1};
	write_all(s->fd, masked, sizeof masked);
	srv_read_frame(s);
}

static void test_masked_server_frame(void **state)
{
	(void)state;
	srv_t s;
	srv_start(&s, script_masked);
	wsc_t *w = client_connect(&s, NULL);
	wsc_msg_t m;
	assert_rc(wsc_recv(w, 2000, &m), -EPROTO);
	wsc_free(w);
	srv_join(&s);
	assert_rc(s.close_code, 1002);
	srv_free(&s);
}

static void script_503(srv_t *s)
{
	srv_handshake_read(s);
	static const char r[] = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\n"
				"Content-Length: 0\r\nConnection: close\r\n\r\n";
	write_all(s->fd, r, sizeof r - 1);
}

static void test_refused_503(void **state)
{
	(void)state;
	srv_t s;
	srv_start(&s, script_503);
	char url[64];
	snprintf(url, sizeof url, "ws://127.0.0.1:%u/v1/ws", s.port);
	wsc_t *w = NULL;
	wsc_status_t st;
	assert_rc(wsc_connect(&w, url, NULL, &st), -FC_EUNAVAIL);
	assert_null(w);
	assert_rc(st.http_status, 503);
	assert_rc(st.retry_after_s, 7);
	assert_non_null(strstr(st.msg, "503"));
	srv_join(&s);
}

static void script_bad_accept(srv_t *s)
{
	srv_handshake_read(s);
	srv_send_101(s, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", NULL, 0);
}

static void test_bad_accept(void **state)
{
	(void)state;
	srv_t s;
	srv_start(&s, script_bad_accept);
	char url[64];
	snprintf(url, sizeof url, "ws://127.0.0.1:%u/v1/ws", s.port);
	wsc_t *w = NULL;
	wsc_status_t st;
	assert_rc(wsc_connect(&w, url, NULL, &st), -EPROTO);
	assert_non_null(strstr(st.msg, "Sec-WebSocket-Accept"));
	assert_rc(st.http_status, 0);
	srv_join(&s);
}

static void script_quiet_then_close(srv_t *s)
{
	srv_handshake_read(s);
	srv_send_101(s, s->accept, NULL, 0);
	srv_read_frame(s); /* the client's ping */
	srv_read_frame(s); /* the client's close */
	srv_frame(s, WS_OP_CLOSE, 1, "\x03\xe9", 2);
}

static void test_timeout_ping_close(void **state)
{
	(void)state;
	srv_t s;
	srv_start(&s, script_quiet_then_close);
	wsc_t *w = client_connect(&s, NULL);
	wsc_msg_t m;
	assert_rc(wsc_recv(w, 50, &m), 0);
	assert_rc(wsc_recv(w, 0, &m), 0);
	assert_rc(wsc_ping(w, SLICE_LIT("hi")), 0);
	assert_rc(wsc_close(w, 4000, NULL, 2000), 0);
	/* The server answered with its own code; that is what we report. */
	assert_rc(wsc_close_code(w), 1001);
	assert_rc(wsc_close(w, 1005, NULL, 0), -EINVAL);
	wsc_free(w);
	srv_join(&s);
	assert_rc(s.op[0], WS_OP_PING);
	assert_memory_equal(s.payload[0], "hi", 2);
	assert_rc(s.op[1], WS_OP_CLOSE);
	assert_rc(s.close_code, 4000);
	srv_free(&s);
}

static void script_eof(srv_t *s)
{
	srv_handshake_read(s);
	srv_send_101(s, s->accept, NULL, 0);
	/* Close the TCP stream with half a frame sent. */
	write_all(s->fd,
		  "\x82\x05"
		  "ab",
		  4);
}

static void test_eof_without_close(void **state)
{
	(void)state;
	srv_t s;
	srv_start(&s, script_eof);
	wsc_t *w = client_connect(&s, NULL);
	srv_join(&s);
	wsc_msg_t m;
	assert_rc(wsc_recv(w, 2000, &m), -ECONNRESET);
	assert_rc(wsc_close_code(w), 1006);
	assert_rc(wsc_close(w, 1000, NULL, 100), 0);
	wsc_free(w);
}

static void script_v6(srv_t *s)
{
	srv_handshake_read(s);
	srv_send_101(s, s->accept, NULL, 0);
	srv_read_frame(s); /* the client's close */
	srv_frame(s, WS_OP_CLOSE, 1, "\x03\xe8", 2);
}

/* An IPv6 literal: brackets in the URL and in Host, none for the socket. */
static void test_ipv6_literal(void **state)
{
	(void)state;
	srv_t s;
	memset(&s, 0, sizeof s);
	s.script = script_v6;
	s.lfd = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	socklen_t al = sizeof a;
	if (s.lfd < 0 || bind(s.lfd, (struct sockaddr *)&a, sizeof a) != 0) {
		if (s.lfd >= 0)
			close(s.lfd);
		skip(); /* no IPv6 loopback on this machine */
	}
	assert_rc(listen(s.lfd, 1), 0);
	assert_rc(getsockname(s.lfd, (struct sockaddr *)&a, &al), 0);
	s.port = ntohs(a.sin6_port);
	assert_rc(pthread_create(&s.thr, NULL, srv_main, &s), 0);
	char url[64];
	snprintf(url, sizeof url, "ws://[::1]:%u/v1/ws", s.port);
	wsc_t *w = NULL;
	wsc_status_t st;
	assert_rc(wsc_connect(&w, url, NULL, &st), 0);
	assert_rc(wsc_close(w, 1000, NULL, 2000), 0);
	assert_rc(wsc_close_code(w), 1000);
	wsc_free(w);
	srv_join(&s);
	char host[64];
	snprintf(host, sizeof host, "[::1]:%u", s.port);
	assert_string_equal(s.host, host);
	srv_free(&s);
}

static void test_connect_refused(void **state)
{
	(void)state;
	/* A port that was just free: nothing listens on it. */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	assert_rc(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_rc(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	close(fd);
	char url[64];
	snprintf(url, sizeof url, "ws://127.0.0.1:%u/", ntohs(a.sin_port));
	wsc_t *w = NULL;
	wsc_status_t st;
	assert_rc(wsc_connect(&w, url, NULL, &st), -ECONNREFUSED);
	assert_string_equal(st.msg, "Connection refused");
	assert_rc(wsc_connect(&w, "ftp://x/", NULL, &st), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_lengths),
		cmocka_unit_test(test_mask_rfc_example),
		cmocka_unit_test(test_parse_frames),
		cmocka_unit_test(test_url_parse),
		cmocka_unit_test(test_accept_value),
		cmocka_unit_test(test_handshake_send_close),
		cmocka_unit_test(test_fragments_and_ping),
		cmocka_unit_test(test_message_cap),
		cmocka_unit_test(test_masked_server_frame),
		cmocka_unit_test(test_refused_503),
		cmocka_unit_test(test_bad_accept),
		cmocka_unit_test(test_timeout_ping_close),
		cmocka_unit_test(test_eof_without_close),
		cmocka_unit_test(test_ipv6_literal),
		cmocka_unit_test(test_connect_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
