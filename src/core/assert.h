/*
 * ASSERT: an always-on invariant check. It aborts with file and line; it is
 * for programming errors only, never for input from the network.
 */
#ifndef FC_CORE_ASSERT_H
#define FC_CORE_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

#define ASSERT(cond)                                                                        \
	do {                                                                                \
		if (!(cond)) {                                                              \
			fprintf(stderr, "assertion failed: %s at %s:%d\n", #cond, __FILE__, \
				__LINE__);                                                  \
			abort();                                                            \
		}                                                                           \
	} while (0)

#endif
