/* Who is at the other end of a connection, for sharing the workers fairly:
 * a user (peer credentials on a unix socket) or, over TCP where there are
 * none, a source address (an IPv6 one by its /64, what one host is given). */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <sys/types.h>

typedef struct peer_id {
        int family;                    /* AF_UNIX: by uid; AF_INET, AF_INET6: by address; 0: unknown */
        uid_t uid;                     /* AF_UNIX only */
        pid_t pid;                     /* AF_UNIX only, not part of the identity */
        union {
                struct in_addr in;
                struct in6_addr in6;   /* the host bits are cleared */
        } addr;
} peer_id;

#define PEER_ID_ADDRESS_MAX (INET6_ADDRSTRLEN + 3)
#define PEER_ID_STRING_MAX (PEER_ID_ADDRESS_MAX + 8)

/* Reads the peer of connection FD; an unknown peer (no credentials, no
 * address) is one identity of its own. */
void peer_id_from_socket(int fd, peer_id *ret);
int peer_id_compare(const peer_id *a, const peer_id *b);
/* "uid 1000", "address 192.0.2.7", "address 2001:db8::/64", "unknown". */
const char *peer_id_to_string(const peer_id *p, char buf[static PEER_ID_STRING_MAX]);
/* "192.0.2.7", "2001:db8::/64"; NULL for a peer with no address. */
const char *peer_id_address_to_string(const peer_id *p, char buf[static PEER_ID_ADDRESS_MAX]);
