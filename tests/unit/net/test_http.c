/*
 * Unit tests for net/http: the request-head parser (F1, C11 and C12 of the
 * cases file plus the strictness rules of the header) and the chunked body
 * decoder (C14). Every head is also parsed at every shorter length, from an
 * exact-size copy, and every chunked body is also decoded in small steps;
 * the results must agree with the one-shot run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/http.h"

/* cmocka's integer asserts compare unsigned; this one keeps the sign. */
#define assert_rc(got, want)                                                     \
	do {                                                                     \
		long long got_ = (long long)(got), want_ = (long long)(want);    \
		if (got_ != want_)                                               \
			fail_msg("%s = %lld, expected %lld", #got, got_, want_); \
	} while (0)

static void assert_slice(slice_t s, const char *want)
{
	size_t n = strlen(want);
	if (s.len != n || (n && memcmp(s.ptr, want, n) != 0))
		fail_msg("slice \"%.*s\", expected \"%s\"", (int)s.len,
			 s.ptr ? (const char *)s.ptr : "", want);
}

/* Parses buf[0..k) from an exact-size copy, so ASan sees any overread. */
static int parse_exact(const uint8_t *s, size_t k, http_req_t *req)
{
	uint8_t *b = malloc(k ? k : 1);
	assert_non_null(b);
	if (k)
		memcpy(b, s, k);
	int rc = http_req_parse(b, k, req);
	free(b);
	return rc;
}

/*
 * Expects `want` for the whole input. Every prefix must ask for more (0) or,
 * for an error, may already fail with the same error; a prefix never
 * succeeds before the blank line.
 */
static void expect_parse_n(const char *s, size_t n, int want)
{
	http_req_t req;
	int rc = parse_exact((const uint8_t *)s, n, &req);
	if (rc != want)
		fail_msg("parse of \"%.*s\" = %d, expected %d", (int)n, s, rc, want);
	for (size_t k = 0; k < n; k++) {
		rc = parse_exact((const uint8_t *)s, k, &req);
		if (want > 0 && k < (size_t)want && rc != 0)
			fail_msg("prefix %zu: %d, expected 0", k, rc);
		if (want > 0 && k >= (size_t)want && rc != want)
			fail_msg("prefix %zu: %d, expected %d", k, rc, want);
		if (want < 0 && rc != 0 && rc != want)
			fail_msg("prefix %zu: %d, expected 0 or %d", k, rc, want);
	}
}

static void expect_parse(const char *s, int want)
{
	expect_parse_n(s, strlen(s), want);
}

static int parse_str(const char *s, http_req_t *req)
{
	return http_req_parse((const uint8_t *)s, strlen(s), req);
}

#define MALFORMED (-FC_EMALFORMED)
#define TOOBIG (-FC_ETOOBIG)

/* ---- request heads ------------------------------------------------------- */

static const char f1[] = "GET /ws HTTP/1.1\r\n"
			 "Host: chat.example\r\n"
			 "Upgrade: websocket\r\n"
			 "Connection: Upgrade\r\n"
			 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			 "Sec-WebSocket-Version: 13\r\n"
			 "\r\n";

static void test_f1_fields(void **state)
{
	(void)state;
	http_req_t req;
	assert_rc(parse_str(f1, &req), strlen(f1));
	assert_slice(req.method, "GET");
	assert_slice(req.target, "/ws");
	assert_slice(req.path, "/ws");
	assert_slice(req.query, "");
	assert_int_equal(req.version_minor, 1);
	assert_int_equal(req.nheaders, 5);
	assert_int_equal(req.head_len, strlen(f1));
	assert_rc(req.content_length, -1);
	assert_int_equal(req.chunked, 0);
	assert_int_equal(req.keep_alive, 1);
	assert_slice(req.headers[0].name, "Host");
	assert_slice(req.headers[0].value, "chat.example");
	assert_slice(req.headers[3].name, "Sec-WebSocket-Key");
	assert_slice(req.headers[3].value, "dGhlIHNhbXBsZSBub25jZQ==");

	int count = -1;
	assert_slice(http_header_get(&req, "sec-websocket-KEY", &count),
		     "dGhlIHNhbXBsZSBub25jZQ==");
	assert_int_equal(count, 1);
	slice_t none = http_header_get(&req, "Content-Type", &count);
	assert_null(none.ptr);
	assert_int_equal(none.len, 0);
	assert_int_equal(count, 0);
	assert_slice(http_header_get(&req, "upgrade", NULL), "websocket");

	assert_true(http_header_has_token(&req, "connection", "upgrade"));
	assert_false(http_header_has_token(&req, "Connection", "upgrad"));
	assert_false(http_header_has_token(&req, "X-Absent", "upgrade"));

	expect_parse(f1, (int)strlen(f1));
}

static void test_target_split_and_body(void **state)
{
	(void)state;
	http_req_t req;
	const char *q = "GET /v1/x?a=1&b=?2 HTTP/1.1\r\nHost: h\r\n\r\n";
	assert_rc(parse_str(q, &req), strlen(q));
	assert_slice(req.path, "/v1/x");
	assert_slice(req.query, "a=1&b=?2");
	const char *e = "OPTIONS /? HTTP/1.1\r\nHost: h\r\n\r\n";
	assert_rc(parse_str(e, &req), strlen(e));
	assert_slice(req.method, "OPTIONS");
	assert_slice(req.path, "/");
	assert_slice(req.query, "");

	/* The head ends at the blank line; the body is the caller's. */
	const char *post = "POST /v1/ping HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET";
	size_t head = strlen(post) - 8;
	assert_rc(parse_str(post, &req), head);
	assert_rc(req.content_length, 5);
	expect_parse(post, (int)head);

	/* Empty lines before the request line are skipped (RFC 9112 2.2). */
	const char *lead = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
	expect_parse(lead, (int)strlen(lead));

	/* Values: OWS trimmed, HTAB and obs-text kept inside. */
	const char *v = "GET / HTTP/1.1\r\nHost:h\r\nX-A: \t a\tb \xc3\xa9 \t\r\nX-B:\r\n\r\n";
	assert_rc(parse_str(v, &req), strlen(v));
	assert_slice(req.headers[0].value, "h");
	assert_slice(req.headers[1].value, "a\tb \xc3\xa9");
	assert_slice(req.headers[2].value, "");
}

static void test_incomplete_and_empty(void **state)
{
	(void)state;
	http_req_t req;
	assert_rc(http_req_parse(NULL, 0, &req), 0);
	assert_rc(parse_str("GET / HTTP/1.1\r\nHost: h\r\n", &req), 0);
	assert_rc(parse_str("GET / HTTP/1.1\r\nHost: h\r\n\r", &req), 0);
	/* A complete bad line is reported without waiting for the blank line. */
	assert_rc(parse_str("GET / HTTP/1.1\r\nBad Header: x\r\n", &req), MALFORMED);
	assert_rc(parse_str("GET / HTTP/1.1\n", &req), MALFORMED);
}

static void test_line_endings(void **state)
{
	(void)state;
	expect_parse("GET / HTTP/1.1\nHost: h\n\n", MALFORMED);
	expect_parse("GET / HTTP/1.1\r\nHost: h\n\r\n", MALFORMED);
	expect_parse("GET / HTTP/1.1\r\nHost: h\r\n\n", MALFORMED);
	expect_parse("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", MALFORMED);
	expect_parse("GET / HTTP/1.1\r\r\nHost: h\r\n\r\n", MALFORMED);
	expect_parse("GET /\r HTTP/1.1\r\nHost: h\r\n\r\n", MALFORMED);
	expect_parse("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", MALFORMED);
	expect_parse("GET / HTTP/1.1\r\nHost: h\r\n\r\r\n", MALFORMED);
}

static void test_request_line(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"GET / HTTP/1.2\r\nHost: h\r\n\r\n",
		"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.10\r\nHost: h\r\n\r\n",
		"GET / http/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
		"GET /  HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
		" GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /\r\nHost: h\r\n\r\n",
		"GET\r\nHost: h\r\n\r\n",
		"GE(T / HTTP/1.1\r\nHost: h\r\n\r\n",
		"G\xc3\x89T / HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1\r\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		http_req_t req;
		int rc = parse_str(bad[i], &req);
		if (i == sizeof bad / sizeof bad[0] - 1)
			assert_rc(rc, 0);
		else if (rc != MALFORMED)
			fail_msg("variant %zu: %d", i, rc);
	}
	const char *h10 = "GET / HTTP/1.0\r\n\r\n";
	http_req_t req;
	assert_rc(parse_str(h10, &req), strlen(h10));
	assert_int_equal(req.version_minor, 0);
	assert_int_equal(req.keep_alive, 0);
	assert_int_equal(req.nheaders, 0);
}

