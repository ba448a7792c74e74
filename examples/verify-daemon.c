/* verify-daemon: an sd-event daemon that takes password requests on a unix
 * socket of its own and answers each through a worker of the bcrypt handler,
 * one call per request, each call with its own slot.  When a requester hangs
 * up, the calls it left outstanding are cancelled by dropping their slots,
 * and each request is freed once, by its call's destroy callback, whatever
 * ended the call.  (The daemon of issue 12, written against the public API.)
 *
 *   verify-daemon [--listen PATH] [--connect ADDRESS] [--max-connections N]
 *                 [--max-outstanding N] [--max-workers N] [--timeout SECONDS]
 *
 * Its socket: from systemd (socket activation, one unix stream socket), or
 * --listen PATH.  The workers: aetask@bcrypt's socket, or --connect ADDRESS.
 *
 * The protocol, one request a line ('\n', at most 1024 bytes with it), one
 * reply line for each, as soon as its answer is there (so not necessarily in
 * the order of the requests), led by the request's number on its connection
 * (1, 2, ...):
 *   hash PASSWORD              N ok $2b$...
 *   verify HASH PASSWORD       N ok true | N ok false
 *   stats                      N ok connections=C outstanding=O answered=A failed=F cancelled=X busy=B refused=R
 *   anything else              N error usage: hash PASSWORD | verify HASH PASSWORD | stats
 * A failed call is "N error KIND MESSAGE", KIND as aetask_error_kind_to_string()
 * names it ("handler", "timeout", ...).  A request beyond the connection's
 * outstanding cap is "N error busy ..."; a line too long is "N error too-long
 * ..." and the connection is closed; a connection beyond the cap is told
 * "0 error busy ..." and closed.  End of input is a hang-up: what is
 * outstanding is cancelled (read every answer before closing).
 *
 * Signals: SIGTERM and SIGINT stop it; SIGUSR1 writes the stats line to stderr. */
#include <aetask/aetask-client.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#define LINE_MAX_BYTES 1024      /* a request line, its '\n' included */
#define REPLY_MAX_BYTES 256      /* a reply line: messages are cut to fit */
#define OUT_MAX_BYTES (16 * 1024)
/* Input is read only while the output has room for this much: the replies of
 * every outstanding call and of one buffer of short lines always fit. */
#define OUT_RESERVE_BYTES (OUT_MAX_BYTES / 2)

typedef struct daemon_state daemon_state;
typedef struct connection connection;
typedef struct request request;

typedef struct stats {
        unsigned connections, outstanding;
        unsigned long answered, failed, cancelled, busy, refused;
} stats;

struct daemon_state {
        sd_event *event;
        aetask_client *client;
        unsigned max_connections, max_outstanding;
        connection *connections;
        stats stats;
};

typedef enum connection_state {
        CONNECTION_OPEN,     /* reading requests, writing replies */
        CONNECTION_CLOSING,  /* to be freed by its defer source, from a safe place */
} connection_state;

struct connection {
        daemon_state *daemon;
        connection *prev, *next;
        connection_state state;
        int fd;
        unsigned number;
        sd_event_source *io, *close_later;
        char in[LINE_MAX_BYTES];
        size_t n_in;
        char out[OUT_MAX_BYTES];
        size_t n_out;
        unsigned next_request;
        request *requests;
        unsigned n_requests;
};

typedef enum request_kind { REQUEST_HASH, REQUEST_VERIFY } request_kind;

struct request {
        connection *connection;
        request *prev, *next;
        unsigned number;
        request_kind kind;
        aetask_slot *slot;
};

static void connection_update_events(connection *c);

static void print_stats(const stats *s, char *buf, size_t size) {
        snprintf(buf, size, "connections=%u outstanding=%u answered=%lu failed=%lu cancelled=%lu busy=%lu refused=%lu",
                 s->connections, s->outstanding, s->answered, s->failed, s->cancelled, s->busy, s->refused);
}

/* One reply line, its text made safe for a line protocol and cut to fit. */
static void connection_reply(connection *c, unsigned number, const char *format, ...) {
        char line[REPLY_MAX_BYTES];
        va_list ap;
        int n;

        n = snprintf(line, sizeof(line), "%u ", number);
        va_start(ap, format);
        vsnprintf(line + n, sizeof(line) - (size_t) n, format, ap);
        va_end(ap);
        for (char *p = line; *p; p++)
                if (*p == '\n' || *p == '\r')
                        *p = ' ';
        n = (int) strlen(line);
        if (c->n_out + (size_t) n + 1 > sizeof(c->out))
                return;  /* cannot happen: reading stops while the room is short */
        memcpy(c->out + c->n_out, line, (size_t) n);
        c->out[c->n_out + (size_t) n] = '\n';
        c->n_out += (size_t) n + 1;
        connection_update_events(c);
}

