/*
 * gateway: the connection layer. It accepts TCP (optionally TLS) connections,
 * speaks a small HTTP/1.1 surface and the WebSocket endpoint /v1/ws, and turns
 * client protocol frames into bus messages for the router and bus messages
 * from the router into WebSocket frames. It owns no durable state and never
 * touches storage.
 *
 * One libuv loop per thread ("worker"), each with its own SO_REUSEPORT
 * listening sockets, its own connections, a coarse timer wheel for every
 * per-connection deadline, and one flush of queued output per connection per
 * loop iteration. A separate "admin" loop, run by the thread that calls
 * gw_run_admin(), serves /healthz, /readyz and /metrics and nothing else.
 *
 * Connection state is small on purpose: an idle plaintext WebSocket holds no
 * buffer at all (reads land in one per-loop buffer; only the unfinished tail
 * of a frame is kept), and TLS connections release OpenSSL's buffers.
 */
#ifndef FC_GATEWAY_GATEWAY_H
#define FC_GATEWAY_GATEWAY_H

#include <stdint.h>

#include "bus/bus.h"
#include "core/config.h"

typedef struct gw_server gw_server_t;

/*
 * Binds every listening socket (so that a busy port fails start-up with a
 * clear message), loads or creates the TLS certificate, and prepares `loops`
 * worker loops. Nothing runs yet. router_inbox receives every client request.
 * Returns 0 or a negative code; err receives a one-line explanation.
 */
int gw_create(gw_server_t **out, const fc_config_t *cfg, bus_inbox_t *router_inbox, char *err,
	      size_t errlen);

/* The inbox of worker loop i, where the router sends frames for its
 * connections. Valid after gw_create(). */
bus_inbox_t *gw_inbox(gw_server_t *s, unsigned i);
unsigned gw_loop_count(const gw_server_t *s);

/* Starts the worker threads. */
int gw_start(gw_server_t *s);

/* Marks the process ready (readyz answers 200). Any thread. */
void gw_set_ready(gw_server_t *s, int ready);

/*
 * Runs the admin loop on the calling thread until SIGINT or SIGTERM, then
 * shuts the workers down gracefully: stop accepting, send GOAWAY and close
 * 1001 to every WebSocket client, let queued output drain (bounded), and join
 * the worker threads. Returns 0.
 */
int gw_run_admin(gw_server_t *s);

/* Frees everything after gw_run_admin() returned. */
void gw_destroy(gw_server_t *s);

#endif
