/*
 * e2e_crypto: the signal_crypto_provider that libsignal-protocol-c calls for
 * randomness, HMAC-SHA256, SHA-512 and AES, implemented with OpenSSL 3 EVP.
 *
 * Algorithms are fetched once per provider (e2e_crypto_create) rather than
 * per call: libsignal runs several HMACs for every message (chain key steps,
 * HKDF), and an explicit fetch each time would repeat a provider lookup.
 *
 * Callbacks return 0 on success and SG_ERR_* values on failure, as libsignal
 * expects. Temporary buffers that held key material or plaintext are wiped
 * before they are freed.
 */
#define E2E_INTERNAL
#include "client/e2e.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <signal/signal_protocol.h>

/* Index of a key size in the cipher tables: 128, 192, 256 bits. */
enum { AES_128, AES_192, AES_256, AES_SIZES };

struct e2e_crypto {
	EVP_MAC *hmac;
	EVP_MD *sha512;
	EVP_CIPHER *cbc[AES_SIZES];
	EVP_CIPHER *ctr[AES_SIZES];
};

static const char *const cbc_names[AES_SIZES] = {"AES-128-CBC", "AES-192-CBC", "AES-256-CBC"};
static const char *const ctr_names[AES_SIZES] = {"AES-128-CTR", "AES-192-CTR", "AES-256-CTR"};

int e2e_crypto_create(e2e_crypto_t **out)
{
	e2e_crypto_t *c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	c->hmac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
	c->sha512 = EVP_MD_fetch(NULL, "SHA512", NULL);
	int ok = c->hmac && c->sha512;
	for (int i = 0; i < AES_SIZES; i++) {
		c->cbc[i] = EVP_CIPHER_fetch(NULL, cbc_names[i], NULL);
		c->ctr[i] = EVP_CIPHER_fetch(NULL, ctr_names[i], NULL);
		ok = ok && c->cbc[i] && c->ctr[i];
	}
	if (!ok) {
		/* The default provider lacks an algorithm: a broken install. */
		e2e_crypto_destroy(c);
		return -FC_EUNAVAIL;
	}
	*out = c;
	return 0;
}

void e2e_crypto_destroy(e2e_crypto_t *c)
{
	if (!c)
		return;
	EVP_MAC_free(c->hmac);
	EVP_MD_free(c->sha512);
	for (int i = 0; i < AES_SIZES; i++) {
		EVP_CIPHER_free(c->cbc[i]);
		EVP_CIPHER_free(c->ctr[i]);
	}
	free(c);
}

static int random_fill(uint8_t *data, size_t len, void *user_data)
{
	/* RAND_bytes takes an int length; larger requests go in chunks. */
	while (len > 0) {
		int chunk = len > INT_MAX ? INT_MAX : (int)len;
		if (RAND_bytes(data, chunk) != 1)
			return SG_ERR_UNKNOWN;
		data += chunk;
		len -= (size_t)chunk;
	}
	return 0;
}

static int hmac_init(void **hmac_context, const uint8_t *key, size_t key_len, void *user_data)
{
	e2e_crypto_t *c = user_data;
	/* OpenSSL treats a NULL key as "keep the previous key"; HKDF may use an
	 * empty salt, which must be an empty key instead. */
	static const uint8_t no_key[1];
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(c->hmac);
	if (!ctx)
		return SG_ERR_NOMEM;
	if (EVP_MAC_init(ctx, key_len ? key : no_key, key_len, params) != 1) {
		EVP_MAC_CTX_free(ctx);
		return SG_ERR_UNKNOWN;
	}
	*hmac_context = ctx;
	return 0;
}

static int hmac_update(void *hmac_context, const uint8_t *data, size_t data_len, void *user_data)
{
	if (data_len == 0)
		return 0;
	return EVP_MAC_update(hmac_context, data, data_len) == 1 ? 0 : SG_ERR_UNKNOWN;
}

static int hmac_final(void *hmac_context, signal_buffer **output, void *user_data)
{
	uint8_t mac[EVP_MAX_MD_SIZE];
	size_t len = 0;
	if (EVP_MAC_final(hmac_context, mac, &len, sizeof mac) != 1)
		return SG_ERR_UNKNOWN;
	signal_buffer *buf = signal_buffer_create(mac, len);
	OPENSSL_cleanse(mac, sizeof mac);
	if (!buf)
		return SG_ERR_NOMEM;
	*output = buf;
	return 0;
}

static void hmac_cleanup(void *hmac_context, void *user_data)
{
	EVP_MAC_CTX_free(hmac_context);
}

static int sha512_init(void **digest_context, void *user_data)
{
	e2e_crypto_t *c = user_data;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx)
		return SG_ERR_NOMEM;
	if (EVP_DigestInit_ex2(ctx, c->sha512, NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		return SG_ERR_UNKNOWN;
	}
	*digest_context = ctx;
	return 0;
}

static int sha512_update(void *digest_context, const uint8_t *data, size_t data_len,
			 void *user_data)
{
	if (data_len == 0)
		return 0;
	return EVP_DigestUpdate(digest_context, data, data_len) == 1 ? 0 : SG_ERR_UNKNOWN;
}

