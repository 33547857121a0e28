/*
 * metrics: process-wide counters, gauges and one latency histogram, rendered
 * as Prometheus text (exposition format 0.0.4) on the admin /metrics endpoint.
 *
 * Every update is a relaxed atomic add, so any thread may call any function
 * without locks. Names are fixed at compile time and all start with fourc_;
 * no label carries user data (no ids, no usernames), only small fixed enums.
 */
#ifndef FC_CORE_METRICS_H
#define FC_CORE_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum metric_id {
	M_CONNECTIONS,       /* gauge: open client connections */
	M_CONNECTIONS_TOTAL, /* accepted client connections */
	M_WS_UPGRADES,       /* successful WebSocket upgrades */
	M_UPGRADES_REJECTED, /* 503 by admission control */
	M_FRAMES_IN,         /* protocol frames received */
	M_FRAMES_OUT,        /* protocol frames sent */
	M_BYTES_IN,
	M_BYTES_OUT,
	M_MSG_ACCEPTED,  /* SEND requests accepted (durable) */
	M_MSG_DUPLICATE, /* idempotent retries absorbed */
	M_MSG_DELIVERED, /* mailbox entries delivered live or by sync */
	M_MSG_EXPIRED,   /* mailbox entries removed by retention */
	M_AUTH_OK,
	M_REGISTRATIONS,
	M_PREKEYS_CLAIMED,
	M_STORE_COMMITS,
	M_METRIC_COUNT
};

enum metric_err {
	E_HTTP_BAD_REQUEST,
	E_HTTP_TOO_LARGE,
	E_HTTP_TIMEOUT,
	E_WS_PROTOCOL,
	E_WS_UTF8,
	E_WS_TOO_BIG,
	E_WS_UNSUPPORTED,
	E_TLS_HANDSHAKE,
	E_AUTH_TIMEOUT,
	E_AUTH_FAILED,
	E_PROTO_BAD_FRAME,
	E_RATE_LIMITED,
	E_SLOW_READER,
	E_STORE,
	E_PING_TIMEOUT,
	E_PREAUTH_BUDGET,
	E_ERR_COUNT
};

void metrics_add(int id, int64_t n);
void metrics_err(int kind);
/* Records one delivery latency (send accepted -> frame queued to device). */
void metrics_latency_us(uint64_t us);
uint64_t metrics_get(int id);

/* Renders everything into buf; returns bytes written (truncates at cap). */
size_t metrics_render(char *buf, size_t cap);

#endif
