/* The worker process: reads calls from its one client connection, runs the
 * handler, writes replies, one call at a time and in order.  It runs the
 * handler's setup before its first call, and retires between checkouts when
 * the server asks it to (SIGTERM). */
#include <dlfcn.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buffer.h"
#include "child-exit.h"
#include "journal.h"
#include "log.h"
#include "macro.h"
#include "proctitle.h"
#include "protocol.h"
#include "server-internal.h"
#include "worker-deadline.h"
#include "worker-internal.h"
#include "worker-log.h"

/* Large buffers (and the heap a large message's values took) are given
 * back once the client has paused this long, not after every message: a
 * client sending large messages back to back would otherwise pay for fresh
 * pages (a fault and zeroing per page) twice a message, which cost more
 * than the copies themselves. */
#define WORKER_SHRINK_AFTER_MSEC 20

/* Answers written before more calls run, past this many bytes. */
#define WORKER_OUT_PENDING_MAX (64U * 1024U)

/* SIGTERM asks the worker to retire.  Between checkouts, blocked in read(),
 * it tells the client at once that it will run nothing more and exits: any
 * call the client sent meanwhile was not run, and the client may send it to
 * another worker.  In a checkout, it finishes the checkout first (and the
 * handler's code runs with it held: worker-call.c). */
static volatile sig_atomic_t retire_requested;
static volatile sig_atomic_t idle_between_checkouts;
static int retire_fd = -1;
static const char retiring_message[] =
        "{\"error\":\"" PROTOCOL_ERROR_RETIRING "\",\"parameters\":{\"message\":\"the worker is shutting down\"}}";

/* With the server gone (a crash, a SIGKILL) nobody enforces its drain limit,
 * so a worker still in a checkout does it itself: SIGALRM, whose default
 * action ends it, once the limit has passed.  systemd does not kill the
 * workers of a dead aetaskd (SendSIGKILL=no in aetask@.service): they are
 * ours to end, after their calls are answered. */
static pid_t server_pid;
static unsigned drain_limit_seconds;     /* 0: none */
static volatile sig_atomic_t drain_limit_armed;

/* The kernel's word that the server died (PR_SET_PDEATHSIG), taken as
 * SIGTERM is, but never held (worker-call.c holds SIGTERM while handler
 * code runs): the drain limit counts from the server's death, even for a
 * worker in the middle of a call. */
#define SIGNAL_SERVER_GONE (SIGRTMIN + 1)

/* How a worker ends.  A coverage build unloads the handler module first:
 * the module has its own copy of gcov, which writes the module's counts
 * from its destructor, and _exit() runs no destructors (child-exit.h). */
static void *exit_module;

_Noreturn static void worker_exit(int status) {
#ifdef AETASK_COVERAGE
        if (exit_module)
                dlclose(exit_module);
#endif
        child_exit(status);
}

static void on_retire_signal(int sig) {
        retire_requested = 1;
        if (drain_limit_seconds > 0 && !drain_limit_armed && getppid() != server_pid) {
                drain_limit_armed = 1;
                alarm(drain_limit_seconds);
        }
        if (idle_between_checkouts) {
                /* send() and _exit() are async-signal-safe; sizeof includes the NUL.
                 * Not worker_exit(): a coverage build's write-out (malloc, file
                 * locks) interrupting the same in the worker deadlocked it. */
                (void) !send(retire_fd, retiring_message, sizeof(retiring_message), MSG_NOSIGNAL);
                _exit(EXIT_SUCCESS);
        }
}

_public_ int aetask_worker_raisev(aetask_worker *w, const char *format, va_list ap) {
        assert_return(w, -EINVAL);
        assert_return(format, -EINVAL);

        free(w->error);
        if (vasprintf(&w->error, format, ap) < 0)
                w->error = NULL;
        return -EPROTO;
}

_public_ int aetask_worker_raise(aetask_worker *w, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = aetask_worker_raisev(w, format, ap);
        va_end(ap);
        return r;
}

