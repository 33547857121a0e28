/*
 * Client core: the profile handle, the connection (connect, CHALLENGE,
 * reconnect with backoff), request/response matching, authentication
 * (REGISTER, LINK_DEVICE, AUTH) and the account and device requests.
 * Sending and delivery live in client_msg.c.
 *
 * Every request goes out with a fresh request id; while the caller waits for
 * the frame with that id, everything else that arrives is filed by
 * fcc_recv_one(): DELIVER and RESYNC into the push queue (bounded), the
 * PREKEYS_LOW and GOAWAY signals into flags, stale answers to requests that
 * already timed out are dropped.
 */
#include "client/client_int.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

#define NO_REQ UINT32_MAX /* fcc_recv_one: no answer expected */

/* ---- small helpers ----------------------------------------------------------- */

void fcc_err_set(fcc_t *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof c->err, fmt, ap);
	va_end(ap);
}

int64_t fcc_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fcc_sleep_ms(uint32_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
	return nanosleep(&ts, NULL) == 0 ? 0 : -errno;
}

uint32_t fcc_rand_below(uint32_t n)
{
	return n ? randombytes_uniform(n) : 0;
}

static uint32_t next_req(fcc_t *c)
{
	if (c->next_req == 0 || c->next_req >= NO_REQ)
		c->next_req = 1;
	return c->next_req++;
}

const char *fcc_errmsg(const fcc_t *c)
{
	return c ? c->err : "";
}

/* ---- device cache --------------------------------------------------------------- */

fcc_devs_t *fcc_devs_get(fcc_t *c, uint64_t account, int create)
{
	fcc_devs_t *victim = &c->devs[0];
	for (int i = 0; i < FCC_DEVCACHE; i++) {
		fcc_devs_t *d = &c->devs[i];
		if (d->used && d->account == account) {
			d->used = ++c->tick;
			return d;
		}
		if (d->used < victim->used)
			victim = d;
	}
	if (!create)
		return NULL;
	memset(victim, 0, sizeof *victim);
	victim->account = account;
	victim->used = ++c->tick;
	return victim;
}

void fcc_devs_set(fcc_t *c, uint64_t account, const uint32_t *dev, uint16_t n)
{
	fcc_devs_t *d = fcc_devs_get(c, account, 1);
	if (n > FCC_MAX_DEVICES)
		n = FCC_MAX_DEVICES;
	memcpy(d->dev, dev, n * sizeof *dev);
	d->n = n;
	d->have_devices = 1;
}

static void info_to_account(const wire_account_info_t *ai, fcc_account_t *a)
{
	memset(a, 0, sizeof *a);
	a->account = ai->account;
	size_t ul = ai->username.len > FCC_MAX_USERNAME ? FCC_MAX_USERNAME : ai->username.len;
	memcpy(a->username, ai->username.ptr, ul);
	wire_iter_t it;
	uint32_t d;
	wire_iter_init(&it, ai->devices);
	while (a->n_devices < FCC_MAX_DEVICES && wire_u32_next(&it, &d))
		a->devices[a->n_devices++] = d;
}

void fcc_devs_from_info(fcc_t *c, const wire_account_info_t *ai)
{
	fcc_account_t a;
	info_to_account(ai, &a);
	fcc_devs_set(c, a.account, a.devices, a.n_devices);
	fcc_devs_t *d = fcc_devs_get(c, a.account, 1);
	memcpy(d->username, a.username, sizeof d->username);
	d->have_name = 1;
	if (a.account == c->account && c->has_id && strcmp(c->username, a.username) != 0) {
		/* Keep the profile's own record current (informational only). */
		memcpy(c->username, a.username, sizeof c->username);
		if (fcc_identity_save(c) < 0)
			LOGW("client_identity_save_failed", "what=username");
	}
}

void fcc_devs_forget(fcc_t *c, uint64_t account)
{
	fcc_devs_t *d = fcc_devs_get(c, account, 0);
	if (d)
		d->have_devices = 0;
}

/* ---- lifetime -------------------------------------------------------------------- */

