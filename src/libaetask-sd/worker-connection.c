/* One connection to a worker process, the I/O shell around conn-machine.c:
 * connecting, writing calls, reading the worker's bytes into the machine
 * and acting on the events it returns, and noticing when the worker goes
 * away. */
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "client-internal.h"
#include "log-context.h"
#include "macro.h"
#include "protocol.h"

/* Files W in the client's list for its state. */
static void conn_file(worker_conn *w) {
        aetask_client *c = w->client;

        list_remove(&w->node);
        switch (w->m.state) {
        case CONN_CONNECTING:
                list_append(&c->connecting, &w->node);
                break;
        case CONN_IDLE:
                /* Most recently used first: it is the one whose pages are warm. */
                list_insert_before(c->idle.next, &w->node);
                break;
        case CONN_ASSIGNED:
        case CONN_CALL_IN_FLIGHT:
                list_append(&c->assigned, &w->node);
                break;
        case CONN_CLOSED:
                break;
        }
}

/* Holders: the pool (until conn_free()), and any function that runs
 * callbacks and looks at the connection afterwards. */
static worker_conn *conn_ref(worker_conn *w) {
        w->n_ref++;
        return w;
}

static void conn_unref(worker_conn *w) {
        if (--w->n_ref > 0)
                return;
        aetask_log_unref(w->done_log);
        conn_machine_done(&w->m);
        buffer_done(&w->out);
        free(w);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(worker_conn *, conn_unref);

/* The one place the link between a checkout and its worker is cut. */
static aetask_checkout *conn_detach_checkout(worker_conn *w) {
        aetask_checkout *co = TAKE_PTR(w->checkout);

        if (!co)
                return NULL;
        co->worker = NULL;
        if (co->state == CHECKOUT_ASSIGNED)  /* a finished one stays finished */
                co->state = CHECKOUT_IDLE;
        return co;
}

/* Closes the connection; the memory goes when the last holder lets go. */
worker_conn *conn_free(worker_conn *w) {
        if (!w || w->m.state == CONN_CLOSED)
                return NULL;
        conn_detach_checkout(w);
        conn_machine_close(&w->m);
        conn_file(w);
        w->client->n_workers--;
        w->io = sd_event_source_disable_unref(w->io);
        w->fd = safe_close(w->fd);
        conn_unref(w);
        return NULL;
}

/* Edge-triggered.  sd_event_run() asks epoll again before each dispatch,
 * and a level-triggered connection whose reply waits its turn is polled
 * and reported again each time: a burst of N replies cost N² polls, a
 * quarter of the CPU at 128 connections in one process.  Edge-triggered,
 * each arrival is reported once, so on_io() must take everything the
 * socket holds, or set its events again. */
#define CONN_EPOLL_FLAGS (EPOLLET | EPOLLRDHUP)

/* Waits for writing too while there is something to write; REARM reports
 * the socket again, readable or writable, even when nothing changed. */
static void conn_set_events(worker_conn *w, bool rearm) {
        uint32_t events = EPOLLIN | CONN_EPOLL_FLAGS;
        if (w->m.state == CONN_CONNECTING || buffer_length(&w->out) > 0)
                events |= EPOLLOUT;
        if (events == w->io_events && !rearm)
                return;
        w->io_events = events;
        (void) sd_event_source_set_io_events(w->io, events);
}

static void conn_update_events(worker_conn *w) {
        conn_set_events(w, false);
}

/* Closes W as EV says, telling its checkout.  The checkout's error handler
 * may drop the last reference to the client, which closes W: both are held
 * until the end. */
static void conn_close_for(worker_conn *w, const conn_event *ev) {
        aetask_client *c = w->client;
        _cleanup_(aetask_client_unrefp) aetask_client *held = client_hold(c);
        _cleanup_(conn_unrefp) worker_conn *hold = conn_ref(w);
        aetask_checkout *co = conn_detach_checkout(w);

        client_log_debug("Worker connection lost: %s", ev->message);
        if (co && ev->requeue)
                checkout_requeue(co);
        else if (co)
                checkout_fail(co, ev->kind, ev->message);
        if (ev->back_off > 0 && !w->m.greeted && c->last_connect_error == 0)
                c->last_connect_error = ECONNRESET;
        for (unsigned i = 0; i < ev->back_off; i++)
                client_schedule_retry(c);
        conn_free(w);
        client_dispatch(c);
}

/* The worker is gone, or the shell cannot go on with it. */
static void conn_lost(worker_conn *w, aetask_error_kind kind, const char *message) {
        conn_event ev;

        /* The call in flight is the last thing written: bytes still in the
         * output buffer are its own. */
        conn_machine_lost(&w->m, buffer_length(&w->out) > 0, kind, message, &ev);
        conn_close_for(w, &ev);
}

/* Writes the N parts of IOV, in order, as one message. */
static void conn_writev(worker_conn *w, struct iovec *iov, size_t n) {
        bool queued = false;

        if (buffer_length(&w->out) == 0 && w->m.state != CONN_CONNECTING && !w->corked) {
                /* The common case: write straight from the caller's bytes.
                 * On errors reading will find out why; what was not sent
                 * is kept. */
                struct msghdr mh = { .msg_iov = iov, .msg_iovlen = n };
                ssize_t sent = sendmsg(w->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
                for (size_t i = 0; i < n && sent > 0; i++) {
                        size_t part = MIN(iov[i].iov_len, (size_t) sent);
                        iov[i].iov_base = (char *) iov[i].iov_base + part;
                        iov[i].iov_len -= part;
                        sent -= (ssize_t) part;
                }
        }
        for (size_t i = 0; i < n; i++) {
                if (iov[i].iov_len == 0)
                        continue;
                if (buffer_append(&w->out, iov[i].iov_base, iov[i].iov_len) < 0) {
                        conn_lost(w, AETASK_ERROR_PROTOCOL, "out of memory queueing a call");
                        return;
                }
                queued = true;
        }
        if (queued && !w->corked)  /* conn_uncork() writes it, or asks for EPOLLOUT */
                conn_update_events(w);
}

static void conn_write(worker_conn *w, const char *data, size_t size) {
        struct iovec iov = { .iov_base = (char *) data, .iov_len = size };
        conn_writev(w, &iov, 1);
}

void conn_send_call(worker_conn *w, call *k) {
        aetask_checkout *co = w->checkout;
        aetask_client *c = w->client;
        uint64_t now;

        conn_machine_call_sent(&w->m);
        k->state = CALL_SENT;
        call_trace_sent(co, k);
        /* The time the call has left goes with it, for the worker's handler
         * and for the worker to stop at (aetask_worker_get_deadline()). */
        if (co->deadline != USEC_INFINITY && sd_event_now(c->event, CLOCK_MONOTONIC, &now) >= 0) {
                char suffix[PROTOCOL_TIMEOUT_SUFFIX_MAX];
                size_t keep;
                int n = protocol_call_timeout_suffix(k->message, k->size, co->deadline > now ? co->deadline - now : 1,
                                                     suffix, &keep);
                if (n > 0) {
                        struct iovec iov[2] = {
                                { .iov_base = k->message, .iov_len = keep },
                                { .iov_base = suffix, .iov_len = (size_t) n },
                        };
                        conn_writev(w, iov, 2);
                        return;
                }
        }
        conn_write(w, k->message, k->size);
}

bool conn_has_call_in_flight(worker_conn *w) {
        return w->m.state == CONN_CALL_IN_FLIGHT;
}

void conn_assign(worker_conn *w, aetask_checkout *co) {
        conn_machine_assign(&w->m);
        conn_file(w);
        w->checkout = co;
        w->n_checkouts++;
        co->worker = w;
        co->state = CHECKOUT_ASSIGNED;
        checkout_leak_watch(co);
        checkout_journal(co, "assigned", LOG_DEBUG, NULL, NULL, UINT64_MAX, NULL,
                         "Worker assigned (checkout %u of this connection)", w->n_checkouts);
        checkout_send_next(co);
}

/* Writes what was queued while corked. */
static void conn_uncork(worker_conn *w) {
        w->corked = false;
        if (w->m.state == CONN_CLOSED || w->m.state == CONN_CONNECTING || buffer_length(&w->out) == 0)
                return;
        /* Errors are left for reading to find, as in conn_write(). */
        (void) buffer_flush(&w->out, w->fd);
        conn_update_events(w);
}

void conn_release(worker_conn *w, bool reuse) {
        aetask_client *c = w->client;
        aetask_checkout *co = conn_detach_checkout(w);
        char trace_buf[CHECKOUT_TRACE_MAX];
        const char *trace = NULL;

        if (co) {
                trace = checkout_trace_id(co, trace_buf);
                /* What the checkout-done hook logs arrives after the checkout
                 * ended; the log context is kept for it. */
                aetask_log_unref(w->done_log);
                w->done_log = aetask_log_ref(co->log);
        }

        if (!reuse || (c->max_checkouts > 0 && w->n_checkouts >= c->max_checkouts) ||
            c->n_workers > c->max_workers || conn_lifetime_over(w) || !conn_machine_release(&w->m) ||
            protocol_append_done(&w->out, trace) < 0) {
                conn_free(w);
                client_dispatch(c);
                return;
        }
        conn_file(w);

        /* The Done waits for the dispatch: a checkout waiting for a worker
         * gets this one (the most recently used), and its first call goes
         * out in the same write as the Done. */
        _cleanup_(conn_unrefp) worker_conn *hold = conn_ref(w);
        w->corked = true;
        client_dispatch(c);
        conn_uncork(w);
}

/* Acts on what the worker said. */
static void conn_handle_event(worker_conn *w, conn_event *ev) {
        aetask_client *c = w->client;

        switch (ev->type) {
        case CONN_EVENT_GREETED:
                c->retry_attempt = 0;  /* a worker, at last: no more backing off */
                c->last_connect_error = 0;
                break;
        case CONN_EVENT_REPLY:
                checkout_deliver_reply(w->checkout, ev->reply.result, ev->reply.logs);
                break;
        case CONN_EVENT_CALL_FAILED:
                for (unsigned i = 0; i < ev->back_off; i++)
                        client_schedule_retry(c);
                checkout_fail_call(w->checkout, ev->kind, ev->message, ev->reply.logs);
                break;
        case CONN_EVENT_DONE:
                if (w->done_log && ev->reply.logs)
                        log_context_merge(w->done_log, ev->reply.logs);
                w->done_log = aetask_log_unref(w->done_log);
                break;
        case CONN_EVENT_NOTHING:
        case CONN_EVENT_LOST:
                break;
        }
        if (ev->close)
                conn_close_for(w, ev);
}

/* Whether the connection is up: its connect finished, or failed. */
static bool conn_finish_connect(worker_conn *w) {
        aetask_client *c = w->client;
        int error = 0;
        socklen_t len = sizeof(error);

        if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
                error = errno;
        if (error != 0) {
                client_connect_failed(c, error);  /* a timeout message says why no worker came */
                conn_free(w);
                client_dispatch(c);
                return false;
        }
        conn_machine_connected(&w->m);
        conn_file(w);
        /* What was queued while connecting waits for a writable socket,
         * and the edge that said so is spent: report it again. */
        conn_set_events(w, true);
        client_dispatch(c);
        return true;
}

/* Every way out of here may have run callbacks (a reply's, an error
 * handler), and any of them may drop the last reference to the client,
 * which closes W: both are held from the start, as sd-bus holds its bus
 * while it dispatches. */
static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        worker_conn *w = userdata;
        aetask_client *c = w->client;
        _cleanup_(aetask_client_unrefp) aetask_client *held = client_hold(c);
        _cleanup_(conn_unrefp) worker_conn *hold = conn_ref(w);
        conn_event ev;
        int r;

        if (w->m.state == CONN_CONNECTING) {
                (void) conn_finish_connect(w);
                return 0;
        }

        if (revents & EPOLLOUT) {
                r = buffer_flush(&w->out, fd);
                if (r < 0 && r != -EPIPE && r != -ECONNRESET) {
                        conn_lost(w, AETASK_ERROR_WORKER_DIED, "worker connection suddenly died");
                        return 0;
                }
                /* On EPIPE the reading side below sees the end and says so. */
                conn_shrink_later(w);
                conn_update_events(w);
        }

        if (!(revents & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                return 0;

        ssize_t n = buffer_read(&w->m.in, fd, c->max_message_size + 1);
        if (n == -EAGAIN)
                return 0;
        /* The rest, or the end the peer already sent after its last bytes,
         * comes at the next dispatch: setting the events again reports the
         * socket again while it is readable. */
        if (n > 0 && (buffer_read_filled(&w->m.in, c->max_message_size + 1) ||
                      (revents & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))))
                conn_set_events(w, true);
        if (n == -EMSGSIZE) {
                conn_lost(w, AETASK_ERROR_PROTOCOL, "worker reply exceeds the message size limit");
                return 0;
        }

        while (conn_machine_next(&w->m, &ev) > 0) {
                conn_handle_event(w, &ev);
                conn_event_done(&ev);
        }
        if (w->m.state != CONN_CLOSED && n <= 0)
                conn_lost(w, AETASK_ERROR_WORKER_DIED, "worker connection suddenly died");
        if (w->m.state != CONN_CLOSED)
                conn_shrink_later(w);
        return 0;
}

int conn_open(aetask_client *c, worker_conn **ret) {
        _cleanup_(freep) worker_conn *w = NULL;
        bool in_progress;
        int fd, r;

        fd = socket_address_connect(&c->sockaddr, &in_progress);
        if (fd < 0)
                return fd;

        w = calloc(1, sizeof(*w));
        if (!w) {
                safe_close(fd);
                return -ENOMEM;
        }
        w->n_ref = 1;
        w->fd = fd;
        w->client = c;
        w->expires_at = client_conn_expiry(c);
        list_init(&w->node);
        conn_machine_init(&w->m, in_progress ? CONN_CONNECTING : CONN_IDLE);

        w->io_events = (in_progress ? EPOLLOUT : EPOLLIN) | CONN_EPOLL_FLAGS;
        r = sd_event_add_io(c->event, &w->io, fd, w->io_events, on_io, w);
        if (r < 0) {
                safe_close(fd);
                return r;
        }
        (void) sd_event_source_set_priority(w->io, c->priority);
        (void) sd_event_source_set_description(w->io, "aetask-worker-connection");

        /* Ask for the greeting first: its answer says a worker has the
         * connection.  The first call goes out behind it, in one write. */
        r = protocol_append_hello_request(&w->out);
        if (r < 0) {
                sd_event_source_disable_unref(w->io);
                safe_close(fd);
                return r;
        }

        c->n_workers++;
        conn_file(w);
        conn_update_events(w);  /* the hello request waits to be written */
        *ret = TAKE_PTR(w);
        return 0;
}
