/*
 * router: the business logic of the embedded profile, on its own thread and
 * libuv loop. It receives client requests from the gateway loops over the
 * bus, checks them (signatures, invites, limits, device sets), persists
 * through the coldstore seam, and answers and fans out over the bus.
 * Presence (which connection serves which device) and pending link codes
 * live behind the hotstore seam; everything durable behind coldstore.
 *
 * Batching: every wake-up drains the whole inbox, submits all the resulting
 * store operations, then flushes the store once, so concurrent senders share
 * one commit. No reply leaves before the store reports it durable.
 */
#ifndef FC_ROUTER_ROUTER_H
#define FC_ROUTER_ROUTER_H

#include "bus/bus.h"
#include "core/config.h"
#include "store/coldstore.h"
#include "store/hotstore.h"

typedef struct router router_t;

/* Creates the router over open stores (the router takes ownership of cs and
 * hs and closes them in router_stop()). Not started. */
int router_create(router_t **out, const fc_config_t *cfg, coldstore_t *cs, hotstore_t *hs);

/* The inbox gateways push requests to. Valid after router_create(). */
bus_inbox_t *router_inbox(router_t *r);

/* Registers the gateway loops' inboxes (index = bus_msg_t.gw). Call before
 * router_start(). The array is copied. */
void router_set_gateways(router_t *r, bus_inbox_t **gws, unsigned n);

/* Starts the router thread. */
int router_start(router_t *r);

/* Stops the thread after it has drained its inbox, flushes and closes the
 * store, joins, and frees the router. */
void router_stop(router_t *r);

#endif
