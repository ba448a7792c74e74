/* The handler interface as the server reads it: the general interface
 * receiving every call the method table and the catch-all do not take, and
 * handlers built against ABI version 1, whose struct ends before the
 * members version 2 added. */
#include <criterion/criterion.h>
#include <string.h>

#include "fixture.h"
#include "calls.h"

/* Echoes what it was called with: [METHOD or null, ARGS]. */
static int i_general(aetask_worker *w, const char *method, json_object *args, json_object **ret) {
        json_object *a = json_object_new_array();
        json_object_array_add(a, method ? json_object_new_string(method) : NULL);
        json_object_array_add(a, json_object_get(args));
        *ret = a;
        return 0;
}

static int i_named(aetask_worker *w, json_object *args, json_object **ret) {
        *ret = json_object_new_string("from the table");
        return 0;
}

static int i_anonymous(aetask_worker *w, json_object *args, json_object **ret) {
        *ret = json_object_new_string("from the catch-all");
        return 0;
}

static const aetask_method i_methods[] = { { "named", i_named }, {} };

/* The seed's "interface => sub { my ($method, @args) = @_; ... }". */
static const aetask_handler general_only = {
        .abi_version = AETASK_HANDLER_ABI_VERSION,
        .name = "general",
        .interface = i_general,
};

static const aetask_handler table_and_general = {
        .abi_version = AETASK_HANDLER_ABI_VERSION,
        .name = "mixed",
        .methods = i_methods,
        .call = i_anonymous,
        .interface = i_general,
};

/* A version-1 handler as an old module lays it out: the struct ends after
 * checkout_done.  What follows it in memory must not be read as the
 * interface (here, a pointer that would crash the worker). */
struct handler_v1 {
        unsigned abi_version;
        const char *name;
        int (*setup)(aetask_worker *worker);
        const aetask_method *methods;
        aetask_method_t call;
        int (*checkout_done)(aetask_worker *worker);
};
static const struct {
        struct handler_v1 h;
        void *after[2];
} old_module = {
        .h = { .abi_version = 1, .name = "old", .methods = i_methods },
        .after = { (void *) 1, (void *) 1 },
};

static test_checkout co;
static test_reply reply;

static void start(const aetask_handler *h) {
        fixture_start(h, NULL, NULL);
        test_checkout_begin(&co, client, event);
}

static void finish(void) {
        if (co.checkout)
                test_checkout_end(&co);
        test_reply_clear(&reply);
        fixture_finish();
}

TestSuite(interface, .fini = finish);

Test(interface, the_general_interface_gets_every_call_with_its_method_name) {
        start(&general_only);
        cr_assert_str_eq(test_call_ok(&co, &reply, "anything", "[1, \"two\"]"), "[\"anything\",[1,\"two\"]]");
        cr_assert_str_eq(test_call_ok(&co, &reply, "other", "[]"), "[\"other\",[]]");
        /* Called as a function: no method name. */
        cr_assert_str_eq(test_call_ok(&co, &reply, NULL, "[3]"), "[null,[3]]");
}

Test(interface, the_table_and_the_catch_all_come_first) {
        start(&table_and_general);
        cr_assert_str_eq(test_call_ok(&co, &reply, "named", "[]"), "\"from the table\"");
        cr_assert_str_eq(test_call_ok(&co, &reply, NULL, "[]"), "\"from the catch-all\"");
        cr_assert_str_eq(test_call_ok(&co, &reply, "unnamed", "[4]"), "[\"unnamed\",[4]]");
}

Test(interface, without_one_an_unknown_method_is_not_found) {
        start((const aetask_handler *) &old_module.h);
        cr_assert_str_eq(test_call_ok(&co, &reply, "named", "[]"), "\"from the table\"");
        cr_assert(strstr(test_call_fails(&co, &reply, "unnamed", "[]"), "unknown method 'unnamed'"), "%s",
                  reply.message);
        cr_assert(strstr(test_call_fails(&co, &reply, NULL, "[]"), "no calls without a method name"), "%s",
                  reply.message);
}
