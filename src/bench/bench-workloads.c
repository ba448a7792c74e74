/* aetask-bench's workloads.  Calls are driven from their own callbacks on
 * an sd-event loop: a reply issues the next call until the run's time or
 * count is up, so each workload measures what a real program would see. */
#include <aetask/aetask-client.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "child-exit.h"
#include "fd-count.h"

/* The value below which a fraction Q of the sorted samples lie. */
static double quantile(const double *sorted, size_t n, double q) {
        if (n == 0)
                return NAN;
        size_t i = (size_t) ceil(q * (double) n);
        return sorted[i > 0 ? i - 1 : 0];
}

long proc_kib(pid_t pid, const char *file, const char *field) {
        char path[64], line[256];
        size_t l = strlen(field);
        long v = -1;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/%s", (int) pid, file);
        f = fopen(path, "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, field, l) == 0 && line[l] == ':') {
                        v = strtol(line + l + 1, NULL, 10);
                        break;
                }
        fclose(f);
        return v;
}

static long self_rss_bytes(void) {
        long pages = 0, resident = 0;
        FILE *f = fopen("/proc/self/statm", "re");
        if (!f)
                return -1;
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
                resident = -1;
        fclose(f);
        return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

/* ---- Driving calls on an event loop ------------------------------------- */

typedef struct driver driver;

typedef struct slot {
        driver *d;
        aetask_checkout *co;
} slot;

struct driver {
        sd_event *event;
        aetask_client *client;
        const char *method;
        json_object *args;
        bool cycle;                  /* a new checkout for every call */
        uint64_t deadline;           /* issue no call after this (usec), or 0 */
        uint64_t limit;              /* issue no more than this many calls, or 0 */
        uint64_t issued, completed;
        unsigned in_flight;
        uint64_t started, finished;
        /* spawn: the time at every WINDOW completed calls */
        uint64_t *marks;
        size_t window, n_marks;
};

/* Runs EVENT until *COUNT drops to zero (sd_event_loop() runs only once). */
static void run_until(sd_event *event, const unsigned *count) {
        while (*count > 0) {
                int r = sd_event_run(event, UINT64_MAX);
                if (r < 0)
                        die("Event loop failed: %s", strerror(-r));
        }
}

static void on_error(aetask_checkout *co, aetask_error_kind kind, const char *message, void *userdata) {
        die("%s error during the benchmark: %s", aetask_error_kind_to_string(kind), message);
}

static int on_reply(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata);

static void issue(slot *sl) {
        driver *d = sl->d;
        int r;

        if (!sl->co) {
                r = aetask_client_checkout(d->client, &sl->co);
                if (r < 0)
                        die("Failed to check out: %s", strerror(-r));
                aetask_checkout_set_error_handler(sl->co, on_error, NULL);
        }
        d->issued++;
        r = aetask_checkout_call(sl->co, NULL, d->method, d->args, on_reply, sl);
        if (r < 0)
                die("Failed to call: %s", strerror(-r));
}

static bool driver_may_issue(driver *d) {
        if (d->limit > 0 && d->issued >= d->limit)
                return false;
        if (d->deadline > 0 && now_usec(CLOCK_MONOTONIC) >= d->deadline)
                return false;
        return true;
}

static int on_reply(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        slot *sl = userdata;
        driver *d = sl->d;

        d->completed++;
        if (d->marks && d->completed % d->window == 0)
                d->marks[d->n_marks++] = now_usec(CLOCK_MONOTONIC);
        if (d->cycle)
                /* Released once this callback returns: its calls are done. */
                sl->co = aetask_checkout_unref(sl->co);
        if (driver_may_issue(d)) {
                issue(sl);
                return 0;
        }
        if (--d->in_flight == 0)
                d->finished = now_usec(CLOCK_MONOTONIC);
        return 0;
}

typedef struct client_options {
        unsigned min_workers, max_workers, max_checkouts;
        size_t max_message_size;
} client_options;

static aetask_client *client_new(sd_event *event, const char *address, const client_options *o) {
        aetask_client *c;
        int r;

        r = aetask_client_new(&c, address);
        if (r < 0)
                die("Failed to make a client: %s", strerror(-r));
        if (o && o->max_workers)
                aetask_client_set_max_workers(c, o->max_workers);
        if (o && o->min_workers)
                aetask_client_set_min_workers(c, o->min_workers);
        if (o && o->max_checkouts)
                aetask_client_set_max_checkouts(c, o->max_checkouts);
        if (o && o->max_message_size > 16 * 1024 * 1024)
                aetask_client_set_max_message_size(c, o->max_message_size);
        aetask_client_set_error_handler(c, on_error, NULL);
        r = aetask_client_attach_event(c, event, 0);
        if (r < 0)
                die("Failed to attach the client: %s", strerror(-r));
        return c;
}

/* Runs N_SLOTS call loops at once until the deadline or the limit; returns
 * the calls completed, and their rate per second in *RET_RATE. */
static uint64_t drive(driver *d, unsigned n_slots, double *ret_rate) {
        slot slots[n_slots];

        d->issued = d->completed = 0;
        d->n_marks = 0;
        d->in_flight = n_slots;
        d->started = now_usec(CLOCK_MONOTONIC);
        for (unsigned i = 0; i < n_slots; i++) {
                slots[i] = (slot) { .d = d };
                issue(&slots[i]);
        }
        run_until(d->event, &d->in_flight);
        for (unsigned i = 0; i < n_slots; i++)
                slots[i].co = aetask_checkout_unref(slots[i].co);
        if (ret_rate)
                *ret_rate = (double) d->completed * USEC_PER_SEC / (double) (d->finished - d->started);
        return d->completed;
}

/* A rate workload: WARM-UP first, then the runs. */
static void rate_workload(const char *workload, const char *name, const char *address, const client_options *o,
                          const char *method, json_object *args, bool cycle, unsigned n_slots) {
        sd_event *event;
        driver d = { .method = method, .args = args, .cycle = cycle };
        double rate;

        sd_event_new(&event);
        d.event = event;
        d.client = client_new(event, address, o);

        d.deadline = now_usec(CLOCK_MONOTONIC) + (uint64_t) (arg.duration * USEC_PER_SEC / 5);
        (void) drive(&d, n_slots, NULL);
        for (unsigned run = 0; run < arg.runs; run++) {
                progress("%s: run %u of %u", workload, run + 1, arg.runs);
                d.deadline = now_usec(CLOCK_MONOTONIC) + (uint64_t) (arg.duration * USEC_PER_SEC);
                (void) drive(&d, n_slots, &rate);
                record(workload, name, "calls/s", UNIT_RATE, rate);
        }
        aetask_client_unref(d.client);
        sd_event_unref(event);
}

/* ---- floor -------------------------------------------------------------- */

/* All N bytes, across short transfers and signals: 0, or -1 at an error or
 * the end of the file. */
static int transfer_full(int fd, char *p, size_t n, bool writing) {
        while (n > 0) {
                ssize_t k = writing ? write(fd, p, n) : read(fd, p, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return -1;
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

int write_full(int fd, const void *buf, size_t n) {
        return transfer_full(fd, (char *) buf, n, true);
}

int read_full(int fd, void *buf, size_t n) {
        return transfer_full(fd, buf, n, false);
}

/* Round trips of SIZE bytes each way over a socketpair to a forked child,
 * for arg.duration; run 0 is the warm-up.  Records NAME of WORKLOAD. */
static void ping_pong(const char *workload, const char *name, size_t size) {
        char *b = malloc(size);

        if (!b)
                die("out of memory");
        memset(b, 'x', size);
        for (unsigned run = 0; run < arg.runs + 1; run++) {
                int sv[2];
                pid_t pid;

                progress("%s %s: run %u of %u", workload, name, run, arg.runs);
                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                        die("socketpair: %m");
                pid = fork();
                if (pid < 0)
                        die("fork: %m");
                if (pid == 0) {
                        close(sv[0]);
                        while (read_full(sv[1], b, size) == 0)
                                if (write_full(sv[1], b, size) < 0)
                                        break;
                        child_exit(0);
                }
                close(sv[1]);

                double duration = run == 0 ? arg.duration / 5 : arg.duration;
                uint64_t start = now_usec(CLOCK_MONOTONIC), end = start + (uint64_t) (duration * USEC_PER_SEC), now, n = 0;
                unsigned batch = size > 4096 ? 1 : 64;
                do {
                        for (unsigned i = 0; i < batch; i++, n++)
                                if (write_full(sv[0], b, size) < 0 || read_full(sv[0], b, size) < 0)
                                        die("%s ping-pong failed: %m", workload);
                        now = now_usec(CLOCK_MONOTONIC);
                } while (now < end);
                close(sv[0]);
                waitpid(pid, NULL, 0);
                if (run > 0)
                        record(workload, name, "round trips/s", UNIT_RATE, (double) n * USEC_PER_SEC / (double) (now - start));
        }
        free(b);
}

void bench_floor(void) {
        ping_pong("floor", "rate", 16);
}

/* ---- held, cycle, parallel, payload ------------------------------------- */

static json_object *echo_args(size_t length) {
        json_object *args = json_object_new_array();

        if (length == 0)
                json_object_array_add(args, json_object_new_string("hello, world"));
        else {
                char *s = malloc(length + 1);
                if (!s)
                        die("out of memory");
                /* Printable ASCII: what a payload of text typically is. */
                for (size_t i = 0; i < length; i++)
                        s[i] = (char) ('a' + (i * 7 + i / 26) % 26);
                s[length] = 0;
                json_object_array_add(args, json_object_new_string_len(s, (int) length));
                free(s);
        }
        return args;
}

void bench_held(const char *address) {
        json_object *args = echo_args(0);
        rate_workload("held", "rate", address, NULL, "echo", args, false, 1);
        json_object_put(args);
}

void bench_cycle(const char *address) {
        json_object *args = echo_args(0);
        rate_workload("cycle", "rate", address, NULL, "echo", args, true, 1);
        json_object_put(args);
}

void bench_parallel(const char *address) {
        json_object *args = echo_args(0);
        client_options o = { .min_workers = arg.parallel, .max_workers = arg.parallel };
        rate_workload("parallel", "rate", address, &o, "echo", args, true, arg.parallel);
        json_object_put(args);
}

/* An echo of a string of arg.payload bytes, and of 1 MiB, each against
 * its own floor: the same ping-pong carrying that many bytes. */
void bench_payload(const char *address) {
        static const struct { size_t size; const char *rate, *floor; } sizes[] = {
                { 0, "rate", "floor" },
                { 1024 * 1024, "1m-rate", "1m-floor" },
        };

        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                size_t size = sizes[i].size ?: arg.payload;
                if (i > 0 && size == arg.payload)
                        break;
                json_object *args = echo_args(size);
                client_options o = { .max_message_size = size + 4096 };
                rate_workload("payload", sizes[i].rate, address, &o, "echo", args, true, 1);
                json_object_put(args);
                if (!arg.no_floor)
                        ping_pong("payload", sizes[i].floor, size);
        }
}

/* ---- spawn -------------------------------------------------------------- */

/* Waits until the server's descriptor count stops changing (its workers are
 * reaped), up to a few seconds. */
static int settled_fd_count(pid_t pid) {
        int last = count_fds(pid), same = 0;

        for (int i = 0; i < 500 && same < 10; i++) {
                usleep(10000);
                int n = count_fds(pid);
                same = n == last ? same + 1 : 0;
                last = n;
        }
        return last;
}

void bench_spawn(const bench_server *srv, const char *workload) {
        size_t window = arg.spawns >= 10 ? arg.spawns / 10 : 1;
        uint64_t *marks = calloc(arg.spawns / window + 1, sizeof(uint64_t));
        client_options o = { .max_checkouts = 1 };
        json_object *args = echo_args(0);
        sd_event *event;

        if (!marks)
                die("out of memory");
        sd_event_new(&event);

        for (unsigned run = 0; run < arg.runs; run++) {
                driver d = { .event = event, .method = "echo", .args = args, .cycle = true, .limit = 100 };

                progress("%s: run %u of %u (%lu spawns)", workload, run + 1, arg.runs, arg.spawns);
                /* A warm-up first: the server opens some descriptors once,
                 * lazily (its journal connection). */
                d.client = client_new(event, srv->address, &o);
                (void) drive(&d, 1, NULL);
                d.client = aetask_client_unref(d.client);
                int fds_before = settled_fd_count(srv->pid);

                d.limit = arg.spawns;
                d.marks = marks;
                d.window = window;
                d.client = client_new(event, srv->address, &o);
                (void) drive(&d, 1, NULL);
                d.client = aetask_client_unref(d.client);
                int fds_after = settled_fd_count(srv->pid);

                if (d.n_marks < 2)
                        die("%s: too few spawns to compare (--spawns)", workload);
                double first = (double) (marks[0] - d.started) / (double) window;
                double last = (double) (marks[d.n_marks - 1] - marks[d.n_marks - 2]) / (double) window;
                record(workload, "first", "us/spawn", UNIT_TIME, first);
                record(workload, "last", "us/spawn", UNIT_TIME, last);
                record(workload, "fds-before", "fds", UNIT_COUNT, fds_before);
                record(workload, "fds-after", "fds", UNIT_COUNT, fds_after);
        }
        sd_event_unref(event);
        json_object_put(args);
        free(marks);
}

/* ---- offload ------------------------------------------------------------ */

typedef struct lateness {
        sd_event_source *timer;
        uint64_t target;
        double *samples;
        size_t n, max;
} lateness;

#define TIMER_PERIOD_USEC 1000

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        lateness *l = userdata;
        uint64_t now = now_usec(CLOCK_MONOTONIC);

        if (l->n < l->max)
                l->samples[l->n++] = (double) (now - l->target) / 1000.0;
        l->target = now + TIMER_PERIOD_USEC;
        (void) sd_event_source_set_time(s, l->target);
        return 0;
}

void bench_offload(const char *address) {
        json_object *args = json_object_new_array();
        json_object_array_add(args, json_object_new_string("correct horse battery staple"));

        for (unsigned workers = 1; workers <= 2; workers++) {
                client_options o = { .min_workers = workers, .max_workers = workers };
                const char *name = workers == 1 ? "1-worker" : "2-workers";
                sd_event *event;
                double rate;

                sd_event_new(&event);
                driver d = { .event = event, .method = "hash", .args = args, .cycle = true };
                d.client = client_new(event, address, &o);
                /* Warm-up: the workers are forked and set up. */
                d.limit = workers;
                (void) drive(&d, workers, NULL);
                for (unsigned run = 0; run < arg.runs; run++) {
                        progress("offload: %u worker(s), run %u of %u", workers, run + 1, arg.runs);
                        /* Keep every worker busy: more calls queued than workers. */
                        d.limit = arg.offload_calls * workers;
                        (void) drive(&d, 2 * workers, &rate);
                        record("offload", name, "hashes/s", UNIT_RATE, rate);
                }
                aetask_client_unref(d.client);
                sd_event_unref(event);
        }

        /* The client's loop while many calls are in flight. */
        for (unsigned run = 0; run < arg.runs; run++) {
                client_options o = { .min_workers = 2, .max_workers = 2 };
                sd_event *event;
                lateness l = { .max = 1 << 20 };
                int r;

                progress("offload: timer lateness, run %u of %u", run + 1, arg.runs);
                l.samples = malloc(l.max * sizeof(double));
                sd_event_new(&event);
                driver d = { .event = event, .method = "hash", .args = args, .cycle = true, .limit = arg.inflight };
                d.client = client_new(event, address, &o);

                l.target = now_usec(CLOCK_MONOTONIC) + TIMER_PERIOD_USEC;
                /* Accuracy 1 us: sd-event would otherwise coalesce the wakeups. */
                r = sd_event_add_time(event, &l.timer, CLOCK_MONOTONIC, l.target, 1, on_tick, &l);
                if (r < 0)
                        die("Failed to add the timer: %s", strerror(-r));
                (void) sd_event_source_set_enabled(l.timer, SD_EVENT_ON);
                (void) drive(&d, arg.inflight, NULL);
                sd_event_source_disable_unref(l.timer);

                qsort(l.samples, l.n, sizeof(double), compare_double);
                record("offload", "timer-p50", "ms late", UNIT_COUNT, quantile(l.samples, l.n, 0.50));
                record("offload", "timer-p99", "ms late", UNIT_COUNT, quantile(l.samples, l.n, 0.99));
                record("offload", "timer-max", "ms late", UNIT_COUNT, l.n ? l.samples[l.n - 1] : NAN);
                free(l.samples);
                aetask_client_unref(d.client);
                sd_event_unref(event);
        }
        json_object_put(args);
}

/* ---- memory ------------------------------------------------------------- */

typedef struct memory_result {
        double rss_per_checkout;
        double heap_per_checkout;
} memory_result;

/* In a child process, so every run starts from a fresh heap: queues
 * arg.queued checkouts, each with one call, behind a single worker. */
static void memory_child(const char *address, int fd) {
        client_options o = { .min_workers = 1, .max_workers = 1 };
        json_object *args = echo_args(0);
        aetask_checkout **cos = calloc(arg.queued, sizeof(*cos));
        sd_event *event;
        memory_result m;

        if (!cos)
                child_exit(EXIT_FAILURE);
        sd_event_new(&event);
        aetask_client *c = client_new(event, address, &o);

        /* One checkout first, so the connection and the loop's own
         * allocations are not counted. */
        aetask_checkout *first;
        if (aetask_client_checkout(c, &first) < 0 || aetask_checkout_call(first, NULL, "echo", args, NULL, NULL) < 0)
                child_exit(EXIT_FAILURE);

        long rss_before = self_rss_bytes();
        size_t heap_before = mallinfo2().uordblks;
        for (unsigned long i = 0; i < arg.queued; i++)
                if (aetask_client_checkout(c, &cos[i]) < 0 ||
                    aetask_checkout_call(cos[i], NULL, "echo", args, NULL, NULL) < 0)
                        child_exit(EXIT_FAILURE);
        long rss_after = self_rss_bytes();
        size_t heap_after = mallinfo2().uordblks;

        m.rss_per_checkout = (double) (rss_after - rss_before) / (double) arg.queued;
        m.heap_per_checkout = (double) (heap_after - heap_before) / (double) arg.queued;
        if (write(fd, &m, sizeof(m)) != sizeof(m))
                child_exit(EXIT_FAILURE);
        child_exit(EXIT_SUCCESS);
}

static int on_pid(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        *(pid_t *) userdata = json_object_get_int(result);
        return 0;
}

/* A worker of the server at ADDRESS, after a few calls: its RSS and PSS. */
static void worker_memory(const char *address, const char *method, json_object *args) {
        sd_event *event;
        aetask_checkout *co;
        pid_t pid = 0;

        sd_event_new(&event);
        aetask_client *c = client_new(event, address, NULL);
        aetask_client_checkout(c, &co);
        aetask_checkout_set_error_handler(co, on_error, NULL);
        for (int i = 0; i < 3 && method; i++)
                aetask_checkout_call(co, NULL, method, args, NULL, NULL);
        aetask_checkout_call(co, NULL, "pid", NULL, on_pid, &pid);
        while (pid == 0)
                if (sd_event_run(event, UINT64_MAX) < 0)
                        die("Event loop failed");
        if (pid > 0) {
                record("memory", "worker-rss", "KiB", UNIT_COUNT, (double) proc_kib(pid, "smaps_rollup", "Rss"));
                record("memory", "worker-pss", "KiB", UNIT_COUNT, (double) proc_kib(pid, "smaps_rollup", "Pss"));
        }
        aetask_checkout_unref(co);
        aetask_client_unref(c);
        sd_event_unref(event);
}

void bench_memory(const char *address) {
        json_object *args = echo_args(0);

        for (unsigned run = 0; run < arg.runs; run++) {
                int p[2];
                memory_result m;

                progress("memory: run %u of %u", run + 1, arg.runs);
                if (pipe2(p, O_CLOEXEC) < 0)
                        die("pipe: %m");
                pid_t pid = fork();
                if (pid < 0)
                        die("fork: %m");
                if (pid == 0) {
                        close(p[0]);
                        memory_child(address, p[1]);
                }
                close(p[1]);
                ssize_t n = read(p[0], &m, sizeof(m));
                close(p[0]);
                int status;
                waitpid(pid, &status, 0);
                if (n != sizeof(m))
                        die("memory: the measuring process failed");
                record("memory", "rss-per-checkout", "B/checkout", UNIT_COUNT, m.rss_per_checkout);
                record("memory", "heap-per-checkout", "B/checkout", UNIT_COUNT, m.heap_per_checkout);
                worker_memory(address, "echo", args);
        }
        json_object_put(args);
}

