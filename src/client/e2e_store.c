/*
 * e2e_store: the e2e module's persistent state in SQLite, and the libsignal
 * store callbacks (sessions, one-time prekeys, signed prekeys, identities,
 * sender keys) that read and write it.
 *
 * One database file per profile, in WAL mode. Every statement is prepared
 * once at open and reset after each use. libsignal hands us serialized
 * records and we store them as opaque blobs keyed the way libsignal
 * addresses them: (name, device) where name is the peer's decimal account id.
 *
 * Where libsignal allows "negative on failure", a storage failure is
 * reported as -FC_ESTORE: the project's FC codes lie below SG_ERR_MINIMUM, so
 * the caller can tell it from a protocol error. Out of memory is SG_ERR_NOMEM
 * and a missing prekey SG_ERR_INVALID_KEY_ID, as libsignal expects. A failed
 * callback leaves the surrounding transaction for the caller to roll back.
 *
 * secure_delete is on so that consumed one-time prekeys and replaced session
 * records are overwritten in the file rather than left in free pages.
 */
#define E2E_INTERNAL
#include "client/e2e.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <signal/signal_protocol.h>
#include <sqlite3.h>

#include "core/log.h"

#define E2E_SCHEMA_VERSION 1
/* libsignal names are decimal account ids (at most 20 digits); anything
 * longer did not come from this module. */
#define NAME_MAX_LEN 64
/* Waiting for another process holding the database (a CLI next to a running
 * client) before a write gives up with -FC_ESTORE. */
#define BUSY_TIMEOUT_MS 5000

enum st {
	ST_META_GET,
	ST_META_SET,
	ST_SESSION_GET,
	ST_SESSION_DEVICES,
	ST_SESSION_PUT,
	ST_SESSION_HAS,
	ST_SESSION_DEL,
	ST_SESSION_DEL_ALL,
	ST_PREKEY_GET,
	ST_PREKEY_PUT,
	ST_PREKEY_HAS,
	ST_PREKEY_DEL,
	ST_SPK_GET,
	ST_SPK_PUT,
	ST_SPK_HAS,
	ST_SPK_DEL,
	ST_IDENT_GET,
	ST_IDENT_PUT,
	ST_SENDER_GET,
	ST_SENDER_PUT,
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_COUNT
};

static const char *const st_sql[ST_COUNT] = {
	[ST_META_GET] = "SELECT v FROM meta WHERE k = ?1",
	[ST_META_SET] = "INSERT OR REPLACE INTO meta(k, v) VALUES (?1, ?2)",
	[ST_SESSION_GET] =
		"SELECT record, user_record FROM sessions WHERE name = ?1 AND device = ?2",
	[ST_SESSION_DEVICES] = "SELECT device FROM sessions WHERE name = ?1 ORDER BY device",
	[ST_SESSION_PUT] = "INSERT OR REPLACE INTO sessions(name, device, record, user_record) "
			   "VALUES (?1, ?2, ?3, ?4)",
	[ST_SESSION_HAS] = "SELECT 1 FROM sessions WHERE name = ?1 AND device = ?2",
	[ST_SESSION_DEL] = "DELETE FROM sessions WHERE name = ?1 AND device = ?2",
	[ST_SESSION_DEL_ALL] = "DELETE FROM sessions WHERE name = ?1",
	[ST_PREKEY_GET] = "SELECT record FROM prekeys WHERE id = ?1",
	[ST_PREKEY_PUT] = "INSERT OR REPLACE INTO prekeys(id, record) VALUES (?1, ?2)",
	[ST_PREKEY_HAS] = "SELECT 1 FROM prekeys WHERE id = ?1",
	[ST_PREKEY_DEL] = "DELETE FROM prekeys WHERE id = ?1",
	[ST_SPK_GET] = "SELECT record FROM signed_prekeys WHERE id = ?1",
	[ST_SPK_PUT] = "INSERT OR REPLACE INTO signed_prekeys(id, record) VALUES (?1, ?2)",
	[ST_SPK_HAS] = "SELECT 1 FROM signed_prekeys WHERE id = ?1",
	[ST_SPK_DEL] = "DELETE FROM signed_prekeys WHERE id = ?1",
	[ST_IDENT_GET] = "SELECT key FROM identities WHERE name = ?1 AND device = ?2",
	[ST_IDENT_PUT] = "INSERT OR REPLACE INTO identities(name, device, key) VALUES (?1, ?2, ?3)",
	[ST_SENDER_GET] = "SELECT record, user_record FROM sender_keys "
			  "WHERE group_id = ?1 AND name = ?2 AND device = ?3",
	[ST_SENDER_PUT] = "INSERT OR REPLACE INTO sender_keys(group_id, name, device, record, "
			  "user_record) VALUES (?1, ?2, ?3, ?4, ?5)",
	/* IMMEDIATE takes the write lock up front, so a transaction never
	 * fails half way with SQLITE_BUSY on its first write. */
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
};

