/*
 * Client messaging: sending text (device fan-out, sessions from bundles,
 * STALE_DEVICES, retries) and receiving it (queue, de-duplication by seq,
 * contiguous cursor, SYNC, RESYNC, ACK, prekey refills).
 *
 * Receive path invariants:
 *  - cursor is the last seq handed to the handler (or skipped as lost) with
 *    every lower seq also done; it only grows;
 *  - pend holds DELIVERs with seq > cursor + 1, sorted, without duplicates;
 *  - nothing above the cursor is ever acknowledged, so whatever this client
 *    drops at a cap comes back with the next SYNC.
 */
#include "client/client_int.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/utf8.h"

/* ---- push queue -------------------------------------------------------------- */

void fcc_queue_push(fcc_t *c, slice_t frame, uint8_t type)
{
	if (c->qn >= FCC_QUEUE_MAX_ITEMS || c->qbytes + frame.len > FCC_QUEUE_MAX_BYTES) {
		if (type == WIRE_MSG_DELIVER) {
			c->dropped++;
			c->need_sync = 1;
		}
		LOGW("client_queue_full", "items=%zu bytes=%zu", c->qn, c->qbytes);
		return;
	}
	fcc_qitem_t *it = malloc(sizeof *it + frame.len);
	if (!it) {
		c->dropped++;
		c->need_sync = 1;
		return;
	}
	it->next = NULL;
	it->len = frame.len;
	memcpy(it->data, frame.ptr, frame.len);
	if (c->qtail)
		c->qtail->next = it;
	else
		c->qhead = it;
	c->qtail = it;
	c->qn++;
	c->qbytes += frame.len;
}

void fcc_queue_clear(fcc_t *c)
{
	while (c->qhead) {
		fcc_qitem_t *n = c->qhead->next;
		free(c->qhead);
		c->qhead = n;
	}
	c->qtail = NULL;
	c->qn = c->qbytes = 0;
}

/* ---- out-of-order buffer ----------------------------------------------------------- */

void fcc_pending_clear(fcc_t *c)
{
	for (size_t i = 0; i < c->npend; i++)
		free(c->pend[i].ct);
	free(c->pend);
	c->pend = NULL;
	c->npend = 0;
}

static void pending_add(fcc_t *c, const wire_deliver_t *d, int via_sync)
{
	size_t i = 0;
	while (i < c->npend && c->pend[i].seq < d->seq)
		i++;
	if (i < c->npend && c->pend[i].seq == d->seq) {
		c->stats.duplicates++;
		return;
	}
	uint8_t *ct = c->npend < FCC_PENDING_MAX ? malloc(d->ciphertext.len + 1) : NULL;
	fcc_pend_t *np = ct ? realloc(c->pend, (c->npend + 1) * sizeof *np) : NULL;
	if (!np) {
		/* Full (or out of memory): let a later SYNC bring it again. */
		free(ct);
		c->dropped++;
		c->need_sync = 1;
		return;
	}
	c->pend = np;
	memmove(&c->pend[i + 1], &c->pend[i], (c->npend - i) * sizeof *np);
	if (d->ciphertext.len)
		memcpy(ct, d->ciphertext.ptr, d->ciphertext.len);
	c->pend[i] = (fcc_pend_t){.seq = d->seq,
				  .sender_account = d->sender_account,
				  .timestamp_ms = d->timestamp_ms,
				  .sender_device = d->sender_device,
				  .via_sync = via_sync,
				  .len = d->ciphertext.len,
				  .ct = ct};
	c->npend++;
}

/* ---- delivering one message --------------------------------------------------------- */

/* Decrypts, decodes and hands one message to the handler; moves the cursor
 * to seq. Returns 1 when the handler was called, 0 for a duplicate. */
