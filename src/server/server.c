/* The server: accepts connections, forks one worker per connection, reaps
 * workers, kills hung ones, and shuts down with a drain. */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "address.h"
#include "log.h"
#include "message-ids.h"
#include "access.h"
#include "peer.h"
#include "macro.h"
#include "proctitle.h"
#include "protocol.h"
#include "server-internal.h"

_public_ int aetask_server_new(aetask_server **ret) {
        aetask_server *s;

        assert_return(ret, -EINVAL);

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->hung_timeout = DEFAULT_HUNG_TIMEOUT_USEC;
        s->max_message_size = PROTOCOL_DEFAULT_MESSAGE_SIZE_MAX;
        s->max_workers = DEFAULT_MAX_WORKERS;
        s->drain_timeout = DEFAULT_DRAIN_TIMEOUT_USEC;
        s->keepalive_fd = -1;
        s->log_level = -1;
        s->call_log_level = LOG_DEBUG;
        *ret = s;
        return 0;
}

_public_ aetask_server *aetask_server_free(aetask_server *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_listen_fds; i++)
                safe_close(s->listen_fds[i]);
        free(s->listen_fds);
        for (size_t i = 0; i < s->n_control_fds; i++)
                safe_close(s->control_fds[i]);
        free(s->control_fds);
        free(s->allowed_uids);
        free(s->allowed_gids);
        for (size_t i = 0; i < s->n_options; i++)
                free(s->options[i]);
        free(s->options);
        free(s->handler_name);
        free(s->load_error);
        free(s->name);
        /* The module stays loaded: handler code may have left atexit hooks
         * or threads behind, and unloading it buys nothing at exit. */
        free(s);
        return NULL;
}

_public_ int aetask_server_set_handler(aetask_server *s, const aetask_handler *h) {
        assert_return(s, -EINVAL);
        assert_return(h, -EINVAL);
        return handler_adopt(s, h);
}

static int set_string(char **p, const char *v) {
        char *copy = NULL;
        if (v && !(copy = strdup(v)))
                return -ENOMEM;
        free(*p);
        *p = copy;
        return 0;
}

_public_ int aetask_server_load_handler(aetask_server *s, const char *name, const char *dir) {
        const aetask_handler *h;
        void *module;
        int r;

        assert_return(s, -EINVAL);
        assert_return(name, -EINVAL);

        free(s->load_error);
        s->load_error = NULL;
        r = handler_module_load(name, dir, &module, &h, &s->load_error);
        if (r < 0)
                return r;
        r = set_string(&s->handler_name, name);
        if (r < 0) {
                dlclose(module);
                return r;
        }
        /* A second load replaces the first. */
        if (s->module)
                dlclose(s->module);
        s->module = module;
        return handler_adopt(s, h);
}

_public_ const char *aetask_server_get_load_error(aetask_server *s) {
        assert_return(s, NULL);
        return s->load_error;
}

_public_ int aetask_server_set_name(aetask_server *s, const char *name) {
        assert_return(s, -EINVAL);
        return set_string(&s->name, name);
}

_public_ int aetask_server_set_hung_timeout(aetask_server *s, uint64_t usec) {
        assert_return(s, -EINVAL);
        s->hung_timeout = usec;
        return 0;
}

_public_ int aetask_server_set_max_message_size(aetask_server *s, size_t size) {
        assert_return(s, -EINVAL);
        assert_return(size >= PROTOCOL_MESSAGE_SIZE_MIN && size <= PROTOCOL_MESSAGE_SIZE_LIMIT, -EINVAL);
        s->max_message_size = size;
        return 0;
}

_public_ int aetask_server_set_drain_timeout(aetask_server *s, uint64_t usec) {
        assert_return(s, -EINVAL);
        s->drain_timeout = usec;
        return 0;
}

_public_ int aetask_server_set_max_worker_lifetime(aetask_server *s, uint64_t usec) {
        assert_return(s, -EINVAL);
        s->gov.max_lifetime = usec;
        return 0;
}

