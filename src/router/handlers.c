/*
 * Request handlers: accounts and devices (register, link, authenticate,
 * remove, usernames), the key directory (upload, bundle claim), and 1:1
 * messaging (send, ack, sync). Each handler validates, submits one store
 * operation and answers from its completion callback, which runs only after
 * the store made the operation durable.
 */
#include "router/router_int.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"

static void reply_ok(rt_req_t *q)
{
	router_t *r = q->r;
	if (q->req_id == 0) {
		/* Nothing to answer, but the gateway still counts the request
		 * as finished. */
		rt_send_bytes(r, q->gw, q->conn_id, NULL, 0, 1, 0);
		return;
	}
	rt_send_encoded(r, q->gw, q->conn_id, wire_ok_encode(&r->out, q->req_id), 1);
}

static void bad_request(router_t *r, bus_msg_t *m, uint32_t req_id, int rc)
{
	uint16_t code = wire_err_from_code(rc);
	metrics_err(E_PROTO_BAD_FRAME);
	LOGI("bad_request", "conn=%llu err=\"%s\"", (unsigned long long)m->conn_id, err_str(rc));
	rt_send_error(r, m->gw, m->conn_id, req_id, code, 0, rt_detail(rc));
}

/* Submits through `op`; on refusal answers with an error and frees q. */
#define SUBMIT(q, call)                        \
	do {                                   \
		int rc_ = (call);              \
		if (rc_ != 0)                  \
			rt_req_fail((q), rc_); \
	} while (0)

/* ---- accounts and devices ----------------------------------------------- */

static int collect_prekeys(rt_req_t *q, wire_list_t l, cold_prekey_t **out)
{
	cold_prekey_t *a = calloc(l.count ? l.count : 1, sizeof *a);
	if (!a)
		return -ENOMEM;
	wire_iter_t it;
	wire_prekey_t pk;
	size_t n = 0;
	wire_iter_init(&it, l);
	while (wire_prekey_next(&it, &pk)) {
		a[n].id = pk.id;
		a[n].key = pk.key;
		n++;
	}
	q->arr = a;
	*out = a;
	return (int)n;
}

/* After presence is recorded: the older connection of the same device, if
 * any, is closed (one live connection per device: the newer one wins). */
static void close_replaced(rt_req_t *q, const hot_presence_t *prev)
{
	if (prev && prev->found && (prev->gw != q->gw || prev->conn_id != q->conn_id)) {
		rt_send_close(q->r, prev->gw, prev->conn_id, 1008);
		LOGI("session_replaced", "account=%llu device=%u", (unsigned long long)q->aux,
		     q->aux_dev);
	}
}

/* Presence is recorded BEFORE the client hears REGISTERED/AUTH_OK: any
 * message committed after that moment is pushed live, and the client's
 * SYNC (sent after the answer) covers everything before it. */
static int bind_presence(rt_req_t *q, uint64_t account, uint32_t device, hot_presence_cb cb)
{
	q->aux = account;
	q->aux_dev = device;
	hot_dev_t d = {account, device};
	return hot_presence_set(q->r->hs, d, q->gw, q->conn_id, cb, q);
}

static void after_presence_registered(void *arg, int status, const hot_presence_t *prev)
{
	rt_req_t *q = arg;
	router_t *r = q->r;
	if (status != 0) {
		rt_req_fail(q, status);
		return;
	}
	close_replaced(q, prev);
	rt_send_authed(r, q->gw, q->conn_id, q->aux, q->aux_dev);
	wire_registered_t reg = {.account = q->aux, .device = q->aux_dev};
	rt_send_encoded(r, q->gw, q->conn_id, wire_registered_encode(&r->out, q->req_id, &reg), 1);
	metrics_add(M_REGISTRATIONS, 1);
	LOGI("device_registered", "account=%llu device=%u linked=%d", (unsigned long long)q->aux,
	     q->aux_dev, q->type == WIRE_MSG_LINK_DEVICE);
	rt_req_done(q);
}

