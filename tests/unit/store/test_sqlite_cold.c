/*
 * Unit tests of the SQLite coldstore adapter through the coldstore interface.
 * Each test runs on a fresh database in its own temporary directory. Callbacks
 * fire only at cold_flush(), so every helper submits and then flushes; the
 * batch tests submit several operations before one flush.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "store/sqlite_cold.h"
#include "store/sqlite_cold_int.h"

#define MAXN 64

struct env {
	char dir[256];
	char sub[300];
	char path[320];
	coldstore_t *cs;
};

struct mail {
	uint64_t seq, sender_account, ts;
	uint32_t sender_device;
	char ct[64];
	size_t ct_len;
};

/* Everything any callback reports, copied out while the result is valid. */
struct cap {
	int called, status, order, has_res;
	uint64_t account;
	uint32_t device;
	uint8_t auth_pub[COLD_AUTH_PUB_LEN];
	uint32_t regid;
	size_t nids;
	uint32_t ids[MAXN];
	char username[COLD_USERNAME_MAX + 1];
	uint32_t remaining;
	uint32_t spk_id, otpk_id;
	uint8_t spk[COLD_SPK_MAX], otpk[COLD_OTPK_MAX];
	size_t spk_len, otpk_len, ik_len, sig_len;
	uint64_t ts;
	int dup;
	size_t n;
	cold_seq_t seqs[MAXN];
	size_t nr, ns;
	uint32_t rdev[MAXN], sdev[MAXN];
	uint64_t head, acked, expired;
	int has_more;
	struct mail mail[MAXN];
	uint64_t removed;
	int more;
	uint64_t accounts, devices, entries;
};

static int g_order;

static void hit(struct cap *c, int status, const void *res)
{
	c->called++;
	c->status = status;
	c->order = ++g_order;
	c->has_res = res != NULL;
}

static void on_register(void *arg, int st, const cold_register_res_t *r)
{
	struct cap *c = arg;
	hit(c, st, r);
	if (r) {
		c->account = r->account_id;
		c->device = r->device_id;
	}
}

static void on_remove(void *arg, int st, const cold_remove_res_t *r)
{
	struct cap *c = arg;
	hit(c, st, r);
	if (r) {
		c->account = r->account_id;
		c->device = r->device_id;
	}
}

static void on_device(void *arg, int st, const cold_device_res_t *r)
{
	struct cap *c = arg;
	hit(c, st, r);
	if (r) {
		memcpy(c->auth_pub, r->auth_pub, sizeof c->auth_pub);
		c->regid = r->registration_id;
	}
}

static void on_devices(void *arg, int st, const cold_devices_res_t *r)
{
	struct cap *c = arg;
	hit(c, st, r);
	if (!r)
		return;
	c->account = r->account_id;
	c->nids = r->count;
	for (size_t i = 0; i < r->count && i < MAXN; i++)
		c->ids[i] = r->device_ids[i];
	memcpy(c->username, r->username.ptr, r->username.len);
	c->username[r->username.len] = '\0';
}

static void on_username(void *arg, int st, const cold_username_res_t *r)
{
	struct cap *c = arg;
	hit(c, st, r);
	if (r)
		c->account = r->account_id;
}

static void on_keys(void *arg, int st, const cold_keys_res_t *r)
{
	struct cap *c = arg;
	hit(c, st, r);
	if (r)
		c->remaining = r->remaining;
}

static void on_bundle(void *arg, int st, const cold_bundle_res_t *r)
{
	struct cap *c = arg;
	hit(c, st, r);
	if (!r)
		return;
	c->account = r->account_id;
	c->device = r->device_id;
	c->regid = r->registration_id;
	c->ik_len = r->identity_key.len;
	c->spk_id = r->spk_id;
	c->spk_len = r->spk.len;
	memcpy(c->spk, r->spk.ptr, r->spk.len);
	c->sig_len = r->spk_sig.len;
	c->otpk_id = r->otpk_id;
	c->otpk_len = r->otpk.len;
	if (r->otpk.len)
		memcpy(c->otpk, r->otpk.ptr, r->otpk.len);
	c->remaining = r->remaining;
}

static void on_append(void *arg, int st, const cold_append_res_t *r)
{
	struct cap *c = arg;
	hit(c, st, r);
	if (!r)
		return;
	c->ts = r->timestamp_ms;
	c->dup = r->duplicate;
	c->n = r->count;
	for (size_t i = 0; i < r->count && i < MAXN; i++)
		c->seqs[i] = r->seqs[i];
	c->nr = r->stale_recipient_count;
	for (size_t i = 0; i < c->nr && i < MAXN; i++)
		c->rdev[i] = r->stale_recipient_devices[i];
	c->ns = r->stale_sender_count;
	for (size_t i = 0; i < c->ns && i < MAXN; i++)
		c->sdev[i] = r->stale_sender_devices[i];
}

static void on_fetch(void *arg, int st, const cold_fetch_res_t *r)
{
	struct cap *c = arg;
	hit(c, st, r);
	if (!r)
		return;
	c->head = r->head_seq;
	c->acked = r->acked_seq;
	c->expired = r->expired_through;
	c->n = r->count;
	c->has_more = r->has_more;
	for (size_t i = 0; i < r->count && i < MAXN; i++) {
		const cold_mail_t *m = &r->entries[i];
		struct mail *o = &c->mail[i];
		o->seq = m->seq;
		o->sender_account = m->sender_account;
		o->sender_device = m->sender_device;
		o->ts = m->timestamp_ms;
		o->ct_len = m->ciphertext.len;
		memcpy(o->ct, m->ciphertext.ptr,
		       m->ciphertext.len < sizeof o->ct ? m->ciphertext.len : sizeof o->ct);
	}
}

static void on_ack(void *arg, int st, const cold_ack_res_t *r)
{
	struct cap *c = arg;
	hit(c, st, r);
	if (r)
		c->acked = r->acked_seq;
}

static void on_expire(void *arg, int st, const cold_expire_res_t *r)
{
	struct cap *c = arg;
	hit(c, st, r);
	if (r) {
		c->removed = r->removed;
		c->more = r->more;
	}
}

static void on_stats(void *arg, int st, const cold_stats_res_t *r)
{
	struct cap *c = arg;
	hit(c, st, r);
	if (r) {
		c->accounts = r->accounts;
		c->devices = r->devices;
		c->entries = r->mailbox_entries;
	}
}

/* ---- fixtures --------------------------------------------------------- */

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	if (!e)
		return -1;
	const char *tmp = getenv("TMPDIR");
	snprintf(e->dir, sizeof e->dir, "%s/fourc-cold-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(e->dir)) {
		free(e);
		return -1;
	}
	/* A subdirectory that does not exist yet: open must create it. */
	snprintf(e->sub, sizeof e->sub, "%s/data", e->dir);
	snprintf(e->path, sizeof e->path, "%s/cold.db", e->sub);
	if (sqlite_cold_open(&e->cs, e->path) != 0) {
		free(e);
		return -1;
	}
	g_order = 0;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	char p[340];
	if (e->cs)
		cold_close(e->cs);
	unlink(e->path);
	snprintf(p, sizeof p, "%s-wal", e->path);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", e->path);
	unlink(p);
	rmdir(e->sub);
	rmdir(e->dir);
	free(e);
	return 0;
}

static void reopen(struct env *e)
{
	cold_close(e->cs);
	e->cs = NULL;
	assert_int_equal(sqlite_cold_open(&e->cs, e->path), 0);
	assert_non_null(e->cs);
}

/* ---- request builders ------------------------------------------------- */

static const uint8_t IK[33] = {1, 2, 3};
static const uint8_t SPK[32] = {4, 5, 6};
static const uint8_t SIG[64] = {7, 8, 9};

#define KEYS_MAX 1100
static struct keyset {
	cold_prekey_t k[KEYS_MAX];
	uint8_t b[KEYS_MAX][32];
} g_keys;

/* n one-time prekeys with ids first.. and bytes derived from (id, salt). */
static const cold_prekey_t *keys(uint32_t first, size_t n, uint8_t salt)
{
	assert_true(n <= KEYS_MAX);
	for (size_t i = 0; i < n; i++) {
		uint32_t id = first + (uint32_t)i;
		memset(g_keys.b[i], 0xa5, 32);
		memcpy(g_keys.b[i], &id, sizeof id);
		g_keys.b[i][4] = salt;
		g_keys.k[i] = (cold_prekey_t){id, slice_make(g_keys.b[i], 32)};
	}
	return g_keys.k;
}

