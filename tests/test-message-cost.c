/* What one message may cost its reader, on both sides: a real worker reading
 * a client's call, and the client library reading a (fake) worker's reply.
 * For every costly shape (json-shapes.h) of a message at the size limit,
 * reading it takes at most 8 times its size in memory above what a small
 * message takes and the reader's fixed room for values (JSON_BUDGET_BASE,
 * 64 MiB), under a second of CPU, and nothing of it stays once it is
 * answered.  (A "[{},{},...]" of 16 MiB took 4,242 MiB and 4 to 11 s.)
 * The memory checks hold in the plain build only: AddressSanitizer's
 * quarantine keeps freed memory resident, and its allocator spends more. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buffer.h"
#include "hostile.h"
#include "json-reader.h"
#include "json-shapes.h"

#define MESSAGE_SIZE (16U * 1024U * 1024U)
#define FACTOR_MAX 8
#define FIXED_BASE_KIB ((long) (JSON_BUDGET_BASE / 1024))
#define CPU_MAX 1.0
/* What may stay resident after a message is answered (the heap's slack). */
#define IDLE_KIB_MAX 2048

/* A field of /proc/PID/status ("VmRSS", "VmHWM"), in KiB. */
static long status_kib(pid_t pid, const char *field) {
        char path[64], line[256];
        size_t l = strlen(field);
        long v = -1;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        f = fopen(path, "re");
        cr_assert_not_null(f, "%s: %s", path, strerror(errno));
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, field, l) == 0 && line[l] == ':')
                        v = strtol(line + l + 1, NULL, 10);
        fclose(f);
        cr_assert_geq(v, 0, "no %s in %s", field, path);
        return v;
}

/* Reads one message of any length; keeps its first SIZE - 1 bytes in BUF. */
static void read_whole_message(int fd, char *buf, size_t size) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        cr_assert_gt(poll(&p, 1, 30000), 0, "no reply");
        cr_assert_eq(json_shape_read_message(fd, buf, size), 0, "the connection ended before the reply did");
}

/* ---- The worker's side: a real server ------------------------------------ */

static int h_call(aetask_worker *w, json_object *args, json_object **ret) {
        *ret = json_object_get(args);  /* the reply is as large as the call */
        return 0;
}

static const aetask_handler h_handler = {
        .abi_version = AETASK_HANDLER_ABI_VERSION,
        .name = "cost",
        .call = h_call,
};

static logged_server srv;

static void finish(void) {
        logged_server_cleanup(&srv);
}

TestSuite(message_cost, .fini = finish, .timeout = 120);

typedef struct worker_cost {
        long peak_kib, idle_kib, base_kib;
        double cpu, seconds;
        char reply[256];
} worker_cost;

/* What the server logged of worker PID's end: its peak memory and CPU. */
static void worker_exit_cost(pid_t pid, long *ret_kib, double *ret_cpu) {
        char key[64];
        snprintf(key, sizeof(key), "(pid %d) of", (int) pid);
        log_wait_for(&srv, key, 2, 10);  /* how it ended, and what it spent */
        

        FILE *f = fopen(srv.log, "re");
        char line[1024];
        bool found = false;
        cr_assert_not_null(f);
        while (fgets(line, sizeof(line), f)) {
                const char *p = strstr(line, key), *q = p ? strstr(p, "peak memory ") : NULL;
                if (q && sscanf(q, "peak memory %ld KiB, CPU %lf s", ret_kib, ret_cpu) == 2)
                        found = true;
        }
        fclose(f);
        cr_assert(found, "no exit line with peak memory for worker %d", (int) pid);
}

/* Sends MESSAGE (SIZE bytes with its NUL) to a worker of its own; reads the
 * reply, notes the worker's memory while it idles, closes. */
static void worker_reads(const char *message, size_t size, worker_cost *ret) {
        char greeting[512];
        int fd = raw_connect(srv.t.path, true), pid = 0;

        cr_assert_gt(raw_read_message(fd, greeting, sizeof(greeting), 10), 0);
        const char *p = strstr(greeting, "\"pid\":");
        cr_assert(p && sscanf(p, "\"pid\":%d", &pid) == 1 && pid > 0, "%s", greeting);
        ret->base_kib = status_kib(pid, "VmRSS");

        double t0 = now_seconds();
        raw_send(fd, message, size);
        read_whole_message(fd, ret->reply, sizeof(ret->reply));
        ret->seconds = now_seconds() - t0;

        /* A worker that goes on waits for the next call holding nothing of
         * this one. */
        if (!strstr(ret->reply, "io.aetask.InvalidMessage")) {
                usleep(100000);
                ret->idle_kib = status_kib(pid, "VmRSS");
        }
        close(fd);
        worker_exit_cost(pid, &ret->peak_kib, &ret->cpu);
}

