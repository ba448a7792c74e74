/* aetaskctl status --watch: the status redrawn in place every --interval,
 * as systemd-cgtop and top do, until q, Ctrl-C or --iterations.  On a
 * terminal each refresh clears the screen (ANSI home and clear) and the
 * keyboard is read a key at a time; otherwise refreshes follow each other,
 * a blank line apart, so the output can be piped or logged.  A server that
 * does not answer is said so in place, and asked again next time. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "ctl.h"
#include "json-reader.h"
#include "macro.h"

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig) {
        interrupted = 1;
}

/* Waits USEC for a key: true when it was q (or stdin ended, or a signal came). */
static bool wait_for_quit(bool keyboard, uint64_t usec) {
        struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
        uint64_t left = usec / USEC_PER_MSEC;

        while (!interrupted) {
                int k = poll(&p, keyboard ? 1 : 0, (int) MIN(left, (uint64_t) 60000));
                if (k < 0)
                        return errno == EINTR ? interrupted : true;
                if (k == 0) {
                        left -= MIN(left, (uint64_t) 60000);
                        if (left == 0)
                                return false;
                        continue;
                }
                char c;
                if (read(STDIN_FILENO, &c, 1) <= 0)
                        return true;
                if (c == 'q' || c == 'Q')
                        return true;
        }
        return true;
}

int ctl_status_watch(ctl_context *ctx, const char *address) {
        struct sigaction sa = { .sa_handler = on_interrupt }, old_int, old_term;
        bool screen = isatty(STDOUT_FILENO), keyboard = isatty(STDIN_FILENO);
        struct termios saved, raw;

        /* No SA_RESTART: poll() returns at once on Ctrl-C. */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);
        if (keyboard && tcgetattr(STDIN_FILENO, &saved) >= 0) {
                raw = saved;
                raw.c_lflag &= ~(tcflag_t) (ICANON | ECHO);
                raw.c_cc[VMIN] = 1;
                raw.c_cc[VTIME] = 0;
                (void) tcsetattr(STDIN_FILENO, TCSANOW, &raw);
        } else
                keyboard = false;

        for (uint64_t i = 1;; i++) {
                _cleanup_(json_object_putp) json_object *parameters = NULL;

                if (screen)
                        fputs("\033[H\033[2J", stdout);
                else if (i > 1)
                        putchar('\n');
                if (!ctx->json)
                        printf("Every %.1fs: aetaskctl status %s%s\n\n", (double) ctx->interval_usec / USEC_PER_SEC,
                               address, keyboard ? "   (q quits)" : "");
                fflush(stdout);
                if (ctl_status_fetch(ctx, address, &parameters) == 0)
                        ctl_status_print(ctx, parameters);
                fflush(stdout);
                if (ctx->iterations > 0 && i >= ctx->iterations)
                        break;
                if (wait_for_quit(keyboard, ctx->interval_usec))
                        break;
        }

        if (keyboard)
                (void) tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        return 0;
}
