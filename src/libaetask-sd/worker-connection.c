/* One connection to a worker process: connecting, writing calls, reading and
 * framing replies, and noticing when the worker goes away. */
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "client-internal.h"
#include "log-context.h"
#include "macro.h"
#include "protocol.h"

static void conn_set_state(worker_conn *w, conn_state state) {
        aetask_client *c = w->client;
        list_node *head = state == CONN_IDLE ? &c->idle : state == CONN_ASSIGNED ? &c->assigned : &c->connecting;

        list_remove(&w->node);
        w->state = state;
        if (state == CONN_IDLE)
                /* Most recently used first: it is the one whose pages are warm. */
                list_insert_before(head->next, &w->node);
        else
                list_append(head, &w->node);
}

/* Holders: the pool (until conn_free()), and any function that runs
 * callbacks and looks at the connection afterwards. */
static worker_conn *conn_ref(worker_conn *w) {
        w->n_ref++;
        return w;
}

static void conn_unref(worker_conn *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(worker_conn *, conn_unref);

/* Closes the connection; the memory goes when the last holder lets go. */
worker_conn *conn_free(worker_conn *w) {
        if (!w || w->closed)
                return NULL;
        if (w->checkout)
                w->checkout->worker = NULL;
        w->checkout = NULL;
        w->closed = true;
        list_remove(&w->node);
        w->client->n_workers--;
        w->io = sd_event_source_disable_unref(w->io);
        w->fd = safe_close(w->fd);
        conn_unref(w);
        return NULL;
}

static void conn_update_events(worker_conn *w) {
        uint32_t events = EPOLLIN;
        if (w->state == CONN_CONNECTING || buffer_length(&w->out) > 0)
                events |= EPOLLOUT;
        (void) sd_event_source_set_io_events(w->io, events);
}

/* The worker is gone, or has said something we cannot accept.  The
 * checkout's error handler may drop the last reference to the client, which
 * closes W: both are held until the end. */
static void conn_lost(worker_conn *w, aetask_error_kind kind, const char *message) {
        aetask_client *c = w->client;
        _cleanup_(aetask_client_unrefp) aetask_client *held = client_hold(c);
        _cleanup_(conn_unrefp) worker_conn *hold = conn_ref(w);
        aetask_checkout *co = w->checkout;

        client_log_debug("Worker connection lost: %s", message);

        if (co) {
                co->worker = NULL;
                w->checkout = NULL;
                /* No greeting means no worker ever had the connection (the
                 * server went away with it in its backlog); a Done still
                 * unanswered means the worker never read this checkout's
                 * first call.  Either way nothing ran: send it elsewhere. */
                if (!w->greeted || (w->pending_done > 0 && !co->answered))
                        checkout_requeue(co);
                else
                        checkout_fail(co, kind, message);
        }
        /* A connection that never reached a worker is a failed connect:
         * back off rather than reconnect at once. */
        if (!w->greeted || kind == AETASK_ERROR_REFUSED) {
                if (!w->greeted && c->last_connect_error == 0)
                        c->last_connect_error = ECONNRESET;
                client_schedule_retry(c);
        }
        conn_free(w);
        client_dispatch(c);
}

static void conn_write(worker_conn *w, const char *data, size_t size) {
        int r;

        if (buffer_length(&w->out) == 0 && w->state != CONN_CONNECTING && !w->corked) {
                /* The common case: write straight from the caller's bytes. */
                ssize_t n = send(w->fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno != EAGAIN && errno != EINTR) {
                                /* Reading will find out why; keep what was not sent. */
                                n = 0;
                        } else
                                n = 0;
                }
                data += n;
                size -= n;
                if (size == 0)
                        return;
        }
        r = buffer_append(&w->out, data, size);
        if (r < 0) {
                conn_lost(w, AETASK_ERROR_PROTOCOL, "out of memory queueing a call");
                return;
        }
        if (!w->corked)  /* conn_uncork() writes it, or asks for EPOLLOUT */
                conn_update_events(w);
}

void conn_send_call(worker_conn *w, call *k) {
        aetask_checkout *co = w->checkout;
        aetask_client *c = w->client;
        uint64_t now;

        w->call_in_flight = true;
        k->state = CALL_SENT;
        call_trace_sent(co, k);
        /* The time the call has left goes with it, for the worker's handler
         * and for the worker to stop at (aetask_worker_get_deadline()). */
        if (co->deadline != USEC_INFINITY && sd_event_now(c->event, CLOCK_MONOTONIC, &now) >= 0) {
                buffer_clear(&c->scratch);
                if (protocol_append_call_with_timeout(&c->scratch, k->message, k->size,
                                                      co->deadline > now ? co->deadline - now : 1) >= 0) {
                        conn_write(w, buffer_head(&c->scratch), buffer_length(&c->scratch));
                        return;
                }
        }
        conn_write(w, k->message, k->size);
}

