/*
 * sqlite_cold_mbox: device mailboxes of the SQLite coldstore adapter (append
 * with idempotency and device-set validation, cursor reads, cumulative acks,
 * expiry).
 *
 * A mailbox is a `mailbox` row (head, acked and expired-through positions)
 * plus its `mailbox_entry` rows keyed (account_id, device_id, seq). Sequence
 * numbers come from head_seq, which only grows, so they are strictly
 * increasing per mailbox even after acks and expiry removed every entry.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "store/sqlite_cold_int.h"

/* An idempotency record stores the assigned positions as packed records:
 * account u64, device u32, seq u64, all little-endian. */
#define SC_ASSIGNED_REC 20

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* ---- append -------------------------------------------------------------- */

struct addr {
	uint64_t account;
	uint32_t device;
};

static int addr_cmp(const void *a, const void *b)
{
	const struct addr *x = a, *y = b;
	if (x->account != y->account)
		return x->account < y->account ? -1 : 1;
	if (x->device != y->device)
		return x->device < y->device ? -1 : 1;
	return 0;
}

static int check_append(const cold_append_t *r)
{
	if (!r->sender_account || !r->sender_device || !r->recipient_account)
		return -EINVAL;
	if (r->count > COLD_APPEND_MAX)
		return -FC_ETOOBIG;
	if (r->count && !r->entries)
		return -EINVAL;
	for (size_t i = 0; i < r->count; i++) {
		slice_t c = r->entries[i].ciphertext;
		if (c.len == 0 || !c.ptr)
			return -EINVAL;
		if (c.len > COLD_CIPHERTEXT_MAX)
			return -FC_ETOOBIG;
	}
	return 0;
}

/* One allocation: the result, the seq array, then both stale lists. */
static cold_append_res_t *append_res_alloc(size_t nseq, const struct sc_u32s *rdev,
					   const struct sc_u32s *sdev)
{
	size_t nr = rdev ? rdev->n : 0, ns = sdev ? sdev->n : 0;
	uint8_t *blk = calloc(1, sizeof(cold_append_res_t) + nseq * sizeof(cold_seq_t) +
					 (nr + ns) * sizeof(uint32_t));
	if (!blk)
		return NULL;
	cold_append_res_t *res = (cold_append_res_t *)blk;
	cold_seq_t *seqs = (cold_seq_t *)(blk + sizeof *res);
	uint32_t *rv = (uint32_t *)(blk + sizeof *res + nseq * sizeof(cold_seq_t));
	uint32_t *sv = rv + nr;
	if (nr)
		memcpy(rv, rdev->v, nr * sizeof *rv);
	if (ns)
		memcpy(sv, sdev->v, ns * sizeof *sv);
	res->count = nseq;
	res->seqs = seqs;
	res->stale_recipient_count = nr;
	res->stale_recipient_devices = rv;
	res->stale_sender_count = ns;
	res->stale_sender_devices = sv;
	return res;
}

/* Looks up the idempotency record of this send: 0 when there is none, 1 with
 * *out set to the original outcome when it is a retry, -FC_ECONFLICT when the
 * key was used for a different body. */
