/* Logging across client and worker: the log context a caller attaches to a
 * checkout, the trace id, and the journal entries both sides write. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "fixture.h"

static int h_setup(aetask_worker *w) {
        aetask_log_info(w, "setup ran");
        return 0;
}

static int h_work(aetask_worker *w, json_object *args, json_object **ret) {
        int n = json_object_get_int(json_object_array_get_idx(args, 0));
        aetask_log_info(w, "work %d", n);
        int t = aetask_worker_timer_start(w, "compute");
        usleep(2000);
        aetask_worker_timer_stop(w, t);
        aetask_worker_log_data(w, "n", json_object_new_int(n));
        *ret = json_object_new_int(getpid());
        return 0;
}

static int h_fail(aetask_worker *w, json_object *args, json_object **ret) {
        aetask_log_warning(w, "about to fail");
        return aetask_worker_raise(w, "failed on purpose");
}

static int h_flood(aetask_worker *w, json_object *args, json_object **ret) {
        int n = json_object_get_int(json_object_array_get_idx(args, 0));
        for (int i = 0; i < n; i++)
                aetask_log_debug(w, "flood line %d with some padding to make it longer", i);
        return 0;
}

/* The seed's logger.t: a timer the worker starts inside the call, and one
 * inside that, stopped (and so sent) innermost first. */
static int h_nested(aetask_worker *w, json_object *args, json_object **ret) {
        int outer = aetask_worker_timer_start(w, "junk");
        usleep(1000);
        int inner = aetask_worker_timer_start(w, "inner");
        usleep(1000);
        aetask_worker_timer_stop(w, inner);
        aetask_worker_timer_stop(w, outer);
        return 0;
}

static int h_sleep(aetask_worker *w, json_object *args, json_object **ret) {
        aetask_log_info(w, "sleeping");
        usleep(2000000);
        return 0;
}

static int h_catch_all(aetask_worker *w, json_object *args, json_object **ret) {
        aetask_log_notice(w, "catch-all with trace %s", aetask_worker_get_trace_id(w) ?: "(none)");
        return 0;
}

static int h_done(aetask_worker *w) {
        aetask_log_info(w, "checkout done");
        return 0;
}

static int h_multiline(aetask_worker *w, json_object *args, json_object **ret) {
        aetask_log_info(w, "first line\nsecond line");
        return 0;
}

/* Text that is not UTF-8 in a message, and a data value that is not JSON
 * (a string that is not UTF-8): the message comes back with U+FFFD in
 * place of the bad byte, the value is refused at once, and the call's other
 * entries come back all the same.  Returns what log_data said. */
static int h_bytes(aetask_worker *w, json_object *args, json_object **ret) {
        aetask_log_info(w, "caf\xe9 au lait");
        int r = aetask_worker_log_data(w, "bad", json_object_new_string("\xff"));
        aetask_worker_log_data(w, "good", json_object_new_int(1));
        *ret = json_object_new_int(r);
        return 0;
}

static const aetask_method h_methods[] = {
        { "bytes", h_bytes }, { "work", h_work }, { "fail", h_fail }, { "flood", h_flood }, { "multiline", h_multiline },
        { "normal", h_nested }, { "sleep", h_sleep }, {}
};

static const aetask_handler logging_handler = {
        .abi_version = AETASK_HANDLER_ABI_VERSION,
        .name = "logging",
        .setup = h_setup,
        .methods = h_methods,
        .call = h_catch_all,
        .checkout_done = h_done,
};

static int replies, errors;
static int worker_pid;
static bool done;

static int on_reply(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        replies++;
        if (json_object_is_type(result, json_type_int))
                worker_pid = json_object_get_int(result);
        done = true;
        return 0;
}

static void on_error(aetask_checkout *co, aetask_error_kind kind, const char *message, void *userdata) {
        errors++;
        done = true;
}

