#include "core/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"

void config_defaults(fc_config_t *c)
{
	memset(c, 0, sizeof *c);
	snprintf(c->listen, sizeof c->listen, "127.0.0.1:8080");
	snprintf(c->tls_listen, sizeof c->tls_listen, "127.0.0.1:8443");
	snprintf(c->admin, sizeof c->admin, "127.0.0.1:9100");
	snprintf(c->data, sizeof c->data, "./var");
	snprintf(c->verifier, sizeof c->verifier, "invite");
	c->loops = 0;
	c->max_message = 1u << 20;
	c->max_header_bytes = 8192;
	c->max_body_bytes = 65536;
	c->max_outbound_bytes = 4u << 20;
	c->header_timeout_ms = 10000;
	c->auth_timeout_ms = 10000;
	c->ping_interval_ms = 30000;
	c->upgrade_rate = 500;
	c->upgrade_burst = 1000;
	c->max_connections = 200000;
	c->max_inflight = 64;
	c->max_preauth_bytes = 64u << 20;
	c->bundle_fetch_per_min = 120;
	c->max_devices = 5;
	c->link_code_ttl_s = 600;
	c->retention_ms = 30ull * 24 * 3600 * 1000;
	c->prekey_low_threshold = 10;
	c->sweep_interval_ms = 60000;
	c->log_level = LOG_INFO;
}

static int parse_u64(const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
	if (!v || !*v || !isdigit((unsigned char)v[0]))
		return -1;
	errno = 0;
	char *end;
	unsigned long long x = strtoull(v, &end, 10);
	if (errno || *end || x < lo || x > hi)
		return -1;
	*out = x;
	return 0;
}

static int set_str(char *dst, size_t cap, const char *v)
{
	size_t n = strlen(v);
	if (n >= cap)
		return -1;
	memcpy(dst, v, n + 1);
	return 0;
}

/* A listen address: empty (off) or HOST:PORT with a numeric IPv4 or
 * bracketed IPv6 host (names would need a blocking lookup at start). */
static const char *set_addr(char *dst, size_t cap, const char *v)
{
	if (*v) {
		char host[128];
		int port;
		unsigned char bin[16];
		if (config_split_addr(v, host, sizeof host, &port) != 0)
			return "expected HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080";
		if (inet_pton(strchr(host, ':') ? AF_INET6 : AF_INET, host, bin) != 1)
			return "expected a numeric IP address, e.g. 127.0.0.1:8080 or [::1]:8080";
	}
	return set_str(dst, cap, v) ? "value too long" : NULL;
}

static int set_invites(fc_config_t *c, const char *v)
{
	c->n_invites = 0;
	const char *p = v;
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		if (!*p)
			break;
		const char *s = p;
		while (*p && *p != ',' && *p != ' ')
			p++;
		size_t n = (size_t)(p - s);
		if (n >= sizeof c->invites[0] || c->n_invites == CONFIG_MAX_INVITES)
			return -1;
		memcpy(c->invites[c->n_invites], s, n);
		c->invites[c->n_invites][n] = 0;
		c->n_invites++;
	}
	return 0;
}

#define U32(field, lo, hi)                                                  \
	do {                                                                \
		uint64_t x_;                                                \
		if (parse_u64(val, lo, hi, &x_) != 0)                       \
			return "expected an integer in [" #lo ", " #hi "]"; \
		c->field = (uint32_t)x_;                                    \
	} while (0)