static void test_header_syntax(void **state)
{
	(void)state;
	/* obs-fold, whitespace before the colon, bad name bytes. */
	expect_parse("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n  continued\r\n\r\n", MALFORMED);
	expect_parse("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\tcontinued\r\n\r\n", MALFORMED);
	expect_parse("GET / HTTP/1.1\r\n Host: h\r\n\r\n", MALFORMED);
	expect_parse("GET / HTTP/1.1\r\nHost : h\r\n\r\n", MALFORMED);
	expect_parse("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", MALFORMED);
	expect_parse("GET / HTTP/1.1\r\nHost: h\r\nX@Y: 1\r\n\r\n", MALFORMED);
	expect_parse("GET / HTTP/1.1\r\nHost: h\r\nX Y: 1\r\n\r\n", MALFORMED);
	expect_parse("GET / HTTP/1.1\r\nHost: h\r\n: 1\r\n\r\n", MALFORMED);
	expect_parse("GET / HTTP/1.1\r\nHost: h\r\nX-\xc3\xa9: 1\r\n\r\n", MALFORMED);
	expect_parse("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", MALFORMED);
	/* Control bytes in values. */
	expect_parse("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01"
		     "b\r\n\r\n",
		     MALFORMED);
	expect_parse("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7f\r\n\r\n", MALFORMED);
	expect_parse("GET / HTTP/1.1\r\nHost: h\r\nX-A: \x1b[0m\r\n\r\n", MALFORMED);
	static const char nul[] = "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n";
	expect_parse_n(nul, sizeof nul - 1, MALFORMED);
	/* Odd but valid token names. */
	const char *ok = "GET / HTTP/1.1\r\nHost: h\r\nX!#$%&'*+-.^_`|~09: 1\r\n\r\n";
	expect_parse(ok, (int)strlen(ok));
}

