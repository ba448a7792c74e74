/* The control socket: answers a Varlink-shaped io.aetask.Server.Status call
 * with the server's workers, read from the scoreboard (aetaskctl status).
 * Callers are checked by their peer credentials: root, the server's own
 * uid, or a member of the control group.  Bounded: a few connections at
 * once and fewer per user, the last few kept for root (a member of the group
 * filling them all must not keep the administrator out), small requests,
 * and a deadline for each request that trickling bytes does not extend. */
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "access.h"
#include "buffer.h"
#include "control-protocol.h"
#include "json-out.h"
#include "log.h"
#include "macro.h"
#include "peer.h"
#include "protocol.h"
#include "server-internal.h"

#define CONTROL_RESERVED_FOR_ROOT 4
#define CONTROL_CONNECTIONS_PER_UID 4
/* From the connection or the last answer to the end of the next request:
 * aetaskctl sends its request at once. */
#define CONTROL_REQUEST_TIMEOUT_USEC (5 * USEC_PER_SEC)

typedef struct control_conn {
        list_node node;                /* in server->control_conns */
        aetask_server *server;
        int fd;
        uid_t uid;
        sd_event_source *io, *timer;
        buffer in, out;
        size_t scanned;
        bool closing;                  /* close once OUT is written */
} control_conn;

static void control_conn_free(control_conn *c) {
        if (!c)
                return;
        list_remove(&c->node);
        c->server->n_control_conns--;
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->timer);
        safe_close(c->fd);
        buffer_done(&c->in);
        buffer_done(&c->out);
        free(c);
}

static bool peer_is_allowed(aetask_server *s, int fd, const struct ucred *cred) {
        if (cred->uid == 0 || cred->uid == geteuid())
                return true;
        return s->control_gid_set && access_in_group(fd, cred, s->control_gid);
}

/* Who holds workers: a client's uid (or TCP address) for each worker. */
static void put_peer(json_out *o, const char *uid_key, const char *address_key, const peer_id *peer) {
        char address[PEER_ID_ADDRESS_MAX];

        if (peer->family == AF_UNIX)
                json_out_u64(o, uid_key, peer->uid);
        else if (peer_id_address_to_string(peer, address))
                json_out_text(o, address_key, address);
}

static void put_worker(json_out *o, const worker_record *rec, uint64_t now_mono, uint64_t now_real) {
        scoreboard_slot slot;

        slot_snapshot(rec->slot, &slot);
        bool busy = slot.state == SLOT_BUSY;
        json_out_open(o, NULL, '{');
        json_out_int(o, "pid", slot.pid);
        json_out_u64(o, "number", slot.number);
        json_out_text(o, "state", busy ? "busy" : "idle");
        json_out_int(o, "client_pid", slot.client_pid);
        put_peer(o, "client_uid", "client_address", &rec->peer);
        if (busy) {
                json_out_text(o, "method", slot.method);
                json_out_u64(o, "call_usec", now_mono > slot.call_started ? now_mono - slot.call_started : 0);
        }
        json_out_u64(o, "calls", slot.calls);
        json_out_u64(o, "started_usec", slot.started_realtime);
        json_out_u64(o, "uptime_usec", now_real > slot.started_realtime ? now_real - slot.started_realtime : 0);
        metrics_put_worker(o, rec);
        json_out_close(o);
}

typedef struct peer_use {
        peer_id peer;
        bool busy;
} peer_use;

static int peer_use_compare(const void *a, const void *b) {
        return peer_id_compare(&((const peer_use *) a)->peer, &((const peer_use *) b)->peer);
}

/* Workers per user (or TCP address), each counted against the share:
 * [{"uid":1000,"workers":3,"busy":1}, {"address":"192.0.2.7",...}]. */
static int put_users(json_out *o, aetask_server *s) {
        _cleanup_(freep) peer_use *uses = calloc(MAX(s->n_alive, 1u), sizeof(peer_use));
        size_t n = 0;

        if (!uses)
                return -ENOMEM;
        for (unsigned i = 0; i < s->board.n_slots && n < s->n_alive; i++)
                if (s->workers[i].pid > 0 && s->workers[i].state == WORKER_SERVING)
                        uses[n++] = (peer_use) { s->workers[i].peer, slot_get_state(&s->board.slots[i]) == SLOT_BUSY };
        qsort(uses, n, sizeof(peer_use), peer_use_compare);
        json_out_open(o, "users", '[');
        for (size_t i = 0, j; i < n; i = j) {
                unsigned busy = 0;
                for (j = i; j < n && peer_id_compare(&uses[j].peer, &uses[i].peer) == 0; j++)
                        busy += uses[j].busy;
                json_out_open(o, NULL, '{');
                put_peer(o, "uid", "address", &uses[i].peer);
                json_out_u64(o, "workers", j - i);
                json_out_u64(o, "busy", busy);
                json_out_close(o);
        }
        json_out_close(o);
        return 0;
}

