/* The many workload's floor: the same client processes and connections,
 * each connection answered by a process of its own that echoes 16 bytes,
 * with nothing of aetask's in between.  It is what the machine does with
 * that many processes talking over sockets, so the many curve can be read
 * against it: how much of its fall at 512 connections is the machine's. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "child-exit.h"

#define MESSAGE_SIZE 16

/* Answers every read with the same bytes until the other end closes. */
_Noreturn static void echo_process(int fd) {
        char buf[256];

        /* Only its own socket: a copy of another's would keep that one
         * open after its client closes it. */
        if (dup2(fd, 3) < 0)
                _exit(EXIT_FAILURE);
        (void) close_range(4, ~0U, 0);
        for (;;) {
                ssize_t n = read(3, buf, sizeof(buf));
                if (n <= 0 || write_full(3, buf, (size_t) n) < 0)
                        _exit(EXIT_SUCCESS);
        }
}

/* N connections, each to an echo process, as many round trips as it can
 * until the run ends; writes the round trips per second to RESULTS. */
_Noreturn static void client_process(unsigned n, int results) {
        static const char message[MESSAGE_SIZE] = "ping, the floor";
        int *fds = calloc(n, sizeof(int)), ep = epoll_create1(EPOLL_CLOEXEC);
        uint64_t trips = 0;

        if (!fds || ep < 0)
                child_exit(EXIT_FAILURE);
        for (unsigned i = 0; i < n; i++) {
                int sv[2];
                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                        child_exit(EXIT_FAILURE);
                pid_t pid = fork();
                if (pid < 0)
                        child_exit(EXIT_FAILURE);
                if (pid == 0)
                        echo_process(sv[1]);
                close(sv[1]);
                fds[i] = sv[0];
                /* Edge-triggered, as aetask's client: each answer is
                 * reported once. */
                struct epoll_event e = { .events = EPOLLIN | EPOLLET, .data.u32 = i };
                if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e) < 0)
                        child_exit(EXIT_FAILURE);
        }

        uint64_t start = now_usec(CLOCK_MONOTONIC), end = start + (uint64_t) (arg.duration * USEC_PER_SEC);
        for (unsigned i = 0; i < n; i++)
                if (write_full(fds[i], message, sizeof(message)) < 0)
                        child_exit(EXIT_FAILURE);
        while (now_usec(CLOCK_MONOTONIC) < end) {
                struct epoll_event ev[256];
                int k = epoll_wait(ep, ev, 256, 100);
                if (k < 0 && errno != EINTR)
                        child_exit(EXIT_FAILURE);
                for (int j = 0; j < k; j++) {
                        int fd = fds[ev[j].data.u32];
                        char buf[MESSAGE_SIZE];
                        if (read_full(fd, buf, sizeof(buf)) < 0 || write_full(fd, message, sizeof(message)) < 0)
                                child_exit(EXIT_FAILURE);
                        trips++;
                }
        }
        double rate = (double) trips * USEC_PER_SEC / (double) (now_usec(CLOCK_MONOTONIC) - start);
        if (write_full(results, &rate, sizeof(rate)) < 0)
                child_exit(EXIT_FAILURE);
        for (unsigned i = 0; i < n; i++)
                close(fds[i]);
        while (wait(NULL) > 0)
                ;
        child_exit(EXIT_SUCCESS);
}

double bench_many_floor(unsigned connections, unsigned processes) {
        pid_t pids[processes];
        int results[processes];
        double sum = 0;

        for (unsigned i = 0; i < processes; i++) {
                int r[2];
                if (pipe2(r, O_CLOEXEC) < 0)
                        die("pipe: %m");
                pids[i] = fork();
                if (pids[i] < 0)
                        die("fork: %m");
                if (pids[i] == 0) {
                        for (unsigned j = 0; j < i; j++)
                                close(results[j]);
                        close(r[0]);
                        /* Its share: the remainder goes to the first ones. */
                        client_process(connections / processes + (i < connections % processes), r[1]);
                }
                close(r[1]);
                results[i] = r[0];
        }
        for (unsigned i = 0; i < processes; i++) {
                double rate;
                int status;
                if (read_full(results[i], &rate, sizeof(rate)) < 0 || waitpid(pids[i], &status, 0) < 0 ||
                    !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        die("many: a floor process failed (%u connections)", connections);
                close(results[i]);
                sum += rate;
        }
        return sum;
}
