/*
 * sqlite_cold: connection, schema migrations, the statement cache and the
 * group-commit machinery of the SQLite coldstore adapter. The operations
 * themselves live in sqlite_cold_acct.c and sqlite_cold_mbox.c.
 */
#include "store/sqlite_cold.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/log.h"
#include "store/sqlite_cold_int.h"

/* How long a statement waits for another connection's lock (a backup tool or
 * an operator's sqlite3 shell) before failing. */
#define SC_BUSY_TIMEOUT_MS 5000

/* A queue whose array grew beyond this is released after delivery, so a
 * burst does not pin its peak memory forever. */
#define SC_QUEUE_KEEP 256

/*
 * Schema migrations: sc_migrations[v] upgrades a database at user_version v to
 * v + 1. Never edit a released entry; append a new one. docs/storage.md
 * explains every table.
 *
 * Integers are SQLite's signed 64-bit: u64 identifiers are stored bit for bit.
 * The per-device tables are WITHOUT ROWID with a primary key that starts with
 * (account_id, device_id), so each device's rows are clustered in key order:
 * a mailbox read is one b-tree seek followed by a sequential range scan, and
 * the foreign-key cascades of a device removal are range deletes.
 */
static const char *const sc_migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE account ("
	"  account_id   INTEGER PRIMARY KEY,"
	"  created_ms   INTEGER NOT NULL,"
	"  username     BLOB,"
	"  username_key BLOB UNIQUE"
	");"
	"CREATE TABLE device ("
	"  account_id      INTEGER NOT NULL"
	"                  REFERENCES account (account_id) ON DELETE CASCADE,"
	"  device_id       INTEGER NOT NULL,"
	"  created_ms      INTEGER NOT NULL,"
	"  auth_pub        BLOB NOT NULL,"
	"  registration_id INTEGER NOT NULL,"
	"  identity_key    BLOB NOT NULL,"
	"  spk_id          INTEGER NOT NULL,"
	"  spk             BLOB NOT NULL,"
	"  spk_sig         BLOB NOT NULL,"
	"  PRIMARY KEY (account_id, device_id)"
	") WITHOUT ROWID;"
	"CREATE TABLE mailbox ("
	"  account_id      INTEGER NOT NULL,"
	"  device_id       INTEGER NOT NULL,"
	"  head_seq        INTEGER NOT NULL DEFAULT 0,"
	"  acked_seq       INTEGER NOT NULL DEFAULT 0,"
	"  expired_through INTEGER NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (account_id, device_id),"
	"  FOREIGN KEY (account_id, device_id)"
	"    REFERENCES device (account_id, device_id) ON DELETE CASCADE"
	") WITHOUT ROWID;"
	"CREATE TABLE mailbox_entry ("
	"  account_id     INTEGER NOT NULL,"
	"  device_id      INTEGER NOT NULL,"
	"  seq            INTEGER NOT NULL,"
	"  sender_account INTEGER NOT NULL,"
	"  sender_device  INTEGER NOT NULL,"
	"  timestamp_ms   INTEGER NOT NULL,"
	"  expires_ms     INTEGER NOT NULL,"
	"  ciphertext     BLOB NOT NULL,"
	"  PRIMARY KEY (account_id, device_id, seq),"
	"  FOREIGN KEY (account_id, device_id)"
	"    REFERENCES mailbox (account_id, device_id) ON DELETE CASCADE"
	") WITHOUT ROWID;"
	"CREATE INDEX mailbox_entry_expiry ON mailbox_entry (expires_ms);"
	"CREATE TABLE prekey ("
	"  account_id INTEGER NOT NULL,"
	"  device_id  INTEGER NOT NULL,"
	"  key_id     INTEGER NOT NULL,"
	"  pubkey     BLOB NOT NULL,"
	"  PRIMARY KEY (account_id, device_id, key_id),"
	"  FOREIGN KEY (account_id, device_id)"
	"    REFERENCES device (account_id, device_id) ON DELETE CASCADE"
	") WITHOUT ROWID;"
	"CREATE TABLE prekey_claimed ("
	"  account_id INTEGER NOT NULL,"
	"  device_id  INTEGER NOT NULL,"
	"  key_id     INTEGER NOT NULL,"
	"  claimed_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (account_id, device_id, key_id),"
	"  FOREIGN KEY (account_id, device_id)"
	"    REFERENCES device (account_id, device_id) ON DELETE CASCADE"
	") WITHOUT ROWID;"
	"CREATE INDEX prekey_claimed_time ON prekey_claimed (claimed_ms);"
	"CREATE TABLE idempotency ("
	"  sender_account INTEGER NOT NULL,"
	"  sender_device  INTEGER NOT NULL,"
	"  client_msg_id  INTEGER NOT NULL,"
	"  body_hash      BLOB NOT NULL,"
	"  timestamp_ms   INTEGER NOT NULL,"
	"  assigned       BLOB NOT NULL,"
	"  PRIMARY KEY (sender_account, sender_device, client_msg_id),"
	"  FOREIGN KEY (sender_account, sender_device)"
	"    REFERENCES device (account_id, device_id) ON DELETE CASCADE"
	") WITHOUT ROWID;"
	"CREATE INDEX idempotency_time ON idempotency (timestamp_ms);",
};

