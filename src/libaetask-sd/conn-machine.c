/* What a worker's replies mean for its connection, without the socket: see
 * conn-machine.h. */
#include "conn-machine.h"

#include <assert.h>
#include <stdio.h>

#include "macro.h"

void conn_machine_init(conn_machine *m, conn_state state) {
        *m = (conn_machine) { .state = state };
}

void conn_machine_done(conn_machine *m) {
        /* A connection closed for a reply too large, or too costly, to read
         * gives its memory back at once. */
        buffer_clear(&m->in);
        buffer_shrink(&m->in);
        buffer_done(&m->in);
}

void conn_machine_connected(conn_machine *m) {
        assert(m->state == CONN_CONNECTING);
        m->state = CONN_IDLE;
}

void conn_machine_assign(conn_machine *m) {
        assert(m->state == CONN_IDLE);
        m->state = CONN_ASSIGNED;
        m->answered = false;
}

void conn_machine_call_sent(conn_machine *m) {
        assert(m->state == CONN_ASSIGNED);
        m->state = CONN_CALL_IN_FLIGHT;
}

bool conn_machine_release(conn_machine *m) {
        /* A call still at the worker would answer the next checkout. */
        if (m->state != CONN_ASSIGNED || m->retire)
                return false;
        m->state = CONN_IDLE;
        m->pending_done++;
        return true;
}

void conn_machine_close(conn_machine *m) {
        m->state = CONN_CLOSED;
}

static void event_close(conn_machine *m, conn_event *ev, aetask_error_kind kind, const char *message) {
        bool has_checkout = m->state == CONN_ASSIGNED || m->state == CONN_CALL_IN_FLIGHT;

        ev->close = true;
        ev->kind = kind;
        ev->message = message;
        /* No greeting means no worker ever had the connection (the server
         * went away with it in its backlog); a Done still unanswered means
         * the worker never read this checkout's first call.  Either way
         * nothing ran: the checkout goes elsewhere. */
        ev->requeue = has_checkout && (!m->greeted || (m->pending_done > 0 && !m->answered));
        /* A connection that never reached a worker is a failed connect. */
        if (!m->greeted || kind == AETASK_ERROR_REFUSED)
                ev->back_off++;
}

void conn_machine_lost(conn_machine *m, bool call_unsent, aetask_error_kind kind, const char *message,
                       conn_event *ret) {
        *ret = (conn_event) { .type = CONN_EVENT_LOST };
        event_close(m, ret, kind, message);
        /* Nor did a checkout's first call that was not all written: the
         * worker died idle, before the client saw it go, and a worker runs
         * whole messages only. */
        if (call_unsent && m->state == CONN_CALL_IN_FLIGHT && !m->answered)
                ret->requeue = true;
}

/* A retiring worker's last word, never the answer to a Done: it answered
 * everything it ran, so a checkout it has not answered yet goes to another
 * worker, unharmed. */
static void read_retiring(conn_machine *m, conn_event *ev) {
        bool has_checkout = m->state == CONN_ASSIGNED || m->state == CONN_CALL_IN_FLIGHT;

        ev->type = CONN_EVENT_LOST;
        if (has_checkout && m->answered) {
                event_close(m, ev, AETASK_ERROR_WORKER_DIED, "worker retired during the checkout");
                return;
        }
        ev->close = true;
        ev->requeue = has_checkout;
        ev->kind = AETASK_ERROR_WORKER_DIED;
        ev->message = "worker retired";
}

/* An error before the greeting is the server's refusal when it is at its
 * worker cap or does not serve this user (its allow lists); anything else
 * means this is not a worker socket at all (a control socket, say).  The
 * checkout waiting on this connection is told, and reconnects back off. */
