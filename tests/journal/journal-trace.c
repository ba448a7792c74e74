/* Run inside a booted systemd by run.sh: a forked server whose handler logs,
 * a client with journal tracing on, and two checkouts with known trace ids,
 * so that run.sh can ask the real journald for each checkout's lines.  With
 * an address, also a call of the bcrypt handler served there (by an aetaskd
 * with --call-log-level info), under the trace id aetask-journal-bcrypt. */
#include <aetask/aetask-client.h>
#include <aetask/aetask-server.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int h_setup(aetask_worker *w) {
        aetask_log_info(w, "setup of worker %u", aetask_worker_get_number(w));
        return 0;
}

static int h_work(aetask_worker *w, json_object *args, json_object **ret) {
        const char *what = json_object_get_string(json_object_array_get_idx(args, 0));
        aetask_log_info(w, "working on %s", what);
        int t = aetask_worker_timer_start(w, "compute");
        usleep(1000);
        aetask_worker_timer_stop(w, t);
        *ret = json_object_new_string(what);
        return 0;
}

static int h_fail(aetask_worker *w, json_object *args, json_object **ret) {
        aetask_log_warning(w, "about to fail");
        return aetask_worker_raise(w, "failed on purpose");
}

static int h_done(aetask_worker *w) {
        aetask_log_info(w, "checkout of trace %s done", aetask_worker_get_trace_id(w) ?: "-");
        return 0;
}

static const aetask_method methods[] = { { "work", h_work }, { "fail", h_fail }, {} };
static const aetask_handler handler = {
        .abi_version = AETASK_HANDLER_ABI_VERSION,
        .name = "journal-test",
        .setup = h_setup,
        .methods = methods,
        .checkout_done = h_done,
};

static int pending;

static int on_reply(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        pending--;
        return 0;
}

static void on_error(aetask_checkout *co, aetask_error_kind kind, const char *message, void *userdata) {
        pending--;
}

static void checkout_with(aetask_client *client, const char *trace, const char *what, bool fail) {
        aetask_checkout *co;
        json_object *args = json_object_new_array();

        json_object_array_add(args, json_object_new_string(what));
        aetask_client_checkout(client, &co);
        aetask_checkout_set_trace_id(co, trace);
        aetask_checkout_set_error_handler(co, on_error, NULL);
        aetask_checkout_call(co, NULL, "work", args, on_reply, NULL);
        pending++;
        if (fail) {
                aetask_checkout_call(co, NULL, "fail", NULL, on_reply, NULL);
                pending++;
        }
        aetask_checkout_unref(co);
        json_object_put(args);
}

static void bcrypt_call(aetask_client *client) {
        aetask_checkout *co;
        json_object *args = json_object_new_array();

        json_object_array_add(args, json_object_new_string("secret"));
        aetask_client_checkout(client, &co);
        aetask_checkout_set_trace_id(co, "aetask-journal-bcrypt");
        aetask_checkout_set_error_handler(co, on_error, NULL);
        aetask_checkout_call(co, NULL, "hash", args, on_reply, NULL);
        pending++;
        aetask_checkout_unref(co);
        json_object_put(args);
}

int main(int argc, char *argv[]) {
        aetask_client *bcrypt = NULL;
        char address[64];
        aetask_server *server;
        aetask_client *client;
        sd_event *event;

        snprintf(address, sizeof(address), "unix:@aetask-journal-%d", (int) getpid());
        if (aetask_server_new(&server) < 0 || aetask_server_set_handler(server, &handler) < 0 ||
            aetask_server_listen(server, address) < 0 || aetask_server_fork(server, NULL, NULL) < 0)
                return 1;
        aetask_server_free(server);

        sd_event_default(&event);
        aetask_client_new(&client, address);
        aetask_client_set_name(client, "journal-trace");
        aetask_client_set_max_workers(client, 2);
        aetask_client_set_journal(client, 1);
        aetask_client_attach_event(client, event, 0);

        checkout_with(client, "aetask-journal-a", "request a", false);
        checkout_with(client, "aetask-journal-b", "request b", true);
        if (argc > 1) {
                aetask_client_new(&bcrypt, argv[1]);
                aetask_client_attach_event(bcrypt, event, 0);
                bcrypt_call(bcrypt);
        }
        while (pending > 0)
                sd_event_run(event, 100000);
        /* Let the Done messages be answered, so the checkout-done lines exist. */
        for (int i = 0; i < 5; i++)
                sd_event_run(event, 20000);

        aetask_client_unref(client);
        aetask_client_unref(bcrypt);
        sd_event_unref(event);
        return 0;
}
