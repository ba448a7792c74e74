/* The client library against real forked servers: every behaviour of the
 * seed manual's client and server that does not concern logging or units. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

/* ---- A handler that counts what happens in its worker ----------------- */

static int n_setup, n_done;

static int t_setup(aetask_worker *w) {
        n_setup++;
        return 0;
}

static int t_checkout_done(aetask_worker *w) {
        n_done++;
        return 0;
}

static int t_counts(aetask_worker *w, json_object *args, json_object **ret) {
        *ret = json_object_new_object();
        json_object_object_add(*ret, "setup", json_object_new_int(n_setup));
        json_object_object_add(*ret, "done", json_object_new_int(n_done));
        json_object_object_add(*ret, "pid", json_object_new_int(getpid()));
        return 0;
}

static int t_pid(aetask_worker *w, json_object *args, json_object **ret) {
        *ret = json_object_new_int(getpid());
        return 0;
}

static int t_echo(aetask_worker *w, json_object *args, json_object **ret) {
        *ret = json_object_get(json_object_array_get_idx(args, 0));
        return 0;
}

static int t_sleep(aetask_worker *w, json_object *args, json_object **ret) {
        usleep((useconds_t) (json_object_get_double(json_object_array_get_idx(args, 0)) * 1e6));
        return 0;
}

static int t_fail(aetask_worker *w, json_object *args, json_object **ret) {
        return aetask_worker_raise(w, "%s", json_object_get_string(json_object_array_get_idx(args, 0)));
}

static int t_exit(aetask_worker *w, json_object *args, json_object **ret) {
        _exit(3);
}

static int t_bad_utf8(aetask_worker *w, json_object *args, json_object **ret) {
        *ret = json_object_new_string("caf\xe9");  /* Latin-1, not UTF-8 */
        return 0;
}

static int t_catch_all(aetask_worker *w, json_object *args, json_object **ret) {
        *ret = json_object_get(args);
        return 0;
}

static const aetask_method t_methods[] = {
        { "counts", t_counts }, { "pid", t_pid }, { "echo", t_echo }, { "sleep", t_sleep },
        { "fail", t_fail }, { "exit", t_exit }, { "bad_utf8", t_bad_utf8 }, {}
};

static const aetask_handler counting_handler = {
        .abi_version = AETASK_HANDLER_ABI_VERSION,
        .name = "counting",
        .setup = t_setup,
        .methods = t_methods,
        .call = t_catch_all,
        .checkout_done = t_checkout_done,
};

static int t_bad_setup(aetask_worker *w) {
        return aetask_worker_raise(w, "cannot open the database");
}

static const aetask_handler bad_setup_handler = {
        .abi_version = AETASK_HANDLER_ABI_VERSION,
        .name = "bad-setup",
        .setup = t_bad_setup,
        .methods = t_methods,
};

static int t_done_fails(aetask_worker *w) {
        return aetask_worker_raise(w, "cannot roll back");
}

static const aetask_handler failing_done_handler = {
        .abi_version = AETASK_HANDLER_ABI_VERSION,
        .name = "failing-done",
        .methods = t_methods,
        .checkout_done = t_done_fails,
};

static const aetask_handler no_catch_all_handler = {
        .abi_version = AETASK_HANDLER_ABI_VERSION,
        .name = "no-catch-all",
        .methods = t_methods,
};

/* ---- Collecting results ------------------------------------------------ */

typedef struct collect {
        int replies, errors, expect;
        bool done;
        aetask_error_kind kind;
        char message[256];
        json_object *last;
} collect;

static void collect_check(collect *c) {
        if (c->replies + c->errors >= (c->expect ?: 1))
                c->done = true;
}

static int on_reply(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        collect *c = userdata;
        c->replies++;
        json_object_put(c->last);
        c->last = json_object_get(result);
        collect_check(c);
        return 0;
}

static void on_error(aetask_checkout *co, aetask_error_kind kind, const char *message, void *userdata) {
        collect *c = userdata;
        cr_assert_not_null(c, "unexpected %s error: %s", aetask_error_kind_to_string(kind), message);
        c->errors++;
        c->kind = kind;
        snprintf(c->message, sizeof(c->message), "%s", message);
        collect_check(c);
}


static void start(const aetask_handler *h, test_server_configure_t configure, void *userdata) {
        fixture_start(h, configure, userdata);
        aetask_client_set_error_handler(client, on_error, NULL);
}

/* One call on a fresh checkout; returns the result (a new reference). */
static json_object *call_once(aetask_checkout *co, const char *method, json_object *args, collect *c) {
        json_object *previous = c->last;
        *c = (collect) {};
        json_object_put(previous);
        aetask_checkout_set_error_handler(co, on_error, c);
        cr_assert_eq(aetask_checkout_call(co, NULL, method, args, on_reply, c), 0);
        test_run_until(event, &c->done, 10);
        return json_object_get(c->last);
}

