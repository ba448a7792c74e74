/* The seed manual's first synopsis in C: hash a password in a worker of the
 * bcrypt handler, then verify it, without blocking the event loop.
 *
 *   hash-password            forks a bcrypt server of its own
 *   hash-password ADDRESS    uses a running one, e.g.
 *                            unix:/run/aetask/bcrypt.sock (aetask@bcrypt.socket)
 *
 * Prints "Hashed password is $2b$10$..." then "Verify result is 1". */
#include <aetask/aetask-client.h>
#include <aetask/aetask-server.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void on_error(aetask_checkout *checkout, aetask_error_kind kind, const char *message, void *userdata) {
        fprintf(stderr, "%s error: %s\n", aetask_error_kind_to_string(kind), message);
        sd_event_exit(userdata, 1);
}

static int on_verify(aetask_checkout *checkout, json_object *result, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        printf("Verify result is %d\n", json_object_get_boolean(result));
        sd_event_exit(userdata, 0);
        return 0;
}

static int on_hash(aetask_checkout *checkout, json_object *result, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        const char *crypted = json_object_get_string(result);
        json_object *args;

        printf("Hashed password is %s\n", crypted);

        /* The next call on the same checkout, from inside this callback. */
        args = json_object_new_array();
        json_object_array_add(args, json_object_new_string(crypted));
        json_object_array_add(args, json_object_new_string("secret"));
        if (aetask_checkout_call(checkout, NULL, "verify", args, on_verify, userdata) < 0)
                sd_event_exit(userdata, 1);
        json_object_put(args);
        return 0;
}

/* A dedicated server process running the bcrypt handler; it exits when this
 * program does. */
static int fork_server(char *address, size_t size) {
        aetask_server *server;
        int r;

        snprintf(address, size, "unix:@aetask-hash-password-%d", (int) getpid());
        r = aetask_server_new(&server);
        if (r < 0)
                return r;
        if ((r = aetask_server_load_handler(server, "bcrypt", NULL)) >= 0 &&
            (r = aetask_server_listen(server, address)) >= 0)
                r = aetask_server_fork(server, NULL, NULL);
        aetask_server_free(server);
        return r;
}

int main(int argc, char *argv[]) {
        char own_address[64];
        const char *address = argc > 1 ? argv[1] : NULL;
        aetask_client *client = NULL;
        aetask_checkout *checkout = NULL;
        sd_event *event = NULL;
        json_object *args;
        int r, exit_code = 1;

        if (argc > 2) {
                fprintf(stderr, "Usage: %s [ADDRESS]\n", argv[0]);
                return 2;
        }
        if (!address) {
                r = fork_server(own_address, sizeof(own_address));
                if (r < 0) {
                        fprintf(stderr, "Failed to start the bcrypt server: %s\n", strerror(-r));
                        return 1;
                }
                address = own_address;
        }

        if ((r = sd_event_default(&event)) < 0 ||
            (r = aetask_client_new(&client, address)) < 0 ||
            (r = aetask_client_attach_event(client, event, 0)) < 0 ||
            (r = aetask_client_checkout(client, &checkout)) < 0) {
                fprintf(stderr, "Failed to set up the client for %s: %s\n", address, strerror(-r));
                goto finish;
        }
        aetask_checkout_set_timeout(checkout, 5 * 1000000);  /* timeout => 5 */
        aetask_checkout_set_error_handler(checkout, on_error, event);

        args = json_object_new_array();
        json_object_array_add(args, json_object_new_string("secret"));
        r = aetask_checkout_call(checkout, NULL, "hash", args, on_hash, event);
        json_object_put(args);
        if (r < 0) {
                fprintf(stderr, "Failed to call hash: %s\n", strerror(-r));
                goto finish;
        }

        r = sd_event_loop(event);
        if (r < 0)
                fprintf(stderr, "Event loop failed: %s\n", strerror(-r));
        else
                exit_code = r;

finish:
        aetask_checkout_unref(checkout);
        aetask_client_unref(client);
        sd_event_unref(event);
        return exit_code;
}