_public_ int aetask_server_set_max_worker_rss(aetask_server *s, uint64_t bytes) {
        assert_return(s, -EINVAL);
        s->gov.max_rss = bytes;
        return 0;
}

_public_ int aetask_server_set_worker_scheduling(aetask_server *s, aetask_worker_scheduling scheduling) {
        assert_return(s, -EINVAL);
        assert_return(scheduling >= 0 && scheduling < _AETASK_WORKER_SCHEDULING_MAX, -EINVAL);
        s->worker_scheduling = scheduling;
        return 0;
}

_public_ int aetask_server_set_max_workers(aetask_server *s, unsigned n) {
        assert_return(s, -EINVAL);
        assert_return(n > 0 && n <= MAX_WORKERS_MAX, -EINVAL);
        s->max_workers = n;
        return 0;
}

_public_ int aetask_server_set_spare_workers(aetask_server *s, unsigned n) {
        assert_return(s, -EINVAL);
        assert_return(n <= MAX_WORKERS_MAX, -EINVAL);
        s->spare_workers = n;
        return 0;
}

_public_ int aetask_server_set_max_workers_per_uid(aetask_server *s, unsigned n) {
        assert_return(s, -EINVAL);
        assert_return(n <= MAX_WORKERS_MAX, -EINVAL);
        s->max_workers_per_uid = n;
        return 0;
}

static int set_level(int *p, int level) {
        assert_return(level >= LOG_EMERG && level <= LOG_DEBUG, -EINVAL);
        *p = level;
        return 0;
}

_public_ int aetask_server_set_log_level(aetask_server *s, int level) {
        assert_return(s, -EINVAL);
        return set_level(&s->log_level, level);
}

_public_ int aetask_server_set_call_log_level(aetask_server *s, int level) {
        assert_return(s, -EINVAL);
        return set_level(&s->call_log_level, level);
}

_public_ int aetask_server_set_option(aetask_server *s, const char *key, const char *value) {
        char *o, **a;

        assert_return(s, -EINVAL);
        assert_return(key && *key && !strchr(key, '='), -EINVAL);
        assert_return(value, -EINVAL);

        if (asprintf(&o, "%s=%s", key, value) < 0)
                return -ENOMEM;
        /* Kept NULL-terminated, for the handler's check_options. */
        a = realloc(s->options, (s->n_options + 2) * sizeof(char *));
        if (!a) {
                free(o);
                return -ENOMEM;
        }
        s->options = a;
        s->options[s->n_options++] = o;
        s->options[s->n_options] = NULL;
        return 0;
}

static int fd_array_add(int **fds, size_t *n, int fd) {
        int *a = realloc(*fds, (*n + 1) * sizeof(int));
        if (!a)
                return -ENOMEM;
        *fds = a;
        a[(*n)++] = fd;
        return 0;
}

_public_ int aetask_server_add_listen_fd(aetask_server *s, int fd) {
        assert_return(s, -EINVAL);
        assert_return(fd >= 0, -EBADF);
        return fd_array_add(&s->listen_fds, &s->n_listen_fds, fd);
}

_public_ int aetask_server_add_control_fd(aetask_server *s, int fd) {
        assert_return(s, -EINVAL);
        assert_return(fd >= 0, -EBADF);
        /* Callers are told apart by peer credentials, which TCP lacks. */
        assert_return(access_fd_is_unix(fd), -EAFNOSUPPORT);
        return fd_array_add(&s->control_fds, &s->n_control_fds, fd);
}

_public_ int aetask_server_allow_user(aetask_server *s, uid_t uid) {
        uid_t *a;

        assert_return(s, -EINVAL);
        assert_return(uid != (uid_t) -1, -EINVAL);
        a = realloc(s->allowed_uids, (s->n_allowed_uids + 1) * sizeof(uid_t));
        if (!a)
                return -ENOMEM;
        s->allowed_uids = a;
        a[s->n_allowed_uids++] = uid;
        return 0;
}

