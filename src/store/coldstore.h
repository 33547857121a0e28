/*
 * coldstore: the durable-state seam of the router (accounts, devices, the key
 * directory and device mailboxes).
 *
 * The interface is asynchronous because the production adapter is a network
 * client (CQL); the embedded adapter (sqlite_cold) has the same semantics. An
 * adapter embeds `struct coldstore` as its first member and fills in `ops`;
 * callers only use the cold_*() wrappers below.
 *
 * Threading: one thread owns a store and makes every call on it; nothing here
 * locks.
 *
 * Completion contract, identical for every operation:
 *  - An operation returns 0 when it was accepted. Its callback is then called
 *    exactly once, never from inside the call itself, at the latest from the
 *    next cold_flush(). The router calls cold_flush() once per loop iteration.
 *  - An operation returns a negative code (-ENOMEM, -FC_ELIMIT when too many
 *    operations await a flush, -FC_EUNAVAIL while the store is closing) when it
 *    was refused. Its callback is then never called and nothing was written.
 *  - The callback receives `status` 0 or a negative code, and `res`. `res` is
 *    non-NULL when status is 0 and for -FC_ESTALE from cold_msg_append();
 *    otherwise it may be NULL. `res` and every slice and array inside it are
 *    owned by the store and valid only during the callback: copy what you keep.
 *  - A callback is never invoked before the operation's writes (and those of
 *    every operation before it) are durable. If the store cannot make a batch
 *    durable, every callback of that batch receives -FC_ESTORE and none of its
 *    writes happened.
 *  - Callbacks run in submission order. A callback may submit further
 *    operations; they complete at a later cold_flush(). `cb` may be NULL when
 *    the caller does not need the outcome.
 *
 * Requests and the bytes their slices point to need only stay valid during the
 * call that submits them.
 *
 * Identifiers: accounts are nonzero u64 chosen by the caller; devices are
 * u32 numbers 1..N within an account, assigned by the store as the lowest free
 * number; times are u64 milliseconds since the Unix epoch. Rejected arguments
 * (a zero id, a blob over its cap, a zero key id) complete with -EINVAL or
 * -FC_ETOOBIG through the callback like any other outcome.
 */
#ifndef FC_STORE_COLDSTORE_H
#define FC_STORE_COLDSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/slice.h"

#define COLD_AUTH_PUB_LEN 32                              /* Ed25519 public key of a device */
#define COLD_HASH_LEN 32                                  /* body hash of an append */
#define COLD_IDENTITY_KEY_MAX 64                          /* bytes */
#define COLD_SPK_MAX 64                                   /* signed prekey, bytes */
#define COLD_SPK_SIG_MAX 128                              /* signed prekey signature, bytes */
#define COLD_OTPK_MAX 64                                  /* one one-time prekey, bytes */
#define COLD_OTPK_POOL_MAX 1000                           /* one-time prekeys held per device */
#define COLD_USERNAME_MAX 64                              /* bytes */
#define COLD_CIPHERTEXT_MAX (256 * 1024)                  /* one mailbox entry, bytes */
#define COLD_APPEND_MAX 1024                              /* entries in one append */
#define COLD_FETCH_MAX 1000                               /* entries returned by one fetch */
#define COLD_FETCH_MAX_BYTES (4 * 1024 * 1024)            /* ciphertext bytes per fetch */
#define COLD_EXPIRE_BATCH 4096                            /* rows of each kind one expire removes */
#define COLD_IDEM_RETENTION_MS (30ull * 24 * 3600 * 1000) /* 30 days */

typedef struct coldstore coldstore_t;

/* ---- requests ---------------------------------------------------------- */

/* A one-time prekey. Key id 0 is reserved ("none") and rejected. */
typedef struct cold_prekey {
	uint32_t id;
	slice_t key; /* 1..COLD_OTPK_MAX bytes */
} cold_prekey_t;

typedef struct cold_register {
	uint64_t account_id;
	int new_account;      /* 1: create (-FC_EEXIST if taken); 0: add a device
			       * to an existing account (-FC_ENOTFOUND if absent) */
	uint32_t max_devices; /* -FC_ELIMIT when the account already has this many */
	uint64_t now_ms;
	uint8_t auth_pub[COLD_AUTH_PUB_LEN];
	uint32_t registration_id;
	slice_t identity_key; /* 1..COLD_IDENTITY_KEY_MAX bytes */
	uint32_t spk_id;      /* nonzero */
	slice_t spk;          /* 1..COLD_SPK_MAX bytes */
	slice_t spk_sig;      /* 1..COLD_SPK_SIG_MAX bytes */
	const cold_prekey_t *otpks;
	size_t otpk_count; /* at most COLD_OTPK_POOL_MAX (-FC_ELIMIT) */
} cold_register_t;

