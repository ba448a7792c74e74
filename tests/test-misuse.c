/* Misuse of the public API: every function of the public headers given
 * NULL or an invalid argument returns -EINVAL (or the documented error, or
 * NULL/0 for getters) instead of crashing; use after release, releasing and
 * freeing from inside callbacks, freeing the client with checkouts in every
 * state, and use from a forked child.  Under AddressSanitizer and valgrind
 * these also show nothing leaks. */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "hostile.h"

/* ---- The table: NULL and invalid arguments ------------------------------ */

static aetask_client *c;
static aetask_checkout *co;
static aetask_log *lg;
static aetask_server *sv;
static sd_event *ev;
static json_object *not_an_array;

static int raisev_null(const char *format, ...) {
        va_list ap;
        va_start(ap, format);
        int r = aetask_worker_raisev(NULL, format, ap);
        va_end(ap);
        return r;
}

static int logv_null(const char *format, ...) {
        va_list ap;
        va_start(ap, format);
        int r = aetask_worker_logv(NULL, LOG_INFO, format, ap);
        va_end(ap);
        return r;
}

static const aetask_handler wrong_abi = { .abi_version = AETASK_HANDLER_ABI_VERSION + 1, .name = "wrong" };
static const aetask_handler no_methods = { .abi_version = AETASK_HANDLER_ABI_VERSION, .name = "empty" };

