/* One message in the worker: a call run through the handler (its setup
 * first, once), or a checkout's Done, and the reply that answers it, kept
 * within the message size limit. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "protocol.h"
#include "server-internal.h"
#include "varlink-service.h"
#include "worker-deadline.h"
#include "worker-internal.h"

/* The message of a failed handler step: what it raised, or its errno. */
const char *worker_error_message(aetask_worker *w, int r) {
        return w->error ?: strerror(r < 0 ? -r : EIO);
}

void worker_clear_error(aetask_worker *w) {
        free(w->error);
        w->error = NULL;
}

static aetask_method_t find_method(const aetask_handler *h, const char *name) {
        for (const aetask_method *m = h->methods; m && m->name; m++)
                if (strcmp(m->name, name) == 0)
                        return m->call;
        return NULL;
}

/* Whether the reply appended to OUT since BEFORE is within the limit; if
 * not, it is taken back. */
static bool reply_fits(aetask_worker *w, buffer *out, size_t before) {
        if (buffer_length(out) - before - 1 <= w->server->max_message_size)
                return true;
        out->end = out->start + before;
        return false;
}

/* Appends the reply for a call that ran: its result, or its error, with
 * whatever the handler logged.  Returns -ENOMEM if even that fails. */
static int append_outcome(aetask_worker *w, buffer *out, int r, json_object *result, const char *error) {
        const char *logs = worker_log_end(&w->log);
        char text[128];

        size_t before = buffer_length(out);

        /* Every reply fits the message size limit, or the client would drop
         * the connection: the logs go first (they are not worth a call), then
         * the result (the call fails), then the tail of the error message. */
        if (r >= 0) {
                const char *l = logs;
                for (;;) {
                        r = protocol_append_reply(out, result, l);
                        if (r >= 0 && !reply_fits(w, out, before))
                                r = -EMSGSIZE;
                        if (r >= 0 || !l)
                                break;
                        l = NULL;
                }
                if (r >= 0) {
                        worker_clear_error(w);  /* raised, then succeeded after all */
                        w->outcome = NULL;
                        return 0;
                }
                snprintf(text, sizeof(text), "the result cannot be sent: %s", strerror(-r));
                error = PROTOCOL_ERROR_HANDLER;
                w->error = (free(w->error), strdup(text));
        }

        const char *message = worker_error_message(w, r);
        _cleanup_(freep) char *cut = NULL;
        w->outcome = error;
        size_t len = strlen(message);
        const char *l = logs;
        for (;;) {
                r = protocol_append_error(out, error, cut ?: message, l);
                if (r >= 0 && !reply_fits(w, out, before))
                        r = -EMSGSIZE;
                if (r >= 0)
                        break;
                if (l)
                        l = NULL;
                else if (len > 0) {
                        len /= 2;
                        free(cut);
                        cut = strndup(message, len);
                        if (!cut)
                                break;
                } else {
                        /* Not even the bare error fits (a tiny limit): it
                         * goes out all the same, the client must hear. */
                        r = protocol_append_error(out, error, "", NULL);
                        break;
                }
        }
        worker_clear_error(w);
        return r < 0 ? -ENOMEM : 0;
}

/* Whether the client has closed its connection, both ways.  The server stops
 * a busy worker whose client leaves, and leaves an idle one alone: a client
 * that sent a call and left before the worker marked itself busy is seen
 * here, after the marking, so no call runs for nobody.  (A half-close, on a
 * unix socket, still wants its answer; over TCP it cannot be told apart.) */
static bool client_gone(aetask_worker *w) {
        struct pollfd p = { .fd = w->fd, .events = POLLRDHUP };
        int domain = AF_UNIX;
        socklen_t len = sizeof(domain);

        if (w->fd < 0 || poll(&p, 1, 0) <= 0)
                return false;
        if (p.revents & (POLLHUP | POLLERR))
                return true;
        return (p.revents & POLLRDHUP) &&
               getsockopt(w->fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) >= 0 && domain != AF_UNIX;
}

