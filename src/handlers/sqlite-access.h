/* What SQL from clients may reach besides its database: see sqlite-access.c. */
#pragma once

#include <aetask/aetask-handler.h>
#include <sqlite3.h>

/* Closes DB's ways out to the file system and to code, and lets SQL attach
 * only the files the handler option attach=PATH[:PATH...] names.  Call it
 * after the handler's own setup statements.  Returns 0, or a raised error. */
int sqlite_access_setup(aetask_worker *w, sqlite3 *db);
/* Checks option attach= at start, as setup would read it. */
int sqlite_access_check_options(aetask_worker *w);

/* Why the authorizer refused the statement that just failed with
 * SQLITE_AUTH, or NULL. */
const char *sqlite_access_refusal(void);
