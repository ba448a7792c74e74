/* Pool governance in aetaskd (issue 14), against the real aetaskd and the
 * client library: workers recycled by age, each at its own time (jitter),
 * and by memory, without a call failing; a handler whose setup fails backed
 * off exponentially (refusals that say why, the STATUS= line, few forks)
 * and serving again by itself once the setup succeeds; the metrics of
 * `aetaskctl status`.  The gate handler (tests/handlers/gate.c) fails its
 * setup until a file exists, and grows a worker's memory on demand. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "calls.h"
#include "daemon.h"
#include "hostile.h"

static daemon_proc d;
static aetask_client *client;
static sd_event *event;
static int notify_fd = -1;

static void cleanup(void) {
        client = aetask_client_unref(client);
        event = sd_event_unref(event);
        daemon_stop(&d);
        if (notify_fd >= 0)
                close(notify_fd);
        notify_fd = -1;
        unsetenv("NOTIFY_SOCKET");
}

TestSuite(governance, .fini = cleanup, .timeout = 120);

/* aetaskd --handler gate ARGS, and a client of it with at most 4 workers. */
static void start(const char *const *args) {
        const char *argv[32] = { "--handler", "gate", "--handler-dir", TEST_HANDLER_DIR };
        size_t n = 4;
        char address[128];

        for (size_t i = 0; args && args[i] && n < 31; i++)
                argv[n++] = args[i];
        daemon_start(&d, 0, -1, argv);
        snprintf(address, sizeof(address), "unix:%s", d.sock);
        cr_assert_eq(aetask_client_new(&client, address), 0);
        cr_assert_eq(aetask_client_set_max_workers(client, 4), 0);
        cr_assert_eq(sd_event_new(&event), 0);
        cr_assert_eq(aetask_client_attach_event(client, event, 0), 0);
}

/* The server's status as JSON (owned by the caller). */
static json_object *status_json(void) {
        static char out[256 * 1024];
        char address[128];
        const char *args[] = { "--json", "status", address, NULL };

        snprintf(address, sizeof(address), "unix:%s", d.control);
        int rc = ctl_run(out, sizeof(out), 10, args);
        cr_assert_eq(rc, 0, "aetaskctl status failed (%d): %s", rc, out);
        json_object *o = json_tokener_parse(out);
        cr_assert_not_null(o, "status is not JSON: %s", out);
        return o;
}

/* A number in status at PATH ("metrics.retired.lifetime"), or -1 when absent. */
static int64_t status_number(json_object *o, const char *path) {
        char key[64];

        for (const char *p = path; o; ) {
                const char *dot = strchr(p, '.');
                size_t l = dot ? (size_t) (dot - p) : strlen(p);
                snprintf(key, sizeof(key), "%.*s", (int) l, p);
                if (!json_object_object_get_ex(o, key, &o))
                        return -1;
                if (!dot)
                        return json_object_get_int64(o);
                p = dot + 1;
        }
        return -1;
}

static int64_t status_get(const char *path) {
        json_object *o = status_json();
        int64_t v = status_number(o, path);
        json_object_put(o);
        return v;
}

/* The worker's pid, from a call of pid() on a checkout of its own. */
static long call_pid(void) {
        test_checkout t;
        test_reply r = {};

        test_checkout_begin(&t, client, event);
        long pid = strtol(test_call_ok(&t, &r, "pid", "[]"), NULL, 10);
        test_reply_clear(&r);
        test_checkout_end(&t);
        return pid;
}

