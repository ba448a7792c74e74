/* The daemon's own log lines.  Under systemd stderr is the journal, and a
 * "<N>" prefix gives each line its priority; elsewhere lines are plain. */
#pragma once

#include <syslog.h>

void log_set_identity(const char *identity);
int log_full(int priority, int error, const char *format, ...) __attribute__((format(printf, 3, 4)));

#define log_error_errno(error, ...)   log_full(LOG_ERR, (error), __VA_ARGS__)
#define log_warning_errno(error, ...) log_full(LOG_WARNING, (error), __VA_ARGS__)
#define log_error(...)   log_full(LOG_ERR, 0, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, 0, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, 0, __VA_ARGS__)
#define log_info(...)    log_full(LOG_INFO, 0, __VA_ARGS__)
#define log_debug(...)   log_full(LOG_DEBUG, 0, __VA_ARGS__)