static void after_registered(void *arg, int status, const cold_register_res_t *res)
{
	rt_req_t *q = arg;
	router_t *r = q->r;
	if (status == -FC_EEXIST && q->type == WIRE_MSG_REGISTER) {
		/* A random 64-bit account id collided; the client may retry. */
		status = -FC_EUNAVAIL;
	}
	if (status != 0) {
		LOGI("register_failed", "conn=%llu err=\"%s\"", (unsigned long long)q->conn_id,
		     err_str(status));
		rt_req_fail(q, status);
		return;
	}
	(void)r;
	int rc = bind_presence(q, res->account_id, res->device_id, after_presence_registered);
	if (rc != 0)
		rt_req_fail(q, rc);
}

static void do_register(rt_req_t *q, const uint8_t *auth_pub, const wire_keys_t *k,
			uint64_t account, int new_account)
{
	router_t *r = q->r;
	cold_prekey_t *pks;
	int n = collect_prekeys(q, k->otpks, &pks);
	if (n < 0) {
		rt_req_fail(q, n);
		return;
	}
	cold_register_t cr = {
		.account_id = account,
		.new_account = new_account,
		.max_devices = r->cfg.max_devices,
		.now_ms = rt_now_ms(),
		.registration_id = k->registration_id,
		.identity_key = k->identity_key,
		.spk_id = k->spk_id,
		.spk = k->spk,
		.spk_sig = k->spk_sig,
		.otpks = pks,
		.otpk_count = (size_t)n,
	};
	memcpy(cr.auth_pub, auth_pub, sizeof cr.auth_pub);
	SUBMIT(q, cold_device_register(r->cs, &cr, after_registered, q));
}

static int verify(const uint8_t *sig, const uint8_t *msg, size_t n, const uint8_t *pub)
{
	return crypto_sign_verify_detached(sig, msg, n, pub) == 0;
}

static void auth_failed(rt_req_t *q, const char *why)
{
	metrics_err(E_AUTH_FAILED);
	LOGI("auth_failed", "conn=%llu reason=%s", (unsigned long long)q->conn_id, why);
	/* The reason stays in the log: telling the client would confirm which
	 * devices exist to anyone who asks. */
	rt_send_error(q->r, q->gw, q->conn_id, q->req_id, WIRE_ERR_AUTH_FAILED, 0,
		      "authentication failed");
	rt_req_done(q);
}

static void h_register(rt_req_t *q)
{
	const wire_register_t *m = &q->msg.u.reg;
	uint8_t sm[WIRE_SIGMSG_MAX];
	size_t n = wire_register_sigmsg(sm, q->m->nonce, m->auth_pub);
	if (!q->r->verifier.check(&q->r->verifier, m->invite)) {
		metrics_err(E_AUTH_FAILED);
		LOGI("register_refused", "conn=%llu reason=invite", (unsigned long long)q->conn_id);
		rt_send_error(q->r, q->gw, q->conn_id, q->req_id, WIRE_ERR_BAD_INVITE, 0,
			      "invite not accepted");
		rt_req_done(q);
		return;
	}
	if (!verify(m->sig, sm, n, m->auth_pub)) {
		auth_failed(q, "bad_signature");
		return;
	}
	uint64_t account = 0;
	while (account == 0 || account > INT64_MAX)
		randombytes_buf(&account, sizeof account);
	do_register(q, m->auth_pub, &m->keys, account, 1);
}

static void after_link_taken(void *arg, int status, uint64_t account)
{
	rt_req_t *q = arg;
	if (status == -FC_ENOTFOUND) {
		auth_failed(q, "bad_link_code");
		return;
	}
	if (status != 0) {
		rt_req_fail(q, status);
		return;
	}
	const wire_link_device_t *m = &q->msg.u.link_device;
	do_register(q, m->auth_pub, &m->keys, account, 0);
}

static void h_link_device(rt_req_t *q)
{
	const wire_link_device_t *m = &q->msg.u.link_device;
	uint8_t sm[WIRE_SIGMSG_MAX];
	size_t n = wire_link_sigmsg(sm, q->m->nonce, m->auth_pub);
	if (!verify(m->sig, sm, n, m->auth_pub)) {
		auth_failed(q, "bad_signature");
		return;
	}
	int rc = hot_link_take(q->r->hs, m->code, after_link_taken, q);
	if (rc != 0)
		rt_req_fail(q, rc);
}

