#include "stats.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int stats_init(stats_t *s, size_t cap)
{
	memset(s, 0, sizeof *s);
	s->v = malloc((cap ? cap : 1) * sizeof *s->v);
	if (!s->v)
		return -ENOMEM;
	s->cap = cap;
	return 0;
}

void stats_free(stats_t *s)
{
	free(s->v);
	memset(s, 0, sizeof *s);
}

void stats_reset(stats_t *s)
{
	s->n = 0;
	s->dropped = 0;
}

void stats_add(stats_t *s, uint64_t ns)
{
	if (s->n < s->cap)
		s->v[s->n++] = ns;
	else
		s->dropped++;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest sample with at least p of all samples at or
 * below it. */
static double rank_us(const stats_t *s, double p)
{
	size_t k = (size_t)(p * (double)s->n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > s->n)
		k = s->n;
	return (double)s->v[k - 1] / 1000.0;
}

void stats_summarize(stats_t *s, stats_sum_t *out)
{
	memset(out, 0, sizeof *out);
	if (!s->n)
		return;
	qsort(s->v, s->n, sizeof *s->v, cmp_u64);
	double sum = 0;
	for (size_t i = 0; i < s->n; i++)
		sum += (double)s->v[i];
	out->n = s->n;
	out->p50_us = rank_us(s, 0.50);
	out->p90_us = rank_us(s, 0.90);
	out->p99_us = rank_us(s, 0.99);
	out->p999_us = rank_us(s, 0.999);
	out->max_us = (double)s->v[s->n - 1] / 1000.0;
	out->mean_us = sum / (double)s->n / 1000.0;
}
