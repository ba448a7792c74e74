/* The seed manual's second synopsis in C: a SQLite database used through a
 * checkout of the sqlite handler, with DBI's method names.  The three calls
 * are queued on the checkout at once and run in order on its worker.
 *
 *   sqlite-synopsis            forks a sqlite server of its own, on a fresh
 *                              database in a temporary folder
 *   sqlite-synopsis ADDRESS    uses a running one, e.g.
 *                              unix:/run/aetask/sqlite.sock (aetask@sqlite.socket)
 *
 * Prints "username: jimmy, email: " (the email is inserted as NULL, undef in
 * the seed). */
#include <aetask/aetask-client.h>
#include <aetask/aetask-server.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_error(aetask_checkout *checkout, aetask_error_kind kind, const char *message, void *userdata) {
        fprintf(stderr, "%s error: %s\n", aetask_error_kind_to_string(kind), message);
        sd_event_exit(userdata, 1);
}

static int on_user(aetask_checkout *checkout, json_object *user, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        const char *username = json_object_get_string(json_object_object_get(user, "username"));
        const char *email = json_object_get_string(json_object_object_get(user, "email"));

        /* NULL, like Perl's undef, prints as nothing. */
        printf("username: %s, email: %s\n", username ?: "", email ?: "");
        sd_event_exit(userdata, 0);
        return 0;
}

/* Queues METHOD(ARGS...) on the checkout; ARGS is JSON text. */
static int call(aetask_checkout *checkout, const char *method, const char *args,
                aetask_reply_handler_t callback, void *userdata) {
        json_object *a = json_tokener_parse(args);
        int r = aetask_checkout_call(checkout, NULL, method, a, callback, userdata);
        json_object_put(a);
        return r;
}

typedef struct own_server {
        char dir[64];
        char database[96];
        char address[64];
        pid_t pid;
        int keepalive_fd;
} own_server;

/* A dedicated server process running the sqlite handler on a new database. */
static int fork_server(own_server *o) {
        aetask_server *server;
        int r;

        snprintf(o->dir, sizeof(o->dir), "/tmp/aetask-sqlite-synopsis-XXXXXX");
        if (!mkdtemp(o->dir))
                return -errno;
        snprintf(o->database, sizeof(o->database), "%s/junk.sqlite3", o->dir);
        snprintf(o->address, sizeof(o->address), "unix:@aetask-sqlite-synopsis-%d", (int) getpid());

        r = aetask_server_new(&server);
        if (r < 0)
                return r;
        if ((r = aetask_server_load_handler(server, "sqlite", NULL)) >= 0 &&
            (r = aetask_server_set_option(server, "database", o->database)) >= 0 &&
            (r = aetask_server_listen(server, o->address)) >= 0)
                r = aetask_server_fork(server, &o->pid, &o->keepalive_fd);
        aetask_server_free(server);
        return r;
}

/* Stops the server (its workers are gone with the client) and removes the
 * database. */
static void stop_server(own_server *o) {
        static const char *const suffixes[] = { "", "-journal", "-wal", "-shm" };
        char path[128];

        if (o->pid > 0) {
                close(o->keepalive_fd);
                waitpid(o->pid, NULL, 0);
        }
        for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
                snprintf(path, sizeof(path), "%s%s", o->database, suffixes[i]);
                unlink(path);
        }
        rmdir(o->dir);
}

int main(int argc, char *argv[]) {
        own_server own = { .keepalive_fd = -1 };
        const char *address = argc > 1 ? argv[1] : NULL;
        aetask_client *client = NULL;
        aetask_checkout *dbh = NULL;
        sd_event *event = NULL;
        int r, exit_code = 1;

        if (argc > 2) {
                fprintf(stderr, "Usage: %s [ADDRESS]\n", argv[0]);
                return 2;
        }
        if (!address) {
                r = fork_server(&own);
                if (r < 0) {
                        fprintf(stderr, "Failed to start the sqlite server: %s\n", strerror(-r));
                        if (own.dir[0])
                                rmdir(own.dir);
                        return 1;
                }
                address = own.address;
        }

        if ((r = sd_event_default(&event)) < 0 ||
            (r = aetask_client_new(&client, address)) < 0 ||
            (r = aetask_client_attach_event(client, event, 0)) < 0 ||
            (r = aetask_client_checkout(client, &dbh)) < 0) {
                fprintf(stderr, "Failed to set up the client for %s: %s\n", address, strerror(-r));
                goto finish;
        }
        aetask_checkout_set_error_handler(dbh, on_error, event);

        /* The seed's statements, made safe to run twice on one database. */
        if ((r = call(dbh, "do", "[\"CREATE TABLE IF NOT EXISTS user(username TEXT PRIMARY KEY, email TEXT)\"]",
                      NULL, NULL)) < 0 ||
            /* Requests queue up on the checkout and execute in order: */
            (r = call(dbh, "do", "[\"INSERT OR REPLACE INTO user (username, email) VALUES (?, ?)\", "
                                 "null, \"jimmy\", null]", NULL, NULL)) < 0 ||
            (r = call(dbh, "selectrow_hashref", "[\"SELECT * FROM user\"]", on_user, event)) < 0) {
                fprintf(stderr, "Failed to queue a call: %s\n", strerror(-r));
                goto finish;
        }

        r = sd_event_loop(event);
        if (r < 0)
                fprintf(stderr, "Event loop failed: %s\n", strerror(-r));
        else
                exit_code = r;

finish:
        aetask_checkout_unref(dbh);
        aetask_client_unref(client);
        sd_event_unref(event);
        if (own.dir[0])
                stop_server(&own);
        return exit_code;
}
