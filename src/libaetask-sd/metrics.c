/* Live metrics of a client's pool: counters, the pool's state now, and
 * queue-wait quantiles from one histogram per priority class
 * (shared/histogram.c). */
#include <string.h>

#include "client-internal.h"
#include "macro.h"

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
                out.class_waits[i] = histogram_count(&m->waits[i]);
                out.class_queue_wait_p50_usec[i] = histogram_quantile(&m->waits[i], 0.50);
                out.class_queue_wait_p99_usec[i] = histogram_quantile(&m->waits[i], 0.99);
        }
        out.waits = histogram_count(&all);
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
