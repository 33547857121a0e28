/*
 * wire: header, cursor, output buffer and helpers of the protocol
 * codec, and the dispatch over all message types. The per-message codecs are
 * in wire_msg.c. See wire.h.
 */
#include "proto/wire.h"

#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"

/* ---- big-endian loads and stores ---------------------------------------- */

static uint16_t ld16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static uint32_t ld32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint64_t ld64(const uint8_t *p)
{
	return (uint64_t)ld32(p) << 32 | ld32(p + 4);
}

static void st16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void st32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void st64(uint8_t *p, uint64_t v)
{
	st32(p, (uint32_t)(v >> 32));
	st32(p + 4, (uint32_t)v);
}

/* ---- header ------------------------------------------------------------- */

void wire_hdr_write(uint8_t out[WIRE_HDR_LEN], uint8_t type, uint32_t req_id, uint32_t body_len)
{
	out[0] = WIRE_VERSION;
	out[1] = type;
	st16(out + 2, 0);
	st32(out + 4, req_id);
	st32(out + 8, body_len);
}

int wire_hdr_decode(slice_t frame, wire_hdr_t *h, slice_t *body)
{
	if (frame.len < WIRE_HDR_LEN)
		return -FC_ETRUNC;
	h->version = frame.ptr[0];
	h->type = frame.ptr[1];
	h->flags = ld16(frame.ptr + 2);
	h->req_id = ld32(frame.ptr + 4);
	h->body_len = ld32(frame.ptr + 8);
	/* The version goes first: a later version may lay out the rest of the
	 * header differently, so nothing else is meaningful if it differs. */
	if (h->version != WIRE_VERSION)
		return -FC_EVERSION;
	if (h->body_len > WIRE_MAX_BODY)
		return -FC_ETOOBIG;
	size_t avail = frame.len - WIRE_HDR_LEN;
	if (h->body_len > avail)
		return -FC_ETRUNC;
	if (h->body_len < avail)
		return -FC_EMALFORMED;
	*body = slice_make(frame.ptr + WIRE_HDR_LEN, h->body_len);
	if (!wire_type_known(h->type))
		return -FC_ETYPE;
	return 0;
}

/* ---- cursor ------------------------------------------------------------- */

void wire_cur_init(wire_cur_t *c, slice_t s)
{
	c->p = s.ptr;
	c->end = s.ptr ? s.ptr + s.len : s.ptr;
	c->err = 0;
}

size_t wire_cur_left(const wire_cur_t *c)
{
	return c->err ? 0 : (size_t)(c->end - c->p);
}

static void cur_fail(wire_cur_t *c, int err)
{
	if (!c->err)
		c->err = err;
}

/* Returns a pointer to the next n bytes and advances, or NULL (sticky). */
static const uint8_t *take(wire_cur_t *c, size_t n)
{
	if (c->err)
		return NULL;
	if (n == 0)
		return c->p;
	if ((size_t)(c->end - c->p) < n) {
		cur_fail(c, -FC_ETRUNC);
		return NULL;
	}
	const uint8_t *p = c->p;
	c->p += n;
	return p;
}

uint8_t wire_get_u8(wire_cur_t *c)
{
	const uint8_t *p = take(c, 1);
	return p ? p[0] : 0;
}

uint16_t wire_get_u16(wire_cur_t *c)
{
	const uint8_t *p = take(c, 2);
	return p ? ld16(p) : 0;
}

uint32_t wire_get_u32(wire_cur_t *c)
{
	const uint8_t *p = take(c, 4);
	return p ? ld32(p) : 0;
}

uint64_t wire_get_u64(wire_cur_t *c)
{
	const uint8_t *p = take(c, 8);
	return p ? ld64(p) : 0;
}

const uint8_t *wire_get_fixed(wire_cur_t *c, size_t n)
{
	return take(c, n);
}

/* Length first, then the cap, then the bytes: an oversized length is
 * reported as such even when the frame was also cut short. */
