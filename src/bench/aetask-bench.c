/* aetask-bench: measures aetask against the physical floor of the machine it
 * runs on.  It forks its own servers (the echo handler, and bcrypt for the
 * offload workload), runs each workload several times, and prints the
 * median, min and max of every figure, each also as a ratio to the floor: a
 * 16-byte ping-pong between two processes over an AF_UNIX socketpair,
 * measured in the same run.  See "aetask-bench" in README.md. */
#include <aetask/aetask-server.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

bench_options arg = {
        .runs = 5,
        .duration = 1.0,
        .parallel = 8,
        .spawns = 100000,
        .queued = 100000,
        .payload = 65536,
        .parse_size = 16 * 1024 * 1024,
        .bcrypt_cost = 10,
        .offload_calls = 24,
        .inflight = 100,
        .many = { 8, 32, 128, 512 },
        .n_many = 4,
        .client_processes = 4,
};

static const char *const workload_names[] = {
        "floor", "held", "cycle", "parallel", "spawn", "payload", "offload", "memory", "many", "parse",
};
#define N_WORKLOADS (sizeof(workload_names) / sizeof(workload_names[0]))
static bool selected[N_WORKLOADS];

void die(const char *format, ...) {
        va_list ap;
        va_start(ap, format);
        fputs("aetask-bench: ", stderr);
        vfprintf(stderr, format, ap);
        fputc('\n', stderr);
        va_end(ap);
        exit(EXIT_FAILURE);
}

void progress(const char *format, ...) {
        va_list ap;
        if (!isatty(STDERR_FILENO))
                return;
        va_start(ap, format);
        fputs("\r\033[K", stderr);
        vfprintf(stderr, format, ap);
        va_end(ap);
}

/* ---- The servers -------------------------------------------------------- */

static void server_start(bench_server *b, const char *handler, unsigned bcrypt_cost, unsigned spares) {
        static unsigned n_servers;
        aetask_server *s = NULL;
        char cost[16];
        int r;

        snprintf(b->address, sizeof(b->address), "unix:@aetask-bench-%d-%s-%u", (int) getpid(), handler, n_servers++);
        if ((r = aetask_server_new(&s)) < 0 ||
            (r = aetask_server_load_handler(s, handler, arg.handler_dir)) < 0)
                die("Failed to load the %s handler: %s (set AETASK_HANDLER_DIR or --handler-dir, "
                    "or run through `meson devenv -C BUILD src/bench/aetask-bench`)", handler, strerror(-r));
        if (bcrypt_cost > 0) {
                snprintf(cost, sizeof(cost), "%u", bcrypt_cost);
                (void) aetask_server_set_option(s, "cost", cost);
        }
        if ((r = aetask_server_set_max_workers(s, 1024)) < 0 ||
            (r = aetask_server_set_max_workers_per_uid(s, 1024)) < 0 ||
            (r = aetask_server_set_spare_workers(s, spares)) < 0 ||
            (r = aetask_server_listen(s, b->address)) < 0 ||
            (r = aetask_server_fork(s, &b->pid, &b->keepalive_fd)) < 0)
                die("Failed to start the %s server: %s", handler, strerror(-r));
        aetask_server_free(s);
}

static void server_stop(bench_server *b) {
        if (b->pid <= 0)
                return;
        close(b->keepalive_fd);
        (void) waitpid(b->pid, NULL, 0);
        b->pid = 0;
}

/* ---- Options and main --------------------------------------------------- */

