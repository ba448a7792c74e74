/* Daemon log lines on stderr, with journal priorities when stderr is the journal. */
#include "log.h"

#include "journal.h"
#include "time-util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int log_max_level = -1;  /* unset: info, or debug with $AETASK_DEBUG */

void log_set_max_level(int level) {
        log_max_level = level;
}

int log_get_max_level(void) {
        if (log_max_level < 0)
                log_max_level = getenv("AETASK_DEBUG") ? LOG_DEBUG : LOG_INFO;
        return log_max_level;
}

/* True when stderr is the stream systemd connected to the journal. */
static int stderr_is_journal(void) {
        static int cached = -1;
        const char *e;
        unsigned long long dev, ino;
        struct stat st;

        if (cached >= 0)
                return cached;
        cached = 0;
        e = getenv("JOURNAL_STREAM");
        if (e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0)
                cached = st.st_dev == (dev_t) dev && st.st_ino == (ino_t) ino;
        return cached;
}

int log_full(int priority, int error, const char *format, ...) {
        char text[2048];
        va_list ap;
        int saved = errno;

        if (priority > log_get_max_level())
                return error < 0 ? error : -abs(error);

        va_start(ap, format);
        vsnprintf(text, sizeof(text), format, ap);
        va_end(ap);

        if (stderr_is_journal())
                fprintf(stderr, "<%d>%s%s%s\n", priority, text, error ? ": " : "", error ? strerror(abs(error)) : "");
        else
                fprintf(stderr, "aetaskd: %s%s%s\n", text, error ? ": " : "", error ? strerror(abs(error)) : "");

        errno = saved;
        return -abs(error);
}

bool log_ratelimit_test(log_ratelimit *rl, unsigned *ret_suppressed) {
        uint64_t t = now_usec(CLOCK_MONOTONIC);

        if (t < rl->next) {
                rl->suppressed++;
                return false;
        }
        rl->next = t + 1000000;
        *ret_suppressed = rl->suppressed;
        rl->suppressed = 0;
        return true;
}

int log_worker_event(int priority, const char *message_id, const char *handler, unsigned number, pid_t pid,
                     const char *format, ...) {
        char message[2048], prio[32], mid[64], hand[128], num[48], pidf[48];
        va_list ap;

        if (priority > log_get_max_level())
                return 0;
        va_start(ap, format);
        snprintf(message, sizeof(message), "MESSAGE=");
        vsnprintf(message + 8, sizeof(message) - 8, format, ap);
        va_end(ap);
        snprintf(prio, sizeof(prio), "PRIORITY=%d", priority);
        snprintf(mid, sizeof(mid), "MESSAGE_ID=%s", message_id);
        snprintf(hand, sizeof(hand), "AETASK_HANDLER=%s", handler);
        snprintf(num, sizeof(num), "AETASK_WORKER=%u", number);
        snprintf(pidf, sizeof(pidf), "AETASK_WORKER_PID=%d", (int) pid);

        const char *fields[] = {
                message, prio, mid, "SYSLOG_IDENTIFIER=aetaskd", "AETASK_ORIGIN=server", hand, num, pidf,
        };
        if (journal_send_only(fields, sizeof(fields) / sizeof(fields[0])) >= 0)
                return 0;
        return log_full(priority, 0, "%s", message + 8);
}
