/* Who may connect to a worker socket.  A socket file's mode and group say
 * who may connect to it, but an abstract socket (unix:@NAME) has no file:
 * anyone on the machine can connect.  With allow lists (aetaskd
 * --allow-user, --allow-group), the server reads each connection's peer
 * credentials (SO_PEERCRED, and SO_PEERGROUPS for supplementary groups)
 * and serves only the users and groups listed, on any socket; the others
 * get io.aetask.PermissionDenied and are closed, before a worker is forked.
 * TCP carries no credentials, so allow lists and TCP sockets do not mix.
 * The control socket (control.c) shares the group check. */
#include "access.h"

#include <string.h>
#include <unistd.h>

#include "buffer.h"
#include "log.h"
#include "macro.h"
#include "protocol.h"
#include "server-internal.h"

#define PEER_GROUPS_MAX 256
#define REFUSAL_LOG_INTERVAL_USEC USEC_PER_SEC

bool access_fd_is_unix(int fd) {
        int domain = 0;
        socklen_t len = sizeof(domain);

        return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) >= 0 && domain == AF_UNIX;
}

bool access_in_group(int fd, const struct ucred *cred, gid_t gid) {
        gid_t groups[PEER_GROUPS_MAX];
        socklen_t len = sizeof(groups);

        if (cred->gid == gid)
                return true;
        /* Supplementary groups of the peer (Linux 4.13).  A peer in more
         * than PEER_GROUPS_MAX groups gets ERANGE, and is not a member. */
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
                return false;
        for (size_t i = 0; i < len / sizeof(gid_t); i++)
                if (groups[i] == gid)
                        return true;
        return false;
}

bool access_may_use_workers(aetask_server *s, int fd, struct ucred *ret_cred) {
        struct ucred cred = { .pid = 0, .uid = (uid_t) -1, .gid = (gid_t) -1 };
        socklen_t len = sizeof(cred);

        if (s->n_allowed_uids == 0 && s->n_allowed_gids == 0)
                return true;
        /* TCP has none: access_check_listen_fds() refused it at start. */
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || !access_fd_is_unix(fd)) {
                *ret_cred = cred;
                return false;
        }
        *ret_cred = cred;
        for (size_t i = 0; i < s->n_allowed_uids; i++)
                if (s->allowed_uids[i] == cred.uid)
                        return true;
        for (size_t i = 0; i < s->n_allowed_gids; i++)
                if (access_in_group(fd, &cred, s->allowed_gids[i]))
                        return true;
        return false;
}

void access_refuse(aetask_server *s, int fd, const struct ucred *cred) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        buffer b = {};

        if (protocol_append_error(&b, PROTOCOL_ERROR_PERMISSION_DENIED,
                                  "this user may not use this server (aetaskd --allow-user, --allow-group)", NULL) >= 0)
                (void) !send(fd, buffer_head(&b), buffer_length(&b), MSG_DONTWAIT | MSG_NOSIGNAL);
        buffer_done(&b);

        /* A stranger may connect in a loop: one line a second at most. */
        if (s->refusals_logged_at != 0 && now - s->refusals_logged_at < REFUSAL_LOG_INTERVAL_USEC) {
                s->refusals_unlogged++;
                return;
        }
        if (s->refusals_unlogged > 0)
                log_notice("Refusing a connection from pid %d uid %u: not an allowed user or group "
                           "(and %llu more since the last such message)",
                           cred->pid, cred->uid, (unsigned long long) s->refusals_unlogged);
        else
                log_notice("Refusing a connection from pid %d uid %u: not an allowed user or group",
                           cred->pid, cred->uid);
        s->refusals_logged_at = now;
        s->refusals_unlogged = 0;
}

int access_check_listen_fds(aetask_server *s) {
        if (s->n_allowed_uids == 0 && s->n_allowed_gids == 0)
                return 0;
        for (size_t i = 0; i < s->n_listen_fds; i++)
                if (!access_fd_is_unix(s->listen_fds[i])) {
                        log_error("Refusing to serve a TCP socket with --allow-user or --allow-group: "
                                  "TCP carries no peer credentials to check");
                        return -EAFNOSUPPORT;
                }
        return 0;
}