/* EXPECTED, then the call.  Getters expect NULL (0) or 0. */
#define MISUSE(X)                                                                               \
        /* aetask-client.h: the client */                                                      \
        X(-EINVAL, aetask_client_new(NULL, "unix:/x"))                                          \
        X(-EINVAL, aetask_client_new(&c, NULL))                                                 \
        X(-EINVAL, aetask_client_new(&c, "nonsense:/x"))                                        \
        X(-EINVAL, aetask_client_new(&c, "unix:"))                                              \
        X(0, aetask_client_ref(NULL))                                                           \
        X(0, aetask_client_unref(NULL))                                                         \
        X(-EINVAL, aetask_client_set_name(NULL, "x"))                                           \
        X(-EINVAL, aetask_client_set_min_workers(NULL, 1))                                      \
        X(-EINVAL, aetask_client_set_max_workers(NULL, 1))                                      \
        X(-EINVAL, aetask_client_set_max_workers(c, 0))                                         \
        X(-EINVAL, aetask_client_set_timeout(NULL, 1))                                          \
        X(-EINVAL, aetask_client_set_timeout(c, 0))                                             \
        X(-EINVAL, aetask_client_set_max_checkouts(NULL, 1))                                    \
        X(-EINVAL, aetask_client_set_dont_refork_after_error(NULL, 1))                          \
        X(-EINVAL, aetask_client_set_max_message_size(NULL, 4096))                              \
        X(-EINVAL, aetask_client_set_max_message_size(c, 10))                                  \
        X(-EINVAL, aetask_client_set_error_handler(NULL, NULL, NULL))                           \
        X(0, aetask_client_get_name(NULL))                                                      \
        X(-EINVAL, aetask_client_get_pool(NULL, NULL, NULL, NULL))                              \
        X(-EINVAL, aetask_client_attach_event(NULL, ev, 0))                                     \
        X(-EBUSY, aetask_client_attach_event(c, ev, 0))                                         \
        X(-EINVAL, aetask_client_detach_event(NULL))                                            \
        X(0, aetask_client_get_event(NULL))                                                     \
        X(-EINVAL, aetask_client_set_journal(NULL, 1))                                          \
        /* aetask-client.h: checkouts */                                                       \
        X(-EINVAL, aetask_client_checkout(NULL, &co))                                           \
        X(-EINVAL, aetask_client_checkout(c, NULL))                                             \
        X(0, aetask_checkout_ref(NULL))                                                         \
        X(0, aetask_checkout_unref(NULL))                                                       \
        X(-EINVAL, aetask_checkout_set_timeout(NULL, 1))                                        \
        X(-EINVAL, aetask_checkout_set_timeout(co, 0))                                          \
        X(-EINVAL, aetask_checkout_set_error_handler(NULL, NULL, NULL))                         \
        X(0, aetask_checkout_set_userdata(NULL, &c))                                            \
        X(0, aetask_checkout_get_userdata(NULL))                                                \
        X(0, aetask_checkout_get_client(NULL))                                                  \
        X(-EINVAL, aetask_checkout_call(NULL, NULL, "x", NULL, NULL, NULL))                           \
        X(-EINVAL, aetask_checkout_call(co, NULL, "", NULL, NULL, NULL))                              \
        X(-EINVAL, aetask_checkout_call(co, NULL, "bad name", NULL, NULL, NULL))                      \
        X(-EINVAL, aetask_checkout_call(co, NULL, "io.aetask.Worker.x", NULL, NULL, NULL))            \
        X(-EINVAL, aetask_checkout_call(co, NULL, "x", not_an_array, NULL, NULL))                     \
        X(-EINVAL, aetask_checkout_throw_fatal_error(NULL, "x"))                                \
        X(-EINVAL, aetask_checkout_get_error(NULL, NULL, NULL))                                 \
        X(-ENODATA, aetask_checkout_get_error(co, NULL, NULL))                                  \
        X(-EINVAL, aetask_checkout_release(NULL))                                               \
        X(0, aetask_error_kind_to_string(0))                                                    \
        X(0, aetask_error_kind_to_string(_AETASK_ERROR_KIND_MAX))                               \
        X(0, aetask_error_kind_to_string((aetask_error_kind) -1))                               \
        X(-EINVAL, aetask_checkout_set_trace_id(NULL, "t"))                                     \
        X(-EINVAL, aetask_checkout_set_trace_id(co, NULL))                                      \
        X(-EINVAL, aetask_checkout_set_trace_id(co, ""))                                        \
        X(-EINVAL, aetask_checkout_set_trace_id(co, "no spaces"))                               \
        X(0, aetask_checkout_get_trace_id(NULL))                                                \
        X(-EINVAL, aetask_checkout_set_log(NULL, lg))                                           \
        X(0, aetask_checkout_get_log(NULL))                                                     \
        /* aetask-client.h: log contexts */                                                    \
        X(-EINVAL, aetask_log_new(NULL))                                                        \
        X(0, aetask_log_ref(NULL))                                                              \
        X(0, aetask_log_unref(NULL))                                                            \
        X(-EINVAL, aetask_log_set_journal(NULL, 1))                                             \
        X(-EINVAL, aetask_log_append(NULL, LOG_INFO, "x"))                                      \
        X(-EINVAL, aetask_log_append(lg, LOG_INFO, NULL))                                       \
        X(-EINVAL, aetask_log_append(lg, -1, "x"))                                              \
        X(-EINVAL, aetask_log_append(lg, LOG_DEBUG + 1, "x"))                                   \
        X(0, aetask_log_get_n_messages(NULL))                                                   \
        X(-EINVAL, aetask_log_get_message(NULL, 0, NULL, NULL, NULL, NULL))                     \
        X(-ERANGE, aetask_log_get_message(lg, 1000, NULL, NULL, NULL, NULL))                    \
        X(0, aetask_log_get_n_timers(NULL))                                                     \
        X(-EINVAL, aetask_log_get_timer(NULL, 0, NULL, NULL, NULL))                             \
        X(-ERANGE, aetask_log_get_timer(lg, 0, NULL, NULL, NULL))                               \
        X(0, aetask_log_get_data(NULL))                                                         \
        X(0, aetask_log_get_dropped(NULL))                                                      \
        X(0, aetask_log_to_json(NULL))                                                          \
        /* aetask-handler.h: outside a worker */                                               \
        X(-EINVAL, aetask_worker_raise(NULL, "x"))                                              \
        X(-EINVAL, raisev_null("x"))                                                            \
        X(-EINVAL, aetask_worker_log(NULL, LOG_INFO, "x"))                                      \
        X(-EINVAL, logv_null("x"))                                                              \
        X(-EINVAL, aetask_worker_timer_start(NULL, "t"))                                        \
        X(-EINVAL, aetask_worker_timer_stop(NULL, 0))                                           \
        X(-EINVAL, aetask_worker_log_data(NULL, "k", json_object_new_int(1)))                   \
        X(0, aetask_worker_get_trace_id(NULL))                                                  \
        X(0, aetask_worker_get_option(NULL, "k"))                                               \
        X(0, aetask_worker_get_handler_name(NULL))                                              \
        X(0, aetask_worker_get_method(NULL))                                                    \
        X(0, aetask_worker_get_number(NULL))                                                    \
        X(0, aetask_worker_get_userdata(NULL))                                                  \
        X(0, aetask_worker_set_userdata(NULL, &c))                                              \
        /* aetask-server.h */                                                                  \
        X(-EINVAL, aetask_server_new(NULL))                                                     \
        X(0, aetask_server_free(NULL))                                                          \
        X(-EINVAL, aetask_server_set_handler(NULL, &no_methods))                                \
        X(-EINVAL, aetask_server_set_handler(sv, NULL))                                         \
        X(-EPROTONOSUPPORT, aetask_server_set_handler(sv, &wrong_abi))                          \
        X(-EINVAL, aetask_server_load_handler(NULL, "echo", NULL))                              \
        X(-EINVAL, aetask_server_load_handler(sv, NULL, NULL))                                  \
        X(-EINVAL, aetask_server_set_name(NULL, "x"))                                           \
        X(-EINVAL, aetask_server_set_hung_timeout(NULL, 1))                                     \
        X(-EINVAL, aetask_server_set_max_message_size(NULL, 4096))                              \
        X(-EINVAL, aetask_server_set_max_message_size(sv, 10))                                  \
        X(-EINVAL, aetask_server_set_max_workers(NULL, 1))                                      \
        X(-EINVAL, aetask_server_set_max_workers(sv, 0))                                        \
        X(-EINVAL, aetask_server_set_max_workers(sv, 65537))                                    \
        X(-EINVAL, aetask_server_set_max_workers_per_uid(NULL, 1))                              \
        X(-EINVAL, aetask_server_set_max_workers_per_uid(sv, 65537))                            \
        X(-EINVAL, aetask_server_set_drain_timeout(NULL, 1))                                    \
        X(-EINVAL, aetask_server_set_option(NULL, "k", "v"))                                    \
        X(-EINVAL, aetask_server_set_option(sv, NULL, "v"))                                     \
        X(-EINVAL, aetask_server_set_option(sv, "", "v"))                                       \
        X(-EINVAL, aetask_server_set_option(sv, "k=x", "v"))                                    \
        X(-EINVAL, aetask_server_set_option(sv, "k", NULL))                                     \
        X(-EINVAL, aetask_server_listen(NULL, "unix:/x"))                                       \
        X(-EINVAL, aetask_server_listen(sv, NULL))                                              \
        X(-EINVAL, aetask_server_listen(sv, "nonsense:/x"))                                     \
        X(-EINVAL, aetask_server_add_listen_fd(NULL, 0))                                        \
        X(-EBADF, aetask_server_add_listen_fd(sv, -1))                                          \
        X(-EINVAL, aetask_server_listen_control(NULL, "unix:/x"))                               \
        X(-EINVAL, aetask_server_listen_control(sv, NULL))                                      \
        X(-EINVAL, aetask_server_add_control_fd(NULL, 0))                                       \
        X(-EBADF, aetask_server_add_control_fd(sv, -1))                                         \
        X(-EINVAL, aetask_server_set_control_group(NULL, 0))                                    \
        X(-EINVAL, aetask_server_run(NULL))                                                     \
        X(-ENOPKG, aetask_server_run(sv))                                                       \
        X(-EINVAL, aetask_server_fork(NULL, NULL, NULL))                                        \
        X(-ENOPKG, aetask_server_fork(sv, NULL, NULL))