static const char schema_sql[] =
	"CREATE TABLE meta(k TEXT PRIMARY KEY, v NOT NULL);"
	"CREATE TABLE sessions(name TEXT NOT NULL, device INTEGER NOT NULL,"
	" record BLOB NOT NULL, user_record BLOB, PRIMARY KEY(name, device));"
	"CREATE TABLE prekeys(id INTEGER PRIMARY KEY, record BLOB NOT NULL);"
	"CREATE TABLE signed_prekeys(id INTEGER PRIMARY KEY, record BLOB NOT NULL);"
	/* key NULL: libsignal asked to forget the key but keep the entry. */
	"CREATE TABLE identities(name TEXT NOT NULL, device INTEGER NOT NULL,"
	" key BLOB, PRIMARY KEY(name, device));"
	"CREATE TABLE sender_keys(group_id BLOB NOT NULL, name TEXT NOT NULL,"
	" device INTEGER NOT NULL, record BLOB NOT NULL, user_record BLOB,"
	" PRIMARY KEY(group_id, name, device));";

struct e2e_store {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
};

static void db_fail(e2e_store_t *s, const char *what)
{
	LOGW("e2e_store_error", "op=%s code=%d", what, sqlite3_extended_errcode(s->db));
}

/* Resets a statement after use so it holds no read lock and no borrowed
 * bindings. */
static void st_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

static int bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
	if (n > INT_MAX)
		return -FC_ESTORE;
	if (!p)
		return sqlite3_bind_null(st, i) == SQLITE_OK ? 0 : -FC_ESTORE;
	/* The buffer outlives the statement's use: it is reset before return. */
	return sqlite3_bind_blob(st, i, p, (int)n, SQLITE_STATIC) == SQLITE_OK ? 0 : -FC_ESTORE;
}

static int bind_name(sqlite3_stmt *st, int i, const char *name, size_t len)
{
	if (!name || len == 0 || len > NAME_MAX_LEN)
		return SG_ERR_INVAL;
	return sqlite3_bind_text(st, i, name, (int)len, SQLITE_STATIC) == SQLITE_OK ? 0 :
										      -FC_ESTORE;
}

static int bind_addr(sqlite3_stmt *st, const signal_protocol_address *a)
{
	int rc = bind_name(st, 1, a->name, a->name_len);
	if (rc < 0)
		return rc;
	return sqlite3_bind_int64(st, 2, a->device_id) == SQLITE_OK ? 0 : -FC_ESTORE;
}

/* Runs a statement that returns no rows. */
static int st_exec(e2e_store_t *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	st_done(st);
	if (rc != SQLITE_DONE) {
		db_fail(s, what);
		return -FC_ESTORE;
	}
	return 0;
}

/* Steps a query expected to return zero or one row: 1 row, 0 none. The
 * caller reads the columns and then calls st_done. */
static int st_row(e2e_store_t *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	db_fail(s, what);
	return -FC_ESTORE;
}