static cold_register_t reg_req(uint64_t acc, int new_account, uint32_t max)
{
	cold_register_t r = {
		.account_id = acc,
		.new_account = new_account,
		.max_devices = max,
		.now_ms = 1000,
		.registration_id = 4242,
		.identity_key = slice_make(IK, sizeof IK),
		.spk_id = 1,
		.spk = slice_make(SPK, sizeof SPK),
		.spk_sig = slice_make(SIG, sizeof SIG),
	};
	memset(r.auth_pub, (int)(acc & 0xff), sizeof r.auth_pub);
	return r;
}

/* ---- synchronous helpers: submit, flush, return what the callback saw -- */

static struct cap reg_with(struct env *e, const cold_register_t *r)
{
	struct cap c = {0};
	assert_int_equal(cold_device_register(e->cs, r, on_register, &c), 0);
	assert_int_equal(c.called, 0); /* never before the flush */
	cold_flush(e->cs);
	assert_int_equal(c.called, 1);
	return c;
}

static struct cap reg(struct env *e, uint64_t acc, int new_account, uint32_t max)
{
	cold_register_t r = reg_req(acc, new_account, max);
	return reg_with(e, &r);
}

/* Registers and asserts the assigned device number. */
static void reg_ok(struct env *e, uint64_t acc, int new_account, uint32_t want_dev)
{
	struct cap c = reg(e, acc, new_account, 16);
	assert_int_equal(c.status, 0);
	assert_true(c.account == acc);
	assert_int_equal(c.device, want_dev);
}

static struct cap dev_remove(struct env *e, uint64_t acc, uint32_t dev)
{
	struct cap c = {0};
	assert_int_equal(cold_device_remove(e->cs, acc, dev, on_remove, &c), 0);
	cold_flush(e->cs);
	assert_int_equal(c.called, 1);
	return c;
}

static struct cap dev_get(struct env *e, uint64_t acc, uint32_t dev)
{
	struct cap c = {0};
	assert_int_equal(cold_device_get(e->cs, acc, dev, on_device, &c), 0);
	cold_flush(e->cs);
	assert_int_equal(c.called, 1);
	return c;
}

static struct cap dev_list(struct env *e, uint64_t acc)
{
	struct cap c = {0};
	assert_int_equal(cold_devices_list(e->cs, acc, on_devices, &c), 0);
	cold_flush(e->cs);
	assert_int_equal(c.called, 1);
	return c;
}

static struct cap uname_set(struct env *e, uint64_t acc, const char *name)
{
	struct cap c = {0};
	assert_int_equal(cold_username_set(e->cs, acc, slice_cstr(name), on_username, &c), 0);
	cold_flush(e->cs);
	assert_int_equal(c.called, 1);
	return c;
}

static struct cap uname_resolve(struct env *e, const char *name)
{
	struct cap c = {0};
	assert_int_equal(cold_username_resolve(e->cs, slice_cstr(name), on_username, &c), 0);
	cold_flush(e->cs);
	assert_int_equal(c.called, 1);
	return c;
}

static struct cap upload(struct env *e, uint64_t acc, uint32_t dev, uint32_t spk_id,
			 const cold_prekey_t *k, size_t n)
{
	static const uint8_t spk2[32] = {0x55, 0x66};
	cold_keys_t req = {
		.account_id = acc,
		.device_id = dev,
		.spk_id = spk_id,
		.spk = slice_make(spk2, sizeof spk2),
		.spk_sig = slice_make(SIG, 16),
		.otpks = k,
		.otpk_count = n,
	};
	struct cap c = {0};
	assert_int_equal(cold_keys_upload(e->cs, &req, on_keys, &c), 0);
	cold_flush(e->cs);
	assert_int_equal(c.called, 1);
	return c;
}

static struct cap claim(struct env *e, uint64_t acc, uint32_t dev)
{
	struct cap c = {0};
	assert_int_equal(cold_bundle_claim(e->cs, acc, dev, on_bundle, &c), 0);
	cold_flush(e->cs);
	assert_int_equal(c.called, 1);
	return c;
}

struct to {
	uint64_t account;
	uint32_t device;
};

static cold_append_t append_req(uint64_t sa, uint32_t sd, uint64_t cmid, uint8_t tag, uint64_t ra,
				uint64_t now, uint64_t exp, const struct to *to, size_t n,
				const char *text, cold_entry_t *ent)
{
	cold_append_t r = {
		.sender_account = sa,
		.sender_device = sd,
		.client_msg_id = cmid,
		.recipient_account = ra,
		.now_ms = now,
		.expires_ms = exp,
		.entries = ent,
		.count = n,
	};
	memset(r.body_hash, tag, sizeof r.body_hash);
	for (size_t i = 0; i < n; i++)
		ent[i] = (cold_entry_t){to[i].account, to[i].device, slice_cstr(text)};
	return r;
}

static struct cap append(struct env *e, uint64_t sa, uint32_t sd, uint64_t cmid, uint8_t tag,
			 uint64_t ra, uint64_t now, uint64_t exp, const struct to *to, size_t n,
			 const char *text)
{
	cold_entry_t ent[MAXN];
	cold_append_t r = append_req(sa, sd, cmid, tag, ra, now, exp, to, n, text, ent);
	struct cap c = {0};
	assert_int_equal(cold_msg_append(e->cs, &r, on_append, &c), 0);
	cold_flush(e->cs);
	assert_int_equal(c.called, 1);
	return c;
}

static struct cap fetch(struct env *e, uint64_t acc, uint32_t dev, uint64_t after, uint32_t limit)
{
	struct cap c = {0};
	assert_int_equal(cold_mailbox_fetch(e->cs, acc, dev, after, limit, on_fetch, &c), 0);
	cold_flush(e->cs);
	assert_int_equal(c.called, 1);
	return c;
}

static struct cap ack(struct env *e, uint64_t acc, uint32_t dev, uint64_t upto)
{
	struct cap c = {0};
	assert_int_equal(cold_mailbox_ack(e->cs, acc, dev, upto, on_ack, &c), 0);
	cold_flush(e->cs);
	assert_int_equal(c.called, 1);
	return c;
}

static struct cap expire(struct env *e, uint64_t now)
{
	struct cap c = {0};
	assert_int_equal(cold_expire(e->cs, now, on_expire, &c), 0);
	cold_flush(e->cs);
	assert_int_equal(c.called, 1);
	return c;
}

static struct cap stats(struct env *e)
{
	struct cap c = {0};
	assert_int_equal(cold_stats(e->cs, on_stats, &c), 0);
	cold_flush(e->cs);
	assert_int_equal(c.called, 1);
	assert_int_equal(c.status, 0);
	return c;
}

/* Accounts used throughout: ids are random u64 in production, including
 * values above INT64_MAX, which SQLite stores bit for bit. */
#define ALICE 0xfedcba9876543210ull
#define BOB 0x0123456789abcdefull
#define CAROL 77ull

/* ---- tests: framing ---------------------------------------------------- */

static void test_callbacks_only_at_flush_in_order(void **state)
{
	struct env *e = *state;
	cold_register_t r = reg_req(ALICE, 1, 5);
	struct cap a = {0}, b = {0}, c = {0};
	assert_int_equal(cold_device_register(e->cs, &r, on_register, &a), 0);
	assert_int_equal(cold_device_get(e->cs, ALICE, 1, on_device, &b), 0);
	assert_int_equal(cold_stats(e->cs, on_stats, &c), 0);
	assert_int_equal(a.called + b.called + c.called, 0);
	cold_flush(e->cs);
	assert_int_equal(a.called, 1);
	assert_int_equal(b.called, 1);
	assert_int_equal(c.called, 1);
	assert_true(a.order < b.order && b.order < c.order);
	/* The read in the same batch sees the batch's own write. */
	assert_int_equal(b.status, 0);
	assert_int_equal(b.regid, 4242);
	assert_int_equal(c.devices, 1);
	/* A flush with nothing queued is harmless. */
	cold_flush(e->cs);
	assert_int_equal(a.called, 1);
}

struct chain {
	struct env *e;
	struct cap first, second;
};