Test(governance, lifetime_recycles_workers_at_spread_times_and_no_call_fails) {
        const char *args[] = { "--max-worker-lifetime", "0.5", NULL };
        long pids[256];
        size_t distinct = 0, calls = 0;

        start(args);
        /* Four checkouts at a time for 2.5 s: every call must succeed while
         * the workers under them retire (between checkouts). */
        double until = now_seconds() + 2.5;
        while (now_seconds() < until) {
                test_checkout t[4];
                test_reply r[4] = {};
                for (int i = 0; i < 4; i++) {
                        test_checkout_begin(&t[i], client, event);
                        test_queue(&t[i], &r[i], "pid", "[]");
                }
                for (int i = 0; i < 4; i++) {
                        test_wait(&t[i], &r[i]);
                        cr_assert(!r[i].failed, "a call failed while workers retired: %s", r[i].message);
                        long pid = strtol(r[i].text, NULL, 10);
                        size_t j = 0;
                        while (j < distinct && pids[j] != pid)
                                j++;
                        if (j == distinct && distinct < 256)
                                pids[distinct++] = pid;
                        calls++;
                        test_reply_clear(&r[i]);
                        test_checkout_end(&t[i]);
                }
        }
        cr_assert_geq(distinct, 8, "only %zu workers served in 2.5 s with a 0.5 s lifetime", distinct);
        cr_assert_geq(status_get("metrics.retired.lifetime"), 4);
        cr_assert_eq(status_get("metrics.retired.died"), 0);

        /* The ages at retirement: within the limit less its 20 % jitter (and
         * a check interval late at most), and not all alike. */
        FILE *f = fopen(d.log, "re");
        char line[4096];
        double min = 1e9, max = 0, sum = 0;
        unsigned n = 0;
        cr_assert_not_null(f);
        while (fgets(line, sizeof(line), f)) {
                const char *p = strstr(line, "retiring after ");
                double age;
                if (!p || !strstr(line, "lifetime is over") || sscanf(p, "retiring after %lf", &age) != 1)
                        continue;
                min = fmin(min, age);
                max = fmax(max, age);
                sum += age;
                n++;
        }
        fclose(f);
        fprintf(stderr, "lifetime 0.5 s: %u workers retired at ages %.3f to %.3f s (mean %.3f), %zu served %zu calls\n",
                n, min, max, sum / n, distinct, calls);
        cr_assert_geq(n, 4);
        cr_assert_geq(min, 0.5 * 0.8 - 0.005, "a worker retired at %.3f s, before its lifetime less jitter", min);
        /* Late by a check interval (10 ms), or more on a loaded machine. */
        cr_assert_leq(max, 0.5 + 0.25, "a worker retired at %.3f s, long after its lifetime", max);
        cr_assert_gt(max - min, 0.01, "every worker retired at the same age (%.3f s): no jitter", min);
}

Test(governance, a_worker_past_the_rss_limit_retires_after_its_checkout) {
        /* The limit is the worker's own size plus 32 MiB: a sanitizer build's
         * workers are larger than a plain one's. */
        start(NULL);
        long pid = call_pid();
        json_object *o = status_json(), *workers, *pid_value, *rss = NULL;
        cr_assert(json_object_object_get_ex(o, "workers", &workers));
        for (size_t i = 0; i < json_object_array_length(workers); i++) {
                json_object *w = json_object_array_get_idx(workers, i);
                if (json_object_object_get_ex(w, "pid", &pid_value) && json_object_get_int64(pid_value) == pid)
                        cr_assert(json_object_object_get_ex(w, "rss", &rss));
        }
        cr_assert_not_null(rss, "the worker is not in status");
        uint64_t base = (uint64_t) json_object_get_int64(rss);
        json_object_put(o);
        cr_assert_gt(base, 0, "no RSS in status");
        cleanup();

        char limit[32];
        snprintf(limit, sizeof(limit), "%llu", (unsigned long long) (base + (32ULL << 20)));
        const char *args[] = { "--max-worker-rss", limit, NULL };
        start(args);
        pid = call_pid();
        test_checkout t;
        test_reply r = {};
        test_checkout_begin(&t, client, event);
        cr_assert_eq(strtol(test_call_ok(&t, &r, "grow", "[64]"), NULL, 10), pid, "not the pooled worker");
        test_reply_clear(&r);
        /* Still in its checkout: it is not taken from under the client. */
        test_run_for(event, 1.5);
        cr_assert_eq(strtol(test_call_ok(&t, &r, "pid", "[]"), NULL, 10), pid, "retired during its checkout");
        test_reply_clear(&r);
        test_checkout_end(&t);

        double deadline = now_seconds() + 5;
        while (status_get("metrics.retired.rss") != 1) {
                if (now_seconds() > deadline) {
                        json_object *o2 = status_json();
                        cr_assert_fail("the grown worker was not retired (limit %s): %s", limit,
                                       json_object_to_json_string(o2));
                }
                test_run_for(event, 0.05);
        }
        cr_assert_neq(call_pid(), pid, "the retired worker served again");
        cr_assert_eq(daemon_log_count(&d, "past --max-worker-rss"), 1);
}

/* Receives the STATUS= lines aetaskd sends, as systemd would. */
static void listen_notify(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/aetask-notify-%d", getpid());
        unlink(sa.sun_path);
        notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        cr_assert_geq(notify_fd, 0);
        cr_assert_eq(bind(notify_fd, (struct sockaddr *) &sa, sizeof(sa)), 0, "bind: %s", strerror(errno));
        setenv("NOTIFY_SOCKET", sa.sun_path, 1);
}