slice_t wire_get_bytes(wire_cur_t *c, uint32_t cap)
{
	uint32_t n = wire_get_u32(c);
	if (c->err)
		return slice_make(NULL, 0);
	if (n > cap) {
		cur_fail(c, -FC_ETOOBIG);
		return slice_make(NULL, 0);
	}
	const uint8_t *p = take(c, n);
	return p ? slice_make(p, n) : slice_make(NULL, 0);
}

slice_t wire_get_str(wire_cur_t *c, uint16_t cap)
{
	uint16_t n = wire_get_u16(c);
	if (c->err)
		return slice_make(NULL, 0);
	if (n > cap) {
		cur_fail(c, -FC_ETOOBIG);
		return slice_make(NULL, 0);
	}
	const uint8_t *p = take(c, n);
	if (!p)
		return slice_make(NULL, 0);
	if (!utf8_valid(p, n)) {
		cur_fail(c, -FC_EUTF8);
		return slice_make(NULL, 0);
	}
	return slice_make(p, n);
}

/* ---- output buffer ------------------------------------------------------ */

void wire_buf_init(wire_buf_t *b, size_t max)
{
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
	b->err = 0;
}

void wire_buf_reset(wire_buf_t *b)
{
	b->len = 0;
	b->err = 0;
}

void wire_buf_free(wire_buf_t *b)
{
	free(b->p);
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
	b->err = 0;
}

static void buf_fail(wire_buf_t *b, int err)
{
	if (!b->err)
		b->err = err;
}

/* Makes room for n more bytes and returns where they go, or NULL (sticky). */
static uint8_t *buf_room(wire_buf_t *b, size_t n)
{
	if (b->err)
		return NULL;
	size_t max = b->max ? b->max : WIRE_MAX_FRAME;
	if (b->len > max || n > max - b->len) {
		buf_fail(b, -FC_ETOOBIG);
		return NULL;
	}
	size_t need = b->len + n;
	if (need > b->cap) {
		size_t ncap = b->cap ? b->cap : 256;
		while (ncap < need)
			ncap = ncap > max / 2 ? max : ncap * 2;
		if (ncap > max)
			ncap = max;
		uint8_t *np = realloc(b->p, ncap);
		if (!np) {
			buf_fail(b, -ENOMEM);
			return NULL;
		}
		b->p = np;
		b->cap = ncap;
	}
	uint8_t *dst = b->p + b->len;
	b->len += n;
	return dst;
}

void wire_put_u8(wire_buf_t *b, uint8_t v)
{
	uint8_t *p = buf_room(b, 1);
	if (p)
		p[0] = v;
}

void wire_put_u16(wire_buf_t *b, uint16_t v)
{
	uint8_t *p = buf_room(b, 2);
	if (p)
		st16(p, v);
}

void wire_put_u32(wire_buf_t *b, uint32_t v)
{
	uint8_t *p = buf_room(b, 4);
	if (p)
		st32(p, v);
}

void wire_put_u64(wire_buf_t *b, uint64_t v)
{
	uint8_t *p = buf_room(b, 8);
	if (p)
		st64(p, v);
}

void wire_put_fixed(wire_buf_t *b, const void *src, size_t n)
{
	if (!src && n) {
		buf_fail(b, -EINVAL);
		return;
	}
	if (n == 0)
		return;
	uint8_t *p = buf_room(b, n);
	if (p)
		memcpy(p, src, n);
}

void wire_put_bytes(wire_buf_t *b, slice_t s, uint32_t cap)
{
	if (s.len > cap) {
		buf_fail(b, -FC_ETOOBIG);
		return;
	}
	wire_put_u32(b, (uint32_t)s.len);
	wire_put_fixed(b, s.ptr, s.len);
}

void wire_put_str(wire_buf_t *b, slice_t s, uint16_t cap)
{
	if (s.len > cap) {
		buf_fail(b, -FC_ETOOBIG);
		return;
	}
	if (s.len && !utf8_valid(s.ptr, s.len)) {
		buf_fail(b, -FC_EUTF8);
		return;
	}
	wire_put_u16(b, (uint16_t)s.len);
	wire_put_fixed(b, s.ptr, s.len);
}

