/* Slots and per-call outcomes against a real forked server: cancelling a
 * call before it is sent, while it runs, and from inside callbacks; destroy
 * callbacks that run exactly once whatever ends a call; and each call's
 * handler learning its own error, with the seed's rule on top (an error
 * clears the queue, reaches the checkout's error handler, fatal ones stick). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "time-util.h"

/* ---- A handler that records what its worker ran ------------------------ */

static json_object *ran;

static int t_record(aetask_worker *w, json_object *args, json_object **ret) {
        json_object *name = json_object_array_get_idx(args, 0);
        double secs = json_object_get_double(json_object_array_get_idx(args, 1));

        if (secs > 0)
                usleep((useconds_t) (secs * 1e6));
        if (!ran)
                ran = json_object_new_array();
        json_object_array_add(ran, json_object_get(name));
        *ret = json_object_get(name);
        return 0;
}

static int t_ran(aetask_worker *w, json_object *args, json_object **ret) {
        *ret = ran ? json_object_get(ran) : json_object_new_array();
        return 0;
}

static int t_fail(aetask_worker *w, json_object *args, json_object **ret) {
        return aetask_worker_raise(w, "%s", json_object_get_string(json_object_array_get_idx(args, 0)));
}

static int t_exit(aetask_worker *w, json_object *args, json_object **ret) {
        _exit(3);
}

static int t_args(aetask_worker *w, json_object *args, json_object **ret) {
        *ret = json_object_get(args);
        return 0;
}

static int t_deadline(aetask_worker *w, json_object *args, json_object **ret) {
        uint64_t deadline = aetask_worker_get_deadline(w), now = now_usec(CLOCK_MONOTONIC);
        *ret = json_object_new_int64(deadline == UINT64_MAX ? -1 : (int64_t) (deadline - now));
        return 0;
}

static const aetask_method t_methods[] = {
        { "args", t_args }, { "deadline", t_deadline }, { "record", t_record }, { "ran", t_ran }, { "fail", t_fail }, { "exit", t_exit }, {}
};

static const aetask_handler recording_handler = {
        .abi_version = AETASK_HANDLER_ABI_VERSION,
        .name = "recording",
        .methods = t_methods,
};

/* ---- One call's outcome, as its handler and destroy callback see it ----- */

typedef struct outcome {
        int runs, destroys;
        aetask_error_kind kind;           /* 0: a result */
        char text[256];                   /* the result as JSON, or the message */
        int ret;                          /* what the handler returns */
        aetask_slot **cancel[3];          /* slots the handler unrefs */
} outcome;

static int on_outcome(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        outcome *o = userdata;

        o->runs++;
        o->kind = error ? error->kind : 0;
        snprintf(o->text, sizeof(o->text), "%s",
                 error ? error->message : json_object_to_json_string_ext(result, JSON_C_TO_STRING_PLAIN));
        for (size_t i = 0; i < 3 && o->cancel[i]; i++)
                *o->cancel[i] = aetask_slot_unref(*o->cancel[i]);
        return o->ret;
}

static void on_destroy(void *userdata) {
        ((outcome *) userdata)->destroys++;
}

typedef struct errors {
        int n;
        aetask_error_kind kind;
        char message[256];
} errors;

static void on_checkout_error(aetask_checkout *co, aetask_error_kind kind, const char *message, void *userdata) {
        errors *e = userdata;
        e->n++;
        e->kind = kind;
        snprintf(e->message, sizeof(e->message), "%s", message);
}


static void start(void) {
        fixture_start(&recording_handler, NULL, NULL);
        aetask_client_set_max_workers(client, 1);
}

TestSuite(slots, .init = start, .fini = fixture_finish);

static json_object *args_of(const char *name, double secs) {
        json_object *a = json_object_new_array();
        json_object_array_add(a, json_object_new_string(name));
        json_object_array_add(a, json_object_new_double(secs));
        return a;
}

