/* Helpers for handler tests: a forked server running a handler module with
 * options, and calls on a checkout made synchronously by running the event
 * loop until their reply or error comes. */
#pragma once

#include <aetask/aetask-client.h>
#include <aetask/aetask-server.h>
#include <stdbool.h>

#include "helpers.h"

/* For test_server_start(): loads MODULE and sets OPTIONS ("KEY=VALUE",
 * ending with NULL) on the server. */
typedef struct test_module_config {
        const char *module;
        const char *options[8];
} test_module_config;

void test_configure_module(aetask_server *s, void *userdata);
/* What aetask_server_fork() returns for a server of CONFIG (a server that
 * did start is stopped at once): -EINVAL when the handler refuses the options. */
int test_module_fork(const test_module_config *config);

typedef struct test_checkout test_checkout;

/* One call's outcome. */
typedef struct test_reply {
        test_checkout *owner;     /* while the call is unanswered */
        bool done;
        bool failed;
        aetask_error_kind kind;
        char message[512];
        char text[4096];          /* the result as JSON text ("null" for null) */
        json_object *result;      /* owned; NULL for JSON null */
} test_reply;

/* A checkout whose error handler sends each error to the calls it ends. */
struct test_checkout {
        sd_event *event;
        aetask_checkout *checkout;
        test_reply *pending[32];  /* the unanswered calls, in order */
        unsigned n_pending;
};

void test_checkout_begin(test_checkout *t, aetask_client *client, sd_event *event);
/* Releases the checkout: its worker's checkout-done hook runs. */
void test_checkout_end(test_checkout *t);

/* Queues METHOD with the JSON array ARGS_FORMAT (printf-style) without waiting. */
void test_queue(test_checkout *t, test_reply *r, const char *method, const char *args_format, ...)
        __attribute__((format(printf, 4, 5)));
/* Runs the loop until R is answered (10 s at most). */
void test_wait(test_checkout *t, test_reply *r);

/* Calls and waits; the call must succeed.  Returns the result's JSON text. */
const char *test_call_ok(test_checkout *t, test_reply *r, const char *method, const char *args_format, ...)
        __attribute__((format(printf, 4, 5)));
/* Calls and waits; the call must fail.  Returns the error message. */
const char *test_call_fails(test_checkout *t, test_reply *r, const char *method, const char *args_format, ...)
        __attribute__((format(printf, 4, 5)));

void test_reply_clear(test_reply *r);
