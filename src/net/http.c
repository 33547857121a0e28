#include "net/http.h"

#include <limits.h>
#include <string.h>
#include <strings.h>

#include "core/assert.h"

/* RFC 9110 section 5.6.2: tchar, the bytes allowed in methods and field names. */
static const uint8_t tchar[256] = {
	['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1, ['!'] = 1, ['#'] = 1, ['$'] = 1,
	['%'] = 1,         ['&'] = 1,         ['\''] = 1,        ['*'] = 1, ['+'] = 1, ['-'] = 1,
	['.'] = 1,         ['^'] = 1,         ['_'] = 1,         ['`'] = 1, ['|'] = 1, ['~'] = 1,
};

/* Field values may hold HTAB, SP, visible ASCII and obs-text, never other
 * control bytes (a CR here would be a bare CR). */
static int is_field_byte(uint8_t c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/*
 * Iterator over the elements of a comma-separated field value. Each element
 * comes back with surrounding whitespace trimmed; empty elements are
 * returned too, so callers decide whether "5,,5" is acceptable.
 */
typedef struct list_iter {
	slice_t rest;
	int done;
} list_iter_t;

static int list_next(list_iter_t *it, slice_t *elem)
{
	if (it->done)
		return 0;
	const uint8_t *comma = it->rest.len ? memchr(it->rest.ptr, ',', it->rest.len) : NULL;
	size_t n = comma ? (size_t)(comma - it->rest.ptr) : it->rest.len;
	*elem = slice_trim(slice_make(it->rest.ptr, n));
	if (comma) {
		it->rest.ptr += n + 1;
		it->rest.len -= n + 1;
	} else {
		it->done = 1;
	}
	return 1;
}

/*
 * Finds the line starting at pos in buf[0..lim). Returns 1 with the line
 * being buf[pos..*end) (CRLF excluded) and *next the index after the LF; 0 if
 * no LF has arrived yet; -FC_EMALFORMED if the LF is not preceded by a CR.
 * A CR elsewhere in the line is left to the line parsers, which reject it
 * as a control byte.
 */
static int line_next(const uint8_t *buf, size_t lim, size_t pos, size_t *end, size_t *next)
{
	if (pos >= lim)
		return 0;
	const uint8_t *lf = memchr(buf + pos, '\n', lim - pos);
	if (!lf)
		return 0;
	size_t i = (size_t)(lf - buf);
	if (i == pos || buf[i - 1] != '\r')
		return -FC_EMALFORMED;
	*end = i - 1;
	*next = i + 1;
	return 1;
}

static int parse_request_line(const uint8_t *p, size_t n, http_req_t *req)
{
	size_t i = 0;

	while (i < n && tchar[p[i]])
		i++;
	if (i == 0 || i >= n || p[i] != ' ')
		return -FC_EMALFORMED;
	req->method = slice_make(p, i);

	size_t t = ++i;
	while (i < n && p[i] > 0x20 && p[i] < 0x7f)
		i++;
	if (i == t || i >= n || p[i] != ' ')
		return -FC_EMALFORMED;
	req->target = slice_make(p + t, i - t);
	i++;

	if (n - i != 8 || memcmp(p + i, "HTTP/1.", 7) != 0)
		return -FC_EMALFORMED;
	if (p[i + 7] == '0')
		req->version_minor = 0;
	else if (p[i + 7] == '1')
		req->version_minor = 1;
	else
		return -FC_EMALFORMED;

	/* absolute-form ("http://host/path", RFC 9112 section 3.2.2: a server
	 * MUST accept it): the path starts at the first '/' after the
	 * authority; "http://host" alone means "/". */
	slice_t tgt = req->target;
	size_t skip = 0;
	if (tgt.len >= 7 && strncasecmp((const char *)tgt.ptr, "http://", 7) == 0)
		skip = 7;
	else if (tgt.len >= 8 && strncasecmp((const char *)tgt.ptr, "https://", 8) == 0)
		skip = 8;
	if (skip) {
		const uint8_t *slash = memchr(tgt.ptr + skip, '/', tgt.len - skip);
		if (!slash)
			return -FC_EMALFORMED;
		tgt = slice_make(slash, tgt.len - (size_t)(slash - tgt.ptr));
	}
	const uint8_t *q = memchr(tgt.ptr, '?', tgt.len);
	if (q) {
		size_t plen = (size_t)(q - tgt.ptr);
		req->path = slice_make(tgt.ptr, plen);
		req->query = slice_make(q + 1, tgt.len - plen - 1);
	} else {
		req->path = tgt;
		req->query = slice_make(tgt.ptr + tgt.len, 0);
	}
	return 0;
}

static int parse_header_line(const uint8_t *p, size_t n, http_header_t *h)
{
	size_t i = 0;

	/* A leading SP or HTAB is obs-fold (RFC 9112 section 5.2); the token
	 * loop stops at once and the colon test rejects it. Whitespace before
	 * the colon is rejected the same way (section 5.1). */
	while (i < n && tchar[p[i]])
		i++;
	if (i == 0 || i >= n || p[i] != ':')
		return -FC_EMALFORMED;
	h->name = slice_make(p, i);
	for (size_t j = i + 1; j < n; j++)
		if (!is_field_byte(p[j]))
			return -FC_EMALFORMED;
	h->value = slice_trim(slice_make(p + i + 1, n - i - 1));
	return 0;
}

/* Parses every Content-Length line; all elements must be the same number. */
static int parse_content_length(const http_req_t *req, int64_t *out)
{
	slice_t name = SLICE_LIT("Content-Length");
	int64_t v = -1;

	for (size_t k = 0; k < req->nheaders; k++) {
		if (!slice_ieq(req->headers[k].name, name))
			continue;
		list_iter_t it = {req->headers[k].value, 0};
		slice_t e;
		while (list_next(&it, &e)) {
			uint64_t x = 0;
			if (e.len == 0)
				return -FC_EMALFORMED;
			for (size_t i = 0; i < e.len; i++) {
				if (e.ptr[i] < '0' || e.ptr[i] > '9')
					return -FC_EMALFORMED;
				/* x <= 2^53 here, so the step cannot wrap. */
				x = x * 10 + (uint64_t)(e.ptr[i] - '0');
				if (x > HTTP_MAX_BODY_LEN)
					return -FC_EMALFORMED;
			}
			if (v >= 0 && (uint64_t)v != x)
				return -FC_EMALFORMED;
			v = (int64_t)x;
		}
	}
	*out = v;
	return 0;
}

/* Applies the rules that need the whole head: framing and Host. */
static int check_head(http_req_t *req)
{
	int n;
	int rc = parse_content_length(req, &req->content_length);
	if (rc < 0)
		return rc;

	(void)http_header_get(req, "Host", &n);
	if (n > 1 || (n == 0 && req->version_minor == 1))
		return -FC_EMALFORMED;

	slice_t te = http_header_get(req, "Transfer-Encoding", &n);
	if (n > 0) {
		if (n != 1 || !slice_ieq(te, SLICE_LIT("chunked")))
			return -FC_EMALFORMED;
		if (req->version_minor == 0 || req->content_length >= 0)
			return -FC_EMALFORMED;
		req->chunked = 1;
	}

	if (http_header_has_token(req, "Connection", "close"))
		req->keep_alive = 0;
	else if (req->version_minor == 1)
		req->keep_alive = 1;
	else
		req->keep_alive = http_header_has_token(req, "Connection", "keep-alive");
	return 0;
}

int http_req_parse(const uint8_t *buf, size_t len, http_req_t *req)
{
	size_t lim = len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD;
	size_t pos = 0, end = 0, next = 0;
	int have_request_line = 0;
	int rc;

	ASSERT(req != NULL);
	ASSERT(buf != NULL || len == 0);
	memset(req, 0, sizeof *req);
	req->content_length = -1;

	for (;;) {
		rc = line_next(buf, lim, pos, &end, &next);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return len >= HTTP_MAX_HEAD ? -FC_ETOOBIG : 0;
		if (!have_request_line) {
			/* Empty lines before the request line are ignored. */
			if (end != pos) {
				rc = parse_request_line(buf + pos, end - pos, req);
				if (rc < 0)
					return rc;
				have_request_line = 1;
			}
		} else if (end == pos) {
			req->head_len = next;
			break;
		} else {
			if (req->nheaders == HTTP_MAX_HEADERS)
				return -FC_ETOOBIG;
			rc = parse_header_line(buf + pos, end - pos, &req->headers[req->nheaders]);
			if (rc < 0)
				return rc;
			req->nheaders++;
		}
		pos = next;
	}

	rc = check_head(req);
	if (rc < 0)
		return rc;
	return (int)req->head_len;
}

slice_t http_header_get(const http_req_t *req, const char *name, int *count)
{
	slice_t want = slice_cstr(name);
	slice_t first = {NULL, 0};
	int n = 0;

	for (size_t k = 0; k < req->nheaders; k++) {
		if (!slice_ieq(req->headers[k].name, want))
			continue;
		if (n == 0)
			first = req->headers[k].value;
		n++;
	}
	if (count)
		*count = n;
	return first;
}

int http_header_has_token(const http_req_t *req, const char *name, const char *token)
{
	slice_t want = slice_cstr(name);
	slice_t tok = slice_cstr(token);

	for (size_t k = 0; k < req->nheaders; k++) {
		if (!slice_ieq(req->headers[k].name, want))
			continue;
		list_iter_t it = {req->headers[k].value, 0};
		slice_t e;
		while (list_next(&it, &e))
			if (e.len && slice_ieq(e, tok))
				return 1;
	}
	return 0;
}

/* Chunked decoder states; CH_SIZE is 0 so a zeroed struct is the start. */
enum {
	CH_SIZE = 0,      /* hex digits of the chunk size */
	CH_SIZE_WS,       /* whitespace after the size, before ';' */
	CH_EXT,           /* chunk extensions, ignored up to CR */
	CH_SIZE_LF,       /* LF ending the size line */
	CH_DATA,          /* chunk data */
	CH_DATA_CR,       /* CR after chunk data */
	CH_DATA_LF,       /* LF after chunk data */
	CH_TRAILER_START, /* start of a trailer line, or the final CRLF */
	CH_TRAILER_LINE,  /* inside a trailer field line */
	CH_TRAILER_LF,    /* LF ending a trailer field line */
	CH_END_LF,        /* LF of the final empty line */
	CH_DONE,
	CH_FAILED
};

static int hex_value(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Counts one byte of the size line against its cap. */
static int size_line_byte(http_chunked_t *st)
{
	if (++st->line_len > HTTP_CHUNK_LINE_MAX)
		return -FC_ETOOBIG;
	return 0;
}

/* Steps the decoder over one non-data byte. */
static int chunk_step(http_chunked_t *st, uint8_t c)
{
	int d, rc;

	switch (st->state) {
	case CH_SIZE:
		/* In this state line_len is the number of digits seen so far. */
		d = hex_value(c);
		if (d < 0 && st->line_len == 0)
			return -FC_EMALFORMED;
		if (c == '\r') {
			st->state = CH_SIZE_LF;
			return 0;
		}
		rc = size_line_byte(st);
		if (rc < 0)
			return rc;
		if (d >= 0) {
			/* remaining <= 2^53 here, so the step cannot wrap. */
			st->remaining = st->remaining * 16 + (uint64_t)d;
			if (st->remaining > HTTP_MAX_BODY_LEN)
				return -FC_ETOOBIG;
			return 0;
		}
		if (c == ';')
			st->state = CH_EXT;
		else if (c == ' ' || c == '\t')
			st->state = CH_SIZE_WS;
		else
			return -FC_EMALFORMED;
		return 0;
	case CH_SIZE_WS:
		rc = size_line_byte(st);
		if (rc < 0)
			return rc;
		if (c == ';')
			st->state = CH_EXT;
		else if (c != ' ' && c != '\t')
			return -FC_EMALFORMED;
		return 0;
	case CH_EXT:
		if (c == '\r') {
			st->state = CH_SIZE_LF;
			return 0;
		}
		rc = size_line_byte(st);
		if (rc < 0)
			return rc;
		return is_field_byte(c) ? 0 : -FC_EMALFORMED;
	case CH_SIZE_LF:
		if (c != '\n')
			return -FC_EMALFORMED;
		st->line_len = 0;
		st->state = st->remaining ? CH_DATA : CH_TRAILER_START;
		return 0;
	case CH_DATA_CR:
		if (c != '\r')
			return -FC_EMALFORMED;
		st->state = CH_DATA_LF;
		return 0;
	case CH_DATA_LF:
		if (c != '\n')
			return -FC_EMALFORMED;
		st->state = CH_SIZE;
		st->remaining = 0;
		st->line_len = 0;
		return 0;
	case CH_TRAILER_START:
		if (c == '\r') {
			st->state = CH_END_LF;
			return 0;
		}
		if (!tchar[c])
			return -FC_EMALFORMED;
		st->state = CH_TRAILER_LINE;
		break;
	case CH_TRAILER_LINE:
		if (c == '\r') {
			st->state = CH_TRAILER_LF;
			return 0;
		}
		if (!is_field_byte(c))
			return -FC_EMALFORMED;
		break;
	case CH_TRAILER_LF:
		if (c != '\n')
			return -FC_EMALFORMED;
		st->state = CH_TRAILER_START;
		return 0;
	case CH_END_LF:
		if (c != '\n')
			return -FC_EMALFORMED;
		st->state = CH_DONE;
		return 0;
	default:
		return -FC_EMALFORMED;
	}
	/* Trailer field bytes: capped like a request head. */
	if (++st->line_len > HTTP_MAX_HEAD)
		return -FC_ETOOBIG;
	return 0;
}

int http_chunked_decode(http_chunked_t *st, uint8_t *buf, size_t len, size_t *out_len, int *done)
{
	size_t i = 0, w = 0;

	ASSERT(st != NULL && out_len != NULL && done != NULL);
	ASSERT(buf != NULL || len == 0);
	*out_len = 0;
	*done = st->state == CH_DONE;
	if (st->state == CH_FAILED)
		return -FC_EMALFORMED;
	if (len > INT_MAX)
		len = INT_MAX;

	while (i < len && st->state != CH_DONE) {
		if (st->state == CH_DATA) {
			size_t n = len - i;
			if (n > st->remaining)
				n = (size_t)st->remaining;
			/* w <= i always: each input byte yields at most one output byte. */
			memmove(buf + w, buf + i, n);
			w += n;
			i += n;
			st->remaining -= n;
			if (st->remaining == 0)
				st->state = CH_DATA_CR;
			continue;
		}
		int rc = chunk_step(st, buf[i]);
		if (rc < 0) {
			st->state = CH_FAILED;
			return rc;
		}
		i++;
	}
	*out_len = w;
	*done = st->state == CH_DONE;
	return (int)i;
}