#define SC_SCHEMA_VERSION ((int)(sizeof sc_migrations / sizeof sc_migrations[0]))

#define SC_STMT_SQL(name, sql) sql,
static const char *const sc_sql[SC_STMT_COUNT] = {SC_STATEMENTS(SC_STMT_SQL)};
#undef SC_STMT_SQL
#define SC_STMT_NAME(name, sql) #name,
static const char *const sc_names[SC_STMT_COUNT] = {SC_STATEMENTS(SC_STMT_NAME)};
#undef SC_STMT_NAME

static void sc_flush(coldstore_t *cs);
int sqlite_cold_open(coldstore_t **out, const char *path)
{
	return sqlite_cold_open_ex(out, path, 1);
}

static void sc_close(coldstore_t *cs);

static const struct cold_ops sc_ops = {
	.device_register = sc_device_register,
	.device_remove = sc_device_remove,
	.device_get = sc_device_get,
	.devices_list = sc_devices_list,
	.username_set = sc_username_set,
	.username_resolve = sc_username_resolve,
	.keys_upload = sc_keys_upload,
	.bundle_claim = sc_bundle_claim,
	.msg_append = sc_msg_append,
	.mailbox_fetch = sc_mailbox_fetch,
	.mailbox_ack = sc_mailbox_ack,
	.expire = sc_expire,
	.stats = sc_stats,
	.flush = sc_flush,
	.close = sc_close,
};

/* ---- helpers shared with the operation files ------------------------- */

/* SQLite messages name tables and columns, never values; double quotes are
 * swapped so the logfmt field stays one token. */
static void log_sqlite(const char *event, const char *what, sqlite3 *db, int rc)
{
	char msg[160];
	const char *m = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
	size_t i = 0;
	for (; m[i] && i < sizeof msg - 1; i++)
		msg[i] = m[i] == '"' ? '\'' : m[i];
	msg[i] = '\0';
	LOGE(event, "what=%s rc=%d err=\"%s\"", what, rc, msg);
}

int sc_fail(struct sqlite_cold *sc, sqlite3_stmt *st, int rc)
{
	const char *what = "unknown";
	for (int i = 0; i < SC_STMT_COUNT; i++)
		if (sc->stmt[i] == st)
			what = sc_names[i];
	log_sqlite("coldstore_sqlite_error", what, sc->db, rc);
	return -FC_ESTORE;
}

void sc_reset(sqlite3_stmt *st)
{
	/* The step's error was already reported; reset repeats it. */
	(void)sqlite3_reset(st);
	(void)sqlite3_clear_bindings(st);
}

