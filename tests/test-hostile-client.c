/* Bad clients against a real server over real sockets: random bytes, invalid
 * JSON, JSON of the wrong shape, unknown methods, a message over the size
 * limit, a message that never ends, a thousand connections opened and
 * dropped, half-closed sockets.  After each, the server serves another
 * client, has no zombie, holds the descriptors it held before, and its log
 * says how the offending worker ended. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hostile.h"

static int h_sleep(aetask_worker *w, json_object *args, json_object **ret) {
        usleep((useconds_t) (json_object_get_double(json_object_array_get_idx(args, 0)) * 1e6));
        *ret = json_object_new_string("slept");
        return 0;
}

static int h_echo(aetask_worker *w, json_object *args, json_object **ret) {
        *ret = json_object_get(json_object_array_get_idx(args, 0));
        return 0;
}

static int h_call(aetask_worker *w, json_object *args, json_object **ret) {
        *ret = json_object_get(args);
        return 0;
}

/* Logs more than a message may carry, then returns a small result. */
static int h_chatty(aetask_worker *w, json_object *args, json_object **ret) {
        char text[600];
        memset(text, 'l', sizeof(text) - 1);
        text[sizeof(text) - 1] = 0;
        for (int i = 0; i < 5; i++)
                aetask_log_info(w, "%s", text);
        *ret = json_object_new_string("ok");
        return 0;
}

/* Logs a lot, then fails with a message longer than a message may be. */
static int h_chatty_fail(aetask_worker *w, json_object *args, json_object **ret) {
        char text[3000];
        memset(text, 'e', sizeof(text) - 1);
        text[sizeof(text) - 1] = 0;
        aetask_log_info(w, "%.600s", text);
        aetask_log_info(w, "%.600s", text);
        return aetask_worker_raise(w, "%s", text);
}

/* A result of N bytes. */
static int h_big(aetask_worker *w, json_object *args, json_object **ret) {
        size_t n = (size_t) json_object_get_int64(json_object_array_get_idx(args, 0));
        char *s = malloc(n + 1);
        memset(s, 'b', n);
        s[n] = 0;
        *ret = json_object_new_string_len(s, (int) n);
        free(s);
        return 0;
}

static const aetask_method h_methods[] = {
        { "sleep", h_sleep }, { "echo", h_echo }, { "chatty", h_chatty }, { "chatty_fail", h_chatty_fail },
        { "big", h_big }, {}
};
static const aetask_handler h_handler = {
        .abi_version = AETASK_HANDLER_ABI_VERSION,
        .name = "hostile",
        .methods = h_methods,
        .call = h_call,
};

static void small_and_quick(aetask_server *s, void *userdata) {
        aetask_server_set_max_message_size(s, 1000);
        aetask_server_set_hung_timeout(s, 500000);
        /* One user here plays every stranger: the worker cap is what these
         * tests meet, not the share of one user (test-fairness). */
        aetask_server_set_max_workers_per_uid(s, 256);
}

static logged_server srv;
static char control_path[256];

static void finish(void) {
        logged_server_cleanup(&srv);
        if (control_path[0])
                unlink(control_path);
}

TestSuite(hostile_client, .init = NULL, .fini = finish, .timeout = 60);

/* What every test checks at its end. */
static void check_recovered(void) {
        server_check_serves(&srv);
        server_wait_settled(&srv, 10);
        cr_assert_eq(log_count(&srv, "killed as hung"), 0, "no worker was taken for hung");
        cr_assert_eq(log_count(&srv, "died on signal"), 0, "no worker crashed");
}

/* Sends MESSAGE (its NUL included) and expects ERROR in the one reply, then
 * the end of the connection. */
