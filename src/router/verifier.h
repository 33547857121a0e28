/*
 * verifier: who may register. REGISTER carries an opaque token (the
 * `invite` field); a verifier decides whether it admits a new account. The
 * router calls it on its own thread before any store work.
 *
 * Verifiers: "invite" (default) accepts the codes of [accounts]
 * invite_codes, compared in constant time; "open" accepts everyone (for
 * closed test networks; fourcd warns at start). Phone or e-mail
 * verification, or a signed token from another service, plug in here.
 */
#ifndef FC_ROUTER_VERIFIER_H
#define FC_ROUTER_VERIFIER_H

#include "core/config.h"
#include "core/slice.h"

typedef struct reg_verifier {
	const char *name;
	/* 1 if token admits a registration, else 0. */
	int (*check)(const struct reg_verifier *v, slice_t token);
	const fc_config_t *cfg;
} reg_verifier_t;

/* Sets up the verifier named by cfg->verifier. -FC_ECONFIG if unknown. */
int verifier_init(reg_verifier_t *v, const fc_config_t *cfg);

#endif
