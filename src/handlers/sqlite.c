/* The SQLite handler: a database used through checkouts, the seed manual's
 * second synopsis.  Each worker opens one connection in its setup; methods
 * keep the names and argument order of Perl DBI, so DBI code translates line
 * for line:
 *   do(sql, attrs, binds...)                    rows affected
 *   selectrow_array(sql, attrs, binds...)       first row as an array, [] if none
 *   selectrow_arrayref(sql, attrs, binds...)    first row as an array, null if none
 *   selectrow_hashref(sql, attrs, binds...)     first row as an object, null if none
 *   selectall_arrayref(sql, attrs, binds...)    rows as arrays ({"Slice":{}}: objects)
 *   selectall_objects(sql, attrs, binds...)     rows as objects
 *   selectall_hashref(sql, key, attrs, binds...) rows as objects, keyed by column KEY
 *   selectcol_arrayref(sql, attrs, binds...)    the first column of every row
 *   last_insert_id()                            the rowid of the last insert
 *   begin_work(), commit(), rollback()
 * A checkout owns its worker, so a transaction may span calls of one checkout;
 * the checkout-done hook rolls back whatever transaction was left open.
 * What SQL may reach besides the database is in sqlite-access.c, what a
 * result may cost in sqlite-result.c.
 * Options: database, busy_timeout, journal_mode, max_rows, attach.  See
 * aetask-sqlite(8). */
#include <aetask/aetask-handler.h>
#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handler-options.h"
#include "sqlite-access.h"
#include "sqlite-result.h"

#define SQLITE_DEFAULT_FILE "aetask.sqlite3"
#define BUSY_TIMEOUT_MS_DEFAULT 5000
#define MAX_ROWS_DEFAULT 100000
#define BUSY_TIMEOUT_MS_MAX (3600UL * 1000UL)
#define MAX_ROWS_MAX 1000000000UL


/* One worker is one process, with one connection for its whole life.  It is
 * never closed: the worker ends with _exit(), and SQLite recovers from
 * whatever a dead connection left behind (its journal) on the next open. */
static sqlite3 *db;
static unsigned long max_rows = MAX_ROWS_DEFAULT;

static void finalizep(sqlite3_stmt **st) {
        sqlite3_finalize(*st);  /* accepts NULL */
}
#define _cleanup_stmt_ __attribute__((cleanup(finalizep)))

static const char *method(aetask_worker *w) {
        return aetask_worker_get_method(w) ?: "sqlite";
}

/* Raises "METHOD: <SQLite's message>", or the authorizer's reason. */
static int raise_sqlite(aetask_worker *w) {
        const char *refused = (sqlite3_extended_errcode(db) & 0xff) == SQLITE_AUTH ? sqlite_access_refusal() : NULL;
        return aetask_worker_raise(w, "%s: %s", method(w), refused ?: sqlite3_errmsg(db));
}

/* ---- Setup --------------------------------------------------------------- */

static int option_unsigned(aetask_worker *w, const char *key, unsigned long max, unsigned long *value) {
        const char *s = aetask_worker_get_option(w, key);
        unsigned long v;
        char *end;

        if (!s)
                return 0;  /* keep the default */
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || end == s || *end || s[0] == '-' || v > max)
                return aetask_worker_raise(w, "invalid option %s=%s: expected an integer from 0 to %lu", key, s, max);
        *value = v;
        return 0;
}

/* The database file: option database=PATH, else aetask.sqlite3 in the
 * service's state directory (systemd's StateDirectory=, the first one when
 * there are several). */
static int database_path(aetask_worker *w, char **ret) {
        const char *path = aetask_worker_get_option(w, "database");
        const char *state = getenv("STATE_DIRECTORY");

        if (path && *path)
                *ret = strdup(path);
        else if (state && *state) {
                if (asprintf(ret, "%.*s/" SQLITE_DEFAULT_FILE, (int) strcspn(state, ":"), state) < 0)
                        *ret = NULL;
        } else
                return aetask_worker_raise(w, "no database given: set the handler option database=PATH "
                                              "(aetaskd -o database=PATH), or run under systemd with a StateDirectory=");
        return *ret ? 0 : -ENOMEM;
}

static int check_journal_mode(aetask_worker *w, const char *mode) {
        static const char *const modes[] = { "delete", "truncate", "persist", "memory", "wal", "off" };
        bool known = false;

        for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
                known = known || strcasecmp(mode, modes[i]) == 0;
        if (!known)
                return aetask_worker_raise(w, "invalid option journal_mode=%s: expected delete, truncate, "
                                              "persist, memory, wal or off", mode);
        return 0;
}