static const struct {
        const char *call;
        long expected;
} cases[] = {
#define ENTRY(expected, call) { #call, (long) (expected) },
        MISUSE(ENTRY)
#undef ENTRY
};

static long run_case(size_t i) {
        size_t k = 0;
#define RUN(expected, call)                             \
        if (i == k++)                                   \
                return (long) (intptr_t) (call);
        MISUSE(RUN)
#undef RUN
        return LONG_MIN;
}

static void table_init(void) {
        cr_assert_eq(sd_event_new(&ev), 0);
        cr_assert_eq(aetask_client_new(&c, "unix:/nonexistent/aetask-misuse.sock"), 0);
        cr_assert_eq(aetask_client_attach_event(c, ev, 0), 0);
        cr_assert_eq(aetask_client_checkout(c, &co), 0);
        cr_assert_eq(aetask_log_new(&lg), 0);
        cr_assert_eq(aetask_server_new(&sv), 0);
        not_an_array = json_object_new_object();
}

static void table_fini(void) {
        co = aetask_checkout_unref(co);
        c = aetask_client_unref(c);
        lg = aetask_log_unref(lg);
        sv = aetask_server_free(sv);
        ev = sd_event_unref(ev);
        json_object_put(not_an_array);
}

Test(misuse, null_and_invalid_arguments, .init = table_init, .fini = table_fini) {
        aetask_client *c0 = c;
        aetask_checkout *co0 = co;
        unsigned failed = 0;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                long r = run_case(i);
                if (r != cases[i].expected) {
                        cr_log_error("%s returned %ld (%s), not %ld", cases[i].call, r,
                                     r < 0 && r > -4096 ? strerror((int) -r) : "-", cases[i].expected);
                        failed++;
                }
                /* A failed call leaves its output argument alone. */
                cr_assert_eq(c, c0, "%s changed its output argument", cases[i].call);
                cr_assert_eq(co, co0, "%s changed its output argument", cases[i].call);
        }
        cr_assert_eq(failed, 0, "%u of %zu misuses not refused as expected", failed,
                     sizeof(cases) / sizeof(cases[0]));
}

