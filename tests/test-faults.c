/* Faults under load: workers killed at random every few milliseconds while
 * eight checkouts keep calling; the server killed, or stopped, and started
 * again under load; the server's cap on concurrent workers.  Every call is
 * answered or fails with a worker-died (or, over the cap, refused) error,
 * nothing waits past its timeout, the pool recovers, and the client ends
 * with the descriptors and memory it started with.  Each test prints its
 * figures (calls made, answered, failed; fds and RSS before and after). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hostile.h"

#define LANES 8
#define CALL_TIMEOUT_USEC (3 * 1000000ULL)
#define CALLS_PER_CHECKOUT 5

static int f_work(aetask_worker *w, json_object *args, json_object **ret) {
        usleep(300);  /* busy long enough for some kills to land mid-call */
        *ret = json_object_new_array();
        json_object_array_add(*ret, json_object_get(json_object_array_get_idx(args, 0)));
        json_object_array_add(*ret, json_object_new_int(getpid()));
        return 0;
}

static int f_sleep(aetask_worker *w, json_object *args, json_object **ret) {
        usleep((useconds_t) (json_object_get_double(json_object_array_get_idx(args, 0)) * 1e6));
        return 0;
}

static int f_call(aetask_worker *w, json_object *args, json_object **ret) {
        *ret = json_object_get(args);
        return 0;
}

static const aetask_method f_methods[] = { { "work", f_work }, { "sleep", f_sleep }, {} };
static const aetask_handler f_handler = {
        .abi_version = AETASK_HANDLER_ABI_VERSION,
        .name = "faults",
        .methods = f_methods,
        .call = f_call,
};

/* ---- A steady load: LANES checkouts, each calling again when answered ---- */

typedef struct lane {
        aetask_checkout *co;
        unsigned calls_on_checkout;
        int64_t seq;
        double sent;
        bool pending;
} lane;

typedef struct load {
        aetask_client *client;
        lane lanes[LANES];
        bool running;
        int64_t next_seq;
        unsigned long made, answered, died, refused, other, wrong;
        double max_latency;
        char other_message[256];
} load;

static void lane_call(load *l, lane *ln);

static void lane_done(load *l, lane *ln, bool drop_checkout) {
        double latency = now_seconds() - ln->sent;
        if (latency > l->max_latency)
                l->max_latency = latency;
        ln->pending = false;
        if (drop_checkout || ++ln->calls_on_checkout >= CALLS_PER_CHECKOUT) {
                ln->co = aetask_checkout_unref(ln->co);  /* released, from inside its callback */
                ln->calls_on_checkout = 0;
        }
        if (l->running)
                lane_call(l, ln);
}

static load *load_of(aetask_checkout *co) {
        return aetask_checkout_get_userdata(co);
}

static lane *lane_of(load *l, aetask_checkout *co) {
        for (int i = 0; i < LANES; i++)
                if (l->lanes[i].co == co)
                        return &l->lanes[i];
        cr_assert_fail("a callback for a checkout no lane has");
        return NULL;
}

static int on_work(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        load *l = load_of(co);
        lane *ln = lane_of(l, co);

        if (json_object_get_int64(json_object_array_get_idx(result, 0)) != ln->seq)
                l->wrong++;  /* an answer to some other call */
        l->answered++;
        lane_done(l, ln, false);
        return 0;
}

static void on_work_error(aetask_checkout *co, aetask_error_kind kind, const char *message, void *userdata) {
        load *l = load_of(co);
        lane *ln = lane_of(l, co);

        if (kind == AETASK_ERROR_WORKER_DIED)
                l->died++;
        else if (kind == AETASK_ERROR_REFUSED)
                l->refused++;
        else {
                l->other++;
                snprintf(l->other_message, sizeof(l->other_message), "%s: %s",
                         aetask_error_kind_to_string(kind), message);
        }
        lane_done(l, ln, true);
}