static void usage(FILE *f) {
        fprintf(f,
                "Usage: aetask-bench [OPTIONS] [WORKLOAD...]\n"
                "Measures aetask against a 16-byte socketpair ping-pong (the floor).\n"
                "Workloads: floor held cycle parallel spawn payload offload memory many parse\n"
                "(default: all)\n\n"
                "  -r, --runs=N          runs of each workload (default 5)\n"
                "  -d, --duration=SEC    length of a run of a rate workload (default 1)\n"
                "  -p, --parallel=N      checkouts in flight for parallel (default 8)\n"
                "      --spawns=N        workers forked per spawn run (default 100000); spawn\n"
                "                        runs without spares, then with 4 (--spare-workers)\n"
                "      --queued=N        checkouts queued for memory (default 100000)\n"
                "      --payload=BYTES   string length for payload (default 65536), echoed\n"
                "                        and then 1 MiB, each against a ping-pong that size\n"
                "      --bcrypt-cost=N   bcrypt cost for offload (default 10)\n"
                "      --connections=N,N... the steps of many: connections in all, each a held\n"
                "                        checkout making echo calls (default 8,32,128,512)\n"
                "      --client-processes=N processes that share them (default 4)\n"
                "      --parse-size=BYTES message size for parse (default 16777216)\n"
                "      --handler-dir=DIR where the echo and bcrypt modules are\n"
                "                        (default $AETASK_HANDLER_DIR, else the installed ones)\n"
                "  -q, --quick           small and short, for CI: 3 runs of 0.2 s, 2000 spawns,\n"
                "                        10000 queued, bcrypt cost 6, 4 MiB messages to parse,\n"
                "                        8 then 32 connections for many\n"
                "  -j, --json            print JSON instead of the table\n"
                "      --no-floor        skip the floor (and the ratios): for profiling\n"
                "  -h, --help\n");
}

static unsigned long parse_number(const char *s, const char *what) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        /* At most UINT_MAX: some go into an unsigned, where more would wrap. */
        if (errno || end == s || *end || s[0] < '0' || s[0] > '9' || v == 0 || v > UINT_MAX)
                die("invalid %s: %s (expected an integer from 1 to %u)", what, s, UINT_MAX);
        return v;
}

/* "8,32,128,512": the many workload's steps. */
static void parse_steps(const char *list) {
        char *copy = strdup(list), *state = NULL;

        if (!copy)
                die("out of memory");
        arg.n_many = 0;
        for (char *s = strtok_r(copy, ",", &state); s; s = strtok_r(NULL, ",", &state)) {
                if (arg.n_many >= MANY_STEPS_MAX)
                        die("at most %d steps of connections", MANY_STEPS_MAX);
                arg.many[arg.n_many++] = (unsigned) parse_number(s, "number of connections");
        }
        if (arg.n_many == 0)
                die("invalid connections: %s (expected numbers separated by commas)", list);
        free(copy);
}

static void set_quick_defaults(void) {
        arg.quick = true;
        arg.runs = 3;
        arg.duration = 0.2;
        arg.spawns = 2000;
        arg.queued = 10000;
        arg.bcrypt_cost = 6;
        arg.parse_size = 4 * 1024 * 1024;
        arg.many[0] = 8;
        arg.many[1] = 32;
        arg.n_many = 2;
}

/* The workloads named on the command line, or all of them. */
static void select_workloads(int n, char **names) {
        for (int i = 0; i < n; i++) {
                size_t k;
                for (k = 0; k < N_WORKLOADS; k++)
                        if (strcmp(names[i], workload_names[k]) == 0)
                                break;
                if (k == N_WORKLOADS)
                        die("unknown workload: %s", names[i]);
                selected[k] = true;
        }
        for (size_t k = 0; k < N_WORKLOADS; k++)
                if (n == 0)
                        selected[k] = true;
        /* Every ratio needs the floor. */
        selected[0] = !arg.no_floor;
}

enum { OPT_SPAWNS = 256, OPT_QUEUED, OPT_PAYLOAD, OPT_COST, OPT_HANDLER_DIR, OPT_NO_FLOOR, OPT_PARSE_SIZE,
       OPT_CONNECTIONS, OPT_CLIENT_PROCESSES };