static int call_pid(aetask_checkout *co) {
        collect c = {};
        json_object *r = call_once(co, "pid", NULL, &c);
        cr_assert_eq(c.replies, 1, "pid call failed: %s", c.message);
        int pid = json_object_get_int(r);
        json_object_put(r);
        json_object_put(c.last);
        c.last = NULL;
        return pid;
}

static aetask_checkout *checkout(void) {
        aetask_checkout *co;
        cr_assert_eq(aetask_client_checkout(client, &co), 0);
        return co;
}

TestSuite(client, .fini = fixture_finish);

Test(client, arguments_and_unicode_round_trip) {
        const char *text = "[\"h\\u00e9llo\",\"\\ud834\\uddda\",{\"nested\":[1,2.5,null,true,false]},"
                           "12345678901234,-7,\"\",\"tab\\tquote\\\"nul\\u0000end\"]";
        json_object *args = json_tokener_parse(text);
        collect c = {};

        start(&counting_handler, NULL, NULL);
        aetask_checkout *co = checkout();
        json_object *r = call_once(co, NULL, args, &c);
        cr_assert(json_object_equal(args, r), "sent %s, got %s", text, json_object_to_json_string(r));
        cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(r, 1)), "\xf0\x9d\x87\x9a",
                         "U+1D1DA arrives as its four UTF-8 bytes");
        json_object_put(r);
        json_object_put(c.last);
        c.last = NULL;
        json_object_put(args);
        aetask_checkout_unref(co);
}

Test(client, named_methods_and_the_catch_all) {
        collect c = {};
        json_object *args = json_tokener_parse("[\"x\",2]");

        start(NULL, NULL, NULL);  /* the echo module, loaded by name */
        aetask_checkout *co = checkout();
        json_object *r = call_once(co, "echo", args, &c);
        cr_assert_str_eq(json_object_get_string(r), "x");
        json_object_put(r);
        r = call_once(co, NULL, args, &c);
        cr_assert(json_object_equal(r, args), "the catch-all returns its arguments");
        json_object_put(r);
        json_object_put(c.last);
        c.last = NULL;
        json_object_put(args);
        aetask_checkout_unref(co);
}

Test(client, handler_errors_reach_the_error_handler_and_the_checkout_stays_usable) {
        collect c = {};
        json_object *args = json_tokener_parse("[\"it broke\"]");

        start(&counting_handler, NULL, NULL);
        aetask_checkout *co = checkout();
        json_object_put(call_once(co, "fail", args, &c));
        cr_assert_eq(c.errors, 1);
        cr_assert_eq(c.kind, AETASK_ERROR_HANDLER);
        cr_assert_str_eq(c.message, "it broke");
        cr_assert_eq(aetask_checkout_get_error(co, NULL, NULL), -ENODATA, "a handler error is not fatal");
        cr_assert_gt(call_pid(co), 0, "the checkout still works after a handler error");
        json_object_put(args);
        aetask_checkout_unref(co);
}

Test(client, a_result_that_is_not_utf8_is_a_handler_error_and_the_checkout_stays_usable) {
        collect c = {};

        start(&counting_handler, NULL, NULL);
        aetask_checkout *co = checkout();
        int pid = call_pid(co);
        json_object_put(call_once(co, "bad_utf8", NULL, &c));
        cr_assert_eq(c.errors, 1);
        cr_assert_eq(c.kind, AETASK_ERROR_HANDLER, "a %s error: %s", aetask_error_kind_to_string(c.kind), c.message);
        cr_assert(strncmp(c.message, "the result cannot be sent: ", 27) == 0, "message: %s", c.message);
        cr_assert_eq(call_pid(co), pid, "the same worker goes on serving the checkout");
        aetask_checkout_unref(co);
}

Test(client, unknown_methods_and_missing_catch_all_are_clear_errors) {
        collect c = {};

        start(&no_catch_all_handler, NULL, NULL);
        aetask_checkout *co = checkout();
        call_once(co, "no_such_method", NULL, &c);
        cr_assert_eq(c.kind, AETASK_ERROR_HANDLER);
        cr_assert_str_eq(c.message, "unknown method 'no_such_method'");
        call_once(co, NULL, NULL, &c);
        cr_assert_eq(c.errors, 1);
        cr_assert(strstr(c.message, "without a method name"), "%s", c.message);
        aetask_checkout_unref(co);
}

Test(client, setup_runs_once_per_worker_and_checkout_done_after_each_checkout) {
        collect c = {};

        start(&counting_handler, NULL, NULL);
        aetask_client_set_max_workers(client, 1);
        int first_pid = 0;
        for (int i = 0; i < 3; i++) {
                aetask_checkout *co = checkout();
                json_object *r = call_once(co, "counts", NULL, &c);
                json_object_put(call_once(co, "counts", NULL, &c));
                json_object *v;
                json_object_object_get_ex(r, "setup", &v);
                cr_assert_eq(json_object_get_int(v), 1, "setup ran once, before the first call");
                json_object_object_get_ex(r, "done", &v);
                cr_assert_eq(json_object_get_int(v), i, "checkout_done ran after each earlier checkout");
                json_object_object_get_ex(r, "pid", &v);
                if (i == 0)
                        first_pid = json_object_get_int(v);
                cr_assert_eq(json_object_get_int(v), first_pid, "the same worker served every checkout");
                json_object_put(r);
                json_object_put(c.last);
                c.last = NULL;
                aetask_checkout_unref(co);
        }
}

