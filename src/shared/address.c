/* Socket addresses: parsing varlinkctl-style strings, connecting, listening. */
#include "address.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "macro.h"

static int parse_unix(socket_address *ret, const char *path) {
        struct sockaddr_un *un = (struct sockaddr_un *) &ret->sa;
        size_t l = strlen(path);

        if (l == 0 || l >= sizeof(un->sun_path))
                return -EINVAL;

        memset(ret, 0, sizeof(*ret));
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, path, l);
        if (path[0] == '@') {
                /* Abstract namespace: a leading NUL, and the length says where it ends. */
                un->sun_path[0] = 0;
                ret->len = offsetof(struct sockaddr_un, sun_path) + l;
        } else {
                if (path[0] != '/')
                        return -EINVAL;
                ret->len = offsetof(struct sockaddr_un, sun_path) + l + 1;
        }
        ret->family = AF_UNIX;
        return 0;
}

static int parse_tcp(socket_address *ret, const char *hostport) {
        _cleanup_(freep) char *host = NULL;
        const char *port;
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG }, *res = NULL;
        int r;

        if (hostport[0] == '[') {
                const char *end = strchr(hostport, ']');
                if (!end || end[1] != ':')
                        return -EINVAL;
                host = strndup(hostport + 1, end - hostport - 1);
                port = end + 2;
        } else {
                const char *colon = strrchr(hostport, ':');
                if (!colon)
                        return -EINVAL;
                host = strndup(hostport, colon - hostport);
                port = colon + 1;
        }
        if (!host)
                return -ENOMEM;
        if (!*host || !*port)
                return -EINVAL;

        r = getaddrinfo(host, port, &hints, &res);
        if (r != 0)
                return r == EAI_MEMORY ? -ENOMEM : r == EAI_SYSTEM ? -errno : -EADDRNOTAVAIL;

        memset(ret, 0, sizeof(*ret));
        memcpy(&ret->sa, res->ai_addr, res->ai_addrlen);
        ret->len = res->ai_addrlen;
        ret->family = res->ai_family;
        freeaddrinfo(res);
        return 0;
}

int socket_address_parse(socket_address *ret, const char *address) {
        if (!address)
                return -EINVAL;
        if (strncmp(address, "unix:", 5) == 0)
                return parse_unix(ret, address + 5);
        if (strncmp(address, "tcp:", 4) == 0)
                return parse_tcp(ret, address + 4);
        return -EINVAL;
}

const char *socket_address_path(const socket_address *a) {
        const struct sockaddr_un *un = (const struct sockaddr_un *) &a->sa;

        if (a->family != AF_UNIX || un->sun_path[0] == 0)
                return NULL;
        return un->sun_path;
}

static int socket_for(const socket_address *a, int extra_flags) {
        int fd = socket(a->family, SOCK_STREAM | SOCK_CLOEXEC | extra_flags, 0);
        if (fd < 0)
                return -errno;
        if (a->family != AF_UNIX) {
                /* Requests and replies are small and latency-bound. */
                int one = 1;
                (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        return fd;
}

int socket_address_connect(const socket_address *a, bool *ret_in_progress) {
        _cleanup_(closep) int fd = -1;

        fd = socket_for(a, SOCK_NONBLOCK);
        if (fd < 0)
                return fd;

        *ret_in_progress = false;
        if (connect(fd, (const struct sockaddr *) &a->sa, a->len) < 0) {
                if (errno != EINPROGRESS)
                        return -errno;
                *ret_in_progress = true;
        }
        return TAKE_FD(fd);
}

int socket_address_connect_blocking(const socket_address *a) {
        _cleanup_(closep) int fd = -1;

        fd = socket_for(a, 0);
        if (fd < 0)
                return fd;
        if (connect(fd, (const struct sockaddr *) &a->sa, a->len) < 0)
                return -errno;
        return TAKE_FD(fd);
}

static int unlink_if_stale(const socket_address *a) {
        const char *path = socket_address_path(a);
        struct stat st;
        int fd;

        if (!path || lstat(path, &st) < 0)
                return 0;
        if (!S_ISSOCK(st.st_mode))
                return -EEXIST;

        fd = socket_address_connect_blocking(a);
        if (fd >= 0) {
                close(fd);
                return -EADDRINUSE;
        }
        if (fd != -ECONNREFUSED)
                return fd;
        return unlink(path) < 0 ? -errno : 0;
}

int socket_address_listen(const socket_address *a, int backlog) {
        _cleanup_(closep) int fd = -1;
        int r;

        fd = socket_for(a, SOCK_NONBLOCK);
        if (fd < 0)
                return fd;

        if (a->family == AF_UNIX) {
                r = unlink_if_stale(a);
                if (r < 0)
                        return r;
        } else {
                int one = 1;
                (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        }

        if (bind(fd, (const struct sockaddr *) &a->sa, a->len) < 0)
                return -errno;
        if (listen(fd, backlog) < 0)
                return -errno;
        return TAKE_FD(fd);
}

bool unit_name_is_valid(const char *name) {
        if (!name || !*name || strlen(name) > 64)
                return false;
        for (const char *p = name; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      *p == '_' || *p == '-'))
                        return false;
        return true;
}

int unit_address(const char *name, const char *suffix, char *buf, size_t size) {
        const char *dir = getenv("AETASK_RUNTIME_DIR") ?: UNIT_RUNTIME_DIR;

        /* A leading '-' would read as an option in aetaskctl. */
        if (!unit_name_is_valid(name) || name[0] == '-')
                return -EINVAL;
        int n = snprintf(buf, size, "unix:%s/%s%s", dir, name, suffix);
        if (n < 0 || (size_t) n >= size)
                return -ENAMETOOLONG;
        return 0;
}
