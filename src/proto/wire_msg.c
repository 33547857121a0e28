/*
 * wire_msg: the per-message codecs of protocol version 1 and the list
 * machinery they share. Field order and caps follow docs/protocol.md; each
 * decoder reads its fields in order, lets the cursor's sticky error catch
 * any short or oversized field, then checks the value rules of the message.
 * Bytes after the last known field are ignored on purpose (forward
 * compatibility), so no decoder checks that the body was fully consumed.
 * The dispatch over all types (wire_msg_decode/encode) is in wire.c.
 */
#include "proto/wire.h"

#include <string.h>

/* ---- lists -------------------------------------------------------------- */

/* An item validator consumes one item from the cursor; errors are sticky. */
typedef void (*item_skip_fn)(wire_cur_t *c);

static void skip_prekey(wire_cur_t *c)
{
	uint32_t id = wire_get_u32(c);
	(void)wire_get_bytes(c, WIRE_MAX_PREKEY);
	if (!c->err && id == 0)
		c->err = -EINVAL;
}

static void skip_envelope(wire_cur_t *c)
{
	(void)wire_get_u64(c);
	(void)wire_get_u32(c);
	(void)wire_get_bytes(c, WIRE_MAX_CIPHERTEXT);
}

static void skip_u32(wire_cur_t *c)
{
	(void)wire_get_u32(c);
}

static void get_list(wire_cur_t *c, wire_list_t *l, uint16_t cap, item_skip_fn skip);

static void skip_devset(wire_cur_t *c)
{
	wire_list_t devices;
	(void)wire_get_u64(c);
	get_list(c, &devices, WIRE_MAX_DEVICES, skip_u32);
}

/* Reads a u16 count and validates every item, so that iterating later over
 * the returned raw bytes cannot fail. */
static void get_list(wire_cur_t *c, wire_list_t *l, uint16_t cap, item_skip_fn skip)
{
	l->count = 0;
	l->raw = slice_make(NULL, 0);
	uint16_t n = wire_get_u16(c);
	if (c->err)
		return;
	if (n > cap) {
		c->err = -FC_ETOOBIG;
		return;
	}
	const uint8_t *start = c->p;
	for (uint16_t i = 0; i < n && !c->err; i++)
		skip(c);
	if (c->err)
		return;
	l->count = n;
	l->raw = slice_make(start, (size_t)(c->p - start));
}

void wire_iter_init(wire_iter_t *it, wire_list_t l)
{
	wire_cur_init(&it->c, l.raw);
	it->left = l.count;
}

int wire_prekey_next(wire_iter_t *it, wire_prekey_t *out)
{
	if (it->left == 0)
		return 0;
	out->id = wire_get_u32(&it->c);
	out->key = wire_get_bytes(&it->c, WIRE_MAX_PREKEY);
	if (it->c.err)
		return it->left = 0;
	it->left--;
	return 1;
}

int wire_envelope_next(wire_iter_t *it, wire_envelope_t *out)
{
	if (it->left == 0)
		return 0;
	out->account = wire_get_u64(&it->c);
	out->device = wire_get_u32(&it->c);
	out->ciphertext = wire_get_bytes(&it->c, WIRE_MAX_CIPHERTEXT);
	if (it->c.err)
		return it->left = 0;
	it->left--;
	return 1;
}

int wire_u32_next(wire_iter_t *it, uint32_t *out)
{
	if (it->left == 0)
		return 0;
	*out = wire_get_u32(&it->c);
	if (it->c.err)
		return it->left = 0;
	it->left--;
	return 1;
}

int wire_devset_next(wire_iter_t *it, wire_devset_t *out)
{
	if (it->left == 0)
		return 0;
	memset(out, 0, sizeof *out);
	out->account = wire_get_u64(&it->c);
	get_list(&it->c, &out->devices, WIRE_MAX_DEVICES, skip_u32);
	if (it->c.err)
		return it->left = 0;
	it->left--;
	return 1;
}

/*
 * Writes a decoded (or hand-built) wire_list_t after checking that its raw
 * bytes hold exactly `count` valid items: the encoder never emits a list the
 * decoder would refuse.
 */