static void on_chain_first(void *arg, int st, const cold_register_res_t *r)
{
	struct chain *ch = arg;
	on_register(&ch->first, st, r);
	/* A nested flush is a no-op; the new operation joins the next batch. */
	assert_int_equal(cold_device_get(ch->e->cs, ALICE, 1, on_device, &ch->second), 0);
	cold_flush(ch->e->cs);
	assert_int_equal(ch->second.called, 0);
}

static void test_callback_may_submit(void **state)
{
	struct env *e = *state;
	struct chain ch = {.e = e};
	cold_register_t r = reg_req(ALICE, 1, 5);
	assert_int_equal(cold_device_register(e->cs, &r, on_chain_first, &ch), 0);
	cold_flush(e->cs);
	assert_int_equal(ch.first.called, 1);
	assert_int_equal(ch.second.called, 0);
	cold_flush(e->cs);
	assert_int_equal(ch.second.called, 1);
	assert_int_equal(ch.second.status, 0);
}

/* ---- tests: devices -------------------------------------------------- */

static void test_register_and_get(void **state)
{
	struct env *e = *state;
	reg_ok(e, ALICE, 1, 1);
	struct cap c = dev_get(e, ALICE, 1);
	assert_int_equal(c.status, 0);
	assert_int_equal(c.regid, 4242);
	for (int i = 0; i < COLD_AUTH_PUB_LEN; i++)
		assert_int_equal(c.auth_pub[i], ALICE & 0xff);
	reg_ok(e, ALICE, 0, 2);

	c = dev_get(e, ALICE, 3);
	assert_int_equal(c.status, -FC_ENOTFOUND);
	assert_false(c.has_res);
	assert_int_equal(dev_get(e, BOB, 1).status, -FC_ENOTFOUND);
}

static void test_register_errors(void **state)
{
	struct env *e = *state;
	reg_ok(e, ALICE, 1, 1);
	assert_int_equal(reg(e, ALICE, 1, 5).status, -FC_EEXIST);
	assert_int_equal(reg(e, BOB, 0, 5).status, -FC_ENOTFOUND);
	assert_int_equal(reg(e, 0, 1, 5).status, -EINVAL);

	cold_register_t r = reg_req(BOB, 1, 5);
	r.spk_id = 0;
	assert_int_equal(reg_with(e, &r).status, -EINVAL);
	uint8_t big[COLD_IDENTITY_KEY_MAX + 1] = {0};
	r = reg_req(BOB, 1, 5);
	r.identity_key = slice_make(big, sizeof big);
	assert_int_equal(reg_with(e, &r).status, -FC_ETOOBIG);
	r = reg_req(BOB, 1, 5);
	r.otpks = keys(0, 1, 0); /* key id 0 is reserved */
	r.otpk_count = 1;
	assert_int_equal(reg_with(e, &r).status, -EINVAL);
	r = reg_req(BOB, 1, 5);
	r.otpks = keys(1, COLD_OTPK_POOL_MAX + 1, 0);
	r.otpk_count = COLD_OTPK_POOL_MAX + 1;
	assert_int_equal(reg_with(e, &r).status, -FC_ELIMIT);

	/* None of the failures left an account behind. */
	struct cap s = stats(e);
	assert_int_equal(s.accounts, 1);
	assert_int_equal(s.devices, 1);
	assert_int_equal(dev_list(e, BOB).status, -FC_ENOTFOUND);
}

static void test_device_numbering_reuses_lowest_free(void **state)
{
	struct env *e = *state;
	reg_ok(e, ALICE, 1, 1);
	reg_ok(e, ALICE, 0, 2);
	reg_ok(e, ALICE, 0, 3);
	reg_ok(e, ALICE, 0, 4);
	struct cap c = dev_remove(e, ALICE, 2);
	assert_int_equal(c.status, 0);
	assert_int_equal(c.device, 2);
	assert_int_equal(dev_remove(e, ALICE, 2).status, -FC_ENOTFOUND);
	assert_int_equal(dev_remove(e, BOB, 1).status, -FC_ENOTFOUND);
	assert_int_equal(dev_remove(e, ALICE, 3).status, 0);
	reg_ok(e, ALICE, 0, 2);
	reg_ok(e, ALICE, 0, 3);
	reg_ok(e, ALICE, 0, 5);
	assert_int_equal(dev_remove(e, ALICE, 1).status, 0);
	reg_ok(e, ALICE, 0, 1);

	c = dev_list(e, ALICE);
	assert_int_equal(c.status, 0);
	assert_int_equal(c.nids, 5);
	for (uint32_t i = 0; i < 5; i++)
		assert_int_equal(c.ids[i], i + 1);
}

static void test_max_devices(void **state)
{
	struct env *e = *state;
	assert_int_equal(reg(e, ALICE, 1, 2).status, 0);
	assert_int_equal(reg(e, ALICE, 0, 2).device, 2);
	struct cap c = reg(e, ALICE, 0, 2);
	assert_int_equal(c.status, -FC_ELIMIT);
	assert_false(c.has_res);
	assert_int_equal(reg(e, ALICE, 0, 3).device, 3);
	/* Removing one frees a slot again. */
	assert_int_equal(dev_remove(e, ALICE, 1).status, 0);
	assert_int_equal(reg(e, ALICE, 0, 3).device, 1);
	assert_int_equal(reg(e, ALICE, 0, 3).status, -FC_ELIMIT);
	/* max 0 admits no device, not even the first one. */
	assert_int_equal(reg(e, BOB, 1, 0).status, -FC_ELIMIT);
	assert_int_equal(dev_list(e, BOB).status, -FC_ENOTFOUND);
}

static void test_device_remove_cascades(void **state)
{
	struct env *e = *state;
	cold_register_t r = reg_req(ALICE, 1, 5);
	r.otpks = keys(1, 10, 1);
	r.otpk_count = 10;
	assert_int_equal(reg_with(e, &r).status, 0);
	reg_ok(e, BOB, 1, 1);
	r = reg_req(BOB, 0, 5);
	r.otpks = keys(1, 10, 1);
	r.otpk_count = 10;
	assert_int_equal(reg_with(e, &r).device, 2);

	/* Alice/1 writes to Bob/1 and Bob/2; one of Bob/2's prekeys is claimed. */
	struct to to[] = {{BOB, 1}, {BOB, 2}};
	assert_int_equal(append(e, ALICE, 1, 1, 1, BOB, 10, 99, to, 2, "m").status, 0);
	assert_int_equal(append(e, ALICE, 1, 2, 1, BOB, 10, 99, to, 2, "m").status, 0);
	assert_int_equal(claim(e, BOB, 2).otpk_id, 1);
	assert_int_equal(stats(e).entries, 4);

	assert_int_equal(dev_remove(e, BOB, 2).status, 0);
	assert_int_equal(dev_get(e, BOB, 2).status, -FC_ENOTFOUND);
	assert_int_equal(fetch(e, BOB, 2, 0, 10).status, -FC_ENOTFOUND);
	assert_int_equal(ack(e, BOB, 2, 10).status, -FC_ENOTFOUND);
	assert_int_equal(claim(e, BOB, 2).status, -FC_ENOTFOUND);
	assert_int_equal(stats(e).entries, 2);

	/* The reused number starts with an empty mailbox and only the new
	 * device's keys; key id 1 is not blocked by the old claim. */
	r = reg_req(BOB, 0, 5);
	r.otpks = keys(1, 3, 2);
	r.otpk_count = 3;
	assert_int_equal(reg_with(e, &r).device, 2);
	struct cap f = fetch(e, BOB, 2, 0, 10);
	assert_int_equal(f.status, 0);
	assert_int_equal(f.head, 0);
	assert_int_equal(f.n, 0);
	struct cap b = claim(e, BOB, 2);
	assert_int_equal(b.otpk_id, 1);
	assert_int_equal(b.otpk[4], 2);
	assert_int_equal(b.remaining, 2);

	/* Removing a sender drops its idempotency records with it: the reused
	 * device number may send client_msg_id 1 again. */
	assert_int_equal(dev_remove(e, ALICE, 1).status, 0);
	reg_ok(e, ALICE, 0, 1);
	struct to to2[] = {{BOB, 1}, {BOB, 2}};
	struct cap a = append(e, ALICE, 1, 1, 9, BOB, 20, 99, to2, 2, "n");
	assert_int_equal(a.status, 0);
	assert_int_equal(a.dup, 0);
	assert_int_equal(a.seqs[0].seq, 3);
	assert_int_equal(a.seqs[1].seq, 1);
}