static void expect_fatal(const void *message, size_t size, const char *error) {
        char reply[1024];
        int fd = raw_connect(srv.t.path, false);

        raw_send(fd, message, size);
        ssize_t n = raw_read_message(fd, reply, sizeof(reply), 10);
        cr_assert_gt(n, 0, "no reply (%zd)", n);
        cr_assert(strstr(reply, error), "expected %s, got %s", error, reply);
        cr_assert_geq(raw_wait_eof(fd, 10), 0, "the worker did not close the connection");
        close(fd);
}

Test(hostile_client, random_bytes) {
        unsigned seed = 7;
        char junk[4096];

        logged_server_start(&srv, &h_handler, small_and_quick, NULL);
        for (size_t i = 0; i < sizeof(junk); i++)
                junk[i] = (char) (rand_r(&seed) & 0xff);
        junk[100] = 0;  /* at least one "message" ends early */
        expect_fatal(junk, 101, "io.aetask.InvalidMessage");
        log_wait_for(&srv, "invalid message from client, closing", 1, 5);
        log_wait_for(&srv, "exited with status 1", 1, 5);

        /* Random bytes with no NUL, then the client leaves. */
        int fd = raw_connect(srv.t.path, false);
        for (size_t i = 0; i < 500; i++)
                junk[i] = (char) (1 + rand_r(&seed) % 255);
        raw_send(fd, junk, 500);
        close(fd);
        log_wait_for(&srv, "client closed the connection in the middle of a message (500 bytes)", 1, 5);
        log_wait_for(&srv, "exited with status 1", 2, 5);
        check_recovered();
}

Test(hostile_client, invalid_json) {
        static const char *const messages[] = {
                "{\"method\":",
                "{\"method\":\"io.aetask.Worker.echo\",}",
                "{'method':1}",
                "{\"method\":\"io.aetask.Worker.echo\"} trailing",
                "{\"method\":\"io.aetask.Worker.echo\",\"parameters\":{\"args\":[NaN]}}",
                "{\"method\":\"io.aetask.Worker.echo\",\"parameters\":{\"args\":[\"\xc0\xaf\"]}}",
        };

        logged_server_start(&srv, &h_handler, small_and_quick, NULL);
        for (size_t i = 0; i < sizeof(messages) / sizeof(messages[0]); i++)
                expect_fatal(messages[i], strlen(messages[i]) + 1, "io.aetask.InvalidMessage");
        log_wait_for(&srv, "invalid message from client, closing", 6, 5);
        log_wait_for(&srv, "exited with status 1", 6, 5);
        cr_assert_eq(log_count(&srv, "NaN or Infinity is not JSON"), 1);
        cr_assert_eq(log_count(&srv, "invalid UTF-8"), 1);
        check_recovered();
}

Test(hostile_client, valid_json_of_the_wrong_shape) {
        static const char *const messages[] = {
                "[1,2,3]",
                "\"io.aetask.Worker.echo\"",
                "{}",
                "{\"method\":5}",
                "{\"method\":\"io.aetask.Worker.echo\",\"parameters\":[]}",
                "{\"method\":\"io.aetask.Worker.echo\",\"parameters\":{\"args\":{\"a\":1}}}",
                "{\"method\":\"io.aetask.Worker.echo\",\"parameters\":{\"args\":[],\"trace\":\"not a trace\"}}",
                "{\"parameters\":{\"result\":1}}",
        };

        logged_server_start(&srv, &h_handler, small_and_quick, NULL);
        for (size_t i = 0; i < sizeof(messages) / sizeof(messages[0]); i++)
                expect_fatal(messages[i], strlen(messages[i]) + 1, "io.aetask.InvalidMessage");
        log_wait_for(&srv, "invalid message from client, closing", 8, 5);
        log_wait_for(&srv, "exited with status 1", 8, 5);
        check_recovered();
}