static void put_raw_list(wire_buf_t *b, wire_list_t l, uint16_t cap, item_skip_fn skip)
{
	if (b->err)
		return;
	if (l.count > cap) {
		b->err = -FC_ETOOBIG;
		return;
	}
	wire_cur_t c;
	wire_cur_init(&c, l.raw);
	for (uint16_t i = 0; i < l.count && !c.err; i++)
		skip(&c);
	if (!c.err && c.p != c.end)
		c.err = -EINVAL;
	if (c.err) {
		b->err = c.err == -FC_ETOOBIG ? -FC_ETOOBIG : -EINVAL;
		return;
	}
	wire_put_u16(b, l.count);
	wire_put_fixed(b, l.raw.ptr, l.raw.len);
}

/* Common check of the array form: array NULL with a count is a misuse. */
static int out_ok(wire_buf_t *b, const void *arr, uint16_t n, uint16_t cap)
{
	if (b->err)
		return 0;
	if (!arr && n) {
		b->err = -EINVAL;
		return 0;
	}
	if (n > cap) {
		b->err = -FC_ETOOBIG;
		return 0;
	}
	return 1;
}

static void put_prekeys(wire_buf_t *b, wire_list_t l, const wire_prekey_t *arr, uint16_t n)
{
	if (!arr && !n) {
		put_raw_list(b, l, WIRE_MAX_OTPKS, skip_prekey);
		return;
	}
	if (!out_ok(b, arr, n, WIRE_MAX_OTPKS))
		return;
	wire_put_u16(b, n);
	for (uint16_t i = 0; i < n; i++) {
		wire_put_u32(b, arr[i].id);
		wire_put_bytes(b, arr[i].key, WIRE_MAX_PREKEY);
	}
}

static void put_u32s(wire_buf_t *b, wire_list_t l, const uint32_t *arr, uint16_t n)
{
	if (!arr && !n) {
		put_raw_list(b, l, WIRE_MAX_DEVICES, skip_u32);
		return;
	}
	if (!out_ok(b, arr, n, WIRE_MAX_DEVICES))
		return;
	wire_put_u16(b, n);
	for (uint16_t i = 0; i < n; i++)
		wire_put_u32(b, arr[i]);
}

static void put_envelopes(wire_buf_t *b, wire_list_t l, const wire_envelope_t *arr, uint16_t n)
{
	if (!arr && !n) {
		put_raw_list(b, l, WIRE_MAX_ENVELOPES, skip_envelope);
		return;
	}
	if (!out_ok(b, arr, n, WIRE_MAX_ENVELOPES))
		return;
	wire_put_u16(b, n);
	for (uint16_t i = 0; i < n; i++) {
		wire_put_u64(b, arr[i].account);
		wire_put_u32(b, arr[i].device);
		wire_put_bytes(b, arr[i].ciphertext, WIRE_MAX_CIPHERTEXT);
	}
}

static void put_devsets(wire_buf_t *b, wire_list_t l, const wire_devset_t *arr, uint16_t n)
{
	if (!arr && !n) {
		put_raw_list(b, l, WIRE_MAX_DEVSETS, skip_devset);
		return;
	}
	if (!out_ok(b, arr, n, WIRE_MAX_DEVSETS))
		return;
	wire_put_u16(b, n);
	for (uint16_t i = 0; i < n; i++) {
		wire_put_u64(b, arr[i].account);
		put_u32s(b, arr[i].devices, arr[i].devices_out, arr[i].n_devices_out);
	}
}

/* Prekey ids are a value rule (0 means "none" in BUNDLE): checked before a
 * frame is begun, so a refused message leaves the buffer untouched. */
static int prekeys_out_ok(const wire_prekey_t *arr, uint16_t n)
{
	for (uint16_t i = 0; arr && i < n; i++)
		if (arr[i].id == 0)
			return 0;
	return 1;
}

/* ---- KEYS --------------------------------------------------------------- */