static void test_devices_list(void **state)
{
	struct env *e = *state;
	assert_int_equal(dev_list(e, ALICE).status, -FC_ENOTFOUND);
	reg_ok(e, ALICE, 1, 1);
	reg_ok(e, ALICE, 0, 2);
	reg_ok(e, ALICE, 0, 3);
	assert_int_equal(dev_remove(e, ALICE, 2).status, 0);
	struct cap c = dev_list(e, ALICE);
	assert_int_equal(c.status, 0);
	assert_true(c.account == ALICE);
	assert_int_equal(c.nids, 2);
	assert_int_equal(c.ids[0], 1);
	assert_int_equal(c.ids[1], 3);
	assert_string_equal(c.username, "");
	assert_int_equal(uname_set(e, ALICE, "Alice_1").status, 0);
	c = dev_list(e, ALICE);
	assert_string_equal(c.username, "Alice_1");

	/* An account whose last device left still exists, with no devices. */
	assert_int_equal(dev_remove(e, ALICE, 1).status, 0);
	assert_int_equal(dev_remove(e, ALICE, 3).status, 0);
	c = dev_list(e, ALICE);
	assert_int_equal(c.status, 0);
	assert_int_equal(c.nids, 0);
}

static void test_username(void **state)
{
	struct env *e = *state;
	reg_ok(e, ALICE, 1, 1);
	reg_ok(e, BOB, 1, 1);
	assert_int_equal(uname_set(e, CAROL, "carol").status, -FC_ENOTFOUND);
	assert_int_equal(uname_resolve(e, "alice").status, -FC_ENOTFOUND);

	struct cap c = uname_set(e, ALICE, "Alice");
	assert_int_equal(c.status, 0);
	assert_true(c.account == ALICE);
	assert_true(uname_resolve(e, "alice").account == ALICE);
	assert_true(uname_resolve(e, "ALICE").account == ALICE);
	assert_int_equal(uname_resolve(e, "alic").status, -FC_ENOTFOUND);
	assert_int_equal(uname_resolve(e, "").status, -FC_ENOTFOUND);

	assert_int_equal(uname_set(e, BOB, "aLiCe").status, -FC_EEXIST);
	assert_int_equal(uname_set(e, ALICE, "Alice").status, 0);
	assert_int_equal(uname_set(e, ALICE, "ALICE").status, 0); /* own name, new case */
	assert_string_equal(dev_list(e, ALICE).username, "ALICE");

	/* Renaming releases the old name; clearing releases it too. */
	assert_int_equal(uname_set(e, ALICE, "ally").status, 0);
	assert_int_equal(uname_resolve(e, "alice").status, -FC_ENOTFOUND);
	assert_int_equal(uname_set(e, BOB, "Alice").status, 0);
	assert_true(uname_resolve(e, "alice").account == BOB);
	assert_int_equal(uname_set(e, BOB, "").status, 0);
	assert_int_equal(uname_resolve(e, "alice").status, -FC_ENOTFOUND);
	assert_string_equal(dev_list(e, BOB).username, "");
	assert_int_equal(uname_set(e, BOB, "").status, 0); /* clearing twice */

	char big[COLD_USERNAME_MAX + 2];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(uname_set(e, BOB, big).status, -FC_ETOOBIG);
}

/* ---- tests: key directory ---------------------------------------------- */

static void test_keys_upload(void **state)
{
	struct env *e = *state;
	cold_register_t r = reg_req(ALICE, 1, 5);
	r.otpks = keys(1, 5, 1);
	r.otpk_count = 5;
	assert_int_equal(reg_with(e, &r).status, 0);
	assert_int_equal(upload(e, BOB, 1, 0, NULL, 0).status, -FC_ENOTFOUND);
	assert_int_equal(upload(e, ALICE, 2, 0, NULL, 0).status, -FC_ENOTFOUND);
	assert_int_equal(upload(e, ALICE, 1, 0, keys(0, 1, 1), 1).status, -EINVAL);

	/* Id 5 is replaced (still unclaimed), id 6 is new. */
	struct cap c = upload(e, ALICE, 1, 0, keys(5, 2, 2), 2);
	assert_int_equal(c.status, 0);
	assert_int_equal(c.remaining, 6);

	/* A claimed id is never resurrected by a re-upload. */
	c = claim(e, ALICE, 1);
	assert_int_equal(c.otpk_id, 1);
	assert_int_equal(c.otpk[4], 1);
	assert_int_equal(c.remaining, 5);
	assert_int_equal(upload(e, ALICE, 1, 0, keys(1, 1, 3), 1).remaining, 5);
	uint32_t want[] = {2, 3, 4, 5, 6};
	uint8_t salt[] = {1, 1, 1, 2, 2};
	for (int i = 0; i < 5; i++) {
		c = claim(e, ALICE, 1);
		assert_int_equal(c.otpk_id, want[i]);
		assert_int_equal(c.otpk[4], salt[i]);
		assert_int_equal(c.otpk_len, 32);
	}

	/* Signed prekey: a nonzero id replaces it, id 0 keeps it. */
	assert_int_equal(c.spk_id, 1);
	assert_int_equal(c.spk[0], 4);
	assert_int_equal(upload(e, ALICE, 1, 9, NULL, 0).status, 0);
	c = claim(e, ALICE, 1);
	assert_int_equal(c.spk_id, 9);
	assert_int_equal(c.spk[0], 0x55);
	assert_int_equal(c.sig_len, 16);
	assert_int_equal(upload(e, ALICE, 1, 0, NULL, 0).status, 0);
	assert_int_equal(claim(e, ALICE, 1).spk_id, 9);

	/* The pool is capped: filling to the cap works, one more key fails as
	 * a whole, replacing a key at the cap still works. */
	c = upload(e, ALICE, 1, 0, keys(100, COLD_OTPK_POOL_MAX, 4), COLD_OTPK_POOL_MAX);
	assert_int_equal(c.status, 0);
	assert_int_equal(c.remaining, COLD_OTPK_POOL_MAX);
	c = upload(e, ALICE, 1, 7, keys(5000, 1, 4), 1);
	assert_int_equal(c.status, -FC_ELIMIT);
	assert_int_equal(claim(e, ALICE, 1).spk_id, 9); /* spk change undone too */
	c = upload(e, ALICE, 1, 0, keys(200, 1, 5), 1);
	assert_int_equal(c.status, 0);
	assert_int_equal(c.remaining, COLD_OTPK_POOL_MAX - 1);
}

static void claim_batch(struct env *e, size_t n, uint32_t *ids)
{
	struct cap c[30];
	assert_true(n <= 30);
	memset(c, 0, sizeof c);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(cold_bundle_claim(e->cs, BOB, 1, on_bundle, &c[i]), 0);
	cold_flush(e->cs);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(c[i].status, 0);
		assert_int_equal(c[i].regid, 4242);
		assert_int_equal(c[i].ik_len, sizeof IK);
		ids[i] = c[i].otpk_id;
		if (ids[i]) {
			uint32_t in_key;
			memcpy(&in_key, c[i].otpk, sizeof in_key);
			assert_int_equal(in_key, ids[i]); /* the key of that id */
		} else {
			assert_int_equal(c[i].otpk_len, 0);
		}
	}
}

/* Counts distinct nonzero ids in ids[0..n) and asserts no repeats. */
static size_t distinct_nonzero(const uint32_t *ids, size_t n)
{
	uint8_t seen[64] = {0};
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (!ids[i])
			continue;
		assert_true(ids[i] <= 50);
		assert_int_equal(seen[ids[i]], 0);
		seen[ids[i]] = 1;
		k++;
	}
	return k;
}

static void test_prekey_claimed_exactly_once(void **state)
{
	struct env *e = *state;
	cold_register_t r = reg_req(BOB, 1, 5);
	r.otpks = keys(1, 50, 1);
	r.otpk_count = 50;
	assert_int_equal(reg_with(e, &r).status, 0);
	uint32_t ids[60];
	claim_batch(e, 20, ids);
	claim_batch(e, 20, ids + 20);
	claim_batch(e, 20, ids + 40);
	assert_int_equal(distinct_nonzero(ids, 60), 50);
	for (int i = 0; i < 50; i++)
		assert_int_not_equal(ids[i], 0);
	for (int i = 50; i < 60; i++)
		assert_int_equal(ids[i], 0);
}

