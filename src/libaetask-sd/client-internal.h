/* The client library's internal objects and how they point at each other:
 *
 *   aetask_client ── idle / assigned / connecting lists ──> worker_conn
 *        │                                                     │ (assigned)
 *        └── waiting (queue.h) ──> aetask_checkout <──────────────┘
 *                                   └── calls ──> call (the first is in flight)
 *
 * A checkout does not hold a reference on its client: freeing the client
 * cancels its checkouts.  A checkout is kept alive by its users' references
 * and by its unfinished calls.  A call and its slot point at each other until
 * call_free() cuts the link (as sd-bus's bus_slot_disconnect()); a checkout
 * and its worker, from conn_assign() until conn_detach_checkout().
 *
 * A connection's state is its machine's (conn-machine.h: CONNECTING, IDLE,
 * ASSIGNED, CALL_IN_FLIGHT, CLOSED), and decides the client list it is on; a
 * checkout's is checkout_state (IDLE, WAITING, ASSIGNED, FINISHED). */
#pragma once

#include <aetask/aetask-client.h>
#include <stdbool.h>
#include <sys/types.h>

#include "address.h"
#include "buffer.h"
#include "conn-machine.h"
#include "heap.h"
#include "list.h"
#include "metrics.h"
#include "queue.h"

typedef struct worker_conn worker_conn;

typedef enum call_state {
        CALL_QUEUED,                     /* in checkout->calls, not written yet */
        CALL_SENT,                       /* the head of checkout->calls, written to the worker */
        CALL_DOOMED,                     /* in checkout->doomed: fails with the sticky error */
        CALL_ENDING,                     /* on no list of the checkout: its outcome is being delivered */
} call_state;

typedef struct call {
        list_node node;                  /* in checkout->calls or ->doomed, or a local list */
        call_state state;
        bool cancelled;                  /* its slot went: no callback, the reply is discarded */
        bool has_method;                 /* its method's name follows message (call_method()) */
        aetask_checkout *checkout;
        aetask_slot *slot;               /* NULL: none asked for, or gone */
        uint64_t sent_realtime, sent_monotonic;  /* when traced */
        aetask_reply_handler_t callback;
        void *userdata;
        aetask_destroy_t destroy;
        size_t size;                     /* of message, NUL included */
        char message[];
} call;

struct aetask_slot {
        unsigned n_ref;
        pid_t origin_pid;
        bool floating;                   /* the call holds a reference until it ends */
        call *call;                      /* NULL once the call has ended */
};

/* A connection to a worker: the shell (worker-connection.c) around its
 * I/O-free machine (conn-machine.h), which holds its state. */
struct worker_conn {
        unsigned n_ref;                  /* the pool's, plus one while reading */
        aetask_client *client;
        list_node node;                  /* in the client's list for its state (conn_file()) */
        conn_machine m;
        int fd;
        sd_event_source *io;
        uint32_t io_events;              /* what io waits for (conn_update_events()) */
        buffer out;
        uint64_t last_io;                /* CLOCK_MONOTONIC: its last read or write of a large message (conn-shrink.c) */
        bool corked;                     /* conn_write() only queues: conn_release() flushes */
        aetask_checkout *checkout;       /* while assigned; cut by conn_detach_checkout() only */
        unsigned n_checkouts;            /* served so far, for max_checkouts */
        aetask_log *done_log;            /* for what the checkout-done hook logs */
        uint64_t expires_at;             /* CLOCK_MONOTONIC: closed, not pooled, after (lifetime.c) */
};

struct aetask_client {
        unsigned n_ref;
        pid_t origin_pid;
        char *name;
        char *address;
        socket_address sockaddr;

        unsigned min_workers, max_workers, max_checkouts;
        uint64_t timeout;
        size_t max_message_size;
        bool dont_refork_after_error;
        aetask_error_handler_t error_handler;
        void *error_userdata;

        sd_event *event;
        int64_t priority;
        sd_event_source *retry_source;   /* reconnects after a failed connect */
        sd_event_source *defer_source;   /* reports errors of calls on failed checkouts */
        sd_event_source *timeout_source; /* the checkouts' timeouts (timeout.c) */
        sd_event_source *leak_source;    /* checkouts held too long (leak.c) */
        sd_event_source *shrink_source;  /* gives back quiet connections' large buffers (conn-shrink.c) */
        uint64_t leak_threshold;         /* 0: off */
        unsigned retry_attempt;
        int last_connect_error;          /* errno of the last failed connect, 0 after a success */
        int connect_denied;              /* EACCES or EPERM: defer_source fails the waiting checkouts */
        heap timeouts;                   /* checkouts by deadline (timeout.c) */
        unsigned n_checkouts;            /* live ones: the heap has room for them all */
        buffer scratch;                  /* where calls are serialized */

