/* SIGHUP (systemctl reload): every worker is recycled without a failed
 * call.  Idle workers retire at once and busy ones after their checkout,
 * through the same SIGTERM contract as the drain (a retiring worker tells
 * its client, which sends what it had queued elsewhere); the server goes on
 * accepting, and new connections get new workers, whose setup step runs
 * again: a handler's data (files, options read by setup) take effect.  The
 * module itself is not re-loaded: new workers are forked from the server,
 * which keeps the code it loaded at start (re-opening a module under the
 * same path gives back the loaded copy, and unloading it under the server's
 * feet is unsafe); a changed module needs a restart, which the socket unit
 * makes seamless too.  See aetaskd(8), SIGNALS. */
#include <signal.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "macro.h"
#include "server-internal.h"

unsigned server_recycle_workers(aetask_server *s) {
        unsigned n = 0;

        for (unsigned i = 0; i < s->board.n_slots; i++)
                n += recycle_retire(s, &s->workers[i], s->shutting_down ? RETIRE_SHUTDOWN : RETIRE_RELOAD);
        return n;
}

static int on_sighup(sd_event_source *source, const struct signalfd_siginfo *si, void *userdata) {
        aetask_server *s = userdata;
        char reloading[64];

        if (s->shutting_down)
                return 0;
        /* Type=notify's reload protocol: RELOADING=1, then READY=1 once the
         * new configuration is in force, which is at once here (every
         * worker forked from now on is a fresh one). */
        snprintf(reloading, sizeof(reloading), "RELOADING=1\nMONOTONIC_USEC=%llu",
                 (unsigned long long) now_usec(CLOCK_MONOTONIC));
        (void) sd_notify(false, reloading);
        unsigned n = server_recycle_workers(s);
        log_info("Reloading: recycling %u worker%s (idle ones now, busy ones after their checkout)", n, plural_s(n));
        s->n_reloads++;
        server_spares_refill(s);  /* fresh spares, with the setup run again */
        (void) sd_notify(false, "READY=1");
        return 0;
}

int server_reload_start(aetask_server *s) {
        return sd_event_add_signal(s->event, NULL, SIGHUP, on_sighup, s);
}
