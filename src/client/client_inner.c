/*
 * The inner plaintext format: what the client puts inside each end-to-end
 * encrypted envelope (docs/client.md, "Inner plaintext"). The server never
 * sees it; only clients agree on it.
 *
 *   offset 0  u8   version (1)
 *   offset 1  u8   kind (1 = text)
 *   offset 2  u64  conversation peer account, big-endian
 *   offset 10 ...  UTF-8 text (the rest of the plaintext)
 */
#include "client/client.h"

#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"

int fcc_inner_encode(uint8_t kind, uint64_t peer, slice_t text, uint8_t **out, size_t *len)
{
	if (!out || !len || (!text.ptr && text.len))
		return -EINVAL;
	if (kind != FCC_INNER_TEXT)
		return -FC_ETYPE;
	if (text.len > FCC_MAX_TEXT)
		return -FC_ETOOBIG;
	if (!utf8_valid(text.ptr, text.len))
		return -FC_EUTF8;
	size_t n = FCC_INNER_HDR_LEN + text.len;
	uint8_t *p = malloc(n);
	if (!p)
		return -ENOMEM;
	p[0] = FCC_INNER_VERSION;
	p[1] = kind;
	for (int i = 0; i < 8; i++)
		p[2 + i] = (uint8_t)(peer >> (56 - 8 * i));
	if (text.len)
		memcpy(p + FCC_INNER_HDR_LEN, text.ptr, text.len);
	*out = p;
	*len = n;
	return 0;
}

int fcc_inner_decode(slice_t pt, fcc_inner_t *m)
{
	if (!m || (!pt.ptr && pt.len))
		return -EINVAL;
	if (pt.len < FCC_INNER_HDR_LEN)
		return -FC_ETRUNC;
	if (pt.ptr[0] != FCC_INNER_VERSION)
		return -FC_EVERSION;
	if (pt.ptr[1] != FCC_INNER_TEXT)
		return -FC_ETYPE;
	uint64_t peer = 0;
	for (int i = 0; i < 8; i++)
		peer = peer << 8 | pt.ptr[2 + i];
	slice_t text = slice_make(pt.ptr + FCC_INNER_HDR_LEN, pt.len - FCC_INNER_HDR_LEN);
	if (text.len > FCC_MAX_TEXT)
		return -FC_ETOOBIG;
	if (!utf8_valid(text.ptr, text.len))
		return -FC_EUTF8;
	m->version = pt.ptr[0];
	m->kind = pt.ptr[1];
	m->peer = peer;
	m->text = text;
	return 0;
}
