/*
 * baseline_server: the reference server each benchmark scenario runs next to
 * fourcd in the same invocation. It is deliberately bare: what a straight
 * libuv program does with a connection when nobody worked on its memory or
 * latency, so that a ratio against it shows what fourcd's design costs or
 * saves on this machine, today.
 *
 *   --mode hold      accepts TCP connections and keeps them open. Whatever a
 *                    client sends is echoed on the same connection: the load
 *                    client's probe that proves the connection is accepted
 *                    and held in user space before memory is read.
 *   --mode hold-tls  the same over TLS with OpenSSL's defaults: a
 *                    TLS_server_method() context, a socket BIO (SSL_set_fd)
 *                    driven by a uv_poll_t, and no SSL_MODE_RELEASE_BUFFERS,
 *                    so every idle connection keeps its record buffers. The
 *                    certificate is a self-signed P-256 one made at start,
 *                    like fourcd's development certificate.
 *   --mode relay     pairs connections in accept order (1st with 2nd, 3rd
 *                    with 4th, ...) and forwards every byte one side sends to
 *                    the other: the raw TCP path client A -> server -> client
 *                    B with the same hop count as a fourc 1:1 delivery.
 *
 * Listens on --host (default 127.0.0.1), port 0 unless --port is given, and
 * prints "port N" on stdout once listening. Exits 0 on SIGTERM or SIGINT.
 * Single-threaded: everything runs on the default libuv loop.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

enum { M_HOLD, M_HOLD_TLS, M_RELAY };

/* A relay side stops reading while its peer has more than this queued in
 * user space, and resumes below RESUME_BYTES: bounded, like any server. */
#define PAUSE_BYTES (1u << 20)
#define RESUME_BYTES (256u << 10)

typedef struct conn {
	uv_tcp_t tcp;
	struct conn *peer;
	size_t queued;     /* bytes in this connection's pending uv_write()s */
	int paused_source; /* we stopped reading the source feeding us */
	struct conn *source;
} conn_t;

typedef struct wreq {
	uv_write_t req;
	conn_t *to;
	size_t len;
	char data[];
} wreq_t;

typedef struct tconn {
	uv_poll_t poll;
	int fd;
	SSL *ssl;
	int handshaken;
} tconn_t;

static int g_mode;
static uv_loop_t *g_loop;
static uv_tcp_t g_listener;
static uv_poll_t g_tls_listener;
static int g_tls_fd = -1;
static SSL_CTX *g_ctx;
static conn_t *g_waiting;  /* relay: accepted, not yet paired */
static char g_rbuf[65536]; /* one shared read buffer: idle connections hold none */

/* ---- plain TCP: hold and relay ------------------------------------------- */

static void on_closed(uv_handle_t *h)
{
	free(h->data);
}