Test(hostile_client, unknown_methods_are_answered_and_the_worker_goes_on) {
        static const char unknown[] = "{\"method\":\"io.aetask.Worker.no_such_method\",\"parameters\":{\"args\":[]}}";
        static const char bad_name[] = "{\"method\":\"io.aetask.Worker.no-such-method\"}";
        static const char other[] = "{\"method\":\"org.example.Other.Method\",\"parameters\":{}}";
        static const char echo[] = "{\"method\":\"io.aetask.Worker.echo\",\"parameters\":{\"args\":[\"still here\"]}}";
        char reply[1024];

        logged_server_start(&srv, &h_handler, small_and_quick, NULL);
        int exited = log_count(&srv, "exited\n");
        int fd = raw_connect(srv.t.path, false);
        raw_send(fd, unknown, sizeof(unknown));
        cr_assert_gt(raw_read_message(fd, reply, sizeof(reply), 10), 0);
        cr_assert(strstr(reply, "io.aetask.MethodNotFound") && strstr(reply, "unknown method 'no_such_method'"), "%s", reply);
        raw_send(fd, bad_name, sizeof(bad_name));
        cr_assert_gt(raw_read_message(fd, reply, sizeof(reply), 10), 0);
        cr_assert_str_eq(reply, "{\"error\":\"org.varlink.service.MethodNotFound\","
                         "\"parameters\":{\"method\":\"io.aetask.Worker.no-such-method\"}}");
        raw_send(fd, other, sizeof(other));
        cr_assert_gt(raw_read_message(fd, reply, sizeof(reply), 10), 0);
        cr_assert_str_eq(reply, "{\"error\":\"org.varlink.service.InterfaceNotFound\","
                         "\"parameters\":{\"interface\":\"org.example.Other\"}}");
        raw_send(fd, echo, sizeof(echo));
        cr_assert_gt(raw_read_message(fd, reply, sizeof(reply), 10), 0);
        cr_assert(strstr(reply, "\"still here\""), "the worker goes on after an unknown method: %s", reply);
        close(fd);
        /* A client that leaves ends its worker, quietly. */
        log_wait_for(&srv, "exited\n", exited + 1, 5);
        cr_assert_eq(log_count(&srv, "exited with status"), 0);
        check_recovered();
}

/* Sends REQUEST (with its NUL) on FD and checks that the answer holds each
 * of the NULL-ended texts. */
static void expect_answer(int fd, const char *request, const char *const *texts) {
        char reply[8192];

        raw_send(fd, request, strlen(request) + 1);
        cr_assert_gt(raw_read_message(fd, reply, sizeof(reply), 10), 0, "no answer to %s", request);
        for (const char *const *t = texts; *t; t++)
                cr_assert(strstr(reply, *t), "%s: no %s in %s", request, *t, reply);
}

#define EXPECT(fd, request, ...) expect_answer(fd, request, (const char *const[]) { __VA_ARGS__, NULL })

/* What a stock Varlink client sends, on one connection that asks for no
 * greeting: introspection, Call, Varlink's errors, oneway and more. */
