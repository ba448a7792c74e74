/* Hostile-peer test helpers: logged servers, raw connections, settle checks. */
#include "hostile.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

void logged_server_start(logged_server *s, const aetask_handler *handler,
                         test_server_configure_t configure, void *userdata) {
        int saved, fd;

        memset(s, 0, sizeof(*s));
        test_server_init(&s->t);
        snprintf(s->log, sizeof(s->log), "%s/server.log", s->t.dir);
        fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
        cr_assert_geq(fd, 0);

        /* The forked server inherits stderr; its worker events go there (not
         * to a journal this machine may have) and at debug level too. */
        saved = dup(STDERR_FILENO);
        fflush(stderr);
        dup2(fd, STDERR_FILENO);
        setenv("AETASK_JOURNAL_SOCKET", "/nonexistent/aetask-test", 1);
        setenv("AETASK_DEBUG", "1", 1);
        test_server_start(&s->t, handler, configure, userdata);
        unsetenv("AETASK_DEBUG");
        dup2(saved, STDERR_FILENO);
        close(saved);
        close(fd);

        /* One worker started and ended first: the server opens a socket
         * to the journal the first time it logs, and keeps it. */
        close(raw_connect(s->t.path, false));
        double deadline = now_seconds() + 5;
        int previous = -1, n;
        while ((n = count_fds(s->t.pid)) != previous || n < 0 || count_children(s->t.pid) > 0) {
                cr_assert_lt(now_seconds(), deadline, "server did not settle");
                previous = n;
                usleep(50000);
        }
        s->base_fds = n;
}

void logged_server_cleanup(logged_server *s) {
        test_server_stop(&s->t);
        if (s->log[0])
                unlink(s->log);
        test_server_cleanup(&s->t);
}

static char *read_log(logged_server *s) {
        FILE *f = fopen(s->log, "re");
        char *text = NULL;
        size_t size = 0;

        if (!f)
                return strdup("");
        if (getdelim(&text, &size, '\0', f) < 0) {
                free(text);
                text = strdup("");
        }
        fclose(f);
        return text;
}

int log_count(logged_server *s, const char *text) {
        char *log = read_log(s);
        int n = 0;
        for (const char *p = log; (p = strstr(p, text)); p += strlen(text))
                n++;
        free(log);
        return n;
}

int log_wait_for(logged_server *s, const char *text, int n, double max_seconds) {
        double deadline = now_seconds() + max_seconds;
        int k;
        while ((k = log_count(s, text)) < n) {
                if (now_seconds() > deadline) {
                        char *log = read_log(s);
                        cr_assert_fail("\"%s\" %d times in the server log, not %d; the log:\n%s", text, k, n, log);
                        free(log);
                }
                usleep(20000);
        }
        return k;
}

/* Counts the children of PID (only the zombies among them if ZOMBIES_ONLY). */
static int for_children(pid_t pid, bool zombies_only) {
        DIR *d = opendir("/proc");
        struct dirent *de;
        int n = 0;

        cr_assert_not_null(d);
        while ((de = readdir(d))) {
                char path[300], buf[512];
                int fd;
                ssize_t len;
                if (de->d_name[0] < '0' || de->d_name[0] > '9')
                        continue;
                snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                len = read(fd, buf, sizeof(buf) - 1);
                close(fd);
                if (len <= 0)
                        continue;
                buf[len] = 0;
                /* pid (comm) state ppid ...; comm may hold spaces and parens. */
                char *p = strrchr(buf, ')');
                char state;
                int ppid;
                if (!p || sscanf(p + 1, " %c %d", &state, &ppid) != 2 || ppid != pid)
                        continue;
                if (!zombies_only || state == 'Z')
                        n++;
        }
        closedir(d);
        return n;
}

int count_zombies(pid_t pid) {
        return for_children(pid, true);
}

int count_children(pid_t pid) {
        return for_children(pid, false);
}

void server_wait_settled(logged_server *s, double max_seconds) {
        double deadline = now_seconds() + max_seconds;
        int children, zombies, fds;

        for (;;) {
                children = count_children(s->t.pid);
                zombies = count_zombies(s->t.pid);
                fds = count_fds(s->t.pid);
                if (children == 0 && zombies == 0 && fds == s->base_fds)
                        return;
                cr_assert_lt(now_seconds(), deadline,
                             "server not back where it started: %d workers, %d zombies, %d fds (was %d)",
                             children, zombies, fds, s->base_fds);
                usleep(20000);
        }
}

