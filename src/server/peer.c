/* Peer identities: the key the per-user share of workers is counted by. */
#include "peer.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

void peer_id_from_socket(int fd, peer_id *ret) {
        struct sockaddr_storage sa = {};
        socklen_t len = sizeof(sa);
        struct ucred cred = {};
        socklen_t clen = sizeof(cred);
        peer_id p = {};

        if (getpeername(fd, (struct sockaddr *) &sa, &len) < 0) {
                *ret = p;
                return;
        }
        if (sa.ss_family == AF_UNIX) {
                if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) >= 0) {
                        p.family = AF_UNIX;
                        p.uid = cred.uid;
                        p.pid = cred.pid;
                }
        } else if (sa.ss_family == AF_INET) {
                p.family = AF_INET;
                p.addr.in = ((struct sockaddr_in *) &sa)->sin_addr;
        } else if (sa.ss_family == AF_INET6) {
                const struct in6_addr *a = &((struct sockaddr_in6 *) &sa)->sin6_addr;
                if (IN6_IS_ADDR_V4MAPPED(a)) {
                        p.family = AF_INET;
                        memcpy(&p.addr.in, &a->s6_addr[12], sizeof(p.addr.in));
                } else {
                        /* A host is handed a /64: counting addresses inside
                         * it would let one host take every worker. */
                        p.family = AF_INET6;
                        memcpy(p.addr.in6.s6_addr, a->s6_addr, 8);
                }
        }
        *ret = p;
}

int peer_id_compare(const peer_id *a, const peer_id *b) {
        if (a->family != b->family)
                return a->family < b->family ? -1 : 1;
        switch (a->family) {
        case AF_UNIX:
                return a->uid < b->uid ? -1 : a->uid > b->uid;
        case AF_INET:
                return memcmp(&a->addr.in, &b->addr.in, sizeof(a->addr.in));
        case AF_INET6:
                return memcmp(&a->addr.in6, &b->addr.in6, sizeof(a->addr.in6));
        default:
                return 0;
        }
}

const char *peer_id_address_to_string(const peer_id *p, char buf[static PEER_ID_ADDRESS_MAX]) {
        char text[INET6_ADDRSTRLEN];

        if (p->family == AF_INET)
                snprintf(buf, PEER_ID_ADDRESS_MAX, "%s", inet_ntop(AF_INET, &p->addr.in, text, sizeof(text)) ?: "?");
        else if (p->family == AF_INET6)
                snprintf(buf, PEER_ID_ADDRESS_MAX, "%s/64", inet_ntop(AF_INET6, &p->addr.in6, text, sizeof(text)) ?: "?");
        else
                return NULL;
        return buf;
}

const char *peer_id_to_string(const peer_id *p, char buf[static PEER_ID_STRING_MAX]) {
        char address[PEER_ID_ADDRESS_MAX];

        if (p->family == AF_UNIX)
                snprintf(buf, PEER_ID_STRING_MAX, "uid %u", (unsigned) p->uid);
        else if (peer_id_address_to_string(p, address))
                snprintf(buf, PEER_ID_STRING_MAX, "address %s", address);
        else
                snprintf(buf, PEER_ID_STRING_MAX, "unknown");
        return buf;
}