static void test_prekey_claimed_exactly_once_across_restart(void **state)
{
	struct env *e = *state;
	cold_register_t r = reg_req(BOB, 1, 5);
	r.otpks = keys(1, 50, 1);
	r.otpk_count = 50;
	assert_int_equal(reg_with(e, &r).status, 0);
	uint32_t ids[60];
	claim_batch(e, 30, ids);
	reopen(e);
	/* A retried upload of all 50 ids after the restart does not bring the
	 * 30 claimed keys back. */
	assert_int_equal(upload(e, BOB, 1, 0, keys(1, 50, 1), 50).remaining, 20);
	claim_batch(e, 30, ids + 30);
	assert_int_equal(distinct_nonzero(ids, 60), 50);
	for (int i = 50; i < 60; i++)
		assert_int_equal(ids[i], 0);
	assert_int_equal(claim(e, BOB, 1).remaining, 0);
}

/* ---- tests: append ------------------------------------------------------- */

/* Alice has devices 1..3, Bob 1..2. */
static void two_accounts(struct env *e)
{
	reg_ok(e, ALICE, 1, 1);
	reg_ok(e, ALICE, 0, 2);
	reg_ok(e, ALICE, 0, 3);
	reg_ok(e, BOB, 1, 1);
	reg_ok(e, BOB, 0, 2);
}

static const struct to ALICE_TO_BOB[] = {{BOB, 1}, {BOB, 2}, {ALICE, 2}, {ALICE, 3}};

static void test_append_assigns_increasing_seqs(void **state)
{
	struct env *e = *state;
	two_accounts(e);
	uint64_t last[4] = {0};
	for (uint64_t m = 1; m <= 5; m++) {
		struct cap c = append(e, ALICE, 1, m, (uint8_t)m, BOB, 100 + m, 1000000,
				      ALICE_TO_BOB, 4, "hello");
		assert_int_equal(c.status, 0);
		assert_int_equal(c.dup, 0);
		assert_int_equal(c.ts, 100 + m);
		assert_int_equal(c.n, 4);
		for (int i = 0; i < 4; i++) {
			assert_true(c.seqs[i].account_id == ALICE_TO_BOB[i].account);
			assert_int_equal(c.seqs[i].device_id, ALICE_TO_BOB[i].device);
			assert_true(c.seqs[i].seq > last[i]);
			assert_int_equal(c.seqs[i].seq, m);
			last[i] = c.seqs[i].seq;
		}
	}
	/* A reply from Bob/2 addresses all of Alice's devices plus Bob/1, whose
	 * mailbox continues from its own head (6), independent of Alice's. */
	struct to bob_to_alice[] = {{ALICE, 1}, {ALICE, 2}, {ALICE, 3}, {BOB, 1}};
	struct cap c = append(e, BOB, 2, 1, 1, ALICE, 200, 1000000, bob_to_alice, 4, "re");
	assert_int_equal(c.status, 0);
	assert_int_equal(c.seqs[0].seq, 1);
	assert_int_equal(c.seqs[1].seq, 6);
	assert_int_equal(c.seqs[3].seq, 6);

	struct cap f = fetch(e, BOB, 1, 0, 100);
	assert_int_equal(f.n, 6);
	assert_int_equal(f.head, 6);
	for (size_t i = 0; i < f.n; i++)
		assert_int_equal(f.mail[i].seq, i + 1);
	assert_true(f.mail[0].sender_account == ALICE);
	assert_int_equal(f.mail[0].sender_device, 1);
	assert_int_equal(f.mail[0].ts, 101);
	assert_int_equal(f.mail[0].ct_len, 5);
	assert_memory_equal(f.mail[0].ct, "hello", 5);
	assert_true(f.mail[5].sender_account == BOB);
	assert_int_equal(f.mail[5].sender_device, 2);
	assert_memory_equal(f.mail[5].ct, "re", 2);
}

static void test_append_idempotent(void **state)
{
	struct env *e = *state;
	two_accounts(e);
	struct cap a = append(e, ALICE, 1, 77, 0xaa, BOB, 500, 1000000, ALICE_TO_BOB, 4, "x");
	assert_int_equal(a.status, 0);
	assert_int_equal(
		append(e, ALICE, 1, 78, 0xab, BOB, 501, 1000000, ALICE_TO_BOB, 4, "y").status, 0);
	uint64_t before = stats(e).entries;

	/* The retry arrives later: same timestamp and seqs, nothing written. */
	struct cap d = append(e, ALICE, 1, 77, 0xaa, BOB, 9999, 1000000, ALICE_TO_BOB, 4, "x");
	assert_int_equal(d.status, 0);
	assert_int_equal(d.dup, 1);
	assert_int_equal(d.ts, 500);
	assert_int_equal(d.n, 4);
	for (int i = 0; i < 4; i++) {
		assert_true(d.seqs[i].account_id == a.seqs[i].account_id);
		assert_int_equal(d.seqs[i].device_id, a.seqs[i].device_id);
		assert_int_equal(d.seqs[i].seq, a.seqs[i].seq);
	}
	assert_int_equal(stats(e).entries, before);
	assert_int_equal(fetch(e, BOB, 1, 0, 10).head, 2);

	/* Same key, different content. */
	struct cap x = append(e, ALICE, 1, 77, 0xbb, BOB, 600, 1000000, ALICE_TO_BOB, 4, "x");
	assert_int_equal(x.status, -FC_ECONFLICT);
	assert_int_equal(stats(e).entries, before);
	/* The key is per sending device: Alice/2 may use 77 too. */
	struct to from2[] = {{BOB, 1}, {BOB, 2}, {ALICE, 1}, {ALICE, 3}};
	struct cap o = append(e, ALICE, 2, 77, 0xbb, BOB, 600, 1000000, from2, 4, "x");
	assert_int_equal(o.status, 0);
	assert_int_equal(o.dup, 0);

	/* Retries are recognised across a restart. */
	reopen(e);
	d = append(e, ALICE, 1, 77, 0xaa, BOB, 9999, 1000000, ALICE_TO_BOB, 4, "x");
	assert_int_equal(d.dup, 1);
	assert_int_equal(d.seqs[0].seq, a.seqs[0].seq);
}

static void assert_stale_lists(const struct cap *c)
{
	assert_int_equal(c->status, -FC_ESTALE);
	assert_true(c->has_res);
	assert_int_equal(c->nr, 2);
	assert_int_equal(c->rdev[0], 1);
	assert_int_equal(c->rdev[1], 2);
	assert_int_equal(c->ns, 2);
	assert_int_equal(c->sdev[0], 2);
	assert_int_equal(c->sdev[1], 3);
	assert_int_equal(c->n, 0);
}