size_t wire_frame_begin(wire_buf_t *b, uint8_t type, uint32_t req_id)
{
	size_t start = b->len;
	uint8_t *p = buf_room(b, WIRE_HDR_LEN);
	if (p)
		wire_hdr_write(p, type, req_id, 0);
	return start;
}

int wire_frame_end(wire_buf_t *b, size_t start)
{
	if (!b->err && (start > b->len || b->len - start < WIRE_HDR_LEN))
		buf_fail(b, -EINVAL);
	if (!b->err && b->len - start - WIRE_HDR_LEN > WIRE_MAX_BODY)
		buf_fail(b, -FC_ETOOBIG);
	if (b->err) {
		if (start <= b->len)
			b->len = start;
		return b->err;
	}
	st32(b->p + start + 8, (uint32_t)(b->len - start - WIRE_HDR_LEN));
	return 0;
}

/* ---- any message -------------------------------------------------------- */

int wire_body_decode(uint8_t type, slice_t body, wire_msg_t *m)
{
	switch (type) {
	case WIRE_MSG_REGISTER:
		return wire_register_decode(body, &m->u.reg);
	case WIRE_MSG_AUTH:
		return wire_auth_decode(body, &m->u.auth);
	case WIRE_MSG_LINK_BEGIN:
		return 0;
	case WIRE_MSG_LINK_DEVICE:
		return wire_link_device_decode(body, &m->u.link_device);
	case WIRE_MSG_DEVICE_REMOVE:
		return wire_device_remove_decode(body, &m->u.device_remove);
	case WIRE_MSG_USERNAME_SET:
		return wire_username_set_decode(body, &m->u.username_set);
	case WIRE_MSG_RESOLVE:
		return wire_resolve_decode(body, &m->u.resolve);
	case WIRE_MSG_DEVICES_GET:
		return wire_devices_get_decode(body, &m->u.devices_get);
	case WIRE_MSG_KEYS_UPLOAD:
		return wire_keys_upload_decode(body, &m->u.keys_upload);
	case WIRE_MSG_BUNDLE_FETCH:
		return wire_bundle_fetch_decode(body, &m->u.bundle_fetch);
	case WIRE_MSG_SEND:
		return wire_send_decode(body, &m->u.send);
	case WIRE_MSG_ACK:
		return wire_ack_decode(body, &m->u.ack);
	case WIRE_MSG_SYNC:
		return wire_sync_decode(body, &m->u.sync);
	case WIRE_MSG_CHALLENGE:
		return wire_challenge_decode(body, &m->u.challenge);
	case WIRE_MSG_OK:
		return 0;
	case WIRE_MSG_ERROR:
		return wire_error_decode(body, &m->u.error);
	case WIRE_MSG_REGISTERED:
		return wire_registered_decode(body, &m->u.registered);
	case WIRE_MSG_AUTH_OK:
		return wire_auth_ok_decode(body, &m->u.auth_ok);
	case WIRE_MSG_LINK_CODE:
		return wire_link_code_decode(body, &m->u.link_code);
	case WIRE_MSG_ACCOUNT_INFO:
		return wire_account_info_decode(body, &m->u.account_info);
	case WIRE_MSG_KEYS_STATUS:
		return wire_keys_status_decode(body, &m->u.keys_status);
	case WIRE_MSG_BUNDLE:
		return wire_bundle_decode(body, &m->u.bundle);
	case WIRE_MSG_ACCEPTED:
		return wire_accepted_decode(body, &m->u.accepted);
	case WIRE_MSG_STALE_DEVICES:
		return wire_stale_decode(body, &m->u.stale);
	case WIRE_MSG_DELIVER:
		return wire_deliver_decode(body, &m->u.deliver);
	case WIRE_MSG_SYNC_DONE:
		return wire_sync_done_decode(body, &m->u.sync_done);
	case WIRE_MSG_RESYNC:
		return wire_resync_decode(body, &m->u.resync);
	case WIRE_MSG_PREKEYS_LOW:
		return wire_prekeys_low_decode(body, &m->u.prekeys_low);
	case WIRE_MSG_GOAWAY:
		return wire_goaway_decode(body, &m->u.goaway);
	default:
		return -FC_ETYPE;
	}
}