static void worker_reads_shape(const char *shape) {
        static const char small[] = "{\"method\":\"io.aetask.Checkout.Call\",\"parameters\":{\"args\":[1]}}";
        worker_cost base = {}, cost = {};
        buffer b = {};

        logged_server_start(&srv, &h_handler, NULL, NULL);
        worker_reads(small, sizeof(small), &base);
        cr_assert(strstr(base.reply, "\"result\":[1]"), "%s", base.reply);

        cr_assert_eq(json_shape_append(&b, shape, JSON_SHAPE_CALL, MESSAGE_SIZE), 0);
        worker_reads(buffer_head(&b), buffer_length(&b), &cost);
        double factor = (double) (cost.peak_kib - base.peak_kib - FIXED_BASE_KIB) * 1024 / (double) (buffer_length(&b) - 1);
        cr_log_info("%s: %zu bytes read by a worker: peak %+ld KiB (%.2f times the message), CPU %.3f s, "
                    "%.3f s to the reply, %ld KiB idle after; reply %.80s",
                    shape, buffer_length(&b) - 1, cost.peak_kib - base.peak_kib, factor, cost.cpu,
                    cost.seconds, cost.idle_kib - cost.base_kib, cost.reply);
        buffer_done(&b);

        /* Answered (a result, MethodNotFound) or refused (InvalidMessage,
         * which closes): either way a reply came. */
        cr_assert(strstr(cost.reply, "\"result\"") || strstr(cost.reply, "io.aetask.InvalidMessage") ||
                  strstr(cost.reply, "io.aetask.MethodNotFound"), "%s: %s", shape, cost.reply);
        if (UNDER_ASAN)
                return;
        cr_assert_leq(factor, FACTOR_MAX, "%s: a worker took %.1f times the message's size", shape, factor);
        cr_assert_lt(cost.cpu, CPU_MAX, "%s: a worker spent %.2f s of CPU on one message", shape, cost.cpu);
        if (cost.idle_kib > 0)
                cr_assert_leq(cost.idle_kib - cost.base_kib, IDLE_KIB_MAX,
                              "%s: an idle worker kept %ld KiB of the message", shape, cost.idle_kib - cost.base_kib);
        server_check_serves(&srv);
}

Test(message_cost, worker_empty_objects) { worker_reads_shape("empty-objects"); }
Test(message_cost, worker_empty_arrays) { worker_reads_shape("empty-arrays"); }
Test(message_cost, worker_deep_nesting) { worker_reads_shape("deep-nesting"); }
Test(message_cost, worker_tiny_strings) { worker_reads_shape("tiny-strings"); }
Test(message_cost, worker_short_strings) { worker_reads_shape("short-strings"); }
Test(message_cost, worker_numbers) { worker_reads_shape("numbers"); }
Test(message_cost, worker_small_objects) { worker_reads_shape("small-objects"); }
Test(message_cost, worker_long_keys) { worker_reads_shape("long-keys"); }
Test(message_cost, worker_duplicate_keys) { worker_reads_shape("duplicate-keys"); }
Test(message_cost, worker_skipped_member) { worker_reads_shape("skipped-member"); }
Test(message_cost, worker_unknown_method) { worker_reads_shape("unknown-method"); }

/* ---- The client's side: a fake worker ------------------------------------ */

typedef struct fake_worker {
        raw_listener socket;
        pid_t pid;
} fake_worker;

static void fake_worker_start(fake_worker *f, const buffer *reply) {
        int fd = raw_listen(&f->socket, "aetask-cost", 4);
        f->pid = fork();
        cr_assert_geq(f->pid, 0);
        if (f->pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                json_shape_serve(fd, reply);
        }
        close(fd);
}

static void fake_worker_stop(fake_worker *f) {
        kill(f->pid, SIGKILL);
        waitpid(f->pid, NULL, 0);
        raw_listener_remove(&f->socket);
}

typedef struct outcome {
        bool done, failed;
        char text[256];
} outcome;