static void after_keys_status(void *arg, int status, const cold_keys_res_t *res)
{
	rt_req_t *q = arg;
	router_t *r = q->r;
	if (status == 0 && res->remaining < r->cfg.prekey_low_threshold) {
		wire_prekeys_low_t low = {.remaining = res->remaining};
		rt_send_encoded(r, q->gw, q->conn_id, wire_prekeys_low_encode(&r->out, 0, &low), 0);
	}
	rt_req_done(q);
}

static void after_presence_auth(void *arg, int status, const hot_presence_t *prev);

static void after_auth_fetch(void *arg, int status, const cold_fetch_res_t *res)
{
	rt_req_t *q = arg;
	router_t *r = q->r;
	if (status != 0) {
		rt_req_fail(q, status);
		return;
	}
	const wire_auth_t *m = &q->msg.u.auth;
	q->aux3 = res->head_seq; /* kept for AUTH_OK while presence is bound */
	q->aux2 = res->acked_seq;
	int rc = bind_presence(q, m->account, m->device, after_presence_auth);
	if (rc != 0)
		rt_req_fail(q, rc);
	(void)r;
}

static void after_presence_auth(void *arg, int status, const hot_presence_t *prev)
{
	rt_req_t *q = arg;
	router_t *r = q->r;
	if (status != 0) {
		rt_req_fail(q, status);
		return;
	}
	close_replaced(q, prev);
	const wire_auth_t *m = &q->msg.u.auth;
	rt_send_authed(r, q->gw, q->conn_id, m->account, m->device);
	wire_auth_ok_t ok = {.head_seq = q->aux3, .acked_seq = q->aux2};
	rt_send_encoded(r, q->gw, q->conn_id, wire_auth_ok_encode(&r->out, q->req_id, &ok), 1);
	metrics_add(M_AUTH_OK, 1);
	LOGD("auth_ok", "conn=%llu account=%llu device=%u", (unsigned long long)q->conn_id,
	     (unsigned long long)m->account, m->device);
	/* Tell the device now if its one-time prekey pool ran low while it was
	 * away: an upload of nothing reports the pool size. */
	cold_keys_t none = {.account_id = m->account, .device_id = m->device};
	if (cold_keys_upload(r->cs, &none, after_keys_status, q) != 0)
		rt_req_done(q);
}

static void after_auth_device(void *arg, int status, const cold_device_res_t *res)
{
	rt_req_t *q = arg;
	if (status == -FC_ENOTFOUND) {
		auth_failed(q, "unknown_device");
		return;
	}
	if (status != 0) {
		rt_req_fail(q, status);
		return;
	}
	const wire_auth_t *m = &q->msg.u.auth;
	uint8_t sm[WIRE_SIGMSG_MAX];
	size_t n = wire_auth_sigmsg(sm, q->m->nonce, m->account, m->device);
	if (!verify(m->sig, sm, n, res->auth_pub)) {
		auth_failed(q, "bad_signature");
		return;
	}
	/* Read the mailbox position (no entries) for AUTH_OK. */
	SUBMIT(q, cold_mailbox_fetch(q->r->cs, m->account, m->device, (uint64_t)INT64_MAX, 1,
				     after_auth_fetch, q));
}

static void h_auth(rt_req_t *q)
{
	const wire_auth_t *m = &q->msg.u.auth;
	if (!m->account || !m->device || m->account > INT64_MAX) {
		auth_failed(q, "unknown_device");
		return;
	}
	SUBMIT(q, cold_device_get(q->r->cs, m->account, m->device, after_auth_device, q));
}

