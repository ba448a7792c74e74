/* The client's live counters and its queue-wait histograms: fixed size,
 * whatever the load (see metrics.c). */
#pragma once

#include <aetask/aetask-client.h>
#include <stdint.h>

#include "queue.h"

/* Eight buckets per power of two up to 2^40 usec (12 days; longer waits
 * count in the last): a quantile is off by at most an eighth. */
#define HISTOGRAM_BUCKETS (8 + 37 * 8)

typedef struct histogram {
        uint64_t count;
        uint64_t buckets[HISTOGRAM_BUCKETS];
} histogram;

void histogram_add(histogram *h, uint64_t value);
void histogram_merge(histogram *into, const histogram *h);
/* The upper bound of the bucket holding quantile Q (0 < Q <= 1); 0 when empty. */
uint64_t histogram_quantile(const histogram *h, double q);

typedef struct client_metrics {
        uint64_t checkouts, calls;
        uint64_t errors[AETASK_METRICS_ERROR_KINDS];
        uint64_t refused_queue_full, queue_timeouts, recycled_lifetime;
        histogram waits[QUEUE_CLASSES];   /* by class, lowest first */
} client_metrics;

void metrics_count_error(client_metrics *m, aetask_error_kind kind);
void metrics_record_wait(client_metrics *m, int priority, uint64_t usec);
