/* aetask_server_fork(): a dedicated server process forked from a C program,
 * tied to it by a keep-alive pipe (the seed's fork_task_server). */
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "child-exit.h"
#include "macro.h"
#include "server-internal.h"

static bool fd_in(int fd, const int *fds, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (fds[i] == fd)
                        return true;
        return false;
}

/* Closes every descriptor but the standard ones, KEEP and the listening and
 * control sockets: the server must not hold the parent's connections open. */
static void close_all_but(aetask_server *s, int keep) {
        int max = keep;
        for (size_t i = 0; i < s->n_listen_fds; i++)
                max = MAX(max, s->listen_fds[i]);
        for (size_t i = 0; i < s->n_control_fds; i++)
                max = MAX(max, s->control_fds[i]);

        for (int fd = 3; fd <= max; fd++)
                if (fd != keep && !fd_in(fd, s->listen_fds, s->n_listen_fds) &&
                    !fd_in(fd, s->control_fds, s->n_control_fds))
                        close(fd);
        close_range(max + 1, ~0U, 0);
}

_public_ int aetask_server_fork(aetask_server *s, pid_t *ret_pid, int *ret_keepalive_fd) {
        int pipefd[2];
        pid_t pid;

        assert_return(s, -EINVAL);
        assert_return(s->handler, -ENOPKG);
        assert_return(s->n_listen_fds > 0, -EDESTADDRREQ);

        /* Here too, so the caller hears of bad options, not just the child. */
        int r = server_check_options(s);
        if (r < 0)
                return r;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;

        pid = fork();
        if (pid < 0) {
                r = -errno;
                safe_close(pipefd[0]);
                safe_close(pipefd[1]);
                return r;
        }
        if (pid == 0) {
                struct sigaction dfl = { .sa_handler = SIG_DFL };
                sigset_t none;

                /* Whatever the parent did with signals is not the server's. */
                for (int sig = 1; sig < _NSIG; sig++)
                        (void) sigaction(sig, &dfl, NULL);
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);

                /* The parent's service manager talks to the parent, not to
                 * this server: no READY=1 or STATUS= of ours in its name. */
                unsetenv("NOTIFY_SOCKET");
                unsetenv("WATCHDOG_PID");
                unsetenv("WATCHDOG_USEC");
                unsetenv("LISTEN_PID");
                unsetenv("LISTEN_FDS");
                unsetenv("LISTEN_FDNAMES");

                safe_close(pipefd[1]);
                close_all_but(s, pipefd[0]);
                s->keepalive_fd = pipefd[0];
                child_exit(aetask_server_run(s) < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
        }

        safe_close(pipefd[0]);
        /* The parent's copies of the listening sockets are the child's now. */
        for (size_t i = 0; i < s->n_listen_fds; i++)
                safe_close(s->listen_fds[i]);
        s->n_listen_fds = 0;
        for (size_t i = 0; i < s->n_control_fds; i++)
                safe_close(s->control_fds[i]);
        s->n_control_fds = 0;

        if (ret_keepalive_fd)
                *ret_keepalive_fd = pipefd[1];
        /* else: the write end stays open (close-on-exec) until this process
         * exits, and so does the server. */
        if (ret_pid)
                *ret_pid = pid;
        return 0;
}
