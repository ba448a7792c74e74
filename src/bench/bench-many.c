/* aetask-bench's many workload: many clients at once.  For each step of
 * --connections (8, 32, 128, 512 connections in all), --client-processes
 * processes are forked, each holding its share of the connections, each
 * connection a held checkout making echo calls one at a time.  Every
 * process records its calls' latencies in a histogram that it hands back
 * through a pipe; meanwhile this process probes how long the server takes
 * from a connect() to the worker's greeting, and after the runs sums the
 * PSS of the server's workers, idle but still held.  Then the same
 * processes and connections without aetask (bench-many-floor.c). */
#include <aetask/aetask-client.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "address.h"
#include "bench.h"
#include "child-exit.h"

/* ---- A latency histogram -------------------------------------------------- */

/* Microseconds in buckets of 1/16 of a power of two (6% wide) up to 2^27
 * us, over two minutes: a bounded size to pass back whatever the rate. */
#define SUB_BITS 4
#define SUBS (1U << SUB_BITS)
#define N_BUCKETS ((27 - SUB_BITS + 1) * SUBS)

typedef struct histogram {
        uint64_t count[N_BUCKETS];
} histogram;

static unsigned bucket_of(uint64_t usec) {
        if (usec < SUBS)
                return (unsigned) usec;
        unsigned e = 63 - (unsigned) __builtin_clzll(usec);       /* usec >= 2^e */
        unsigned b = (e - SUB_BITS + 1) * SUBS + (unsigned) ((usec >> (e - SUB_BITS)) & (SUBS - 1));
        return b < N_BUCKETS ? b : N_BUCKETS - 1;
}

/* The largest value bucket B holds. */
static double bucket_top(unsigned b) {
        if (b < SUBS)
                return b;
        unsigned e = b / SUBS + SUB_BITS - 1, sub = b % SUBS;
        return (double) (((uint64_t) (SUBS + sub + 1) << (e - SUB_BITS)) - 1);
}

static double histogram_quantile(const histogram *h, double q) {
        uint64_t total = 0, seen = 0;

        for (unsigned b = 0; b < N_BUCKETS; b++)
                total += h->count[b];
        if (total == 0)
                return NAN;
        uint64_t want = (uint64_t) ceil(q * (double) total);
        for (unsigned b = 0; b < N_BUCKETS; b++) {
                seen += h->count[b];
                if (seen >= want && seen > 0)
                        return bucket_top(b);
        }
        return bucket_top(N_BUCKETS - 1);
}

/* ---- A client process ------------------------------------------------------ */

/* What a client process hands back after each run. */
typedef struct run_result {
        uint64_t calls, usec;
        histogram latency;
} run_result;

typedef struct many_client many_client;

typedef struct connection {
        many_client *m;
        aetask_checkout *co;
        uint64_t sent;
} connection;

struct many_client {
        sd_event *event;
        aetask_client *client;
        json_object *args;
        connection *conns;
        unsigned n_conns, in_flight;
        uint64_t deadline;           /* 0: warming up, one call each */
        run_result result;
};

static void on_error(aetask_checkout *co, aetask_error_kind kind, const char *message, void *userdata) {
        fprintf(stderr, "aetask-bench: many: %s error: %s\n", aetask_error_kind_to_string(kind), message);
        child_exit(EXIT_FAILURE);
}

static int on_reply(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata);

static void call(connection *c) {
        c->sent = now_usec(CLOCK_MONOTONIC);
        if (aetask_checkout_call(c->co, NULL, "echo", c->m->args, on_reply, c) < 0)
                child_exit(EXIT_FAILURE);
}

static int on_reply(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        connection *c = userdata;
        many_client *m = c->m;
        uint64_t now = now_usec(CLOCK_MONOTONIC);

        if (error)
                return 0;  /* the checkout's error handler has it */
        if (m->deadline == 0) {
                m->in_flight--;
                return 0;
        }
        m->result.calls++;
        m->result.latency.count[bucket_of(now - c->sent)]++;
        if (now < m->deadline)
                call(c);
        else
                m->in_flight--;
        return 0;
}

/* Runs until every connection's last call is answered. */
static void run_calls(many_client *m, uint64_t deadline) {
        m->deadline = deadline;
        m->in_flight = m->n_conns;
        for (unsigned i = 0; i < m->n_conns; i++)
                call(&m->conns[i]);
        while (m->in_flight > 0)
                if (sd_event_run(m->event, UINT64_MAX) < 0)
                        child_exit(EXIT_FAILURE);
}

/* A client process: N connections, warmed up with one call each; then a
 * run for each byte read from GO, its result written to RESULTS.  Leaves
 * when GO ends, after the parent has looked at its idle workers. */