        list_node idle, assigned, connecting;
        unsigned n_workers;
        checkout_queue waiting;          /* checkouts waiting for a worker, by class and age */
        unsigned max_queued;             /* waiting for a busy worker (waiting.c) */
        uint64_t queue_timeout;
        sd_event_source *queue_timeout_source;
        uint64_t max_worker_lifetime;    /* 0: none (lifetime.c) */
        sd_event_source *lifetime_source; /* closes idle connections past their lifetime */
        uint64_t random_state;           /* for the lifetimes' jitter */
        client_metrics metrics;
        list_node checkouts;             /* every live checkout */
        list_node pending_reports;       /* checkouts with errors to report from defer_source */
        bool freeing;
        unsigned in_reply_callback;      /* client_dispatch() waits until the callback returns */
        bool dispatch_deferred;
        bool journal;                    /* write checkout events to the journal */
        uint64_t trace_base, n_traces;   /* for trace ids */
};

/* Where a checkout is with the pool.  Beside it: whether its user released
 * it (no more calls; it ends when its calls have), whether a handler raised
 * (its worker is not pooled again), and the error that sticks once a fatal
 * one happened (fatal_kind). */
typedef enum checkout_state {
        CHECKOUT_IDLE,                   /* no worker, none wanted (nothing to run, or failed) */
        CHECKOUT_WAITING,                /* in client->waiting for a worker */
        CHECKOUT_ASSIGNED,               /* has its worker: conn_assign() .. conn_detach_checkout() */
        CHECKOUT_FINISHED,               /* over: its worker went back to the pool, or away */
} checkout_state;

struct aetask_checkout {
        unsigned n_ref;
        pid_t origin_pid;                /* its client's, which may go first */
        aetask_client *client;           /* NULL once the client is gone */
        list_node client_node, report_node;
        queue_entry queued;              /* in client->waiting while CHECKOUT_WAITING */
        checkout_state state;
        worker_conn *worker;             /* CHECKOUT_ASSIGNED */
        list_node calls;
        list_node doomed;                /* calls made after a fatal error: failed from defer_source */

        uint64_t timeout;
        uint64_t deadline;               /* USEC_INFINITY when no call is pending */
        heap_node timeout_node;          /* in client->timeouts, keyed by a deadline at most this one */

        aetask_error_handler_t error_handler;
        void *error_userdata;
        void *userdata;
        aetask_destroy_t destroy;

        bool released;                   /* aetask_checkout_release() was called */
        bool had_error;                  /* a handler raised: do not pool the worker */
        bool leak_warned;                /* (leak.c) */
        aetask_error_kind fatal_kind;    /* 0, or the error that sticks */
        char *fatal_message;
        /* Its trace id: the caller's (trace_own), or, made on first need,
         * the client's random prefix and a number, kept as numbers (a
         * queued checkout costs less), and written out by
         * checkout_trace_id(). */
        uint64_t trace_base, trace_number;
        char *trace_own;
        aetask_log *log;
        uint64_t assigned_at;            /* CLOCK_MONOTONIC, when it got its worker (leak.c) */
};

/* client.c */
/* Whether we run in a process forked from the one that made the object:
 * every public entry point refuses that (-ECHILD), as sd-bus's do. */
bool client_origin_changed(aetask_client *c);
bool checkout_origin_changed(aetask_checkout *co);
bool slot_origin_changed(aetask_slot *slot);
/* A reference for a function that runs callbacks and uses C afterwards:
 * any callback may drop the last one.  None (NULL) while C is being freed
 * or detached: that is under way already, and holds it. */
aetask_client *client_hold(aetask_client *c);
void client_dispatch(aetask_client *c);
void client_enqueue_checkout(aetask_client *c, aetask_checkout *co, bool front);
void client_schedule_reports(aetask_client *c, aetask_checkout *co);
/* Reconnects later, backing off: a connect failed, or was refused. */
void client_schedule_retry(aetask_client *c);
/* A connect failed with ERROR (positive errno). */
void client_connect_failed(aetask_client *c, int error);

/* worker-connection.c */
int conn_open(aetask_client *c, worker_conn **ret);
worker_conn *conn_free(worker_conn *w);
void conn_assign(worker_conn *w, aetask_checkout *co);
void conn_send_call(worker_conn *w, call *k);
bool conn_has_call_in_flight(worker_conn *w);
/* Ends W's service to its checkout: back to the pool, or closed. */
void conn_release(worker_conn *w, bool reuse);

