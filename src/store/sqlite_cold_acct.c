/*
 * sqlite_cold_acct: accounts, devices, usernames and the key directory of the
 * SQLite coldstore adapter.
 *
 * Every public entry point has the same shape: sc_op_begin() reserves the
 * completion and opens the operation's savepoint, a static helper does the
 * work and builds a heap result, sc_op_end() releases or rolls back the
 * savepoint and queues the completion for the next flush.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "store/sqlite_cold_int.h"

/* ---- validation -------------------------------------------------------- */

static int check_blob(slice_t s, size_t max)
{
	if (s.len == 0 || !s.ptr)
		return -EINVAL;
	return s.len > max ? -FC_ETOOBIG : 0;
}

static int check_prekeys(const cold_prekey_t *k, size_t n)
{
	if (n && !k)
		return -EINVAL;
	if (n > COLD_OTPK_POOL_MAX)
		return -FC_ELIMIT;
	for (size_t i = 0; i < n; i++) {
		if (k[i].id == 0)
			return -EINVAL;
		int rc = check_blob(k[i].key, COLD_OTPK_MAX);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int check_register(const cold_register_t *r)
{
	int rc;
	if (r->account_id == 0 || r->spk_id == 0)
		return -EINVAL;
	if ((rc = check_blob(r->identity_key, COLD_IDENTITY_KEY_MAX)) < 0 ||
	    (rc = check_blob(r->spk, COLD_SPK_MAX)) < 0 ||
	    (rc = check_blob(r->spk_sig, COLD_SPK_SIG_MAX)) < 0)
		return rc;
	return check_prekeys(r->otpks, r->otpk_count);
}

/* ---- shared steps ------------------------------------------------------ */

/* The claim time of a one-time prekey only drives the pruning of claimed
 * markers after COLD_IDEM_RETENTION_MS, so the wall clock is precise enough. */
static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Adds one-time prekeys; ids already claimed are skipped by the statement. */
static int prekeys_put(struct sqlite_cold *sc, uint64_t account, uint32_t device,
		       const cold_prekey_t *k, size_t n)
{
	sqlite3_stmt *st = sc_stmt(sc, SC_PREKEY_PUT);
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_int64(st, 1, sc_id(account));
		sqlite3_bind_int64(st, 2, device);
		sqlite3_bind_int64(st, 3, k[i].id);
		sc_bind_slice(st, 4, k[i].key);
		int rc = sc_exec(sc, st);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int prekeys_count(struct sqlite_cold *sc, uint64_t account, uint32_t device, uint32_t *out)
{
	sqlite3_stmt *st = sc_stmt(sc, SC_PREKEY_COUNT);
	sqlite3_bind_int64(st, 1, sc_id(account));
	sqlite3_bind_int64(st, 2, device);
	int rc = sc_step(sc, st);
	if (rc < 0)
		return rc;
	*out = rc == 1 ? sc_col_u32(st, 0) : 0;
	if (rc == 1)
		sc_reset(st);
	return 0;
}

/* The lowest device number not in use, or -FC_ELIMIT when the account has
 * max_devices devices already. */
static int device_number_pick(struct sqlite_cold *sc, uint64_t account, uint32_t max_devices,
			      uint32_t *out)
{
	struct sc_u32s ids = {0};
	int rc = sc_device_ids(sc, account, 0, &ids);
	if (rc < 0)
		goto done;
	if (ids.n >= max_devices) {
		rc = -FC_ELIMIT;
		goto done;
	}
	/* ids are ascending and start at 1 or above: the first position where
	 * the id differs from its rank is the lowest gap. */
	uint32_t d = 1;
	for (size_t i = 0; i < ids.n && ids.v[i] == d; i++)
		d++;
	*out = d;
done:
	sc_u32s_free(&ids);
	return rc;
}

/* ---- register ---------------------------------------------------------- */

static int do_register(struct sqlite_cold *sc, const cold_register_t *r, cold_register_res_t **out)
{
	int rc = check_register(r);
	if (rc < 0)
		return rc;
	int exists = sc_account_exists(sc, r->account_id);
	if (exists < 0)
		return exists;
	if (r->new_account) {
		if (exists)
			return -FC_EEXIST;
		sqlite3_stmt *st = sc_stmt(sc, SC_ACCOUNT_INSERT);
		sqlite3_bind_int64(st, 1, sc_id(r->account_id));
		sqlite3_bind_int64(st, 2, sc_clamp(r->now_ms));
		if ((rc = sc_exec(sc, st)) < 0)
			return rc;
	} else if (!exists) {
		return -FC_ENOTFOUND;
	}

	uint32_t dev = 0;
	if ((rc = device_number_pick(sc, r->account_id, r->max_devices, &dev)) < 0)
		return rc;

	sqlite3_stmt *st = sc_stmt(sc, SC_DEVICE_INSERT);
	sqlite3_bind_int64(st, 1, sc_id(r->account_id));
	sqlite3_bind_int64(st, 2, dev);
	sqlite3_bind_int64(st, 3, sc_clamp(r->now_ms));
	sc_bind_slice(st, 4, slice_make(r->auth_pub, COLD_AUTH_PUB_LEN));
	sqlite3_bind_int64(st, 5, r->registration_id);
	sc_bind_slice(st, 6, r->identity_key);
	sqlite3_bind_int64(st, 7, r->spk_id);
	sc_bind_slice(st, 8, r->spk);
	sc_bind_slice(st, 9, r->spk_sig);
	if ((rc = sc_exec(sc, st)) < 0)
		return rc;

	st = sc_stmt(sc, SC_MAILBOX_INSERT);
	sqlite3_bind_int64(st, 1, sc_id(r->account_id));
	sqlite3_bind_int64(st, 2, dev);
	if ((rc = sc_exec(sc, st)) < 0)
		return rc;
	if ((rc = prekeys_put(sc, r->account_id, dev, r->otpks, r->otpk_count)) < 0)
		return rc;

	cold_register_res_t *res = malloc(sizeof *res);
	if (!res)
		return -ENOMEM;
	res->account_id = r->account_id;
	res->device_id = dev;
	*out = res;
	return 0;
}

int sc_device_register(coldstore_t *cs, const cold_register_t *req, cold_register_cb cb, void *arg)
{
	struct sqlite_cold *sc = sc_from(cs);
	struct sc_pending *p;
	int rc = sc_op_begin(sc, SC_K_REGISTER, arg, &p);
	if (rc < 0)
		return rc;
	p->cb.reg = cb;
	cold_register_res_t *res = NULL;
	rc = p->status ? p->status : do_register(sc, req, &res);
	sc_op_end(sc, p, rc, res, free);
	return 0;
}

/* ---- remove, get, list --------------------------------------------------- */

/* The foreign keys cascade the removal to the device's mailbox state and
 * entries, prekeys, claimed-prekey markers and the idempotency records of its
 * sends, so a reused device number starts clean. */
static int do_remove(struct sqlite_cold *sc, uint64_t account, uint32_t device,
		     cold_remove_res_t **out)
{
	sqlite3_stmt *st = sc_stmt(sc, SC_DEVICE_DELETE);
	sqlite3_bind_int64(st, 1, sc_id(account));
	sqlite3_bind_int64(st, 2, device);
	int rc = sc_exec(sc, st);
	if (rc < 0)
		return rc;
	if (sqlite3_changes(sc->db) == 0)
		return -FC_ENOTFOUND;
	cold_remove_res_t *res = malloc(sizeof *res);
	if (!res)
		return -ENOMEM;
	res->account_id = account;
	res->device_id = device;
	*out = res;
	return 0;
}

int sc_device_remove(coldstore_t *cs, uint64_t account_id, uint32_t device_id, cold_remove_cb cb,
		     void *arg)
{
	struct sqlite_cold *sc = sc_from(cs);
	struct sc_pending *p;
	int rc = sc_op_begin(sc, SC_K_REMOVE, arg, &p);
	if (rc < 0)
		return rc;
	p->cb.remove = cb;
	cold_remove_res_t *res = NULL;
	rc = p->status ? p->status : do_remove(sc, account_id, device_id, &res);
	sc_op_end(sc, p, rc, res, free);
	return 0;
}

static int do_get(struct sqlite_cold *sc, uint64_t account, uint32_t device,
		  cold_device_res_t **out)
{
	cold_device_res_t *res = malloc(sizeof *res);
	if (!res)
		return -ENOMEM;
	sqlite3_stmt *st = sc_stmt(sc, SC_DEVICE_GET);
	sqlite3_bind_int64(st, 1, sc_id(account));
	sqlite3_bind_int64(st, 2, device);
	int rc = sc_step(sc, st);
	if (rc <= 0) {
		free(res);
		return rc < 0 ? rc : -FC_ENOTFOUND;
	}
	rc = sc_col_copy(st, 0, res->auth_pub, sizeof res->auth_pub);
	if (rc >= 0 && rc != COLD_AUTH_PUB_LEN)
		rc = -FC_ESTORE;
	res->registration_id = sc_col_u32(st, 1);
	sc_reset(st);
	if (rc < 0) {
		free(res);
		return rc;
	}
	*out = res;
	return 0;
}

int sc_device_get(coldstore_t *cs, uint64_t account_id, uint32_t device_id, cold_device_cb cb,
		  void *arg)
{
	struct sqlite_cold *sc = sc_from(cs);
	struct sc_pending *p;
	int rc = sc_op_begin(sc, SC_K_DEVICE, arg, &p);
	if (rc < 0)
		return rc;
	p->cb.device = cb;
	cold_device_res_t *res = NULL;
	rc = p->status ? p->status : do_get(sc, account_id, device_id, &res);
	sc_op_end(sc, p, rc, res, free);
	return 0;
}

/* One allocation: the result, then the id array, then the username. */
static int do_list(struct sqlite_cold *sc, uint64_t account, cold_devices_res_t **out)
{
	uint8_t name[COLD_USERNAME_MAX];
	int name_len = 0;
	sqlite3_stmt *st = sc_stmt(sc, SC_ACCOUNT_GET);
	sqlite3_bind_int64(st, 1, sc_id(account));
	int rc = sc_step(sc, st);
	if (rc <= 0)
		return rc < 0 ? rc : -FC_ENOTFOUND;
	name_len = sc_col_copy(st, 0, name, sizeof name);
	sc_reset(st);
	if (name_len < 0)
		return name_len;

	struct sc_u32s ids = {0};
	if ((rc = sc_device_ids(sc, account, 0, &ids)) < 0)
		goto done;
	size_t ids_bytes = ids.n * sizeof(uint32_t);
	uint8_t *blk = malloc(sizeof(cold_devices_res_t) + ids_bytes + (size_t)name_len);
	if (!blk) {
		rc = -ENOMEM;
		goto done;
	}
	cold_devices_res_t *res = (cold_devices_res_t *)blk;
	uint32_t *v = (uint32_t *)(blk + sizeof *res);
	uint8_t *n = blk + sizeof *res + ids_bytes;
	if (ids.n)
		memcpy(v, ids.v, ids_bytes);
	if (name_len)
		memcpy(n, name, (size_t)name_len);
	res->account_id = account;
	res->count = ids.n;
	res->device_ids = v;
	res->username = slice_make(n, (size_t)name_len);
	*out = res;
done:
	sc_u32s_free(&ids);
	return rc;
}

int sc_devices_list(coldstore_t *cs, uint64_t account_id, cold_devices_cb cb, void *arg)
{
	struct sqlite_cold *sc = sc_from(cs);
	struct sc_pending *p;
	int rc = sc_op_begin(sc, SC_K_DEVICES, arg, &p);
	if (rc < 0)
		return rc;
	p->cb.devices = cb;
	cold_devices_res_t *res = NULL;
	rc = p->status ? p->status : do_list(sc, account_id, &res);
	sc_op_end(sc, p, rc, res, free);
	return 0;
}

/* ---- usernames ----------------------------------------------------------- */

/* The uniqueness key folds ASCII letters only: the caller's validation
 * decides which bytes a username may contain. */
static void username_key(slice_t name, uint8_t *key)
{
	for (size_t i = 0; i < name.len; i++) {
		uint8_t c = name.ptr[i];
		key[i] = (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
	}
}

/* Looks up the account holding `key`: 1 with *account set, 0, or error. */
static int username_find(struct sqlite_cold *sc, slice_t key, uint64_t *account)
{
	sqlite3_stmt *st = sc_stmt(sc, SC_USERNAME_FIND);
	sc_bind_slice(st, 1, key);
	int rc = sc_step(sc, st);
	if (rc == 1) {
		*account = sc_uid(sqlite3_column_int64(st, 0));
		sc_reset(st);
	}
	return rc;
}

static int do_username_set(struct sqlite_cold *sc, uint64_t account, slice_t name,
			   cold_username_res_t **out)
{
	uint8_t key[COLD_USERNAME_MAX];
	if (name.len > COLD_USERNAME_MAX)
		return -FC_ETOOBIG;
	if (name.len && !name.ptr)
		return -EINVAL;
	int rc = sc_account_exists(sc, account);
	if (rc <= 0)
		return rc < 0 ? rc : -FC_ENOTFOUND;

	slice_t k = slice_make(key, name.len);
	if (name.len) {
		username_key(name, key);
		uint64_t holder = 0;
		rc = username_find(sc, k, &holder);
		if (rc < 0)
			return rc;
		if (rc == 1 && holder != account)
			return -FC_EEXIST;
	}
	/* An empty name stores NULL in both columns, which clears it; the
	 * UNIQUE index ignores NULLs. */
	sqlite3_stmt *st = sc_stmt(sc, SC_USERNAME_SET);
	sqlite3_bind_int64(st, 1, sc_id(account));
	if (name.len) {
		sc_bind_slice(st, 2, name);
		sc_bind_slice(st, 3, k);
	} else {
		sqlite3_bind_null(st, 2);
		sqlite3_bind_null(st, 3);
	}
	if ((rc = sc_exec(sc, st)) < 0)
		return rc;
	cold_username_res_t *res = malloc(sizeof *res);
	if (!res)
		return -ENOMEM;
	res->account_id = account;
	*out = res;
	return 0;
}

int sc_username_set(coldstore_t *cs, uint64_t account_id, slice_t name, cold_username_cb cb,
		    void *arg)
{
	struct sqlite_cold *sc = sc_from(cs);
	struct sc_pending *p;
	int rc = sc_op_begin(sc, SC_K_USERNAME, arg, &p);
	if (rc < 0)
		return rc;
	p->cb.username = cb;
	cold_username_res_t *res = NULL;
	rc = p->status ? p->status : do_username_set(sc, account_id, name, &res);
	sc_op_end(sc, p, rc, res, free);
	return 0;
}

static int do_username_resolve(struct sqlite_cold *sc, slice_t name, cold_username_res_t **out)
{
	uint8_t key[COLD_USERNAME_MAX];
	if (name.len == 0 || name.len > COLD_USERNAME_MAX || !name.ptr)
		return -FC_ENOTFOUND;
	username_key(name, key);
	uint64_t account = 0;
	int rc = username_find(sc, slice_make(key, name.len), &account);
	if (rc <= 0)
		return rc < 0 ? rc : -FC_ENOTFOUND;
	cold_username_res_t *res = malloc(sizeof *res);
	if (!res)
		return -ENOMEM;
	res->account_id = account;
	*out = res;
	return 0;
}

int sc_username_resolve(coldstore_t *cs, slice_t name, cold_username_cb cb, void *arg)
{
	struct sqlite_cold *sc = sc_from(cs);
	struct sc_pending *p;
	int rc = sc_op_begin(sc, SC_K_USERNAME, arg, &p);
	if (rc < 0)
		return rc;
	p->cb.username = cb;
	cold_username_res_t *res = NULL;
	rc = p->status ? p->status : do_username_resolve(sc, name, &res);
	sc_op_end(sc, p, rc, res, free);
	return 0;
}

/* ---- key directory --------------------------------------------------------- */

static int do_keys_upload(struct sqlite_cold *sc, const cold_keys_t *k, cold_keys_res_t **out)
{
	int rc;
	if (k->account_id == 0 || k->device_id == 0)
		return -EINVAL;
	if (k->spk_id && ((rc = check_blob(k->spk, COLD_SPK_MAX)) < 0 ||
			  (rc = check_blob(k->spk_sig, COLD_SPK_SIG_MAX)) < 0))
		return rc;
	if ((rc = check_prekeys(k->otpks, k->otpk_count)) < 0)
		return rc;
	rc = sc_device_exists(sc, k->account_id, k->device_id);
	if (rc <= 0)
		return rc < 0 ? rc : -FC_ENOTFOUND;

	if (k->spk_id) {
		sqlite3_stmt *st = sc_stmt(sc, SC_DEVICE_SPK_SET);
		sqlite3_bind_int64(st, 1, sc_id(k->account_id));
		sqlite3_bind_int64(st, 2, k->device_id);
		sqlite3_bind_int64(st, 3, k->spk_id);
		sc_bind_slice(st, 4, k->spk);
		sc_bind_slice(st, 5, k->spk_sig);
		if ((rc = sc_exec(sc, st)) < 0)
			return rc;
	}
	if ((rc = prekeys_put(sc, k->account_id, k->device_id, k->otpks, k->otpk_count)) < 0)
		return rc;
	uint32_t remaining;
	if ((rc = prekeys_count(sc, k->account_id, k->device_id, &remaining)) < 0)
		return rc;
	/* Checked after the inserts because replaced ids do not grow the pool;
	 * the savepoint undoes the whole upload. */
	if (remaining > COLD_OTPK_POOL_MAX)
		return -FC_ELIMIT;
	cold_keys_res_t *res = malloc(sizeof *res);
	if (!res)
		return -ENOMEM;
	res->remaining = remaining;
	*out = res;
	return 0;
}

int sc_keys_upload(coldstore_t *cs, const cold_keys_t *req, cold_keys_cb cb, void *arg)
{
	struct sqlite_cold *sc = sc_from(cs);
	struct sc_pending *p;
	int rc = sc_op_begin(sc, SC_K_KEYS, arg, &p);
	if (rc < 0)
		return rc;
	p->cb.keys = cb;
	cold_keys_res_t *res = NULL;
	rc = p->status ? p->status : do_keys_upload(sc, req, &res);
	sc_op_end(sc, p, rc, res, free);
	return 0;
}

/* The bundle's bytes live inside the result allocation. */
struct bundle_block {
	cold_bundle_res_t res;
	uint8_t identity_key[COLD_IDENTITY_KEY_MAX];
	uint8_t spk[COLD_SPK_MAX];
	uint8_t spk_sig[COLD_SPK_SIG_MAX];
	uint8_t otpk[COLD_OTPK_MAX];
};

static int bundle_device(struct sqlite_cold *sc, struct bundle_block *b)
{
	cold_bundle_res_t *r = &b->res;
	sqlite3_stmt *st = sc_stmt(sc, SC_DEVICE_GET);
	sqlite3_bind_int64(st, 1, sc_id(r->account_id));
	sqlite3_bind_int64(st, 2, r->device_id);
	int rc = sc_step(sc, st);
	if (rc <= 0)
		return rc < 0 ? rc : -FC_ENOTFOUND;
	int ik = sc_col_copy(st, 2, b->identity_key, sizeof b->identity_key);
	int spk = sc_col_copy(st, 4, b->spk, sizeof b->spk);
	int sig = sc_col_copy(st, 5, b->spk_sig, sizeof b->spk_sig);
	r->registration_id = sc_col_u32(st, 1);
	r->spk_id = sc_col_u32(st, 3);
	sc_reset(st);
	if (ik < 0 || spk < 0 || sig < 0)
		return -FC_ESTORE;
	r->identity_key = slice_make(b->identity_key, (size_t)ik);
	r->spk = slice_make(b->spk, (size_t)spk);
	r->spk_sig = slice_make(b->spk_sig, (size_t)sig);
	return 0;
}

/*
 * Takes the lowest-id one-time prekey. The DELETE ... RETURNING removes the
 * row and hands it back in one statement, inside the operation's savepoint
 * and the batch transaction, and the claimed marker is written in the same
 * transaction: once the batch commits the key is gone for good, and if it does
 * not commit the caller never saw the key. Either way no key is given twice.
 */
static int bundle_otpk(struct sqlite_cold *sc, struct bundle_block *b)
{
	cold_bundle_res_t *r = &b->res;
	sqlite3_stmt *st = sc_stmt(sc, SC_PREKEY_CLAIM);
	sqlite3_bind_int64(st, 1, sc_id(r->account_id));
	sqlite3_bind_int64(st, 2, r->device_id);
	int rc = sc_step(sc, st);
	if (rc <= 0)
		return rc; /* 0: pool empty, otpk_id stays 0 */
	r->otpk_id = sc_col_u32(st, 0);
	int n = sc_col_copy(st, 1, b->otpk, sizeof b->otpk);
	rc = sc_step(sc, st); /* runs the statement to completion */
	if (rc == 1) {
		sc_reset(st);
		rc = -FC_ESTORE; /* a primary key matched two rows */
	}
	if (rc < 0 || n < 0)
		return rc < 0 ? rc : n;
	r->otpk = slice_make(b->otpk, (size_t)n);

	st = sc_stmt(sc, SC_PREKEY_TOMBSTONE);
	sqlite3_bind_int64(st, 1, sc_id(r->account_id));
	sqlite3_bind_int64(st, 2, r->device_id);
	sqlite3_bind_int64(st, 3, r->otpk_id);
	sqlite3_bind_int64(st, 4, sc_clamp(wall_ms()));
	return sc_exec(sc, st);
}

static int do_bundle(struct sqlite_cold *sc, uint64_t account, uint32_t device,
		     cold_bundle_res_t **out)
{
	struct bundle_block *b = calloc(1, sizeof *b);
	if (!b)
		return -ENOMEM;
	b->res.account_id = account;
	b->res.device_id = device;
	int rc = bundle_device(sc, b);
	if (rc == 0)
		rc = bundle_otpk(sc, b);
	if (rc == 0)
		rc = prekeys_count(sc, account, device, &b->res.remaining);
	if (rc < 0) {
		free(b);
		return rc;
	}
	*out = &b->res;
	return 0;
}

int sc_bundle_claim(coldstore_t *cs, uint64_t account_id, uint32_t device_id, cold_bundle_cb cb,
		    void *arg)
{
	struct sqlite_cold *sc = sc_from(cs);
	struct sc_pending *p;
	int rc = sc_op_begin(sc, SC_K_BUNDLE, arg, &p);
	if (rc < 0)
		return rc;
	p->cb.bundle = cb;
	cold_bundle_res_t *res = NULL;
	rc = p->status ? p->status : do_bundle(sc, account_id, device_id, &res);
	sc_op_end(sc, p, rc, res, free);
	return 0;
}

/* ---- stats --------------------------------------------------------------- */

static int do_stats(struct sqlite_cold *sc, cold_stats_res_t **out)
{
	sqlite3_stmt *st = sc_stmt(sc, SC_STATS);
	int rc = sc_step(sc, st);
	if (rc <= 0)
		return rc < 0 ? rc : -FC_ESTORE;
	cold_stats_res_t *res = malloc(sizeof *res);
	if (res) {
		res->accounts = sc_col_u64(st, 0);
		res->devices = sc_col_u64(st, 1);
		res->mailbox_entries = sc_col_u64(st, 2);
	}
	sc_reset(st);
	if (!res)
		return -ENOMEM;
	*out = res;
	return 0;
}

int sc_stats(coldstore_t *cs, cold_stats_cb cb, void *arg)
{
	struct sqlite_cold *sc = sc_from(cs);
	struct sc_pending *p;
	int rc = sc_op_begin(sc, SC_K_STATS, arg, &p);
	if (rc < 0)
		return rc;
	p->cb.stats = cb;
	cold_stats_res_t *res = NULL;
	rc = p->status ? p->status : do_stats(sc, &res);
	sc_op_end(sc, p, rc, res, free);
	return 0;
}