static int idem_lookup(struct sqlite_cold *sc, const cold_append_t *r, cold_append_res_t **out)
{
	sqlite3_stmt *st = sc_stmt(sc, SC_IDEM_GET);
	sqlite3_bind_int64(st, 1, sc_id(r->sender_account));
	sqlite3_bind_int64(st, 2, r->sender_device);
	sqlite3_bind_int64(st, 3, sc_id(r->client_msg_id));
	int rc = sc_step(sc, st);
	if (rc <= 0)
		return rc;

	const uint8_t *hash = sqlite3_column_blob(st, 0);
	int hlen = sqlite3_column_bytes(st, 0);
	if (hlen != COLD_HASH_LEN || memcmp(hash, r->body_hash, COLD_HASH_LEN) != 0) {
		sc_reset(st);
		return -FC_ECONFLICT;
	}
	uint64_t ts = sc_col_u64(st, 1);
	const uint8_t *a = sqlite3_column_blob(st, 2);
	int alen = sqlite3_column_bytes(st, 2);
	if (alen < 0 || alen % SC_ASSIGNED_REC != 0) {
		sc_reset(st);
		LOGE("coldstore_corrupt", "table=idempotency len=%d", alen);
		return -FC_ESTORE;
	}
	size_t n = (size_t)alen / SC_ASSIGNED_REC;
	cold_append_res_t *res = append_res_alloc(n, NULL, NULL);
	if (!res) {
		sc_reset(st);
		return -ENOMEM;
	}
	cold_seq_t *seqs = (cold_seq_t *)res->seqs;
	for (size_t i = 0; i < n; i++, a += SC_ASSIGNED_REC) {
		seqs[i].account_id = get_le(a, 8);
		seqs[i].device_id = (uint32_t)get_le(a + 8, 4);
		seqs[i].seq = get_le(a + 12, 8);
	}
	sc_reset(st);
	res->timestamp_ms = ts;
	res->duplicate = 1;
	*out = res;
	return 1;
}

/* Whether the request addresses exactly the expected (account, device) set:
 * 1 yes, 0 no, or -ENOMEM. Both sides are sorted and compared; since the
 * expected set has no duplicates, equality also rules them out in the
 * request. */
static int addressed_exactly(const cold_append_t *r, const struct sc_u32s *rdev,
			     const struct sc_u32s *sdev)
{
	size_t n = rdev->n + sdev->n;
	if (r->count != n)
		return 0;
	if (n == 0)
		return 1;
	struct addr *got = malloc(2 * n * sizeof *got);
	if (!got)
		return -ENOMEM;
	struct addr *want = got + n;
	for (size_t i = 0; i < n; i++)
		got[i] = (struct addr){r->entries[i].account_id, r->entries[i].device_id};
	for (size_t i = 0; i < rdev->n; i++)
		want[i] = (struct addr){r->recipient_account, rdev->v[i]};
	for (size_t i = 0; i < sdev->n; i++)
		want[rdev->n + i] = (struct addr){r->sender_account, sdev->v[i]};
	qsort(got, n, sizeof *got, addr_cmp);
	qsort(want, n, sizeof *want, addr_cmp);
	int ok = 1;
	for (size_t i = 0; i < n && ok; i++)
		ok = addr_cmp(&got[i], &want[i]) == 0;
	free(got);
	return ok;
}

/* Takes the next sequence number of a mailbox. */
static int mailbox_next_seq(struct sqlite_cold *sc, uint64_t account, uint32_t device,
			    uint64_t *seq)
{
	sqlite3_stmt *st = sc_stmt(sc, SC_MAILBOX_BUMP);
	sqlite3_bind_int64(st, 1, sc_id(account));
	sqlite3_bind_int64(st, 2, device);
	int rc = sc_step(sc, st);
	if (rc == 0) {
		/* Validation saw the device; a device without mailbox row is
		 * damage, not a caller error. */
		LOGE("coldstore_corrupt", "table=mailbox missing=1");
		return -FC_ESTORE;
	}
	if (rc < 0)
		return rc;
	*seq = sc_col_u64(st, 0);
	return sc_exec(sc, st);
}

static int append_entries(struct sqlite_cold *sc, const cold_append_t *r, cold_append_res_t *res)
{
	cold_seq_t *seqs = (cold_seq_t *)res->seqs;
	for (size_t i = 0; i < r->count; i++) {
		const cold_entry_t *e = &r->entries[i];
		uint64_t seq;
		int rc = mailbox_next_seq(sc, e->account_id, e->device_id, &seq);
		if (rc < 0)
			return rc;
		sqlite3_stmt *st = sc_stmt(sc, SC_ENTRY_INSERT);
		sqlite3_bind_int64(st, 1, sc_id(e->account_id));
		sqlite3_bind_int64(st, 2, e->device_id);
		sqlite3_bind_int64(st, 3, sc_clamp(seq));
		sqlite3_bind_int64(st, 4, sc_id(r->sender_account));
		sqlite3_bind_int64(st, 5, r->sender_device);
		sqlite3_bind_int64(st, 6, sc_clamp(r->now_ms));
		sqlite3_bind_int64(st, 7, sc_clamp(r->expires_ms));
		sc_bind_slice(st, 8, e->ciphertext);
		if ((rc = sc_exec(sc, st)) < 0)
			return rc;
		seqs[i] = (cold_seq_t){e->account_id, e->device_id, seq};
	}
	return 0;
}

