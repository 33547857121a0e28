/*
 * fs_blob: the embedded profile's blobstore, one file per object under a
 * root directory (key "a/b/c" is ROOT/a/b/c). Writes go to a temporary file
 * that is fsynced and renamed over the target, so a crash leaves either the
 * old or the new object. Every operation completes inline.
 */
#ifndef FC_STORE_FS_BLOB_H
#define FC_STORE_FS_BLOB_H

#include "store/blobstore.h"

/* Opens (creating, mode 0700) the root directory. */
FC_WUR int fs_blob_open(blobstore_t **out, const char *root);

#endif
