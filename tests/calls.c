/* Helpers for handler tests: servers running a module, synchronous calls. */
#include "calls.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void test_configure_module(aetask_server *s, void *userdata) {
        const test_module_config *c = userdata;
        int r;

        r = aetask_server_load_handler(s, c->module, NULL);
        cr_assert_eq(r, 0, "loading module %s: %s", c->module, strerror(-r));
        for (size_t i = 0; i < sizeof(c->options) / sizeof(c->options[0]) && c->options[i]; i++) {
                char key[64];
                const char *eq = strchr(c->options[i], '=');

                cr_assert_not_null(eq, "option %s is not KEY=VALUE", c->options[i]);
                snprintf(key, sizeof(key), "%.*s", (int) (eq - c->options[i]), c->options[i]);
                r = aetask_server_set_option(s, key, eq + 1);
                cr_assert_eq(r, 0, "option %s: %s", c->options[i], strerror(-r));
        }
}

int test_module_fork(const test_module_config *config) {
        test_server t = {};
        aetask_server *s;
        int r;

        test_server_init(&t);
        cr_assert_eq(aetask_server_new(&s), 0);
        test_configure_module(s, (void *) config);
        cr_assert_eq(aetask_server_listen(s, t.address), 0);
        r = aetask_server_fork(s, &t.pid, &t.keepalive_fd);
        aetask_server_free(s);
        test_server_cleanup(&t);
        return r;
}

/* R is answered: the checkout forgets it (it may live on a stack frame that
 * is about to end). */
static void forget(test_reply *r) {
        test_checkout *t = r->owner;
        unsigned n = 0;

        if (!t)
                return;
        for (unsigned i = 0; i < t->n_pending; i++)
                if (t->pending[i] != r)
                        t->pending[n++] = t->pending[i];
        t->n_pending = n;
        r->owner = NULL;
}

void test_reply_clear(test_reply *r) {
        forget(r);
        json_object_put(r->result);
        memset(r, 0, sizeof(*r));
}

static int on_reply(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        test_reply *r = userdata;

        forget(r);
        r->done = true;
        r->result = json_object_get(result);
        snprintf(r->text, sizeof(r->text), "%s",
                 result ? json_object_to_json_string_ext(result, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
                        : "null");
        return 0;
}

/* An error ends the call in flight and drops the calls queued behind it. */
static void on_error(aetask_checkout *co, aetask_error_kind kind, const char *message, void *userdata) {
        test_checkout *t = userdata;

        for (unsigned i = 0; i < t->n_pending; i++) {
                test_reply *r = t->pending[i];
                r->owner = NULL;
                r->done = r->failed = true;
                r->kind = kind;
                snprintf(r->message, sizeof(r->message), "%s", message);
        }
        t->n_pending = 0;
}

void test_checkout_begin(test_checkout *t, aetask_client *client, sd_event *event) {
        *t = (test_checkout) { .event = event };
        cr_assert_eq(aetask_client_checkout(client, &t->checkout), 0);
        cr_assert_eq(aetask_checkout_set_error_handler(t->checkout, on_error, t), 0);
}

void test_checkout_end(test_checkout *t) {
        t->checkout = aetask_checkout_unref(t->checkout);
}

static void queue_v(test_checkout *t, test_reply *r, const char *method, const char *format, va_list ap) {
        char *text = NULL;
        json_object *args;
        int k;

        test_reply_clear(r);
        cr_assert_geq(vasprintf(&text, format, ap), 0);
        args = json_tokener_parse(text);
        cr_assert_not_null(args, "test arguments are not JSON: %s", text);
        free(text);

        cr_assert_lt(t->n_pending, sizeof(t->pending) / sizeof(t->pending[0]));
        t->pending[t->n_pending++] = r;
        r->owner = t;

        k = aetask_checkout_call(t->checkout, NULL, method, args, on_reply, r);
        json_object_put(args);
        cr_assert_eq(k, 0, "queueing %s: %s", method, strerror(-k));
}

void test_queue(test_checkout *t, test_reply *r, const char *method, const char *args_format, ...) {
        va_list ap;
        va_start(ap, args_format);
        queue_v(t, r, method, args_format, ap);
        va_end(ap);
}

void test_wait(test_checkout *t, test_reply *r) {
        test_run_until(t->event, &r->done, 10);
}

const char *test_call_ok(test_checkout *t, test_reply *r, const char *method, const char *args_format, ...) {
        va_list ap;
        va_start(ap, args_format);
        queue_v(t, r, method, args_format, ap);
        va_end(ap);
        test_wait(t, r);
        cr_assert(!r->failed, "%s failed: %s error: %s", method, aetask_error_kind_to_string(r->kind), r->message);
        return r->text;
}

const char *test_call_fails(test_checkout *t, test_reply *r, const char *method, const char *args_format, ...) {
        va_list ap;
        va_start(ap, args_format);
        queue_v(t, r, method, args_format, ap);
        va_end(ap);
        test_wait(t, r);
        cr_assert(r->failed, "%s succeeded with %s, expected an error", method, r->text);
        return r->message;
}