static int on_serve_reply(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        *(int *) userdata = json_object_get_int(json_object_array_get_idx(result, 0)) == 4242 ? 1 : -1;
        return 0;
}

static void on_serve_error(aetask_checkout *co, aetask_error_kind kind, const char *message, void *userdata) {
        cr_log_error("serve check: %s: %s", aetask_error_kind_to_string(kind), message);
        *(int *) userdata = -1;
}

void server_check_serves(logged_server *s) {
        sd_event *e = NULL;
        aetask_client *c = test_client_new(&s->t, &e);
        aetask_checkout *co = NULL;
        int answer = 0;
        bool done = false;

        aetask_client_set_min_workers(c, 0);
        cr_assert_eq(aetask_client_checkout(c, &co), 0);
        aetask_checkout_set_error_handler(co, on_serve_error, &answer);
        json_object *args = json_tokener_parse("[4242]");
        /* The catch-all of every test handler here returns its arguments. */
        cr_assert_eq(aetask_checkout_call(co, NULL, NULL, args, on_serve_reply, &answer), 0);
        json_object_put(args);
        double deadline = now_seconds() + 10;
        while (answer == 0) {
                cr_assert_lt(now_seconds(), deadline, "the server did not answer another client");
                cr_assert_geq(sd_event_run(e, 50000), 0);
        }
        done = answer == 1;
        aetask_checkout_unref(co);
        aetask_client_unref(c);
        sd_event_unref(e);
        cr_assert(done, "another client's call failed");
}

int raw_listen(raw_listener *l, const char *prefix, int backlog) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        snprintf(l->dir, sizeof(l->dir), "/tmp/%s-XXXXXX", prefix);
        cr_assert_not_null(mkdtemp(l->dir));
        snprintf(l->path, sizeof(l->path), "%s/peer.sock", l->dir);
        snprintf(l->address, sizeof(l->address), "unix:%s", l->path);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", l->path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(fd, 0);
        cr_assert_eq(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        cr_assert_eq(listen(fd, backlog), 0);
        return fd;
}

void raw_listener_remove(raw_listener *l) {
        if (!l->dir[0])
                return;
        unlink(l->path);
        rmdir(l->dir);
        l->dir[0] = 0;
}

int raw_connect(const char *path, bool skip_greeting) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char buf[512];
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        cr_assert_geq(fd, 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        cr_assert_eq(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), 0, "connect: %s", strerror(errno));
        if (!skip_greeting) {
                ssize_t n = raw_read_message(fd, buf, sizeof(buf), 10);
                cr_assert_gt(n, 0, "no greeting");
                cr_assert(strstr(buf, "\"hello\""), "not a greeting: %s", buf);
        }
        return fd;
}

ssize_t raw_read_message(int fd, char *buf, size_t size, double max_seconds) {
        double deadline = now_seconds() + max_seconds;
        size_t have = 0;

        /* Byte by byte: what follows the message stays in the socket. */
        while (have < size - 1) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                double left = deadline - now_seconds();
                if (left <= 0 || poll(&p, 1, (int) (left * 1000) + 1) == 0)
                        return -ETIMEDOUT;
                ssize_t n = read(fd, buf + have, 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0) {
                        buf[have] = 0;
                        return have > 0 ? -EPIPE : 0;
                }
                if (buf[have] == 0)
                        return (ssize_t) have;
                have++;
        }
        buf[have] = 0;
        return -EMSGSIZE;
}

double raw_wait_eof(int fd, double max_seconds) {
        double start = now_seconds(), deadline = start + max_seconds;
        char buf[4096];

        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                double left = deadline - now_seconds();
                if (left <= 0 || poll(&p, 1, (int) (left * 1000) + 1) == 0)
                        return -1;
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n == 0 || (n < 0 && errno == ECONNRESET))
                        return now_seconds() - start;
                if (n < 0 && errno != EINTR)
                        return -1;
        }
}

void raw_send(int fd, const void *data, size_t size) {
        const char *p = data;
        while (size > 0) {
                ssize_t n = send(fd, p, size, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                cr_assert_gt(n, 0, "send: %s", strerror(errno));
                p += n;
                size -= (size_t) n;
        }
}
