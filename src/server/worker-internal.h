/* The worker process's state, shared by worker.c (its life: setup of the
 * process, reading, retiring) and worker-call.c (running one message). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "buffer.h"
#include "server-internal.h"
#include "worker-log.h"

struct aetask_worker {
        aetask_server *server;
        const aetask_handler *handler;
        scoreboard_slot *slot;
        unsigned number;
        const char *method;
        char *error;
        void *userdata;
        bool setup_done;
        int setup_result;              /* of the handler's setup, once done */
        char *setup_error;             /* its message, for the first call's answer */
        bool in_checkout;              /* a call came since the last Done */
        const char *outcome;           /* the error the last reply carried, or NULL (metrics.c) */
        uint64_t deadline;             /* of the call running (CLOCK_MONOTONIC), or UINT64_MAX */
        worker_log log;
        size_t scanned;                /* of the client's bytes, for framing */
        int fd;                        /* the client's connection */
};

/* The message of a failed handler step: what it raised, or its errno. */
const char *worker_error_message(aetask_worker *w, int r);
void worker_clear_error(aetask_worker *w);
/* Runs the handler's setup, once: before the first call, or at once in a
 * spare.  A failure is answered to the first call, which ends the worker. */
void worker_setup(aetask_worker *w);
/* Handles the message S of LEN bytes, appending its answer to OUT.  Returns
 * < 0 when the worker must end once OUT is written (-EPIPE: at once, the
 * client is gone). */
int worker_handle_message(aetask_worker *w, const char *s, size_t len, buffer *out);