/* The handler API's checks from inside a worker, where the worker is real. */
static int m_checks(aetask_worker *w, json_object *args, json_object **ret) {
        json_object *a = json_object_new_array();
        json_object_array_add(a, json_object_new_int(aetask_worker_log(w, -1, "x")));
        json_object_array_add(a, json_object_new_int(aetask_worker_log(w, LOG_DEBUG + 1, "x")));
        json_object_array_add(a, json_object_new_int(aetask_worker_log(w, LOG_INFO, NULL)));
        json_object_array_add(a, json_object_new_int(aetask_worker_raise(w, NULL)));
        json_object_array_add(a, json_object_new_int(aetask_worker_timer_start(w, NULL)));
        json_object_array_add(a, json_object_new_int(aetask_worker_timer_stop(w, -1)));
        json_object_array_add(a, json_object_new_int(aetask_worker_timer_stop(w, 12345)));
        int t = aetask_worker_timer_start(w, "t");
        json_object_array_add(a, json_object_new_int(aetask_worker_timer_stop(w, t)));
        json_object_array_add(a, json_object_new_int(aetask_worker_timer_stop(w, t)));  /* twice */
        json_object_array_add(a, json_object_new_int(aetask_worker_log_data(w, NULL, json_object_new_int(1))));
        json_object_array_add(a, json_object_new_boolean(aetask_worker_get_option(w, NULL) == NULL));
        json_object_array_add(a, json_object_new_boolean(aetask_worker_get_option(w, "") == NULL));
        *ret = a;
        return 0;
}

static const aetask_method m_methods[] = { { "checks", m_checks }, {} };
static const aetask_handler m_handler = {
        .abi_version = AETASK_HANDLER_ABI_VERSION,
        .name = "misuse",
        .methods = m_methods,
};

/* ---- Calls, releases and frees at awkward times ------------------------ */


TestSuite(misuse, .fini = fixture_finish, .timeout = 60);

static int m_sleep(aetask_worker *w, json_object *args, json_object **ret) {
        usleep((useconds_t) (json_object_get_double(json_object_array_get_idx(args, 0)) * 1e6));
        *ret = json_object_new_int(getpid());
        return 0;
}

static int m_fail(aetask_worker *w, json_object *args, json_object **ret) {
        return aetask_worker_raise(w, "failed on purpose");
}

static int m_call(aetask_worker *w, json_object *args, json_object **ret) {
        *ret = json_object_get(args);
        return 0;
}

static const aetask_method c_methods[] = { { "sleep", m_sleep }, { "fail", m_fail }, { "checks", m_checks }, {} };
static const aetask_handler c_handler = {
        .abi_version = AETASK_HANDLER_ABI_VERSION,
        .name = "misuse",
        .methods = c_methods,
        .call = m_call,
};

static void start(void) {
        fixture_start(&c_handler, NULL, NULL);
}

typedef struct seen {
        int replies, errors;
        aetask_error_kind kinds[16];
        json_object *result;
        bool done;
} seen;

static int on_reply(aetask_checkout *checkout, json_object *result, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        seen *s = userdata;
        s->replies++;
        json_object_put(s->result);
        s->result = json_object_get(result);
        s->done = true;
        return 0;
}

static void on_error(aetask_checkout *checkout, aetask_error_kind kind, const char *message, void *userdata) {
        seen *s = userdata;
        if (s->errors < 16)
                s->kinds[s->errors] = kind;
        s->errors++;
        s->done = true;
}

Test(misuse, handler_api_checks_inside_a_worker) {
        seen s = {};
        aetask_checkout *k;

        fixture_start(&m_handler, NULL, NULL);
        cr_assert_eq(aetask_client_checkout(client, &k), 0);
        aetask_checkout_set_error_handler(k, on_error, &s);
        cr_assert_eq(aetask_checkout_call(k, NULL, "checks", NULL, on_reply, &s), 0);
        test_run_until(event, &s.done, 10);
        cr_assert_eq(s.replies, 1);
        const long expected[] = { -EINVAL, -EINVAL, -EINVAL, -EINVAL, -EINVAL, -EINVAL, -EINVAL, 0, -EINVAL, -EINVAL, 1, 1 };
        cr_assert_eq(json_object_array_length(s.result), sizeof(expected) / sizeof(expected[0]));
        for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++)
                cr_assert_eq(json_object_get_int(json_object_array_get_idx(s.result, i)), expected[i],
                             "check %zu in the worker: %d, not %ld", i,
                             json_object_get_int(json_object_array_get_idx(s.result, i)), expected[i]);
        json_object_put(s.result);
        aetask_checkout_unref(k);
}

