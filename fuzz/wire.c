/*
 * Fuzz target for the wire codec (src/proto/wire.h).
 *
 * The input is treated as one frame: the header is decoded, then the body
 * (when the lengths allow it, otherwise the bytes after the first 12) is fed
 * to every body decoder, not only the one of the frame's type, so each
 * decoder sees every shape of input. Every list that decodes is walked to
 * its end with the iterators, whose item counts must match. A frame that
 * decodes as a whole is re-encoded, and the result must decode again to the
 * same body bytes (minus unknown trailing bytes): the encoder never emits a
 * frame the decoder refuses. Seed corpus: fuzz/corpus/wire/ (the binary
 * frames of tests/vectors/).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                       \
	do {                                                                              \
		if (!(cond)) {                                                            \
			fprintf(stderr, "fuzz/wire: check failed: %s (line %d)\n", #cond, \
				__LINE__);                                                \
			abort();                                                          \
		}                                                                         \
	} while (0)

/* Touches every byte of a slice so ASan sees any out-of-bounds view. */
static volatile uint8_t sink;

static void touch(slice_t s)
{
	for (size_t i = 0; i < s.len; i++)
		sink ^= s.ptr[i];
}

static void touch_fixed(const uint8_t *p, size_t n)
{
	CHECK(p != NULL);
	touch(slice_make(p, n));
}

static void walk_prekeys(wire_list_t l)
{
	wire_iter_t it;
	wire_prekey_t pk;
	unsigned n = 0;
	wire_iter_init(&it, l);
	while (wire_prekey_next(&it, &pk)) {
		CHECK(pk.id != 0 && pk.key.len <= WIRE_MAX_PREKEY);
		touch(pk.key);
		n++;
	}
	CHECK(n == l.count);
}

static void walk_u32s(wire_list_t l)
{
	wire_iter_t it;
	uint32_t v;
	unsigned n = 0;
	wire_iter_init(&it, l);
	while (wire_u32_next(&it, &v)) {
		sink ^= (uint8_t)v;
		n++;
	}
	CHECK(n == l.count && l.count <= WIRE_MAX_DEVICES);
}

static void walk_keys(const wire_keys_t *k)
{
	touch(k->identity_key);
	touch(k->spk);
	touch(k->spk_sig);
	walk_prekeys(k->otpks);
}

static void walk(uint8_t type, const wire_msg_t *m)
{
	wire_iter_t it;
	unsigned n = 0;
	switch (type) {
	case WIRE_MSG_REGISTER:
		touch(m->u.reg.invite);
		touch_fixed(m->u.reg.auth_pub, WIRE_KEY_LEN);
		walk_keys(&m->u.reg.keys);
		touch_fixed(m->u.reg.sig, WIRE_SIG_LEN);
		break;
	case WIRE_MSG_LINK_DEVICE:
		touch(m->u.link_device.code);
		touch_fixed(m->u.link_device.auth_pub, WIRE_KEY_LEN);
		walk_keys(&m->u.link_device.keys);
		touch_fixed(m->u.link_device.sig, WIRE_SIG_LEN);
		break;
	case WIRE_MSG_AUTH:
		touch_fixed(m->u.auth.sig, WIRE_SIG_LEN);
		break;
	case WIRE_MSG_USERNAME_SET:
		CHECK(m->u.username_set.username.len == 0 ||
		      wire_username_valid(m->u.username_set.username));
		break;
	case WIRE_MSG_RESOLVE:
		CHECK(wire_username_valid(m->u.resolve.username));
		break;
	case WIRE_MSG_KEYS_UPLOAD:
		touch(m->u.keys_upload.spk);
		touch(m->u.keys_upload.spk_sig);
		walk_prekeys(m->u.keys_upload.otpks);
		break;
	case WIRE_MSG_SEND: {
		wire_envelope_t e;
		wire_iter_init(&it, m->u.send.envelopes);
		while (wire_envelope_next(&it, &e)) {
			touch(e.ciphertext);
			n++;
		}
		CHECK(n == m->u.send.envelopes.count && n <= WIRE_MAX_ENVELOPES);
		break;
	}
	case WIRE_MSG_SYNC:
		CHECK(m->u.sync.limit >= WIRE_SYNC_LIMIT_MIN &&
		      m->u.sync.limit <= WIRE_SYNC_LIMIT_MAX);
		break;
	case WIRE_MSG_CHALLENGE:
		touch_fixed(m->u.challenge.nonce, WIRE_KEY_LEN);
		break;
	case WIRE_MSG_ERROR:
		touch(m->u.error.detail);
		sink ^= (uint8_t)wire_err_name(m->u.error.code)[0];
		break;
	case WIRE_MSG_LINK_CODE:
		touch(m->u.link_code.code);
		break;
	case WIRE_MSG_ACCOUNT_INFO:
		touch(m->u.account_info.username);
		walk_u32s(m->u.account_info.devices);
		break;
	case WIRE_MSG_BUNDLE:
		touch(m->u.bundle.identity_key);
		touch(m->u.bundle.spk);
		touch(m->u.bundle.spk_sig);
		touch(m->u.bundle.otpk);
		CHECK((m->u.bundle.otpk_id == 0) == (m->u.bundle.otpk.len == 0));
		break;
	case WIRE_MSG_STALE_DEVICES: {
		wire_devset_t ds;
		wire_iter_init(&it, m->u.stale.devsets);
		while (wire_devset_next(&it, &ds)) {
			walk_u32s(ds.devices);
			n++;
		}
		CHECK(n == m->u.stale.devsets.count && n <= WIRE_MAX_DEVSETS);
		break;
	}
	case WIRE_MSG_DELIVER:
		touch(m->u.deliver.ciphertext);
		break;
	case WIRE_MSG_RESYNC:
		CHECK(m->u.resync.lost_from <= m->u.resync.lost_to);
		break;
	default:
		break;
	}
}