/* Copies column i into a fresh signal_buffer. An empty or NULL column is
 * reported as corrupt: libsignal never stores an empty record. */
static int column_buffer(sqlite3_stmt *st, int i, signal_buffer **out)
{
	const void *p = sqlite3_column_blob(st, i);
	int n = sqlite3_column_bytes(st, i);
	if (!p || n <= 0)
		return -FC_ESTORE;
	signal_buffer *b = signal_buffer_create(p, (size_t)n);
	if (!b)
		return SG_ERR_NOMEM;
	*out = b;
	return 0;
}

/* ---- meta ---- */

int e2e_store_meta_blob_get(e2e_store_t *s, const char *key, uint8_t *buf, size_t cap, size_t *len)
{
	sqlite3_stmt *st = s->st[ST_META_GET];
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	int rc = st_row(s, st, "meta_get");
	if (rc == 1) {
		const void *p = sqlite3_column_blob(st, 0);
		int n = sqlite3_column_bytes(st, 0);
		if (n < 0 || (size_t)n > cap || (n > 0 && !p)) {
			rc = -FC_ESTORE;
		} else {
			if (n > 0)
				memcpy(buf, p, (size_t)n);
			*len = (size_t)n;
		}
	}
	st_done(st);
	return rc;
}

int e2e_store_meta_blob_set(e2e_store_t *s, const char *key, const uint8_t *v, size_t n)
{
	sqlite3_stmt *st = s->st[ST_META_SET];
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	int rc = bind_blob(st, 2, v, n);
	if (rc < 0) {
		st_done(st);
		return rc;
	}
	return st_exec(s, st, "meta_set");
}

int e2e_store_meta_u32_get(e2e_store_t *s, const char *key, uint32_t *v)
{
	sqlite3_stmt *st = s->st[ST_META_GET];
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	int rc = st_row(s, st, "meta_get");
	if (rc == 1) {
		/* Type first: reading a value may convert it in place. */
		int type = sqlite3_column_type(st, 0);
		sqlite3_int64 x = sqlite3_column_int64(st, 0);
		if (type != SQLITE_INTEGER || x < 0 || x > UINT32_MAX)
			rc = -FC_ESTORE;
		else
			*v = (uint32_t)x;
	}
	st_done(st);
	return rc;
}

int e2e_store_meta_u32_set(e2e_store_t *s, const char *key, uint32_t v)
{
	sqlite3_stmt *st = s->st[ST_META_SET];
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, v);
	return st_exec(s, st, "meta_set");
}

/* ---- transactions ---- */

int e2e_store_begin(e2e_store_t *s)
{
	return st_exec(s, s->st[ST_BEGIN], "begin");
}

int e2e_store_commit(e2e_store_t *s)
{
	int rc = st_exec(s, s->st[ST_COMMIT], "commit");
	if (rc < 0)
		e2e_store_rollback(s);
	return rc;
}

void e2e_store_rollback(e2e_store_t *s)
{
	/* After some errors SQLite has already rolled back; then there is no
	 * transaction left and ROLLBACK would fail, harmlessly. */
	if (!sqlite3_get_autocommit(s->db))
		(void)st_exec(s, s->st[ST_ROLLBACK], "rollback");
}

/* ---- session store ---- */

static int session_load(signal_buffer **record, signal_buffer **user_record,
			const signal_protocol_address *address, void *user_data)
{
	e2e_store_t *s = user_data;
	sqlite3_stmt *st = s->st[ST_SESSION_GET];
	int rc = bind_addr(st, address);
	if (rc == 0)
		rc = st_row(s, st, "session_get");
	if (rc == 1) {
		signal_buffer *rec = NULL, *user = NULL;
		int r = column_buffer(st, 0, &rec);
		if (r == 0 && sqlite3_column_type(st, 1) != SQLITE_NULL)
			r = column_buffer(st, 1, &user);
		if (r < 0) {
			signal_buffer_bzero_free(rec);
			rc = r;
		} else {
			*record = rec;
			if (user)
				*user_record = user;
		}
	}
	st_done(st);
	return rc;
}

