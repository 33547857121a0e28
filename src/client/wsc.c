/*
 * WebSocket client connections: TCP connect with a deadline, TLS through
 * OpenSSL on the non-blocking socket, the opening handshake, and the message
 * loop (reassembly, auto-pong, close handshake). The pure codec parts live in
 * wsc_codec.c.
 *
 * Buffers: rbuf holds raw bytes from the transport. A message that arrives
 * as one frame is returned as a view into rbuf (no copy); fragments are
 * copied into msg. rbuf is compacted only at the start of the next receive,
 * which is why a returned message stays valid until then. Both buffers grow
 * with bytes actually received and never past the message cap.
 */
#include "client/wsc.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/utf8.h"

#define RBUF_INITIAL 16384
#define SEND_CHUNK 16384

struct wsc {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	wsc_url_t url;
	size_t max_message;
	int io_timeout_ms;

	uint8_t *rbuf; /* raw input; [rpos, rlen) is not parsed yet */
	size_t rpos, rlen, rcap, rmax;

	uint8_t *msg; /* reassembly of a fragmented message */
	size_t msg_len, msg_cap;
	uint8_t msg_op; /* opcode of the message in progress, 0 if none */
	int msg_done;   /* msg was handed out; empty it on the next receive */
	uint32_t utf8;

	int close_sent, close_rcvd, failed, tls_down;
	uint16_t close_code;
	char close_reason[124]; /* up to 123 bytes of reason + NUL */