static void after_link_put(void *arg, int status, uint64_t account)
{
	rt_req_t *q = arg;
	router_t *r = q->r;
	(void)account;
	if (status == -FC_ELIMIT) {
		rt_send_error(r, q->gw, q->conn_id, q->req_id, WIRE_ERR_RATE_LIMITED, 5000,
			      "too many pending link codes");
		rt_req_done(q);
		return;
	}
	if (status != 0) {
		rt_req_fail(q, status);
		return;
	}
	wire_link_code_t lc = {.code = slice_make(q->arr, RT_LINK_CODE_LEN),
			       .expires_in_s = r->cfg.link_code_ttl_s};
	rt_send_encoded(r, q->gw, q->conn_id, wire_link_code_encode(&r->out, q->req_id, &lc), 1);
	rt_req_done(q);
}

static void h_link_begin(rt_req_t *q)
{
	char *code = malloc(RT_LINK_CODE_LEN + 1);
	if (!code) {
		rt_req_fail(q, -ENOMEM);
		return;
	}
	q->arr = code;
	rt_link_code_make(code);
	int rc = hot_link_put(q->r->hs, slice_make(code, RT_LINK_CODE_LEN), q->account,
			      (uint64_t)q->r->cfg.link_code_ttl_s * 1000, after_link_put, q);
	if (rc != 0)
		rt_req_fail(q, rc);
}

/* The removed device's live connection, if any, is closed. */
static void after_removed_presence(void *arg, int status, const hot_presence_t *prev)
{
	rt_req_t *q = arg;
	reply_ok(q);
	if (status == 0 && prev->found)
		rt_send_close(q->r, prev->gw, prev->conn_id, 1008);
	rt_req_done(q);
}

static void after_removed(void *arg, int status, const cold_remove_res_t *res)
{
	rt_req_t *q = arg;
	router_t *r = q->r;
	if (status != 0) {
		rt_req_fail(q, status);
		return;
	}
	LOGI("device_removed", "account=%llu device=%u self=%d",
	     (unsigned long long)res->account_id, res->device_id, res->device_id == q->device);
	hot_dev_t d = {res->account_id, res->device_id};
	int rc = hot_presence_drop(r->hs, d, 0, 0, after_removed_presence, q);
	if (rc != 0) {
		reply_ok(q);
		rt_req_done(q);
	}
}

static void after_remove_check(void *arg, int status, const cold_devices_res_t *res)
{
	rt_req_t *q = arg;
	if (status != 0) {
		rt_req_fail(q, status);
		return;
	}
	uint32_t dev = q->msg.u.device_remove.device;
	int found = 0;
	for (size_t i = 0; i < res->count; i++)
		found |= res->device_ids[i] == dev;
	if (!found) {
		rt_req_fail(q, -FC_ENOTFOUND);
		return;
	}
	if (res->count == 1) {
		/* An account without devices could neither be reached nor
		 * recovered; removing the last device is refused. */
		rt_send_error(q->r, q->gw, q->conn_id, q->req_id, WIRE_ERR_LIMIT, 0,
			      "cannot remove the only device");
		rt_req_done(q);
		return;
	}
	SUBMIT(q, cold_device_remove(q->r->cs, q->account, dev, after_removed, q));
}

static void h_device_remove(rt_req_t *q)
{
	SUBMIT(q, cold_devices_list(q->r->cs, q->account, after_remove_check, q));
}

/* Finishes a request whose only positive answer is OK. */
static void finish_ok(rt_req_t *q, int status)
{
	if (status != 0) {
		rt_req_fail(q, status);
		return;
	}
	reply_ok(q);
	rt_req_done(q);
}

static void after_username_set(void *arg, int status, const cold_username_res_t *res)
{
	(void)res;
	finish_ok(arg, status);
}

static void h_username_set(rt_req_t *q)
{
	SUBMIT(q, cold_username_set(q->r->cs, q->account, q->msg.u.username_set.username,
				    after_username_set, q));
}

static void after_devices(void *arg, int status, const cold_devices_res_t *res)
{
	rt_req_t *q = arg;
	router_t *r = q->r;
	if (status != 0) {
		rt_req_fail(q, status);
		return;
	}
	wire_account_info_t ai = {.account = res->account_id,
				  .username = res->username,
				  .devices_out = res->device_ids,
				  .n_devices_out = (uint16_t)res->count};
	rt_send_encoded(r, q->gw, q->conn_id, wire_account_info_encode(&r->out, q->req_id, &ai), 1);
	rt_req_done(q);
}