static void call_and_wait(aetask_checkout *co, const char *method, const char *args) {
        json_object *a = args ? json_tokener_parse(args) : NULL;
        done = false;
        cr_assert_eq(aetask_checkout_call(co, NULL, method, a, on_reply, NULL), 0);
        json_object_put(a);
        test_run_until(event, &done, 10);
}

static void start_with(test_server_configure_t configure) {
        fixture_start(&logging_handler, configure, NULL);
        aetask_client_set_error_handler(client, on_error, NULL);
}

static void start(void) {
        fixture_start(&logging_handler, NULL, NULL);
        aetask_client_set_error_handler(client, on_error, NULL);
}

/* A server, and a checkout whose log context is *RET. */
static aetask_checkout *start_logged(aetask_log **ret) {
        aetask_checkout *co;

        start();
        cr_assert_eq(aetask_log_new(ret), 0);
        cr_assert_eq(aetask_client_checkout(client, &co), 0);
        cr_assert_eq(aetask_checkout_set_log(co, *ret), 0);
        return co;
}

TestSuite(log, .fini = fixture_finish);

static int find_message(aetask_log *l, const char *text) {
        for (unsigned i = 0; i < aetask_log_get_n_messages(l); i++) {
                const char *t;
                aetask_log_get_message(l, i, NULL, NULL, NULL, &t);
                if (strcmp(t, text) == 0)
                        return (int) i;
        }
        return -1;
}

Test(log, client_and_worker_messages_interleave_in_time_order) {
        aetask_log *l;
        aetask_checkout *co;

        start();
        cr_assert_eq(aetask_log_new(&l), 0);
        cr_assert_eq(aetask_client_checkout(client, &co), 0);
        aetask_checkout_set_log(co, l);

        aetask_log_append(l, LOG_INFO, "client: before");
        call_and_wait(co, "work", "[1]");
        aetask_log_append(l, LOG_INFO, "client: between");
        call_and_wait(co, "work", "[2]");
        aetask_log_append(l, LOG_INFO, "client: after");

        const char *expected[] = { "client: before", "setup ran", "work 1", "client: between", "work 2", "client: after" };
        int last = -1;
        for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
                int at = find_message(l, expected[i]);
                cr_assert_gt(at, last, "'%s' at %d, after %d", expected[i], at, last);
                last = at;
        }
        uint64_t prev = 0;
        for (unsigned i = 0; i < aetask_log_get_n_messages(l); i++) {
                uint64_t t;
                pid_t pid;
                const char *text;
                aetask_log_get_message(l, i, &t, &pid, NULL, &text);
                cr_assert_geq(t, prev, "messages are in time order");
                prev = t;
                cr_assert_eq(pid, strncmp(text, "client:", 7) == 0 ? getpid() : worker_pid,
                             "'%s' has the pid of its origin", text);
        }
        cr_assert_neq(worker_pid, getpid());
        aetask_checkout_unref(co);
        aetask_log_unref(l);
}

Test(log, every_call_is_timed_and_worker_timers_and_data_come_back) {
        aetask_log *l;
        aetask_checkout *co;

        co = start_logged(&l);
        call_and_wait(co, "work", "[7]");
        call_and_wait(co, NULL, "[]");

        bool seen_work = false, seen_anonymous = false, seen_compute = false;
        for (unsigned i = 0; i < aetask_log_get_n_timers(l); i++) {
                const char *name;
                uint64_t start, duration;
                aetask_log_get_timer(l, i, &name, &start, &duration);
                cr_assert_gt(start, 0);
                if (strcmp(name, "work") == 0) {
                        seen_work = true;
                        cr_assert_geq(duration, 2000, "the call took at least the worker's 2 ms");
                } else if (strcmp(name, "->()") == 0)
                        seen_anonymous = true;
                else if (strcmp(name, "compute") == 0) {
                        seen_compute = true;
                        cr_assert_geq(duration, 2000);
                }
        }
        cr_assert(seen_work && seen_anonymous && seen_compute);

        json_object *n;
        cr_assert(json_object_object_get_ex(aetask_log_get_data(l), "n", &n));
        cr_assert_eq(json_object_get_int(n), 7);

        json_object *all = aetask_log_to_json(l);
        json_object *logs, *timers;
        cr_assert(json_object_object_get_ex(all, "logs", &logs));
        cr_assert(json_object_object_get_ex(all, "timers", &timers));
        cr_assert_eq(json_object_array_length(timers), 3);
        json_object_put(all);
        aetask_checkout_unref(co);
        aetask_log_unref(l);
}