int sc_step(struct sqlite_cold *sc, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE) {
		sc_reset(st);
		return 0;
	}
	rc = sc_fail(sc, st, rc);
	sc_reset(st);
	return rc;
}

int sc_exec(struct sqlite_cold *sc, sqlite3_stmt *st)
{
	int rc;
	while ((rc = sc_step(sc, st)) == 1)
		;
	return rc;
}

int sc_bind_slice(sqlite3_stmt *st, int idx, slice_t s)
{
	static const uint8_t empty[1];
	ASSERT(s.len <= (size_t)INT32_MAX);
	return sqlite3_bind_blob(st, idx, s.len ? s.ptr : empty, (int)s.len, SQLITE_STATIC);
}

int sc_col_copy(sqlite3_stmt *st, int col, uint8_t *dst, size_t cap)
{
	const void *p = sqlite3_column_blob(st, col);
	int n = sqlite3_column_bytes(st, col);
	if (n < 0 || (size_t)n > cap) {
		LOGE("coldstore_corrupt", "col=%d len=%d cap=%zu", col, n, cap);
		return -FC_ESTORE;
	}
	if (n > 0)
		memcpy(dst, p, (size_t)n);
	return n;
}

int sc_u32s_push(struct sc_u32s *l, uint32_t x)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		uint32_t *v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = x;
	return 0;
}