/* checkout.c */
void checkout_deliver_reply(aetask_checkout *co, json_object *result, json_object *logs);
void checkout_fail(aetask_checkout *co, aetask_error_kind kind, const char *message);
/* A call ended in an error reply: its logs, then checkout_fail(). */
void checkout_fail_call(aetask_checkout *co, aetask_error_kind kind, const char *message, json_object *logs);
/* The worker went away before running anything of this checkout. */
void checkout_requeue(aetask_checkout *co);
void checkout_send_next(aetask_checkout *co);
/* Takes a waiting checkout out of the client's queue. */
void checkout_leave_queue(aetask_checkout *co);
void checkout_cancel(aetask_checkout *co, const char *why);
void checkout_report_pending(aetask_checkout *co);
call *checkout_first_call(aetask_checkout *co);
/* After a call left the queue: re-arm, send the next, or end the checkout. */
void checkout_calls_changed(aetask_checkout *co, bool was_first);

/* call.c */
/* Runs K's reply handler (unless cancelled) with its outcome; returns what
 * the handler returned, 0 when none ran. */
int call_deliver(call *k, json_object *result, aetask_error_kind kind, const char *message);
/* The handler's name for K's method, or NULL for the catch-all. */
static inline const char *call_method(const call *k) {
        return k->has_method ? k->message + k->size : NULL;
}
/* Takes K off its list, cuts its slot's link, runs its destroy callback. */
void call_free(call *k);

/* timeout.c */
/* Starts (or restarts) the timeout for the call at the head of the queue. */
void checkout_arm_timer(aetask_checkout *co);
void checkout_forget_timer(aetask_checkout *co);
void client_stop_timeouts(aetask_client *c);
/* Makes sure *SOURCE (made on first use) fires by WHEN. */
void client_arm_timer_by(aetask_client *c, sd_event_source **source, uint64_t when, uint64_t accuracy,
                         sd_event_time_handler_t callback, const char *description);

/* trace.c */
#define CHECKOUT_TRACE_MAX 65
/* CO's trace id, written into BUF unless it is the caller's own; NULL when
 * it has none and cannot make one (its client is gone). */
const char *checkout_trace_id(aetask_checkout *co, char buf[static CHECKOUT_TRACE_MAX]);
bool checkout_is_traced(aetask_checkout *co);
void checkout_journal(aetask_checkout *co, const char *event, int priority, const char *message_id,
                      const char *method, uint64_t duration, const char *kind, const char *format, ...)
        __attribute__((format(printf, 8, 9)));
/* The same, whether or not the checkout is traced, for what the caller
 * asked to hear about (leak warnings). */
void checkout_journal_text(aetask_checkout *co, const char *event, int priority, const char *message_id,
                           const char *method, uint64_t duration, const char *kind, const char *text);
void call_trace_sent(aetask_checkout *co, call *k);
void call_trace_done(aetask_checkout *co, call *k, json_object *logs, const char *error);

/* conn-shrink.c */
/* W just read or wrote: its buffers go back once it has been quiet a while. */
void conn_shrink_later(worker_conn *w);
void client_stop_shrink(aetask_client *c);

/* leak.c */
void checkout_leak_watch(aetask_checkout *co);
void client_stop_leak_watch(aetask_client *c);

/* waiting.c */
void client_init_waiting(aetask_client *c);
void client_queue_push(aetask_client *c, aetask_checkout *co, bool front);
/* Takes the checkout to serve next off the queue, and records its wait. */
aetask_checkout *client_queue_take(aetask_client *c);
/* Whether a checkout that needs a worker now would wait behind the cap. */
bool client_queue_is_full(aetask_client *c);
/* Fails CO's first call with AETASK_ERROR_QUEUE_FULL (the error sticks). */
void checkout_refuse(aetask_checkout *co);
void client_stop_queue_timeout(aetask_client *c);

/* lifetime.c */
/* When a connection opened now is to be closed: USEC_INFINITY for never. */
uint64_t client_conn_expiry(aetask_client *c);
/* Whether W outlived its lifetime: counted as recycled when it did. */
bool conn_lifetime_over(worker_conn *w);
void client_stop_lifetime_timer(aetask_client *c);

/* Debug logging only: the library's users own their logs. */
void client_log_debug(const char *format, ...) __attribute__((format(printf, 1, 2)));