/* The reply to io.aetask.Server.Status (control-protocol.h), with its NUL. */
static int append_status(buffer *b, aetask_server *s) {
        uint64_t now_mono = now_usec(CLOCK_MONOTONIC), now_real = now_usec(CLOCK_REALTIME);
        json_out o = json_out_start(b);
        server_counts c;

        server_get_counts(s, &c);
        json_out_open(&o, NULL, '{');
        json_out_open(&o, "parameters", '{');
        json_out_text(&o, "name", server_display_name(s));
        if (s->handler_name || s->handler->name)
                json_out_text(&o, "handler", s->handler_name ?: s->handler->name);
        json_out_int(&o, "pid", getpid());
        json_out_bool(&o, "draining", s->shutting_down);
        json_out_u64(&o, "started_usec", s->started_realtime);
        json_out_u64(&o, "uptime_usec", now_mono - s->started);
        json_out_u64(&o, "alive", c.alive);
        json_out_u64(&o, "busy", c.busy);
        json_out_u64(&o, "idle", c.idle);
        json_out_u64(&o, "max_workers", s->max_workers);
        json_out_u64(&o, "max_workers_per_uid", s->share);
        json_out_u64(&o, "calls", c.calls);
        json_out_u64(&o, "killed_hung", c.killed_hung);
        metrics_put_status(&o, s);
        if (put_users(&o, s) < 0)
                o.r = -ENOMEM;
        json_out_open(&o, "workers", '[');
        for (unsigned i = 0; i < s->board.n_slots; i++)
                if (s->workers[i].pid > 0 && slot_get_state(&s->board.slots[i]) != SLOT_FREE)
                        put_worker(&o, &s->workers[i], now_mono, now_real);
        json_out_close(&o);
        json_out_close(&o);
        json_out_close(&o);
        if (json_out_finish(&o) < 0)
                return o.r;
        return buffer_append(b, "", 1);  /* the NUL ends the message */
}

/* An error reply: {"error":ERROR,"parameters":{KEY:VALUE}}, KEY NULL for none. */
static int append_error(buffer *b, const char *error, const char *key, const char *value) {
        json_out o = json_out_start(b);

        json_out_open(&o, NULL, '{');
        json_out_text(&o, "error", error);
        json_out_open(&o, "parameters", '{');
        if (key)
                json_out_text(&o, key, value);
        json_out_close(&o);
        json_out_close(&o);
        if (json_out_finish(&o) < 0)
                return o.r;
        return buffer_append(b, "", 1);
}

/* One request.  Returns < 0 when the connection must end. */
static int control_handle(control_conn *c, const char *text, size_t len) {
        _cleanup_(json_object_putp) json_object *m = NULL;
        json_object *method;
        const char *reason;
        int r;

        r = protocol_parse_message(text, len, &m, &reason);
        if (r < 0 || !json_object_object_get_ex(m, "method", &method) ||
            !json_object_is_type(method, json_type_string))
                return -EBADMSG;
        if (strcmp(json_object_get_string(method), CONTROL_METHOD_STATUS) == 0)
                return append_status(&c->out, c->server);
        return append_error(&c->out, CONTROL_ERROR_METHOD_NOT_FOUND, "method", json_object_get_string(method));
}

static void control_update_events(control_conn *c) {
        uint32_t events = buffer_length(&c->out) > 0 ? EPOLLOUT : 0;
        /* No more requests are read while answers wait to be written: a
         * client sending requests without reading the answers would have
         * the server buffer them without end. */
        if (!c->closing && buffer_length(&c->out) == 0)
                events |= EPOLLIN;
        (void) sd_event_source_set_io_events(c->io, events);
}

static int on_control_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        control_conn *c = userdata;
        bool answered = false;
        int r;

        if (!c->closing && (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                ssize_t n = buffer_read(&c->in, fd, CONTROL_REQUEST_MAX);
                if (n == 0 || (n < 0 && n != -EAGAIN))
                        c->closing = true;
                for (;;) {
                        const char *msg;
                        ssize_t len = buffer_next_message(&c->in, &c->scanned, &msg);
                        if (len < 0)
                                break;
                        r = control_handle(c, msg, (size_t) len);
                        buffer_consume(&c->in, (size_t) len + 1);
                        answered = true;
                        if (r < 0) {
                                c->closing = true;
                                break;
                        }
                }
        }

        r = buffer_flush(&c->out, fd);
        if (r < 0 || (r > 0 && c->closing)) {
                control_conn_free(c);
                return 0;
        }
        /* Only a whole request earns more time: a byte every few seconds
         * must not hold a connection for good. */
        if (answered)
                (void) sd_event_source_set_time_relative(c->timer, CONTROL_REQUEST_TIMEOUT_USEC);
        control_update_events(c);
        return 0;
}

