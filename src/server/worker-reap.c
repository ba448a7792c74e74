/* The end of workers: reaping them (SIGCHLD), saying how each ended, and
 * killing those stuck in one call longer than the hung timeout. */
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#include "log.h"
#include "macro.h"
#include "message-ids.h"
#include "server-internal.h"

/* A worker's exit, with what it spent: its peak memory and CPU time tell
 * which clients cost the most (and the hostile-client tests read them). */
static void describe_exit(aetask_server *s, worker_record *rec, int status, const struct rusage *ru) {
        unsigned number = rec->slot->number;
        const char *handler = server_display_name(s);
        double cpu = (double) (ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) +
                     (double) (ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1e6;

        if (rec->killed_drain)
                log_worker_event(LOG_WARNING, AETASK_MESSAGE_WORKER_CRASHED, handler, number, rec->pid,
                                 "Worker %u (pid %d) of %s killed: still busy when the drain limit of %.3f s ran out",
                                 number, rec->pid, handler, (double) s->drain_timeout / USEC_PER_SEC);
        else if (rec->killed_hung)
                log_worker_event(LOG_WARNING, AETASK_MESSAGE_WORKER_HUNG, handler, number, rec->pid,
                                 "Worker %u (pid %d) of %s killed as hung: a call ran longer than %.3f s",
                                 number, rec->pid, handler, (double) s->hung_timeout / USEC_PER_SEC);
        else if (rec->killed_abandoned)
                log_worker_event(LOG_INFO, AETASK_MESSAGE_WORKER_EXITED, handler, number, rec->pid,
                                 "Worker %u (pid %d) of %s stopped: its client went away during a call",
                                 number, rec->pid, handler);
        else if (WIFSIGNALED(status))
                log_worker_event(LOG_WARNING, AETASK_MESSAGE_WORKER_CRASHED, handler, number, rec->pid,
                                 "Worker %u (pid %d) of %s died on signal %s",
                                 number, rec->pid, handler, strsignal(WTERMSIG(status)));
        else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
                log_worker_event(LOG_WARNING, AETASK_MESSAGE_WORKER_CRASHED, handler, number, rec->pid,
                                 "Worker %u (pid %d) of %s exited with status %d",
                                 number, rec->pid, handler, WEXITSTATUS(status));
        else
                log_worker_event(LOG_DEBUG, AETASK_MESSAGE_WORKER_EXITED, handler, number, rec->pid,
                                 "Worker %u (pid %d) of %s exited", number, rec->pid, handler);
        log_debug("Worker %u (pid %d) of %s: peak memory %ld KiB, CPU %.3f s",
                  number, rec->pid, handler, ru->ru_maxrss, cpu);
}

int server_on_sigchld(sd_event_source *source, const struct signalfd_siginfo *si, void *userdata) {
        aetask_server *s = userdata;
        bool reaped = false;

        for (;;) {
                struct rusage ru;
                int status;
                pid_t pid = wait4(-1, &status, WNOHANG, &ru);
                if (pid <= 0)
                        break;
                for (unsigned i = 0; i < s->board.n_slots; i++) {
                        worker_record *rec = &s->workers[i];
                        if (rec->pid != pid)
                                continue;
                        governance_worker_exited(s, rec, status);
                        if (rec->state == WORKER_SPARE)
                                server_spare_exited(s, rec);
                        else
                                describe_exit(s, rec, status, &ru);
                        s->calls_exited += __atomic_load_n(&rec->slot->calls, __ATOMIC_RELAXED);
                        rec->hangup = sd_event_source_disable_unref(rec->hangup);
                        safe_close(rec->conn_fd);
                        safe_close(rec->hand_fd);
                        scoreboard_release(rec->slot);
                        *rec = (worker_record) { .conn_fd = -1, .hand_fd = -1 };
                        s->n_alive--;
                        reaped = true;
                        break;
                }
        }
        if (reaped) {
                server_resume_accepting(s);  /* a descriptor is free again */
                server_spares_refill(s);
        }
        server_notify_status(s);
        server_maybe_exit(s);
        return 0;
}

int server_on_hung_check(sd_event_source *source, uint64_t usec, void *userdata) {
        aetask_server *s = userdata;
        uint64_t now = now_usec(CLOCK_MONOTONIC);

        for (unsigned i = 0; i < s->board.n_slots; i++) {
                worker_record *rec = &s->workers[i];
                scoreboard_slot *slot = &s->board.slots[i];
                if (rec->pid <= 0 || rec->killed_hung || slot_get_state(slot) != SLOT_BUSY)
                        continue;
                uint64_t started = __atomic_load_n(&slot->call_started, __ATOMIC_RELAXED);
                /* A call that began after NOW was read is not hung: without
                 * this check the difference wraps around, and a worker
                 * starting a call at that moment was killed as hung. */
                if (started >= now || now - started < s->hung_timeout)
                        continue;
                rec->killed_hung = true;
                s->n_killed_hung++;
                (void) kill(rec->pid, SIGKILL);
        }
        (void) sd_event_source_set_time_relative(source, MIN(MAX(s->hung_timeout / 10, 1000ULL), USEC_PER_SEC));
        return 0;
}