static void conn_close(conn_t *c)
{
	if (uv_is_closing((uv_handle_t *)&c->tcp))
		return;
	if (g_waiting == c)
		g_waiting = NULL;
	if (c->peer) {
		conn_t *p = c->peer;
		c->peer = NULL;
		p->peer = NULL;
		if (p->source == c)
			p->source = NULL;
		conn_close(p);
	}
	uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf)
{
	(void)h;
	(void)sz;
	*buf = uv_buf_init(g_rbuf, sizeof g_rbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_written(uv_write_t *req, int status)
{
	wreq_t *w = (wreq_t *)req;
	conn_t *to = w->to;
	to->queued -= w->len;
	free(w);
	if (status < 0) {
		conn_close(to);
		return;
	}
	if (to->paused_source && to->queued < RESUME_BYTES && to->source &&
	    !uv_is_closing((uv_handle_t *)&to->source->tcp)) {
		to->paused_source = 0;
		uv_read_start((uv_stream_t *)&to->source->tcp, on_alloc, on_read);
	}
}

/* Writes what the kernel takes now; only a remainder is copied and queued. */
static void send_bytes(conn_t *from, conn_t *to, const char *p, size_t n)
{
	uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
	int w = to->queued ? UV_EAGAIN : uv_try_write((uv_stream_t *)&to->tcp, &b, 1);
	if (w < 0 && w != UV_EAGAIN) {
		conn_close(to);
		return;
	}
	size_t done = w > 0 ? (size_t)w : 0;
	if (done == n)
		return;
	wreq_t *r = malloc(sizeof *r + (n - done));
	if (!r) {
		conn_close(to);
		return;
	}
	memcpy(r->data, p + done, n - done);
	r->to = to;
	r->len = n - done;
	b = uv_buf_init(r->data, (unsigned)r->len);
	if (uv_write(&r->req, (uv_stream_t *)&to->tcp, &b, 1, on_written) != 0) {
		free(r);
		conn_close(to);
		return;
	}
	to->queued += r->len;
	if (to->queued > PAUSE_BYTES && !to->paused_source) {
		to->paused_source = 1;
		to->source = from;
		uv_read_stop((uv_stream_t *)&from->tcp);
	}
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	conn_t *c = s->data;
	if (n == 0)
		return;
	if (n < 0) {
		conn_close(c);
		return;
	}
	if (g_mode == M_HOLD)
		send_bytes(c, c, buf->base, (size_t)n);
	else if (c->peer)
		send_bytes(c, c->peer, buf->base, (size_t)n);
}

static void on_connection(uv_stream_t *server, int status)
{
	if (status < 0)
		return;
	conn_t *c = calloc(1, sizeof *c);
	if (!c)
		return;
	uv_tcp_init(g_loop, &c->tcp);
	c->tcp.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
		uv_close((uv_handle_t *)&c->tcp, on_closed);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	if (g_mode == M_RELAY) {
		if (g_waiting) {
			c->peer = g_waiting;
			g_waiting->peer = c;
			g_waiting = NULL;
		} else {
			g_waiting = c;
		}
	}
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static int listen_tcp(const char *host, int port)
{
	struct sockaddr_in sa;
	int rc = uv_ip4_addr(host, port, &sa);
	if (rc == 0)
		rc = uv_tcp_init(g_loop, &g_listener);
	if (rc == 0)
		rc = uv_tcp_bind(&g_listener, (const struct sockaddr *)&sa, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&g_listener, 4096, on_connection);
	if (rc != 0) {
		fprintf(stderr, "baseline_server: listen %s:%d: %s\n", host, port, uv_strerror(rc));
		return -1;
	}
	int namelen = sizeof sa;
	uv_tcp_getsockname(&g_listener, (struct sockaddr *)&sa, &namelen);
	return ntohs(sa.sin_port);
}

/* ---- TLS with OpenSSL defaults -------------------------------------------- */

static void on_tclosed(uv_handle_t *h)
{
	tconn_t *t = h->data;
	SSL_free(t->ssl);
	close(t->fd);
	free(t);
}

static void tconn_close(tconn_t *t)
{
	if (uv_is_closing((uv_handle_t *)&t->poll))
		return;
	uv_poll_stop(&t->poll);
	uv_close((uv_handle_t *)&t->poll, on_tclosed);
}

static void on_tpoll(uv_poll_t *p, int status, int events);

/* Runs the handshake, then echoes application data; re-arms the poll for
 * whatever OpenSSL waits for. */
static void tconn_drive(tconn_t *t)
{
	int r, e;
	if (!t->handshaken) {
		ERR_clear_error();
		r = SSL_do_handshake(t->ssl);
		if (r != 1) {
			e = SSL_get_error(t->ssl, r);
			if (e == SSL_ERROR_WANT_READ)
				uv_poll_start(&t->poll, UV_READABLE, on_tpoll);
			else if (e == SSL_ERROR_WANT_WRITE)
				uv_poll_start(&t->poll, UV_READABLE | UV_WRITABLE, on_tpoll);
			else
				tconn_close(t);
			return;
		}
		t->handshaken = 1;
	}
	for (;;) {
		ERR_clear_error();
		r = SSL_read(t->ssl, g_rbuf, sizeof g_rbuf);
		if (r > 0) {
			if (SSL_write(t->ssl, g_rbuf, r) != r) {
				tconn_close(t);
				return;
			}
			continue;
		}
		e = SSL_get_error(t->ssl, r);
		if (e == SSL_ERROR_WANT_READ) {
			uv_poll_start(&t->poll, UV_READABLE, on_tpoll);
			return;
		}
		if (e == SSL_ERROR_WANT_WRITE) {
			uv_poll_start(&t->poll, UV_READABLE | UV_WRITABLE, on_tpoll);
			return;
		}
		tconn_close(t);
		return;
	}
}

static void on_tpoll(uv_poll_t *p, int status, int events)
{
	tconn_t *t = p->data;
	(void)events;
	if (status < 0) {
		tconn_close(t);
		return;
	}
	tconn_drive(t);
}

static void on_tls_accept(uv_poll_t *p, int status, int events)
{
	(void)p;
	(void)events;
	if (status < 0)
		return;
	for (;;) {
		int fd = accept4(g_tls_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		tconn_t *t = calloc(1, sizeof *t);
		if (!t) {
			close(fd);
			continue;
		}
		t->fd = fd;
		t->ssl = SSL_new(g_ctx);
		if (!t->ssl || SSL_set_fd(t->ssl, fd) != 1 ||
		    uv_poll_init_socket(g_loop, &t->poll, fd) != 0) {
			SSL_free(t->ssl);
			close(fd);
			free(t);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		t->poll.data = t;
		SSL_set_accept_state(t->ssl);
		uv_poll_start(&t->poll, UV_READABLE, on_tpoll);
	}
}

/* A self-signed P-256 certificate for CN=localhost, valid for a day. */
static SSL_CTX *tls_ctx_new(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	if (!ctx || !pkey || !x)
		goto fail;
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL));
	X509_set_version(x, 2);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 24L * 3600);
	X509_set_pubkey(x, pkey);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
				   -1, 0);
	X509_set_issuer_name(x, name);
	if (!X509_sign(x, pkey, EVP_sha256()) || SSL_CTX_use_certificate(ctx, x) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, pkey) != 1)
		goto fail;
	X509_free(x);
	EVP_PKEY_free(pkey);
	return ctx;
fail:
	ERR_print_errors_fp(stderr);
	X509_free(x);
	EVP_PKEY_free(pkey);
	SSL_CTX_free(ctx);
	return NULL;
}

