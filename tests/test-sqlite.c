/* The sqlite handler through a real forked server: DBI's methods, values
 * between JSON and SQL, transactions across the calls of one checkout,
 * rollback when a checkout is released with one open, errors that leave the
 * checkout usable, setup failures, what SQL can reach besides its database,
 * and results bounded in bytes. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calls.h"
#include "fixture.h"
#include "hostile.h"

static test_checkout co;
static test_reply r;
static char dir[64], database[128], database_option[160];

/* A folder of its own for the test's database. */
static void make_dir(void) {
        snprintf(dir, sizeof(dir), "/tmp/aetask-test-sqlite-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        snprintf(database, sizeof(database), "%s/test.sqlite3", dir);
        snprintf(database_option, sizeof(database_option), "database=%s", database);
}

/* A server with CONFIG; a client allowed MAX_WORKERS workers; a checkout. */
static void serve(test_module_config *config, unsigned max_workers) {
        fixture_start(NULL, test_configure_module, config);
        aetask_client_set_min_workers(client, 0);
        aetask_client_set_max_workers(client, max_workers);
        test_checkout_begin(&co, client, event);
}

/* A server on a new database, with OPTION besides database=... */
static void start_with(const char *option, unsigned max_workers) {
        test_module_config config = { .module = "sqlite", .options = { database_option, option } };

        make_dir();
        serve(&config, max_workers);
}

static void start(void) {
        start_with(NULL, 2);
}

static void remove_dir(const char *path) {
        DIR *d = opendir(path);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        (void) unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
        rmdir(path);
}

static void finish(void) {
        test_reply_clear(&r);
        test_checkout_end(&co);
        fixture_finish();
        if (dir[0])
                remove_dir(dir);
}

TestSuite(sqlite, .fini = finish);

static void create_table(test_checkout *t) {
        test_reply x = {};
        cr_assert_str_eq(test_call_ok(t, &x, "do", "[\"CREATE TABLE user(username TEXT PRIMARY KEY, email TEXT)\"]"),
                         "0");
        test_reply_clear(&x);
}

static const char *count_users(test_checkout *t, test_reply *x) {
        return test_call_ok(t, x, "selectrow_array", "[\"SELECT count(*) FROM user\"]");
}

Test(sqlite, create_insert_select) {
        start();
        create_table(&co);
        cr_assert_str_eq(test_call_ok(&co, &r, "do", "[\"INSERT INTO user (username, email) VALUES (?, ?)\", null, "
                                                     "\"jimmy\", \"jimmy@example.com\"]"), "1");
        cr_assert_str_eq(test_call_ok(&co, &r, "do", "[\"INSERT INTO user VALUES (?, ?), (?, ?)\", {}, "
                                                     "\"ann\", null, \"bob\", \"bob@example.com\"]"), "2");
        cr_assert_str_eq(test_call_ok(&co, &r, "last_insert_id", "[]"), "3");

        cr_assert_str_eq(test_call_ok(&co, &r, "selectrow_hashref", "[\"SELECT * FROM user WHERE username = ?\", "
                                                                    "null, \"jimmy\"]"),
                         "{\"username\":\"jimmy\",\"email\":\"jimmy@example.com\"}");
        cr_assert_str_eq(test_call_ok(&co, &r, "selectrow_array", "[\"SELECT username, email FROM user ORDER BY 1\"]"),
                         "[\"ann\",null]");
        cr_assert_str_eq(test_call_ok(&co, &r, "selectrow_arrayref", "[\"SELECT 1 FROM user WHERE 0\"]"), "null");
        cr_assert_str_eq(test_call_ok(&co, &r, "selectrow_array", "[\"SELECT 1 FROM user WHERE 0\"]"), "[]");
        cr_assert_str_eq(test_call_ok(&co, &r, "selectrow_hashref", "[\"SELECT 1 FROM user WHERE 0\"]"), "null");
        cr_assert_str_eq(test_call_ok(&co, &r, "selectall_arrayref", "[\"SELECT * FROM user ORDER BY 1\"]"),
                         "[[\"ann\",null],[\"bob\",\"bob@example.com\"],[\"jimmy\",\"jimmy@example.com\"]]");
        cr_assert_str_eq(test_call_ok(&co, &r, "selectall_objects", "[\"SELECT username AS u FROM user "
                                                                    "WHERE email IS NOT NULL ORDER BY 1\"]"),
                         "[{\"u\":\"bob\"},{\"u\":\"jimmy\"}]");
        cr_assert_str_eq(test_call_ok(&co, &r, "selectall_arrayref", "[\"SELECT username AS u FROM user "
                                                                     "ORDER BY 1 LIMIT 1\", {\"Slice\": {}}]"),
                         "[{\"u\":\"ann\"}]");
        cr_assert_str_eq(test_call_ok(&co, &r, "selectall_hashref", "[\"SELECT * FROM user WHERE username < ?\", "
                                                                    "\"username\", null, \"c\"]"),
                         "{\"ann\":{\"username\":\"ann\",\"email\":null},"
                         "\"bob\":{\"username\":\"bob\",\"email\":\"bob@example.com\"}}");
        cr_assert_str_eq(test_call_ok(&co, &r, "selectcol_arrayref", "[\"SELECT username FROM user ORDER BY 1\"]"),
                         "[\"ann\",\"bob\",\"jimmy\"]");
        cr_assert_str_eq(test_call_ok(&co, &r, "selectall_arrayref", "[\"SELECT * FROM user WHERE 0\"]"), "[]");

        cr_assert_str_eq(test_call_ok(&co, &r, "do", "[\"UPDATE user SET email = NULL\"]"), "3");
        /* A statement that changes no rows after one that did. */
        cr_assert_str_eq(test_call_ok(&co, &r, "do", "[\"CREATE INDEX user_email ON user(email)\"]"), "0");
        cr_assert_str_eq(test_call_ok(&co, &r, "do", "[\"DELETE FROM user WHERE username = ?\", null, \"bob\"]"),
                         "1");
}

Test(sqlite, values_round_trip_null_included) {
        start();
        cr_assert_str_eq(test_call_ok(&co, &r, "do", "[\"CREATE TABLE v(i, n)\"]"), "0");
        cr_assert_str_eq(test_call_ok(&co, &r, "do", "[\"INSERT INTO v VALUES (?, ?), (?, ?), (?, ?), (?, ?), "
                                                     "(?, ?), (?, ?)\", null, "
                                                     "1, null, 2, 9007199254740993, 3, -2.5, 4, \"h\\u00e9llo\", "
                                                     "5, true, 6, \"nul\\u0000inside\"]"), "6");
        cr_assert_str_eq(test_call_ok(&co, &r, "selectcol_arrayref", "[\"SELECT n FROM v ORDER BY i\"]"),
                         "[null,9007199254740993,-2.5,\"h\xc3\xa9llo\",1,\"nul\\u0000inside\"]");
        cr_assert_str_eq(test_call_ok(&co, &r, "selectrow_array", "[\"SELECT count(*) FROM v WHERE n IS NULL\"]"),
                         "[1]");
        cr_assert_str_eq(test_call_ok(&co, &r, "selectrow_array", "[\"SELECT typeof(n) FROM v WHERE i = ?\", "
                                                                  "null, 4]"), "[\"text\"]");
        /* NULL binds as NULL: "= NULL" matches nothing, "IS ?" does. */
        cr_assert_str_eq(test_call_ok(&co, &r, "selectrow_array", "[\"SELECT i FROM v WHERE n IS ?\", null, null]"),
                         "[1]");
        /* Blobs come back as strings when they are UTF-8 text. */
        cr_assert_str_eq(test_call_ok(&co, &r, "selectrow_array", "[\"SELECT x'41e282ac'\"]"), "[\"A\xe2\x82\xac\"]");
}

Test(sqlite, values_json_cannot_carry_are_errors) {
        const char *m;

        start();
        m = test_call_fails(&co, &r, "selectrow_array", "[\"SELECT x'ff00' AS b\"]");
        cr_assert(strstr(m, "column b holds bytes that are not UTF-8 text"), "%s", m);
        m = test_call_fails(&co, &r, "selectrow_array", "[\"SELECT ?\", null, [1, 2]]");
        cr_assert(strstr(m, "bind value 1 is an array"), "%s", m);
        m = test_call_fails(&co, &r, "selectrow_array", "[\"SELECT 9e999\"]");
        cr_assert(strstr(m, "JSON cannot carry"), "%s", m);
}

Test(sqlite, wrong_arguments_are_explained) {
        const char *m;

        start();
        m = test_call_fails(&co, &r, "do", "[\"SELECT ?, ?\", null, 1]");
        cr_assert(strstr(m, "the statement has 2 placeholders but 1 bind value was given"), "%s", m);
        m = test_call_fails(&co, &r, "do", "[\"SELECT ?\", \"jimmy\"]");
        cr_assert(strstr(m, "argument 2 is DBI's attributes"), "%s", m);
        m = test_call_fails(&co, &r, "do", "[\"SELECT 1; SELECT 2\"]");
        cr_assert(strstr(m, "one SQL statement per call"), "%s", m);
        m = test_call_fails(&co, &r, "do", "[\"  -- nothing\"]");
        cr_assert(strstr(m, "no SQL statement"), "%s", m);
        m = test_call_fails(&co, &r, "do", "[]");
        cr_assert(strstr(m, "the first argument must be the SQL statement"), "%s", m);
        m = test_call_fails(&co, &r, "selectall_hashref", "[\"SELECT 1 AS a\", \"b\"]");
        cr_assert(strstr(m, "no column named b"), "%s", m);
        /* A trailing semicolon and comment are one statement. */
        cr_assert_str_eq(test_call_ok(&co, &r, "selectrow_array", "[\"SELECT 1; -- done\"]"), "[1]");
}

Test(sqlite, a_transaction_spans_the_calls_of_one_checkout) {
        test_checkout other;
        test_reply x = {};

        start();
        create_table(&co);
        cr_assert_str_eq(test_call_ok(&co, &r, "begin_work", "[]"), "true");
        cr_assert_str_eq(test_call_ok(&co, &r, "do", "[\"INSERT INTO user VALUES (?, ?)\", null, \"jimmy\", null]"),
                         "1");
        cr_assert_str_eq(count_users(&co, &r), "[1]", "the checkout sees its own insert");
        cr_assert(strstr(test_call_fails(&co, &r, "begin_work", "[]"), "already in a transaction"), "%s", r.message);

        /* Another checkout, on the other worker, does not see it yet. */
        test_checkout_begin(&other, client, event);
        cr_assert_str_eq(count_users(&other, &x), "[0]");

        cr_assert_str_eq(test_call_ok(&co, &r, "commit", "[]"), "true");
        cr_assert_str_eq(count_users(&other, &x), "[1]");
        test_reply_clear(&x);
        test_checkout_end(&other);
}

/* Checkout one leaves a transaction open; the next checkouts, on whichever
 * worker, neither see its row nor wait for its lock. */
static void check_rollback_on_release(unsigned max_workers) {
        test_checkout second, third;
        test_reply a = {}, b = {}, c = {}, d = {};

        /* A short busy timeout: a lock left behind fails fast. */
        start_with("busy_timeout=500", max_workers);
        create_table(&co);
        cr_assert_str_eq(test_call_ok(&co, &r, "begin_work", "[]"), "true");
        cr_assert_str_eq(test_call_ok(&co, &r, "do", "[\"INSERT INTO user VALUES ('half', NULL)\"]"), "1");
        test_checkout_end(&co);

        test_checkout_begin(&second, client, event);
        test_checkout_begin(&third, client, event);
        test_queue(&second, &a, "selectrow_array", "[\"SELECT count(*) FROM user\"]");
        test_queue(&second, &b, "do", "[\"INSERT INTO user VALUES ('second', NULL)\"]");
        test_queue(&third, &c, "selectrow_array", "[\"SELECT count(*) FROM user WHERE username = 'half'\"]");
        test_wait(&second, &b);
        /* With one worker the third checkout waits for the second. */
        if (max_workers == 1)
                test_checkout_end(&second);
        test_wait(&third, &c);
        cr_assert(!a.failed && !b.failed && !c.failed, "%s %s %s", a.message, b.message, c.message);
        cr_assert_str_eq(a.text, "[0]");
        cr_assert_str_eq(b.text, "1");
        cr_assert_str_eq(c.text, "[0]");
        cr_assert_str_eq(test_call_ok(&third, &d, "do", "[\"INSERT INTO user VALUES ('third', NULL)\"]"), "1");

        test_reply_clear(&a);
        test_reply_clear(&b);
        test_reply_clear(&c);
        test_reply_clear(&d);
        test_checkout_end(&second);
        test_checkout_end(&third);
}

Test(sqlite, releasing_a_checkout_rolls_back_its_open_transaction_one_worker) {
        check_rollback_on_release(1);
}

Test(sqlite, releasing_a_checkout_rolls_back_its_open_transaction_two_workers) {
        check_rollback_on_release(2);
}

Test(sqlite, a_failing_statement_leaves_the_checkout_usable_for_a_rollback) {
        const char *m;

        start();
        create_table(&co);
        cr_assert_str_eq(test_call_ok(&co, &r, "begin_work", "[]"), "true");
        cr_assert_str_eq(test_call_ok(&co, &r, "do", "[\"INSERT INTO user VALUES ('jimmy', NULL)\"]"), "1");

        m = test_call_fails(&co, &r, "do", "[\"INSERT INTO no_such_table VALUES (1)\"]");
        cr_assert_eq(r.kind, AETASK_ERROR_HANDLER);
        cr_assert_str_eq(m, "do: no such table: no_such_table");
        m = test_call_fails(&co, &r, "do", "[\"INSERT INTO user VALUES ('jimmy', NULL)\"]");
        cr_assert_str_eq(m, "do: UNIQUE constraint failed: user.username");

        cr_assert_str_eq(test_call_ok(&co, &r, "rollback", "[]"), "true");
        cr_assert_str_eq(count_users(&co, &r), "[0]");
        m = test_call_fails(&co, &r, "commit", "[]");
        cr_assert(strstr(m, "no transaction is active"), "%s", m);
        /* Rolling back with nothing to roll back is fine. */
        cr_assert_str_eq(test_call_ok(&co, &r, "rollback", "[]"), "true");
}

Test(sqlite, an_error_drops_the_calls_queued_behind_it) {
        test_reply a = {}, b = {};

        start();
        test_queue(&co, &a, "do", "[\"bogus sql\"]");
        test_queue(&co, &b, "selectrow_array", "[\"SELECT 1\"]");
        test_wait(&co, &b);
        cr_assert(a.failed && strstr(a.message, "syntax error"), "%s", a.message);
        cr_assert(b.failed, "a call queued behind an error is not run");
        cr_assert_str_eq(test_call_ok(&co, &r, "selectrow_array", "[\"SELECT 1\"]"), "[1]");
        test_reply_clear(&a);
        test_reply_clear(&b);
}

Test(sqlite, max_rows_bounds_a_result) {
        const char *m;

        start_with("max_rows=2", 1);
        cr_assert_str_eq(test_call_ok(&co, &r, "selectall_arrayref", "[\"VALUES (1), (2)\"]"), "[[1],[2]]");
        m = test_call_fails(&co, &r, "selectall_arrayref", "[\"VALUES (1), (2), (3)\"]");
        cr_assert(strstr(m, "more than 2 rows"), "%s", m);
        /* The first row of many is not bounded. */
        cr_assert_str_eq(test_call_ok(&co, &r, "selectrow_array", "[\"VALUES (1), (2), (3)\"]"), "[1]");
}

Test(sqlite, journal_mode_wal) {
        start_with("journal_mode=wal", 1);
        cr_assert_str_eq(test_call_ok(&co, &r, "selectrow_array", "[\"PRAGMA journal_mode\"]"), "[\"wal\"]");
}

static void expect_setup_exception(const char *expected) {
        const char *m = test_call_fails(&co, &r, "selectrow_array", "[\"SELECT 1\"]");
        cr_assert_eq(r.kind, AETASK_ERROR_SETUP, "%s: %s", aetask_error_kind_to_string(r.kind), m);
        cr_assert(strstr(m, expected), "expected \"%s\" in: %s", expected, m);
}

Test(sqlite, an_unwritable_path_is_a_setup_exception) {
        char option[200];
        int fd;

        /* As root no permission stops us: put the database under a file. */
        make_dir();
        fd = open(database, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        cr_assert_geq(fd, 0);
        close(fd);
        snprintf(option, sizeof(option), "database=%s/db.sqlite3", database);
        test_module_config config = { .module = "sqlite", .options = { option } };
        serve(&config, 1);
        expect_setup_exception("setup exception: cannot open database");
        cr_assert(strstr(r.message, "Not a directory"), "%s", r.message);
}

Test(sqlite, a_file_that_is_no_database_is_a_setup_exception) {
        int fd;

        test_module_config config = { .module = "sqlite", .options = { database_option } };

        make_dir();
        fd = open(database, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, "this is no database, but it is long enough to be read as one", 60), 60);
        close(fd);
        serve(&config, 1);
        expect_setup_exception("setup exception: cannot read database");
        cr_assert(strstr(r.message, "file is not a database"), "%s", r.message);
}

Test(sqlite, invalid_options_are_refused_at_start) {
        make_dir();
        const char *bad[] = { "busy_timeout=soon", "max_rows=-1", "journal_mode=fast", "attach=relative.sqlite3",
                              "attach=/srv/a.sqlite3:relative.sqlite3", "attach=/srv/a.sqlite3:", "databse=/tmp/x" };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                test_module_config config = { .module = "sqlite", .options = { database_option, bad[i] } };
                cr_assert_eq(test_module_fork(&config), -EINVAL, "%s", bad[i]);
        }
        test_module_config good = { .module = "sqlite", .options = { database_option, "busy_timeout=100",
                                                                      "journal_mode=wal", "attach=/srv/a:/srv/b" } };
        cr_assert_eq(test_module_fork(&good), 0);
}

