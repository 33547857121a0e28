/*
 * Unit tests for core/utf8: the automaton is checked against an independent
 * reference (code point range arithmetic, not a state table) over every
 * string of up to three bytes and a large sample of four-byte strings, both
 * for the verdict and for the exact byte at which a string fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/utf8.h"

/* cmocka's integer asserts compare unsigned; this one keeps the sign. */
#define assert_rc(got, want)                                                     \
	do {                                                                     \
		long long got_ = (long long)(got), want_ = (long long)(want);    \
		if (got_ != want_)                                               \
			fail_msg("%s = %lld, expected %lld", #got, got_, want_); \
	} while (0)

/*
 * Reference: can s[0..k) (a lead byte and k-1 further bytes) still be the
 * start of a well-formed encoding? The code points reachable from a prefix
 * form one interval, obtained by filling the missing continuation bytes with
 * 80 and BF; the prefix is viable when that interval meets the range its
 * sequence length may encode, surrogates excluded.
 */
static int ref_seq_len(uint8_t lead)
{
	if (lead >= 0xc0 && lead <= 0xdf)
		return 2;
	if (lead >= 0xe0 && lead <= 0xef)
		return 3;
	if (lead >= 0xf0 && lead <= 0xf7)
		return 4;
	return 0;
}

static int ref_viable(const uint8_t *s, int k)
{
	static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
	static const uint32_t max_cp[5] = {0, 0, 0x7ff, 0xffff, 0x10ffff};
	static const uint8_t lead_bits[5] = {0, 0, 0x1f, 0x0f, 0x07};
	int len = ref_seq_len(s[0]);

	if (len == 0)
		return 0;
	for (int j = 1; j < k; j++)
		if ((s[j] & 0xc0) != 0x80)
			return 0;
	uint32_t lo = s[0] & lead_bits[len], hi = lo;
	for (int j = 1; j < len; j++) {
		lo = (lo << 6) | (j < k ? (s[j] & 0x3fu) : 0u);
		hi = (hi << 6) | (j < k ? (s[j] & 0x3fu) : 0x3fu);
	}
	if (lo < min_cp[len])
		lo = min_cp[len];
	if (hi > max_cp[len])
		hi = max_cp[len];
	if (lo > hi)
		return 0;
	if (lo >= 0xd800 && hi <= 0xdfff)
		return 0;
	return 1;
}

/* Index of the first byte that makes p[0..n) impossible, or n; *complete is
 * set when no sequence is left open at the end. */
static size_t ref_first_bad(const uint8_t *p, size_t n, int *complete)
{
	size_t i = 0;

	*complete = 1;
	while (i < n) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		int len = ref_seq_len(p[i]);
		int k = 1;
		if (!ref_viable(p + i, 1))
			return i;
		while (k < len && i + (size_t)k < n) {
			k++;
			if (!ref_viable(p + i, k))
				return i + (size_t)k - 1;
		}
		if (k < len) {
			*complete = 0;
			return n;
		}
		i += (size_t)len;
	}
	return n;
}

/* The automaton fed one byte at a time: index of the first failing byte. */
static size_t dfa_first_bad(const uint8_t *p, size_t n, int *complete)
{
	uint32_t st = 0;
	for (size_t i = 0; i < n; i++)
		if (utf8_feed(&st, p + i, 1) < 0)
			return i;
	*complete = utf8_is_complete(st);
	return n;
}

static void check_against_ref(const uint8_t *p, size_t n)
{
	int rc_ref, rc_dfa = 1;
	size_t want = ref_first_bad(p, n, &rc_ref);
	size_t got = dfa_first_bad(p, n, &rc_dfa);
	if (got != want || (want == n && rc_ref != rc_dfa))
		fail_msg("len %zu bytes %02x %02x %02x %02x: dfa fails at %zu, ref at %zu", n,
			 n > 0 ? p[0] : 0, n > 1 ? p[1] : 0, n > 2 ? p[2] : 0, n > 3 ? p[3] : 0,
			 got, want);
	int whole = utf8_valid(p, n);
	if (whole != (want == n && rc_ref))
		fail_msg("utf8_valid disagrees on %zu bytes starting %02x", n, n ? p[0] : 0);
}

