/* What SQL sent by clients may reach besides its database: nothing, unless
 * the deployment says so.  A client is a stranger sending arbitrary SQL, and
 * SQLite's SQL can open and create other files (ATTACH, and VACUUM INTO,
 * which attaches its target), load code (load_extension()) and change
 * process-wide settings (PRAGMA temp_store_directory).  Running as root
 * outside the unit, that wrote /etc/nologin.  So an authorizer refuses
 * every attachment but the files the handler option attach=PATH:PATH...
 * names, and the temporary ones ("" and ":memory:", which plain VACUUM
 * uses); loading extensions is off; defensive mode keeps SQL from
 * corrupting the database file on purpose; and functions in the schema
 * (views, triggers) run only if they are harmless.  See aetask-sqlite(8),
 * "WHAT SQL CAN REACH". */
#include "sqlite-access.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A path longer than this cannot be named, nor shown whole in a refusal. */
#define ACCESS_PATH_MAX 4096

/* The option's value, split at its colons in place. */
static char *allowed_storage;
static const char **allowed;
static size_t n_allowed;

static char refusal[512];

const char *sqlite_access_refusal(void) {
        return refusal[0] ? refusal : NULL;
}

static bool attach_is_allowed(const char *file) {
        /* Temporary databases reach no file anyone else sees; plain VACUUM
         * attaches "" to build the new database in. */
        if (file[0] == 0 || strcmp(file, ":memory:") == 0)
                return true;
        /* Exact names only: a URI or another spelling of an allowed path
         * is refused, rather than interpreted. */
        for (size_t i = 0; i < n_allowed; i++)
                if (strcmp(file, allowed[i]) == 0)
                        return true;
        return false;
}

__attribute__((format(printf, 1, 2)))
static int refuse(const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        vsnprintf(refusal, sizeof(refusal), format, ap);
        va_end(ap);
        return SQLITE_DENY;
}

static int authorize(void *userdata, int action, const char *arg1, const char *arg2,
                     const char *database, const char *trigger) {
        switch (action) {
        case SQLITE_ATTACH:
                /* ARG1 is NULL when the file name is an expression or a
                 * bind value: nothing to check it against before it runs. */
                if (!arg1)
                        return refuse("ATTACH needs the file name as a string literal");
                if (!attach_is_allowed(arg1))
                        return refuse("'%.256s' is not this handler's database: SQL reaches only its own "
                                      "database (ATTACH and VACUUM INTO are refused but for the files the "
                                      "handler option attach= names)", arg1);
                return SQLITE_OK;
        case SQLITE_PRAGMA:
                /* Deprecated, process-wide, and a way to point SQLite's
                 * file creation anywhere. */
                if (arg1 && (strcasecmp(arg1, "temp_store_directory") == 0 ||
                             strcasecmp(arg1, "data_store_directory") == 0))
                        return refuse("PRAGMA %s is refused: SQL reaches only its own database", arg1);
                return SQLITE_OK;
        default:
                return SQLITE_OK;
        }
}

static bool attach_path_is_valid(const char *path, size_t len) {
        return len > 0 && path[0] == '/' && len <= ACCESS_PATH_MAX;
}

int sqlite_access_check_options(aetask_worker *w) {
        const char *value = aetask_worker_get_option(w, "attach");

        if (!value || !*value)
                return 0;
        for (const char *p = value;; p += strcspn(p, ":") + 1) {
                if (!attach_path_is_valid(p, strcspn(p, ":")))
                        return aetask_worker_raise(w, "invalid option attach=%s: expected absolute paths "
                                                      "separated by colons", value);
                if (!p[strcspn(p, ":")])
                        return 0;
        }
}

/* Reads attach=PATH[:PATH...]: absolute paths, none empty. */
static int parse_allowed(aetask_worker *w) {
        const char *value = aetask_worker_get_option(w, "attach");
        size_t n = 1;
        char *p;

        if (!value || !*value)
                return 0;
        for (const char *c = value; *c; c++)
                n += *c == ':';
        allowed_storage = strdup(value);
        allowed = calloc(n, sizeof(*allowed));
        if (!allowed_storage || !allowed)
                return -ENOMEM;
        p = allowed_storage;
        for (char *path; (path = strsep(&p, ":"));) {
                if (!attach_path_is_valid(path, strlen(path)))
                        return aetask_worker_raise(w, "invalid option attach=%s: expected absolute paths "
                                                      "separated by colons", value);
                allowed[n_allowed++] = path;
        }
        return 0;
}

int sqlite_access_setup(aetask_worker *w, sqlite3 *db) {
        int r = parse_allowed(w);

        if (r < 0)
                return r;
        if (sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL) != SQLITE_OK ||
            sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL) != SQLITE_OK ||
            sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL) != SQLITE_OK ||
            sqlite3_set_authorizer(db, authorize, NULL) != SQLITE_OK)
                return aetask_worker_raise(w, "cannot restrict what SQL may reach: %s", sqlite3_errmsg(db));
        /* The authorizer decides; the limit is a second fence.  Not 0:
         * plain VACUUM attaches a temporary database of its own. */
        sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, (int) n_allowed + 1);
        return 0;
}