_public_ const char *aetask_worker_get_option(aetask_worker *w, const char *key) {
        assert_return(w, NULL);
        assert_return(key, NULL);

        size_t l = strlen(key);
        /* The last one given wins, as on a command line. */
        for (size_t i = w->server->n_options; i > 0; i--) {
                const char *o = w->server->options[i - 1];
                if (strncmp(o, key, l) == 0 && o[l] == '=')
                        return o + l + 1;
        }
        return NULL;
}

_public_ const char *aetask_worker_get_handler_name(aetask_worker *w) {
        assert_return(w, NULL);
        return w->server->handler_name ?: w->handler->name;
}

_public_ const char *aetask_worker_get_method(aetask_worker *w) {
        assert_return(w, NULL);
        return w->method;
}

_public_ unsigned aetask_worker_get_number(aetask_worker *w) {
        assert_return(w, 0);
        return w->number;
}

_public_ size_t aetask_worker_get_max_message_size(aetask_worker *w) {
        assert_return(w, 0);
        return w->server->max_message_size;
}

_public_ void *aetask_worker_get_userdata(aetask_worker *w) {
        assert_return(w, NULL);
        return w->userdata;
}

_public_ void *aetask_worker_set_userdata(aetask_worker *w, void *userdata) {
        assert_return(w, NULL);
        void *old = w->userdata;
        w->userdata = userdata;
        return old;
}

_public_ int aetask_worker_logv(aetask_worker *w, int priority, const char *format, va_list ap) {
        _cleanup_(freep) char *text = NULL;

        assert_return(w, -EINVAL);
        assert_return(format, -EINVAL);
        if (vasprintf(&text, format, ap) < 0)
                return -ENOMEM;
        return worker_log_message(&w->log, priority, text);
}

_public_ int aetask_worker_log(aetask_worker *w, int priority, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = aetask_worker_logv(w, priority, format, ap);
        va_end(ap);
        return r;
}

_public_ int aetask_worker_timer_start(aetask_worker *w, const char *name) {
        assert_return(w, -EINVAL);
        assert_return(name, -EINVAL);
        return worker_log_timer_start(&w->log, name);
}

_public_ int aetask_worker_timer_stop(aetask_worker *w, int timer) {
        assert_return(w, -EINVAL);
        return worker_log_timer_stop(&w->log, timer);
}

_public_ int aetask_worker_log_data(aetask_worker *w, const char *key, json_object *value) {
        if (!w || !key) {
                json_object_put(value);  /* ownership was handed over, even so */
                return -EINVAL;
        }
        return worker_log_data(&w->log, key, value);
}

_public_ const char *aetask_worker_get_trace_id(aetask_worker *w) {
        assert_return(w, NULL);
        return w->log.trace[0] ? w->log.trace : NULL;
}

static int write_all(int fd, buffer *b) {
        for (;;) {
                int r = buffer_flush(b, fd);
                if (r != 0)
                        return r;
                /* Only reached if the socket was made non-blocking by someone. */
                usleep(1000);
        }
}

int server_check_options(aetask_server *s) {
        static const char *const none[] = { NULL };
        /* A worker that stands for none: number 0, no slot, no trace. */
        aetask_worker w = {
                .server = s,
                .handler = s->handler,
                .log = { .handler = s->handler_name ?: s->handler->name, .method = "check_options" },
                .fd = -1,
        };
        int r;

        if (!s->handler->check_options)
                return 0;
        r = s->handler->check_options(&w, s->options ? (const char *const *) s->options : none);
        (void) worker_log_end(&w.log);
        worker_log_done(&w.log);
        if (r >= 0) {
                worker_clear_error(&w);
                return 0;
        }
        log_error("Invalid handler options: %s", worker_error_message(&w, r));
        worker_clear_error(&w);
        return -EINVAL;
}

