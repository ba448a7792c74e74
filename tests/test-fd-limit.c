/* aetaskd and its file descriptor limit, against the real program: a
 * --max-workers the limit cannot serve is fitted to it at start (one log
 * line); and when descriptors run out all the same (the limit lowered
 * while it runs), the server pauses accepting instead of spinning on
 * EMFILE, logs that at most once a second, and serves again once workers
 * exit.  CPU time is the server's own, from /proc/PID/stat. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon.h"
#include "hostile.h"
#include "hello.h"

#define FLOOD 100

static daemon_proc d;

static void cleanup(void) {
        daemon_stop(&d);
}

TestSuite(fd_limit, .fini = cleanup, .timeout = 60);

/* FLOOD connections at once, left waiting for SECONDS; returns the CPU
 * time the server spent meanwhile. */
static double flood(int fds[static FLOOD], double seconds) {
        double cpu0 = proc_cpu_seconds(d.pid);

        for (int i = 0; i < FLOOD; i++) {
                fds[i] = unix_connect(d.sock);
                cr_assert_geq(fds[i], 0, "connect: %s", strerror(errno));
                cr_assert_eq(send_hello(fds[i]), 0, "hello: %s", strerror(errno));
        }
        usleep((useconds_t) (seconds * 1e6));
        return proc_cpu_seconds(d.pid) - cpu0;
}

/* 1: greeted by a worker, 0: refused, -1: nothing yet. */
static int first_message(int fd) {
        char buf[512];
        struct pollfd p = { .fd = fd, .events = POLLIN };

        if (poll(&p, 1, 0) <= 0)
                return -1;
        ssize_t n = raw_read_message(fd, buf, sizeof(buf), 1);
        if (n > 0 && strstr(buf, "\"hello\""))
                return 1;
        return 0;
}

static unsigned long long status_max_workers(void) {
        char address[128], out[8192];
        const char *args[] = { "--json", "status", address, NULL };

        snprintf(address, sizeof(address), "unix:%s", d.control);
        cr_assert_eq(ctl_run(out, sizeof(out), 10, args), 0);
        const char *p = strstr(out, "\"max_workers\":");
        cr_assert_not_null(p, "%s", out);
        return strtoull(p + strlen("\"max_workers\":"), NULL, 10);
}

Test(fd_limit, max_workers_is_fitted_to_the_limit_at_start) {
        const char *args[] = { "--max-workers", "1000", "--max-workers-per-uid", "1000", NULL };
        int fds[FLOOD], greeted = 0, refused = 0;

        daemon_start(&d, 64, -1, args);
        cr_assert_eq(daemon_log_count(&d, "Serving at most"), 1, "no line says the cap was lowered");
        unsigned long long cap = status_max_workers();
        fprintf(stderr, "RLIMIT_NOFILE 64, --max-workers 1000: serving at most %llu\n", cap);
        cr_assert(cap > 0 && cap < 64, "max_workers %llu", cap);

        double cpu = flood(fds, 1.5);
        for (int i = 0; i < FLOOD; i++) {
                int m = first_message(fds[i]);
                greeted += m == 1;
                refused += m == 0;
        }
        fprintf(stderr, "%d connections: %d served, %d refused, server CPU %.2f s in 1.5 s\n",
                FLOOD, greeted, refused, cpu);
        cr_assert_eq(greeted, (int) cap);
        cr_assert_eq(refused, FLOOD - (int) cap, "the rest are refused politely, not left waiting");
        cr_assert_lt(cpu, 0.5);
        cr_assert_eq(daemon_log_count(&d, "Failed to accept"), 0);
        for (int i = 0; i < FLOOD; i++)
                close(fds[i]);
}

Test(fd_limit, out_of_descriptors_the_server_pauses_and_resumes) {
        const char *args[] = { "--max-workers", "1000", "--max-workers-per-uid", "1000", NULL };
        int fds[FLOOD], state[FLOOD], greeted = 0;
        struct rlimit low = { 40, 40 };

        daemon_start(&d, 0, -1, args);
        /* Lowered under the running server: it counted on more. */
        cr_assert_eq(prlimit(d.pid, RLIMIT_NOFILE, &low, NULL), 0, "prlimit: %s", strerror(errno));

        double cpu = flood(fds, 2);
        for (int i = 0; i < FLOOD; i++) {
                state[i] = first_message(fds[i]);
                greeted += state[i] == 1;
                cr_assert_neq(state[i], 0, "connection %d refused", i);
        }
        int lines = daemon_log_count(&d, "Failed to accept");
        fprintf(stderr, "out of descriptors: %d of %d connections served, server CPU %.3f s in 2 s, "
                "%d log lines about it\n", greeted, FLOOD, cpu, lines);
        cr_assert_gt(greeted, 0);
        cr_assert_lt(greeted, FLOOD);
        cr_assert_lt(cpu, 0.2, "the server spun: %.2f s of CPU in 2 s", cpu);
        cr_assert_geq(lines, 1);
        cr_assert_leq(lines, 3, "%d log lines in 2 s", lines);

        /* The served clients leave: their workers exit, and the waiting
         * connections are taken. */
        for (int i = 0; i < FLOOD; i++)
                if (state[i] == 1)
                        close(fds[i]);
        int later = 0;
        for (double deadline = now_seconds() + 5; later == 0 && now_seconds() < deadline; usleep(50000))
                for (int i = 0; i < FLOOD; i++)
                        if (state[i] == -1 && first_message(fds[i]) == 1) {
                                state[i] = 2;
                                later++;
                        }
        fprintf(stderr, "after the served ones left, %d waiting connections were served\n", later);
        cr_assert_gt(later, 0, "the server does not accept again once descriptors are free");
        for (int i = 0; i < FLOOD; i++)
                if (state[i] != 1)
                        close(fds[i]);
}