static int listen_tls(const char *host, int port)
{
	g_ctx = tls_ctx_new();
	if (!g_ctx)
		return -1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -1;
	g_tls_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	socklen_t sl = sizeof sa;
	if (g_tls_fd < 0 || setsockopt(g_tls_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(g_tls_fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(g_tls_fd, 4096) != 0 ||
	    getsockname(g_tls_fd, (struct sockaddr *)&sa, &sl) != 0) {
		fprintf(stderr, "baseline_server: listen %s:%d: %s\n", host, port, strerror(errno));
		return -1;
	}
	if (uv_poll_init_socket(g_loop, &g_tls_listener, g_tls_fd) != 0 ||
	    uv_poll_start(&g_tls_listener, UV_READABLE, on_tls_accept) != 0)
		return -1;
	return ntohs(sa.sin_port);
}

/* ---- main ------------------------------------------------------------------ */

static void on_signal(uv_signal_t *s, int signum)
{
	(void)signum;
	(void)s;
	uv_stop(g_loop);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: baseline_server --mode hold|hold-tls|relay [--host IP] [--port N]\n");
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1";
	int port = 0;
	const char *mode = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) {
			mode = argv[++i];
		} else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
			host = argv[++i];
		} else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
			char *end;
			long v = strtol(argv[++i], &end, 10);
			if (*end || v < 0 || v > 65535) {
				usage();
				return 2;
			}
			port = (int)v;
		} else {
			usage();
			return 2;
		}
	}
	if (!mode) {
		usage();
		return 2;
	}
	if (strcmp(mode, "hold") == 0) {
		g_mode = M_HOLD;
	} else if (strcmp(mode, "hold-tls") == 0) {
		g_mode = M_HOLD_TLS;
	} else if (strcmp(mode, "relay") == 0) {
		g_mode = M_RELAY;
	} else {
		usage();
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	g_loop = uv_default_loop();
	int bound = g_mode == M_HOLD_TLS ? listen_tls(host, port) : listen_tcp(host, port);
	if (bound < 0)
		return 1;
	uv_signal_t sterm, sint;
	uv_signal_init(g_loop, &sterm);
	uv_signal_init(g_loop, &sint);
	uv_signal_start(&sterm, on_signal, SIGTERM);
	uv_signal_start(&sint, on_signal, SIGINT);
	printf("port %d\n", bound);
	fflush(stdout);
	uv_run(g_loop, UV_RUN_DEFAULT);
	/* Stopped by a signal: the process exits and the kernel closes every
	 * socket; there is nothing durable to flush. */
	return 0;
}