static int set_journal_mode(aetask_worker *w, const char *mode) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        char sql[64];
        int r = check_journal_mode(w, mode);

        if (r < 0)
                return r;
        snprintf(sql, sizeof(sql), "PRAGMA journal_mode=%s", mode);
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
                return aetask_worker_raise(w, "cannot set journal_mode=%s: %s", mode, sqlite3_errmsg(db));
        /* SQLite answers with the mode in force, which is not always the one
         * asked for (an in-memory database stays "memory"). */
        const char *now = (const char *) sqlite3_column_text(st, 0);
        if (!now || strcasecmp(now, mode) != 0)
                return aetask_worker_raise(w, "cannot set journal_mode=%s: the database stays in mode %s",
                                           mode, now ?: "?");
        return 0;
}

/* At start: aetaskd refuses an unknown key, or a value setup would refuse
 * (the database itself is opened by each worker, and only then checked). */
static int sqlite_check_options(aetask_worker *w, const char *const *options) {
        static const char *const known[] = { "database", "journal_mode", "busy_timeout", "max_rows", "attach", NULL };
        const char *journal_mode = aetask_worker_get_option(w, "journal_mode");
        unsigned long unused;
        int r;

        r = handler_check_keys(w, options, known);
        if (r >= 0)
                r = option_unsigned(w, "busy_timeout", BUSY_TIMEOUT_MS_MAX, &unused);
        if (r >= 0)
                r = option_unsigned(w, "max_rows", MAX_ROWS_MAX, &unused);
        if (r >= 0 && journal_mode)
                r = check_journal_mode(w, journal_mode);
        if (r >= 0)
                r = sqlite_access_check_options(w);
        return r;
}

static int sqlite_setup(aetask_worker *w) {
        unsigned long busy_timeout = BUSY_TIMEOUT_MS_DEFAULT;
        const char *journal_mode = aetask_worker_get_option(w, "journal_mode");
        char *path = NULL;
        int r, rc;

        r = option_unsigned(w, "busy_timeout", BUSY_TIMEOUT_MS_MAX, &busy_timeout);
        if (r >= 0)
                r = option_unsigned(w, "max_rows", MAX_ROWS_MAX, &max_rows);
        if (r >= 0)
                r = database_path(w, &path);
        if (r < 0)
                return r;

        rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK) {
                int e = db ? sqlite3_system_errno(db) : 0;
                r = aetask_worker_raise(w, "cannot open database %s: %s%s%s%s", path,
                                        db ? sqlite3_errmsg(db) : sqlite3_errstr(rc),
                                        e > 0 ? " (" : "", e > 0 ? strerror(e) : "", e > 0 ? ")" : "");
                goto fail;
        }
        sqlite3_extended_result_codes(db, 1);
        sqlite3_busy_timeout(db, (int) busy_timeout);

        /* Read the file now, so a file that is not a database fails here,
         * as a setup exception, not in the client's first call. */
        rc = sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
                r = aetask_worker_raise(w, "cannot read database %s: %s", path, sqlite3_errmsg(db));
                goto fail;
        }
        if (sqlite3_db_readonly(db, "main") == 1) {
                r = aetask_worker_raise(w, "database %s can only be opened read-only", path);
                goto fail;
        }
        if (journal_mode) {
                r = set_journal_mode(w, journal_mode);
                if (r < 0)
                        goto fail;
        }
        /* Last: defensive mode would refuse journal_mode=off. */
        r = sqlite_access_setup(w, db);
        if (r < 0)
                goto fail;
        free(path);
        return 0;

fail:
        sqlite3_close(db);
        db = NULL;
        free(path);
        return r;
}

/* ---- Values between JSON and SQL ----------------------------------------- */

/* JSON text must be UTF-8; SQLite checks nothing of what it stores. */
static bool utf8_is_valid(const unsigned char *s, size_t n) {
        size_t i = 0;

        while (i < n) {
                unsigned c = s[i], cp, min;
                size_t len;

                if (c < 0x80) {
                        i++;
                        continue;
                }
                if ((c & 0xE0) == 0xC0)
                        len = 2, cp = c & 0x1F, min = 0x80;
                else if ((c & 0xF0) == 0xE0)
                        len = 3, cp = c & 0x0F, min = 0x800;
                else if ((c & 0xF8) == 0xF0)
                        len = 4, cp = c & 0x07, min = 0x10000;
                else
                        return false;
                if (n - i < len)
                        return false;
                for (size_t k = 1; k < len; k++) {
                        if ((s[i + k] & 0xC0) != 0x80)
                                return false;
                        cp = cp << 6 | (s[i + k] & 0x3F);
                }
                if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                        return false;
                i += len;
        }
        return true;
}

