/* The server's accept path: a connection is checked (allowed user, the
 * admission caps), then handed to a spare or to a newly forked worker, whose
 * client the server watches from then on. */
#include <errno.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "access.h"
#include "log.h"
#include "macro.h"
#include "message-ids.h"
#include "peer.h"
#include "server-internal.h"

/* The client closed its end: a worker still busy on its call works for
 * nobody, so it is stopped now rather than when the call ends. */
static int on_client_hangup(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        worker_record *rec = userdata;
        int domain = 0;
        socklen_t len = sizeof(domain);

        /* A client on a unix socket that only shut down its sending side
         * (shutdown(SHUT_WR) after its call) still waits for the answer;
         * it has left once both directions are down (EPOLLHUP, which epoll
         * reports whatever the mask).  Over TCP the two look alike until
         * a write fails, and both count as leaving. */
        if (!(revents & (EPOLLHUP | EPOLLERR)) &&
            getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) >= 0 && domain == AF_UNIX) {
                (void) sd_event_source_set_io_events(source, 0);
                return 0;
        }
        (void) sd_event_source_set_enabled(source, SD_EVENT_OFF);
        if (rec->pid > 0 && slot_get_state(rec->slot) == SLOT_BUSY) {
                rec->killed_abandoned = true;
                (void) kill(rec->pid, SIGKILL);
        }
        return 0;
}

void server_watch_client(aetask_server *s, worker_record *rec) {
        if (sd_event_add_io(s->event, &rec->hangup, rec->conn_fd, EPOLLRDHUP, on_client_hangup, rec) >= 0)
                (void) sd_event_source_set_description(rec->hangup, "aetask-worker-hangup");
}

worker_record *server_add_worker(aetask_server *s, scoreboard_slot *slot, pid_t pid) {
        worker_record *rec = &s->workers[slot - s->board.slots];

        *rec = (worker_record) { .pid = pid, .conn_fd = -1, .hand_fd = -1, .slot = slot };
        s->n_alive++;
        governance_worker_added(s, rec);
        return rec;
}

static void log_worker_started(aetask_server *s, worker_record *rec, const char *how) {
        char who[PEER_ID_STRING_MAX];

        log_worker_event(LOG_DEBUG, AETASK_MESSAGE_WORKER_STARTED, server_display_name(s), rec->slot->number, rec->pid,
                         "Worker %u %s (pid %d) for client pid %d, %s", rec->slot->number, how,
                         rec->pid, rec->peer.pid, peer_id_to_string(&rec->peer, who));
}

static int spawn_worker(aetask_server *s, int conn_fd) {
        scoreboard_slot *slot;
        worker_record *rec;
        peer_id peer;
        pid_t pid;

        if (server_admit(s, conn_fd, &peer) < 0 || !backoff_admit(s, conn_fd))
                return -EBUSY;
        /* A spare first; one that fails to take it is retired, and the next tried. */
        while ((rec = server_spare_find(s)))
                if (server_spare_hand_over(s, rec, conn_fd, &peer) >= 0) {
                        log_worker_started(s, rec, "taken from the spares");
                        return 0;
                }
        if (s->n_alive >= s->max_workers) {
                server_refuse(conn_fd, "the server is at its worker limit, try again later");
                return -EBUSY;
        }
        slot = scoreboard_take(&s->board);
        if (!slot)
                return log_error_errno(-EBUSY, "Failed to find a free worker slot with %u workers alive", s->n_alive);
        slot->number = ++s->next_number;
        slot->client_pid = peer.pid;
        slot->client_uid = peer.family == AF_UNIX ? peer.uid : (uid_t) -1;
        slot->started_realtime = now_usec(CLOCK_REALTIME);

        pid = fork();
        if (pid < 0) {
                int r = -errno;
                unsigned suppressed;
                scoreboard_release(slot);
                /* Out of tasks (TasksMax=, RLIMIT_NPROC): every connection
                 * would say so; the client is told to come back later. */
                server_refuse(conn_fd, "the server cannot start a worker now, try again later");
                if (log_ratelimit_test(&s->refusal_log, &suppressed))
                        log_error_errno(r, "Failed to fork worker (%u more refusals since the last message)", suppressed);
                return r;
        }
        if (pid == 0)
                worker_run(s, slot, conn_fd);

        slot->pid = pid;
        rec = server_add_worker(s, slot, pid);
        rec->conn_fd = conn_fd;
        rec->peer = peer;
        server_watch_client(s, rec);
        log_worker_started(s, rec, "started");
        return 0;
}

int server_on_accept(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        aetask_server *s = userdata;

        /* A bounded batch per wakeup, so a flood cannot starve reaping. */
        for (int i = 0; i < 64; i++) {
                int conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
                if (conn < 0) {
                        if (!server_pause_accepting_on(s, -errno) &&
                            errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                                log_warning_errno(-errno, "Failed to accept connection");
                        break;
                }
                struct ucred cred;
                if (!access_may_use_workers(s, conn, &cred))
                        access_refuse(s, conn, &cred);
                else if (spawn_worker(s, conn) >= 0)
                        continue;
                safe_close(conn);
        }
        server_notify_status(s);
        return 0;
}