Test(hostile_client, a_stock_varlink_client_is_served) {
        logged_server_start(&srv, &h_handler, small_and_quick, NULL);
        int fd = raw_connect(srv.t.path, true);

        EXPECT(fd, "{\"method\":\"org.varlink.service.GetInfo\",\"parameters\":null}",
               "\"vendor\":\"aetask\"", "\"product\":\"aetaskd worker (handler hostile)\"",
               "\"interfaces\":[\"org.varlink.service\",\"io.aetask\"]");
        EXPECT(fd, "{\"method\":\"org.varlink.service.GetInterfaceDescription\",\"parameters\":{\"interface\":\"io.aetask\"}}",
               "{\"parameters\":{\"description\":\"", "interface io.aetask\\n", "method Call(",
               "error HandlerError (message: string");
        EXPECT(fd, "{\"method\":\"org.varlink.service.GetInterfaceDescription\",\"parameters\":{\"interface\":\"x.y\"}}",
               "{\"error\":\"org.varlink.service.InterfaceNotFound\",\"parameters\":{\"interface\":\"x.y\"}}");
        EXPECT(fd, "{\"method\":\"org.varlink.service.GetInterfaceDescription\",\"parameters\":{}}",
               "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"interface\"}}");
        EXPECT(fd, "{\"method\":\"org.varlink.service.Nope\"}",
               "{\"error\":\"org.varlink.service.MethodNotFound\",\"parameters\":{\"method\":\"org.varlink.service.Nope\"}}");
        EXPECT(fd, "{\"method\":\"io.aetask.Call\",\"parameters\":{\"method\":\"echo\",\"args\":[\"x\"]}}",
               "{\"parameters\":{\"result\":\"x\"}}");
        EXPECT(fd, "{\"method\":\"io.aetask.Call\",\"parameters\":{\"args\":[1,2]}}",
               "{\"parameters\":{\"result\":[1,2]}}");
        EXPECT(fd, "{\"method\":\"io.aetask.Call\",\"parameters\":{\"method\":\"nope\"}}",
               "\"io.aetask.MethodNotFound\"", "unknown method 'nope'");
        EXPECT(fd, "{\"method\":\"io.aetask.Call\",\"parameters\":{\"method\":\"echo\",\"args\":\"x\"}}",
               "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"args\"}}");
        /* oneway: it runs, and nothing answers it; more: one reply. */
        raw_send(fd, "{\"method\":\"io.aetask.Call\",\"oneway\":true,\"parameters\":{\"method\":\"echo\",\"args\":[1]}}",
                 sizeof("{\"method\":\"io.aetask.Call\",\"oneway\":true,\"parameters\":{\"method\":\"echo\",\"args\":[1]}}"));
        EXPECT(fd, "{\"method\":\"io.aetask.Call\",\"more\":true,\"parameters\":{\"method\":\"echo\",\"args\":[2]}}",
               "{\"parameters\":{\"result\":2}}");
        EXPECT(fd, "{\"method\":\"io.aetask.Hello\",\"parameters\":null}",
               "{\"parameters\":{\"hello\":{\"version\":2,\"worker\":");
        close(fd);
        check_recovered();
}

static int failing_setup(aetask_worker *w) {
        return aetask_worker_raise(w, "no database");
}

static const aetask_handler failing_handler = {
        .abi_version = AETASK_HANDLER_ABI_VERSION,
        .name = "failing",
        .methods = h_methods,
        .setup = failing_setup,
};

/* Hello and introspection run nothing of the handler's: a worker whose
 * setup fails answers them, and fails the first call. */
Test(hostile_client, hello_and_introspection_do_not_run_the_setup) {
        logged_server_start(&srv, &failing_handler, small_and_quick, NULL);
        int fd = raw_connect(srv.t.path, false);

        EXPECT(fd, "{\"method\":\"org.varlink.service.GetInfo\"}", "\"product\":\"aetaskd worker (handler failing)\"");
        cr_assert_eq(log_count(&srv, "setup exception"), 0);
        EXPECT(fd, "{\"method\":\"io.aetask.Call\",\"parameters\":{\"method\":\"echo\"}}",
               "{\"error\":\"io.aetask.SetupError\"", "setup exception: no database");
        close(fd);
}

Test(hostile_client, a_message_over_the_size_limit) {
        char big[3000];

        logged_server_start(&srv, &h_handler, small_and_quick, NULL);
        /* Whole, with its NUL, and without one: both are over 1000 bytes. */
        memset(big, 'x', sizeof(big));
        memcpy(big, "{\"method\":\"io.aetask.Worker.echo\",\"parameters\":{\"args\":[\"", 57);
        big[sizeof(big) - 1] = 0;
        expect_fatal(big, sizeof(big), "io.aetask.MessageTooLarge");
        expect_fatal(big, sizeof(big) - 1, "io.aetask.MessageTooLarge");
        log_wait_for(&srv, "message from client exceeds the limit of 1000 bytes, closing", 2, 5);
        log_wait_for(&srv, "exited with status 1", 2, 5);
        check_recovered();
}

