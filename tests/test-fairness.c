/* Sharing the workers between users, against the real aetaskd: a user
 * holding its share is refused more while another user is still served
 * (within 1 s), over TCP by source address; a user holding control
 * connections (trickling a byte at a time) leaves room for root's status;
 * and status shows who holds how many workers.  Another user is a forked
 * child that switches uid before it connects (it execs nothing: the build
 * tree may be closed to other users). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "hostile.h"

#define NOBODY 65534

static daemon_proc d;

static void cleanup(void) {
        daemon_stop(&d);
}

TestSuite(fairness, .fini = cleanup, .timeout = 60);

/* A TCP connection to PORT on 127.0.0.1 from the address FROM. */
static int connect_tcp(int port, const char *from) {
        struct sockaddr_in src = { .sin_family = AF_INET }, dst = { .sin_family = AF_INET, .sin_port = htons(port) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        cr_assert_geq(fd, 0);
        inet_pton(AF_INET, from, &src.sin_addr);
        inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
        cr_assert_eq(bind(fd, (struct sockaddr *) &src, sizeof(src)), 0, "bind %s: %s", from, strerror(errno));
        cr_assert_eq(connect(fd, (struct sockaddr *) &dst, sizeof(dst)), 0, "connect: %s", strerror(errno));
        return fd;
}

/* Reads a connection's first message: 1 for a worker's greeting, 0 for a
 * refusal (io.aetask.ServerBusy, its message in WHY). */
static int greeted(int fd, char *why, size_t size) {
        char buf[512];
        (void) send_hello(fd);  /* a refusal may have closed it already */
        ssize_t n = raw_read_message(fd, buf, sizeof(buf), 10);

        cr_assert_gt(n, 0, "no first message (%zd)", n);
        if (strstr(buf, "\"hello\""))
                return 1;
        cr_assert(strstr(buf, "io.aetask.ServerBusy"), "neither a greeting nor a refusal: %s", buf);
        if (why)
                snprintf(why, size, "%s", buf);
        return 0;
}

/* Connects (to d.sock, or over TCP to PORT from FROM) until refused, at
 * most MAX times; returns how many connections got a worker, kept in HELD. */
static int hold_until_refused(int *held, int max, int port, const char *from, char *why, size_t size) {
        int n = 0;

        while (n < max) {
                int fd = from ? connect_tcp(port, from) : unix_connect(d.sock);
                cr_assert_geq(fd, 0);
                if (!greeted(fd, why, size)) {
                        close(fd);
                        break;
                }
                held[n++] = fd;
        }
        return n;
}

static void become_nobody(void) {
        if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
            setresuid(NOBODY, NOBODY, NOBODY) < 0)
                _exit(100);
}

static void status_json(char *out, size_t size) {
        char address[128];
        const char *args[] = { "--json", "status", address, NULL };

        snprintf(address, sizeof(address), "unix:%s", d.control);
        cr_assert_eq(ctl_run(out, size, 10, args), 0, "aetaskctl status failed: %s", out);
}

/* In a child as user nobody: connects, makes one call, and writes how long
 * both took to REPORT; holds the connection until HOLD is closed. */
static void nobody_calls(int report, int hold) {
        static const char call[] = "{\"method\":\"io.aetask.Worker.echo\",\"parameters\":{\"args\":[\"nobody\"]}}";
        char buf[512];

        become_nobody();
        double t0 = now_seconds();
        int fd = unix_connect(d.sock);
        if (fd < 0 || send_hello(fd) < 0 || raw_read_message(fd, buf, sizeof(buf), 10) <= 0 ||
            !strstr(buf, "\"hello\""))
                _exit(101);
        if (send(fd, call, sizeof(call), MSG_NOSIGNAL) != sizeof(call) ||
            raw_read_message(fd, buf, sizeof(buf), 10) <= 0 || !strstr(buf, "\"nobody\""))
                _exit(102);
        double took = now_seconds() - t0;
        if (write(report, &took, sizeof(took)) != sizeof(took))
                _exit(103);
        (void) !read(hold, buf, 1);
        close(fd);
        _exit(0);
}

