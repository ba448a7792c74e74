/* libaetask-sd: the client side of aetask.  A client keeps a pool of
 * connections to worker processes of one aetaskd; a checkout gives exclusive
 * use of one worker; calls queue on the checkout and their results come back
 * through callbacks on the caller's sd-event loop.  See libaetask-sd(3). */
#pragma once

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aetask_client aetask_client;
typedef struct aetask_checkout aetask_checkout;
typedef struct aetask_log aetask_log;
typedef struct aetask_slot aetask_slot;

/* A timeout that never expires. */
#define AETASK_TIMEOUT_INFINITY UINT64_MAX

typedef enum aetask_error_kind {
        AETASK_ERROR_HANDLER = 1,   /* the handler raised an error; the checkout stays usable */
        AETASK_ERROR_SETUP,         /* the handler's setup failed ("setup exception: ...") */
        AETASK_ERROR_TIMEOUT,       /* "timed out after N seconds" */
        AETASK_ERROR_WORKER_DIED,   /* the worker connection suddenly died */
        AETASK_ERROR_ABORTED,       /* aetask_checkout_throw_fatal_error() */
        AETASK_ERROR_PROTOCOL,      /* the worker sent something we cannot read */
        AETASK_ERROR_REFUSED,       /* the server refused the connection (worker cap) */
        AETASK_ERROR_CANCELLED,     /* the call never ran: the client was freed or detached, or an
                                     * earlier call on the checkout failed */
        AETASK_ERROR_CONNECT,       /* connecting to the server is not permitted (EACCES, EPERM) */
        AETASK_ERROR_DEADLINE,      /* the call ran past its deadline and grace: the worker stopped */
        AETASK_ERROR_QUEUE_FULL,    /* the checkout would have waited behind the client's queue cap */
        AETASK_ERROR_QUEUE_TIMEOUT, /* no worker came within the client's queue timeout */
        _AETASK_ERROR_KIND_MAX,
} aetask_error_kind;

/* How a call failed, as its reply handler sees it (borrowed for the callback). */
typedef struct aetask_error {
        aetask_error_kind kind;
        const char *message;
} aetask_error;

/* The outcome of one call: ERROR is NULL and RESULT the result (borrowed for
 * the duration of the callback, json_object_get() it to keep it; NULL stands
 * for JSON null), or ERROR says how the call failed and RESULT is NULL.
 * Returns: negative errno to fail the checkout (kind AETASK_ERROR_ABORTED,
 * its worker is not pooled again); 0 to go on as the seed does (an error
 * also goes to the checkout's error handler); positive on an error to say it
 * was handled here (the checkout's error handler is not run for it). */
typedef int (*aetask_reply_handler_t)(aetask_checkout *checkout, json_object *result,
                                      const aetask_error *error, void *userdata);
typedef void (*aetask_error_handler_t)(aetask_checkout *checkout, aetask_error_kind kind,
                                       const char *message, void *userdata);
/* Frees userdata: runs exactly once. */
typedef void (*aetask_destroy_t)(void *userdata);

/* The client */
int aetask_client_new(aetask_client **ret, const char *address);
/* A client of the unit aetask@NAME: unix:$AETASK_RUNTIME_DIR/NAME.sock,
 * /run/aetask without the variable. */
int aetask_client_new_handler(aetask_client **ret, const char *name);
aetask_client *aetask_client_ref(aetask_client *client);
aetask_client *aetask_client_unref(aetask_client *client);

int aetask_client_set_name(aetask_client *client, const char *name);
int aetask_client_set_min_workers(aetask_client *client, unsigned n);
int aetask_client_set_max_workers(aetask_client *client, unsigned n);
int aetask_client_set_timeout(aetask_client *client, uint64_t usec);
int aetask_client_set_max_checkouts(aetask_client *client, unsigned n);
int aetask_client_set_dont_refork_after_error(aetask_client *client, int b);
int aetask_client_set_max_message_size(aetask_client *client, size_t size);
int aetask_client_set_error_handler(aetask_client *client, aetask_error_handler_t callback, void *userdata);
/* A checkout holding its worker longer than USEC gets one warning (0 or
 * AETASK_TIMEOUT_INFINITY: off, the default). */
int aetask_client_set_leak_threshold(aetask_client *client, uint64_t usec);

/* Governance of the pool (aetask_client_set_max_queued(3)).  At most N
 * checkouts wait for a busy worker; over that a checkout's first call
 * fails at once with AETASK_ERROR_QUEUE_FULL (AETASK_QUEUE_UNLIMITED, the
 * default: no cap). */
#define AETASK_QUEUE_UNLIMITED ((unsigned) -1)
int aetask_client_set_max_queued(aetask_client *client, unsigned n);
/* How long a checkout may wait for a worker (AETASK_ERROR_QUEUE_TIMEOUT
 * after), apart from the call timeout; AETASK_TIMEOUT_INFINITY: no limit. */