_Noreturn static void client_process(const char *address, unsigned n, int go, int results) {
        many_client m = { .n_conns = n };
        char byte;

        m.conns = calloc(n, sizeof(connection));
        m.args = json_object_new_array();
        json_object_array_add(m.args, json_object_new_string("hello, world"));
        if (!m.conns || sd_event_new(&m.event) < 0 || aetask_client_new(&m.client, address) < 0 ||
            aetask_client_set_max_workers(m.client, n) < 0 || aetask_client_attach_event(m.client, m.event, 0) < 0)
                child_exit(EXIT_FAILURE);
        aetask_client_set_error_handler(m.client, on_error, NULL);
        for (unsigned i = 0; i < n; i++) {
                m.conns[i].m = &m;
                if (aetask_client_checkout(m.client, &m.conns[i].co) < 0)
                        child_exit(EXIT_FAILURE);
                aetask_checkout_set_error_handler(m.conns[i].co, on_error, NULL);
        }
        run_calls(&m, 0);
        byte = 'r';
        if (write_full(results, &byte, 1) < 0)
                child_exit(EXIT_FAILURE);

        while (read_full(go, &byte, 1) == 0) {
                m.result = (run_result) {};
                uint64_t start = now_usec(CLOCK_MONOTONIC);
                run_calls(&m, start + (uint64_t) (arg.duration * USEC_PER_SEC));
                m.result.usec = now_usec(CLOCK_MONOTONIC) - start;
                if (write_full(results, &m.result, sizeof(m.result)) < 0)
                        child_exit(EXIT_FAILURE);
        }
        child_exit(EXIT_SUCCESS);
}

/* ---- The server's side ------------------------------------------------------- */

/* How long from connect() to the greeting's end (asked for at once), in
 * microseconds, or -1. */
static double greeting_usec(const socket_address *a) {
        uint64_t start = now_usec(CLOCK_MONOTONIC);
        char buf[512];
        size_t have = 0;
        double usec = -1;
        int fd = socket_address_connect_blocking(a);

        if (fd < 0)
                return -1;
        if (bench_ask_greeting(fd) < 0) {
                close(fd);
                return -1;
        }
        while (have < sizeof(buf)) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (poll(&p, 1, 10000) <= 0)
                        break;
                ssize_t k = read(fd, buf + have, sizeof(buf) - have);
                if (k <= 0)
                        break;
                if (memchr(buf + have, 0, (size_t) k)) {
                        usec = (double) (now_usec(CLOCK_MONOTONIC) - start);
                        break;
                }
                have += (size_t) k;
        }
        close(fd);
        return usec;
}

/* Probes the greeting every 10 ms until DEADLINE, into H. */
static void probe_greetings(const socket_address *a, uint64_t deadline, histogram *h) {
        while (now_usec(CLOCK_MONOTONIC) < deadline) {
                double usec = greeting_usec(a);
                if (usec < 0)
                        die("many: no greeting from the server");
                h->count[bucket_of((uint64_t) usec)]++;
                usleep(10000);
        }
}

static bool is_child_of(pid_t pid, pid_t parent) {
        char path[64], stat[512];
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return false;
        size_t n = fread(stat, 1, sizeof(stat) - 1, f);
        fclose(f);
        stat[n] = 0;
        /* After the command's closing parenthesis: " S PPID". */
        const char *p = strrchr(stat, ')');
        int ppid = 0;
        return p && sscanf(p, ") %*c %d", &ppid) == 1 && ppid == parent;
}

/* The mean PSS (KiB) of the children of SERVER (NAN if none), and how
 * many there are. */
static double worker_pss(pid_t server, unsigned *ret_n) {
        DIR *d = opendir("/proc");
        struct dirent *de;
        double sum = 0;
        unsigned n = 0;

        if (!d)
                die("/proc: %m");
        while ((de = readdir(d))) {
                char *end;
                long pid = strtol(de->d_name, &end, 10);
                if (*end || pid <= 0 || !is_child_of((pid_t) pid, server))
                        continue;
                long kib = proc_kib((pid_t) pid, "smaps_rollup", "Pss");
                if (kib < 0)
                        continue;  /* gone meanwhile */
                sum += (double) kib;
                n++;
        }
        closedir(d);
        *ret_n = n;
        return n > 0 ? sum / n : NAN;
}

/* ---- The workload -------------------------------------------------------- */

/* The figures' names ("512 calls/s"...): the report keeps pointers to them. */
static const char *step_name(unsigned step, unsigned connections, const char *what) {
        static char names[MANY_STEPS_MAX][5][32];
        static const char *const whats[] = { "rate", "call-p99", "greeting-p99", "pss-per-worker", "floor" };
        unsigned w = 0;

        while (strcmp(whats[w], what) != 0)
                w++;
        snprintf(names[step][w], sizeof(names[step][w]), "%u-%s", connections, what);
        return names[step][w];
}

/* Enough descriptors for the server (one per connection while it forks
 * the worker) and for this process's probes; the server is forked later
 * and inherits it. */