static void lane_call(load *l, lane *ln) {
        if (!ln->co) {
                cr_assert_eq(aetask_client_checkout(l->client, &ln->co), 0);
                aetask_checkout_set_userdata(ln->co, l);
                aetask_checkout_set_error_handler(ln->co, on_work_error, NULL);
                aetask_checkout_set_timeout(ln->co, CALL_TIMEOUT_USEC);
        }
        json_object *args = json_object_new_array();
        ln->seq = l->next_seq++;
        json_object_array_add(args, json_object_new_int64(ln->seq));
        cr_assert_eq(aetask_checkout_call(ln->co, NULL, "work", args, on_work, NULL), 0);
        json_object_put(args);
        ln->sent = now_seconds();
        ln->pending = true;
        l->made++;
}

static void load_start(load *l, aetask_client *c) {
        *l = (load) { .client = c, .running = true };
        for (int i = 0; i < LANES; i++)
                lane_call(l, &l->lanes[i]);
}

/* Stops calling and waits for the calls out to end; none may take longer
 * than its timeout. */
static void load_stop(load *l, sd_event *e) {
        double deadline = now_seconds() + (double) CALL_TIMEOUT_USEC / 1e6 + 2;
        l->running = false;
        for (;;) {
                bool pending = false;
                for (int i = 0; i < LANES; i++)
                        pending = pending || l->lanes[i].pending;
                if (!pending)
                        break;
                cr_assert_lt(now_seconds(), deadline, "calls still unanswered after their timeout");
                cr_assert_geq(sd_event_run(e, 50000), 0);
        }
        for (int i = 0; i < LANES; i++)
                l->lanes[i].co = aetask_checkout_unref(l->lanes[i].co);
}

static void load_report(const load *l, const char *what) {
        fprintf(stderr, "%s: %lu calls made, %lu answered, %lu failed (worker-died %lu, refused %lu, other %lu), "
                "%lu wrong answers, longest call %.3f s\n",
                what, l->made, l->answered, l->died + l->refused + l->other, l->died, l->refused, l->other,
                l->wrong, l->max_latency);
}

static void load_check(const load *l) {
        cr_assert_eq(l->other, 0, "an error other than worker-died: %s", l->other_message);
        cr_assert_eq(l->wrong, 0, "answers to the wrong call");
        cr_assert_eq(l->answered + l->died + l->refused, l->made, "every call answered or failed, once");
        cr_assert_lt(l->max_latency, (double) CALL_TIMEOUT_USEC / 1e6 + 0.5);
}

static long rss_kib(void) {
        long pages = 0, resident = 0;
        FILE *f = fopen("/proc/self/statm", "re");
        cr_assert_not_null(f);
        cr_assert_eq(fscanf(f, "%ld %ld", &pages, &resident), 2);
        fclose(f);
        return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* ---- The tests ---------------------------------------------------------- */

static logged_server srv;
static sd_event *event;

static void finish(void) {
        event = sd_event_unref(event);
        logged_server_cleanup(&srv);
}

TestSuite(faults, .fini = finish, .timeout = 120);

/* Kills a random worker of the server. */
static int on_kill_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        unsigned long *kills = userdata;
        char path[64], buf[4096];
        int pids[512], n = 0;

        snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int) srv.t.pid, (int) srv.t.pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
                ssize_t len = read(fd, buf, sizeof(buf) - 1);
                close(fd);
                buf[len > 0 ? len : 0] = 0;
                for (char *p = buf, *end; n < 512; p = end) {
                        long pid = strtol(p, &end, 10);
                        if (end == p)
                                break;
                        pids[n++] = (int) pid;
                }
        }
        if (n > 0 && kill(pids[rand() % n], SIGKILL) == 0)
                (*kills)++;
        (void) sd_event_source_set_time_relative(s, (2 + rand() % 4) * 1000);  /* every 2 to 5 ms */
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

/* A new event loop, with the descriptors sd-event opens the first time
 * it needs them (a timerfd per clock) already open; returns the count of
 * this process's open descriptors. */
