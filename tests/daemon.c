/* The real aetaskd and aetaskctl programs, driven from criterion tests. */
#include "daemon.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hostile.h"

static void exec_daemon(daemon_proc *d, rlim_t nofile, int listen_fd, const char *const *args) {
        const char *argv[64] = { "aetaskd", "--handler", "echo", "--control", NULL };
        char control[128], listen[128], pid[32];
        size_t n = 4;
        int log = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0600);

        snprintf(control, sizeof(control), "unix:%s", d->control);
        argv[n++] = control;
        if (listen_fd >= 0) {
                /* As systemd passes it: fd 3, LISTEN_PID naming us. */
                if (listen_fd != 3) {
                        dup2(listen_fd, 3);
                        close(listen_fd);
                }
                (void) fcntl(3, F_SETFD, 0);
                snprintf(pid, sizeof(pid), "%d", (int) getpid());
                setenv("LISTEN_PID", pid, 1);
                setenv("LISTEN_FDS", "1", 1);
                unsetenv("LISTEN_FDNAMES");
        } else {
                snprintf(listen, sizeof(listen), "unix:%s", d->sock);
                argv[n++] = "--listen";
                argv[n++] = listen;
        }
        for (size_t i = 0; args && args[i] && n < 63; i++)
                argv[n++] = args[i];
        argv[n] = NULL;
        dup2(log, STDERR_FILENO);
        setenv("AETASK_JOURNAL_SOCKET", "/nonexistent/aetask-test", 1);
        if (nofile > 0) {
                struct rlimit rl = { nofile, nofile };
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        _exit(126);
        }
        execv(getenv("AETASKD"), (char **) argv);
        _exit(127);
}

void daemon_start(daemon_proc *d, rlim_t nofile, int listen_fd, const char *const *args) {
        memset(d, 0, sizeof(*d));
        snprintf(d->dir, sizeof(d->dir), "/tmp/aetask-daemon-XXXXXX");
        cr_assert_not_null(getenv("AETASKD"), "$AETASKD is not set");
        cr_assert_not_null(mkdtemp(d->dir));
        cr_assert_eq(chmod(d->dir, 0755), 0);
        snprintf(d->sock, sizeof(d->sock), "%s/w.sock", d->dir);
        snprintf(d->control, sizeof(d->control), "%s/c.sock", d->dir);
        snprintf(d->log, sizeof(d->log), "%s/log", d->dir);

        d->pid = fork();
        cr_assert_geq(d->pid, 0);
        if (d->pid == 0)
                exec_daemon(d, nofile, listen_fd, args);
        if (listen_fd >= 0)
                close(listen_fd);

        double deadline = now_seconds() + 10;
        while (access(d->control, F_OK) < 0 || (listen_fd < 0 && access(d->sock, F_OK) < 0)) {
                cr_assert_lt(now_seconds(), deadline, "aetaskd did not start");
                cr_assert_eq(waitpid(d->pid, NULL, WNOHANG), 0, "aetaskd exited");
                usleep(10000);
        }
        /* Open to everyone: tests connect as other users too. */
        (void) chmod(d->control, 0666);
        if (listen_fd < 0)
                (void) chmod(d->sock, 0666);
        /* The listening sockets come before the event loop: wait for it. */
        char out[256];
        const char *status[] = { "--json", "status", NULL, NULL };
        char address[128];
        snprintf(address, sizeof(address), "unix:%s", d->control);
        status[2] = address;
        while (ctl_run(out, sizeof(out), 5, status) != 0)
                cr_assert_lt(now_seconds(), deadline, "aetaskd does not answer status");
}

void daemon_stop(daemon_proc *d) {
        char cmd[128];

        if (d->pid > 0) {
                kill(d->pid, SIGTERM);
                waitpid(d->pid, NULL, 0);
                d->pid = 0;
        }
        if (d->dir[0]) {
                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
                (void) !system(cmd);
                d->dir[0] = 0;
        }
}

int daemon_log_count(daemon_proc *d, const char *text) {
        FILE *f = fopen(d->log, "re");
        char line[4096];
        int n = 0;

        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f))
                n += !!strstr(line, text);
        fclose(f);
        return n;
}

int unix_connect(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        return fd;
}

double proc_cpu_seconds(pid_t pid) {
        char path[64], buf[1024];
        unsigned long long utime = 0, stime = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        f = fopen(path, "re");
        cr_assert_not_null(f);
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = 0;
        /* After the command name, which may hold spaces: fields 14 and 15. */
        char *p = strrchr(buf, ')');
        cr_assert_not_null(p);
        cr_assert_eq(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime), 2);
        return (double) (utime + stime) / (double) sysconf(_SC_CLK_TCK);
}

int ctl_run(char *out, size_t size, double max_seconds, const char *const *args) {
        const char *argv[16] = { "aetaskctl" };
        int pipefd[2], status;
        size_t have = 0, n = 1;

        cr_assert_not_null(getenv("AETASKCTL"), "$AETASKCTL is not set");
        for (size_t i = 0; args[i] && n < 15; i++)
                argv[n++] = args[i];
        cr_assert_eq(pipe2(pipefd, O_CLOEXEC), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                dup2(pipefd[1], STDOUT_FILENO);
                execv(getenv("AETASKCTL"), (char **) argv);
                _exit(127);
        }
        close(pipefd[1]);
        double deadline = now_seconds() + max_seconds;
        for (;;) {
                struct pollfd p = { .fd = pipefd[0], .events = POLLIN };
                double left = deadline - now_seconds();
                if (left <= 0 || poll(&p, 1, (int) (left * 1000) + 1) == 0) {
                        kill(pid, SIGKILL);
                        waitpid(pid, NULL, 0);
                        close(pipefd[0]);
                        return -1;
                }
                char discard[4096];
                bool full = have == size - 1;  /* the rest is read and dropped */
                ssize_t k = full ? read(pipefd[0], discard, sizeof(discard))
                                 : read(pipefd[0], out + have, size - 1 - have);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                if (!full)
                        have += (size_t) k;
        }
        out[have] = 0;
        close(pipefd[0]);
        waitpid(pid, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
