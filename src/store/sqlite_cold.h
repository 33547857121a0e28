/*
 * sqlite_cold: the embedded profile's coldstore adapter, one SQLite database
 * in WAL mode.
 *
 * It keeps the coldstore contract with group commit: each operation runs at
 * once inside the batch transaction that the first operation after a flush
 * opens (BEGIN IMMEDIATE), each inside its own savepoint so a failed operation
 * undoes only its own writes. Results are copied to the heap and their
 * callbacks queued; cold_flush() commits (synchronous=FULL) and only then
 * calls them. One fsync therefore covers a whole loop iteration of work and no
 * result is reported before it is durable. See docs/storage.md.
 *
 * The store is owned by one thread; open, every operation, flush and close
 * happen on it.
 */
#ifndef FC_STORE_SQLITE_COLD_H
#define FC_STORE_SQLITE_COLD_H

#include "core/err.h"
#include "store/coldstore.h"

/* Opens (creating if needed) the database file at `path`, creating missing
 * parent directories (mode 0700) and the file itself with mode 0600, then
 * applies the schema migrations up to the current version. `path` must name a
 * file (":memory:" is refused: WAL needs one). On success stores the new store
 * in *out (release it with cold_close()) and returns 0; otherwise *out is NULL
 * and the result is -EINVAL, -ENOMEM, a negated errno from creating the
 * directories or file, or -FC_ESTORE (SQLite failure, or a database written by
 * a newer schema version). */
FC_WUR int sqlite_cold_open(coldstore_t **out, const char *path);

/* As sqlite_cold_open(), choosing durability: sync_full 1 syncs every commit
 * to stable storage (survives power loss); 0 writes every commit to the
 * operating system before its callbacks run (survives any crash of the
 * process, like a JetStream ack with default settings) without an fsync on
 * the latency path. sqlite_cold_open() uses 1. */
FC_WUR int sqlite_cold_open_ex(coldstore_t **out, const char *path, int sync_full);

#endif
