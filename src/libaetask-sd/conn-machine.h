/* The I/O-free core of a worker connection: its state, one function per
 * transition, and the reading side that turns the worker's bytes into
 * events.  worker-connection.c is the shell that owns the socket and acts
 * on the events; the client fuzzer drives this core directly.
 *
 *   CONNECTING ──connected──> IDLE ──assign──> ASSIGNED ──call_sent──> CALL_IN_FLIGHT
 *                              ^                  │  ^                      │
 *                              └─────release──────┘  └───reply or error─────┘
 *   any ──close──> CLOSED
 *
 * Orthogonal to the state: whether the worker has greeted (until then the
 * connection may sit in the server's backlog, and nothing sent on it ran),
 * how many Done messages wait for their answer, and whether the worker must
 * retire after its checkout. */
#pragma once

#include <aetask/aetask-client.h>
#include <stdbool.h>

#include "buffer.h"
#include "protocol.h"

typedef enum conn_state {
        CONN_CONNECTING,                 /* connect(2) in progress */
        CONN_IDLE,                       /* in the pool, serving nobody */
        CONN_ASSIGNED,                   /* serving a checkout, no call at the worker */
        CONN_CALL_IN_FLIGHT,             /* serving a checkout, its first call written */
        CONN_CLOSED,                     /* gone; the memory waits for its last holder */
} conn_state;

typedef struct conn_machine {
        conn_state state;
        bool greeted;                    /* the worker said hello: it has the connection */
        bool answered;                   /* it answered a call of this checkout: the checkout cannot move */
        bool retire;                     /* a checkout-done hook failed: never pooled again */
        unsigned pending_done;           /* Done messages not answered yet */
        buffer in;
        size_t scanned;
} conn_machine;

typedef enum conn_event_type {
        CONN_EVENT_NOTHING,              /* a message that only changed the state */
        CONN_EVENT_GREETED,              /* a worker has the connection */
        CONN_EVENT_REPLY,                /* the call in flight answered: reply.result, reply.logs */
        CONN_EVENT_CALL_FAILED,          /* the call in flight failed: kind, message, reply.logs */
        CONN_EVENT_DONE,                 /* a Done answered: reply.logs */
        CONN_EVENT_LOST,                 /* only the closing below */
} conn_event_type;

typedef struct conn_event {
        conn_event_type type;
        aetask_error_kind kind;
        const char *message;             /* in text, or in reply */
        unsigned back_off;               /* steps reconnects back off by: refused, or no worker came */
        /* Closing, after the event: the connection is done for. */
        bool close;
        bool requeue;                    /* nothing of the checkout ran: it goes to another worker */
        protocol_reply reply;            /* owned: conn_event_done() */
        char text[256];
} conn_event;

void conn_machine_init(conn_machine *m, conn_state state);
void conn_machine_done(conn_machine *m);

/* The transitions the shell makes. */
void conn_machine_connected(conn_machine *m);
void conn_machine_assign(conn_machine *m);
void conn_machine_call_sent(conn_machine *m);
/* The checkout lets its worker go; its Done is queued.  Returns whether the
 * worker may serve another checkout. */
bool conn_machine_release(conn_machine *m);
void conn_machine_close(conn_machine *m);

/* The shell reads the worker's bytes into m->in, under its size limit.
 * Takes the next message in m->in and says what it means.  Returns 1 with
 * *RET filled (conn_event_done() it), 0 (*RET untouched) when no whole
 * message is there. */
int conn_machine_next(conn_machine *m, conn_event *ret);
/* The connection failed (KIND, MESSAGE, as the shell found out), with the
 * call in flight not all written (CALL_UNSENT) or written: *RET says how to
 * close it. */
void conn_machine_lost(conn_machine *m, bool call_unsent, aetask_error_kind kind, const char *message,
                       conn_event *ret);
void conn_event_done(conn_event *ev);