Test(fairness, a_user_holding_its_share_leaves_room_for_another) {
        const char *args[] = { "--max-workers", "8", NULL };
        int held[9], n_held, report[2], hold[2], status;
        char why[512], out[8192];

        daemon_start(&d, 0, -1, args);

        /* This user takes what it can: half of the 8 workers, by default. */
        n_held = hold_until_refused(held, 9, -1, NULL, why, sizeof(why));
        cr_assert_eq(n_held, 4, "one user holds %d of 8 workers (its share is 4)", n_held);
        cr_assert(strstr(why, "holds its share"), "%s", why);
        cr_assert_eq(daemon_log_count(&d, "Refusing a connection from uid"), 1);

        if (geteuid() != 0) {
                cr_log_warn("not root: the other user's side is not tested");
                for (int i = 0; i < n_held; i++)
                        close(held[i]);
                return;
        }

        /* Another user, while the first holds its whole share, is served. */
        cr_assert_eq(pipe(report), 0);
        cr_assert_eq(pipe(hold), 0);
        pid_t child = fork();
        cr_assert_geq(child, 0);
        if (child == 0) {
                close(report[0]);
                close(hold[1]);
                nobody_calls(report[1], hold[0]);
        }
        close(report[1]);
        close(hold[0]);
        double took = -1;
        cr_assert_eq(read(report[0], &took, sizeof(took)), (ssize_t) sizeof(took), "the other user was not served");
        fprintf(stderr, "another user, while one holds its share: connected and called in %.1f ms\n", took * 1000);
        cr_assert_lt(took, 1.0, "the other user waited %.3f s", took);

        /* Status shows the use of each user against the share. */
        status_json(out, sizeof(out));
        cr_assert(strstr(out, "\"max_workers\":8,\"max_workers_per_uid\":4,"), "%s", out);
        cr_assert(strstr(out, "\"users\":[{\"uid\":0,\"workers\":4,\"busy\":0},{\"uid\":65534,\"workers\":1,\"busy\":0}]"),
                  "%s", out);
        char address[128];
        const char *text[] = { "status", address, NULL };
        snprintf(address, sizeof(address), "unix:%s", d.control);
        cr_assert_eq(ctl_run(out, sizeof(out), 10, text), 0);
        cr_assert(strstr(out, " of at most 8, 4 per user;"), "%s", out);
        cr_assert(strstr(out, "\nUSER                      WORKERS   BUSY\n"
                              "uid 0                           4      0\n"
                              "uid 65534                       1      0\n"), "%s", out);

        close(hold[1]);
        cr_assert_eq(waitpid(child, &status, 0), child);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
        for (int i = 0; i < n_held; i++)
                close(held[i]);
}

