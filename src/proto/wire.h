/*
 * wire: the fourc binary protocol codec, version 1 (docs/protocol.md).
 *
 * Every frame is a 12-byte header (version, type, flags, request id, body
 * length; big-endian) followed by the body. The same frames travel in
 * WebSocket binary messages and in HTTP request and response bodies.
 *
 * Decoding is zero-copy: a decoder fills a struct of slices and pointers that
 * view the caller's input buffer, so the decoded struct is valid exactly as
 * long as that buffer is. Decoders allocate nothing, check every length
 * against its cap, validate UTF-8 and validate each list completely, so that
 * the iterators walking a decoded list afterwards cannot fail. Bytes after the
 * last known field of a body are ignored (a later minor revision may append
 * fields). Decoders are pure functions: any thread may call them.
 *
 * Encoding writes complete frames (header included) into a wire_buf_t, a
 * growable buffer with a hard cap and a sticky error. Encoders validate what
 * they write (caps, UTF-8, value rules), so a frame produced here always
 * decodes again.
 *
 * Errors (negative, see core/err.h):
 *   -FC_ETRUNC     a field or the frame is cut short
 *   -FC_EMALFORMED the frame is longer than its header says
 *   -FC_ETOOBIG    a length or count is over its cap
 *   -FC_EUTF8      a str field is not valid UTF-8
 *   -FC_EVERSION   header version is not WIRE_VERSION
 *   -FC_ETYPE      unknown message type
 *   -EINVAL        a value rule checkable from the frame alone is broken
 *                  (username syntax, SYNC limit range, prekey id 0, ...)
 *   -ENOMEM        (encoding only) allocation failed
 * wire_err_from_code() maps these to the WIRE_ERR_* code sent in ERROR.
 *
 * Lists: a decoded list is a wire_list_t (count + raw validated bytes) that
 * is walked with wire_iter_init() and wire_<item>_next(). For encoding, each
 * struct with a list also carries a plain C array, named <list>_out with its
 * length n_<list>_out. Encoders use the array when <list>_out is non-NULL and
 * otherwise write the decoded wire_list_t (re-validated), so a decoded
 * message re-encodes byte for byte and can be relayed without copying items.
 * Zero-initialise structs before filling them for encoding.
 */
#ifndef FC_PROTO_WIRE_H
#define FC_PROTO_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/slice.h"

/* ---- constants ---------------------------------------------------------- */

#define WIRE_VERSION 1
#define WIRE_HDR_LEN 12
#define WIRE_MAX_FRAME 1048576
#define WIRE_MAX_BODY (WIRE_MAX_FRAME - WIRE_HDR_LEN)

#define WIRE_KEY_LEN 32 /* key32: Ed25519 public key, nonce */
#define WIRE_SIG_LEN 64 /* sig64: Ed25519 signature */

/* Caps of variable fields (bytes for `bytes`/`str`, items for lists). */
#define WIRE_MAX_INVITE 64
#define WIRE_MAX_LINK_CODE 64
#define WIRE_MAX_USERNAME 32
#define WIRE_MIN_USERNAME 3
#define WIRE_MAX_IDENTITY_KEY 64
#define WIRE_MAX_SPK 64
#define WIRE_MAX_SPK_SIG 128
#define WIRE_MAX_PREKEY 64
#define WIRE_MAX_OTPKS 200
#define WIRE_MAX_ENVELOPES 64
#define WIRE_MAX_CIPHERTEXT 65536
#define WIRE_MAX_DEVICES 32 /* devices per account in any device list */
#define WIRE_MAX_DEVSETS 2  /* STALE_DEVICES: recipient and sender */
#define WIRE_MAX_ERR_DETAIL 256
#define WIRE_SYNC_LIMIT_MIN 1
#define WIRE_SYNC_LIMIT_MAX 500

/* Signature contexts; the signed byte strings are built by wire_*_sigmsg(). */
#define WIRE_CTX_REGISTER "fourc-register-v1"
#define WIRE_CTX_AUTH "fourc-auth-v1"
#define WIRE_CTX_LINK "fourc-link-v1"
#define WIRE_SIGMSG_MAX 96

