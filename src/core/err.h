/*
 * err: the project-wide error codes.
 *
 * Fallible functions return int: 0 (or a non-negative count) on success and a
 * negative code on failure. Where an errno value fits it is used negated
 * (-ENOMEM, -EINVAL, ...); project-specific conditions use the FC_E* values
 * below, which live far above the errno range so the two never collide.
 * err_str() turns any code into a short, constant, human readable string.
 */
#ifndef FC_CORE_ERR_H
#define FC_CORE_ERR_H

#include <errno.h>

#define FC_WUR __attribute__((warn_unused_result))

enum fc_err {
	FC_EPROTO_BASE = 10000,
	FC_ETRUNC,     /* input ended before a complete unit */
	FC_EMALFORMED, /* input is structurally invalid */
	FC_ETOOBIG,    /* a hard size cap was exceeded */
	FC_EUTF8,      /* invalid UTF-8 */
	FC_EVERSION,   /* unsupported protocol version */
	FC_ETYPE,      /* unknown message type */
	FC_ECONFIG,    /* bad configuration */
	FC_ENOTFOUND,  /* no such entity */
	FC_EEXIST,     /* entity already exists */
	FC_ELIMIT,     /* a count limit was reached */
	FC_EAUTH,      /* authentication failed */
	FC_ESTALE,     /* caller's view is stale */
	FC_ECONFLICT,  /* idempotency key reused with different content */
	FC_EUNAVAIL,   /* dependency unavailable, retry later */
	FC_ESTORE,     /* storage engine failure */
	FC_EMAX
};

/* Returns a static string for any code returned by a project function. */
const char *err_str(int code);

#endif