/* Released: calls queued before still run and are answered; new ones fail
 * with -ESTALE; everything else about the checkout still works. */
Test(misuse, a_released_checkout) {
        seen s = {};
        aetask_checkout *k;
        json_object *args = json_tokener_parse("[0.05]");

        start();
        cr_assert_eq(aetask_client_checkout(client, &k), 0);
        aetask_checkout_set_error_handler(k, on_error, &s);
        cr_assert_eq(aetask_checkout_call(k, NULL, "sleep", args, on_reply, &s), 0);
        cr_assert_eq(aetask_checkout_call(k, NULL, "sleep", args, on_reply, &s), 0);
        cr_assert_eq(aetask_checkout_release(k), 1);
        cr_assert_eq(aetask_checkout_release(k), 0, "a second release does nothing");
        cr_assert_eq(aetask_checkout_call(k, NULL, "sleep", args, on_reply, &s), -ESTALE);
        cr_assert_eq(aetask_checkout_call(k, NULL, NULL, NULL, NULL, NULL), -ESTALE);
        cr_assert_eq(aetask_checkout_set_trace_id(k, "late"), -EBUSY);
        test_run_for(event, 0.5);
        cr_assert_eq(s.replies, 2, "calls made before the release are answered");
        cr_assert_eq(s.errors, 0);
        cr_assert_eq(aetask_checkout_call(k, NULL, "sleep", args, on_reply, &s), -ESTALE);
        cr_assert_eq(aetask_checkout_get_error(k, NULL, NULL), -ENODATA);
        cr_assert_not_null(aetask_checkout_get_client(k));
        aetask_checkout_unref(k);
        json_object_put(args);
        json_object_put(s.result);
}

/* Error callbacks that release, unref or free things. */
static void release_in_error(aetask_checkout *k, aetask_error_kind kind, const char *message, void *userdata) {
        seen *s = userdata;
        on_error(k, kind, message, s);
        cr_assert_eq(aetask_checkout_release(k), 1);
        cr_assert_eq(aetask_checkout_call(k, NULL, "sleep", NULL, NULL, NULL), -ESTALE);
        aetask_checkout_unref(k);  /* the test's own reference, given up here */
}

Test(misuse, releasing_a_checkout_inside_its_error_callback) {
        seen s = {};
        aetask_checkout *k;

        start();
        cr_assert_eq(aetask_client_checkout(client, &k), 0);
        aetask_checkout_set_error_handler(k, release_in_error, &s);
        cr_assert_eq(aetask_checkout_call(k, NULL, "fail", NULL, on_reply, &s), 0);
        cr_assert_eq(aetask_checkout_call(k, NULL, "sleep", NULL, on_reply, &s), 0);  /* dropped by the error */
        test_run_until(event, &s.done, 10);
        test_run_for(event, 0.1);
        cr_assert_eq(s.errors, 1);
        cr_assert_eq(s.kinds[0], AETASK_ERROR_HANDLER);
        cr_assert_eq(s.replies, 0);
}

static void free_client_in_error(aetask_checkout *k, aetask_error_kind kind, const char *message, void *userdata) {
        seen *s = userdata;
        on_error(k, kind, message, s);
        if (kind != AETASK_ERROR_CANCELLED)
                client = aetask_client_unref(client);  /* the others are cancelled meanwhile */
}

