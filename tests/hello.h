/* The request that asks a worker for its greeting (aetask-protocol(7)):
 * a worker writes nothing unasked, so a raw connection that wants to know
 * a worker has it sends this first. */
#pragma once

#include <sys/socket.h>

#define HELLO_REQUEST "{\"method\":\"io.aetask.Hello\"}"

/* 0, or -1 when it could not be sent (no test assertion: usable in a forked
 * child). */
static inline int send_hello(int fd) {
        static const char request[] = HELLO_REQUEST;  /* with its NUL */
        return send(fd, request, sizeof(request), MSG_NOSIGNAL) == (ssize_t) sizeof(request) ? 0 : -1;
}
