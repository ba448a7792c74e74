/* The fixed-size histogram behind the p50/p99 of aetaskd's metrics and the client's queue waits
 * (src/shared/histogram.c): every value lands in a bucket whose bound is at
 * most a quarter above it, buckets are in order, and quantiles of known
 * sets come out where they should. */
#include <criterion/criterion.h>

#include "histogram.h"

Test(histogram, each_value_is_within_its_bucket_and_a_quarter_below_its_bound) {
        uint64_t values[] = { 0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 100, 1000, 999999, 1000000,
                              (1ULL << 32) + 12345, (1ULL << 33) - 1 };

        for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
                uint64_t v = values[i];
                unsigned b = histogram_bucket(v);
                cr_assert_lt(b, HISTOGRAM_BUCKETS);
                cr_assert_geq(histogram_bucket_max(b), v, "%llu above its bucket's bound", (unsigned long long) v);
                cr_assert(b == 0 || histogram_bucket_max(b - 1) < v, "%llu fits a lower bucket", (unsigned long long) v);
                cr_assert_leq((double) histogram_bucket_max(b), (double) v * 1.25 + 1,
                              "%llu: bound %llu", (unsigned long long) v, (unsigned long long) histogram_bucket_max(b));
        }
}

Test(histogram, buckets_are_in_order_and_huge_values_share_the_last) {
        for (unsigned i = 1; i < HISTOGRAM_BUCKETS; i++)
                cr_assert_gt(histogram_bucket_max(i), histogram_bucket_max(i - 1));
        cr_assert_eq(histogram_bucket(UINT64_MAX), HISTOGRAM_BUCKETS - 1);
}

Test(histogram, quantiles_of_a_known_set) {
        histogram h = {};

        cr_assert_eq(histogram_quantile(&h, 0.5), 0, "an empty histogram has no quantile");
        /* 1..1000 µs: the median is 500, the 99th percentile 990. */
        for (uint64_t v = 1; v <= 1000; v++)
                histogram_add(&h, v);
        cr_assert_eq(histogram_count(&h), 1000);
        uint64_t p50 = histogram_quantile(&h, 0.5), p99 = histogram_quantile(&h, 0.99);
        cr_assert(p50 >= 500 && p50 <= 625, "p50 %llu", (unsigned long long) p50);
        cr_assert(p99 >= 990 && p99 <= 1237, "p99 %llu", (unsigned long long) p99);
        /* One slow call in a hundred shows in p99, not in p50. */
        histogram g = {};
        for (int i = 0; i < 99; i++)
                histogram_add(&g, 10);
        histogram_add(&g, 1000000);
        uint64_t ten = histogram_bucket_max(histogram_bucket(10));  /* 10: values under 16 have a bucket each */
        cr_assert_eq(histogram_quantile(&g, 0.5), ten);
        cr_assert_eq(histogram_quantile(&g, 0.99), ten);
        cr_assert_geq(histogram_quantile(&g, 1.0), 1000000);
}
