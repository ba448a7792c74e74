/* The client object: its options, its event loop, and the pool logic that
 * matches waiting checkouts with worker connections. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "client-internal.h"
#include "macro.h"
#include "protocol.h"

#define DEFAULT_MIN_WORKERS 2
#define DEFAULT_MAX_WORKERS 20
#define DEFAULT_TIMEOUT_USEC (30 * USEC_PER_SEC)
#define RETRY_MIN_USEC (10 * USEC_PER_MSEC)
#define RETRY_MAX_USEC (500 * USEC_PER_MSEC)

void client_log_debug(const char *format, ...) {
        /* Any thread may be first to ask: each that does stores the same answer. */
        static int enabled = -1;
        int on = __atomic_load_n(&enabled, __ATOMIC_RELAXED);
        va_list ap;

        if (on < 0) {
                on = !!getenv("AETASK_DEBUG");
                __atomic_store_n(&enabled, on, __ATOMIC_RELAXED);
        }
        if (!on)
                return;
        va_start(ap, format);
        fputs("libaetask-sd: ", stderr);
        vfprintf(stderr, format, ap);
        fputc('\n', stderr);
        va_end(ap);
}

/* getpid() is a system call, and every call and checkout asks: the pid is
 * cached, and forgotten in a child forked with fork() (as sd-event does). */
static pid_t cached_pid;

static void forget_cached_pid(void) {
        __atomic_store_n(&cached_pid, 0, __ATOMIC_RELAXED);
}

static void register_forget_cached_pid(void) {
        (void) pthread_atfork(NULL, NULL, forget_cached_pid);
}

static pid_t getpid_cached(void) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pid_t pid = __atomic_load_n(&cached_pid, __ATOMIC_RELAXED);

        if (_likely_(pid != 0))
                return pid;
        (void) pthread_once(&once, register_forget_cached_pid);
        pid = getpid();
        __atomic_store_n(&cached_pid, pid, __ATOMIC_RELAXED);
        return pid;
}

bool client_origin_changed(aetask_client *c) {
        return c->origin_pid != getpid_cached();
}

bool checkout_origin_changed(aetask_checkout *co) {
        return co->origin_pid != getpid_cached();
}

bool slot_origin_changed(aetask_slot *slot) {
        return slot->origin_pid != getpid_cached();
}

_public_ int aetask_client_new(aetask_client **ret, const char *address) {
        _cleanup_(freep) aetask_client *c = NULL;
        int r;

        assert_return(ret, -EINVAL);
        assert_return(address, -EINVAL);

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        r = socket_address_parse(&c->sockaddr, address);
        if (r < 0)
                return r;
        c->address = strdup(address);
        if (!c->address)
                return -ENOMEM;

        c->n_ref = 1;
        c->origin_pid = getpid_cached();
        c->min_workers = DEFAULT_MIN_WORKERS;
        c->max_workers = DEFAULT_MAX_WORKERS;
        c->timeout = DEFAULT_TIMEOUT_USEC;
        c->max_message_size = PROTOCOL_DEFAULT_MESSAGE_SIZE_MAX;
        list_init(&c->idle);
        list_init(&c->assigned);
        list_init(&c->connecting);
        list_init(&c->waiting);
        list_init(&c->checkouts);
        list_init(&c->pending_reports);

        *ret = TAKE_PTR(c);
        return 0;
}

_public_ int aetask_client_new_handler(aetask_client **ret, const char *name) {
        char address[4096];
        int r;

        assert_return(ret, -EINVAL);
        assert_return(unit_name_is_valid(name), -EINVAL);

        r = unit_address(name, ".sock", address, sizeof(address));
        if (r < 0)
                return r;
        return aetask_client_new(ret, address);
}

/* Cancels what is outstanding (each checkout gets the error once, and
 * forgets its client) and closes every connection.  c->freeing is set
 * throughout, so that nothing dispatches new connections meanwhile. */
static void client_drop_pool(aetask_client *c, const char *why) {
        bool was_freeing = c->freeing;
        list_node *n, *t;

        c->freeing = true;
        /* One at a time from the head: the error handlers may end other
         * checkouts (and no new one can be made while freeing). */
        while (!list_is_empty(&c->checkouts))
                checkout_cancel(list_first_entry(&c->checkouts, aetask_checkout, client_node), why);
        list_node *lists[] = { &c->idle, &c->connecting, &c->assigned };
        for (size_t i = 0; i < ELEMENTSOF(lists); i++)
                list_for_each_safe(n, t, lists[i])
                        conn_free(list_entry(n, worker_conn, node));
        c->freeing = was_freeing;
}