Test(sqlite, the_database_defaults_to_the_state_directory) {
        char state[64], file[160];
        test_module_config config = { .module = "sqlite" };

        /* Forked servers inherit our environment. */
        snprintf(state, sizeof(state), "/tmp/aetask-test-state-XXXXXX");
        cr_assert_not_null(mkdtemp(state));
        snprintf(dir, sizeof(dir), "%s", state);
        setenv("STATE_DIRECTORY", state, 1);
        serve(&config, 1);
        create_table(&co);
        snprintf(file, sizeof(file), "%s/aetask.sqlite3", state);
        cr_assert_eq(access(file, F_OK), 0, "%s: %s", file, strerror(errno));
}

Test(sqlite, without_a_database_option_or_state_directory_setup_says_what_to_set) {
        test_module_config config = { .module = "sqlite" };

        unsetenv("STATE_DIRECTORY");
        serve(&config, 1);
        expect_setup_exception("setup exception: no database given: set the handler option database=PATH");
}

/* ---- What SQL can reach -------------------------------------------------- */

static bool exists(const char *path) {
        return access(path, F_OK) == 0;
}

Test(sqlite, attach_of_a_file_outside_is_refused_and_creates_nothing) {
        char outside[200];
        const char *m;

        start();
        snprintf(outside, sizeof(outside), "%s/outside.sqlite3", dir);
        m = test_call_fails(&co, &r, "do", "[\"ATTACH DATABASE '%s' AS o\"]", outside);
        cr_assert(strstr(m, "is not this handler's database"), "%s", m);
        cr_assert(!exists(outside), "ATTACH created %s", outside);
        /* Nor through an expression or a bind value, which the authorizer
         * cannot see before the statement runs. */
        m = test_call_fails(&co, &r, "do", "[\"ATTACH ? AS o\", null, \"%s\"]", outside);
        cr_assert(strstr(m, "ATTACH needs the file name as a string literal"), "%s", m);
        m = test_call_fails(&co, &r, "do", "[\"ATTACH '%s' || '' AS o\"]", outside);
        cr_assert(strstr(m, "string literal"), "%s", m);
        cr_assert(!exists(outside), "ATTACH created %s", outside);
        /* A temporary database reaches no file. */
        cr_assert_str_eq(test_call_ok(&co, &r, "do", "[\"ATTACH ':memory:' AS scratch\"]"), "0");
        cr_assert_str_eq(test_call_ok(&co, &r, "do", "[\"DETACH scratch\"]"), "0");
}

