#include "store/mem_hot.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUCKETS 65536

typedef struct pres {
	struct pres *next;
	hot_dev_t dev;
	uint16_t gw;
	uint64_t conn_id;
} pres_t;

typedef struct link {
	uint8_t code[HOT_LINK_CODE_MAX];
	uint8_t len;
	uint64_t account; /* 0: free slot */
	uint64_t expires_ms;
} link_t;

typedef struct rate {
	struct rate *next;
	hot_dev_t dev;
	uint8_t kind;
	uint32_t count;
	uint64_t window_end_ms;
} rate_t;

#define RATE_BUCKETS 4096

struct mem_hot {
	hotstore_t base;
	pres_t *pres[BUCKETS];
	link_t links[MEM_HOT_LINKS];
	rate_t *rates[RATE_BUCKETS];
	uint32_t rate_sweep; /* next bucket the lazy sweep looks at */
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint32_t bucket(hot_dev_t d)
{
	uint64_t h = d.account * 0x9E3779B97F4A7C15ull ^ (uint64_t)d.device * 0xC2B2AE3D27D4EB4Full;
	return (uint32_t)(h >> 40) & (BUCKETS - 1);
}

static pres_t **find(struct mem_hot *m, hot_dev_t d)
{
	pres_t **pp = &m->pres[bucket(d)];
	while (*pp && ((*pp)->dev.account != d.account || (*pp)->dev.device != d.device))
		pp = &(*pp)->next;
	return pp;
}

static int presence_set(hotstore_t *hs, hot_dev_t dev, uint16_t gw, uint64_t conn_id,
			hot_presence_cb cb, void *arg)
{
	struct mem_hot *m = (struct mem_hot *)hs;
	pres_t **pp = find(m, dev);
	hot_presence_t prev = {0};
	if (*pp) {
		prev = (hot_presence_t){.found = 1, .gw = (*pp)->gw, .conn_id = (*pp)->conn_id};
	} else {
		pres_t *p = calloc(1, sizeof *p);
		if (!p)
			return -ENOMEM;
		p->dev = dev;
		*pp = p;
	}
	(*pp)->gw = gw;
	(*pp)->conn_id = conn_id;
	if (cb)
		cb(arg, 0, &prev);
	return 0;
}

static int presence_drop(hotstore_t *hs, hot_dev_t dev, uint16_t gw, uint64_t conn_id,
			 hot_presence_cb cb, void *arg)
{
	struct mem_hot *m = (struct mem_hot *)hs;
	pres_t **pp = find(m, dev);
	hot_presence_t prev = {0};
	pres_t *p = *pp;
	if (p && (conn_id == 0 || (p->gw == gw && p->conn_id == conn_id))) {
		prev = (hot_presence_t){.found = 1, .gw = p->gw, .conn_id = p->conn_id};
		*pp = p->next;
		free(p);
	}
	if (cb)
		cb(arg, 0, &prev);
	return 0;
}

static int presence_get(hotstore_t *hs, const hot_dev_t *devs, size_t n, hot_lookup_cb cb,
			void *arg)
{
	struct mem_hot *m = (struct mem_hot *)hs;
	hot_presence_t one, *res = n == 1 ? &one : calloc(n, sizeof *res);
	if (!res)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		pres_t *p = *find(m, devs[i]);
		res[i] = p ? (hot_presence_t){.found = 1, .gw = p->gw, .conn_id = p->conn_id} :
			     (hot_presence_t){0};
	}
	cb(arg, 0, res, n);
	if (res != &one)
		free(res);
	return 0;
}