typedef struct cold_keys {
	uint64_t account_id;
	uint32_t device_id;
	uint32_t spk_id; /* 0: keep the current signed prekey, spk/spk_sig ignored */
	slice_t spk;
	slice_t spk_sig;
	const cold_prekey_t *otpks;
	size_t otpk_count;
} cold_keys_t;

/* One addressed device of an append and the ciphertext meant for it. */
typedef struct cold_entry {
	uint64_t account_id;
	uint32_t device_id;
	slice_t ciphertext; /* 1..COLD_CIPHERTEXT_MAX bytes */
} cold_entry_t;

typedef struct cold_append {
	uint64_t sender_account;
	uint32_t sender_device;
	uint64_t client_msg_id;
	uint8_t body_hash[COLD_HASH_LEN]; /* hash of the whole request */
	uint64_t recipient_account;
	uint64_t now_ms;     /* becomes the message timestamp */
	uint64_t expires_ms; /* entries are removed by cold_expire() from then on */
	const cold_entry_t *entries;
	size_t count; /* at most COLD_APPEND_MAX */
} cold_append_t;

/* ---- results ----------------------------------------------------------- */

typedef struct cold_register_res {
	uint64_t account_id;
	uint32_t device_id;
} cold_register_res_t;

typedef struct cold_remove_res {
	uint64_t account_id;
	uint32_t device_id;
} cold_remove_res_t;

typedef struct cold_device_res {
	uint8_t auth_pub[COLD_AUTH_PUB_LEN];
	uint32_t registration_id;
} cold_device_res_t;

typedef struct cold_devices_res {
	uint64_t account_id;
	size_t count;
	const uint32_t *device_ids; /* ascending */
	slice_t username;           /* as set (original case); empty if none */
} cold_devices_res_t;

/* Result of cold_username_set() and cold_username_resolve(). */
typedef struct cold_username_res {
	uint64_t account_id;
} cold_username_res_t;

typedef struct cold_keys_res {
	uint32_t remaining; /* one-time prekeys left in the device's pool */
} cold_keys_res_t;

typedef struct cold_bundle_res {
	uint64_t account_id;
	uint32_t device_id;
	uint32_t registration_id;
	slice_t identity_key;
	uint32_t spk_id;
	slice_t spk;
	slice_t spk_sig;
	uint32_t otpk_id; /* 0 when the pool was empty; otpk is then empty */
	slice_t otpk;
	uint32_t remaining; /* one-time prekeys left after this claim */
} cold_bundle_res_t;

/* The mailbox position an append assigned to one addressed device. */
typedef struct cold_seq {
	uint64_t account_id;
	uint32_t device_id;
	uint64_t seq;
} cold_seq_t;

typedef struct cold_append_res {
	uint64_t timestamp_ms; /* of the original append when duplicate */
	int duplicate;         /* 1: a retry of an accepted append, nothing written */
	size_t count;
	const cold_seq_t *seqs; /* one per request entry, in request order */
	/* Only with -FC_ESTALE: the devices the sender must address, i.e. every
	 * device of the recipient and every other device of the sender. When the
	 * recipient is the sender, the recipient list holds the sender's other
	 * devices and the sender list is empty. */
	size_t stale_recipient_count;
	const uint32_t *stale_recipient_devices; /* ascending */
	size_t stale_sender_count;
	const uint32_t *stale_sender_devices; /* ascending */
} cold_append_res_t;

/* One mailbox entry as read back. */
typedef struct cold_mail {
	uint64_t seq;
	uint64_t sender_account;
	uint32_t sender_device;
	uint64_t timestamp_ms;
	slice_t ciphertext;
} cold_mail_t;

typedef struct cold_fetch_res {
	uint64_t head_seq;        /* highest seq ever assigned in this mailbox */
	uint64_t acked_seq;       /* cumulative ack */
	uint64_t expired_through; /* highest seq removed by expiry, 0 if none */
	size_t count;
	const cold_mail_t *entries; /* oldest first */
	int has_more;               /* entries beyond the returned ones exist */
} cold_fetch_res_t;

typedef struct cold_ack_res {
	uint64_t acked_seq;
} cold_ack_res_t;

typedef struct cold_expire_res {
	uint64_t removed; /* mailbox entries removed */
	int more;         /* a batch cap was hit: call again */
} cold_expire_res_t;

typedef struct cold_stats_res {
	uint64_t accounts;
	uint64_t devices;
	uint64_t mailbox_entries;
} cold_stats_res_t;

/* ---- callbacks --------------------------------------------------------- */

