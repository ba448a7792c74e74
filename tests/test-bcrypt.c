/* The bcrypt handler through a real forked server: hash and verify, errors,
 * the cost option, published test vectors, and agreement with independent
 * implementations (libxcrypt called directly here, and Python's bcrypt, the
 * pyca one with its own OpenBSD-derived code, when it is installed). */
#include <criterion/criterion.h>
#include <crypt.h>
#include <errno.h>
#include <signal.h>
#include <poll.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "calls.h"
#include "fixture.h"
#include "hostile.h"

static test_checkout co;
static test_reply r;

static void start(const char *option) {
        test_module_config config = { .module = "bcrypt", .options = { option } };

        fixture_start(NULL, test_configure_module, &config);
        test_checkout_begin(&co, client, event);
}

static void finish(void) {
        test_reply_clear(&r);
        test_checkout_end(&co);
        fixture_finish();
}

/* A test that hangs fails by itself, with its name, well within meson's limit. */
TestSuite(bcrypt, .fini = finish, .timeout = 60);

/* The string inside a JSON string result, without its quotes. */
static const char *unquote(const char *json, char *buf, size_t size) {
        size_t n = strlen(json);
        cr_assert(n >= 2 && json[0] == '"' && json[n - 1] == '"', "not a JSON string: %s", json);
        snprintf(buf, size, "%.*s", (int) (n - 2), json + 1);
        return buf;
}

static void hash_now(const char *password, char *out, size_t size) {
        unquote(test_call_ok(&co, &r, "hash", "[\"%s\"]", password), out, size);
}

Test(bcrypt, hash_then_verify_round_trip) {
        char hash[128];

        start(NULL);
        hash_now("secret", hash, sizeof(hash));
        cr_assert_eq(strncmp(hash, "$2b$10$", 7), 0, "default cost 10 and prefix $2b$: %s", hash);
        cr_assert_eq(strlen(hash), 60, "%s", hash);
        cr_assert_str_eq(test_call_ok(&co, &r, "verify", "[\"%s\", \"secret\"]", hash), "true");
}

Test(bcrypt, a_wrong_password_does_not_verify) {
        char hash[128];

        start("cost=4");
        hash_now("secret", hash, sizeof(hash));
        cr_assert_str_eq(test_call_ok(&co, &r, "verify", "[\"%s\", \"Secret\"]", hash), "false");
        cr_assert_str_eq(test_call_ok(&co, &r, "verify", "[\"%s\", \"\"]", hash), "false");
}

Test(bcrypt, two_hashes_of_one_password_have_different_salts) {
        char a[128], b[128];

        start("cost=4");
        hash_now("secret", a, sizeof(a));
        hash_now("secret", b, sizeof(b));
        cr_assert_str_neq(a, b);
        cr_assert_neq(strncmp(a, b, 29), 0, "the salts differ: %s %s", a, b);
}

Test(bcrypt, unicode_passwords) {
        char hash[128];

        start("cost=4");
        hash_now("p\\u00e4ssw\\u00f6rd \\ud83d\\udd11", hash, sizeof(hash));
        cr_assert_str_eq(test_call_ok(&co, &r, "verify", "[\"%s\", \"p\\u00e4ssw\\u00f6rd \\ud83d\\udd11\"]", hash),
                         "true");
        cr_assert_str_eq(test_call_ok(&co, &r, "verify", "[\"%s\", \"passwort\"]", hash), "false");
}

Test(bcrypt, malformed_hashes_are_errors_and_the_checkout_stays_usable) {
        /* A valid vector to start from (see known_vectors). */
        const char *good = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
        const char *m;

        start("cost=4");
        m = test_call_fails(&co, &r, "verify", "[\"$2b$10$tooshort\", \"secret\"]");
        cr_assert(strstr(m, "malformed bcrypt hash"), "%s", m);
        cr_assert_eq(r.kind, AETASK_ERROR_HANDLER);

        m = test_call_fails(&co, &r, "verify", "[\"$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0\", \"secret\"]");
        cr_assert(strstr(m, "not a bcrypt hash"), "%s", m);

        /* Right length and prefix, impossible cost: libcrypt answers "*0". */
        m = test_call_fails(&co, &r, "verify", "[\"$2b$99%s\", \"U*U\"]", good + 6);
        cr_assert(strstr(m, "malformed bcrypt hash"), "%s", m);

        /* A character outside bcrypt's alphabet in the salt. */
        m = test_call_fails(&co, &r, "verify", "[\"$2b$05$CCCCCCCCCCCCCCCCCCCC!.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW\", \"U*U\"]");
        cr_assert(strstr(m, "malformed bcrypt hash"), "%s", m);

        m = test_call_fails(&co, &r, "verify", "[42, \"secret\"]");
        cr_assert(strstr(m, "must be a string"), "%s", m);
        m = test_call_fails(&co, &r, "verify", "[\"%s\"]", good);
        cr_assert(strstr(m, "expected 2 arguments"), "%s", m);
        m = test_call_fails(&co, &r, "hash", "[\"a\\u0000b\"]");
        cr_assert(strstr(m, "NUL"), "a password cut at a NUL would match another: %s", m);

        /* Errors are the client's data: the same checkout goes on. */
        cr_assert_str_eq(test_call_ok(&co, &r, "verify", "[\"%s\", \"U*U\"]", good), "true");
}