Test(sqlite, vacuum_into_is_refused_and_plain_vacuum_works) {
        char copy[200];
        const char *m;

        start();
        create_table(&co);
        snprintf(copy, sizeof(copy), "%s/copy.sqlite3", dir);
        m = test_call_fails(&co, &r, "do", "[\"VACUUM INTO '%s'\"]", copy);
        cr_assert(strstr(m, "is not this handler's database"), "%s", m);
        cr_assert(!exists(copy), "VACUUM INTO created %s", copy);
        cr_assert_str_eq(test_call_ok(&co, &r, "do", "[\"VACUUM\"]"), "0");
}

Test(sqlite, sql_cannot_load_code_or_move_temporary_files) {
        const char *m;

        start();
        m = test_call_fails(&co, &r, "selectrow_array", "[\"SELECT load_extension('/nonexistent/x')\"]");
        cr_assert(strstr(m, "not authorized"), "%s", m);
        m = test_call_fails(&co, &r, "do", "[\"PRAGMA temp_store_directory = '%s'\"]", dir);
        cr_assert(strstr(m, "PRAGMA temp_store_directory is refused"), "%s", m);
        /* Defensive mode: no writing the schema by hand. */
        cr_assert_str_eq(test_call_ok(&co, &r, "do", "[\"PRAGMA writable_schema = ON\"]"), "0");
        create_table(&co);
        m = test_call_fails(&co, &r, "do", "[\"UPDATE sqlite_master SET sql = 'x'\"]");
        cr_assert(strstr(m, "may not be modified"), "%s", m);
}

