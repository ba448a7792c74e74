/* Checkout timeouts: one sd-event timer per client, however many checkouts.
 *
 * A checkout with a call pending has a deadline.  The client files its
 * checkouts in a heap by deadline and arms its one timer for the earliest.
 * As calls are answered a checkout's deadline only moves later, so it is
 * refiled lazily, when the deadline it was filed under comes up: a call
 * costs no heap work and no timer syscall, and a queued checkout costs 16
 * bytes in the checkout and a pointer in the heap instead of an event source. */
#include <stdio.h>
#include <string.h>

#include "client-internal.h"
#include "macro.h"

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata);

void client_arm_timer_by(aetask_client *c, sd_event_source **source, uint64_t when, uint64_t accuracy,
                         sd_event_time_handler_t callback, const char *description) {
        int enabled = SD_EVENT_OFF, r;
        uint64_t armed = 0;

        if (!c->event)
                return;
        if (!*source) {
                r = sd_event_add_time(c->event, source, CLOCK_MONOTONIC, when, accuracy, callback, c);
                if (r < 0) {
                        client_log_debug("Failed to add the %s timer: %s", description, strerror(-r));
                        return;
                }
                (void) sd_event_source_set_priority(*source, c->priority);
                (void) sd_event_source_set_description(*source, description);
                return;
        }
        (void) sd_event_source_get_enabled(*source, &enabled);
        (void) sd_event_source_get_time(*source, &armed);
        /* Armed for earlier (for a checkout since gone): it fires early
         * once, and its callback re-arms it. */
        if (enabled != SD_EVENT_OFF && armed <= when)
                return;
        (void) sd_event_source_set_time(*source, when);
        (void) sd_event_source_set_enabled(*source, SD_EVENT_ONESHOT);
}

/* Makes sure the client's timer fires by the earliest deadline filed. */
static void client_arm_timer(aetask_client *c) {
        heap_node *top = heap_top(&c->timeouts);

        if (top)
                client_arm_timer_by(c, &c->timeout_source, top->key, USEC_PER_MSEC, on_timer, "aetask-client-timeouts");
}

static void checkout_time_out(aetask_checkout *co) {
        char message[512];
        int n;

        if (co->timeout % USEC_PER_SEC == 0)
                n = snprintf(message, sizeof(message), "timed out after %llu second%s",
                             (unsigned long long) (co->timeout / USEC_PER_SEC), plural_s(co->timeout / USEC_PER_SEC));
        else
                n = snprintf(message, sizeof(message), "timed out after %g seconds",
                             (double) co->timeout / USEC_PER_SEC);
        /* Waiting for a worker that never came: say why, if we know. */
        if (!co->worker && co->client && co->client->last_connect_error != 0 && n > 0 && (size_t) n < sizeof(message))
                snprintf(message + n, sizeof(message) - n, " (no worker: connecting to %s failed: %s)",
                         co->client->address, strerror(co->client->last_connect_error));
        checkout_fail(co, AETASK_ERROR_TIMEOUT, message);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        aetask_client *c = userdata;
        /* Error handlers run from here may free checkouts, make calls, or
         * drop the last reference to the client: hold it, and look at the
         * heap afresh each time. */
        _cleanup_(aetask_client_unrefp) aetask_client *held = client_hold(c);
        uint64_t now;

        if (sd_event_now(c->event, CLOCK_MONOTONIC, &now) < 0)
                now = usec;

        for (;;) {
                heap_node *top = heap_top(&c->timeouts);
                if (!top || top->key > now)
                        break;
                aetask_checkout *co = heap_entry(top, aetask_checkout, timeout_node);

                if (co->deadline == USEC_INFINITY)
                        heap_remove(&c->timeouts, top);           /* nothing pending any more */
                else if (co->deadline > now)
                        heap_set_key(&c->timeouts, top, co->deadline);  /* its call was answered: refile */
                else {
                        heap_remove(&c->timeouts, top);
                        aetask_checkout_ref(co);
                        checkout_time_out(co);
                        aetask_checkout_unref(co);
                        if (c->freeing || !c->event)
                                break;
                }
        }
        client_arm_timer(c);
        return 0;
}

void checkout_arm_timer(aetask_checkout *co) {
        aetask_client *c = co->client;
        heap_node *node = &co->timeout_node;
        uint64_t now;

        co->deadline = USEC_INFINITY;
        if (co->timeout == AETASK_TIMEOUT_INFINITY || !c || !c->event)
                return;
        if (sd_event_now(c->event, CLOCK_MONOTONIC, &now) < 0)
                return;
        co->deadline = now + co->timeout;

        if (heap_node_is_linked(node)) {
                /* Filed under an earlier deadline: on_timer() refiles it then. */
                if (node->key <= co->deadline)
                        return;
                /* A shorter timeout than before. */
                heap_set_key(&c->timeouts, node, co->deadline);
        } else if (heap_insert(&c->timeouts, node, co->deadline) < 0)
                return;  /* cannot happen: aetask_client_checkout() reserved the room */

        if (heap_top(&c->timeouts) == node)
                client_arm_timer(c);
}

void checkout_forget_timer(aetask_checkout *co) {
        /* A timer that fires for nothing once is cheaper than re-arming it. */
        if (co->client)
                heap_remove(&co->client->timeouts, &co->timeout_node);
}

void client_stop_timeouts(aetask_client *c) {
        c->timeout_source = sd_event_source_disable_unref(c->timeout_source);
}