int wire_keys_get(wire_cur_t *c, wire_keys_t *k)
{
	memset(k, 0, sizeof *k);
	k->registration_id = wire_get_u32(c);
	k->identity_key = wire_get_bytes(c, WIRE_MAX_IDENTITY_KEY);
	k->spk_id = wire_get_u32(c);
	k->spk = wire_get_bytes(c, WIRE_MAX_SPK);
	k->spk_sig = wire_get_bytes(c, WIRE_MAX_SPK_SIG);
	get_list(c, &k->otpks, WIRE_MAX_OTPKS, skip_prekey);
	return c->err;
}

void wire_keys_put(wire_buf_t *b, const wire_keys_t *k)
{
	wire_put_u32(b, k->registration_id);
	wire_put_bytes(b, k->identity_key, WIRE_MAX_IDENTITY_KEY);
	wire_put_u32(b, k->spk_id);
	wire_put_bytes(b, k->spk, WIRE_MAX_SPK);
	wire_put_bytes(b, k->spk_sig, WIRE_MAX_SPK_SIG);
	put_prekeys(b, k->otpks, k->otpks_out, k->n_otpks_out);
}

/* ---- client -> server --------------------------------------------------- */

int wire_register_decode(slice_t body, wire_register_t *m)
{
	wire_cur_t c;
	wire_cur_init(&c, body);
	memset(m, 0, sizeof *m);
	m->invite = wire_get_str(&c, WIRE_MAX_INVITE);
	m->auth_pub = wire_get_fixed(&c, WIRE_KEY_LEN);
	if (wire_keys_get(&c, &m->keys) < 0)
		return c.err;
	m->sig = wire_get_fixed(&c, WIRE_SIG_LEN);
	return c.err;
}

int wire_register_encode(wire_buf_t *b, uint32_t req_id, const wire_register_t *m)
{
	if (!prekeys_out_ok(m->keys.otpks_out, m->keys.n_otpks_out))
		return -EINVAL;
	size_t st = wire_frame_begin(b, WIRE_MSG_REGISTER, req_id);
	wire_put_str(b, m->invite, WIRE_MAX_INVITE);
	wire_put_fixed(b, m->auth_pub, WIRE_KEY_LEN);
	wire_keys_put(b, &m->keys);
	wire_put_fixed(b, m->sig, WIRE_SIG_LEN);
	return wire_frame_end(b, st);
}

int wire_auth_decode(slice_t body, wire_auth_t *m)
{
	wire_cur_t c;
	wire_cur_init(&c, body);
	memset(m, 0, sizeof *m);
	m->account = wire_get_u64(&c);
	m->device = wire_get_u32(&c);
	m->sig = wire_get_fixed(&c, WIRE_SIG_LEN);
	return c.err;
}

int wire_auth_encode(wire_buf_t *b, uint32_t req_id, const wire_auth_t *m)
{
	size_t st = wire_frame_begin(b, WIRE_MSG_AUTH, req_id);
	wire_put_u64(b, m->account);
	wire_put_u32(b, m->device);
	wire_put_fixed(b, m->sig, WIRE_SIG_LEN);
	return wire_frame_end(b, st);
}

int wire_link_begin_encode(wire_buf_t *b, uint32_t req_id)
{
	size_t st = wire_frame_begin(b, WIRE_MSG_LINK_BEGIN, req_id);
	return wire_frame_end(b, st);
}

int wire_link_device_decode(slice_t body, wire_link_device_t *m)
{
	wire_cur_t c;
	wire_cur_init(&c, body);
	memset(m, 0, sizeof *m);
	m->code = wire_get_str(&c, WIRE_MAX_LINK_CODE);
	m->auth_pub = wire_get_fixed(&c, WIRE_KEY_LEN);
	if (wire_keys_get(&c, &m->keys) < 0)
		return c.err;
	m->sig = wire_get_fixed(&c, WIRE_SIG_LEN);
	return c.err;
}

int wire_link_device_encode(wire_buf_t *b, uint32_t req_id, const wire_link_device_t *m)
{
	if (!prekeys_out_ok(m->keys.otpks_out, m->keys.n_otpks_out))
		return -EINVAL;
	size_t st = wire_frame_begin(b, WIRE_MSG_LINK_DEVICE, req_id);
	wire_put_str(b, m->code, WIRE_MAX_LINK_CODE);
	wire_put_fixed(b, m->auth_pub, WIRE_KEY_LEN);
	wire_keys_put(b, &m->keys);
	wire_put_fixed(b, m->sig, WIRE_SIG_LEN);
	return wire_frame_end(b, st);
}