static int on_control_timeout(sd_event_source *source, uint64_t usec, void *userdata) {
        control_conn_free(userdata);
        return 0;
}

static unsigned count_conns_of(aetask_server *s, uid_t uid) {
        list_node *n, *t;
        unsigned k = 0;

        list_for_each_safe(n, t, &s->control_conns)
                k += list_entry(n, control_conn, node)->uid == uid;
        return k;
}

/* Root may take any free connection; anyone else neither the last
 * CONTROL_RESERVED_FOR_ROOT nor more than CONTROL_CONNECTIONS_PER_UID. */
static bool control_has_room(aetask_server *s, uid_t uid) {
        if (s->n_control_conns >= CONTROL_CONNECTIONS_MAX)
                return false;
        if (uid == 0)
                return true;
        return s->n_control_conns < CONTROL_CONNECTIONS_MAX - CONTROL_RESERVED_FOR_ROOT &&
                count_conns_of(s, uid) < CONTROL_CONNECTIONS_PER_UID;
}

static void control_refuse(aetask_server *s, int fd, const struct ucred *cred) {
        unsigned suppressed;

        if (log_ratelimit_test(&s->refusal_log, &suppressed))
                log_warning("Refusing a control connection from pid %d uid %u: %u are open, %u of them its "
                            "(%u more refusals since the last message)", cred->pid, cred->uid,
                            s->n_control_conns, count_conns_of(s, cred->uid), suppressed);
        server_refuse(fd, "too many control connections are open, try again later");
}

static int on_control_accept(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        aetask_server *s = userdata;
        struct ucred cred = { .uid = (uid_t) -1 };
        socklen_t len = sizeof(cred);
        control_conn *c;
        int conn, r;

        conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (conn < 0) {
                if (!server_pause_accepting_on(s, -errno) &&
                    errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                        log_warning_errno(-errno, "Failed to accept control connection");
                return 0;
        }
        if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                cred = (struct ucred) { .uid = (uid_t) -1 };
        if (!control_has_room(s, cred.uid)) {
                control_refuse(s, conn, &cred);
                safe_close(conn);
                return 0;
        }

        c = calloc(1, sizeof(*c));
        if (!c) {
                safe_close(conn);
                return 0;
        }
        c->server = s;
        c->fd = conn;
        c->uid = cred.uid;
        list_init(&c->node);
        list_append(&s->control_conns, &c->node);
        s->n_control_conns++;

        r = sd_event_add_io(s->event, &c->io, conn, EPOLLIN, on_control_io, c);
        if (r >= 0)
                r = sd_event_add_time_relative(s->event, &c->timer, CLOCK_MONOTONIC, CONTROL_REQUEST_TIMEOUT_USEC,
                                               100 * USEC_PER_MSEC, on_control_timeout, c);
        if (r < 0) {
                log_warning_errno(r, "Failed to set up control connection");
                control_conn_free(c);
                return 0;
        }
        (void) sd_event_source_set_description(c->io, "aetask-control-connection");
        (void) sd_event_source_set_description(c->timer, "aetask-control-timeout");
        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_ON);

        if (!peer_is_allowed(s, conn, &cred)) {
                log_notice("Refusing control connection from pid %d uid %u: not root, the server's uid or in its control group",
                           cred.pid, cred.uid);
                (void) append_error(&c->out, PROTOCOL_ERROR_PERMISSION_DENIED, "message",
                                    "only root, the server's user and its control group may ask");
                c->closing = true;
                control_update_events(c);
        }
        return 0;
}

int control_start(aetask_server *s) {
        int r;

        if (s->n_control_fds == 0)
                return 0;
        r = server_watch_sockets(s, s->control_fds, s->n_control_fds, &s->control_sources, on_control_accept,
                                 "aetask-control");
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return log_error_errno(r, "Failed to watch the control socket");
        return 0;
}

void control_stop(aetask_server *s) {
        list_node *n, *t;

        if (s->control_conns.next)
                list_for_each_safe(n, t, &s->control_conns)
                        control_conn_free(list_entry(n, control_conn, node));
        for (size_t i = 0; s->control_sources && i < s->n_control_fds; i++)
                sd_event_source_disable_unref(s->control_sources[i]);
        free(s->control_sources);
        s->control_sources = NULL;
}