aetask_worker *worker_new(aetask_server *s, scoreboard_slot *slot) {
        aetask_worker *w = calloc(1, sizeof(*w));

        if (!w)
                return NULL;
        *w = (aetask_worker) {
                .server = s,
                .handler = s->handler,
                .slot = slot,
                .number = slot->number,
                .deadline = UINT64_MAX,
                .log = {
                        .handler = s->handler_name ?: s->handler->name,
                        .number = slot->number,
                },
                .fd = -1,
        };
        return w;
}

aetask_worker *worker_free(aetask_worker *w) {
        if (!w)
                return NULL;
        (void) worker_log_end(&w->log);
        worker_log_done(&w->log);
        free(w->error);
        free(w->setup_error);
        free(w);
        return NULL;
}

int worker_handle_input(aetask_worker *w, buffer *in, buffer *out, int fd) {
        const char *msg;
        ssize_t len;

        w->fd = fd;
        /* Answer every complete call we have before writing, so pipelined
         * messages (a Done and the next call) share one write. */
        while ((len = buffer_next_message(in, &w->scanned, &msg)) >= 0) {
                int r = worker_handle_message(w, msg, (size_t) len, out);
                buffer_consume(in, (size_t) len + 1);
                if (r < 0)
                        return r;
                /* Between checkouts a retiring worker takes no new one, even
                 * one pipelined behind the Done: that call is not run, and
                 * the Retiring notice sends it to another worker.  Under
                 * steady load a worker is otherwise never between checkouts. */
                if (!w->in_checkout && retire_requested)
                        break;
                /* A Done's answer goes out before the next call runs:
                 * a client that sees the worker die with its Done
                 * unanswered knows that call never ran, and sends
                 * it elsewhere (see conn_lost()).  So does the answer to
                 * the Hello that opens a connection (no checkout yet).
                 * And answers do not pile up: a client that pipelines
                 * calls without reading the answers waits for the
                 * worker, not the other way. */
                if (buffer_length(in) > 0 && buffer_length(out) > 0 &&
                    (!w->in_checkout || buffer_length(out) >= WORKER_OUT_PENDING_MAX) &&
                    write_all(fd, out) < 0)
                        return -EPIPE;
        }
        return 0;
}

/* Named as the server names itself, so ps shows them together. */
static void set_title(aetask_worker *w, const char *what) {
        proctitle_set("%s: %s %u", w->server->name ?: w->server->handler_name ?: w->handler->name ?: "aetask",
                      what, w->number);
}

/* A worker runs blocking work for an event loop that must not wait for it:
 * woken by a call, it has nothing more urgent to do than the loop that sent
 * the call, which usually has more to send.  At SCHED_BATCH it does not
 * preempt that loop on waking (aetask-bench, side by side: parallel
 * 108,900 -> 149,000 calls/s, 512 connections 93,500 -> 126,900).  Only
 * the default policy is changed; a failure (a system call filter) leaves
 * it as it was. */
static void set_scheduling(const aetask_server *s) {
        struct sched_param none = {};

        if (s->worker_scheduling == AETASK_WORKER_SCHEDULING_BATCH && sched_getscheduler(0) == SCHED_OTHER)
                (void) sched_setscheduler(0, SCHED_BATCH, &none);
}

