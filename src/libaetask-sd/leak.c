/* Checkout leak detection, as HikariCP's leakDetectionThreshold: a checkout
 * that holds its worker longer than the client's threshold gets one warning
 * with its trace id and how long it has been held.
 *
 * One timer per client, armed for the earliest checkout that could go over;
 * when it fires it walks the assigned connections (at most max_workers),
 * warns, and re-arms.  Nothing is done per call, and nothing at all while
 * the threshold is off.  The library logs nothing unasked (STYLE.md, 9);
 * setting a threshold is asking, so the warning is written to the journal
 * like the client's trace entries (AETASK_EVENT=leak) whether or not
 * journal tracing is on, and into the checkout's log context if it has one. */
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "client-internal.h"
#include "log-context.h"
#include "macro.h"

static int on_leak_timer(sd_event_source *s, uint64_t usec, void *userdata);

static void client_arm_leak_timer(aetask_client *c, uint64_t when) {
        client_arm_timer_by(c, &c->leak_source, when, 10 * USEC_PER_MSEC, on_leak_timer, "aetask-client-leaks");
}

static void checkout_warn_leak(aetask_checkout *co, uint64_t held) {
        char text[512], trace[CHECKOUT_TRACE_MAX];

        co->leak_warned = true;
        snprintf(text, sizeof(text), "Checkout %s held its worker for %.3f s, over the leak threshold of %.3f s",
                 checkout_trace_id(co, trace) ?: "", (double) held / USEC_PER_SEC,
                 (double) co->client->leak_threshold / USEC_PER_SEC);
        client_log_debug("%s", text);
        if (co->log) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                (void) log_context_add_message(co->log, (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000,
                                               getpid(), LOG_WARNING, text);
        }
        checkout_journal_text(co, "leak", LOG_WARNING, NULL, NULL, held, NULL, text);
}

static int on_leak_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        aetask_client *c = userdata;
        uint64_t now, next = UINT64_MAX;
        list_node *n;

        if (sd_event_now(c->event, CLOCK_MONOTONIC, &now) < 0)
                now = usec;
        if (c->leak_threshold == 0)
                return 0;
        /* Warning runs no callback of the caller's: the list holds still. */
        for (n = c->assigned.next; n != &c->assigned; n = n->next) {
                aetask_checkout *co = list_entry(n, worker_conn, node)->checkout;
                if (!co || co->leak_warned || co->assigned_at == 0)  /* assigned before the threshold was set */
                        continue;
                if (now - co->assigned_at >= c->leak_threshold)
                        checkout_warn_leak(co, now - co->assigned_at);
                else
                        next = MIN(next, co->assigned_at + c->leak_threshold);
        }
        if (next != UINT64_MAX)
                client_arm_leak_timer(c, next);
        return 0;
}

void checkout_leak_watch(aetask_checkout *co) {
        aetask_client *c = co->client;

        co->leak_warned = false;
        if (!c || c->leak_threshold == 0 || !c->event || sd_event_now(c->event, CLOCK_MONOTONIC, &co->assigned_at) < 0)
                return;
        client_arm_leak_timer(c, co->assigned_at + c->leak_threshold);
}

void client_stop_leak_watch(aetask_client *c) {
        c->leak_source = sd_event_source_disable_unref(c->leak_source);
}

_public_ int aetask_client_set_leak_threshold(aetask_client *c, uint64_t usec) {
        assert_return(c, -EINVAL);
        assert_return(!client_origin_changed(c), -ECHILD);
        c->leak_threshold = usec == AETASK_TIMEOUT_INFINITY ? 0 : usec;
        if (c->leak_threshold == 0 && c->leak_source)
                (void) sd_event_source_set_enabled(c->leak_source, SD_EVENT_OFF);
        return 0;
}