static void after_resolve(void *arg, int status, const cold_username_res_t *res)
{
	rt_req_t *q = arg;
	if (status != 0) {
		rt_req_fail(q, status);
		return;
	}
	SUBMIT(q, cold_devices_list(q->r->cs, res->account_id, after_devices, q));
}

static void h_resolve(rt_req_t *q)
{
	SUBMIT(q, cold_username_resolve(q->r->cs, q->msg.u.resolve.username, after_resolve, q));
}

static void h_devices_get(rt_req_t *q)
{
	SUBMIT(q, cold_devices_list(q->r->cs, q->msg.u.devices_get.account, after_devices, q));
}

/* ---- key directory ---------------------------------------------------------- */

static void after_keys_upload(void *arg, int status, const cold_keys_res_t *res)
{
	rt_req_t *q = arg;
	router_t *r = q->r;
	if (status != 0) {
		rt_req_fail(q, status);
		return;
	}
	wire_keys_status_t ks = {.otpks_remaining = res->remaining};
	rt_send_encoded(r, q->gw, q->conn_id, wire_keys_status_encode(&r->out, q->req_id, &ks), 1);
	rt_req_done(q);
}

static void h_keys_upload(rt_req_t *q)
{
	const wire_keys_upload_t *m = &q->msg.u.keys_upload;
	cold_prekey_t *pks;
	int n = collect_prekeys(q, m->otpks, &pks);
	if (n < 0) {
		rt_req_fail(q, n);
		return;
	}
	cold_keys_t k = {.account_id = q->account,
			 .device_id = q->device,
			 .spk_id = m->spk_id,
			 .spk = m->spk,
			 .spk_sig = m->spk_sig,
			 .otpks = pks,
			 .otpk_count = (size_t)n};
	SUBMIT(q, cold_keys_upload(q->r->cs, &k, after_keys_upload, q));
}

static void after_owner_lookup(void *arg, int status, const hot_presence_t *res, size_t n)
{
	rt_req_t *q = arg;
	router_t *r = q->r;
	if (status == 0 && n == 1 && res[0].found) {
		wire_prekeys_low_t low = {.remaining = (uint32_t)q->aux2};
		rt_send_encoded(r, res[0].gw, res[0].conn_id,
				wire_prekeys_low_encode(&r->out, 0, &low), 0);
	}
	rt_req_done(q);
}

static void after_bundle(void *arg, int status, const cold_bundle_res_t *res)
{
	rt_req_t *q = arg;
	router_t *r = q->r;
	if (status != 0) {
		rt_req_fail(q, status);
		return;
	}
	wire_bundle_t b = {.account = res->account_id,
			   .device = res->device_id,
			   .registration_id = res->registration_id,
			   .identity_key = res->identity_key,
			   .spk_id = res->spk_id,
			   .spk = res->spk,
			   .spk_sig = res->spk_sig,
			   .otpk_id = res->otpk_id,
			   .otpk = res->otpk};
	rt_send_encoded(r, q->gw, q->conn_id, wire_bundle_encode(&r->out, q->req_id, &b), 1);
	if (res->otpk_id)
		metrics_add(M_PREKEYS_CLAIMED, 1);
	/* The owner learns at once when its pool runs low (if it is online;
	 * otherwise at its next authentication). */
	if (res->otpk_id && res->remaining < r->cfg.prekey_low_threshold) {
		q->aux2 = res->remaining;
		hot_dev_t d = {res->account_id, res->device_id};
		if (hot_presence_get(r->hs, &d, 1, after_owner_lookup, q) == 0)
			return;
	}
	rt_req_done(q);
}

static void after_bundle_rate(void *arg, int status, int allowed, uint32_t retry_ms)
{
	rt_req_t *q = arg;
	if (status != 0) {
		rt_req_fail(q, status);
		return;
	}
	if (!allowed) {
		metrics_err(E_RATE_LIMITED);
		rt_send_error(q->r, q->gw, q->conn_id, q->req_id, WIRE_ERR_RATE_LIMITED,
			      retry_ms ? retry_ms : 1, "too many bundle fetches");
		rt_req_done(q);
		return;
	}
	const wire_bundle_fetch_t *m = &q->msg.u.bundle_fetch;
	SUBMIT(q, cold_bundle_claim(q->r->cs, m->account, m->device, after_bundle, q));
}