/* A worker waits for the rest of a message it has begun for the hung timeout
 * (0.5 s here), counted from the message's first byte: a client sending it
 * byte by byte, then stalling, or trickling a byte now and then, gets an
 * error and the connection closed, and the worker's process and slot are
 * free again.  The hung-worker logic is not involved: the worker was not
 * running a call. */
Test(hostile_client, a_message_that_never_ends) {
        static const char start[] = "{\"method\":\"io.aetask.Worker.echo\",\"par";
        char reply[1024];

        logged_server_start(&srv, &h_handler, small_and_quick, NULL);
        int fd = raw_connect(srv.t.path, false);
        double t0 = now_seconds();
        for (size_t i = 0; i < 10; i++) {
                raw_send(fd, start + i, 1);
                usleep(20000);
        }
        /* Stalled: meanwhile the server serves others. */
        server_check_serves(&srv);
        ssize_t n = raw_read_message(fd, reply, sizeof(reply), 5);
        double elapsed = now_seconds() - t0;
        cr_assert_gt(n, 0, "no error for the stalled message");
        cr_assert(strstr(reply, "io.aetask.InvalidMessage") && strstr(reply, "incomplete"), "%s", reply);
        cr_assert(elapsed > 0.45 && elapsed < 2.5, "closed after %.2f s", elapsed);
        cr_assert_geq(raw_wait_eof(fd, 5), 0);
        close(fd);
        log_wait_for(&srv, "client stalled in the middle of a message (10 bytes, no end after 0.500 s), closing", 1, 5);
        log_wait_for(&srv, "exited with status 1", 1, 5);

        /* A trickle of one byte every 0.1 s does not keep it alive. */
        fd = raw_connect(srv.t.path, false);
        t0 = now_seconds();
        double closed = -1;
        for (size_t i = 0; i < sizeof(start) - 1 && closed < 0; i++) {
                if (send(fd, start + i, 1, MSG_NOSIGNAL) < 0) {
                        closed = now_seconds() - t0;
                        break;
                }
                if (raw_read_message(fd, reply, sizeof(reply), 0.1) > 0)
                        closed = now_seconds() - t0;
        }
        cr_assert(closed > 0.45 && closed < 2, "a trickling client was closed after %.2f s", closed);
        close(fd);
        log_wait_for(&srv, "client stalled in the middle of a message", 2, 5);
        check_recovered();
}

/* A connection with nothing begun is a pooled worker waiting for its next
 * checkout: it may wait as long as the client likes. */
Test(hostile_client, an_idle_connection_is_not_a_stalled_one) {
        static const char echo[] = "{\"method\":\"io.aetask.Worker.echo\",\"parameters\":{\"args\":[\"later\"]}}";
        char reply[1024];

        logged_server_start(&srv, &h_handler, small_and_quick, NULL);
        int fd = raw_connect(srv.t.path, false);
        usleep(1500000);  /* three hung timeouts */
        raw_send(fd, echo, sizeof(echo));
        cr_assert_gt(raw_read_message(fd, reply, sizeof(reply), 5), 0);
        cr_assert(strstr(reply, "\"later\""), "%s", reply);
        close(fd);
        cr_assert_eq(log_count(&srv, "stalled"), 0);
        check_recovered();
}

