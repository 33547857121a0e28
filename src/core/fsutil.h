/*
 * fsutil: small file-system helpers shared by the server's start-up code.
 */
#ifndef FC_CORE_FSUTIL_H
#define FC_CORE_FSUTIL_H

#include <sys/types.h>

#include "core/err.h"

/* Creates path and any missing parents with mode (existing ones are left
 * as they are). Returns 0, -ENAMETOOLONG, or a negated errno. */
FC_WUR int fs_mkdir_p(const char *path, mode_t mode);

/* Replaces the file at path with data, atomically and durably: a new file
 * (mode) next to it is written and fsynced, renamed over path, and the
 * directory is fsynced, so after a crash path holds the old or the new
 * content, never a mixture. Concurrent writers each use their own temporary
 * name. Returns 0 or a negated errno. */
FC_WUR int fs_write_atomic(const char *path, const void *data, size_t n, mode_t mode);

#endif