static void test_host_rules(void **state)
{
	(void)state;
	http_req_t req;
	expect_parse("GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", MALFORMED);
	expect_parse("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", MALFORMED);
	expect_parse("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", MALFORMED);
	expect_parse("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", MALFORMED);
	const char *empty = "GET / HTTP/1.1\r\nHost:\r\n\r\n";
	assert_rc(parse_str(empty, &req), strlen(empty));
	assert_slice(http_header_get(&req, "Host", NULL), "");
}

static void test_keep_alive(void **state)
{
	(void)state;
	http_req_t req;
	const char *a = "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
	assert_rc(parse_str(a, &req), strlen(a));
	assert_int_equal(req.keep_alive, 0);
	const char *b = "GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive, CLOSE\r\n\r\n";
	assert_rc(parse_str(b, &req), strlen(b));
	assert_int_equal(req.keep_alive, 0);
	const char *c = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
	assert_rc(parse_str(c, &req), strlen(c));
	assert_int_equal(req.keep_alive, 1);
	const char *d = "GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n";
	assert_rc(parse_str(d, &req), strlen(d));
	assert_int_equal(req.keep_alive, 1);
}

static void test_limits(void **state)
{
	(void)state;
	http_req_t req;
	char *buf = malloc(2 * HTTP_MAX_HEAD);
	assert_non_null(buf);

	/* 48 header lines fit, 49 do not. */
	for (int extra = 47; extra <= 48; extra++) {
		size_t n = (size_t)snprintf(buf, HTTP_MAX_HEAD, "GET / HTTP/1.1\r\nHost: h\r\n");
		for (int i = 0; i < extra; i++)
			n += (size_t)snprintf(buf + n, HTTP_MAX_HEAD - n, "X-%d: v\r\n", i);
		n += (size_t)snprintf(buf + n, HTTP_MAX_HEAD - n, "\r\n");
		int rc = http_req_parse((const uint8_t *)buf, n, &req);
		if (extra == 47) {
			assert_rc(rc, n);
			assert_int_equal(req.nheaders, 48);
		} else {
			assert_rc(rc, TOOBIG);
		}
	}

	/* A head of exactly HTTP_MAX_HEAD bytes fits; one more byte does not. */
	static const char pre[] = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ";
	const size_t fixed = sizeof pre - 1 + 4;
	for (size_t total = HTTP_MAX_HEAD - 1; total <= HTTP_MAX_HEAD + 1; total++) {
		size_t pad = total - fixed;
		memcpy(buf, pre, sizeof pre - 1);
		memset(buf + sizeof pre - 1, 'p', pad);
		memcpy(buf + sizeof pre - 1 + pad, "\r\n\r\n", 4);
		int rc = http_req_parse((const uint8_t *)buf, total, &req);
		if (total <= HTTP_MAX_HEAD)
			assert_rc(rc, total);
		else
			assert_rc(rc, TOOBIG);
		/* Missing its final CRLF: wait below the cap, refuse at it. */
		rc = http_req_parse((const uint8_t *)buf, total - 2, &req);
		if (total - 2 < HTTP_MAX_HEAD)
			assert_rc(rc, 0);
		else
			assert_rc(rc, TOOBIG);
	}
	/* Unterminated garbage: 0 below the cap, -FC_ETOOBIG from it on. */
	memset(buf, 'G', 2 * HTTP_MAX_HEAD);
	assert_rc(http_req_parse((const uint8_t *)buf, HTTP_MAX_HEAD - 1, &req), 0);
	assert_rc(http_req_parse((const uint8_t *)buf, HTTP_MAX_HEAD, &req), TOOBIG);
	assert_rc(http_req_parse((const uint8_t *)buf, 2 * HTTP_MAX_HEAD, &req), TOOBIG);
	/* Endless empty lines are no way around the cap. */
	for (size_t i = 0; i < 2 * HTTP_MAX_HEAD; i += 2)
		memcpy(buf + i, "\r\n", 2);
	assert_rc(http_req_parse((const uint8_t *)buf, 2 * HTTP_MAX_HEAD, &req), TOOBIG);
	free(buf);
}