/* Every bundle hands out one of the owner's one-time prekeys: fetching
 * without limit would drain other users' pools (their new sessions would
 * then start without one). The budget belongs to the requesting device, so
 * reconnecting does not refill it. */
static void h_bundle_fetch(rt_req_t *q)
{
	hot_dev_t me = {q->account, q->device};
	int rc = hot_rate_take(q->r->hs, me, HOT_RATE_BUNDLE, q->r->cfg.bundle_fetch_per_min, 60000,
			       after_bundle_rate, q);
	if (rc != 0)
		rt_req_fail(q, rc);
}

/* ---- messaging ------------------------------------------------------------------ */

/* Pushes the new entries to the recipients' live connections. The seqs are
 * kept in the request's entry array (the store's result dies with its
 * callback) while one batched presence lookup is in flight. */
typedef struct live_entry {
	cold_entry_t e;
	uint64_t seq;
} live_entry_t;

static void after_live_lookup(void *arg, int status, const hot_presence_t *pres, size_t n)
{
	rt_req_t *q = arg;
	router_t *r = q->r;
	const live_entry_t *le = q->arr;
	for (size_t i = 0; status == 0 && i < n; i++) {
		if (!pres[i].found)
			continue;
		wire_deliver_t d = {.seq = le[i].seq,
				    .sender_account = q->account,
				    .sender_device = q->device,
				    .timestamp_ms = q->aux2,
				    .ciphertext = le[i].e.ciphertext};
		if (wire_deliver_encode(&r->out, 0, &d) != 0) {
			wire_buf_reset(&r->out);
			continue;
		}
		rt_send_bytes(r, pres[i].gw, pres[i].conn_id, r->out.p, r->out.len, 0, q->t0_us);
		wire_buf_reset(&r->out);
		metrics_add(M_MSG_DELIVERED, 1);
	}
	free(q->arr2);
	q->arr2 = NULL;
	rt_req_done(q);
}

/* Takes over q (finishes it). */
static void deliver_live(rt_req_t *q, const cold_append_res_t *res, uint64_t ts)
{
	live_entry_t *le = q->arr;
	hot_dev_t *devs = calloc(res->count, sizeof *devs);
	if (!devs) {
		rt_req_done(q);
		return;
	}
	for (size_t i = 0; i < res->count; i++) {
		le[i].seq = res->seqs[i].seq;
		devs[i] = (hot_dev_t){res->seqs[i].account_id, res->seqs[i].device_id};
	}
	q->aux2 = ts;
	free(q->arr2); /* the store's entry array has served its purpose */
	q->arr2 = devs;
	if (hot_presence_get(q->r->hs, devs, res->count, after_live_lookup, q) != 0) {
		free(devs);
		q->arr2 = NULL;
		rt_req_done(q);
	}
}

static void after_append(void *arg, int status, const cold_append_res_t *res)
{
	rt_req_t *q = arg;
	router_t *r = q->r;
	const wire_send_t *m = &q->msg.u.send;
	if (status == -FC_ESTALE && res) {
		wire_devset_t sets[2] = {
			{.account = m->recipient,
			 .devices_out = res->stale_recipient_devices,
			 .n_devices_out = (uint16_t)res->stale_recipient_count},
			{.account = q->account,
			 .devices_out = res->stale_sender_devices,
			 .n_devices_out = (uint16_t)res->stale_sender_count},
		};
		wire_stale_t st = {.client_msg_id = m->client_msg_id,
				   .devsets_out = sets,
				   .n_devsets_out = m->recipient == q->account ? 1 : 2};
		rt_send_encoded(r, q->gw, q->conn_id, wire_stale_encode(&r->out, q->req_id, &st),
				1);
		rt_req_done(q);
		return;
	}
	if (status != 0) {
		rt_req_fail(q, status);
		return;
	}
	wire_accepted_t acc = {.client_msg_id = m->client_msg_id,
			       .timestamp_ms = res->timestamp_ms};
	rt_send_encoded(r, q->gw, q->conn_id, wire_accepted_encode(&r->out, q->req_id, &acc), 1);
	if (res->duplicate || res->count == 0) {
		metrics_add(M_MSG_DUPLICATE, res->duplicate ? 1 : 0);
		rt_req_done(q);
		return;
	}
	metrics_add(M_MSG_ACCEPTED, 1);
	deliver_live(q, res, res->timestamp_ms);
}