static void client_free(aetask_client *c) {
        client_drop_pool(c, "the client was freed with the checkout outstanding");
        c->freeing = true;
        aetask_client_detach_event(c);
        heap_done(&c->timeouts);
        buffer_done(&c->scratch);
        free(c->name);
        free(c->address);
        free(c);
}

_public_ aetask_client *aetask_client_ref(aetask_client *c) {
        if (!c)
                return NULL;
        c->n_ref++;
        return c;
}

aetask_client *client_hold(aetask_client *c) {
        return c->freeing ? NULL : aetask_client_ref(c);
}

_public_ aetask_client *aetask_client_unref(aetask_client *c) {
        if (!c)
                return NULL;
        /* In a forked child the connections and checkouts are the parent's:
         * cancelling them here would run the parent's error handlers. */
        if (client_origin_changed(c))
                return NULL;
        if (--c->n_ref == 0)
                client_free(c);
        return NULL;
}

_public_ int aetask_client_set_name(aetask_client *c, const char *name) {
        assert_return(c, -EINVAL);
        assert_return(!client_origin_changed(c), -ECHILD);

        char *copy = NULL;
        if (name && !(copy = strdup(name)))
                return -ENOMEM;
        free(c->name);
        c->name = copy;
        return 0;
}

_public_ const char *aetask_client_get_name(aetask_client *c) {
        assert_return(c, NULL);
        assert_return(!client_origin_changed(c), NULL);
        return c->name;
}

_public_ int aetask_client_set_min_workers(aetask_client *c, unsigned n) {
        assert_return(c, -EINVAL);
        assert_return(!client_origin_changed(c), -ECHILD);
        c->min_workers = n;
        if (c->event)
                client_dispatch(c);
        return 0;
}

_public_ int aetask_client_set_max_workers(aetask_client *c, unsigned n) {
        assert_return(c, -EINVAL);
        assert_return(n > 0, -EINVAL);
        assert_return(!client_origin_changed(c), -ECHILD);
        c->max_workers = n;
        /* Idle connections over the new limit go now; busy ones when released. */
        while (c->n_workers > n && !list_is_empty(&c->idle))
                conn_free(list_first_entry(&c->idle, worker_conn, node));
        return 0;
}

_public_ int aetask_client_set_timeout(aetask_client *c, uint64_t usec) {
        assert_return(c, -EINVAL);
        assert_return(usec > 0, -EINVAL);
        assert_return(!client_origin_changed(c), -ECHILD);
        c->timeout = usec;
        return 0;
}

_public_ int aetask_client_set_max_checkouts(aetask_client *c, unsigned n) {
        assert_return(c, -EINVAL);
        assert_return(!client_origin_changed(c), -ECHILD);
        c->max_checkouts = n;
        return 0;
}

_public_ int aetask_client_set_dont_refork_after_error(aetask_client *c, int b) {
        assert_return(c, -EINVAL);
        assert_return(!client_origin_changed(c), -ECHILD);
        c->dont_refork_after_error = !!b;
        return 0;
}

_public_ int aetask_client_set_max_message_size(aetask_client *c, size_t size) {
        assert_return(c, -EINVAL);
        assert_return(size >= PROTOCOL_MESSAGE_SIZE_MIN && size <= PROTOCOL_MESSAGE_SIZE_LIMIT, -EINVAL);
        assert_return(!client_origin_changed(c), -ECHILD);
        c->max_message_size = size;
        return 0;
}

_public_ int aetask_client_set_error_handler(aetask_client *c, aetask_error_handler_t callback, void *userdata) {
        assert_return(c, -EINVAL);
        assert_return(!client_origin_changed(c), -ECHILD);
        c->error_handler = callback;
        c->error_userdata = userdata;
        return 0;
}

_public_ int aetask_client_get_pool(aetask_client *c, unsigned *ret_workers, unsigned *ret_idle, unsigned *ret_queued) {
        unsigned idle = 0;
        list_node *n, *t;

        assert_return(c, -EINVAL);
        assert_return(!client_origin_changed(c), -ECHILD);
        list_for_each_safe(n, t, &c->idle)
                idle++;
        if (ret_workers)
                *ret_workers = c->n_workers;
        if (ret_idle)
                *ret_idle = idle;
        if (ret_queued)
                *ret_queued = c->n_waiting;
        return 0;
}

