/* The server's internal state, shared by the accepting server (server.c),
 * the handler loader (handler-module.c) and the worker loop (worker.c). */
#pragma once

#include <aetask/aetask-server.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <systemd/sd-event.h>

#include "buffer.h"
#include "governance.h"
#include "list.h"
#include "log.h"
#include "peer.h"
#include "scoreboard.h"

#define DEFAULT_HUNG_TIMEOUT_USEC (300ULL * 1000000ULL)
#define DEFAULT_MAX_WORKERS 256
#define DEFAULT_DRAIN_TIMEOUT_USEC (90ULL * 1000000ULL)
#define MAX_WORKERS_MAX 65536
/* Control connections open at once (control.c), counted in the server's
 * descriptor budget (admission.c). */
#define CONTROL_CONNECTIONS_MAX 16

typedef enum worker_state {
        WORKER_SERVING,                /* has its client's connection */
        WORKER_SPARE,                  /* set up, waiting to be handed one (spare.c) */
} worker_state;

typedef struct worker_record {
        pid_t pid;                     /* 0: unused */
        worker_state state;
        int conn_fd;                   /* the server's copy, to notice the client leaving */
        int hand_fd;                   /* a spare's: connections go to it over this socket */
        sd_event_source *hangup;
        scoreboard_slot *slot;
        peer_id peer;                  /* whose share it counts in */
        bool killed_hung;
        bool killed_abandoned;
        bool killed_drain;             /* still busy when the drain limit ran out */
        bool recycled;                 /* told to retire by a reload (reload.c) */
        retire_cause retire;           /* why it was told to retire (governance.h) */
        uint64_t retire_after;         /* CLOCK_MONOTONIC: its lifetime ends, or 0 (recycle.c) */
        uint64_t rss;                  /* bytes, as last measured (recycle.c) */
} worker_record;

struct aetask_server {
        const aetask_handler *handler; /* &handler_copy, once set */
        aetask_handler handler_copy;   /* of whichever ABI version, with what it lacks NULL */
        void *module;
        char *handler_name;
        char *load_error;              /* why the last aetask_server_load_handler() failed */
        char *name;
        uint64_t hung_timeout;
        size_t max_message_size;
        unsigned max_workers;
        unsigned max_workers_per_uid;  /* 0: half of max_workers */
        unsigned spare_workers;        /* kept forked in advance, counted in max_workers */
        aetask_worker_scheduling worker_scheduling;
        int log_level;                 /* -1: log.c's default */
        int call_log_level;            /* of the worker's entry per call */
        char **options;                /* "key=value" strings, NULL-terminated */
        size_t n_options;
        int *listen_fds;
        size_t n_listen_fds;
        uint64_t drain_timeout;        /* 0: wait for busy workers forever */
        int *control_fds;              /* control sockets (control.c) */
        size_t n_control_fds;
        gid_t control_gid;             /* also allowed on the control socket */
        bool control_gid_set;
        uid_t *allowed_uids;           /* with allowed_gids: who may use workers (peer.c); */
        size_t n_allowed_uids;         /* none listed: everyone who can connect */
        gid_t *allowed_gids;
        size_t n_allowed_gids;

        /* While running */
        sd_event *event;
        sd_event_source **listen_sources;
        sd_event_source *hung_timer;
        sd_event_source *status_timer;
        sd_event_source *drain_timer;
        sd_event_source **control_sources;
        list_node control_conns;
        unsigned n_control_conns;
        char *last_status;             /* the STATUS= line last sent */
        scoreboard board;
        worker_record *workers;        /* n_slots of them, index matches the scoreboard */
        unsigned n_alive;
        unsigned next_number;
        uint64_t refusals_logged_at;   /* peers refused by the allow lists (peer.c) */
        uint64_t refusals_unlogged;
        uint64_t n_killed_hung;
        uint64_t calls_exited;         /* calls served by workers that have exited */
        uint64_t started;              /* CLOCK_MONOTONIC */
        uint64_t started_realtime;
        int keepalive_fd;
        pid_t pid;                     /* the server process, while running */
        bool shutting_down;
        unsigned n_reloads;
        unsigned share;                /* workers one user (or address) may hold, while running */
        sd_event_source *resume_timer; /* accepting paused for want of descriptors (admission.c) */
        sd_event_source *spare_timer;  /* forks the next spare (spare.c) */
        uint64_t spare_retry_at;       /* after a spare died unused: no new one before */
        log_ratelimit fd_shortage_log, refusal_log;
        governance gov;                /* recycling, back-off, metrics (governance.h) */
        struct rlimit nofile_original; /* RLIMIT_NOFILE as it was, for the workers */
        bool nofile_raised;
};

/* handler-module.c */
/* On failure *RET_ERROR is a message saying why (or NULL without memory). */
int handler_module_load(const char *name, const char *dir, void **ret_module, const aetask_handler **ret,
                        char **ret_error);