Test(misuse, freeing_the_client_inside_an_error_callback_with_others_outstanding) {
        seen s = {}, others = {};
        aetask_checkout *k, *k2, *k3;
        json_object *args = json_tokener_parse("[5]");

        start();
        aetask_client_set_max_workers(client, 2);
        cr_assert_eq(aetask_client_checkout(client, &k), 0);
        cr_assert_eq(aetask_client_checkout(client, &k2), 0);
        cr_assert_eq(aetask_client_checkout(client, &k3), 0);
        aetask_checkout_set_error_handler(k, free_client_in_error, &s);
        aetask_checkout_set_error_handler(k2, on_error, &others);
        aetask_checkout_set_error_handler(k3, on_error, &others);
        cr_assert_eq(aetask_checkout_call(k2, NULL, "sleep", args, on_reply, &others), 0);   /* running */
        cr_assert_eq(aetask_checkout_call(k3, NULL, "sleep", args, on_reply, &others), 0);   /* waiting */
        test_run_for(event, 0.2);
        cr_assert_eq(aetask_checkout_call(k, NULL, "fail", NULL, on_reply, &s), 0);          /* waiting too */
        aetask_checkout_unref(k3);  /* held by its call alone */
        cr_assert_eq(aetask_checkout_throw_fatal_error(k, "stop"), 1);
        cr_assert_null(client, "freed in the callback");
        cr_assert_eq(s.errors, 1);
        cr_assert_eq(s.kinds[0], AETASK_ERROR_ABORTED);
        cr_assert_eq(others.errors, 2, "the other checkouts are cancelled");
        cr_assert_eq(others.kinds[0], AETASK_ERROR_CANCELLED);
        cr_assert_eq(others.kinds[1], AETASK_ERROR_CANCELLED);
        cr_assert_eq(aetask_checkout_call(k2, NULL, "sleep", args, on_reply, &others), -ENOTCONN);
        test_run_for(event, 0.1);  /* nothing left to fire */
        cr_assert_eq(others.errors, 2);
        aetask_checkout_unref(k);
        aetask_checkout_unref(k2);
        json_object_put(args);
}

/* The client freed with checkouts in every state: waiting for a worker,
 * running a call, holding an idle worker, released with a call still out,
 * failed with an error still to report, with a log context.  Each is
 * cancelled once (if it had calls), is told its client is gone, and
 * nothing leaks (the ASan and valgrind runs check that). */
Test(misuse, freeing_the_client_cancels_checkouts_in_every_state) {
        seen waiting = {}, running = {}, idle = {}, released = {}, failed = {};
        aetask_checkout *k_waiting, *k_running, *k_idle, *k_released, *k_failed;
        json_object *args = json_tokener_parse("[5]");
        aetask_log *log;

        start();
        aetask_client_set_max_workers(client, 3);
        cr_assert_eq(aetask_log_new(&log), 0);

        cr_assert_eq(aetask_client_checkout(client, &k_idle), 0);
        aetask_checkout_set_error_handler(k_idle, on_error, &idle);
        cr_assert_eq(aetask_checkout_call(k_idle, NULL, NULL, NULL, on_reply, &idle), 0);
        test_run_until(event, &idle.done, 10);  /* answered: it holds an idle worker */

        cr_assert_eq(aetask_client_checkout(client, &k_running), 0);
        aetask_checkout_set_error_handler(k_running, on_error, &running);
        aetask_checkout_set_log(k_running, log);
        cr_assert_eq(aetask_checkout_call(k_running, NULL, "sleep", args, on_reply, &running), 0);

        cr_assert_eq(aetask_client_checkout(client, &k_released), 0);
        aetask_checkout_set_error_handler(k_released, on_error, &released);
        cr_assert_eq(aetask_checkout_call(k_released, NULL, "sleep", args, on_reply, &released), 0);
        cr_assert_eq(aetask_checkout_release(k_released), 1);

        cr_assert_eq(aetask_client_checkout(client, &k_waiting), 0);
        aetask_checkout_set_error_handler(k_waiting, on_error, &waiting);
        cr_assert_eq(aetask_checkout_call(k_waiting, NULL, "sleep", args, on_reply, &waiting), 0);
        cr_assert_eq(aetask_checkout_call(k_waiting, NULL, "sleep", args, on_reply, &waiting), 0);

        cr_assert_eq(aetask_client_checkout(client, &k_failed), 0);
        aetask_checkout_set_error_handler(k_failed, on_error, &failed);
        cr_assert_eq(aetask_checkout_throw_fatal_error(k_failed, "failed first"), 1);
        cr_assert_eq(aetask_checkout_call(k_failed, NULL, NULL, NULL, on_reply, &failed), 0);  /* a report pending */

        test_run_for(event, 0.2);
        unsigned workers, queued;
        aetask_client_get_pool(client, &workers, NULL, &queued);
        cr_assert_eq(queued, 1, "one checkout waits for a worker");

        int reported = failed.errors;
        client = aetask_client_unref(client);
        cr_assert_eq(running.errors, 1);
        cr_assert_eq(running.kinds[0], AETASK_ERROR_CANCELLED);
        cr_assert_eq(released.errors, 1);
        cr_assert_eq(released.kinds[0], AETASK_ERROR_CANCELLED);
        cr_assert_eq(waiting.errors, 1, "cancelled once, however many calls it had");
        cr_assert_eq(waiting.kinds[0], AETASK_ERROR_CANCELLED);
        cr_assert_eq(idle.errors, 0, "a checkout with no call out has nothing to be told");
        cr_assert_geq(failed.errors, reported);
        for (int i = 0; i < failed.errors; i++)
                cr_assert_eq(failed.kinds[i], AETASK_ERROR_ABORTED, "its own error, not cancelled");

        aetask_checkout *all[] = { k_waiting, k_running, k_idle, k_failed };
        for (size_t i = 0; i < 4; i++) {
                cr_assert_null(aetask_checkout_get_client(all[i]));
                cr_assert_eq(aetask_checkout_call(all[i], NULL, NULL, NULL, NULL, NULL), -ENOTCONN);
                aetask_checkout_unref(all[i]);
        }
        cr_assert_null(aetask_checkout_get_client(k_released));
        aetask_checkout_unref(k_released);  /* released, but still referenced */
        test_run_for(event, 0.1);
        aetask_log_unref(log);
        json_object_put(args);
        json_object_put(idle.result);
}

