/*
 * tls: OpenSSL server context and per-connection TLS over memory BIOs.
 *
 * The gateway owns the socket; TLS never touches it. Ciphertext read from the
 * socket goes into tls_conn_feed(), plaintext comes out of tls_conn_read(),
 * and after every call the caller drains tls_conn_pending_out() to the socket.
 * Because the write BIO is a growing memory BIO, SSL_write() always consumes
 * its whole input at once, so the "retry with the same buffer after
 * WANT_WRITE" rule of non-blocking sockets can never be violated here: the
 * socket-level partial write is handled by the gateway's output queue on the
 * ciphertext, never on the plaintext.
 *
 * SSL_MODE_RELEASE_BUFFERS keeps OpenSSL's record buffers off idle
 * connections and tls_conn_trim() drops the BIO buffers; an idle TLS 1.3
 * connection then costs about 14-15 KiB, most of it the SSL object itself.
 * All functions are for the thread that owns the connection; the SSL_CTX is
 * shared read-only between loops.
 */
#ifndef FC_NET_TLS_H
#define FC_NET_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

/* Creates a TLS 1.2/1.3 server context from PEM files. */
int tls_ctx_create(SSL_CTX **out, const char *cert_path, const char *key_path);

/* Creates a self-signed development certificate (EC P-256, CN=localhost,
 * SAN localhost and 127.0.0.1, 1 year) at the given paths unless both files
 * exist. The key file is written 0600. Returns 1 if created, 0 if present. */
int tls_dev_cert_ensure(const char *cert_path, const char *key_path);

typedef struct tls_conn {
	SSL *ssl;
	BIO *rbio; /* network -> SSL, owned by ssl */
	BIO *wbio; /* SSL -> network, owned by ssl */
} tls_conn_t;

int tls_conn_init(tls_conn_t *t, SSL_CTX *ctx);
void tls_conn_free(tls_conn_t *t);

/* Hands ciphertext to TLS. */
int tls_conn_feed(tls_conn_t *t, const uint8_t *p, size_t n);

/* Advances the handshake and reads plaintext into buf. Returns bytes read
 * (>0), 0 when no plaintext is available yet, -1 on a fatal TLS error (do no
 * further TLS I/O), -2 when the peer sent close_notify. */
int tls_conn_read(tls_conn_t *t, uint8_t *buf, size_t cap);

/* Encrypts plaintext; always consumes all of it or fails with -1. */
int tls_conn_write(tls_conn_t *t, const uint8_t *p, size_t n);

/* Bytes of ciphertext waiting to go to the socket. */
size_t tls_conn_pending_out(tls_conn_t *t);
/* Moves up to cap bytes of pending ciphertext into buf; returns count. */
size_t tls_conn_take_out(tls_conn_t *t, uint8_t *buf, size_t cap);

int tls_conn_handshake_done(const tls_conn_t *t);

/* When both memory BIOs are empty, replaces them with fresh ones: a drained
 * memory BIO keeps the capacity of its largest burst (about 1.3 KiB after a
 * handshake), which idle connections should not hold. Cheap when there is
 * nothing to release. */
void tls_conn_trim(tls_conn_t *t);

#endif