static int new_event_loop(void) {
        sd_event_source *t = NULL;

        cr_assert_eq(sd_event_new(&event), 0);
        cr_assert_eq(sd_event_add_time_relative(event, &t, CLOCK_MONOTONIC, 1000, 0, NULL, NULL), 0);
        sd_event_source_unref(t);
        cr_assert_geq(sd_event_run(event, 10000), 0);
        return count_fds(getpid());
}

static void warm_up(aetask_client *c, double seconds) {
        load l;
        load_start(&l, c);
        test_run_for(event, seconds);
        load_stop(&l, event);
        cr_assert_eq(l.died + l.refused + l.other, 0, "a call failed with nothing killed");
}

Test(faults, workers_killed_at_random_under_load) {
        aetask_client *c;
        sd_event_source *killer = NULL;
        unsigned long kills = 0;
        load l, after;
        unsigned workers;

        srand(1);
        logged_server_start(&srv, &f_handler, NULL, NULL);
        int fds_before = new_event_loop();
        cr_assert_eq(aetask_client_new(&c, srv.t.address), 0);
        cr_assert_eq(aetask_client_attach_event(c, event, 0), 0);
        aetask_client_set_max_workers(c, LANES);
        warm_up(c, 1);
        long rss_before = rss_kib();

        cr_assert_eq(sd_event_add_time_relative(event, &killer, CLOCK_MONOTONIC, 3000, 0, on_kill_timer, &kills), 0);
        load_start(&l, c);
        test_run_for(event, 10);
        killer = sd_event_source_disable_unref(killer);
        load_stop(&l, event);
        load_report(&l, "10 s of random kills");
        fprintf(stderr, "%lu workers killed\n", kills);
        load_check(&l);
        cr_assert_gt(kills, 500, "only %lu kills", kills);
        cr_assert_gt(l.died, 0, "no call was hit by a kill");
        cr_assert_gt(l.answered, 1000);

        /* The pool recovers: a second of calls with nothing killed all succeed. */
        load_start(&after, c);
        test_run_for(event, 1);
        load_stop(&after, event);
        load_report(&after, "1 s after the kills");
        load_check(&after);
        cr_assert_eq(after.died, 0);
        cr_assert_gt(after.answered, 100);
        aetask_client_get_pool(c, &workers, NULL, NULL);
        cr_assert_leq(workers, LANES);

        long rss_after = rss_kib();
        c = aetask_client_unref(c);
        int fds_after = count_fds(getpid());
        fprintf(stderr, "client fds %d before, %d after; RSS %ld KiB before, %ld KiB after%s\n",
                fds_before, fds_after, rss_before, rss_after, UNDER_ASAN ? " (AddressSanitizer)" : "");
        cr_assert_eq(fds_after, fds_before, "descriptors left open");
        if (!UNDER_ASAN)  /* its quarantine holds freed memory on purpose */
                cr_assert_lt(rss_after - rss_before, 2048, "RSS grew by %ld KiB", rss_after - rss_before);

        /* The server is none the worse. */
        server_wait_settled(&srv, 10);
        cr_assert_eq(log_count(&srv, "killed as hung"), 0);
}

/* The server process dies (SIGKILL, no drain) and a new one starts on the
 * same address half a second later, while eight checkouts call.  What the
 * clients see: a worker finishes the call it is running (it retires when
 * its server dies, after its checkout), new connections are refused while
 * no server listens, and the client retries, backing off, until the new
 * server answers.  Calls wait out the gap; none fails unless the gap is
 * longer than its timeout. */