/* Over TCP there is no uid: the share is per source address. */
Test(fairness, over_tcp_the_share_is_per_source_address) {
        struct sockaddr_in sa = { .sin_family = AF_INET };
        socklen_t len = sizeof(sa);
        const char *args[] = { "--max-workers", "4", NULL };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), held[5], n_held;
        char why[512], out[8192];

        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        cr_assert_eq(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        cr_assert_eq(listen(fd, 64), 0);
        cr_assert_eq(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
        int port = ntohs(sa.sin_port);
        daemon_start(&d, 0, fd, args);

        n_held = hold_until_refused(held, 5, port, "127.0.0.1", why, sizeof(why));
        cr_assert_eq(n_held, 2, "one address holds %d of 4 workers (its share is 2)", n_held);
        cr_assert(strstr(why, "holds its share"), "%s", why);

        double t0 = now_seconds();
        int other = connect_tcp(port, "127.0.0.2");
        cr_assert_eq(greeted(other, NULL, 0), 1, "another address is refused");
        fprintf(stderr, "another address, while one holds its share: greeted in %.1f ms\n", (now_seconds() - t0) * 1000);

        status_json(out, sizeof(out));
        cr_assert(strstr(out, "\"users\":[{\"address\":\"127.0.0.1\",\"workers\":2,\"busy\":0},"
                              "{\"address\":\"127.0.0.2\",\"workers\":1,\"busy\":0}]"), "%s", out);
        cr_assert(strstr(out, "\"client_address\":\"127.0.0.2\""), "%s", out);
        cr_assert_null(strstr(out, "\"client_uid\""), "a TCP client has no uid: %s", out);
        close(other);
        for (int i = 0; i < n_held; i++)
                close(held[i]);
}

#define TRICKLE_SECONDS 8

/* In a child as user nobody (in the control group): opens 20 control
 * connections, and trickles a byte into each every second, never ending a
 * request.  Reports how many the server kept, and the longest it kept one. */
static void nobody_trickles(int report) {
        int fds[20], n = 0;
        double opened[20], closed_after[20] = {}, held_max = 0;

        become_nobody();
        for (int i = 0; i < 20; i++) {
                int fd = unix_connect(d.control);
                if (fd >= 0) {
                        opened[n] = now_seconds();
                        fds[n++] = fd;
                }
        }
        usleep(300000);
        int kept = 0;
        for (int i = 0; i < n; i++) {
                struct pollfd p = { .fd = fds[i], .events = POLLIN };
                if (poll(&p, 1, 0) == 0) {
                        kept++;
                        (void) !send(fds[i], "{", 1, MSG_NOSIGNAL);
                } else
                        closed_after[i] = -1;  /* refused at once */
        }
        for (double end = now_seconds() + TRICKLE_SECONDS; now_seconds() < end; usleep(1000000))
                for (int i = 0; i < n; i++) {
                        struct pollfd p = { .fd = fds[i], .events = POLLIN };
                        if (closed_after[i] != 0)
                                continue;
                        if (poll(&p, 1, 0) > 0 || send(fds[i], " ", 1, MSG_NOSIGNAL) < 0)
                                closed_after[i] = now_seconds() - opened[i];
                }
        for (int i = 0; i < n; i++)
                if (closed_after[i] >= 0)
                        held_max = closed_after[i] > 0 ? (closed_after[i] > held_max ? closed_after[i] : held_max)
                                                       : TRICKLE_SECONDS + 1;  /* never closed */
        double r[2] = { kept, held_max };
        _exit(write(report, r, sizeof(r)) == sizeof(r) ? 0 : 103);
}

Test(fairness, a_user_trickling_into_every_control_connection_leaves_room_for_root) {
        const char *args[] = { "--control-group", "65534", NULL };
        char address[128], out[8192];
        const char *status[] = { "status", address, NULL };
        int report[2], ok = 0, tries = 0, wstatus;
        double slowest = 0;

        if (geteuid() != 0)
                cr_skip_test("needs root, to be another user too");
        daemon_start(&d, 0, -1, args);
        snprintf(address, sizeof(address), "unix:%s", d.control);

        cr_assert_eq(pipe(report), 0);
        pid_t child = fork();
        cr_assert_geq(child, 0);
        if (child == 0) {
                close(report[0]);
                nobody_trickles(report[1]);
        }
        close(report[1]);

        /* Root asks for status every second while the other user holds on. */
        usleep(500000);
        for (double end = now_seconds() + TRICKLE_SECONDS - 1.5; now_seconds() < end; usleep(1000000)) {
                double t0 = now_seconds();
                int rc = ctl_run(out, sizeof(out), 5, status);
                double took = now_seconds() - t0;
                tries++;
                ok += rc == 0 && strstr(out, "Workers: ") != NULL;
                slowest = took > slowest ? took : slowest;
        }
        double r[2] = {};
        cr_assert_eq(read(report[0], r, sizeof(r)), (ssize_t) sizeof(r), "no report from the child");
        cr_assert_eq(waitpid(child, &wstatus, 0), child);
        fprintf(stderr, "control socket: root's status answered %d of %d times (slowest %.0f ms); "
                "the trickling user kept %.0f of 20 connections, the longest for %.1f s\n",
                ok, tries, slowest * 1000, r[0], r[1]);
        cr_assert_eq(ok, tries, "root's status answered %d times of %d", ok, tries);
        cr_assert_gt(tries, 4);
        cr_assert_leq(r[0], 4, "one user holds %.0f control connections", r[0]);
        cr_assert_gt(r[0], 0, "the user in the control group got no connection");
        cr_assert_lt(r[1], 6.5, "a request trickled in a byte a second was given %.1f s", r[1]);
}