/* A call with a slot and a destroy callback. */
static aetask_slot *call(aetask_checkout *co, const char *method, const char *name, double secs, outcome *o) {
        json_object *a = args_of(name, secs);
        aetask_slot *slot = NULL;

        cr_assert_eq(aetask_checkout_call(co, &slot, method, a, on_outcome, o), 0);
        json_object_put(a);
        cr_assert_not_null(slot);
        cr_assert_eq(aetask_slot_get_userdata(slot), o);
        cr_assert_eq(aetask_slot_get_checkout(slot), co);
        cr_assert_eq(aetask_slot_set_destroy_callback(slot, on_destroy), 0);
        return slot;
}

static void wait_for(outcome *o) {
        for (int i = 0; i < 1000 && !o->runs; i++)
                test_run_for(event, 0.01);
        cr_assert(o->runs > 0, "the call never ended");
}

/* What the worker ran, as JSON. */
static void expect_ran(aetask_checkout *co, const char *expected) {
        outcome o = {};
        aetask_slot *s = call(co, "ran", "", 0, &o);
        wait_for(&o);
        cr_assert_eq(o.kind, 0, "ran failed: %s", o.text);
        cr_assert_str_eq(o.text, expected);
        aetask_slot_unref(s);
        cr_assert_eq(o.destroys, 1);
}

Test(slots, cancel_before_send_drops_the_call) {
        aetask_checkout *co;
        outcome busy = {}, dropped = {}, after = {};
        errors e = {};

        cr_assert_eq(aetask_client_checkout(client, &co), 0);
        aetask_checkout_set_error_handler(co, on_checkout_error, &e);
        aetask_slot *s1 = call(co, "record", "busy", 0.1, &busy);
        aetask_slot *s2 = call(co, "record", "dropped", 0, &dropped);
        aetask_slot *s3 = call(co, "record", "after", 0, &after);

        /* Nothing is sent yet: the checkout waits for a worker. */
        s2 = aetask_slot_unref(s2);
        cr_assert_eq(dropped.destroys, 1, "the destroy callback runs at the cancel");
        wait_for(&after);
        cr_assert_eq(busy.runs, 1);
        cr_assert_eq(after.runs, 1);
        cr_assert_eq(dropped.runs, 0, "a cancelled call's handler never runs");
        expect_ran(co, "[\"busy\",\"after\"]");
        cr_assert_eq(e.n, 0);

        /* Cancelling the only call of a checkout waiting for the one
         * worker (CO holds it): it stops waiting, and is still usable. */
        aetask_checkout *co2;
        cr_assert_eq(aetask_client_checkout(client, &co2), 0);
        outcome lone = {};
        aetask_slot *s4 = call(co2, "record", "lone", 0, &lone);
        unsigned queued = 0;
        aetask_client_get_pool(client, NULL, NULL, &queued);
        cr_assert_eq(queued, 1);
        aetask_slot_unref(s4);
        cr_assert_eq(lone.destroys, 1);
        aetask_client_get_pool(client, NULL, NULL, &queued);
        cr_assert_eq(queued, 0, "a checkout whose calls were all cancelled does not wait for a worker");
        aetask_slot_unref(s1);
        aetask_slot_unref(s3);
        cr_assert_eq(busy.destroys, 1);
        cr_assert_eq(after.destroys, 1);
        aetask_checkout_unref(co);
        test_run_for(event, 0.1);
        cr_assert_eq(lone.runs, 0);
        expect_ran(co2, "[\"busy\",\"after\"]");
        aetask_checkout_unref(co2);
}

/* A request that owns its slot and lets go of it when it is destroyed, as
 * a daemon's request object does: the destroy callback, run by the last
 * unref, unrefs the same slot again.  Nothing is freed twice (ASan and
 * valgrind watch), and a request whose call ended normally lets go the same
 * way. */
typedef struct request {
        aetask_slot *slot;
        int *destroys;
} request;