/* Column I of the current row, charged to B with the comma after it; NULL
 * stands for SQL NULL. */
static int column_value(aetask_worker *w, sqlite3_stmt *st, int i, result_budget *b, json_object **ret) {
        const char *name = sqlite3_column_name(st, i);
        int type = sqlite3_column_type(st, i);
        const unsigned char *p;
        double d;
        int n;

        int r;

        switch (type) {
        case SQLITE_NULL:
                *ret = NULL;
                return result_budget_charge(w, method(w), b, sizeof("null,") - 1, 0);
        case SQLITE_INTEGER: {
                sqlite3_int64 v = sqlite3_column_int64(st, i);
                r = result_budget_charge(w, method(w), b, integer_text(v) + 1, JSONC_VALUE_COST);
                if (r < 0)
                        return r;
                *ret = json_object_new_int64(v);
                break;
        }
        case SQLITE_FLOAT:
                d = sqlite3_column_double(st, i);
                if (!isfinite(d))
                        return aetask_worker_raise(w, "%s: column %s holds %g, which JSON cannot carry",
                                                   method(w), name, d);
                /* At most 17 digits, a sign, a point and an exponent. */
                r = result_budget_charge(w, method(w), b, 25, JSONC_VALUE_COST);
                if (r < 0)
                        return r;
                *ret = json_object_new_double(d);
                break;
        default:
                /* Text, and blobs as strings: the pointer first, then the size. */
                p = type == SQLITE_TEXT ? sqlite3_column_text(st, i) : sqlite3_column_blob(st, i);
                n = sqlite3_column_bytes(st, i);
                if (!p)
                        p = (const unsigned char *) "";
                if (!utf8_is_valid(p, (size_t) n))
                        return aetask_worker_raise(w, "%s: column %s holds bytes that are not UTF-8 text; "
                                                      "select hex(%s) instead", method(w), name, name);
                r = result_budget_charge(w, method(w), b, json_string_text(p, (size_t) n) + 1, JSONC_VALUE_COST + (size_t) n);
                if (r < 0)
                        return r;
                *ret = json_object_new_string_len((const char *) p, n);
                break;
        }
        return *ret ? 0 : -ENOMEM;
}

/* Binds value V to parameter I (1-based). */
static int bind_value(aetask_worker *w, sqlite3_stmt *st, int i, json_object *v) {
        int rc;

        switch (json_object_get_type(v)) {
        case json_type_null:
                rc = sqlite3_bind_null(st, i);
                break;
        case json_type_boolean:
                rc = sqlite3_bind_int(st, i, json_object_get_boolean(v));
                break;
        case json_type_int:
                rc = sqlite3_bind_int64(st, i, json_object_get_int64(v));
                break;
        case json_type_double:
                rc = sqlite3_bind_double(st, i, json_object_get_double(v));
                break;
        case json_type_string:
                /* The arguments outlive the statement: no copy needed. */
                rc = sqlite3_bind_text64(st, i, json_object_get_string(v), (size_t) json_object_get_string_len(v),
                                         SQLITE_STATIC, SQLITE_UTF8);
                break;
        default:
                return aetask_worker_raise(w, "%s: bind value %d is an %s: only null, booleans, numbers and "
                                              "strings can be bound", method(w), i, json_type_to_name(json_object_get_type(v)));
        }
        return rc == SQLITE_OK ? 0 : raise_sqlite(w);
}

/* ---- Statements ---------------------------------------------------------- */

/* Prepares ARGS[0], checks the attributes at ARGS[ATTRS_INDEX] (null or an
 * object, as DBI's \%attr) and binds the values after them. */