Test(hostile_client, a_thousand_connections_opened_and_dropped) {
        int refused = 0;

        logged_server_start(&srv, &h_handler, small_and_quick, NULL);
        int started0 = log_count(&srv, "started (pid"), exited0 = log_count(&srv, "exited\n");
        for (int i = 0; i < 1000; i++) {
                int fd = raw_connect(srv.t.path, true);
                if (i % 2 == 0) {
                        /* Every other one waits for its greeting (or refusal) first. */
                        char reply[512];
                        (void) send_hello(fd);  /* a refusal may have closed it already */
                        ssize_t n = raw_read_message(fd, reply, sizeof(reply), 10);
                        cr_assert_gt(n, 0, "connection %d: no greeting (%zd)", i, n);
                        refused += !!strstr(reply, "io.aetask.ServerBusy");
                }
                close(fd);
        }
        server_wait_settled(&srv, 30);
        /* Every worker started ended, and the log says so. */
        int started = log_count(&srv, "started (pid") - started0;
        int exited = log_count(&srv, "exited\n") - exited0;
        int refusals = log_count(&srv, "Refusing a connection");
        cr_log_info("1000 connections: %d workers started, %d exited, %d refused (%d seen refused)",
                    started, exited, refusals, refused);
        cr_assert_eq(started, exited, "%d workers started, %d exited", started, exited);
        cr_assert_eq(started + refusals, 1000);
        check_recovered();
}

/* shutdown(SHUT_WR) after a call: the client has said all it will say, and
 * still gets its answer; then the worker sees the end and exits. */
Test(hostile_client, half_closed_sockets_still_get_their_answers) {
        static const char quick[] = "{\"method\":\"io.aetask.Worker.echo\",\"parameters\":{\"args\":[\"quick\"]}}";
        static const char slow[] = "{\"method\":\"io.aetask.Worker.sleep\",\"parameters\":{\"args\":[0.3]}}";
        char reply[1024];

        logged_server_start(&srv, &h_handler, small_and_quick, NULL);
        int fd = raw_connect(srv.t.path, false);
        raw_send(fd, quick, sizeof(quick));
        cr_assert_eq(shutdown(fd, SHUT_WR), 0);
        cr_assert_gt(raw_read_message(fd, reply, sizeof(reply), 5), 0);
        cr_assert(strstr(reply, "\"quick\""), "%s", reply);
        cr_assert_geq(raw_wait_eof(fd, 5), 0);
        close(fd);

        /* Half-closed while the worker is busy with the call. */
        fd = raw_connect(srv.t.path, false);
        raw_send(fd, slow, sizeof(slow));
        usleep(100000);
        cr_assert_eq(shutdown(fd, SHUT_WR), 0);
        cr_assert_gt(raw_read_message(fd, reply, sizeof(reply), 5), 0, "no answer after a half-close");
        cr_assert(strstr(reply, "\"slept\""), "%s", reply);
        cr_assert_geq(raw_wait_eof(fd, 5), 0);
        close(fd);

        /* A half-close in the middle of a message is the end of it. */
        fd = raw_connect(srv.t.path, false);
        raw_send(fd, quick, 20);
        cr_assert_eq(shutdown(fd, SHUT_WR), 0);
        cr_assert_geq(raw_wait_eof(fd, 5), 0);
        close(fd);
        log_wait_for(&srv, "client closed the connection in the middle of a message (20 bytes)", 1, 5);
        log_wait_for(&srv, "exited\n", 3, 5);
        check_recovered();
}

/* A client that goes away for good while its worker is busy: the server
 * stops that worker, and says why. */
Test(hostile_client, a_client_gone_during_a_call) {
        static const char slow[] = "{\"method\":\"io.aetask.Worker.sleep\",\"parameters\":{\"args\":[5]}}";

        logged_server_start(&srv, &h_handler, small_and_quick, NULL);
        int fd = raw_connect(srv.t.path, false);
        raw_send(fd, slow, sizeof(slow));
        usleep(100000);
        close(fd);
        log_wait_for(&srv, "stopped: its client went away during a call", 1, 5);
        check_recovered();
}

/* However much a handler logs, and however long its error message, the
 * worker's reply stays within the message size limit (1000 bytes here):
 * the logs go first, then the message's tail.  Otherwise the client would
 * take the reply for a hostile one and drop the worker. */