static void request_destroy(void *userdata) {
        request *r = userdata;
        (*r->destroys)++;
        aetask_slot_unref(r->slot);  /* not cleared first: the hazard */
        free(r);
}

static int on_request_reply(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        return 0;
}

static request *new_request(aetask_checkout *co, const char *name, double secs, int *destroys) {
        request *r = calloc(1, sizeof(*r));
        json_object *a = args_of(name, secs);

        r->destroys = destroys;
        cr_assert_eq(aetask_checkout_call(co, &r->slot, "record", a, on_request_reply, r), 0);
        json_object_put(a);
        cr_assert_eq(aetask_slot_set_destroy_callback(r->slot, request_destroy), 0);
        return r;
}

Test(slots, a_destroy_callback_may_unref_its_own_slot) {
        aetask_checkout *co;
        int destroys = 0;

        cr_assert_eq(aetask_client_checkout(client, &co), 0);
        request *running = new_request(co, "running", 0.1, &destroys);
        request *queued = new_request(co, "queued", 0, &destroys);
        aetask_slot_unref(queued->slot);  /* cancelled before it is sent */
        cr_assert_eq(destroys, 1);

        test_run_for(event, 0.02);
        aetask_slot_unref(running->slot);  /* cancelled in flight */
        cr_assert_eq(destroys, 2);

        outcome done = {};
        aetask_slot *last = call(co, "record", "last", 0, &done);
        request *answered = new_request(co, "answered", 0, &destroys);
        aetask_slot_ref(answered->slot);  /* kept past its call's end */
        aetask_slot *kept = answered->slot;
        wait_for(&done);
        for (int i = 0; i < 100 && destroys < 3; i++)
                test_run_for(event, 0.01);
        cr_assert_eq(destroys, 3, "a call that ended ran its destroy callback");
        cr_assert_null(aetask_slot_get_checkout(kept), "the slot outlives its call");
        aetask_slot_unref(kept);
        aetask_slot_unref(last);
        expect_ran(co, "[\"running\",\"last\",\"answered\"]");
        aetask_checkout_unref(co);
}

Test(slots, cancel_in_flight_discards_the_reply_and_keeps_the_checkout) {
        aetask_checkout *co;
        outcome slow = {}, failing = {}, next = {};
        errors e = {};

        cr_assert_eq(aetask_client_checkout(client, &co), 0);
        aetask_checkout_set_error_handler(co, on_checkout_error, &e);
        aetask_slot *s = call(co, "record", "slow", 0.3, &slow);
        test_run_for(event, 0.1);  /* sent, and running */
        s = aetask_slot_unref(s);
        cr_assert_eq(slow.destroys, 1);
        aetask_slot *n = call(co, "record", "next", 0, &next);
        wait_for(&next);
        cr_assert_eq(slow.runs, 0, "the reply of a cancelled call is discarded");
        cr_assert_eq(next.kind, 0, "%s", next.text);
        /* The worker was not stopped: it ran the cancelled call to its end. */
        expect_ran(co, "[\"slow\",\"next\"]");
        aetask_slot_unref(n);

        /* A cancelled call's handler error is nobody's: the queue goes on. */
        aetask_slot *f = call(co, "fail", "boom", 0, &failing);
        outcome behind = {};
        aetask_slot *b = call(co, "record", "behind", 0, &behind);
        f = aetask_slot_unref(f);
        wait_for(&behind);
        cr_assert_eq(failing.runs, 0);
        cr_assert_eq(behind.kind, 0, "%s", behind.text);
        cr_assert_eq(e.n, 0, "no error reached the checkout: %s", e.message);
        aetask_slot_unref(b);
        aetask_checkout_unref(co);
}

