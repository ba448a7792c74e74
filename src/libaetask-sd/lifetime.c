/* A maximum lifetime for worker connections, as HikariCP's maxLifetime: a
 * connection older than its lifetime is closed when released, or when idle
 * (one timer per client, armed for the earliest expiry), instead of being
 * handed out again, and a fresh worker takes its place.
 * Each connection draws its own lifetime, the limit minus up to a fifth of
 * it at random, so that workers opened together (a pool's start, a burst)
 * are not all retired together either. */
#include <sys/random.h>
#include <unistd.h>

#include "client-internal.h"
#include "macro.h"
#include "time-util.h"

/* A fifth of the limit at most, as HikariCP's 2.5% but wider: pools here
 * are small, and a few workers need more room to spread. */
#define JITTER_DIVISOR 5
/* Closing an idle worker a little late costs nothing; waking often does. */
#define LIFETIME_ACCURACY (10 * USEC_PER_MSEC)

/* xorshift64: the jitter needs spread, not secrecy, and must not touch the
 * program's own random() state. */
static uint64_t client_random(aetask_client *c) {
        uint64_t x = c->random_state;

        if (x == 0) {
                if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != sizeof(x))
                        x = now_usec(CLOCK_MONOTONIC) ^ ((uint64_t) getpid() << 32);
                x |= 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c->random_state = x;
        return x;
}

static int on_lifetime_timer(sd_event_source *s, uint64_t usec, void *userdata);

/* Idle connections past their lifetime go; the timer is armed again for
 * the next expiry of any connection (a busy one may be idle by then). */
static void client_expire_idle(aetask_client *c) {
        uint64_t next = USEC_INFINITY;
        list_node *n, *t;

        list_for_each_safe(n, t, &c->idle)
                if (conn_lifetime_over(list_entry(n, worker_conn, node)))
                        conn_free(list_entry(n, worker_conn, node));
        list_node *lists[] = { &c->idle, &c->assigned, &c->connecting };
        for (size_t i = 0; i < ELEMENTSOF(lists); i++)
                list_for_each_safe(n, t, lists[i])
                        next = MIN(next, list_entry(n, worker_conn, node)->expires_at);
        if (next != USEC_INFINITY)
                client_arm_timer_by(c, &c->lifetime_source, next, LIFETIME_ACCURACY, on_lifetime_timer,
                                    "aetask-client-worker-lifetime");
}

static int on_lifetime_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        aetask_client *c = userdata;
        /* Opening connections for min_workers may fail, and report. */
        _cleanup_(aetask_client_unrefp) aetask_client *held = client_hold(c);

        if (!held)
                return 0;
        client_expire_idle(c);
        client_dispatch(c);
        return 0;
}

uint64_t client_conn_expiry(aetask_client *c) {
        uint64_t limit = c->max_worker_lifetime, jitter, expiry;

        if (limit == 0)
                return USEC_INFINITY;
        jitter = client_random(c) % (limit / JITTER_DIVISOR + 1);
        expiry = now_usec(CLOCK_MONOTONIC) + limit - jitter;
        client_arm_timer_by(c, &c->lifetime_source, expiry, LIFETIME_ACCURACY, on_lifetime_timer,
                            "aetask-client-worker-lifetime");
        return expiry;
}

void client_stop_lifetime_timer(aetask_client *c) {
        c->lifetime_source = sd_event_source_disable_unref(c->lifetime_source);
}

bool conn_lifetime_over(worker_conn *w) {
        if (w->expires_at == USEC_INFINITY || now_usec(CLOCK_MONOTONIC) < w->expires_at)
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