/* SIGTERM asks the worker to retire after its checkout (worker.c), so it
 * must not cut the handler's code short; but a signal caught while that
 * code sleeps or polls ends the sleep or poll with EINTR, SA_RESTART or
 * not (nanosleep, poll, select and epoll_wait are never restarted), and a
 * reload ended a 3 s call after 0.5 s.  So it waits, pending, while handler
 * code runs, and is taken when the worker is back in its own.  The handler
 * runs marked busy in the scoreboard meanwhile (what the server's hung
 * timeout and status look at). */
static void hold_sigterm(int how) {
        sigset_t term;

        sigemptyset(&term);
        sigaddset(&term, SIGTERM);
        (void) sigprocmask(how, &term, NULL);
}

static void handler_begin(aetask_worker *w, const char *what) {
        hold_sigterm(SIG_BLOCK);
        slot_call_begin(w->slot, what);
}

static void handler_end(aetask_worker *w) {
        slot_call_end(w->slot);
        hold_sigterm(SIG_UNBLOCK);
}

/* Runs the handler's setup, once: before the first call, or at once in a
 * spare.  A failure is answered to the first call, which ends the worker. */
void worker_setup(aetask_worker *w) {
        int r;

        w->setup_done = true;
        if (!w->handler->setup)
                return;
        /* Setup counts as busy, so a hung setup is killed like a hung call. */
        slot_set_setup(w->slot, SLOT_SETUP_RUNNING, NULL);
        handler_begin(w, "setup");
        r = w->handler->setup(w);
        handler_end(w);
        if (r >= 0) {
                slot_set_setup(w->slot, SLOT_SETUP_DONE, NULL);
                return;
        }
        if (asprintf(&w->setup_error, "setup exception: %s", worker_error_message(w, r)) < 0)
                w->setup_error = NULL;
        log_error("Worker %u: %s", w->number, w->setup_error ?: "setup exception");
        /* For the server's back-off: it names the error to the clients it refuses. */
        slot_set_setup(w->slot, SLOT_SETUP_FAILED, worker_error_message(w, r));
        worker_clear_error(w);
        w->setup_result = r;
}

static int run_call_armed(aetask_worker *w, const protocol_call *c, buffer *out);

/* Returns < 0 when the worker must end once the reply is out (-EPIPE: at
 * once, the client is gone).  The call's deadline covers setup too. */
static int run_call(aetask_worker *w, const protocol_call *c, buffer *out) {
        uint64_t began = now_usec(CLOCK_MONOTONIC);
        w->deadline = worker_deadline_arm(w->fd, out, began, c->timeout_usec);
        int r = run_call_armed(w, c, out);
        worker_deadline_disarm(w->deadline);
        w->deadline = UINT64_MAX;
        if (r != -EPIPE)  /* answered */
                metrics_call_done(w->server, now_usec(CLOCK_MONOTONIC) - began, call_error_from_protocol(w->outcome));
        return r;
}

_public_ uint64_t aetask_worker_get_deadline(aetask_worker *w) {
        assert_return(w, UINT64_MAX);
        return w->deadline;
}