Test(slots, cancel_from_inside_callbacks) {
        aetask_checkout *co;
        outcome first = {}, in_flight = {}, queued = {}, last = {}, self = {};

        cr_assert_eq(aetask_client_checkout(client, &co), 0);
        aetask_slot *s1 = call(co, "record", "first", 0, &first);
        aetask_slot *s2 = call(co, "record", "second", 0.2, &in_flight);
        aetask_slot *s3 = call(co, "record", "third", 0, &queued);
        aetask_slot *s4 = call(co, "record", "fourth", 0, &last);
        /* The second is sent before the first's handler runs: one in flight, one queued. */
        first.cancel[0] = &s2;
        first.cancel[1] = &s3;
        wait_for(&last);
        cr_assert_eq(first.runs, 1);
        cr_assert_eq(in_flight.runs, 0);
        cr_assert_eq(queued.runs, 0);
        cr_assert_eq(in_flight.destroys, 1);
        cr_assert_eq(queued.destroys, 1);
        cr_assert_null(s2);
        cr_assert_null(s3);
        expect_ran(co, "[\"first\",\"second\",\"fourth\"]");

        /* A handler that drops its own slot: its destroy runs once, after it. */
        aetask_slot *s5 = call(co, "record", "self", 0, &self);
        self.cancel[0] = &s5;
        wait_for(&self);
        cr_assert_eq(self.runs, 1);
        cr_assert_eq(self.destroys, 1);
        cr_assert_null(s5);

        aetask_slot_unref(s1);
        aetask_slot_unref(s4);
        cr_assert_eq(first.destroys, 1);
        cr_assert_eq(last.destroys, 1);
        aetask_checkout_unref(co);
}

static int checkout_destroys;

static void on_checkout_destroy(void *userdata) {
        checkout_destroys++;
        cr_assert_eq(userdata, &checkout_destroys);
}

Test(slots, destroy_callbacks_run_once_also_when_the_client_is_freed) {
        aetask_checkout *co;
        outcome floating = {}, held = {}, queued = {}, done = {};

        checkout_destroys = 0;
        cr_assert_eq(aetask_client_checkout(client, &co), 0);
        aetask_checkout_set_userdata(co, &checkout_destroys);
        cr_assert_eq(aetask_checkout_set_destroy_callback(co, on_checkout_destroy), 0);

        /* A floating call that completes: destroyed once, after its handler. */
        aetask_slot *s = call(co, "record", "done", 0, &done);
        cr_assert_eq(aetask_slot_set_floating(s, 1), 1);
        aetask_slot_unref(s);
        wait_for(&done);
        cr_assert_eq(done.destroys, 1);

        /* One running, one held, one floating behind: the client goes. */
        aetask_slot *h = call(co, "record", "held", 0.5, &held);
        s = call(co, "record", "queued", 0, &queued);
        aetask_slot_set_floating(s, 1);
        aetask_slot_unref(s);
        aetask_slot *f = NULL;
        cr_assert_eq(aetask_checkout_call(co, &f, "record", NULL, on_outcome, &floating), 0);
        aetask_slot_set_destroy_callback(f, on_destroy);
        aetask_slot_set_floating(f, 1);
        aetask_slot_unref(f);
        test_run_for(event, 0.1);

        client = aetask_client_unref(client);
        cr_assert_eq(held.runs, 1);
        cr_assert_eq(held.kind, AETASK_ERROR_CANCELLED);
        cr_assert_eq(queued.kind, AETASK_ERROR_CANCELLED);
        cr_assert_eq(held.destroys, 1);
        cr_assert_eq(queued.destroys, 1);
        cr_assert_eq(floating.destroys, 1);
        cr_assert_null(aetask_slot_get_checkout(h), "the held slot's call has ended");
        cr_assert_eq(aetask_slot_set_destroy_callback(h, on_destroy), -ESTALE);
        aetask_slot_unref(h);
        cr_assert_eq(held.destroys, 1, "unreffing a slot whose call ended destroys nothing");
        cr_assert_eq(checkout_destroys, 0, "the caller still holds the checkout");
        aetask_checkout_unref(co);
        cr_assert_eq(checkout_destroys, 1);
}

