/*
 * e2e: the reference client's end-to-end encryption. It runs Signal-protocol
 * sessions (X3DH key agreement, then the Double Ratchet) through
 * libsignal-protocol-c, with OpenSSL as the crypto provider, and keeps all of
 * its state in one SQLite database, <dir>/e2e.db, inside a profile directory.
 *
 * A profile holds one device's identity key pair and registration id, its
 * signed prekey, its unused one-time prekeys, one session per peer device and
 * the identity key first seen for each peer device. Peers are addressed by
 * (account, device); inside libsignal an address is the decimal account id
 * with the device id. The local device's own account and device ids are not
 * stored here: the caller knows them and the protocol does not need them.
 *
 * Trust is "trust on first use": the first identity key seen for a peer
 * device is saved; a later different key for the same (account, device) is
 * refused with -FC_EAUTH, both when building a session from a bundle and when
 * a prekey message arrives.
 *
 * Every call that changes state runs in one SQLite transaction, so a failed
 * call (a bad MAC, a duplicate, a full disk) leaves the stored state exactly
 * as it was. The database is written with synchronous=FULL: losing a
 * committed ratchet step on power loss would make the next message reuse a
 * message key.
 *
 * Threads: an e2e_t may be shared between threads; each call holds the
 * handle's (recursive) mutex for its whole duration. Two handles must not
 * open the same profile at once from one process; different processes on one
 * profile are serialised by SQLite's locking.
 *
 * Secrets: private keys are stored unencrypted in e2e.db; the profile
 * directory is created 0700 and the database 0600. Nothing here logs keys,
 * plaintext or ciphertext.
 */
#ifndef FC_CLIENT_E2E_H
#define FC_CLIENT_E2E_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/slice.h"

/* Largest plaintext e2e_encrypt accepts (-FC_ETOOBIG above). */
#define E2E_MAX_PLAINTEXT (256u * 1024u)
/* Largest envelope e2e_decrypt accepts: the padded maximum plus room for the
 * protocol headers, MAC and the prekey-message wrapper. */
#define E2E_MAX_ENVELOPE (E2E_MAX_PLAINTEXT + 4096u)
/* Padding bucket: padded plaintexts are a multiple of this many bytes. */
#define E2E_PAD_BLOCK 160u
/* Most one-time prekeys one e2e_prekeys_generate call makes (-FC_ELIMIT). */
#define E2E_MAX_PREKEYS_PER_CALL 1000u
/* Length of a serialized public key (0x05 || 32 bytes) and of a signature. */
#define E2E_PUB_LEN 33u
#define E2E_SIG_LEN 64u

typedef struct e2e e2e_t;

typedef struct e2e_prekey {
	uint32_t id;
	uint8_t pub[33]; /* serialized public key: 0x05 || 32 bytes */
} e2e_prekey_t;

/* What the device uploads to the key directory. */
typedef struct e2e_public {
	uint32_t registration_id;
	uint8_t identity_pub[33];
	uint32_t spk_id;
	uint8_t spk_pub[33];
	uint8_t spk_sig[64];
} e2e_public_t;

/* What the key directory hands out for one device. The slices are borrowed
 * for the duration of e2e_session_init only. */
typedef struct e2e_bundle {
	uint32_t registration_id;
	slice_t identity_pub, spk_pub, spk_sig; /* as uploaded */
	uint32_t spk_id;
	uint32_t otpk_id; /* 0 = no one-time prekey; otpk_pub is then ignored */
	slice_t otpk_pub;
} e2e_bundle_t;

/*
 * Opens (creating when absent) the e2e state in dir. dir itself is created
 * with mode 0700 when missing (its parent must exist); an existing dir is used
 * as it is. A new state generates an identity key pair and a registration id
 * (1..16380). On success *out is a handle the caller releases with
 * e2e_close(). Errors: -EINVAL (NULL or empty dir), -ENAMETOOLONG, -ENOTDIR,
 * other negated errno values from mkdir, -FC_ESTORE (SQLite failure or not a
 * valid database), -FC_EVERSION (database written by a newer schema),
 * -ENOMEM.
 */
int e2e_open(e2e_t **out, const char *dir) FC_WUR;

/* Closes the handle and frees it. NULL is accepted. */
void e2e_close(e2e_t *e);

/*
 * Fills *out with this device's registration id, identity public key and
 * current signed prekey (generated, signed and stored on first call; id 1).
 * Errors: -FC_ESTORE, -ENOMEM.
 */
int e2e_public(e2e_t *e, e2e_public_t *out) FC_WUR;

/*
 * Generates n (1..E2E_MAX_PREKEYS_PER_CALL) fresh one-time prekeys, stores
 * their private halves and sets *out to a malloc'd array of n public halves
 * that the caller frees. Ids continue from the last generated id, across
 * reopenings, in 1..0xFFFFFE (wrapping after that, never 0). Errors: -EINVAL
 * (n == 0), -FC_ELIMIT (n too large), -FC_ESTORE, -ENOMEM; *out is untouched
 * on error.
 */
int e2e_prekeys_generate(e2e_t *e, unsigned n, e2e_prekey_t **out) FC_WUR;

/* Returns 1 if a session with (account, device) exists, 0 if not, or a
 * negative error (-EINVAL for device > INT32_MAX, -FC_ESTORE). */
int e2e_has_session(e2e_t *e, uint64_t account, uint32_t device) FC_WUR;

