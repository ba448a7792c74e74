/* Log-linear buckets: values 0 to 7 have one each; above, every power of
 * two [2^e, 2^(e+1)) is split in eight equal parts (a value's bucket is its
 * top four bits and its power of two). */
#include "histogram.h"

unsigned histogram_bucket(uint64_t value) {
        if (value < 8)
                return (unsigned) value;
        unsigned e = 63 - (unsigned) __builtin_clzll(value);   /* 2^e <= value */
        unsigned i = 8 + (e - 3) * 8 + (unsigned) ((value >> (e - 3)) & 7);
        return i < HISTOGRAM_BUCKETS ? i : HISTOGRAM_BUCKETS - 1;
}

uint64_t histogram_bucket_max(unsigned i) {
        if (i < 8)
                return i;
        unsigned shift = (i - 8) / 8, sub = (i - 8) % 8;
        return ((uint64_t) (8 + sub + 1) << shift) - 1;
}

void histogram_add(histogram *h, uint64_t value) {
        __atomic_fetch_add(&h->buckets[histogram_bucket(value)], 1, __ATOMIC_RELAXED);
}

void histogram_merge(histogram *into, const histogram *h) {
        for (unsigned i = 0; i < HISTOGRAM_BUCKETS; i++)
                into->buckets[i] += __atomic_load_n(&h->buckets[i], __ATOMIC_RELAXED);
}

uint64_t histogram_count(const histogram *h) {
        uint64_t n = 0;

        for (unsigned i = 0; i < HISTOGRAM_BUCKETS; i++)
                n += __atomic_load_n(&h->buckets[i], __ATOMIC_RELAXED);
        return n;
}

uint64_t histogram_quantile(const histogram *h, double q) {
        uint64_t counts[HISTOGRAM_BUCKETS], n = 0, seen = 0;

        /* One copy, so a worker adding meanwhile cannot make the rank miss. */
        for (unsigned i = 0; i < HISTOGRAM_BUCKETS; i++)
                n += counts[i] = __atomic_load_n(&h->buckets[i], __ATOMIC_RELAXED);
        if (n == 0)
                return 0;
        /* The smallest value with at least Q of all at or below it. */
        uint64_t rank = (uint64_t) (q * (double) n + 0.999999);
        if (rank < 1)
                rank = 1;
        for (unsigned i = 0; i < HISTOGRAM_BUCKETS; i++) {
                seen += counts[i];
                if (seen >= rank)
                        return histogram_bucket_max(i);
        }
        return histogram_bucket_max(HISTOGRAM_BUCKETS - 1);
}
