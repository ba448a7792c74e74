/* The parts of aetask-bench: its options, the results it records and
 * prints (bench-report.c), and the workloads (bench-workloads.c, and
 * bench-parse.c for what reading one message costs). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "protocol.h"   /* PROTOCOL_METHOD_HELLO */
#include "time-util.h"  /* now_usec() */

#define USEC_PER_SEC 1000000ULL
#define MAX_RUNS 100
#define MANY_STEPS_MAX 16

typedef struct bench_options {
        unsigned runs;
        double duration;            /* seconds per run of a rate workload */
        unsigned parallel;
        unsigned long spawns;
        unsigned long queued;
        size_t payload;
        size_t parse_size;          /* bytes of each message of the parse workload */
        unsigned bcrypt_cost;
        unsigned offload_calls;     /* hashes per throughput run and worker */
        unsigned inflight;          /* bcrypt calls in flight for the lateness runs */
        unsigned many[MANY_STEPS_MAX];  /* the many workload's steps: connections in all */
        unsigned n_many;
        unsigned client_processes;  /* the processes that share them */
        const char *handler_dir;
        bool json;
        bool quick;
        bool no_floor;
} bench_options;

extern bench_options arg;

/* A server forked for the benchmark. */
typedef struct bench_server {
        char address[108];
        pid_t pid;
        int keepalive_fd;
} bench_server;

/* aetask-bench.c */
_Noreturn void die(const char *format, ...) __attribute__((format(printf, 1, 2)));
void progress(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* bench-report.c: every figure is recorded once per run. */
typedef enum unit {
        UNIT_RATE,       /* per second; ratio to the floor's rate */
        UNIT_TIME,       /* microseconds; ratio to the floor's round trip */
        UNIT_COUNT,      /* no ratio */
} unit;

int compare_double(const void *a, const void *b);
void record(const char *workload, const char *name, const char *label, unit u, double v);
double figure_median(const char *workload, const char *name);
/* Notes the time and the machine's load when the benchmark starts. */
void report_begin(void);
void report_print_table(void);
void report_print_json(void);

/* bench-workloads.c */
/* A field of /proc/PID/FILE ("status" and "VmHWM", "smaps_rollup" and
 * "Pss"), in KiB, or -1. */
long proc_kib(pid_t pid, const char *file, const char *field);
/* All N bytes, or -1 (at the end of the input, for read_full()). */
int write_full(int fd, const void *buf, size_t n);
int read_full(int fd, void *buf, size_t n);
void bench_floor(void);
void bench_held(const char *address);
void bench_cycle(const char *address);
void bench_parallel(const char *address);
void bench_payload(const char *address);
/* WORKLOAD: the name its figures go under (the server may keep spares). */
void bench_spawn(const bench_server *server, const char *workload);
void bench_offload(const char *address);
void bench_memory(const char *address);

/* bench-many.c */
/* Raises this process's descriptor limit for the largest step, before the
 * servers are forked. */
void bench_many_prepare(void);
void bench_many(const bench_server *server);
/* The largest step's WHAT ("rate", "floor") over the best step's, if every
 * step has one. */
bool bench_many_scaling(const char *what, double *ret_ratio);

/* bench-many-floor.c: one run of the many workload's floor, in round trips
 * per second. */
double bench_many_floor(unsigned connections, unsigned processes);

/* bench-parse.c */
void bench_parse(void);

/* Asks the worker on FD for its greeting (aetask-protocol(7)): a worker
 * writes nothing unasked.  0, or -1 when it could not be sent. */
static inline int bench_ask_greeting(int fd) {
        static const char hello[] = "{\"method\":\"" PROTOCOL_METHOD_HELLO "\"}";  /* with its NUL */
        return send(fd, hello, sizeof(hello), MSG_NOSIGNAL) == (ssize_t) sizeof(hello) ? 0 : -1;
}
