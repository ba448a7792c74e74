/* Recycling workers by age and by memory (--max-worker-lifetime,
 * --max-worker-rss).  A worker past either limit is asked to retire the way
 * a reload asks (SIGTERM): a busy one finishes its checkout first, an idle
 * one tells its client io.aetask.Retiring and the client sends its next
 * checkout elsewhere, so no call fails for it.
 *
 * Each worker's lifetime is the limit less a random part of up to
 * RECYCLE_JITTER_PERCENT: workers started together (a burst, a restart) do
 * not all retire together, and a pool is never refilled all at once.
 * Memory is read from /proc/PID/statm on the same timer (one small read per
 * worker and tick), not after every call: the server hears of no call. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "server-internal.h"

/* How often memory and lifetimes are looked at: a second, or a fiftieth of
 * a short lifetime, so a worker outlives its own by at most about 2%. */
#define RECYCLE_CHECK_MAX_USEC USEC_PER_SEC
#define RECYCLE_CHECK_MIN_USEC (10 * USEC_PER_MSEC)

static uint64_t random_below(uint64_t n) {
        uint64_t v = 0;

        if (n == 0)
                return 0;
        if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != sizeof(v))
                v = (uint64_t) random();
        return v % n;
}

void recycle_worker_added(aetask_server *s, worker_record *rec) {
        uint64_t limit = s->gov.max_lifetime;

        if (limit == 0)
                return;
        rec->retire_after = now_usec(CLOCK_MONOTONIC) + limit -
                random_below(limit / 100 * RECYCLE_JITTER_PERCENT + 1);
}

bool recycle_retire(aetask_server *s, worker_record *rec, retire_cause cause) {
        if (rec->pid <= 0 || rec->recycled)
                return false;
        rec->recycled = true;
        rec->retire = cause;
        (void) kill(rec->pid, SIGTERM);
        return true;
}

uint64_t recycle_read_rss(pid_t pid) {
        char path[64], text[128];
        unsigned long long size, resident;

        snprintf(path, sizeof(path), "/proc/%d/statm", (int) pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        ssize_t n = read(fd, text, sizeof(text) - 1);
        safe_close(fd);
        if (n <= 0)
                return 0;
        text[n] = 0;
        if (sscanf(text, "%llu %llu", &size, &resident) != 2)
                return 0;
        return (uint64_t) resident * (uint64_t) sysconf(_SC_PAGESIZE);
}

static void check_worker(aetask_server *s, worker_record *rec, uint64_t now) {
        const char *handler = server_display_name(s);
        double age = (double) (now_usec(CLOCK_REALTIME) - rec->slot->started_realtime) / USEC_PER_SEC;

        if (rec->retire_after > 0 && now >= rec->retire_after) {
                if (recycle_retire(s, rec, RETIRE_LIFETIME))
                        log_info("Worker %u (pid %d) of %s retiring after %.3f s: its lifetime is over "
                                 "(--max-worker-lifetime=%.3f s, less jitter)", rec->slot->number, rec->pid,
                                 handler, age, (double) s->gov.max_lifetime / USEC_PER_SEC);
                return;
        }
        if (s->gov.max_rss == 0)
                return;
        rec->rss = recycle_read_rss(rec->pid);
        if (rec->rss > s->gov.max_rss && recycle_retire(s, rec, RETIRE_RSS))
                log_info("Worker %u (pid %d) of %s retiring after %.3f s: it uses %llu KiB of memory, "
                         "past --max-worker-rss=%llu KiB", rec->slot->number, rec->pid, handler, age,
                         (unsigned long long) (rec->rss / 1024), (unsigned long long) (s->gov.max_rss / 1024));
}

static uint64_t check_interval(aetask_server *s) {
        if (s->gov.max_lifetime == 0)
                return RECYCLE_CHECK_MAX_USEC;
        return MIN(MAX(s->gov.max_lifetime / 50, RECYCLE_CHECK_MIN_USEC), RECYCLE_CHECK_MAX_USEC);
}

static int on_recycle_check(sd_event_source *source, uint64_t usec, void *userdata) {
        aetask_server *s = userdata;
        uint64_t now = now_usec(CLOCK_MONOTONIC);

        for (unsigned i = 0; i < s->board.n_slots; i++)
                if (s->workers[i].pid > 0 && !s->workers[i].recycled)
                        check_worker(s, &s->workers[i], now);
        (void) sd_event_source_set_time_relative(source, check_interval(s));
        return 0;
}

int recycle_start(aetask_server *s) {
        int r;

        if (s->gov.max_lifetime == 0 && s->gov.max_rss == 0)
                return 0;
        r = sd_event_add_time_relative(s->event, &s->gov.recycle_timer, CLOCK_MONOTONIC, check_interval(s),
                                       check_interval(s) / 10, on_recycle_check, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the recycling timer");
        (void) sd_event_source_set_enabled(s->gov.recycle_timer, SD_EVENT_ON);
        (void) sd_event_source_set_description(s->gov.recycle_timer, "aetask-recycle");
        return 0;
}

void recycle_stop(aetask_server *s) {
        s->gov.recycle_timer = sd_event_source_disable_unref(s->gov.recycle_timer);
}