int wire_msg_decode(slice_t frame, wire_msg_t *m)
{
	slice_t body;
	memset(&m->hdr, 0, sizeof m->hdr);
	int rc = wire_hdr_decode(frame, &m->hdr, &body);
	if (rc < 0)
		return rc;
	return wire_body_decode(m->hdr.type, body, m);
}

int wire_msg_encode(wire_buf_t *b, const wire_msg_t *m)
{
	uint32_t r = m->hdr.req_id;
	switch (m->hdr.type) {
	case WIRE_MSG_REGISTER:
		return wire_register_encode(b, r, &m->u.reg);
	case WIRE_MSG_AUTH:
		return wire_auth_encode(b, r, &m->u.auth);
	case WIRE_MSG_LINK_BEGIN:
		return wire_link_begin_encode(b, r);
	case WIRE_MSG_LINK_DEVICE:
		return wire_link_device_encode(b, r, &m->u.link_device);
	case WIRE_MSG_DEVICE_REMOVE:
		return wire_device_remove_encode(b, r, &m->u.device_remove);
	case WIRE_MSG_USERNAME_SET:
		return wire_username_set_encode(b, r, &m->u.username_set);
	case WIRE_MSG_RESOLVE:
		return wire_resolve_encode(b, r, &m->u.resolve);
	case WIRE_MSG_DEVICES_GET:
		return wire_devices_get_encode(b, r, &m->u.devices_get);
	case WIRE_MSG_KEYS_UPLOAD:
		return wire_keys_upload_encode(b, r, &m->u.keys_upload);
	case WIRE_MSG_BUNDLE_FETCH:
		return wire_bundle_fetch_encode(b, r, &m->u.bundle_fetch);
	case WIRE_MSG_SEND:
		return wire_send_encode(b, r, &m->u.send);
	case WIRE_MSG_ACK:
		return wire_ack_encode(b, r, &m->u.ack);
	case WIRE_MSG_SYNC:
		return wire_sync_encode(b, r, &m->u.sync);
	case WIRE_MSG_CHALLENGE:
		return wire_challenge_encode(b, r, &m->u.challenge);
	case WIRE_MSG_OK:
		return wire_ok_encode(b, r);
	case WIRE_MSG_ERROR:
		return wire_error_encode(b, r, &m->u.error);
	case WIRE_MSG_REGISTERED:
		return wire_registered_encode(b, r, &m->u.registered);
	case WIRE_MSG_AUTH_OK:
		return wire_auth_ok_encode(b, r, &m->u.auth_ok);
	case WIRE_MSG_LINK_CODE:
		return wire_link_code_encode(b, r, &m->u.link_code);
	case WIRE_MSG_ACCOUNT_INFO:
		return wire_account_info_encode(b, r, &m->u.account_info);
	case WIRE_MSG_KEYS_STATUS:
		return wire_keys_status_encode(b, r, &m->u.keys_status);
	case WIRE_MSG_BUNDLE:
		return wire_bundle_encode(b, r, &m->u.bundle);
	case WIRE_MSG_ACCEPTED:
		return wire_accepted_encode(b, r, &m->u.accepted);
	case WIRE_MSG_STALE_DEVICES:
		return wire_stale_encode(b, r, &m->u.stale);
	case WIRE_MSG_DELIVER:
		return wire_deliver_encode(b, r, &m->u.deliver);
	case WIRE_MSG_SYNC_DONE:
		return wire_sync_done_encode(b, r, &m->u.sync_done);
	case WIRE_MSG_RESYNC:
		return wire_resync_encode(b, r, &m->u.resync);
	case WIRE_MSG_PREKEYS_LOW:
		return wire_prekeys_low_encode(b, r, &m->u.prekeys_low);
	case WIRE_MSG_GOAWAY:
		return wire_goaway_encode(b, r, &m->u.goaway);
	default:
		return -FC_ETYPE;
	}
}