_public_ int aetask_server_allow_group(aetask_server *s, gid_t gid) {
        gid_t *a;

        assert_return(s, -EINVAL);
        assert_return(gid != (gid_t) -1, -EINVAL);
        a = realloc(s->allowed_gids, (s->n_allowed_gids + 1) * sizeof(gid_t));
        if (!a)
                return -ENOMEM;
        s->allowed_gids = a;
        a[s->n_allowed_gids++] = gid;
        return 0;
}

_public_ int aetask_server_set_control_group(aetask_server *s, gid_t gid) {
        assert_return(s, -EINVAL);
        s->control_gid = gid;
        s->control_gid_set = gid != (gid_t) -1;
        return 0;
}

static int listen_on(aetask_server *s, const char *address, bool control) {
        socket_address a;
        int fd, r;

        r = socket_address_parse(&a, address);
        if (r < 0)
                return r;
        if (control && a.family != AF_UNIX)
                return -EAFNOSUPPORT;
        fd = socket_address_listen(&a, SOMAXCONN);
        if (fd < 0)
                return fd;
        r = control ? aetask_server_add_control_fd(s, fd) : aetask_server_add_listen_fd(s, fd);
        if (r < 0)
                safe_close(fd);
        return r;
}

_public_ int aetask_server_listen(aetask_server *s, const char *address) {
        assert_return(s, -EINVAL);
        assert_return(address, -EINVAL);
        return listen_on(s, address, false);
}

_public_ int aetask_server_listen_control(aetask_server *s, const char *address) {
        assert_return(s, -EINVAL);
        assert_return(address, -EINVAL);
        return listen_on(s, address, true);
}

const char *server_display_name(aetask_server *s) {
        return s->name ?: s->handler_name ?: s->handler->name ?: "aetask";
}

void server_get_counts(aetask_server *s, server_counts *ret) {
        server_counts c = { .alive = s->n_alive, .calls = s->calls_exited, .killed_hung = s->n_killed_hung };

        for (unsigned i = 0; i < s->board.n_slots; i++) {
                slot_state st = slot_get_state(&s->board.slots[i]);
                if (st == SLOT_FREE || s->workers[i].pid <= 0)
                        continue;
                if (st == SLOT_BUSY)
                        c.busy++;
                c.calls += __atomic_load_n(&s->board.slots[i].calls, __ATOMIC_RELAXED);
        }
        c.idle = c.alive - MIN(c.busy, c.alive);
        *ret = c;
}

/* The STATUS= line of systemctl status, sent when it changes (see
 * aetask@.service(8) for what it says). */
void server_notify_status(aetask_server *s) {
        _cleanup_(freep) char *line = NULL;
        server_counts c;
        char backing_off[160];

        server_get_counts(s, &c);
        if (asprintf(&line, "STATUS=%s%s%u worker%s (%u busy, %u idle), %llu call%s served (%.1f/s), %llu killed as hung",
                     s->shutting_down ? "Draining: " : "", backoff_status_prefix(s, backing_off, sizeof(backing_off)),
                     c.alive, plural_s(c.alive), c.busy, c.idle, (unsigned long long) c.calls, plural_s(c.calls),
                     s->gov.calls_per_sec,
                     (unsigned long long) c.killed_hung) < 0)
                return;
        if (s->last_status && strcmp(s->last_status, line) == 0)
                return;
        (void) sd_notify(false, line);
        free(s->last_status);
        s->last_status = TAKE_PTR(line);
}

/* Workers change between busy and idle without telling the server: the line
 * is refreshed once a second. */
static int on_status_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        metrics_sample(userdata);
        server_notify_status(userdata);
        (void) sd_event_source_set_time_relative(source, USEC_PER_SEC);
        return 0;
}

void server_maybe_exit(aetask_server *s) {
        if (s->shutting_down && s->n_alive == 0)
                (void) sd_event_exit(s->event, 0);
}

/* The drain limit ran out: the workers still busy are stopped, and the
 * server exits once they are reaped. */
