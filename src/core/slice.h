/*
 * slice: a borrowed view of bytes, (ptr, len). Wire data is never assumed to
 * be NUL-terminated; every function that takes bytes from the network takes a
 * slice. A slice owns nothing: its lifetime is that of the buffer it views.
 */
#ifndef FC_CORE_SLICE_H
#define FC_CORE_SLICE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct slice {
	const uint8_t *ptr;
	size_t len;
} slice_t;

#define SLICE_LIT(s) ((slice_t){(const uint8_t *)(s), sizeof(s) - 1})

static inline slice_t slice_make(const void *p, size_t n)
{
	return (slice_t){(const uint8_t *)p, n};
}

static inline slice_t slice_cstr(const char *s)
{
	return (slice_t){(const uint8_t *)s, s ? strlen(s) : 0};
}

static inline int slice_eq(slice_t a, slice_t b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* ASCII case-insensitive equality (for HTTP tokens and header names). */
int slice_ieq(slice_t a, slice_t b);

/* Trims optional whitespace (SP, HTAB) at both ends. */
slice_t slice_trim(slice_t s);

#endif