static int on_reply(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        outcome *o = userdata;
        snprintf(o->text, sizeof(o->text), "a result of type %s", json_type_to_name(json_object_get_type(result)));
        o->done = true;
        return 0;
}

static void on_error(aetask_checkout *co, aetask_error_kind kind, const char *message, void *userdata) {
        outcome *o = userdata;
        snprintf(o->text, sizeof(o->text), "%s error: %s", aetask_error_kind_to_string(kind), message);
        o->failed = o->done = true;
}

static double thread_cpu_seconds(void) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void client_reads_shape(const char *shape) {
        buffer reply = {};
        fake_worker f = {};
        sd_event *e = NULL;
        aetask_client *c = NULL;
        aetask_checkout *co = NULL;
        outcome o = {};

        cr_assert_eq(json_shape_append(&reply, shape, JSON_SHAPE_REPLY, MESSAGE_SIZE), 0);
        size_t size = buffer_length(&reply) - 1;
        fake_worker_start(&f, &reply);
        buffer_done(&reply);

        cr_assert_eq(sd_event_new(&e), 0);
        cr_assert_eq(aetask_client_new(&c, f.socket.address), 0);
        cr_assert_eq(aetask_client_attach_event(c, e, 0), 0);
        aetask_client_set_max_message_size(c, MESSAGE_SIZE);
        /* The fake serves one connection. */
        aetask_client_set_min_workers(c, 0);
        aetask_client_set_max_workers(c, 1);
        aetask_client_set_error_handler(c, on_error, &o);
        cr_assert_eq(aetask_client_checkout(c, &co), 0);
        aetask_checkout_set_error_handler(co, on_error, &o);

        /* The peak from here on, above what the process holds now. */
        FILE *clear = fopen("/proc/self/clear_refs", "we");
        cr_assert_not_null(clear, "/proc/self/clear_refs: %s", strerror(errno));
        fputs("5", clear);
        fclose(clear);
        long base_kib = status_kib(getpid(), "VmRSS");
        double cpu0 = thread_cpu_seconds();

        cr_assert_eq(aetask_checkout_call(co, NULL, NULL, NULL, on_reply, &o), 0);
        test_run_until(e, &o.done, 60);
        double cpu = thread_cpu_seconds() - cpu0;
        long peak_kib = status_kib(getpid(), "VmHWM") - base_kib;
        /* The connection gives its buffers back once it has been quiet
         * (conn-shrink.c: 20 ms). */
        test_run_for(e, 0.1);
        long after_kib = status_kib(getpid(), "VmRSS") - base_kib;
        double factor = (double) (peak_kib - FIXED_BASE_KIB) * 1024 / (double) size;
        cr_log_info("%s: %zu bytes read by the client: peak %+ld KiB (%.2f times the message), CPU %.3f s, "
                    "%+ld KiB after; %s", shape, size, peak_kib, factor, cpu, after_kib, o.text);

        aetask_checkout_unref(co);
        aetask_client_unref(c);
        sd_event_unref(e);
        fake_worker_stop(&f);
        if (UNDER_ASAN)
                return;
        cr_assert_leq(factor, FACTOR_MAX, "%s: the client took %.1f times the reply's size", shape, factor);
        cr_assert_lt(cpu, CPU_MAX, "%s: the client spent %.2f s of CPU on one reply", shape, cpu);
        cr_assert_leq(after_kib, IDLE_KIB_MAX, "%s: the client kept %ld KiB of a reply it is done with", shape, after_kib);
}

Test(message_cost, client_empty_objects) { client_reads_shape("empty-objects"); }
Test(message_cost, client_empty_arrays) { client_reads_shape("empty-arrays"); }
Test(message_cost, client_deep_nesting) { client_reads_shape("deep-nesting"); }
Test(message_cost, client_tiny_strings) { client_reads_shape("tiny-strings"); }
Test(message_cost, client_short_strings) { client_reads_shape("short-strings"); }
Test(message_cost, client_numbers) { client_reads_shape("numbers"); }
Test(message_cost, client_small_objects) { client_reads_shape("small-objects"); }
Test(message_cost, client_long_keys) { client_reads_shape("long-keys"); }
Test(message_cost, client_duplicate_keys) { client_reads_shape("duplicate-keys"); }
Test(message_cost, client_skipped_member) { client_reads_shape("skipped-member"); }
