/*
 * Unit tests for client/e2e: Signal-protocol sessions between profiles that
 * live in temporary directories, their persistence, trust on first use,
 * padding, and the OpenSSL crypto provider against published test vectors.
 */
#define _GNU_SOURCE /* memmem */
#define E2E_INTERNAL
#include "client/e2e.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <signal/group_cipher.h>
#include <signal/group_session_builder.h>
#include <signal/protocol.h>
#include <signal/signal_protocol.h>

#include "core/log.h"

enum { ALICE_ACCT = 1001, BOB_ACCT = 2002, CAROL_ACCT = 3003 };

/* A profile: a temporary directory and the handle open on it. */
typedef struct prof {
	char dir[256];
	e2e_t *e;
	uint64_t account;
	uint32_t device;
} prof_t;

/* What a test needs to build a bundle: the uploaded public part and one
 * one-time prekey, kept alive while the bundle's slices point into them. */
typedef struct upload {
	e2e_public_t pub;
	e2e_prekey_t pk;
	e2e_bundle_t b;
} upload_t;

static void prof_new(prof_t *p, uint64_t account, uint32_t device)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(p->dir, sizeof p->dir, "%s/fourc-e2e-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	assert_non_null(mkdtemp(p->dir));
	p->account = account;
	p->device = device;
	p->e = NULL;
	assert_int_equal(e2e_open(&p->e, p->dir), 0);
}

static void prof_reopen(prof_t *p)
{
	e2e_close(p->e);
	p->e = NULL;
	assert_int_equal(e2e_open(&p->e, p->dir), 0);
}

static void rm_in(const char *dir, const char *name)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	unlink(path);
}

static void prof_free(prof_t *p)
{
	e2e_close(p->e);
	p->e = NULL;
	rm_in(p->dir, "e2e.db");
	rm_in(p->dir, "e2e.db-wal");
	rm_in(p->dir, "e2e.db-shm");
	assert_int_equal(rmdir(p->dir), 0);
}

/* Publishes p's keys the way a device uploads them, with one fresh one-time
 * prekey when with_otpk. */
static void upload_make(prof_t *p, upload_t *u, int with_otpk)
{
	memset(u, 0, sizeof *u);
	assert_int_equal(e2e_public(p->e, &u->pub), 0);
	u->b.registration_id = u->pub.registration_id;
	u->b.identity_pub = slice_make(u->pub.identity_pub, sizeof u->pub.identity_pub);
	u->b.spk_id = u->pub.spk_id;
	u->b.spk_pub = slice_make(u->pub.spk_pub, sizeof u->pub.spk_pub);
	u->b.spk_sig = slice_make(u->pub.spk_sig, sizeof u->pub.spk_sig);
	if (with_otpk) {
		e2e_prekey_t *pks = NULL;
		assert_int_equal(e2e_prekeys_generate(p->e, 1, &pks), 0);
		u->pk = pks[0];
		free(pks);
		u->b.otpk_id = u->pk.id;
		u->b.otpk_pub = slice_make(u->pk.pub, sizeof u->pk.pub);
	}
}

/* from builds a session with to's device from a freshly made bundle. */
static void session_connect(prof_t *from, prof_t *to, int with_otpk)
{
	upload_t u;
	upload_make(to, &u, with_otpk);
	assert_int_equal(e2e_session_init(from->e, to->account, to->device, &u.b), 0);
	assert_int_equal(e2e_has_session(from->e, to->account, to->device), 1);
}

typedef struct env {
	uint8_t *p;
	size_t n;
} env_t;

static env_t seal(prof_t *from, prof_t *to, const char *msg)
{
	env_t v = {0};
	assert_int_equal(e2e_encrypt(from->e, to->account, to->device, (const uint8_t *)msg,
				     strlen(msg), &v.p, &v.n),
			 0);
	assert_non_null(v.p);
	assert_true(v.n > 1);
	return v;
}

/* to opens v as coming from from and checks it reads msg. */
static void open_expect(prof_t *to, prof_t *from, env_t v, const char *msg)
{
	uint8_t *pt = NULL;
	size_t n = 0;
	assert_int_equal(e2e_decrypt(to->e, from->account, from->device, v.p, v.n, &pt, &n), 0);
	assert_int_equal(n, strlen(msg));
	assert_memory_equal(pt, msg, n);
	free(pt);
}

static int open_rc(prof_t *to, prof_t *from, const uint8_t *p, size_t len)
{
	uint8_t *pt = NULL;
	size_t n = 0;
	int rc = e2e_decrypt(to->e, from->account, from->device, p, len, &pt, &n);
	if (rc == 0)
		free(pt);
	else
		assert_null(pt);
	return rc;
}

/* One message each way, checked. */
static void ping_pong(prof_t *a, prof_t *b, const char *m1, const char *m2)
{
	env_t v = seal(a, b, m1);
	open_expect(b, a, v, m1);
	free(v.p);
	v = seal(b, a, m2);
	assert_int_equal(v.p[0], E2E_MSG_NORMAL);
	open_expect(a, b, v, m2);
	free(v.p);
}

/* ---- identity, keys, profile layout ---- */

