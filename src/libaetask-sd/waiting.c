/* The client's rules for checkouts waiting for a worker: the cap on how many
 * may wait (over it a checkout fails at once: failing fast beats a queue
 * that only grows), the queue-wait timeout (how long one may wait, apart
 * from how long its calls may take, as HikariCP's connectionTimeout), and
 * priority classes with ageing (queue.c).  One timer per client serves the
 * queue timeout: the queue's oldest entry is the first to expire. */
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "client-internal.h"
#include "macro.h"
#include "time-util.h"

#define DEFAULT_PRIORITY_AGING (1 * USEC_PER_SEC)

static aetask_checkout *queue_checkout(queue_entry *e) {
        return e ? list_entry(e, aetask_checkout, queued) : NULL;
}

static int on_queue_timeout(sd_event_source *s, uint64_t usec, void *userdata);

static void client_arm_queue_timeout(aetask_client *c) {
        queue_entry *oldest = queue_oldest(&c->waiting);

        if (oldest && c->queue_timeout != USEC_INFINITY)
                client_arm_timer_by(c, &c->queue_timeout_source, oldest->since + c->queue_timeout, USEC_PER_MSEC,
                                    on_queue_timeout, "aetask-client-queue-timeout");
}

static int on_queue_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        aetask_client *c = userdata;
        /* The error handlers may drop the last reference. */
        _cleanup_(aetask_client_unrefp) aetask_client *held = client_hold(c);
        char message[128];

        snprintf(message, sizeof(message), "no worker came within the queue timeout of %g seconds",
                 (double) c->queue_timeout / USEC_PER_SEC);
        for (;;) {
                queue_entry *oldest = queue_oldest(&c->waiting);
                if (!oldest || c->freeing || !c->event || c->queue_timeout == USEC_INFINITY)
                        return 0;
                if (oldest->since + c->queue_timeout > now_usec(CLOCK_MONOTONIC))
                        break;
                aetask_checkout *co = aetask_checkout_ref(queue_checkout(oldest));
                c->metrics.queue_timeouts++;
                /* A fatal error takes the checkout off the queue; one that
                 * failed before does not, and must not come up again. */
                checkout_fail(co, AETASK_ERROR_QUEUE_TIMEOUT, message);
                checkout_leave_queue(co);
                aetask_checkout_unref(co);
        }
        client_arm_queue_timeout(c);
        return 0;
}

void client_queue_push(aetask_client *c, aetask_checkout *co, bool front) {
        /* One back from a worker that never ran it keeps its place in time. */
        uint64_t since = front && co->queued.since != 0 ? co->queued.since : now_usec(CLOCK_MONOTONIC);

        queue_push(&c->waiting, &co->queued, since, front);
        client_arm_queue_timeout(c);
}

aetask_checkout *client_queue_take(aetask_client *c) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        queue_entry *e = queue_next(&c->waiting, now);

        if (!e)
                return NULL;
        metrics_record_wait(&c->metrics, e->priority, now > e->since ? now - e->since : 0);
        checkout_leave_queue(queue_checkout(e));
        return queue_checkout(e);
}

/* The workers the queue will get without any busy one coming free: idle
 * ones, ones connecting, and ones the pool may still open. */
static unsigned client_free_room(aetask_client *c) {
        unsigned room = c->n_workers < c->max_workers ? c->max_workers - c->n_workers : 0;

        for (list_node *i = c->idle.next; i != &c->idle; i = i->next)
                room++;
        for (list_node *i = c->connecting.next; i != &c->connecting; i = i->next)
                room++;
        return room;
}

bool client_queue_is_full(aetask_client *c) {
        if (c->max_queued == AETASK_QUEUE_UNLIMITED)
                return false;
        return c->waiting.length >= (uint64_t) client_free_room(c) + c->max_queued;
}

void checkout_refuse(aetask_checkout *co) {
        aetask_client *c = co->client;
        char message[128];

        snprintf(message, sizeof(message), "%u checkouts already wait for a busy worker (the client's queue cap)",
                 c->max_queued);
        c->metrics.refused_queue_full++;
        checkout_journal(co, "error", LOG_WARNING, NULL, NULL, UINT64_MAX, "queue-full",
                         "Checkout failed (queue-full): %s", message);
        co->fatal_kind = AETASK_ERROR_QUEUE_FULL;
        co->fatal_message = strdup(message);  /* NULL reads as "" */
}

void client_stop_queue_timeout(aetask_client *c) {
        c->queue_timeout_source = sd_event_source_disable_unref(c->queue_timeout_source);
}

_public_ int aetask_client_set_max_queued(aetask_client *c, unsigned n) {
        assert_return(c, -EINVAL);
        assert_return(!client_origin_changed(c), -ECHILD);
        c->max_queued = n;
        return 0;
}

_public_ int aetask_client_set_queue_timeout(aetask_client *c, uint64_t usec) {
        assert_return(c, -EINVAL);
        assert_return(usec > 0, -EINVAL);
        assert_return(!client_origin_changed(c), -ECHILD);
        c->queue_timeout = usec;
        client_arm_queue_timeout(c);
        return 0;
}

_public_ int aetask_client_set_priority_aging(aetask_client *c, uint64_t usec) {
        assert_return(c, -EINVAL);
        assert_return(!client_origin_changed(c), -ECHILD);
        c->waiting.max_age = usec;
        return 0;
}

_public_ int aetask_checkout_set_priority(aetask_checkout *co, int priority) {
        assert_return(co, -EINVAL);
        assert_return(priority >= AETASK_PRIORITY_LOW && priority <= AETASK_PRIORITY_HIGH, -EINVAL);
        assert_return(!checkout_origin_changed(co), -ECHILD);

        if (co->queued.priority == priority)
                return 0;
        /* A waiting checkout moves to the back of its new class, and keeps
         * the time it began to wait (for ageing and the queue timeout). */
        bool waiting = co->state == CHECKOUT_WAITING;
        if (waiting)
                queue_remove(&co->client->waiting, &co->queued);
        co->queued.priority = priority;
        if (waiting)
                queue_push(&co->client->waiting, &co->queued, co->queued.since, false);
        return 0;
}

void client_init_waiting(aetask_client *c) {
        queue_init(&c->waiting, DEFAULT_PRIORITY_AGING);
        c->max_queued = AETASK_QUEUE_UNLIMITED;
        c->queue_timeout = USEC_INFINITY;
}