static void setup_process(aetask_worker *w, int conn_fd) {
        struct sigaction sa = { .sa_handler = on_retire_signal, .sa_flags = SA_RESTART };
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        sigset_t none;

        /* The server blocks the signals its event loop reads; a worker runs
         * ordinary blocking code and wants them back as they were. */
        sigemptyset(&none);
        sigaction(SIGCHLD, &dfl, NULL);
        sigaction(SIGINT, &dfl, NULL);
        sigaction(SIGHUP, &dfl, NULL);
        sigaction(SIGPIPE, &dfl, NULL);
        sigaction(SIGALRM, &dfl, NULL);
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGNAL_SERVER_GONE, &sa, NULL);
        sigprocmask(SIG_SETMASK, &none, NULL);
        set_scheduling(w->server);

        /* No worker outlives its server: if the server dies (a crash, a
         * SIGKILL), its workers retire as on SIGTERM instead of holding
         * their clients, and the unit's restart, until the stop timeout. */
        server_pid = w->server->pid;
        /* In alarm()'s whole seconds, rounded up; 0 stays "no limit". */
        drain_limit_seconds = w->server->drain_timeout == 0 ? 0 :
                (unsigned) MIN((w->server->drain_timeout - 1) / USEC_PER_SEC + 1, (uint64_t) UINT_MAX);
        (void) prctl(PR_SET_PDEATHSIG, SIGNAL_SERVER_GONE);
        if (getppid() != w->server->pid)
                raise(SIGNAL_SERVER_GONE);

        /* Nothing of the server's is the worker's business: listening sockets,
         * other workers' connections, the event loop's descriptors. */
        if (conn_fd > 3)
                close_range(3, conn_fd - 1, 0);
        close_range(conn_fd + 1, ~0U, 0);
        retire_fd = conn_fd;
        server_restore_fd_limit(w->server);
        exit_module = w->server->module;

        /* systemd hears about workers from the server alone (NotifyAccess=main). */
        unsetenv("NOTIFY_SOCKET");
        unsetenv("WATCHDOG_PID");
        unsetenv("WATCHDOG_USEC");

        set_title(w, "worker");
}

/* A client that began a message must finish it: a worker waiting for the
 * rest of one holds a process and a worker slot for nobody.  It gets the
 * hung timeout, counted from when the message began; an idle connection
 * with nothing begun may wait as long as the client likes (it is a pooled
 * worker).  Returns 0 when the socket is readable, -EINTR, or -ETIMEDOUT. */
static int wait_for_rest(aetask_worker *w, int fd, uint64_t began) {
        uint64_t timeout = w->server->hung_timeout, now = now_usec(CLOCK_MONOTONIC);
        struct pollfd p = { .fd = fd, .events = POLLIN };

        if (began == 0 || timeout == 0)
                return 0;
        if (now - began >= timeout)
                return -ETIMEDOUT;
        int k = poll(&p, 1, (int) MIN((began + timeout - now + 999) / 1000, (uint64_t) INT_MAX));
        if (k < 0)
                return -errno;
        return k == 0 ? -ETIMEDOUT : 0;
}

/* Whether nothing comes from FD for WORKER_SHRINK_AFTER_MSEC (a signal
 * counts as a pause: the caller looks at it next). */
static bool client_pauses(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        return poll(&p, 1, WORKER_SHRINK_AFTER_MSEC) <= 0;
}

/* Serves the client on CONN_FD until it leaves.  Nothing is written
 * unasked: a client that wants to know a worker has its connection asks
 * first (io.aetask.Hello). */