static int sha512_final(void *digest_context, signal_buffer **output, void *user_data)
{
	e2e_crypto_t *c = user_data;
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	if (EVP_DigestFinal_ex(digest_context, md, &len) != 1)
		return SG_ERR_UNKNOWN;
	signal_buffer *buf = signal_buffer_create(md, len);
	OPENSSL_cleanse(md, sizeof md);
	if (!buf)
		return SG_ERR_NOMEM;
	/* The interface promises the context is ready for reuse. */
	if (EVP_DigestInit_ex2(digest_context, c->sha512, NULL) != 1) {
		signal_buffer_free(buf);
		return SG_ERR_UNKNOWN;
	}
	*output = buf;
	return 0;
}

static void sha512_cleanup(void *digest_context, void *user_data)
{
	EVP_MD_CTX_free(digest_context);
}

static const EVP_CIPHER *cipher_pick(const e2e_crypto_t *c, int cipher, size_t key_len)
{
	int size;
	switch (key_len) {
	case 16:
		size = AES_128;
		break;
	case 24:
		size = AES_192;
		break;
	case 32:
		size = AES_256;
		break;
	default:
		return NULL;
	}
	if (cipher == SG_CIPHER_AES_CBC_PKCS5)
		return c->cbc[size];
	if (cipher == SG_CIPHER_AES_CTR_NOPADDING)
		return c->ctr[size];
	return NULL;
}

/* One-shot AES in either direction. CBC uses PKCS#5 padding (OpenSSL's
 * default); CTR is a stream mode and never pads. */
static int aes_run(const e2e_crypto_t *c, int enc, signal_buffer **output, int cipher,
		   const uint8_t *key, size_t key_len, const uint8_t *iv, size_t iv_len,
		   const uint8_t *in, size_t in_len)
{
	const EVP_CIPHER *alg = cipher_pick(c, cipher, key_len);
	if (!alg || iv_len != (size_t)EVP_CIPHER_get_iv_length(alg))
		return SG_ERR_INVAL;
	/* EVP takes int lengths, and CBC may add one block. */
	if (in_len > (size_t)INT_MAX - 2 * EVP_MAX_BLOCK_LENGTH)
		return SG_ERR_INVAL;
	if (!enc && cipher == SG_CIPHER_AES_CBC_PKCS5 && (in_len == 0 || in_len % 16 != 0))
		return SG_ERR_INVAL;

	int rc = SG_ERR_UNKNOWN;
	size_t cap = in_len + EVP_MAX_BLOCK_LENGTH;
	uint8_t *tmp = malloc(cap);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (!tmp || !ctx) {
		rc = SG_ERR_NOMEM;
		goto out;
	}
	int n = 0, fin = 0;
	if (EVP_CipherInit_ex2(ctx, alg, key, iv, enc, NULL) != 1)
		goto out;
	if (in_len > 0 && EVP_CipherUpdate(ctx, tmp, &n, in, (int)in_len) != 1)
		goto out;
	/* A CBC decryption whose padding does not check out fails here. */
	if (EVP_CipherFinal_ex(ctx, tmp + n, &fin) != 1)
		goto out;
	signal_buffer *buf = signal_buffer_create(tmp, (size_t)n + (size_t)fin);
	if (!buf) {
		rc = SG_ERR_NOMEM;
		goto out;
	}
	*output = buf;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	if (tmp) {
		OPENSSL_cleanse(tmp, cap);
		free(tmp);
	}
	return rc;
}

static int aes_encrypt(signal_buffer **output, int cipher, const uint8_t *key, size_t key_len,
		       const uint8_t *iv, size_t iv_len, const uint8_t *plaintext,
		       size_t plaintext_len, void *user_data)
{
	return aes_run(user_data, 1, output, cipher, key, key_len, iv, iv_len, plaintext,
		       plaintext_len);
}

static int aes_decrypt(signal_buffer **output, int cipher, const uint8_t *key, size_t key_len,
		       const uint8_t *iv, size_t iv_len, const uint8_t *ciphertext,
		       size_t ciphertext_len, void *user_data)
{
	return aes_run(user_data, 0, output, cipher, key, key_len, iv, iv_len, ciphertext,
		       ciphertext_len);
}

void e2e_crypto_provider_fill(e2e_crypto_t *c, struct signal_crypto_provider *p)
{
	*p = (signal_crypto_provider){
		.random_func = random_fill,
		.hmac_sha256_init_func = hmac_init,
		.hmac_sha256_update_func = hmac_update,
		.hmac_sha256_final_func = hmac_final,
		.hmac_sha256_cleanup_func = hmac_cleanup,
		.sha512_digest_init_func = sha512_init,
		.sha512_digest_update_func = sha512_update,
		.sha512_digest_final_func = sha512_final,
		.sha512_digest_cleanup_func = sha512_cleanup,
		.encrypt_func = aes_encrypt,
		.decrypt_func = aes_decrypt,
		.user_data = c,
	};
}
