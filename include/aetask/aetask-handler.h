/* The handler API: the code that aetask workers run.  A handler is a
 * struct aetask_handler with an optional setup step, named methods, an
 * optional catch-all for calls made without a method name, an optional
 * general interface for every call the others do not take, an optional
 * checkout-done hook and an optional check of its options at start.  It is either built as a module that aetaskd loads by
 * name, or handed to aetask_server_set_handler() by an embedding program.
 * See aetask-handler(3). */
#pragma once

#include <errno.h>                /* handlers return -errno codes */
#include <json-c/json.h>
#include <stdarg.h>
#include <stddef.h>
#include <syslog.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 2 added the interface and check_options members.  A server takes
 * handlers of version 1 too, reading only the members they have. */
#define AETASK_HANDLER_ABI_VERSION 2

typedef struct aetask_worker aetask_worker;

/* A method: ARGS is a JSON array (borrowed).  On success return 0 and set
 * *RET_RESULT to a new reference (or leave it NULL for JSON null); on failure
 * return aetask_worker_raise(...) or any negative errno. */
typedef int (*aetask_method_t)(aetask_worker *worker, json_object *args, json_object **ret_result);

/* The general interface (the seed's interface coderef): METHOD is the name
 * the call was made with, or NULL for a call without one. */
typedef int (*aetask_interface_t)(aetask_worker *worker, const char *method, json_object *args,
                                  json_object **ret_result);

typedef struct aetask_method {
        const char *name;
        aetask_method_t call;
} aetask_method;

typedef struct aetask_handler {
        unsigned abi_version;                   /* AETASK_HANDLER_ABI_VERSION */
        const char *name;
        int (*setup)(aetask_worker *worker);    /* once per worker, before its first call */
        const aetask_method *methods;           /* ends with an entry whose name is NULL */
        aetask_method_t call;                   /* calls made without a method name */
        int (*checkout_done)(aetask_worker *worker);  /* when the client releases the checkout */
        /* Since ABI version 2: */
        aetask_interface_t interface;           /* every call that methods and call do not take */
        /* When the server starts, before any worker: OPTIONS is the list of
         * "key=value" strings (NULL-terminated).  Returns 0, or
         * aetask_worker_raise(worker, "...") naming the option at fault:
         * the server then refuses to start. */
        int (*check_options)(aetask_worker *worker, const char *const *options);
} aetask_handler;

/* A handler module exports its handler under this name. */
#define AETASK_HANDLER_SYMBOL "aetask_handler_module"
#define AETASK_HANDLER_MODULE(h) \
        __attribute__((visibility("default"))) const aetask_handler *const aetask_handler_module = &(h)

/* Records MESSAGE as the error of the current call and returns a negative
 * value to return from the method, setup or checkout-done hook. */
int aetask_worker_raise(aetask_worker *worker, const char *format, ...) __attribute__((format(printf, 2, 3)));
int aetask_worker_raisev(aetask_worker *worker, const char *format, va_list ap);

/* Logging, from setup, methods and the checkout-done hook.  Each message goes
 * to the journal at once (with the checkout's trace id, the handler, the
 * method and the worker) and back to the client with the reply, as do timers
 * and data.  PRIORITY is a syslog level, LOG_ERR to LOG_DEBUG.  A call's log
 * volume is bounded; what goes over is dropped and counted. */
int aetask_worker_log(aetask_worker *worker, int priority, const char *format, ...) __attribute__((format(printf, 3, 4)));
int aetask_worker_logv(aetask_worker *worker, int priority, const char *format, va_list ap);
#define aetask_log_debug(w, ...)   aetask_worker_log((w), LOG_DEBUG, __VA_ARGS__)
#define aetask_log_info(w, ...)    aetask_worker_log((w), LOG_INFO, __VA_ARGS__)
#define aetask_log_notice(w, ...)  aetask_worker_log((w), LOG_NOTICE, __VA_ARGS__)
#define aetask_log_warning(w, ...) aetask_worker_log((w), LOG_WARNING, __VA_ARGS__)
#define aetask_log_error(w, ...)   aetask_worker_log((w), LOG_ERR, __VA_ARGS__)

/* Starts a named timer; returns a handle for aetask_worker_timer_stop().  A
 * timer still running when the call ends is stopped then. */
int aetask_worker_timer_start(aetask_worker *worker, const char *name);
int aetask_worker_timer_stop(aetask_worker *worker, int timer);

/* Records KEY = VALUE; takes ownership of VALUE (as json_object_object_add). */
int aetask_worker_log_data(aetask_worker *worker, const char *key, json_object *value);

/* When the call running must be done by, CLOCK_MONOTONIC microseconds (as
 * sd_event_now() and clock_gettime() give them): the time the client gave
 * it, from when it arrived.  UINT64_MAX when the client gave none.  Past it
 * plus a grace (250 ms), the worker stops, and the client gets
 * AETASK_ERROR_DEADLINE. */
uint64_t aetask_worker_get_deadline(aetask_worker *worker);

/* The trace id of the checkout being served, or NULL. */
const char *aetask_worker_get_trace_id(aetask_worker *worker);

/* Options given to the server (aetaskd --option KEY=VALUE), or NULL. */
const char *aetask_worker_get_option(aetask_worker *worker, const char *key);
const char *aetask_worker_get_handler_name(aetask_worker *worker);
const char *aetask_worker_get_method(aetask_worker *worker);  /* NULL in a catch-all call */
unsigned aetask_worker_get_number(aetask_worker *worker);
/* The largest message the worker may send (aetaskd --max-message-size): a
 * result whose JSON text is longer fails instead of reaching the client. */
size_t aetask_worker_get_max_message_size(aetask_worker *worker);
void *aetask_worker_get_userdata(aetask_worker *worker);
void *aetask_worker_set_userdata(aetask_worker *worker, void *userdata);

#ifdef __cplusplus
}
#endif