/* One option of the command line (getopt_long()'s C and optarg). */
static void parse_option(int c) {
        switch (c) {
        case 'r':
                arg.runs = (unsigned) parse_number(optarg, "number of runs");
                if (arg.runs > MAX_RUNS)
                        die("at most %d runs", MAX_RUNS);
                break;
        case 'd': {
                char *end;
                arg.duration = strtod(optarg, &end);
                if (*end || !(arg.duration > 0))
                        die("invalid duration: %s", optarg);
                break;
        }
        case 'p':
                arg.parallel = (unsigned) parse_number(optarg, "parallel count");
                break;
        case OPT_SPAWNS:
                arg.spawns = parse_number(optarg, "number of spawns");
                break;
        case OPT_QUEUED:
                arg.queued = parse_number(optarg, "number of queued checkouts");
                break;
        case OPT_PAYLOAD:
                arg.payload = parse_number(optarg, "payload size");
                break;
        case OPT_COST:
                arg.bcrypt_cost = (unsigned) parse_number(optarg, "bcrypt cost");
                break;
        case OPT_PARSE_SIZE:
                arg.parse_size = parse_number(optarg, "message size");
                break;
        case OPT_CONNECTIONS:
                parse_steps(optarg);
                break;
        case OPT_CLIENT_PROCESSES:
                arg.client_processes = (unsigned) parse_number(optarg, "number of client processes");
                break;
        case OPT_HANDLER_DIR:
                arg.handler_dir = optarg;
                break;
        case OPT_NO_FLOOR:
                arg.no_floor = true;
                break;
        case 'q':
                break;
        case 'j':
                arg.json = true;
                break;
        case 'h':
                usage(stdout);
                exit(EXIT_SUCCESS);
        default:
                usage(stderr);
                exit(2);
        }
}

static void parse_args(int argc, char **argv) {
        static const struct option options[] = {
                { "runs", required_argument, NULL, 'r' },
                { "duration", required_argument, NULL, 'd' },
                { "parallel", required_argument, NULL, 'p' },
                { "spawns", required_argument, NULL, OPT_SPAWNS },
                { "queued", required_argument, NULL, OPT_QUEUED },
                { "payload", required_argument, NULL, OPT_PAYLOAD },
                { "bcrypt-cost", required_argument, NULL, OPT_COST },
                { "parse-size", required_argument, NULL, OPT_PARSE_SIZE },
                { "connections", required_argument, NULL, OPT_CONNECTIONS },
                { "client-processes", required_argument, NULL, OPT_CLIENT_PROCESSES },
                { "handler-dir", required_argument, NULL, OPT_HANDLER_DIR },
                { "no-floor", no_argument, NULL, OPT_NO_FLOOR },
                { "quick", no_argument, NULL, 'q' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        /* --quick sets defaults that explicit options still override. */
        for (int i = 1; i < argc; i++)
                if (strcmp(argv[i], "--quick") == 0 || strcmp(argv[i], "-q") == 0)
                        set_quick_defaults();

        int c;
        while ((c = getopt_long(argc, argv, "r:d:p:qjh", options, NULL)) >= 0)
                parse_option(c);

        select_workloads(argc - optind, argv + optind);
}

static bool want(const char *name) {
        for (size_t k = 0; k < N_WORKLOADS; k++)
                if (strcmp(workload_names[k], name) == 0)
                        return selected[k];
        return false;
}

int main(int argc, char **argv) {
        bench_server echo = {}, echo_spares = {}, bcrypt = {}, echo_many = {};

        parse_args(argc, argv);
        signal(SIGPIPE, SIG_IGN);
        report_begin();
        if (want("many"))
                bench_many_prepare();

        /* The servers first, while this process is small. */
        server_start(&echo, "echo", 0, 0);
        if (want("spawn"))
                server_start(&echo_spares, "echo", 0, 4);
        if (want("offload"))
                server_start(&bcrypt, "bcrypt", arg.bcrypt_cost, 0);
        /* Its own, so that its workers are the workload's. */
        if (want("many"))
                server_start(&echo_many, "echo", 0, 0);

        if (want("floor"))
                bench_floor();
        if (want("held"))
                bench_held(echo.address);
        if (want("cycle"))
                bench_cycle(echo.address);
        if (want("parallel"))
                bench_parallel(echo.address);
        if (want("payload"))
                bench_payload(echo.address);
        if (want("spawn")) {
                bench_spawn(&echo, "spawn");
                bench_spawn(&echo_spares, "spares");
        }
        if (want("offload"))
                bench_offload(bcrypt.address);
        if (want("memory"))
                bench_memory(echo.address);
        if (want("many"))
                bench_many(&echo_many);
        if (want("parse"))
                bench_parse();
        progress("%s", "");

        if (arg.json)
                report_print_json();
        else
                report_print_table();

        server_stop(&echo_many);
        server_stop(&bcrypt);
        server_stop(&echo_spares);
        server_stop(&echo);
        return EXIT_SUCCESS;
}