static void test_append_stale_device_set(void **state)
{
	struct env *e = *state;
	two_accounts(e);
	struct to missing[] = {{BOB, 1}, {ALICE, 2}, {ALICE, 3}};
	struct to extra[] = {{BOB, 1}, {BOB, 2}, {BOB, 3}, {ALICE, 2}, {ALICE, 3}};
	struct to dup[] = {{BOB, 1}, {BOB, 1}, {ALICE, 2}, {ALICE, 3}};
	struct to self[] = {{BOB, 1}, {BOB, 2}, {ALICE, 1}, {ALICE, 2}, {ALICE, 3}};
	struct to no_sync[] = {{BOB, 1}, {BOB, 2}};
	struct to stranger[] = {{BOB, 1}, {BOB, 2}, {ALICE, 2}, {CAROL, 3}};
	struct cap c;
	c = append(e, ALICE, 1, 1, 1, BOB, 10, 99, missing, 3, "m");
	assert_stale_lists(&c);
	c = append(e, ALICE, 1, 2, 1, BOB, 10, 99, extra, 5, "m");
	assert_stale_lists(&c);
	c = append(e, ALICE, 1, 3, 1, BOB, 10, 99, dup, 4, "m");
	assert_stale_lists(&c);
	c = append(e, ALICE, 1, 4, 1, BOB, 10, 99, self, 5, "m");
	assert_stale_lists(&c);
	c = append(e, ALICE, 1, 5, 1, BOB, 10, 99, no_sync, 2, "m");
	assert_stale_lists(&c);
	c = append(e, ALICE, 1, 6, 1, BOB, 10, 99, stranger, 4, "m");
	assert_stale_lists(&c);

	/* Nothing was written and no idempotency key was consumed. */
	assert_int_equal(stats(e).entries, 0);
	assert_int_equal(fetch(e, BOB, 1, 0, 10).head, 0);
	c = append(e, ALICE, 1, 1, 2, BOB, 10, 99, ALICE_TO_BOB, 4, "m");
	assert_int_equal(c.status, 0);
	assert_int_equal(c.dup, 0);
	assert_int_equal(c.seqs[0].seq, 1);

	/* After Bob adds a device the old list is stale. */
	reg_ok(e, BOB, 0, 3);
	c = append(e, ALICE, 1, 2, 2, BOB, 10, 99, ALICE_TO_BOB, 4, "m");
	assert_int_equal(c.status, -FC_ESTALE);
	assert_int_equal(c.nr, 3);
	assert_int_equal(c.rdev[2], 3);

	/* Unknown recipient, unknown sending device, bad input. */
	assert_int_equal(append(e, ALICE, 1, 9, 1, CAROL, 10, 99, NULL, 0, "m").status,
			 -FC_ENOTFOUND);
	assert_int_equal(append(e, ALICE, 7, 9, 1, BOB, 10, 99, NULL, 0, "m").status,
			 -FC_ENOTFOUND);
	assert_int_equal(append(e, ALICE, 1, 9, 1, BOB, 10, 99, ALICE_TO_BOB, 4, "").status,
			 -EINVAL);
	assert_int_equal(append(e, 0, 1, 9, 1, BOB, 10, 99, NULL, 0, "m").status, -EINVAL);
}

static void test_append_to_self(void **state)
{
	struct env *e = *state;
	two_accounts(e);
	struct to others[] = {{ALICE, 2}, {ALICE, 3}};
	struct to all[] = {{ALICE, 1}, {ALICE, 2}, {ALICE, 3}};
	struct cap c = append(e, ALICE, 1, 1, 1, ALICE, 10, 99, others, 2, "note");
	assert_int_equal(c.status, 0);
	assert_int_equal(c.n, 2);
	c = append(e, ALICE, 1, 2, 1, ALICE, 10, 99, all, 3, "note");
	assert_int_equal(c.status, -FC_ESTALE);
	assert_int_equal(c.nr, 2);
	assert_int_equal(c.rdev[0], 2);
	assert_int_equal(c.rdev[1], 3);
	assert_int_equal(c.ns, 0);

	/* A single-device account sending to itself addresses nobody. */
	reg_ok(e, CAROL, 1, 1);
	c = append(e, CAROL, 1, 1, 1, CAROL, 10, 99, NULL, 0, "x");
	assert_int_equal(c.status, 0);
	assert_int_equal(c.n, 0);
	c = append(e, CAROL, 1, 1, 1, CAROL, 11, 99, NULL, 0, "x");
	assert_int_equal(c.dup, 1);
	assert_int_equal(c.ts, 10);
}

/* Failed operations in a batch undo only their own writes. */
static void test_savepoint_isolation(void **state)
{
	struct env *e = *state;
	two_accounts(e);
	struct to missing[] = {{BOB, 1}, {ALICE, 2}, {ALICE, 3}};
	cold_entry_t e1[4], e2[4], e3[4];
	cold_append_t a1 = append_req(ALICE, 1, 1, 1, BOB, 10, 99, ALICE_TO_BOB, 4, "a", e1);
	cold_append_t a2 = append_req(ALICE, 1, 2, 1, BOB, 10, 99, missing, 3, "b", e2);
	cold_append_t a3 = append_req(ALICE, 1, 3, 1, BOB, 10, 99, ALICE_TO_BOB, 4, "c", e3);
	cold_register_t dupe = reg_req(BOB, 1, 5);
	cold_keys_t over = {.account_id = BOB,
			    .device_id = 1,
			    .otpks = keys(1, COLD_OTPK_POOL_MAX, 1),
			    .otpk_count = COLD_OTPK_POOL_MAX};
	struct cap c1 = {0}, c2 = {0}, c3 = {0}, c4 = {0}, c5 = {0}, c6 = {0};
	assert_int_equal(cold_msg_append(e->cs, &a1, on_append, &c1), 0);
	assert_int_equal(cold_msg_append(e->cs, &a2, on_append, &c2), 0);
	assert_int_equal(cold_device_register(e->cs, &dupe, on_register, &c3), 0);
	assert_int_equal(cold_keys_upload(e->cs, &over, on_keys, &c4), 0);
	over.otpk_count = 1; /* now fine: one key */
	over.otpks = keys(1, 1, 1);
	assert_int_equal(cold_keys_upload(e->cs, &over, on_keys, &c5), 0);
	assert_int_equal(cold_msg_append(e->cs, &a3, on_append, &c6), 0);
	cold_flush(e->cs);
	assert_int_equal(c1.status, 0);
	assert_int_equal(c2.status, -FC_ESTALE);
	assert_int_equal(c3.status, -FC_EEXIST);
	assert_int_equal(c4.status, 0); /* 1000 fits exactly */
	assert_int_equal(c4.remaining, COLD_OTPK_POOL_MAX);
	assert_int_equal(c5.status, 0); /* id 1 replaced: still 1000 */
	assert_int_equal(c5.remaining, COLD_OTPK_POOL_MAX);
	assert_int_equal(c6.status, 0);
	assert_int_equal(c1.seqs[0].seq, 1);
	assert_int_equal(c6.seqs[0].seq, 2); /* the stale append took no seq */

	/* One key over the cap fails alone, between two successes. */
	cold_keys_t more = {
		.account_id = BOB, .device_id = 1, .otpks = keys(5000, 1, 1), .otpk_count = 1};
	cold_append_t a4 = append_req(ALICE, 1, 4, 1, BOB, 10, 99, ALICE_TO_BOB, 4, "d", e1);
	struct cap d1 = {0}, d2 = {0}, d3 = {0};
	assert_int_equal(cold_keys_upload(e->cs, &more, on_keys, &d1), 0);
	assert_int_equal(cold_msg_append(e->cs, &a4, on_append, &d2), 0);
	assert_int_equal(cold_bundle_claim(e->cs, BOB, 1, on_bundle, &d3), 0);
	cold_flush(e->cs);
	assert_int_equal(d1.status, -FC_ELIMIT);
	assert_int_equal(d2.status, 0);
	assert_int_equal(d2.seqs[0].seq, 3);
	assert_int_equal(d3.remaining, COLD_OTPK_POOL_MAX - 1);
	assert_int_equal(fetch(e, BOB, 1, 0, 10).n, 3);
}

/* ---- tests: fetch, ack, expiry ----------------------------------------- */

/* Alice/1 (her only device) sends n messages to Carol/1 (hers only). */
static void fill_mailbox(struct env *e, int n, uint64_t expires)
{
	reg_ok(e, ALICE, 1, 1);
	reg_ok(e, CAROL, 1, 1);
	struct to to[] = {{CAROL, 1}};
	struct cap c[64];
	cold_entry_t ent[64];
	char text[64][16];
	assert_true(n <= 64);
	memset(c, 0, sizeof c);
	for (int i = 0; i < n; i++) {
		snprintf(text[i], sizeof text[i], "msg-%d", i + 1);
		cold_append_t r = append_req(ALICE, 1, (uint64_t)i + 1, 1, CAROL,
					     1000 + (uint64_t)i, expires, to, 1, text[i], &ent[i]);
		assert_int_equal(cold_msg_append(e->cs, &r, on_append, &c[i]), 0);
	}
	cold_flush(e->cs); /* one batch, one commit */
	for (int i = 0; i < n; i++) {
		assert_int_equal(c[i].status, 0);
		assert_int_equal(c[i].seqs[0].seq, (uint64_t)i + 1);
	}
}

