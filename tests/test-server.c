/* The server itself: the keep-alive pipe of a forked server, process titles,
 * lazy setup, the address forms it listens on, and how workers are
 * scheduled. */
#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "macro.h"

#define MIN(a, b) ((a) < (b) ? (a) : (b))

static char marker[128];

static int s_setup(aetask_worker *w) {
        /* Leaves a trace on disk, so the test can tell when setup ran. */
        int fd = open(marker, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0) {
                (void) !write(fd, "x", 1);
                close(fd);
        }
        return 0;
}

static int s_pid(aetask_worker *w, json_object *args, json_object **ret) {
        *ret = json_object_new_int(getpid());
        return 0;
}

/* The worker accessors, as a handler sees them: setup leaves userdata
 * that each call of that worker finds again. */
static char s_userdata_marker;

static int s_whoami(aetask_worker *w, json_object *args, json_object **ret) {
        if (!aetask_worker_get_userdata(w) &&
            aetask_worker_set_userdata(w, &s_userdata_marker) != NULL)
                return aetask_worker_raise(w, "set_userdata did not return the old value, NULL");
        *ret = json_object_new_object();
        json_object_object_add(*ret, "number", json_object_new_int((int) aetask_worker_get_number(w)));
        json_object_object_add(*ret, "handler", json_object_new_string(aetask_worker_get_handler_name(w)));
        json_object_object_add(*ret, "userdata", json_object_new_boolean(aetask_worker_get_userdata(w) == &s_userdata_marker));
        json_object_object_add(*ret, "pid", json_object_new_int(getpid()));
        return 0;
}

static int s_policy(aetask_worker *w, json_object *args, json_object **ret) {
        *ret = json_object_new_int(sched_getscheduler(0));
        return 0;
}

static const aetask_method s_methods[] = { { "pid", s_pid }, { "policy", s_policy }, { "whoami", s_whoami }, {} };
static const aetask_handler s_handler = {
        .abi_version = AETASK_HANDLER_ABI_VERSION,
        .name = "server-test",
        .setup = s_setup,
        .methods = s_methods,
};


static void finish(void) {
        fixture_finish();
        if (marker[0])
                unlink(marker);
}

TestSuite(server, .fini = finish);

static bool reply_seen;
static int reply_pid;

static int on_pid(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        reply_pid = json_object_get_int(result);
        reply_seen = true;
        return 0;
}

static void on_error(aetask_checkout *co, aetask_error_kind kind, const char *message, void *userdata) {
        cr_assert_fail("%s error: %s", aetask_error_kind_to_string(kind), message);
}

/* Calls METHOD on CO and waits for its answer (or error). */
static void call_and_wait(aetask_checkout *co, const char *method) {
        reply_seen = false;
        aetask_checkout_call(co, NULL, method, NULL, on_pid, NULL);
        test_run_until(event, &reply_seen, 10);
}

static int int_from(const char *address, const char *method) {
        aetask_checkout *co;
        aetask_client *c;
        sd_event *e;

        sd_event_new(&e);
        cr_assert_eq(aetask_client_new(&c, address), 0, "%s", address);
        aetask_client_set_error_handler(c, on_error, NULL);
        aetask_client_attach_event(c, e, 0);
        aetask_client_checkout(c, &co);
        reply_seen = false;
        cr_assert_eq(aetask_checkout_call(co, NULL, method, NULL, on_pid, NULL), 0);
        test_run_until(e, &reply_seen, 10);
        aetask_checkout_unref(co);
        aetask_client_unref(c);
        sd_event_unref(e);
        return reply_pid;
}

static int pid_from(const char *address) {
        return int_from(address, "pid");
}

/* The worker's scheduling policy, as the worker itself sees it (it is gone
 * once its client is). */
static int policy_from(const char *address) {
        return int_from(address, "policy");
}

static void read_file(const char *path, char *buf, size_t size) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, buf, size - 1) : -1;
        if (fd >= 0)
                close(fd);
        buf[n > 0 ? n : 0] = 0;
}

Test(server, setup_runs_lazily_before_the_first_call_not_at_connect) {
        char buf[16];

        snprintf(marker, sizeof(marker), "/tmp/aetask-setup-%d", (int) getpid());
        unlink(marker);
        fixture_start(&s_handler, NULL, NULL);
        aetask_client_set_min_workers(client, 2);
        test_run_for(event, 0.3);
        cr_assert_eq(access(marker, F_OK), -1, "no setup for hot-standby workers that took no call");

        aetask_checkout *co;
        aetask_client_checkout(client, &co);
        call_and_wait(co, "pid");
        call_and_wait(co, "pid");
        read_file(marker, buf, sizeof(buf));
        cr_assert_str_eq(buf, "x", "setup ran once, for the worker that took calls");
        aetask_checkout_unref(co);
}