void conn_assign(worker_conn *w, aetask_checkout *co) {
        conn_set_state(w, CONN_ASSIGNED);
        w->checkout = co;
        w->n_checkouts++;
        co->worker = w;
        co->answered = false;
        checkout_leak_watch(co);
        checkout_journal(co, "assigned", LOG_DEBUG, NULL, NULL, UINT64_MAX, NULL,
                         "Worker assigned (checkout %u of this connection)", w->n_checkouts);
        checkout_send_next(co);
}

/* Writes what was queued while corked. */
static void conn_uncork(worker_conn *w) {
        w->corked = false;
        if (w->closed || w->state == CONN_CONNECTING || buffer_length(&w->out) == 0)
                return;
        /* Errors are left for reading to find, as in conn_write(). */
        (void) buffer_flush(&w->out, w->fd);
        conn_update_events(w);
}

void conn_release(worker_conn *w, bool reuse) {
        aetask_client *c = w->client;
        const char *trace = NULL;

        if (w->checkout) {
                trace = checkout_trace_id(w->checkout);
                /* What the checkout-done hook logs arrives after the checkout
                 * ended; the log context is kept for it. */
                aetask_log_unref(w->done_log);
                w->done_log = aetask_log_ref(w->checkout->log);
                w->checkout->worker = NULL;
                w->checkout = NULL;
        }

        if (!reuse || w->retire || w->call_in_flight ||
            (c->max_checkouts > 0 && w->n_checkouts >= c->max_checkouts) ||
            c->n_workers > c->max_workers) {
                conn_free(w);
                client_dispatch(c);
                return;
        }

        if (protocol_append_done(&w->out, trace) < 0) {
                conn_free(w);
                client_dispatch(c);
                return;
        }
        w->pending_done++;
        conn_set_state(w, CONN_IDLE);

        /* The Done waits for the dispatch: a checkout waiting for a worker
         * gets this one (the most recently used), and its first call goes
         * out in the same write as the Done. */
        _cleanup_(conn_unrefp) worker_conn *hold = conn_ref(w);
        w->corked = true;
        client_dispatch(c);
        conn_uncork(w);
}

static void conn_handle_message(worker_conn *w, const char *s, size_t len) {
        _cleanup_(protocol_reply_done) protocol_reply reply = {};
        const char *reason;
        char text[256];
        int r;

        r = protocol_parse_reply(s, len, &reply, &reason);
        buffer_consume(&w->in, len + 1);
        if (r < 0) {
                snprintf(text, sizeof(text), "invalid reply from worker: %s", reason);
                conn_lost(w, AETASK_ERROR_PROTOCOL, text);
                return;
        }

        if (reply.error && strcmp(reply.error, PROTOCOL_ERROR_RETIRING) == 0) {
                /* A retiring worker's last word, never the answer to a Done:
                 * it answered everything it ran, so a checkout it has not
                 * answered yet goes to another worker, unharmed. */
                aetask_checkout *co = w->checkout;
                aetask_client *c = w->client;

                if (co && co->answered) {
                        conn_lost(w, AETASK_ERROR_WORKER_DIED, "worker retired during the checkout");
                        return;
                }
                if (co) {
                        co->worker = NULL;
                        w->checkout = NULL;
                        checkout_requeue(co);
                }
                conn_free(w);
                client_dispatch(c);
                return;
        }

        if (!w->greeted) {
                if (reply.hello) {
                        w->greeted = true;
                        w->client->retry_attempt = 0;  /* a worker, at last: no more backing off */
                        w->client->last_connect_error = 0;
                        return;
                }
                if (!reply.error) {
                        conn_lost(w, AETASK_ERROR_PROTOCOL, "the worker did not greet");
                        return;
                }
                /* An error before the greeting is the server's refusal when
                 * it is at its worker cap or does not serve this user (its
                 * allow lists); anything else means this is not
                 * a worker socket at all (a control socket, say).  The
                 * checkout waiting on this connection is told, and
                 * reconnects back off. */
                bool busy = strcmp(reply.error, PROTOCOL_ERROR_SERVER_BUSY) == 0 ||
                            strcmp(reply.error, PROTOCOL_ERROR_PERMISSION_DENIED) == 0;
                aetask_error_kind kind = busy ? AETASK_ERROR_REFUSED : AETASK_ERROR_PROTOCOL;
                aetask_checkout *refused = w->call_in_flight ? w->checkout : NULL;
                if (busy)
                        snprintf(text, sizeof(text), "%s", reply.message);
                else
                        snprintf(text, sizeof(text), "not an aetask worker socket (the server answered %s%s%s)",
                                 reply.error, reply.message[0] ? ": " : "", reply.message);
                client_schedule_retry(w->client);
                if (refused) {
                        w->call_in_flight = false;
                        refused->answered = true;
                        checkout_fail_call(refused, kind, text, NULL);
                        return;
                }
                conn_lost(w, kind, text);
                return;
        }

        if (w->pending_done > 0) {
                /* The answer to a Done: a failing checkout-done hook means
                 * the worker's state is suspect, so it is not pooled again. */
                w->pending_done--;
                if (w->done_log && reply.logs)
                        log_context_merge(w->done_log, reply.logs);
                w->done_log = aetask_log_unref(w->done_log);
                if (reply.error)
                        w->retire = true;
                if (reply.error && w->state == CONN_IDLE)
                        conn_lost(w, AETASK_ERROR_HANDLER, reply.message);
                return;
        }

        aetask_checkout *co = w->checkout;
        if (!co || !w->call_in_flight) {
                if (reply.error && strcmp(reply.error, PROTOCOL_ERROR_SERVER_BUSY) == 0) {
                        conn_lost(w, AETASK_ERROR_REFUSED, reply.message);
                        return;
                }
                conn_lost(w, AETASK_ERROR_PROTOCOL, "worker sent a reply nobody asked for");
                return;
        }
        w->call_in_flight = false;

        if (!reply.error) {
                co->answered = true;
                checkout_deliver_reply(co, reply.result, reply.logs);
                return;
        }

        co->answered = true;
        if (strcmp(reply.error, PROTOCOL_ERROR_SETUP) == 0)
                checkout_fail_call(co, AETASK_ERROR_SETUP, reply.message, reply.logs);
        else if (strcmp(reply.error, PROTOCOL_ERROR_SERVER_BUSY) == 0)
                checkout_fail_call(co, AETASK_ERROR_REFUSED, reply.message, reply.logs);
        else if (strcmp(reply.error, PROTOCOL_ERROR_DEADLINE) == 0)
                checkout_fail_call(co, AETASK_ERROR_DEADLINE, reply.message, reply.logs);
        else if (strcmp(reply.error, PROTOCOL_ERROR_HANDLER) == 0 ||
                 strcmp(reply.error, PROTOCOL_ERROR_METHOD_NOT_FOUND) == 0)
                checkout_fail_call(co, AETASK_ERROR_HANDLER, reply.message, reply.logs);
        else {
                snprintf(text, sizeof(text), "worker reported %s: %s", reply.error, reply.message);
                checkout_fail_call(co, AETASK_ERROR_PROTOCOL, text, reply.logs);
        }
}