static int deliver_one(fcc_t *c, uint64_t seq, uint64_t sender, uint32_t sdev, uint64_t ts,
		       const uint8_t *ct, size_t n, int via_sync)
{
	uint8_t *pt = NULL;
	size_t ptn = 0;
	int rc = e2e_decrypt(c->e2e, sender, sdev, ct, n, &pt, &ptn);
	c->cursor = seq;
	if (rc == -FC_EEXIST) {
		/* Decrypted before a crash, but the cursor had not been saved. */
		c->stats.duplicates++;
		return 0;
	}
	fcc_message_t m = {.seq = seq,
			   .sender_account = sender,
			   .sender_device = sdev,
			   .timestamp_ms = ts,
			   .peer = sender,
			   .outgoing = sender == c->account,
			   .via_sync = via_sync};
	fcc_inner_t in;
	if (rc == 0)
		rc = fcc_inner_decode(slice_make(pt, ptn), &in);
	if (rc == 0) {
		if (sender == c->account)
			m.peer = in.peer;
		else if (in.peer != sender)
			rc = -FC_EMALFORMED; /* a sender may not speak for another conversation */
	}
	if (rc == 0) {
		m.text = in.text;
		c->stats.delivered++;
	} else {
		m.status = rc;
		c->stats.failed++;
		LOGI("client_undecryptable", "seq=%llu sender=%llu/%u err=\"%s\"",
		     (unsigned long long)seq, (unsigned long long)sender, sdev, err_str(rc));
	}
	if (c->h.on_message)
		c->h.on_message(c->harg, &m);
	if (pt) {
		sodium_memzero(pt, ptn);
		free(pt);
	}
	return 1;
}

static int skip_to(fcc_t *c, uint64_t upto);

/* Delivers buffered messages that have become contiguous, and applies the
 * RESYNC ranges the cursor has reached. */
static int pending_drain(fcc_t *c)
{
	int n = 0;
	for (;;) {
		if (c->nlost && c->lost[0].from <= c->cursor + 1) {
			uint64_t to = c->lost[0].to;
			memmove(&c->lost[0], &c->lost[1], (c->nlost - 1) * sizeof c->lost[0]);
			c->nlost--;
			if (to > c->cursor)
				n += skip_to(c, to);
			continue;
		}
		if (!c->npend || c->pend[0].seq > c->cursor + 1)
			return n;
		/* A copy: nothing may point into pend across the handler. */
		fcc_pend_t p = c->pend[0];
		memmove(c->pend, c->pend + 1, (c->npend - 1) * sizeof *c->pend);
		c->npend--;
		if (p.seq <= c->cursor)
			c->stats.duplicates++;
		else
			n += deliver_one(c, p.seq, p.sender_account, p.sender_device,
					 p.timestamp_ms, p.ct, p.len, p.via_sync);
		free(p.ct);
	}
}

/* Gives up on seqs cursor+1..upto that will not come (RESYNC, or a sync that
 * ended without them) and continues with whatever is buffered after them. */
static int skip_to(fcc_t *c, uint64_t upto)
{
	int n = 0;
	while (c->cursor < upto) {
		uint64_t end = upto;
		if (c->npend && c->pend[0].seq <= upto)
			end = c->pend[0].seq - 1;
		if (end > c->cursor) {
			LOGI("client_lost", "from=%llu to=%llu", (unsigned long long)c->cursor + 1,
			     (unsigned long long)end);
			c->stats.lost += end - c->cursor;
			if (c->h.on_lost)
				c->h.on_lost(c->harg, c->cursor + 1, end);
			c->cursor = end;
		}
		n += pending_drain(c);
	}
	return n;
}

/* RESYNC: from..to expired. A range that starts above cursor + 1 waits:
 * the seqs before it may still come. */