Test(slots, each_call_gets_its_error_and_the_seed_rule_holds) {
        aetask_checkout *co;
        outcome ok = {}, failing = {}, behind = {}, again = {};
        errors e = {};

        cr_assert_eq(aetask_client_checkout(client, &co), 0);
        aetask_checkout_set_error_handler(co, on_checkout_error, &e);
        aetask_slot *s1 = call(co, "record", "ok", 0, &ok);
        aetask_slot *s2 = call(co, "fail", "boom", 0, &failing);
        aetask_slot *s3 = call(co, "record", "behind", 0, &behind);
        wait_for(&behind);
        cr_assert_eq(ok.kind, 0);
        cr_assert_eq(failing.kind, AETASK_ERROR_HANDLER);
        cr_assert_str_eq(failing.text, "boom");
        cr_assert_eq(behind.kind, AETASK_ERROR_CANCELLED, "the error cleared the queue");
        cr_assert_str_eq(behind.text, "not run: an earlier call on the checkout failed");
        cr_assert_eq(e.n, 1, "the checkout's error handler ran once");
        cr_assert_eq(e.kind, AETASK_ERROR_HANDLER);
        cr_assert_eq(ok.destroys + failing.destroys + behind.destroys, 3);

        /* Handled in the call's handler: the checkout's error handler stays quiet. */
        outcome handled = { .ret = 1 };
        aetask_slot *s4 = call(co, "fail", "handled", 0, &handled);
        wait_for(&handled);
        cr_assert_eq(handled.kind, AETASK_ERROR_HANDLER);
        cr_assert_eq(e.n, 1);

        /* A handler error leaves the checkout usable. */
        aetask_slot *s5 = call(co, "record", "again", 0, &again);
        wait_for(&again);
        cr_assert_eq(again.kind, 0, "%s", again.text);

        /* Fatal errors stick: a later call's handler gets the same error. */
        outcome died = {}, later = {};
        aetask_slot *s6 = call(co, "exit", "", 0, &died);
        wait_for(&died);
        cr_assert_eq(died.kind, AETASK_ERROR_WORKER_DIED);
        cr_assert_eq(e.n, 2);
        aetask_slot *s7 = call(co, "record", "later", 0, &later);
        cr_assert_eq(later.runs, 0, "reported from the loop, not from inside the call");
        wait_for(&later);
        cr_assert_eq(later.kind, AETASK_ERROR_WORKER_DIED);
        cr_assert_eq(e.n, 3);

        aetask_slot *slots[] = { s1, s2, s3, s4, s5, s6, s7 };
        for (size_t i = 0; i < 7; i++)
                aetask_slot_unref(slots[i]);
        aetask_checkout_unref(co);
}

Test(slots, a_negative_return_fails_the_checkout) {
        aetask_checkout *co;
        outcome giving_up = { .ret = -EIO }, behind = {};
        errors e = {};

        cr_assert_eq(aetask_client_checkout(client, &co), 0);
        aetask_checkout_set_error_handler(co, on_checkout_error, &e);
        aetask_slot *s1 = call(co, "record", "first", 0, &giving_up);
        aetask_slot *s2 = call(co, "record", "behind", 0.2, &behind);
        wait_for(&behind);
        cr_assert_eq(giving_up.kind, 0);
        /* Sent before the first's handler ran: it was running, and is aborted. */
        cr_assert_eq(behind.kind, AETASK_ERROR_ABORTED);
        aetask_error_kind kind;
        const char *message;
        cr_assert_eq(aetask_checkout_get_error(co, &kind, &message), 0);
        cr_assert_eq(kind, AETASK_ERROR_ABORTED);
        cr_assert_str_eq(message, "the reply handler failed: Input/output error");
        cr_assert_eq(e.n, 1);
        aetask_slot_unref(s1);
        aetask_slot_unref(s2);
        aetask_checkout_unref(co);
}

