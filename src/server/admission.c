/* Who gets a worker, and what the server can afford.
 *
 * A connection is refused (io.aetask.ServerBusy, which clients back off on)
 * when every worker is in use, or when its user (its TCP address) holds its
 * share already: one user must not lock the others out.
 *
 * Each worker costs the server one descriptor for as long as it lives (its
 * connection, kept to notice the client leaving); the rest is fixed (event
 * loop, sockets, the control connections).  At start, --max-workers is
 * fitted to RLIMIT_NOFILE, so the cap that refuses clients politely comes
 * before the kernel's EMFILE.  Should descriptors run out anyway (ENFILE,
 * the limit lowered), accepting pauses instead of spinning on a connection
 * it cannot take: the listening socket stays readable, and a
 * level-triggered loop would call accept() again at once, forever. */
#include <dirent.h>
#include <errno.h>

#include <sys/socket.h>

#include "log.h"
#include "macro.h"
#include "protocol.h"
#include "server-internal.h"

/* Descriptors opened after the count, now and then: the journal socket,
 * sd_notify()'s socket, a connection being refused, /proc reads. */
#define SERVER_FDS_SLACK 8
#define RESUME_ACCEPTING_USEC (100 * USEC_PER_MSEC)

void server_refuse(int fd, const char *why) {
        buffer b = {};

        if (protocol_append_error(&b, PROTOCOL_ERROR_SERVER_BUSY, why, NULL) >= 0)
                (void) !send(fd, buffer_head(&b), buffer_length(&b), MSG_DONTWAIT | MSG_NOSIGNAL);
        buffer_done(&b);
}

static unsigned count_workers_of(aetask_server *s, const peer_id *peer) {
        unsigned n = 0;

        for (unsigned i = 0; i < s->board.n_slots; i++)
                n += s->workers[i].pid > 0 && s->workers[i].state == WORKER_SERVING &&
                     peer_id_compare(&s->workers[i].peer, peer) == 0;
        return n;
}

int server_admit(aetask_server *s, int fd, peer_id *ret_peer) {
        char who[PEER_ID_STRING_MAX];
        unsigned suppressed;

        /* A full server says so whoever asks (logged each time, as before);
         * spares are workers nobody uses yet. */
        if (s->n_alive >= s->max_workers && !server_spare_find(s)) {
                log_warning("Refusing a connection: all %u workers are in use", s->max_workers);
                server_refuse(fd, "the server is at its worker limit, try again later");
                return -EBUSY;
        }
        peer_id_from_socket(fd, ret_peer);
        if (count_workers_of(s, ret_peer) < s->share)
                return 0;
        /* A peer can repeat this as fast as it connects: at most a line a second. */
        if (log_ratelimit_test(&s->refusal_log, &suppressed))
                log_warning("Refusing a connection from %s: it holds %u workers, its share of the %u "
                            "(%u more refusals since the last message)",
                            peer_id_to_string(ret_peer, who), s->share, s->max_workers, suppressed);
        server_refuse(fd, "this user holds its share of the server's workers, try again later");
        return -EBUSY;
}

static unsigned count_open_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        unsigned n = 0;

        if (!d)
                return 64;  /* a generous guess: the server opens about 10 */
        while (readdir(d))
                n++;
        closedir(d);
        return n > 3 ? n - 3 : 0;  /* ".", ".." and the directory's own */
}

int server_fit_limits(aetask_server *s) {
        struct rlimit rl;
        rlim_t fixed = count_open_fds() + CONTROL_CONNECTIONS_MAX + SERVER_FDS_SLACK;
        rlim_t need = fixed + s->max_workers;

        if (getrlimit(RLIMIT_NOFILE, &rl) >= 0 && rl.rlim_cur < need) {
                struct rlimit raised = { .rlim_cur = MIN(need, rl.rlim_max), .rlim_max = rl.rlim_max };

                /* As systemd's programs do: the soft limit is a default for
                 * select() users, the hard one is what we may have. */
                if (raised.rlim_cur > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &raised) >= 0) {
                        s->nofile_original = rl;
                        s->nofile_raised = true;
                        rl.rlim_cur = raised.rlim_cur;
                }
                if (rl.rlim_cur <= fixed)
                        return log_error_errno(-EMFILE, "Failed to fit any worker in the file descriptor limit of %llu "
                                               "(the server needs %llu of its own)",
                                               (unsigned long long) rl.rlim_cur, (unsigned long long) fixed);
                if (rl.rlim_cur < need) {
                        log_warning("Serving at most %llu workers, not %u: the file descriptor limit is %llu "
                                    "(hard %llu), and each worker takes one of them, the server %llu",
                                    (unsigned long long) (rl.rlim_cur - fixed), s->max_workers,
                                    (unsigned long long) rl.rlim_cur, (unsigned long long) rl.rlim_max,
                                    (unsigned long long) fixed);
                        s->max_workers = rl.rlim_cur - fixed;
                } else
                        log_info("Raised the file descriptor limit from %llu to %llu for %u workers",
                                 (unsigned long long) s->nofile_original.rlim_cur, (unsigned long long) rl.rlim_cur,
                                 s->max_workers);
        }

        s->share = s->max_workers_per_uid > 0 ? MIN(s->max_workers_per_uid, s->max_workers)
                                               : (s->max_workers + 1) / 2;
        return 0;
}

void server_restore_fd_limit(aetask_server *s) {
        if (s->nofile_raised)
                (void) setrlimit(RLIMIT_NOFILE, &s->nofile_original);
}

void server_set_accepting(aetask_server *s, bool on) {
        for (size_t i = 0; s->listen_sources && i < s->n_listen_fds; i++)
                if (s->listen_sources[i])
                        (void) sd_event_source_set_enabled(s->listen_sources[i], on ? SD_EVENT_ON : SD_EVENT_OFF);
        for (size_t i = 0; s->control_sources && i < s->n_control_fds; i++)
                if (s->control_sources[i])
                        (void) sd_event_source_set_enabled(s->control_sources[i], on ? SD_EVENT_ON : SD_EVENT_OFF);
}

static int on_resume_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        server_resume_accepting(userdata);
        return 0;
}

bool server_pause_accepting_on(aetask_server *s, int error) {
        unsigned suppressed;

        if (error != -EMFILE && error != -ENFILE && error != -ENOBUFS && error != -ENOMEM)
                return false;
        if (log_ratelimit_test(&s->fd_shortage_log, &suppressed))
                log_warning_errno(error, "Failed to accept a connection, pausing until a worker exits "
                                  "(%u more times since the last message)", suppressed);
        if (s->resume_timer)
                return true;  /* paused already: a control and a worker socket both failed */
        server_set_accepting(s, false);
        if (sd_event_add_time_relative(s->event, &s->resume_timer, CLOCK_MONOTONIC, RESUME_ACCEPTING_USEC,
                                       10 * USEC_PER_MSEC, on_resume_timer, s) >= 0)
                (void) sd_event_source_set_description(s->resume_timer, "aetask-resume-accepting");
        else
                server_set_accepting(s, true);  /* no timer: better to spin than to stop for good */
        return true;
}

void server_resume_accepting(aetask_server *s) {
        if (!s->resume_timer)
                return;
        s->resume_timer = sd_event_source_disable_unref(s->resume_timer);
        server_set_accepting(s, true);
}