static int on_resync(fcc_t *c, uint64_t from, uint64_t to)
{
	if (to <= c->cursor)
		return 0;
	if (from <= c->cursor + 1)
		return skip_to(c, to);
	size_t i = 0;
	while (i < c->nlost && c->lost[i].from < from)
		i++;
	if (c->nlost == FCC_LOST_RANGES) {
		/* Full: the sync's last_seq accounting reports these instead. */
		LOGW("client_lost_ranges_full", "from=%llu to=%llu", (unsigned long long)from,
		     (unsigned long long)to);
		return 0;
	}
	memmove(&c->lost[i + 1], &c->lost[i], (c->nlost - i) * sizeof c->lost[0]);
	c->lost[i].from = from;
	c->lost[i].to = to;
	c->nlost++;
	return 0;
}

static int on_deliver(fcc_t *c, const wire_deliver_t *d, int via_sync)
{
	if (d->seq <= c->cursor) {
		c->stats.duplicates++;
		return 0;
	}
	if (d->seq != c->cursor + 1) {
		pending_add(c, d, via_sync);
		if (!c->syncing)
			c->need_sync = 1;
		return 0;
	}
	int n = deliver_one(c, d->seq, d->sender_account, d->sender_device, d->timestamp_ms,
			    d->ciphertext.ptr, d->ciphertext.len, via_sync);
	return n + pending_drain(c);
}

int fcc_dispatch(fcc_t *c)
{
	if (c->dispatching)
		return 0;
	c->dispatching = 1;
	int n = 0;
	while (c->qhead) {
		fcc_qitem_t *it = c->qhead;
		c->qhead = it->next;
		if (!c->qhead)
			c->qtail = NULL;
		c->qn--;
		c->qbytes -= it->len;
		wire_msg_t m;
		memset(&m, 0, sizeof m);
		if (wire_msg_decode(slice_make(it->data, it->len), &m) == 0) {
			if (m.hdr.type == WIRE_MSG_DELIVER)
				n += on_deliver(c, &m.u.deliver, m.hdr.req_id != 0);
			else if (m.hdr.type == WIRE_MSG_RESYNC)
				n += on_resync(c, m.u.resync.lost_from, m.u.resync.lost_to);
		}
		free(it);
	}
	c->dispatching = 0;
	return n;
}

/* ---- acknowledgements and prekeys --------------------------------------------------- */

int fcc_ack(fcc_t *c)
{
	int rc = fcc_cursor_save(c);
	if (rc < 0) {
		fcc_err_set(c, "cannot write %s/cursor: %s", c->dir, err_str(rc));
		return rc;
	}
	if (!c->ws || !c->authed || c->cursor <= c->acked)
		return 0;
	/* Request id 0: the server sends no answer. */
	wire_ack_t a = {.upto_seq = c->cursor};
	wire_buf_t b;
	wire_buf_init(&b, 64);
	rc = wire_ack_encode(&b, 0, &a);
	if (rc == 0)
		rc = wsc_send(c->ws, WSC_OP_BINARY, b.p, b.len);
	wire_buf_free(&b);
	if (rc < 0) {
		fcc_conn_lost(c, rc);
		return -ENOTCONN;
	}
	c->acked = c->cursor;
	c->ack_ms = c->tx_ms = fcc_now_ms();
	return 0;
}