/* Message types. 0x01..0x3F client -> server, 0x40..0x7F server -> client. */
enum wire_type {
	WIRE_MSG_REGISTER = 0x01,
	WIRE_MSG_AUTH = 0x02,
	WIRE_MSG_LINK_BEGIN = 0x03,
	WIRE_MSG_LINK_DEVICE = 0x04,
	WIRE_MSG_DEVICE_REMOVE = 0x05,
	WIRE_MSG_USERNAME_SET = 0x06,
	WIRE_MSG_RESOLVE = 0x07,
	WIRE_MSG_DEVICES_GET = 0x08,
	WIRE_MSG_KEYS_UPLOAD = 0x09,
	WIRE_MSG_BUNDLE_FETCH = 0x0A,
	WIRE_MSG_SEND = 0x0B,
	WIRE_MSG_ACK = 0x0C,
	WIRE_MSG_SYNC = 0x0D,

	WIRE_MSG_CHALLENGE = 0x40,
	WIRE_MSG_OK = 0x41,
	WIRE_MSG_ERROR = 0x42,
	WIRE_MSG_REGISTERED = 0x43,
	WIRE_MSG_AUTH_OK = 0x44,
	WIRE_MSG_LINK_CODE = 0x45,
	WIRE_MSG_ACCOUNT_INFO = 0x46,
	WIRE_MSG_KEYS_STATUS = 0x47,
	WIRE_MSG_BUNDLE = 0x48,
	WIRE_MSG_ACCEPTED = 0x49,
	WIRE_MSG_STALE_DEVICES = 0x4A,
	WIRE_MSG_DELIVER = 0x4B,
	WIRE_MSG_SYNC_DONE = 0x4C,
	WIRE_MSG_RESYNC = 0x4D,
	WIRE_MSG_PREKEYS_LOW = 0x4E,
	WIRE_MSG_GOAWAY = 0x4F,
};

/* Codes carried by ERROR (docs/protocol.md lists retry and close rules). */
enum wire_err {
	WIRE_ERR_BAD_FRAME = 1,
	WIRE_ERR_UNSUPPORTED_VERSION = 2,
	WIRE_ERR_UNKNOWN_TYPE = 3,
	WIRE_ERR_NOT_AUTHENTICATED = 4,
	WIRE_ERR_AUTH_FAILED = 5,
	WIRE_ERR_BAD_INVITE = 6,
	WIRE_ERR_NOT_FOUND = 7,
	WIRE_ERR_TAKEN = 8,
	WIRE_ERR_LIMIT = 9,
	WIRE_ERR_CONFLICT = 10,
	WIRE_ERR_RATE_LIMITED = 11,
	WIRE_ERR_UNAVAILABLE = 12,
	WIRE_ERR_INTERNAL = 13,
	WIRE_ERR_TOO_LARGE = 14,
	WIRE_ERR_BAD_REQUEST = 15,
	WIRE_ERR_ALREADY_AUTHENTICATED = 16,
};

/* ---- header ------------------------------------------------------------- */

typedef struct wire_hdr {
	uint8_t version, type;
	uint16_t flags; /* reserved: written 0, ignored on receipt */
	uint32_t req_id;
	uint32_t body_len;
} wire_hdr_t;

/*
 * Decodes the header of one complete frame and returns its body as a view
 * into `frame`. Checks, in order: at least 12 bytes (-FC_ETRUNC); version
 * (-FC_EVERSION); body_len <= WIRE_MAX_BODY (-FC_ETOOBIG); body_len equal to
 * frame.len - 12 (fewer bytes: -FC_ETRUNC, more: -FC_EMALFORMED); known type
 * (-FC_ETYPE). Whenever 12 bytes are present *h is filled before any check,
 * so a server can echo req_id in its ERROR; *body is set only when the
 * length checks passed (also for -FC_ETYPE).
 */
FC_WUR int wire_hdr_decode(slice_t frame, wire_hdr_t *h, slice_t *body);

/* Writes a 12-byte header into out (version WIRE_VERSION, flags 0). */
void wire_hdr_write(uint8_t out[WIRE_HDR_LEN], uint8_t type, uint32_t req_id, uint32_t body_len);

/* ---- decoding cursor ---------------------------------------------------- */

/*
 * A bounds-checked read cursor over a slice with a sticky error: after the
 * first failure every getter returns 0 / an empty slice and err keeps the
 * first error code. Check c->err once after a run of reads.
 */
typedef struct wire_cur {
	const uint8_t *p, *end;
	int err;
} wire_cur_t;

