/* Test helpers: a real aetask server forked on a temporary unix socket, and
 * an sd-event loop run until a condition holds (or a deadline fails the test). */
#pragma once

#include <aetask/aetask-client.h>
#include <aetask/aetask-server.h>
#include <stdbool.h>
#include <sys/types.h>

#include "fd-count.h"

typedef struct test_server {
        char dir[128];
        char path[192];
        char address[200];
        pid_t pid;
        int keepalive_fd;
} test_server;

typedef void (*test_server_configure_t)(aetask_server *s, void *userdata);

/* Picks a fresh address without starting anything (for "server not yet up"). */
void test_server_init(test_server *t);

/* Forks a server running HANDLER, or the echo module when HANDLER is NULL;
 * CONFIGURE may set options before it forks. */
void test_server_start(test_server *t, const aetask_handler *handler,
                       test_server_configure_t configure, void *userdata);
/* Closes the keep-alive pipe and waits for the server to exit. */
void test_server_stop(test_server *t);
/* Removes the temporary folder. */
void test_server_cleanup(test_server *t);

/* A client on a new event loop for T's address. */
aetask_client *test_client_new(test_server *t, sd_event **ret_event);

/* CLOCK_MONOTONIC in seconds. */
double now_seconds(void);

/* Runs EVENT until *DONE is true; fails the test after MAX_SECONDS. */
void test_run_until(sd_event *event, const bool *done, double max_seconds);
/* Runs EVENT for SECONDS. */
void test_run_for(sd_event *event, double seconds);