/* ---- C12: Content-Length ------------------------------------------------- */

#define POST_WITH(lines) "POST /v1/ping HTTP/1.1\r\nHost: chat.example\r\n" lines "\r\n"

static void test_c12_content_length(void **state)
{
	(void)state;
	static const char smuggle[] = "POST /v1/ping HTTP/1.1\r\n"
				      "Host: chat.example\r\n"
				      "Content-Length: 0\r\n"
				      "Content-Length: 49\r\n"
				      "\r\n"
				      "GET /admin/users HTTP/1.1\r\n"
				      "Host: chat.example\r\n"
				      "\r\n";
	/* 49 is indeed the length of the smuggled request. */
	assert_int_equal(strlen(strstr(smuggle, "GET /admin")), 49);
	expect_parse(smuggle, MALFORMED);

	static const char *const bad[] = {
		POST_WITH("Content-Length: 5, 7\r\n"),
		POST_WITH("Content-Length: +5\r\n"),
		POST_WITH("Content-Length: 0x5\r\n"),
		POST_WITH("Content-Length: -1\r\n"),
		POST_WITH("Content-Length: 99999999999999999999\r\n"),
		POST_WITH("Content-Length: 9007199254740993\r\n"),
		POST_WITH("Content-Length:\r\n"),
		POST_WITH("Content-Length: 5,\r\n"),
		POST_WITH("Content-Length: ,5\r\n"),
		POST_WITH("Content-Length: 5 5\r\n"),
		POST_WITH("Content-Length: 5.0\r\n"),
		POST_WITH("Content-Length: 5\r\nContent-Length: 6\r\n"),
		POST_WITH("Content-Length: 5\r\ncontent-length: 5, 6\r\n"),
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		http_req_t req;
		int rc = parse_str(bad[i], &req);
		if (rc != MALFORMED)
			fail_msg("variant %zu: %d", i, rc);
	}

	/* Identical duplicates are one value. */
	static const char *const same[] = {
		POST_WITH("Content-Length: 5\r\nContent-Length: 5\r\n"),
		POST_WITH("Content-Length: 5, 5\r\n"),
		POST_WITH("Content-Length: 5,5\r\nCONTENT-LENGTH:  5 \r\n"),
		POST_WITH("Content-Length: 005\r\n"),
	};
	for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
		http_req_t req;
		assert_rc(parse_str(same[i], &req), strlen(same[i]));
		assert_rc(req.content_length, 5);
	}

	http_req_t req;
	const char *max = POST_WITH("Content-Length: 9007199254740992\r\n");
	assert_rc(parse_str(max, &req), strlen(max));
	assert_rc(req.content_length, INT64_C(9007199254740992));
	const char *zero = POST_WITH("Content-Length: 0\r\n");
	assert_rc(parse_str(zero, &req), strlen(zero));
	assert_rc(req.content_length, 0);
}

