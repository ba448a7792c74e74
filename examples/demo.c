/* The shortest aetask program: fork a server running the echo handler,
 * check out a worker, call it, print the result. */
#include <aetask/aetask-client.h>
#include <aetask/aetask-server.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int on_reply(aetask_checkout *checkout, json_object *result, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        printf("echo returned %s\n", json_object_to_json_string_ext(result, JSON_C_TO_STRING_NOSLASHESCAPE));
        sd_event_exit(userdata, 0);
        return 0;
}

static void on_error(aetask_checkout *checkout, aetask_error_kind kind, const char *message, void *userdata) {
        fprintf(stderr, "%s error: %s\n", aetask_error_kind_to_string(kind), message);
        sd_event_exit(userdata, 1);
}

int main(void) {
        char address[64];
        aetask_server *server;
        aetask_client *client;
        aetask_checkout *checkout;
        sd_event *event;
        int r, exit_code = 1;

        /* A dedicated server process; it exits when this program does. */
        snprintf(address, sizeof(address), "unix:@aetask-demo-%d", (int) getpid());
        if ((r = aetask_server_new(&server)) < 0 ||
            (r = aetask_server_load_handler(server, "echo", NULL)) < 0 ||
            (r = aetask_server_listen(server, address)) < 0 ||
            (r = aetask_server_fork(server, NULL, NULL)) < 0) {
                fprintf(stderr, "Failed to start the server: %s\n", strerror(-r));
                return 1;
        }
        aetask_server_free(server);

        sd_event_default(&event);
        aetask_client_new(&client, address);
        aetask_client_attach_event(client, event, 0);
        aetask_client_checkout(client, &checkout);
        aetask_checkout_set_error_handler(checkout, on_error, event);

        json_object *args = json_tokener_parse("[\"h\\u00e9llo from a worker process\"]");
        r = aetask_checkout_call(checkout, NULL, "echo", args, on_reply, event);
        json_object_put(args);
        if (r >= 0)
                sd_event_loop(event);
        sd_event_get_exit_code(event, &exit_code);

        aetask_checkout_unref(checkout);
        aetask_client_unref(client);
        sd_event_unref(event);
        return exit_code;
}
