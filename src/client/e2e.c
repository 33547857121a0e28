/*
 * e2e: the public API of the reference client's end-to-end encryption. It
 * wires libsignal-protocol-c to the OpenSSL crypto provider (e2e_crypto.c)
 * and the SQLite stores (e2e_store.c), and adds what libsignal leaves to the
 * application: key generation policy, the envelope (a type byte in front of
 * the serialized message), plaintext padding, and error mapping.
 *
 * Each entry point takes the handle's recursive mutex (the same one libsignal
 * locks through the context's locking functions) and runs its stores in one
 * transaction, rolled back on any error, so libsignal never observes a half
 * written state and a failed decryption leaves the ratchet untouched.
 */
#define E2E_INTERNAL
#include "client/e2e.h"

#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <signal/key_helper.h>
#include <signal/protocol.h>
#include <signal/session_builder.h>
#include <signal/session_cipher.h>
#include <signal/session_pre_key.h>
#include <signal/signal_protocol.h>

#include "core/assert.h"
#include "core/log.h"

#define DB_NAME "e2e.db"
/* One-time prekey ids run 1..PREKEY_ID_MAX. libsignal reserves
 * PRE_KEY_MEDIUM_MAX_VALUE (0xFFFFFF) as "no prekey to consume", and 0 means
 * "no one-time prekey" in a bundle. */
#define PREKEY_ID_MAX (PRE_KEY_MEDIUM_MAX_VALUE - 1)
/* The 0x80 byte that ends the message and starts the padding. */
#define PAD_MARK 0x80

struct e2e {
	pthread_mutex_t lock;
	int lock_ready;
	e2e_crypto_t *crypto;
	e2e_store_t *store;
	signal_context *ctx;
	signal_protocol_store_context *sctx;
};

/* A libsignal address for (account, device). It points into itself, so it
 * is used where it was made and never copied. */
typedef struct addr {
	char name[24];
	signal_protocol_address a;
} addr_t;

static int addr_set(addr_t *ad, uint64_t account, uint32_t device)
{
	if (device > INT32_MAX)
		return -EINVAL;
	int n = snprintf(ad->name, sizeof ad->name, "%" PRIu64, account);
	ASSERT(n > 0 && (size_t)n < sizeof ad->name);
	ad->a = (signal_protocol_address){
		.name = ad->name, .name_len = (size_t)n, .device_id = (int32_t)device};
	return 0;
}

/* Turns a libsignal result into a project code. Our store callbacks already
 * return project codes (below SG_ERR_MINIMUM), which pass through. */
static int sg_map(int rc)
{
	if (rc >= 0 || rc <= -FC_EPROTO_BASE)
		return rc;
	switch (rc) {
	case SG_ERR_NOMEM:
		return -ENOMEM;
	case SG_ERR_INVAL:
		return -EINVAL;
	case SG_ERR_DUPLICATE_MESSAGE:
		return -FC_EEXIST;
	case SG_ERR_INVALID_MAC:
	case SG_ERR_INVALID_MESSAGE: /* MAC mismatch, or no state that decrypts it */
	case SG_ERR_UNTRUSTED_IDENTITY:
		return -FC_EAUTH;
	case SG_ERR_NO_SESSION:
	case SG_ERR_INVALID_KEY_ID: /* the prekey a message names is gone */
		return -FC_ENOTFOUND;
	case SG_ERR_INVALID_KEY:
	case SG_ERR_INVALID_VERSION:
	case SG_ERR_LEGACY_MESSAGE:
	case SG_ERR_INVALID_PROTO_BUF:
	case SG_ERR_STALE_KEY_EXCHANGE:
		return -FC_EMALFORMED;
	default:
		return -EPROTO;
	}
}

static void ctx_lock(void *user_data)
{
	e2e_t *e = user_data;
	pthread_mutex_lock(&e->lock);
}