/* Makes H the server's handler; -EPROTONOSUPPORT for an unknown ABI version. */
int handler_adopt(aetask_server *s, const aetask_handler *h);

/* server.c: the counts a status report is made of. */
typedef struct server_counts {
        unsigned alive, busy, idle;
        uint64_t calls;                /* served, by live and exited workers */
        uint64_t killed_hung;
} server_counts;
void server_get_counts(aetask_server *s, server_counts *ret);
const char *server_display_name(aetask_server *s);

/* reload.c: SIGHUP recycles every worker; returns how many were told. */
int server_reload_start(aetask_server *s);
unsigned server_recycle_workers(aetask_server *s);

/* control.c: the control socket, answering io.aetask.Server.Status. */
int control_start(aetask_server *s);
void control_stop(aetask_server *s);

/* admission.c: who gets a worker, the descriptor budget, and what to do
 * when it runs out. */
/* 0 when connection FD may have a worker (*RET_PEER: whose share it counts
 * in); else it has been answered io.aetask.ServerBusy, -EBUSY. */
int server_admit(aetask_server *s, int fd, peer_id *ret_peer);
/* Answers FD with io.aetask.ServerBusy and WHY, without blocking. */
void server_refuse(int fd, const char *why);
/* Fits max_workers to RLIMIT_NOFILE (raising the soft limit if the hard
 * one allows), and resolves the per-user share.  Call with every fixed
 * descriptor of the server open. */
int server_fit_limits(aetask_server *s);
/* Undoes a raised soft limit, in a worker (handler code may use select()). */
void server_restore_fd_limit(aetask_server *s);
/* accept() failed with ERROR: true when it says descriptors (or kernel
 * memory) ran out, and accepting has been paused until a worker exits or a
 * short timer fires, instead of spinning on a connection it cannot take. */
bool server_pause_accepting_on(aetask_server *s, int error);
void server_resume_accepting(aetask_server *s);
void server_set_accepting(aetask_server *s, bool on);

/* spare.c: warm spares, forked in advance with the handler's setup run. */
int server_spares_start(aetask_server *s);
void server_spares_stop(aetask_server *s);
/* Forks spares up to the number wanted, soon, in the background. */
void server_spares_refill(aetask_server *s);
/* A spare that may take a connection, or NULL. */
worker_record *server_spare_find(aetask_server *s);
/* Hands connection CONN_FD of PEER to spare REC: it serves from now on. */
int server_spare_hand_over(aetask_server *s, worker_record *rec, int conn_fd, const peer_id *peer);
/* Spare REC exited without a connection (its record still filled in). */
void server_spare_exited(aetask_server *s, worker_record *rec);
/* server-accept.c: a worker's record filled in, and counted. */
worker_record *server_add_worker(aetask_server *s, scoreboard_slot *slot, pid_t pid);
/* server-accept.c: watches REC's connection for the client leaving. */
void server_watch_client(aetask_server *s, worker_record *rec);
/* server-accept.c: the listening sockets' handler. */
int server_on_accept(sd_event_source *source, int fd, uint32_t revents, void *userdata);
/* server.c: the STATUS= line for systemd, sent when it changed. */
void server_notify_status(aetask_server *s);
/* server.c: watches the N listening sockets FDS with HANDLER (S its
 * userdata), their sources in a new array *RET_SOURCES. */
int server_watch_sockets(aetask_server *s, const int *fds, size_t n, sd_event_source ***ret_sources,
                         sd_event_io_handler_t handler, const char *description);
/* server.c: ends the loop when draining and no worker is left. */
void server_maybe_exit(aetask_server *s);
/* worker-reap.c: SIGCHLD's handler, and the hung check's timer. */
int server_on_sigchld(sd_event_source *source, const struct signalfd_siginfo *si, void *userdata);
int server_on_hung_check(sd_event_source *source, uint64_t usec, void *userdata);

/* worker.c: has the handler check the server's options (its check_options
 * hook); -EINVAL, logged, when it refuses them. */
int server_check_options(aetask_server *s);
/* worker.c: runs the worker on CONN_FD in the forked child; never returns. */
_Noreturn void worker_run(aetask_server *s, scoreboard_slot *slot, int conn_fd);
/* worker.c: runs a spare in the forked child: the handler's setup, then
 * waits for a connection on HAND_FD and serves it; never returns. */
_Noreturn void worker_run_spare(aetask_server *s, scoreboard_slot *slot, int hand_fd);
/* The worker's reading side without a socket, for worker_run() and the
 * fuzzer: handles every complete message in IN, appending the replies to
 * OUT (a Done's answer is written to FD before the next call runs).  Returns
 * 0, -EPIPE when the client is gone, or another negative errno when the
 * worker must end once OUT is written. */
aetask_worker *worker_new(aetask_server *s, scoreboard_slot *slot);
aetask_worker *worker_free(aetask_worker *w);
int worker_handle_input(aetask_worker *w, buffer *in, buffer *out, int fd);