int wire_device_remove_decode(slice_t body, wire_device_remove_t *m)
{
	wire_cur_t c;
	wire_cur_init(&c, body);
	m->device = wire_get_u32(&c);
	return c.err;
}

int wire_device_remove_encode(wire_buf_t *b, uint32_t req_id, const wire_device_remove_t *m)
{
	size_t st = wire_frame_begin(b, WIRE_MSG_DEVICE_REMOVE, req_id);
	wire_put_u32(b, m->device);
	return wire_frame_end(b, st);
}

static int username_set_ok(slice_t u)
{
	return u.len == 0 || wire_username_valid(u);
}

int wire_username_set_decode(slice_t body, wire_username_set_t *m)
{
	wire_cur_t c;
	wire_cur_init(&c, body);
	m->username = wire_get_str(&c, WIRE_MAX_USERNAME);
	if (c.err)
		return c.err;
	return username_set_ok(m->username) ? 0 : -EINVAL;
}

int wire_username_set_encode(wire_buf_t *b, uint32_t req_id, const wire_username_set_t *m)
{
	if (m->username.len <= WIRE_MAX_USERNAME && !username_set_ok(m->username))
		return -EINVAL;
	size_t st = wire_frame_begin(b, WIRE_MSG_USERNAME_SET, req_id);
	wire_put_str(b, m->username, WIRE_MAX_USERNAME);
	return wire_frame_end(b, st);
}

int wire_resolve_decode(slice_t body, wire_resolve_t *m)
{
	wire_cur_t c;
	wire_cur_init(&c, body);
	m->username = wire_get_str(&c, WIRE_MAX_USERNAME);
	if (c.err)
		return c.err;
	return wire_username_valid(m->username) ? 0 : -EINVAL;
}

int wire_resolve_encode(wire_buf_t *b, uint32_t req_id, const wire_resolve_t *m)
{
	if (m->username.len <= WIRE_MAX_USERNAME && !wire_username_valid(m->username))
		return -EINVAL;
	size_t st = wire_frame_begin(b, WIRE_MSG_RESOLVE, req_id);
	wire_put_str(b, m->username, WIRE_MAX_USERNAME);
	return wire_frame_end(b, st);
}

int wire_devices_get_decode(slice_t body, wire_devices_get_t *m)
{
	wire_cur_t c;
	wire_cur_init(&c, body);
	m->account = wire_get_u64(&c);
	return c.err;
}

int wire_devices_get_encode(wire_buf_t *b, uint32_t req_id, const wire_devices_get_t *m)
{
	size_t st = wire_frame_begin(b, WIRE_MSG_DEVICES_GET, req_id);
	wire_put_u64(b, m->account);
	return wire_frame_end(b, st);
}

static int keys_upload_ok(const wire_keys_upload_t *m)
{
	return m->spk_id != 0 || (m->spk.len == 0 && m->spk_sig.len == 0);
}

int wire_keys_upload_decode(slice_t body, wire_keys_upload_t *m)
{
	wire_cur_t c;
	wire_cur_init(&c, body);
	memset(m, 0, sizeof *m);
	m->spk_id = wire_get_u32(&c);
	m->spk = wire_get_bytes(&c, WIRE_MAX_SPK);
	m->spk_sig = wire_get_bytes(&c, WIRE_MAX_SPK_SIG);
	get_list(&c, &m->otpks, WIRE_MAX_OTPKS, skip_prekey);
	if (c.err)
		return c.err;
	return keys_upload_ok(m) ? 0 : -EINVAL;
}