Test(log, timers_are_kept_in_the_order_they_started) {
        aetask_log *l;
        aetask_checkout *co;
        const char *expected[] = { "normal", "junk", "inner", "normal", "junk", "inner" };

        co = start_logged(&l);
        call_and_wait(co, "normal", NULL);
        call_and_wait(co, "normal", NULL);

        /* The call's own timer first, then the worker's, as they started. */
        cr_assert_eq(aetask_log_get_n_timers(l), 6);
        uint64_t prev = 0;
        for (unsigned i = 0; i < 6; i++) {
                const char *name;
                uint64_t start;
                aetask_log_get_timer(l, i, &name, &start, NULL);
                cr_assert_str_eq(name, expected[i], "timer %u", i);
                cr_assert_geq(start, prev);
                prev = start;
        }
        aetask_checkout_unref(co);
        aetask_log_unref(l);
}

Test(log, logs_are_kept_when_the_call_fails) {
        aetask_log *l;
        aetask_checkout *co;

        co = start_logged(&l);
        call_and_wait(co, "fail", NULL);
        cr_assert_eq(errors, 1);
        cr_assert_geq(find_message(l, "about to fail"), 0, "the worker's message came back with the error");
        aetask_checkout_unref(co);
        aetask_log_unref(l);
}

static int bytes_result;

static int on_bytes_reply(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        bytes_result = error ? 1 : json_object_get_int(result);
        done = true;
        return 0;
}

Test(log, entries_that_are_not_utf8_are_mended_or_refused_and_the_rest_come_back) {
        aetask_log *l;
        aetask_checkout *co;

        co = start_logged(&l);
        done = false;
        cr_assert_eq(aetask_checkout_call(co, NULL, "bytes", NULL, on_bytes_reply, NULL), 0);
        test_run_until(event, &done, 10);
        cr_assert_eq(bytes_result, -EINVAL, "a data value that is not JSON is refused: %d", bytes_result);
        cr_assert_geq(find_message(l, "caf\xef\xbf\xbd au lait"), 0, "the message came back, mended");
        json_object *data = aetask_log_get_data(l);
        cr_assert_not_null(data);
        cr_assert_not_null(json_object_object_get(data, "good"));
        cr_assert_null(json_object_object_get(data, "bad"));
        aetask_checkout_unref(co);
        aetask_log_unref(l);
}

Test(log, a_flood_is_capped_and_counted) {
        aetask_log *l;
        aetask_checkout *co;

        co = start_logged(&l);
        call_and_wait(co, "flood", "[100000]");
        cr_assert_eq(replies, 1);
        /* The reply stayed bounded: at most 1000 entries came back ... */
        cr_assert_leq(aetask_log_get_n_messages(l), 1000);
        cr_assert_geq(aetask_log_get_n_messages(l), 500);
        /* ... and the rest is a number, not lost silently. */
        cr_assert_eq(aetask_log_get_n_messages(l) + aetask_log_get_dropped(l), 100000 + 1 /* setup */);
        aetask_checkout_unref(co);
        aetask_log_unref(l);
}

Test(log, the_checkout_done_hook_logs_into_the_context_after_release) {
        aetask_log *l;
        aetask_checkout *co;

        co = start_logged(&l);
        call_and_wait(co, "work", "[1]");
        aetask_checkout_unref(co);
        for (int i = 0; i < 100 && find_message(l, "checkout done") < 0; i++)
                test_run_for(event, 0.01);
        cr_assert_geq(find_message(l, "checkout done"), 0);
        aetask_log_unref(l);
}