int fcc_upload_prekeys(fcc_t *c, unsigned n, uint32_t *remaining)
{
	if (!c->ws || !c->authed) {
		fcc_err_set(c, "KEYS_UPLOAD: not connected and authenticated");
		return -ENOTCONN;
	}
	if (n == 0 || n > WIRE_MAX_OTPKS)
		return -EINVAL;
	e2e_prekey_t *pks = NULL;
	int rc = e2e_prekeys_generate(c->e2e, n, &pks);
	if (rc < 0) {
		fcc_err_set(c, "cannot generate prekeys: %s", err_str(rc));
		return rc;
	}
	wire_prekey_t *w = calloc(n, sizeof *w);
	if (!w) {
		free(pks);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		w[i].id = pks[i].id;
		w[i].key = slice_make(pks[i].pub, sizeof pks[i].pub);
	}
	wire_keys_upload_t ku = {.spk_id = 0, .otpks_out = w, .n_otpks_out = (uint16_t)n};
	wire_buf_reset(&c->out);
	wire_msg_t m;
	rc = wire_keys_upload_encode(&c->out, 0, &ku);
	if (rc == 0)
		rc = fcc_request(c, &c->out, &m, "KEYS_UPLOAD");
	free(w);
	free(pks);
	if (rc < 0)
		return rc;
	if (m.hdr.type != WIRE_MSG_KEYS_STATUS) {
		fcc_err_set(c, "KEYS_UPLOAD: unexpected answer %s", wire_type_name(m.hdr.type));
		return -EPROTO;
	}
	c->prekeys_low = 0;
	c->stats.prekey_uploads++;
	if (remaining)
		*remaining = m.u.keys_status.otpks_remaining;
	LOGI("client_prekeys_uploaded", "count=%u remaining=%u", n,
	     m.u.keys_status.otpks_remaining);
	return 0;
}

/* ---- sync and poll ----------------------------------------------------------------------- */

static int sync_round(fcc_t *c, wire_sync_done_t *done)
{
	wire_sync_t s = {.after_seq = c->cursor, .limit = FCC_SYNC_LIMIT};
	wire_buf_reset(&c->out);
	wire_msg_t m;
	int rc = wire_sync_encode(&c->out, 0, &s);
	if (rc == 0)
		rc = fcc_request(c, &c->out, &m, "SYNC");
	if (rc < 0)
		return rc;
	if (m.hdr.type != WIRE_MSG_SYNC_DONE) {
		fcc_err_set(c, "SYNC: unexpected answer %s", wire_type_name(m.hdr.type));
		return -EPROTO;
	}
	*done = m.u.sync_done;
	return 0;
}

static int sync_loop(fcc_t *c)
{
	int total = fcc_dispatch(c);
	uint64_t dropped = c->dropped;
	for (;;) {
		uint64_t after = c->cursor;
		wire_sync_done_t done;
		int rc = sync_round(c, &done);
		if (rc < 0)
			return rc;
		/* Every DELIVER of this SYNC came before its SYNC_DONE. */
		total += fcc_dispatch(c);
		if (c->dropped != dropped) {
			dropped = c->dropped; /* some were dropped at a cap: ask again */
			continue;
		}
		if (done.last_seq > c->cursor) /* sent but unusable (undecodable) */
			total += skip_to(c, done.last_seq);
		if (done.has_more) {
			if (c->cursor <= after) {
				fcc_err_set(c,
					    "SYNC: server reports more but sent nothing after %llu",
					    (unsigned long long)after);
				return -EPROTO;
			}
			continue;
		}
		/* The server has nothing between the cursor and what we buffered
		 * from live pushes: those seqs are gone. */
		if (c->npend && c->pend[0].seq > c->cursor + 1)
			total += skip_to(c, c->pend[0].seq - 1);
		return total;
	}
}

int fcc_sync(fcc_t *c)
{
	if (!c->ws || !c->authed) {
		fcc_err_set(c, "SYNC: not connected and authenticated");
		return -ENOTCONN;
	}
	if (c->dispatching || c->syncing) {
		c->need_sync = 1; /* runs once the current dispatch returns */
		return 0;
	}
	c->syncing = 1;
	int total = sync_loop(c);
	c->syncing = 0;
	if (total < 0)
		return total;
	c->need_sync = 0;
	int rc = fcc_ack(c);
	if (rc == 0 && c->prekeys_low)
		rc = fcc_upload_prekeys(c, FCC_PREKEY_BATCH, NULL);
	return rc < 0 ? rc : total;
}