int wire_keys_upload_encode(wire_buf_t *b, uint32_t req_id, const wire_keys_upload_t *m)
{
	if (!keys_upload_ok(m) || !prekeys_out_ok(m->otpks_out, m->n_otpks_out))
		return -EINVAL;
	size_t st = wire_frame_begin(b, WIRE_MSG_KEYS_UPLOAD, req_id);
	wire_put_u32(b, m->spk_id);
	wire_put_bytes(b, m->spk, WIRE_MAX_SPK);
	wire_put_bytes(b, m->spk_sig, WIRE_MAX_SPK_SIG);
	put_prekeys(b, m->otpks, m->otpks_out, m->n_otpks_out);
	return wire_frame_end(b, st);
}

int wire_bundle_fetch_decode(slice_t body, wire_bundle_fetch_t *m)
{
	wire_cur_t c;
	wire_cur_init(&c, body);
	m->account = wire_get_u64(&c);
	m->device = wire_get_u32(&c);
	return c.err;
}

int wire_bundle_fetch_encode(wire_buf_t *b, uint32_t req_id, const wire_bundle_fetch_t *m)
{
	size_t st = wire_frame_begin(b, WIRE_MSG_BUNDLE_FETCH, req_id);
	wire_put_u64(b, m->account);
	wire_put_u32(b, m->device);
	return wire_frame_end(b, st);
}

int wire_send_decode(slice_t body, wire_send_t *m)
{
	wire_cur_t c;
	wire_cur_init(&c, body);
	memset(m, 0, sizeof *m);
	m->client_msg_id = wire_get_u64(&c);
	m->recipient = wire_get_u64(&c);
	get_list(&c, &m->envelopes, WIRE_MAX_ENVELOPES, skip_envelope);
	return c.err;
}

int wire_send_encode(wire_buf_t *b, uint32_t req_id, const wire_send_t *m)
{
	size_t st = wire_frame_begin(b, WIRE_MSG_SEND, req_id);
	wire_put_u64(b, m->client_msg_id);
	wire_put_u64(b, m->recipient);
	put_envelopes(b, m->envelopes, m->envelopes_out, m->n_envelopes_out);
	return wire_frame_end(b, st);
}

int wire_ack_decode(slice_t body, wire_ack_t *m)
{
	wire_cur_t c;
	wire_cur_init(&c, body);
	m->upto_seq = wire_get_u64(&c);
	return c.err;
}

int wire_ack_encode(wire_buf_t *b, uint32_t req_id, const wire_ack_t *m)
{
	size_t st = wire_frame_begin(b, WIRE_MSG_ACK, req_id);
	wire_put_u64(b, m->upto_seq);
	return wire_frame_end(b, st);
}

static int sync_limit_ok(uint16_t limit)
{
	return limit >= WIRE_SYNC_LIMIT_MIN && limit <= WIRE_SYNC_LIMIT_MAX;
}

int wire_sync_decode(slice_t body, wire_sync_t *m)
{
	wire_cur_t c;
	wire_cur_init(&c, body);
	m->after_seq = wire_get_u64(&c);
	m->limit = wire_get_u16(&c);
	if (c.err)
		return c.err;
	return sync_limit_ok(m->limit) ? 0 : -EINVAL;
}

int wire_sync_encode(wire_buf_t *b, uint32_t req_id, const wire_sync_t *m)
{
	if (!sync_limit_ok(m->limit))
		return -EINVAL;
	size_t st = wire_frame_begin(b, WIRE_MSG_SYNC, req_id);
	wire_put_u64(b, m->after_seq);
	wire_put_u16(b, m->limit);
	return wire_frame_end(b, st);
}

/* ---- server -> client --------------------------------------------------- */

int wire_challenge_decode(slice_t body, wire_challenge_t *m)
{
	wire_cur_t c;
	wire_cur_init(&c, body);
	m->min_version = wire_get_u8(&c);
	m->max_version = wire_get_u8(&c);
	m->nonce = wire_get_fixed(&c, WIRE_KEY_LEN);
	m->server_time_ms = wire_get_u64(&c);
	if (c.err)
		return c.err;
	return m->min_version <= m->max_version ? 0 : -EINVAL;
}