int aetask_client_set_queue_timeout(aetask_client *client, uint64_t usec);
/* A checkout waiting this long is served next whatever its class (oldest
 * first): no class starves.  AETASK_TIMEOUT_INFINITY: strict priority. */
int aetask_client_set_priority_aging(aetask_client *client, uint64_t usec);
/* Each connection lives at most USEC minus up to a fifth of it at random,
 * then is closed instead of pooled (0 or AETASK_TIMEOUT_INFINITY: off). */
int aetask_client_set_max_worker_lifetime(aetask_client *client, uint64_t usec);

/* Live metrics of the pool: pass sizeof(aetask_client_metrics); SIZE says
 * how much was filled in (a program built against an older header gets
 * the fields it knows). */
#define AETASK_METRICS_ERROR_KINDS 32
#define AETASK_PRIORITY_CLASSES 3
typedef struct aetask_client_metrics {
        size_t size;                  /* bytes filled in */
        uint64_t checkouts;           /* made */
        uint64_t calls;               /* queued on checkouts */
        uint64_t errors[AETASK_METRICS_ERROR_KINDS];  /* calls ended by an error, by aetask_error_kind */
        uint64_t refused_queue_full;  /* checkouts refused at the queue cap */
        uint64_t queue_timeouts;      /* checkouts that waited the queue timeout in vain */
        uint64_t recycled_lifetime;   /* connections closed at the end of their lifetime */
        uint64_t waits;               /* checkouts that got a worker from the queue */
        uint64_t queue_wait_p50_usec, queue_wait_p99_usec;
        /* The same by priority class: [0] LOW, [1] NORMAL, [2] HIGH. */
        uint64_t class_waits[AETASK_PRIORITY_CLASSES];
        uint64_t class_queue_wait_p50_usec[AETASK_PRIORITY_CLASSES];
        uint64_t class_queue_wait_p99_usec[AETASK_PRIORITY_CLASSES];
        unsigned queued;              /* checkouts waiting for a worker now */
        unsigned workers_busy, workers_idle, workers_connecting;
} aetask_client_metrics;
int aetask_client_get_metrics(aetask_client *client, aetask_client_metrics *ret, size_t size);

const char *aetask_client_get_name(aetask_client *client);
int aetask_client_get_pool(aetask_client *client, unsigned *ret_workers, unsigned *ret_idle, unsigned *ret_queued);

int aetask_client_attach_event(aetask_client *client, sd_event *event, int64_t priority);
int aetask_client_detach_event(aetask_client *client);
sd_event *aetask_client_get_event(aetask_client *client);

/* Checkouts */
int aetask_client_checkout(aetask_client *client, aetask_checkout **ret);
aetask_checkout *aetask_checkout_ref(aetask_checkout *checkout);
aetask_checkout *aetask_checkout_unref(aetask_checkout *checkout);

int aetask_checkout_set_timeout(aetask_checkout *checkout, uint64_t usec);
/* Priority classes: the queue serves higher ones first, FIFO within one. */
#define AETASK_PRIORITY_LOW (-1)
#define AETASK_PRIORITY_NORMAL 0
#define AETASK_PRIORITY_HIGH 1
int aetask_checkout_set_priority(aetask_checkout *checkout, int priority);
int aetask_checkout_set_error_handler(aetask_checkout *checkout, aetask_error_handler_t callback, void *userdata);
void *aetask_checkout_set_userdata(aetask_checkout *checkout, void *userdata);
void *aetask_checkout_get_userdata(aetask_checkout *checkout);
/* Runs once with the checkout's userdata when the checkout is freed. */
int aetask_checkout_set_destroy_callback(aetask_checkout *checkout, aetask_destroy_t callback);
aetask_client *aetask_checkout_get_client(aetask_checkout *checkout);

/* Queues a call of METHOD (NULL: the handler's catch-all) with ARGS, a JSON
 * array or NULL for none.  ARGS stays the caller's: it is serialized now.
 * With RET_SLOT the caller gets the call's slot: unreffing it cancels the
 * call (see aetask_slot_unref()); without, the call is floating. */
int aetask_checkout_call(aetask_checkout *checkout, aetask_slot **ret_slot, const char *method,
                         json_object *args, aetask_reply_handler_t callback, void *userdata);

/* The same, with the arguments given one by one after TYPES, one letter
 * each: s (const char *, NULL for null), i (int64_t), u (uint64_t),
 * b (int, a boolean), d (double), n (null, takes no argument), j
 * (json_object *, borrowed, NULL for null). */
int aetask_checkout_call_format(aetask_checkout *checkout, aetask_slot **ret_slot, const char *method,
                                aetask_reply_handler_t callback, void *userdata, const char *types, ...);

