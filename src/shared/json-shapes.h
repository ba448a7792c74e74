/* Messages of the shapes that cost a JSON reader the most for their size:
 * many empty containers, deep nesting, tiny strings, long keys, numbers,
 * duplicate keys, members that are skipped, an unknown method.  The
 * hostile-peer tests and aetask-bench's parse workload send them, to check
 * and to show what reading a message costs (json-reader.h). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "buffer.h"

typedef enum json_shape_side {
        JSON_SHAPE_CALL,     /* a call, as a client sends it */
        JSON_SHAPE_REPLY,    /* a reply, as a worker sends it */
} json_shape_side;

/* The shapes' names, ending with NULL. */
extern const char *const json_shape_names[];

/* Whether SHAPE has a form on SIDE (an unknown method is a call's only). */
bool json_shape_fits(const char *shape, json_shape_side side);

/* Appends a message of SHAPE on SIDE, SIZE bytes long or a little less,
 * then its NUL.  Returns -EINVAL for an unknown shape, or -ENOMEM. */
int json_shape_append(buffer *b, const char *shape, json_shape_side side, size_t size);

/* A fake worker in a forked child: accepts one connection on LISTEN_FD,
 * answers the client's hello request, then its first call with REPLY (a
 * whole message, its NUL included), then waits for the end of the
 * connection, and exits. */
_Noreturn void json_shape_serve(int listen_fd, const buffer *reply);

/* Reads one message of any length from the blocking FD, keeping its first
 * SIZE - 1 bytes, NUL-terminated, in BUF.  Returns 0, or -EPIPE when the
 * connection ends first, or -errno. */
int json_shape_read_message(int fd, char *buf, size_t size);