typedef void (*cold_register_cb)(void *arg, int status, const cold_register_res_t *res);
typedef void (*cold_remove_cb)(void *arg, int status, const cold_remove_res_t *res);
typedef void (*cold_device_cb)(void *arg, int status, const cold_device_res_t *res);
typedef void (*cold_devices_cb)(void *arg, int status, const cold_devices_res_t *res);
typedef void (*cold_username_cb)(void *arg, int status, const cold_username_res_t *res);
typedef void (*cold_keys_cb)(void *arg, int status, const cold_keys_res_t *res);
typedef void (*cold_bundle_cb)(void *arg, int status, const cold_bundle_res_t *res);
typedef void (*cold_append_cb)(void *arg, int status, const cold_append_res_t *res);
typedef void (*cold_fetch_cb)(void *arg, int status, const cold_fetch_res_t *res);
typedef void (*cold_ack_cb)(void *arg, int status, const cold_ack_res_t *res);
typedef void (*cold_expire_cb)(void *arg, int status, const cold_expire_res_t *res);
typedef void (*cold_stats_cb)(void *arg, int status, const cold_stats_res_t *res);

/* ---- adapter vtable ---------------------------------------------------- */

struct cold_ops {
	int (*device_register)(coldstore_t *cs, const cold_register_t *req, cold_register_cb cb,
			       void *arg);
	int (*device_remove)(coldstore_t *cs, uint64_t account_id, uint32_t device_id,
			     cold_remove_cb cb, void *arg);
	int (*device_get)(coldstore_t *cs, uint64_t account_id, uint32_t device_id,
			  cold_device_cb cb, void *arg);
	int (*devices_list)(coldstore_t *cs, uint64_t account_id, cold_devices_cb cb, void *arg);
	int (*username_set)(coldstore_t *cs, uint64_t account_id, slice_t name, cold_username_cb cb,
			    void *arg);
	int (*username_resolve)(coldstore_t *cs, slice_t name, cold_username_cb cb, void *arg);
	int (*keys_upload)(coldstore_t *cs, const cold_keys_t *req, cold_keys_cb cb, void *arg);
	int (*bundle_claim)(coldstore_t *cs, uint64_t account_id, uint32_t device_id,
			    cold_bundle_cb cb, void *arg);
	int (*msg_append)(coldstore_t *cs, const cold_append_t *req, cold_append_cb cb, void *arg);
	int (*mailbox_fetch)(coldstore_t *cs, uint64_t account_id, uint32_t device_id,
			     uint64_t after_seq, uint32_t limit, cold_fetch_cb cb, void *arg);
	int (*mailbox_ack)(coldstore_t *cs, uint64_t account_id, uint32_t device_id,
			   uint64_t upto_seq, cold_ack_cb cb, void *arg);
	int (*expire)(coldstore_t *cs, uint64_t now_ms, cold_expire_cb cb, void *arg);
	int (*stats)(coldstore_t *cs, cold_stats_cb cb, void *arg);
	void (*flush)(coldstore_t *cs);
	void (*close)(coldstore_t *cs);
};

struct coldstore {
	const struct cold_ops *ops;
};

/* ---- operations -------------------------------------------------------- */

/* Registers a device (creating the account when req->new_account) and stores
 * its keys. Completes with the assigned device number, or -FC_EEXIST,
 * -FC_ENOTFOUND, -FC_ELIMIT (max_devices reached or too many prekeys). */
FC_WUR static inline int cold_device_register(coldstore_t *cs, const cold_register_t *req,
					      cold_register_cb cb, void *arg)
{
	return cs->ops->device_register(cs, req, cb, arg);
}

/* Removes a device with its prekeys, its mailbox and the idempotency records
 * of its sends (device numbers are reused). -FC_ENOTFOUND if absent. */
FC_WUR static inline int cold_device_remove(coldstore_t *cs, uint64_t account_id,
					    uint32_t device_id, cold_remove_cb cb, void *arg)
{
	return cs->ops->device_remove(cs, account_id, device_id, cb, arg);
}

/* Reads a device's authentication key. -FC_ENOTFOUND if absent. */
FC_WUR static inline int cold_device_get(coldstore_t *cs, uint64_t account_id, uint32_t device_id,
					 cold_device_cb cb, void *arg)
{
	return cs->ops->device_get(cs, account_id, device_id, cb, arg);
}

/* Lists an account's devices and username. -FC_ENOTFOUND if no account. */
FC_WUR static inline int cold_devices_list(coldstore_t *cs, uint64_t account_id, cold_devices_cb cb,
					   void *arg)
{
	return cs->ops->devices_list(cs, account_id, cb, arg);
}

/* Sets the account's username, already validated by the caller. Uniqueness is
 * ASCII case-insensitive: -FC_EEXIST if another account holds it; setting the
 * current name again succeeds; an empty name clears it. -FC_ENOTFOUND if no
 * account. */