/* ---- The finish callback, Log::Defer's ------------------------------ */

static int finished;
static bool done_logged_at_finish;

static void on_finish(aetask_log *l, void *userdata) {
        finished++;
        done_logged_at_finish = find_message(l, "checkout done") >= 0;
        *(aetask_log **) userdata = NULL;  /* the test's pointer is dangling from here */
}

Test(log, the_finish_callback_runs_once_after_the_checkout_is_released) {
        aetask_log *l;
        aetask_checkout *co;

        start();
        cr_assert_eq(aetask_log_new(&l), 0);
        cr_assert_eq(aetask_log_set_finish_callback(NULL, on_finish, NULL), -EINVAL);
        cr_assert_eq(aetask_log_set_finish_callback(l, on_finish, &l), 0);
        aetask_client_checkout(client, &co);
        aetask_checkout_set_log(co, l);
        aetask_log_unref(l);  /* the checkout holds it now */
        call_and_wait(co, "work", "[1]");
        cr_assert_eq(finished, 0, "finished while the checkout holds it");
        aetask_checkout_unref(co);
        for (int i = 0; i < 500 && finished == 0; i++)
                test_run_for(event, 0.01);
        cr_assert_eq(finished, 1);
        cr_assert(done_logged_at_finish, "the worker's checkout_done lines are in the log when it finishes");
        test_run_for(event, 0.2);
        cr_assert_eq(finished, 1, "ran exactly once");
}

static void keep_it(aetask_log *l, void *userdata) {
        finished++;
        *(aetask_log **) userdata = aetask_log_ref(l);
}

Test(log, a_reference_taken_in_the_finish_callback_keeps_the_log_without_a_second_run) {
        aetask_log *l, *kept = NULL;

        aetask_log_new(&l);
        aetask_log_append(l, LOG_INFO, "still here");
        aetask_log_set_finish_callback(l, keep_it, &kept);
        aetask_log_unref(l);
        cr_assert_eq(finished, 1);
        cr_assert_eq(kept, l);
        cr_assert_eq(find_message(kept, "still here"), 0);
        aetask_log_unref(kept);
        cr_assert_eq(finished, 1);
}

Test(log, a_timed_out_checkout_does_not_keep_its_log_alive) {
        aetask_log *l;
        aetask_checkout *co;

        start();
        aetask_log_new(&l);
        aetask_log_set_finish_callback(l, on_finish, &l);
        aetask_client_checkout(client, &co);
        aetask_checkout_set_timeout(co, 200 * 1000);
        aetask_checkout_set_log(co, l);
        aetask_log_unref(l);
        call_and_wait(co, "sleep", NULL);
        cr_assert_eq(errors, 1, "the call timed out");
        cr_assert_eq(finished, 0);
        aetask_checkout_unref(co);
        /* Well before the worker would have answered. */
        for (int i = 0; i < 50 && finished == 0; i++)
                test_run_for(event, 0.01);
        cr_assert_eq(finished, 1, "the log finished when the timed-out checkout was released");
}

Test(log, the_trace_id_reaches_the_worker) {
        aetask_log *l;
        aetask_checkout *co;

        start();
        aetask_log_new(&l);
        aetask_client_checkout(client, &co);
        cr_assert_eq(aetask_checkout_set_trace_id(co, "request-42"), 0);
        cr_assert_eq(aetask_checkout_set_trace_id(co, "bad id with spaces"), -EINVAL);
        aetask_checkout_set_log(co, l);
        call_and_wait(co, NULL, NULL);
        cr_assert_geq(find_message(l, "catch-all with trace request-42"), 0);
        cr_assert_eq(aetask_checkout_set_trace_id(co, "too-late"), -EBUSY);
        aetask_checkout_unref(co);

        /* Without one set, each checkout gets a different one. */
        aetask_checkout *a, *b;
        aetask_client_checkout(client, &a);
        aetask_client_checkout(client, &b);
        cr_assert_str_neq(aetask_checkout_get_trace_id(a), aetask_checkout_get_trace_id(b));
        aetask_checkout_unref(a);
        aetask_checkout_unref(b);
        aetask_log_unref(l);
}