static void test_fetch_paging(void **state)
{
	struct env *e = *state;
	fill_mailbox(e, 40, 1000000);
	struct cap f = fetch(e, CAROL, 1, 10, 24);
	assert_int_equal(f.status, 0);
	assert_int_equal(f.n, 24);
	assert_int_equal(f.has_more, 1);
	assert_int_equal(f.head, 40);
	assert_int_equal(f.acked, 0);
	assert_int_equal(f.expired, 0);
	for (int i = 0; i < 24; i++) {
		char want[16];
		snprintf(want, sizeof want, "msg-%d", 11 + i);
		assert_int_equal(f.mail[i].seq, 11 + i);
		assert_int_equal(f.mail[i].ts, 1000 + 10 + i);
		assert_int_equal(f.mail[i].ct_len, strlen(want));
		assert_memory_equal(f.mail[i].ct, want, strlen(want));
	}
	f = fetch(e, CAROL, 1, 34, 24);
	assert_int_equal(f.n, 6);
	assert_int_equal(f.has_more, 0);
	assert_int_equal(f.mail[0].seq, 35);
	assert_int_equal(f.mail[5].seq, 40);

	f = fetch(e, CAROL, 1, 30, 10); /* exactly the rest */
	assert_int_equal(f.n, 10);
	assert_int_equal(f.has_more, 0);
	f = fetch(e, CAROL, 1, 40, 10);
	assert_int_equal(f.n, 0);
	assert_int_equal(f.has_more, 0);
	f = fetch(e, CAROL, 1, 0, 0);
	assert_int_equal(f.n, 0);
	assert_int_equal(f.has_more, 1);
	f = fetch(e, CAROL, 1, 0, 1000000); /* limit is capped, not refused */
	assert_int_equal(f.n, 40);
	f = fetch(e, CAROL, 1, UINT64_MAX, 10);
	assert_int_equal(f.n, 0);
	assert_int_equal(fetch(e, CAROL, 2, 0, 10).status, -FC_ENOTFOUND);
}

static void test_ack_cumulative(void **state)
{
	struct env *e = *state;
	fill_mailbox(e, 40, 1000000);
	struct cap a = ack(e, CAROL, 1, 5);
	assert_int_equal(a.status, 0);
	assert_int_equal(a.acked, 5);
	struct cap f = fetch(e, CAROL, 1, 0, 100);
	assert_int_equal(f.acked, 5);
	assert_int_equal(f.n, 35);
	assert_int_equal(f.mail[0].seq, 6);
	assert_int_equal(stats(e).entries, 35);

	assert_int_equal(ack(e, CAROL, 1, 3).acked, 5); /* never goes back */
	assert_int_equal(ack(e, CAROL, 1, 5).acked, 5);
	assert_int_equal(ack(e, CAROL, 1, 100).acked, 40); /* capped at head */
	assert_int_equal(stats(e).entries, 0);
	f = fetch(e, CAROL, 1, 0, 100);
	assert_int_equal(f.n, 0);
	assert_int_equal(f.head, 40);
	assert_int_equal(f.acked, 40);

	/* Sequence numbers keep growing after the mailbox emptied. */
	struct to to[] = {{CAROL, 1}};
	assert_int_equal(append(e, ALICE, 1, 100, 1, CAROL, 5, 1000000, to, 1, "z").seqs[0].seq,
			 41);
	f = fetch(e, CAROL, 1, 0, 100);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.mail[0].seq, 41);
	assert_int_equal(ack(e, CAROL, 2, 1).status, -FC_ENOTFOUND);
	assert_int_equal(ack(e, BOB, 1, 1).status, -FC_ENOTFOUND);
}

static void test_expire(void **state)
{
	struct env *e = *state;
	reg_ok(e, ALICE, 1, 1);
	reg_ok(e, CAROL, 1, 1);
	struct to to[] = {{CAROL, 1}};
	for (uint64_t i = 1; i <= 5; i++)
		assert_int_equal(
			append(e, ALICE, 1, i, 1, CAROL, 100, i <= 3 ? 1000 : 5000, to, 1, "e")
				.status,
			0);
	struct cap x = expire(e, 999);
	assert_int_equal(x.status, 0);
	assert_int_equal(x.removed, 0);
	x = expire(e, 1000);
	assert_int_equal(x.removed, 3);
	assert_int_equal(x.more, 0);
	struct cap f = fetch(e, CAROL, 1, 0, 10);
	assert_int_equal(f.expired, 3);
	assert_int_equal(f.acked, 0);
	assert_int_equal(f.n, 2);
	assert_int_equal(f.mail[0].seq, 4);
	assert_int_equal(expire(e, 4999).removed, 0);
	assert_int_equal(expire(e, 5000).removed, 2);
	f = fetch(e, CAROL, 1, 0, 10);
	assert_int_equal(f.expired, 5);
	assert_int_equal(f.head, 5);
	assert_int_equal(f.n, 0);

	/* Idempotency records stay for the retention period, then go. */
	uint64_t late = 100 + COLD_IDEM_RETENTION_MS;
	assert_int_equal(expire(e, late).status, 0);
	assert_int_equal(append(e, ALICE, 1, 1, 2, CAROL, 100, 1, to, 1, "e").status,
			 -FC_ECONFLICT);
	assert_int_equal(expire(e, late + 1).status, 0);
	struct cap a = append(e, ALICE, 1, 1, 2, CAROL, late + 1, UINT64_MAX, to, 1, "e");
	assert_int_equal(a.status, 0);
	assert_int_equal(a.dup, 0);
	assert_int_equal(a.seqs[0].seq, 6);
	/* "Never" (UINT64_MAX) does not wrap into the past. */
	assert_int_equal(expire(e, late + 2).removed, 0);
}

static void test_expire_is_batched(void **state)
{
	struct env *e = *state;
	reg_ok(e, ALICE, 1, 1);
	reg_ok(e, CAROL, 1, 1);
	struct to to[] = {{CAROL, 1}};
	const size_t n = COLD_EXPIRE_BATCH + 4;
	struct cap *c = calloc(n, sizeof *c);
	assert_non_null(c);
	for (size_t i = 0; i < n; i++) {
		cold_entry_t ent[1];
		cold_append_t r = append_req(ALICE, 1, i + 1, 1, CAROL, 10, 20, to, 1, "b", ent);
		assert_int_equal(cold_msg_append(e->cs, &r, on_append, &c[i]), 0);
	}
	cold_flush(e->cs);
	assert_int_equal(c[n - 1].status, 0);
	assert_int_equal(c[n - 1].seqs[0].seq, n);
	free(c);
	struct cap x = expire(e, 20);
	assert_int_equal(x.removed, COLD_EXPIRE_BATCH);
	assert_int_equal(x.more, 1);
	x = expire(e, 20);
	assert_int_equal(x.removed, 4);
	assert_int_equal(x.more, 0);
	assert_int_equal(fetch(e, CAROL, 1, 0, 10).expired, n);
	assert_int_equal(stats(e).entries, 0);
}

static void test_claimed_markers_expire(void **state)
{
	struct env *e = *state;
	cold_register_t r = reg_req(BOB, 1, 5);
	r.otpks = keys(1, 2, 1);
	r.otpk_count = 2;
	assert_int_equal(reg_with(e, &r).status, 0);
	assert_int_equal(claim(e, BOB, 1).otpk_id, 1);
	assert_int_equal(upload(e, BOB, 1, 0, keys(1, 1, 1), 1).remaining, 1);
	/* Far in the future every marker is past retention: a client that
	 * reuses a key id after that long is uploading a new key. */
	assert_int_equal(expire(e, UINT64_MAX / 2).status, 0);
	assert_int_equal(upload(e, BOB, 1, 0, keys(1, 1, 1), 1).remaining, 2);
}

/* ---- tests: durability and failure -------------------------------------- */