/* Reads what came (aetaskd blocks on a full queue, as on a stuck systemd):
 * whether a STATUS= line said the server is backing off, and the last one. */
static bool notify_said_backing_off;
static char notify_status[512];

static void notify_drain(void) {
        char buf[4096];
        ssize_t n;

        while ((n = recv(notify_fd, buf, sizeof(buf) - 1, 0)) > 0) {
                buf[n] = 0;
                notify_said_backing_off = notify_said_backing_off || strstr(buf, "STATUS=Backing off after ");
                const char *status = strstr(buf, "STATUS=");
                if (status)
                        snprintf(notify_status, sizeof(notify_status), "%.*s", (int) strcspn(status, "\n"), status);
        }
}

/* systemctl status shows "1 worker", not "1 workers". */
Test(governance, status_line_counts_one_worker_in_the_singular) {
        test_checkout t;
        test_reply r = {};

        listen_notify();
        start(NULL);
        /* A client that keeps one worker, not the default two. */
        char address[128];
        snprintf(address, sizeof(address), "unix:%s", d.sock);
        client = aetask_client_unref(client);
        cr_assert_eq(aetask_client_new(&client, address), 0);
        cr_assert_eq(aetask_client_set_min_workers(client, 1), 0);
        cr_assert_eq(aetask_client_attach_event(client, event, 0), 0);
        test_checkout_begin(&t, client, event);
        (void) test_call_ok(&t, &r, "pid", "[]");
        test_reply_clear(&r);
        usleep(1300 * 1000);  /* the line is refreshed once a second */
        notify_drain();
        cr_assert(strncmp(notify_status, "STATUS=1 worker (0 busy, 1 idle), 1 call served (", 49) == 0, "%s",
                  notify_status);
        test_checkout_end(&t);
}