/* ---- The journal, through a socket that stands in for journald --------- */

static int journal_fd = -1;
static char journal_path[128];

static void fake_journal(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(journal_path, sizeof(journal_path), "/tmp/aetask-journal-%d.sock", (int) getpid());
        unlink(journal_path);
        strcpy(sa.sun_path, journal_path);
        journal_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        cr_assert_geq(journal_fd, 0);
        cr_assert_eq(bind(journal_fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        setenv("AETASK_JOURNAL_SOCKET", journal_path, 1);
}

/* The entries, each "FIELD=value\n..." text, read as they come: a datagram
 * socket queues only a few, and senders that find it full drop or wait. */
static char entries[256][4096];
static size_t entry_sizes[256];
static int n_entries;

static int on_journal(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        while (n_entries < 256) {
                ssize_t r = recv(fd, entries[n_entries], 4095, 0);
                if (r < 0)
                        break;
                entry_sizes[n_entries] = (size_t) r;
                entries[n_entries++][r] = 0;
        }
        return 0;
}

static bool has_field(const char *entry, const char *field) {
        const char *p = entry;
        size_t l = strlen(field);
        while (p && *p) {
                if (strncmp(p, field, l) == 0 && (p[l] == '\n' || p[l] == 0))
                        return true;
                p = strchr(p, '\n');
                if (p)
                        p++;
        }
        return false;
}

Test(log, journal_entries_of_client_and_worker_share_the_trace_id) {
        aetask_checkout *co, *other;
        char trace[128];

        fake_journal();
        start();
        cr_assert_geq(sd_event_add_io(event, NULL, journal_fd, EPOLLIN, on_journal, NULL), 0);
        aetask_client_set_journal(client, 1);
        aetask_client_checkout(client, &co);
        aetask_checkout_set_trace_id(co, "trace-one");
        call_and_wait(co, "work", "[3]");
        aetask_checkout_unref(co);
        aetask_client_checkout(client, &other);
        aetask_checkout_set_trace_id(other, "trace-two");
        call_and_wait(other, "work", "[4]");
        aetask_checkout_unref(other);
        test_run_for(event, 0.2);

        int n = n_entries;
        int client_one = 0, worker_one = 0, two = 0;
        snprintf(trace, sizeof(trace), "AETASK_TRACE=trace-one");
        for (int i = 0; i < n; i++) {
                if (has_field(entries[i], "AETASK_TRACE=trace-two"))
                        two++;
                if (!has_field(entries[i], trace))
                        continue;
                if (has_field(entries[i], "AETASK_ORIGIN=client"))
                        client_one++;
                if (has_field(entries[i], "AETASK_ORIGIN=worker")) {
                        worker_one++;
                        cr_assert(has_field(entries[i], "AETASK_HANDLER=logging"), "%s", entries[i]);
                        cr_assert(strstr(entries[i], "AETASK_WORKER_PID="), "%s", entries[i]);
                        cr_assert(strstr(entries[i], "AETASK_WORKER="), "%s", entries[i]);
                        cr_assert(strstr(entries[i], "PRIORITY=6"), "%s", entries[i]);
                }
        }
        /* queued or assigned, the call, released; setup, work and done lines. */
        cr_assert_geq(client_one, 3, "client entries for trace-one: %d of %d", client_one, n);
        cr_assert_geq(worker_one, 3, "worker entries for trace-one: %d of %d", worker_one, n);
        cr_assert_gt(two, 0);
        close(journal_fd);
        unlink(journal_path);
}

/* journald's native protocol: a value with a newline goes as the name, a
 * newline, its length as 64-bit little endian, the bytes, a newline. */
Test(log, a_journal_field_with_newlines_is_sent_with_its_length) {
        static const char field[] = "MESSAGE\n\x16\0\0\0\0\0\0\0first line\nsecond line\n";
        aetask_checkout *co;
        int found = 0;

        fake_journal();
        start();
        cr_assert_geq(sd_event_add_io(event, NULL, journal_fd, EPOLLIN, on_journal, NULL), 0);
        aetask_client_set_journal(client, 1);
        aetask_client_checkout(client, &co);
        call_and_wait(co, "multiline", NULL);
        aetask_checkout_unref(co);
        test_run_for(event, 0.2);

        for (int i = 0; i < n_entries; i++)
                if (memmem(entries[i], entry_sizes[i], field, sizeof(field) - 1)) {
                        found++;
                        cr_assert(memmem(entries[i], entry_sizes[i], "\nAETASK_ORIGIN=worker\n", 22),
                                  "a worker's entry");
                }
        cr_assert_eq(found, 1, "the two-line message, once, in %d entries", n_entries);
        cr_assert(!memmem(entries, sizeof(entries), "MESSAGE=first line", 18), "not as a plain field");
        close(journal_fd);
        unlink(journal_path);
}

/* The worker's own entry per call, at the call log level. */
static int call_entries(const char *trace) {
        int n = 0;
        for (int i = 0; i < n_entries; i++)
                n += has_field(entries[i], "AETASK_ORIGIN=worker") && has_field(entries[i], "AETASK_EVENT=call") &&
                     has_field(entries[i], trace);
        return n;
}

static void calls_at_info(aetask_server *s, void *userdata) {
        cr_assert_eq(aetask_server_set_call_log_level(s, LOG_INFO), 0);
        cr_assert_eq(aetask_server_set_call_log_level(s, 8), -EINVAL);
}

static void traced_checkout(const char *trace) {
        aetask_checkout *co;

        cr_assert_geq(sd_event_add_io(event, NULL, journal_fd, EPOLLIN, on_journal, NULL), 0);
        aetask_client_checkout(client, &co);
        aetask_checkout_set_trace_id(co, trace);
        call_and_wait(co, "work", "[5]");
        call_and_wait(co, "fail", NULL);
        aetask_checkout_unref(co);
        test_run_for(event, 0.2);
}

Test(log, the_worker_writes_one_entry_per_call_at_the_call_log_level) {
        fake_journal();
        start_with(calls_at_info);
        traced_checkout("trace-calls");
        cr_assert_eq(call_entries("AETASK_TRACE=trace-calls"), 2, "%d entries", n_entries);
        for (int i = 0; i < n_entries; i++) {
                if (!has_field(entries[i], "AETASK_EVENT=call") || !has_field(entries[i], "AETASK_ORIGIN=worker"))
                        continue;
                cr_assert(has_field(entries[i], "PRIORITY=6"), "%s", entries[i]);
                cr_assert(strstr(entries[i], "AETASK_DURATION_USEC="), "%s", entries[i]);
                if (has_field(entries[i], "AETASK_METHOD=work")) {
                        cr_assert(has_field(entries[i], "AETASK_OUTCOME=answered"), "%s", entries[i]);
                        cr_assert(strstr(entries[i], "MESSAGE=Call work answered after "), "%s", entries[i]);
                } else {
                        cr_assert(has_field(entries[i], "AETASK_METHOD=fail"), "%s", entries[i]);
                        cr_assert(has_field(entries[i], "AETASK_OUTCOME=failed"), "%s", entries[i]);
                        cr_assert(strstr(entries[i], ": failed on purpose"), "%s", entries[i]);
                }
        }
        close(journal_fd);
        unlink(journal_path);
}

Test(log, by_default_the_call_entries_are_debug_and_not_written) {
        unsetenv("AETASK_DEBUG");
        fake_journal();
        start();
        traced_checkout("trace-quiet");
        cr_assert_gt(n_entries, 0, "the handler's own lines are written");
        cr_assert_eq(call_entries("AETASK_TRACE=trace-quiet"), 0);
        close(journal_fd);
        unlink(journal_path);
}