static void test_commit_failure_fails_whole_batch(void **state)
{
	struct env *e = *state;
	reg_ok(e, ALICE, 1, 1);
	struct cap a = {0}, b = {0}, c = {0};
	cold_register_t r = reg_req(BOB, 1, 5);
	assert_int_equal(cold_device_register(e->cs, &r, on_register, &a), 0);
	assert_int_equal(cold_device_get(e->cs, ALICE, 1, on_device, &b), 0);
	/* Make COMMIT itself fail: a deferred foreign-key violation is only
	 * checked at commit time. */
	struct sqlite_cold *sc = sc_from(e->cs);
	assert_int_equal(
		sqlite3_exec(sc->db,
			     "PRAGMA defer_foreign_keys = ON;"
			     "INSERT INTO mailbox (account_id, device_id) VALUES (999, 9);",
			     NULL, NULL, NULL),
		SQLITE_OK);
	assert_int_equal(cold_username_set(e->cs, ALICE, SLICE_LIT("al"), on_username, &c), 0);
	cold_flush(e->cs);
	assert_int_equal(a.called, 1);
	assert_int_equal(a.status, -FC_ESTORE);
	assert_false(a.has_res);
	assert_int_equal(b.called, 1);
	assert_int_equal(b.status, -FC_ESTORE);
	assert_int_equal(c.called, 1);
	assert_int_equal(c.status, -FC_ESTORE);

	/* Nothing of the batch happened, and the store keeps working. */
	assert_int_equal(dev_list(e, BOB).status, -FC_ENOTFOUND);
	assert_int_equal(uname_resolve(e, "al").status, -FC_ENOTFOUND);
	struct cap s = stats(e);
	assert_int_equal(s.accounts, 1);
	reg_ok(e, BOB, 1, 1);
	assert_int_equal(dev_get(e, ALICE, 1).status, 0);
}

static void test_durable_across_reopen(void **state)
{
	struct env *e = *state;
	two_accounts(e);
	cold_register_t r = reg_req(CAROL, 1, 5);
	r.otpks = keys(1, 4, 1);
	r.otpk_count = 4;
	assert_int_equal(reg_with(e, &r).status, 0);
	assert_int_equal(uname_set(e, BOB, "Bobby").status, 0);
	for (uint64_t m = 1; m <= 3; m++)
		assert_int_equal(
			append(e, ALICE, 1, m, 1, BOB, 50 + m, 1000000, ALICE_TO_BOB, 4, "d")
				.status,
			0);
	assert_int_equal(ack(e, BOB, 1, 2).acked, 2);
	assert_int_equal(claim(e, CAROL, 1).otpk_id, 1);
	assert_int_equal(dev_remove(e, ALICE, 3).status, 0);

	/* Submitted but not flushed: close flushes, so this is durable too. */
	struct cap late = {0};
	assert_int_equal(cold_mailbox_ack(e->cs, BOB, 2, 1, on_ack, &late), 0);
	reopen(e);
	assert_int_equal(late.called, 1);
	assert_int_equal(late.status, 0);

	struct cap c = dev_list(e, ALICE);
	assert_int_equal(c.nids, 2);
	assert_int_equal(c.ids[1], 2);
	assert_true(uname_resolve(e, "bobby").account == BOB);
	struct cap f = fetch(e, BOB, 1, 0, 10);
	assert_int_equal(f.head, 3);
	assert_int_equal(f.acked, 2);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.mail[0].seq, 3);
	assert_int_equal(f.mail[0].ts, 53);
	f = fetch(e, BOB, 2, 0, 10);
	assert_int_equal(f.acked, 1);
	assert_int_equal(f.n, 2);
	struct cap b = claim(e, CAROL, 1);
	assert_int_equal(b.otpk_id, 2);
	assert_int_equal(b.remaining, 2);
	struct cap s = stats(e);
	assert_int_equal(s.accounts, 3);
	assert_int_equal(s.devices, 5);
	assert_int_equal(s.entries, 1 + 2 + 3); /* Bob/1, Bob/2, Alice/2 */
	/* Appends continue from the stored heads. */
	struct to to[] = {{BOB, 1}, {BOB, 2}, {ALICE, 2}};
	struct cap a = append(e, ALICE, 1, 9, 1, BOB, 60, 1000000, to, 3, "d");
	assert_int_equal(a.status, 0);
	assert_int_equal(a.seqs[0].seq, 4);
}

struct closing {
	struct env *e;
	struct cap first;
	int refused;
};

static void on_closing(void *arg, int st, const cold_stats_res_t *r)
{
	struct closing *cl = arg;
	on_stats(&cl->first, st, r);
	struct cap unused = {0};
	cl->refused = cold_stats(cl->e->cs, on_stats, &unused);
}

static void test_close_refuses_new_work(void **state)
{
	struct env *e = *state;
	struct closing cl = {.e = e};
	assert_int_equal(cold_stats(e->cs, on_closing, &cl), 0);
	cold_close(e->cs);
	e->cs = NULL;
	assert_int_equal(cl.first.called, 1);
	assert_int_equal(cl.first.status, 0);
	assert_int_equal(cl.refused, -FC_EUNAVAIL);
}

static void test_open_refuses_newer_schema(void **state)
{
	struct env *e = *state;
	cold_close(e->cs);
	e->cs = NULL;
	sqlite3 *db;
	assert_int_equal(sqlite3_open(e->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	coldstore_t *cs = (coldstore_t *)1;
	assert_int_equal(sqlite_cold_open(&cs, e->path), -FC_ESTORE);
	assert_null(cs);
	assert_int_equal(sqlite_cold_open(&cs, ""), -EINVAL);
	assert_int_equal(sqlite_cold_open(&cs, ":memory:"), -EINVAL);
	assert_null(cs);
}

static void test_stats(void **state)
{
	struct env *e = *state;
	struct cap s = stats(e);
	assert_int_equal(s.accounts, 0);
	assert_int_equal(s.devices, 0);
	assert_int_equal(s.entries, 0);
	two_accounts(e);
	assert_int_equal(append(e, ALICE, 1, 1, 1, BOB, 1, 2, ALICE_TO_BOB, 4, "s").status, 0);
	s = stats(e);
	assert_int_equal(s.accounts, 2);
	assert_int_equal(s.devices, 5);
	assert_int_equal(s.entries, 4);
}

/* Every cached statement is served by an index: no plan step may scan a
 * whole table, except the metrics counts. The mailbox read in particular is a
 * primary-key range search starting at the cursor. */
#define PLAN_ROW(name, sql) {#name, sql},
static const struct {
	const char *name, *sql;
} g_statements[] = {SC_STATEMENTS(PLAN_ROW)};
#undef PLAN_ROW

static void test_statements_use_indexes(void **state)
{
	struct env *e = *state;
	sqlite3 *db = sc_from(e->cs)->db;
	int range_ok = 0;
	for (size_t i = 0; i < sizeof g_statements / sizeof g_statements[0]; i++) {
		char sql[2048];
		snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", g_statements[i].sql);
		sqlite3_stmt *st;
		assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *d = (const char *)sqlite3_column_text(st, 3);
			if (strcmp(g_statements[i].name, "STATS") != 0 &&
			    strncmp(d, "SCAN", 4) == 0 && strcmp(d, "SCAN CONSTANT ROW") != 0)
				fail_msg("%s: %s", g_statements[i].name, d);
			if (strcmp(g_statements[i].name, "ENTRY_RANGE") == 0 &&
			    strcmp(d, "SEARCH mailbox_entry USING PRIMARY KEY "
				      "(account_id=? AND device_id=? AND seq>?)") == 0)
				range_ok = 1;
		}
		sqlite3_finalize(st);
	}
	assert_true(range_ok);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	/* Expected failures (commit failure, newer schema) log errors; keep the
	 * test output readable. */
	log_init(LOG_ERROR + 1, 2);
	const struct CMUnitTest tests[] = {
		T(test_callbacks_only_at_flush_in_order),
		T(test_callback_may_submit),
		T(test_register_and_get),
		T(test_register_errors),
		T(test_device_numbering_reuses_lowest_free),
		T(test_max_devices),
		T(test_device_remove_cascades),
		T(test_devices_list),
		T(test_username),
		T(test_keys_upload),
		T(test_prekey_claimed_exactly_once),
		T(test_prekey_claimed_exactly_once_across_restart),
		T(test_append_assigns_increasing_seqs),
		T(test_append_idempotent),
		T(test_append_stale_device_set),
		T(test_append_to_self),
		T(test_savepoint_isolation),
		T(test_fetch_paging),
		T(test_ack_cumulative),
		T(test_expire),
		T(test_expire_is_batched),
		T(test_claimed_markers_expire),
		T(test_commit_failure_fails_whole_batch),
		T(test_durable_across_reopen),
		T(test_close_refuses_new_work),
		T(test_open_refuses_newer_schema),
		T(test_stats),
		T(test_statements_use_indexes),
	};
	return cmocka_run_group_tests_name("sqlite_cold", tests, NULL, NULL);
}