	uint8_t sbuf[SEND_CHUNK];
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void status_set(wsc_status_t *st, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void status_set(wsc_status_t *st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st->msg, sizeof st->msg, fmt, ap);
	va_end(ap);
}

/* Waits until fd is ready for ev or the deadline (ms, monotonic; negative:
 * none) passes. Returns 0 when ready (errors and hang-ups count as ready, so
 * the following I/O call reports them), -ETIMEDOUT, or -EINTR. */
static int wait_fd(int fd, short ev, int64_t deadline)
{
	int t = -1;
	if (deadline >= 0) {
		int64_t left = deadline - now_ms();
		if (left < 0)
			left = 0;
		t = left > INT_MAX ? INT_MAX : (int)left;
	}
	struct pollfd pfd = {.fd = fd, .events = ev};
	int r = poll(&pfd, 1, t);
	if (r > 0)
		return 0;
	if (r == 0)
		return -ETIMEDOUT;
	return errno == EINTR ? -EINTR : -errno;
}

/* ---- SIGPIPE guard around TLS writes ----------------------------------------- */

typedef struct sigpipe_guard {
	sigset_t old;
	int was_pending;
} sigpipe_guard_t;

static void sigpipe_block(sigpipe_guard_t *g)
{
	sigset_t set, pend;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigemptyset(&pend);
	sigpending(&pend);
	g->was_pending = sigismember(&pend, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

/* Discards a SIGPIPE our write raised (but not one that was pending before)
 * and restores the thread's mask. */
static void sigpipe_restore(sigpipe_guard_t *g)
{
	if (!g->was_pending) {
		sigset_t set, pend;
		sigemptyset(&set);
		sigaddset(&set, SIGPIPE);
		sigemptyset(&pend);
		sigpending(&pend);
		if (sigismember(&pend, SIGPIPE) == 1) {
			struct timespec zero = {0, 0};
			(void)sigtimedwait(&set, NULL, &zero);
		}
	}
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* ---- transport ------------------------------------------------------------------ */

/* Reads what is available (at least one byte) into buf. Returns the count,
 * -ETIMEDOUT, -EINTR, -ECONNRESET when the stream ended, or another error. */
static long tr_read(wsc_t *w, uint8_t *buf, size_t cap, int64_t deadline)
{
	for (;;) {
		int rc;
		if (!w->ssl) {
			ssize_t r = recv(w->fd, buf, cap, 0);
			if (r > 0)
				return (long)r;
			if (r == 0)
				return -ECONNRESET;
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				return -errno;
			rc = errno == EINTR ? -EINTR : wait_fd(w->fd, POLLIN, deadline);
			if (rc < 0)
				return rc;
			continue;
		}
		size_t got = 0;
		ERR_clear_error();
		if (SSL_read_ex(w->ssl, buf, cap, &got) == 1)
			return (long)got;
		int e = SSL_get_error(w->ssl, 0);
		if (e == SSL_ERROR_WANT_READ)
			rc = wait_fd(w->fd, POLLIN, deadline);
		else if (e == SSL_ERROR_WANT_WRITE)
			rc = wait_fd(w->fd, POLLOUT, deadline);
		else if (e == SSL_ERROR_ZERO_RETURN)
			return -ECONNRESET;
		else if (e == SSL_ERROR_SYSCALL)
			return errno && errno != EAGAIN ? -errno : -ECONNRESET;
		else
			return -EPROTO;
		if (rc < 0)
			return rc;
	}
}

/* Writes all n bytes or fails. A signal does not abort a write: a frame cut
 * in half cannot be resumed later. */
static int tr_write_all(wsc_t *w, const uint8_t *p, size_t n, int64_t deadline)
{
	while (n > 0) {
		int rc = 0;
		if (!w->ssl) {
			ssize_t r = send(w->fd, p, n, MSG_NOSIGNAL);
			if (r > 0) {
				p += r;
				n -= (size_t)r;
				continue;
			}
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			rc = wait_fd(w->fd, POLLOUT, deadline);
		} else {
			size_t put = 0;
			sigpipe_guard_t g;
			ERR_clear_error();
			sigpipe_block(&g);
			int ok = SSL_write_ex(w->ssl, p, n, &put);
			int e = ok == 1 ? SSL_ERROR_NONE : SSL_get_error(w->ssl, 0);
			int saved = errno;
			sigpipe_restore(&g);
			if (ok == 1) {
				p += put;
				n -= put;
				continue;
			}
			if (e == SSL_ERROR_WANT_WRITE)
				rc = wait_fd(w->fd, POLLOUT, deadline);
			else if (e == SSL_ERROR_WANT_READ)
				rc = wait_fd(w->fd, POLLIN, deadline);
			else if (e == SSL_ERROR_SYSCALL)
				return saved ? -saved : -EPIPE;
			else
				return -EPROTO;
		}
		if (rc == -EINTR)
			continue;
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ---- connect ---------------------------------------------------------------------- */

static int tcp_connect(wsc_t *w, int64_t deadline, wsc_status_t *st)
{
	struct addrinfo hints, *res = NULL;
	char port[8];
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(port, sizeof port, "%u", w->url.port);
	int g = getaddrinfo(w->url.host, port, &hints, &res);
	if (g != 0) {
		status_set(st, "cannot resolve %s: %s", w->url.host,
			   g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
		if (g == EAI_AGAIN)
			return -FC_EUNAVAIL;
		if (g == EAI_MEMORY)
			return -ENOMEM;
		return g == EAI_SYSTEM && errno ? -errno : -FC_ENOTFOUND;
	}
	int rc = -ECONNREFUSED;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				ai->ai_protocol);
		if (fd < 0) {
			rc = -errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			rc = 0;
		} else if (errno != EINPROGRESS) {
			rc = -errno;
		} else {
			rc = wait_fd(fd, POLLOUT, deadline);
			if (rc == 0) {
				int err = 0;
				socklen_t len = sizeof err;
				if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
					err = errno;
				rc = -err;
			}
		}
		if (rc == 0) {
			int one = 1;
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			w->fd = fd;
			break;
		}
		close(fd);
		if (rc == -EINTR)
			break;
	}
	freeaddrinfo(res);
	if (rc < 0)
		status_set(st, "%s", err_str(rc));
	return rc;
}

static int host_is_ip(const wsc_url_t *u)
{
	struct in_addr a4;
	return u->ipv6 || inet_pton(AF_INET, u->host, &a4) == 1;
}

static void tls_err_text(char *out, size_t cap)
{
	unsigned long e = ERR_get_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	snprintf(out, cap, "%s", r ? r : "connection closed");
	ERR_clear_error();
}

static int tls_setup(wsc_t *w, const wsc_opts_t *o, wsc_status_t *st)
{
	char why[160];
	w->ctx = SSL_CTX_new(TLS_client_method());
	if (!w->ctx) {
		status_set(st, "TLS unavailable");
		return -ENOMEM;
	}
	SSL_CTX_set_min_proto_version(w->ctx, TLS1_2_VERSION);
	/* The WebSocket close handshake, not TLS close_notify, marks the end of
	 * the stream, so a bare TCP close reads as end of stream. */
	SSL_CTX_set_options(w->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (o->insecure) {
		SSL_CTX_set_verify(w->ctx, SSL_VERIFY_NONE, NULL);
	} else {
		SSL_CTX_set_verify(w->ctx, SSL_VERIFY_PEER, NULL);
		int ok = o->ca_file ? SSL_CTX_load_verify_locations(w->ctx, o->ca_file, NULL) :
				      SSL_CTX_set_default_verify_paths(w->ctx);
		if (ok != 1) {
			tls_err_text(why, sizeof why);
			status_set(st, "cannot load CA certificates%s%s: %s",
				   o->ca_file ? " from " : "", o->ca_file ? o->ca_file : "", why);
			return -FC_ECONFIG;
		}
	}
	w->ssl = SSL_new(w->ctx);
	if (!w->ssl || SSL_set_fd(w->ssl, w->fd) != 1) {
		status_set(st, "TLS unavailable");
		return -ENOMEM;
	}
	int ip = host_is_ip(&w->url);
	if (!ip)
		SSL_set_tlsext_host_name(w->ssl, w->url.host);
	if (!o->insecure) {
		int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(w->ssl), w->url.host) :
			      SSL_set1_host(w->ssl, w->url.host);
		if (ok != 1) {
			status_set(st, "cannot set the expected certificate name");
			return -EPROTO;
		}
	}
	return 0;
}

static int tls_handshake(wsc_t *w, const wsc_opts_t *o, int64_t deadline, wsc_status_t *st)
{
	int rc = tls_setup(w, o, st);
	if (rc < 0)
		return rc;
	for (;;) {
		sigpipe_guard_t g;
		ERR_clear_error();
		sigpipe_block(&g);
		int r = SSL_connect(w->ssl);
		int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(w->ssl, r);
		int saved = errno;
		sigpipe_restore(&g);
		if (r == 1)
			return 0;
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			rc = wait_fd(w->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
			if (rc == -ETIMEDOUT) {
				status_set(st, "TLS handshake timed out");
				return rc;
			}
			if (rc < 0) {
				status_set(st, "%s", err_str(rc));
				return rc;
			}
			continue;
		}
		long vr = SSL_get_verify_result(w->ssl);
		if (!o->insecure && vr != X509_V_OK) {
			status_set(st, "certificate verification failed: %s",
				   X509_verify_cert_error_string(vr));
			ERR_clear_error();
			return -FC_EAUTH;
		}
		char why[160];
		if (e == SSL_ERROR_SYSCALL && saved && !ERR_peek_error())
			snprintf(why, sizeof why, "%s", strerror(saved));
		else
			tls_err_text(why, sizeof why);
		status_set(st, "TLS handshake failed: %s", why);
		return -EPROTO;
	}
}

/* ---- opening handshake ----------------------------------------------------------- */

/* 1 if the comma-separated header value lists tok (case-insensitive). */
static int has_token(slice_t v, const char *tok)
{
	slice_t want = slice_cstr(tok);
	size_t i = 0;
	while (i <= v.len) {
		size_t j = i;
		while (j < v.len && v.ptr[j] != ',')
			j++;
		if (slice_ieq(slice_trim(slice_make(v.ptr + i, j - i)), want))
			return 1;
		i = j + 1;
	}
	return 0;
}

static const uint8_t *find_crlf2(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 3 < n; i++)
		if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n')
			return p + i;
	return NULL;
}

struct resp_head {
	int status;
	slice_t reason;
	int upgrade_ok, connection_ok, accept_ok, extensions, protocol;
	int retry_after;
};

static void header_seen(struct resp_head *r, slice_t name, slice_t value, const char *expect)
{
	if (slice_ieq(name, SLICE_LIT("Upgrade"))) {
		r->upgrade_ok |= has_token(value, "websocket");
	} else if (slice_ieq(name, SLICE_LIT("Connection"))) {
		r->connection_ok |= has_token(value, "upgrade");
	} else if (slice_ieq(name, SLICE_LIT("Sec-WebSocket-Accept"))) {
		r->accept_ok = slice_eq(value, slice_cstr(expect)) && r->accept_ok >= 0;
		if (!r->accept_ok)
			r->accept_ok = -1; /* a wrong or repeated value poisons it */
	} else if (slice_ieq(name, SLICE_LIT("Sec-WebSocket-Extensions"))) {
		r->extensions = 1;
	} else if (slice_ieq(name, SLICE_LIT("Sec-WebSocket-Protocol"))) {
		r->protocol = 1;
	} else if (slice_ieq(name, SLICE_LIT("Retry-After"))) {
		int v = 0;
		int ok = value.len > 0 && value.len <= 9;
		for (size_t i = 0; ok && i < value.len; i++) {
			if (value.ptr[i] < '0' || value.ptr[i] > '9')
				ok = 0;
			else
				v = v * 10 + (value.ptr[i] - '0');
		}
		if (ok) /* an HTTP-date form is ignored: treat as absent */
			r->retry_after = v > 86400 ? 86400 : v;
	}
}

/* Parses the response head p[0..n) (ending in CRLF CRLF). Returns 0 with the
 * status line checked, or -EPROTO for a head that is not HTTP/1.x. */
static int head_parse(const uint8_t *p, size_t n, const char *expect, struct resp_head *r)
{
	memset(r, 0, sizeof *r);
	r->retry_after = -1;
	size_t i = 0;
	int first = 1;
	while (i < n) {
		size_t j = i;
		while (j + 1 < n && !(p[j] == '\r' && p[j + 1] == '\n'))
			j++;
		if (j + 1 >= n)
			break;
		slice_t line = slice_make(p + i, j - i);
		i = j + 2;
		if (line.len == 0)
			break;
		if (first) {
			first = 0;
			/* "HTTP/1.x SP ddd [SP reason]" */
			if (line.len < 12 || memcmp(line.ptr, "HTTP/1.", 7) != 0 ||
			    line.ptr[8] != ' ')
				return -EPROTO;
			int st = 0;
			for (int k = 9; k < 12; k++) {
				if (line.ptr[k] < '0' || line.ptr[k] > '9')
					return -EPROTO;
				st = st * 10 + (line.ptr[k] - '0');
			}
			r->status = st;
			if (line.len > 13)
				r->reason = slice_make(line.ptr + 13, line.len - 13);
			continue;
		}
		const uint8_t *colon = memchr(line.ptr, ':', line.len);
		if (!colon)
			return -EPROTO;
		slice_t name = slice_make(line.ptr, (size_t)(colon - line.ptr));
		slice_t value = slice_trim(slice_make(colon + 1, line.len - name.len - 1));
		header_seen(r, name, value, expect);
	}
	return first ? -EPROTO : 0;
}

static int upgrade_check(const struct resp_head *r, wsc_status_t *st)
{
	if (r->status != 101) {
		int rl = (int)(r->reason.len > 60 ? 60 : r->reason.len);
		for (int k = 0; k < rl; k++)
			if (r->reason.ptr[k] < 0x20 || r->reason.ptr[k] > 0x7e)
				rl = k;
		st->http_status = r->status;
		st->retry_after_s = r->retry_after;
		if (r->retry_after >= 0)
			status_set(st,
				   "server refused the upgrade: HTTP %d %.*s (Retry-After: %d s)",
				   r->status, rl, (const char *)r->reason.ptr, r->retry_after);
		else
			status_set(st, "server refused the upgrade: HTTP %d %.*s", r->status, rl,
				   (const char *)r->reason.ptr);
		return r->status == 503 ? -FC_EUNAVAIL : -EPROTO;
	}
	const char *bad = NULL;
	if (!r->upgrade_ok)
		bad = "no \"Upgrade: websocket\"";
	else if (!r->connection_ok)
		bad = "no \"Connection: Upgrade\"";
	else if (r->accept_ok != 1)
		bad = "missing or wrong Sec-WebSocket-Accept";
	else if (r->extensions)
		bad = "an extension we did not offer";
	else if (r->protocol)
		bad = "a subprotocol we did not offer";
	if (bad) {
		status_set(st, "invalid WebSocket handshake response: %s", bad);
		return -EPROTO;
	}
	return 0;
}

static int upgrade(wsc_t *w, int64_t deadline, wsc_status_t *st)
{
	uint8_t rnd[16];
	char key[25], expect[29], host[WSC_MAX_HOST + 16];
	randombytes_buf(rnd, sizeof rnd);
	sodium_bin2base64(key, sizeof key, rnd, sizeof rnd, sodium_base64_VARIANT_ORIGINAL);
	int rc = wsc_accept_value(key, expect);
	if (rc < 0) {
		status_set(st, "SHA-1 unavailable");
		return rc;
	}
	/* Host carries the port only when it is not the scheme's default. */
	char port[8] = "";
	if (w->url.port != (w->url.tls ? 443 : 80))
		snprintf(port, sizeof port, ":%u", (unsigned)w->url.port);
	snprintf(host, sizeof host, "%s%s%s%s", w->url.ipv6 ? "[" : "", w->url.host,
		 w->url.ipv6 ? "]" : "", port);
	char req[WSC_MAX_PATH + WSC_MAX_HOST + 256];
	int n = snprintf(req, sizeof req,
			 "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
			 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
			 "Sec-WebSocket-Version: 13\r\nUser-Agent: fourc-client/1\r\n\r\n",
			 w->url.path, host, key);
	if (n < 0 || (size_t)n >= sizeof req)
		return -ENAMETOOLONG;
	rc = tr_write_all(w, (const uint8_t *)req, (size_t)n, deadline);
	if (rc < 0) {
		status_set(st, "%s", err_str(rc));
		return rc;
	}
	const uint8_t *end;
	while (!(end = find_crlf2(w->rbuf, w->rlen))) {
		if (w->rlen >= WSC_MAX_HTTP_HEAD) {
			status_set(st, "handshake response head too large");
			return -EPROTO;
		}
		long r = tr_read(w, w->rbuf + w->rlen, w->rcap - w->rlen, deadline);
		if (r < 0) {
			if (r == -ETIMEDOUT)
				status_set(st, "timed out waiting for the handshake response");
			else if (r == -ECONNRESET)
				status_set(st, "connection closed during the WebSocket handshake");
			else
				status_set(st, "%s", err_str((int)r));
			return (int)r;
		}
		w->rlen += (size_t)r;
	}
	size_t head_len = (size_t)(end - w->rbuf) + 4;
	struct resp_head rh;
	if (head_parse(w->rbuf, head_len, expect, &rh) < 0) {
		status_set(st, "not an HTTP response");
		return -EPROTO;
	}
	rc = upgrade_check(&rh, st);
	if (rc < 0)
		return rc;
	w->rpos = head_len; /* what follows are the first frames */
	return 0;
}

int wsc_connect(wsc_t **out, const char *url, const wsc_opts_t *opts, wsc_status_t *st)
{
	wsc_status_t dummy;
	wsc_opts_t o;
	if (!st)
		st = &dummy;
	memset(st, 0, sizeof *st);
	st->retry_after_s = -1;
	memset(&o, 0, sizeof o);
	if (opts)
		o = *opts;
	if (!out) {
		status_set(st, "invalid arguments");
		return -EINVAL;
	}
	int timeout = o.timeout_ms > 0 ? o.timeout_ms : WSC_DEFAULT_TIMEOUT_MS;
	int64_t deadline = now_ms() + timeout;
	wsc_t *w = calloc(1, sizeof *w);
	if (!w) {
		status_set(st, "out of memory");
		return -ENOMEM;
	}
	w->fd = -1;
	w->io_timeout_ms = timeout;
	w->max_message = o.max_message ? o.max_message : WSC_DEFAULT_MAX_MESSAGE;
	w->rmax = w->max_message + WSC_MAX_HEADER;
	if (w->rmax < RBUF_INITIAL)
		w->rmax = RBUF_INITIAL;
	int rc = wsc_url_parse(url, &w->url);
	if (rc < 0) {
		status_set(st, "invalid URL (expected ws://host[:port]/path or wss://...)");
		goto fail;
	}
	w->rcap = RBUF_INITIAL;
	w->rbuf = malloc(w->rcap);
	if (!w->rbuf) {
		rc = -ENOMEM;
		status_set(st, "out of memory");
		goto fail;
	}
	rc = tcp_connect(w, deadline, st);
	if (rc == 0 && w->url.tls)
		rc = tls_handshake(w, &o, deadline, st);
	if (rc == 0)
		rc = upgrade(w, deadline, st);
	if (rc < 0)
		goto fail;
	*out = w;
	return 0;
fail:
	wsc_free(w);
	return rc;
}

/* ---- frames out ------------------------------------------------------------------- */

/* Writes one masked frame, masking the payload chunk by chunk in sbuf so a
 * large message is never copied whole. */
static int send_frame(wsc_t *w, uint8_t op, const uint8_t *p, size_t n)
{
	uint8_t key[4];
	randombytes_buf(key, sizeof key);
	size_t fill = wsc_frame_header(w->sbuf, op, 1, n, key);
	int64_t deadline = now_ms() + w->io_timeout_ms;
	size_t off = 0;
	do {
		size_t take = n - off;
		if (take > sizeof w->sbuf - fill)
			take = sizeof w->sbuf - fill;
		if (take) {
			memcpy(w->sbuf + fill, p + off, take);
			wsc_mask(w->sbuf + fill, take, key, off);
		}
		int rc = tr_write_all(w, w->sbuf, fill + take, deadline);
		if (rc < 0) {
			w->failed = 1;
			if (!w->close_code)
				w->close_code = WSC_CLOSE_ABNORMAL;
			return rc;
		}
		off += take;
		fill = 0;
	} while (off < n);
	return 0;
}

static int sendable(const wsc_t *w)
{
	return !(w->failed || w->close_sent || w->close_rcvd);
}

int wsc_send(wsc_t *w, int opcode, const void *p, size_t n)
{
	if (!w || (opcode != WSC_OP_BINARY && opcode != WSC_OP_TEXT) || (!p && n))
		return -EINVAL;
	if (!sendable(w))
		return -ENOTCONN;
	return send_frame(w, (uint8_t)opcode, p, n);
}

int wsc_ping(wsc_t *w, slice_t payload)
{
	if (!w)
		return -EINVAL;
	if (payload.len > 125)
		return -FC_ETOOBIG;
	if (!sendable(w))
		return -ENOTCONN;
	return send_frame(w, WSC_OP_PING, payload.ptr, payload.len);
}

static int close_code_sendable(uint16_t c)
{
	return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
}

/* Sends our close frame once; failures only mark the connection failed. */
static void send_close(wsc_t *w, uint16_t code, slice_t reason)
{
	uint8_t body[125];
	size_t n = 0;
	if (w->close_sent || w->failed)
		return;
	if (code) {
		body[0] = (uint8_t)(code >> 8);
		body[1] = (uint8_t)code;
		if (reason.len)
			memcpy(body + 2, reason.ptr, reason.len);
		n = 2 + reason.len;
	}
	w->close_sent = 1;
	(void)send_frame(w, WSC_OP_CLOSE, body, n);
}

/* Fails the connection (RFC 6455 section 7.1.7): close with code, then the
 * connection is over. Returns rc for the caller to pass on. */
static int fail(wsc_t *w, uint16_t code, int rc)
{
	send_close(w, code, slice_make(NULL, 0));
	w->failed = 1;
	if (!w->close_code)
		w->close_code = WSC_CLOSE_ABNORMAL;
	return rc;
}

/* ---- frames in ---------------------------------------------------------------------- */

static int on_close_frame(wsc_t *w, const uint8_t *p, size_t n)
{
	uint16_t code = WSC_CLOSE_NO_STATUS;
	if (n == 1)
		return fail(w, WSC_CLOSE_PROTOCOL, -EPROTO);
	if (n >= 2) {
		code = (uint16_t)(p[0] << 8 | p[1]);
		if (!close_code_sendable(code))
			return fail(w, WSC_CLOSE_PROTOCOL, -EPROTO);
		if (!utf8_valid(p + 2, n - 2))
			return fail(w, WSC_CLOSE_BAD_DATA, -FC_EUTF8);
		size_t rl = n - 2 < sizeof w->close_reason - 1 ? n - 2 : sizeof w->close_reason - 1;
		memcpy(w->close_reason, p + 2, rl);
		w->close_reason[rl] = 0;
	}
	w->close_rcvd = 1;
	w->close_code = code;
	/* Echo the code (an empty close answers an empty one). */
	send_close(w, code == WSC_CLOSE_NO_STATUS ? 0 : code, slice_make(NULL, 0));
	return -ENOTCONN;
}

static int msg_append(wsc_t *w, const uint8_t *p, size_t n)
{
	if (w->msg_len + n > w->max_message)
		return fail(w, WSC_CLOSE_TOO_BIG, -FC_ETOOBIG);
	if (w->msg_len + n > w->msg_cap) {
		size_t cap = w->msg_cap ? w->msg_cap : 4096;
		while (cap < w->msg_len + n)
			cap *= 2;
		if (cap > w->max_message)
			cap = w->max_message;
		uint8_t *nm = realloc(w->msg, cap);
		if (!nm)
			return fail(w, 1011, -ENOMEM);
		w->msg = nm;
		w->msg_cap = cap;
	}
	if (n)
		memcpy(w->msg + w->msg_len, p, n);
	w->msg_len += n;
	return 0;
}

/* Handles one complete frame. Returns 1 when *m holds a whole message, 0 to
 * keep reading, or a negative code. */
static int on_frame(wsc_t *w, const wsc_frame_t *f, const uint8_t *pl, wsc_msg_t *m)
{
	size_t n = (size_t)f->len;
	switch (f->opcode) {
	case WSC_OP_PING:
		/* Answer at once; a pong carries the ping's payload. */
		return send_frame(w, WSC_OP_PONG, pl, n);
	case WSC_OP_PONG:
		return 0;
	case WSC_OP_CLOSE:
		return on_close_frame(w, pl, n);
	case WSC_OP_TEXT:
	case WSC_OP_BINARY:
		if (w->msg_op)
			return fail(w, WSC_CLOSE_PROTOCOL, -EPROTO);
		w->utf8 = UTF8_ACCEPT;
		w->msg_len = 0;
		break;
	default: /* continuation */
		if (!w->msg_op)
			return fail(w, WSC_CLOSE_PROTOCOL, -EPROTO);
		break;
	}
	uint8_t op = f->opcode == WSC_OP_CONT ? w->msg_op : f->opcode;
	if (op == WSC_OP_TEXT &&
	    (utf8_feed(&w->utf8, pl, n) < 0 || (f->fin && !utf8_is_complete(w->utf8))))
		return fail(w, WSC_CLOSE_BAD_DATA, -FC_EUTF8);
	if (f->fin && f->opcode != WSC_OP_CONT) {
		/* A whole message in one frame: hand out a view into rbuf. */
		m->opcode = op;
		m->data = slice_make(pl, n);
		return 1;
	}
	int rc = msg_append(w, pl, n);
	if (rc < 0)
		return rc;
	if (!f->fin) {
		w->msg_op = op;
		return 0;
	}
	w->msg_op = 0;
	w->msg_done = 1;
	m->opcode = op;
	m->data = slice_make(w->msg, w->msg_len);
	return 1;
}

/* Makes room for `need` unparsed bytes and reads more. */
static int fill(wsc_t *w, size_t need, int64_t deadline)
{
	if (w->rpos > 0) {
		memmove(w->rbuf, w->rbuf + w->rpos, w->rlen - w->rpos);
		w->rlen -= w->rpos;
		w->rpos = 0;
	}
	if (need > w->rcap) {
		size_t cap = w->rcap * 2 > need ? w->rcap * 2 : need;
		if (cap > w->rmax)
			cap = w->rmax;
		uint8_t *nb = realloc(w->rbuf, cap);
		if (!nb)
			return -ENOMEM;
		w->rbuf = nb;
		w->rcap = cap;
	}
	long r = tr_read(w, w->rbuf + w->rlen, w->rcap - w->rlen, deadline);
	if (r < 0)
		return (int)r;
	w->rlen += (size_t)r;
	return 0;
}

static int recv_until(wsc_t *w, int64_t deadline, wsc_msg_t *m)
{
	if (w->msg_done) {
		w->msg_len = 0;
		w->msg_done = 0;
	}
	for (;;) {
		wsc_frame_t f;
		size_t avail = w->rlen - w->rpos;
		size_t need = avail + 1;
		int r = wsc_frame_parse(w->rbuf + w->rpos, avail, &f);
		if (r < 0)
			return fail(w, WSC_CLOSE_PROTOCOL, -EPROTO);
		if (r > 0) {
			if (f.masked)
				return fail(w, WSC_CLOSE_PROTOCOL, -EPROTO);
			if (f.len > w->max_message)
				return fail(w, WSC_CLOSE_TOO_BIG, -FC_ETOOBIG);
			size_t total = f.hdr_len + (size_t)f.len;
			if (avail >= total) {
				const uint8_t *pl = w->rbuf + w->rpos + f.hdr_len;
				w->rpos += total;
				int rc = on_frame(w, &f, pl, m);
				if (rc != 0)
					return rc;
				continue;
			}
			need = total;
		}
		int rc = fill(w, need, deadline);
		if (rc == -ETIMEDOUT)
			return 0;
		if (rc == -EINTR)
			return rc;
		if (rc < 0) {
			w->failed = 1;
			w->close_code = WSC_CLOSE_ABNORMAL;
			return rc;
		}
	}
}

int wsc_recv(wsc_t *w, int timeout_ms, wsc_msg_t *m)
{
	if (!w || !m)
		return -EINVAL;
	if (w->failed || w->close_rcvd)
		return -ENOTCONN;
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	return recv_until(w, deadline, m);
}

int wsc_close(wsc_t *w, uint16_t code, const char *reason, int timeout_ms)
{
	if (!w)
		return 0;
	slice_t rs = slice_cstr(reason);
	if ((code && !close_code_sendable(code)) || (!code && rs.len) || rs.len > 123 ||
	    !utf8_valid(rs.ptr, rs.len))
		return -EINVAL;
	send_close(w, code, rs);
	int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	while (!w->failed && !w->close_rcvd) {
		wsc_msg_t m;
		int r = recv_until(w, deadline, &m);
		if (r == 0 || (r < 0 && r != -ENOTCONN))
			break; /* time is up or the stream ended: give up waiting */
	}
	if (w->ssl && !w->tls_down) {
		sigpipe_guard_t g;
		w->tls_down = 1;
		ERR_clear_error();
		sigpipe_block(&g);
		(void)SSL_shutdown(w->ssl);
		sigpipe_restore(&g);
		ERR_clear_error();
	}
	if (!w->close_rcvd && !w->close_code)
		w->close_code = WSC_CLOSE_ABNORMAL;
	w->failed = 1;
	return 0;
}

void wsc_free(wsc_t *w)
{
	if (!w)
		return;
	if (w->ssl)
		SSL_free(w->ssl);
	if (w->ctx)
		SSL_CTX_free(w->ctx);
	if (w->fd >= 0)
		close(w->fd);
	free(w->rbuf);
	free(w->msg);
	free(w);
}

uint16_t wsc_close_code(const wsc_t *w)
{
	return w ? w->close_code : 0;
}

const char *wsc_close_reason(const wsc_t *w)
{
	return w ? w->close_reason : "";
}

const wsc_url_t *wsc_url(const wsc_t *w)
{
	return &w->url;
}