Test(sqlite, the_attach_option_names_the_files_sql_may_attach) {
        char option[512], extra[200], other[200], outside[200];
        const char *m;

        make_dir();
        snprintf(extra, sizeof(extra), "%s/extra.sqlite3", dir);
        snprintf(other, sizeof(other), "%s/other.sqlite3", dir);
        snprintf(outside, sizeof(outside), "%s/outside.sqlite3", dir);
        snprintf(option, sizeof(option), "attach=%s:%s", extra, other);
        test_module_config config = { .module = "sqlite", .options = { database_option, option } };
        serve(&config, 1);

        cr_assert_str_eq(test_call_ok(&co, &r, "do", "[\"ATTACH '%s' AS extra\"]", extra), "0");
        cr_assert_str_eq(test_call_ok(&co, &r, "do", "[\"CREATE TABLE extra.t(x)\"]"), "0");
        cr_assert_str_eq(test_call_ok(&co, &r, "do", "[\"INSERT INTO extra.t VALUES (7)\"]"), "1");
        cr_assert_str_eq(test_call_ok(&co, &r, "do", "[\"ATTACH '%s' AS other\"]", other), "0");
        cr_assert_str_eq(test_call_ok(&co, &r, "do", "[\"DETACH other\"]"), "0");
        cr_assert_str_eq(test_call_ok(&co, &r, "do", "[\"DETACH extra\"]"), "0");
        cr_assert(exists(extra));
        m = test_call_fails(&co, &r, "do", "[\"ATTACH '%s' AS o\"]", outside);
        cr_assert(strstr(m, "is not this handler's database"), "%s", m);
        /* VACUUM INTO an allowed file is an ATTACH of it. */
        cr_assert_str_eq(test_call_ok(&co, &r, "do", "[\"VACUUM INTO '%s'\"]", other), "0");
        cr_assert(!exists(outside));
}