static int session_devices(signal_int_list **sessions, const char *name, size_t name_len,
			   void *user_data)
{
	e2e_store_t *s = user_data;
	sqlite3_stmt *st = s->st[ST_SESSION_DEVICES];
	int rc = bind_name(st, 1, name, name_len);
	if (rc < 0) {
		st_done(st);
		return rc;
	}
	signal_int_list *list = signal_int_list_alloc();
	if (!list) {
		st_done(st);
		return SG_ERR_NOMEM;
	}
	int step;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (signal_int_list_push_back(list, sqlite3_column_int(st, 0)) < 0) {
			step = SQLITE_NOMEM;
			break;
		}
	}
	st_done(st);
	if (step != SQLITE_DONE) {
		signal_int_list_free(list);
		db_fail(s, "session_devices");
		return -FC_ESTORE;
	}
	*sessions = list;
	return (int)signal_int_list_size(list);
}

static int session_store(const signal_protocol_address *address, uint8_t *record, size_t record_len,
			 uint8_t *user_record, size_t user_record_len, void *user_data)
{
	e2e_store_t *s = user_data;
	sqlite3_stmt *st = s->st[ST_SESSION_PUT];
	int rc = bind_addr(st, address);
	if (rc == 0)
		rc = bind_blob(st, 3, record, record_len);
	if (rc == 0)
		rc = bind_blob(st, 4, user_record_len ? user_record : NULL, user_record_len);
	if (rc < 0) {
		st_done(st);
		return rc;
	}
	return st_exec(s, st, "session_put");
}

static int session_contains(const signal_protocol_address *address, void *user_data)
{
	e2e_store_t *s = user_data;
	sqlite3_stmt *st = s->st[ST_SESSION_HAS];
	int rc = bind_addr(st, address);
	if (rc == 0)
		rc = st_row(s, st, "session_has");
	st_done(st);
	return rc;
}

static int session_delete(const signal_protocol_address *address, void *user_data)
{
	e2e_store_t *s = user_data;
	sqlite3_stmt *st = s->st[ST_SESSION_DEL];
	int rc = bind_addr(st, address);
	if (rc < 0) {
		st_done(st);
		return rc;
	}
	rc = st_exec(s, st, "session_del");
	return rc < 0 ? rc : sqlite3_changes(s->db) > 0;
}

static int session_delete_all(const char *name, size_t name_len, void *user_data)
{
	e2e_store_t *s = user_data;
	sqlite3_stmt *st = s->st[ST_SESSION_DEL_ALL];
	int rc = bind_name(st, 1, name, name_len);
	if (rc < 0) {
		st_done(st);
		return rc;
	}
	rc = st_exec(s, st, "session_del_all");
	return rc < 0 ? rc : sqlite3_changes(s->db);
}

/* ---- one-time and signed prekeys: the same shape on two tables ---- */

static int key_load(e2e_store_t *s, enum st which, signal_buffer **record, uint32_t id)
{
	sqlite3_stmt *st = s->st[which];
	sqlite3_bind_int64(st, 1, id);
	int rc = st_row(s, st, "key_get");
	if (rc == 1)
		rc = column_buffer(st, 0, record);
	else if (rc == 0)
		rc = SG_ERR_INVALID_KEY_ID;
	st_done(st);
	return rc;
}

static int key_store(e2e_store_t *s, enum st which, uint32_t id, const uint8_t *record,
		     size_t record_len)
{
	sqlite3_stmt *st = s->st[which];
	sqlite3_bind_int64(st, 1, id);
	int rc = bind_blob(st, 2, record, record_len);
	if (rc < 0) {
		st_done(st);
		return rc;
	}
	return st_exec(s, st, "key_put");
}

static int key_contains(e2e_store_t *s, enum st which, uint32_t id)
{
	sqlite3_stmt *st = s->st[which];
	sqlite3_bind_int64(st, 1, id);
	int rc = st_row(s, st, "key_has");
	st_done(st);
	return rc;
}

