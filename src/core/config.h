/*
 * config: the fourcd configuration, read from an INI file.
 *
 * config_defaults() fills a valid configuration for the embedded profile;
 * config_load() overlays an INI file on it. An unknown section or key, or a
 * value that does not parse or is out of range, fails the load with a message
 * that names the file, the line and the key. Command-line options are applied
 * on top by the caller. The struct is plain data owned by the caller.
 */
#ifndef FC_CORE_CONFIG_H
#define FC_CORE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_INVITES 16
#define CONFIG_STR 256

typedef struct fc_config {
	/* [server] */
	char listen[CONFIG_STR];     /* plain WebSocket/HTTP, "" = off */
	char tls_listen[CONFIG_STR]; /* TLS WebSocket/HTTP, "" = off */
	char admin[CONFIG_STR];      /* /metrics, /healthz, /readyz, "" = off */
	char data[CONFIG_STR];       /* data directory */
	unsigned loops;              /* gateway loops; 0 = one per core */
	/* [tls] */
	char tls_cert[CONFIG_STR]; /* "" = DATA/tls/dev-cert.pem, generated */
	char tls_key[CONFIG_STR];
	/* [limits] */
	uint32_t max_message;        /* WebSocket message and frame cap */
	uint32_t max_header_bytes;   /* HTTP request head cap */
	uint32_t max_body_bytes;     /* HTTP request body cap */
	uint32_t max_outbound_bytes; /* queued bytes per connection */
	uint32_t header_timeout_ms;
	uint32_t auth_timeout_ms;
	uint32_t ping_interval_ms;
	uint32_t upgrade_rate; /* admitted upgrades per second per loop */
	uint32_t upgrade_burst;
	uint32_t max_connections;      /* per process */
	uint32_t max_inflight;         /* requests in flight per connection */
	uint32_t max_preauth_bytes;    /* input buffered by unauthenticated connections, per loop */
	uint32_t bundle_fetch_per_min; /* BUNDLE_FETCH requests per device per minute */
	/* [accounts] */
	char verifier[32]; /* registration gate: "invite" or "open" */
	char invites[CONFIG_MAX_INVITES][64];
	unsigned n_invites;
	uint32_t max_devices;
	uint32_t link_code_ttl_s;
	/* [mailbox] */
	uint64_t retention_ms;
	uint32_t prekey_low_threshold;
	uint32_t sweep_interval_ms;
	/* [store] */
	int store_sync_full; /* 1: fsync every commit; 0: survive process crashes */
	/* [log] */
	int log_level;
} fc_config_t;

void config_defaults(fc_config_t *c);

/* Loads path over c. On failure returns -FC_ECONFIG and writes a one-line
 * message "FILE:LINE: key: problem" into err. */
int config_load(fc_config_t *c, const char *path, char *err, size_t errlen);

/* Sets one key as if it appeared in section sec of a file; used for
 * command-line overrides. Same errors as config_load (line 0). */
int config_set(fc_config_t *c, const char *sec, const char *key, const char *val, char *err,
	       size_t errlen);

/* Parses "HOST:PORT" (IPv4 or [IPv6]) into host and port. */
int config_split_addr(const char *addr, char *host, size_t hostlen, int *port);

#endif