static int link_put(hotstore_t *hs, slice_t code, uint64_t account, uint64_t ttl_ms, hot_link_cb cb,
		    void *arg)
{
	struct mem_hot *m = (struct mem_hot *)hs;
	if (!code.len || code.len > HOT_LINK_CODE_MAX || !account)
		return -EINVAL;
	uint64_t now = now_ms();
	link_t *slot = NULL;
	int mine = 0;
	for (int i = 0; i < MEM_HOT_LINKS; i++) {
		link_t *l = &m->links[i];
		int live = l->account && l->expires_ms > now;
		if (live && l->len == code.len && memcmp(l->code, code.ptr, code.len) == 0) {
			cb(arg, -FC_EEXIST, 0);
			return 0;
		}
		mine += live && l->account == account;
		if (!live && !slot)
			slot = l;
	}
	/* Per account too, so one account cannot use up the table for all. */
	if (!slot || mine >= MEM_HOT_LINKS_PER_ACCOUNT) {
		cb(arg, -FC_ELIMIT, 0);
		return 0;
	}
	memcpy(slot->code, code.ptr, code.len);
	slot->len = (uint8_t)code.len;
	slot->account = account;
	slot->expires_ms = now + ttl_ms;
	cb(arg, 0, account);
	return 0;
}

static int link_take(hotstore_t *hs, slice_t code, hot_link_cb cb, void *arg)
{
	struct mem_hot *m = (struct mem_hot *)hs;
	uint64_t now = now_ms();
	uint64_t account = 0;
	for (int i = 0; i < MEM_HOT_LINKS && code.len && code.len <= HOT_LINK_CODE_MAX; i++) {
		link_t *l = &m->links[i];
		/* Compare every live slot in constant time per slot, so timing
		 * does not tell how much of a guessed code matched. */
		if (l->account && l->expires_ms > now && l->len == code.len &&
		    sodium_memcmp(l->code, code.ptr, code.len) == 0) {
			account = l->account;
			memset(l, 0, sizeof *l);
		}
	}
	cb(arg, account ? 0 : -FC_ENOTFOUND, account);
	return 0;
}

/* Drops expired counters from one chain. */
static void rate_sweep_chain(rate_t **pp, uint64_t now)
{
	while (*pp) {
		rate_t *r = *pp;
		if (r->window_end_ms <= now) {
			*pp = r->next;
			free(r);
		} else {
			pp = &r->next;
		}
	}
}

static int rate_take(hotstore_t *hs, hot_dev_t dev, uint8_t kind, uint32_t limit,
		     uint32_t window_ms, hot_rate_cb cb, void *arg)
{
	struct mem_hot *m = (struct mem_hot *)hs;
	uint64_t now = now_ms();
	/* Each call also sweeps one other chain, so idle counters go away
	 * without a timer. */
	rate_sweep_chain(&m->rates[m->rate_sweep++ % RATE_BUCKETS], now);
	uint32_t b = (bucket(dev) ^ kind) & (RATE_BUCKETS - 1);
	rate_sweep_chain(&m->rates[b], now);
	rate_t *r = m->rates[b];
	while (r &&
	       (r->dev.account != dev.account || r->dev.device != dev.device || r->kind != kind))
		r = r->next;
	if (!r) {
		r = calloc(1, sizeof *r);
		if (!r)
			return -ENOMEM;
		r->dev = dev;
		r->kind = kind;
		r->window_end_ms = now + window_ms;
		r->next = m->rates[b];
		m->rates[b] = r;
	}
	if (r->count >= limit) {
		cb(arg, 0, 0, (uint32_t)(r->window_end_ms - now));
		return 0;
	}
	r->count++;
	cb(arg, 0, 1, 0);
	return 0;
}

static void hot_free(hotstore_t *hs)
{
	struct mem_hot *m = (struct mem_hot *)hs;
	for (uint32_t i = 0; i < RATE_BUCKETS; i++) {
		rate_t *r = m->rates[i];
		while (r) {
			rate_t *n = r->next;
			free(r);
			r = n;
		}
	}
	for (uint32_t i = 0; i < BUCKETS; i++) {
		pres_t *p = m->pres[i];
		while (p) {
			pres_t *n = p->next;
			free(p);
			p = n;
		}
	}
	free(m);
}

static const struct hot_ops mem_hot_ops = {
	.presence_set = presence_set,
	.presence_drop = presence_drop,
	.presence_get = presence_get,
	.link_put = link_put,
	.link_take = link_take,
	.rate_take = rate_take,
	.close = hot_free,
};

int mem_hot_open(hotstore_t **out)
{
	struct mem_hot *m = calloc(1, sizeof *m);
	if (!m)
		return -ENOMEM;
	m->base.ops = &mem_hot_ops;
	*out = &m->base;
	return 0;
}
