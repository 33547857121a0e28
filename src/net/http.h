/*
 * http: a strict HTTP/1.1 request-head parser and an in-place chunked body
 * decoder.
 *
 * The gateway speaks HTTP only for the WebSocket opening handshake and a few
 * small REST endpoints, so the parser is deliberately narrow and strict: what
 * RFC 9112 lets a server reject is rejected, because every leniency is a
 * chance for a proxy in front of us and this parser to disagree about where a
 * request ends (request smuggling). Decisions taken where the RFCs leave a
 * choice:
 *
 *  - Lines must end in CRLF; a bare LF or a bare CR anywhere in the head is
 *    malformed. Empty lines (CRLF) before the request line are skipped
 *    (RFC 9112 section 2.2) and count towards head_len.
 *  - The request line is exactly "method SP target SP HTTP/1.x" with single
 *    spaces; only HTTP/1.0 and HTTP/1.1 are accepted.
 *  - obs-fold (a line starting with SP or HTAB), whitespace between a field
 *    name and the colon, non-token bytes in a field name, and control bytes
 *    (other than HTAB) in a field value are malformed.
 *  - Content-Length: every line is a comma-separated list of decimal numbers
 *    (no sign, no hex, no empty element, at most 2^53). Identical values,
 *    repeated on several lines or as "5, 5", are accepted as one value
 *    (RFC 9110 section 8.6 allows either); differing values are malformed.
 *  - Transfer-Encoding must be exactly one line "chunked" (any case). Any
 *    other coding, a list, Transfer-Encoding together with Content-Length, or
 *    Transfer-Encoding in an HTTP/1.0 request is malformed.
 *  - An HTTP/1.1 request without a Host line, and any request with more than
 *    one Host line, is malformed (RFC 9112 section 3.2, a server MUST answer
 *    400).
 *
 * Everything the parser produces is a view into the caller's buffer; nothing
 * is copied or allocated. The parser is stateless: call it again on the grown
 * buffer when it asks for more bytes (the head is capped at HTTP_MAX_HEAD, so
 * re-scanning costs at most a few kilobytes per read). Any thread may call
 * these functions on its own buffers.
 */
#ifndef FC_NET_HTTP_H
#define FC_NET_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/slice.h"

#define HTTP_MAX_HEAD 8192
#define HTTP_MAX_HEADERS 48
/* Largest Content-Length or chunk size accepted: 2^53, the integer range
 * every JSON and JavaScript peer represents exactly. */
#define HTTP_MAX_BODY_LEN (UINT64_C(1) << 53)

typedef struct http_header {
	slice_t name, value; /* value has surrounding SP/HTAB removed */
} http_header_t;

typedef struct http_req {
	slice_t method, target, path, query; /* views into the caller's buffer */
	int version_minor;                   /* 0 or 1 (HTTP/1.x only) */
	http_header_t headers[HTTP_MAX_HEADERS];
	size_t nheaders;
	size_t head_len;        /* bytes up to and including the blank line */
	int64_t content_length; /* -1 when absent */
	int chunked;            /* Transfer-Encoding: chunked */
	int keep_alive;
} http_req_t;

/*
 * Parses a request head from buf[0..len). The caller owns buf, which must
 * outlive every slice in *req. Returns head_len (> 0) when a complete head
 * was parsed; 0 when more bytes are needed (only while len < HTTP_MAX_HEAD);
 * -FC_ETOOBIG when the head is longer than HTTP_MAX_HEAD bytes or has more
 * than HTTP_MAX_HEADERS lines (answer 431); -FC_EMALFORMED for anything the
 * rules above reject (answer 400 and close). A line that is complete and
 * malformed is reported at once, without waiting for the rest of the head.
 *
 * path is the target up to the first '?', query what follows it (empty when
 * there is none). keep_alive is 1 for HTTP/1.1 unless Connection lists
 * "close", and for HTTP/1.0 only when Connection lists "keep-alive".
 * On any return other than a positive one *req holds no useful data.
 */
int http_req_parse(const uint8_t *buf, size_t len, http_req_t *req) FC_WUR;

/*
 * First value of header `name` (ASCII case-insensitive), or an empty slice
 * with a NULL ptr when absent. count, when not NULL, receives the number of
 * lines carrying that header.
 */
slice_t http_header_get(const http_req_t *req, const char *name, int *count);

/*
 * 1 if any line of header `name` contains `token` as a whole element of its
 * comma-separated list (ASCII case-insensitive, surrounding whitespace
 * ignored), 0 otherwise. "Upgraded" does not contain the token "Upgrade".
 */
int http_header_has_token(const http_req_t *req, const char *name, const char *token);

/*
 * Chunked transfer decoding (RFC 9112 section 7.1), in place and
 * incremental. The chunk-size line, including any extensions, is capped at
 * HTTP_CHUNK_LINE_MAX bytes, so endless leading zeros or a huge extension
 * are refused after a few hundred bytes. Extensions ("5;name=value") are
 * checked for control bytes and otherwise ignored; trailer fields are checked
 * the same way, capped at HTTP_MAX_HEAD bytes in total, and dropped.
 */
#define HTTP_CHUNK_LINE_MAX 256 /* cap on chunk-size line incl. extensions */

/* All-zero is the initial state. */
typedef struct http_chunked {
	int state;
	uint64_t remaining; /* chunk size being read, then bytes left in the chunk */
	uint32_t line_len;  /* bytes of the current size line or of the trailer */
} http_chunked_t;

/*
 * Decodes as much of buf[0..len) as possible. Chunk data is moved to the
 * front of buf: on return buf[0..*out_len) holds the decoded body bytes of
 * this call and buf[consumed..len) the input not yet consumed (the caller
 * keeps that tail and appends to it). Returns the number of bytes consumed
 * (>= 0); *done becomes 1 once the last chunk and its trailer section have
 * been consumed, after which bytes past the return value belong to the next
 * request. Errors, after which the state stays failed: -FC_EMALFORMED (bad
 * hex digit, a sign, an empty size, a missing CRLF after the size or after
 * chunk data, control bytes in an extension or trailer) and -FC_ETOOBIG (a
 * chunk size above 2^53, a size line longer than HTTP_CHUNK_LINE_MAX, a
 * trailer section longer than HTTP_MAX_HEAD). Answer either with 400 and
 * close the connection. At most INT_MAX bytes are consumed per call.
 */
int http_chunked_decode(http_chunked_t *st, uint8_t *buf, size_t len, size_t *out_len, int *done)
	FC_WUR;

#endif
