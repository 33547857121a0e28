/*
 * utf8: an incremental UTF-8 validator.
 *
 * Text from the network (WebSocket text messages, close reasons, protocol
 * strings) must be well-formed UTF-8 as defined by RFC 3629: no overlong
 * forms, no UTF-16 surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no
 * stray or missing continuation bytes. The validator is a small deterministic
 * automaton whose whole state fits in one uint32_t, so a message split over
 * many frames or reads is checked piece by piece without buffering, and a bad
 * sequence is reported at the first byte that makes it impossible rather than
 * at the end of the message.
 *
 * Pure functions: no allocation, no I/O, callable from any thread.
 */
#ifndef FC_CORE_UTF8_H
#define FC_CORE_UTF8_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* State value between complete sequences; a zeroed state is the start. */
#define UTF8_ACCEPT 0u

/*
 * Feeds p[0..n) into the automaton whose state the caller keeps in *state
 * (0 initially). Returns 0 when everything seen so far is a valid prefix of
 * UTF-8 text, or -FC_EUTF8 as soon as a byte cannot continue any valid
 * sequence. After a failure *state stays in the rejecting state, so later
 * calls keep failing until the caller resets it to 0.
 */
int utf8_feed(uint32_t *state, const uint8_t *p, size_t n) FC_WUR;

/* 1 if state is not in the middle of a multi-byte sequence (and not failed). */
int utf8_is_complete(uint32_t state);

/* 1 if p[0..n) is complete, well-formed UTF-8; 0 otherwise. */
int utf8_valid(const uint8_t *p, size_t n);

#endif
