/* Fuzz target: the client's reading side, the real one.  Arbitrary bytes
 * from a worker are read into a worker connection's machine
 * (conn-machine.c: framing under the size limit, parsing, the state
 * transitions) in pieces, as on_io() reads them, and its events are acted
 * on as worker-connection.c acts on them, without sockets: logs merged into
 * the checkout's or the Done's log context, the next call sent, the
 * checkout released and a new one assigned (the Done-plus-next-call path).
 * The machine must stay in a state its transitions allow, and the log
 * contexts must serialize to JSON that reads back equal. */
#include <string.h>

#include "conn-machine.h"
#include "fuzz.h"
#include "json-writer.h"
#include "log-context.h"
#include "protocol.h"

#define FUZZ_MESSAGE_SIZE_MAX 4096

typedef struct session {
        conn_machine m;
        aetask_log *log, *done_log;
        unsigned n_events;
} session;

/* A checkout gets the connection and writes its first call. */
static void assign_and_call(session *s) {
        conn_machine_assign(&s->m);
        fuzz_assert(s->m.state == CONN_ASSIGNED && !s->m.answered);
        conn_machine_call_sent(&s->m);
}

/* What a checkout does after its call ended: another call, or (every
 * third time) release the worker, whose Done goes out with the next
 * checkout's first call. */
static void after_call(session *s) {
        fuzz_assert(s->m.state == CONN_ASSIGNED && s->m.answered);
        if (++s->n_events % 3 != 0) {
                conn_machine_call_sent(&s->m);
                return;
        }
        unsigned pending = s->m.pending_done;
        if (!conn_machine_release(&s->m)) {
                fuzz_assert(s->m.retire);
                conn_machine_close(&s->m);
                return;
        }
        fuzz_assert(s->m.state == CONN_IDLE && s->m.pending_done == pending + 1);
        assign_and_call(s);
}

/* Acts on EV as worker-connection.c's conn_handle_event() does. */
static void handle_event(session *s, conn_event *ev) {
        bool was_greeted = s->m.greeted;
        bool held = s->m.state == CONN_ASSIGNED || s->m.state == CONN_CALL_IN_FLIGHT;

        switch (ev->type) {
        case CONN_EVENT_GREETED:
                fuzz_assert(s->m.greeted);
                break;
        case CONN_EVENT_REPLY:
                fuzz_assert(!ev->reply.error);
                if (ev->reply.logs)
                        log_context_merge(s->log, ev->reply.logs);
                after_call(s);
                break;
        case CONN_EVENT_CALL_FAILED:
                fuzz_assert(ev->kind > 0 && ev->kind < _AETASK_ERROR_KIND_MAX && ev->message);
                if (ev->reply.logs)
                        log_context_merge(s->log, ev->reply.logs);
                /* A handler's error leaves the checkout usable; any other
                 * is fatal and closes the connection (conn_release()). */
                if (ev->kind == AETASK_ERROR_HANDLER)
                        after_call(s);
                else
                        conn_machine_close(&s->m);
                break;
        case CONN_EVENT_DONE:
                if (ev->reply.logs)
                        log_context_merge(s->done_log, ev->reply.logs);
                break;
        case CONN_EVENT_NOTHING:
        case CONN_EVENT_LOST:
                fuzz_assert(ev->close);
                break;
        }
        if (ev->close) {
                fuzz_assert(ev->message && ev->kind > 0 && ev->kind < _AETASK_ERROR_KIND_MAX);
                /* Nothing sent on a connection no worker had ran. */
                fuzz_assert(was_greeted || !held || ev->requeue);
                fuzz_assert(ev->kind != AETASK_ERROR_REFUSED || ev->back_off);
                conn_machine_close(&s->m);
        }
}

/* A log context as a caller sees it: its JSON written and read back. */
static void check_log(aetask_log *log) {
        json_object *j = aetask_log_to_json(log), *again = NULL;
        buffer b = {};
        const char *reason;

        fuzz_assert(j);
        fuzz_assert(json_write_value(&b, j) >= 0);
        if (protocol_parse_message(buffer_head(&b), buffer_length(&b), &again, &reason) < 0) {
                fprintf(stderr, "log context JSON does not read back (%s): %.*s\n",
                        reason, (int) buffer_length(&b), buffer_head(&b));
                abort();
        }
        fuzz_assert(json_object_equal(j, again));
        for (unsigned i = 1; i < aetask_log_get_n_messages(log); i++) {
                uint64_t a, z;
                fuzz_assert(aetask_log_get_message(log, i - 1, &a, NULL, NULL, NULL) == 0);
                fuzz_assert(aetask_log_get_message(log, i, &z, NULL, NULL, NULL) == 0);
                fuzz_assert(a <= z);  /* kept in time order */
        }
        json_object_put(again);
        json_object_put(j);
        buffer_done(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        size_t piece = fuzz_piece_size(&data, &size);
        session s = {};
        conn_event ev;

        fuzz_assert(aetask_log_new(&s.log) == 0);
        fuzz_assert(aetask_log_new(&s.done_log) == 0);
        /* A unix connection is up at once, and its first checkout's call
         * goes out before the worker greets (the server's backlog). */
        conn_machine_init(&s.m, CONN_IDLE);
        assign_and_call(&s);

        while (s.m.state != CONN_CLOSED) {
                /* What the worker connection's on_io() does with each read. */
                ssize_t n = fuzz_feed(&s.m.in, FUZZ_MESSAGE_SIZE_MAX + 1, piece, &data, &size);
                if (n <= 0)
                        break;  /* the end, or a reply over the size limit */
                while (conn_machine_next(&s.m, &ev) > 0) {
                        handle_event(&s, &ev);
                        conn_event_done(&ev);
                }
        }
        if (s.m.state != CONN_CLOSED) {
                /* Whether the call in flight was all written: the piece size's low bit. */
                conn_machine_lost(&s.m, piece & 1, AETASK_ERROR_WORKER_DIED, "worker connection suddenly died", &ev);
                fuzz_assert(ev.close);
                fuzz_assert(!ev.requeue || !s.m.answered);  /* a checkout that had an answer never moves */
        }
        check_log(s.log);
        check_log(s.done_log);
        aetask_log_unref(s.log);
        aetask_log_unref(s.done_log);
        conn_machine_done(&s.m);
        return 0;
}
