/* One client per thread: several threads, each with its own sd-event loop
 * and its own client of one real server, make calls at once with journal
 * tracing on.  The library's process-wide state (the journal socket and
 * its flags, the cached pid, the C locale for numbers) is set up by
 * whichever thread comes first; ThreadSanitizer (the build-tsan run, see
 * the "threads" suite) reports any race on it.
 *
 * A plain program, not a criterion one: criterion's runner cannot start
 * under ThreadSanitizer ("Could not initialize inheritable arena"), and its
 * asserts (so tests/helpers.c) need the runner. */
#include <aetask/aetask-client.h>
#include <aetask/aetask-server.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_THREADS 4
#define N_CALLS 40

static _Noreturn void die(const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        fputs("test-threads: ", stderr);
        vfprintf(stderr, format, ap);
        fputc('\n', stderr);
        va_end(ap);
        exit(EXIT_FAILURE);
}

#define check(expr, ...) do { if (!(expr)) die(__VA_ARGS__); } while (0)

typedef struct worker_thread {
        pthread_t thread;
        int index;
        const char *address;
        pthread_barrier_t *start;
        int replies, errors, wrong;
        char failure[256];            /* the first thing that went wrong, for the main thread to assert */
        int journal_entries;          /* counted by the journal reader */
} worker_thread;

typedef struct call_state {
        worker_thread *t;
        double sent;
        bool done;
} call_state;

static void fail(worker_thread *t, const char *what, int r) {
        if (!t->failure[0])
                snprintf(t->failure, sizeof(t->failure), "thread %d: %s: %s", t->index, what, strerror(-r));
}

static int on_reply(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        call_state *s = userdata;

        /* The echo handler returns its arguments: a double goes through the
         * JSON reader's C locale on the way back. */
        if (json_object_get_double(json_object_array_get_idx(result, 0)) != s->sent)
                s->t->wrong++;
        s->t->replies++;
        s->done = true;
        return 0;
}

static void on_error(aetask_checkout *co, aetask_error_kind kind, const char *message, void *userdata) {
        call_state *s = userdata;

        s->t->errors++;
        if (!s->t->failure[0])
                snprintf(s->t->failure, sizeof(s->t->failure), "thread %d: %s error: %s", s->t->index,
                         aetask_error_kind_to_string(kind), message);
        s->done = true;
}

/* N_CALLS calls, two at a time on checkouts of their own, each released
 * when answered. */
static void *run_thread(void *userdata) {
        worker_thread *t = userdata;
        sd_event *event = NULL;
        aetask_client *client = NULL;
        call_state calls[N_CALLS] = {};
        char name[32];
        int r;

        r = sd_event_new(&event);
        if (r < 0) {
                fail(t, "sd_event_new", r);
                return NULL;
        }
        r = aetask_client_new(&client, t->address);
        if (r >= 0)
                r = aetask_client_attach_event(client, event, 0);
        if (r < 0) {
                fail(t, "aetask_client_new", r);
                goto finish;
        }
        snprintf(name, sizeof(name), "thread-%d", t->index);
        aetask_client_set_name(client, name);
        aetask_client_set_journal(client, 1);
        aetask_client_set_min_workers(client, 1);
        aetask_client_set_max_workers(client, 2);

        /* All threads make their first call, and write their first journal
         * entry, at the same moment. */
        pthread_barrier_wait(t->start);

        for (int i = 0; i < N_CALLS; i++) {
                aetask_checkout *co;
                calls[i] = (call_state) { .t = t, .sent = t->index * 1000 + i + 0.25 };
                r = aetask_client_checkout(client, &co);
                if (r < 0) {
                        fail(t, "aetask_client_checkout", r);
                        break;
                }
                aetask_checkout_set_error_handler(co, on_error, &calls[i]);
                json_object *args = json_object_new_array();
                json_object_array_add(args, json_object_new_double(calls[i].sent));
                r = aetask_checkout_call(co, NULL, NULL, args, on_reply, &calls[i]);
                json_object_put(args);
                aetask_checkout_release(co);
                aetask_checkout_unref(co);
                if (r < 0) {
                        fail(t, "aetask_checkout_call", r);
                        break;
                }
                /* Two in flight: wait for the one before. */
                for (int spins = 0; i > 0 && !calls[i - 1].done && spins < 600; spins++)
                        (void) sd_event_run(event, 50000);
        }
        for (int spins = 0; t->replies + t->errors < N_CALLS && spins < 600; spins++)
                (void) sd_event_run(event, 50000);
        if (t->replies + t->errors < N_CALLS && !t->failure[0])
                snprintf(t->failure, sizeof(t->failure), "thread %d: %d calls unanswered after 30 s",
                         t->index, N_CALLS - t->replies - t->errors);

finish:
        aetask_client_unref(client);
        sd_event_unref(event);
        return NULL;
}

