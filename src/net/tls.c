#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/buffer.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"

static void log_ssl_errors(const char *what)
{
	unsigned long e;
	char buf[256];
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof buf);
		LOGE("tls_error", "op=%s detail=\"%s\"", what, buf);
	}
}

int tls_ctx_create(SSL_CTX **out, const char *cert_path, const char *key_path)
{
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		goto fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/* Session tickets would cost memory per context only; keep the default
	 * cache small since clients reconnect in storms after restarts. */
	SSL_CTX_sess_set_cache_size(ctx, 1024);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1)
		goto fail;
	if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1)
		goto fail;
	if (SSL_CTX_check_private_key(ctx) != 1)
		goto fail;
	*out = ctx;
	return 0;
fail:
	log_ssl_errors("ctx_create");
	SSL_CTX_free(ctx);
	return -FC_ECONFIG;
}

int tls_dev_cert_ensure(const char *cert_path, const char *key_path)
{
	if (access(cert_path, R_OK) == 0 && access(key_path, R_OK) == 0)
		return 0;
	int rc = -FC_ECONFIG;
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	FILE *fk = NULL, *fc = NULL;
	if (!pkey || !x)
		goto out;
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL));
	X509_set_version(x, 2);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600);
	X509_set_pubkey(x, pkey);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
				   -1, 0);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
				   (const unsigned char *)"fourc development", -1, -1, 0);
	X509_set_issuer_name(x, name);
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	X509_EXTENSION *ext =
		X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
	if (!ext)
		goto out;
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (!X509_sign(x, pkey, EVP_sha256()))
		goto out;
	mode_t old = umask(077);
	fk = fopen(key_path, "w");
	umask(old);
	fc = fopen(cert_path, "w");
	if (!fk || !fc)
		goto out;
	if (!PEM_write_PrivateKey(fk, pkey, NULL, NULL, 0, NULL, NULL) || !PEM_write_X509(fc, x))
		goto out;
	rc = 1;
out:
	if (fk && fclose(fk) != 0)
		rc = -FC_ECONFIG;
	if (fc && fclose(fc) != 0)
		rc = -FC_ECONFIG;
	if (rc < 0)
		log_ssl_errors("dev_cert");
	X509_free(x);
	EVP_PKEY_free(pkey);
	return rc;
}

int tls_conn_init(tls_conn_t *t, SSL_CTX *ctx)
{
	ERR_clear_error();
	t->ssl = SSL_new(ctx);
	if (!t->ssl)
		return -ENOMEM;
	t->rbio = BIO_new(BIO_s_mem());
	t->wbio = BIO_new(BIO_s_mem());
	if (!t->rbio || !t->wbio) {
		BIO_free(t->rbio);
		BIO_free(t->wbio);
		SSL_free(t->ssl);
		t->ssl = NULL;
		return -ENOMEM;
	}
	/* An empty read BIO must report "retry", not EOF. */
	BIO_set_mem_eof_return(t->rbio, -1);
	SSL_set_bio(t->ssl, t->rbio, t->wbio);
	SSL_set_accept_state(t->ssl);
	return 0;
}

void tls_conn_free(tls_conn_t *t)
{
	if (t->ssl)
		SSL_free(t->ssl); /* frees both BIOs */
	t->ssl = NULL;
	t->rbio = t->wbio = NULL;
}

int tls_conn_feed(tls_conn_t *t, const uint8_t *p, size_t n)
{
	ERR_clear_error();
	return BIO_write(t->rbio, p, (int)n) == (int)n ? 0 : -1;
}

int tls_conn_read(tls_conn_t *t, uint8_t *buf, size_t cap)
{
	ERR_clear_error();
	if (!SSL_is_init_finished(t->ssl)) {
		int r = SSL_do_handshake(t->ssl);
		if (r != 1) {
			int e = SSL_get_error(t->ssl, r);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				return 0;
			ERR_clear_error();
			return -1;
		}
	}
	int r = SSL_read(t->ssl, buf, (int)cap);
	if (r > 0)
		return r;
	int e = SSL_get_error(t->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	if (e == SSL_ERROR_ZERO_RETURN)
		return -2;
	ERR_clear_error();
	return -1;
}

int tls_conn_write(tls_conn_t *t, const uint8_t *p, size_t n)
{
	ERR_clear_error();
	while (n > 0) {
		int r = SSL_write(t->ssl, p, (int)(n > 1 << 30 ? 1 << 30 : n));
		if (r <= 0) {
			ERR_clear_error();
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

size_t tls_conn_pending_out(tls_conn_t *t)
{
	return BIO_ctrl_pending(t->wbio);
}

size_t tls_conn_take_out(tls_conn_t *t, uint8_t *buf, size_t cap)
{
	int r = BIO_read(t->wbio, buf, (int)cap);
	return r > 0 ? (size_t)r : 0;
}

static size_t bio_capacity(BIO *b)
{
	BUF_MEM *bm = NULL;
	BIO_get_mem_ptr(b, &bm);
	return bm ? bm->max : 0;
}

void tls_conn_trim(tls_conn_t *t)
{
	if (!t->ssl || BIO_ctrl_pending(t->rbio) || BIO_ctrl_pending(t->wbio))
		return;
	if (bio_capacity(t->rbio) + bio_capacity(t->wbio) == 0)
		return;
	BIO *nr = BIO_new(BIO_s_mem());
	BIO *nw = BIO_new(BIO_s_mem());
	if (!nr || !nw) {
		BIO_free(nr);
		BIO_free(nw);
		return;
	}
	BIO_set_mem_eof_return(nr, -1);
	SSL_set_bio(t->ssl, nr, nw); /* frees the old pair */
	t->rbio = nr;
	t->wbio = nw;
}

int tls_conn_handshake_done(const tls_conn_t *t)
{
	return SSL_is_init_finished(t->ssl);
}