/* ---- helpers ------------------------------------------------------------ */

static const char *const type_names[0x80] = {
	[WIRE_MSG_REGISTER] = "REGISTER",
	[WIRE_MSG_AUTH] = "AUTH",
	[WIRE_MSG_LINK_BEGIN] = "LINK_BEGIN",
	[WIRE_MSG_LINK_DEVICE] = "LINK_DEVICE",
	[WIRE_MSG_DEVICE_REMOVE] = "DEVICE_REMOVE",
	[WIRE_MSG_USERNAME_SET] = "USERNAME_SET",
	[WIRE_MSG_RESOLVE] = "RESOLVE",
	[WIRE_MSG_DEVICES_GET] = "DEVICES_GET",
	[WIRE_MSG_KEYS_UPLOAD] = "KEYS_UPLOAD",
	[WIRE_MSG_BUNDLE_FETCH] = "BUNDLE_FETCH",
	[WIRE_MSG_SEND] = "SEND",
	[WIRE_MSG_ACK] = "ACK",
	[WIRE_MSG_SYNC] = "SYNC",
	[WIRE_MSG_CHALLENGE] = "CHALLENGE",
	[WIRE_MSG_OK] = "OK",
	[WIRE_MSG_ERROR] = "ERROR",
	[WIRE_MSG_REGISTERED] = "REGISTERED",
	[WIRE_MSG_AUTH_OK] = "AUTH_OK",
	[WIRE_MSG_LINK_CODE] = "LINK_CODE",
	[WIRE_MSG_ACCOUNT_INFO] = "ACCOUNT_INFO",
	[WIRE_MSG_KEYS_STATUS] = "KEYS_STATUS",
	[WIRE_MSG_BUNDLE] = "BUNDLE",
	[WIRE_MSG_ACCEPTED] = "ACCEPTED",
	[WIRE_MSG_STALE_DEVICES] = "STALE_DEVICES",
	[WIRE_MSG_DELIVER] = "DELIVER",
	[WIRE_MSG_SYNC_DONE] = "SYNC_DONE",
	[WIRE_MSG_RESYNC] = "RESYNC",
	[WIRE_MSG_PREKEYS_LOW] = "PREKEYS_LOW",
	[WIRE_MSG_GOAWAY] = "GOAWAY",
};

int wire_type_known(uint8_t type)
{
	return type < 0x80 && type_names[type] != NULL;
}

const char *wire_type_name(uint8_t type)
{
	return wire_type_known(type) ? type_names[type] : "UNKNOWN";
}

static const char *const err_names[] = {
	[WIRE_ERR_BAD_FRAME] = "BAD_FRAME",
	[WIRE_ERR_UNSUPPORTED_VERSION] = "UNSUPPORTED_VERSION",
	[WIRE_ERR_UNKNOWN_TYPE] = "UNKNOWN_TYPE",
	[WIRE_ERR_NOT_AUTHENTICATED] = "NOT_AUTHENTICATED",
	[WIRE_ERR_AUTH_FAILED] = "AUTH_FAILED",
	[WIRE_ERR_BAD_INVITE] = "BAD_INVITE",
	[WIRE_ERR_NOT_FOUND] = "NOT_FOUND",
	[WIRE_ERR_TAKEN] = "TAKEN",
	[WIRE_ERR_LIMIT] = "LIMIT",
	[WIRE_ERR_CONFLICT] = "CONFLICT",
	[WIRE_ERR_RATE_LIMITED] = "RATE_LIMITED",
	[WIRE_ERR_UNAVAILABLE] = "UNAVAILABLE",
	[WIRE_ERR_INTERNAL] = "INTERNAL",
	[WIRE_ERR_TOO_LARGE] = "TOO_LARGE",
	[WIRE_ERR_BAD_REQUEST] = "BAD_REQUEST",
	[WIRE_ERR_ALREADY_AUTHENTICATED] = "ALREADY_AUTHENTICATED",
};