/* Applies one key; returns NULL on success or a description of the problem. */
static const char *apply(fc_config_t *c, const char *sec, const char *key, const char *val)
{
	uint64_t x;
	if (strcmp(sec, "server") == 0) {
		if (strcmp(key, "listen") == 0)
			return set_addr(c->listen, sizeof c->listen, val);
		if (strcmp(key, "tls_listen") == 0)
			return set_addr(c->tls_listen, sizeof c->tls_listen, val);
		if (strcmp(key, "admin") == 0)
			return set_addr(c->admin, sizeof c->admin, val);
		if (strcmp(key, "data") == 0)
			return set_str(c->data, sizeof c->data, val) || !*val ? "bad directory" :
										NULL;
		if (strcmp(key, "loops") == 0) {
			U32(loops, 0, 64);
			return NULL;
		}
	} else if (strcmp(sec, "tls") == 0) {
		if (strcmp(key, "cert") == 0)
			return set_str(c->tls_cert, sizeof c->tls_cert, val) ? "value too long" :
									       NULL;
		if (strcmp(key, "key") == 0)
			return set_str(c->tls_key, sizeof c->tls_key, val) ? "value too long" :
									     NULL;
	} else if (strcmp(sec, "limits") == 0) {
		if (strcmp(key, "max_message") == 0) {
			U32(max_message, 1024, 16777216);
			return NULL;
		}
		if (strcmp(key, "max_header_bytes") == 0) {
			U32(max_header_bytes, 1024, 8192);
			return NULL;
		}
		if (strcmp(key, "max_body_bytes") == 0) {
			U32(max_body_bytes, 0, 16777216);
			return NULL;
		}
		if (strcmp(key, "max_outbound_bytes") == 0) {
			U32(max_outbound_bytes, 65536, 1073741824);
			return NULL;
		}
		if (strcmp(key, "header_timeout_ms") == 0) {
			U32(header_timeout_ms, 100, 600000);
			return NULL;
		}
		if (strcmp(key, "auth_timeout_ms") == 0) {
			U32(auth_timeout_ms, 100, 600000);
			return NULL;
		}
		if (strcmp(key, "ping_interval_ms") == 0) {
			U32(ping_interval_ms, 1000, 3600000);
			return NULL;
		}
		if (strcmp(key, "upgrade_rate") == 0) {
			U32(upgrade_rate, 1, 1000000);
			return NULL;
		}
		if (strcmp(key, "upgrade_burst") == 0) {
			U32(upgrade_burst, 1, 1000000);
			return NULL;
		}
		if (strcmp(key, "max_connections") == 0) {
			U32(max_connections, 1, 10000000);
			return NULL;
		}
		if (strcmp(key, "bundle_fetch_per_min") == 0) {
			U32(bundle_fetch_per_min, 1, 60000);
			return NULL;
		}
		if (strcmp(key, "max_preauth_bytes") == 0) {
			U32(max_preauth_bytes, 1048576, 4294967295);
			return NULL;
		}
		if (strcmp(key, "max_inflight") == 0) {
			U32(max_inflight, 1, 4096);
			return NULL;
		}
	} else if (strcmp(sec, "accounts") == 0) {
		if (strcmp(key, "verifier") == 0) {
			if (strcmp(val, "invite") != 0 && strcmp(val, "open") != 0)
				return "expected invite or open";
			return set_str(c->verifier, sizeof c->verifier, val) ? "value too long" :
									       NULL;
		}
		if (strcmp(key, "invite_codes") == 0)
			return set_invites(c, val) ? "too many or too long codes (16 x 63)" : NULL;
		if (strcmp(key, "max_devices") == 0) {
			U32(max_devices, 1, 16);
			return NULL;
		}
		if (strcmp(key, "link_code_ttl_s") == 0) {
			U32(link_code_ttl_s, 10, 86400);
			return NULL;
		}
	} else if (strcmp(sec, "mailbox") == 0) {
		if (strcmp(key, "retention_seconds") == 0) {
			if (parse_u64(val, 1, 10ull * 365 * 86400, &x) != 0)
				return "expected seconds in [1, 315360000]";
			c->retention_ms = x * 1000;
			return NULL;
		}
		if (strcmp(key, "prekey_low_threshold") == 0) {
			U32(prekey_low_threshold, 0, 1000);
			return NULL;
		}
		if (strcmp(key, "sweep_interval_ms") == 0) {
			U32(sweep_interval_ms, 100, 86400000);
			return NULL;
		}
	} else if (strcmp(sec, "store") == 0) {
		if (strcmp(key, "sync") == 0) {
			if (strcmp(val, "full") == 0)
				c->store_sync_full = 1;
			else if (strcmp(val, "normal") == 0)
				c->store_sync_full = 0;
			else
				return "expected normal or full";
			return NULL;
		}
	} else if (strcmp(sec, "log") == 0) {
		if (strcmp(key, "level") == 0) {
			int l = log_level_parse(val);
			if (l < 0)
				return "expected debug, info, warn or error";
			c->log_level = l;
			return NULL;
		}
	} else {
		return "unknown section";
	}
	return "unknown key";
}

struct load_ctx {
	fc_config_t *c;
	char problem[160];
	char key[96];
};

static int on_kv(void *user, const char *sec, const char *key, const char *val)
{
	struct load_ctx *lc = user;
	const char *p = apply(lc->c, sec, key, val);
	if (!p)
		return 1;
	if (!lc->problem[0]) {
		snprintf(lc->problem, sizeof lc->problem, "%s", p);
		snprintf(lc->key, sizeof lc->key, "[%s] %s", sec, key);
	}
	return 0;
}

int config_load(fc_config_t *c, const char *path, char *err, size_t errlen)
{
	struct load_ctx lc = {.c = c};
	int rc = ini_parse(path, on_kv, &lc);
	if (rc == 0)
		return 0;
	if (rc == -1)
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
	else if (rc == -2)
		snprintf(err, errlen, "%s: out of memory", path);
	else if (lc.problem[0])
		snprintf(err, errlen, "%s:%d: %s: %s", path, rc, lc.key, lc.problem);
	else
		snprintf(err, errlen, "%s:%d: syntax error", path, rc);
	return -FC_ECONFIG;
}

int config_set(fc_config_t *c, const char *sec, const char *key, const char *val, char *err,
	       size_t errlen)
{
	const char *p = apply(c, sec, key, val);
	if (!p)
		return 0;
	snprintf(err, errlen, "[%s] %s: %s", sec, key, p);
	return -FC_ECONFIG;
}

int config_split_addr(const char *addr, char *host, size_t hostlen, int *port)
{
	const char *colon = strrchr(addr, ':');
	if (!colon || colon == addr)
		return -EINVAL;
	const char *h = addr;
	size_t hl = (size_t)(colon - addr);
	if (h[0] == '[') {
		if (hl < 2 || h[hl - 1] != ']')
			return -EINVAL;
		h++;
		hl -= 2;
	}
	if (hl == 0 || hl >= hostlen)
		return -EINVAL;
	uint64_t p;
	if (parse_u64(colon + 1, 0, 65535, &p) != 0)
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = 0;
	*port = (int)p;
	return 0;
}