/* ---- A journal of our own ------------------------------------------------ */

typedef struct journal_reader {
        pthread_t thread;
        int fd;
        char path[100];
        bool stop;                    /* set atomically by the main thread */
        worker_thread *threads;
} journal_reader;

static void *read_journal(void *userdata) {
        journal_reader *j = userdata;
        char buf[8192];

        while (!__atomic_load_n(&j->stop, __ATOMIC_ACQUIRE)) {
                struct pollfd p = { .fd = j->fd, .events = POLLIN };
                if (poll(&p, 1, 50) <= 0)
                        continue;
                ssize_t n = recv(j->fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
                if (n <= 0)
                        continue;
                buf[n] = 0;
                const char *client = strstr(buf, "\nAETASK_CLIENT=thread-");
                if (client) {
                        int i = atoi(client + strlen("\nAETASK_CLIENT=thread-"));
                        if (i >= 0 && i < N_THREADS)
                                j->threads[i].journal_entries++;
                }
        }
        return NULL;
}

static void journal_reader_start(journal_reader *j, const char *dir, worker_thread *threads) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        *j = (journal_reader) { .threads = threads };
        snprintf(j->path, sizeof(j->path), "%.80s/journal.sock", dir);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", j->path);
        j->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        check(j->fd >= 0, "socket: %s", strerror(errno));
        check(bind(j->fd, (struct sockaddr *) &sa, sizeof(sa)) == 0, "bind %s: %s", sa.sun_path, strerror(errno));
        setenv("AETASK_JOURNAL_SOCKET", sa.sun_path, 1);
        check(pthread_create(&j->thread, NULL, read_journal, j) == 0, "pthread_create");
}

static void journal_reader_stop(journal_reader *j) {
        __atomic_store_n(&j->stop, true, __ATOMIC_RELEASE);
        pthread_join(j->thread, NULL);
        close(j->fd);
        unlink(j->path);
}

/* ---- The server ---------------------------------------------------------- */

typedef struct server {
        char dir[64], address[128];
        pid_t pid;
        int keepalive_fd;
} server;

/* The echo handler (from $AETASK_HANDLER_DIR), forked on a temporary socket. */
static void server_start(server *s) {
        aetask_server *a = NULL;
        int r;

        snprintf(s->dir, sizeof(s->dir), "/tmp/aetask-threads-XXXXXX");
        check(mkdtemp(s->dir), "mkdtemp: %s", strerror(errno));
        snprintf(s->address, sizeof(s->address), "unix:%s/server.sock", s->dir);
        r = aetask_server_new(&a);
        if (r >= 0)
                r = aetask_server_load_handler(a, "echo", NULL);
        if (r >= 0)
                r = aetask_server_listen(a, s->address);
        if (r >= 0)
                r = aetask_server_fork(a, &s->pid, &s->keepalive_fd);
        check(r >= 0, "starting the server on %s: %s", s->address, strerror(-r));
        aetask_server_free(a);
}

static void server_stop(server *s) {
        close(s->keepalive_fd);
        check(waitpid(s->pid, NULL, 0) == s->pid, "waitpid: %s", strerror(errno));
        unlink(s->address + strlen("unix:"));
        rmdir(s->dir);
}

int main(void) {
        worker_thread threads[N_THREADS] = {};
        pthread_barrier_t start;
        journal_reader journal;
        server srv;

        /* The server forks before any thread starts. */
        server_start(&srv);
        journal_reader_start(&journal, srv.dir, threads);
        check(pthread_barrier_init(&start, NULL, N_THREADS) == 0, "pthread_barrier_init");

        for (int i = 0; i < N_THREADS; i++) {
                threads[i] = (worker_thread) { .index = i, .address = srv.address, .start = &start };
                check(pthread_create(&threads[i].thread, NULL, run_thread, &threads[i]) == 0, "pthread_create");
        }
        for (int i = 0; i < N_THREADS; i++)
                pthread_join(threads[i].thread, NULL);
        journal_reader_stop(&journal);
        pthread_barrier_destroy(&start);
        server_stop(&srv);

        for (int i = 0; i < N_THREADS; i++) {
                worker_thread *t = &threads[i];
                printf("thread %d: %d replies, %d journal entries\n", i, t->replies, t->journal_entries);
                check(!t->failure[0], "%s", t->failure);
                check(t->replies == N_CALLS, "thread %d: %d replies of %d", i, t->replies, N_CALLS);
                check(t->wrong == 0, "thread %d: %d replies were not the arguments", i, t->wrong);
                /* journald's queue is short and a full one drops entries: at
                 * least one of each thread's arrived. */
                check(t->journal_entries > 0, "thread %d traced nothing to the journal", i);
        }
        return EXIT_SUCCESS;
}