static void test_transfer_encoding(void **state)
{
	(void)state;
	http_req_t req;
	const char *ok = POST_WITH("Transfer-Encoding: chunked\r\n");
	assert_rc(parse_str(ok, &req), strlen(ok));
	assert_int_equal(req.chunked, 1);
	assert_rc(req.content_length, -1);
	const char *upper = POST_WITH("transfer-encoding:  CHUNKED \r\n");
	assert_rc(parse_str(upper, &req), strlen(upper));
	assert_int_equal(req.chunked, 1);

	static const char *const bad[] = {
		POST_WITH("Transfer-Encoding: gzip, chunked\r\n"),
		POST_WITH("Transfer-Encoding: chunked, chunked\r\n"),
		POST_WITH("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
		POST_WITH("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"),
		POST_WITH("Transfer-Encoding: identity\r\n"),
		POST_WITH("Transfer-Encoding:\r\n"),
		POST_WITH("Transfer-Encoding: chunked;q=1\r\n"),
		POST_WITH("Transfer-Encoding: xchunked\r\n"),
		POST_WITH("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"),
		POST_WITH("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"),
		"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = parse_str(bad[i], &req);
		if (rc != MALFORMED)
			fail_msg("variant %zu: %d", i, rc);
	}
}

static void test_has_token(void **state)
{
	(void)state;
	http_req_t req;
	const char *s = "GET / HTTP/1.1\r\nHost: h\r\nConnection: , keep-alive ,,Upgrade\t,\r\n"
			"Connection: TE\r\nUpgrade: websocket/13, WebSocket\r\n\r\n";
	assert_rc(parse_str(s, &req), strlen(s));
	assert_true(http_header_has_token(&req, "Connection", "upgrade"));
	assert_true(http_header_has_token(&req, "Connection", "KEEP-ALIVE"));
	assert_true(http_header_has_token(&req, "connection", "te"));
	assert_false(http_header_has_token(&req, "Connection", "keep"));
	assert_false(http_header_has_token(&req, "Connection", ""));
	assert_true(http_header_has_token(&req, "Upgrade", "websocket"));
	assert_true(http_header_has_token(&req, "Upgrade", "websocket/13"));
	int count;
	assert_slice(http_header_get(&req, "CONNECTION", &count), ", keep-alive ,,Upgrade\t,");
	assert_int_equal(count, 2);
}

/* ---- C14: chunked bodies ------------------------------------------------- */

typedef struct dec {
	int rc; /* first error, or 0 */
	uint8_t out[4096];
	size_t out_len;
	int done;
	size_t consumed;     /* input bytes consumed in total */
	size_t fed_at_error; /* input bytes handed over when the error came */
} dec_t;

/* Decodes in[0..n) handed over step bytes at a time (0: all at once). */
static void decode_stream(const uint8_t *in, size_t n, size_t step, dec_t *d)
{
	http_chunked_t st;
	uint8_t *pend = malloc(n ? n : 1);
	size_t have = 0, fed = 0;

	assert_non_null(pend);
	memset(&st, 0, sizeof st);
	memset(d, 0, sizeof *d);
	if (step == 0)
		step = n ? n : 1;
	while (fed < n && !d->done) {
		size_t k = n - fed < step ? n - fed : step;
		memcpy(pend + have, in + fed, k);
		have += k;
		fed += k;
		size_t out_len = 99;
		int done = 0;
		int rc = http_chunked_decode(&st, pend, have, &out_len, &done);
		if (rc < 0) {
			d->rc = rc;
			d->fed_at_error = fed;
			break;
		}
		assert_true((size_t)rc <= have);
		assert_true(out_len <= (size_t)rc);
		if (d->out_len + out_len <= sizeof d->out)
			memcpy(d->out + d->out_len, pend, out_len);
		d->out_len += out_len;
		d->consumed += (size_t)rc;
		d->done = done;
		memmove(pend, pend + rc, have - (size_t)rc);
		have -= (size_t)rc;
	}
	free(pend);
}

static void expect_chunked_n(const uint8_t *in, size_t n, int want_rc, const char *want_out,
			     size_t want_consumed)
{
	static const size_t steps[] = {0, 1, 2, 3, 7, 64};
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		dec_t *d = malloc(sizeof *d);
		assert_non_null(d);
		decode_stream(in, n, steps[i], d);
		if (d->rc != want_rc)
			fail_msg("step %zu: rc %d, expected %d", steps[i], d->rc, want_rc);
		if (want_rc == 0) {
			assert_true(d->done);
			assert_int_equal(d->consumed, want_consumed);
			assert_int_equal(d->out_len, strlen(want_out));
			assert_memory_equal(d->out, want_out, d->out_len);
		}
		free(d);
	}
}