Test(hostile_client, replies_stay_within_the_size_limit) {
        static const char chatty[] = "{\"method\":\"io.aetask.Worker.chatty\",\"parameters\":{\"args\":[]}}";
        static const char chatty_fail[] = "{\"method\":\"io.aetask.Worker.chatty_fail\",\"parameters\":{\"args\":[]}}";
        char reply[4096];

        logged_server_start(&srv, &h_handler, small_and_quick, NULL);
        int fd = raw_connect(srv.t.path, false);
        raw_send(fd, chatty, sizeof(chatty));
        ssize_t n = raw_read_message(fd, reply, sizeof(reply), 5);
        cr_assert_gt(n, 0);
        cr_assert_leq(n, 1000, "a reply of %zd bytes", n);
        cr_assert(strstr(reply, "\"result\":\"ok\""), "the result, without the logs: %s", reply);
        raw_send(fd, chatty_fail, sizeof(chatty_fail));
        n = raw_read_message(fd, reply, sizeof(reply), 5);
        cr_assert_gt(n, 0);
        cr_assert_leq(n, 1000, "an error reply of %zd bytes", n);
        cr_assert(strstr(reply, "io.aetask.HandlerError") && strstr(reply, "eeeeeeeeee"), "%s", reply);
        close(fd);
        check_recovered();
}

/* A client that sends a call and leaves at once: the server may see it leave
 * before the worker has even read the call.  The worker must not then run
 * the call for nobody until it ends on its own (up to the hung timeout). */
Test(hostile_client, a_client_that_sends_and_leaves_at_once) {
        static const char slow[] = "{\"method\":\"io.aetask.Worker.sleep\",\"parameters\":{\"args\":[30]}}";

        logged_server_start(&srv, &h_handler, NULL, NULL);  /* the default 300 s hung timeout */
        for (int i = 0; i < 20; i++) {
                int fd = raw_connect(srv.t.path, i % 2 == 0);  /* half of them wait for the greeting */
                raw_send(fd, slow, sizeof(slow));
                close(fd);
        }
        double t0 = now_seconds();
        server_wait_settled(&srv, 10);
        fprintf(stderr, "20 abandoned calls: the workers were gone after %.2f s\n", now_seconds() - t0);
        cr_assert_eq(log_count(&srv, "killed as hung"), 0);
        check_recovered();
}

/* ---- The control socket -------------------------------------------------- */

static void with_control(aetask_server *s, void *userdata) {
        char address[300];
        small_and_quick(s, userdata);
        snprintf(address, sizeof(address), "unix:%s", control_path);
        cr_assert_eq(aetask_server_listen_control(s, address), 0);
}

static long server_rss_kib(pid_t pid);

static void large_messages(aetask_server *s, void *userdata) {
        aetask_server_set_max_message_size(s, 4 << 20);
}

/* A client that pipelines calls and never reads the answers: the worker
 * writes each answer as it goes and waits for the client, instead of
 * keeping every answer in memory. */
Test(hostile_client, pipelined_calls_whose_answers_are_never_read) {
        static const char big[] = "{\"method\":\"io.aetask.Worker.big\",\"parameters\":{\"args\":[1000000]}}";
        char greeting[512], *burst = malloc(200 * sizeof(big));

        logged_server_start(&srv, &h_handler, large_messages, NULL);
        int fd = raw_connect(srv.t.path, true);
        cr_assert_eq(send_hello(fd), 0);
        cr_assert_gt(raw_read_message(fd, greeting, sizeof(greeting), 5), 0);
        char *p = strstr(greeting, "\"pid\":");
        cr_assert_not_null(p);
        pid_t worker = atoi(p + 6);
        long before = server_rss_kib(worker);
        for (int i = 0; i < 200; i++)
                memcpy(burst + i * sizeof(big), big, sizeof(big));
        raw_send(fd, burst, 200 * sizeof(big));  /* 200 answers of 1 MB each asked for */
        free(burst);
        usleep(1500000);
        long grown = server_rss_kib(worker) - before;
        fprintf(stderr, "200 pipelined 1 MB answers unread: the worker grew by %ld KiB\n", grown);
        if (!UNDER_ASAN)
                cr_assert_lt(grown, 32 * 1024, "the worker keeps answers nobody reads: %ld KiB", grown);
        close(fd);
        check_recovered();
}