void wire_cur_init(wire_cur_t *c, slice_t s);
size_t wire_cur_left(const wire_cur_t *c);
uint8_t wire_get_u8(wire_cur_t *c);
uint16_t wire_get_u16(wire_cur_t *c);
uint32_t wire_get_u32(wire_cur_t *c);
uint64_t wire_get_u64(wire_cur_t *c);
/* n raw bytes (key32, sig64): returns a pointer into the input, NULL on error. */
const uint8_t *wire_get_fixed(wire_cur_t *c, size_t n);
/* u32 length + bytes; a length over cap is -FC_ETOOBIG. */
slice_t wire_get_bytes(wire_cur_t *c, uint32_t cap);
/* u16 length + UTF-8; over cap -FC_ETOOBIG, invalid UTF-8 -FC_EUTF8. */
slice_t wire_get_str(wire_cur_t *c, uint16_t cap);

/* ---- encoding buffer ---------------------------------------------------- */

/*
 * A growable output buffer with a hard cap `max` and a sticky error. The
 * zero value is a valid empty buffer whose cap is WIRE_MAX_FRAME. Growing
 * past max sets -FC_ETOOBIG; a failed allocation sets -ENOMEM. The buffer
 * owns p (malloc'd); release it with wire_buf_free(). Not thread-safe.
 */
typedef struct wire_buf {
	uint8_t *p;
	size_t len, cap, max;
	int err;
} wire_buf_t;

/* max 0 means WIRE_MAX_FRAME. Does not allocate. */
void wire_buf_init(wire_buf_t *b, size_t max);
/* Empties the buffer and clears the error; keeps the allocation and max. */
void wire_buf_reset(wire_buf_t *b);
/* Frees the memory; the buffer is then empty and reusable (max kept). */
void wire_buf_free(wire_buf_t *b);
static inline slice_t wire_buf_slice(const wire_buf_t *b)
{
	return slice_make(b->p, b->len);
}

void wire_put_u8(wire_buf_t *b, uint8_t v);
void wire_put_u16(wire_buf_t *b, uint16_t v);
void wire_put_u32(wire_buf_t *b, uint32_t v);
void wire_put_u64(wire_buf_t *b, uint64_t v);
/* n raw bytes; p NULL sets -EINVAL. */
void wire_put_fixed(wire_buf_t *b, const void *p, size_t n);
/* u32 length + bytes; s.len over cap sets -FC_ETOOBIG. */
void wire_put_bytes(wire_buf_t *b, slice_t s, uint32_t cap);
/* u16 length + bytes; over cap -FC_ETOOBIG, invalid UTF-8 -FC_EUTF8. */
void wire_put_str(wire_buf_t *b, slice_t s, uint16_t cap);

/*
 * Frames: wire_frame_begin() appends a header (body_len 0) and returns the
 * offset of the frame; the body is then appended with wire_put_*; and
 * wire_frame_end() patches body_len. It returns 0 or the buffer's error; on
 * error it also drops the partial frame (len back to start), so a buffer
 * holding several frames only ever contains complete ones. Several frames may
 * be appended to one buffer (batched writes).
 */
size_t wire_frame_begin(wire_buf_t *b, uint8_t type, uint32_t req_id);
FC_WUR int wire_frame_end(wire_buf_t *b, size_t start);

/* ---- lists -------------------------------------------------------------- */

typedef struct wire_list {
	uint16_t count;
	slice_t raw; /* the items' bytes, after the u16 count; validated */
} wire_list_t;

typedef struct wire_iter {
	wire_cur_t c;
	uint16_t left;
} wire_iter_t;

void wire_iter_init(wire_iter_t *it, wire_list_t l);

/* ---- shared sub-structures ---------------------------------------------- */

typedef struct wire_prekey {
	uint32_t id; /* non-zero */
	slice_t key; /* <= WIRE_MAX_PREKEY */
} wire_prekey_t;

/* KEYS: the key material a new device uploads (REGISTER, LINK_DEVICE). */
typedef struct wire_keys {
	uint32_t registration_id;
	slice_t identity_key; /* <= WIRE_MAX_IDENTITY_KEY */
	uint32_t spk_id;
	slice_t spk;                    /* <= WIRE_MAX_SPK */
	slice_t spk_sig;                /* <= WIRE_MAX_SPK_SIG */
	wire_list_t otpks;              /* decode: <= WIRE_MAX_OTPKS prekeys */
	const wire_prekey_t *otpks_out; /* encode */
	uint16_t n_otpks_out;
} wire_keys_t;

typedef struct wire_envelope {
	uint64_t account;
	uint32_t device;
	slice_t ciphertext; /* <= WIRE_MAX_CIPHERTEXT */
} wire_envelope_t;