int fcc_open(fcc_t **out, const char *dir)
{
	if (!out || !dir || !dir[0])
		return -EINVAL;
	if (sodium_init() < 0)
		return -EPROTO;
	fcc_t *c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	wire_buf_init(&c->out, WIRE_MAX_FRAME);
	c->timeout_ms = FCC_DEFAULT_TIMEOUT_MS;
	c->next_req = 1;
	size_t n = strlen(dir);
	int rc = n >= sizeof c->dir - 8 ? -ENAMETOOLONG : 0;
	if (rc == 0) {
		memcpy(c->dir, dir, n + 1);
		rc = fcc_mkdirs(c->dir);
	}
	char e2e_dir[PATH_MAX];
	if (rc == 0) {
		int m = snprintf(e2e_dir, sizeof e2e_dir, "%s/e2e", c->dir);
		rc = m < 0 || (size_t)m >= sizeof e2e_dir ? -ENAMETOOLONG : 0;
	}
	if (rc == 0)
		rc = e2e_open(&c->e2e, e2e_dir);
	if (rc == 0) {
		rc = fcc_identity_load(c);
		if (rc > 0)
			rc = 0;
	}
	if (rc == 0)
		rc = fcc_cursor_load(c);
	if (rc < 0) {
		fcc_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

void fcc_close(fcc_t *c)
{
	if (!c)
		return;
	fcc_disconnect(c);
	fcc_queue_clear(c);
	fcc_pending_clear(c);
	e2e_close(c->e2e);
	wire_buf_free(&c->out);
	sodium_memzero(c->auth_sk, sizeof c->auth_sk);
	free(c);
}

void fcc_set_handlers(fcc_t *c, const fcc_handlers_t *h, void *arg)
{
	if (h)
		c->h = *h;
	else
		memset(&c->h, 0, sizeof c->h);
	c->harg = arg;
}

int fcc_has_identity(const fcc_t *c)
{
	return c->has_id;
}

uint64_t fcc_account_id(const fcc_t *c)
{
	return c->account;
}

uint32_t fcc_device_id(const fcc_t *c)
{
	return c->device;
}

const char *fcc_server(const fcc_t *c)
{
	return c->has_id ? c->server : c->url;
}

const char *fcc_username(const fcc_t *c)
{
	return c->username;
}

void fcc_saved_opts(const fcc_t *c, fcc_conn_opts_t *o)
{
	memset(o, 0, sizeof *o);
	o->insecure = c->id_insecure;
	o->ca_file = c->id_ca[0] ? c->id_ca : NULL;
}

uint64_t fcc_cursor(const fcc_t *c)
{
	return c->cursor;
}

void fcc_stats(const fcc_t *c, fcc_stats_t *out)
{
	*out = c->stats;
}

/* ---- receiving --------------------------------------------------------------------- */

static const char *close_text(uint16_t code)
{
	switch (code) {
	case 1000:
		return "normal closure";
	case 1001:
		return "server going away";
	case 1002:
		return "protocol error";
	case 1008:
		return "policy: device removed or connected elsewhere";
	case 1009:
		return "message too big";
	case 1011:
		return "server error";
	case 1013:
		return "server overloaded, try again later";
	default:
		return "closed";
	}
}

void fcc_conn_lost(fcc_t *c, int rc)
{
	if (!c->ws)
		return;
	uint16_t code = wsc_close_code(c->ws);
	c->last_close = code;
	if (code && code != WSC_CLOSE_ABNORMAL && code != WSC_CLOSE_NO_STATUS)
		fcc_err_set(c, "connection to %s closed by server: %u %s", c->url, code,
			    close_text(code));
	else
		fcc_err_set(c, "connection to %s lost: %s", c->url,
			    rc == -ENOTCONN ? "closed" : err_str(rc));
	if (code == WSC_CLOSE_TRY_AGAIN && c->hint_ms < 1000)
		c->hint_ms = 1000;
	/* 1008: this device was removed (the next AUTH fails, which ends the
	 * reconnecting) or connected again elsewhere (one connection per
	 * device: the newer wins); do not snatch the device straight back. */
	if (code == WSC_CLOSE_POLICY && c->hint_ms < 2000)
		c->hint_ms = 2000;
	LOGI("client_conn_lost", "close=%u err=\"%s\"", code, err_str(rc));
	wsc_free(c->ws);
	c->ws = NULL;
	c->authed = 0;
}

int fcc_recv_one(fcc_t *c, int64_t deadline, uint32_t want_req, wire_msg_t *resp)
{
	if (!c->ws)
		return -ENOTCONN;
	int t = -1;
	if (deadline >= 0) {
		int64_t left = deadline - fcc_now_ms();
		t = left < 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
	}
	wsc_msg_t m;
	int r = wsc_recv(c->ws, t, &m);
	if (r == 0)
		return -ETIMEDOUT;
	if (r == -EINTR)
		return r;
	if (r < 0) {
		fcc_conn_lost(c, r);
		return -ENOTCONN;
	}
	if (m.opcode != WSC_OP_BINARY) {
		LOGW("client_text_frame", "len=%zu", m.data.len);
		return 0;
	}
	wire_msg_t msg;
	memset(&msg, 0, sizeof msg);
	int rc = wire_msg_decode(m.data, &msg);
	if (rc < 0) {
		LOGW("client_bad_frame", "type=0x%02x len=%zu err=\"%s\"", msg.hdr.type, m.data.len,
		     err_str(rc));
		/* An answer we cannot read still ends the wait for it. (A broken
		 * DELIVER inside a sync does not: SYNC_DONE accounts for it.) */
		if (want_req != 0 && want_req != NO_REQ && msg.hdr.req_id == want_req &&
		    msg.hdr.type != WIRE_MSG_DELIVER && msg.hdr.type != WIRE_MSG_RESYNC) {
			fcc_err_set(c, "undecodable %s answer from %s: %s",
				    wire_type_name(msg.hdr.type), c->url, err_str(rc));
			return -EPROTO;
		}
		return 0;
	}
	switch (msg.hdr.type) {
	case WIRE_MSG_DELIVER:
	case WIRE_MSG_RESYNC:
		/* Live or answering a SYNC: handled in seq order by fcc_dispatch. */
		fcc_queue_push(c, m.data, msg.hdr.type);
		return 0;
	case WIRE_MSG_PREKEYS_LOW:
		c->prekeys_low = 1;
		return 0;
	case WIRE_MSG_GOAWAY:
		c->hint_ms = msg.u.goaway.reconnect_after_ms;
		LOGI("client_goaway", "reconnect_after_ms=%u", c->hint_ms);
		return 0;
	case WIRE_MSG_CHALLENGE:
		if (want_req == 0 && resp) {
			*resp = msg;
			return 1;
		}
		return 0;
	default:
		break;
	}
	if (want_req != 0 && want_req != NO_REQ && msg.hdr.req_id == want_req && resp) {
		*resp = msg;
		return 1;
	}
	if (msg.hdr.type == WIRE_MSG_ERROR)
		LOGW("client_server_error", "req=%u code=%s", msg.hdr.req_id,
		     wire_err_name(msg.u.error.code));
	return 0;
}

/* Waits ms while still reading (so pings are answered and pushes queued). */
static int idle_wait(fcc_t *c, uint32_t ms)
{
	if (!c->ws)
		return fcc_sleep_ms(ms);
	int64_t deadline = fcc_now_ms() + ms;
	for (;;) {
		int rc = fcc_recv_one(c, deadline, NO_REQ, NULL);
		if (rc == -ETIMEDOUT)
			return 0;
		if (rc == -EINTR)
			return rc;
		if (rc < 0) {
			int64_t left = deadline - fcc_now_ms();
			return left > 0 ? fcc_sleep_ms((uint32_t)left) : 0;
		}
	}
}

int fcc_idle_wait(fcc_t *c, uint32_t ms)
{
	return idle_wait(c, ms);
}

/* ---- requests ------------------------------------------------------------------------ */

int fcc_server_error(fcc_t *c, const wire_error_t *e, const char *what)
{
	int detail_len = (int)(e->detail.len > 200 ? 200 : e->detail.len);
	fcc_err_set(c, "%s refused by server: %s%s%.*s%s", what, wire_err_name(e->code),
		    detail_len ? " (" : "", detail_len, (const char *)e->detail.ptr,
		    detail_len ? ")" : "");
	switch (e->code) {
	case WIRE_ERR_NOT_AUTHENTICATED:
	case WIRE_ERR_AUTH_FAILED:
		return -FC_EAUTH;
	case WIRE_ERR_BAD_INVITE:
		return -EACCES;
	case WIRE_ERR_NOT_FOUND:
		return -FC_ENOTFOUND;
	case WIRE_ERR_TAKEN:
		return -FC_EEXIST;
	case WIRE_ERR_LIMIT:
		return -FC_ELIMIT;
	case WIRE_ERR_CONFLICT:
		return -FC_ECONFLICT;
	case WIRE_ERR_RATE_LIMITED:
	case WIRE_ERR_UNAVAILABLE:
		return -FC_EUNAVAIL;
	case WIRE_ERR_TOO_LARGE:
		return -FC_ETOOBIG;
	case WIRE_ERR_BAD_REQUEST:
		return -EINVAL;
	case WIRE_ERR_ALREADY_AUTHENTICATED:
		return -EISCONN;
	default:
		return -EPROTO;
	}
}

int fcc_request_once(fcc_t *c, wire_buf_t *b, wire_msg_t *resp, const char *what)
{
	if (b->err || b->len < WIRE_HDR_LEN) {
		fcc_err_set(c, "cannot encode %s: %s", what, err_str(b->err ? b->err : -EINVAL));
		return b->err ? b->err : -EINVAL;
	}
	if (!c->ws) {
		fcc_err_set(c, "%s: not connected", what);
		return -ENOTCONN;
	}
	uint32_t id = next_req(c);
	b->p[4] = (uint8_t)(id >> 24);
	b->p[5] = (uint8_t)(id >> 16);
	b->p[6] = (uint8_t)(id >> 8);
	b->p[7] = (uint8_t)id;
	int rc = wsc_send(c->ws, WSC_OP_BINARY, b->p, b->len);
	if (rc < 0) {
		fcc_conn_lost(c, rc);
		return -ENOTCONN;
	}
	c->tx_ms = fcc_now_ms();
	int64_t deadline = c->tx_ms + c->timeout_ms;
	for (;;) {
		rc = fcc_recv_one(c, deadline, id, resp);
		if (rc == 1)
			return 0;
		if (rc == 0)
			continue;
		if (rc == -ETIMEDOUT) {
			/* A connection that does not answer within the timeout is
			 * treated as dead: a late answer would be ambiguous. */
			fcc_err_set(c, "no answer to %s from %s within %d ms", what, c->url,
				    c->timeout_ms);
			wsc_free(c->ws);
			c->ws = NULL;
			c->authed = 0;
		}
		return rc;
	}
}

int fcc_request(fcc_t *c, wire_buf_t *b, wire_msg_t *resp, const char *what)
{
	for (unsigned attempt = 0;; attempt++) {
		int rc = fcc_request_once(c, b, resp, what);
		if (rc < 0)
			return rc;
		if (resp->hdr.type != WIRE_MSG_ERROR)
			return 0;
		const wire_error_t *e = &resp->u.error;
		int retryable = e->code == WIRE_ERR_RATE_LIMITED || e->code == WIRE_ERR_UNAVAILABLE;
		if (!retryable || attempt >= FCC_MAX_RETRIES)
			return fcc_server_error(c, e, what);
		uint32_t ms = fcc_retry_delay_ms(e->retry_after_ms, attempt);
		LOGI("client_retry", "what=%s code=%s delay_ms=%u", what, wire_err_name(e->code),
		     ms);
		rc = idle_wait(c, ms);
		if (rc < 0)
			return rc;
	}
}

uint32_t fcc_retry_delay_ms(uint32_t retry_after_ms, unsigned attempt)
{
	uint32_t ms = retry_after_ms;
	if (ms == 0) {
		/* No hint: the same full-jitter backoff as reconnects. */
		unsigned sh = attempt > 7 ? 7 : attempt;
		uint32_t cap = FCC_BACKOFF_BASE_MS << sh;
		return fcc_rand_below(cap > FCC_BACKOFF_CAP_MS ? FCC_BACKOFF_CAP_MS : cap) + 1;
	}
	if (ms > 60000)
		ms = 60000;
	/* A little jitter so many clients told the same delay spread out. */
	return ms + fcc_rand_below(ms / 10 + 1);
}

/* ---- connection ------------------------------------------------------------------------- */

static int connect_to(fcc_t *c, const char *url, int insecure, const char *ca, int timeout_ms)
{
	if (c->ws)
		fcc_disconnect(c);
	if (!url || !url[0]) {
		fcc_err_set(c, "no server URL (give --server)");
		return -EINVAL;
	}
	if (url != c->url) {
		/* A bare server URL ("ws://host:port") means the protocol's
		 * endpoint: the path defaults to FCC_DEFAULT_PATH. */
		const char *auth = strstr(url, "://");
		int bare = auth && auth[3] && !strpbrk(auth + 3, "/?");
		size_t n = strlen(url);
		size_t extra = bare ? strlen(FCC_DEFAULT_PATH) : 0;
		if (n + extra >= sizeof c->url) {
			fcc_err_set(c, "server URL too long");
			return -ENAMETOOLONG;
		}
		memcpy(c->url, url, n);
		memcpy(c->url + n, FCC_DEFAULT_PATH, extra);
		c->url[n + extra] = 0;
	}
	if (ca != c->ca_file) {
		size_t n = ca ? strlen(ca) : 0;
		if (n >= sizeof c->ca_file) {
			fcc_err_set(c, "CA file path too long");
			return -ENAMETOOLONG;
		}
		memcpy(c->ca_file, ca ? ca : "", n + 1);
	}
	c->insecure = insecure;
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : FCC_DEFAULT_TIMEOUT_MS;
	wsc_opts_t wo = {.insecure = insecure,
			 .ca_file = c->ca_file[0] ? c->ca_file : NULL,
			 .timeout_ms = c->timeout_ms,
			 .max_message = WIRE_MAX_FRAME};
	wsc_status_t st;
	int rc;
	for (int busy = 0;; busy++) {
		rc = wsc_connect(&c->ws, c->url, &wo, &st);
		/* 503: the server sheds upgrades for a moment; wait as told
		 * (plus jitter) a few times before giving up. */
		if (rc != -FC_EUNAVAIL || busy >= FCC_CONNECT_BUSY_RETRIES || st.retry_after_s > 30)
			break;
		uint32_t ms = (uint32_t)(st.retry_after_s > 0 ? st.retry_after_s : 1) * 1000;
		ms += fcc_rand_below(ms / 2 + 1);
		LOGI("client_server_busy", "url=%s retry_after_ms=%u", c->url, ms);
		if (fcc_sleep_ms(ms) < 0)
			break;
	}
	if (rc < 0) {
		c->ws = NULL;
		fcc_err_set(c, "cannot connect to %s: %s", c->url, st.msg);
		if (st.retry_after_s >= 0)
			c->hint_ms = (uint32_t)st.retry_after_s * 1000;
		else if (rc == -FC_EUNAVAIL && c->hint_ms < 1000)
			c->hint_ms = 1000;
		return rc;
	}
	c->authed = 0;
	c->last_close = 0;
	int64_t deadline = fcc_now_ms() + c->timeout_ms;
	wire_msg_t m;
	for (;;) {
		rc = fcc_recv_one(c, deadline, 0, &m);
		if (rc == 1)
			break;
		if (rc == 0)
			continue;
		if (rc == -ETIMEDOUT)
			fcc_err_set(c, "no CHALLENGE from %s within %d ms", c->url, c->timeout_ms);
		if (c->ws) {
			wsc_free(c->ws);
			c->ws = NULL;
		}
		return rc;
	}
	const wire_challenge_t *ch = &m.u.challenge;
	if (ch->min_version > WIRE_VERSION || ch->max_version < WIRE_VERSION) {
		fcc_err_set(c, "server at %s speaks protocol versions %u..%u, this client %u",
			    c->url, ch->min_version, ch->max_version, WIRE_VERSION);
		fcc_disconnect(c);
		return -FC_EVERSION;
	}
	memcpy(c->nonce, ch->nonce, sizeof c->nonce);
	LOGD("client_connected", "url=%s", c->url);
	return 0;
}

int fcc_connect(fcc_t *c, const char *url, const fcc_conn_opts_t *opts)
{
	if (!url)
		url = c->has_id ? c->server : NULL;
	fcc_conn_opts_t o;
	if (opts)
		o = *opts;
	else
		fcc_saved_opts(c, &o);
	return connect_to(c, url, o.insecure, o.ca_file, o.timeout_ms);
}

int fcc_connected(const fcc_t *c)
{
	return c->ws != NULL;
}

void fcc_disconnect(fcc_t *c)
{
	if (!c->ws)
		return;
	if (c->authed && fcc_ack(c) < 0)
		LOGW("client_ack_failed", "err=\"%s\"", c->err);
	if (c->ws) {
		if (wsc_close(c->ws, WSC_CLOSE_NORMAL, NULL, 1000) < 0)
			LOGW("client_close_failed", "url=%s", c->url);
		wsc_free(c->ws);
		c->ws = NULL;
	}
	c->authed = 0;
}

/* After AUTH_OK or REGISTERED: the server pushes live messages from now on
 * and remembers what this device acknowledged. */
static void authed(fcc_t *c, uint64_t acked)
{
	c->authed = 1;
	c->authed_ms = fcc_now_ms();
	if (acked > c->cursor)
		c->cursor = acked; /* entries up to acked are gone from the server */
	c->acked = acked;
	c->need_sync = 1;
}

int fcc_auth(fcc_t *c)
{
	if (!c->has_id) {
		fcc_err_set(c, "profile %s has no identity: run register or link first", c->dir);
		return -ENOENT;
	}
	if (!c->ws) {
		fcc_err_set(c, "AUTH: not connected");
		return -ENOTCONN;
	}
	uint8_t sm[WIRE_SIGMSG_MAX], sig[WIRE_SIG_LEN];
	size_t n = wire_auth_sigmsg(sm, c->nonce, c->account, c->device);
	crypto_sign_detached(sig, NULL, sm, n, c->auth_sk);
	wire_auth_t a = {.account = c->account, .device = c->device, .sig = sig};
	wire_buf_reset(&c->out);
	wire_msg_t m;
	int rc = wire_auth_encode(&c->out, 0, &a);
	if (rc == 0)
		rc = fcc_request(c, &c->out, &m, "AUTH");
	if (rc == -FC_EAUTH) {
		char why[sizeof c->err];
		memcpy(why, c->err, sizeof why);
		fcc_err_set(c, "%.300s: device %llu/%u was removed or the identity is wrong", why,
			    (unsigned long long)c->account, c->device);
	}
	if (rc < 0)
		return rc;
	if (m.hdr.type != WIRE_MSG_AUTH_OK) {
		fcc_err_set(c, "AUTH: unexpected answer %s", wire_type_name(m.hdr.type));
		return -EPROTO;
	}
	authed(c, m.u.auth_ok.acked_seq);
	LOGD("client_authed", "account=%llu device=%u head=%llu acked=%llu",
	     (unsigned long long)c->account, c->device, (unsigned long long)m.u.auth_ok.head_seq,
	     (unsigned long long)m.u.auth_ok.acked_seq);
	return 0;
}

int fcc_reconnect(fcc_t *c, int max_wait_ms)
{
	if (!c->has_id) {
		fcc_err_set(c, "profile %s has no identity", c->dir);
		return -ENOENT;
	}
	if (c->ws)
		fcc_disconnect(c);
	/* Backoff grows across connections that fail again soon after being
	 * established, and starts over after a stable one. */
	if (c->authed_ms && fcc_now_ms() - c->authed_ms >= FCC_STABLE_MS)
		c->attempt = 0;
	if (!c->url[0]) {
		size_t n = strlen(c->server);
		memcpy(c->url, c->server, n + 1);
		c->insecure = c->id_insecure;
		memcpy(c->ca_file, c->id_ca, sizeof c->ca_file);
	}
	int64_t deadline = max_wait_ms < 0 ? -1 : fcc_now_ms() + max_wait_ms;
	for (;;) {
		unsigned sh = c->attempt > 7 ? 7 : c->attempt;
		uint32_t cap = FCC_BACKOFF_BASE_MS << sh;
		if (cap > FCC_BACKOFF_CAP_MS)
			cap = FCC_BACKOFF_CAP_MS;
		uint32_t delay = c->hint_ms + fcc_rand_below(cap);
		c->hint_ms = 0;
		if (deadline >= 0) {
			int64_t left = deadline - fcc_now_ms();
			if (left <= 0)
				return -ETIMEDOUT;
			if (delay > left)
				delay = (uint32_t)left;
		}
		LOGI("client_reconnect_wait", "attempt=%u delay_ms=%u", c->attempt, delay);
		int rc = fcc_sleep_ms(delay);
		if (rc < 0)
			return rc;
		c->attempt++;
		rc = connect_to(c, c->url, c->insecure, c->ca_file, c->timeout_ms);
		if (rc == 0)
			rc = fcc_auth(c);
		if (rc == 0) {
			rc = fcc_sync(c);
			if (rc >= 0) {
				c->stats.reconnects++;
				return 0;
			}
		}
		if (rc == -FC_EAUTH || rc == -ENOENT || rc == -EINVAL || rc == -FC_ECONFIG ||
		    rc == -EINTR || rc == -FC_EVERSION || rc == -ENAMETOOLONG)
			return rc;
		LOGI("client_reconnect_failed", "attempt=%u err=\"%s\"", c->attempt, c->err);
	}
}

/* ---- registration and linking -------------------------------------------------------------- */

typedef struct keyset {
	e2e_public_t pub;
	e2e_prekey_t *pks;
	wire_prekey_t *wpks;
} keyset_t;

static void keyset_free(keyset_t *k)
{
	free(k->pks);
	free(k->wpks);
	k->pks = NULL;
	k->wpks = NULL;
}

/* The KEYS a new device uploads: its public identity, signed prekey and a
 * batch of fresh one-time prekeys. */
static int keyset_make(fcc_t *c, keyset_t *k, wire_keys_t *out)
{
	memset(k, 0, sizeof *k);
	int rc = e2e_public(c->e2e, &k->pub);
	if (rc == 0)
		rc = e2e_prekeys_generate(c->e2e, FCC_PREKEY_BATCH, &k->pks);
	if (rc < 0) {
		fcc_err_set(c, "cannot create keys: %s", err_str(rc));
		return rc;
	}
	k->wpks = calloc(FCC_PREKEY_BATCH, sizeof *k->wpks);
	if (!k->wpks) {
		keyset_free(k);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < FCC_PREKEY_BATCH; i++) {
		k->wpks[i].id = k->pks[i].id;
		k->wpks[i].key = slice_make(k->pks[i].pub, sizeof k->pks[i].pub);
	}
	memset(out, 0, sizeof *out);
	out->registration_id = k->pub.registration_id;
	out->identity_key = slice_make(k->pub.identity_pub, sizeof k->pub.identity_pub);
	out->spk_id = k->pub.spk_id;
	out->spk = slice_make(k->pub.spk_pub, sizeof k->pub.spk_pub);
	out->spk_sig = slice_make(k->pub.spk_sig, sizeof k->pub.spk_sig);
	out->otpks_out = k->wpks;
	out->n_otpks_out = FCC_PREKEY_BATCH;
	return 0;
}

static int new_device_check(fcc_t *c, const char *what)
{
	if (c->has_id) {
		fcc_err_set(c, "%s: profile %s already holds device %llu/%u", what, c->dir,
			    (unsigned long long)c->account, c->device);
		return -FC_EEXIST;
	}
	if (!c->ws) {
		fcc_err_set(c, "%s: not connected", what);
		return -ENOTCONN;
	}
	return 0;
}

/* REGISTERED: this connection is now the new device; save who we are. */
static int adopt_identity(fcc_t *c, const wire_registered_t *r, const uint8_t pk[32],
			  const uint8_t sk[64])
{
	c->account = r->account;
	c->device = r->device;
	memcpy(c->auth_pk, pk, 32);
	memcpy(c->auth_sk, sk, 64);
	memcpy(c->server, c->url, sizeof c->server);
	c->id_insecure = c->insecure;
	memcpy(c->id_ca, c->ca_file, sizeof c->id_ca);
	c->has_id = 1;
	c->cursor = c->saved_cursor = c->acked = 0;
	authed(c, 0);
	int rc = fcc_identity_save(c);
	if (rc < 0)
		fcc_err_set(c,
			    "device %llu/%u was created but %s/identity could not be written: %s",
			    (unsigned long long)r->account, r->device, c->dir, err_str(rc));
	return rc;
}

/* Shared by REGISTER and LINK_DEVICE, which differ in their first field and
 * signature context. */
static int enroll(fcc_t *c, int link, const char *secret)
{
	const char *what = link ? "LINK_DEVICE" : "REGISTER";
	int rc = new_device_check(c, what);
	if (rc < 0)
		return rc;
	uint8_t pk[32], sk[64], sig[WIRE_SIG_LEN], sm[WIRE_SIGMSG_MAX];
	crypto_sign_keypair(pk, sk);
	keyset_t ks;
	wire_keys_t keys;
	rc = keyset_make(c, &ks, &keys);
	if (rc < 0)
		goto out;
	size_t n =
		link ? wire_link_sigmsg(sm, c->nonce, pk) : wire_register_sigmsg(sm, c->nonce, pk);
	crypto_sign_detached(sig, NULL, sm, n, sk);
	wire_buf_reset(&c->out);
	if (link) {
		wire_link_device_t l = {
			.code = slice_cstr(secret), .auth_pub = pk, .keys = keys, .sig = sig};
		rc = wire_link_device_encode(&c->out, 0, &l);
	} else {
		wire_register_t r = {
			.invite = slice_cstr(secret), .auth_pub = pk, .keys = keys, .sig = sig};
		rc = wire_register_encode(&c->out, 0, &r);
	}
	if (rc < 0) {
		fcc_err_set(c, "%s: %s too long or invalid", what, link ? "link code" : "invite");
		goto out;
	}
	wire_msg_t m;
	rc = fcc_request(c, &c->out, &m, what);
	if (rc == -EACCES)
		fcc_err_set(c, "invite code not accepted by %s", c->url);
	else if (rc == -FC_EAUTH && link)
		fcc_err_set(c, "link code not accepted (unknown, already used or expired)");
	else if (rc == -FC_ELIMIT)
		fcc_err_set(c, "the account already has the maximum number of devices");
	if (rc < 0)
		goto out;
	if (m.hdr.type != WIRE_MSG_REGISTERED) {
		fcc_err_set(c, "%s: unexpected answer %s", what, wire_type_name(m.hdr.type));
		rc = -EPROTO;
		goto out;
	}
	rc = adopt_identity(c, &m.u.registered, pk, sk);
	LOGI("client_enrolled", "account=%llu device=%u linked=%d", (unsigned long long)c->account,
	     c->device, link);
out:
	keyset_free(&ks);
	sodium_memzero(sk, sizeof sk);
	return rc;
}

int fcc_register(fcc_t *c, const char *invite, const char *username)
{
	if (username && username[0] && !wire_username_valid(slice_cstr(username))) {
		fcc_err_set(c, "invalid username \"%s\": 3..32 characters of a-z 0-9 _ .",
			    username);
		return -EINVAL;
	}
	int rc = enroll(c, 0, invite ? invite : "");
	if (rc == 0 && username && username[0])
		rc = fcc_set_username(c, username);
	return rc;
}

int fcc_link(fcc_t *c, const char *code)
{
	if (!code || !code[0]) {
		fcc_err_set(c, "empty link code");
		return -EINVAL;
	}
	int rc = enroll(c, 1, code);
	/* Learn the account's username (saved with the identity); the device
	 * is linked whether or not this works. */
	if (rc == 0 && fcc_devices(c, c->account, NULL) < 0)
		LOGW("client_username_unknown", "account=%llu", (unsigned long long)c->account);
	return rc;
}

static int need_auth(fcc_t *c, const char *what)
{
	if (c->ws && c->authed)
		return 0;
	fcc_err_set(c, "%s: not connected and authenticated", what);
	return -ENOTCONN;
}

int fcc_link_code(fcc_t *c, char code[FCC_LINK_CODE_MAX + 1], uint32_t *expires_s)
{
	int rc = need_auth(c, "LINK_BEGIN");
	if (rc < 0)
		return rc;
	wire_buf_reset(&c->out);
	wire_msg_t m;
	rc = wire_link_begin_encode(&c->out, 0);
	if (rc == 0)
		rc = fcc_request(c, &c->out, &m, "LINK_BEGIN");
	if (rc < 0)
		return rc;
	if (m.hdr.type != WIRE_MSG_LINK_CODE) {
		fcc_err_set(c, "LINK_BEGIN: unexpected answer %s", wire_type_name(m.hdr.type));
		return -EPROTO;
	}
	size_t n = m.u.link_code.code.len;
	memcpy(code, m.u.link_code.code.ptr, n);
	code[n] = 0;
	if (expires_s)
		*expires_s = m.u.link_code.expires_in_s;
	return 0;
}

/* ---- accounts --------------------------------------------------------------------------------- */

static int expect_ok(fcc_t *c, const wire_msg_t *m, const char *what)
{
	if (m->hdr.type == WIRE_MSG_OK)
		return 0;
	fcc_err_set(c, "%s: unexpected answer %s", what, wire_type_name(m->hdr.type));
	return -EPROTO;
}

int fcc_set_username(fcc_t *c, const char *username)
{
	slice_t u = slice_cstr(username);
	if (u.len && !wire_username_valid(u)) {
		fcc_err_set(c, "invalid username \"%s\": 3..32 characters of a-z 0-9 _ .",
			    username);
		return -EINVAL;
	}
	int rc = need_auth(c, "USERNAME_SET");
	if (rc < 0)
		return rc;
	wire_username_set_t s = {.username = u};
	wire_buf_reset(&c->out);
	wire_msg_t m;
	rc = wire_username_set_encode(&c->out, 0, &s);
	if (rc == 0)
		rc = fcc_request(c, &c->out, &m, "USERNAME_SET");
	if (rc == -FC_EEXIST)
		fcc_err_set(c, "username \"%s\" is taken", username);
	if (rc == 0)
		rc = expect_ok(c, &m, "USERNAME_SET");
	if (rc < 0)
		return rc;
	memcpy(c->username, u.ptr ? (const char *)u.ptr : "", u.len);
	c->username[u.len] = 0;
	fcc_devs_t *d = fcc_devs_get(c, c->account, 1);
	memcpy(d->username, c->username, sizeof d->username);
	d->have_name = 1;
	rc = fcc_identity_save(c);
	if (rc < 0)
		fcc_err_set(c, "username set, but %s/identity could not be written: %s", c->dir,
			    err_str(rc));
	return rc;
}

static int account_info(fcc_t *c, wire_buf_t *b, fcc_account_t *out, const char *what)
{
	wire_msg_t m;
	int rc = fcc_request(c, b, &m, what);
	if (rc < 0)
		return rc;
	if (m.hdr.type != WIRE_MSG_ACCOUNT_INFO) {
		fcc_err_set(c, "%s: unexpected answer %s", what, wire_type_name(m.hdr.type));
		return -EPROTO;
	}
	fcc_devs_from_info(c, &m.u.account_info);
	if (out)
		info_to_account(&m.u.account_info, out);
	return 0;
}

int fcc_resolve(fcc_t *c, const char *username, fcc_account_t *out)
{
	if (!username || !wire_username_valid(slice_cstr(username))) {
		fcc_err_set(c, "invalid username \"%s\"", username ? username : "");
		return -EINVAL;
	}
	int rc = need_auth(c, "RESOLVE");
	if (rc < 0)
		return rc;
	wire_resolve_t r = {.username = slice_cstr(username)};
	wire_buf_reset(&c->out);
	rc = wire_resolve_encode(&c->out, 0, &r);
	if (rc == 0)
		rc = account_info(c, &c->out, out, "RESOLVE");
	if (rc == -FC_ENOTFOUND)
		fcc_err_set(c, "no user named \"%s\"", username);
	return rc;
}

int fcc_devices(fcc_t *c, uint64_t account, fcc_account_t *out)
{
	int rc = need_auth(c, "DEVICES_GET");
	if (rc < 0)
		return rc;
	wire_devices_get_t g = {.account = account};
	wire_buf_reset(&c->out);
	rc = wire_devices_get_encode(&c->out, 0, &g);
	if (rc == 0)
		rc = account_info(c, &c->out, out, "DEVICES_GET");
	if (rc == -FC_ENOTFOUND)
		fcc_err_set(c, "no account %llu", (unsigned long long)account);
	return rc;
}

int fcc_unlink(fcc_t *c, uint32_t device)
{
	int rc = need_auth(c, "DEVICE_REMOVE");
	if (rc < 0)
		return rc;
	wire_device_remove_t r = {.device = device};
	wire_buf_reset(&c->out);
	wire_msg_t m;
	rc = wire_device_remove_encode(&c->out, 0, &r);
	if (rc == 0)
		rc = fcc_request(c, &c->out, &m, "DEVICE_REMOVE");
	if (rc == -FC_ENOTFOUND)
		fcc_err_set(c, "account %llu has no device %u", (unsigned long long)c->account,
			    device);
	if (rc == 0)
		rc = expect_ok(c, &m, "DEVICE_REMOVE");
	if (rc == 0) {
		fcc_devs_forget(c, c->account);
		if (e2e_session_delete(c->e2e, c->account, device) < 0)
			LOGW("client_session_delete_failed", "device=%u", device);
	}
	return rc;
}

const char *fcc_account_name(fcc_t *c, uint64_t account, char *buf, size_t cap)
{
	if (!cap)
		return buf;
	if (account == c->account && c->username[0]) {
		snprintf(buf, cap, "%s", c->username);
		return buf;
	}
	fcc_devs_t *d = fcc_devs_get(c, account, 0);
	if ((!d || !d->have_name) && c->ws && c->authed) {
		char saved[sizeof c->err];
		memcpy(saved, c->err, sizeof saved);
		if (fcc_devices(c, account, NULL) < 0)
			LOGD("client_name_lookup_failed", "account=%llu",
			     (unsigned long long)account);
		memcpy(c->err, saved, sizeof saved);
		d = fcc_devs_get(c, account, 0);
	}
	if (d && d->have_name && d->username[0])
		snprintf(buf, cap, "%s", d->username);
	else
		snprintf(buf, cap, "%llu", (unsigned long long)account);
	return buf;
}
