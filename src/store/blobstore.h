/*
 * blobstore: the media seam. Objects are opaque (already end-to-end encrypted
 * by clients), addressed by a key, written whole and read whole. The
 * production adapter speaks S3 (SigV4, presigned URLs); the embedded adapter
 * (fs_blob) keeps one file per object under a directory.
 *
 * Keys: 1..BLOB_KEY_MAX bytes of [A-Za-z0-9._-/], no empty path segment,
 * no "." or ".." segment, not starting with '/'; anything else is -EINVAL.
 * (The same rule keeps S3 canonical URIs simple: nothing in a key needs
 * percent-encoding.)
 *
 * Completion contract: 0 means accepted and the callback runs exactly once
 * (inline for the embedded adapter, later on the caller's loop for network
 * adapters); negative means refused, no callback. Result bytes are valid
 * during the callback only. One thread owns a store.
 */
#ifndef FC_STORE_BLOBSTORE_H
#define FC_STORE_BLOBSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/slice.h"

#define BLOB_KEY_MAX 256
#define BLOB_MAX_SIZE (64u * 1024 * 1024)

typedef struct blobstore blobstore_t;

typedef struct blob_info {
	uint64_t size;
	uint8_t sha256[32]; /* of the stored bytes */
} blob_info_t;

typedef void (*blob_done_cb)(void *arg, int status);
typedef void (*blob_info_cb)(void *arg, int status, const blob_info_t *info);
typedef void (*blob_get_cb)(void *arg, int status, slice_t data);

struct blob_ops {
	int (*put)(blobstore_t *bs, slice_t key, slice_t data, blob_info_cb cb, void *arg);
	int (*get)(blobstore_t *bs, slice_t key, blob_get_cb cb, void *arg);
	int (*head)(blobstore_t *bs, slice_t key, blob_info_cb cb, void *arg);
	int (*del)(blobstore_t *bs, slice_t key, blob_done_cb cb, void *arg);
	void (*close)(blobstore_t *bs);
};

struct blobstore {
	const struct blob_ops *ops;
};

/* 1 if key satisfies the key rule above. */
int blob_key_valid(slice_t key);

/* Stores data under key, replacing any object there atomically (a reader
 * sees the old or the new object, never a mix); completes with its info
 * once durable. -FC_ETOOBIG over BLOB_MAX_SIZE. */
FC_WUR static inline int blob_put(blobstore_t *bs, slice_t key, slice_t data, blob_info_cb cb,
				  void *arg)
{
	return bs->ops->put(bs, key, data, cb, arg);
}

/* Reads a whole object. -FC_ENOTFOUND if absent. */
FC_WUR static inline int blob_get(blobstore_t *bs, slice_t key, blob_get_cb cb, void *arg)
{
	return bs->ops->get(bs, key, cb, arg);
}

/* Size and SHA-256 of an object (what a server checks before publishing a
 * client's upload). -FC_ENOTFOUND if absent. */
FC_WUR static inline int blob_head(blobstore_t *bs, slice_t key, blob_info_cb cb, void *arg)
{
	return bs->ops->head(bs, key, cb, arg);
}

/* Deletes an object; deleting an absent key succeeds (as in S3). */
FC_WUR static inline int blob_delete(blobstore_t *bs, slice_t key, blob_done_cb cb, void *arg)
{
	return bs->ops->del(bs, key, cb, arg);
}

static inline void blob_close(blobstore_t *bs)
{
	bs->ops->close(bs);
}

#endif
