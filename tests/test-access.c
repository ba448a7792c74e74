/* Who may connect: a server with allow lists (aetask_server_allow_user,
 * aetask_server_allow_group; aetaskd --allow-user, --allow-group) on an
 * abstract socket, which has no file mode to keep anyone out.  The peer is
 * a forked child that becomes nobody (uid and gid 65534) before it
 * connects: the build tree may sit under a folder nobody cannot enter, so
 * nothing is exec'd as nobody. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hostile.h"
#include "hello.h"

#define NOBODY 65534

static logged_server srv;
static char abstract[100];   /* the name, without the @ */

typedef struct allow_config {
        uid_t users[4];
        unsigned n_users;
        gid_t groups[4];
        unsigned n_groups;
} allow_config;

static void configure(aetask_server *s, void *userdata) {
        allow_config *c = userdata;
        char address[128];

        snprintf(address, sizeof(address), "unix:@%s", abstract);
        cr_assert_eq(aetask_server_listen(s, address), 0);
        for (unsigned i = 0; i < c->n_users; i++)
                cr_assert_eq(aetask_server_allow_user(s, c->users[i]), 0);
        for (unsigned i = 0; i < c->n_groups; i++)
                cr_assert_eq(aetask_server_allow_group(s, c->groups[i]), 0);
}

static void serve(allow_config *c) {
        static unsigned n;

        snprintf(abstract, sizeof(abstract), "aetask-test-access-%d-%u", getpid(), n++);
        logged_server_start(&srv, NULL, configure, c);
}

static void finish(void) {
        logged_server_cleanup(&srv);
}

TestSuite(access, .fini = finish);

/* In the child: connects to the abstract socket and copies the first
 * message (up to its NUL, 5 s at most) to OUT. */
static void child_read_first_message(int out) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        socklen_t len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 + strlen(abstract));
        char buf[512];
        size_t n = 0;
        int fd;

        memcpy(sa.sun_path + 1, abstract, strlen(abstract));
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, len) < 0) {
                dprintf(out, "connect: %s", strerror(errno));
                return;
        }
        (void) send_hello(fd);  /* a refusal may have closed it already */
        while (n < sizeof(buf) && poll(&(struct pollfd) { .fd = fd, .events = POLLIN }, 1, 5000) > 0) {
                ssize_t k = read(fd, buf + n, sizeof(buf) - n);
                if (k <= 0)
                        break;
                n += (size_t) k;
                if (memchr(buf, 0, n))
                        break;
        }
        (void) !write(out, buf, strnlen(buf, n));
        close(fd);
}

/* Forks a child that becomes nobody and makes CONNECTIONS connections;
 * returns the first message of the last one, or "connect: <error>". */
static void first_messages_as_nobody(unsigned connections, char *ret, size_t size) {
        int p[2];
        pid_t pid;
        int status;
        size_t n = 0;

        cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                close(p[0]);
                if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
                    setresuid(NOBODY, NOBODY, NOBODY) < 0 || getuid() != NOBODY) {
                        dprintf(p[1], "cannot become nobody: %s", strerror(errno));
                        _exit(1);
                }
                for (unsigned i = 0; i < connections; i++) {
                        int out = i + 1 == connections ? p[1] : open("/dev/null", O_WRONLY | O_CLOEXEC);
                        child_read_first_message(out);
                        if (out != p[1])
                                close(out);
                }
                _exit(0);
        }
        close(p[1]);
        for (ssize_t k; n + 1 < size && (k = read(p[0], ret + n, size - n - 1)) > 0;)
                n += (size_t) k;
        ret[n] = 0;
        close(p[0]);
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: %s", ret);
}

static void skip_unless_root(void) {
        if (geteuid() != 0)
                cr_skip_test("needs root, to become nobody");
}

static const char refusal[] = "{\"error\":\"io.aetask.PermissionDenied\",\"parameters\":{\"message\":"
                              "\"this user may not use this server (aetaskd --allow-user, --allow-group)\"}}";

Test(access, nobody_is_refused_on_an_abstract_socket_that_allows_only_root) {
        allow_config c = { .users = { 0 }, .n_users = 1 };
        char m[512];

        skip_unless_root();
        serve(&c);
        first_messages_as_nobody(1, m, sizeof(m));
        cr_assert_str_eq(m, refusal);
        log_wait_for(&srv, "Refusing a connection from pid", 1, 5);
        cr_assert(log_count(&srv, "uid 65534: not an allowed user or group") == 1);
        /* No worker was forked for it; root, listed, is served. */
        cr_assert_eq(log_count(&srv, "Worker 1 started"), 1, "only the start-up check's worker");
        server_check_serves(&srv);
}

Test(access, nobody_is_served_when_listed_by_user_or_by_group) {
        allow_config by_user = { .users = { 0, NOBODY }, .n_users = 2 };
        allow_config by_group = { .users = { 0 }, .n_users = 1, .groups = { NOBODY }, .n_groups = 1 };
        char m[512];

        skip_unless_root();
        serve(&by_user);
        first_messages_as_nobody(1, m, sizeof(m));
        cr_assert(strstr(m, "\"hello\""), "not a greeting: %s", m);
        logged_server_cleanup(&srv);

        serve(&by_group);
        first_messages_as_nobody(1, m, sizeof(m));
        cr_assert(strstr(m, "\"hello\""), "not a greeting: %s", m);
}

Test(access, without_allow_lists_everyone_who_can_connect_is_served) {
        allow_config none = {};
        char m[512];

        skip_unless_root();
        serve(&none);
        first_messages_as_nobody(1, m, sizeof(m));
        cr_assert(strstr(m, "\"hello\""), "not a greeting: %s", m);
}

Test(access, refusals_are_logged_at_most_once_a_second) {
        allow_config c = { .users = { 0 }, .n_users = 1 };
        double started;
        char m[512];
        int lines;

        skip_unless_root();
        serve(&c);
        started = now_seconds();
        first_messages_as_nobody(200, m, sizeof(m));
        cr_assert_str_eq(m, refusal, "every one of them is told");
        lines = log_count(&srv, "Refusing a connection from pid");
        cr_assert_geq(lines, 1);
        cr_assert_leq(lines, 1 + (int) (now_seconds() - started), "%d lines for 200 refusals", lines);
        /* The next one, a second later, says how many went unlogged. */
        usleep(1100 * 1000);
        first_messages_as_nobody(1, m, sizeof(m));
        log_wait_for(&srv, "more since the last such message)", 1, 5);
}
