/* Daemon log lines on stderr, with journal priorities when stderr is the journal. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *log_identity = "aetaskd";

void log_set_identity(const char *identity) {
        log_identity = identity;
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

        if (priority == LOG_DEBUG && !getenv("AETASK_DEBUG"))
                return error < 0 ? error : -abs(error);

        va_start(ap, format);
        vsnprintf(text, sizeof(text), format, ap);
        va_end(ap);

        if (stderr_is_journal())
                fprintf(stderr, "<%d>%s%s%s\n", priority, text, error ? ": " : "", error ? strerror(abs(error)) : "");
        else
                fprintf(stderr, "%s: %s%s%s\n", log_identity, text, error ? ": " : "", error ? strerror(abs(error)) : "");

        errno = saved;
        return -abs(error);
}