/* Work that waits for a quiet moment: prekey refills and a pending sync. */
static int housekeeping(fcc_t *c)
{
	int n = 0;
	if (c->prekeys_low && c->ws && c->authed) {
		int rc = fcc_upload_prekeys(c, FCC_PREKEY_BATCH, NULL);
		if (rc < 0 && rc != -ENOTCONN && rc != -ETIMEDOUT && rc != -EINTR) {
			/* Refused: do not retry on every poll; the server says
			 * PREKEYS_LOW again after the next AUTH or claim. */
			c->prekeys_low = 0;
			LOGW("client_prekey_upload_failed", "err=\"%s\"", c->err);
		}
	}
	if (c->need_sync && c->ws && c->authed) {
		int rc = fcc_sync(c);
		if (rc < 0)
			return rc;
		n += rc;
	}
	return n;
}

/* Sends a WebSocket ping when we have been silent for a while, so that NAT
 * and proxy state along the path does not expire. */
static int keepalive(fcc_t *c)
{
	if (!c->ws || fcc_now_ms() - c->tx_ms < FCC_PING_IDLE_MS)
		return 0;
	int rc = wsc_ping(c->ws, slice_make(NULL, 0));
	if (rc < 0) {
		fcc_conn_lost(c, rc);
		return -ENOTCONN;
	}
	c->tx_ms = fcc_now_ms();
	return 0;
}

int fcc_poll(fcc_t *c, int timeout_ms)
{
	if (c->dispatching)
		return -EBUSY;
	int64_t deadline = timeout_ms < 0 ? -1 : fcc_now_ms() + timeout_ms;
	for (;;) {
		int n = fcc_dispatch(c);
		int h = housekeeping(c);
		if (h < 0)
			return h;
		n += h;
		/* ACKs are cumulative and batched: at most one per interval while
		 * messages keep coming, and at once when it goes quiet. */
		int due = c->cursor > c->acked || c->cursor != c->saved_cursor;
		if (due && (n == 0 || fcc_now_ms() - c->ack_ms >= FCC_ACK_INTERVAL_MS)) {
			int rc = fcc_ack(c);
			if (rc < 0 && rc != -ENOTCONN)
				return rc;
		}
		if (n > 0)
			return n;
		if (!c->ws)
			return -ENOTCONN;
		int rc = keepalive(c);
		if (rc < 0)
			return rc;
		int64_t wake = c->tx_ms + FCC_PING_IDLE_MS;
		if (deadline >= 0 && deadline < wake)
			wake = deadline;
		rc = fcc_recv_one(c, wake, UINT32_MAX, NULL);
		if (rc == -ETIMEDOUT) {
			if (deadline >= 0 && fcc_now_ms() >= deadline)
				return 0;
			continue; /* time to ping */
		}
		if (rc < 0)
			return rc;
		/* Take whatever else is already here into the same batch. */
		for (int i = 0; i < 64 && c->ws; i++)
			if (fcc_recv_one(c, 0, UINT32_MAX, NULL) < 0)
				break;
	}
}

/* ---- sending ------------------------------------------------------------------------------- */

typedef struct target {
	uint64_t account;
	uint32_t device;
} target_t;

/* Makes sure the device list of account is cached. */
static int devices_known(fcc_t *c, uint64_t account, uint32_t *dev, uint16_t *n)
{
	fcc_devs_t *d = fcc_devs_get(c, account, 0);
	if (!d || !d->have_devices) {
		int rc = fcc_devices(c, account, NULL);
		if (rc < 0)
			return rc;
		d = fcc_devs_get(c, account, 0);
		if (!d || !d->have_devices)
			return -EPROTO;
	}
	memcpy(dev, d->dev, d->n * sizeof *dev);
	*n = d->n;
	return 0;
}