static void test_open_creates_private_profile(void **state)
{
	prof_t p;
	prof_new(&p, ALICE_ACCT, 1);
	char sub[300], db[320];
	snprintf(sub, sizeof sub, "%s/profile", p.dir);
	e2e_t *e = NULL;
	assert_int_equal(e2e_open(&e, sub), 0);
	struct stat sb;
	assert_int_equal(stat(sub, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	snprintf(db, sizeof db, "%s/e2e.db", sub);
	assert_int_equal(stat(db, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	e2e_close(e);
	rm_in(sub, "e2e.db");
	rm_in(sub, "e2e.db-wal");
	rm_in(sub, "e2e.db-shm");
	assert_int_equal(rmdir(sub), 0);

	/* A regular file where the directory should be. */
	char file[320];
	snprintf(file, sizeof file, "%s/e2e.db", p.dir);
	e = NULL;
	assert_int_equal(e2e_open(&e, file), -ENOTDIR);
	assert_null(e);
	assert_int_equal(e2e_open(&e, ""), -EINVAL);
	prof_free(&p);
}

static void test_public_is_stable_across_reopen(void **state)
{
	prof_t p;
	prof_new(&p, ALICE_ACCT, 1);
	e2e_public_t a, b;
	assert_int_equal(e2e_public(p.e, &a), 0);
	assert_int_equal(a.identity_pub[0], 0x05);
	assert_int_equal(a.spk_pub[0], 0x05);
	assert_int_equal(a.spk_id, 1);
	assert_true(a.registration_id >= 1 && a.registration_id <= 16380);
	assert_int_equal(e2e_public(p.e, &b), 0);
	assert_memory_equal(&a, &b, sizeof a);
	prof_reopen(&p);
	assert_int_equal(e2e_public(p.e, &b), 0);
	assert_memory_equal(&a, &b, sizeof a);

	/* A second profile has its own identity. */
	prof_t q;
	prof_new(&q, BOB_ACCT, 1);
	assert_int_equal(e2e_public(q.e, &b), 0);
	assert_memory_not_equal(a.identity_pub, b.identity_pub, sizeof a.identity_pub);
	prof_free(&q);
	prof_free(&p);
}

static void test_prekey_ids_continue(void **state)
{
	prof_t p;
	prof_new(&p, BOB_ACCT, 1);
	e2e_prekey_t *pk = NULL;
	assert_int_equal(e2e_prekeys_generate(p.e, 5, &pk), 0);
	for (unsigned i = 0; i < 5; i++) {
		assert_int_equal(pk[i].id, i + 1);
		assert_int_equal(pk[i].pub[0], 0x05);
		for (unsigned j = 0; j < i; j++)
			assert_memory_not_equal(pk[i].pub, pk[j].pub, sizeof pk[i].pub);
	}
	free(pk);
	prof_reopen(&p);
	assert_int_equal(e2e_prekeys_generate(p.e, 3, &pk), 0);
	assert_int_equal(pk[0].id, 6);
	assert_int_equal(pk[2].id, 8);
	free(pk);
	pk = NULL;
	assert_int_equal(e2e_prekeys_generate(p.e, 0, &pk), -EINVAL);
	assert_int_equal(e2e_prekeys_generate(p.e, E2E_MAX_PREKEYS_PER_CALL + 1, &pk), -FC_ELIMIT);
	assert_null(pk);
	prof_free(&p);
}

/* ---- conversations ---- */

static void test_conversation(void **state)
{
	prof_t alice, bob;
	prof_new(&alice, ALICE_ACCT, 1);
	prof_new(&bob, BOB_ACCT, 1);
	assert_int_equal(e2e_has_session(alice.e, BOB_ACCT, 1), 0);
	session_connect(&alice, &bob, 1);
	assert_int_equal(e2e_has_session(bob.e, ALICE_ACCT, 1), 0);

	const char *msgs[3] = {"hello bob", "second message", "third, with more words in it"};
	env_t v[3];
	for (int i = 0; i < 3; i++) {
		v[i] = seal(&alice, &bob, msgs[i]);
		/* Until Bob answers, every message carries the X3DH header. */
		assert_int_equal(v[i].p[0], E2E_MSG_PREKEY);
	}
	for (int i = 0; i < 3; i++) {
		open_expect(&bob, &alice, v[i], msgs[i]);
		free(v[i].p);
	}
	assert_int_equal(e2e_has_session(bob.e, ALICE_ACCT, 1), 1);

	/* Bob answers; Alice's next message is a normal one. */
	env_t r = seal(&bob, &alice, "hi alice");
	assert_int_equal(r.p[0], E2E_MSG_NORMAL);
	open_expect(&alice, &bob, r, "hi alice");
	free(r.p);
	r = seal(&alice, &bob, "ratchet turned");
	assert_int_equal(r.p[0], E2E_MSG_NORMAL);
	open_expect(&bob, &alice, r, "ratchet turned");
	free(r.p);
	for (int i = 0; i < 5; i++)
		ping_pong(&alice, &bob, "ping", "pong");

	/* An empty message round-trips. */
	env_t z = {0};
	assert_int_equal(e2e_encrypt(alice.e, BOB_ACCT, 1, NULL, 0, &z.p, &z.n), 0);
	uint8_t *pt = NULL;
	size_t n = 99;
	assert_int_equal(e2e_decrypt(bob.e, ALICE_ACCT, 1, z.p, z.n, &pt, &n), 0);
	assert_non_null(pt);
	assert_int_equal(n, 0);
	free(pt);
	free(z.p);

	prof_free(&bob);
	prof_free(&alice);
}

static void test_one_time_prekey_is_consumed(void **state)
{
	prof_t alice, bob, carol;
	prof_new(&alice, ALICE_ACCT, 1);
	prof_new(&bob, BOB_ACCT, 1);
	prof_new(&carol, CAROL_ACCT, 1);
	upload_t u;
	upload_make(&bob, &u, 1);
	/* The key directory (wrongly) hands the same prekey to two senders. */
	assert_int_equal(e2e_session_init(alice.e, BOB_ACCT, 1, &u.b), 0);
	assert_int_equal(e2e_session_init(carol.e, BOB_ACCT, 1, &u.b), 0);
	env_t a = seal(&alice, &bob, "from alice");
	env_t c = seal(&carol, &bob, "from carol");
	open_expect(&bob, &alice, a, "from alice");
	/* Bob deleted the private half when Alice's message used it. */
	assert_int_equal(open_rc(&bob, &carol, c.p, c.n), -FC_ENOTFOUND);
	assert_int_equal(e2e_has_session(bob.e, CAROL_ACCT, 1), 0);
	free(a.p);
	free(c.p);
	prof_free(&carol);
	prof_free(&bob);
	prof_free(&alice);
}

static void test_out_of_order_and_duplicates(void **state)
{
	prof_t alice, bob;
	prof_new(&alice, ALICE_ACCT, 1);
	prof_new(&bob, BOB_ACCT, 1);
	session_connect(&alice, &bob, 1);

	/* The first prekey message, delivered twice. */
	env_t first = seal(&alice, &bob, "first");
	open_expect(&bob, &alice, first, "first");
	assert_int_equal(open_rc(&bob, &alice, first.p, first.n), -FC_EEXIST);
	free(first.p);
	ping_pong(&alice, &bob, "a", "b");

	const char *m[4] = {"m0", "m1", "m2", "m3"};
	env_t v[4];
	for (int i = 0; i < 4; i++)
		v[i] = seal(&alice, &bob, m[i]);
	open_expect(&bob, &alice, v[2], m[2]);
	open_expect(&bob, &alice, v[0], m[0]);
	open_expect(&bob, &alice, v[3], m[3]);
	/* Skipped keys are kept only until used. */
	assert_int_equal(open_rc(&bob, &alice, v[0].p, v[0].n), -FC_EEXIST);
	assert_int_equal(open_rc(&bob, &alice, v[3].p, v[3].n), -FC_EEXIST);
	open_expect(&bob, &alice, v[1], m[1]);
	for (int i = 0; i < 4; i++)
		free(v[i].p);

	/* A message from an older sending chain, delayed past a ratchet step. */
	env_t old = seal(&alice, &bob, "delayed");
	ping_pong(&bob, &alice, "turn", "turn back");
	open_expect(&bob, &alice, old, "delayed");
	free(old.p);
	ping_pong(&alice, &bob, "still", "fine");

	prof_free(&bob);
	prof_free(&alice);
}

static void test_tampering_leaves_state_intact(void **state)
{
	prof_t alice, bob;
	prof_new(&alice, ALICE_ACCT, 1);
	prof_new(&bob, BOB_ACCT, 1);
	session_connect(&alice, &bob, 1);
	ping_pong(&alice, &bob, "setup", "done");

	env_t v = seal(&alice, &bob, "integrity matters");
	uint8_t *bad = malloc(v.n);
	assert_non_null(bad);

	/* Last byte: inside the truncated MAC. */
	memcpy(bad, v.p, v.n);
	bad[v.n - 1] ^= 0x01;
	assert_int_equal(open_rc(&bob, &alice, bad, v.n), -FC_EAUTH);
	/* A byte of the encrypted body (the 8-byte MAC is at the end). */
	memcpy(bad, v.p, v.n);
	bad[v.n - 20] ^= 0x80;
	assert_int_equal(open_rc(&bob, &alice, bad, v.n), -FC_EAUTH);
	/* Truncated (the protobuf then ends inside a field), wrong type,
	 * garbage, too short. */
	assert_int_equal(open_rc(&bob, &alice, v.p, v.n - 9), -FC_EMALFORMED);
	memcpy(bad, v.p, v.n);
	bad[0] = 9;
	assert_int_equal(open_rc(&bob, &alice, bad, v.n), -FC_EMALFORMED);
	memcpy(bad, v.p, v.n);
	memset(bad + 2, 0xff, v.n - 2);
	assert_int_equal(open_rc(&bob, &alice, bad, v.n), -FC_EMALFORMED);
	assert_int_equal(open_rc(&bob, &alice, v.p, 1), -FC_EMALFORMED);
	/* A protocol version we do not speak (2, and a future 4). */
	memcpy(bad, v.p, v.n);
	bad[1] = 0x22;
	assert_int_equal(open_rc(&bob, &alice, bad, v.n), -FC_EVERSION);
	bad[1] = 0x43;
	assert_int_equal(open_rc(&bob, &alice, bad, v.n), -FC_EVERSION);
	free(bad);

	/* The untouched message still opens, and the conversation goes on. */
	open_expect(&bob, &alice, v, "integrity matters");
	free(v.p);
	ping_pong(&bob, &alice, "after", "tampering");
	prof_free(&bob);
	prof_free(&alice);
}

static void test_tampered_prekey_message_changes_nothing(void **state)
{
	prof_t alice, bob;
	prof_new(&alice, ALICE_ACCT, 1);
	prof_new(&bob, BOB_ACCT, 1);
	session_connect(&alice, &bob, 1);
	env_t v = seal(&alice, &bob, "first contact");
	assert_int_equal(v.p[0], E2E_MSG_PREKEY);
	/* The prekey message ends with the signed prekey id (field 6): a
	 * flipped last byte names a signed prekey Bob never had. */
	v.p[v.n - 1] ^= 0x01;
	assert_int_equal(open_rc(&bob, &alice, v.p, v.n), -FC_ENOTFOUND);
	v.p[v.n - 1] ^= 0x01;
	/* Inside the embedded message's ciphertext. libsignal has already set
	 * up the session and accepted the identity when the MAC check fails;
	 * the rollback discards all of it. */
	v.p[v.n - 30] ^= 0x01;
	assert_int_equal(open_rc(&bob, &alice, v.p, v.n), -FC_EAUTH);
	assert_int_equal(e2e_has_session(bob.e, ALICE_ACCT, 1), 0);
	prof_reopen(&bob);
	assert_int_equal(e2e_has_session(bob.e, ALICE_ACCT, 1), 0);
	/* The one-time prekey is still there for the genuine message. */
	v.p[v.n - 30] ^= 0x01;
	open_expect(&bob, &alice, v, "first contact");
	assert_int_equal(e2e_has_session(bob.e, ALICE_ACCT, 1), 1);
	free(v.p);
	ping_pong(&bob, &alice, "got it", "good");
	prof_free(&bob);
	prof_free(&alice);
}

static void test_bad_signature_rejected(void **state)
{
	prof_t alice, bob;
	prof_new(&alice, ALICE_ACCT, 1);
	prof_new(&bob, BOB_ACCT, 1);
	upload_t u;
	upload_make(&bob, &u, 1);
	u.pub.spk_sig[10] ^= 0x04;
	assert_int_equal(e2e_session_init(alice.e, BOB_ACCT, 1, &u.b), -FC_EAUTH);
	assert_int_equal(e2e_has_session(alice.e, BOB_ACCT, 1), 0);
	u.pub.spk_sig[10] ^= 0x04;

	/* A signed prekey swapped for another key fails the same way. */
	uint8_t saved[33];
	memcpy(saved, u.pub.spk_pub, 33);
	memcpy(u.pub.spk_pub, u.pk.pub, 33);
	assert_int_equal(e2e_session_init(alice.e, BOB_ACCT, 1, &u.b), -FC_EAUTH);
	memcpy(u.pub.spk_pub, saved, 33);

	/* Malformed bundles. */
	u.b.spk_sig.len = 63;
	assert_int_equal(e2e_session_init(alice.e, BOB_ACCT, 1, &u.b), -FC_EMALFORMED);
	u.b.spk_sig.len = 64;
	u.pub.identity_pub[0] = 0x04;
	assert_int_equal(e2e_session_init(alice.e, BOB_ACCT, 1, &u.b), -FC_EMALFORMED);
	u.pub.identity_pub[0] = 0x05;
	u.b.otpk_pub.len = 32;
	assert_int_equal(e2e_session_init(alice.e, BOB_ACCT, 1, &u.b), -FC_EMALFORMED);
	u.b.otpk_pub.len = 33;
	assert_int_equal(e2e_has_session(alice.e, BOB_ACCT, 1), 0);

	/* Restored, the bundle works. */
	assert_int_equal(e2e_session_init(alice.e, BOB_ACCT, 1, &u.b), 0);
	env_t v = seal(&alice, &bob, "signed and sealed");
	open_expect(&bob, &alice, v, "signed and sealed");
	free(v.p);
	prof_free(&bob);
	prof_free(&alice);
}

static void test_changed_identity_is_untrusted(void **state)
{
	prof_t alice, bob, carol;
	prof_new(&alice, ALICE_ACCT, 1);
	prof_new(&bob, BOB_ACCT, 1);
	prof_new(&carol, CAROL_ACCT, 1);
	session_connect(&alice, &bob, 1);
	ping_pong(&alice, &bob, "we met", "indeed");

	/* Alice is handed Carol's keys as if they were Bob's. */
	upload_t u;
	upload_make(&carol, &u, 1);
	assert_int_equal(e2e_session_init(alice.e, BOB_ACCT, 1, &u.b), -FC_EAUTH);

	/* Carol talks to Bob while claiming Alice's address. */
	session_connect(&carol, &bob, 1);
	env_t v = seal(&carol, &bob, "i am alice, honest");
	prof_t fake_alice = carol;
	fake_alice.account = ALICE_ACCT;
	assert_int_equal(open_rc(&bob, &fake_alice, v.p, v.n), -FC_EAUTH);
	/* Under her own address she is a new, trusted peer. */
	open_expect(&bob, &carol, v, "i am alice, honest");
	free(v.p);

	/* Nothing about the real Alice changed. */
	ping_pong(&alice, &bob, "still", "you");
	prof_free(&carol);
	prof_free(&bob);
	prof_free(&alice);
}

static void test_simultaneous_initiation_and_rebuild(void **state)
{
	prof_t alice, bob;
	prof_new(&alice, ALICE_ACCT, 1);
	prof_new(&bob, BOB_ACCT, 1);
	/* Both fetch the other's bundle before either message arrives. */
	session_connect(&alice, &bob, 1);
	session_connect(&bob, &alice, 1);
	env_t a = seal(&alice, &bob, "alice starts");
	env_t b = seal(&bob, &alice, "bob starts");
	assert_int_equal(a.p[0], E2E_MSG_PREKEY);
	assert_int_equal(b.p[0], E2E_MSG_PREKEY);
	open_expect(&bob, &alice, a, "alice starts");
	open_expect(&alice, &bob, b, "bob starts");
	free(a.p);
	free(b.p);
	/* Whichever state each side now uses, the other still has it. */
	for (int i = 0; i < 3; i++) {
		ping_pong(&alice, &bob, "converge", "converged");
		ping_pong(&bob, &alice, "and back", "and forth");
	}

	/* Alice rebuilds from a fresh bundle (say, after losing track); the
	 * same identity is still trusted and Bob follows. */
	session_connect(&alice, &bob, 1);
	env_t r = seal(&alice, &bob, "fresh start");
	assert_int_equal(r.p[0], E2E_MSG_PREKEY);
	open_expect(&bob, &alice, r, "fresh start");
	free(r.p);
	ping_pong(&bob, &alice, "welcome", "back");
	prof_free(&bob);
	prof_free(&alice);
}

static void test_bundle_without_one_time_prekey(void **state)
{
	prof_t alice, bob;
	prof_new(&alice, ALICE_ACCT, 1);
	prof_new(&bob, BOB_ACCT, 1);
	upload_t u;
	upload_make(&bob, &u, 0);
	assert_int_equal(u.b.otpk_id, 0);
	assert_int_equal(e2e_session_init(alice.e, BOB_ACCT, 1, &u.b), 0);
	env_t v = seal(&alice, &bob, "no one-time key");
	assert_int_equal(v.p[0], E2E_MSG_PREKEY);
	open_expect(&bob, &alice, v, "no one-time key");
	free(v.p);
	ping_pong(&bob, &alice, "works", "anyway");
	ping_pong(&alice, &bob, "and", "again");
	prof_free(&bob);
	prof_free(&alice);
}

static void test_reopen_and_continue(void **state)
{
	prof_t alice, bob;
	prof_new(&alice, ALICE_ACCT, 1);
	prof_new(&bob, BOB_ACCT, 1);
	session_connect(&alice, &bob, 1);
	env_t pending = seal(&alice, &bob, "sent before the restart");
	env_t early = seal(&alice, &bob, "opened before the restart");
	open_expect(&bob, &alice, early, "opened before the restart");
	free(early.p);

	prof_reopen(&alice);
	prof_reopen(&bob);
	assert_int_equal(e2e_has_session(alice.e, BOB_ACCT, 1), 1);
	assert_int_equal(e2e_has_session(bob.e, ALICE_ACCT, 1), 1);
	open_expect(&bob, &alice, pending, "sent before the restart");
	free(pending.p);
	ping_pong(&bob, &alice, "after restart", "both sides");

	/* A skipped message key survives a restart too. */
	env_t s0 = seal(&alice, &bob, "skipped");
	env_t s1 = seal(&alice, &bob, "overtakes");
	open_expect(&bob, &alice, s1, "overtakes");
	prof_reopen(&bob);
	open_expect(&bob, &alice, s0, "skipped");
	assert_int_equal(open_rc(&bob, &alice, s0.p, s0.n), -FC_EEXIST);
	free(s0.p);
	free(s1.p);
	ping_pong(&alice, &bob, "done", "done");
	prof_free(&bob);
	prof_free(&alice);
}

static void test_second_device_and_delete(void **state)
{
	prof_t alice, bob1, bob2;
	prof_new(&alice, ALICE_ACCT, 1);
	prof_new(&bob1, BOB_ACCT, 1);
	prof_new(&bob2, BOB_ACCT, 2);
	session_connect(&alice, &bob1, 1);
	session_connect(&alice, &bob2, 1);

	env_t v1 = seal(&alice, &bob1, "to bob's phone");
	env_t v2 = seal(&alice, &bob2, "to bob's laptop");
	/* Each device opens only what was sealed for it. */
	assert_true(open_rc(&bob2, &alice, v1.p, v1.n) < 0);
	assert_int_equal(e2e_has_session(bob2.e, ALICE_ACCT, 1), 0);
	open_expect(&bob1, &alice, v1, "to bob's phone");
	open_expect(&bob2, &alice, v2, "to bob's laptop");
	free(v1.p);
	free(v2.p);
	ping_pong(&bob2, &alice, "laptop here", "hi laptop");
	ping_pong(&bob1, &alice, "phone here", "hi phone");

	/* Bob removes his laptop. */
	assert_int_equal(e2e_session_delete(alice.e, BOB_ACCT, 2), 0);
	assert_int_equal(e2e_session_delete(alice.e, BOB_ACCT, 2), 0);
	assert_int_equal(e2e_has_session(alice.e, BOB_ACCT, 2), 0);
	uint8_t *ct = NULL;
	size_t n = 0;
	assert_int_equal(e2e_encrypt(alice.e, BOB_ACCT, 2, (const uint8_t *)"x", 1, &ct, &n),
			 -FC_ENOTFOUND);
	assert_null(ct);
	/* A normal message from a device without a session has nowhere to go. */
	env_t late = seal(&bob2, &alice, "anyone there?");
	assert_int_equal(open_rc(&alice, &bob2, late.p, late.n), -FC_ENOTFOUND);
	free(late.p);
	ping_pong(&alice, &bob1, "phone", "still here");
	assert_int_equal(e2e_has_session(alice.e, BOB_ACCT, (uint32_t)INT32_MAX + 1), -EINVAL);

	prof_free(&bob2);
	prof_free(&bob1);
	prof_free(&alice);
}

/* ---- padding and what reaches the disk ---- */

static size_t sealed_len(prof_t *from, prof_t *to, size_t n)
{
	uint8_t *msg = malloc(n ? n : 1);
	assert_non_null(msg);
	memset(msg, 'p', n);
	env_t v = {0};
	assert_int_equal(e2e_encrypt(from->e, to->account, to->device, msg, n, &v.p, &v.n), 0);
	uint8_t *pt = NULL;
	size_t m = 0;
	assert_int_equal(e2e_decrypt(to->e, from->account, from->device, v.p, v.n, &pt, &m), 0);
	assert_int_equal(m, n);
	assert_memory_equal(pt, msg, n);
	free(pt);
	free(msg);
	free(v.p);
	return v.n;
}

static void test_padding_buckets(void **state)
{
	prof_t alice, bob;
	prof_new(&alice, ALICE_ACCT, 1);
	prof_new(&bob, BOB_ACCT, 1);
	session_connect(&alice, &bob, 1);
	ping_pong(&alice, &bob, "settle", "to normal messages");

	size_t l1 = sealed_len(&alice, &bob, 1);
	size_t l150 = sealed_len(&alice, &bob, 150);
	size_t l159 = sealed_len(&alice, &bob, 159);
	size_t l0 = sealed_len(&alice, &bob, 0);
	assert_int_equal(l1, l150);
	assert_int_equal(l1, l159);
	assert_int_equal(l1, l0);
	/* 160 bytes need the 0x80 marker too: the next bucket. */
	size_t l160 = sealed_len(&alice, &bob, 160);
	assert_int_equal(l160, l1 + E2E_PAD_BLOCK);
	size_t big = sealed_len(&alice, &bob, E2E_MAX_PLAINTEXT);
	assert_true(big > E2E_MAX_PLAINTEXT && big <= E2E_MAX_ENVELOPE);

	uint8_t *ct = NULL;
	size_t n = 0;
	static uint8_t huge[E2E_MAX_PLAINTEXT + 1];
	assert_int_equal(e2e_encrypt(alice.e, BOB_ACCT, 1, huge, sizeof huge, &ct, &n),
			 -FC_ETOOBIG);
	prof_free(&bob);
	prof_free(&alice);
}

static int file_contains(const char *dir, const char *name, const void *needle, size_t n)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	long len = ftell(f);
	assert_true(len >= 0);
	rewind(f);
	uint8_t *buf = malloc((size_t)len + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	int found = memmem(buf, (size_t)len, needle, n) != NULL;
	free(buf);
	return found;
}

static void test_plaintext_never_stored(void **state)
{
	static const char secret[] = "CANARY-0f1e2d3c4b5a69788796a5b4c3d2e1f0-the plaintext itself";
	static const char reply[] = "REPLY-CANARY-8c7d6e5f4a3b2c1d-answer";
	prof_t alice, bob;
	prof_new(&alice, ALICE_ACCT, 1);
	prof_new(&bob, BOB_ACCT, 1);
	session_connect(&alice, &bob, 1);
	env_t v = seal(&alice, &bob, secret);
	assert_null(memmem(v.p, v.n, secret, 12));
	/* Skipped keys get stored: make Bob store one, then open both. */
	env_t w = seal(&alice, &bob, secret);
	open_expect(&bob, &alice, w, secret);
	open_expect(&bob, &alice, v, secret);
	env_t r = seal(&bob, &alice, reply);
	assert_null(memmem(r.p, r.n, reply, 12));
	open_expect(&alice, &bob, r, reply);
	free(v.p);
	free(w.p);
	free(r.p);

	const char *files[] = {"e2e.db", "e2e.db-wal"};
	for (int pass = 0; pass < 2; pass++) {
		/* Pass 0 looks at the live files (WAL included), pass 1 after
		 * close has checkpointed everything into e2e.db. */
		for (int i = 0; i < 2; i++) {
			const char *dirs[2] = {alice.dir, bob.dir};
			for (int d = 0; d < 2; d++) {
				assert_false(file_contains(dirs[d], files[i], secret, 12));
				assert_false(file_contains(dirs[d], files[i], secret + 20, 12));
				assert_false(file_contains(dirs[d], files[i], reply, 12));
			}
		}
		if (pass == 0) {
			e2e_close(alice.e);
			e2e_close(bob.e);
			alice.e = bob.e = NULL;
		}
	}
	/* The database is real: the check above is not vacuous. */
	assert_true(file_contains(bob.dir, "e2e.db", "sessions", 8));
	prof_free(&bob);
	prof_free(&alice);
}

/* ---- the store layer directly: transactions and sender keys ---- */

/* A bare store with a libsignal context on top, without e2e_t. */
typedef struct raw {
	char dir[256];
	e2e_crypto_t *c;
	e2e_store_t *s;
	signal_context *ctx;
	signal_protocol_store_context *sc;
} raw_t;

static void raw_open(raw_t *r)
{
	char path[300];
	snprintf(path, sizeof path, "%s/e2e.db", r->dir);
	assert_int_equal(e2e_crypto_create(&r->c), 0);
	assert_int_equal(e2e_store_open(&r->s, path), 0);
	assert_int_equal(signal_context_create(&r->ctx, NULL), 0);
	signal_crypto_provider p;
	e2e_crypto_provider_fill(r->c, &p);
	assert_int_equal(signal_context_set_crypto_provider(r->ctx, &p), 0);
	assert_int_equal(signal_protocol_store_context_create(&r->sc, r->ctx), 0);
	assert_int_equal(e2e_store_install(r->s, r->sc), 0);
}

static void raw_new(raw_t *r)
{
	memset(r, 0, sizeof *r);
	const char *tmp = getenv("TMPDIR");
	snprintf(r->dir, sizeof r->dir, "%s/fourc-e2e-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	assert_non_null(mkdtemp(r->dir));
	raw_open(r);
}

static void raw_close(raw_t *r)
{
	signal_protocol_store_context_destroy(r->sc);
	signal_context_destroy(r->ctx);
	e2e_store_close(r->s);
	e2e_crypto_destroy(r->c);
	r->sc = NULL;
	r->ctx = NULL;
	r->s = NULL;
	r->c = NULL;
}

static void raw_free(raw_t *r)
{
	raw_close(r);
	rm_in(r->dir, "e2e.db");
	rm_in(r->dir, "e2e.db-wal");
	rm_in(r->dir, "e2e.db-shm");
	assert_int_equal(rmdir(r->dir), 0);
}

static void test_store_rollback(void **state)
{
	raw_t r;
	raw_new(&r);
	uint32_t v = 0;
	assert_int_equal(e2e_store_meta_u32_get(r.s, "k", &v), 0);
	assert_int_equal(e2e_store_begin(r.s), 0);
	assert_int_equal(e2e_store_meta_u32_set(r.s, "k", 7), 0);
	assert_int_equal(e2e_store_meta_u32_get(r.s, "k", &v), 1);
	assert_int_equal(v, 7);
	e2e_store_rollback(r.s);
	assert_int_equal(e2e_store_meta_u32_get(r.s, "k", &v), 0);
	assert_int_equal(e2e_store_begin(r.s), 0);
	assert_int_equal(e2e_store_meta_u32_set(r.s, "k", 8), 0);
	assert_int_equal(e2e_store_commit(r.s), 0);
	raw_close(&r);
	raw_open(&r);
	assert_int_equal(e2e_store_meta_u32_get(r.s, "k", &v), 1);
	assert_int_equal(v, 8);
	/* A blob larger than the caller's buffer is refused, not truncated. */
	uint8_t big[40] = {1, 2, 3}, small[8];
	size_t n = 0;
	assert_int_equal(e2e_store_meta_blob_set(r.s, "b", big, sizeof big), 0);
	assert_int_equal(e2e_store_meta_blob_get(r.s, "b", small, sizeof small, &n), -FC_ESTORE);
	raw_free(&r);
}

/* Seals msg with sender's group session for name; returns the serialized
 * sender key message. */
static signal_buffer *group_seal(raw_t *sender, const signal_protocol_sender_key_name *name,
				 const char *msg)
{
	group_cipher *gc = NULL;
	ciphertext_message *m = NULL;
	assert_int_equal(group_cipher_create(&gc, sender->sc, name, sender->ctx), 0);
	assert_int_equal(group_cipher_encrypt(gc, (const uint8_t *)msg, strlen(msg), &m), 0);
	signal_buffer *out = signal_buffer_copy(ciphertext_message_get_serialized(m));
	assert_non_null(out);
	SIGNAL_UNREF(m);
	group_cipher_free(gc);
	return out;
}

static void group_open_expect(raw_t *rcpt, const signal_protocol_sender_key_name *name,
			      signal_buffer *ct, const char *msg)
{
	sender_key_message *m = NULL;
	group_cipher *gc = NULL;
	signal_buffer *pt = NULL;
	assert_int_equal(sender_key_message_deserialize(&m, signal_buffer_data(ct),
							signal_buffer_len(ct), rcpt->ctx),
			 0);
	assert_int_equal(group_cipher_create(&gc, rcpt->sc, name, rcpt->ctx), 0);
	assert_int_equal(group_cipher_decrypt(gc, m, NULL, &pt), 0);
	assert_int_equal(signal_buffer_len(pt), strlen(msg));
	assert_memory_equal(signal_buffer_data(pt), msg, strlen(msg));
	signal_buffer_free(pt);
	group_cipher_free(gc);
	SIGNAL_UNREF(m);
}

static void test_store_sender_keys(void **state)
{
	raw_t alice, bob;
	raw_new(&alice);
	raw_new(&bob);
	const signal_protocol_sender_key_name name = {
		.group_id = "team-chat",
		.group_id_len = 9,
		.sender = {.name = "1001", .name_len = 4, .device_id = 1},
	};

	/* Alice creates her sender key and hands Bob the distribution message. */
	group_session_builder *gb = NULL;
	sender_key_distribution_message *dist = NULL;
	assert_int_equal(group_session_builder_create(&gb, alice.sc, alice.ctx), 0);
	assert_int_equal(group_session_builder_create_session(gb, &dist, &name), 0);
	group_session_builder_free(gb);
	signal_buffer *wire = ciphertext_message_get_serialized((ciphertext_message *)dist);
	sender_key_distribution_message *got = NULL;
	assert_int_equal(sender_key_distribution_message_deserialize(
				 &got, signal_buffer_data(wire), signal_buffer_len(wire), bob.ctx),
			 0);
	SIGNAL_UNREF(dist);
	gb = NULL;
	assert_int_equal(group_session_builder_create(&gb, bob.sc, bob.ctx), 0);
	assert_int_equal(group_session_builder_process_session(gb, &name, got), 0);
	group_session_builder_free(gb);
	SIGNAL_UNREF(got);

	signal_buffer *m1 = group_seal(&alice, &name, "to the whole group");
	group_open_expect(&bob, &name, m1, "to the whole group");
	signal_buffer_free(m1);

	/* Both sides keep their sender key state across a reopen. */
	raw_close(&alice);
	raw_close(&bob);
	raw_open(&alice);
	raw_open(&bob);
	signal_buffer *m2 = group_seal(&alice, &name, "after the restart");
	group_open_expect(&bob, &name, m2, "after the restart");
	signal_buffer_free(m2);

	/* Another group id is another key: Bob has none for it. */
	signal_protocol_sender_key_name other = name;
	other.group_id = "team-chaT";
	group_cipher *gc = NULL;
	ciphertext_message *cm = NULL;
	assert_int_equal(group_cipher_create(&gc, bob.sc, &other, bob.ctx), 0);
	assert_true(group_cipher_encrypt(gc, (const uint8_t *)"x", 1, &cm) < 0);
	group_cipher_free(gc);

	raw_free(&bob);
	raw_free(&alice);
}

/* ---- the crypto provider against published vectors ---- */

typedef struct crypto_fixture {
	e2e_crypto_t *c;
	signal_crypto_provider p;
} crypto_fixture_t;

static int crypto_setup(void **state)
{
	crypto_fixture_t *f = calloc(1, sizeof *f);
	if (!f || e2e_crypto_create(&f->c) < 0)
		return -1;
	e2e_crypto_provider_fill(f->c, &f->p);
	*state = f;
	return 0;
}

static int crypto_teardown(void **state)
{
	crypto_fixture_t *f = *state;
	e2e_crypto_destroy(f->c);
	free(f);
	return 0;
}

static void unhex(const char *h, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v = 0;
		assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

static void test_crypto_hmac_sha256(void **state)
{
	crypto_fixture_t *f = *state;
	/* RFC 4231 test case 2. */
	uint8_t want[32];
	unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", want, 32);
	void *ctx = NULL;
	assert_int_equal(
		f->p.hmac_sha256_init_func(&ctx, (const uint8_t *)"Jefe", 4, f->p.user_data), 0);
	const char *d = "what do ya want for nothing?";
	assert_int_equal(f->p.hmac_sha256_update_func(ctx, (const uint8_t *)d, 10, f->p.user_data),
			 0);
	assert_int_equal(f->p.hmac_sha256_update_func(ctx, (const uint8_t *)d + 10, strlen(d) - 10,
						      f->p.user_data),
			 0);
	signal_buffer *out = NULL;
	assert_int_equal(f->p.hmac_sha256_final_func(ctx, &out, f->p.user_data), 0);
	f->p.hmac_sha256_cleanup_func(ctx, f->p.user_data);
	assert_int_equal(signal_buffer_len(out), 32);
	assert_memory_equal(signal_buffer_data(out), want, 32);
	signal_buffer_free(out);

	/* An empty key (HKDF with an empty salt) is a valid HMAC key. */
	unhex("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad", want, 32);
	ctx = NULL;
	assert_int_equal(f->p.hmac_sha256_init_func(&ctx, NULL, 0, f->p.user_data), 0);
	assert_int_equal(f->p.hmac_sha256_final_func(ctx, &out, f->p.user_data), 0);
	f->p.hmac_sha256_cleanup_func(ctx, f->p.user_data);
	assert_memory_equal(signal_buffer_data(out), want, 32);
	signal_buffer_free(out);
}

static void test_crypto_sha512(void **state)
{
	crypto_fixture_t *f = *state;
	/* FIPS 180-2 "abc". */
	uint8_t want[64];
	unhex("ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
	      "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
	      want, 64);
	void *ctx = NULL;
	assert_int_equal(f->p.sha512_digest_init_func(&ctx, f->p.user_data), 0);
	for (int round = 0; round < 2; round++) {
		/* The second round checks the context is reusable after final. */
		assert_int_equal(f->p.sha512_digest_update_func(ctx, (const uint8_t *)"ab", 2,
								f->p.user_data),
				 0);
		assert_int_equal(f->p.sha512_digest_update_func(ctx, (const uint8_t *)"c", 1,
								f->p.user_data),
				 0);
		signal_buffer *out = NULL;
		assert_int_equal(f->p.sha512_digest_final_func(ctx, &out, f->p.user_data), 0);
		assert_int_equal(signal_buffer_len(out), 64);
		assert_memory_equal(signal_buffer_data(out), want, 64);
		signal_buffer_free(out);
	}
	f->p.sha512_digest_cleanup_func(ctx, f->p.user_data);
}

/* NIST SP 800-38A: first block of F.2 (CBC) and F.5 (CTR) for each key size. */
static const struct aes_vec {
	int cipher;
	const char *key, *iv, *ct;
} aes_vecs[] = {
	{SG_CIPHER_AES_CBC_PKCS5, "2b7e151628aed2a6abf7158809cf4f3c",
	 "000102030405060708090a0b0c0d0e0f", "7649abac8119b246cee98e9b12e9197d"},
	{SG_CIPHER_AES_CBC_PKCS5, "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
	 "000102030405060708090a0b0c0d0e0f", "4f021db243bc633d7178183a9fa071e8"},
	{SG_CIPHER_AES_CBC_PKCS5,
	 "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
	 "000102030405060708090a0b0c0d0e0f", "f58c4c04d6e5f1ba779eabfb5f7bfbd6"},
	{SG_CIPHER_AES_CTR_NOPADDING, "2b7e151628aed2a6abf7158809cf4f3c",
	 "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", "874d6191b620e3261bef6864990db6ce"},
	{SG_CIPHER_AES_CTR_NOPADDING, "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
	 "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", "1abc932417521ca24f2b0459fe7e6e0b"},
	{SG_CIPHER_AES_CTR_NOPADDING,
	 "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
	 "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", "601ec313775789a5b7a7f504bbf3d228"},
};

static void test_crypto_aes(void **state)
{
	crypto_fixture_t *f = *state;
	uint8_t pt[16], key[32], iv[16], want[16];
	unhex("6bc1bee22e409f96e93d7e117393172a", pt, 16);
	for (size_t i = 0; i < sizeof aes_vecs / sizeof aes_vecs[0]; i++) {
		const struct aes_vec *v = &aes_vecs[i];
		size_t klen = strlen(v->key) / 2;
		unhex(v->key, key, klen);
		unhex(v->iv, iv, 16);
		unhex(v->ct, want, 16);
		signal_buffer *ct = NULL, *back = NULL;
		assert_int_equal(f->p.encrypt_func(&ct, v->cipher, key, klen, iv, 16, pt, 16,
						   f->p.user_data),
				 0);
		/* CBC with PKCS#5 adds a whole block of padding to 16 bytes. */
		assert_int_equal(signal_buffer_len(ct),
				 v->cipher == SG_CIPHER_AES_CBC_PKCS5 ? 32 : 16);
		assert_memory_equal(signal_buffer_data(ct), want, 16);
		assert_int_equal(f->p.decrypt_func(&back, v->cipher, key, klen, iv, 16,
						   signal_buffer_data(ct), signal_buffer_len(ct),
						   f->p.user_data),
				 0);
		assert_int_equal(signal_buffer_len(back), 16);
		assert_memory_equal(signal_buffer_data(back), pt, 16);
		signal_buffer_free(ct);
		signal_buffer_free(back);
	}

	/* Odd lengths round-trip; CBC rejects a corrupted padding block. */
	uint8_t msg[37];
	memset(msg, 0x5a, sizeof msg);
	signal_buffer *ct = NULL, *back = NULL;
	assert_int_equal(f->p.encrypt_func(&ct, SG_CIPHER_AES_CTR_NOPADDING, key, 32, iv, 16, msg,
					   sizeof msg, f->p.user_data),
			 0);
	assert_int_equal(signal_buffer_len(ct), sizeof msg);
	signal_buffer_free(ct);
	assert_int_equal(f->p.encrypt_func(&ct, SG_CIPHER_AES_CBC_PKCS5, key, 32, iv, 16, msg,
					   sizeof msg, f->p.user_data),
			 0);
	assert_int_equal(signal_buffer_len(ct), 48);
	signal_buffer_data(ct)[47] ^= 0xff;
	assert_true(f->p.decrypt_func(&back, SG_CIPHER_AES_CBC_PKCS5, key, 32, iv, 16,
				      signal_buffer_data(ct), 48, f->p.user_data) < 0);
	assert_null(back);
	signal_buffer_free(ct);

	/* Unsupported key sizes, IV sizes and modes are refused. */
	ct = NULL;
	assert_int_equal(f->p.encrypt_func(&ct, SG_CIPHER_AES_CBC_PKCS5, key, 20, iv, 16, msg, 16,
					   f->p.user_data),
			 SG_ERR_INVAL);
	assert_int_equal(f->p.encrypt_func(&ct, SG_CIPHER_AES_CBC_PKCS5, key, 16, iv, 12, msg, 16,
					   f->p.user_data),
			 SG_ERR_INVAL);
	assert_int_equal(f->p.encrypt_func(&ct, 7, key, 16, iv, 16, msg, 16, f->p.user_data),
			 SG_ERR_INVAL);
	assert_null(ct);
}

static void test_crypto_random(void **state)
{
	crypto_fixture_t *f = *state;
	uint8_t a[32] = {0}, b[32] = {0}, zero[32] = {0};
	assert_int_equal(f->p.random_func(a, sizeof a, f->p.user_data), 0);
	assert_int_equal(f->p.random_func(b, sizeof b, f->p.user_data), 0);
	assert_memory_not_equal(a, zero, sizeof a);
	assert_memory_not_equal(a, b, sizeof a);
}

int main(void)
{
	/* Identity and prekey creation log at info; keep the output to warnings. */
	log_init(LOG_WARN, 2);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_creates_private_profile),
		cmocka_unit_test(test_public_is_stable_across_reopen),
		cmocka_unit_test(test_prekey_ids_continue),
		cmocka_unit_test(test_conversation),
		cmocka_unit_test(test_one_time_prekey_is_consumed),
		cmocka_unit_test(test_out_of_order_and_duplicates),
		cmocka_unit_test(test_tampering_leaves_state_intact),
		cmocka_unit_test(test_tampered_prekey_message_changes_nothing),
		cmocka_unit_test(test_bad_signature_rejected),
		cmocka_unit_test(test_changed_identity_is_untrusted),
		cmocka_unit_test(test_simultaneous_initiation_and_rebuild),
		cmocka_unit_test(test_bundle_without_one_time_prekey),
		cmocka_unit_test(test_reopen_and_continue),
		cmocka_unit_test(test_second_device_and_delete),
		cmocka_unit_test(test_padding_buckets),
		cmocka_unit_test(test_plaintext_never_stored),
		cmocka_unit_test(test_store_rollback),
		cmocka_unit_test(test_store_sender_keys),
		cmocka_unit_test_setup_teardown(test_crypto_hmac_sha256, crypto_setup,
						crypto_teardown),
		cmocka_unit_test_setup_teardown(test_crypto_sha512, crypto_setup, crypto_teardown),
		cmocka_unit_test_setup_teardown(test_crypto_aes, crypto_setup, crypto_teardown),
		cmocka_unit_test_setup_teardown(test_crypto_random, crypto_setup, crypto_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
