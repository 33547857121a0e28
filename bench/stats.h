/*
 * stats: latency samples (nanoseconds) and their summary in microseconds.
 * The sample array has a hard cap fixed at init; samples beyond it are
 * counted as dropped, never stored. Single-threaded.
 */
#ifndef FC_BENCH_STATS_H
#define FC_BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

typedef struct stats {
	uint64_t *v;
	size_t n, cap;
	size_t dropped;
} stats_t;

typedef struct stats_sum {
	size_t n;
	double p50_us, p90_us, p99_us, p999_us, max_us, mean_us;
} stats_sum_t;

/* Allocates room for cap samples; returns 0 or -ENOMEM. */
int stats_init(stats_t *s, size_t cap);
void stats_free(stats_t *s);
void stats_reset(stats_t *s);
void stats_add(stats_t *s, uint64_t ns);
/* Sorts the samples and fills *out (all zero when there are none).
 * Percentiles use the nearest-rank definition. */
void stats_summarize(stats_t *s, stats_sum_t *out);

#endif