int wire_challenge_encode(wire_buf_t *b, uint32_t req_id, const wire_challenge_t *m)
{
	if (m->min_version > m->max_version)
		return -EINVAL;
	size_t st = wire_frame_begin(b, WIRE_MSG_CHALLENGE, req_id);
	wire_put_u8(b, m->min_version);
	wire_put_u8(b, m->max_version);
	wire_put_fixed(b, m->nonce, WIRE_KEY_LEN);
	wire_put_u64(b, m->server_time_ms);
	return wire_frame_end(b, st);
}

int wire_ok_encode(wire_buf_t *b, uint32_t req_id)
{
	size_t st = wire_frame_begin(b, WIRE_MSG_OK, req_id);
	return wire_frame_end(b, st);
}

int wire_error_decode(slice_t body, wire_error_t *m)
{
	wire_cur_t c;
	wire_cur_init(&c, body);
	m->code = wire_get_u16(&c);
	m->retry_after_ms = wire_get_u32(&c);
	m->detail = wire_get_str(&c, WIRE_MAX_ERR_DETAIL);
	return c.err;
}

/* The detail is for logs and never carries user data; printable ASCII keeps
 * it safe to log on either side without escaping. */
static int detail_ok(slice_t s)
{
	for (size_t i = 0; i < s.len; i++)
		if (s.ptr[i] < 0x20 || s.ptr[i] > 0x7E)
			return 0;
	return 1;
}

int wire_error_encode(wire_buf_t *b, uint32_t req_id, const wire_error_t *m)
{
	if (!detail_ok(m->detail))
		return -EINVAL;
	size_t st = wire_frame_begin(b, WIRE_MSG_ERROR, req_id);
	wire_put_u16(b, m->code);
	wire_put_u32(b, m->retry_after_ms);
	wire_put_str(b, m->detail, WIRE_MAX_ERR_DETAIL);
	return wire_frame_end(b, st);
}

int wire_error_send(wire_buf_t *b, uint32_t req_id, uint16_t code, uint32_t retry_after_ms,
		    const char *detail)
{
	wire_error_t m = {
		.code = code,
		.retry_after_ms = retry_after_ms,
		.detail = slice_cstr(detail),
	};
	return wire_error_encode(b, req_id, &m);
}

int wire_registered_decode(slice_t body, wire_registered_t *m)
{
	wire_cur_t c;
	wire_cur_init(&c, body);
	m->account = wire_get_u64(&c);
	m->device = wire_get_u32(&c);
	return c.err;
}

int wire_registered_encode(wire_buf_t *b, uint32_t req_id, const wire_registered_t *m)
{
	size_t st = wire_frame_begin(b, WIRE_MSG_REGISTERED, req_id);
	wire_put_u64(b, m->account);
	wire_put_u32(b, m->device);
	return wire_frame_end(b, st);
}

int wire_auth_ok_decode(slice_t body, wire_auth_ok_t *m)
{
	wire_cur_t c;
	wire_cur_init(&c, body);
	m->head_seq = wire_get_u64(&c);
	m->acked_seq = wire_get_u64(&c);
	return c.err;
}

int wire_auth_ok_encode(wire_buf_t *b, uint32_t req_id, const wire_auth_ok_t *m)
{
	size_t st = wire_frame_begin(b, WIRE_MSG_AUTH_OK, req_id);
	wire_put_u64(b, m->head_seq);
	wire_put_u64(b, m->acked_seq);
	return wire_frame_end(b, st);
}

int wire_link_code_decode(slice_t body, wire_link_code_t *m)
{
	wire_cur_t c;
	wire_cur_init(&c, body);
	m->code = wire_get_str(&c, WIRE_MAX_LINK_CODE);
	m->expires_in_s = wire_get_u32(&c);
	return c.err;
}

int wire_link_code_encode(wire_buf_t *b, uint32_t req_id, const wire_link_code_t *m)
{
	size_t st = wire_frame_begin(b, WIRE_MSG_LINK_CODE, req_id);
	wire_put_str(b, m->code, WIRE_MAX_LINK_CODE);
	wire_put_u32(b, m->expires_in_s);
	return wire_frame_end(b, st);
}

