/* A histogram of fixed size for durations in microseconds (or any
 * non-negative counts), for p50/p99 in bounded memory: log-linear as
 * HdrHistogram's coarsest setting, eight buckets per power of two, so a
 * quantile is within an eighth of the truth, O(1) per value, a few
 * kilobytes however many values.  The client library keeps its queue waits
 * in these, aetaskd its call durations, in memory its workers share:
 * histogram_add() uses atomics. */
#pragma once

#include <stdint.h>

/* Values up to 2^40 (12 days in microseconds) get their own bucket;
 * larger ones share the last. */
#define HISTOGRAM_BUCKETS (8 + 37 * 8)

typedef struct histogram {
        uint64_t buckets[HISTOGRAM_BUCKETS];
} histogram;

void histogram_add(histogram *h, uint64_t value);
void histogram_merge(histogram *into, const histogram *h);
uint64_t histogram_count(const histogram *h);
/* The upper bound of the bucket holding quantile Q (0 < Q <= 1) of the
 * values added, or 0 when none were. */
uint64_t histogram_quantile(const histogram *h, double q);
/* The bucket VALUE falls in, and the largest value of bucket I. */
unsigned histogram_bucket(uint64_t value);
uint64_t histogram_bucket_max(unsigned i);