static void restart_under_load(bool graceful) {
        aetask_client *c;
        load l;

        logged_server_start(&srv, &f_handler, NULL, NULL);
        int fds_before = new_event_loop();
        cr_assert_eq(aetask_client_new(&c, srv.t.address), 0);
        cr_assert_eq(aetask_client_attach_event(c, event, 0), 0);
        aetask_client_set_max_workers(c, LANES);

        load_start(&l, c);
        test_run_for(event, 1);
        unsigned long before_stop = l.answered;
        pid_t old = srv.t.pid;
        cr_assert_eq(kill(old, graceful ? SIGTERM : SIGKILL), 0);
        double stopped = now_seconds();
        if (!graceful) {
                waitpid(old, NULL, 0);
                close(srv.t.keepalive_fd);
                srv.t.keepalive_fd = -1;
        }
        test_run_for(event, 0.5);
        if (graceful) {
                /* Draining: it takes no new connections, and exits when its
                 * workers have finished their checkouts. */
                int status;
                double deadline = now_seconds() + 10;
                while (waitpid(old, &status, WNOHANG) != old) {
                        cr_assert_lt(now_seconds(), deadline, "the old server did not exit");
                        cr_assert_geq(sd_event_run(event, 10000), 0);
                }
                close(srv.t.keepalive_fd);
                srv.t.keepalive_fd = -1;
        }
        unsigned long during_gap = l.answered - before_stop;
        srv.t.pid = 0;
        test_server_start(&srv.t, &f_handler, NULL, NULL);
        double restarted = now_seconds();
        test_run_for(event, 1.5);
        load_stop(&l, event);
        load_report(&l, graceful ? "server stopped (SIGTERM) and restarted under load"
                                 : "server killed (SIGKILL) and restarted under load");
        fprintf(stderr, "gap of %.2f s without a server; %lu calls answered in it (by workers finishing "
                "their checkouts)\n", restarted - stopped, during_gap);
        load_check(&l);
        cr_assert_eq(l.died, 0, "a call was lost with the server");
        cr_assert_gt(l.answered - before_stop - during_gap, 100, "the new server serves");
        cr_assert_gt(l.max_latency, restarted - stopped - 0.3, "calls waited out the gap");

        c = aetask_client_unref(c);
        cr_assert_eq(count_fds(getpid()), fds_before, "descriptors left open");
}

Test(faults, the_server_killed_and_restarted_under_load) {
        restart_under_load(false);
}

Test(faults, the_server_stopped_and_restarted_under_load) {
        restart_under_load(true);
}

/* The cap for everyone, not the per-user share (this test is one user). */
static void at_most_two_workers(aetask_server *s, void *userdata) {
        cr_assert_eq(aetask_server_set_max_workers(s, 2), 0);
        cr_assert_eq(aetask_server_set_max_workers_per_uid(s, 2), 0);
}

typedef struct refusal {
        int errors, replies;
        aetask_error_kind kind;
        char message[256];
} refusal;

static int on_refusal_reply(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        ((refusal *) userdata)->replies++;
        return 0;
}

static void on_refusal_error(aetask_checkout *co, aetask_error_kind kind, const char *message, void *userdata) {
        refusal *r = userdata;
        r->errors++;
        r->kind = kind;
        snprintf(r->message, sizeof(r->message), "%s", message);
}

/* Over the server's worker cap a connection gets io.aetask.ServerBusy and is
 * closed; the client reports it as refused, and does not hammer the server
 * with reconnects (it backs off, as for a failed connect). */