const char *wire_err_name(uint16_t code)
{
	if (code < sizeof err_names / sizeof err_names[0] && err_names[code])
		return err_names[code];
	return "UNKNOWN";
}

uint16_t wire_err_from_code(int fc_err)
{
	if (fc_err >= 0)
		return 0;
	switch (-fc_err) {
	case FC_ETRUNC:
	case FC_EMALFORMED:
	case FC_EUTF8:
		return WIRE_ERR_BAD_FRAME;
	case FC_ETOOBIG:
	case EMSGSIZE:
	case E2BIG:
		return WIRE_ERR_TOO_LARGE;
	case FC_EVERSION:
		return WIRE_ERR_UNSUPPORTED_VERSION;
	case FC_ETYPE:
		return WIRE_ERR_UNKNOWN_TYPE;
	case FC_ENOTFOUND:
	case ENOENT:
		return WIRE_ERR_NOT_FOUND;
	case FC_EEXIST:
	case EEXIST:
		return WIRE_ERR_TAKEN;
	case FC_ELIMIT:
	case ENOSPC:
	case EDQUOT:
		return WIRE_ERR_LIMIT;
	case FC_EAUTH:
		return WIRE_ERR_AUTH_FAILED;
	case EACCES:
		return WIRE_ERR_NOT_AUTHENTICATED;
	case EISCONN:
	case EALREADY:
		return WIRE_ERR_ALREADY_AUTHENTICATED;
	case FC_ECONFLICT:
		return WIRE_ERR_CONFLICT;
	/* A storage failure is transient from the client's point of view, and
	 * every request is safe to retry (SEND through its idempotency key). */
	case FC_EUNAVAIL:
	case FC_ESTORE:
	case EAGAIN:
	case EBUSY:
	case ETIMEDOUT:
	case ENOMEM:
		return WIRE_ERR_UNAVAILABLE;
	/* A stale device list is answered with STALE_DEVICES, not ERROR; if a
	 * caller has nothing better it is a request the client must change. */
	case FC_ESTALE:
	case EINVAL:
	case ERANGE:
		return WIRE_ERR_BAD_REQUEST;
	default:
		return WIRE_ERR_INTERNAL;
	}
}

int wire_username_valid(slice_t s)
{
	if (s.len < WIRE_MIN_USERNAME || s.len > WIRE_MAX_USERNAME)
		return 0;
	for (size_t i = 0; i < s.len; i++) {
		uint8_t ch = s.ptr[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
		      ch == '.'))
			return 0;
	}
	return 1;
}

static size_t sigmsg(uint8_t *out, const char *ctx, const uint8_t *nonce)
{
	size_t n = strlen(ctx);
	memcpy(out, ctx, n);
	memcpy(out + n, nonce, WIRE_KEY_LEN);
	return n + WIRE_KEY_LEN;
}

size_t wire_register_sigmsg(uint8_t *out, const uint8_t nonce[WIRE_KEY_LEN],
			    const uint8_t auth_pub[WIRE_KEY_LEN])
{
	size_t n = sigmsg(out, WIRE_CTX_REGISTER, nonce);
	memcpy(out + n, auth_pub, WIRE_KEY_LEN);
	return n + WIRE_KEY_LEN;
}

size_t wire_auth_sigmsg(uint8_t *out, const uint8_t nonce[WIRE_KEY_LEN], uint64_t account,
			uint32_t device)
{
	size_t n = sigmsg(out, WIRE_CTX_AUTH, nonce);
	st64(out + n, account);
	st32(out + n + 8, device);
	return n + 12;
}

size_t wire_link_sigmsg(uint8_t *out, const uint8_t nonce[WIRE_KEY_LEN],
			const uint8_t auth_pub[WIRE_KEY_LEN])
{
	size_t n = sigmsg(out, WIRE_CTX_LINK, nonce);
	memcpy(out + n, auth_pub, WIRE_KEY_LEN);
	return n + WIRE_KEY_LEN;
}
