/* Daemon log lines on stderr, with journal priorities when stderr is the journal. */
#include "log.h"

#include "journal.h"
#include "macro.h"
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
        _cleanup_(journal_entry_done) journal_entry e = {};
        char message[2048];
        va_list ap;

        if (priority > log_get_max_level())
                return 0;
        va_start(ap, format);
        vsnprintf(message, sizeof(message), format, ap);
        va_end(ap);
        journal_entry_add(&e, "MESSAGE", "%s", message);
        journal_entry_add(&e, "PRIORITY", "%d", priority);
        journal_entry_add(&e, "MESSAGE_ID", "%s", message_id);
        journal_entry_add(&e, "SYSLOG_IDENTIFIER", "aetaskd");
        journal_entry_add(&e, "AETASK_ORIGIN", "server");
        journal_entry_add(&e, "AETASK_HANDLER", "%s", handler);
        journal_entry_add(&e, "AETASK_WORKER", "%u", number);
        journal_entry_add(&e, "AETASK_WORKER_PID", "%d", (int) pid);
        if (journal_entry_send_only(&e) >= 0)
                return 0;
        return log_full(priority, 0, "%s", message);
}