static void named(aetask_server *s, void *userdata) {
        aetask_server_set_name(s, "pool-of-tests");
}

Test(server, processes_are_named_in_ps) {
        char path[64], cmdline[256];

        test_server_start(&srv, &s_handler, named, NULL);
        int worker = pid_from(srv.address);

        /* The title is written over the argv area of this process, which
         * criterion's "boxfort-worker" leaves short: it may be cut there.
         * tests/test-aetaskd.sh sees the whole title with aetaskd's argv. */
        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int) srv.pid);
        read_file(path, cmdline, sizeof(cmdline));
        cr_assert(strlen(cmdline) >= 14 && strncmp("pool-of-tests: server", cmdline, strlen(cmdline)) == 0,
                  "server title is '%s'", cmdline);
        snprintf(path, sizeof(path), "/proc/%d/comm", (int) srv.pid);
        read_file(path, cmdline, sizeof(cmdline));
        cr_assert(strncmp(cmdline, "pool-of-tests", 13) == 0, "comm is %s", cmdline);
        (void) worker;
}

Test(server, worker_titles_carry_their_number) {
        char path[64], cmdline[256];
        aetask_checkout *co;

        fixture_start(&s_handler, named, NULL);
        aetask_client_set_error_handler(client, on_error, NULL);
        aetask_client_checkout(client, &co);
        reply_seen = false;
        aetask_checkout_call(co, NULL, "pid", NULL, on_pid, NULL);
        test_run_until(event, &reply_seen, 10);
        snprintf(path, sizeof(path), "/proc/%d/cmdline", reply_pid);
        read_file(path, cmdline, sizeof(cmdline));
        cr_assert(strlen(cmdline) >= 14 && strncmp("pool-of-tests: worker ", cmdline, MIN(strlen(cmdline), 22U)) == 0,
                  "worker title is '%s'", cmdline);
        aetask_checkout_unref(co);
}

Test(server, a_forked_server_ends_when_its_parent_does) {
        int pipefd[2];
        pid_t child, server_pid = 0;

        test_server_init(&srv);
        cr_assert_eq(pipe(pipefd), 0);
        child = fork();
        if (child == 0) {
                /* A parent that forks a server, says its pid, and exits
                 * without closing anything: the kernel closes the pipe. */
                aetask_server *s;
                pid_t pid;
                aetask_server_new(&s);
                aetask_server_set_handler(s, &s_handler);
                aetask_server_listen(s, srv.address);
                aetask_server_fork(s, &pid, NULL);
                (void) !write(pipefd[1], &pid, sizeof(pid));
                _exit(0);
        }
        close(pipefd[1]);
        cr_assert_eq(read(pipefd[0], &server_pid, sizeof(server_pid)), (ssize_t) sizeof(server_pid));
        close(pipefd[0]);
        waitpid(child, NULL, 0);

        /* The server is not our child: watch /proc for it to go. */
        bool gone = false;
        for (int i = 0; i < 200 && !gone; i++) {
                char path[64];
                snprintf(path, sizeof(path), "/proc/%d/stat", (int) server_pid);
                char stat[256];
                read_file(path, stat, sizeof(stat));
                gone = !stat[0] || strstr(stat, ") Z ");
                usleep(10000);
        }
        cr_assert(gone, "the server %d outlived its parent", (int) server_pid);
}

Test(server, closing_the_keepalive_pipe_stops_the_server) {
        int status;

        test_server_start(&srv, &s_handler, NULL, NULL);
        pid_from(srv.address);
        close(srv.keepalive_fd);
        srv.keepalive_fd = -1;
        bool exited = false;
        for (int i = 0; i < 200 && !exited; i++) {
                exited = waitpid(srv.pid, &status, WNOHANG) == srv.pid;
                usleep(10000);
        }
        cr_assert(exited, "the server did not exit");
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        srv.pid = 0;
}

static char listen_address[128];

static void listen_extra(aetask_server *s, void *userdata) {
        cr_assert_eq(aetask_server_listen(s, listen_address), 0, "listen on %s", listen_address);
}

static int n_whoami;
static json_object *whoami[2];

static int on_whoami(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        json_object_put(whoami[n_whoami % 2]);
        whoami[n_whoami++ % 2] = json_object_get(result);
        return 0;
}

static int field(json_object *o, const char *key) {
        json_object *v;
        cr_assert(json_object_object_get_ex(o, key, &v), "no %s in %s", key, json_object_to_json_string(o));
        return json_object_get_int(v);
}

/* Two checkouts at once: two workers, numbered 1 and 2, each naming its
 * handler, and finding in its second call the userdata its first set. */