int wire_account_info_decode(slice_t body, wire_account_info_t *m)
{
	wire_cur_t c;
	wire_cur_init(&c, body);
	memset(m, 0, sizeof *m);
	m->account = wire_get_u64(&c);
	m->username = wire_get_str(&c, WIRE_MAX_USERNAME);
	get_list(&c, &m->devices, WIRE_MAX_DEVICES, skip_u32);
	return c.err;
}

int wire_account_info_encode(wire_buf_t *b, uint32_t req_id, const wire_account_info_t *m)
{
	size_t st = wire_frame_begin(b, WIRE_MSG_ACCOUNT_INFO, req_id);
	wire_put_u64(b, m->account);
	wire_put_str(b, m->username, WIRE_MAX_USERNAME);
	put_u32s(b, m->devices, m->devices_out, m->n_devices_out);
	return wire_frame_end(b, st);
}

int wire_keys_status_decode(slice_t body, wire_keys_status_t *m)
{
	wire_cur_t c;
	wire_cur_init(&c, body);
	m->otpks_remaining = wire_get_u32(&c);
	return c.err;
}

int wire_keys_status_encode(wire_buf_t *b, uint32_t req_id, const wire_keys_status_t *m)
{
	size_t st = wire_frame_begin(b, WIRE_MSG_KEYS_STATUS, req_id);
	wire_put_u32(b, m->otpks_remaining);
	return wire_frame_end(b, st);
}

static int bundle_ok(const wire_bundle_t *m)
{
	return (m->otpk_id == 0) == (m->otpk.len == 0);
}

int wire_bundle_decode(slice_t body, wire_bundle_t *m)
{
	wire_cur_t c;
	wire_cur_init(&c, body);
	m->account = wire_get_u64(&c);
	m->device = wire_get_u32(&c);
	m->registration_id = wire_get_u32(&c);
	m->identity_key = wire_get_bytes(&c, WIRE_MAX_IDENTITY_KEY);
	m->spk_id = wire_get_u32(&c);
	m->spk = wire_get_bytes(&c, WIRE_MAX_SPK);
	m->spk_sig = wire_get_bytes(&c, WIRE_MAX_SPK_SIG);
	m->otpk_id = wire_get_u32(&c);
	m->otpk = wire_get_bytes(&c, WIRE_MAX_PREKEY);
	if (c.err)
		return c.err;
	return bundle_ok(m) ? 0 : -EINVAL;
}

int wire_bundle_encode(wire_buf_t *b, uint32_t req_id, const wire_bundle_t *m)
{
	if (!bundle_ok(m))
		return -EINVAL;
	size_t st = wire_frame_begin(b, WIRE_MSG_BUNDLE, req_id);
	wire_put_u64(b, m->account);
	wire_put_u32(b, m->device);
	wire_put_u32(b, m->registration_id);
	wire_put_bytes(b, m->identity_key, WIRE_MAX_IDENTITY_KEY);
	wire_put_u32(b, m->spk_id);
	wire_put_bytes(b, m->spk, WIRE_MAX_SPK);
	wire_put_bytes(b, m->spk_sig, WIRE_MAX_SPK_SIG);
	wire_put_u32(b, m->otpk_id);
	wire_put_bytes(b, m->otpk, WIRE_MAX_PREKEY);
	return wire_frame_end(b, st);
}

int wire_accepted_decode(slice_t body, wire_accepted_t *m)
{
	wire_cur_t c;
	wire_cur_init(&c, body);
	m->client_msg_id = wire_get_u64(&c);
	m->timestamp_ms = wire_get_u64(&c);
	return c.err;
}

int wire_accepted_encode(wire_buf_t *b, uint32_t req_id, const wire_accepted_t *m)
{
	size_t st = wire_frame_begin(b, WIRE_MSG_ACCEPTED, req_id);
	wire_put_u64(b, m->client_msg_id);
	wire_put_u64(b, m->timestamp_ms);
	return wire_frame_end(b, st);
}

int wire_stale_decode(slice_t body, wire_stale_t *m)
{
	wire_cur_t c;
	wire_cur_init(&c, body);
	memset(m, 0, sizeof *m);
	m->client_msg_id = wire_get_u64(&c);
	get_list(&c, &m->devsets, WIRE_MAX_DEVSETS, skip_devset);
	return c.err;
}

