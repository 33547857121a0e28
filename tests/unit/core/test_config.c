/* Unit tests for core/config: defaults, INI overlay, and errors that name the
 * file, the line and the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/config.h"
#include "core/err.h"
#include "core/log.h"

static char *write_tmp(const char *text)
{
	static char path[64];
	snprintf(path, sizeof path, "/tmp/fourc-config-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	size_t n = strlen(text);
	assert_int_equal(write(fd, text, n), n);
	close(fd);
	return path;
}

static void test_defaults(void **state)
{
	(void)state;
	fc_config_t c;
	config_defaults(&c);
	assert_string_equal(c.listen, "127.0.0.1:8080");
	assert_string_equal(c.tls_listen, "127.0.0.1:8443");
	assert_string_equal(c.admin, "127.0.0.1:9100");
	assert_string_equal(c.data, "./var");
	assert_int_equal(c.max_message, 1048576);
	assert_int_equal(c.retention_ms, 30ull * 24 * 3600 * 1000);
	assert_int_equal(c.n_invites, 0);
}

static void test_load_overlays_values(void **state)
{
	(void)state;
	const char *p = write_tmp("; comment\n[server]\nlisten = 127.0.0.1:18080\nloops = 3\n"
				  "[accounts]\ninvite_codes = a1, b2,c3\nmax_devices = 4\n"
				  "[mailbox]\nretention_seconds = 60\n[log]\nlevel = debug\n");
	fc_config_t c;
	char err[256] = "";
	config_defaults(&c);
	assert_int_equal(config_load(&c, p, err, sizeof err), 0);
	assert_string_equal(c.listen, "127.0.0.1:18080");
	assert_int_equal(c.loops, 3);
	assert_int_equal(c.n_invites, 3);
	assert_string_equal(c.invites[0], "a1");
	assert_string_equal(c.invites[1], "b2");
	assert_string_equal(c.invites[2], "c3");
	assert_int_equal(c.max_devices, 4);
	assert_int_equal(c.retention_ms, 60000);
	assert_int_equal(c.log_level, LOG_DEBUG);
	assert_string_equal(c.tls_listen, "127.0.0.1:8443"); /* untouched */
	unlink(p);
}

static void expect_error(const char *text, const char *want)
{
	const char *p = write_tmp(text);
	fc_config_t c;
	char err[256] = "";
	config_defaults(&c);
	int rc = config_load(&c, p, err, sizeof err);
	assert_true(rc == -FC_ECONFIG);
	char full[512];
	snprintf(full, sizeof full, "%s:%s", p, want);
	assert_string_equal(err, full);
	unlink(p);
}

static void test_errors_name_file_line_key(void **state)
{
	(void)state;
	expect_error("[server]\nlisten = 127.0.0.1:1\nbogus = 1\n",
		     "3: [server] bogus: unknown key");
	expect_error("[limits]\n\nmax_message = 12\n",
		     "3: [limits] max_message: expected an integer in [1024, 16777216]");
	expect_error("[nope]\nx = 1\n", "2: [nope] x: unknown section");
	expect_error("[log]\nlevel = loud\n",
		     "2: [log] level: expected debug, info, warn or error");
	expect_error("[server]\nloops = -1\n", "2: [server] loops: expected an integer in [0, 64]");
	expect_error("[server]\nloops = 2x\n", "2: [server] loops: expected an integer in [0, 64]");
	expect_error("[server]\nthis line has no equals sign\n", "2: syntax error");
	expect_error("[accounts]\nverifier = sms\n",
		     "2: [accounts] verifier: expected invite or open");
	expect_error("[store]\nsync = sometimes\n", "2: [store] sync: expected normal or full");
}

static void test_missing_file(void **state)
{
	(void)state;
	fc_config_t c;
	char err[256] = "";
	config_defaults(&c);
	assert_true(config_load(&c, "/nonexistent/fourcd.ini", err, sizeof err) == -FC_ECONFIG);
	assert_non_null(strstr(err, "/nonexistent/fourcd.ini: cannot open"));
}

static void test_set_and_split(void **state)
{
	(void)state;
	fc_config_t c;
	char err[128];
	config_defaults(&c);
	assert_int_equal(config_set(&c, "server", "data", "/srv/x", err, sizeof err), 0);
	assert_string_equal(c.data, "/srv/x");
	assert_true(config_set(&c, "server", "loops", "99", err, sizeof err) == -FC_ECONFIG);
	assert_string_equal(err, "[server] loops: expected an integer in [0, 64]");
	char host[64];
	int port;
	assert_int_equal(config_split_addr("127.0.0.1:8080", host, sizeof host, &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 8080);
	assert_int_equal(config_split_addr("[::1]:443", host, sizeof host, &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 443);
	assert_true(config_split_addr("nohost", host, sizeof host, &port) < 0);
	assert_true(config_split_addr("1.2.3.4:99999", host, sizeof host, &port) < 0);
	assert_true(config_split_addr(":80", host, sizeof host, &port) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_load_overlays_values),
		cmocka_unit_test(test_errors_name_file_line_key),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_set_and_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
