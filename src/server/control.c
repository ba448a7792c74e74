/* The control socket: answers a Varlink-shaped io.aetask.Server.Status call
 * with the server's workers, read from the scoreboard (aetaskctl status).
 * Callers are checked by their peer credentials: root, the server's own
 * uid, or a member of the control group.  Bounded: a few connections at
 * once, small requests, and an idle timeout. */
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buffer.h"
#include "log.h"
#include "peer.h"
#include "macro.h"
#include "protocol.h"
#include "server-internal.h"

#define CONTROL_CONNECTIONS_MAX 16
#define CONTROL_REQUEST_MAX 4096
#define CONTROL_IDLE_TIMEOUT_USEC (10 * USEC_PER_SEC)

#define CONTROL_METHOD_STATUS          "io.aetask.Server.Status"
#define CONTROL_ERROR_METHOD_NOT_FOUND "org.varlink.service.MethodNotFound"

typedef struct control_conn {
        list_node node;                /* in server->control_conns */
        aetask_server *server;
        int fd;
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

static bool peer_is_allowed(aetask_server *s, int fd, struct ucred *ret) {
        struct ucred cred = {};
        socklen_t len = sizeof(cred);

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return false;
        *ret = cred;
        if (cred.uid == 0 || cred.uid == geteuid())
                return true;
        return s->control_gid_set && peer_in_group(fd, &cred, s->control_gid);
}

static int add_u64(json_object *o, const char *key, uint64_t v) {
        return json_object_object_add(o, key, json_object_new_uint64(v));
}

static json_object *worker_status(aetask_server *s, const scoreboard_slot *live, uint64_t now_mono, uint64_t now_real) {
        scoreboard_slot slot;
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        slot_snapshot(live, &slot);
        bool busy = slot.state == SLOT_BUSY;
        json_object_object_add(o, "pid", json_object_new_int(slot.pid));
        add_u64(o, "number", slot.number);
        json_object_object_add(o, "state", json_object_new_string(busy ? "busy" : "idle"));
        json_object_object_add(o, "client_pid", json_object_new_int(slot.client_pid));
        add_u64(o, "client_uid", slot.client_uid);
        if (busy) {
                json_object_object_add(o, "method", json_object_new_string(slot.method));
                add_u64(o, "call_usec", now_mono > slot.call_started ? now_mono - slot.call_started : 0);
        }
        add_u64(o, "calls", slot.calls);
        add_u64(o, "started_usec", slot.started_realtime);
        add_u64(o, "uptime_usec", now_real > slot.started_realtime ? now_real - slot.started_realtime : 0);
        return o;
}

static json_object *server_status(aetask_server *s) {
        uint64_t now_mono = now_usec(CLOCK_MONOTONIC), now_real = now_usec(CLOCK_REALTIME);
        json_object *o = json_object_new_object(), *workers = json_object_new_array();
        server_counts c;

        if (!o || !workers) {
                json_object_put(o);
                json_object_put(workers);
                return NULL;
        }
        server_get_counts(s, &c);
        json_object_object_add(o, "name", json_object_new_string(server_display_name(s)));
        if (s->handler_name || s->handler->name)
                json_object_object_add(o, "handler", json_object_new_string(s->handler_name ?: s->handler->name));
        json_object_object_add(o, "pid", json_object_new_int(getpid()));
        json_object_object_add(o, "draining", json_object_new_boolean(s->shutting_down));
        add_u64(o, "started_usec", s->started_realtime);
        add_u64(o, "uptime_usec", now_mono - s->started);
        add_u64(o, "alive", c.alive);
        add_u64(o, "busy", c.busy);
        add_u64(o, "idle", c.idle);
        add_u64(o, "max_workers", s->max_workers);
        add_u64(o, "calls", c.calls);
        add_u64(o, "killed_hung", c.killed_hung);
        for (unsigned i = 0; i < s->board.n_slots; i++)
                if (s->workers[i].pid > 0 && slot_get_state(&s->board.slots[i]) != SLOT_FREE)
                        json_object_array_add(workers, worker_status(s, &s->board.slots[i], now_mono, now_real));
        json_object_object_add(o, "workers", workers);
        return o;
}

static int append_json(buffer *b, json_object *m) {
        const char *text = json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text)
                return -ENOMEM;
        return buffer_append(b, text, strlen(text) + 1);  /* the NUL ends the message */
}

static int append_reply(buffer *b, json_object *parameters) {
        _cleanup_(json_object_putp) json_object *m = json_object_new_object();
        if (!m || !parameters) {
                json_object_put(parameters);
                return -ENOMEM;
        }
        json_object_object_add(m, "parameters", parameters);
        return append_json(b, m);
}

static int append_error(buffer *b, const char *error, const char *key, const char *value) {
        _cleanup_(json_object_putp) json_object *m = json_object_new_object();
        json_object *p = json_object_new_object();
        if (!m || !p) {
                json_object_put(p);
                return -ENOMEM;
        }
        json_object_object_add(m, "error", json_object_new_string(error));
        if (key)
                json_object_object_add(p, key, json_object_new_string(value));
        json_object_object_add(m, "parameters", p);
        return append_json(b, m);
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
                return append_reply(&c->out, server_status(c->server));
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
        (void) sd_event_source_set_time_relative(c->timer, CONTROL_IDLE_TIMEOUT_USEC);
        control_update_events(c);
        return 0;
}

static int on_control_timeout(sd_event_source *source, uint64_t usec, void *userdata) {
        control_conn_free(userdata);
        return 0;
}

static int on_control_accept(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        aetask_server *s = userdata;
        struct ucred cred = {};
        control_conn *c;
        int conn, r;

        conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (conn < 0) {
                if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                        log_warning_errno(-errno, "Failed to accept control connection");
                return 0;
        }
        if (s->n_control_conns >= CONTROL_CONNECTIONS_MAX) {
                log_warning("Refusing a control connection: %u are open already", s->n_control_conns);
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
        list_init(&c->node);
        list_append(&s->control_conns, &c->node);
        s->n_control_conns++;

        r = sd_event_add_io(s->event, &c->io, conn, EPOLLIN, on_control_io, c);
        if (r >= 0)
                r = sd_event_add_time_relative(s->event, &c->timer, CLOCK_MONOTONIC, CONTROL_IDLE_TIMEOUT_USEC,
                                               USEC_PER_SEC, on_control_timeout, c);
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
        s->control_sources = calloc(s->n_control_fds, sizeof(sd_event_source *));
        if (!s->control_sources)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_control_fds; i++) {
                (void) fd_nonblock(s->control_fds[i]);
                r = sd_event_add_io(s->event, &s->control_sources[i], s->control_fds[i], EPOLLIN, on_control_accept, s);
                if (r < 0)
                        return log_error_errno(r, "Failed to watch the control socket");
                (void) sd_event_source_set_description(s->control_sources[i], "aetask-control");
        }
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