int wire_stale_encode(wire_buf_t *b, uint32_t req_id, const wire_stale_t *m)
{
	size_t st = wire_frame_begin(b, WIRE_MSG_STALE_DEVICES, req_id);
	wire_put_u64(b, m->client_msg_id);
	put_devsets(b, m->devsets, m->devsets_out, m->n_devsets_out);
	return wire_frame_end(b, st);
}

int wire_deliver_decode(slice_t body, wire_deliver_t *m)
{
	wire_cur_t c;
	wire_cur_init(&c, body);
	m->seq = wire_get_u64(&c);
	m->sender_account = wire_get_u64(&c);
	m->sender_device = wire_get_u32(&c);
	m->timestamp_ms = wire_get_u64(&c);
	m->ciphertext = wire_get_bytes(&c, WIRE_MAX_CIPHERTEXT);
	return c.err;
}

int wire_deliver_encode(wire_buf_t *b, uint32_t req_id, const wire_deliver_t *m)
{
	size_t st = wire_frame_begin(b, WIRE_MSG_DELIVER, req_id);
	wire_put_u64(b, m->seq);
	wire_put_u64(b, m->sender_account);
	wire_put_u32(b, m->sender_device);
	wire_put_u64(b, m->timestamp_ms);
	wire_put_bytes(b, m->ciphertext, WIRE_MAX_CIPHERTEXT);
	return wire_frame_end(b, st);
}

int wire_sync_done_decode(slice_t body, wire_sync_done_t *m)
{
	wire_cur_t c;
	wire_cur_init(&c, body);
	m->head_seq = wire_get_u64(&c);
	m->last_seq = wire_get_u64(&c);
	m->has_more = wire_get_u8(&c);
	return c.err;
}

int wire_sync_done_encode(wire_buf_t *b, uint32_t req_id, const wire_sync_done_t *m)
{
	size_t st = wire_frame_begin(b, WIRE_MSG_SYNC_DONE, req_id);
	wire_put_u64(b, m->head_seq);
	wire_put_u64(b, m->last_seq);
	wire_put_u8(b, m->has_more);
	return wire_frame_end(b, st);
}

int wire_resync_decode(slice_t body, wire_resync_t *m)
{
	wire_cur_t c;
	wire_cur_init(&c, body);
	m->lost_from = wire_get_u64(&c);
	m->lost_to = wire_get_u64(&c);
	if (c.err)
		return c.err;
	return m->lost_from <= m->lost_to ? 0 : -EINVAL;
}

int wire_resync_encode(wire_buf_t *b, uint32_t req_id, const wire_resync_t *m)
{
	if (m->lost_from > m->lost_to)
		return -EINVAL;
	size_t st = wire_frame_begin(b, WIRE_MSG_RESYNC, req_id);
	wire_put_u64(b, m->lost_from);
	wire_put_u64(b, m->lost_to);
	return wire_frame_end(b, st);
}

int wire_prekeys_low_decode(slice_t body, wire_prekeys_low_t *m)
{
	wire_cur_t c;
	wire_cur_init(&c, body);
	m->remaining = wire_get_u32(&c);
	return c.err;
}

int wire_prekeys_low_encode(wire_buf_t *b, uint32_t req_id, const wire_prekeys_low_t *m)
{
	size_t st = wire_frame_begin(b, WIRE_MSG_PREKEYS_LOW, req_id);
	wire_put_u32(b, m->remaining);
	return wire_frame_end(b, st);
}

int wire_goaway_decode(slice_t body, wire_goaway_t *m)
{
	wire_cur_t c;
	wire_cur_init(&c, body);
	m->reconnect_after_ms = wire_get_u32(&c);
	return c.err;
}

int wire_goaway_encode(wire_buf_t *b, uint32_t req_id, const wire_goaway_t *m)
{
	size_t st = wire_frame_begin(b, WIRE_MSG_GOAWAY, req_id);
	wire_put_u32(b, m->reconnect_after_ms);
	return wire_frame_end(b, st);
}
