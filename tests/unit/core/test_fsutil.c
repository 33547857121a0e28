/* Unit tests for core/fsutil: mkdir -p and atomic, durable file replace. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "core/fsutil.h"

static void test_mkdir_and_write(void **state)
{
	(void)state;
	char root[] = "/tmp/fourc-fsutil-XXXXXX";
	assert_non_null(mkdtemp(root));
	char dir[128], file[160], cmd[200];
	snprintf(dir, sizeof dir, "%s/a/b/c", root);
	assert_int_equal(fs_mkdir_p(dir, 0700), 0);
	assert_int_equal(fs_mkdir_p(dir, 0700), 0); /* existing is fine */
	struct stat st;
	assert_int_equal(stat(dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	snprintf(file, sizeof file, "%s/f", dir);
	assert_int_equal(fs_write_atomic(file, "one", 3, 0600), 0);
	assert_int_equal(fs_write_atomic(file, "second", 6, 0600), 0);
	FILE *f = fopen(file, "rb");
	assert_non_null(f);
	char buf[16] = {0};
	assert_int_equal(fread(buf, 1, sizeof buf, f), 6);
	fclose(f);
	assert_string_equal(buf, "second");
	assert_int_equal(stat(file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* No temporary file is left next to it. */
	snprintf(cmd, sizeof cmd, "test $(ls %s | wc -l) -eq 1", dir);
	assert_int_equal(system(cmd), 0);
	/* A missing directory is an error, not a crash. */
	snprintf(file, sizeof file, "%s/nope/f", root);
	assert_true(fs_write_atomic(file, "x", 1, 0600) < 0);
	assert_true(fs_mkdir_p("", 0700) < 0);
	snprintf(cmd, sizeof cmd, "rm -rf %s", root);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mkdir_and_write),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
