/* Test helpers: real servers on temporary sockets, and loop running. */
#include "helpers.h"
#include "time-util.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void test_server_init(test_server *t) {
        memset(t, 0, sizeof(*t));
        snprintf(t->dir, sizeof(t->dir), "/tmp/aetask-test-XXXXXX");
        cr_assert_not_null(mkdtemp(t->dir), "mkdtemp: %s", strerror(errno));
        snprintf(t->path, sizeof(t->path), "%s/server.sock", t->dir);
        snprintf(t->address, sizeof(t->address), "unix:%s", t->path);
        t->keepalive_fd = -1;
}

void test_server_start(test_server *t, const aetask_handler *handler,
                       test_server_configure_t configure, void *userdata) {
        aetask_server *s = NULL;
        int r;

        if (!t->dir[0])
                test_server_init(t);

        r = aetask_server_new(&s);
        cr_assert_eq(r, 0);
        if (handler)
                r = aetask_server_set_handler(s, handler);
        else
                r = aetask_server_load_handler(s, "echo", NULL);
        cr_assert_eq(r, 0, "loading handler: %s", strerror(-r));
        if (configure)
                configure(s, userdata);
        r = aetask_server_listen(s, t->address);
        cr_assert_eq(r, 0, "listen on %s: %s", t->address, strerror(-r));
        r = aetask_server_fork(s, &t->pid, &t->keepalive_fd);
        cr_assert_eq(r, 0, "fork server: %s", strerror(-r));
        aetask_server_free(s);
}

void test_server_stop(test_server *t) {
        int status;

        if (t->pid <= 0)
                return;
        if (t->keepalive_fd >= 0)
                close(t->keepalive_fd);
        t->keepalive_fd = -1;
        /* Workers of checkouts still held would keep it waiting: give it a
         * moment, then make sure. */
        for (int i = 0; i < 500; i++) {
                if (waitpid(t->pid, &status, WNOHANG) == t->pid) {
                        t->pid = 0;
                        return;
                }
                usleep(10000);
        }
        kill(t->pid, SIGKILL);
        waitpid(t->pid, &status, 0);
        t->pid = 0;
}

void test_server_cleanup(test_server *t) {
        test_server_stop(t);
        if (t->dir[0]) {
                unlink(t->path);
                rmdir(t->dir);
        }
}

aetask_client *test_client_new(test_server *t, sd_event **ret_event) {
        aetask_client *c = NULL;
        sd_event *e = NULL;
        int r;

        r = sd_event_new(&e);
        cr_assert_eq(r, 0);
        r = aetask_client_new(&c, t->address);
        cr_assert_eq(r, 0, "client for %s: %s", t->address, strerror(-r));
        r = aetask_client_attach_event(c, e, 0);
        cr_assert_eq(r, 0);
        *ret_event = e;
        return c;
}

double now_seconds(void) {
        return (double) now_usec(CLOCK_MONOTONIC) / 1e6;
}

void test_run_until(sd_event *event, const bool *done, double max_seconds) {
        double deadline = now_seconds() + max_seconds;

        while (!*done) {
                cr_assert_lt(now_seconds(), deadline, "condition not reached within %.1f s", max_seconds);
                int r = sd_event_run(event, 50000);
                cr_assert_geq(r, 0, "sd_event_run: %s", strerror(-r));
        }
}

void test_run_for(sd_event *event, double seconds) {
        double deadline = now_seconds() + seconds;

        while (now_seconds() < deadline) {
                int r = sd_event_run(event, (uint64_t) ((deadline - now_seconds()) * 1e6) + 1);
                cr_assert_geq(r, 0);
        }
}

