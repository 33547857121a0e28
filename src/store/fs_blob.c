#include "store/fs_blob.h"

#include "core/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ROOT_MAX 512

struct fs_blob {
	blobstore_t base;
	char root[ROOT_MAX];
};

int blob_key_valid(slice_t key)
{
	if (key.len == 0 || key.len > BLOB_KEY_MAX || key.ptr[0] == '/')
		return 0;
	size_t seg = 0, dots = 0;
	for (size_t i = 0; i <= key.len; i++) {
		uint8_t c = i < key.len ? key.ptr[i] : '/';
		if (c == '/') {
			if (seg == 0 || seg == dots) /* empty, "." or ".." (or "...") */
				return 0;
			seg = dots = 0;
			continue;
		}
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			 (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
		if (!ok)
			return 0;
		seg++;
		dots += c == '.';
	}
	return 1;
}

static int path_of(struct fs_blob *b, slice_t key, char *out, size_t cap)
{
	if (!blob_key_valid(key))
		return -EINVAL;
	int n = snprintf(out, cap, "%s/%.*s", b->root, (int)key.len, (const char *)key.ptr);
	return n > 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
}

static int mkdirs_for(char *path)
{
	for (char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = 0;
		int rc = mkdir(path, 0700);
		*p = '/';
		if (rc != 0 && errno != EEXIST)
			return -errno;
	}
	return 0;
}

static int fs_put(blobstore_t *bs, slice_t key, slice_t data, blob_info_cb cb, void *arg)
{
	struct fs_blob *b = (struct fs_blob *)bs;
	char path[ROOT_MAX + BLOB_KEY_MAX + 2];
	int rc = path_of(b, key, path, sizeof path);
	if (rc != 0)
		return rc;
	if (data.len > BLOB_MAX_SIZE)
		return -FC_ETOOBIG;
	if ((rc = mkdirs_for(path)) != 0)
		return rc;
	if ((rc = fs_write_atomic(path, data.ptr, data.len, 0600)) != 0)
		return rc;
	blob_info_t info = {.size = data.len};
	crypto_hash_sha256(info.sha256, data.ptr, data.len);
	cb(arg, 0, &info);
	return 0;
}

/* Reads a whole file into a malloc'd buffer. */
static int read_file(const char *path, uint8_t **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -FC_ENOTFOUND : -errno;
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > BLOB_MAX_SIZE) {
		close(fd);
		return -FC_ESTORE;
	}
	uint8_t *buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	size_t got = 0;
	while (buf && got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			break;
		}
		got += (size_t)r;
	}
	close(fd);
	if (!buf)
		return -ENOMEM;
	if (got != (size_t)st.st_size) {
		free(buf);
		return -FC_ESTORE;
	}
	*out = buf;
	*len = got;
	return 0;
}

/* Reads the object of key whole: 0 with *buf (free it) set, or the error
 * the callback must get; -EINVAL for a bad key is returned separately. */
static int load(struct fs_blob *b, slice_t key, uint8_t **buf, size_t *len, int *status)
{
	char path[ROOT_MAX + BLOB_KEY_MAX + 2];
	int rc = path_of(b, key, path, sizeof path);
	if (rc != 0)
		return rc;
	*buf = NULL;
	*len = 0;
	*status = read_file(path, buf, len);
	return 0;
}

static int fs_get(blobstore_t *bs, slice_t key, blob_get_cb cb, void *arg)
{
	uint8_t *buf;
	size_t len;
	int st, rc = load((struct fs_blob *)bs, key, &buf, &len, &st);
	if (rc != 0)
		return rc;
	cb(arg, st, st == 0 ? slice_make(buf, len) : slice_make(NULL, 0));
	free(buf);
	return 0;
}

static int fs_head(blobstore_t *bs, slice_t key, blob_info_cb cb, void *arg)
{
	uint8_t *buf;
	size_t len;
	int st, rc = load((struct fs_blob *)bs, key, &buf, &len, &st);
	if (rc != 0)
		return rc;
	blob_info_t info = {.size = len};
	if (st == 0)
		crypto_hash_sha256(info.sha256, buf, len);
	cb(arg, st, st == 0 ? &info : NULL);
	free(buf);
	return 0;
}

static int fs_del(blobstore_t *bs, slice_t key, blob_done_cb cb, void *arg)
{
	struct fs_blob *b = (struct fs_blob *)bs;
	char path[ROOT_MAX + BLOB_KEY_MAX + 2];
	int rc = path_of(b, key, path, sizeof path);
	if (rc != 0)
		return rc;
	rc = unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
	if (cb)
		cb(arg, rc);
	return 0;
}

static void fs_close(blobstore_t *bs)
{
	free(bs);
}

static const struct blob_ops fs_ops = {
	.put = fs_put, .get = fs_get, .head = fs_head, .del = fs_del, .close = fs_close};

int fs_blob_open(blobstore_t **out, const char *root)
{
	size_t n = strlen(root);
	if (n == 0 || n >= ROOT_MAX)
		return -EINVAL;
	struct fs_blob *b = calloc(1, sizeof *b);
	if (!b)
		return -ENOMEM;
	memcpy(b->root, root, n + 1);
	char probe[ROOT_MAX + 2];
	snprintf(probe, sizeof probe, "%s/", root);
	int rc = mkdirs_for(probe);
	if (rc != 0) {
		free(b);
		return rc;
	}
	b->base.ops = &fs_ops;
	*out = &b->base;
	return 0;
}