static int on_drain_timeout(sd_event_source *source, uint64_t usec, void *userdata) {
        aetask_server *s = userdata;

        log_warning("Drain limit of %.3f s reached, killing %u remaining worker%s",
                    (double) s->drain_timeout / USEC_PER_SEC, s->n_alive, plural_s(s->n_alive));
        for (unsigned i = 0; i < s->board.n_slots; i++)
                if (s->workers[i].pid > 0) {
                        s->workers[i].killed_drain = true;
                        (void) kill(s->workers[i].pid, SIGKILL);
                }
        return 0;
}

static void server_begin_shutdown(aetask_server *s, const char *why) {
        if (s->shutting_down)
                return;
        s->shutting_down = true;
        /* An embedding program's server ending with its parent is routine. */
        log_full(s->keepalive_fd >= 0 ? LOG_DEBUG : LOG_INFO, 0,
                 "Shutting down (%s), waiting for %u worker%s", why, s->n_alive, plural_s(s->n_alive));
        (void) sd_notify(false, "STOPPING=1");

        /* Stop listening.  Under systemd the socket stays open in systemd and
         * new connections wait for the next instance; a socket of our own is
         * closed, so clients are refused and retry rather than wait in a
         * backlog that nobody will serve. */
        for (size_t i = 0; i < s->n_listen_fds; i++) {
                s->listen_sources[i] = sd_event_source_disable_unref(s->listen_sources[i]);
                s->listen_fds[i] = safe_close(s->listen_fds[i]);
        }

        /* Idle workers retire at once; busy ones after their checkout. */
        (void) server_recycle_workers(s);

        if (s->n_alive > 0 && s->drain_timeout > 0 &&
            sd_event_add_time_relative(s->event, &s->drain_timer, CLOCK_MONOTONIC, s->drain_timeout,
                                       USEC_PER_MSEC, on_drain_timeout, s) >= 0)
                (void) sd_event_source_set_description(s->drain_timer, "aetask-drain-limit");
        server_notify_status(s);
        server_maybe_exit(s);
}

static int on_terminate(sd_event_source *source, const struct signalfd_siginfo *si, void *userdata) {
        server_begin_shutdown(userdata, strsignal(si->ssi_signo));
        return 0;
}

static int on_keepalive(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        (void) sd_event_source_set_enabled(source, SD_EVENT_OFF);
        server_begin_shutdown(userdata, "the parent process went away");
        return 0;
}

static void server_stop_running(aetask_server *s) {
        for (size_t i = 0; s->listen_sources && i < s->n_listen_fds; i++)
                sd_event_source_disable_unref(s->listen_sources[i]);
        free(s->listen_sources);
        s->listen_sources = NULL;
        if (s->workers)
                for (unsigned i = 0; i < s->board.n_slots; i++) {
                        sd_event_source_disable_unref(s->workers[i].hangup);
                        safe_close(s->workers[i].conn_fd);
                        safe_close(s->workers[i].hand_fd);
                }
        free(s->workers);
        s->workers = NULL;
        s->hung_timer = sd_event_source_disable_unref(s->hung_timer);
        s->status_timer = sd_event_source_disable_unref(s->status_timer);
        s->drain_timer = sd_event_source_disable_unref(s->drain_timer);
        s->resume_timer = sd_event_source_disable_unref(s->resume_timer);
        server_spares_stop(s);
        governance_stop(s);
        control_stop(s);
        free(s->last_status);
        s->last_status = NULL;
        scoreboard_done(&s->board);
        s->event = sd_event_unref(s->event);
}

/* The signals the loop handles, blocked so that sd-event can take them. */
static void server_block_signals(void) {
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
}

int server_watch_sockets(aetask_server *s, const int *fds, size_t n, sd_event_source ***ret_sources,
                         sd_event_io_handler_t handler, const char *description) {
        int r;

        *ret_sources = calloc(n, sizeof(sd_event_source *));
        if (!*ret_sources)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                (void) fd_nonblock(fds[i]);
                r = sd_event_add_io(s->event, &(*ret_sources)[i], fds[i], EPOLLIN, handler, s);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_description((*ret_sources)[i], description);
        }
        return 0;
}

/* Everything the loop waits for: connections, signals, the hung check,
 * the keep-alive pipe, the control socket, the status line's timer. */