static int prepare(aetask_worker *w, json_object *args, size_t attrs_index, sqlite3_stmt **ret) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL, *next = NULL;
        size_t n_args = json_object_array_length(args), n_binds;
        json_object *sql = json_object_array_get_idx(args, 0);
        json_object *attrs = json_object_array_get_idx(args, attrs_index);
        const char *text, *tail;
        int n_params;

        if (!db)
                return aetask_worker_raise(w, "%s: no database connection", method(w));
        if (!json_object_is_type(sql, json_type_string))
                return aetask_worker_raise(w, "%s: the first argument must be the SQL statement, a string", method(w));
        text = json_object_get_string(sql);
        if (strlen(text) != (size_t) json_object_get_string_len(sql))
                return aetask_worker_raise(w, "%s: the SQL statement contains a NUL character", method(w));
        if (attrs && !json_object_is_type(attrs, json_type_object))
                return aetask_worker_raise(w, "%s: argument %zu is DBI's attributes, null or an object; "
                                              "bind values come after it", method(w), attrs_index + 1);

        if (sqlite3_prepare_v2(db, text, -1, &st, &tail) != SQLITE_OK)
                return raise_sqlite(w);
        if (!st)
                return aetask_worker_raise(w, "%s: no SQL statement given", method(w));
        tail += strspn(tail, " \t\r\n;");
        if (*tail && (sqlite3_prepare_v2(db, tail, -1, &next, NULL) != SQLITE_OK || next))
                return aetask_worker_raise(w, "%s: one SQL statement per call, please: send the others in "
                                              "calls of their own (they run in order on one checkout)", method(w));

        n_params = sqlite3_bind_parameter_count(st);
        n_binds = n_args > attrs_index ? n_args - attrs_index - 1 : 0;
        if (n_binds != (size_t) n_params)
                return aetask_worker_raise(w, "%s: the statement has %d placeholder%s but %zu bind value%s %s given",
                                           method(w), n_params, n_params == 1 ? "" : "s",
                                           n_binds, n_binds == 1 ? "" : "s", n_binds == 1 ? "was" : "were");
        for (int i = 1; i <= n_params; i++) {
                int r = bind_value(w, st, i, json_object_array_get_idx(args, attrs_index + (size_t) i));
                if (r < 0)
                        return r;
        }
        *ret = st;
        st = NULL;
        return 0;
}

/* Returns SQLITE_ROW, SQLITE_DONE, or a raised error. */
static int step(aetask_worker *w, sqlite3_stmt *st) {
        int rc = sqlite3_step(st);
        return rc == SQLITE_ROW || rc == SQLITE_DONE ? rc : raise_sqlite(w);
}

/* The JSON text of the column names as an object's keys: "name": each. */
static size_t keys_text(sqlite3_stmt *st) {
        size_t size = 0;

        for (int i = 0; i < sqlite3_column_count(st); i++) {
                const char *name = sqlite3_column_name(st, i) ?: "";
                size += json_string_text((const unsigned char *) name, strlen(name)) + 1;
        }
        return size;
}

/* The current row as an array, or an object keyed by column name (whose
 * keys cost KEYS, from keys_text()), charged to B. */
static int row_to_json(aetask_worker *w, sqlite3_stmt *st, bool as_object, size_t keys, result_budget *b,
                       json_object **ret) {
        int n = sqlite3_column_count(st);
        json_object *row;
        int r;

        /* The brackets and the comma after the row. */
        r = as_object ? result_budget_charge(w, method(w), b, 3 + keys, JSONC_OBJECT_ROW_COST + (size_t) n * JSONC_VALUE_COST)
                      : result_budget_charge(w, method(w), b, 3, JSONC_ARRAY_ROW_COST + (size_t) n * sizeof(void *));
        if (r < 0)
                return r;
        row = as_object ? json_object_new_object() : json_object_new_array_ext(n);
        if (!row)
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                json_object *v;
                r = column_value(w, st, i, b, &v);
                if (r < 0) {
                        json_object_put(row);
                        return r;
                }
                if (as_object)
                        json_object_object_add(row, sqlite3_column_name(st, i), v);
                else
                        json_object_array_add(row, v);
        }
        *ret = row;
        return 0;
}

typedef enum shape {
        SHAPE_ARRAYS,           /* every row as an array */
        SHAPE_OBJECTS,          /* every row as an object */
        SHAPE_FIRST_COLUMN,     /* every row's first column */
} shape;

/* Runs the prepared statement and collects its rows: the first LIMIT when
 * STOP_AT_LIMIT, else all of them, more than LIMIT being an error.  A
 * result that would not fit a message is an error as soon as it is known,
 * before it is built. */
