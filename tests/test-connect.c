/* How a client reaches its server: a socket it may not open fails its
 * checkouts at once with its own kind, a server not there yet is waited for,
 * and a client not attached to a loop says so instead of hanging.  The
 * permission test runs its client in a forked child that becomes nobody
 * without exec (the build tree may sit where nobody cannot enter). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

#define NOBODY 65534

typedef struct outcome {
        bool done;
        aetask_error_kind kind;
        char message[256];
} outcome;

static int on_outcome(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        outcome *o = userdata;

        o->done = true;
        o->kind = error ? error->kind : 0;
        snprintf(o->message, sizeof(o->message), "%s", error ? error->message : "");
        return 1;
}

static json_object *hello(void) {
        static json_object *args;
        if (!args) {
                args = json_object_new_array();
                json_object_array_add(args, json_object_new_string("hello"));
        }
        return args;
}


/* One echo call on a new checkout of C, run on E; the outcome must be a result. */
static void echo_once(aetask_client *c, sd_event *e) {
        aetask_checkout *co;
        outcome o = {};

        cr_assert_eq(aetask_client_checkout(c, &co), 0);
        cr_assert_eq(aetask_checkout_call(co, NULL, "echo", hello(), on_outcome, &o), 0);
        test_run_until(e, &o.done, 10);
        cr_assert_eq(o.kind, 0, "%s", o.message);
        aetask_checkout_unref(co);
}

TestSuite(connect, .fini = fixture_finish);

/* In a child that is nobody: one call with a 5 s timeout; writes the kind,
 * the seconds it took, and the message to OUT. */
static void child_call(const char *address, int out) {
        sd_event *e = NULL;
        aetask_client *c = NULL;
        aetask_checkout *co = NULL;
        outcome o = {};

        if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0) {
                dprintf(out, "-1 0 cannot become nobody: %s", strerror(errno));
                _exit(1);
        }
        double start = now_seconds();
        if (sd_event_new(&e) < 0 || aetask_client_new(&c, address) < 0 || aetask_client_attach_event(c, e, 0) < 0 ||
            aetask_client_set_timeout(c, 5 * 1000000ULL) < 0 || aetask_client_checkout(c, &co) < 0 ||
            aetask_checkout_call(co, NULL, "echo", hello(), on_outcome, &o) < 0)
                _exit(1);
        while (!o.done && sd_event_run(e, UINT64_MAX) >= 0)
                ;
        dprintf(out, "%d %.3f %s", (int) o.kind, now_seconds() - start, o.message);
        _exit(0);
}

Test(connect, permission_denied_fails_at_once_with_its_own_kind) {
        char buf[512] = "", expected[512];
        int fds[2];

        if (geteuid() != 0)
                cr_skip_test("needs root, to become nobody");
        test_server_start(&srv, NULL, NULL, NULL);
        cr_assert_eq(chmod(srv.dir, 0755), 0);
        cr_assert_eq(chmod(srv.path, 0600), 0);  /* root's: nobody may not connect */

        cr_assert_eq(pipe(fds), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                close(fds[0]);
                child_call(srv.address, fds[1]);
        }
        close(fds[1]);
        ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
        close(fds[0]);
        cr_assert_gt(n, 0, "the child said nothing");
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);

        int kind = -1;
        double seconds = 99;
        int used = 0;
        cr_assert_eq(sscanf(buf, "%d %lf %n", &kind, &seconds, &used), 2, "%s", buf);
        cr_assert_eq(kind, AETASK_ERROR_CONNECT, "got %s", buf);
        snprintf(expected, sizeof(expected), "connecting to %s failed: Permission denied", srv.address);
        cr_assert_str_eq(buf + used, expected);
        cr_assert_lt(seconds, 1.0, "took %.3f s", seconds);
        cr_assert_str_eq(aetask_error_kind_to_string(AETASK_ERROR_CONNECT), "connect");
}

Test(connect, a_server_not_there_yet_is_waited_for) {
        sd_event *e = NULL;
        aetask_client *c;
        aetask_checkout *co;
        outcome o = {};

        test_server_init(&srv);
        c = test_client_new(&srv, &e);
        cr_assert_eq(aetask_client_checkout(c, &co), 0);
        cr_assert_eq(aetask_checkout_call(co, NULL, "echo", hello(), on_outcome, &o), 0);
        test_run_for(e, 0.3);
        cr_assert(!o.done, "ENOENT is retried, not failed: %s", o.message);
        test_server_start(&srv, NULL, NULL, NULL);
        test_run_until(e, &o.done, 10);
        cr_assert_eq(o.kind, 0, "%s", o.message);
        aetask_checkout_unref(co);
        aetask_client_unref(c);
        sd_event_unref(e);
}

Test(connect, an_unattached_client_says_so_instead_of_hanging) {
        sd_event *e = NULL;
        aetask_client *c;
        aetask_checkout *co = NULL;
        outcome o = {};

        test_server_start(&srv, NULL, NULL, NULL);
        cr_assert_eq(aetask_client_new(&c, srv.address), 0);
        cr_assert_eq(aetask_client_checkout(c, &co), -ENXIO);
        cr_assert_null(co);
        cr_assert_null(aetask_client_get_event(c), "nothing attached it behind the caller's back");

        /* Attached, a checkout made, then detached: the client is unattached again. */
        cr_assert_eq(sd_event_new(&e), 0);
        cr_assert_eq(aetask_client_attach_event(c, e, 0), 0);
        cr_assert_eq(aetask_client_checkout(c, &co), 0);
        cr_assert_eq(aetask_client_detach_event(c), 1);
        cr_assert_eq(aetask_checkout_call(co, NULL, "echo", hello(), on_outcome, &o), -ENOTCONN);
        aetask_checkout_unref(co);
        co = NULL;
        cr_assert_eq(aetask_client_checkout(c, &co), -ENXIO);

        /* Attached to the program's own loop, it works there. */
        cr_assert_eq(aetask_client_attach_event(c, e, 0), 0);
        echo_once(c, e);
        aetask_client_unref(c);
        sd_event_unref(e);
}

Test(connect, handler_names_are_addresses) {
        sd_event *e = NULL;
        aetask_client *c = NULL;

        /* The server listens where the unit aetask@echo's socket would be. */
        test_server_init(&srv);
        snprintf(srv.path, sizeof(srv.path), "%s/echo.sock", srv.dir);
        snprintf(srv.address, sizeof(srv.address), "unix:%s", srv.path);
        test_server_start(&srv, NULL, NULL, NULL);

        cr_assert_eq(setenv("AETASK_RUNTIME_DIR", srv.dir, 1), 0);
        cr_assert_eq(aetask_client_new_handler(&c, "echo"), 0);
        cr_assert_eq(sd_event_new(&e), 0);
        cr_assert_eq(aetask_client_attach_event(c, e, 0), 0);
        echo_once(c, e);
        c = aetask_client_unref(c);

        /* Not handler names. */
        cr_assert_eq(aetask_client_new_handler(&c, ""), -EINVAL);
        cr_assert_eq(aetask_client_new_handler(&c, "../x"), -EINVAL);
        cr_assert_eq(aetask_client_new_handler(&c, "-x"), -EINVAL);
        cr_assert_eq(aetask_client_new_handler(&c, NULL), -EINVAL);
        cr_assert_null(c);

        /* Without the variable: the units' directory. */
        cr_assert_eq(unsetenv("AETASK_RUNTIME_DIR"), 0);
        cr_assert_eq(aetask_client_new_handler(&c, "bcrypt"), 0);
        aetask_client_unref(c);
        sd_event_unref(e);
}