static int idem_record(struct sqlite_cold *sc, const cold_append_t *r, const cold_append_res_t *res)
{
	uint8_t one[1];
	uint8_t *buf = res->count ? malloc(res->count * SC_ASSIGNED_REC) : one;
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < res->count; i++) {
		uint8_t *p = buf + i * SC_ASSIGNED_REC;
		put_le(p, res->seqs[i].account_id, 8);
		put_le(p + 8, res->seqs[i].device_id, 4);
		put_le(p + 12, res->seqs[i].seq, 8);
	}
	sqlite3_stmt *st = sc_stmt(sc, SC_IDEM_INSERT);
	sqlite3_bind_int64(st, 1, sc_id(r->sender_account));
	sqlite3_bind_int64(st, 2, r->sender_device);
	sqlite3_bind_int64(st, 3, sc_id(r->client_msg_id));
	sc_bind_slice(st, 4, slice_make(r->body_hash, COLD_HASH_LEN));
	sqlite3_bind_int64(st, 5, sc_clamp(r->now_ms));
	sc_bind_slice(st, 6, slice_make(buf, res->count * SC_ASSIGNED_REC));
	int rc = sc_exec(sc, st);
	if (buf != one)
		free(buf);
	return rc;
}

/* The devices the sender must address: every device of the recipient and
 * every other device of the sender; for a send to oneself, the sender's
 * other devices only (listed as the recipient's). */
static int expected_devices(struct sqlite_cold *sc, const cold_append_t *r, struct sc_u32s *rdev,
			    struct sc_u32s *sdev)
{
	if (r->recipient_account == r->sender_account)
		return sc_device_ids(sc, r->sender_account, r->sender_device, rdev);
	int rc = sc_device_ids(sc, r->recipient_account, 0, rdev);
	if (rc == 0)
		rc = sc_device_ids(sc, r->sender_account, r->sender_device, sdev);
	return rc;
}

static int do_append(struct sqlite_cold *sc, const cold_append_t *r, cold_append_res_t **out)
{
	int rc = check_append(r);
	if (rc < 0)
		return rc;
	if ((rc = idem_lookup(sc, r, out)) != 0)
		return rc < 0 ? rc : 0;
	if ((rc = sc_device_exists(sc, r->sender_account, r->sender_device)) <= 0 ||
	    (rc = sc_account_exists(sc, r->recipient_account)) <= 0)
		return rc < 0 ? rc : -FC_ENOTFOUND;

	struct sc_u32s rdev = {0}, sdev = {0};
	cold_append_res_t *res = NULL;
	if ((rc = expected_devices(sc, r, &rdev, &sdev)) < 0)
		goto done;
	if ((rc = addressed_exactly(r, &rdev, &sdev)) <= 0) {
		if (rc == 0) {
			res = append_res_alloc(0, &rdev, &sdev);
			rc = res ? -FC_ESTALE : -ENOMEM;
		}
		goto done;
	}
	if (!(res = append_res_alloc(r->count, NULL, NULL))) {
		rc = -ENOMEM;
		goto done;
	}
	res->timestamp_ms = r->now_ms;
	if ((rc = append_entries(sc, r, res)) < 0 || (rc = idem_record(sc, r, res)) < 0) {
		free(res);
		res = NULL;
	}
done:
	sc_u32s_free(&rdev);
	sc_u32s_free(&sdev);
	*out = res;
	return rc;
}

