/* aetaskctl status: asks a server's control socket for io.aetask.Server.Status
 * and shows its workers as a table (or the reply as JSON with --json). */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "address.h"
#include "buffer.h"
#include "control-protocol.h"
#include "ctl.h"
#include "macro.h"
#include "protocol.h"
#include "time-util.h"

static const char status_request[] = CONTROL_STATUS_REQUEST;

/* "420us", "850ms", "12.3s", "5min 3s", "2h 5min", "3d 4h". */
static const char *format_duration(uint64_t usec, char buf[static 32]) {
        uint64_t s = usec / USEC_PER_SEC;

        if (usec < USEC_PER_MSEC)
                snprintf(buf, 32, "%lluus", (unsigned long long) usec);
        else if (usec < USEC_PER_SEC)
                snprintf(buf, 32, "%llums", (unsigned long long) (usec / USEC_PER_MSEC));
        else if (s < 60)
                snprintf(buf, 32, "%.1fs", (double) usec / USEC_PER_SEC);
        else if (s < 3600)
                snprintf(buf, 32, "%llumin %llus", (unsigned long long) (s / 60), (unsigned long long) (s % 60));
        else if (s < 86400)
                snprintf(buf, 32, "%lluh %llumin", (unsigned long long) (s / 3600), (unsigned long long) (s % 3600 / 60));
        else
                snprintf(buf, 32, "%llud %lluh", (unsigned long long) (s / 86400), (unsigned long long) (s % 86400 / 3600));
        return buf;
}

static uint64_t get_u64(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) ? (uint64_t) json_object_get_uint64(v) : 0;
}

static const char *get_str(json_object *o, const char *key, const char *fallback) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
                ? json_object_get_string(v) : fallback;
}

/* "uid 1000", or "address 192.0.2.7" for a TCP client. */
static const char *format_user(json_object *o, char buf[static 80]) {
        json_object *v;

        if (json_object_object_get_ex(o, "uid", &v))
                snprintf(buf, 80, "uid %llu", (unsigned long long) json_object_get_uint64(v));
        else
                snprintf(buf, 80, "address %.60s", get_str(o, "address", "?"));
        return buf;
}

/* "512K", "1.9M", "2.0G": memory in powers of 1024. */
static const char *format_bytes(uint64_t bytes, char buf[static 32]) {
        if (bytes < 1024 * 1024)
                snprintf(buf, 32, "%lluK", (unsigned long long) (bytes / 1024));
        else if (bytes < 1024ULL * 1024 * 1024)
                snprintf(buf, 32, "%.1fM", (double) bytes / (1024.0 * 1024.0));
        else
                snprintf(buf, 32, "%.1fG", (double) bytes / (1024.0 * 1024.0 * 1024.0));
        return buf;
}

/* KEY's members, "N name" for each that is not 0, joined by ", "; "none" if all are. */
static const char *format_counts(json_object *o, const char *key, char *buf, size_t size) {
        json_object *counts;
        size_t used = 0;

        buf[0] = 0;
        if (!json_object_object_get_ex(o, key, &counts) || !json_object_is_type(counts, json_type_object))
                return "none";
        json_object_object_foreach(counts, name, v) {
                uint64_t n = (uint64_t) json_object_get_uint64(v);
                if (n == 0 || used >= size)
                        continue;
                used += (size_t) snprintf(buf + used, size - used, "%s%llu %s", used ? ", " : "",
                                          (unsigned long long) n, name);
        }
        return buf[0] ? buf : "none";
}

/* The handler's metrics (aetaskd(8), METRICS), the recycling limits and the
 * spawn back-off, when there are any. */
static void print_metrics(json_object *p) {
        json_object *m, *b, *v;
        char d1[32], d2[32], counts[512];

        if (json_object_object_get_ex(p, "metrics", &m)) {
                json_object_object_get_ex(m, "calls_per_sec", &v);
                printf("Calls: %llu (%.1f/s), duration p50 %s, p99 %s; errors: %s\n",
                       (unsigned long long) get_u64(m, "calls"), v ? json_object_get_double(v) : 0.0,
                       format_duration(get_u64(m, "call_usec_p50"), d1),
                       format_duration(get_u64(m, "call_usec_p99"), d2),
                       format_counts(m, "errors", counts, sizeof(counts)));
                printf("Workers spawned: %llu; retired: %s\n", (unsigned long long) get_u64(m, "workers_spawned"),
                       format_counts(m, "retired", counts, sizeof(counts)));
        }
        if (json_object_object_get_ex(p, "max_worker_lifetime_usec", NULL) ||
            json_object_object_get_ex(p, "max_worker_rss", NULL)) {
                printf("Recycling: lifetime %s, memory %s\n",
                       json_object_object_get_ex(p, "max_worker_lifetime_usec", NULL)
                               ? format_duration(get_u64(p, "max_worker_lifetime_usec"), d1) : "unlimited",
                       json_object_object_get_ex(p, "max_worker_rss", NULL)
                               ? format_bytes(get_u64(p, "max_worker_rss"), d2) : "unlimited");
        }
        if (json_object_object_get_ex(p, "backoff", &b))
                printf("Back-off: %llu start failure%s in a row, next attempt in %s (delay %s, %llu probes): %s\n",
                       (unsigned long long) get_u64(b, "failures"), plural_s(get_u64(b, "failures")),
                       format_duration(get_u64(b, "next_attempt_usec"), d1),
                       format_duration(get_u64(b, "delay_usec"), d2),
                       (unsigned long long) get_u64(b, "probes"), get_str(b, "last_error", "?"));
}

