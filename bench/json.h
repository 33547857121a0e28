/*
 * json: a tiny writer for the one-line JSON objects the benchmark harness
 * prints. Values are appended in order into a fixed buffer; commas and
 * nesting are tracked, strings are escaped. Overflowing the buffer or the
 * nesting depth sets a sticky error (json_ok() returns 0) instead of writing
 * a truncated object. A zero-initialised json_t is not valid: call
 * json_init(). Single-threaded.
 */
#ifndef FC_BENCH_JSON_H
#define FC_BENCH_JSON_H

#include <stddef.h>

#define JSON_MAX 16384
#define JSON_DEPTH 8

typedef struct json {
	char buf[JSON_MAX];
	size_t len;
	int depth;
	int count[JSON_DEPTH]; /* values written at each open level */
	int err;
} json_t;

void json_init(json_t *j);
/* Each `key` is the member name inside an object and must be NULL inside an
 * array (and for the outermost value). */
void json_obj_begin(json_t *j, const char *key);
void json_obj_end(json_t *j);
void json_arr_begin(json_t *j, const char *key);
void json_arr_end(json_t *j);
void json_int(json_t *j, const char *key, long long v);
/* A number with `decimals` digits after the point; NaN and infinities are
 * written as null. */
void json_num(json_t *j, const char *key, double v, int decimals);
void json_bool(json_t *j, const char *key, int v);
void json_null(json_t *j, const char *key);
void json_str(json_t *j, const char *key, const char *s);
/* 1 if the object is complete and nothing overflowed. */
int json_ok(const json_t *j);
/* The text written so far (NUL-terminated). */
const char *json_text(const json_t *j);

#endif