typedef struct wire_devset {
	uint64_t account;
	wire_list_t devices;         /* decode: <= WIRE_MAX_DEVICES u32 */
	const uint32_t *devices_out; /* encode */
	uint16_t n_devices_out;
} wire_devset_t;

/* Iterators over validated lists: 1 while an item was produced, 0 at end. */
int wire_prekey_next(wire_iter_t *it, wire_prekey_t *out);
int wire_envelope_next(wire_iter_t *it, wire_envelope_t *out);
int wire_u32_next(wire_iter_t *it, uint32_t *out);
/* The produced devset has devices set (and devices_out NULL). */
int wire_devset_next(wire_iter_t *it, wire_devset_t *out);

/* ---- client -> server --------------------------------------------------- */

typedef struct wire_register {
	slice_t invite;          /* str <= WIRE_MAX_INVITE */
	const uint8_t *auth_pub; /* 32 bytes, Ed25519 */
	wire_keys_t keys;
	const uint8_t *sig; /* 64 bytes, see wire_register_sigmsg() */
} wire_register_t;

typedef struct wire_auth {
	uint64_t account;
	uint32_t device;
	const uint8_t *sig; /* 64 bytes, see wire_auth_sigmsg() */
} wire_auth_t;

typedef struct wire_link_device {
	slice_t code;            /* str <= WIRE_MAX_LINK_CODE */
	const uint8_t *auth_pub; /* 32 bytes */
	wire_keys_t keys;
	const uint8_t *sig; /* 64 bytes, see wire_link_sigmsg() */
} wire_link_device_t;

typedef struct wire_device_remove {
	uint32_t device;
} wire_device_remove_t;

/* USERNAME_SET: empty clears, else wire_username_valid() (-EINVAL). */
typedef struct wire_username_set {
	slice_t username;
} wire_username_set_t;

/* RESOLVE: username must satisfy wire_username_valid() (-EINVAL). */
typedef struct wire_resolve {
	slice_t username;
} wire_resolve_t;

typedef struct wire_devices_get {
	uint64_t account;
} wire_devices_get_t;

/* KEYS_UPLOAD: spk_id 0 = no new signed prekey; then spk and spk_sig must be
 * empty (-EINVAL). */
typedef struct wire_keys_upload {
	uint32_t spk_id;
	slice_t spk;     /* <= WIRE_MAX_SPK */
	slice_t spk_sig; /* <= WIRE_MAX_SPK_SIG */
	wire_list_t otpks;
	const wire_prekey_t *otpks_out;
	uint16_t n_otpks_out;
} wire_keys_upload_t;

typedef struct wire_bundle_fetch {
	uint64_t account;
	uint32_t device;
} wire_bundle_fetch_t;

typedef struct wire_send {
	uint64_t client_msg_id;
	uint64_t recipient;
	wire_list_t envelopes;                /* decode: <= WIRE_MAX_ENVELOPES */
	const wire_envelope_t *envelopes_out; /* encode */
	uint16_t n_envelopes_out;
} wire_send_t;

typedef struct wire_ack {
	uint64_t upto_seq;
} wire_ack_t;

/* SYNC: limit in WIRE_SYNC_LIMIT_MIN..WIRE_SYNC_LIMIT_MAX (-EINVAL). */
typedef struct wire_sync {
	uint64_t after_seq;
	uint16_t limit;
} wire_sync_t;

/* ---- server -> client --------------------------------------------------- */

/* CHALLENGE: min_version <= max_version (-EINVAL). */
typedef struct wire_challenge {
	uint8_t min_version, max_version;
	const uint8_t *nonce; /* 32 bytes */
	uint64_t server_time_ms;
} wire_challenge_t;

/* ERROR: detail is ASCII (0x20..0x7E) when encoding (-EINVAL otherwise);
 * decoding accepts any valid UTF-8. */
typedef struct wire_error {
	uint16_t code; /* WIRE_ERR_* */
	uint32_t retry_after_ms;
	slice_t detail; /* str <= WIRE_MAX_ERR_DETAIL */
} wire_error_t;

typedef struct wire_registered {
	uint64_t account;
	uint32_t device;
} wire_registered_t;

typedef struct wire_auth_ok {
	uint64_t head_seq;
	uint64_t acked_seq;
} wire_auth_ok_t;

typedef struct wire_link_code {
	slice_t code; /* str <= WIRE_MAX_LINK_CODE */
	uint32_t expires_in_s;
} wire_link_code_t;

