/* Socket addresses in varlinkctl's form: unix:/path, unix:@abstract and
 * tcp:HOST:PORT, parsed once and then connected to or listened on. */
#pragma once

#include <stdbool.h>
#include <sys/socket.h>

typedef struct socket_address {
        struct sockaddr_storage sa;
        socklen_t len;
        int family;
} socket_address;

/* Parses ADDRESS; tcp host names are resolved here, once. */
int socket_address_parse(socket_address *ret, const char *address);

/* Non-blocking connect: returns the fd (connected or, for tcp, with the
 * connect in progress, in which case *ret_in_progress is set), or -errno. */
int socket_address_connect(const socket_address *a, bool *ret_in_progress);

/* Blocking connect, for command line tools. */
int socket_address_connect_blocking(const socket_address *a);

/* Binds and listens.  A stale unix socket file (nobody accepting on it) is
 * replaced; a live one is -EADDRINUSE. */
int socket_address_listen(const socket_address *a, int backlog);

/* Where the units' sockets are: NAME.sock and NAME.control (aetask@.socket,
 * aetask-control@.socket); $AETASK_RUNTIME_DIR overrides. */
#define UNIT_RUNTIME_DIR "/run/aetask"

/* A handler name, as aetaskd takes for --handler and units for their
 * instance: 1 to 64 ASCII letters, digits, '_' and '-'. */
bool unit_name_is_valid(const char *name);

/* "unix:DIR/NAME" SUFFIX into BUF: -EINVAL for a NAME that is not a handler
 * name, -ENAMETOOLONG if it does not fit. */
int unit_address(const char *name, const char *suffix, char *buf, size_t size);

/* The path of a unix socket file, or NULL for abstract and tcp sockets. */
const char *socket_address_path(const socket_address *a);