static void ctx_unlock(void *user_data)
{
	e2e_t *e = user_data;
	pthread_mutex_unlock(&e->lock);
}

static void sg_log(int level, const char *message, size_t len, void *user_data)
{
	/* libsignal's messages name addresses and counters, never keys. */
	int n = len > 200 ? 200 : (int)len;
	LOGD("e2e_signal", "sg_level=%d msg=\"%.*s\"", level, n, message);
}

/* Serializes a public key into the fixed 33-byte form. */
static int pub_export(const ec_public_key *key, uint8_t out[E2E_PUB_LEN])
{
	signal_buffer *b = NULL;
	int rc = sg_map(ec_public_key_serialize(&b, key));
	if (rc < 0)
		return rc;
	if (signal_buffer_len(b) == E2E_PUB_LEN)
		memcpy(out, signal_buffer_data(b), E2E_PUB_LEN);
	else
		rc = -EPROTO;
	signal_buffer_free(b);
	return rc;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- open / close ---- */

static int dir_ensure(const char *dir)
{
	if (mkdir(dir, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return -errno;
	struct stat sb;
	if (stat(dir, &sb) != 0)
		return -errno;
	return S_ISDIR(sb.st_mode) ? 0 : -ENOTDIR;
}

/* Creates the identity key pair and registration id of a new profile. The
 * check runs inside the write transaction so two processes opening one new
 * profile at once cannot both create an identity. */
static int identity_ensure(e2e_t *e)
{
	ratchet_identity_key_pair *kp = NULL;
	signal_buffer *pub = NULL, *priv = NULL;
	uint8_t tmp[E2E_PUB_LEN];
	size_t len = 0;
	uint32_t reg = 0;

	int rc = e2e_store_begin(e->store);
	if (rc < 0)
		return rc;
	rc = e2e_store_meta_blob_get(e->store, E2E_META_IDENTITY_PUB, tmp, sizeof tmp, &len);
	if (rc != 0)
		goto out; /* present (1) or an error */
	rc = sg_map(signal_protocol_key_helper_generate_identity_key_pair(&kp, e->ctx));
	if (rc < 0)
		goto out;
	rc = sg_map(ec_public_key_serialize(&pub, ratchet_identity_key_pair_get_public(kp)));
	if (rc < 0)
		goto out;
	rc = sg_map(ec_private_key_serialize(&priv, ratchet_identity_key_pair_get_private(kp)));
	if (rc < 0)
		goto out;
	rc = sg_map(signal_protocol_key_helper_generate_registration_id(&reg, 0, e->ctx));
	if (rc < 0)
		goto out;
	rc = e2e_store_meta_blob_set(e->store, E2E_META_IDENTITY_PUB, signal_buffer_data(pub),
				     signal_buffer_len(pub));
	if (rc == 0)
		rc = e2e_store_meta_blob_set(e->store, E2E_META_IDENTITY_PRIV,
					     signal_buffer_data(priv), signal_buffer_len(priv));
	if (rc == 0)
		rc = e2e_store_meta_u32_set(e->store, E2E_META_REGISTRATION_ID, reg);
	if (rc == 0)
		rc = e2e_store_meta_u32_set(e->store, E2E_META_PREKEY_NEXT, 1);
	if (rc == 0)
		LOGI("e2e_identity_created", "registration_id=%" PRIu32, reg);
out:
	if (rc >= 0)
		rc = e2e_store_commit(e->store);
	else
		e2e_store_rollback(e->store);
	signal_buffer_free(pub);
	signal_buffer_bzero_free(priv);
	SIGNAL_UNREF(kp);
	return rc;
}

int e2e_open(e2e_t **out, const char *dir)
{
	if (!out || !dir || !dir[0])
		return -EINVAL;
	char path[PATH_MAX];
	int n = snprintf(path, sizeof path, "%s/" DB_NAME, dir);
	if (n < 0 || (size_t)n >= sizeof path)
		return -ENAMETOOLONG;
	int rc = dir_ensure(dir);
	if (rc < 0)
		return rc;

	e2e_t *e = calloc(1, sizeof *e);
	if (!e)
		return -ENOMEM;
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	/* libsignal locks again from inside calls that already hold the lock. */
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	rc = pthread_mutex_init(&e->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	if (rc != 0) {
		free(e);
		return -rc;
	}
	e->lock_ready = 1;

	rc = e2e_crypto_create(&e->crypto);
	if (rc < 0)
		goto fail;
	rc = sg_map(signal_context_create(&e->ctx, e));
	if (rc < 0)
		goto fail;
	signal_crypto_provider provider;
	e2e_crypto_provider_fill(e->crypto, &provider);
	if (signal_context_set_crypto_provider(e->ctx, &provider) < 0 ||
	    signal_context_set_locking_functions(e->ctx, ctx_lock, ctx_unlock) < 0 ||
	    signal_context_set_log_function(e->ctx, sg_log) < 0) {
		rc = -EINVAL;
		goto fail;
	}
	rc = e2e_store_open(&e->store, path);
	if (rc < 0)
		goto fail;
	rc = sg_map(signal_protocol_store_context_create(&e->sctx, e->ctx));
	if (rc < 0)
		goto fail;
	rc = e2e_store_install(e->store, e->sctx);
	if (rc < 0)
		goto fail;
	rc = identity_ensure(e);
	if (rc < 0)
		goto fail;
	*out = e;
	return 0;
fail:
	LOGW("e2e_open_failed", "err=\"%s\"", err_str(rc));
	e2e_close(e);
	return rc;
}

void e2e_close(e2e_t *e)
{
	if (!e)
		return;
	/* The store context calls no destroy_func of ours: the stores are owned
	 * by e->store, closed after it. */
	if (e->sctx)
		signal_protocol_store_context_destroy(e->sctx);
	if (e->ctx)
		signal_context_destroy(e->ctx);
	e2e_store_close(e->store);
	e2e_crypto_destroy(e->crypto);
	if (e->lock_ready)
		pthread_mutex_destroy(&e->lock);
	free(e);
}

/* Runs the end of an entry point: commit on success, roll back otherwise,
 * release the lock. Returns the final code. */
static int finish(e2e_t *e, int rc)
{
	if (rc >= 0) {
		int c = e2e_store_commit(e->store);
		if (c < 0)
			rc = c;
	} else {
		e2e_store_rollback(e->store);
	}
	pthread_mutex_unlock(&e->lock);
	return rc;
}

/* Locks the handle and opens the call's transaction. */
static int start(e2e_t *e)
{
	pthread_mutex_lock(&e->lock);
	int rc = e2e_store_begin(e->store);
	if (rc < 0)
		pthread_mutex_unlock(&e->lock);
	return rc;
}

/* ---- keys ---- */

static int spk_generate(e2e_t *e, uint32_t id, session_signed_pre_key **out)
{
	ratchet_identity_key_pair *kp = NULL;
	session_signed_pre_key *spk = NULL;
	int rc = sg_map(signal_protocol_identity_get_key_pair(e->sctx, &kp));
	if (rc < 0)
		goto out;
	rc = sg_map(
		signal_protocol_key_helper_generate_signed_pre_key(&spk, kp, id, now_ms(), e->ctx));
	if (rc < 0)
		goto out;
	rc = sg_map(signal_protocol_signed_pre_key_store_key(e->sctx, spk));
	if (rc < 0)
		goto out;
	rc = e2e_store_meta_u32_set(e->store, E2E_META_SPK_ID, id);
	if (rc < 0)
		goto out;
	LOGI("e2e_spk_created", "spk_id=%" PRIu32, id);
	*out = spk;
	spk = NULL;
out:
	SIGNAL_UNREF(spk);
	SIGNAL_UNREF(kp);
	return rc;
}

/* Loads the current signed prekey, creating the first one (id 1) if none. */
static int spk_current(e2e_t *e, session_signed_pre_key **out)
{
	uint32_t id = 0;
	int rc = e2e_store_meta_u32_get(e->store, E2E_META_SPK_ID, &id);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return spk_generate(e, 1, out);
	rc = signal_protocol_signed_pre_key_load_key(e->sctx, out, id);
	if (rc == SG_ERR_INVALID_KEY_ID) {
		/* The id is recorded but the key is gone: replace it with a new
		 * one under a new id, so no peer mixes the two. */
		LOGW("e2e_spk_missing", "spk_id=%" PRIu32, id);
		return spk_generate(e, id == UINT32_MAX ? 1 : id + 1, out);
	}
	/* Anything else (a record that no longer parses) is local damage. */
	if (rc == SG_ERR_NOMEM)
		return -ENOMEM;
	return rc < 0 && rc > -FC_EPROTO_BASE ? -FC_ESTORE : rc;
}

int e2e_public(e2e_t *e, e2e_public_t *out)
{
	ASSERT(e);
	if (!out)
		return -EINVAL;
	session_signed_pre_key *spk = NULL;
	e2e_public_t pub;
	memset(&pub, 0, sizeof pub);
	size_t len = 0;

	int rc = start(e);
	if (rc < 0)
		return rc;
	rc = e2e_store_meta_blob_get(e->store, E2E_META_IDENTITY_PUB, pub.identity_pub,
				     sizeof pub.identity_pub, &len);
	if (rc == 1 && len != E2E_PUB_LEN)
		rc = -FC_ESTORE;
	if (rc == 1)
		rc = e2e_store_meta_u32_get(e->store, E2E_META_REGISTRATION_ID,
					    &pub.registration_id);
	if (rc == 0)
		rc = -FC_ESTORE; /* e2e_open created both */
	if (rc < 0)
		goto out;
	rc = spk_current(e, &spk);
	if (rc < 0)
		goto out;
	pub.spk_id = session_signed_pre_key_get_id(spk);
	rc = pub_export(ec_key_pair_get_public(session_signed_pre_key_get_key_pair(spk)),
			pub.spk_pub);
	if (rc < 0)
		goto out;
	if (session_signed_pre_key_get_signature_len(spk) != E2E_SIG_LEN) {
		rc = -FC_ESTORE;
		goto out;
	}
	memcpy(pub.spk_sig, session_signed_pre_key_get_signature(spk), E2E_SIG_LEN);
	rc = 0;
out:
	SIGNAL_UNREF(spk);
	rc = finish(e, rc);
	if (rc == 0)
		*out = pub;
	return rc;
}

/* Makes, stores and exports one one-time prekey. */
static int prekey_make(e2e_t *e, uint32_t id, e2e_prekey_t *out)
{
	ec_key_pair *kp = NULL;
	session_pre_key *pk = NULL;
	int rc = sg_map(curve_generate_key_pair(e->ctx, &kp));
	if (rc < 0)
		goto out;
	rc = sg_map(session_pre_key_create(&pk, id, kp));
	if (rc < 0)
		goto out;
	rc = sg_map(signal_protocol_pre_key_store_key(e->sctx, pk));
	if (rc < 0)
		goto out;
	out->id = id;
	rc = pub_export(ec_key_pair_get_public(kp), out->pub);
out:
	SIGNAL_UNREF(pk);
	SIGNAL_UNREF(kp);
	return rc;
}

int e2e_prekeys_generate(e2e_t *e, unsigned n, e2e_prekey_t **out)
{
	ASSERT(e);
	if (!out || n == 0)
		return -EINVAL;
	if (n > E2E_MAX_PREKEYS_PER_CALL)
		return -FC_ELIMIT;
	e2e_prekey_t *arr = calloc(n, sizeof *arr);
	if (!arr)
		return -ENOMEM;

	int rc = start(e);
	if (rc < 0) {
		free(arr);
		return rc;
	}
	uint32_t id = 1;
	rc = e2e_store_meta_u32_get(e->store, E2E_META_PREKEY_NEXT, &id);
	if (rc < 0)
		goto out;
	if (id == 0 || id > PREKEY_ID_MAX)
		id = 1;
	for (unsigned i = 0; i < n && rc >= 0; i++) {
		rc = prekey_make(e, id, &arr[i]);
		id = id >= PREKEY_ID_MAX ? 1 : id + 1;
	}
	if (rc >= 0)
		rc = e2e_store_meta_u32_set(e->store, E2E_META_PREKEY_NEXT, id);
out:
	rc = finish(e, rc);
	if (rc < 0) {
		free(arr);
		return rc;
	}
	LOGD("e2e_prekeys_generated", "count=%u next_id=%" PRIu32, n, id);
	*out = arr;
	return 0;
}

/* ---- sessions ---- */

int e2e_has_session(e2e_t *e, uint64_t account, uint32_t device)
{
	ASSERT(e);
	addr_t ad;
	int rc = addr_set(&ad, account, device);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&e->lock);
	rc = sg_map(signal_protocol_session_contains_session(e->sctx, &ad.a));
	pthread_mutex_unlock(&e->lock);
	return rc < 0 ? rc : rc > 0;
}

/* Decodes a 33-byte serialized public key from a bundle. */
static int pub_import(e2e_t *e, slice_t s, ec_public_key **out)
{
	if (s.len != E2E_PUB_LEN || !s.ptr)
		return -FC_EMALFORMED;
	int rc = curve_decode_point(out, s.ptr, s.len, e->ctx);
	return rc == SG_ERR_NOMEM ? -ENOMEM : rc < 0 ? -FC_EMALFORMED : 0;
}

int e2e_session_init(e2e_t *e, uint64_t account, uint32_t device, const e2e_bundle_t *b)
{
	ASSERT(e);
	if (!b)
		return -EINVAL;
	addr_t ad;
	int rc = addr_set(&ad, account, device);
	if (rc < 0)
		return rc;
	if (!b->spk_sig.ptr || b->spk_sig.len != E2E_SIG_LEN)
		return -FC_EMALFORMED;

	ec_public_key *ik = NULL, *spk = NULL, *otpk = NULL;
	session_pre_key_bundle *bundle = NULL;
	session_builder *builder = NULL;
	rc = pub_import(e, b->identity_pub, &ik);
	if (rc == 0)
		rc = pub_import(e, b->spk_pub, &spk);
	if (rc == 0 && b->otpk_id != 0)
		rc = pub_import(e, b->otpk_pub, &otpk);
	if (rc < 0)
		goto out;
	/* libsignal checks this too, but reports a bad signature the same way
	 * as a malformed key; checking first gives the caller -FC_EAUTH. */
	rc = curve_verify_signature(ik, b->spk_pub.ptr, b->spk_pub.len, b->spk_sig.ptr,
				    b->spk_sig.len);
	if (rc != 1) {
		LOGW("e2e_bundle_bad_signature", "account=%s device=%" PRIu32, ad.name, device);
		rc = -FC_EAUTH;
		goto out;
	}
	rc = sg_map(session_pre_key_bundle_create(&bundle, b->registration_id, (int)device,
						  b->otpk_id, otpk, b->spk_id, spk, b->spk_sig.ptr,
						  b->spk_sig.len, ik));
	if (rc < 0)
		goto out;

	rc = start(e);
	if (rc < 0)
		goto out;
	rc = sg_map(session_builder_create(&builder, e->sctx, &ad.a, e->ctx));
	if (rc == 0)
		rc = sg_map(session_builder_process_pre_key_bundle(builder, bundle));
	rc = finish(e, rc);
	if (rc == 0)
		LOGD("e2e_session_built", "account=%s device=%" PRIu32 " otpk=%d", ad.name, device,
		     b->otpk_id != 0);
out:
	session_builder_free(builder);
	SIGNAL_UNREF(bundle);
	SIGNAL_UNREF(otpk);
	SIGNAL_UNREF(spk);
	SIGNAL_UNREF(ik);
	return rc;
}

int e2e_session_delete(e2e_t *e, uint64_t account, uint32_t device)
{
	ASSERT(e);
	addr_t ad;
	int rc = addr_set(&ad, account, device);
	if (rc < 0)
		return rc;
	rc = start(e);
	if (rc < 0)
		return rc;
	rc = sg_map(signal_protocol_session_delete_session(e->sctx, &ad.a));
	rc = finish(e, rc);
	return rc < 0 ? rc : 0;
}

/* ---- messages ---- */

int e2e_encrypt(e2e_t *e, uint64_t account, uint32_t device, const uint8_t *pt, size_t n,
		uint8_t **ct, size_t *ct_len)
{
	ASSERT(e);
	if (!ct || !ct_len || (n > 0 && !pt))
		return -EINVAL;
	if (n > E2E_MAX_PLAINTEXT)
		return -FC_ETOOBIG;
	addr_t ad;
	int rc = addr_set(&ad, account, device);
	if (rc < 0)
		return rc;

	/* ISO/IEC 7816-4 padding: 0x80 then zeros, always at least one byte,
	 * up to the next multiple of the bucket size. */
	size_t plen = (n / E2E_PAD_BLOCK + 1) * E2E_PAD_BLOCK;
	uint8_t *padded = calloc(1, plen);
	if (!padded)
		return -ENOMEM;
	if (n > 0)
		memcpy(padded, pt, n);
	padded[n] = PAD_MARK;

	session_cipher *cipher = NULL;
	ciphertext_message *msg = NULL;
	uint8_t *env = NULL;
	size_t env_len = 0;
	rc = start(e);
	if (rc < 0)
		goto out;
	/* Without this check libsignal would encrypt against an empty record
	 * and fail with an unspecific error. */
	rc = sg_map(signal_protocol_session_contains_session(e->sctx, &ad.a));
	if (rc == 0)
		rc = -FC_ENOTFOUND;
	if (rc < 0)
		goto done;
	rc = sg_map(session_cipher_create(&cipher, e->sctx, &ad.a, e->ctx));
	if (rc < 0)
		goto done;
	rc = sg_map(session_cipher_encrypt(cipher, padded, plen, &msg));
	if (rc < 0)
		goto done;
	int type = ciphertext_message_get_type(msg);
	signal_buffer *ser = ciphertext_message_get_serialized(msg);
	if ((type != CIPHERTEXT_PREKEY_TYPE && type != CIPHERTEXT_SIGNAL_TYPE) || !ser) {
		rc = -EPROTO;
		goto done;
	}
	env_len = 1 + signal_buffer_len(ser);
	env = malloc(env_len);
	if (!env) {
		rc = -ENOMEM;
		goto done;
	}
	env[0] = type == CIPHERTEXT_PREKEY_TYPE ? E2E_MSG_PREKEY : E2E_MSG_NORMAL;
	memcpy(env + 1, signal_buffer_data(ser), env_len - 1);
done:
	rc = finish(e, rc);
out:
	session_cipher_free(cipher);
	SIGNAL_UNREF(msg);
	explicit_bzero(padded, plen);
	free(padded);
	if (rc < 0) {
		free(env);
		return rc;
	}
	*ct = env;
	*ct_len = env_len;
	return 0;
}

/* Strips the padding added by e2e_encrypt; the whole padded length must be a
 * whole number of buckets and the padding at most one bucket. */
static int unpad(const uint8_t *p, size_t len, size_t *n)
{
	if (len == 0 || len % E2E_PAD_BLOCK != 0)
		return -FC_EMALFORMED;
	size_t i = len;
	while (i > 0 && p[i - 1] == 0)
		i--;
	if (i == 0 || p[i - 1] != PAD_MARK || len - (i - 1) > E2E_PAD_BLOCK)
		return -FC_EMALFORMED;
	*n = i - 1;
	return 0;
}

/* Parses an envelope into one of the two libsignal message types. */
static int envelope_parse(e2e_t *e, const uint8_t *ct, size_t ct_len, pre_key_signal_message **pkm,
			  signal_message **sm)
{
	if (ct[0] != E2E_MSG_PREKEY && ct[0] != E2E_MSG_NORMAL)
		return -FC_EMALFORMED;
	/* Both message types start with a version byte whose high nibble is
	 * the protocol version. libsignal accepts some other versions here and
	 * only fails later, indistinguishably from a bad MAC. */
	if (ct[1] >> 4 != CIPHERTEXT_CURRENT_VERSION)
		return -FC_EVERSION;
	int rc;
	if (ct[0] == E2E_MSG_PREKEY)
		rc = pre_key_signal_message_deserialize(pkm, ct + 1, ct_len - 1, e->ctx);
	else
		rc = signal_message_deserialize(sm, ct + 1, ct_len - 1, e->ctx);
	/* Whatever libsignal's reason (bad protobuf, version, key), input that
	 * does not parse is malformed. */
	return rc == SG_ERR_NOMEM ? -ENOMEM : rc < 0 ? -FC_EMALFORMED : 0;
}

int e2e_decrypt(e2e_t *e, uint64_t account, uint32_t device, const uint8_t *ct, size_t ct_len,
		uint8_t **pt, size_t *pt_len)
{
	ASSERT(e);
	if (!pt || !pt_len || (ct_len > 0 && !ct))
		return -EINVAL;
	if (ct_len > E2E_MAX_ENVELOPE)
		return -FC_ETOOBIG;
	if (ct_len < 2)
		return -FC_EMALFORMED;
	addr_t ad;
	int rc = addr_set(&ad, account, device);
	if (rc < 0)
		return rc;

	pre_key_signal_message *pkm = NULL;
	signal_message *sm = NULL;
	session_cipher *cipher = NULL;
	signal_buffer *plain = NULL;
	uint8_t *res = NULL;
	size_t n = 0;
	rc = envelope_parse(e, ct, ct_len, &pkm, &sm);
	if (rc < 0)
		goto out;
	rc = start(e);
	if (rc < 0)
		goto out;
	rc = sg_map(session_cipher_create(&cipher, e->sctx, &ad.a, e->ctx));
	if (rc < 0)
		goto done;
	if (pkm)
		rc = session_cipher_decrypt_pre_key_signal_message(cipher, pkm, NULL, &plain);
	else
		rc = session_cipher_decrypt_signal_message(cipher, sm, NULL, &plain);
	rc = sg_map(rc);
	if (rc < 0)
		goto done;
	rc = unpad(signal_buffer_data(plain), signal_buffer_len(plain), &n);
	if (rc < 0)
		goto done;
	res = malloc(n ? n : 1);
	if (!res) {
		rc = -ENOMEM;
		goto done;
	}
	if (n > 0)
		memcpy(res, signal_buffer_data(plain), n);
done:
	rc = finish(e, rc);
out:
	if (rc < 0)
		LOGD("e2e_decrypt_failed", "account=%s device=%" PRIu32 " type=%u err=\"%s\"",
		     ad.name, device, ct[0], err_str(rc));
	signal_buffer_bzero_free(plain);
	session_cipher_free(cipher);
	SIGNAL_UNREF(pkm);
	SIGNAL_UNREF(sm);
	if (rc < 0) {
		if (res)
			explicit_bzero(res, n);
		free(res);
		return rc;
	}
	*pt = res;
	*pt_len = n;
	return 0;
}