/* The call's destroy callback: the one place a request is freed, after its
 * reply handler, or when its call is cancelled or fails. */
static void request_free(void *userdata) {
        request *q = userdata;
        connection *c = q->connection;

        if (q->prev)
                q->prev->next = q->next;
        else
                c->requests = q->next;
        if (q->next)
                q->next->prev = q->prev;
        c->n_requests--;
        c->daemon->stats.outstanding--;
        /* NULL when its cancel is what runs this: see request_cancel(). */
        aetask_slot_unref(q->slot);
        free(q);
}

/* Dropping the only reference to the slot cancels the call; its destroy
 * callback, request_free(), runs at once.  The slot is taken off the request
 * first, so that request_free() does not drop it a second time. */
static void request_cancel(request *q) {
        aetask_slot *slot = q->slot;

        q->slot = NULL;
        aetask_slot_unref(slot);
}

static int on_reply(aetask_checkout *checkout, json_object *result, const aetask_error *error, void *userdata) {
        request *q = userdata;
        connection *c = q->connection;

        if (error) {
                c->daemon->stats.failed++;
                connection_reply(c, q->number, "error %s %s", aetask_error_kind_to_string(error->kind), error->message);
                return 1;  /* handled here: the checkout has no error handler to run */
        }
        c->daemon->stats.answered++;
        if (q->kind == REQUEST_HASH)
                connection_reply(c, q->number, "ok %s", json_object_get_string(result));
        else
                connection_reply(c, q->number, "ok %s", json_object_get_boolean(result) ? "true" : "false");
        return 0;
}

/* One call on a checkout of its own, so that requests run in parallel on as
 * many workers as the pool gives. */
static int request_start(connection *c, unsigned number, request_kind kind, const char *hash, const char *password) {
        aetask_checkout *checkout = NULL;
        request *q;
        int r;

        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        *q = (request) { .connection = c, .number = number, .kind = kind };

        r = aetask_client_checkout(c->daemon->client, &checkout);
        if (r >= 0) {
                if (kind == REQUEST_HASH)
                        r = aetask_checkout_call_format(checkout, &q->slot, "hash", on_reply, q, "s", password);
                else
                        r = aetask_checkout_call_format(checkout, &q->slot, "verify", on_reply, q, "ss", hash, password);
        }
        /* The checkout is released when its call is over. */
        aetask_checkout_unref(checkout);
        if (r < 0) {
                free(q);
                return r;
        }

        q->next = c->requests;
        if (c->requests)
                c->requests->prev = q;
        c->requests = q;
        c->n_requests++;
        c->daemon->stats.outstanding++;
        r = aetask_slot_set_destroy_callback(q->slot, request_free);
        assert(r >= 0);  /* the call has not ended: its reply comes from the loop */
        return 0;
}

/* "verify HASH PASSWORD": the password is the rest of the line, spaces and all. */
static void connection_handle_line(connection *c, char *line) {
        unsigned number = ++c->next_request;
        char *arg = strchr(line, ' '), *password = NULL;
        request_kind kind;
        int r;

        if (arg)
                *arg++ = '\0';
        if (strcmp(line, "stats") == 0 && !arg) {
                char text[REPLY_MAX_BYTES - 32];
                print_stats(&c->daemon->stats, text, sizeof(text));
                connection_reply(c, number, "ok %s", text);
                return;
        }
        if (strcmp(line, "hash") == 0 && arg && *arg) {
                kind = REQUEST_HASH;
                password = arg;
        } else if (strcmp(line, "verify") == 0 && arg && (password = strchr(arg, ' ')) && password > arg && password[1]) {
                kind = REQUEST_VERIFY;
                *password++ = '\0';
        } else {
                connection_reply(c, number, "error usage: hash PASSWORD | verify HASH PASSWORD | stats");
                return;
        }
        if (c->n_requests >= c->daemon->max_outstanding) {
                c->daemon->stats.busy++;
                connection_reply(c, number, "error busy %u requests outstanding on this connection", c->n_requests);
                return;
        }
        r = request_start(c, number, kind, arg, password);
        if (r < 0)
                connection_reply(c, number, "error internal %s", strerror(-r));
}

static void connection_free(connection *c) {
        daemon_state *d = c->daemon;
        unsigned n = c->n_requests;

        if (n > 0) {
                fprintf(stderr, "verify-daemon: connection %u hung up with %u requests outstanding: cancelling their calls\n",
                        c->number, n);
                while (c->requests)
                        request_cancel(c->requests);  /* frees it */
                d->stats.cancelled += n;
        }
        /* What is left to say, if the socket takes it now (a too-long line's error). */
        if (c->n_out > 0)
                (void) send(c->fd, c->out, c->n_out, MSG_DONTWAIT | MSG_NOSIGNAL);
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->close_later);
        close(c->fd);
        if (c->prev)
                c->prev->next = c->next;
        else
                d->connections = c->next;
        if (c->next)
                c->next->prev = c->prev;
        d->stats.connections--;
        free(c);
}

