/*
 * sqlite_cold_int: internals shared by the SQLite coldstore adapter's source
 * files (sqlite_cold.c: connection, schema, group commit; sqlite_cold_acct.c:
 * accounts, devices and keys; sqlite_cold_mbox.c: mailboxes). Not for use
 * outside src/store/ and its unit tests.
 *
 * Every statement the adapter runs is listed once below, prepared at open and
 * reused; reviewing this list is reviewing the adapter's index usage. Each one
 * is reset (and its bindings cleared) right after use, so no statement is
 * ever left open across a savepoint or commit.
 */
#ifndef FC_STORE_SQLITE_COLD_INT_H
#define FC_STORE_SQLITE_COLD_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <string.h>

#include "store/coldstore.h"

/* X(name, sql) */
#define SC_STATEMENTS(X)                                                                        \
	X(BEGIN, "BEGIN IMMEDIATE")                                                             \
	X(COMMIT, "COMMIT")                                                                     \
	X(ROLLBACK, "ROLLBACK")                                                                 \
	X(SAVEPOINT, "SAVEPOINT cold_op")                                                       \
	X(RELEASE, "RELEASE cold_op")                                                           \
	X(ROLLBACK_TO, "ROLLBACK TO cold_op")                                                   \
	X(ACCOUNT_INSERT, "INSERT INTO account (account_id, created_ms) VALUES (?1, ?2)")       \
	X(ACCOUNT_GET, "SELECT username FROM account WHERE account_id = ?1")                    \
	X(USERNAME_FIND, "SELECT account_id FROM account WHERE username_key = ?1")              \
	X(USERNAME_SET, "UPDATE account SET username = ?2, username_key = ?3 "                  \
			"WHERE account_id = ?1")                                                \
	X(DEVICE_IDS, "SELECT device_id FROM device WHERE account_id = ?1 ORDER BY device_id")  \
	X(DEVICE_INSERT, "INSERT INTO device (account_id, device_id, created_ms, auth_pub, "    \
			 "registration_id, identity_key, spk_id, spk, spk_sig) "                \
			 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")                         \
	X(DEVICE_DELETE, "DELETE FROM device WHERE account_id = ?1 AND device_id = ?2")         \
	X(DEVICE_GET, "SELECT auth_pub, registration_id, identity_key, spk_id, spk, spk_sig "   \
		      "FROM device WHERE account_id = ?1 AND device_id = ?2")                   \
	X(DEVICE_SPK_SET, "UPDATE device SET spk_id = ?3, spk = ?4, spk_sig = ?5 "              \
			  "WHERE account_id = ?1 AND device_id = ?2")                           \
	X(MAILBOX_INSERT, "INSERT INTO mailbox (account_id, device_id) VALUES (?1, ?2)")        \
	X(MAILBOX_GET, "SELECT head_seq, acked_seq, expired_through FROM mailbox "              \
		       "WHERE account_id = ?1 AND device_id = ?2")                              \
	X(MAILBOX_BUMP, "UPDATE mailbox SET head_seq = head_seq + 1 "                           \
			"WHERE account_id = ?1 AND device_id = ?2 RETURNING head_seq")          \
	X(MAILBOX_ACK, "UPDATE mailbox SET acked_seq = ?3 "                                     \
		       "WHERE account_id = ?1 AND device_id = ?2")                              \
	X(MAILBOX_EXPIRED, "UPDATE mailbox SET expired_through = max(expired_through, ?3) "     \
			   "WHERE account_id = ?1 AND device_id = ?2")                          \
	X(ENTRY_INSERT, "INSERT INTO mailbox_entry (account_id, device_id, seq, "               \
			"sender_account, sender_device, timestamp_ms, expires_ms, ciphertext) " \
			"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")                              \
	X(ENTRY_RANGE, "SELECT seq, sender_account, sender_device, timestamp_ms, ciphertext "   \
		       "FROM mailbox_entry WHERE account_id = ?1 AND device_id = ?2 "           \
		       "AND seq > ?3 ORDER BY seq LIMIT ?4")                                    \
	X(ENTRY_ACK, "DELETE FROM mailbox_entry WHERE account_id = ?1 AND device_id = ?2 "      \
		     "AND seq > ?3 AND seq <= ?4")                                              \
	X(ENTRY_EXPIRED, "SELECT account_id, device_id, seq FROM mailbox_entry "                \
			 "WHERE expires_ms <= ?1 ORDER BY expires_ms LIMIT ?2")                 \
	X(ENTRY_DELETE, "DELETE FROM mailbox_entry "                                            \
			"WHERE account_id = ?1 AND device_id = ?2 AND seq = ?3")                \
	X(PREKEY_PUT, "INSERT OR REPLACE INTO prekey (account_id, device_id, key_id, pubkey) "  \
		      "SELECT ?1, ?2, ?3, ?4 WHERE NOT EXISTS (SELECT 1 FROM prekey_claimed "   \
		      "WHERE account_id = ?1 AND device_id = ?2 AND key_id = ?3)")              \
	X(PREKEY_COUNT, "SELECT count(*) FROM prekey WHERE account_id = ?1 AND device_id = ?2") \
	X(PREKEY_CLAIM, "DELETE FROM prekey WHERE account_id = ?1 AND device_id = ?2 "          \
			"AND key_id = (SELECT min(key_id) FROM prekey "                         \
			"WHERE account_id = ?1 AND device_id = ?2) RETURNING key_id, pubkey")   \
	X(PREKEY_TOMBSTONE, "INSERT OR REPLACE INTO prekey_claimed (account_id, device_id, "    \
			    "key_id, claimed_ms) VALUES (?1, ?2, ?3, ?4)")                      \
	X(PREKEY_PRUNE, "DELETE FROM prekey_claimed WHERE (account_id, device_id, key_id) IN "  \
			"(SELECT account_id, device_id, key_id FROM prekey_claimed "            \
			"WHERE claimed_ms < ?1 LIMIT ?2)")                                      \
	X(IDEM_GET, "SELECT body_hash, timestamp_ms, assigned FROM idempotency "                \
		    "WHERE sender_account = ?1 AND sender_device = ?2 "                         \
		    "AND client_msg_id = ?3")                                                   \
	X(IDEM_INSERT, "INSERT INTO idempotency (sender_account, sender_device, "               \
		       "client_msg_id, body_hash, timestamp_ms, assigned) "                     \
		       "VALUES (?1, ?2, ?3, ?4, ?5, ?6)")                                       \
	X(IDEM_PRUNE, "DELETE FROM idempotency WHERE "                                          \
		      "(sender_account, sender_device, client_msg_id) IN "                      \
		      "(SELECT sender_account, sender_device, client_msg_id "                   \
		      "FROM idempotency WHERE timestamp_ms < ?1 LIMIT ?2)")                     \
	X(STATS, "SELECT (SELECT count(*) FROM account), (SELECT count(*) FROM device), "       \
		 "(SELECT count(*) FROM mailbox_entry)")

#define SC_STMT_ENUM(name, sql) SC_##name,
enum sc_stmt_id { SC_STATEMENTS(SC_STMT_ENUM) SC_STMT_COUNT };
#undef SC_STMT_ENUM

/* Which callback a queued completion carries. */
enum sc_kind {
	SC_K_REGISTER = 1,
	SC_K_REMOVE,
	SC_K_DEVICE,
	SC_K_DEVICES,
	SC_K_USERNAME,
	SC_K_KEYS,
	SC_K_BUNDLE,
	SC_K_APPEND,
	SC_K_FETCH,
	SC_K_ACK,
	SC_K_EXPIRE,
	SC_K_STATS,
};

/* A completed operation waiting for the batch to commit. */
struct sc_pending {
	enum sc_kind kind;
	union {
		cold_register_cb reg;
		cold_remove_cb remove;
		cold_device_cb device;
		cold_devices_cb devices;
		cold_username_cb username;
		cold_keys_cb keys;
		cold_bundle_cb bundle;
		cold_append_cb append;
		cold_fetch_cb fetch;
		cold_ack_cb ack;
		cold_expire_cb expire;
		cold_stats_cb stats;
	} cb;
	void *arg;
	int status;
	void *res;                   /* heap copy handed to the callback, or NULL */
	void (*res_free)(void *res); /* releases res after the callback */
};

/* Completions are queued in arrays that grow up to SC_MAX_PENDING entries;
 * beyond that an operation is refused with -FC_ELIMIT (backpressure). */
#define SC_MAX_PENDING 65536

struct sc_queue {
	struct sc_pending *v;
	size_t n, cap;
};

struct sqlite_cold {
	coldstore_t base; /* first: a coldstore_t * is a struct sqlite_cold * */
	sqlite3 *db;
	sqlite3_stmt *stmt[SC_STMT_COUNT];
	/* Two queues: operations append to q[cur]; a flush swaps cur and then
	 * delivers the other one, so operations submitted by callbacks land in
	 * the next batch and never in the queue being walked. */
	struct sc_queue q[2];
	int cur;
	int in_txn;     /* the batch transaction is open */
	int in_sp;      /* the current operation's savepoint is open */
	int delivering; /* a flush is calling callbacks */
	int closing;    /* cold_close() is running: refuse new operations */
	/* Background checkpointer: its own connection copies WAL frames into
	 * the database file (PASSIVE, never blocking the writer), so neither the
	 * copy nor its fsync lands on a commit's latency. */
	pthread_t ckpt_thread;
	int ckpt_running;
	pthread_mutex_t ckpt_mu;
	pthread_cond_t ckpt_cv;
	int ckpt_stop;
	char *path;
	sqlite3 *ckpt_db; /* the checkpointer's connection */
};

static inline struct sqlite_cold *sc_from(coldstore_t *cs)
{
	return (struct sqlite_cold *)cs;
}

/* ---- values --------------------------------------------------------- */

/* SQLite integers are signed 64-bit. Identifiers (random u64 account ids,
 * client message ids) are stored bit for bit (sc_id); times and sequence
 * numbers are clamped (sc_clamp) so that a "never" of UINT64_MAX stays the
 * largest value instead of turning negative. */
static inline int64_t sc_id(uint64_t v)
{
	int64_t r;
	memcpy(&r, &v, sizeof r);
	return r;
}

static inline uint64_t sc_uid(int64_t v)
{
	uint64_t r;
	memcpy(&r, &v, sizeof r);
	return r;
}

static inline int64_t sc_clamp(uint64_t v)
{
	return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

/* Column as u64 for counters that are never negative (seqs, times). */
static inline uint64_t sc_col_u64(sqlite3_stmt *st, int col)
{
	int64_t v = sqlite3_column_int64(st, col);
	return v < 0 ? 0 : (uint64_t)v;
}

static inline uint32_t sc_col_u32(sqlite3_stmt *st, int col)
{
	return (uint32_t)sc_col_u64(st, col);
}

/* Binds a slice as a BLOB. The bytes must stay valid until the statement is
 * reset (always before the operation returns). An empty slice binds an empty
 * blob, never NULL. */
int sc_bind_slice(sqlite3_stmt *st, int idx, slice_t s);

/* Copies column `col` (a BLOB) into dst (cap bytes); -FC_ESTORE if it does
 * not fit, which only a corrupted database can cause. Returns the length. */
int sc_col_copy(sqlite3_stmt *st, int col, uint8_t *dst, size_t cap);

/* ---- statements ----------------------------------------------------- */

/* The cached statement `id`, ready for binding. */
static inline sqlite3_stmt *sc_stmt(struct sqlite_cold *sc, enum sc_stmt_id id)
{
	return sc->stmt[id];
}

/* Logs a SQLite failure of `st` and returns -FC_ESTORE. */
int sc_fail(struct sqlite_cold *sc, sqlite3_stmt *st, int rc);

/* Resets `st` and clears its bindings. */
void sc_reset(sqlite3_stmt *st);

/* Steps `st` once: SQLITE_ROW -> 1, SQLITE_DONE -> 0 (the statement is then
 * reset), error -> -FC_ESTORE (reset too). After a 1, call sc_reset() when
 * done reading. */
int sc_step(struct sqlite_cold *sc, sqlite3_stmt *st);

/* Runs `st` to completion and resets it; 0 or -FC_ESTORE. */
int sc_exec(struct sqlite_cold *sc, sqlite3_stmt *st);

/* ---- growable u32 list --------------------------------------------- */

struct sc_u32s {
	uint32_t *v;
	size_t n, cap;
};

int sc_u32s_push(struct sc_u32s *l, uint32_t x);
void sc_u32s_free(struct sc_u32s *l);

/* Appends the device ids of `account` in ascending order, leaving out
 * `except` (0 to keep all). */
int sc_device_ids(struct sqlite_cold *sc, uint64_t account, uint32_t except, struct sc_u32s *out);

/* Account and device existence: 1, 0, or -FC_ESTORE. */
int sc_account_exists(struct sqlite_cold *sc, uint64_t account);
int sc_device_exists(struct sqlite_cold *sc, uint64_t account, uint32_t device);

/* ---- operation framing ---------------------------------------------- */

/* Starts an operation: reserves its completion slot (refusing with -ENOMEM,
 * -FC_ELIMIT or -FC_EUNAVAIL, in which case nothing ran), opens the batch
 * transaction if needed and the operation's savepoint. On 0, *out is the slot;
 * if (*out)->status is already negative the store could not start the
 * operation and the caller skips straight to sc_op_end(). */
int sc_op_begin(struct sqlite_cold *sc, enum sc_kind kind, void *arg, struct sc_pending **out);

/* Finishes an operation with `status` and `res` (heap, released with
 * res_free after the callback; may be NULL): releases the savepoint, or rolls
 * it back when status is negative, and queues the completion. */
void sc_op_end(struct sqlite_cold *sc, struct sc_pending *p, int status, void *res,
	       void (*res_free)(void *));

/* ---- operations (sqlite_cold_acct.c, sqlite_cold_mbox.c) -------------- */

int sc_device_register(coldstore_t *cs, const cold_register_t *req, cold_register_cb cb, void *arg);
int sc_device_remove(coldstore_t *cs, uint64_t account_id, uint32_t device_id, cold_remove_cb cb,
		     void *arg);
int sc_device_get(coldstore_t *cs, uint64_t account_id, uint32_t device_id, cold_device_cb cb,
		  void *arg);
int sc_devices_list(coldstore_t *cs, uint64_t account_id, cold_devices_cb cb, void *arg);
int sc_username_set(coldstore_t *cs, uint64_t account_id, slice_t name, cold_username_cb cb,
		    void *arg);
int sc_username_resolve(coldstore_t *cs, slice_t name, cold_username_cb cb, void *arg);
int sc_keys_upload(coldstore_t *cs, const cold_keys_t *req, cold_keys_cb cb, void *arg);
int sc_bundle_claim(coldstore_t *cs, uint64_t account_id, uint32_t device_id, cold_bundle_cb cb,
		    void *arg);
int sc_stats(coldstore_t *cs, cold_stats_cb cb, void *arg);

int sc_msg_append(coldstore_t *cs, const cold_append_t *req, cold_append_cb cb, void *arg);
int sc_mailbox_fetch(coldstore_t *cs, uint64_t account_id, uint32_t device_id, uint64_t after_seq,
		     uint32_t limit, cold_fetch_cb cb, void *arg);
int sc_mailbox_ack(coldstore_t *cs, uint64_t account_id, uint32_t device_id, uint64_t upto_seq,
		   cold_ack_cb cb, void *arg);
int sc_expire(coldstore_t *cs, uint64_t now_ms, cold_expire_cb cb, void *arg);

#endif