/* Every device of the recipient and every other device of ours. */
static int targets_build(fcc_t *c, uint64_t to, target_t *t, unsigned *nt)
{
	uint32_t dev[FCC_MAX_DEVICES];
	uint16_t n;
	unsigned k = 0;
	int rc = devices_known(c, to, dev, &n);
	if (rc < 0)
		return rc;
	for (uint16_t i = 0; i < n; i++)
		if (!(to == c->account && dev[i] == c->device))
			t[k++] = (target_t){to, dev[i]};
	if (to != c->account) {
		rc = devices_known(c, c->account, dev, &n);
		if (rc < 0)
			return rc;
		for (uint16_t i = 0; i < n; i++)
			if (dev[i] != c->device)
				t[k++] = (target_t){c->account, dev[i]};
	}
	if (k == 0) {
		fcc_err_set(c, "account %llu has no device to send to", (unsigned long long)to);
		return -FC_ENOTFOUND;
	}
	*nt = k;
	return 0;
}

/* Builds a session with (account, device) from a freshly claimed bundle
 * unless one exists. -FC_ESTALE when the device is gone. */
static int session_ensure(fcc_t *c, uint64_t account, uint32_t device)
{
	int has = e2e_has_session(c->e2e, account, device);
	if (has < 0) {
		fcc_err_set(c, "session store: %s", err_str(has));
		return has;
	}
	if (has)
		return 0;
	wire_bundle_fetch_t bf = {.account = account, .device = device};
	wire_buf_reset(&c->out);
	wire_msg_t m;
	int rc = wire_bundle_fetch_encode(&c->out, 0, &bf);
	if (rc == 0)
		rc = fcc_request(c, &c->out, &m, "BUNDLE_FETCH");
	if (rc == -FC_ENOTFOUND)
		return -FC_ESTALE;
	if (rc < 0)
		return rc;
	const wire_bundle_t *b = &m.u.bundle;
	if (m.hdr.type != WIRE_MSG_BUNDLE || b->account != account || b->device != device) {
		fcc_err_set(c, "BUNDLE_FETCH: unexpected answer %s", wire_type_name(m.hdr.type));
		return -EPROTO;
	}
	e2e_bundle_t eb = {.registration_id = b->registration_id,
			   .identity_pub = b->identity_key,
			   .spk_pub = b->spk,
			   .spk_sig = b->spk_sig,
			   .spk_id = b->spk_id,
			   .otpk_id = b->otpk_id,
			   .otpk_pub = b->otpk};
	rc = e2e_session_init(c->e2e, account, device, &eb);
	if (rc == -FC_EAUTH)
		fcc_err_set(c,
			    "identity of device %llu/%u does not match the one trusted before, "
			    "or its signed prekey is not signed by it: refusing to send",
			    (unsigned long long)account, device);
	else if (rc < 0)
		fcc_err_set(c, "cannot build a session with %llu/%u: %s",
			    (unsigned long long)account, device, err_str(rc));
	return rc;
}

/* STALE_DEVICES: adopt the server's lists and drop sessions with devices
 * that left. */
static void apply_stale(fcc_t *c, const wire_stale_t *st)
{
	wire_iter_t it;
	wire_devset_t ds;
	wire_iter_init(&it, st->devsets);
	while (wire_devset_next(&it, &ds)) {
		uint32_t nd[FCC_MAX_DEVICES];
		uint16_t n = 0;
		wire_iter_t di;
		uint32_t d;
		wire_iter_init(&di, ds.devices);
		while (n < FCC_MAX_DEVICES && wire_u32_next(&di, &d))
			nd[n++] = d;
		/* Our own set lists our other devices; the cache keeps all. */
		if (ds.account == c->account && n < FCC_MAX_DEVICES)
			nd[n++] = c->device;
		fcc_devs_t *old = fcc_devs_get(c, ds.account, 0);
		for (uint16_t i = 0; old && old->have_devices && i < old->n; i++) {
			int kept = 0;
			for (uint16_t j = 0; j < n; j++)
				kept |= nd[j] == old->dev[i];
			if (!kept && !(ds.account == c->account && old->dev[i] == c->device) &&
			    e2e_session_delete(c->e2e, ds.account, old->dev[i]) < 0)
				LOGW("client_session_delete_failed", "device=%u", old->dev[i]);
		}
		fcc_devs_set(c, ds.account, nd, n);
		LOGI("client_stale_devices", "account=%llu devices=%u",
		     (unsigned long long)ds.account, n);
	}
}