/* ACCOUNT_INFO: username empty when the account has none. */
typedef struct wire_account_info {
	uint64_t account;
	slice_t username;            /* str <= WIRE_MAX_USERNAME */
	wire_list_t devices;         /* decode: <= WIRE_MAX_DEVICES u32 */
	const uint32_t *devices_out; /* encode */
	uint16_t n_devices_out;
} wire_account_info_t;

typedef struct wire_keys_status {
	uint32_t otpks_remaining;
} wire_keys_status_t;

/* BUNDLE: otpk_id 0 = none, then otpk is empty; else otpk non-empty
 * (-EINVAL otherwise). */
typedef struct wire_bundle {
	uint64_t account;
	uint32_t device;
	uint32_t registration_id;
	slice_t identity_key; /* <= WIRE_MAX_IDENTITY_KEY */
	uint32_t spk_id;
	slice_t spk;     /* <= WIRE_MAX_SPK */
	slice_t spk_sig; /* <= WIRE_MAX_SPK_SIG */
	uint32_t otpk_id;
	slice_t otpk; /* <= WIRE_MAX_PREKEY */
} wire_bundle_t;

typedef struct wire_accepted {
	uint64_t client_msg_id;
	uint64_t timestamp_ms;
} wire_accepted_t;

typedef struct wire_stale {
	uint64_t client_msg_id;
	wire_list_t devsets;              /* decode: <= WIRE_MAX_DEVSETS */
	const wire_devset_t *devsets_out; /* encode */
	uint16_t n_devsets_out;
} wire_stale_t;

typedef struct wire_deliver {
	uint64_t seq;
	uint64_t sender_account;
	uint32_t sender_device;
	uint64_t timestamp_ms;
	slice_t ciphertext; /* <= WIRE_MAX_CIPHERTEXT */
} wire_deliver_t;

typedef struct wire_sync_done {
	uint64_t head_seq;
	uint64_t last_seq;
	uint8_t has_more; /* 0 or 1; receivers treat non-zero as 1 */
} wire_sync_done_t;

typedef struct wire_resync {
	uint64_t lost_from, lost_to; /* inclusive; lost_from <= lost_to (-EINVAL) */
} wire_resync_t;

typedef struct wire_prekeys_low {
	uint32_t remaining;
} wire_prekeys_low_t;

typedef struct wire_goaway {
	uint32_t reconnect_after_ms;
} wire_goaway_t;

/* ---- per-message codecs ------------------------------------------------- */

/*
 * int wire_<name>_decode(slice_t body, wire_<name>_t *m): decodes a body (as
 * returned by wire_hdr_decode) into *m, whose slices then view `body`. On
 * error *m is unspecified.
 * int wire_<name>_encode(wire_buf_t *b, uint32_t req_id, const wire_<name>_t *m):
 * appends one complete frame; returns 0 or a negative code (then nothing of
 * the frame remains in b; see wire_frame_end()). A broken value rule of the
 * message (the -EINVAL cases above) is refused before anything is written
 * and leaves b and b->err untouched; caps, UTF-8 and allocation failures set
 * the sticky b->err.
 */
#define WIRE_CODEC(name)                                                   \
	FC_WUR int wire_##name##_decode(slice_t body, wire_##name##_t *m); \
	FC_WUR int wire_##name##_encode(wire_buf_t *b, uint32_t req_id, const wire_##name##_t *m)

WIRE_CODEC(register);
WIRE_CODEC(auth);
WIRE_CODEC(link_device);
WIRE_CODEC(device_remove);
WIRE_CODEC(username_set);
WIRE_CODEC(resolve);
WIRE_CODEC(devices_get);
WIRE_CODEC(keys_upload);
WIRE_CODEC(bundle_fetch);
WIRE_CODEC(send);
WIRE_CODEC(ack);
WIRE_CODEC(sync);
WIRE_CODEC(challenge);
WIRE_CODEC(error);
WIRE_CODEC(registered);
WIRE_CODEC(auth_ok);
WIRE_CODEC(link_code);
WIRE_CODEC(account_info);
WIRE_CODEC(keys_status);
WIRE_CODEC(bundle);
WIRE_CODEC(accepted);
WIRE_CODEC(stale);
WIRE_CODEC(deliver);
WIRE_CODEC(sync_done);
WIRE_CODEC(resync);
WIRE_CODEC(prekeys_low);
WIRE_CODEC(goaway);

/* KEYS sub-structure on its own (used inside REGISTER and LINK_DEVICE). */
FC_WUR int wire_keys_get(wire_cur_t *c, wire_keys_t *k);
void wire_keys_put(wire_buf_t *b, const wire_keys_t *k);

