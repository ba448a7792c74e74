/* Who may connect, by peer credentials: see access.c. */
#pragma once

#include <stdbool.h>
#include <sys/socket.h>

typedef struct aetask_server aetask_server;

/* Whether FD is a unix socket: only those carry peer credentials. */
bool access_fd_is_unix(int fd);

/* Whether the peer on FD, whose credentials are CRED, has GID as its
 * primary group or one of its supplementary groups. */
bool access_in_group(int fd, const struct ucred *cred, gid_t gid);

/* Whether the allow lists (--allow-user, --allow-group) let the peer on
 * FD use a worker: true when there are none. */
bool access_may_use_workers(aetask_server *s, int fd, struct ucred *ret_cred);

/* Tells a peer refused by access_may_use_workers() why, and logs it, at most
 * once a second with a count of those left unlogged. */
void access_refuse(aetask_server *s, int fd, const struct ucred *cred);

/* Checks, before serving, that every socket the allow lists apply to is a
 * unix socket.  Returns 0 or a logged -EAFNOSUPPORT. */
int access_check_listen_fds(aetask_server *s);
