/* Test helpers: the real aetaskd program ($AETASKD) started in a temporary
 * folder with its log in a file, optionally under a file descriptor limit or
 * on a socket passed as systemd would; what it has cost in CPU; and
 * aetaskctl ($AETASKCTL) run with its output captured. */
#pragma once

#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

typedef struct daemon_proc {
        char dir[64];
        char sock[96];                 /* unix:SOCK for --listen, unless a socket is passed */
        char control[96];              /* --control unix:CONTROL */
        char log[96];                  /* its stderr */
        pid_t pid;
} daemon_proc;

/* Starts aetaskd --handler echo --control unix:CONTROL ARGS (NULL-ended),
 * with --listen unix:SOCK, or on LISTEN_FD (>= 0) as systemd's socket;
 * NOFILE > 0 sets its RLIMIT_NOFILE (soft and hard) before exec.  The
 * folder and the sockets are open to every user.  Returns once the control
 * socket answers. */
void daemon_start(daemon_proc *d, rlim_t nofile, int listen_fd, const char *const *args);
/* SIGTERM, wait, remove the folder. */
void daemon_stop(daemon_proc *d);
int daemon_log_count(daemon_proc *d, const char *text);
/* A connection to the unix socket PATH, without reading anything; -1 when
 * it cannot be made (no test assertion: usable in a forked child). */
int unix_connect(const char *path);

/* user + system CPU time PID has used, in seconds. */
double proc_cpu_seconds(pid_t pid);

/* Runs $AETASKCTL ARGS (NULL-ended) as this user; its stdout goes to OUT.
 * Returns its exit status, or -1 when it took over MAX_SECONDS (killed). */
int ctl_run(char *out, size_t size, double max_seconds, const char *const *args);
