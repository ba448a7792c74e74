/* aetask-bench's parse workload: what reading one message of each costly
 * shape (json-shapes.h) costs, as peak bytes of memory per byte of message
 * and nanoseconds of CPU per byte, on both sides.  The worker side is a
 * server of its own whose log (at debug level, to a file) gives each
 * worker's peak memory and CPU when it exits; the client side is this
 * process reading a fake worker's reply, its peak reset before each. */
#include <aetask/aetask-client.h>
#include <aetask/aetask-server.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "buffer.h"
#include "json-shapes.h"
#include "protocol.h"

static long status_kib(pid_t pid, const char *field) {
        long v = proc_kib(pid, "status", field);
        if (v < 0)
                die("/proc/%d/status: no %s", (int) pid, field);
        return v;
}

static int unix_socket(const char *path, bool listening) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        if (fd < 0 || (listening ? bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 4) < 0
                                 : connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0))
                die("socket %s: %m", path);
        return fd;
}

static void read_message(int fd, char *buf, size_t size) {
        if (json_shape_read_message(fd, buf, size) < 0)
                die("parse: the connection ended before the message did");
}

/* ---- The worker's side ---------------------------------------------------- */

typedef struct logged {
        char dir[64], sock[96], log[96];
        pid_t pid;
        int keepalive_fd;
} logged;

static void logged_start(logged *l) {
        aetask_server *s = NULL;
        char address[128];
        int saved, fd, r;

        snprintf(l->dir, sizeof(l->dir), "/tmp/aetask-bench-parse-XXXXXX");
        if (!mkdtemp(l->dir))
                die("mkdtemp: %m");
        snprintf(l->sock, sizeof(l->sock), "%s/echo.sock", l->dir);
        snprintf(l->log, sizeof(l->log), "%s/server.log", l->dir);
        snprintf(address, sizeof(address), "unix:%s", l->sock);
        fd = open(l->log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0)
                die("%s: %m", l->log);

        /* Its workers' ends, at debug level, to the file and not the journal. */
        saved = dup(STDERR_FILENO);
        dup2(fd, STDERR_FILENO);
        setenv("AETASK_JOURNAL_SOCKET", "/nonexistent/aetask-bench", 1);
        setenv("AETASK_DEBUG", "1", 1);
        if ((r = aetask_server_new(&s)) < 0 ||
            (r = aetask_server_load_handler(s, "echo", arg.handler_dir)) < 0 ||
            (r = aetask_server_listen(s, address)) < 0 ||
            (r = aetask_server_fork(s, &l->pid, &l->keepalive_fd)) < 0)
                die("Failed to start the parse server: %s", strerror(-r));
        aetask_server_free(s);
        unsetenv("AETASK_DEBUG");
        unsetenv("AETASK_JOURNAL_SOCKET");
        dup2(saved, STDERR_FILENO);
        close(saved);
        close(fd);
}

static void logged_stop(logged *l) {
        close(l->keepalive_fd);
        (void) waitpid(l->pid, NULL, 0);
        unlink(l->log);
        unlink(l->sock);
        rmdir(l->dir);
}

/* The peak memory (KiB) and CPU the server logged for worker PID's exit. */
static void worker_exit_cost(const logged *l, int pid, long *ret_kib, double *ret_cpu) {
        char key[64], line[1024];

        snprintf(key, sizeof(key), "(pid %d) of", pid);
        for (int tries = 0; tries < 1000; tries++) {
                FILE *f = fopen(l->log, "re");
                while (f && fgets(line, sizeof(line), f)) {
                        const char *p = strstr(line, key), *q = p ? strstr(p, "peak memory ") : NULL;
                        if (q && sscanf(q, "peak memory %ld KiB, CPU %lf s", ret_kib, ret_cpu) == 2) {
                                fclose(f);
                                return;
                        }
                }
                if (f)
                        fclose(f);
                usleep(10000);
        }
        die("parse: worker %d's exit was not logged", pid);
}

/* A worker of its own reads MESSAGE; returns its peak memory and CPU. */
static void worker_reads(const logged *l, const buffer *message, long *ret_kib, double *ret_cpu) {
        char greeting[512], reply[256];
        int fd = unix_socket(l->sock, false), pid = 0;

        if (bench_ask_greeting(fd) < 0)
                die("parse: cannot ask for the greeting: %m");
        read_message(fd, greeting, sizeof(greeting));
        const char *p = strstr(greeting, "\"pid\":");
        if (!p || sscanf(p, "\"pid\":%d", &pid) != 1)
                die("parse: no worker greeting: %s", greeting);
        for (size_t done = 0; done < buffer_length(message);) {
                ssize_t n = send(fd, buffer_head(message) + done, buffer_length(message) - done, MSG_NOSIGNAL);
                if (n <= 0)
                        die("parse: send: %m");
                done += (size_t) n;
        }
        read_message(fd, reply, sizeof(reply));
        close(fd);
        worker_exit_cost(l, pid, ret_kib, ret_cpu);
}

/* ---- The client's side ---------------------------------------------------- */

static int on_reply(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        *(bool *) userdata = true;
        return 0;
}

