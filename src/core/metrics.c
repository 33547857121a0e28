#include "core/metrics.h"

#include <stdio.h>

static int64_t g_vals[M_METRIC_COUNT];
static uint64_t g_errs[E_ERR_COUNT];

/* Delivery latency buckets in microseconds (upper bounds, le). */
static const uint64_t g_bounds[] = {100,   250,    500,    1000,   2500,    5000,    10000,   25000,
				    50000, 100000, 250000, 500000, 1000000, 2500000, 10000000};
#define NB (sizeof g_bounds / sizeof g_bounds[0])
static uint64_t g_hist[NB + 1];
static uint64_t g_hist_sum;

static const struct {
	const char *name, *type, *help;
} g_meta[M_METRIC_COUNT] = {
	[M_CONNECTIONS] = {"fourc_connections", "gauge", "Open client connections."},
	[M_CONNECTIONS_TOTAL] = {"fourc_connections_accepted_total", "counter",
				 "Accepted client connections."},
	[M_WS_UPGRADES] = {"fourc_ws_upgrades_total", "counter", "Successful WebSocket upgrades."},
	[M_UPGRADES_REJECTED] = {"fourc_upgrades_rejected_total", "counter",
				 "Upgrades refused by admission control."},
	[M_FRAMES_IN] = {"fourc_frames_in_total", "counter", "Protocol frames received."},
	[M_FRAMES_OUT] = {"fourc_frames_out_total", "counter", "Protocol frames sent."},
	[M_BYTES_IN] = {"fourc_bytes_in_total", "counter", "Bytes received from clients."},
	[M_BYTES_OUT] = {"fourc_bytes_out_total", "counter", "Bytes sent to clients."},
	[M_MSG_ACCEPTED] = {"fourc_messages_accepted_total", "counter",
			    "Messages accepted as durable."},
	[M_MSG_DUPLICATE] = {"fourc_messages_duplicate_total", "counter",
			     "Idempotent resends absorbed."},
	[M_MSG_DELIVERED] = {"fourc_messages_delivered_total", "counter",
			     "Mailbox entries delivered to devices."},
	[M_MSG_EXPIRED] = {"fourc_messages_expired_total", "counter",
			   "Mailbox entries expired undelivered."},
	[M_AUTH_OK] = {"fourc_auth_total", "counter", "Successful device authentications."},
	[M_REGISTRATIONS] = {"fourc_registrations_total", "counter",
			     "Devices registered or linked."},
	[M_PREKEYS_CLAIMED] = {"fourc_prekeys_claimed_total", "counter",
			       "One-time prekeys handed out."},
	[M_STORE_COMMITS] = {"fourc_store_commits_total", "counter", "Store batches committed."},
};

static const char *const g_err_names[E_ERR_COUNT] = {
	[E_HTTP_BAD_REQUEST] = "http_bad_request",
	[E_HTTP_TOO_LARGE] = "http_too_large",
	[E_HTTP_TIMEOUT] = "http_timeout",
	[E_WS_PROTOCOL] = "ws_protocol",
	[E_WS_UTF8] = "ws_utf8",
	[E_WS_TOO_BIG] = "ws_too_big",
	[E_WS_UNSUPPORTED] = "ws_unsupported_data",
	[E_TLS_HANDSHAKE] = "tls_handshake",
	[E_AUTH_TIMEOUT] = "auth_timeout",
	[E_AUTH_FAILED] = "auth_failed",
	[E_PROTO_BAD_FRAME] = "proto_bad_frame",
	[E_RATE_LIMITED] = "rate_limited",
	[E_SLOW_READER] = "slow_reader",
	[E_STORE] = "store",
	[E_PING_TIMEOUT] = "ping_timeout",
	[E_PREAUTH_BUDGET] = "preauth_budget",
};

void metrics_add(int id, int64_t n)
{
	__atomic_add_fetch(&g_vals[id], n, __ATOMIC_RELAXED);
}

void metrics_err(int kind)
{
	__atomic_add_fetch(&g_errs[kind], 1, __ATOMIC_RELAXED);
}

uint64_t metrics_get(int id)
{
	return (uint64_t)__atomic_load_n(&g_vals[id], __ATOMIC_RELAXED);
}

void metrics_latency_us(uint64_t us)
{
	size_t i = 0;
	while (i < NB && us > g_bounds[i])
		i++;
	__atomic_add_fetch(&g_hist[i], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&g_hist_sum, us, __ATOMIC_RELAXED);
}

#define EMIT(...)                                                                     \
	do {                                                                          \
		int n_ = snprintf(buf + off, cap > off ? cap - off : 0, __VA_ARGS__); \
		if (n_ > 0)                                                           \
			off += (size_t)n_;                                            \
		if (off > cap)                                                        \
			off = cap;                                                    \
	} while (0)

size_t metrics_render(char *buf, size_t cap)
{
	size_t off = 0;
	for (int i = 0; i < M_METRIC_COUNT; i++) {
		EMIT("# HELP %s %s\n# TYPE %s %s\n%s %lld\n", g_meta[i].name, g_meta[i].help,
		     g_meta[i].name, g_meta[i].type, g_meta[i].name,
		     (long long)__atomic_load_n(&g_vals[i], __ATOMIC_RELAXED));
	}
	EMIT("# HELP fourc_errors_total Errors by kind.\n# TYPE fourc_errors_total counter\n");
	for (int i = 0; i < E_ERR_COUNT; i++)
		EMIT("fourc_errors_total{kind=\"%s\"} %llu\n", g_err_names[i],
		     (unsigned long long)__atomic_load_n(&g_errs[i], __ATOMIC_RELAXED));
	EMIT("# HELP fourc_delivery_latency_seconds Time from acceptance to delivery.\n"
	     "# TYPE fourc_delivery_latency_seconds histogram\n");
	uint64_t cum = 0;
	for (size_t i = 0; i <= NB; i++) {
		cum += __atomic_load_n(&g_hist[i], __ATOMIC_RELAXED);
		if (i < NB)
			EMIT("fourc_delivery_latency_seconds_bucket{le=\"%g\"} %llu\n",
			     (double)g_bounds[i] / 1e6, (unsigned long long)cum);
		else
			EMIT("fourc_delivery_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
			     (unsigned long long)cum);
	}
	EMIT("fourc_delivery_latency_seconds_sum %.6f\nfourc_delivery_latency_seconds_count %llu\n",
	     (double)__atomic_load_n(&g_hist_sum, __ATOMIC_RELAXED) / 1e6, (unsigned long long)cum);
	return off;
}