/* The smaller of min and max workers: min is clamped to max. */
static unsigned client_min_workers(aetask_client *c) {
        return MIN(c->min_workers, c->max_workers);
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        client_dispatch(userdata);
        return 0;
}

/* A connect failed: the server may be starting, or restarting.  Try again
 * soon, backing off, for as long as somebody wants a worker. */
void client_schedule_retry(aetask_client *c) {
        uint64_t delay = RETRY_MIN_USEC << MIN(c->retry_attempt, 10U);
        uint64_t now;
        int r;

        delay = MIN(delay, RETRY_MAX_USEC);
        c->retry_attempt++;

        if (!c->event || sd_event_now(c->event, CLOCK_MONOTONIC, &now) < 0)
                return;

        if (!c->retry_source) {
                r = sd_event_add_time(c->event, &c->retry_source, CLOCK_MONOTONIC, now + delay,
                                      USEC_PER_MSEC, on_retry, c);
                if (r < 0) {
                        client_log_debug("Failed to add retry timer: %s", strerror(-r));
                        return;
                }
                (void) sd_event_source_set_priority(c->retry_source, c->priority);
                (void) sd_event_source_set_description(c->retry_source, "aetask-client-retry");
        } else {
                int enabled = SD_EVENT_OFF;
                (void) sd_event_source_get_enabled(c->retry_source, &enabled);
                if (enabled != SD_EVENT_OFF)
                        return;  /* already scheduled */
                (void) sd_event_source_set_time(c->retry_source, now + delay);
        }
        (void) sd_event_source_set_enabled(c->retry_source, SD_EVENT_ONESHOT);
}

static bool client_retry_pending(aetask_client *c) {
        int enabled = SD_EVENT_OFF;

        if (c->retry_source)
                (void) sd_event_source_get_enabled(c->retry_source, &enabled);
        return enabled != SD_EVENT_OFF;
}

void client_enqueue_checkout(aetask_client *c, aetask_checkout *co, bool front) {
        if (co->state != CHECKOUT_IDLE)
                return;
        co->state = CHECKOUT_WAITING;
        if (front)
                list_insert_before(c->waiting.next, &co->wait_node);
        else
                list_append(&c->waiting, &co->wait_node);
        c->n_waiting++;
}

static unsigned list_count(const list_node *head) {
        unsigned n = 0;
        for (const list_node *i = head->next; i != head; i = i->next)
                n++;
        return n;
}

void client_dispatch(aetask_client *c) {
        if (c->freeing || !c->event)
                return;
        if (c->in_reply_callback > 0) {
                /* See checkout_deliver_reply(). */
                c->dispatch_deferred = true;
                return;
        }
        /* A worker handed out sends its checkout's first call, and a failed
         * send runs that checkout's error handler. */
        _cleanup_(aetask_client_unrefp) aetask_client *held = client_hold(c);

        for (;;) {
                /* Hand idle workers to waiting checkouts, first come first served. */
                while (!list_is_empty(&c->waiting) && !list_is_empty(&c->idle)) {
                        worker_conn *w = list_first_entry(&c->idle, worker_conn, node);
                        aetask_checkout *co = list_first_entry(&c->waiting, aetask_checkout, wait_node);

                        checkout_leave_queue(co);
                        conn_assign(w, co);
                }

                /* Open connections for what is still waiting, and for hot standby. */
                unsigned want = MAX(c->n_waiting, client_min_workers(c) > c->n_workers ? client_min_workers(c) - c->n_workers : 0);
                unsigned connecting = list_count(&c->connecting);
                if (want <= connecting || c->n_workers >= c->max_workers || client_retry_pending(c))
                        return;

                worker_conn *w;
                int r = conn_open(c, &w);
                if (r < 0) {
                        client_connect_failed(c, -r);
                        return;
                }
                /* retry_attempt is reset by the worker's greeting, not here:
                 * a server at its cap accepts, refuses and closes, and
                 * reconnects must keep backing off all the same. */
        }
}

/* The server is there but will not let us in: waiting longer changes
 * nothing a program can fix by waiting, so the waiting checkouts fail now
 * (from the loop: the connect may have been tried inside a call), and say
 * why.  A server not there yet (ENOENT, ECONNREFUSED) is waited for, as
 * the seed waits: "the client may start before the server". */
void client_connect_failed(aetask_client *c, int error) {
        if (error != c->last_connect_error)  /* the first of a run, not every retry */
                client_log_debug("Failed to connect to %s: %s", c->address, strerror(error));
        c->last_connect_error = error;
        client_schedule_retry(c);
        if (error == EACCES || error == EPERM) {
                c->connect_denied = error;
                if (c->defer_source)
                        (void) sd_event_source_set_enabled(c->defer_source, SD_EVENT_ONESHOT);
        }
}

