/* Helpers for the hostile-peer and fault tests: a server whose log goes to a
 * file, raw protocol connections, and checks that a server is back where it
 * started (no zombie workers, no descriptors left open). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "helpers.h"

/* 1 in a build with AddressSanitizer, whose quarantine keeps freed memory
 * resident: memory-growth checks hold in the other builds only. */
#if defined(__SANITIZE_ADDRESS__)
#  define UNDER_ASAN 1
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define UNDER_ASAN 1
#  endif
#endif
#ifndef UNDER_ASAN
#  define UNDER_ASAN 0
#endif

typedef struct logged_server {
        test_server t;
        char log[256];                 /* its stderr, at debug level */
        int base_fds;                  /* open descriptors when idle */
} logged_server;

/* Starts a server as test_server_start() does, with its stderr (every worker's
 * start and end, at debug level) going to a file, and notes its idle fd count. */
void logged_server_start(logged_server *s, const aetask_handler *handler,
                         test_server_configure_t configure, void *userdata);
void logged_server_cleanup(logged_server *s);

/* Waits until the log holds TEXT (at least N times); fails the test after
 * MAX_SECONDS.  Returns the count. */
int log_wait_for(logged_server *s, const char *text, int n, double max_seconds);
int log_count(logged_server *s, const char *text);

/* Children of PID that are zombies, and all children. */
int count_zombies(pid_t pid);
int count_children(pid_t pid);

/* Waits until S has no worker left, no zombie, and its idle fd count;
 * fails the test after MAX_SECONDS. */
void server_wait_settled(logged_server *s, double max_seconds);

/* A call through libaetask-sd on a client of its own, freed afterwards: the
 * server still serves. */
void server_check_serves(logged_server *s);

/* A raw connection: connects, and reads the worker's greeting unless
 * SKIP_GREETING. */
int raw_connect(const char *path, bool skip_greeting);

/* A listening unix socket in a temporary folder of its own, for a fake
 * peer (a fake worker or server) the test forks. */
typedef struct raw_listener {
        char dir[64], path[100], address[128];   /* address: "unix:PATH" */
} raw_listener;
/* Returns the listening socket; the folder is /tmp/PREFIX-XXXXXX. */
int raw_listen(raw_listener *l, const char *prefix, int backlog);
/* Removes the socket file and its folder, once; a zeroed L is left alone. */
void raw_listener_remove(raw_listener *l);
/* Reads one NUL-terminated message (without the NUL) into BUF; returns its
 * length, 0 on end of file, or -ETIMEDOUT after MAX_SECONDS. */
ssize_t raw_read_message(int fd, char *buf, size_t size, double max_seconds);
/* Reads until end of file; returns the seconds it took, or < 0 after MAX_SECONDS. */
double raw_wait_eof(int fd, double max_seconds);
void raw_send(int fd, const void *data, size_t size);