Test(server, worker_accessors_in_real_workers) {
        aetask_checkout *a, *b;

        fixture_start(&s_handler, NULL, NULL);
        aetask_client_set_error_handler(client, on_error, NULL);
        cr_assert_eq(aetask_client_checkout(client, &a), 0);
        cr_assert_eq(aetask_client_checkout(client, &b), 0);
        for (int round = 0; round < 2; round++) {
                n_whoami = 0;
                cr_assert_eq(aetask_checkout_call(a, NULL, "whoami", NULL, on_whoami, NULL), 0);
                cr_assert_eq(aetask_checkout_call(b, NULL, "whoami", NULL, on_whoami, NULL), 0);
                for (int i = 0; i < 200 && n_whoami < 2; i++)
                        test_run_for(event, 0.01);
                cr_assert_eq(n_whoami, 2);
                cr_assert_neq(field(whoami[0], "pid"), field(whoami[1], "pid"), "two workers");
                cr_assert_eq(field(whoami[0], "number") + field(whoami[1], "number"), 3, "numbered 1 and 2: %s %s",
                             json_object_to_json_string(whoami[0]), json_object_to_json_string(whoami[1]));
                for (int i = 0; i < 2; i++) {
                        json_object *h;
                        json_object_object_get_ex(whoami[i], "handler", &h);
                        cr_assert_str_eq(json_object_get_string(h), "server-test");
                        cr_assert_eq(field(whoami[i], "userdata"), 1, "the worker's userdata is its own");
                }
        }
        json_object_put(whoami[0]);
        json_object_put(whoami[1]);
        aetask_checkout_unref(a);
        aetask_checkout_unref(b);
}

Test(server, listens_on_abstract_unix_sockets) {
        snprintf(listen_address, sizeof(listen_address), "unix:@aetask-test-%d", (int) getpid());
        test_server_start(&srv, &s_handler, listen_extra, NULL);
        cr_assert_gt(pid_from(listen_address), 0);
}

Test(server, listens_on_tcp) {
        snprintf(listen_address, sizeof(listen_address), "tcp:127.0.0.1:%d", 20000 + getpid() % 20000);
        test_server_start(&srv, &s_handler, listen_extra, NULL);
        cr_assert_gt(pid_from(listen_address), 0);
}

Test(server, a_live_socket_is_not_taken_over) {
        aetask_server *s;

        test_server_start(&srv, &s_handler, NULL, NULL);
        aetask_server_new(&s);
        cr_assert_eq(aetask_server_listen(s, srv.address), -EADDRINUSE);
        aetask_server_free(s);
}

/* ---- The log level of a forked server --------------------------------- */

static int q_say(aetask_worker *w, json_object *args, json_object **ret) {
        aetask_log_info(w, "handler says hello");
        aetask_log_warning(w, "handler warns");
        return 0;
}

static int q_die(aetask_worker *w, json_object *args, json_object **ret) {
        _exit(3);  /* the server says so, at warning */
}

static const aetask_method q_methods[] = { { "say", q_say }, { "die", q_die }, {} };
static const aetask_handler q_handler = {
        .abi_version = AETASK_HANDLER_ABI_VERSION,
        .name = "talker",
        .methods = q_methods,
};

static void quiet(aetask_server *s, void *userdata) {
        cr_assert_eq(aetask_server_set_log_level(s, 8), -EINVAL);
        cr_assert_eq(aetask_server_set_log_level(s, LOG_ERR), 0);
}

static void ignore_error(aetask_checkout *co, aetask_error_kind kind, const char *message, void *userdata) {
        reply_seen = true;
}

/* What a server forked with CONFIGURE writes to stderr while a worker logs
 * and another dies; without a journal, so that it all goes to stderr. */
static void stderr_of_server(test_server_configure_t configure, char *buf, size_t size) {
        char path[64];
        aetask_checkout *co;
        int saved = dup(STDERR_FILENO);

        snprintf(path, sizeof(path), "/tmp/aetask-stderr-%d", (int) getpid());
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        cr_assert_geq(fd, 0);
        setenv("AETASK_JOURNAL_SOCKET", "/nonexistent/journal", 1);
        unsetenv("AETASK_DEBUG");
        dup2(fd, STDERR_FILENO);
        test_server_start(&srv, &q_handler, configure, NULL);
        dup2(saved, STDERR_FILENO);
        close(saved);

        client = test_client_new(&srv, &event);
        aetask_client_set_error_handler(client, ignore_error, NULL);
        aetask_client_checkout(client, &co);
        call_and_wait(co, "say");
        call_and_wait(co, "die");
        aetask_checkout_unref(co);
        test_run_for(event, 0.2);
        test_server_stop(&srv);

        ssize_t n = pread(fd, buf, size - 1, 0);
        buf[n > 0 ? n : 0] = 0;
        close(fd);
        unlink(path);
}