int sc_msg_append(coldstore_t *cs, const cold_append_t *req, cold_append_cb cb, void *arg)
{
	struct sqlite_cold *sc = sc_from(cs);
	struct sc_pending *p;
	int rc = sc_op_begin(sc, SC_K_APPEND, arg, &p);
	if (rc < 0)
		return rc;
	p->cb.append = cb;
	cold_append_res_t *res = NULL;
	rc = p->status ? p->status : do_append(sc, req, &res);
	sc_op_end(sc, p, rc, res, free);
	return 0;
}

/* ---- fetch --------------------------------------------------------------- */

struct mailbox_pos {
	uint64_t head, acked, expired;
};

static int mailbox_get(struct sqlite_cold *sc, uint64_t account, uint32_t device,
		       struct mailbox_pos *m)
{
	sqlite3_stmt *st = sc_stmt(sc, SC_MAILBOX_GET);
	sqlite3_bind_int64(st, 1, sc_id(account));
	sqlite3_bind_int64(st, 2, device);
	int rc = sc_step(sc, st);
	if (rc <= 0)
		return rc < 0 ? rc : -FC_ENOTFOUND;
	m->head = sc_col_u64(st, 0);
	m->acked = sc_col_u64(st, 1);
	m->expired = sc_col_u64(st, 2);
	sc_reset(st);
	return 0;
}

/* The entries array sits in the result allocation; the ciphertexts are
 * concatenated in one separate buffer that grows while rows are read. */
struct fetch_block {
	cold_fetch_res_t res;
	uint8_t *blob;
	cold_mail_t entries[];
};

static void fetch_free(void *p)
{
	struct fetch_block *b = p;
	free(b->blob);
	free(b);
}

static int blob_reserve(struct fetch_block *b, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 4096;
	while (n < need)
		n *= 2;
	uint8_t *p = realloc(b->blob, n);
	if (!p)
		return -ENOMEM;
	b->blob = p;
	*cap = n;
	return 0;
}

/* Reads rows of the range scan into b; returns 0 or a negative code. The
 * statement asks for one row more than `cap`, so a row that does not fit says
 * there is more without a second query. */
static int fetch_rows(struct sqlite_cold *sc, sqlite3_stmt *st, struct fetch_block *b, size_t cap)
{
	size_t used = 0, blob_cap = 0;
	int rc;
	while ((rc = sc_step(sc, st)) == 1) {
		size_t len = (size_t)sqlite3_column_bytes(st, 4);
		if (b->res.count == cap ||
		    (b->res.count > 0 && used + len > COLD_FETCH_MAX_BYTES)) {
			b->res.has_more = 1;
			sc_reset(st);
			break;
		}
		if ((rc = blob_reserve(b, &blob_cap, used + len)) < 0) {
			sc_reset(st);
			return rc;
		}
		if (len)
			memcpy(b->blob + used, sqlite3_column_blob(st, 4), len);
		cold_mail_t *m = &b->entries[b->res.count++];
		m->seq = sc_col_u64(st, 0);
		m->sender_account = sc_uid(sqlite3_column_int64(st, 1));
		m->sender_device = sc_col_u32(st, 2);
		m->timestamp_ms = sc_col_u64(st, 3);
		m->ciphertext.len = len;
		used += len;
	}
	if (rc < 0)
		return rc;
	/* The buffer may have moved while growing: point into it only now. */
	size_t off = 0;
	for (size_t i = 0; i < b->res.count; i++) {
		b->entries[i].ciphertext.ptr = b->blob + off;
		off += b->entries[i].ciphertext.len;
	}
	return 0;
}