/* bcrypt reads 72 bytes of a password: a longer one is refused, not cut
 * (libxcrypt ignored bytes 73 to 512, so passwords alike in their first 72
 * bytes verified each other, and failed past 512 with "Numerical result out
 * of range" for hash, "malformed bcrypt hash" for verify). */
Test(bcrypt, a_password_longer_than_72_bytes_is_refused) {
        char p72[73], p73[74], p600[601], hash[128];
        const char *m;

        memset(p72, 'a', 72);
        p72[72] = 0;
        memset(p73, 'a', 73);
        p73[73] = 0;
        memset(p600, 'a', 600);
        p600[600] = 0;

        start("cost=4");
        hash_now(p72, hash, sizeof(hash));
        cr_assert_str_eq(test_call_ok(&co, &r, "verify", "[\"%s\", \"%s\"]", hash, p72), "true");

        const char *longer[] = { p73, p600 };
        for (size_t i = 0; i < 2; i++) {
                m = test_call_fails(&co, &r, "hash", "[\"%s\"]", longer[i]);
                cr_assert_eq(r.kind, AETASK_ERROR_HANDLER);
                cr_assert_str_eq(m, "hash: password longer than 72 bytes");
                m = test_call_fails(&co, &r, "verify", "[\"%s\", \"%s\"]", hash, longer[i]);
                cr_assert_eq(r.kind, AETASK_ERROR_HANDLER);
                cr_assert_str_eq(m, "verify: password longer than 72 bytes");
        }
        /* Counted in bytes: 37 two-byte characters are 74. */
        m = test_call_fails(&co, &r, "verify", "[\"%s\", \"%s\"]", hash,
                            "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
                            "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
                            "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
                            "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9");
        cr_assert_str_eq(m, "verify: password longer than 72 bytes");
}

/* A lone surrogate escape is not text: the worker refuses the message
 * (it decoded to U+FFFD, so "\ud800", "\udc00" and "\ufffd" had one hash). */
Test(bcrypt, a_lone_surrogate_in_a_password_is_an_invalid_message) {
        char hash[128], buf[512], call[256];

        start("cost=4");
        hash_now("\ufffd", hash, sizeof(hash));
        const char *lone[] = { "\\ud800", "\\udc00", "\\ud800x", "\\udbff\\ud800" };
        for (size_t i = 0; i < 4; i++) {
                int fd = raw_connect(srv.path, false);
                int n = snprintf(call, sizeof(call),
                                 "{\"method\":\"io.aetask.Worker.verify\",\"parameters\":{\"args\":[\"%s\",\"%s\"]}}",
                                 hash, lone[i]);
                raw_send(fd, call, (size_t) n + 1);
                cr_assert_gt(raw_read_message(fd, buf, sizeof(buf), 10), 0);
                cr_assert(strstr(buf, "\"io.aetask.InvalidMessage\""), "%s: %s", lone[i], buf);
                cr_assert(strstr(buf, "surrogate"), "%s: %s", lone[i], buf);
                close(fd);
        }
        cr_assert_str_eq(test_call_ok(&co, &r, "verify", "[\"%s\", \"\ufffd\"]", hash), "true");
}

/* Published vectors.  The "U*U" ones are from Openwall's crypt_blowfish
 * test suite (wrapper.c), also used by John the Ripper, PHP and pyca/bcrypt;
 * the $2b$ ones are from pyca/bcrypt's tests/test_bcrypt.py. */
static const struct {
        const char *password, *hash;
        bool match;
} vectors[] = {
        { "U*U",           "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", true },
        { "U*U*",          "$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK", true },
        { "U*U*U",         "$2a$05$XXXXXXXXXXXXXXXXXXXXXOAcXxm9kjPGEMsLznoKqmqw7tc8WCx4a", true },
        { "Kk4DQuMMfZL9o", "$2b$04$cVWp4XaNU8a4v1uMRum2SO026BWLIoQMD/TXg5uZV.0P.uO8m3YEm", true },
        { "dEe6XfVGrrfSH", "$2b$04$2Siw3Nv3Q/gTOIPetAyPr.GNj3aO0lb1E5E9UumYGKjP9BYqlNWJe", true },
        { "badpass",       "$2b$04$2Siw3Nv3Q/gTOIPetAyPr.GNj3aO0lb1E5E9UumYGKjP9BYqlNWJe", false },
        { "U*U",           "$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK", false },
};

Test(bcrypt, known_vectors) {
        start(NULL);
        for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
                cr_assert_str_eq(test_call_ok(&co, &r, "verify", "[\"%s\", \"%s\"]", vectors[i].hash, vectors[i].password),
                                 vectors[i].match ? "true" : "false", "vector %zu: %s", i, vectors[i].hash);
}