/* ---- Results bounded in bytes -------------------------------------------- */

typedef struct sized_config {
        test_module_config module;
        size_t max_message_size;
} sized_config;

static void configure_sized(aetask_server *s, void *userdata) {
        sized_config *c = userdata;
        test_configure_module(s, &c->module);
        cr_assert_eq(aetask_server_set_max_message_size(s, c->max_message_size), 0);
}

/* The one worker of the server: its only child. */
static pid_t only_worker(void) {
        char path[64];
        int pid = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/task/%d/children", srv.pid, srv.pid);
        f = fopen(path, "re");
        cr_assert_not_null(f, "%s: %s", path, strerror(errno));
        cr_assert_eq(fscanf(f, "%d", &pid), 1, "the server has no worker");
        fclose(f);
        return pid;
}

/* The peak resident memory of PID, in KiB. */
static long vm_hwm_kib(pid_t pid) {
        char path[64], line[256];
        long kib = -1;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", pid);
        f = fopen(path, "re");
        cr_assert_not_null(f);
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
                        break;
        fclose(f);
        return kib;
}

/* A server whose messages are at most 1 MiB; a query of ROWS rows that
 * would not fit fails with a clear error, and the worker's peak memory grows
 * by less than 16 MiB on the way.  Before the bound, it built the whole
 * result (1.9 GiB for 99,999 rows of 10 KB) and then said "the result cannot
 * be sent". */
