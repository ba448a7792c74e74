/* A histogram of fixed size for durations in microseconds, log-linear as
 * HdrHistogram's coarsest setting: eight buckets per power of two.  A few
 * kilobytes however many values, O(1) per value, and a quantile within an
 * eighth of the truth, which is what p50/p99 on a dashboard need.  A
 * reservoir would cost the same memory and be exact only by luck. */
#pragma once

#include <stdint.h>

/* Up to 2^40 usec (12 days; longer values count in the last bucket). */
#define HISTOGRAM_BUCKETS (8 + 37 * 8)

typedef struct histogram {
        uint64_t count;
        uint64_t buckets[HISTOGRAM_BUCKETS];
} histogram;

void histogram_add(histogram *h, uint64_t value);
void histogram_merge(histogram *into, const histogram *h);
/* The upper end of the bucket holding quantile Q (0 < Q <= 1); 0 when empty. */
uint64_t histogram_quantile(const histogram *h, double q);
