#include "core/err.h"

#include <string.h>

static const char *const fc_names[] = {
	[FC_ETRUNC - FC_EPROTO_BASE] = "truncated input",
	[FC_EMALFORMED - FC_EPROTO_BASE] = "malformed input",
	[FC_ETOOBIG - FC_EPROTO_BASE] = "size limit exceeded",
	[FC_EUTF8 - FC_EPROTO_BASE] = "invalid UTF-8",
	[FC_EVERSION - FC_EPROTO_BASE] = "unsupported version",
	[FC_ETYPE - FC_EPROTO_BASE] = "unknown type",
	[FC_ECONFIG - FC_EPROTO_BASE] = "bad configuration",
	[FC_ENOTFOUND - FC_EPROTO_BASE] = "not found",
	[FC_EEXIST - FC_EPROTO_BASE] = "already exists",
	[FC_ELIMIT - FC_EPROTO_BASE] = "limit reached",
	[FC_EAUTH - FC_EPROTO_BASE] = "authentication failed",
	[FC_ESTALE - FC_EPROTO_BASE] = "stale view",
	[FC_ECONFLICT - FC_EPROTO_BASE] = "conflicting retry",
	[FC_EUNAVAIL - FC_EPROTO_BASE] = "temporarily unavailable",
	[FC_ESTORE - FC_EPROTO_BASE] = "storage failure",
};

const char *err_str(int code)
{
	if (code >= 0)
		return "ok";
	code = -code;
	if (code > FC_EPROTO_BASE && code < FC_EMAX)
		return fc_names[code - FC_EPROTO_BASE];
	/* strerror() is not thread-safe in general, but glibc returns static
	 * strings for every known errno value. */
	return strerror(code);
}
