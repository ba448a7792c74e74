/* Rewrites the process title in place, as systemd's rename_process() does:
 * ps reads the argv area, so the new title is written over it (and never
 * longer than it); PR_SET_NAME covers top and /proc/PID/comm. */
#include "proctitle.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
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

/* The title does not fit where argv was: move the argv area to a page of
 * our own, as systemd's rename_process() does.  This needs
 * CAP_SYS_RESOURCE; without it the title is cut. */
static void move_area(void) {
        static const size_t size = 4096;
        char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        if (p == MAP_FAILED)
                return;
        unsigned long start = (unsigned long) p, end = start + size - 1;
        /* The kernel wants start <= end at every step: which goes first
         * depends on where the new page lies. */
        if ((prctl(PR_SET_MM, PR_SET_MM_ARG_END, end, 0, 0) < 0 ||
             prctl(PR_SET_MM, PR_SET_MM_ARG_START, start, 0, 0) < 0) &&
            (prctl(PR_SET_MM, PR_SET_MM_ARG_START, start, 0, 0) < 0 ||
             prctl(PR_SET_MM, PR_SET_MM_ARG_END, end, 0, 0) < 0)) {
                munmap(p, size);
                return;
        }
        area = p;
        area_size = size - 1;
}

void proctitle_set(const char *format, ...) {
        char title[256];
        va_list ap;

        va_start(ap, format);
        vsnprintf(title, sizeof(title), format, ap);
        va_end(ap);

        (void) prctl(PR_SET_NAME, title);
        size_t n = strlen(title);
        if (area && n + 1 > area_size)
                move_area();
        if (!area || area_size < 2)
                return;
        if (n > area_size - 1)
                n = area_size - 1;
        memcpy(area, title, n);
        memset(area + n, 0, area_size - n);
}
