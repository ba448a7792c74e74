/* Spawn back-off: a handler whose workers fail to start (the setup fails or
 * crashes) is not forked again in a tight loop.  After each start failure
 * in a row no worker is started for BACKOFF_INITIAL_USEC, doubled each time
 * up to BACKOFF_MAX_USEC; meanwhile connections are refused with
 * io.aetask.ServerBusy naming the back-off and the setup's last error
 * (clients report kind refused).  When the delay is over the server itself
 * starts one probe, a spare (spare.c) that runs the setup at once: if it
 * succeeds the back-off ends and the probe serves the next connection, so
 * service resumes with nobody having to retry into a failure.  A failure is
 * counted once per worker, and only a setup's: a client can end a worker
 * in many ways, but not make the setup fail. */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "server-internal.h"

/* While a probe's setup runs, how often the server looks at its slot. */
#define BACKOFF_PROBE_POLL_USEC (20 * USEC_PER_MSEC)

bool backoff_active(aetask_server *s) {
        return s->gov.backoff.failures > 0;
}

static void backoff_end(aetask_server *s) {
        backoff *b = &s->gov.backoff;

        log_info("Setup of %s succeeded again after %u failure%s in a row: serving", server_display_name(s),
                 b->failures, plural_s(b->failures));
        b->failures = 0;
        b->delay = 0;
        b->until = 0;
        s->spare_retry_at = 0;
        if (b->timer)
                (void) sd_event_source_set_enabled(b->timer, SD_EVENT_OFF);
        server_spares_refill(s);  /* the rest of --spare-workers */
}

/* A live worker whose setup has succeeded ends the back-off. */
static bool probe_succeeded(aetask_server *s) {
        for (unsigned i = 0; i < s->board.n_slots; i++)
                if (s->workers[i].pid > 0 && !s->workers[i].recycled &&
                    slot_get_setup(&s->board.slots[i]) == SLOT_SETUP_DONE)
                        return true;
        return false;
}

const char *backoff_describe(aetask_server *s, char *buf, size_t size) {
        const backoff *b = &s->gov.backoff;
        uint64_t now = now_usec(CLOCK_MONOTONIC);

        if (b->failures == 0)
                snprintf(buf, size, "%s", "");
        else if (now < b->until)
                snprintf(buf, size, "backing off after %u start failure%s in a row, next attempt in %.1fs",
                         b->failures, plural_s(b->failures), (double) (b->until - now) / USEC_PER_SEC);
        else
                snprintf(buf, size, "backing off after %u start failure%s in a row, attempting now", b->failures,
                         plural_s(b->failures));
        return buf;
}

/* A worker whose setup failed and that is not reaped yet: its client may
 * connect again before SIGCHLD is read, and must not get a worker that
 * will fail the same way. */
static const scoreboard_slot *failed_unreaped(aetask_server *s) {
        for (unsigned i = 0; i < s->board.n_slots; i++)
                if (s->workers[i].pid > 0 && slot_get_setup(&s->board.slots[i]) == SLOT_SETUP_FAILED)
                        return &s->board.slots[i];
        return NULL;
}

const char *backoff_status_prefix(aetask_server *s, char *buf, size_t size) {
        const backoff *b = &s->gov.backoff;

        /* No countdown: the line is sent whenever it changes. */
        if (b->failures == 0)
                snprintf(buf, size, "%s", "");
        else
                snprintf(buf, size, "Backing off after %u start failure%s in a row (next attempt %.1fs after the last): ",
                         b->failures, plural_s(b->failures), (double) b->delay / USEC_PER_SEC);
        return buf;
}

bool backoff_admit(aetask_server *s, int fd) {
        char why[SLOT_SETUP_ERROR_MAX + 160], state[128];
        const scoreboard_slot *failed;

        if (!backoff_active(s)) {
                if (!(failed = failed_unreaped(s)))
                        return true;
                snprintf(why, sizeof(why), "the handler's workers fail to start (%s): backing off",
                         failed->setup_error);
                server_refuse(fd, why);
                return false;
        }
        if (probe_succeeded(s)) {
                backoff_end(s);
                return true;
        }
        snprintf(why, sizeof(why), "the handler's workers fail to start (%s): %s",
                 s->gov.backoff.last_error[0] ? s->gov.backoff.last_error : "setup failed",
                 backoff_describe(s, state, sizeof(state)));
        server_refuse(fd, why);
        return false;
}

unsigned backoff_spares_wanted(aetask_server *s) {
        /* One probe at a time, however many spares are wanted otherwise. */
        return backoff_active(s) ? 1 : s->spare_workers;
}

static int on_backoff_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        aetask_server *s = userdata;

        if (!backoff_active(s))
                return 0;
        if (probe_succeeded(s)) {
                backoff_end(s);
                return 0;
        }
        server_spares_refill(s);  /* the probe, now the delay is over */
        (void) sd_event_source_set_time_relative(source, BACKOFF_PROBE_POLL_USEC);
        (void) sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
        return 0;
}

static void backoff_arm(aetask_server *s) {
        backoff *b = &s->gov.backoff;

        if (!b->timer) {
                if (sd_event_add_time(s->event, &b->timer, CLOCK_MONOTONIC, b->until, USEC_PER_MSEC,
                                      on_backoff_timer, s) < 0)
                        return;
                (void) sd_event_source_set_description(b->timer, "aetask-spawn-backoff");
        }
        (void) sd_event_source_set_time(b->timer, b->until);
        (void) sd_event_source_set_enabled(b->timer, SD_EVENT_ONESHOT);
}

void backoff_worker_exited(aetask_server *s, worker_record *rec, retire_cause cause) {
        backoff *b = &s->gov.backoff;

        if (cause != RETIRE_SETUP_FAILED) {
                if (backoff_active(s) && slot_get_setup(rec->slot) == SLOT_SETUP_DONE)
                        backoff_end(s);
                return;
        }
        if (s->shutting_down)
                return;
        b->failures++;
        b->delay = b->failures == 1 ? BACKOFF_INITIAL_USEC : MIN(b->delay * 2, BACKOFF_MAX_USEC);
        b->until = now_usec(CLOCK_MONOTONIC) + b->delay;
        snprintf(b->last_error, sizeof(b->last_error), "%s",
                 slot_get_setup(rec->slot) == SLOT_SETUP_FAILED ? rec->slot->setup_error : "the setup crashed");
        s->spare_retry_at = MAX(s->spare_retry_at, b->until);
        log_warning("Worker %u (pid %d) of %s failed to start (%s): %u failure%s in a row, "
                    "starting no worker for %.3f s", rec->slot->number, rec->pid, server_display_name(s),
                    b->last_error, b->failures, plural_s(b->failures), (double) b->delay / USEC_PER_SEC);
        backoff_arm(s);
}

void backoff_stop(aetask_server *s) {
        s->gov.backoff.timer = sd_event_source_disable_unref(s->gov.backoff.timer);
}
