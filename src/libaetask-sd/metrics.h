/* The client's live counters and its queue-wait histograms: fixed size,
 * whatever the load (see metrics.c). */
#pragma once

#include <aetask/aetask-client.h>
#include <stdint.h>

#include "histogram.h"
#include "queue.h"

typedef struct client_metrics {
        uint64_t checkouts, calls;
        uint64_t errors[AETASK_METRICS_ERROR_KINDS];
        uint64_t refused_queue_full, queue_timeouts, recycled_lifetime;
        histogram waits[QUEUE_CLASSES];   /* by class, lowest first */
} client_metrics;

void metrics_count_error(client_metrics *m, aetask_error_kind kind);
void metrics_record_wait(client_metrics *m, int priority, uint64_t usec);
