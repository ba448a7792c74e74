/* The daemon's own log lines.  Under systemd stderr is the journal, and a
 * "<N>" prefix gives each line its priority; elsewhere lines are plain. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>
#include <sys/types.h>

/* The most verbose priority written, to stderr or the journal (a syslog
 * level); until set, LOG_INFO, or LOG_DEBUG when $AETASK_DEBUG is set. */
void log_set_max_level(int level);
int log_get_max_level(void);
int log_full(int priority, int error, const char *format, ...) __attribute__((format(printf, 3, 4)));

#define log_error_errno(error, ...)   log_full(LOG_ERR, (error), __VA_ARGS__)
#define log_warning_errno(error, ...) log_full(LOG_WARNING, (error), __VA_ARGS__)
#define log_error(...)   log_full(LOG_ERR, 0, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, 0, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, 0, __VA_ARGS__)
#define log_info(...)    log_full(LOG_INFO, 0, __VA_ARGS__)
#define log_debug(...)   log_full(LOG_DEBUG, 0, __VA_ARGS__)

/* An event about one worker, as a journal entry with MESSAGE_ID and the
 * AETASK_HANDLER=, AETASK_WORKER=, AETASK_WORKER_PID= fields (see
 * aetask-journal(7)); without a journal, a plain line on stderr.  Either
 * only up to the level of log_set_max_level(). */
int log_worker_event(int priority, const char *message_id, const char *handler, unsigned number, pid_t pid,
                     const char *format, ...) __attribute__((format(printf, 6, 7)));

/* For lines a peer can make us repeat (a refusal, running out of
 * descriptors): at most one a second, the rest counted. */
typedef struct log_ratelimit {
        uint64_t next;                 /* CLOCK_MONOTONIC usec */
        unsigned suppressed;
} log_ratelimit;

/* True when a line may go out now; *RET_SUPPRESSED is how many were held
 * back since the last one. */
bool log_ratelimit_test(log_ratelimit *rl, unsigned *ret_suppressed);