static void h_send(rt_req_t *q)
{
	router_t *r = q->r;
	const wire_send_t *m = &q->msg.u.send;
	if (m->envelopes.count == 0) {
		rt_send_error(r, q->gw, q->conn_id, q->req_id, WIRE_ERR_BAD_REQUEST, 0,
			      "no envelopes");
		rt_req_done(q);
		return;
	}
	/* Entries keep room for their seqs (filled for live delivery); the
	 * store gets a plain cold_entry_t array built alongside. */
	live_entry_t *le = calloc(m->envelopes.count, sizeof *le);
	cold_entry_t *ents = calloc(m->envelopes.count, sizeof *ents);
	if (!le || !ents) {
		free(le);
		free(ents);
		rt_req_fail(q, -ENOMEM);
		return;
	}
	q->arr = le;
	q->arr2 = ents;
	wire_iter_t it;
	wire_envelope_t e;
	size_t n = 0;
	wire_iter_init(&it, m->envelopes);
	while (wire_envelope_next(&it, &e)) {
		for (size_t i = 0; i < n; i++) {
			if (ents[i].account_id == e.account && ents[i].device_id == e.device) {
				/* Not STALE_DEVICES: the device list is right, the
				 * request is not; a retry by the book would loop. */
				rt_send_error(r, q->gw, q->conn_id, q->req_id, WIRE_ERR_BAD_REQUEST,
					      0, "duplicate envelope");
				rt_req_done(q);
				return;
			}
		}
		ents[n].account_id = e.account;
		ents[n].device_id = e.device;
		ents[n].ciphertext = e.ciphertext;
		le[n].e = ents[n];
		n++;
	}
	uint64_t now = rt_now_ms();
	cold_append_t ap = {.sender_account = q->account,
			    .sender_device = q->device,
			    .client_msg_id = m->client_msg_id,
			    .recipient_account = m->recipient,
			    .now_ms = now,
			    .expires_ms = now + r->cfg.retention_ms,
			    .entries = ents,
			    .count = n};
	/* The idempotency key binds the whole request body: a resend with a
	 * different body is a conflict, not a new message. */
	const wire_hdr_t *h = &q->msg.hdr;
	crypto_hash_sha256(ap.body_hash, q->m->data + WIRE_HDR_LEN, h->body_len);
	q->t0_us = uv_hrtime() / 1000;
	SUBMIT(q, cold_msg_append(r->cs, &ap, after_append, q));
}

static void after_ack(void *arg, int status, const cold_ack_res_t *res)
{
	(void)res;
	finish_ok(arg, status);
}

static void h_ack(rt_req_t *q)
{
	SUBMIT(q, cold_mailbox_ack(q->r->cs, q->account, q->device, q->msg.u.ack.upto_seq,
				   after_ack, q));
}

