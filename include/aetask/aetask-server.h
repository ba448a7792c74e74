/* The server: accepts connections and forks one worker process per
 * connection, running a handler.  aetaskd is a thin program around it; a C
 * program can also fork a dedicated server of its own with
 * aetask_server_fork() (the seed's fork_task_server).  See aetask-server(3). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <aetask/aetask-handler.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aetask_server aetask_server;

int aetask_server_new(aetask_server **ret);
aetask_server *aetask_server_free(aetask_server *server);

/* Either hand over a handler, or load the module NAME from DIR (NULL: the
 * installed handler directory, or $AETASK_HANDLER_DIR). */
int aetask_server_set_handler(aetask_server *server, const aetask_handler *handler);
int aetask_server_load_handler(aetask_server *server, const char *name, const char *dir);
/* Why the last aetask_server_load_handler() failed, for the caller to print
 * (the library logs nothing); NULL after a success. */
const char *aetask_server_get_load_error(aetask_server *server);

int aetask_server_set_name(aetask_server *server, const char *name);
int aetask_server_set_hung_timeout(aetask_server *server, uint64_t usec);
int aetask_server_set_max_message_size(aetask_server *server, size_t size);
/* Most workers alive at once (1 to 65536, default 256), fitted at start to
 * the file descriptor limit; and most of them one user may hold (by peer
 * credentials; over TCP, one source address), 0: half of them, rounded up. */
int aetask_server_set_max_workers(aetask_server *server, unsigned n);
int aetask_server_set_max_workers_per_uid(aetask_server *server, unsigned n);
int aetask_server_set_spare_workers(aetask_server *server, unsigned n);
int aetask_server_set_max_worker_lifetime(aetask_server *server, uint64_t usec);
int aetask_server_set_max_worker_rss(aetask_server *server, uint64_t bytes);
/* How workers are scheduled.  BATCH, the default: a worker whose server
 * runs at the normal policy (SCHED_OTHER) switches to SCHED_BATCH, so that
 * a worker woken by a call does not preempt the event loop that sent it,
 * but runs when a CPU is free or at the next tick; a policy the server was
 * given (a unit's CPUSchedulingPolicy=) stands.  INHERIT: the server's
 * policy, whatever it is. */
typedef enum aetask_worker_scheduling {
        AETASK_WORKER_SCHEDULING_BATCH,
        AETASK_WORKER_SCHEDULING_INHERIT,
        _AETASK_WORKER_SCHEDULING_MAX,
} aetask_worker_scheduling;
int aetask_server_set_worker_scheduling(aetask_server *server, aetask_worker_scheduling scheduling);
/* On SIGTERM, how long busy workers may take to finish their checkouts
 * before they are killed (default 90 s; 0: no limit). */
int aetask_server_set_drain_timeout(aetask_server *server, uint64_t usec);
int aetask_server_set_option(aetask_server *server, const char *key, const char *value);
/* The most verbose priority the server and its workers write, to stderr or
 * the journal (a syslog level, LOG_EMERG to LOG_DEBUG; default LOG_INFO, or
 * LOG_DEBUG with $AETASK_DEBUG): LOG_ERR quiets a server forked in a
 * program or test.  Messages a handler logs still reach the journal and the
 * client; without a journal, they too are cut at this level. */
int aetask_server_set_log_level(aetask_server *server, int level);
/* The priority of the entry each worker writes per call (trace id, method,
 * duration, outcome); default LOG_DEBUG, so written only when the log
 * level lets it through. */
int aetask_server_set_call_log_level(aetask_server *server, int level);

/* Listens on ADDRESS now (unix:/path, unix:@abstract, tcp:HOST:PORT), or
 * serves an already listening socket FD, which the server then owns. */
int aetask_server_listen(aetask_server *server, const char *address);
int aetask_server_add_listen_fd(aetask_server *server, int fd);

/* The control socket: answers io.aetask.Server.Status (the workers, from
 * the scoreboard) to root, to the server's own uid, and to members of the
 * group set with aetask_server_set_control_group() ((gid_t) -1: none). */
int aetask_server_listen_control(aetask_server *server, const char *address);
int aetask_server_add_control_fd(aetask_server *server, int fd);
int aetask_server_allow_user(aetask_server *server, uid_t uid);
int aetask_server_allow_group(aetask_server *server, gid_t gid);
int aetask_server_set_control_group(aetask_server *server, gid_t gid);

/* Serves until SIGTERM or SIGINT.  Returns 0, or a negative errno. */
int aetask_server_run(aetask_server *server);

/* Forks a process that serves; the server object stays with the caller, who
 * may free it.  When the caller closes *RET_KEEPALIVE_FD, or exits, the
 * server shuts down.  With RET_KEEPALIVE_FD NULL, it lasts until the caller
 * exits. */
int aetask_server_fork(aetask_server *server, pid_t *ret_pid, int *ret_keepalive_fd);

static inline void aetask_server_freep(aetask_server **p) {
        if (*p)
                aetask_server_free(*p);
}

#ifdef __cplusplus
}
#endif