static void test_exhaustive_short(void **state)
{
	(void)state;
	uint8_t b[3];
	for (unsigned a = 0; a < 256; a++) {
		b[0] = (uint8_t)a;
		check_against_ref(b, 1);
		for (unsigned c = 0; c < 256; c++) {
			b[1] = (uint8_t)c;
			check_against_ref(b, 2);
			for (unsigned d = 0; d < 256; d++) {
				b[2] = (uint8_t)d;
				check_against_ref(b, 3);
			}
		}
	}
}

static void test_sampled_four_bytes(void **state)
{
	(void)state;
	static const uint8_t pick[] = {0x00, 0x41, 0x7f, 0x80, 0x81, 0x8f, 0x90, 0x9f, 0xa0, 0xbf,
				       0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
	const size_t np = sizeof pick;
	uint8_t b[4];
	for (unsigned a = 0x80; a < 256; a++)
		for (size_t i = 0; i < np; i++)
			for (size_t j = 0; j < np; j++)
				for (size_t k = 0; k < np; k++) {
					b[0] = (uint8_t)a;
					b[1] = pick[i];
					b[2] = pick[j];
					b[3] = pick[k];
					check_against_ref(b, 4);
				}
}

static size_t encode(uint32_t cp, uint8_t *out)
{
	if (cp < 0x80) {
		out[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (uint8_t)(0xc0 | (cp >> 6));
		out[1] = (uint8_t)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (uint8_t)(0xe0 | (cp >> 12));
		out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (uint8_t)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (uint8_t)(0xf0 | (cp >> 18));
	out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (uint8_t)(0x80 | (cp & 0x3f));
	return 4;
}

/* Every scalar value is accepted; every surrogate and everything above
 * U+10FFFF (written with the generic 4-byte pattern) is refused. */
static void test_every_code_point(void **state)
{
	(void)state;
	uint8_t b[4];
	for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
		size_t n = encode(cp, b);
		int want = !(cp >= 0xd800 && cp <= 0xdfff);
		if (utf8_valid(b, n) != want)
			fail_msg("U+%04X: expected valid=%d", cp, want);
	}
	for (uint32_t cp = 0x110000; cp < 0x200000; cp += 0x1001) {
		size_t n = encode(cp, b);
		assert_int_equal(n, 4);
		assert_false(utf8_valid(b, n));
	}
}

/* Overlong forms of every code point that has a shorter encoding. */
static void test_overlongs(void **state)
{
	(void)state;
	uint8_t b[4];
	for (uint32_t cp = 0; cp < 0x10000; cp++) {
		if (cp < 0x80) {
			b[0] = (uint8_t)(0xc0 | (cp >> 6));
			b[1] = (uint8_t)(0x80 | (cp & 0x3f));
			assert_false(utf8_valid(b, 2));
		}
		if (cp < 0x800) {
			b[0] = 0xe0;
			b[1] = (uint8_t)(0x80 | (cp >> 6));
			b[2] = (uint8_t)(0x80 | (cp & 0x3f));
			assert_false(utf8_valid(b, 3));
		}
		b[0] = 0xf0;
		b[1] = (uint8_t)(0x80 | (cp >> 12));
		b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (uint8_t)(0x80 | (cp & 0x3f));
		assert_false(utf8_valid(b, 4));
	}
}

/* The byte sequences of the cases file (C03) and other classic inputs. */
static void test_known_inputs(void **state)
{
	(void)state;
	static const uint8_t overlong_slash[] = {0xc0, 0xaf};
	static const uint8_t surrogate[] = {0xed, 0xa0, 0x80};
	static const uint8_t above_max[] = {0xf4, 0x90, 0x80, 0x80};
	static const uint8_t euro[] = {0xe2, 0x82, 0xac};
	static const uint8_t max_cp[] = {0xf4, 0x8f, 0xbf, 0xbf};
	static const uint8_t last_bmp[] = {0xef, 0xbf, 0xbf};
	static const uint8_t lone_cont[] = {0x80};
	static const uint8_t ab_ce_x[] = {'a', 'b', 0xce, 'x'};

	assert_false(utf8_valid(overlong_slash, sizeof overlong_slash));
	assert_false(utf8_valid(surrogate, sizeof surrogate));
	assert_false(utf8_valid(above_max, sizeof above_max));
	assert_true(utf8_valid(euro, sizeof euro));
	assert_true(utf8_valid(max_cp, sizeof max_cp));
	assert_true(utf8_valid(last_bmp, sizeof last_bmp));
	assert_false(utf8_valid(lone_cont, sizeof lone_cont));
	assert_false(utf8_valid(euro, 2));
	assert_true(utf8_valid(NULL, 0));
	assert_true(utf8_valid((const uint8_t *)"Hello", 5));

	/* Fail-fast: C0 fails at once, ED A0 at the A0, F4 90 at the 90. */
	int c;
	assert_int_equal(dfa_first_bad(overlong_slash, 2, &c), 0);
	assert_int_equal(dfa_first_bad(surrogate, 3, &c), 1);
	assert_int_equal(dfa_first_bad(above_max, 4, &c), 1);
	assert_int_equal(dfa_first_bad(ab_ce_x, 4, &c), 3);
}

/* "€" split at every point, including 1+2 as in C03d. */
static void test_split_feeding(void **state)
{
	(void)state;
	static const uint8_t text[] = "a\xe2\x82\xac"
				      "b\xf0\x9f\x98\x80"
				      "c\xc3\xbc";
	const size_t n = sizeof text - 1;
	for (size_t cut1 = 0; cut1 <= n; cut1++)
		for (size_t cut2 = cut1; cut2 <= n; cut2++) {
			uint32_t st = 0;
			assert_rc(utf8_feed(&st, text, cut1), 0);
			assert_rc(utf8_feed(&st, text + cut1, cut2 - cut1), 0);
			assert_rc(utf8_feed(&st, text + cut2, n - cut2), 0);
			assert_true(utf8_is_complete(st));
		}

	uint32_t st = 0;
	assert_rc(utf8_feed(&st, (const uint8_t *)"\xe2", 1), 0);
	assert_false(utf8_is_complete(st));
	assert_rc(utf8_feed(&st, (const uint8_t *)"\x82\xac", 2), 0);
	assert_true(utf8_is_complete(st));
}

/* Once failed, the state stays failed, even for empty or ASCII input. */
static void test_failure_is_sticky(void **state)
{
	(void)state;
	uint32_t st = 0;
	assert_rc(utf8_feed(&st, (const uint8_t *)"\xff", 1), -FC_EUTF8);
	assert_false(utf8_is_complete(st));
	assert_rc(utf8_feed(&st, (const uint8_t *)"abc", 3), -FC_EUTF8);
	assert_rc(utf8_feed(&st, NULL, 0), -FC_EUTF8);
	st = 0;
	assert_rc(utf8_feed(&st, (const uint8_t *)"abc", 3), 0);
	assert_true(utf8_is_complete(st));
}

/* The ASCII fast path must not skip a bad byte at any offset or alignment. */
static void test_ascii_fast_path(void **state)
{
	(void)state;
	uint8_t buf[80];
	for (size_t pos = 0; pos < 64; pos++)
		for (size_t tail = 0; tail < 9; tail++) {
			size_t n = pos + 1 + tail;
			memset(buf, 'a', n);
			buf[pos] = 0x80;
			int c;
			assert_int_equal(dfa_first_bad(buf, n, &c), pos);
			uint32_t st = 0;
			assert_rc(utf8_feed(&st, buf, n), -FC_EUTF8);
			buf[pos] = 'z';
			assert_true(utf8_valid(buf, n));
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exhaustive_short),  cmocka_unit_test(test_sampled_four_bytes),
		cmocka_unit_test(test_every_code_point),  cmocka_unit_test(test_overlongs),
		cmocka_unit_test(test_known_inputs),      cmocka_unit_test(test_split_feeding),
		cmocka_unit_test(test_failure_is_sticky), cmocka_unit_test(test_ascii_fast_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
