/* Rewrites the process title in place, as systemd's rename_process() does:
 * ps reads the argv area, so the new title is written over it (and never
 * longer than it); PR_SET_NAME covers top and /proc/PID/comm. */
#include "proctitle.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

extern char *program_invocation_name;

static char *area;
static size_t area_size;

void proctitle_init(void) {
        char buf[4096];
        ssize_t n, total = 0;
        int fd;

        if (area)
                return;
        fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                total += n;
        close(fd);
        if (total <= 0 || !program_invocation_name)
                return;
        area = program_invocation_name;
        area_size = (size_t) total;
}

void proctitle_set(const char *format, ...) {
        char title[256];
        va_list ap;

        va_start(ap, format);
        vsnprintf(title, sizeof(title), format, ap);
        va_end(ap);

        (void) prctl(PR_SET_NAME, title);
        if (!area || area_size < 2)
                return;
        size_t n = strlen(title);
        if (n > area_size - 1)
                n = area_size - 1;
        memcpy(area, title, n);
        memset(area + n, 0, area_size - n);
}