void sc_u32s_free(struct sc_u32s *l)
{
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

int sc_device_ids(struct sqlite_cold *sc, uint64_t account, uint32_t except, struct sc_u32s *out)
{
	sqlite3_stmt *st = sc_stmt(sc, SC_DEVICE_IDS);
	sqlite3_bind_int64(st, 1, sc_id(account));
	int rc;
	while ((rc = sc_step(sc, st)) == 1) {
		uint32_t d = sc_col_u32(st, 0);
		if (d == except)
			continue;
		rc = sc_u32s_push(out, d);
		if (rc < 0) {
			sc_reset(st);
			return rc;
		}
	}
	return rc;
}

int sc_account_exists(struct sqlite_cold *sc, uint64_t account)
{
	sqlite3_stmt *st = sc_stmt(sc, SC_ACCOUNT_GET);
	sqlite3_bind_int64(st, 1, sc_id(account));
	int rc = sc_step(sc, st);
	if (rc == 1)
		sc_reset(st);
	return rc;
}

int sc_device_exists(struct sqlite_cold *sc, uint64_t account, uint32_t device)
{
	sqlite3_stmt *st = sc_stmt(sc, SC_DEVICE_GET);
	sqlite3_bind_int64(st, 1, sc_id(account));
	sqlite3_bind_int64(st, 2, device);
	int rc = sc_step(sc, st);
	if (rc == 1)
		sc_reset(st);
	return rc;
}

/* ---- group commit ------------------------------------------------------ */

static int queue_reserve(struct sc_queue *q)
{
	if (q->n < q->cap)
		return 0;
	if (q->cap >= SC_MAX_PENDING)
		return -FC_ELIMIT;
	size_t cap = q->cap ? q->cap * 2 : 64;
	if (cap > SC_MAX_PENDING)
		cap = SC_MAX_PENDING;
	struct sc_pending *v = realloc(q->v, cap * sizeof *v);
	if (!v)
		return -ENOMEM;
	q->v = v;
	q->cap = cap;
	return 0;
}

static void pending_drop_result(struct sc_pending *p)
{
	if (p->res && p->res_free)
		p->res_free(p->res);
	p->res = NULL;
	p->res_free = NULL;
}

/*
 * The batch transaction is lost (COMMIT failed, or SQLite rolled the whole
 * transaction back after an I/O, disk-full or out-of-memory error). Nothing of
 * this batch is durable, so every queued completion, including those that
 * looked successful, becomes -FC_ESTORE.
 */
static void batch_fail(struct sqlite_cold *sc, const char *why)
{
	struct sc_queue *q = &sc->q[sc->cur];
	if (!sqlite3_get_autocommit(sc->db) && sc_exec(sc, sc_stmt(sc, SC_ROLLBACK)) < 0)
		LOGE("coldstore_rollback_failed", "why=%s", why);
	sc->in_txn = 0;
	sc->in_sp = 0;
	for (size_t i = 0; i < q->n; i++) {
		pending_drop_result(&q->v[i]);
		q->v[i].status = -FC_ESTORE;
	}
	LOGE("coldstore_batch_failed", "why=%s ops=%zu", why, q->n);
}

int sc_op_begin(struct sqlite_cold *sc, enum sc_kind kind, void *arg, struct sc_pending **out)
{
	*out = NULL;
	if (sc->closing)
		return -FC_EUNAVAIL;
	struct sc_queue *q = &sc->q[sc->cur];
	int rc = queue_reserve(q);
	if (rc < 0)
		return rc;
	struct sc_pending *p = &q->v[q->n++];
	memset(p, 0, sizeof *p);
	p->kind = kind;
	p->arg = arg;
	*out = p;

	if (!sc->in_txn) {
		rc = sc_exec(sc, sc_stmt(sc, SC_BEGIN));
		if (rc < 0) {
			p->status = rc;
			return 0;
		}
		sc->in_txn = 1;
	}
	rc = sc_exec(sc, sc_stmt(sc, SC_SAVEPOINT));
	if (rc < 0) {
		p->status = rc;
		return 0;
	}
	sc->in_sp = 1;
	return 0;
}

void sc_op_end(struct sqlite_cold *sc, struct sc_pending *p, int status, void *res,
	       void (*res_free)(void *))
{
	p->status = status;
	p->res = res;
	p->res_free = res_free;

	if (sc->in_txn && sqlite3_get_autocommit(sc->db)) {
		batch_fail(sc, "rolled_back_by_engine");
		return;
	}
	if (!sc->in_sp)
		return;
	sc->in_sp = 0;
	int rc = 0;
	if (status < 0)
		rc = sc_exec(sc, sc_stmt(sc, SC_ROLLBACK_TO));
	if (rc == 0)
		rc = sc_exec(sc, sc_stmt(sc, SC_RELEASE));
	if (rc < 0)
		batch_fail(sc, "savepoint");
}

static void deliver(struct sc_pending *p)
{
	int st = p->status;
	void *r = p->res;
	switch (p->kind) {
	case SC_K_REGISTER:
		if (p->cb.reg)
			p->cb.reg(p->arg, st, r);
		break;
	case SC_K_REMOVE:
		if (p->cb.remove)
			p->cb.remove(p->arg, st, r);
		break;
	case SC_K_DEVICE:
		if (p->cb.device)
			p->cb.device(p->arg, st, r);
		break;
	case SC_K_DEVICES:
		if (p->cb.devices)
			p->cb.devices(p->arg, st, r);
		break;
	case SC_K_USERNAME:
		if (p->cb.username)
			p->cb.username(p->arg, st, r);
		break;
	case SC_K_KEYS:
		if (p->cb.keys)
			p->cb.keys(p->arg, st, r);
		break;
	case SC_K_BUNDLE:
		if (p->cb.bundle)
			p->cb.bundle(p->arg, st, r);
		break;
	case SC_K_APPEND:
		if (p->cb.append)
			p->cb.append(p->arg, st, r);
		break;
	case SC_K_FETCH:
		if (p->cb.fetch)
			p->cb.fetch(p->arg, st, r);
		break;
	case SC_K_ACK:
		if (p->cb.ack)
			p->cb.ack(p->arg, st, r);
		break;
	case SC_K_EXPIRE:
		if (p->cb.expire)
			p->cb.expire(p->arg, st, r);
		break;
	case SC_K_STATS:
		if (p->cb.stats)
			p->cb.stats(p->arg, st, r);
		break;
	}
}

static void sc_flush(coldstore_t *cs)
{
	struct sqlite_cold *sc = sc_from(cs);
	if (sc->delivering)
		return;
	ASSERT(!sc->in_sp);
	if (sc->in_txn) {
		if (sqlite3_get_autocommit(sc->db)) {
			batch_fail(sc, "rolled_back_by_engine");
		} else if (sc_exec(sc, sc_stmt(sc, SC_COMMIT)) < 0) {
			batch_fail(sc, "commit");
		} else {
			sc->in_txn = 0;
		}
	}

	/* Deliver the committed batch. Operations that callbacks submit go to
	 * the other queue and open the next batch. */
	struct sc_queue *q = &sc->q[sc->cur];
	sc->cur ^= 1;
	sc->delivering = 1;
	for (size_t i = 0; i < q->n; i++) {
		deliver(&q->v[i]);
		pending_drop_result(&q->v[i]);
	}
	q->n = 0;
	if (q->cap > SC_QUEUE_KEEP) {
		free(q->v);
		q->v = NULL;
		q->cap = 0;
	}
	sc->delivering = 0;
}

/* ---- open and close ---------------------------------------------------- */

/* mkdir -p of every directory above `path`. */
static int make_parent_dirs(const char *path)
{
	size_t n = strlen(path);
	char *buf = malloc(n + 1);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, path, n + 1);
	int rc = 0;
	for (size_t i = 1; i < n; i++) {
		if (buf[i] != '/')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST) {
			rc = -errno;
			LOGE("coldstore_mkdir_failed", "err=\"%s\"", err_str(rc));
			buf[i] = '/';
			break;
		}
		buf[i] = '/';
	}
	free(buf);
	return rc;
}