static int collect_rows(aetask_worker *w, sqlite3_stmt *st, shape s, size_t limit, bool stop_at_limit,
                        json_object **ret) {
        json_object *rows = json_object_new_array();
        size_t keys = s == SHAPE_OBJECTS ? keys_text(st) : 0;
        result_budget b;
        int r = 0;

        result_budget_init(w, &b);
        if (!rows)
                return -ENOMEM;
        while ((r = step(w, st)) == SQLITE_ROW) {
                json_object *row;

                if (json_object_array_length(rows) >= limit) {
                        r = aetask_worker_raise(w, "%s: more than %zu rows (the handler option max_rows)",
                                                method(w), limit);
                        break;
                }
                if (s == SHAPE_FIRST_COLUMN)
                        r = result_budget_charge(w, method(w), &b, 0, sizeof(void *)) ?: column_value(w, st, 0, &b, &row);
                else
                        r = row_to_json(w, st, s == SHAPE_OBJECTS, keys, &b, &row);
                if (r < 0)
                        break;
                json_object_array_add(rows, row);
                if (stop_at_limit && json_object_array_length(rows) >= limit)
                        break;
        }
        if (r < 0) {
                json_object_put(rows);
                return r;
        }
        *ret = rows;
        return 0;
}

/* A query's rows: ARGS is (sql, attrs, binds...). */
static int query(aetask_worker *w, json_object *args, shape s, size_t limit, bool stop_at_limit,
                 json_object **ret) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r = prepare(w, args, 1, &st);
        return r < 0 ? r : collect_rows(w, st, s, limit, stop_at_limit, ret);
}

/* ---- Methods ------------------------------------------------------------- */

static int sqlite_do(aetask_worker *w, json_object *args, json_object **ret) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        sqlite3_int64 before;
        int r;

        r = prepare(w, args, 1, &st);
        if (r < 0)
                return r;
        before = sqlite3_total_changes64(db);
        while ((r = step(w, st)) == SQLITE_ROW)
                ;
        if (r < 0)
                return r;
        /* sqlite3_changes() keeps the count of the last INSERT, UPDATE or
         * DELETE: a CREATE TABLE after an INSERT must not report its rows. */
        *ret = json_object_new_int64(sqlite3_total_changes64(db) != before ? sqlite3_changes64(db) : 0);
        return *ret ? 0 : -ENOMEM;
}

/* The first row, or none: ARRAY_IF_NONE is DBI's empty list. */
static int select_first_row(aetask_worker *w, json_object *args, shape s, bool array_if_none, json_object **ret) {
        json_object *rows;
        int r = query(w, args, s, 1, true, &rows);

        if (r < 0)
                return r;
        if (json_object_array_length(rows) > 0)
                *ret = json_object_get(json_object_array_get_idx(rows, 0));
        else if (array_if_none)
                *ret = json_object_new_array();
        json_object_put(rows);
        return 0;
}

static int sqlite_selectrow_array(aetask_worker *w, json_object *args, json_object **ret) {
        return select_first_row(w, args, SHAPE_ARRAYS, true, ret);
}

static int sqlite_selectrow_arrayref(aetask_worker *w, json_object *args, json_object **ret) {
        return select_first_row(w, args, SHAPE_ARRAYS, false, ret);
}

static int sqlite_selectrow_hashref(aetask_worker *w, json_object *args, json_object **ret) {
        return select_first_row(w, args, SHAPE_OBJECTS, false, ret);
}

static int sqlite_selectall_arrayref(aetask_worker *w, json_object *args, json_object **ret) {
        /* DBI's { Slice => {} } asks for the rows as hashes. */
        json_object *slice = json_object_object_get(json_object_array_get_idx(args, 1), "Slice");
        shape s = json_object_is_type(slice, json_type_object) ? SHAPE_OBJECTS : SHAPE_ARRAYS;
        return query(w, args, s, max_rows, false, ret);
}

static int sqlite_selectall_objects(aetask_worker *w, json_object *args, json_object **ret) {
        return query(w, args, SHAPE_OBJECTS, max_rows, false, ret);
}

static int sqlite_selectcol_arrayref(aetask_worker *w, json_object *args, json_object **ret) {
        return query(w, args, SHAPE_FIRST_COLUMN, max_rows, false, ret);
}