static void check_result_bound(const char *method, unsigned rows, const char *select, const char *expected) {
        sized_config config = { .module = { .module = "sqlite", .options = { database_option } },
                                .max_message_size = 1 << 20 };
        long before, after;
        pid_t worker;
        const char *m;

        make_dir();
        fixture_start(NULL, configure_sized, &config);
        aetask_client_set_max_workers(client, 1);
        test_checkout_begin(&co, client, event);

        cr_assert_str_eq(test_call_ok(&co, &r, "selectrow_array", "[\"SELECT 1\"]"), "[1]");
        worker = only_worker();
        before = vm_hwm_kib(worker);
        m = test_call_fails(&co, &r, method, "[\"WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c "
                                             "LIMIT %u) %s FROM c\"]", rows, select);
        after = vm_hwm_kib(worker);
        cr_log_info("%s: worker peak memory %ld KiB before, %ld KiB after", method, before, after);
        cr_assert(strstr(m, expected), "%s", m);
        if (!UNDER_ASAN)
                cr_assert_lt(after - before, 16 * 1024, "the worker's peak memory grew by %ld KiB", after - before);
        /* The checkout is still usable, and a result that fits still comes. */
        cr_assert_str_eq(test_call_ok(&co, &r, method, "[\"SELECT 1 AS a\"]"),
                         strcmp(method, "selectall_objects") == 0 ? "[{\"a\":1}]" : "[[1]]");
}