/* Creates the file with owner-only permissions before SQLite opens it (SQLite
 * would create it world-readable). The -wal and -shm files inherit the main
 * file's permissions. */
static int create_file(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		int rc = -errno;
		LOGE("coldstore_create_failed", "err=\"%s\"", err_str(rc));
		return rc;
	}
	close(fd);
	return 0;
}

static int db_exec(sqlite3 *db, const char *what, const char *sql)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		log_sqlite("coldstore_sqlite_error", what, db, rc);
		return -FC_ESTORE;
	}
	return 0;
}

/* Runs a one-row pragma and returns its first column as text in buf. */
static int db_pragma_text(sqlite3 *db, const char *sql, char *buf, size_t cap)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		log_sqlite("coldstore_sqlite_error", "pragma", db, rc);
		return -FC_ESTORE;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		log_sqlite("coldstore_sqlite_error", "pragma", db, rc);
		sqlite3_finalize(st);
		return -FC_ESTORE;
	}
	const unsigned char *t = sqlite3_column_text(st, 0);
	snprintf(buf, cap, "%s", t ? (const char *)t : "");
	sqlite3_finalize(st);
	return 0;
}

static int db_user_version(sqlite3 *db, int *out)
{
	char buf[32];
	int rc = db_pragma_text(db, "PRAGMA user_version", buf, sizeof buf);
	if (rc < 0)
		return rc;
	char *end;
	long v = strtol(buf, &end, 10);
	if (end == buf || *end != '\0' || v < 0 || v > 1000000)
		return -FC_ESTORE;
	*out = (int)v;
	return 0;
}

/* Applies the next migration, or sets *done when the schema is current. */
static int migrate_step(sqlite3 *db, int *done)
{
	int v, rc;
	*done = 0;
	if ((rc = db_user_version(db, &v)) < 0)
		return rc;
	if (v > SC_SCHEMA_VERSION) {
		LOGE("coldstore_schema_too_new", "version=%d supported=%d", v, SC_SCHEMA_VERSION);
		return -FC_ESTORE;
	}
	if (v == SC_SCHEMA_VERSION) {
		*done = 1;
		return 0;
	}
	char set[48];
	snprintf(set, sizeof set, "PRAGMA user_version = %d", v + 1);
	if ((rc = db_exec(db, "migrate", sc_migrations[v])) < 0 ||
	    (rc = db_exec(db, "migrate_version", set)) < 0)
		return rc;
	LOGI("coldstore_migrating", "version=%d", v + 1);
	return 0;
}