Test(bcrypt, the_cost_option) {
        char hash[128];

        start("cost=5");
        hash_now("secret", hash, sizeof(hash));
        cr_assert_eq(strncmp(hash, "$2b$05$", 7), 0, "%s", hash);
}

Test(bcrypt, an_invalid_cost_or_an_unknown_option_is_refused_at_start) {
        const char *bad[] = { "cost=3", "cost=99", "cost=ten", "cost=", "cots=12" };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                test_module_config config = { .module = "bcrypt", .options = { bad[i] } };
                cr_assert_eq(test_module_fork(&config), -EINVAL, "%s", bad[i]);
        }
        test_module_config good = { .module = "bcrypt", .options = { "cost=4" } };
        cr_assert_eq(test_module_fork(&good), 0);
}

/* Our hash checked by libxcrypt called directly, outside the handler. */
Test(bcrypt, libcrypt_agrees_with_our_hashes) {
        static struct crypt_data data;
        char hash[128];
        const char *again;

        /* crypt_rn, not crypt_r: AddressSanitizer's crypt_r interceptor
         * cannot find libxcrypt's and jumps to address 0. */
        start("cost=4");
        hash_now("correct horse", hash, sizeof(hash));
        again = crypt_rn("correct horse", hash, &data, sizeof(data));
        cr_assert_not_null(again);
        cr_assert_str_eq(again, hash);
        again = crypt_rn("wrong horse", hash, &data, sizeof(data));
        cr_assert_not_null(again);
        cr_assert_str_neq(again, hash);
}

/* Runs the Python program PROGRAM with ARG1 and ARG2; returns its exit
 * status and what it printed (without the final newline) in OUT.  The child
 * gets no descriptor of ours but its stdout (Criterion's own among them: a
 * child holding one keeps the runner waiting), stdin from /dev/null, and 30
 * seconds: a Python that hangs fails the test by name instead of hanging it. */
static int run_python(const char *program, const char *arg1, const char *arg2, char *out, size_t size) {
        int fds[2], status;
        size_t got = 0;
        pid_t pid;

        cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
        pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                int null = open("/dev/null", O_RDONLY);
                if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(fds[1], STDOUT_FILENO) < 0)
                        _exit(127);
                close_range(3, ~0U, 0);
                execl("/usr/bin/python3", "python3", "-c", program, arg1, arg2, (char *) NULL);
                _exit(127);
        }
        close(fds[1]);
        for (double start = now_seconds();;) {
                struct pollfd p = { .fd = fds[0], .events = POLLIN };
                double left = 30 - (now_seconds() - start);
                if (left <= 0) {
                        kill(pid, SIGKILL);
                        waitpid(pid, &status, 0);
                        cr_assert_fail("python3 -c '%.40s...' did not finish in 30 s", program);
                }
                if (poll(&p, 1, (int) (left * 1000) + 1) <= 0)
                        continue;
                ssize_t n = read(fds[0], out + got, size - 1 - got);
                if (n <= 0 || (got += (size_t) n) + 1 >= size)
                        break;
        }
        out[got] = 0;
        if (got > 0 && out[got - 1] == '\n')
                out[got - 1] = 0;
        close(fds[0]);
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static const char python_checkpw[] =
        "import sys, bcrypt\n"
        "sys.exit(0 if bcrypt.checkpw(sys.argv[1].encode(), sys.argv[2].encode()) else 1)\n";
static const char python_hashpw[] =
        "import sys, bcrypt\n"
        "print(bcrypt.hashpw(sys.argv[1].encode(), bcrypt.gensalt(int(sys.argv[2]))).decode())\n";

Test(bcrypt, python_bcrypt_agrees_both_ways) {
        char hash[128], theirs[256];

        if (run_python("import bcrypt", NULL, NULL, theirs, sizeof(theirs)) != 0)
                cr_skip_test("/usr/bin/python3 with the bcrypt module (Debian's python3-bcrypt) is not installed");

        start("cost=4");
        hash_now("s3cr\\u00e9t", hash, sizeof(hash));
        cr_assert_eq(run_python(python_checkpw, "s3cr\xc3\xa9t", hash, theirs, sizeof(theirs)), 0,
                     "Python's bcrypt rejects our hash %s", hash);
        cr_assert_eq(run_python(python_checkpw, "s3cret", hash, theirs, sizeof(theirs)), 1);

        cr_assert_eq(run_python(python_hashpw, "from python", "5", theirs, sizeof(theirs)), 0);
        cr_assert_eq(strncmp(theirs, "$2b$05$", 7), 0, "%s", theirs);
        cr_assert_str_eq(test_call_ok(&co, &r, "verify", "[\"%s\", \"from python\"]", theirs), "true");
        cr_assert_str_eq(test_call_ok(&co, &r, "verify", "[\"%s\", \"from C\"]", theirs), "false");
}
