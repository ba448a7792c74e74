/* A fixed-size histogram of durations (or any non-negative counts), for
 * p50/p99 in bounded memory: log-linear buckets, four per power of two, so a
 * quantile is off by at most a quarter of its value.  The counters may live
 * in memory shared between processes: histogram_add() uses atomics. */
#pragma once

#include <stdint.h>

/* Values up to 2^33 (about 2.4 h in microseconds) get their own bucket;
 * larger ones share the last. */
#define HISTOGRAM_BUCKETS 128

typedef struct histogram {
        uint64_t buckets[HISTOGRAM_BUCKETS];
} histogram;

void histogram_add(histogram *h, uint64_t value);
uint64_t histogram_count(const histogram *h);
/* The upper bound of the bucket holding quantile Q (0 < Q <= 1) of the
 * values added, or 0 when none were. */
uint64_t histogram_quantile(const histogram *h, double q);
/* The bucket VALUE falls in, and the largest value of bucket I. */
unsigned histogram_bucket(uint64_t value);
uint64_t histogram_bucket_max(unsigned i);
