/* A call's deadline in the worker: the client sends the time the call has
 * left (protocol "timeout_usec"); the handler can ask for it
 * (aetask_worker_get_deadline(), to give a database query its own
 * timeout), and past it plus a grace the worker stops itself, telling the
 * client why (io.aetask.DeadlineExceeded).
 *
 * The worker does it, not the server: a POSIX timer on CLOCK_MONOTONIC has
 * sub-second precision, where the server's scan of its scoreboard runs at a
 * fraction of the whole-second hung timeout, which stays the ceiling for a
 * worker that blocks the timer's signal.  The timer is re-armed lazily, as
 * the client's timeouts are (timeout.c): calls' deadlines mostly move later,
 * so it stays armed for an earlier stop as long as that is at most the grace
 * earlier than this call's, and when it fires with no call past its time it
 * re-arms itself for the running call, or stays off.  Calls then cost a
 * system call here at most every grace (250 ms), and the signal, which
 * interrupts a handler's sleep or poll, never comes before the running
 * call's deadline has passed. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "protocol.h"
#include "time-util.h"
#include "worker-deadline.h"

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

static timer_t timer;
static bool timer_made;
/* Shared with the signal handler, which runs on this thread. */
static volatile sig_atomic_t armed_fd = -1;
static volatile uint64_t stop_at;         /* the running call's deadline plus grace, or 0 */
static volatile uint64_t armed_for;       /* when the timer fires, or 0 when off */
static char *pending;                     /* answers not written yet, to go first */
static size_t pending_len, pending_cap;
static volatile uint64_t timeout_ms;      /* the running call's, for the message */

/* timer_settime() is async-signal-safe: the handler calls this too. */
static void arm_at(uint64_t when) {
        struct itimerspec its = {
                .it_value = { .tv_sec = (time_t) (when / USEC_PER_SEC), .tv_nsec = (long) (when % USEC_PER_SEC) * 1000 },
        };
        armed_for = when;
        (void) timer_settime(timer, TIMER_ABSTIME, &its, NULL);
}

static void write_fully(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k <= 0)
                        return;
                p += k;
                n -= (size_t) k;
        }
}

/* A signal handler: clock_gettime(2), timer_settime(2), write(2) and
 * _exit(2) only. */
static void on_deadline(int sig) {
        uint64_t stop = stop_at;
        int fd = armed_fd;

        armed_for = 0;
        if (stop == 0)
                return;                   /* between calls: stay off */
        if (now_usec(CLOCK_MONOTONIC) < stop) {
                arm_at(stop);             /* fired for an earlier call */
                return;
        }
        if (fd >= 0) {
                static const char head[] = "{\"error\":\"" PROTOCOL_ERROR_DEADLINE "\",\"parameters\":"
                                           "{\"message\":\"the call ran past its deadline of ";
                static const char tail[] = " ms and the grace of " STRINGIFY(WORKER_DEADLINE_GRACE_MS)
                                           " ms: the worker was stopped\"}}";
                char digits[24];
                size_t i = sizeof(digits);
                uint64_t v = timeout_ms;

                do
                        digits[--i] = (char) ('0' + v % 10);
                while ((v /= 10) > 0);
                write_fully(fd, pending, pending_len);
                write_fully(fd, head, sizeof(head) - 1);
                write_fully(fd, digits + i, sizeof(digits) - i);
                write_fully(fd, tail, sizeof(tail));  /* the NUL ends the message */
        }
        _exit(WORKER_EXIT_DEADLINE);
}

static bool make_timer(void) {
        struct sigaction sa = { .sa_handler = on_deadline, .sa_flags = SA_RESTART };
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
        if (timeout_usec == 0)
                return UINT64_MAX;
        if (!make_timer())
                return now + timeout_usec;
        timeout_ms = (timeout_usec + 999) / 1000;
        /* A copy: the buffer may move once the handler returns. */
        pending_len = 0;
        if (buffer_length(out) > pending_cap) {
                char *p = realloc(pending, buffer_length(out));
                if (p) {
                        pending = p;
                        pending_cap = buffer_length(out);
                }
        }
        if (buffer_length(out) > 0 && buffer_length(out) <= pending_cap) {
                memcpy(pending, buffer_head(out), buffer_length(out));
                pending_len = buffer_length(out);
        }
        armed_fd = fd;
        uint64_t stop = now + timeout_usec + WORKER_DEADLINE_GRACE_MS * 1000;
        stop_at = stop;
        uint64_t armed = armed_for;
        if (armed == 0 || armed > stop || armed + WORKER_DEADLINE_GRACE_MS * 1000 < stop)
                arm_at(stop);
        return now + timeout_usec;
}

void worker_deadline_disarm(uint64_t deadline) {
        if (deadline == UINT64_MAX)
                return;
        /* The timer stays armed: if it fires between calls, it goes off. */
        stop_at = 0;
        armed_fd = -1;
}