FC_WUR static inline int cold_username_set(coldstore_t *cs, uint64_t account_id, slice_t name,
					   cold_username_cb cb, void *arg)
{
	return cs->ops->username_set(cs, account_id, name, cb, arg);
}

/* Resolves a username (case-insensitively) to its account. -FC_ENOTFOUND. */
FC_WUR static inline int cold_username_resolve(coldstore_t *cs, slice_t name, cold_username_cb cb,
					       void *arg)
{
	return cs->ops->username_resolve(cs, name, cb, arg);
}

/* Replaces the signed prekey (unless spk_id is 0) and adds one-time prekeys.
 * A key id already in the pool is replaced; a key id that was already claimed
 * is ignored, so a retried upload never resurrects a used key. -FC_ELIMIT if
 * the pool would exceed COLD_OTPK_POOL_MAX (nothing is applied then);
 * -FC_ENOTFOUND if no device. */
FC_WUR static inline int cold_keys_upload(coldstore_t *cs, const cold_keys_t *req, cold_keys_cb cb,
					  void *arg)
{
	return cs->ops->keys_upload(cs, req, cb, arg);
}

/* Returns a device's prekey bundle and claims exactly one one-time prekey (the
 * lowest id); a claimed key is never handed out again. -FC_ENOTFOUND. */
FC_WUR static inline int cold_bundle_claim(coldstore_t *cs, uint64_t account_id, uint32_t device_id,
					   cold_bundle_cb cb, void *arg)
{
	return cs->ops->bundle_claim(cs, account_id, device_id, cb, arg);
}

/* Appends one message to the mailboxes of every addressed device, all or
 * nothing. Idempotent on (sender account, sender device, client_msg_id): a
 * retry with the same body_hash completes with duplicate=1 and the original
 * timestamp and seqs; a different body_hash gives -FC_ECONFLICT. The addressed
 * set must be exactly every device of the recipient plus every other device of
 * the sender, without duplicates, else -FC_ESTALE with the current lists in
 * res. -FC_ENOTFOUND if the recipient account or the sending device does not
 * exist. */
FC_WUR static inline int cold_msg_append(coldstore_t *cs, const cold_append_t *req,
					 cold_append_cb cb, void *arg)
{
	return cs->ops->msg_append(cs, req, cb, arg);
}

/* Reads up to `limit` (capped at COLD_FETCH_MAX entries and about
 * COLD_FETCH_MAX_BYTES of ciphertext) entries with seq > after_seq, oldest
 * first. -FC_ENOTFOUND if no device. */
FC_WUR static inline int cold_mailbox_fetch(coldstore_t *cs, uint64_t account_id,
					    uint32_t device_id, uint64_t after_seq, uint32_t limit,
					    cold_fetch_cb cb, void *arg)
{
	return cs->ops->mailbox_fetch(cs, account_id, device_id, after_seq, limit, cb, arg);
}

/* Cumulative ack: removes entries with seq <= min(upto_seq, head) and raises
 * acked_seq to that; a lower ack than the current one changes nothing.
 * -FC_ENOTFOUND if no device. */
FC_WUR static inline int cold_mailbox_ack(coldstore_t *cs, uint64_t account_id, uint32_t device_id,
					  uint64_t upto_seq, cold_ack_cb cb, void *arg)
{
	return cs->ops->mailbox_ack(cs, account_id, device_id, upto_seq, cb, arg);
}

/* Removes mailbox entries with expires_ms <= now_ms (raising each mailbox's
 * expired_through), idempotency records and claimed-prekey markers older than
 * COLD_IDEM_RETENTION_MS. Work per call is capped (COLD_EXPIRE_BATCH rows of
 * each kind); res->more says a cap was hit and another call has work. */
FC_WUR static inline int cold_expire(coldstore_t *cs, uint64_t now_ms, cold_expire_cb cb, void *arg)
{
	return cs->ops->expire(cs, now_ms, cb, arg);
}

/* Counts accounts, devices and mailbox entries (for metrics and tests). */
FC_WUR static inline int cold_stats(coldstore_t *cs, cold_stats_cb cb, void *arg)
{
	return cs->ops->stats(cs, cb, arg);
}

/* Makes every operation submitted so far durable, then calls their callbacks
 * in order. Called once per loop iteration. A call from inside a callback
 * does nothing (the outer flush is still delivering). */
static inline void cold_flush(coldstore_t *cs)
{
	cs->ops->flush(cs);
}

/* Flushes, then releases the store. Operations submitted by callbacks during
 * this final flush are refused (-FC_EUNAVAIL). Must not be called from a
 * callback. `cs` is invalid afterwards. */
static inline void cold_close(coldstore_t *cs)
{
	cs->ops->close(cs);
}

#endif
