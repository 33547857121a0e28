#include "core/utf8.h"

#include <string.h>

/*
 * The automaton works on byte classes rather than raw bytes: every byte value
 * that behaves identically in every state shares a class. The classes follow
 * the table of well-formed byte sequences in RFC 3629 section 4 (Unicode
 * table 3-7), where the second byte's allowed range depends on the lead byte
 * (E0, ED, F0 and F4 are the special cases that exclude overlongs, surrogates
 * and values above U+10FFFF).
 */
enum {
	CL_ASCII, /* 00..7F */
	CL_C80,   /* 80..8F continuation */
	CL_C90,   /* 90..9F continuation */
	CL_CA0,   /* A0..BF continuation */
	CL_BAD,   /* C0, C1, F5..FF: never valid */
	CL_L2,    /* C2..DF: lead of a 2-byte sequence */
	CL_E0,    /* E0: 3-byte lead, second byte A0..BF */
	CL_L3,    /* E1..EC, EE, EF: 3-byte lead */
	CL_ED,    /* ED: 3-byte lead, second byte 80..9F */
	CL_F0,    /* F0: 4-byte lead, second byte 90..BF */
	CL_L4,    /* F1..F3: 4-byte lead */
	CL_F4,    /* F4: 4-byte lead, second byte 80..8F */
	CL_COUNT
};

static const uint8_t byte_class[256] = {
	[0x00 ... 0x7f] = CL_ASCII,
	[0x80 ... 0x8f] = CL_C80,
	[0x90 ... 0x9f] = CL_C90,
	[0xa0 ... 0xbf] = CL_CA0,
	[0xc0 ... 0xc1] = CL_BAD,
	[0xc2 ... 0xdf] = CL_L2,
	[0xe0] = CL_E0,
	[0xe1 ... 0xec] = CL_L3,
	[0xed] = CL_ED,
	[0xee ... 0xef] = CL_L3,
	[0xf0] = CL_F0,
	[0xf1 ... 0xf3] = CL_L4,
	[0xf4] = CL_F4,
	[0xf5 ... 0xff] = CL_BAD,
};

/* States. ST_OK must be 0 so that a zeroed state is the start state. */
enum {
	ST_OK = UTF8_ACCEPT,
	ST_FAIL,  /* sticky rejecting state */
	ST_NEED1, /* one continuation byte 80..BF still expected */
	ST_NEED2, /* two continuation bytes expected */
	ST_NEED3, /* three continuation bytes expected */
	ST_E0,    /* after E0: next must be A0..BF */
	ST_ED,    /* after ED: next must be 80..9F */
	ST_F0,    /* after F0: next must be 90..BF */
	ST_F4,    /* after F4: next must be 80..8F */
	ST_COUNT
};

#define F ST_FAIL
static const uint8_t next_state[ST_COUNT][CL_COUNT] = {
	/*            ASCII  C80       C90       CA0       BAD L2        E0     L3        ED     F0     L4        F4 */
	[ST_OK] = {ST_OK, F, F, F, F, ST_NEED1, ST_E0, ST_NEED2, ST_ED, ST_F0, ST_NEED3, ST_F4},
	[ST_FAIL] = {F, F, F, F, F, F, F, F, F, F, F, F},
	[ST_NEED1] = {F, ST_OK, ST_OK, ST_OK, F, F, F, F, F, F, F, F},
	[ST_NEED2] = {F, ST_NEED1, ST_NEED1, ST_NEED1, F, F, F, F, F, F, F, F},
	[ST_NEED3] = {F, ST_NEED2, ST_NEED2, ST_NEED2, F, F, F, F, F, F, F, F},
	[ST_E0] = {F, F, F, ST_NEED1, F, F, F, F, F, F, F, F},
	[ST_ED] = {F, ST_NEED1, ST_NEED1, F, F, F, F, F, F, F, F, F},
	[ST_F0] = {F, F, ST_NEED2, ST_NEED2, F, F, F, F, F, F, F, F},
	[ST_F4] = {F, ST_NEED2, F, F, F, F, F, F, F, F, F, F},
};
#undef F

/* Length of the run of ASCII bytes at the start of p[0..n), eight at a time. */
static size_t ascii_prefix(const uint8_t *p, size_t n)
{
	size_t i = 0;
	while (n - i >= 8) {
		uint64_t w;
		memcpy(&w, p + i, sizeof w);
		if (w & UINT64_C(0x8080808080808080))
			break;
		i += 8;
	}
	while (i < n && p[i] < 0x80)
		i++;
	return i;
}

int utf8_feed(uint32_t *state, const uint8_t *p, size_t n)
{
	uint32_t s = *state;
	size_t i = 0;

	if (s >= ST_COUNT)
		s = ST_FAIL;
	while (i < n) {
		if (s == ST_OK) {
			/* Chat text is mostly ASCII; skip it without the table. */
			i += ascii_prefix(p + i, n - i);
			if (i == n)
				break;
		}
		s = next_state[s][byte_class[p[i]]];
		if (s == ST_FAIL)
			break;
		i++;
	}
	*state = s;
	return s == ST_FAIL ? -FC_EUTF8 : 0;
}

int utf8_is_complete(uint32_t state)
{
	return state == ST_OK;
}

int utf8_valid(const uint8_t *p, size_t n)
{
	uint32_t s = UTF8_ACCEPT;
	return utf8_feed(&s, p, n) == 0 && s == ST_OK;
}