static int on_close_later(sd_event_source *s, void *userdata) {
        connection_free(userdata);
        return 0;
}

/* Closing goes through a defer source, so that it never happens under a
 * caller that still uses the connection. */
static void connection_close(connection *c) {
        if (c->state == CONNECTION_CLOSING)
                return;
        c->state = CONNECTION_CLOSING;
        (void) sd_event_source_set_enabled(c->io, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(c->close_later, SD_EVENT_ONESHOT);
}

static bool connection_can_read(connection *c) {
        return c->state == CONNECTION_OPEN && c->n_out <= OUT_RESERVE_BYTES;
}

static void connection_update_events(connection *c) {
        if (c->state != CONNECTION_OPEN)
                return;
        (void) sd_event_source_set_io_events(c->io, (connection_can_read(c) ? EPOLLIN : 0) | (c->n_out > 0 ? EPOLLOUT : 0));
}

/* The complete lines in the input buffer, while the output has room. */
static void connection_handle_input(connection *c) {
        char *end;

        while (connection_can_read(c) && (end = memchr(c->in, '\n', c->n_in))) {
                size_t n = (size_t) (end - c->in) + 1;

                *end = '\0';
                if (end > c->in && end[-1] == '\r')
                        end[-1] = '\0';
                connection_handle_line(c, c->in);
                memmove(c->in, c->in + n, c->n_in - n);
                c->n_in -= n;
        }
        if (c->n_in == sizeof(c->in) && !memchr(c->in, '\n', c->n_in)) {
                connection_reply(c, ++c->next_request, "error too-long a line is at most %d bytes", LINE_MAX_BYTES);
                connection_close(c);
        }
}

static int on_connection_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        connection *c = userdata;
        ssize_t n;

        if (c->n_out > 0 && (revents & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
                n = send(fd, c->out, c->n_out, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0 && errno != EAGAIN && errno != EINTR) {
                        connection_close(c);
                        return 0;
                }
                if (n > 0) {
                        memmove(c->out, c->out + n, c->n_out - (size_t) n);
                        c->n_out -= (size_t) n;
                }
        }
        connection_handle_input(c);
        if (connection_can_read(c) && (revents & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
                n = recv(fd, c->in + c->n_in, sizeof(c->in) - c->n_in, MSG_DONTWAIT);
                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                        connection_close(c);  /* hung up */
                        return 0;
                }
                if (n > 0) {
                        c->n_in += (size_t) n;
                        connection_handle_input(c);
                }
        }
        connection_update_events(c);
        return 0;
}

static int connection_new(daemon_state *d, int fd) {
        static unsigned counter;
        connection *c;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (connection) { .daemon = d, .fd = fd, .number = ++counter };
        r = sd_event_add_io(d->event, &c->io, fd, EPOLLIN, on_connection_io, c);
        if (r >= 0)
                r = sd_event_add_defer(d->event, &c->close_later, on_close_later, c);
        if (r >= 0)
                r = sd_event_source_set_enabled(c->close_later, SD_EVENT_OFF);
        if (r < 0) {
                sd_event_source_disable_unref(c->io);
                sd_event_source_disable_unref(c->close_later);
                free(c);
                return r;
        }
        (void) sd_event_source_set_description(c->io, "verify-connection");
        (void) sd_event_source_set_description(c->close_later, "verify-connection-close");
        c->next = d->connections;
        if (d->connections)
                d->connections->prev = c;
        d->connections = c;
        d->stats.connections++;
        return 0;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        static const char busy[] = "0 error busy too many connections\n";
        daemon_state *d = userdata;
        int cfd;

        cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0)
                return 0;  /* EAGAIN, or the peer left already */
        if (d->stats.connections >= d->max_connections) {
                d->stats.refused++;
                (void) send(cfd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
                close(cfd);
                return 0;
        }
        if (connection_new(d, cfd) < 0) {
                fprintf(stderr, "verify-daemon: Failed to set up a connection: out of memory\n");
                close(cfd);
        }
        return 0;
}

static int on_usr1(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        daemon_state *d = userdata;
        char text[REPLY_MAX_BYTES];

        print_stats(&d->stats, text, sizeof(text));
        fprintf(stderr, "verify-daemon: %s\n", text);
        return 0;
}

/* The listening socket: systemd's, or one bound at PATH. */
static int open_listener(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct stat st;
        int fd, n;

        if (!path) {
                n = sd_listen_fds(true);
                if (n < 0)
                        return n;
                if (n != 1 || sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0) <= 0)
                        return -EBADF;
                fd = SD_LISTEN_FDS_START;
                if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
                        return -errno;
                return fd;
        }
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        /* A socket left by an earlier run; anything else at PATH is kept. */
        if (lstat(path, &st) >= 0 && S_ISSOCK(st.st_mode))
                (void) unlink(path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, SOMAXCONN) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

static int parse_unsigned(const char *s, unsigned *ret) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || end == s || *end || v == 0 || v > 100000 || s[0] == '-')
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