static void expect_chunked(const char *in, int want_rc, const char *want_out)
{
	expect_chunked_n((const uint8_t *)in, strlen(in), want_rc, want_out, strlen(in));
}

static const char c14_head[] = "POST /v1/upload HTTP/1.1\r\n"
			       "Host: chat.example\r\n"
			       "Transfer-Encoding: chunked\r\n"
			       "\r\n";

/* Parses the C14 head in front of body and decodes the body after it. */
static void expect_c14(const uint8_t *body, size_t n, int want_rc, size_t max_fed_at_error)
{
	size_t hn = sizeof c14_head - 1;
	uint8_t *req_buf = malloc(hn + n);
	assert_non_null(req_buf);
	memcpy(req_buf, c14_head, hn);
	memcpy(req_buf + hn, body, n);
	http_req_t req;
	assert_rc(http_req_parse(req_buf, hn + n, &req), hn);
	assert_int_equal(req.chunked, 1);
	dec_t *d = malloc(sizeof *d);
	assert_non_null(d);
	decode_stream(req_buf + hn, n, 0, d);
	assert_rc(d->rc, want_rc);
	decode_stream(req_buf + hn, n, 1, d);
	assert_rc(d->rc, want_rc);
	assert_true(d->fed_at_error <= max_fed_at_error);
	free(d);
	free(req_buf);
}

