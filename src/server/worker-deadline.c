/* A call's deadline in the worker: the client sends the time the call has
 * left (protocol "timeout_usec"); the handler can ask for it
 * (aetask_worker_get_deadline(), to give a database query its own
 * timeout), and past it plus a grace the worker stops itself, telling the
 * client why (io.aetask.DeadlineExceeded).
 *
 * The worker does it, not the server: a POSIX timer on CLOCK_MONOTONIC with
 * sub-second precision, armed for the call and disarmed after it, costs two
 * system calls per call, where the server's scan of its scoreboard runs at a
 * fraction of the whole-second hung timeout, which stays the ceiling for a
 * worker that blocks the timer's signal. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "protocol.h"
#include "worker-deadline.h"

static timer_t timer;
static bool timer_made;
static volatile sig_atomic_t armed_fd = -1;
static char *pending;                     /* answers not written yet, to go first */
static size_t pending_len, pending_cap;
static char message[320];
static size_t message_len;

static void write_fully(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k <= 0)
                        return;
                p += k;
                n -= (size_t) k;
        }
}

/* A signal handler: write(2) and _exit(2) only. */
static void on_deadline(int sig) {
        int fd = armed_fd;

        if (fd >= 0) {
                write_fully(fd, pending, pending_len);
                write_fully(fd, message, message_len);
        }
        _exit(WORKER_EXIT_DEADLINE);
}

static bool make_timer(void) {
        struct sigaction sa = { .sa_handler = on_deadline };
        struct sigevent ev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN };

        if (timer_made)
                return true;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGRTMIN, &sa, NULL) < 0 || timer_create(CLOCK_MONOTONIC, &ev, &timer) < 0)
                return false;
        timer_made = true;
        return true;
}

uint64_t worker_deadline_arm(int fd, const buffer *out, uint64_t now, uint64_t timeout_usec) {
        uint64_t stop = timeout_usec + WORKER_DEADLINE_GRACE_USEC;
        struct itimerspec when = {
                .it_value = { .tv_sec = (time_t) (stop / USEC_PER_SEC), .tv_nsec = (long) (stop % USEC_PER_SEC) * 1000 },
        };

        if (timeout_usec == 0)
                return UINT64_MAX;
        if (!make_timer())
                return now + timeout_usec;
        int n = snprintf(message, sizeof(message) - 1,
                         "{\"error\":\"" PROTOCOL_ERROR_DEADLINE "\",\"parameters\":{\"message\":"
                         "\"the call ran past its deadline (%.3f s) and the grace of %.3f s: the worker was stopped\"}}",
                         (double) timeout_usec / USEC_PER_SEC, (double) WORKER_DEADLINE_GRACE_USEC / USEC_PER_SEC);
        message_len = (size_t) n + 1;  /* the NUL ends the message */
        /* A copy: the buffer may move once the handler returns. */
        pending_len = 0;
        if (buffer_length(out) > pending_cap) {
                char *p = realloc(pending, buffer_length(out));
                if (p) {
                        pending = p;
                        pending_cap = buffer_length(out);
                }
        }
        if (buffer_length(out) <= pending_cap && buffer_length(out) > 0) {
                memcpy(pending, buffer_head(out), buffer_length(out));
                pending_len = buffer_length(out);
        }
        armed_fd = fd;
        (void) timer_settime(timer, 0, &when, NULL);
        return now + timeout_usec;
}

void worker_deadline_disarm(uint64_t deadline) {
        static const struct itimerspec off = {};

        if (deadline == UINT64_MAX)
                return;
        armed_fd = -1;
        if (timer_made)
                (void) timer_settime(timer, 0, &off, NULL);
}