Test(faults, the_worker_cap_refuses_clearly_and_the_client_backs_off) {
        aetask_client *c;
        aetask_checkout *busy[2], *third;
        refusal r = {}, held = {};

        logged_server_start(&srv, &f_handler, at_most_two_workers, NULL);
        cr_assert_eq(sd_event_new(&event), 0);
        cr_assert_eq(aetask_client_new(&c, srv.t.address), 0);
        cr_assert_eq(aetask_client_attach_event(c, event, 0), 0);
        aetask_client_set_min_workers(c, 0);
        json_object *args = json_tokener_parse("[3]");
        for (int i = 0; i < 2; i++) {
                cr_assert_eq(aetask_client_checkout(c, &busy[i]), 0);
                aetask_checkout_set_error_handler(busy[i], on_refusal_error, &held);
                cr_assert_eq(aetask_checkout_call(busy[i], NULL, "sleep", args, on_refusal_reply, &held), 0);
        }
        json_object_put(args);
        test_run_for(event, 0.3);
        cr_assert_eq(count_children(srv.t.pid), 2);

        int refusals = log_count(&srv, "Refusing a connection");
        cr_assert_eq(aetask_client_checkout(c, &third), 0);
        aetask_checkout_set_error_handler(third, on_refusal_error, &r);
        cr_assert_eq(aetask_checkout_call(third, NULL, NULL, NULL, on_refusal_reply, &r), 0);
        double deadline = now_seconds() + 5;
        while (r.errors + r.replies == 0) {
                cr_assert_lt(now_seconds(), deadline);
                cr_assert_geq(sd_event_run(event, 50000), 0);
        }
        cr_assert_eq(r.errors, 1);
        cr_assert_eq(r.kind, AETASK_ERROR_REFUSED, "%s: %s", aetask_error_kind_to_string(r.kind), r.message);
        cr_assert(strstr(r.message, "worker limit"), "%s", r.message);
        log_wait_for(&srv, "Refusing a connection: all 2 workers are in use", refusals + 1, 5);
        aetask_checkout_unref(third);

        /* A client that wants more standby workers than the cap allows keeps
         * trying, backing off: a few attempts a second, not thousands. */
        refusals = log_count(&srv, "Refusing a connection");
        aetask_client_set_min_workers(c, 4);
        test_run_for(event, 2);
        int attempts = log_count(&srv, "Refusing a connection") - refusals;
        fprintf(stderr, "over the cap for 2 s: %d connection attempts refused\n", attempts);
        cr_assert_gt(attempts, 0);
        cr_assert_lt(attempts, 40, "%d reconnects in 2 s: the client does not back off", attempts);
        cr_assert_eq(count_children(srv.t.pid), 2, "the cap holds");

        /* The held checkouts finish, and the pool fills up to the cap. */
        deadline = now_seconds() + 10;
        while (held.replies + held.errors < 2) {
                cr_assert_lt(now_seconds(), deadline);
                cr_assert_geq(sd_event_run(event, 50000), 0);
        }
        cr_assert_eq(held.replies, 2);
        for (int i = 0; i < 2; i++)
                aetask_checkout_unref(busy[i]);
        aetask_client_unref(c);
        server_wait_settled(&srv, 10);
}

/* aetaskd --max-workers: the program's option reaches the server. */
Test(faults, aetaskd_max_workers) {
        char dir[] = "/tmp/aetask-cap-XXXXXX", path[128], address[160], reply[512];
        const char *aetaskd = getenv("AETASKD");
        int fds[3];

        cr_assert_not_null(aetaskd, "$AETASKD is not set");
        cr_assert_not_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/s.sock", dir);
        snprintf(address, sizeof(address), "unix:%s", path);
        pid_t pid = fork();
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY);
                dup2(null, STDERR_FILENO);
                execl(aetaskd, "aetaskd", "--handler", "echo", "--listen", address, "--max-workers", "1", NULL);
                _exit(127);
        }
        for (int i = 0; i < 200 && access(path, F_OK) < 0; i++)
                usleep(10000);
        usleep(50000);
        fds[0] = raw_connect(path, false);  /* the one worker */
        fds[1] = raw_connect(path, true);
        cr_assert_gt(raw_read_message(fds[1], reply, sizeof(reply), 5), 0);
        cr_assert(strstr(reply, "io.aetask.ServerBusy"), "%s", reply);
        cr_assert_geq(raw_wait_eof(fds[1], 5), 0, "a refused connection is closed");
        close(fds[1]);
        close(fds[0]);
        /* Once the worker has gone, there is room again. */
        usleep(200000);
        fds[2] = raw_connect(path, false);
        close(fds[2]);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        unlink(path);
        rmdir(dir);
}
