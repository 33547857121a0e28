/* Unit tests for the embedded blobstore: key rule, atomic put, get, head,
 * delete. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <sodium.h>

#include "store/fs_blob.h"

typedef struct {
	int calls, status;
	blob_info_t info;
	uint8_t data[64];
	size_t len;
} got_t;

static void on_info(void *arg, int status, const blob_info_t *info)
{
	got_t *g = arg;
	g->calls++;
	g->status = status;
	if (info)
		g->info = *info;
}

static void on_get(void *arg, int status, slice_t data)
{
	got_t *g = arg;
	g->calls++;
	g->status = status;
	g->len = data.len < sizeof g->data ? data.len : sizeof g->data;
	if (data.len)
		memcpy(g->data, data.ptr, g->len);
}

static void on_done(void *arg, int status)
{
	got_t *g = arg;
	g->calls++;
	g->status = status;
}

static void test_keys(void **state)
{
	(void)state;
	assert_true(blob_key_valid(SLICE_LIT("u/42/photo-1.jpg")));
	assert_true(blob_key_valid(SLICE_LIT("a")));
	assert_true(blob_key_valid(SLICE_LIT("a/.hidden")));
	assert_false(blob_key_valid(SLICE_LIT("")));
	assert_false(blob_key_valid(SLICE_LIT("/abs")));
	assert_false(blob_key_valid(SLICE_LIT("a//b")));
	assert_false(blob_key_valid(SLICE_LIT("a/../b")));
	assert_false(blob_key_valid(SLICE_LIT("a/./b")));
	assert_false(blob_key_valid(SLICE_LIT("..")));
	assert_false(blob_key_valid(SLICE_LIT("a/")));
	assert_false(blob_key_valid(SLICE_LIT("My Photo.jpg")));
	assert_false(blob_key_valid(SLICE_LIT("a+b")));
	char big[BLOB_KEY_MAX + 2];
	memset(big, 'k', sizeof big);
	assert_true(blob_key_valid(slice_make(big, BLOB_KEY_MAX)));
	assert_false(blob_key_valid(slice_make(big, BLOB_KEY_MAX + 1)));
}

static void test_put_get_head_delete(void **state)
{
	(void)state;
	char root[] = "/tmp/fourc-blob-XXXXXX";
	assert_non_null(mkdtemp(root));
	blobstore_t *bs;
	assert_int_equal(fs_blob_open(&bs, root), 0);
	got_t g = {0};
	slice_t key = SLICE_LIT("u/42/v.bin");
	assert_int_equal(blob_put(bs, key, SLICE_LIT("first"), on_info, &g), 0);
	assert_int_equal(g.status, 0);
	assert_int_equal(g.info.size, 5);
	uint8_t want[32];
	crypto_hash_sha256(want, (const uint8_t *)"first", 5);
	assert_memory_equal(g.info.sha256, want, 32);
	/* Replace atomically; no temporary file is left behind. */
	assert_int_equal(blob_put(bs, key, SLICE_LIT("second!"), on_info, &g), 0);
	assert_int_equal(blob_get(bs, key, on_get, &g), 0);
	assert_int_equal(g.status, 0);
	assert_int_equal(g.len, 7);
	assert_memory_equal(g.data, "second!", 7);
	assert_int_equal(blob_head(bs, key, on_info, &g), 0);
	assert_int_equal(g.info.size, 7);
	char dir[64];
	snprintf(dir, sizeof dir, "%s/u/42", root);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "test $(ls %s | wc -l) -eq 1", dir);
	assert_int_equal(system(cmd), 0);
	struct stat st;
	char path[96];
	snprintf(path, sizeof path, "%s/u/42/v.bin", root);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* Delete; deleting again succeeds; reads then say not found. */
	assert_int_equal(blob_delete(bs, key, on_done, &g), 0);
	assert_int_equal(g.status, 0);
	assert_int_equal(blob_delete(bs, key, on_done, &g), 0);
	assert_int_equal(g.status, 0);
	assert_int_equal(blob_get(bs, key, on_get, &g), 0);
	assert_true(g.status == -FC_ENOTFOUND);
	assert_int_equal(blob_head(bs, key, on_info, &g), 0);
	assert_true(g.status == -FC_ENOTFOUND);
	/* Invalid keys are refused without a callback. */
	int before = g.calls;
	assert_true(blob_put(bs, SLICE_LIT("../escape"), SLICE_LIT("x"), on_info, &g) == -EINVAL);
	assert_int_equal(g.calls, before);
	blob_close(bs);
	snprintf(cmd, sizeof cmd, "rm -rf %s", root);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_put_get_head_delete),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
