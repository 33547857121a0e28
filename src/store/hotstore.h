/*
 * hotstore: the hot-state seam of the router: presence (which gateway
 * connection currently serves a device) and pending device-link codes.
 *
 * Hot state is disposable by design: losing it (a restart) costs clients a
 * reconnect or a new link code, never a message. The production adapter is a
 * Redis client; the embedded adapter (mem_hot) keeps it in memory.
 *
 * Completion contract (both adapters): an operation returns 0 when accepted
 * and then calls its callback exactly once, either before it returns (the
 * embedded adapter completes inline) or later on the caller's loop (network
 * adapters); callers therefore submit last and touch nothing they may have
 * freed in the callback. A negative return means refused: no callback.
 * Results and their arrays are valid during the callback only. Lookups are
 * batched so a fan-out costs one round trip (one MGET / one pipeline).
 *
 * One thread owns a store and makes every call on it.
 */
#ifndef FC_STORE_HOTSTORE_H
#define FC_STORE_HOTSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/slice.h"

#define HOT_LINK_CODE_MAX 64

typedef struct hotstore hotstore_t;

typedef struct hot_dev {
	uint64_t account;
	uint32_t device;
} hot_dev_t;

/* Where a device is connected: gateway loop (or, in the cell profile,
 * gateway id) and connection id. found 0 when the device is offline. */
typedef struct hot_presence {
	int found;
	uint16_t gw;
	uint64_t conn_id;
} hot_presence_t;

/* presence_set: prev is where the device was connected before (found 0
 * if nowhere); presence_drop: prev is the entry removed (found 0 if none
 * matched). */
typedef void (*hot_presence_cb)(void *arg, int status, const hot_presence_t *prev);
/* presence_get: one result per requested device, in request order. */
typedef void (*hot_lookup_cb)(void *arg, int status, const hot_presence_t *res, size_t n);
/* link_put: status only; link_take: the account the code was made for. */
typedef void (*hot_link_cb)(void *arg, int status, uint64_t account);
/* rate_take: allowed 1 if under the limit (the event was counted), else 0
 * with retry_ms until the window ends. */
typedef void (*hot_rate_cb)(void *arg, int status, int allowed, uint32_t retry_ms);

struct hot_ops {
	int (*presence_set)(hotstore_t *hs, hot_dev_t dev, uint16_t gw, uint64_t conn_id,
			    hot_presence_cb cb, void *arg);
	int (*presence_drop)(hotstore_t *hs, hot_dev_t dev, uint16_t gw, uint64_t conn_id,
			     hot_presence_cb cb, void *arg);
	int (*presence_get)(hotstore_t *hs, const hot_dev_t *devs, size_t n, hot_lookup_cb cb,
			    void *arg);
	int (*link_put)(hotstore_t *hs, slice_t code, uint64_t account, uint64_t ttl_ms,
			hot_link_cb cb, void *arg);
	int (*link_take)(hotstore_t *hs, slice_t code, hot_link_cb cb, void *arg);
	int (*rate_take)(hotstore_t *hs, hot_dev_t dev, uint8_t kind, uint32_t limit,
			 uint32_t window_ms, hot_rate_cb cb, void *arg);
	void (*close)(hotstore_t *hs);
};

struct hotstore {
	const struct hot_ops *ops;
};

/* Records that dev is served by (gw, conn_id), replacing any earlier entry
 * (reported as prev so the caller can close the older connection). */
FC_WUR static inline int hot_presence_set(hotstore_t *hs, hot_dev_t dev, uint16_t gw,
					  uint64_t conn_id, hot_presence_cb cb, void *arg)
{
	return hs->ops->presence_set(hs, dev, gw, conn_id, cb, arg);
}

/* Removes dev's entry if it is (gw, conn_id); conn_id 0 removes whatever
 * connection holds dev. cb may be NULL. */
FC_WUR static inline int hot_presence_drop(hotstore_t *hs, hot_dev_t dev, uint16_t gw,
					   uint64_t conn_id, hot_presence_cb cb, void *arg)
{
	return hs->ops->presence_drop(hs, dev, gw, conn_id, cb, arg);
}

/* Looks up n devices at once (n >= 1). */
FC_WUR static inline int hot_presence_get(hotstore_t *hs, const hot_dev_t *devs, size_t n,
					  hot_lookup_cb cb, void *arg)
{
	return hs->ops->presence_get(hs, devs, n, cb, arg);
}

/* Stores a one-use link code for account, valid for ttl_ms. -FC_ELIMIT when
 * too many codes are pending; -FC_EEXIST if the code is in use. */
FC_WUR static inline int hot_link_put(hotstore_t *hs, slice_t code, uint64_t account,
				      uint64_t ttl_ms, hot_link_cb cb, void *arg)
{
	return hs->ops->link_put(hs, code, account, ttl_ms, cb, arg);
}

/* Atomically reads and deletes a link code (a code works once). Completes
 * with -FC_ENOTFOUND for an unknown, used or expired code. */
FC_WUR static inline int hot_link_take(hotstore_t *hs, slice_t code, hot_link_cb cb, void *arg)
{
	return hs->ops->link_take(hs, code, cb, arg);
}

/* Rate-limit kinds (part of the counter's key). */
enum hot_rate_kind { HOT_RATE_BUNDLE = 1 };

/* Counts one event of `kind` for dev in a fixed window of window_ms and
 * says whether it is within limit (Redis: INCR + PEXPIRE on one key). The
 * count lives with the device, not with a connection, so reconnecting does
 * not reset it. */
FC_WUR static inline int hot_rate_take(hotstore_t *hs, hot_dev_t dev, uint8_t kind, uint32_t limit,
				       uint32_t window_ms, hot_rate_cb cb, void *arg)
{
	return hs->ops->rate_take(hs, dev, kind, limit, window_ms, cb, arg);
}

static inline void hot_close(hotstore_t *hs)
{
	hs->ops->close(hs);
}

#endif
