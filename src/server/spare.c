/* Warm spares (--spare-workers): workers forked in advance, with the
 * handler's setup already run, so a new connection waits for neither a fork
 * nor the setup (PHP-FPM's pm = dynamic, in small).
 *
 * The server still accepts every connection itself and hands it to a spare
 * over a socketpair (SCM_RIGHTS), rather than letting spares accept() on
 * the listening socket: the allow lists (access.c), the per-user share and
 * the worker cap (admission.c) are decided where they always were, and the
 * server keeps its copy of the connection to notice the client leaving.
 * A spare is a worker like the others: it counts against --max-workers,
 * takes a scoreboard slot, and retires on SIGHUP and SIGTERM.  Spares are
 * replaced from an idle-priority timer, after the connections at hand are
 * served; a spare that dies unused (a crashing setup) is replaced after a
 * pause, not in a fork loop. */
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "server-internal.h"

#define SPARE_RETRY_USEC (1 * USEC_PER_SEC)

static unsigned count_spares(aetask_server *s) {
        unsigned n = 0;

        for (unsigned i = 0; i < s->board.n_slots; i++)
                n += s->workers[i].pid > 0 && s->workers[i].state == WORKER_SPARE && !s->workers[i].recycled;
        return n;
}

worker_record *server_spare_find(aetask_server *s) {
        /* Even with no spares wanted: the back-off's probe is one (backoff.c). */
        for (unsigned i = 0; i < s->board.n_slots; i++) {
                worker_record *rec = &s->workers[i];
                if (rec->pid > 0 && rec->state == WORKER_SPARE && !rec->recycled)
                        return rec;
        }
        return NULL;
}

static int spare_fork(aetask_server *s) {
        int pair[2];
        pid_t pid;

        scoreboard_slot *slot = scoreboard_take(&s->board);
        if (!slot)
                return -EBUSY;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
                scoreboard_release(slot);
                return -errno;
        }
        slot->number = ++s->next_number;
        slot->started_realtime = now_usec(CLOCK_REALTIME);

        pid = fork();
        if (pid < 0) {
                int r = -errno;
                scoreboard_release(slot);
                safe_close(pair[0]);
                safe_close(pair[1]);
                return r;
        }
        if (pid == 0)
                worker_run_spare(s, slot, pair[1]);

        safe_close(pair[1]);
        slot->pid = pid;
        worker_record *rec = server_add_worker(s, slot, pid);
        rec->state = WORKER_SPARE;
        rec->hand_fd = pair[0];
        log_debug("Spare worker %u started (pid %d)", slot->number, pid);
        return 0;
}

static int on_spare_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        aetask_server *s = userdata;

        if (s->shutting_down || count_spares(s) >= backoff_spares_wanted(s) || s->n_alive >= s->max_workers)
                return 0;
        int r = spare_fork(s);
        if (r < 0) {
                log_warning_errno(r, "Failed to start a spare worker, trying again in %llu ms",
                                  (unsigned long long) (SPARE_RETRY_USEC / USEC_PER_MSEC));
                s->spare_retry_at = now_usec(CLOCK_MONOTONIC) + SPARE_RETRY_USEC;
        }
        /* One fork per turn of the loop: connections waiting meanwhile go first. */
        server_spares_refill(s);
        return 0;
}

void server_spares_refill(aetask_server *s) {
        if (!s->spare_timer || s->shutting_down || count_spares(s) >= backoff_spares_wanted(s) ||
            s->n_alive >= s->max_workers)
                return;
        (void) sd_event_source_set_time(s->spare_timer, MAX(s->spare_retry_at, 1ULL));
        (void) sd_event_source_set_enabled(s->spare_timer, SD_EVENT_ONESHOT);
}

int server_spares_start(aetask_server *s) {
        int r;

        /* Also without spares: the back-off's probe is one (backoff.c). */
        r = sd_event_add_time(s->event, &s->spare_timer, CLOCK_MONOTONIC, 1, USEC_PER_MSEC, on_spare_timer, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the spare workers' timer");
        (void) sd_event_source_set_priority(s->spare_timer, SD_EVENT_PRIORITY_IDLE);
        (void) sd_event_source_set_description(s->spare_timer, "aetask-spare-workers");
        server_spares_refill(s);
        return 0;
}

void server_spares_stop(aetask_server *s) {
        s->spare_timer = sd_event_source_disable_unref(s->spare_timer);
}

static int send_fd(int sock, int fd) {
        union {
                struct cmsghdr header;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        char byte = 0;
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                            .msg_controllen = sizeof(control.buf) };
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);

        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
        return sendmsg(sock, &m, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ? -errno : 0;
}

int server_spare_hand_over(aetask_server *s, worker_record *rec, int conn_fd, const peer_id *peer) {
        int r;

        /* Before the spare can run a call, so status shows whose it is. */
        rec->slot->client_pid = peer->pid;
        rec->slot->client_uid = peer->family == AF_UNIX ? peer->uid : (uid_t) -1;
        r = send_fd(rec->hand_fd, conn_fd);
        if (r < 0) {
                /* Dead and not reaped yet: it goes when SIGCHLD says so. */
                rec->slot->client_pid = 0;
                rec->recycled = true;
                (void) kill(rec->pid, SIGTERM);
                return log_full(LOG_DEBUG, r, "Failed to hand a connection to spare worker %u", rec->slot->number);
        }
        /* The descriptor in flight lives on without our end of the pair. */
        rec->hand_fd = safe_close(rec->hand_fd);
        rec->state = WORKER_SERVING;
        rec->conn_fd = conn_fd;
        rec->peer = *peer;
        server_watch_client(s, rec);
        server_spares_refill(s);
        return 0;
}

void server_spare_exited(aetask_server *s, worker_record *rec) {
        if (rec->recycled || s->shutting_down || backoff_active(s))
                return;  /* asked to go, or its failed setup backs off (backoff.c) */
        /* Its setup failed or crashed: the next one would likely do the same. */
        log_warning("Spare worker %u (pid %d) exited before it served, starting another in %llu ms",
                    rec->slot->number, rec->pid, (unsigned long long) (SPARE_RETRY_USEC / USEC_PER_MSEC));
        s->spare_retry_at = now_usec(CLOCK_MONOTONIC) + SPARE_RETRY_USEC;
}