static void conn_unref(worker_conn *w) {
        if (--w->n_ref > 0)
                return;
        aetask_log_unref(w->done_log);
        /* A connection closed for a reply too large, or too costly, to read
         * gives its memory back at once. */
        buffer_clear(&w->in);
        buffer_shrink(&w->in);
        buffer_done(&w->in);
        buffer_done(&w->out);
        free(w);
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
        int r;

        if (w->state == CONN_CONNECTING) {
                int error = 0;
                socklen_t len = sizeof(error);
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
                        error = errno;
                if (error != 0) {
                        client_connect_failed(c, error);  /* a timeout message says why no worker came */
                        conn_free(w);
                        client_dispatch(c);
                        return 0;
                }
                conn_set_state(w, CONN_IDLE);
                conn_update_events(w);
                client_dispatch(c);
                return 0;
        }

        if (revents & EPOLLOUT) {
                r = buffer_flush(&w->out, fd);
                if (r < 0 && r != -EPIPE && r != -ECONNRESET) {
                        conn_lost(w, AETASK_ERROR_WORKER_DIED, "worker connection suddenly died");
                        return 0;
                }
                /* On EPIPE the reading side below sees the end and says so. */
                buffer_shrink(&w->out);
                conn_update_events(w);
        }

        if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                return 0;

        ssize_t n = buffer_read(&w->in, fd, c->max_message_size + 1);
        if (n == -EAGAIN)
                return 0;
        if (n == -EMSGSIZE) {
                conn_lost(w, AETASK_ERROR_PROTOCOL, "worker reply exceeds the message size limit");
                return 0;
        }

        while (!w->closed) {
                const char *msg;
                ssize_t len = buffer_next_message(&w->in, &w->scanned, &msg);
                if (len < 0)
                        break;
                conn_handle_message(w, msg, (size_t) len);
        }
        if (!w->closed && n <= 0)
                conn_lost(w, AETASK_ERROR_WORKER_DIED, "worker connection suddenly died");
        buffer_shrink(&w->in);
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
        list_init(&w->node);

        r = sd_event_add_io(c->event, &w->io, fd, in_progress ? EPOLLOUT : EPOLLIN, on_io, w);
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
        conn_set_state(w, in_progress ? CONN_CONNECTING : CONN_IDLE);
        conn_update_events(w);
        *ret = TAKE_PTR(w);
        return 0;
}