static int server_add_sources(aetask_server *s) {
        int r;

        if ((r = server_watch_sockets(s, s->listen_fds, s->n_listen_fds, &s->listen_sources,
                                      server_on_accept, "aetask-listen")) < 0 ||
            (r = sd_event_add_signal(s->event, NULL, SIGCHLD, server_on_sigchld, s)) < 0 ||
            (r = sd_event_add_signal(s->event, NULL, SIGTERM, on_terminate, s)) < 0 ||
            (r = sd_event_add_signal(s->event, NULL, SIGINT, on_terminate, s)) < 0 ||
            (r = server_reload_start(s)) < 0)
                return r;

        if (s->hung_timeout > 0) {
                r = sd_event_add_time_relative(s->event, &s->hung_timer, CLOCK_MONOTONIC,
                                               MIN(MAX(s->hung_timeout / 10, 1000ULL), USEC_PER_SEC),
                                               1000, server_on_hung_check, s);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_enabled(s->hung_timer, SD_EVENT_ON);
        }

        if (s->keepalive_fd >= 0) {
                r = sd_event_add_io(s->event, NULL, s->keepalive_fd, EPOLLIN, on_keepalive, s);
                if (r < 0)
                        return r;
        }

        r = control_start(s);
        if (r < 0)
                return r;

        r = sd_event_add_time_relative(s->event, &s->status_timer, CLOCK_MONOTONIC, USEC_PER_SEC,
                                       100 * USEC_PER_MSEC, on_status_timer, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(s->status_timer, SD_EVENT_ON);
        (void) sd_event_source_set_description(s->status_timer, "aetask-status");
        return 0;
}

/* The worker slots and their records, as many as the descriptors left
 * allow, and the spares in them. */
static int server_make_slots(aetask_server *s) {
        int r;

        /* Every fixed descriptor is open now: what is left is the workers'. */
        r = server_fit_limits(s);
        if (r < 0)
                return r;
        r = scoreboard_init(&s->board, s->max_workers);
        if (r < 0)
                return r;
        s->workers = calloc(s->max_workers, sizeof(worker_record));
        if (!s->workers)
                return -ENOMEM;
        for (unsigned i = 0; i < s->max_workers; i++)
                s->workers[i] = (worker_record) { .conn_fd = -1, .hand_fd = -1 };
        r = governance_start(s);
        if (r < 0)
                return r;
        return server_spares_start(s);
}

_public_ int aetask_server_run(aetask_server *s) {
        int r;

        assert_return(s, -EINVAL);
        assert_return(s->handler, -ENOPKG);
        assert_return(s->n_listen_fds > 0, -EDESTADDRREQ);
        assert_return(!s->event, -EBUSY);

        r = server_check_options(s);
        if (r < 0)
                return r;
        r = access_check_listen_fds(s);
        if (r < 0)
                return r;

        if (s->log_level >= 0)
                log_set_max_level(s->log_level);

        list_init(&s->control_conns);
        proctitle_init();
        proctitle_set("%s: server", server_display_name(s));
        server_block_signals();

        r = sd_event_new(&s->event);
        if (r < 0)
                return log_error_errno(r, "Failed to create event loop");
        r = server_add_sources(s);
        if (r < 0)
                goto finish;
        /* WATCHDOG=1 at half of WatchdogSec=, from the loop itself: a loop
         * that stops turning stops the pings. */
        (void) sd_event_set_watchdog(s->event, true);
        r = server_make_slots(s);
        if (r < 0)
                goto finish;

        s->pid = getpid();
        s->started = now_usec(CLOCK_MONOTONIC);
        s->started_realtime = now_usec(CLOCK_REALTIME);
        log_debug("Serving handler %s", server_display_name(s));
        (void) sd_notify(false, "READY=1");
        server_notify_status(s);

        r = sd_event_loop(s->event);
        if (r < 0)
                log_error_errno(r, "Event loop failed");

finish:
        server_stop_running(s);
        return r < 0 ? r : 0;
}