/* selectall_hashref(sql, key_field, attrs, binds...), as DBI's. */
static int sqlite_selectall_hashref(aetask_worker *w, json_object *args, json_object **ret) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        json_object *key = json_object_array_get_idx(args, 1), *rows, *result;
        const char *key_name;
        bool found = false;
        int r;

        if (!json_object_is_type(key, json_type_string))
                return aetask_worker_raise(w, "%s: the second argument must be the key column's name", method(w));
        key_name = json_object_get_string(key);
        r = prepare(w, args, 2, &st);
        if (r < 0)
                return r;
        for (int i = 0; i < sqlite3_column_count(st); i++)
                found = found || strcmp(sqlite3_column_name(st, i), key_name) == 0;
        if (!found)
                return aetask_worker_raise(w, "%s: the result has no column named %s", method(w), key_name);

        r = collect_rows(w, st, SHAPE_OBJECTS, max_rows, false, &rows);
        if (r < 0)
                return r;
        result = json_object_new_object();
        for (size_t i = 0; result && i < json_object_array_length(rows); i++) {
                json_object *row = json_object_array_get_idx(rows, i);
                const char *k = json_object_get_string(json_object_object_get(row, key_name));
                json_object_object_add(result, k ?: "", json_object_get(row));
        }
        json_object_put(rows);
        *ret = result;
        return result ? 0 : -ENOMEM;
}

static int sqlite_last_insert_id(aetask_worker *w, json_object *args, json_object **ret) {
        if (!db)
                return aetask_worker_raise(w, "%s: no database connection", method(w));
        *ret = json_object_new_int64(sqlite3_last_insert_rowid(db));
        return *ret ? 0 : -ENOMEM;
}

static int exec_simple(aetask_worker *w, const char *sql, json_object **ret) {
        if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
                return raise_sqlite(w);
        *ret = json_object_new_boolean(1);
        return *ret ? 0 : -ENOMEM;
}

static int sqlite_begin_work(aetask_worker *w, json_object *args, json_object **ret) {
        if (!db)
                return aetask_worker_raise(w, "%s: no database connection", method(w));
        if (!sqlite3_get_autocommit(db))
                return aetask_worker_raise(w, "begin_work: already in a transaction");
        /* IMMEDIATE takes the write lock now: with several workers on one
         * file, a transaction that starts as a reader and then writes could
         * otherwise fail halfway with "database is locked". */
        return exec_simple(w, "BEGIN IMMEDIATE", ret);
}

static int sqlite_commit(aetask_worker *w, json_object *args, json_object **ret) {
        if (!db)
                return aetask_worker_raise(w, "%s: no database connection", method(w));
        if (sqlite3_get_autocommit(db))
                return aetask_worker_raise(w, "commit: no transaction is active (call begin_work first; "
                                              "SQLite ends a transaction itself after some errors)");
        return exec_simple(w, "COMMIT", ret);
}

static int sqlite_rollback(aetask_worker *w, json_object *args, json_object **ret) {
        if (!db)
                return aetask_worker_raise(w, "%s: no database connection", method(w));
        /* Nothing to undo is not an error: after a failed statement the
         * client rolls back without knowing whether SQLite already did. */
        if (sqlite3_get_autocommit(db)) {
                *ret = json_object_new_boolean(1);
                return *ret ? 0 : -ENOMEM;
        }
        return exec_simple(w, "ROLLBACK", ret);
}

/* The next checkout must never see half of this one's transaction. */
static int sqlite_checkout_done(aetask_worker *w) {
        if (db && !sqlite3_get_autocommit(db) && sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
                return aetask_worker_raise(w, "cannot roll back the transaction the checkout left open: %s",
                                           sqlite3_errmsg(db));
        return 0;
}

static const aetask_method sqlite_methods[] = {
        { "do", sqlite_do },
        { "selectrow_array", sqlite_selectrow_array },
        { "selectrow_arrayref", sqlite_selectrow_arrayref },
        { "selectrow_hashref", sqlite_selectrow_hashref },
        { "selectall_arrayref", sqlite_selectall_arrayref },
        { "selectall_objects", sqlite_selectall_objects },
        { "selectall_hashref", sqlite_selectall_hashref },
        { "selectcol_arrayref", sqlite_selectcol_arrayref },
        { "last_insert_id", sqlite_last_insert_id },
        { "begin_work", sqlite_begin_work },
        { "commit", sqlite_commit },
        { "rollback", sqlite_rollback },
        {}
};

static const aetask_handler sqlite_handler = {
        .abi_version = AETASK_HANDLER_ABI_VERSION,
        .name = "sqlite",
        .setup = sqlite_setup,
        .methods = sqlite_methods,
        .checkout_done = sqlite_checkout_done,
        .check_options = sqlite_check_options,
};

AETASK_HANDLER_MODULE(sqlite_handler);