static void on_error(aetask_checkout *co, aetask_error_kind kind, const char *message, void *userdata) {
        *(bool *) userdata = true;
}

static double thread_cpu(void) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* This process reads REPLY from a fake worker; returns the peak memory
 * above what it held before, and the CPU. */
static void client_reads(const buffer *reply, long *ret_kib, double *ret_cpu) {
        char dir[64] = "/tmp/aetask-bench-fake-XXXXXX", path[96], address[128];
        sd_event *e = NULL;
        aetask_client *c = NULL;
        aetask_checkout *co = NULL;
        bool done = false;

        if (!mkdtemp(dir))
                die("mkdtemp: %m");
        snprintf(path, sizeof(path), "%s/w.sock", dir);
        snprintf(address, sizeof(address), "unix:%s", path);
        int fd = unix_socket(path, true);
        pid_t pid = fork();
        if (pid < 0)
                die("fork: %m");
        if (pid == 0)
                json_shape_serve(fd, reply);
        close(fd);

        if (sd_event_new(&e) < 0 || aetask_client_new(&c, address) < 0 || aetask_client_attach_event(c, e, 0) < 0)
                die("parse: cannot make a client");
        aetask_client_set_max_message_size(c, buffer_length(reply));
        aetask_client_set_min_workers(c, 0);
        aetask_client_set_max_workers(c, 1);
        if (aetask_client_checkout(c, &co) < 0)
                die("parse: checkout failed");
        aetask_checkout_set_error_handler(co, on_error, &done);

        FILE *clear = fopen("/proc/self/clear_refs", "we");
        if (!clear || fputs("5", clear) < 0 || fclose(clear) != 0)
                die("/proc/self/clear_refs: %m");
        long base = status_kib(getpid(), "VmRSS");
        double cpu = thread_cpu();
        if (aetask_checkout_call(co, NULL, NULL, NULL, on_reply, &done) < 0)
                die("parse: call failed");
        while (!done)
                if (sd_event_run(e, UINT64_MAX) < 0)
                        die("parse: event loop failed");
        *ret_cpu = thread_cpu() - cpu;
        *ret_kib = status_kib(getpid(), "VmHWM") - base;

        aetask_checkout_unref(co);
        aetask_client_unref(c);
        sd_event_unref(e);
        kill(pid, SIGKILL);
        (void) waitpid(pid, NULL, 0);
        unlink(path);
        rmdir(dir);
}

/* ---- The workload ----------------------------------------------------------- */

/* The figures' names, "worker numbers memory" and so on: the report keeps
 * pointers to them, so they live as long as the program, without a leak. */
#define NAME_MAX_LENGTH 64
#define SHAPES_MAX 16

static const char *cost_name(const char *side, const char *shape, const char *what) {
        static char names[2][SHAPES_MAX][2][NAME_MAX_LENGTH];
        size_t i = 0;

        while (json_shape_names[i] && strcmp(json_shape_names[i], shape) != 0)
                i++;
        if (i >= SHAPES_MAX)
                die("parse: more shapes than names for them");
        char *name = names[strcmp(side, "worker") == 0][i][strcmp(what, "cpu") == 0];
        snprintf(name, NAME_MAX_LENGTH, "%s %s %s", side, shape, what);
        return name;
}

static void record_cost(const char *side, const char *shape, long kib, double cpu, size_t size) {
        record("parse", cost_name(side, shape, "memory"), "B/B", UNIT_COUNT, (double) kib * 1024 / (double) size);
        record("parse", cost_name(side, shape, "cpu"), "ns/B", UNIT_COUNT, cpu * 1e9 / (double) size);
}

void bench_parse(void) {
        static const char small[] = "{\"method\":\"io.aetask.Checkout.Call\",\"parameters\":{\"args\":[1]}}";
        buffer base_message = {};
        logged l = {};
        long base_kib;
        double cpu;

        logged_start(&l);
        buffer_append(&base_message, small, sizeof(small));
        worker_reads(&l, &base_message, &base_kib, &cpu);
        buffer_done(&base_message);

        for (const char *const *shape = json_shape_names; *shape; shape++)
                for (unsigned run = 0; run < arg.runs; run++) {
                        buffer b = {};
                        long kib;

                        progress("parse: %s, run %u of %u", *shape, run + 1, arg.runs);
                        if (json_shape_append(&b, *shape, JSON_SHAPE_CALL, arg.parse_size) < 0)
                                die("parse: cannot make a message of shape %s", *shape);
                        worker_reads(&l, &b, &kib, &cpu);
                        record_cost("worker", *shape, kib - base_kib, cpu, buffer_length(&b) - 1);
                        buffer_done(&b);

                        if (!json_shape_fits(*shape, JSON_SHAPE_REPLY))
                                continue;
                        if (json_shape_append(&b, *shape, JSON_SHAPE_REPLY, arg.parse_size) < 0)
                                die("parse: cannot make a message of shape %s", *shape);
                        client_reads(&b, &kib, &cpu);
                        record_cost("client", *shape, kib, cpu, buffer_length(&b) - 1);
                        buffer_done(&b);
                }
        logged_stop(&l);
}
