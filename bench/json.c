#include "json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void json_init(json_t *j)
{
	j->len = 0;
	j->depth = 0;
	j->count[0] = 0;
	j->err = 0;
	j->buf[0] = 0;
}

__attribute__((format(printf, 2, 3))) static void put(json_t *j, const char *fmt, ...)
{
	if (j->err)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(j->buf + j->len, sizeof j->buf - j->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof j->buf - j->len) {
		j->err = 1;
		j->buf[j->len] = 0;
		return;
	}
	j->len += (size_t)n;
}

static void put_escaped(json_t *j, const char *s)
{
	put(j, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p && !j->err; p++) {
		if (*p == '"' || *p == '\\')
			put(j, "\\%c", *p);
		else if (*p < 0x20)
			put(j, "\\u%04x", *p);
		else
			put(j, "%c", *p);
	}
	put(j, "\"");
}

/* Separator and member name before a value. */
static void lead(json_t *j, const char *key)
{
	if (j->count[j->depth]++)
		put(j, ",");
	if (key) {
		put_escaped(j, key);
		put(j, ":");
	}
}

static void open_level(json_t *j, const char *key, const char *brace)
{
	lead(j, key);
	put(j, "%s", brace);
	if (j->depth + 1 >= JSON_DEPTH) {
		j->err = 1;
		return;
	}
	j->count[++j->depth] = 0;
}

static void close_level(json_t *j, const char *brace)
{
	if (j->depth == 0) {
		j->err = 1;
		return;
	}
	j->depth--;
	put(j, "%s", brace);
}

void json_obj_begin(json_t *j, const char *key)
{
	open_level(j, key, "{");
}

void json_obj_end(json_t *j)
{
	close_level(j, "}");
}

void json_arr_begin(json_t *j, const char *key)
{
	open_level(j, key, "[");
}

void json_arr_end(json_t *j)
{
	close_level(j, "]");
}

void json_int(json_t *j, const char *key, long long v)
{
	lead(j, key);
	put(j, "%lld", v);
}

void json_num(json_t *j, const char *key, double v, int decimals)
{
	lead(j, key);
	if (isnan(v) || isinf(v))
		put(j, "null");
	else
		put(j, "%.*f", decimals, v);
}

void json_bool(json_t *j, const char *key, int v)
{
	lead(j, key);
	put(j, "%s", v ? "true" : "false");
}

void json_null(json_t *j, const char *key)
{
	lead(j, key);
	put(j, "null");
}

void json_str(json_t *j, const char *key, const char *s)
{
	lead(j, key);
	put_escaped(j, s ? s : "");
}

int json_ok(const json_t *j)
{
	return !j->err && j->depth == 0;
}

const char *json_text(const json_t *j)
{
	return j->buf;
}