Test(slots, call_format_takes_the_arguments_in_one_line) {
        aetask_checkout *co;
        outcome o = {};
        json_object *obj = json_tokener_parse("{\"k\":[1,2]}");

        cr_assert_eq(aetask_client_checkout(client, &co), 0);
        cr_assert_eq(aetask_checkout_call_format(co, NULL, "args", on_outcome, &o, "ssiubdnjj", "h\u00e9", NULL,
                                                 (int64_t) -5, (uint64_t) UINT64_MAX, 1, 0.5, obj,
                                                 (json_object *) NULL), 0);
        json_object_put(obj);  /* serialized by the call */
        wait_for(&o);
        cr_assert_eq(o.kind, 0, "%s", o.text);
        cr_assert_str_eq(o.text, "[\"h\u00e9\",null,-5,18446744073709551615,true,0.5,null,{\"k\":[1,2]},null]");

        outcome none = {};
        cr_assert_eq(aetask_checkout_call_format(co, NULL, "args", on_outcome, &none, ""), 0);
        wait_for(&none);
        cr_assert_str_eq(none.text, "[]");

        cr_assert_eq(aetask_checkout_call_format(co, NULL, "args", on_outcome, &none, "x", 1), -EINVAL);
        cr_assert_eq(aetask_checkout_call_format(co, NULL, "args", on_outcome, &none, NULL), -EINVAL);
        aetask_checkout_unref(co);
}

static unsigned count_leak_warnings(aetask_log *log, const char *trace) {
        unsigned n = 0;
        for (unsigned i = 0; i < aetask_log_get_n_messages(log); i++) {
                const char *text;
                int priority;
                cr_assert_eq(aetask_log_get_message(log, i, NULL, NULL, &priority, &text), 0);
                if (strstr(text, "over the leak threshold")) {
                        cr_assert_eq(priority, 4 /* LOG_WARNING */);
                        cr_assert(strstr(text, trace), "the warning names the trace id: %s", text);
                        cr_assert(strstr(text, "held its worker for 0."), "%s", text);
                        n++;
                }
        }
        return n;
}

Test(slots, a_checkout_held_too_long_is_warned_about_once) {
        aetask_checkout *held, *quick;
        aetask_log *held_log, *quick_log;
        outcome o = {}, q = {};

        aetask_client_set_max_workers(client, 2);
        cr_assert_eq(aetask_client_set_leak_threshold(client, 200 * 1000), 0);
        cr_assert_eq(aetask_log_new(&held_log), 0);
        cr_assert_eq(aetask_log_new(&quick_log), 0);

        cr_assert_eq(aetask_client_checkout(client, &held), 0);
        aetask_checkout_set_log(held, held_log);
        aetask_slot *s1 = call(held, "record", "held", 0, &o);
        wait_for(&o);

        /* Another checkout comes and goes within the threshold. */
        cr_assert_eq(aetask_client_checkout(client, &quick), 0);
        aetask_checkout_set_log(quick, quick_log);
        aetask_slot *s2 = call(quick, "record", "quick", 0, &q);
        wait_for(&q);
        aetask_checkout_release(quick);

        test_run_for(event, 0.15);
        cr_assert_eq(count_leak_warnings(held_log, aetask_checkout_get_trace_id(held)), 0, "not yet");
        test_run_for(event, 0.25);
        cr_assert_eq(count_leak_warnings(held_log, aetask_checkout_get_trace_id(held)), 1);
        test_run_for(event, 0.4);
        cr_assert_eq(count_leak_warnings(held_log, aetask_checkout_get_trace_id(held)), 1, "once");
        cr_assert_eq(count_leak_warnings(quick_log, aetask_checkout_get_trace_id(quick)), 0);

        aetask_slot_unref(s1);
        aetask_slot_unref(s2);
        aetask_checkout_unref(held);
        aetask_checkout_unref(quick);
        aetask_log_unref(held_log);
        aetask_log_unref(quick_log);
}

