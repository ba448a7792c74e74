/* A maximum lifetime for worker connections, as HikariCP's maxLifetime: a
 * connection older than its lifetime is closed when released (or found
 * idle) instead of handed out again, and a fresh worker takes its place.
 * Each connection draws its own lifetime, the limit minus up to a fifth of
 * it at random, so that workers opened together (a pool's start, a burst)
 * are not all retired together either. */
#include <sys/random.h>
#include <unistd.h>

#include "client-internal.h"
#include "macro.h"

/* A fifth of the limit at most, as HikariCP's 2.5% but wider: pools here
 * are small, and a few workers need more room to spread. */
#define JITTER_DIVISOR 5

/* xorshift64: the jitter needs spread, not secrecy, and must not touch the
 * program's own random() state. */
static uint64_t client_random(aetask_client *c) {
        uint64_t x = c->random_state;

        if (x == 0) {
                if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != sizeof(x))
                        x = now_monotonic() ^ ((uint64_t) getpid() << 32);
                x |= 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c->random_state = x;
        return x;
}

uint64_t client_conn_expiry(aetask_client *c) {
        uint64_t limit = c->max_worker_lifetime, jitter;

        if (limit == 0)
                return USEC_INFINITY;
        jitter = client_random(c) % (limit / JITTER_DIVISOR + 1);
        return now_monotonic() + limit - jitter;
}

bool conn_lifetime_over(worker_conn *w) {
        if (w->expires_at == USEC_INFINITY || now_monotonic() < w->expires_at)
                return false;
        w->client->metrics.recycled_lifetime++;
        return true;
}

_public_ int aetask_client_set_max_worker_lifetime(aetask_client *c, uint64_t usec) {
        assert_return(c, -EINVAL);
        assert_return(!client_origin_changed(c), -ECHILD);
        c->max_worker_lifetime = usec == AETASK_TIMEOUT_INFINITY ? 0 : usec;
        /* Connections open already (min_workers opens some at attach)
         * draw theirs now, and count it from now. */
        list_node *lists[] = { &c->idle, &c->assigned, &c->connecting };
        for (size_t i = 0; i < ELEMENTSOF(lists); i++)
                for (list_node *n = lists[i]->next; n != lists[i]; n = n->next)
                        list_entry(n, worker_conn, node)->expires_at = client_conn_expiry(c);
        return 0;
}