Test(client, setup_failure_is_a_setup_exception) {
        collect c = {};

        start(&bad_setup_handler, NULL, NULL);
        aetask_checkout *co = checkout();
        call_once(co, "pid", NULL, &c);
        cr_assert_eq(c.errors, 1);
        cr_assert_eq(c.kind, AETASK_ERROR_SETUP);
        cr_assert_str_eq(c.message, "setup exception: cannot open the database");
        aetask_checkout_unref(co);
}

static int order[16], n_order;

static int on_ordered_reply(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        order[n_order++] = json_object_get_int(result);
        *(bool *) userdata = n_order == 5;
        return 0;
}

Test(client, checkouts_are_served_first_come_first_served) {
        aetask_checkout *cos[5];
        bool done = false;

        start(&counting_handler, NULL, NULL);
        aetask_client_set_max_workers(client, 1);
        for (int i = 0; i < 5; i++) {
                json_object *args = json_object_new_array();
                json_object_array_add(args, json_object_new_int(i));
                cos[i] = checkout();
                cr_assert_eq(aetask_checkout_call(cos[i], NULL, "echo", args, on_ordered_reply, &done), 0);
                json_object_put(args);
                /* Released as soon as its call is done: the next one gets the worker. */
                aetask_checkout_unref(cos[i]);
        }
        test_run_until(event, &done, 10);
        for (int i = 0; i < 5; i++)
                cr_assert_eq(order[i], i, "checkout %d was served in position %d", order[i], i);
}

static int surge_pids[100], n_surge;

static int on_surge_reply(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        surge_pids[n_surge++] = json_object_get_int(result);
        *(bool *) userdata = n_surge == 100;
        return 0;
}

Test(client, a_surge_of_100_checkouts_over_5_workers_is_all_answered) {
        bool done = false;
        unsigned workers, idle, queued;

        start(&counting_handler, NULL, NULL);
        aetask_client_set_min_workers(client, 0);
        aetask_client_set_max_workers(client, 5);
        for (int i = 0; i < 100; i++) {
                aetask_checkout *co = checkout();
                json_object *args = json_tokener_parse("[0.01]");
                cr_assert_eq(aetask_checkout_call(co, NULL, "sleep", args, NULL, NULL), 0);
                cr_assert_eq(aetask_checkout_call(co, NULL, "pid", NULL, on_surge_reply, &done), 0);
                json_object_put(args);
                aetask_checkout_unref(co);
        }
        aetask_client_get_pool(client, &workers, &idle, &queued);
        cr_assert_leq(workers, 5);
        cr_assert_geq(queued, 95);
        test_run_until(event, &done, 30);

        int distinct = 0;
        for (int i = 0; i < 100; i++) {
                bool seen = false;
                for (int j = 0; j < i; j++)
                        seen = seen || surge_pids[j] == surge_pids[i];
                distinct += !seen;
        }
        cr_assert_leq(distinct, 5, "at most max_workers workers: %d", distinct);
        aetask_client_get_pool(client, &workers, &idle, &queued);
        cr_assert_eq(queued, 0);
        cr_assert_leq(workers, 5);
}

Test(client, a_checkout_times_out_while_the_server_is_absent) {
        collect c = {};

        test_server_init(&srv);
        client = test_client_new(&srv, &event);
        aetask_checkout *co = checkout();
        aetask_checkout_set_timeout(co, 1000000);  /* "1 second" */
        aetask_checkout_set_error_handler(co, on_error, &c);
        double t0 = now_seconds();
        cr_assert_eq(aetask_checkout_call(co, NULL, "pid", NULL, on_reply, &c), 0);
        test_run_until(event, &c.done, 5);
        double elapsed = now_seconds() - t0;
        cr_assert_eq(c.kind, AETASK_ERROR_TIMEOUT);
        cr_assert(strncmp(c.message, "timed out after 1 second (no worker: connecting to unix:", 55) == 0 &&
                  strstr(c.message, "failed: No such file or directory)"),
                  "the message says why no worker came: %s", c.message);
        cr_assert(elapsed >= 0.95 && elapsed < 2.5, "timed out after %.2f s", elapsed);
        aetask_checkout_unref(co);
}

/* TCP on the loopback: connect() returns EINPROGRESS and the refusal
 * comes later, on the socket.  The client backs off and retries, and the
 * timeout says why no worker came; a server that comes up is then used. */