/*
 * Builds a session with (account, device) from a bundle fetched from the key
 * directory (X3DH as the initiator). An existing session with that device is
 * archived and replaced. The next messages to that device are prekey
 * messages until it first answers. Errors: -FC_EMALFORMED (wrong key or
 * signature lengths, not a Curve25519 public key), -FC_EAUTH (the signed
 * prekey's signature does not verify under identity_pub, or identity_pub
 * differs from the identity already trusted for that device), -EINVAL,
 * -FC_ESTORE, -ENOMEM.
 */
int e2e_session_init(e2e_t *e, uint64_t account, uint32_t device, const e2e_bundle_t *b) FC_WUR;

/* The first byte of an envelope. */
enum e2e_msg_type {
	E2E_MSG_PREKEY = 1, /* carries the X3DH parameters; creates a session */
	E2E_MSG_NORMAL = 2,
};

/*
 * Encrypts n bytes (n <= E2E_MAX_PLAINTEXT; pt may be NULL when n is 0) for
 * (account, device), which must have a session. The plaintext is padded
 * first: a 0x80 byte, then zero bytes up to the next multiple of
 * E2E_PAD_BLOCK (ISO/IEC 7816-4), so the ciphertext length reveals only the
 * bucket. On success *ct is a malloc'd envelope the caller frees:
 * 1 byte type (E2E_MSG_PREKEY or E2E_MSG_NORMAL) || serialized libsignal
 * message. Errors: -FC_ENOTFOUND (no session), -FC_ETOOBIG, -EINVAL,
 * -FC_ESTORE, -ENOMEM, -EPROTO; *ct is untouched on error.
 */
int e2e_encrypt(e2e_t *e, uint64_t account, uint32_t device, const uint8_t *pt, size_t n,
		uint8_t **ct, size_t *ct_len) FC_WUR;

/*
 * Decrypts an envelope from (account, device). A prekey message creates (or
 * re-creates) the session and consumes the one-time prekey it used. On
 * success *pt is a malloc'd buffer (never NULL, even for an empty message)
 * holding *pt_len bytes of plaintext with the padding removed; the caller
 * frees it. On any error nothing stored changes and *pt is untouched.
 * Errors: -FC_EMALFORMED (not an envelope, bad padding), -FC_EVERSION (a
 * protocol version other than 3), -FC_ETOOBIG, -FC_EAUTH (the sender's
 * identity differs from the trusted one, or the MAC does not verify),
 * -FC_EEXIST (the message was already decrypted), -FC_ENOTFOUND (a normal
 * message without a session, or a prekey message naming a prekey that is
 * gone), -EINVAL, -FC_ESTORE, -ENOMEM, -EPROTO (libsignal failed without a
 * more specific reason).
 */
int e2e_decrypt(e2e_t *e, uint64_t account, uint32_t device, const uint8_t *ct, size_t ct_len,
		uint8_t **pt, size_t *pt_len) FC_WUR;

/* Drops the session with a peer device (e.g. when the peer device was
 * removed). The trusted identity for that device is kept. Deleting a missing
 * session succeeds. Errors: -EINVAL, -FC_ESTORE. */
int e2e_session_delete(e2e_t *e, uint64_t account, uint32_t device) FC_WUR;

#ifdef E2E_INTERNAL
/*
 * Internal to the e2e module (e2e.c, e2e_crypto.c, e2e_store.c) and its unit
 * test; callers of the API above never define E2E_INTERNAL.
 */
struct signal_crypto_provider;
struct signal_protocol_store_context;

/* The libsignal crypto provider over OpenSSL 3 EVP. It holds the fetched
 * algorithms (HMAC, SHA-512, AES-CBC/CTR at three key sizes). */
typedef struct e2e_crypto e2e_crypto_t;

int e2e_crypto_create(e2e_crypto_t **out) FC_WUR;
void e2e_crypto_destroy(e2e_crypto_t *c);
/* Fills *p with the callbacks, bound to c (which must outlive their use). */
void e2e_crypto_provider_fill(e2e_crypto_t *c, struct signal_crypto_provider *p);

/* The SQLite state and the libsignal store callbacks over it. */
typedef struct e2e_store e2e_store_t;

/* Opens (creating) the database file at path: mode 0600, WAL, schema. */
int e2e_store_open(e2e_store_t **out, const char *path) FC_WUR;
void e2e_store_close(e2e_store_t *s);
/* Registers the session, prekey, signed prekey, identity and sender key
 * stores of sc, bound to s. */
int e2e_store_install(e2e_store_t *s, struct signal_protocol_store_context *sc) FC_WUR;
/* One write transaction at a time: begin, then commit or rollback. */
int e2e_store_begin(e2e_store_t *s) FC_WUR;
int e2e_store_commit(e2e_store_t *s) FC_WUR;
void e2e_store_rollback(e2e_store_t *s);
/* Small key/value table for the local identity and counters. _get returns
 * 1 and the value when present, 0 when absent, negative on error; a blob
 * longer than cap is -FC_ESTORE. */
int e2e_store_meta_blob_get(e2e_store_t *s, const char *key, uint8_t *buf, size_t cap, size_t *len)
	FC_WUR;
int e2e_store_meta_blob_set(e2e_store_t *s, const char *key, const uint8_t *v, size_t n) FC_WUR;
int e2e_store_meta_u32_get(e2e_store_t *s, const char *key, uint32_t *v) FC_WUR;
int e2e_store_meta_u32_set(e2e_store_t *s, const char *key, uint32_t v) FC_WUR;

/* Meta keys. */
#define E2E_META_IDENTITY_PUB "identity_pub"
#define E2E_META_IDENTITY_PRIV "identity_priv"
#define E2E_META_REGISTRATION_ID "registration_id"
#define E2E_META_SPK_ID "spk_id"
#define E2E_META_PREKEY_NEXT "prekey_next"
#endif

#endif