_Noreturn static void worker_serve(aetask_worker *w, int conn_fd) {
        aetask_server *s = w->server;
        buffer in = {}, out = {};
        uint64_t began = 0;            /* when the message we are reading began */

        for (;;) {
                int r = worker_handle_input(w, &in, &out, conn_fd);
                if (r == -EPIPE)
                        worker_exit(EXIT_SUCCESS);  /* the client is gone */
                if (buffer_length(&out) > 0 && write_all(conn_fd, &out) < 0)
                        worker_exit(EXIT_SUCCESS);  /* the client is gone */
                if (r < 0)
                        worker_exit(EXIT_FAILURE);
                if (buffer_length(&in) == 0 && (in.alloc > BUFFER_KEEP || out.alloc > BUFFER_KEEP) &&
                    client_pauses(conn_fd)) {
                        buffer_shrink(&in);
                        buffer_shrink(&out);
                }

                /* Flag first, then check: a SIGTERM landing between the two
                 * is seen by one or the other, never by neither. */
                idle_between_checkouts = !w->in_checkout;
                if (retire_requested && !w->in_checkout) {
                        (void) !send(conn_fd, retiring_message, sizeof(retiring_message), MSG_NOSIGNAL);
                        worker_exit(EXIT_SUCCESS);
                }

                if (buffer_length(&in) == 0)
                        began = 0;
                else if (began == 0)
                        began = now_usec(CLOCK_MONOTONIC);
                r = wait_for_rest(w, conn_fd, began);
                if (r == -EINTR)
                        continue;
                if (r == -ETIMEDOUT) {
                        idle_between_checkouts = 0;
                        log_warning("Worker %u: client stalled in the middle of a message "
                                    "(%zu bytes, no end after %.3f s), closing",
                                    w->number, buffer_length(&in), (double) s->hung_timeout / USEC_PER_SEC);
                        (void) protocol_append_error(&out, PROTOCOL_ERROR_INVALID_MESSAGE,
                                                     "message incomplete after the hung timeout", NULL);
                        (void) write_all(conn_fd, &out);
                        worker_exit(EXIT_FAILURE);
                }

                ssize_t n = buffer_read(&in, conn_fd, s->max_message_size + 1);
                idle_between_checkouts = 0;

                if (n == 0) {
                        if (buffer_length(&in) == 0)
                                worker_exit(EXIT_SUCCESS);  /* the client let the worker go */
                        log_warning("Worker %u: client closed the connection in the middle of a message "
                                    "(%zu bytes), closing", w->number, buffer_length(&in));
                        worker_exit(EXIT_FAILURE);
                }
                if (n == -EMSGSIZE) {
                        log_warning("Worker %u: message from client exceeds the limit of %zu bytes, closing",
                                    w->number, s->max_message_size);
                        (void) protocol_append_error(&out, PROTOCOL_ERROR_MESSAGE_TOO_LARGE,
                                                     "message exceeds the size limit", NULL);
                        (void) write_all(conn_fd, &out);
                        worker_exit(EXIT_FAILURE);
                }
                if (n < 0) {
                        if (n != -ECONNRESET)
                                log_warning_errno((int) n, "Worker %u: failed to read from client", w->number);
                        worker_exit(EXIT_SUCCESS);
                }
        }
}

_Noreturn void worker_run(aetask_server *s, scoreboard_slot *slot, int conn_fd) {
        aetask_worker *w = worker_new(s, slot);

        if (!w)
                worker_exit(EXIT_FAILURE);
        setup_process(w, conn_fd);
        journal_set_blocking(true);
        worker_serve(w, conn_fd);
}

/* The one descriptor the server sends over HAND_FD, or -1 when it closed
 * its end (or sent something else). */
static int receive_connection(int hand_fd) {
        union {
                struct cmsghdr header;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        char byte;
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                            .msg_controllen = sizeof(control.buf) };
        ssize_t n;

        do
                n = recvmsg(hand_fd, &m, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&m) : NULL;
        if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
            c->cmsg_len != CMSG_LEN(sizeof(int)) || (m.msg_flags & MSG_CTRUNC))
                return -1;
        int fd;
        memcpy(&fd, CMSG_DATA(c), sizeof(fd));
        return fd;
}

_Noreturn void worker_run_spare(aetask_server *s, scoreboard_slot *slot, int hand_fd) {
        aetask_worker *w = worker_new(s, slot);
        int conn_fd;

        if (!w)
                worker_exit(EXIT_FAILURE);
        setup_process(w, hand_fd);
        retire_fd = -1;  /* no client to tell yet */
        journal_set_blocking(true);
        set_title(w, "spare");

        worker_log_begin(&w->log, NULL, "setup");
        worker_setup(w);
        /* Nobody to answer yet: the server sees the failure in the slot and
         * backs off (backoff.c), instead of a client being handed a spare
         * that can only fail its first call. */
        if (w->setup_result < 0)
                worker_exit(EXIT_FAILURE);

        /* Flag first, then check, as between checkouts: a retiring spare
         * has nobody to tell, and just exits. */
        idle_between_checkouts = 1;
        if (retire_requested)
                worker_exit(EXIT_SUCCESS);
        conn_fd = receive_connection(hand_fd);
        idle_between_checkouts = 0;
        if (conn_fd < 0)
                worker_exit(EXIT_SUCCESS);
        retire_fd = conn_fd;
        safe_close(hand_fd);
        set_title(w, "worker");
        worker_serve(w, conn_fd);
}