static int run_call_armed(aetask_worker *w, const protocol_call *c, buffer *out) {
        json_object *result = NULL, *args;
        aetask_method_t fn;
        int r;

        w->in_checkout = true;
        w->method = c->kind == PROTOCOL_CALL_METHOD ? c->method : NULL;
        worker_log_begin(&w->log, c->trace, w->method ?: "->()");

        if (!w->setup_done)
                worker_setup(w);
        if (w->setup_result < 0) {
                free(w->error);
                w->error = TAKE_PTR(w->setup_error);
                (void) append_outcome(w, out, -EPROTO, NULL, PROTOCOL_ERROR_SETUP);
                return -EPROTO;
        }

        fn = c->kind == PROTOCOL_CALL_METHOD ? find_method(w->handler, c->method) : w->handler->call;
        if (!fn && !w->handler->interface) {
                if (c->kind == PROTOCOL_CALL_METHOD)
                        (void) aetask_worker_raise(w, "unknown method '%s'", c->method);
                else
                        (void) aetask_worker_raise(w, "the handler takes no calls without a method name");
                worker_log_call(&w->log, w->server->call_log_level, 0, w->error);
                r = append_outcome(w, out, -ENOENT, NULL, PROTOCOL_ERROR_METHOD_NOT_FOUND);
                w->method = NULL;
                return r;
        }

        handler_begin(w, w->method ?: "->()");
        if (client_gone(w)) {
                handler_end(w);
                log_info("Worker %u: client went away before its call began, not running it", w->number);
                w->method = NULL;
                return -EPIPE;
        }
        args = c->args ? json_object_get(c->args) : json_object_new_array();
        /* What the table and the catch-all do not take goes to the general
         * interface, with the name the call was made with (or NULL). */
        uint64_t began = now_usec(CLOCK_MONOTONIC);
        slot_count_call(w->slot);
        r = fn ? fn(w, args, &result) : w->handler->interface(w, w->method, args, &result);
        handler_end(w);
        json_object_put(args);
        worker_log_call(&w->log, w->server->call_log_level, now_usec(CLOCK_MONOTONIC) - began,
                        r < 0 ? worker_error_message(w, r) : NULL);

        r = append_outcome(w, out, r, result, PROTOCOL_ERROR_HANDLER);
        json_object_put(result);
        w->method = NULL;
        return r;
}

static int run_done(aetask_worker *w, const protocol_call *c, buffer *out) {
        int r = 0;

        w->in_checkout = false;
        worker_log_begin(&w->log, c->trace, "checkout_done");
        if (w->setup_done && w->setup_result >= 0 && w->handler->checkout_done) {
                handler_begin(w, "checkout_done");
                r = w->handler->checkout_done(w);
                handler_end(w);
        }
        if (r < 0)
                log_warning("Worker %u: checkout_done failed: %s", w->number, worker_error_message(w, r));
        return append_outcome(w, out, r, NULL, PROTOCOL_ERROR_HANDLER);
}

static int run_request(aetask_worker *w, const char *s, size_t len, const protocol_call *call,
                       int parsed, const char *reason, buffer *out) {
        /* Requests under no method of ours, and Varlink's introspection:
         * answered without the handler. */
        if (parsed == -ENOENT)
                return varlink_service_answer(s, len, aetask_worker_get_handler_name(w), out);
        if (parsed == -EINVAL)
                return varlink_append_error(out, "org.varlink.service.InvalidParameter", "parameter", reason) < 0 ?
                       -ENOMEM : 0;
        if (parsed < 0) {
                log_warning("Worker %u: invalid message from client, closing: %s", w->number, reason);
                (void) protocol_append_error(out, PROTOCOL_ERROR_INVALID_MESSAGE, reason, NULL);
                return -EBADMSG;
        }
        if (call->kind == PROTOCOL_CALL_HELLO)
                return protocol_append_hello(out, w->number, (int) getpid()) < 0 ? -ENOMEM : 0;
        if (call->kind == PROTOCOL_CALL_DONE)
                return run_done(w, call, out);
        return run_call(w, call, out);
}

int worker_handle_message(aetask_worker *w, const char *s, size_t len, buffer *out) {
        _cleanup_(protocol_call_done) protocol_call call = {};
        size_t before = buffer_length(out);
        const char *reason = NULL;
        int parsed = protocol_parse_call(s, len, &call, &reason);

        int r = run_request(w, s, len, &call, parsed, reason, out);
        /* Varlink's oneway: the request runs, its answer is dropped. */
        if (call.oneway)
                out->end = out->start + before;
        return r;
}
