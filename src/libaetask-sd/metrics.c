/* Live metrics of a client's pool: counters, the pool's state now, and
 * queue-wait quantiles.  The waits go into log-linear histograms (eight
 * buckets per power of two, as HdrHistogram's coarsest setting): a few
 * kilobytes per client however many checkouts, O(1) per wait, and p50/p99
 * within an eighth of the truth, which is what a dashboard needs.  A
 * reservoir would cost the same memory and be exact only by luck. */
#include <string.h>

#include "client-internal.h"
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

void metrics_count_error(client_metrics *m, aetask_error_kind kind) {
        if ((unsigned) kind < AETASK_METRICS_ERROR_KINDS)
                m->errors[kind]++;
}

void metrics_record_wait(client_metrics *m, int priority, uint64_t usec) {
        histogram_add(&m->waits[priority - QUEUE_PRIORITY_MIN], usec);
}

static unsigned list_length(const list_node *head) {
        unsigned n = 0;
        for (const list_node *i = head->next; i != head; i = i->next)
                n++;
        return n;
}

_public_ int aetask_client_get_metrics(aetask_client *c, aetask_client_metrics *ret, size_t size) {
        const client_metrics *m;
        aetask_client_metrics out = { .size = sizeof(out) };
        histogram all = {};

        assert_return(c, -EINVAL);
        assert_return(ret, -EINVAL);
        assert_return(size >= sizeof(ret->size), -EINVAL);
        assert_return(!client_origin_changed(c), -ECHILD);

        m = &c->metrics;
        out.checkouts = m->checkouts;
        out.calls = m->calls;
        memcpy(out.errors, m->errors, sizeof(out.errors));
        out.refused_queue_full = m->refused_queue_full;
        out.queue_timeouts = m->queue_timeouts;
        out.recycled_lifetime = m->recycled_lifetime;
        for (unsigned i = 0; i < QUEUE_CLASSES; i++) {
                histogram_merge(&all, &m->waits[i]);
                out.class_waits[i] = m->waits[i].count;
                out.class_queue_wait_p50_usec[i] = histogram_quantile(&m->waits[i], 0.50);
                out.class_queue_wait_p99_usec[i] = histogram_quantile(&m->waits[i], 0.99);
        }
        out.waits = all.count;
        out.queue_wait_p50_usec = histogram_quantile(&all, 0.50);
        out.queue_wait_p99_usec = histogram_quantile(&all, 0.99);
        out.queued = c->waiting.length;
        out.workers_busy = list_length(&c->assigned);
        out.workers_idle = list_length(&c->idle);
        out.workers_connecting = list_length(&c->connecting);

        /* A caller built against an older, shorter struct gets what it knows. */
        out.size = MIN(size, sizeof(out));
        memcpy(ret, &out, out.size);
        return 0;
}