static void test_c14_overflow(void **state)
{
	(void)state;
	/* 0x10000000000000005 would wrap to 5 in 64 bits. */
	const char *wrap = "10000000000000005\r\nhello\r\n0\r\n\r\n";
	expect_c14((const uint8_t *)wrap, strlen(wrap), TOOBIG, 15);
	const char *f17 = "fffffffffffffffff\r\nhello\r\n0\r\n\r\n";
	expect_c14((const uint8_t *)f17, strlen(f17), TOOBIG, 14);
	const char *neg = "-5\r\nhello\r\n0\r\n\r\n";
	expect_c14((const uint8_t *)neg, strlen(neg), MALFORMED, 1);

	/* 100 000 leading zeros: refused once the line passes the cap. */
	const size_t zeros = 100000;
	const char *tail = "5\r\nhello\r\n0\r\n\r\n";
	uint8_t *z = malloc(zeros + strlen(tail));
	assert_non_null(z);
	memset(z, '0', zeros);
	memcpy(z + zeros, tail, strlen(tail));
	expect_c14(z, zeros + strlen(tail), TOOBIG, HTTP_CHUNK_LINE_MAX + 1);
	free(z);

	/* "5;" and a 1 MiB extension. */
	const size_t mib = 1u << 20;
	uint8_t *x = malloc(2 + mib + strlen(tail));
	assert_non_null(x);
	memcpy(x, "5;", 2);
	memset(x + 2, 'e', mib);
	memcpy(x + 2 + mib, tail + 1, strlen(tail) - 1);
	expect_c14(x, 2 + mib + strlen(tail) - 1, TOOBIG, HTTP_CHUNK_LINE_MAX + 1);
	free(x);

	/* The valid extension form is ignored. */
	expect_chunked("5;name=value\r\nhello\r\n0\r\n\r\n", 0, "hello");
	const char *ext = "5;name=value\r\nhello\r\n0\r\n\r\n";
	expect_c14((const uint8_t *)ext, strlen(ext), 0, 0);
}