static int key_remove(e2e_store_t *s, enum st which, uint32_t id)
{
	sqlite3_stmt *st = s->st[which];
	sqlite3_bind_int64(st, 1, id);
	return st_exec(s, st, "key_del");
}

static int prekey_load(signal_buffer **record, uint32_t id, void *user_data)
{
	return key_load(user_data, ST_PREKEY_GET, record, id);
}

static int prekey_store(uint32_t id, uint8_t *record, size_t record_len, void *user_data)
{
	return key_store(user_data, ST_PREKEY_PUT, id, record, record_len);
}

static int prekey_contains(uint32_t id, void *user_data)
{
	/* The interface has no error value: a failure reads as "absent". */
	return key_contains(user_data, ST_PREKEY_HAS, id) == 1;
}

static int prekey_remove(uint32_t id, void *user_data)
{
	return key_remove(user_data, ST_PREKEY_DEL, id);
}

static int spk_load(signal_buffer **record, uint32_t id, void *user_data)
{
	return key_load(user_data, ST_SPK_GET, record, id);
}

static int spk_store(uint32_t id, uint8_t *record, size_t record_len, void *user_data)
{
	return key_store(user_data, ST_SPK_PUT, id, record, record_len);
}

static int spk_contains(uint32_t id, void *user_data)
{
	return key_contains(user_data, ST_SPK_HAS, id) == 1;
}

static int spk_remove(uint32_t id, void *user_data)
{
	return key_remove(user_data, ST_SPK_DEL, id);
}

/* ---- identity store ---- */

static int identity_pair_get(signal_buffer **public_data, signal_buffer **private_data,
			     void *user_data)
{
	e2e_store_t *s = user_data;
	uint8_t pub[E2E_PUB_LEN], priv[64];
	size_t pub_len = 0, priv_len = 0;
	int rc = e2e_store_meta_blob_get(s, E2E_META_IDENTITY_PUB, pub, sizeof pub, &pub_len);
	if (rc == 1)
		rc = e2e_store_meta_blob_get(s, E2E_META_IDENTITY_PRIV, priv, sizeof priv,
					     &priv_len);
	/* libsignal dereferences both buffers on success: absence is an error. */
	if (rc == 0)
		rc = -FC_ESTORE;
	if (rc < 0)
		goto out;
	signal_buffer *p = signal_buffer_create(pub, pub_len);
	signal_buffer *q = signal_buffer_create(priv, priv_len);
	if (!p || !q) {
		signal_buffer_free(p);
		signal_buffer_bzero_free(q);
		rc = SG_ERR_NOMEM;
		goto out;
	}
	*public_data = p;
	*private_data = q;
	rc = 0;
out:
	explicit_bzero(priv, sizeof priv);
	return rc;
}

static int registration_id_get(void *user_data, uint32_t *registration_id)
{
	int rc = e2e_store_meta_u32_get(user_data, E2E_META_REGISTRATION_ID, registration_id);
	return rc == 1 ? 0 : rc == 0 ? -FC_ESTORE : rc;
}

static int identity_save(const signal_protocol_address *address, uint8_t *key_data, size_t key_len,
			 void *user_data)
{
	e2e_store_t *s = user_data;
	sqlite3_stmt *st = s->st[ST_IDENT_PUT];
	int rc = bind_addr(st, address);
	if (rc == 0)
		rc = bind_blob(st, 3, key_len ? key_data : NULL, key_len);
	if (rc < 0) {
		st_done(st);
		return rc;
	}
	return st_exec(s, st, "identity_put");
}

/* Trust on first use: no entry (or a forgotten key) is trusted; otherwise the
 * key must be byte-for-byte the one saved. */