static void client_fail_waiting(aetask_client *c, int error) {
        char message[512];

        snprintf(message, sizeof(message), "connecting to %s failed: %s", c->address, strerror(error));
        while (!list_is_empty(&c->waiting) && !c->freeing)
                checkout_fail(list_first_entry(&c->waiting, aetask_checkout, wait_node), AETASK_ERROR_CONNECT, message);
}

static int on_defer(sd_event_source *s, void *userdata) {
        aetask_client *c = userdata;
        /* The error handlers may drop the last reference. */
        _cleanup_(aetask_client_unrefp) aetask_client *held = client_hold(c);

        if (c->connect_denied != 0) {
                int error = c->connect_denied;
                c->connect_denied = 0;
                client_fail_waiting(c, error);
        }

        while (!list_is_empty(&c->pending_reports)) {
                aetask_checkout *co = list_first_entry(&c->pending_reports, aetask_checkout, report_node);
                list_remove(&co->report_node);
                checkout_report_pending(co);
                if (c->freeing)
                        break;
        }
        if (!c->freeing)
                (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        return 0;
}

void client_schedule_reports(aetask_client *c, aetask_checkout *co) {
        if (!list_is_linked(&co->report_node))
                list_append(&c->pending_reports, &co->report_node);
        if (c->defer_source)
                (void) sd_event_source_set_enabled(c->defer_source, SD_EVENT_ONESHOT);
}

_public_ int aetask_client_attach_event(aetask_client *c, sd_event *event, int64_t priority) {
        int r;

        assert_return(c, -EINVAL);
        assert_return(!client_origin_changed(c), -ECHILD);
        assert_return(!c->event, -EBUSY);

        if (event)
                c->event = sd_event_ref(event);
        else {
                r = sd_event_default(&c->event);
                if (r < 0)
                        return r;
        }
        c->priority = priority;

        r = sd_event_add_defer(c->event, &c->defer_source, on_defer, c);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_priority(c->defer_source, priority);
        (void) sd_event_source_set_description(c->defer_source, "aetask-client-reports");
        (void) sd_event_source_set_enabled(c->defer_source,
                                           list_is_empty(&c->pending_reports) ? SD_EVENT_OFF : SD_EVENT_ONESHOT);

        client_dispatch(c);
        return 0;

fail:
        c->event = sd_event_unref(c->event);
        return r;
}

_public_ int aetask_client_detach_event(aetask_client *c) {
        assert_return(c, -EINVAL);
        assert_return(!client_origin_changed(c), -ECHILD);

        if (!c->event)
                return 0;

        /* Connections and timers live on the loop; without it there is no
         * pool.  Outstanding checkouts are cancelled as when freeing, and
         * their error handlers may drop the last reference. */
        _cleanup_(aetask_client_unrefp) aetask_client *held = client_hold(c);
        if (!c->freeing)
                client_drop_pool(c, "the client was detached from its event loop with the checkout outstanding");

        c->retry_source = sd_event_source_disable_unref(c->retry_source);
        c->defer_source = sd_event_source_disable_unref(c->defer_source);
        client_stop_timeouts(c);
        client_stop_leak_watch(c);
        client_stop_shrink(c);
        c->event = sd_event_unref(c->event);
        return 1;
}

_public_ sd_event *aetask_client_get_event(aetask_client *c) {
        assert_return(c, NULL);
        assert_return(!client_origin_changed(c), NULL);
        return c->event;
}

_public_ const char *aetask_error_kind_to_string(aetask_error_kind kind) {
        static const char *const table[_AETASK_ERROR_KIND_MAX] = {
                [AETASK_ERROR_HANDLER] = "handler",
                [AETASK_ERROR_SETUP] = "setup",
                [AETASK_ERROR_TIMEOUT] = "timeout",
                [AETASK_ERROR_WORKER_DIED] = "worker-died",
                [AETASK_ERROR_ABORTED] = "aborted",
                [AETASK_ERROR_PROTOCOL] = "protocol",
                [AETASK_ERROR_REFUSED] = "refused",
                [AETASK_ERROR_CANCELLED] = "cancelled",
                [AETASK_ERROR_CONNECT] = "connect",
                [AETASK_ERROR_DEADLINE] = "deadline",
        };
        if ((unsigned) kind >= _AETASK_ERROR_KIND_MAX)
                return NULL;
        return table[kind];
}