/* When the worker retires: "in 12.3s" (its lifetime), why it is retiring, or "-". */
static const char *format_retire(json_object *w, char buf[static 32]) {
        char d[32];

        if (json_object_object_get_ex(w, "retiring", NULL))
                snprintf(buf, 32, "%s", get_str(w, "retiring", "?"));
        else if (json_object_object_get_ex(w, "retire_in_usec", NULL))
                snprintf(buf, 32, "in %s", format_duration(get_u64(w, "retire_in_usec"), d));
        else
                snprintf(buf, 32, "-");
        return buf;
}

/* The share each user holds: who is near the per-user limit. */
static void print_users(json_object *p) {
        json_object *users = NULL;
        char who[80];

        if (!json_object_object_get_ex(p, "users", &users) || !json_object_is_type(users, json_type_array) ||
            json_object_array_length(users) == 0)
                return;
        printf("\n%-24s %8s %6s\n", "USER", "WORKERS", "BUSY");
        for (size_t i = 0; i < json_object_array_length(users); i++) {
                json_object *u = json_object_array_get_idx(users, i);
                printf("%-24s %8llu %6llu\n", format_user(u, who),
                       (unsigned long long) get_u64(u, "workers"), (unsigned long long) get_u64(u, "busy"));
        }
}

static void print_status(json_object *p) {
        json_object *workers = NULL, *v;
        char d1[32], d2[32], d3[32], retire[32], who[80];

        printf("%s: aetaskd pid %llu, handler %s, up %s%s\n",
               get_str(p, "name", "?"), (unsigned long long) get_u64(p, "pid"), get_str(p, "handler", "?"),
               format_duration(get_u64(p, "uptime_usec"), d1),
               json_object_object_get_ex(p, "draining", &v) && json_object_get_boolean(v) ? ", draining" : "");
        printf("Workers: %llu (%llu busy, %llu idle) of at most %llu, %llu per user; %llu call%s served, %llu killed as hung\n",
               (unsigned long long) get_u64(p, "alive"), (unsigned long long) get_u64(p, "busy"),
               (unsigned long long) get_u64(p, "idle"), (unsigned long long) get_u64(p, "max_workers"),
               (unsigned long long) get_u64(p, "max_workers_per_uid"),
               (unsigned long long) get_u64(p, "calls"), plural_s(get_u64(p, "calls")),
               (unsigned long long) get_u64(p, "killed_hung"));
        print_metrics(p);
        print_users(p);

        if (!json_object_object_get_ex(p, "workers", &workers) || json_object_array_length(workers) == 0)
                return;
        printf("\n%8s %6s %-5s %10s %6s %-20s %8s %8s %9s %7s %s\n",
               "PID", "WORKER", "STATE", "CLIENT", "UID", "METHOD", "FOR", "CALLS", "UPTIME", "RSS", "RETIRES");
        for (size_t i = 0; i < json_object_array_length(workers); i++) {
                json_object *w = json_object_array_get_idx(workers, i);
                bool busy = strcmp(get_str(w, "state", ""), "busy") == 0;
                /* A TCP client has no uid: "-" (the users table has its address). */
                if (json_object_object_get_ex(w, "client_uid", &v))
                        snprintf(who, sizeof(who), "%llu", (unsigned long long) json_object_get_uint64(v));
                else
                        snprintf(who, sizeof(who), "-");
                printf("%8llu %6llu %-5s %10llu %6s %-20.20s %8s %8llu %9s %7s %s\n",
                       (unsigned long long) get_u64(w, "pid"), (unsigned long long) get_u64(w, "number"),
                       get_str(w, "state", "?"), (unsigned long long) get_u64(w, "client_pid"),
                       who, busy ? get_str(w, "method", "") : "-",
                       busy ? format_duration(get_u64(w, "call_usec"), d1) : "-",
                       (unsigned long long) get_u64(w, "calls"),
                       format_duration(get_u64(w, "uptime_usec"), d2),
                       format_bytes(get_u64(w, "rss"), d3), format_retire(w, retire));
        }
}

