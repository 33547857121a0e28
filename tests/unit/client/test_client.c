/*
 * Unit tests for the client library without a server: the inner plaintext
 * format (exact bytes and every refusal), the profile files (modes, a round
 * trip, a damaged file), and the receive path (seq order, de-duplication,
 * gaps filled by SYNC, RESYNC, the peer rule, the cursor file) by feeding
 * DELIVER frames into the push queue as the connection would.
 */
#define _GNU_SOURCE /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ftw.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/client_int.h"
#include "core/log.h"

#define assert_rc(got, want)                                                     \
	do {                                                                     \
		long long got_ = (long long)(got), want_ = (long long)(want);    \
		if (got_ != want_)                                               \
			fail_msg("%s = %lld, expected %lld", #got, got_, want_); \
	} while (0)

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void tmpdir_make(char *out, size_t cap)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(out, cap, "%s/fourc-client-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	assert_non_null(mkdtemp(out));
}

static void tmpdir_remove(const char *dir)
{
	assert_rc(nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* ---- inner format ---------------------------------------------------------------- */

static void test_inner_bytes(void **state)
{
	(void)state;
	uint8_t *p = NULL;
	size_t n = 0;
	assert_rc(fcc_inner_encode(FCC_INNER_TEXT, 0x0102030405060708ull, SLICE_LIT("hi \xc3\xa4"),
				   &p, &n),
		  0);
	static const uint8_t want[] = {1, 1, 1, 2, 3, 4, 5, 6, 7, 8, 'h', 'i', ' ', 0xc3, 0xa4};
	assert_rc(n, sizeof want);
	assert_memory_equal(p, want, sizeof want);
	fcc_inner_t m;
	assert_rc(fcc_inner_decode(slice_make(p, n), &m), 0);
	assert_rc(m.version, 1);
	assert_rc(m.kind, FCC_INNER_TEXT);
	assert_true(m.peer == 0x0102030405060708ull);
	assert_rc(m.text.len, 5);
	assert_ptr_equal(m.text.ptr, p + 10); /* a view, not a copy */
	free(p);

	/* Empty text is a valid message. */
	assert_rc(fcc_inner_encode(FCC_INNER_TEXT, 7, slice_make(NULL, 0), &p, &n), 0);
	assert_rc(n, FCC_INNER_HDR_LEN);
	assert_rc(fcc_inner_decode(slice_make(p, n), &m), 0);
	assert_rc(m.text.len, 0);
	assert_true(m.peer == 7);
	free(p);
}

static void test_inner_refusals(void **state)
{
	(void)state;
	uint8_t *p = NULL;
	size_t n = 0;
	assert_rc(fcc_inner_encode(2, 1, SLICE_LIT("x"), &p, &n), -FC_ETYPE);
	assert_rc(fcc_inner_encode(FCC_INNER_TEXT, 1, SLICE_LIT("\xc3"), &p, &n), -FC_EUTF8);
	char *big = malloc(FCC_MAX_TEXT + 1);
	memset(big, 'a', FCC_MAX_TEXT + 1);
	assert_rc(fcc_inner_encode(FCC_INNER_TEXT, 1, slice_make(big, FCC_MAX_TEXT + 1), &p, &n),
		  -FC_ETOOBIG);
	assert_rc(fcc_inner_encode(FCC_INNER_TEXT, 1, slice_make(big, FCC_MAX_TEXT), &p, &n), 0);
	free(p);
	free(big);

	fcc_inner_t m;
	static const uint8_t shortp[] = {1, 1, 0, 0, 0, 0, 0, 0, 0};
	assert_rc(fcc_inner_decode(slice_make(shortp, sizeof shortp), &m), -FC_ETRUNC);
	static const uint8_t v2[] = {2, 1, 0, 0, 0, 0, 0, 0, 0, 1, 'a'};
	assert_rc(fcc_inner_decode(slice_make(v2, sizeof v2), &m), -FC_EVERSION);
	static const uint8_t k9[] = {1, 9, 0, 0, 0, 0, 0, 0, 0, 1, 'a'};
	assert_rc(fcc_inner_decode(slice_make(k9, sizeof k9), &m), -FC_ETYPE);
	static const uint8_t bad[] = {1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xed, 0xa0, 0x80};
	assert_rc(fcc_inner_decode(slice_make(bad, sizeof bad), &m), -FC_EUTF8);
}

/* ---- profile files ----------------------------------------------------------------- */

static void test_profile_files(void **state)
{
	(void)state;
	char root[256], dir[300], path[400];
	tmpdir_make(root, sizeof root);
	snprintf(dir, sizeof dir, "%s/deep/er/profile", root);
	fcc_t *c = NULL;
	assert_rc(fcc_open(&c, dir), 0);
	assert_false(fcc_has_identity(c));
	struct stat st;
	assert_rc(stat(dir, &st), 0);
	assert_rc(st.st_mode & 0777, 0700);

	c->has_id = 1;
	c->account = 1234567890123ull;
	c->device = 3;
	uint8_t pk[32];
	crypto_sign_keypair(pk, c->auth_sk);
	memcpy(c->auth_pk, pk, 32);
	snprintf(c->server, sizeof c->server, "wss://[::1]:8443/v1/ws");
	c->id_insecure = 1;
	snprintf(c->username, sizeof c->username, "carol");
	assert_rc(fcc_identity_save(c), 0);
	c->cursor = 42;
	assert_rc(fcc_ack(c), 0); /* not connected: only writes the cursor */
	uint8_t sk[64];
	memcpy(sk, c->auth_sk, 64);
	fcc_close(c);

	snprintf(path, sizeof path, "%s/identity", dir);
	assert_rc(stat(path, &st), 0);
	assert_rc(st.st_mode & 0777, 0600);
	c = NULL;
	assert_rc(fcc_open(&c, dir), 0);
	assert_true(fcc_has_identity(c));
	assert_true(fcc_account_id(c) == 1234567890123ull);
	assert_rc(fcc_device_id(c), 3);
	assert_string_equal(fcc_server(c), "wss://[::1]:8443/v1/ws");
	assert_string_equal(fcc_username(c), "carol");
	assert_true(fcc_cursor(c) == 42);
	assert_memory_equal(c->auth_sk, sk, 64);
	assert_memory_equal(c->auth_pk, pk, 32);
	fcc_conn_opts_t o;
	fcc_saved_opts(c, &o);
	assert_true(o.insecure);
	assert_null(o.ca_file);
	fcc_close(c);

	/* A damaged key is refused, not half-loaded. */
	FILE *f = fopen(path, "a");
	assert_non_null(f);
	fputs("auth_key=00\n", f);
	fclose(f);
	c = NULL;
	assert_rc(fcc_open(&c, dir), -FC_EMALFORMED);
	assert_null(c);
	tmpdir_remove(root);
}

/* ---- receive path --------------------------------------------------------------------- */

typedef struct rec {
	uint64_t seq[32];
	int status[32];
	int via_sync[32];
	uint64_t peer[32];
	char text[32][32];
	unsigned n;
	uint64_t lost_from, lost_to;
	unsigned lost_calls;
} rec_t;

static void on_msg(void *arg, const fcc_message_t *m)
{
	rec_t *r = arg;
	if (r->n >= 32)
		return;
	r->seq[r->n] = m->seq;
	r->status[r->n] = m->status;
	r->via_sync[r->n] = m->via_sync;
	r->peer[r->n] = m->peer;
	snprintf(r->text[r->n], sizeof r->text[0], "%.*s", (int)m->text.len,
		 (const char *)m->text.ptr);
	r->n++;
}

static void on_lost(void *arg, uint64_t from, uint64_t to)
{
	rec_t *r = arg;
	r->lost_from = from;
	r->lost_to = to;
	r->lost_calls++;
}

/* Queues a DELIVER as if it had been read from the connection. */
static void push_deliver(fcc_t *c, uint32_t req_id, uint64_t seq, uint64_t sender,
			 const uint8_t *ct, size_t n)
{
	wire_buf_t b;
	wire_buf_init(&b, 0);
	wire_deliver_t d = {.seq = seq,
			    .sender_account = sender,
			    .sender_device = 1,
			    .timestamp_ms = 1000 + seq,
			    .ciphertext = slice_make(ct, n)};
	assert_rc(wire_deliver_encode(&b, req_id, &d), 0);
	fcc_queue_push(c, wire_buf_slice(&b), WIRE_MSG_DELIVER);
	wire_buf_free(&b);
}

static void push_resync(fcc_t *c, uint64_t from, uint64_t to)
{
	wire_buf_t b;
	wire_buf_init(&b, 0);
	wire_resync_t r = {.lost_from = from, .lost_to = to};
	assert_rc(wire_resync_encode(&b, 9, &r), 0);
	fcc_queue_push(c, wire_buf_slice(&b), WIRE_MSG_RESYNC);
	wire_buf_free(&b);
}

static const uint8_t junk[] = {2, 'n', 'o', 't', ' ', 'a', ' ', 'm', 's', 'g'};

static void test_order_and_gaps(void **state)
{
	(void)state;
	char root[256];
	tmpdir_make(root, sizeof root);
	fcc_t *c = NULL;
	assert_rc(fcc_open(&c, root), 0);
	c->account = 500;
	c->device = 1;
	rec_t r;
	memset(&r, 0, sizeof r);
	fcc_handlers_t h = {.on_message = on_msg, .on_lost = on_lost};
	fcc_set_handlers(c, &h, &r);

	/* Live 2 and 3 arrive before the backlog: they wait for 1. */
	push_deliver(c, 0, 2, 77, junk, sizeof junk);
	push_deliver(c, 0, 3, 77, junk, sizeof junk);
	assert_rc(fcc_dispatch(c), 0);
	assert_rc(r.n, 0);
	assert_true(c->need_sync);
	assert_rc(c->npend, 2);
	/* The SYNC answer: 1, then 2 again (overlap with live). */
	push_deliver(c, 7, 1, 77, junk, sizeof junk);
	push_deliver(c, 7, 2, 77, junk, sizeof junk);
	assert_rc(fcc_dispatch(c), 3);
	assert_rc(r.n, 3);
	for (unsigned i = 0; i < 3; i++) {
		assert_rc(r.seq[i], i + 1);
		assert_true(r.status[i] < 0); /* not real ciphertext */
	}
	assert_rc(r.via_sync[0], 1);
	assert_rc(r.via_sync[1], 0); /* 2 came from the live copy first */
	assert_rc(fcc_cursor(c), 3);
	push_deliver(c, 0, 3, 77, junk, sizeof junk);
	push_deliver(c, 0, 1, 77, junk, sizeof junk);
	assert_rc(fcc_dispatch(c), 0);
	fcc_stats_t st;
	fcc_stats(c, &st);
	assert_rc(st.duplicates, 3);
	assert_rc(st.failed, 3);

	/* RESYNC: 4..6 expired; 8 waits for 7. */
	push_deliver(c, 0, 8, 77, junk, sizeof junk);
	push_resync(c, 4, 6);
	assert_rc(fcc_dispatch(c), 0);
	assert_rc(r.lost_calls, 1);
	assert_rc(r.lost_from, 4);
	assert_rc(r.lost_to, 6);
	assert_rc(fcc_cursor(c), 6);
	push_deliver(c, 0, 7, 77, junk, sizeof junk);
	assert_rc(fcc_dispatch(c), 2);
	assert_rc(r.seq[3], 7);
	assert_rc(r.seq[4], 8);
	assert_rc(fcc_cursor(c), 8);

	/* A RESYNC range above the cursor waits: 9 and 10 still come. */
	push_resync(c, 11, 12);
	push_deliver(c, 7, 9, 77, junk, sizeof junk);
	push_deliver(c, 7, 10, 77, junk, sizeof junk);
	push_deliver(c, 0, 13, 77, junk, sizeof junk);
	assert_rc(fcc_dispatch(c), 3);
	assert_rc(r.seq[5], 9);
	assert_rc(r.seq[6], 10);
	assert_rc(r.seq[7], 13);
	assert_rc(r.lost_calls, 2);
	assert_rc(r.lost_from, 11);
	assert_rc(r.lost_to, 12);
	assert_rc(fcc_cursor(c), 13);

	assert_rc(fcc_ack(c), 0);
	fcc_close(c);
	c = NULL;
	assert_rc(fcc_open(&c, root), 0);
	assert_rc(fcc_cursor(c), 13);
	fcc_close(c);
	tmpdir_remove(root);
}

/* A real envelope from a sender's e2e state, decrypted by the client. */
static void encrypt_for(e2e_t *from, uint64_t to_acct, uint64_t peer, const char *text,
			uint8_t **ct, size_t *ctn)
{
	uint8_t *pt;
	size_t ptn;
	assert_rc(fcc_inner_encode(FCC_INNER_TEXT, peer, slice_cstr(text), &pt, &ptn), 0);
	assert_rc(e2e_encrypt(from, to_acct, 1, pt, ptn, ct, ctn), 0);
	free(pt);
}

static void test_decrypt_and_peer_rule(void **state)
{
	(void)state;
	char root[256], sdir[300];
	tmpdir_make(root, sizeof root);
	snprintf(sdir, sizeof sdir, "%s/sender", root);
	fcc_t *c = NULL;
	char rdir[300];
	snprintf(rdir, sizeof rdir, "%s/receiver", root);
	assert_rc(fcc_open(&c, rdir), 0);
	c->account = 500;
	c->device = 1;
	rec_t r;
	memset(&r, 0, sizeof r);
	fcc_handlers_t h = {.on_message = on_msg};
	fcc_set_handlers(c, &h, &r);

	/* The sender builds a session from the receiver's bundle. */
	e2e_t *s = NULL;
	assert_rc(e2e_open(&s, sdir), 0);
	e2e_public_t pub;
	e2e_prekey_t *pk;
	assert_rc(e2e_public(c->e2e, &pub), 0);
	assert_rc(e2e_prekeys_generate(c->e2e, 1, &pk), 0);
	e2e_bundle_t b = {.registration_id = pub.registration_id,
			  .identity_pub = slice_make(pub.identity_pub, 33),
			  .spk_pub = slice_make(pub.spk_pub, 33),
			  .spk_sig = slice_make(pub.spk_sig, 64),
			  .spk_id = pub.spk_id,
			  .otpk_id = pk[0].id,
			  .otpk_pub = slice_make(pk[0].pub, 33)};
	assert_rc(e2e_session_init(s, 500, 1, &b), 0);
	free(pk);

	uint8_t *ct;
	size_t ctn;
	encrypt_for(s, 500, 77, "first", &ct, &ctn);
	push_deliver(c, 0, 1, 77, ct, ctn);
	free(ct);
	/* A sender naming another conversation is refused. */
	encrypt_for(s, 500, 12345, "spoofed", &ct, &ctn);
	push_deliver(c, 0, 2, 77, ct, ctn);
	free(ct);
	encrypt_for(s, 500, 77, "third", &ct, &ctn);
	push_deliver(c, 0, 3, 77, ct, ctn);
	push_deliver(c, 0, 3, 77, ct, ctn); /* duplicate */
	free(ct);
	assert_rc(fcc_dispatch(c), 3);
	assert_rc(r.n, 3);
	assert_rc(r.status[0], 0);
	assert_string_equal(r.text[0], "first");
	assert_rc(r.peer[0], 77);
	assert_rc(r.status[1], -FC_EMALFORMED);
	assert_string_equal(r.text[1], "");
	assert_rc(r.status[2], 0);
	assert_string_equal(r.text[2], "third");
	fcc_stats_t st;
	fcc_stats(c, &st);
	assert_rc(st.delivered, 2);
	assert_rc(st.failed, 1);
	assert_rc(st.duplicates, 1);
	e2e_close(s);
	fcc_close(c);
	tmpdir_remove(root);
}

/* Backoff: full jitter below min(cap, base * 2^n); hints are a floor with at
 * most 10% jitter on top. */
static void test_retry_delays(void **state)
{
	(void)state;
	for (unsigned attempt = 0; attempt < 12; attempt++) {
		uint32_t cap = FCC_BACKOFF_BASE_MS << (attempt > 7 ? 7 : attempt);
		if (cap > FCC_BACKOFF_CAP_MS)
			cap = FCC_BACKOFF_CAP_MS;
		uint32_t lo = UINT32_MAX, hi = 0;
		for (int i = 0; i < 2000; i++) {
			uint32_t d = fcc_retry_delay_ms(0, attempt);
			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
		}
		assert_true(lo >= 1 && hi <= cap);
		/* Full jitter really spreads: both ends of the window are used. */
		assert_true(lo < cap / 10 + 2);
		assert_true(hi > cap - cap / 10 - 1);
	}
	for (int i = 0; i < 1000; i++) {
		uint32_t d = fcc_retry_delay_ms(2000, 3);
		assert_true(d >= 2000 && d <= 2200);
	}
	assert_true(fcc_retry_delay_ms(600000, 0) <= 66000); /* hints are capped at 60 s */
}

int main(void)
{
	log_init(LOG_ERROR, 2);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inner_bytes),           cmocka_unit_test(test_inner_refusals),
		cmocka_unit_test(test_profile_files),         cmocka_unit_test(test_order_and_gaps),
		cmocka_unit_test(test_decrypt_and_peer_rule), cmocka_unit_test(test_retry_delays),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