static int do_fetch(struct sqlite_cold *sc, uint64_t account, uint32_t device, uint64_t after,
		    uint32_t limit, cold_fetch_res_t **out)
{
	struct mailbox_pos m;
	int rc = mailbox_get(sc, account, device, &m);
	if (rc < 0)
		return rc;
	size_t cap = limit < COLD_FETCH_MAX ? limit : COLD_FETCH_MAX;
	struct fetch_block *b = calloc(1, sizeof *b + cap * sizeof(cold_mail_t));
	if (!b)
		return -ENOMEM;
	b->res.head_seq = m.head;
	b->res.acked_seq = m.acked;
	b->res.expired_through = m.expired;
	b->res.entries = b->entries;

	/* Acked entries are deleted, so the scan starts above the ack even
	 * for an older cursor: it seeks straight to the first live row. */
	uint64_t lo = after > m.acked ? after : m.acked;
	sqlite3_stmt *st = sc_stmt(sc, SC_ENTRY_RANGE);
	sqlite3_bind_int64(st, 1, sc_id(account));
	sqlite3_bind_int64(st, 2, device);
	sqlite3_bind_int64(st, 3, sc_clamp(lo));
	sqlite3_bind_int64(st, 4, (int64_t)cap + 1);
	if ((rc = fetch_rows(sc, st, b, cap)) < 0) {
		fetch_free(b);
		return rc;
	}
	*out = &b->res;
	return 0;
}

int sc_mailbox_fetch(coldstore_t *cs, uint64_t account_id, uint32_t device_id, uint64_t after_seq,
		     uint32_t limit, cold_fetch_cb cb, void *arg)
{
	struct sqlite_cold *sc = sc_from(cs);
	struct sc_pending *p;
	int rc = sc_op_begin(sc, SC_K_FETCH, arg, &p);
	if (rc < 0)
		return rc;
	p->cb.fetch = cb;
	cold_fetch_res_t *res = NULL;
	rc = p->status ? p->status : do_fetch(sc, account_id, device_id, after_seq, limit, &res);
	sc_op_end(sc, p, rc, res, fetch_free);
	return 0;
}

/* ---- ack ----------------------------------------------------------------- */

static int do_ack(struct sqlite_cold *sc, uint64_t account, uint32_t device, uint64_t upto,
		  cold_ack_res_t **out)
{
	struct mailbox_pos m;
	int rc = mailbox_get(sc, account, device, &m);
	if (rc < 0)
		return rc;
	/* An ack beyond the head cannot cover entries that do not exist yet. */
	if (upto > m.head)
		upto = m.head;
	if (upto > m.acked) {
		sqlite3_stmt *st = sc_stmt(sc, SC_ENTRY_ACK);
		sqlite3_bind_int64(st, 1, sc_id(account));
		sqlite3_bind_int64(st, 2, device);
		sqlite3_bind_int64(st, 3, sc_clamp(m.acked));
		sqlite3_bind_int64(st, 4, sc_clamp(upto));
		if ((rc = sc_exec(sc, st)) < 0)
			return rc;
		st = sc_stmt(sc, SC_MAILBOX_ACK);
		sqlite3_bind_int64(st, 1, sc_id(account));
		sqlite3_bind_int64(st, 2, device);
		sqlite3_bind_int64(st, 3, sc_clamp(upto));
		if ((rc = sc_exec(sc, st)) < 0)
			return rc;
		m.acked = upto;
	}
	cold_ack_res_t *res = malloc(sizeof *res);
	if (!res)
		return -ENOMEM;
	res->acked_seq = m.acked;
	*out = res;
	return 0;
}

int sc_mailbox_ack(coldstore_t *cs, uint64_t account_id, uint32_t device_id, uint64_t upto_seq,
		   cold_ack_cb cb, void *arg)
{
	struct sqlite_cold *sc = sc_from(cs);
	struct sc_pending *p;
	int rc = sc_op_begin(sc, SC_K_ACK, arg, &p);
	if (rc < 0)
		return rc;
	p->cb.ack = cb;
	cold_ack_res_t *res = NULL;
	rc = p->status ? p->status : do_ack(sc, account_id, device_id, upto_seq, &res);
	sc_op_end(sc, p, rc, res, free);
	return 0;
}

/* ---- expiry -------------------------------------------------------------- */

struct entry_key {
	uint64_t account;
	uint32_t device;
	uint64_t seq;
};