static int identity_trusted(const signal_protocol_address *address, uint8_t *key_data,
			    size_t key_len, void *user_data)
{
	e2e_store_t *s = user_data;
	sqlite3_stmt *st = s->st[ST_IDENT_GET];
	int rc = bind_addr(st, address);
	if (rc == 0)
		rc = st_row(s, st, "identity_get");
	if (rc == 0) {
		rc = 1;
	} else if (rc == 1) {
		const void *p = sqlite3_column_blob(st, 0);
		int n = sqlite3_column_bytes(st, 0);
		if (!p || n == 0)
			rc = 1;
		else
			rc = (size_t)n == key_len && memcmp(p, key_data, key_len) == 0;
	}
	st_done(st);
	if (rc == 0)
		LOGW("e2e_identity_untrusted", "account=%.*s device=%d", (int)address->name_len,
		     address->name, (int)address->device_id);
	return rc;
}

/* ---- sender key store ---- */

static int sender_bind(sqlite3_stmt *st, const signal_protocol_sender_key_name *n)
{
	int rc = bind_blob(st, 1, n->group_id, n->group_id_len);
	if (rc == 0 && (!n->group_id || n->group_id_len == 0))
		rc = SG_ERR_INVAL;
	if (rc == 0)
		rc = bind_name(st, 2, n->sender.name, n->sender.name_len);
	if (rc == 0)
		rc = sqlite3_bind_int64(st, 3, n->sender.device_id) == SQLITE_OK ? 0 : -FC_ESTORE;
	return rc;
}

static int sender_key_store(const signal_protocol_sender_key_name *sender_key_name, uint8_t *record,
			    size_t record_len, uint8_t *user_record, size_t user_record_len,
			    void *user_data)
{
	e2e_store_t *s = user_data;
	sqlite3_stmt *st = s->st[ST_SENDER_PUT];
	int rc = sender_bind(st, sender_key_name);
	if (rc == 0)
		rc = bind_blob(st, 4, record, record_len);
	if (rc == 0)
		rc = bind_blob(st, 5, user_record_len ? user_record : NULL, user_record_len);
	if (rc < 0) {
		st_done(st);
		return rc;
	}
	return st_exec(s, st, "sender_key_put");
}

static int sender_key_load(signal_buffer **record, signal_buffer **user_record,
			   const signal_protocol_sender_key_name *sender_key_name, void *user_data)
{
	e2e_store_t *s = user_data;
	sqlite3_stmt *st = s->st[ST_SENDER_GET];
	int rc = sender_bind(st, sender_key_name);
	if (rc == 0)
		rc = st_row(s, st, "sender_key_get");
	if (rc == 1) {
		signal_buffer *rec = NULL, *user = NULL;
		int r = column_buffer(st, 0, &rec);
		if (r == 0 && sqlite3_column_type(st, 1) != SQLITE_NULL)
			r = column_buffer(st, 1, &user);
		if (r < 0) {
			signal_buffer_bzero_free(rec);
			rc = r;
		} else {
			*record = rec;
			if (user)
				*user_record = user;
		}
	}
	st_done(st);
	return rc;
}

int e2e_store_install(e2e_store_t *s, struct signal_protocol_store_context *sc)
{
	signal_protocol_session_store sessions = {
		.load_session_func = session_load,
		.get_sub_device_sessions_func = session_devices,
		.store_session_func = session_store,
		.contains_session_func = session_contains,
		.delete_session_func = session_delete,
		.delete_all_sessions_func = session_delete_all,
		.user_data = s,
	};
	signal_protocol_pre_key_store prekeys = {
		.load_pre_key = prekey_load,
		.store_pre_key = prekey_store,
		.contains_pre_key = prekey_contains,
		.remove_pre_key = prekey_remove,
		.user_data = s,
	};
	signal_protocol_signed_pre_key_store spks = {
		.load_signed_pre_key = spk_load,
		.store_signed_pre_key = spk_store,
		.contains_signed_pre_key = spk_contains,
		.remove_signed_pre_key = spk_remove,
		.user_data = s,
	};
	signal_protocol_identity_key_store identities = {
		.get_identity_key_pair = identity_pair_get,
		.get_local_registration_id = registration_id_get,
		.save_identity = identity_save,
		.is_trusted_identity = identity_trusted,
		.user_data = s,
	};
	signal_protocol_sender_key_store senders = {
		.store_sender_key = sender_key_store,
		.load_sender_key = sender_key_load,
		.user_data = s,
	};
	if (signal_protocol_store_context_set_session_store(sc, &sessions) < 0 ||
	    signal_protocol_store_context_set_pre_key_store(sc, &prekeys) < 0 ||
	    signal_protocol_store_context_set_signed_pre_key_store(sc, &spks) < 0 ||
	    signal_protocol_store_context_set_identity_key_store(sc, &identities) < 0 ||
	    signal_protocol_store_context_set_sender_key_store(sc, &senders) < 0)
		return -EINVAL;
	return 0;
}