void bench_many_prepare(void) {
        struct rlimit rl;
        unsigned most = 0;

        for (unsigned i = 0; i < arg.n_many; i++)
                most = arg.many[i] > most ? arg.many[i] : most;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                die("getrlimit: %m");
        if (rl.rlim_cur < 2 * (rlim_t) most + 64 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
}

/* Forks PROCESSES client processes that share CONNECTIONS; each is told to
 * start a run through its go pipe and answers on its results pipe. */
static void start_clients(const bench_server *srv, unsigned processes, unsigned connections, pid_t *pids, int *go,
                          int *results) {
        for (unsigned i = 0; i < processes; i++) {
                int g[2], r[2];
                if (pipe2(g, O_CLOEXEC) < 0 || pipe2(r, O_CLOEXEC) < 0)
                        die("pipe: %m");
                pids[i] = fork();
                if (pids[i] < 0)
                        die("fork: %m");
                if (pids[i] == 0) {
                        /* Only the parent may hold the others' ends: they
                         * see the end of their runs when it closes them. */
                        for (unsigned j = 0; j < i; j++) {
                                close(go[j]);
                                close(results[j]);
                        }
                        close(g[1]);
                        close(r[0]);
                        /* Its share: the remainder goes to the first ones. */
                        client_process(srv->address, connections / processes + (i < connections % processes),
                                       g[0], r[1]);
                }
                close(g[0]);
                close(r[1]);
                go[i] = g[1];
                results[i] = r[0];
        }
        for (unsigned i = 0; i < processes; i++) {
                char byte;
                if (read_full(results[i], &byte, 1) < 0)
                        die("many: a client process failed to connect (%u connections)", connections);
        }
}

static void step(const bench_server *srv, const socket_address *a, unsigned s, unsigned connections) {
        unsigned processes = arg.client_processes < connections ? arg.client_processes : connections;
        pid_t pids[processes];
        int go[processes], results[processes];

        start_clients(srv, processes, connections, pids, go, results);

        /* Run 0 warms up: fresh workers fault in their pages. */
        for (unsigned run = 0; run <= arg.runs; run++) {
                histogram latency = {}, greeting = {};
                double rate = 0;

                progress("many: %u connections, run %u of %u", connections, run, arg.runs);
                for (unsigned i = 0; i < processes; i++)
                        if (write_full(go[i], "g", 1) < 0)
                                die("many: a client process is gone");
                probe_greetings(a, now_usec(CLOCK_MONOTONIC) + (uint64_t) (arg.duration * USEC_PER_SEC), &greeting);
                for (unsigned i = 0; i < processes; i++) {
                        static run_result r;
                        if (read_full(results[i], &r, sizeof(r)) < 0)
                                die("many: a client process failed (%u connections)", connections);
                        rate += (double) r.calls * USEC_PER_SEC / (double) r.usec;
                        for (unsigned b = 0; b < N_BUCKETS; b++)
                                latency.count[b] += r.latency.count[b];
                }
                if (run == 0)
                        continue;
                record("many", step_name(s, connections, "rate"), "calls/s", UNIT_RATE, rate);
                record("many", step_name(s, connections, "call-p99"), "us", UNIT_COUNT,
                       histogram_quantile(&latency, 0.99));
                record("many", step_name(s, connections, "greeting-p99"), "us", UNIT_COUNT,
                       histogram_quantile(&greeting, 0.99));
        }

        /* Every connection is idle now, its checkout still held. */
        unsigned n;
        double pss = worker_pss(srv->pid, &n);
        if (n < connections)
                die("many: %u workers for %u connections", n, connections);
        record("many", step_name(s, connections, "pss-per-worker"), "KiB", UNIT_COUNT, pss);

        for (unsigned i = 0; i < processes; i++) {
                int status;
                close(go[i]);
                close(results[i]);
                if (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        die("many: a client process failed (%u connections)", connections);
        }
        /* The next step counts its own workers only: these leave first. */
        for (int tries = 0; tries < 500 && (worker_pss(srv->pid, &n), n > 0); tries++)
                usleep(10000);

        for (unsigned run = 1; run <= arg.runs && !arg.no_floor; run++) {
                progress("many: %u connections, the floor, run %u of %u", connections, run, arg.runs);
                record("many", step_name(s, connections, "floor"), "round trips/s", UNIT_RATE,
                       bench_many_floor(connections, processes));
        }
}

void bench_many(const bench_server *srv) {
        socket_address a;
        int r;

        r = socket_address_parse(&a, srv->address);
        if (r < 0)
                die("many: %s: %s", srv->address, strerror(-r));
        for (unsigned s = 0; s < arg.n_many; s++)
                step(srv, &a, s, arg.many[s]);
}

bool bench_many_scaling(const char *what, double *ret_ratio) {
        double best = 0, largest = NAN;
        unsigned most = 0;

        if (arg.n_many < 2)
                return false;
        for (unsigned s = 0; s < arg.n_many; s++) {
                char name[32];
                snprintf(name, sizeof(name), "%u-%s", arg.many[s], what);
                double v = figure_median("many", name);
                if (isnan(v))
                        return false;
                best = fmax(best, v);
                if (arg.many[s] >= most) {
                        most = arg.many[s];
                        largest = v;
                }
        }
        *ret_ratio = largest / best;
        return true;
}
