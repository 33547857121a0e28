#include "router/verifier.h"

#include <sodium.h>
#include <string.h>

#include "core/err.h"

static int check_invite(const reg_verifier_t *v, slice_t token)
{
	int ok = 0;
	for (unsigned i = 0; i < v->cfg->n_invites; i++) {
		size_t n = strlen(v->cfg->invites[i]);
		/* Visit every code, so timing does not reveal which one matched. */
		if (n == token.len && sodium_memcmp(v->cfg->invites[i], token.ptr, n) == 0)
			ok = 1;
	}
	return ok;
}

static int check_open(const reg_verifier_t *v, slice_t token)
{
	(void)v;
	(void)token;
	return 1;
}

int verifier_init(reg_verifier_t *v, const fc_config_t *cfg)
{
	v->cfg = cfg;
	if (strcmp(cfg->verifier, "invite") == 0) {
		v->name = "invite";
		v->check = check_invite;
		return 0;
	}
	if (strcmp(cfg->verifier, "open") == 0) {
		v->name = "open";
		v->check = check_open;
		return 0;
	}
	return -FC_ECONFIG;
}