static void test_chunked_valid(void **state)
{
	(void)state;
	expect_chunked("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 0, "hello world");
	expect_chunked("A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n", 0,
		       "0123456789abcdefghij");
	expect_chunked("0005\r\nhello\r\n000\r\n\r\n", 0, "hello");
	expect_chunked("0\r\n\r\n", 0, "");
	expect_chunked("5 ;a=b\r\nhello\r\n0\t;last\r\n\r\n", 0, "hello");
	expect_chunked("5;a=\"q; x\";b\r\nhello\r\n0\r\n\r\n", 0, "hello");
	expect_chunked("3\r\n\r\n\r\r\n0\r\n\r\n", 0, "\r\n\r");
	/* Trailer fields are checked and dropped. */
	expect_chunked("5\r\nhello\r\n0\r\nX-Sum: 1\r\nY:2\r\n\r\n", 0, "hello");

	/* Bytes after the final CRLF are the next request's. */
	const char *two = "5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
	expect_chunked_n((const uint8_t *)two, strlen(two), 0, "hello", strlen(two) - 16);

	/* Once done, further calls consume nothing. */
	http_chunked_t st = {0};
	uint8_t buf[] = "0\r\n\r\nXYZ";
	size_t out = 9;
	int done = 0;
	assert_rc(http_chunked_decode(&st, buf, 8, &out, &done), 5);
	assert_int_equal(done, 1);
	assert_int_equal(out, 0);
	assert_rc(http_chunked_decode(&st, buf + 5, 3, &out, &done), 0);
	assert_int_equal(done, 1);

	/* Partial input: data is handed out as it arrives. */
	memset(&st, 0, sizeof st);
	uint8_t part[] = "a\r\n0123";
	assert_rc(http_chunked_decode(&st, part, 7, &out, &done), 7);
	assert_int_equal(out, 4);
	assert_memory_equal(part, "0123", 4);
	assert_int_equal(done, 0);
	assert_int_equal(st.remaining, 6);
}

static void test_chunked_line_cap(void **state)
{
	(void)state;
	char line[HTTP_CHUNK_LINE_MAX + 64];
	/* A size line of exactly HTTP_CHUNK_LINE_MAX bytes is fine. */
	memset(line, '0', HTTP_CHUNK_LINE_MAX - 1);
	snprintf(line + HTTP_CHUNK_LINE_MAX - 1, 64, "5\r\nhello\r\n0\r\n\r\n");
	expect_chunked(line, 0, "hello");
	memset(line, '0', HTTP_CHUNK_LINE_MAX);
	snprintf(line + HTTP_CHUNK_LINE_MAX, 64, "5\r\nhello\r\n0\r\n\r\n");
	expect_chunked(line, TOOBIG, "");
	/* The same with an extension making up the length. */
	memcpy(line, "5;", 2);
	memset(line + 2, 'e', HTTP_CHUNK_LINE_MAX - 2);
	snprintf(line + HTTP_CHUNK_LINE_MAX, 64, "\r\nhello\r\n0\r\n\r\n");
	expect_chunked(line, 0, "hello");
	memset(line + 2, 'e', HTTP_CHUNK_LINE_MAX - 1);
	snprintf(line + HTTP_CHUNK_LINE_MAX + 1, 63, "\r\nhello\r\n0\r\n\r\n");
	expect_chunked(line, TOOBIG, "");

	/* 2^53 is the largest size; one more is too big. */
	dec_t *d = malloc(sizeof *d);
	assert_non_null(d);
	const char *max = "20000000000000\r\n";
	decode_stream((const uint8_t *)max, strlen(max), 0, d);
	assert_rc(d->rc, 0);
	assert_int_equal(d->consumed, strlen(max));
	assert_int_equal(d->done, 0);
	expect_chunked("20000000000001\r\n", TOOBIG, "");
	free(d);

	/* Trailer section capped at HTTP_MAX_HEAD. */
	size_t tn = 3 + HTTP_MAX_HEAD + 16;
	char *tr = malloc(tn + 1);
	assert_non_null(tr);
	memcpy(tr, "0\r\nX:", 5);
	memset(tr + 5, 'v', tn - 5);
	tr[tn] = '\0';
	expect_chunked(tr, TOOBIG, "");
	free(tr);
}

static void test_chunked_malformed(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"5\r\nhelloX\r\n0\r\n\r\n",
		"5\r\nhello\n0\r\n\r\n",
		"5\r\nhello\r0\r\n\r\n",
		"5\nhello\r\n0\r\n\r\n",
		"5\rhello\r\n0\r\n\r\n",
		"\r\nhello\r\n0\r\n\r\n",
		";a\r\nhello\r\n0\r\n\r\n",
		" 5\r\nhello\r\n0\r\n\r\n",
		"5 \r\nhello\r\n0\r\n\r\n",
		"0x5\r\nhello\r\n0\r\n\r\n",
		"+5\r\nhello\r\n0\r\n\r\n",
		"5g\r\nhello\r\n0\r\n\r\n",
		"5;a\x01\r\nhello\r\n0\r\n\r\n",
		"5;a\nb\r\nhello\r\n0\r\n\r\n",
		"5\r\nhello\r\n0\r\n X: 1\r\n\r\n",
		"5\r\nhello\r\n0\r\nX: \x01\r\n\r\n",
		"5\r\nhello\r\n0\r\nX: 1\n\r\n",
		"5\r\nhello\r\n0\r\n\rX",
		"5\r\nhello\r\n0\r\n\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		dec_t *d = malloc(sizeof *d);
		assert_non_null(d);
		decode_stream((const uint8_t *)bad[i], strlen(bad[i]), 0, d);
		if (d->rc != MALFORMED)
			fail_msg("variant %zu: %d", i, d->rc);
		decode_stream((const uint8_t *)bad[i], strlen(bad[i]), 1, d);
		if (d->rc != MALFORMED)
			fail_msg("variant %zu bytewise: %d", i, d->rc);
		free(d);
	}

	/* A failed decoder stays failed. */
	http_chunked_t st = {0};
	uint8_t b1[] = "x\r\n";
	uint8_t b2[] = "0\r\n\r\n";
	size_t out;
	int done;
	assert_rc(http_chunked_decode(&st, b1, 3, &out, &done), MALFORMED);
	assert_rc(http_chunked_decode(&st, b2, 5, &out, &done), MALFORMED);
	assert_int_equal(done, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_f1_fields),
		cmocka_unit_test(test_target_split_and_body),
		cmocka_unit_test(test_incomplete_and_empty),
		cmocka_unit_test(test_line_endings),
		cmocka_unit_test(test_request_line),
		cmocka_unit_test(test_header_syntax),
		cmocka_unit_test(test_host_rules),
		cmocka_unit_test(test_keep_alive),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_c12_content_length),
		cmocka_unit_test(test_transfer_encoding),
		cmocka_unit_test(test_has_token),
		cmocka_unit_test(test_c14_overflow),
		cmocka_unit_test(test_chunked_valid),
		cmocka_unit_test(test_chunked_line_cap),
		cmocka_unit_test(test_chunked_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