static void after_fetch(void *arg, int status, const cold_fetch_res_t *res)
{
	rt_req_t *q = arg;
	router_t *r = q->r;
	if (status != 0) {
		rt_req_fail(q, status);
		return;
	}
	/* Sequence numbers live in [1, 2^63): clamp as the store did. */
	uint64_t after = q->msg.u.sync.after_seq > INT64_MAX ? INT64_MAX : q->msg.u.sync.after_seq;
	/* Entries the device never acked that expired undelivered: say so
	 * explicitly instead of leaving a silent gap. */
	uint64_t from = (after > res->acked_seq ? after : res->acked_seq) + 1;
	if (res->expired_through >= from) {
		wire_resync_t rs = {.lost_from = from, .lost_to = res->expired_through};
		rt_send_encoded(r, q->gw, q->conn_id, wire_resync_encode(&r->out, q->req_id, &rs),
				0);
	}
	uint64_t last = after;
	/* A page never fills more than half of the connection's output cap, so
	 * a sync cannot get its own connection dropped as a slow reader; the
	 * client simply asks for the next page. */
	size_t budget = r->cfg.max_outbound_bytes / 2, used = 0;
	size_t sent = 0;
	for (size_t i = 0; i < res->count; i++) {
		const cold_mail_t *e = &res->entries[i];
		size_t need = WIRE_HDR_LEN + 40 + e->ciphertext.len;
		if (sent > 0 && used + need > budget)
			break;
		used += need;
		sent++;
		wire_deliver_t d = {.seq = e->seq,
				    .sender_account = e->sender_account,
				    .sender_device = e->sender_device,
				    .timestamp_ms = e->timestamp_ms,
				    .ciphertext = e->ciphertext};
		if (wire_deliver_encode(&r->out, q->req_id, &d) != 0) {
			wire_buf_reset(&r->out);
			continue;
		}
		rt_send_encoded(r, q->gw, q->conn_id, 0, 0);
		last = e->seq;
	}
	metrics_add(M_MSG_DELIVERED, (int64_t)sent);
	wire_sync_done_t sd = {.head_seq = res->head_seq,
			       .last_seq = last,
			       .has_more = (uint8_t)(res->has_more || sent < res->count ? 1 : 0)};
	rt_send_encoded(r, q->gw, q->conn_id, wire_sync_done_encode(&r->out, q->req_id, &sd), 1);
	rt_req_done(q);
}

static void h_sync(rt_req_t *q)
{
	const wire_sync_t *m = &q->msg.u.sync;
	uint64_t after = m->after_seq > INT64_MAX ? INT64_MAX : m->after_seq;
	SUBMIT(q, cold_mailbox_fetch(q->r->cs, q->account, q->device, after, m->limit, after_fetch,
				     q));
}

/* ---- dispatch ---------------------------------------------------------------------- */

typedef void (*handler_fn)(rt_req_t *q);

static handler_fn handler_for(uint8_t type)
{
	switch (type) {
	case WIRE_MSG_REGISTER:
		return h_register;
	case WIRE_MSG_AUTH:
		return h_auth;
	case WIRE_MSG_LINK_BEGIN:
		return h_link_begin;
	case WIRE_MSG_LINK_DEVICE:
		return h_link_device;
	case WIRE_MSG_DEVICE_REMOVE:
		return h_device_remove;
	case WIRE_MSG_USERNAME_SET:
		return h_username_set;
	case WIRE_MSG_RESOLVE:
		return h_resolve;
	case WIRE_MSG_DEVICES_GET:
		return h_devices_get;
	case WIRE_MSG_KEYS_UPLOAD:
		return h_keys_upload;
	case WIRE_MSG_BUNDLE_FETCH:
		return h_bundle_fetch;
	case WIRE_MSG_SEND:
		return h_send;
	case WIRE_MSG_ACK:
		return h_ack;
	case WIRE_MSG_SYNC:
		return h_sync;
	default:
		return NULL;
	}
}

void rt_dispatch(router_t *r, bus_msg_t *m)
{
	wire_msg_t msg;
	memset(&msg, 0, sizeof msg);
	int rc = wire_msg_decode(slice_make(m->data, m->len), &msg);
	handler_fn fn = rc == 0 ? handler_for(msg.hdr.type) : NULL;
	if (!fn) {
		bad_request(r, m, msg.hdr.req_id, rc ? rc : -FC_ETYPE);
		bus_msg_free(m);
		return;
	}
	rt_req_t *q = rt_req_new(r, m, msg.hdr.req_id, msg.hdr.type);
	if (!q) {
		rt_send_error(r, m->gw, m->conn_id, msg.hdr.req_id, WIRE_ERR_UNAVAILABLE, 1000,
			      "out of memory");
		bus_msg_free(m);
		return;
	}
	q->msg = msg;
	fn(q);
}
