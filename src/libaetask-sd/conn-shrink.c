/* When a worker connection gives back the memory of a large message.
 * Shrinking after every read made a megabyte reply arrive in fresh pages
 * grown by reallocs (after a malloc_trim()), every call: the page faults
 * cost more than the read.  A connection keeps its buffers while messages
 * keep coming, and gives them back once it has been quiet for
 * CONN_SHRINK_AFTER_USEC, as a worker does after a pause of its own; one
 * timer per client serves every connection. */
#include "client-internal.h"
#include "macro.h"

#define CONN_SHRINK_AFTER_USEC (20 * USEC_PER_MSEC)
#define CONN_SHRINK_ACCURACY_USEC (10 * USEC_PER_MSEC)

static bool conn_holds_memory(const worker_conn *w) {
        return w->m.in.alloc > BUFFER_KEEP || w->out.alloc > BUFFER_KEEP;
}

static void client_arm_shrink(aetask_client *c, uint64_t when);

static int on_shrink_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        aetask_client *c = userdata;
        list_node *lists[] = { &c->idle, &c->assigned }, *n;
        uint64_t next = 0;

        for (size_t i = 0; i < ELEMENTSOF(lists); i++)
                for (n = lists[i]->next; n != lists[i]; n = n->next) {
                        worker_conn *w = list_entry(n, worker_conn, node);
                        uint64_t due = w->last_io + CONN_SHRINK_AFTER_USEC;

                        if (!conn_holds_memory(w))
                                continue;
                        if (usec >= due) {
                                /* A buffer holding part of a message keeps
                                 * it; the rest of it re-arms this timer. */
                                buffer_shrink(&w->m.in);
                                buffer_shrink(&w->out);
                        } else if (next == 0 || due < next)
                                next = due;
                }
        if (next > 0)
                client_arm_shrink(c, next);
        return 0;
}

static void client_arm_shrink(aetask_client *c, uint64_t when) {
        client_arm_timer_by(c, &c->shrink_source, when, CONN_SHRINK_ACCURACY_USEC, on_shrink_timer,
                            "aetask-client-shrink");
}

void conn_shrink_later(worker_conn *w) {
        aetask_client *c = w->client;

        if (!conn_holds_memory(w) || !c->event)
                return;
        if (sd_event_now(c->event, CLOCK_MONOTONIC, &w->last_io) < 0)
                return;
        client_arm_shrink(c, w->last_io + CONN_SHRINK_AFTER_USEC);
}

void client_stop_shrink(aetask_client *c) {
        c->shrink_source = sd_event_source_disable_unref(c->shrink_source);
}