/* Bodies without fields: LINK_BEGIN and OK. */
FC_WUR int wire_link_begin_encode(wire_buf_t *b, uint32_t req_id);
FC_WUR int wire_ok_encode(wire_buf_t *b, uint32_t req_id);

/* Convenience: ERROR with a C-string detail (ASCII, may be NULL). */
FC_WUR int wire_error_send(wire_buf_t *b, uint32_t req_id, uint16_t code, uint32_t retry_after_ms,
			   const char *detail);

/* ---- any message -------------------------------------------------------- */

typedef struct wire_msg {
	wire_hdr_t hdr;
	union {
		wire_register_t reg;
		wire_auth_t auth;
		wire_link_device_t link_device;
		wire_device_remove_t device_remove;
		wire_username_set_t username_set;
		wire_resolve_t resolve;
		wire_devices_get_t devices_get;
		wire_keys_upload_t keys_upload;
		wire_bundle_fetch_t bundle_fetch;
		wire_send_t send;
		wire_ack_t ack;
		wire_sync_t sync;
		wire_challenge_t challenge;
		wire_error_t error;
		wire_registered_t registered;
		wire_auth_ok_t auth_ok;
		wire_link_code_t link_code;
		wire_account_info_t account_info;
		wire_keys_status_t keys_status;
		wire_bundle_t bundle;
		wire_accepted_t accepted;
		wire_stale_t stale;
		wire_deliver_t deliver;
		wire_sync_done_t sync_done;
		wire_resync_t resync;
		wire_prekeys_low_t prekeys_low;
		wire_goaway_t goaway;
	} u; /* LINK_BEGIN and OK have no member */
} wire_msg_t;

/*
 * Decodes one complete frame: header (see wire_hdr_decode(), m->hdr is filled
 * as described there even on error) and then the body with the decoder of
 * its type. The union member for hdr.type is valid on success.
 */
FC_WUR int wire_msg_decode(slice_t frame, wire_msg_t *m);
/* Decodes a body of the given type into m->u (m->hdr untouched). */
FC_WUR int wire_body_decode(uint8_t type, slice_t body, wire_msg_t *m);
/* Encodes m->u as a frame of type m->hdr.type with request id m->hdr.req_id. */
FC_WUR int wire_msg_encode(wire_buf_t *b, const wire_msg_t *m);

/* ---- helpers ------------------------------------------------------------ */

/* "SEND", "DELIVER", ...; "UNKNOWN" for an unknown type. Never NULL. */
const char *wire_type_name(uint8_t type);
/* 1 if type is a v1 message type. */
int wire_type_known(uint8_t type);
/* 1 for client -> server types (0x01..0x3F), whether known or not. */
static inline int wire_type_is_request(uint8_t type)
{
	return type >= 0x01 && type <= 0x3F;
}
/* "BAD_FRAME", ...; "UNKNOWN" for codes outside 1..16. Never NULL. */
const char *wire_err_name(uint16_t code);
/*
 * Maps a project error code (core/err.h or -errno) to the WIRE_ERR_* code a
 * server sends for it. 0 and positive values map to 0 (no error); anything
 * without a better match maps to WIRE_ERR_INTERNAL.
 */
uint16_t wire_err_from_code(int fc_err);
/* 1 if s is 3..32 bytes of [a-z0-9_.], else 0 (also for empty). */
int wire_username_valid(slice_t s);

/*
 * Signed byte strings (docs/protocol.md, "Signatures"). Each writes into out
 * (at least WIRE_SIGMSG_MAX bytes) and returns the length:
 *   register: "fourc-register-v1" || nonce(32) || auth_pub(32)     (81)
 *   auth:     "fourc-auth-v1" || nonce(32) || account u64 BE || device u32 BE (57)
 *   link:     "fourc-link-v1" || nonce(32) || auth_pub(32)         (77)
 */
size_t wire_register_sigmsg(uint8_t *out, const uint8_t nonce[WIRE_KEY_LEN],
			    const uint8_t auth_pub[WIRE_KEY_LEN]);
size_t wire_auth_sigmsg(uint8_t *out, const uint8_t nonce[WIRE_KEY_LEN], uint64_t account,
			uint32_t device);
size_t wire_link_sigmsg(uint8_t *out, const uint8_t nonce[WIRE_KEY_LEN],
			const uint8_t auth_pub[WIRE_KEY_LEN]);

#endif