Test(client, a_tcp_connect_refused_after_it_started_is_retried_and_explained) {
        collect c = {};
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);

        /* A port that was free a moment ago, and nobody listens on now. */
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(fd, 0);
        cr_assert_eq(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        cr_assert_eq(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
        close(fd);
        test_server_init(&srv);
        snprintf(srv.address, sizeof(srv.address), "tcp:127.0.0.1:%u", ntohs(sa.sin_port));
        client = test_client_new(&srv, &event);

        aetask_checkout *co = checkout();
        aetask_checkout_set_timeout(co, 500000);
        aetask_checkout_set_error_handler(co, on_error, &c);
        cr_assert_eq(aetask_checkout_call(co, NULL, "pid", NULL, on_reply, &c), 0);
        test_run_until(event, &c.done, 5);
        cr_assert_eq(c.kind, AETASK_ERROR_TIMEOUT);
        char expected[320];
        snprintf(expected, sizeof(expected), "timed out after 0.5 seconds (no worker: connecting to %s failed: "
                 "Connection refused)", srv.address);
        cr_assert_str_eq(c.message, expected);
        aetask_checkout_unref(co);

        test_server_start(&srv, &counting_handler, NULL, NULL);
        co = checkout();
        cr_assert_gt(call_pid(co), 0, "the retries reach the server once it listens");
        aetask_checkout_unref(co);
}

Test(client, calls_queued_before_the_server_starts_are_answered_once_it_does) {
        collect c = {};

        test_server_init(&srv);
        client = test_client_new(&srv, &event);
        aetask_checkout *co = checkout();
        aetask_checkout_set_error_handler(co, on_error, &c);
        cr_assert_eq(aetask_checkout_call(co, NULL, "pid", NULL, on_reply, &c), 0);
        test_run_for(event, 0.3);
        cr_assert_eq(c.replies + c.errors, 0);
        test_server_start(&srv, &counting_handler, NULL, NULL);
        test_run_until(event, &c.done, 10);
        cr_assert_eq(c.replies, 1, "error instead: %s", c.message);
        json_object_put(c.last);
        c.last = NULL;
        aetask_checkout_unref(co);
}

Test(client, a_call_in_progress_times_out_and_its_worker_is_stopped) {
        collect c = {};

        start(&counting_handler, NULL, NULL);
        aetask_checkout *co = checkout();
        int pid = call_pid(co);
        aetask_checkout_set_timeout(co, 300000);
        json_object *args = json_tokener_parse("[5]");
        double t0 = now_seconds();
        call_once(co, "sleep", args, &c);
        cr_assert_eq(c.kind, AETASK_ERROR_TIMEOUT);
        cr_assert_str_eq(c.message, "timed out after 0.3 seconds");
        cr_assert_lt(now_seconds() - t0, 2);
        /* The server notices the client left a busy worker and stops it. */
        bool gone = false;
        for (int i = 0; i < 100 && !gone; i++) {
                gone = kill(pid, 0) < 0;
                usleep(20000);
        }
        cr_assert(gone, "worker %d still running after its checkout timed out", pid);
        json_object_put(args);
        aetask_checkout_unref(co);
}

static int chain_pids[2];
static aetask_checkout *chain_next;

static int on_chain_second(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        chain_pids[1] = json_object_get_int(result);
        *(bool *) userdata = true;
        return 0;
}

static int on_chain_first(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        chain_pids[0] = json_object_get_int(result);
        /* The next checkout first, then this one's release: the order a
         * caller writes them in does not matter. */
        cr_assert_eq(aetask_client_checkout(client, &chain_next), 0);
        cr_assert_eq(aetask_checkout_call(chain_next, NULL, "pid", NULL, on_chain_second, userdata), 0);
        aetask_checkout_unref(co);
        return 0;
}

Test(client, a_checkout_made_in_a_reply_callback_gets_the_worker_that_callback_released) {
        bool done = false;

        start(&counting_handler, NULL, NULL);
        test_run_for(event, 0.3);  /* both standby workers connected and idle */
        aetask_checkout *co = checkout();
        cr_assert_eq(aetask_checkout_call(co, NULL, "pid", NULL, on_chain_first, &done), 0);
        test_run_until(event, &done, 10);
        cr_assert_eq(chain_pids[1], chain_pids[0], "the released worker (its Done and the next call in one write)");
        chain_next = aetask_checkout_unref(chain_next);
}

typedef struct timed {
        int replies, errors;
        aetask_error_kind kind;
        double when;
} timed;

static int on_timed_reply(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        ((timed *) userdata)->replies++;
        return 0;
}

static void on_timed_error(aetask_checkout *co, aetask_error_kind kind, const char *message, void *userdata) {
        timed *t = userdata;
        t->errors++;
        t->kind = kind;
        t->when = now_seconds();
}

static aetask_checkout *timed_checkout(timed *t, uint64_t timeout_usec, double sleep_seconds, int n_calls) {
        aetask_checkout *co = checkout();
        json_object *args = json_object_new_array();

        json_object_array_add(args, json_object_new_double(sleep_seconds));
        aetask_checkout_set_timeout(co, timeout_usec);
        aetask_checkout_set_error_handler(co, on_timed_error, t);
        for (int i = 0; i < n_calls; i++)
                cr_assert_eq(aetask_checkout_call(co, NULL, "sleep", args, on_timed_reply, t), 0);
        json_object_put(args);
        return co;
}

Test(client, timeouts_run_per_call_and_expire_in_deadline_order) {
        timed steady = {}, short_one = {}, long_one = {}, shortened = {};

        start(&counting_handler, NULL, NULL);
        aetask_client_set_min_workers(client, 4);
        test_run_for(event, 0.3);  /* the workers are forked */

        /* One checkout whose calls take longer in all than its timeout, but
         * each well within it: the timeout runs per call. */
        aetask_checkout *a = timed_checkout(&steady, 400000, 0.1, 6);
        /* A shorter timeout set on a checkout filed under a longer one. */
        aetask_checkout *d = timed_checkout(&shortened, 5000000, 0, 1);
        for (double t = now_seconds(); shortened.replies < 1;) {
                cr_assert_lt(now_seconds() - t, 5, "the first call of the shortened checkout is answered");
                cr_assert_geq(sd_event_run(event, 50000), 0);
        }
        double t0 = now_seconds();
        aetask_checkout *c = timed_checkout(&long_one, 600000, 5, 1);
        aetask_checkout *b = timed_checkout(&short_one, 200000, 5, 1);
        aetask_checkout_set_timeout(d, 300000);
        json_object *args = json_tokener_parse("[5]");
        cr_assert_eq(aetask_checkout_call(d, NULL, "sleep", args, on_timed_reply, &shortened), 0);
        json_object_put(args);

        bool done = false;
        while (!done) {
                cr_assert_lt(now_seconds() - t0, 5, "the timeouts fired in time");
                cr_assert_geq(sd_event_run(event, 50000), 0);
                done = steady.replies + steady.errors == 6 && short_one.errors && long_one.errors && shortened.errors;
        }
        cr_assert_eq(steady.errors, 0, "six calls of 0.1 s each within a 0.4 s timeout: %s",
                     aetask_error_kind_to_string(steady.kind));
        cr_assert_eq(short_one.kind, AETASK_ERROR_TIMEOUT);
        cr_assert_eq(shortened.kind, AETASK_ERROR_TIMEOUT);
        cr_assert_eq(long_one.kind, AETASK_ERROR_TIMEOUT);
        cr_assert(short_one.when - t0 >= 0.18 && short_one.when - t0 < 0.5, "0.2 s: after %.3f s", short_one.when - t0);
        cr_assert(shortened.when - t0 >= 0.28 && shortened.when - t0 < 0.6, "0.3 s: after %.3f s", shortened.when - t0);
        cr_assert(long_one.when - t0 >= 0.58 && long_one.when - t0 < 1.2, "0.6 s: after %.3f s", long_one.when - t0);
        cr_assert(short_one.when < shortened.when && shortened.when < long_one.when);
        aetask_checkout_unref(a);
        aetask_checkout_unref(b);
        aetask_checkout_unref(c);
        aetask_checkout_unref(d);
}

static void hung_after_300ms(aetask_server *s, void *userdata) {
        aetask_server_set_hung_timeout(s, 300000);
}

Test(client, a_hung_worker_is_killed_by_the_server) {
        collect c = {};

        start(&counting_handler, hung_after_300ms, NULL);
        aetask_checkout *co = checkout();
        json_object *args = json_tokener_parse("[10]");
        double t0 = now_seconds();
        call_once(co, "sleep", args, &c);
        cr_assert_eq(c.kind, AETASK_ERROR_WORKER_DIED);
        cr_assert_str_eq(c.message, "worker connection suddenly died");
        cr_assert_lt(now_seconds() - t0, 3, "killed after %.2f s", now_seconds() - t0);
        json_object_put(args);
        aetask_checkout_unref(co);

        /* The pool recovers. */
        co = checkout();
        cr_assert_gt(call_pid(co), 0);
        aetask_checkout_unref(co);
}

Test(client, fatal_errors_stick_to_the_checkout) {
        collect c = {};

        start(&counting_handler, NULL, NULL);
        aetask_checkout *co = checkout();
        call_pid(co);
        aetask_checkout_set_error_handler(co, on_error, &c);
        cr_assert_eq(aetask_checkout_throw_fatal_error(co, "changed my mind"), 1);
        aetask_error_kind kind;
        const char *message;
        cr_assert_eq(aetask_checkout_get_error(co, &kind, &message), 0);
        cr_assert_eq(kind, AETASK_ERROR_ABORTED);
        cr_assert_str_eq(message, "changed my mind");
        for (int i = 1; i <= 2; i++) {
                c.done = false;
                cr_assert_eq(aetask_checkout_call(co, NULL, "pid", NULL, on_reply, &c), 0);
                test_run_until(event, &c.done, 5);
                cr_assert_eq(c.errors, i);
                cr_assert_eq(c.replies, 0);
                cr_assert_eq(c.kind, AETASK_ERROR_ABORTED);
                cr_assert_str_eq(c.message, "changed my mind");
        }
        aetask_checkout_unref(co);
}

Test(client, an_error_drops_the_calls_queued_behind_it) {
        collect c = { .expect = 3 };
        json_object *args = json_tokener_parse("[\"first fails\"]");

        start(&counting_handler, NULL, NULL);
        aetask_checkout *co = checkout();
        aetask_checkout_set_error_handler(co, on_error, &c);
        cr_assert_eq(aetask_checkout_call(co, NULL, "fail", args, on_reply, &c), 0);
        cr_assert_eq(aetask_checkout_call(co, NULL, "pid", NULL, on_reply, &c), 0);
        cr_assert_eq(aetask_checkout_call(co, NULL, "pid", NULL, on_reply, &c), 0);
        test_run_for(event, 0.5);
        cr_assert_eq(c.errors, 1, "the error is reported once");
        cr_assert_eq(c.replies, 0, "the queued calls never ran");
        cr_assert_str_eq(c.message, "first fails");
        json_object_put(args);
        aetask_checkout_unref(co);
}

static int pid_after_error(bool dont_refork) {
        collect c = {};
        json_object *args = json_tokener_parse("[\"oops\"]");

        aetask_client_set_max_workers(client, 1);
        aetask_client_set_dont_refork_after_error(client, dont_refork);
        aetask_checkout *co = checkout();
        int before = call_pid(co);
        call_once(co, "fail", args, &c);
        cr_assert_eq(c.errors, 1);
        aetask_checkout_unref(co);
        json_object_put(args);

        co = checkout();
        int after = call_pid(co);
        aetask_checkout_unref(co);
        return before == after;
}

Test(client, a_worker_that_raised_is_replaced_after_release) {
        start(&counting_handler, NULL, NULL);
        cr_assert(!pid_after_error(false), "safe by default: a fresh worker after an error");
}

Test(client, dont_refork_after_error_keeps_the_worker) {
        start(&counting_handler, NULL, NULL);
        cr_assert(pid_after_error(true), "the same worker with dont_refork_after_error");
}

/* A checkout-done hook that failed leaves the worker's state suspect: the
 * client pools it no more, whether it was idle when the hook's answer came
 * or already serving the next checkout (whose call went out with the Done). */
Test(client, a_worker_whose_checkout_done_hook_failed_is_not_pooled_again) {
        collect c = {};

        start(&failing_done_handler, NULL, NULL);
        aetask_client_set_max_workers(client, 1);
        aetask_checkout *co = checkout();
        int first = call_pid(co);
        aetask_checkout_unref(co);
        test_run_for(event, 0.2);  /* idle in the pool when the answer comes */
        co = checkout();
        int second = call_pid(co);
        cr_assert_neq(second, first, "the idle worker whose hook failed was closed");

        aetask_checkout *next = checkout();
        aetask_checkout_set_error_handler(next, on_error, &c);
        cr_assert_eq(aetask_checkout_call(next, NULL, "pid", NULL, on_reply, &c), 0);
        aetask_checkout_unref(co);  /* the Done and next's call go out together */
        test_run_until(event, &c.done, 10);
        cr_assert_eq(c.replies, 1, "the waiting checkout is served: %s", c.message);
        cr_assert_eq(json_object_get_int(c.last), second, "by the worker it was handed");
        json_object_put(c.last);
        c.last = NULL;
        aetask_checkout_unref(next);
        co = checkout();
        cr_assert_neq(call_pid(co), second, "which is closed after that checkout");
        aetask_checkout_unref(co);
}

Test(client, max_checkouts_recycles_workers) {
        int pids[5];

        start(&counting_handler, NULL, NULL);
        aetask_client_set_max_workers(client, 1);
        aetask_client_set_max_checkouts(client, 2);
        for (int i = 0; i < 5; i++) {
                aetask_checkout *co = checkout();
                pids[i] = call_pid(co);
                aetask_checkout_unref(co);
        }
        cr_assert_eq(pids[0], pids[1]);
        cr_assert_neq(pids[1], pids[2]);
        cr_assert_eq(pids[2], pids[3]);
        cr_assert_neq(pids[3], pids[4]);
}

Test(client, a_worker_that_exits_during_a_call_is_a_worker_died_error) {
        collect c = {};

        start(&counting_handler, NULL, NULL);
        aetask_checkout *co = checkout();
        call_once(co, "exit", NULL, &c);
        cr_assert_eq(c.kind, AETASK_ERROR_WORKER_DIED);
        cr_assert_str_eq(c.message, "worker connection suddenly died");
        /* The error sticks to this checkout ... */
        call_once(co, "pid", NULL, &c);
        cr_assert_eq(c.kind, AETASK_ERROR_WORKER_DIED);
        aetask_checkout_unref(co);
        /* ... and nothing else is affected. */
        co = checkout();
        cr_assert_gt(call_pid(co), 0);
        aetask_checkout_unref(co);
}

Test(client, a_worker_that_dies_idle_in_the_pool_is_replaced_silently) {
        collect errors = {};

        start(&counting_handler, NULL, NULL);
        aetask_client_set_error_handler(client, on_error, &errors);
        aetask_client_set_max_workers(client, 1);
        aetask_checkout *co = checkout();
        int pid = call_pid(co);
        aetask_checkout_unref(co);
        test_run_for(event, 0.1);
        cr_assert_eq(kill(pid, SIGKILL), 0);
        test_run_for(event, 0.2);
        co = checkout();
        int replacement = call_pid(co);
        aetask_checkout_unref(co);
        cr_assert_neq(replacement, pid);
        cr_assert_eq(errors.errors, 0, "no error for an idle worker's death: %s", errors.message);
}

Test(client, min_workers_are_connected_at_once) {
        unsigned workers;

        start(&counting_handler, NULL, NULL);
        aetask_client_set_min_workers(client, 3);
        test_run_for(event, 0.1);
        aetask_client_get_pool(client, &workers, NULL, NULL);
        cr_assert_eq(workers, 3);
        aetask_client_set_max_workers(client, 2);
}

static void small_messages(aetask_server *s, void *userdata) {
        aetask_server_set_max_message_size(s, 1000);
}

/* Calls of every size queued on one checkout, the large ones past the
 * client's scratch buffer (256 KiB: a call then keeps that buffer's memory
 * instead of a copy), each sent with the time it has left (its last bytes
 * written apart): every one comes back whole, in order, with its method's
 * name on its trace. */
Test(client, large_and_small_calls_queued_together_come_back_whole) {
        static const size_t sizes[] = { 10, 300 * 1024, 5, 1024 * 1024, 64 * 1024 };
        collect c = { .expect = 5 };
        json_object *args[5];
        aetask_log *log;

        start(&counting_handler, NULL, NULL);
        aetask_checkout *co = checkout();
        cr_assert_eq(aetask_log_new(&log), 0);
        cr_assert_eq(aetask_checkout_set_log(co, log), 0);
        aetask_checkout_set_error_handler(co, on_error, &c);
        for (size_t i = 0; i < 5; i++) {
                char *text = malloc(sizes[i] + 1);
                memset(text, 'a' + (int) i, sizes[i]);
                text[sizes[i]] = 0;
                args[i] = json_object_new_array();
                json_object_array_add(args[i], json_object_new_string(text));
                free(text);
                cr_assert_eq(aetask_checkout_call(co, NULL, "echo", args[i], on_reply, &c), 0);
        }
        test_run_until(event, &c.done, 30);
        cr_assert_eq(c.replies, 5, "%d replies, %d errors: %s", c.replies, c.errors, c.message);
        cr_assert(json_object_equal(c.last, json_object_array_get_idx(args[4], 0)), "the last reply is the last call's argument");
        cr_assert_eq(aetask_log_get_n_timers(log), 5);
        for (unsigned i = 0; i < 5; i++) {
                const char *name;
                cr_assert_eq(aetask_log_get_timer(log, i, &name, NULL, NULL), 0);
                cr_assert_str_eq(name, "echo");
        }
        for (size_t i = 0; i < 5; i++)
                json_object_put(args[i]);
        json_object_put(c.last);
        aetask_log_unref(log);
        aetask_checkout_unref(co);
}

Test(client, messages_over_the_size_limit_are_errors) {
        collect c = {};
        char big[2001];
        memset(big, 'x', 2000);
        big[2000] = 0;
        json_object *args = json_object_new_array();
        json_object_array_add(args, json_object_new_string(big));

        start(&counting_handler, small_messages, NULL);
        aetask_client_set_max_message_size(client, 1000);
        aetask_checkout *co = checkout();
        cr_assert_eq(aetask_checkout_call(co, NULL, "echo", args, on_reply, &c), -EMSGSIZE, "the client refuses to send it");
        aetask_checkout_unref(co);

        /* A client with a larger limit sends it; the server refuses it. */
        aetask_client_set_max_message_size(client, 1 << 20);
        co = checkout();
        call_once(co, "echo", args, &c);
        cr_assert_eq(c.errors, 1);
        cr_assert_eq(c.kind, AETASK_ERROR_PROTOCOL);
        cr_assert(strstr(c.message, "size limit"), "%s", c.message);
        aetask_checkout_unref(co);
        json_object_put(args);
}

Test(client, misuse_returns_errors) {
        aetask_checkout *co;

        start(&counting_handler, NULL, NULL);
        cr_assert_eq(aetask_client_new(NULL, "unix:/x"), -EINVAL);
        cr_assert_eq(aetask_client_new(&client, "nonsense"), -EINVAL);
        cr_assert_eq(aetask_client_checkout(NULL, &co), -EINVAL);
        cr_assert_eq(aetask_checkout_call(NULL, NULL, "x", NULL, NULL, NULL), -EINVAL);
        cr_assert_eq(aetask_client_attach_event(client, event, 0), -EBUSY);
        co = checkout();
        cr_assert_eq(aetask_checkout_call(co, NULL, "bad name", NULL, NULL, NULL), -EINVAL);
        json_object *not_array = json_object_new_object();
        cr_assert_eq(aetask_checkout_call(co, NULL, "echo", not_array, NULL, NULL), -EINVAL);
        json_object_put(not_array);
        cr_assert_eq(aetask_checkout_release(co), 1);
        cr_assert_eq(aetask_checkout_call(co, NULL, "pid", NULL, NULL, NULL), -ESTALE, "no calls on a released checkout");
        aetask_checkout_unref(co);
        cr_assert_null(aetask_client_unref(NULL));
        cr_assert_null(aetask_checkout_unref(NULL));
}

Test(client, a_forked_child_cannot_use_the_parents_client) {
        aetask_checkout *co;
        int status;

        start(&counting_handler, NULL, NULL);
        co = checkout();
        call_pid(co);  /* the pid is cached by now */
        /* The verdict comes down a pipe: under valgrind the child's exit
         * status counts the parent's objects it leaves behind, by design. */
        int verdict[2];
        char ok = 0;
        cr_assert_eq(pipe(verdict), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                aetask_checkout *other;
                ok = aetask_client_checkout(client, &other) == -ECHILD &&
                     aetask_checkout_call(co, NULL, "pid", NULL, NULL, NULL) == -ECHILD;
                (void) !write(verdict[1], &ok, 1);
                _exit(0);
        }
        close(verdict[1]);
        cr_assert_eq(read(verdict[0], &ok, 1), 1);
        close(verdict[0]);
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(ok, "the child got -ECHILD");
        cr_assert_gt(call_pid(co), 0, "the parent's client still works");
        aetask_checkout_unref(co);
}

static int release_in_callback(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        aetask_checkout_release(co);
        aetask_checkout_unref(co);
        *(bool *) userdata = true;
        return 0;
}

Test(client, releasing_a_checkout_inside_its_callback_is_safe) {
        bool done = false;

        start(&counting_handler, NULL, NULL);
        aetask_checkout *co = checkout();
        cr_assert_eq(aetask_checkout_call(co, NULL, "pid", NULL, release_in_callback, &done), 0);
        test_run_until(event, &done, 5);
        test_run_for(event, 0.1);
}

static int free_client_in_callback(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        client = aetask_client_unref(client);
        *(bool *) userdata = true;
        return 0;
}

Test(client, freeing_the_client_inside_a_callback_is_safe) {
        bool done = false;

        start(&counting_handler, NULL, NULL);
        aetask_checkout *co = checkout();
        cr_assert_eq(aetask_checkout_call(co, NULL, "pid", NULL, free_client_in_callback, &done), 0);
        test_run_until(event, &done, 5);
        cr_assert_null(aetask_checkout_get_client(co), "the checkout outlives its client, detached");
        cr_assert_eq(aetask_checkout_call(co, NULL, "pid", NULL, NULL, NULL), -ENOTCONN);
        aetask_checkout_unref(co);
}

Test(client, freeing_the_client_cancels_outstanding_checkouts) {
        collect c = {};
        json_object *args = json_tokener_parse("[1]");

        start(&counting_handler, NULL, NULL);
        aetask_client_set_max_workers(client, 1);
        aetask_checkout *co = checkout();
        aetask_checkout_set_error_handler(co, on_error, &c);
        cr_assert_eq(aetask_checkout_call(co, NULL, "sleep", args, on_reply, &c), 0);
        aetask_checkout *waiting = checkout();
        aetask_checkout_set_error_handler(waiting, on_error, &c);
        cr_assert_eq(aetask_checkout_call(waiting, NULL, "pid", NULL, on_reply, &c), 0);
        aetask_checkout_unref(waiting);  /* only its call holds it now */
        test_run_for(event, 0.1);
        client = aetask_client_unref(client);
        cr_assert_eq(c.errors, 2);
        cr_assert_eq(c.kind, AETASK_ERROR_CANCELLED);
        aetask_error_kind kind;
        cr_assert_eq(aetask_checkout_get_error(co, &kind, NULL), 0);
        cr_assert_eq(kind, AETASK_ERROR_CANCELLED);
        aetask_checkout_unref(co);
        json_object_put(args);
}

Test(client, a_call_in_the_backlog_of_a_server_that_dies_is_answered_by_the_next_one) {
        collect c = {};

        start(&counting_handler, NULL, NULL);
        aetask_client_set_min_workers(client, 0);
        /* The server stops accepting: our connection waits in its backlog. */
        cr_assert_eq(kill(srv.pid, SIGSTOP), 0);
        aetask_checkout *co = checkout();
        aetask_checkout_set_error_handler(co, on_error, &c);
        cr_assert_eq(aetask_checkout_call(co, NULL, "pid", NULL, on_reply, &c), 0);
        test_run_for(event, 0.2);
        /* It dies with the connection unaccepted: no worker ever greeted us,
         * so nothing ran, and the client may send the call elsewhere. */
        cr_assert_eq(kill(srv.pid, SIGKILL), 0);
        waitpid(srv.pid, NULL, 0);
        close(srv.keepalive_fd);
        srv.pid = 0;
        srv.keepalive_fd = -1;
        test_run_for(event, 0.2);
        cr_assert_eq(c.errors, 0, "no error while no server runs: %s", c.message);
        test_server_start(&srv, &counting_handler, NULL, NULL);
        test_run_until(event, &c.done, 10);
        cr_assert_eq(c.replies, 1, "answered by the new server, not failed: %s", c.message);
        json_object_put(c.last);
        aetask_checkout_unref(co);
}