/*
 * Brings the schema to SC_SCHEMA_VERSION, one migration per transaction. The
 * version is read inside BEGIN IMMEDIATE so two processes opening the same
 * fresh file cannot both apply a migration.
 */
static int migrate(sqlite3 *db)
{
	for (int done = 0; !done;) {
		int rc = db_exec(db, "migrate_begin", "BEGIN IMMEDIATE");
		if (rc < 0)
			return rc;
		rc = migrate_step(db, &done);
		if (rc == 0)
			rc = db_exec(db, "migrate_commit", "COMMIT");
		if (rc < 0) {
			(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return rc;
		}
	}
	return 0;
}

static int configure(sqlite3 *db, int sync_full)
{
	char mode[16];
	int rc;
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, SC_BUSY_TIMEOUT_MS);
	if ((rc = db_pragma_text(db, "PRAGMA journal_mode = WAL", mode, sizeof mode)) < 0)
		return rc;
	if (strcmp(mode, "wal") != 0) {
		LOGE("coldstore_no_wal", "journal_mode=%s", mode);
		return -FC_ESTORE;
	}
	/* FULL: a commit is durable once COMMIT returns, also on power loss.
	 * NORMAL (WAL): a commit survives any crash of the process, and a power
	 * loss may roll back the last commits; group commit keeps FULL
	 * affordable, NORMAL keeps fsync off the latency path. */
	if ((rc = db_exec(db, "synchronous",
			  sync_full ? "PRAGMA synchronous = FULL" :
				      "PRAGMA synchronous = NORMAL")) < 0 ||
	    (rc = db_exec(db, "foreign_keys", "PRAGMA foreign_keys = ON")) < 0)
		return rc;
	/* Acked and expired ciphertext is overwritten, not left in free pages:
	 * deletion (and later account erasure) must really erase. */
	if ((rc = db_exec(db, "secure_delete", "PRAGMA secure_delete = ON")) < 0)
		return rc;
	return 0;
}

#define SC_CKPT_INTERVAL_MS 200

static void *ckpt_main(void *arg)
{
	struct sqlite_cold *sc = arg;
	sqlite3 *db = sc->ckpt_db; /* opened by ckpt_start(), used only here */
	pthread_mutex_lock(&sc->ckpt_mu);
	while (!sc->ckpt_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += SC_CKPT_INTERVAL_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&sc->ckpt_cv, &sc->ckpt_mu, &ts);
		if (sc->ckpt_stop)
			break;
		pthread_mutex_unlock(&sc->ckpt_mu);
		int wal = 0, done = 0;
		int rc =
			sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &wal, &done);
		if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
			log_sqlite("coldstore_checkpoint_failed", "checkpoint", db, rc);
		pthread_mutex_lock(&sc->ckpt_mu);
	}
	pthread_mutex_unlock(&sc->ckpt_mu);
	sqlite3_close(db);
	return NULL;
}