/* Encrypts the text for every target into one SEND frame in b. */
static int encrypt_all(fcc_t *c, uint64_t to, uint64_t msg_id, slice_t text, const target_t *t,
		       unsigned nt, wire_buf_t *b)
{
	wire_envelope_t env[WIRE_MAX_ENVELOPES];
	uint8_t *cts[WIRE_MAX_ENVELOPES];
	unsigned made = 0;
	int rc = 0;
	for (; made < nt && rc == 0; made++) {
		/* The peer as the receiving device sees the conversation. */
		uint64_t peer = t[made].account == c->account ? to : c->account;
		uint8_t *pt = NULL;
		size_t ptn = 0, ctn = 0;
		cts[made] = NULL;
		rc = fcc_inner_encode(FCC_INNER_TEXT, peer, text, &pt, &ptn);
		if (rc == 0)
			rc = e2e_encrypt(c->e2e, t[made].account, t[made].device, pt, ptn,
					 &cts[made], &ctn);
		if (pt) {
			sodium_memzero(pt, ptn);
			free(pt);
		}
		env[made] = (wire_envelope_t){t[made].account, t[made].device,
					      slice_make(cts[made], ctn)};
		if (rc < 0)
			fcc_err_set(c, "cannot encrypt for %llu/%u: %s",
				    (unsigned long long)t[made].account, t[made].device,
				    err_str(rc));
	}
	if (rc == 0) {
		wire_send_t s = {.client_msg_id = msg_id,
				 .recipient = to,
				 .envelopes_out = env,
				 .n_envelopes_out = (uint16_t)nt};
		wire_buf_reset(b);
		rc = wire_send_encode(b, 0, &s);
		if (rc < 0)
			fcc_err_set(c, "message too large for one SEND to %u devices", nt);
	}
	for (unsigned i = 0; i < made; i++)
		free(cts[i]);
	return rc;
}

/* Prepares the SEND for the current device lists: sessions, then
 * ciphertexts. -FC_ESTALE asks the caller for another round. */
static int prepare(fcc_t *c, uint64_t to, uint64_t msg_id, slice_t text, wire_buf_t *b,
		   unsigned *nt)
{
	target_t t[2 * FCC_MAX_DEVICES];
	int rc = targets_build(c, to, t, nt);
	if (rc == 0 && *nt > WIRE_MAX_ENVELOPES) {
		fcc_err_set(c, "too many devices to address (%u)", *nt);
		rc = -FC_ELIMIT;
	}
	for (unsigned i = 0; rc == 0 && i < *nt; i++) {
		rc = session_ensure(c, t[i].account, t[i].device);
		if (rc == -FC_ESTALE) {
			fcc_devs_forget(c, t[i].account);
			fcc_err_set(c, "device %llu/%u disappeared",
				    (unsigned long long)t[i].account, t[i].device);
		}
	}
	if (rc == 0)
		rc = encrypt_all(c, to, msg_id, text, t, *nt, b);
	return rc;
}

/* Sends the frame in b until the server decides. Returns 0 (ACCEPTED),
 * 1 (STALE_DEVICES, applied), or a negative code. */