/* The bounds leave room for the results people ask for: 20,000 rows as
 * objects of three columns (about 1 MB of text, 30 MiB of json-c values)
 * reach the client.  (A reader allowing 5 times the text plus 1 MiB refused
 * even 2,000 such rows.) */
Test(sqlite, a_result_of_20000_rows_as_objects_reaches_the_client) {
        json_object *last;

        start();
        (void) test_call_ok(&co, &r, "selectall_objects", "[\"WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL "
                                                         "SELECT n + 1 FROM c LIMIT 20000) SELECT n, 'user' || n AS "
                                                         "name, n * 2 AS twice FROM c\"]");
        cr_assert_eq(json_object_array_length(r.result), 20000);
        last = json_object_array_get_idx(r.result, 19999);
        cr_assert_str_eq(json_object_to_json_string_ext(last, JSON_C_TO_STRING_PLAIN),
                         "{\"n\":20000,\"name\":\"user20000\",\"twice\":40000}");
}

Test(sqlite, a_result_larger_than_a_message_fails_before_it_is_built) {
        /* 200 MB of JSON. */
        check_result_bound("selectall_arrayref", 20000, "SELECT n, hex(zeroblob(5000))",
                           "selectall_arrayref: the result is larger than the message size limit of 1048576 bytes");
}

Test(sqlite, a_result_of_many_small_rows_is_bounded_by_memory_too) {
        /* 99,999 rows of {"n":1}: 1 MB of text, but 88 MB of json-c objects. */
        check_result_bound("selectall_objects", 99999, "SELECT n",
                           "selectall_objects: the result would take more than 4 MiB of memory to build");
}