/* Detaching the event loop cancels as freeing does, and the client can be
 * attached again and used. */
Test(misuse, detaching_the_event_loop_cancels_and_the_client_works_again) {
        seen s = {}, again = {};
        aetask_checkout *k;
        json_object *args = json_tokener_parse("[5]");

        start();
        cr_assert_eq(aetask_client_checkout(client, &k), 0);
        aetask_checkout_set_error_handler(k, on_error, &s);
        cr_assert_eq(aetask_checkout_call(k, NULL, "sleep", args, on_reply, &s), 0);
        test_run_for(event, 0.2);
        cr_assert_eq(aetask_client_detach_event(client), 1);
        cr_assert_eq(aetask_client_detach_event(client), 0);
        cr_assert_eq(s.errors, 1);
        cr_assert_eq(s.kinds[0], AETASK_ERROR_CANCELLED);
        aetask_checkout_unref(k);

        cr_assert_eq(aetask_client_attach_event(client, event, 0), 0);
        cr_assert_eq(aetask_client_checkout(client, &k), 0);
        aetask_checkout_set_error_handler(k, on_error, &again);
        cr_assert_eq(aetask_checkout_call(k, NULL, NULL, NULL, on_reply, &again), 0);
        test_run_until(event, &again.done, 10);
        cr_assert_eq(again.replies, 1);
        aetask_checkout_unref(k);
        json_object_put(args);
        json_object_put(again.result);
}

/* What a forked child tries: each entry point of the library on its
 * parent's client (the global one), checkout and slot.  Returns the names of those that did
 * not refuse, for the parent to report. */