Test(server, a_forked_server_talks_on_stderr_at_the_default_level) {
        char out[4096];

        stderr_of_server(NULL, out, sizeof(out));
        cr_assert(strstr(out, "handler says hello"), "[%s]", out);
        cr_assert(strstr(out, "exited with status 3"), "[%s]", out);
}

Test(server, a_forked_server_at_log_level_err_is_quiet) {
        char out[4096];

        stderr_of_server(quiet, out, sizeof(out));
        cr_assert_str_eq(out, "");
}

/* The library says nothing of a module it cannot load: the caller gets the
 * reason as a string, and a success clears it. */
Test(server, load_handler_failures_are_returned_not_logged) {
        aetask_server *s = NULL;
        int saved = dup(STDERR_FILENO), pipe_fds[2];
        char out[256];

        cr_assert_eq(aetask_server_new(&s), 0);
        cr_assert_null(aetask_server_get_load_error(s));
        cr_assert_eq(pipe2(pipe_fds, O_CLOEXEC), 0);
        dup2(pipe_fds[1], STDERR_FILENO);
        int r1 = aetask_server_load_handler(s, "no-such-handler", NULL);
        int r2 = aetask_server_load_handler(s, "bad/name", NULL);
        dup2(saved, STDERR_FILENO);
        close(saved);
        close(pipe_fds[1]);
        ssize_t n = read(pipe_fds[0], out, sizeof(out) - 1);
        cr_assert_eq(n, 0, "the library wrote to stderr: %.*s", (int) MAX(n, 0), out);
        close(pipe_fds[0]);

        cr_assert_eq(r1, -ENOENT);
        cr_assert_eq(r2, -EINVAL);
        cr_assert_str_eq(aetask_server_get_load_error(s), "Invalid handler name 'bad/name'");
        cr_assert_eq(aetask_server_load_handler(s, "no-such-handler", NULL), -ENOENT);
        cr_assert(strncmp(aetask_server_get_load_error(s), "Failed to load handler 'no-such-handler': ", 42) == 0,
                  "%s", aetask_server_get_load_error(s));
        cr_assert_eq(aetask_server_load_handler(s, "echo", NULL), 0);
        cr_assert_null(aetask_server_get_load_error(s));
        cr_assert_null(aetask_server_get_load_error(NULL));
        aetask_server_free(s);
}

/* ---- How workers are scheduled --------------------------------------------- */

static void scheduling_extra(aetask_server *s, void *userdata) {
        const aetask_worker_scheduling *scheduling = userdata;

        cr_assert_eq(aetask_server_set_worker_scheduling(s, *scheduling), 0);
}

static void spares_extra(aetask_server *s, void *userdata) {
        cr_assert_eq(aetask_server_set_spare_workers(s, 1), 0);
}

Test(server, workers_run_at_sched_batch_and_the_server_does_not) {
        test_server_start(&srv, &s_handler, NULL, NULL);
        cr_assert_eq(policy_from(srv.address), SCHED_BATCH);
        cr_assert_eq(sched_getscheduler(srv.pid), SCHED_OTHER);
}

Test(server, spares_run_at_sched_batch_too) {
        test_server_start(&srv, &s_handler, spares_extra, NULL);
        cr_assert_eq(policy_from(srv.address), SCHED_BATCH);
}

Test(server, inherit_keeps_the_servers_policy) {
        static const aetask_worker_scheduling inherit = AETASK_WORKER_SCHEDULING_INHERIT;

        test_server_start(&srv, &s_handler, scheduling_extra, (void *) &inherit);
        cr_assert_eq(policy_from(srv.address), SCHED_OTHER);
}

/* As a unit's CPUSchedulingPolicy=idle would: the server inherits it from
 * this process, and so do its workers. */
Test(server, a_policy_the_server_was_given_stands) {
        struct sched_param none = {};

        cr_assert_eq(sched_setscheduler(0, SCHED_IDLE, &none), 0);
        test_server_start(&srv, &s_handler, NULL, NULL);
        cr_assert_eq(policy_from(srv.address), SCHED_IDLE);
}

Test(server, an_unknown_scheduling_is_refused) {
        aetask_server *s = NULL;

        cr_assert_eq(aetask_server_new(&s), 0);
        cr_assert_eq(aetask_server_set_worker_scheduling(s, _AETASK_WORKER_SCHEDULING_MAX), -EINVAL);
        cr_assert_eq(aetask_server_set_worker_scheduling(s, (aetask_worker_scheduling) -1), -EINVAL);
        cr_assert_eq(aetask_server_set_worker_scheduling(NULL, AETASK_WORKER_SCHEDULING_BATCH), -EINVAL);
        aetask_server_free(s);
}
