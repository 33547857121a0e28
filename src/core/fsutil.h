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

#endif