static int submit(fcc_t *c, wire_buf_t *b, uint64_t msg_id, fcc_sent_t *out)
{
	unsigned tries = 0, reconnects = 0;
	for (;;) {
		wire_msg_t m;
		int rc = fcc_request_once(c, b, &m, "SEND");
		if (rc == -ENOTCONN || rc == -ETIMEDOUT) {
			/* The same bytes again on a new connection: if the first
			 * copy was stored, idempotency answers ACCEPTED again. */
			if (++reconnects > FCC_SEND_RECONNECTS)
				return rc;
			rc = fcc_reconnect(c, 4 * c->timeout_ms);
			if (rc < 0)
				return rc;
			out->retries++;
			continue;
		}
		if (rc < 0)
			return rc;
		switch (m.hdr.type) {
		case WIRE_MSG_ACCEPTED:
			if (m.u.accepted.client_msg_id != msg_id) {
				fcc_err_set(c, "SEND: ACCEPTED names another message");
				return -EPROTO;
			}
			out->timestamp_ms = m.u.accepted.timestamp_ms;
			return 0;
		case WIRE_MSG_STALE_DEVICES:
			apply_stale(c, &m.u.stale);
			return 1;
		case WIRE_MSG_ERROR: {
			const wire_error_t *e = &m.u.error;
			if ((e->code == WIRE_ERR_RATE_LIMITED || e->code == WIRE_ERR_UNAVAILABLE) &&
			    tries < FCC_MAX_RETRIES) {
				uint32_t ms = fcc_retry_delay_ms(e->retry_after_ms, tries++);
				LOGI("client_send_retry", "code=%s delay_ms=%u",
				     wire_err_name(e->code), ms);
				rc = fcc_idle_wait(c, ms);
				if (rc < 0)
					return rc;
				out->retries++;
				continue;
			}
			return fcc_server_error(c, e, "SEND");
		}
		default:
			fcc_err_set(c, "SEND: unexpected answer %s", wire_type_name(m.hdr.type));
			return -EPROTO;
		}
	}
}

int fcc_send_text(fcc_t *c, uint64_t to, const char *text, size_t len, fcc_sent_t *out)
{
	fcc_sent_t dummy;
	if (!out)
		out = &dummy;
	memset(out, 0, sizeof *out);
	slice_t tx = slice_make(text, len);
	if (len > FCC_MAX_TEXT) {
		fcc_err_set(c, "message too long (%zu bytes, at most %u)", len, FCC_MAX_TEXT);
		return -FC_ETOOBIG;
	}
	if (!utf8_valid(tx.ptr, tx.len)) {
		fcc_err_set(c, "message is not valid UTF-8");
		return -FC_EUTF8;
	}
	if (!c->ws || !c->authed) {
		fcc_err_set(c, "SEND: not connected and authenticated");
		return -ENOTCONN;
	}
	uint64_t msg_id = 0;
	while (msg_id == 0)
		randombytes_buf(&msg_id, sizeof msg_id);
	out->client_msg_id = msg_id;
	wire_buf_t b;
	wire_buf_init(&b, WIRE_MAX_FRAME);
	int rc;
	unsigned round = 0, reconnects = 0;
	for (;;) {
		unsigned nt = 0;
		rc = prepare(c, to, msg_id, tx, &b, &nt);
		if ((rc == -ENOTCONN || rc == -ETIMEDOUT) && reconnects++ < FCC_SEND_RECONNECTS) {
			/* Lost while preparing: nothing was sent yet, so the
			 * preparation simply runs again on a new connection. */
			rc = fcc_reconnect(c, 4 * c->timeout_ms);
			if (rc < 0)
				break;
			out->retries++;
			continue;
		}
		if (rc == 0) {
			/* From here on only these bytes may go out under msg_id,
			 * until the server says STALE_DEVICES (nothing stored). */
			rc = submit(c, &b, msg_id, out);
			if (rc == 0)
				out->n_envelopes = nt;
			if (rc == 1) {
				out->stale_rounds++;
				rc = -FC_ESTALE;
			}
		}
		if (rc != -FC_ESTALE || ++round >= FCC_MAX_STALE_ROUNDS)
			break;
	}
	if (rc == -FC_ESTALE)
		fcc_err_set(c, "the device list of %llu kept changing; gave up after %u rounds",
			    (unsigned long long)to, FCC_MAX_STALE_ROUNDS);
	wire_buf_free(&b);
	return rc;
}
