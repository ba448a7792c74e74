/* What a handler logs during one call: messages, timers and data, kept to
 * send back with the reply and written to the journal as they come.  The
 * volume per call is bounded; what goes over is counted, not kept.  Entries
 * are written as JSON when they are logged, straight into the bytes the
 * reply carries: no json-c tree is built for them. */
#pragma once

#include <json-c/json.h>
#include <stdint.h>

#include "buffer.h"

#define WORKER_LOG_MAX_ENTRIES 1000
#define WORKER_LOG_MAX_BYTES (256U * 1024U)
#define WORKER_LOG_MAX_TIMERS 64

typedef struct open_timer {
        char *name;
        uint64_t start_realtime, start_monotonic;
} open_timer;

typedef struct worker_log {
        /* Who is logging, for the journal's fields; set by the worker. */
        const char *handler;
        unsigned number;
        const char *method;
        char trace[65];

        /* The elements of the messages and timers arrays and the members of
         * the data object, comma-separated; logs is the object made of them
         * by worker_log_end(). */
        buffer messages, timers, data, logs;
        unsigned n_entries, dropped;
        size_t bytes;
        open_timer open[WORKER_LOG_MAX_TIMERS];
        unsigned n_open;
} worker_log;

void worker_log_begin(worker_log *l, const char *trace, const char *method);
/* Closes timers left running and returns the call's logs for the reply: a
 * JSON object as NUL-terminated text, valid until the next call's
 * worker_log_begin(), or NULL when nothing was logged. */
const char *worker_log_end(worker_log *l);
void worker_log_done(worker_log *l);

int worker_log_message(worker_log *l, int priority, const char *text);
int worker_log_timer_start(worker_log *l, const char *name);
int worker_log_timer_stop(worker_log *l, int timer);
/* Takes VALUE's reference.  -EINVAL for a value that is not JSON (a string
 * that is not UTF-8, nesting deeper than JSON_MAX_DEPTH). */
int worker_log_data(worker_log *l, const char *key, json_object *value);
/* The worker's own entry for a call that ended after DURATION usec, ERROR
 * its message if it failed, at PRIORITY (the server's call log level),
 * written only when the server's log level lets it through. */
void worker_log_call(worker_log *l, int priority, uint64_t duration, const char *error);
