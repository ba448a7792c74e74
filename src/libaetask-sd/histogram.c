/* The histogram of histogram.h: a value's bucket is its top four bits
 * (the leading one and three more) and its power of two. */
#include "histogram.h"
#include "macro.h"

static unsigned histogram_bucket(uint64_t v) {
        if (v < 8)
                return (unsigned) v;
        unsigned msb = 63 - (unsigned) __builtin_clzll(v);
        unsigned index = 8 + (msb - 3) * 8 + (unsigned) ((v >> (msb - 3)) & 7);
        return MIN(index, HISTOGRAM_BUCKETS - 1);
}

static uint64_t histogram_bucket_upper(unsigned index) {
        if (index < 8)
                return index;
        unsigned shift = (index - 8) / 8, sub = (index - 8) % 8;
        return ((uint64_t) (8 + sub + 1) << shift) - 1;
}

void histogram_add(histogram *h, uint64_t value) {
        h->buckets[histogram_bucket(value)]++;
        h->count++;
}

void histogram_merge(histogram *into, const histogram *h) {
        for (unsigned i = 0; i < HISTOGRAM_BUCKETS; i++)
                into->buckets[i] += h->buckets[i];
        into->count += h->count;
}

uint64_t histogram_quantile(const histogram *h, double q) {
        uint64_t rank, seen = 0;

        if (h->count == 0)
                return 0;
        rank = (uint64_t) (q * (double) h->count + 0.999999);
        rank = MAX(rank, 1U);
        for (unsigned i = 0; i < HISTOGRAM_BUCKETS; i++) {
                seen += h->buckets[i];
                if (seen >= rank)
                        return histogram_bucket_upper(i);
        }
        return histogram_bucket_upper(HISTOGRAM_BUCKETS - 1);
}