/* ---- open and close ---- */

static int pragma_text(e2e_store_t *s, const char *sql, char *out, size_t cap)
{
	sqlite3_stmt *st = NULL;
	int rc = -FC_ESTORE;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_step(st) != SQLITE_ROW)
		goto out;
	const unsigned char *t = sqlite3_column_text(st, 0);
	if (!t)
		goto out;
	snprintf(out, cap, "%s", (const char *)t);
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

static int schema_ensure(e2e_store_t *s)
{
	char buf[32];
	if (pragma_text(s, "PRAGMA user_version", buf, sizeof buf) < 0)
		return -FC_ESTORE;
	long v = strtol(buf, NULL, 10);
	if (v == E2E_SCHEMA_VERSION)
		return 0;
	if (v > E2E_SCHEMA_VERSION)
		return -FC_EVERSION;
	if (v != 0)
		return -FC_ESTORE;
	char sql[sizeof schema_sql + 64];
	snprintf(sql, sizeof sql, "BEGIN IMMEDIATE;%sPRAGMA user_version = %d;COMMIT;", schema_sql,
		 E2E_SCHEMA_VERSION);
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		db_fail(s, "schema");
		if (!sqlite3_get_autocommit(s->db))
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return -FC_ESTORE;
	}
	return 0;
}

static int db_configure(e2e_store_t *s)
{
	char mode[16];
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	if (pragma_text(s, "PRAGMA journal_mode = WAL", mode, sizeof mode) < 0 ||
	    strcmp(mode, "wal") != 0) {
		db_fail(s, "wal");
		return -FC_ESTORE;
	}
	/* FULL also in WAL mode: a ratchet step that was reported committed
	 * must survive power loss, or a key would be used twice. */
	static const char pragmas[] = "PRAGMA synchronous = FULL;"
				      "PRAGMA secure_delete = ON;"
				      "PRAGMA foreign_keys = ON;";
	if (sqlite3_exec(s->db, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
		db_fail(s, "pragmas");
		return -FC_ESTORE;
	}
	return 0;
}

int e2e_store_open(e2e_store_t **out, const char *path)
{
	/* Create the file ourselves so it starts 0600; SQLite gives the -wal
	 * and -shm files the same mode as the database. */
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	close(fd);

	e2e_store_t *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	int rc = -FC_ESTORE;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW;
	if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
		if (s->db)
			db_fail(s, "open");
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 1);
	rc = db_configure(s);
	if (rc < 0)
		goto fail;
	rc = schema_ensure(s);
	if (rc < 0)
		goto fail;
	for (int i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(s->db, st_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
				       NULL) != SQLITE_OK) {
			db_fail(s, "prepare");
			rc = -FC_ESTORE;
			goto fail;
		}
	}
	*out = s;
	return 0;
fail:
	e2e_store_close(s);
	return rc;
}

void e2e_store_close(e2e_store_t *s)
{
	if (!s)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	/* The last connection to close checkpoints the WAL into the file. */
	if (sqlite3_close(s->db) != SQLITE_OK)
		LOGW("e2e_store_error", "op=close code=%d", sqlite3_extended_errcode(s->db));
	free(s);
}