static long server_rss_kib(pid_t pid) {
        char path[64];
        long pages = 0, resident = 0;
        snprintf(path, sizeof(path), "/proc/%d/statm", (int) pid);
        FILE *f = fopen(path, "re");
        cr_assert_not_null(f);
        cr_assert_eq(fscanf(f, "%ld %ld", &pages, &resident), 2);
        fclose(f);
        return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static bool control_answers(void) {
        static const char status[] = "{\"method\":\"io.aetask.Server.Status\"}";
        char reply[8192];
        int fd = raw_connect(control_path, true);
        raw_send(fd, status, sizeof(status));
        ssize_t n = raw_read_message(fd, reply, sizeof(reply), 5);
        close(fd);
        return n > 0 && strstr(reply, "\"workers\"");
}

/* Garbage, an over-long request, requests sent and never read, and more
 * connections than the socket takes: the server answers the next status
 * request, and its memory and descriptors are what they were. */
Test(hostile_client, the_control_socket) {
        char junk[8192];
        unsigned seed = 3;

        snprintf(control_path, sizeof(control_path), "/tmp/aetask-control-%d.sock", (int) getpid());
        unlink(control_path);
        logged_server_start(&srv, &h_handler, with_control, NULL);
        cr_assert(control_answers());

        for (size_t i = 0; i < sizeof(junk); i++)
                junk[i] = (char) rand_r(&seed);
        int fd = raw_connect(control_path, true);
        raw_send(fd, junk, 200);
        cr_assert_geq(raw_wait_eof(fd, 5), 0, "garbage closes the connection");
        close(fd);
        memset(junk, 'x', sizeof(junk));
        fd = raw_connect(control_path, true);
        (void) send(fd, junk, sizeof(junk), MSG_NOSIGNAL);
        cr_assert_geq(raw_wait_eof(fd, 5), 0, "an over-long request closes the connection");
        close(fd);

        /* Requests by the thousand, answers never read. */
        long rss = server_rss_kib(srv.t.pid);
        static const char status[] = "{\"method\":\"io.aetask.Server.Status\"}";
        fd = raw_connect(control_path, true);
        cr_assert_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
        size_t sent = 0;
        double deadline = now_seconds() + 3;
        while (sent < 20u * 1024 * 1024 && now_seconds() < deadline) {
                ssize_t n = send(fd, status, sizeof(status), MSG_NOSIGNAL);
                if (n < 0 && errno == EAGAIN) {
                        usleep(1000);
                        continue;
                }
                if (n <= 0)
                        break;
                sent += (size_t) n;
        }
        long grown = server_rss_kib(srv.t.pid) - rss;
        fprintf(stderr, "control socket: %zu bytes of requests sent unread, server RSS grew by %ld KiB\n", sent, grown);
        if (!UNDER_ASAN)  /* its quarantine keeps freed memory resident on purpose */
                cr_assert_lt(grown, 8 * 1024, "the server buffers answers nobody reads: %ld KiB", grown);
        close(fd);

        /* More connections than it takes at once. */
        int idle[20];
        for (int i = 0; i < 20; i++)
                idle[i] = raw_connect(control_path, true);
        usleep(100000);
        log_wait_for(&srv, "Refusing a control connection", 1, 5);
        for (int i = 0; i < 20; i++)
                close(idle[i]);

        cr_assert(control_answers(), "the control socket still answers");
        unlink(control_path);
        check_recovered();  /* the descriptors too */
}