static void try_from_child(aetask_checkout *k, aetask_slot *slot, char *out, size_t size) {
        aetask_checkout *k2 = NULL;
        unsigned n;
        const struct {
                const char *name;
                bool refused;
        } checks[] = {
                { "client_checkout", aetask_client_checkout(client, &k2) == -ECHILD },
                { "client_set_name", aetask_client_set_name(client, "x") == -ECHILD },
                { "client_get_name", aetask_client_get_name(client) == NULL },
                { "client_set_min_workers", aetask_client_set_min_workers(client, 3) == -ECHILD },
                { "client_set_max_workers", aetask_client_set_max_workers(client, 3) == -ECHILD },
                { "client_set_timeout", aetask_client_set_timeout(client, 1) == -ECHILD },
                { "client_set_max_checkouts", aetask_client_set_max_checkouts(client, 1) == -ECHILD },
                { "client_set_dont_refork_after_error", aetask_client_set_dont_refork_after_error(client, 1) == -ECHILD },
                { "client_set_max_message_size", aetask_client_set_max_message_size(client, 4096) == -ECHILD },
                { "client_set_error_handler", aetask_client_set_error_handler(client, NULL, NULL) == -ECHILD },
                { "client_get_pool", aetask_client_get_pool(client, &n, &n, &n) == -ECHILD },
                { "client_attach_event", aetask_client_attach_event(client, NULL, 0) == -ECHILD },
                { "client_get_event", aetask_client_get_event(client) == NULL },
                { "client_set_leak_threshold", aetask_client_set_leak_threshold(client, 1) == -ECHILD },
                { "client_set_journal", aetask_client_set_journal(client, 1) == -ECHILD },
                { "checkout_set_timeout", aetask_checkout_set_timeout(k, 1) == -ECHILD },
                { "checkout_set_error_handler", aetask_checkout_set_error_handler(k, NULL, NULL) == -ECHILD },
                { "checkout_set_userdata", aetask_checkout_set_userdata(k, NULL) == NULL },
                { "checkout_get_userdata", aetask_checkout_get_userdata(k) == NULL },
                { "checkout_set_destroy_callback", aetask_checkout_set_destroy_callback(k, NULL) == -ECHILD },
                { "checkout_get_client", aetask_checkout_get_client(k) == NULL },
                { "checkout_call", aetask_checkout_call(k, NULL, NULL, NULL, NULL, NULL) == -ECHILD },
                { "checkout_call_format", aetask_checkout_call_format(k, NULL, NULL, NULL, NULL, "") == -ECHILD },
                { "checkout_throw_fatal_error", aetask_checkout_throw_fatal_error(k, NULL) == -ECHILD },
                { "checkout_get_error", aetask_checkout_get_error(k, NULL, NULL) == -ECHILD },
                { "checkout_set_trace_id", aetask_checkout_set_trace_id(k, "t") == -ECHILD },
                { "checkout_get_trace_id", aetask_checkout_get_trace_id(k) == NULL },
                { "checkout_set_log", aetask_checkout_set_log(k, NULL) == -ECHILD },
                { "checkout_get_log", aetask_checkout_get_log(k) == NULL },
                { "checkout_release", aetask_checkout_release(k) == -ECHILD },
                { "slot_set_destroy_callback", aetask_slot_set_destroy_callback(slot, NULL) == -ECHILD },
                { "slot_set_floating", aetask_slot_set_floating(slot, 1) == -ECHILD },
                { "slot_get_userdata", aetask_slot_get_userdata(slot) == NULL },
                { "slot_get_checkout", aetask_slot_get_checkout(slot) == NULL },
        };

        out[0] = 0;
        for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++)
                if (!checks[i].refused)
                        snprintf(out + strlen(out), size - strlen(out), " %s", checks[i].name);
        /* Unrefs in the child leave the parent's objects alone. */
        aetask_slot_unref(slot);
        aetask_checkout_unref(k);
        aetask_client_unref(client);
}

/* A forked child may not use its parent's client, checkouts or slots:
 * every entry point refuses (-ECHILD, or NULL), and unrefs in the child
 * leave the parent's connections and calls alone. */
Test(misuse, a_forked_child_is_refused) {
        aetask_log *log = NULL;
        aetask_slot *slot = NULL;
        seen s = {};
        aetask_checkout *k;

        start();
        cr_assert_eq(aetask_log_new(&log), 0);
        cr_assert_eq(aetask_client_set_name(client, "parent"), 0);
        cr_assert_eq(aetask_client_checkout(client, &k), 0);
        aetask_checkout_set_error_handler(k, on_error, &s);
        aetask_checkout_set_userdata(k, &s);
        cr_assert_eq(aetask_checkout_set_log(k, log), 0);
        cr_assert_eq(aetask_checkout_call(k, NULL, NULL, NULL, on_reply, &s), 0);
        test_run_until(event, &s.done, 10);
        /* A call in flight while the child runs, with its slot. */
        s.done = false;
        cr_assert_eq(aetask_checkout_call(k, &slot, NULL, NULL, on_reply, &s), 0);

        /* The child's verdict comes down a pipe: its exit status is not
         * its own under valgrind, which counts what it leaves behind (by
         * design: the parent's objects are not the child's to free). */
        int verdict[2];
        cr_assert_eq(pipe(verdict), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                char failed[2048];
                try_from_child(k, slot, failed, sizeof(failed));
                (void) !write(verdict[1], failed, strlen(failed) + 1);
                _exit(0);
        }
        close(verdict[1]);
        char failed[2048] = "(no word from the child)";
        cr_assert_gt(read(verdict[0], failed, sizeof(failed) - 1), 0, "no word from the child");
        close(verdict[0]);
        cr_assert_eq(waitpid(pid, NULL, 0), pid);
        cr_assert_str_empty(failed, "not refused in the child:%s", failed);

        /* The parent's call and checkout still work. */
        test_run_until(event, &s.done, 10);
        cr_assert_eq(s.replies, 2);
        cr_assert_eq(aetask_slot_get_checkout(slot), NULL);  /* its call ended */
        aetask_slot_unref(slot);
        s.done = false;
        cr_assert_eq(aetask_checkout_call(k, NULL, NULL, NULL, on_reply, &s), 0);
        test_run_until(event, &s.done, 10);
        cr_assert_eq(s.replies, 3);
        aetask_checkout_unref(k);
        aetask_log_unref(log);
        json_object_put(s.result);
}