/* Sends the request and reads one reply, within the timeout. */
static int exchange(int fd, uint64_t timeout_usec, buffer *in, const char **ret_reply, size_t *ret_len) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + timeout_usec;
        size_t scanned = 0;

        /* A server that refuses us may have answered and closed already:
         * its answer is still there to read. */
        if (send(fd, status_request, sizeof(status_request), MSG_NOSIGNAL) != (ssize_t) sizeof(status_request) &&
            errno != EPIPE && errno != ECONNRESET)
                return -errno;
        for (;;) {
                const char *msg;
                ssize_t len = buffer_next_message(in, &scanned, &msg);
                if (len >= 0) {
                        *ret_reply = msg;
                        *ret_len = (size_t) len;
                        return 0;
                }
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                if (now >= deadline)
                        return -ETIMEDOUT;
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                int r = poll(&pfd, 1, (int) MIN((deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC, (uint64_t) 60000));
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r <= 0)
                        continue;
                ssize_t n = buffer_read(in, fd, CONTROL_REPLY_MAX);
                if (n == 0)
                        return -ECONNRESET;
                if (n < 0 && n != -EAGAIN && n != -EINTR)
                        return (int) n;
        }
}

/* Asks ADDRESS for its status: 0 and the reply's parameters, or an exit
 * code with the reason written to stderr. */
int ctl_status_fetch(ctl_context *ctx, const char *address, json_object **ret) {
        _cleanup_(json_object_putp) json_object *m = NULL;
        _cleanup_(closep) int fd = -1;
        socket_address a;
        const char *reply = NULL, *reason;
        buffer in = {};
        size_t len = 0;
        int r;

        r = socket_address_parse(&a, address);
        if (r < 0) {
                fprintf(stderr, "aetaskctl: cannot use %s: %s\n", address, strerror(-r));
                return CTL_EXIT_USAGE;
        }
        fd = socket_address_connect_blocking(&a);
        if (fd < 0) {
                fprintf(stderr, "aetaskctl: cannot connect to %s: %s\n", address, strerror(-fd));
                return CTL_EXIT_CALL_FAILED;
        }
        r = exchange(fd, ctx->timeout_usec, &in, &reply, &len);
        if (r < 0) {
                fprintf(stderr, "aetaskctl: no status from %s: %s\n", address, strerror(-r));
                buffer_done(&in);
                return CTL_EXIT_CALL_FAILED;
        }

        r = protocol_parse_message(reply, len, &m, &reason);
        buffer_done(&in);
        if (r < 0) {
                fprintf(stderr, "aetaskctl: invalid reply from %s\n", address);
                return CTL_EXIT_CALL_FAILED;
        }

        json_object *error = NULL, *parameters = NULL;
        (void) json_object_object_get_ex(m, "parameters", &parameters);
        if (json_object_object_get_ex(m, "error", &error) &&
            strncmp(json_object_get_string(error), "org.varlink.service.", strlen("org.varlink.service.")) == 0) {
                /* Only a control socket has io.aetask.Server.Status: a
                 * worker says it has no such method.  This is where calls go. */
                fprintf(stderr, "aetaskctl: %s is a worker socket, not a control socket "
                        "(status is served on aetaskd --control ADDRESS, or /run/aetask/NAME.control)\n", address);
                return CTL_EXIT_CALL_FAILED;
        }
        if (error) {
                fprintf(stderr, "aetaskctl: %s: %s\n", json_object_get_string(error),
                        parameters ? get_str(parameters, "message", "") : "");
                return CTL_EXIT_CALL_FAILED;
        }
        if (!parameters) {
                fprintf(stderr, "aetaskctl: invalid reply from %s\n", address);
                return CTL_EXIT_CALL_FAILED;
        }
        if (!json_object_object_get_ex(parameters, "workers", NULL)) {
                fprintf(stderr, "aetaskctl: the reply from %s is not a status\n", address);
                return CTL_EXIT_CALL_FAILED;
        }
        *ret = json_object_get(parameters);
        return 0;
}

void ctl_status_print(ctl_context *ctx, json_object *parameters) {
        if (ctx->json)
                puts(json_object_to_json_string_ext(parameters, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        else
                print_status(parameters);
}

int ctl_status(ctl_context *ctx, int argc, char **argv) {
        _cleanup_(json_object_putp) json_object *parameters = NULL;
        const char *address = ctx->address;
        int r;

        if (argc > 1) {
                fprintf(stderr, "aetaskctl: status takes one NAME or ADDRESS\n");
                return CTL_EXIT_USAGE;
        }
        if (argc == 1)
                address = strchr(argv[0], ':') ? argv[0] : ctl_unit_address(argv[0], ".control");
        else if (!address && ctx->name)
                address = ctl_unit_address(ctx->name, ".control");
        if (!address) {
                fprintf(stderr, "aetaskctl: no server given: use status NAME, status ADDRESS or --connect ADDRESS\n");
                return CTL_EXIT_USAGE;
        }
        if (ctx->watch)
                return ctl_status_watch(ctx, address);
        r = ctl_status_fetch(ctx, address, &parameters);
        if (r != 0)
                return r;
        ctl_status_print(ctx, parameters);
        return 0;
}