Test(governance, failing_setup_backs_off_and_service_resumes_by_itself) {
        char gate[128], option[160];

        listen_notify();
        snprintf(gate, sizeof(gate), "/tmp/aetask-gate-%d", getpid());
        unlink(gate);
        snprintf(option, sizeof(option), "gate=%s", gate);
        const char *args[] = { "-o", option, NULL };
        start(args);

        /* The first worker's client hears the setup's own error. */
        test_checkout t;
        test_reply r = {};
        test_checkout_begin(&t, client, event);
        test_call_fails(&t, &r, "pid", "[]");
        cr_assert_eq(r.kind, AETASK_ERROR_SETUP, "%s", r.message);
        test_reply_clear(&r);
        test_checkout_end(&t);
        double t0 = now_seconds();

        /* Then clients are refused, told why, while the server probes alone. */
        test_checkout_begin(&t, client, event);
        test_call_fails(&t, &r, "pid", "[]");
        cr_assert_eq(r.kind, AETASK_ERROR_REFUSED, "%s: %s", aetask_error_kind_to_string(r.kind), r.message);
        cr_assert(strstr(r.message, "fail to start (no /tmp/aetask-gate-") && strstr(r.message, "backing off"),
                  "%s", r.message);
        test_reply_clear(&r);
        test_checkout_end(&t);

        /* The attempts over 3 s: 0.1, 0.2, 0.4, 0.8, 1.6 s apart. */
        double at[64];
        int64_t seen = 1;
        unsigned n = 0;
        while (now_seconds() < t0 + 3.0) {
                notify_drain();
                int64_t f = status_get("backoff.failures");
                if (f > seen && n < 64) {
                        at[n++] = now_seconds() - t0;
                        seen = f;
                }
                usleep(10000);
        }
        fprintf(stderr, "setup failures in a row over 3 s: %lld, new ones at", (long long) seen);
        for (unsigned i = 0; i < n; i++)
                fprintf(stderr, " %.2f", at[i]);
        fprintf(stderr, " s\n");
        cr_assert_geq(seen, 4, "the server stopped trying");
        cr_assert_leq(seen, 6, "%lld attempts in 3 s: not backing off", (long long) seen);
        int64_t spawned = status_get("metrics.workers_spawned");
        cr_assert_leq(spawned, 7, "%lld workers forked in 3 s", (long long) spawned);
        notify_drain();
        cr_assert(notify_said_backing_off, "no back-off in the STATUS= line");

        /* The setup can succeed now: the next probe finds it,
         * and calls are served without the server being touched. */
        int fd = open(gate, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        cr_assert_geq(fd, 0);
        close(fd);
        double resumed = now_seconds(), deadline = resumed + 8;  /* the next delay is 6.4 s at most */
        while (notify_drain(), status_get("backoff.failures") >= 0) {
                cr_assert_lt(now_seconds(), deadline, "the back-off did not end");
                usleep(10000);
        }
        fprintf(stderr, "service resumed %.2f s after the setup could succeed\n", now_seconds() - resumed);
        cr_assert_gt(call_pid(), 0);
        /* A probe may have failed between the last look and the file. */
        int64_t failed = status_get("metrics.retired.setup_failed");
        cr_assert(failed == seen || failed == seen + 1, "%lld setup failures, %lld seen", (long long) failed,
                  (long long) seen);
        cr_assert_eq(daemon_log_count(&d, "succeeded again after"), 1);
        unlink(gate);
}

Test(governance, status_counts_calls_errors_durations_and_causes) {
        char address[128], out[16384];
        test_checkout t;
        test_reply r = {};

        start(NULL);
        test_checkout_begin(&t, client, event);
        /* Calls of 2 ms: a pid() can take under a microsecond, which the
         * histogram rightly counts as 0. */
        for (int i = 0; i < 10; i++) {
                test_call_ok(&t, &r, "nap", "[2]");
                test_reply_clear(&r);
        }
        test_call_fails(&t, &r, "grow", "[0]");
        test_reply_clear(&r);
        test_call_fails(&t, &r, "nosuchmethod", "[]");
        test_reply_clear(&r);
        test_checkout_end(&t);
        client = aetask_client_unref(client);  /* its worker is let go: "released" */

        json_object *o = status_json();
        double deadline = now_seconds() + 5;
        while (status_number(o, "alive") != 0) {
                cr_assert_lt(now_seconds(), deadline, "the released worker is not counted: %s",
                             json_object_to_json_string(o));
                json_object_put(o);
                usleep(20000);
                o = status_json();
        }
        cr_assert_eq(status_number(o, "metrics.calls"), 12);
        cr_assert_eq(status_number(o, "metrics.errors.handler"), 1);
        cr_assert_eq(status_number(o, "metrics.errors.method_not_found"), 1);
        cr_assert_eq(status_number(o, "metrics.errors.setup"), 0);
        cr_assert_geq(status_number(o, "metrics.call_usec_p50"), 2000);
        cr_assert_geq(status_number(o, "metrics.call_usec_p99"), status_number(o, "metrics.call_usec_p50"));
        /* The client may connect workers ahead of need (at most its 4). */
        int64_t spawned = status_number(o, "metrics.workers_spawned");
        cr_assert(spawned >= 1 && spawned <= 4, "%lld workers spawned", (long long) spawned);
        cr_assert_eq(status_number(o, "metrics.retired.released"), spawned);
        json_object_put(o);

        snprintf(address, sizeof(address), "unix:%s", d.control);
        const char *plain[] = { "status", address, NULL };
        cr_assert_eq(ctl_run(out, sizeof(out), 10, plain), 0);
        cr_assert(strstr(out, "\nCalls: 12 (") && strstr(out, "errors: 1 handler, 1 method_not_found\n"), "%s", out);
        char expected[128];
        snprintf(expected, sizeof(expected), "\nWorkers spawned: %lld; retired: %lld released\n",
                 (long long) spawned, (long long) spawned);
        cr_assert(strstr(out, expected), "%s", out);

        /* --watch without a terminal: refreshes one after another. */
        const char *watch[] = { "status", "--watch", "--interval", "0.1", "--iterations", "3", address, NULL };
        double t0 = now_seconds();
        cr_assert_eq(ctl_run(out, sizeof(out), 10, watch), 0);
        cr_assert_geq(now_seconds() - t0, 0.2, "three refreshes 0.1 s apart came at once");
        unsigned refreshes = 0;
        for (const char *p = out; (p = strstr(p, "Every 0.1s: aetaskctl status ")); p++)
                refreshes++;
        cr_assert_eq(refreshes, 3, "%s", out);
        cr_assert_null(strstr(out, "\033["), "escape sequences without a terminal");
}

/* Sends SIG to PID after MS milliseconds, from a process of its own. */
static pid_t signal_later(pid_t pid, int sig, unsigned ms) {
        pid_t k = fork();

        cr_assert_geq(k, 0);
        if (k == 0) {
                usleep(ms * 1000);
                _exit(kill(pid, sig) == 0 ? 0 : 1);
        }
        return k;
}

/* SIGTERM asks a worker to retire after its checkout, and does not cut the
 * call it runs short: the gate's nap is a usleep() that a caught signal
 * would end early with EINTR.  TARGET is "worker" (systemd's stop signals
 * every process of the unit) or "server" (a reload, SIGHUP). */
static void signal_mid_call(const char *target) {
        test_checkout t;
        test_reply r = {};

        start(NULL);
        test_checkout_begin(&t, client, event);
        pid_t worker = (pid_t) strtol(test_call_ok(&t, &r, "pid", "[]"), NULL, 10);
        test_reply_clear(&r);

        bool to_worker = strcmp(target, "worker") == 0;
        pid_t k = signal_later(to_worker ? worker : d.pid, to_worker ? SIGTERM : SIGHUP, 150);
        double t0 = now_seconds();
        (void) test_call_ok(&t, &r, "nap", "[700]");
        double took = now_seconds() - t0;
        test_reply_clear(&r);
        int status;
        cr_assert_eq(waitpid(k, &status, 0), k);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the signal was not sent");
        cr_assert_geq(took, 0.69, "a signal to the %s ended a 700 ms call after %.3f s", target, took);

        /* The checkout goes on with the same worker, which retires after it. */
        cr_assert_eq(strtol(test_call_ok(&t, &r, "pid", "[]"), NULL, 10), worker);
        test_reply_clear(&r);
        test_checkout_end(&t);
        double deadline = now_seconds() + 10;
        while (kill(worker, 0) == 0 && now_seconds() < deadline)
                usleep(10000);
        cr_assert_neq(kill(worker, 0), 0, "the worker did not retire after its checkout");
}

Test(governance, sigterm_to_a_busy_worker_waits_for_its_call) {
        signal_mid_call("worker");
}

Test(governance, reload_waits_for_the_calls_running) {
        signal_mid_call("server");
}

/* Runs the client's loop for about MS milliseconds. */
static void run_loop_for(unsigned ms) {
        double until = now_seconds() + ms / 1000.0;

        while (now_seconds() < until)
                cr_assert_geq(sd_event_run(event, 10 * 1000), 0);
}

/* A call written to a worker that died idle, before the client saw it go,
 * never reached it (the write failed, or its bytes still wait): it goes to
 * another worker (aetask-protocol(7), NEVER RAN), as one sent behind an
 * unanswered Done does. */
Test(governance, a_call_to_a_worker_that_died_idle_goes_to_another) {
        start(NULL);
        long first = call_pid();
        run_loop_for(200);  /* the Done answered, both pooled workers idle */

        json_object *status = status_json(), *workers;
        cr_assert(json_object_object_get_ex(status, "workers", &workers));
        size_t n = json_object_array_length(workers);
        cr_assert_geq(n, 1);
        pid_t pids[16];
        for (size_t i = 0; i < n && i < 16; i++) {
                json_object *pid;
                cr_assert(json_object_object_get_ex(json_object_array_get_idx(workers, i), "pid", &pid));
                pids[i] = (pid_t) json_object_get_int(pid);
                cr_assert_eq(kill(pids[i], SIGKILL), 0);
        }
        json_object_put(status);
        /* Gone and reaped, and the client's loop has not run meanwhile. */
        double deadline = now_seconds() + 5;
        for (size_t i = 0; i < n && i < 16; i++)
                while (kill(pids[i], 0) == 0 && now_seconds() < deadline)
                        usleep(5000);

        cr_assert_neq(call_pid(), first);
}

/* "calls served" counts the handler's methods that ran, one killed as hung
 * included (aetaskctl(1)); the metrics count the calls answered. */
Test(governance, calls_served_counts_a_call_killed_as_hung) {
        const char *args[] = { "--hung-timeout", "0.3", NULL };
        test_checkout t;
        test_reply r = {};

        start(args);
        test_checkout_begin(&t, client, event);
        test_call_fails(&t, &r, "nap", "[3000]");
        cr_assert_eq(r.kind, AETASK_ERROR_WORKER_DIED, "%s: %s", aetask_error_kind_to_string(r.kind), r.message);
        test_reply_clear(&r);
        test_checkout_end(&t);

        json_object *o = status_json();
        cr_assert_eq(status_number(o, "killed_hung"), 1);
        cr_assert_eq(status_number(o, "calls"), 1, "calls served: %lld", (long long) status_number(o, "calls"));
        cr_assert_eq(status_number(o, "metrics.calls"), 0);
        json_object_put(o);
}