static void read_refusal(conn_machine *m, conn_event *ev) {
        const protocol_reply *reply = &ev->reply;
        aetask_error_kind kind = AETASK_ERROR_PROTOCOL;

        if (protocol_error_is_refusal(reply->error_id)) {
                kind = AETASK_ERROR_REFUSED;
                snprintf(ev->text, sizeof(ev->text), "%s", reply->message);
        } else
                snprintf(ev->text, sizeof(ev->text), "not an aetask worker socket (the server answered %s%s%s)",
                         reply->error, reply->message[0] ? ": " : "", reply->message);
        /* A step for the refusal, and another below for the connection
         * closing without a worker. */
        ev->back_off = 1;
        if (m->state == CONN_CALL_IN_FLIGHT) {
                m->state = CONN_ASSIGNED;
                m->answered = true;
                ev->type = CONN_EVENT_CALL_FAILED;
                ev->kind = kind;
                ev->message = ev->text;
                json_object_put(TAKE_PTR(ev->reply.logs));  /* not the worker's: there is none */
                return;
        }
        ev->type = CONN_EVENT_LOST;
        event_close(m, ev, kind, ev->text);
}

/* The answer to a Done: a failing checkout-done hook means the worker's
 * state is suspect, so it is not pooled again. */
static void read_done_answer(conn_machine *m, conn_event *ev) {
        m->pending_done--;
        ev->type = CONN_EVENT_DONE;
        if (!ev->reply.error)
                return;
        m->retire = true;
        if (m->state == CONN_IDLE)
                event_close(m, ev, AETASK_ERROR_HANDLER, ev->reply.message);
}

/* The answer to the call in flight. */
static void read_call_answer(conn_machine *m, conn_event *ev) {
        const protocol_reply *reply = &ev->reply;

        if (m->state != CONN_CALL_IN_FLIGHT) {
                ev->type = CONN_EVENT_LOST;
                if (reply->error && protocol_error_call_kind(reply->error_id) == AETASK_ERROR_REFUSED)
                        event_close(m, ev, AETASK_ERROR_REFUSED, reply->message);
                else
                        event_close(m, ev, AETASK_ERROR_PROTOCOL, "worker sent a reply nobody asked for");
                return;
        }
        m->state = CONN_ASSIGNED;
        m->answered = true;
        if (!reply->error) {
                ev->type = CONN_EVENT_REPLY;
                return;
        }
        ev->type = CONN_EVENT_CALL_FAILED;
        ev->kind = protocol_error_call_kind(reply->error_id);
        ev->message = reply->message;
        if (ev->kind == 0) {
                snprintf(ev->text, sizeof(ev->text), "worker reported %s: %s", reply->error, reply->message);
                ev->kind = AETASK_ERROR_PROTOCOL;
                ev->message = ev->text;
        }
}

static void read_message(conn_machine *m, const char *s, size_t len, conn_event *ev) {
        const char *reason;

        if (protocol_parse_reply(s, len, &ev->reply, &reason) < 0) {
                snprintf(ev->text, sizeof(ev->text), "invalid reply from worker: %s", reason);
                ev->type = CONN_EVENT_LOST;
                event_close(m, ev, AETASK_ERROR_PROTOCOL, ev->text);
                return;
        }
        if (ev->reply.error_id == PROTOCOL_ERROR_ID_RETIRING)
                read_retiring(m, ev);
        else if (!m->greeted && ev->reply.hello) {
                m->greeted = true;
                ev->type = CONN_EVENT_GREETED;
        } else if (!m->greeted && !ev->reply.error) {
                ev->type = CONN_EVENT_LOST;
                event_close(m, ev, AETASK_ERROR_PROTOCOL, "the worker did not greet");
        } else if (!m->greeted)
                read_refusal(m, ev);
        else if (m->pending_done > 0)
                read_done_answer(m, ev);
        else
                read_call_answer(m, ev);
}

int conn_machine_next(conn_machine *m, conn_event *ret) {
        const char *msg;
        ssize_t len;

        if (m->state == CONN_CLOSED)
                return 0;
        len = buffer_next_message(&m->in, &m->scanned, &msg);
        if (len < 0)
                return 0;
        *ret = (conn_event) {};
        read_message(m, msg, (size_t) len, ret);
        buffer_consume(&m->in, (size_t) len + 1);
        return 1;
}

void conn_event_done(conn_event *ev) {
        protocol_reply_done(&ev->reply);
}