static void ckpt_start(struct sqlite_cold *sc)
{
	/* Without its own connection the writer keeps checkpointing by
	 * itself (SQLite's default), slower but bounded. */
	if (sqlite3_open_v2(sc->path, &sc->ckpt_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		log_sqlite("coldstore_checkpointer_failed", "open", sc->ckpt_db, 0);
		sqlite3_close(sc->ckpt_db);
		sc->ckpt_db = NULL;
		return;
	}
	sqlite3_busy_timeout(sc->ckpt_db, 0);
	pthread_mutex_init(&sc->ckpt_mu, NULL);
	pthread_cond_init(&sc->ckpt_cv, NULL);
	if (sqlite3_exec(sc->db, "PRAGMA wal_autocheckpoint = 0", NULL, NULL, NULL) == SQLITE_OK &&
	    pthread_create(&sc->ckpt_thread, NULL, ckpt_main, sc) == 0) {
		sc->ckpt_running = 1;
		return;
	}
	(void)sqlite3_exec(sc->db, "PRAGMA wal_autocheckpoint = 1000", NULL, NULL, NULL);
	pthread_cond_destroy(&sc->ckpt_cv);
	pthread_mutex_destroy(&sc->ckpt_mu);
	sqlite3_close(sc->ckpt_db);
	sc->ckpt_db = NULL;
}

static void ckpt_stop(struct sqlite_cold *sc)
{
	if (!sc->ckpt_running)
		return;
	pthread_mutex_lock(&sc->ckpt_mu);
	sc->ckpt_stop = 1;
	pthread_cond_signal(&sc->ckpt_cv);
	pthread_mutex_unlock(&sc->ckpt_mu);
	pthread_join(sc->ckpt_thread, NULL);
	sc->ckpt_running = 0;
	sc->ckpt_db = NULL; /* closed by the thread */
	pthread_cond_destroy(&sc->ckpt_cv);
	pthread_mutex_destroy(&sc->ckpt_mu);
}

static int prepare_all(struct sqlite_cold *sc)
{
	for (int i = 0; i < SC_STMT_COUNT; i++) {
		int rc = sqlite3_prepare_v3(sc->db, sc_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					    &sc->stmt[i], NULL);
		if (rc != SQLITE_OK) {
			log_sqlite("coldstore_prepare_failed", sc_names[i], sc->db, rc);
			return -FC_ESTORE;
		}
	}
	return 0;
}

static void release(struct sqlite_cold *sc)
{
	for (int i = 0; i < SC_STMT_COUNT; i++) {
		sqlite3_finalize(sc->stmt[i]);
		sc->stmt[i] = NULL;
	}
	ckpt_stop(sc);
	free(sc->path);
	if (sc->db) {
		/* Leave a small WAL behind: fold it into the database file. */
		(void)sqlite3_wal_checkpoint_v2(sc->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL,
						NULL);
		int rc = sqlite3_close(sc->db);
		if (rc != SQLITE_OK)
			log_sqlite("coldstore_close_failed", "close", sc->db, rc);
		sc->db = NULL;
	}
	for (int i = 0; i < 2; i++) {
		free(sc->q[i].v);
		sc->q[i].v = NULL;
	}
	free(sc);
}

int sqlite_cold_open_ex(coldstore_t **out, const char *path, int sync_full)
{
	*out = NULL;
	if (!path || !path[0] || path[0] == ':' || path[strlen(path) - 1] == '/')
		return -EINVAL;
	int rc = make_parent_dirs(path);
	if (rc < 0)
		return rc;
	if ((rc = create_file(path)) < 0)
		return rc;

	struct sqlite_cold *sc = calloc(1, sizeof *sc);
	if (!sc)
		return -ENOMEM;
	sc->base.ops = &sc_ops;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
	int src = sqlite3_open_v2(path, &sc->db, flags, NULL);
	if (src != SQLITE_OK) {
		log_sqlite("coldstore_open_failed", "open", sc->db, src);
		rc = src == SQLITE_NOMEM ? -ENOMEM : -FC_ESTORE;
		goto fail;
	}
	if ((rc = configure(sc->db, sync_full)) < 0 || (rc = migrate(sc->db)) < 0 ||
	    (rc = prepare_all(sc)) < 0)
		goto fail;
	sc->path = strdup(path);
	if (sc->path)
		ckpt_start(sc);
	LOGI("coldstore_open", "engine=sqlite version=%s schema=%d sync=%s", sqlite3_libversion(),
	     SC_SCHEMA_VERSION, sync_full ? "full" : "normal");
	*out = &sc->base;
	return 0;
fail:
	release(sc);
	return rc;
}

static void sc_close(coldstore_t *cs)
{
	struct sqlite_cold *sc = sc_from(cs);
	ASSERT(!sc->delivering);
	sc->closing = 1;
	sc_flush(cs);
	ASSERT(sc->q[sc->cur].n == 0);
	release(sc);
}