/* Slots: one per call asked for.  The last unref of a slot whose call has
 * not ended cancels the call: its reply handler never runs (its destroy
 * callback does, at once).  A call not yet sent is dropped; one already
 * sent runs to its end in the worker (the worker is not stopped) and its
 * reply is discarded on arrival; the checkout stays usable. */
aetask_slot *aetask_slot_ref(aetask_slot *slot);
aetask_slot *aetask_slot_unref(aetask_slot *slot);
/* Runs once with the call's userdata when the call ends: after its reply
 * handler returned, when it is cancelled, or when the client is freed. */
int aetask_slot_set_destroy_callback(aetask_slot *slot, aetask_destroy_t callback);
/* A floating slot is held by its call until the call ends, as sd-bus's. */
int aetask_slot_set_floating(aetask_slot *slot, int b);
void *aetask_slot_get_userdata(aetask_slot *slot);
aetask_checkout *aetask_slot_get_checkout(aetask_slot *slot);

int aetask_checkout_throw_fatal_error(aetask_checkout *checkout, const char *message);
int aetask_checkout_get_error(aetask_checkout *checkout, aetask_error_kind *ret_kind, const char **ret_message);
int aetask_checkout_release(aetask_checkout *checkout);

const char *aetask_error_kind_to_string(aetask_error_kind kind);

/* Tracing.  Every checkout has a trace id (made up by the client unless the
 * caller sets one, e.g. its own request id, before the first call); it goes
 * with each call to the worker, whose journal entries carry it as
 * AETASK_TRACE=.  With journal tracing on, the client writes its own entries
 * for the checkout too (queued, assigned, each call and its duration,
 * released, errors), so `journalctl AETASK_TRACE=ID` shows both sides. */
int aetask_checkout_set_trace_id(aetask_checkout *checkout, const char *id);
const char *aetask_checkout_get_trace_id(aetask_checkout *checkout);
int aetask_client_set_journal(aetask_client *client, int b);

/* A log context, the seed's Log::Defer object: attach one to a checkout and
 * it collects the worker's messages, timers and data of every call (errors
 * included), a timer per call named after the method ("->()" for a call
 * without one), and the caller's own messages, in time order. */
int aetask_log_new(aetask_log **ret);
aetask_log *aetask_log_ref(aetask_log *log);
aetask_log *aetask_log_unref(aetask_log *log);
/* Also write the checkouts' client entries to the journal. */
int aetask_log_set_journal(aetask_log *log, int b);
/* Log::Defer's callback: runs once, when the last holder lets go (the
 * caller's references, and checkouts until their workers have answered
 * the release), with the log complete.  It may take a reference to keep the
 * log; the callback does not run again. */
typedef void (*aetask_log_finish_t)(aetask_log *log, void *userdata);
int aetask_log_set_finish_callback(aetask_log *log, aetask_log_finish_t callback, void *userdata);
int aetask_log_append(aetask_log *log, int priority, const char *format, ...) __attribute__((format(printf, 3, 4)));

unsigned aetask_log_get_n_messages(aetask_log *log);
int aetask_log_get_message(aetask_log *log, unsigned index, uint64_t *ret_usec, pid_t *ret_pid,
                           int *ret_priority, const char **ret_text);
unsigned aetask_log_get_n_timers(aetask_log *log);
int aetask_log_get_timer(aetask_log *log, unsigned index, const char **ret_name,
                         uint64_t *ret_start_usec, uint64_t *ret_duration_usec);
/* Key/value data the worker recorded (borrowed; an object, maybe empty). */
json_object *aetask_log_get_data(aetask_log *log);
/* How many entries were dropped because a call logged too much. */
unsigned aetask_log_get_dropped(aetask_log *log);
/* Everything as JSON, in the shape of Log::Defer's message (new reference):
 * {"start":usec,"end":usec,"logs":[[usec,pid,priority,text],...],
 *  "timers":[[name,start_usec,duration_usec],...],"data":{...},"dropped":n} */
json_object *aetask_log_to_json(aetask_log *log);

int aetask_checkout_set_log(aetask_checkout *checkout, aetask_log *log);
aetask_log *aetask_checkout_get_log(aetask_checkout *checkout);

/* For __attribute__((cleanup)) */
static inline void aetask_client_unrefp(aetask_client **p) {
        if (*p)
                aetask_client_unref(*p);
}
static inline void aetask_checkout_unrefp(aetask_checkout **p) {
        if (*p)
                aetask_checkout_unref(*p);
}
static inline void aetask_slot_unrefp(aetask_slot **p) {
        if (*p)
                aetask_slot_unref(*p);
}
static inline void aetask_log_unrefp(aetask_log **p) {
        if (*p)
                aetask_log_unref(*p);
}

#ifdef __cplusplus
}
#endif