Test(slots, the_deadline_reaches_the_worker) {
        aetask_checkout *co;
        outcome o = {}, none = {};

        cr_assert_eq(aetask_client_checkout(client, &co), 0);
        cr_assert_eq(aetask_checkout_set_timeout(co, 2 * 1000000), 0);
        aetask_slot *s1 = call(co, "deadline", "", 0, &o);
        wait_for(&o);
        cr_assert_eq(o.kind, 0, "%s", o.text);
        long left = atol(o.text);
        cr_assert(left > 1500000 && left <= 2000000, "the handler sees %ld us left of 2 s", left);

        cr_assert_eq(aetask_checkout_set_timeout(co, AETASK_TIMEOUT_INFINITY), 0);
        aetask_slot *s2 = call(co, "deadline", "", 0, &none);
        wait_for(&none);
        cr_assert_str_eq(none.text, "-1", "no timeout, no deadline");
        aetask_slot_unref(s1);
        aetask_slot_unref(s2);
        aetask_checkout_unref(co);
}

/* Reads one NUL-terminated message from FD into BUF, 5 s at most. */
static size_t read_message(int fd, char *buf, size_t size) {
        size_t n = 0;
        while (n < size - 1 && poll(&(struct pollfd) { .fd = fd, .events = POLLIN }, 1, 5000) > 0) {
                ssize_t k = read(fd, buf + n, 1);
                if (k <= 0 || buf[n] == 0)
                        break;
                n += (size_t) k;
        }
        buf[n] = 0;
        return n;
}

Test(slots, a_call_past_its_deadline_and_grace_stops_its_worker) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        static const char call_message[] =
                "{\"method\":\"io.aetask.Worker.record\",\"parameters\":{\"args\":[\"stuck\",5],\"timeout_usec\":200000}}";
        char buf[1024];

        cr_assert_lt(strlen(srv.path), sizeof(sa.sun_path));
        memcpy(sa.sun_path, srv.path, strlen(srv.path) + 1);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(fd, 0);
        cr_assert_eq(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        read_message(fd, buf, sizeof(buf));
        cr_assert(strstr(buf, "hello"), "the worker greets: %s", buf);

        /* The timer is re-armed lazily: armed for a short call that ended,
         * it fires during a longer one, and must leave that one be. */
        static const char quick[] =
                "{\"method\":\"io.aetask.Worker.record\",\"parameters\":{\"args\":[\"quick\",0],\"timeout_usec\":50000}}";
        static const char longer[] =
                "{\"method\":\"io.aetask.Worker.record\",\"parameters\":{\"args\":[\"longer\",0.5],\"timeout_usec\":2000000}}";
        cr_assert_eq(write(fd, quick, sizeof(quick)), (ssize_t) sizeof(quick));
        read_message(fd, buf, sizeof(buf));
        cr_assert(strstr(buf, "\"quick\""), "%s", buf);
        cr_assert_eq(write(fd, longer, sizeof(longer)), (ssize_t) sizeof(longer));
        read_message(fd, buf, sizeof(buf));
        cr_assert(strstr(buf, "\"longer\""), "a call within its deadline is not stopped: %s", buf);

        double start = now_seconds();
        cr_assert_eq(write(fd, call_message, sizeof(call_message)), (ssize_t) sizeof(call_message));
        read_message(fd, buf, sizeof(buf));
        double took = now_seconds() - start;
        cr_assert(strstr(buf, "\"error\":\"io.aetask.DeadlineExceeded\""), "its own error: %s", buf);
        cr_assert(strstr(buf, "past its deadline of 200 ms and the grace of 250 ms: the worker was stopped"), "%s", buf);
        /* 0.2 s and 0.25 s of grace: well before the 5 s the handler sleeps. */
        cr_assert(took >= 0.44 && took < 0.9, "stopped after %.3f s", took);
        cr_assert_eq(read(fd, buf, sizeof(buf)), 0, "then the worker is gone");
        close(fd);
        cr_assert_str_eq(aetask_error_kind_to_string(AETASK_ERROR_DEADLINE), "deadline");
}
