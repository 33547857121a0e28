/*
 * Fuzz target for the HTTP side of the gateway: http_req_parse() on the
 * input, then on a parsed head the header lookups and ws_handshake_check(),
 * then http_chunked_decode() on the bytes after the head (on the whole input
 * when it is not a valid head, so the decoder also sees raw data). Checked
 * invariants, each an abort on violation: a parsed head is a prefix that
 * parses to the same length on its own and not one byte earlier; "need more"
 * only below HTTP_MAX_HEAD; handshake statuses are 0, 400 or 426 with a
 * 28-character accept value on 0; chunked decoding gives the same data, done
 * flag, consumed count and error whether the body is handed over whole or in
 * small steps.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/http.h"
#include "net/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct decoded {
	int rc;
	int done;
	size_t consumed;
	size_t out_len;
	uint64_t hash;
} decoded_t;

static void decode(const uint8_t *in, size_t n, size_t step, decoded_t *d)
{
	http_chunked_t st;
	uint8_t *pend = malloc(n ? n : 1);
	size_t have = 0, fed = 0;

	if (!pend)
		abort();
	memset(&st, 0, sizeof st);
	memset(d, 0, sizeof *d);
	d->hash = UINT64_C(0xcbf29ce484222325);
	while (fed < n && !d->done) {
		size_t k = n - fed < step ? n - fed : step;
		memcpy(pend + have, in + fed, k);
		have += k;
		fed += k;
		size_t out_len = 0;
		int done = 0;
		int rc = http_chunked_decode(&st, pend, have, &out_len, &done);
		if (rc < 0) {
			if (rc != -FC_EMALFORMED && rc != -FC_ETOOBIG)
				abort();
			d->rc = rc;
			break;
		}
		if ((size_t)rc > have || out_len > (size_t)rc)
			abort();
		for (size_t i = 0; i < out_len; i++) {
			d->hash ^= pend[i];
			d->hash *= UINT64_C(0x100000001b3);
		}
		d->out_len += out_len;
		d->consumed += (size_t)rc;
		d->done = done;
		memmove(pend, pend + rc, have - (size_t)rc);
		have -= (size_t)rc;
	}
	free(pend);
}

static void check_chunked(const uint8_t *body, size_t n, size_t step)
{
	decoded_t whole, small;
	decode(body, n, n ? n : 1, &whole);
	decode(body, n, step, &small);
	if (whole.rc != small.rc)
		abort();
	if (whole.rc == 0 && (whole.done != small.done || whole.consumed != small.consumed ||
			      whole.out_len != small.out_len || whole.hash != small.hash))
		abort();
}

static void check_head(const uint8_t *data, const http_req_t *req, int rc)
{
	http_req_t again;
	if (http_req_parse(data, (size_t)rc, &again) != rc)
		abort();
	if (http_req_parse(data, (size_t)rc - 1, &again) > 0)
		abort();
	if (req->head_len != (size_t)rc || req->nheaders > HTTP_MAX_HEADERS)
		abort();
	if (req->version_minor != 0 && req->version_minor != 1)
		abort();
	if (req->chunked && req->content_length >= 0)
		abort();

	int count = 0;
	slice_t v = http_header_get(req, "Connection", &count);
	if ((count == 0) != (v.ptr == NULL))
		abort();
	(void)http_header_has_token(req, "Connection", "upgrade");
	(void)http_header_has_token(req, "Upgrade", "websocket");

	char accept[29];
	int st = ws_handshake_check(req, accept);
	if (st == 0) {
		if (strlen(accept) != 28)
			abort();
	} else if (st != 400 && st != 426) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	http_req_t req;
	int rc = http_req_parse(data, size, &req);
	size_t step = 1 + size % 7;

	if (rc > 0) {
		if ((size_t)rc > size || rc > HTTP_MAX_HEAD)
			abort();
		check_head(data, &req, rc);
		check_chunked(data + rc, size - (size_t)rc, step);
		return 0;
	}
	if (rc == 0 && size >= HTTP_MAX_HEAD)
		abort();
	if (rc < 0 && rc != -FC_EMALFORMED && rc != -FC_ETOOBIG)
		abort();
	check_chunked(data, size, step);
	return 0;
}