static void usage(FILE *f) {
        fprintf(f, "Usage: verify-daemon [--listen PATH] [--connect ADDRESS] [--max-connections N]\n"
                   "                     [--max-outstanding N] [--max-workers N] [--timeout SECONDS]\n"
                   "Answers \"hash PASSWORD\", \"verify HASH PASSWORD\" and \"stats\" lines on a unix\n"
                   "socket (systemd's, or PATH) through the bcrypt handler's workers.\n");
}

typedef struct options {
        const char *listen_path, *address;
        unsigned timeout_s, max_workers;
} options;

/* Returns 1 to go on, 0 to exit at once (--help), or 2, the exit status of
 * a usage error. */
static int parse_argv(int argc, char *argv[], daemon_state *d, options *o) {
        static const struct option long_options[] = {
                { "listen", required_argument, NULL, 'l' },
                { "connect", required_argument, NULL, 'c' },
                { "max-connections", required_argument, NULL, 'C' },
                { "max-outstanding", required_argument, NULL, 'O' },
                { "max-workers", required_argument, NULL, 'W' },
                { "timeout", required_argument, NULL, 't' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        int opt, r;

        while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) >= 0) {
                switch (opt) {
                case 'l': o->listen_path = optarg; continue;
                case 'c': o->address = optarg; continue;
                case 'C': r = parse_unsigned(optarg, &d->max_connections); break;
                case 'O': r = parse_unsigned(optarg, &d->max_outstanding); break;
                case 'W': r = parse_unsigned(optarg, &o->max_workers); break;
                case 't': r = parse_unsigned(optarg, &o->timeout_s); break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
                if (r < 0) {
                        fprintf(stderr, "verify-daemon: a number from 1 to 100000 was expected, not \"%s\"\n", optarg);
                        return 2;
                }
        }
        if (optind < argc) {
                usage(stderr);
                return 2;
        }
        return 1;
}

/* The pool of bcrypt workers and the event sources, on D's loop. */
static int setup(daemon_state *d, const options *o, int fd) {
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGUSR1);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        if ((r = sd_event_default(&d->event)) < 0 ||
            (r = o->address ? aetask_client_new(&d->client, o->address) : aetask_client_new_handler(&d->client, "bcrypt")) < 0 ||
            (r = aetask_client_attach_event(d->client, d->event, 0)) < 0 ||
            (r = aetask_client_set_name(d->client, "verify-daemon")) < 0 ||
            (r = aetask_client_set_max_workers(d->client, o->max_workers)) < 0 ||
            (r = aetask_client_set_timeout(d->client, (uint64_t) o->timeout_s * 1000000)) < 0 ||
            (r = sd_event_add_io(d->event, NULL, fd, EPOLLIN, on_accept, d)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGTERM, NULL, NULL)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGINT, NULL, NULL)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGUSR1, on_usr1, d)) < 0)
                return r;
        return 0;
}

int main(int argc, char *argv[]) {
        daemon_state d = { .max_connections = 64, .max_outstanding = 8 };
        options o = { .timeout_s = 10, .max_workers = 20 };
        int fd, r;

        r = parse_argv(argc, argv, &d, &o);
        if (r != 1)
                return r;

        fd = open_listener(o.listen_path);
        if (fd < 0) {
                if (o.listen_path)
                        fprintf(stderr, "verify-daemon: Failed to listen on %s: %s\n", o.listen_path, strerror(-fd));
                else
                        fprintf(stderr, "verify-daemon: Failed to take the socket from systemd (one unix stream socket), "
                                        "and no --listen PATH: %s\n", strerror(-fd));
                return 1;
        }
        r = setup(&d, &o, fd);
        if (r < 0) {
                fprintf(stderr, "verify-daemon: Failed to set up: %s\n", strerror(-r));
                return 1;
        }
        fprintf(stderr, "verify-daemon: listening on %s, workers at %s\n",
                o.listen_path ?: "the socket from systemd", o.address ?: "aetask@bcrypt's socket");
        (void) sd_notify(false, "READY=1");

        r = sd_event_loop(d.event);

        while (d.connections)
                connection_free(d.connections);
        aetask_client_unref(d.client);
        sd_event_unref(d.event);  /* frees the sources it still holds */
        close(fd);
        if (r < 0) {
                fprintf(stderr, "verify-daemon: Event loop failed: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}
