/* Pool governance in aetaskd (issue 14): recycling workers by age and
 * memory (recycle.c), backing off a handler whose workers fail to start
 * (backoff.c), and the per-handler metrics the control socket and the
 * STATUS= line report (metrics.c).  The server calls these from small hooks;
 * the state lives in one struct in the server. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "histogram.h"

typedef struct aetask_server aetask_server;
typedef struct worker_record worker_record;
typedef struct json_out json_out;

/* Why a worker ended.  The first three are the server asking it to retire
 * (between checkouts), the kills are the server's too, the rest are the
 * worker's (or its client's) doing. */
typedef enum retire_cause {
        RETIRE_NONE,                   /* still asked nothing */
        RETIRE_RELOAD,                 /* SIGHUP */
        RETIRE_SHUTDOWN,               /* SIGTERM's drain */
        RETIRE_LIFETIME,               /* --max-worker-lifetime */
        RETIRE_RSS,                    /* --max-worker-rss */
        RETIRE_RELEASED,               /* the client let it go (max_checkouts, a freed client) */
        RETIRE_HUNG,                   /* killed: a call ran past --hung-timeout */
        RETIRE_ABANDONED,              /* killed: its client left during a call */
        RETIRE_DRAIN_KILLED,           /* killed: still busy when the drain limit ran out */
        RETIRE_SETUP_FAILED,           /* the handler's setup failed or crashed */
        RETIRE_DIED,                   /* a signal, or a failing exit status */
        _RETIRE_CAUSE_MAX,
} retire_cause;

const char *retire_cause_to_string(retire_cause c);

/* The errors calls end with, counted by the workers. */
typedef enum call_error {
        CALL_ERROR_HANDLER,            /* the handler raised one */
        CALL_ERROR_METHOD_NOT_FOUND,
        CALL_ERROR_SETUP,
        _CALL_ERROR_MAX,
        CALL_OK = _CALL_ERROR_MAX,
} call_error;

const char *call_error_to_string(call_error e);
/* The call_error of a protocol error name (PROTOCOL_ERROR_*), or CALL_OK for NULL. */
call_error call_error_from_protocol(const char *error);

/* In memory shared with the workers, which count their calls there. */
typedef struct metrics_shared {
        uint64_t calls;
        uint64_t errors[_CALL_ERROR_MAX];
        histogram call_usec;
} metrics_shared;

/* The back-off after start failures: none while FAILURES is 0. */
typedef struct backoff {
        unsigned failures;             /* start failures in a row */
        uint64_t attempts;             /* workers started while backing off, the probes */
        uint64_t until;                /* CLOCK_MONOTONIC: no worker is started before */
        uint64_t delay;                /* the current delay */
        char last_error[160];          /* what the last failed setup said */
        sd_event_source *timer;        /* starts the next probe, then watches it */
} backoff;

typedef struct governance {
        uint64_t max_lifetime;         /* usec, 0: none */
        uint64_t max_rss;              /* bytes, 0: none */
        sd_event_source *recycle_timer;
        metrics_shared *shared;
        uint64_t spawned;
        uint64_t retired[_RETIRE_CAUSE_MAX];
        uint64_t rate_calls, rate_at;  /* the calls count, and when, at the last sample */
        double calls_per_sec;
        backoff backoff;
} governance;

/* The share of its lifetime a worker may lose to jitter, in percent. */
#define RECYCLE_JITTER_PERCENT 20
/* The back-off after each start failure in a row: the first delay, doubled
 * each time, up to the cap. */
#define BACKOFF_INITIAL_USEC (100ULL * 1000ULL)
#define BACKOFF_MAX_USEC (30ULL * 1000000ULL)

/* governance.c: the hooks.  Around the event loop: timers and the shared
 * metrics. */
int governance_start(aetask_server *s);
void governance_stop(aetask_server *s);
/* A worker was forked (REC filled in). */
void governance_worker_added(aetask_server *s, worker_record *rec);
/* REC ended with wait status STATUS (before its record is cleared). */
void governance_worker_exited(aetask_server *s, worker_record *rec, int status);

/* recycle.c */
int recycle_start(aetask_server *s);
void recycle_stop(aetask_server *s);
/* A worker was forked: it gets its own lifetime, the limit less some jitter. */
void recycle_worker_added(aetask_server *s, worker_record *rec);
/* Asks REC to retire after its checkout (SIGTERM), for CAUSE; false if it was asked already. */
bool recycle_retire(aetask_server *s, worker_record *rec, retire_cause cause);
/* Resident memory of PID in bytes, from /proc/PID/statm, or 0. */
uint64_t recycle_read_rss(pid_t pid);

/* backoff.c */
void backoff_stop(aetask_server *s);
/* True when new workers may start; else FD has been refused saying why. */
bool backoff_admit(aetask_server *s, int fd);
/* The worker REC ended for CAUSE: a start failure backs off, a worker
 * whose setup succeeded ends the back-off. */
void backoff_worker_exited(aetask_server *s, worker_record *rec, retire_cause cause);
/* Spares (or the one probe) wanted now. */
unsigned backoff_spares_wanted(aetask_server *s);
bool backoff_active(aetask_server *s);
/* "backing off after 3 start failures in a row, next attempt in 0.8s" into
 * BUF, or "". */
const char *backoff_describe(aetask_server *s, char *buf, size_t size);
/* The same for the STATUS= line, without the countdown, ending in ": ", or "". */
const char *backoff_status_prefix(aetask_server *s, char *buf, size_t size);

/* metrics.c */
/* REC ended with wait status STATUS: its cause, counted and returned. */
retire_cause metrics_worker_exited(aetask_server *s, worker_record *rec, int status);
/* In the worker: a call answered after USEC with ERROR. */
void metrics_call_done(aetask_server *s, uint64_t usec, call_error error);
/* Samples the calls count for calls/s (the status timer, once a second). */
void metrics_sample(aetask_server *s);
/* Writes "metrics" (and "backoff", the limits) into the status reply O,
 * and a worker's own members into its object. */
void metrics_put_status(json_out *o, aetask_server *s);
void metrics_put_worker(json_out *o, const worker_record *rec);