/* Collects up to COLD_EXPIRE_BATCH expired entry keys first and deletes them
 * afterwards: changing a table while a statement is still scanning it is
 * undefined in SQLite. */
static int expire_entries(struct sqlite_cold *sc, uint64_t now, uint64_t *removed, int *more)
{
	struct entry_key *keys = malloc(COLD_EXPIRE_BATCH * sizeof *keys);
	if (!keys)
		return -ENOMEM;
	size_t n = 0;
	sqlite3_stmt *st = sc_stmt(sc, SC_ENTRY_EXPIRED);
	sqlite3_bind_int64(st, 1, sc_clamp(now));
	sqlite3_bind_int64(st, 2, COLD_EXPIRE_BATCH + 1);
	int rc;
	while ((rc = sc_step(sc, st)) == 1) {
		if (n == COLD_EXPIRE_BATCH) {
			*more = 1;
			sc_reset(st);
			break;
		}
		keys[n++] = (struct entry_key){sc_uid(sqlite3_column_int64(st, 0)),
					       sc_col_u32(st, 1), sc_col_u64(st, 2)};
	}
	for (size_t i = 0; i < n && rc >= 0; i++) {
		st = sc_stmt(sc, SC_ENTRY_DELETE);
		sqlite3_bind_int64(st, 1, sc_id(keys[i].account));
		sqlite3_bind_int64(st, 2, keys[i].device);
		sqlite3_bind_int64(st, 3, sc_clamp(keys[i].seq));
		if ((rc = sc_exec(sc, st)) < 0)
			break;
		*removed += (uint64_t)sqlite3_changes(sc->db);
		st = sc_stmt(sc, SC_MAILBOX_EXPIRED);
		sqlite3_bind_int64(st, 1, sc_id(keys[i].account));
		sqlite3_bind_int64(st, 2, keys[i].device);
		sqlite3_bind_int64(st, 3, sc_clamp(keys[i].seq));
		rc = sc_exec(sc, st);
	}
	free(keys);
	return rc < 0 ? rc : 0;
}

/* Deletes up to COLD_EXPIRE_BATCH rows older than cutoff with `id`. */
static int prune(struct sqlite_cold *sc, enum sc_stmt_id id, uint64_t cutoff, int *more)
{
	sqlite3_stmt *st = sc_stmt(sc, id);
	sqlite3_bind_int64(st, 1, sc_clamp(cutoff));
	sqlite3_bind_int64(st, 2, COLD_EXPIRE_BATCH);
	int rc = sc_exec(sc, st);
	if (rc == 0 && sqlite3_changes(sc->db) >= COLD_EXPIRE_BATCH)
		*more = 1;
	return rc;
}

static int do_expire(struct sqlite_cold *sc, uint64_t now, cold_expire_res_t **out)
{
	uint64_t removed = 0;
	int more = 0;
	int rc = expire_entries(sc, now, &removed, &more);
	if (rc == 0 && now > COLD_IDEM_RETENTION_MS) {
		uint64_t cutoff = now - COLD_IDEM_RETENTION_MS;
		rc = prune(sc, SC_IDEM_PRUNE, cutoff, &more);
		if (rc == 0)
			rc = prune(sc, SC_PREKEY_PRUNE, cutoff, &more);
	}
	if (rc < 0)
		return rc;
	cold_expire_res_t *res = malloc(sizeof *res);
	if (!res)
		return -ENOMEM;
	res->removed = removed;
	res->more = more;
	*out = res;
	return 0;
}

int sc_expire(coldstore_t *cs, uint64_t now_ms, cold_expire_cb cb, void *arg)
{
	struct sqlite_cold *sc = sc_from(cs);
	struct sc_pending *p;
	int rc = sc_op_begin(sc, SC_K_EXPIRE, arg, &p);
	if (rc < 0)
		return rc;
	p->cb.expire = cb;
	cold_expire_res_t *res = NULL;
	rc = p->status ? p->status : do_expire(sc, now_ms, &res);
	sc_op_end(sc, p, rc, res, free);
	return 0;
}