/* Re-encodes a decoded frame and checks that it decodes to the same body. */
static void roundtrip(const wire_msg_t *m, slice_t body)
{
	wire_buf_t b = {0};
	int rc = wire_msg_encode(&b, m);
	/* ERROR details decode as any UTF-8 but encode only as ASCII. */
	if (rc == -EINVAL && m->hdr.type == WIRE_MSG_ERROR) {
		wire_buf_free(&b);
		return;
	}
	CHECK(rc == 0);
	wire_msg_t m2;
	CHECK(wire_msg_decode(wire_buf_slice(&b), &m2) == 0);
	CHECK(m2.hdr.type == m->hdr.type && m2.hdr.req_id == m->hdr.req_id);
	CHECK(m2.hdr.flags == 0);
	/* The re-encoded body is a prefix of the original one: only unknown
	 * trailing bytes may have been dropped. */
	size_t blen = b.len - WIRE_HDR_LEN;
	CHECK(blen <= body.len);
	CHECK(blen == 0 || memcmp(b.p + WIRE_HDR_LEN, body.ptr, blen) == 0);
	/* Re-encoding the re-decoded message is a fixed point. */
	wire_buf_t b2 = {0};
	CHECK(wire_msg_encode(&b2, &m2) == 0);
	CHECK(b2.len == b.len && memcmp(b2.p, b.p, b.len) == 0);
	wire_buf_free(&b2);
	wire_buf_free(&b);
}

static const uint8_t all_types[] = {
	0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x40, 0x41,
	0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	wire_msg_t m;
	slice_t frame = slice_make(data, size);
	int rc = wire_msg_decode(frame, &m);
	CHECK(rc <= 0);
	sink ^= (uint8_t)wire_err_from_code(rc);
	if (rc == 0) {
		CHECK(m.hdr.version == WIRE_VERSION && wire_type_known(m.hdr.type));
		CHECK(m.hdr.body_len == size - WIRE_HDR_LEN);
		walk(m.hdr.type, &m);
		roundtrip(&m, slice_make(data + WIRE_HDR_LEN, size - WIRE_HDR_LEN));
	}

	/* Every decoder over the body (or whatever follows the header). */
	slice_t body = size > WIRE_HDR_LEN ? slice_make(data + WIRE_HDR_LEN, size - WIRE_HDR_LEN) :
					     slice_make(data, size);
	for (size_t i = 0; i < sizeof all_types; i++) {
		wire_msg_t u;
		memset(&u, 0, sizeof u);
		rc = wire_body_decode(all_types[i], body, &u);
		if (rc == 0)
			walk(all_types[i], &u);
		else
			CHECK(rc == -FC_ETRUNC || rc == -FC_ETOOBIG || rc == -FC_EUTF8 ||
			      rc == -EINVAL);
	}
	return 0;
}
