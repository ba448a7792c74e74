/* What aetaskctl's verbs share. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#define CTL_EXIT_CALL_FAILED 1
#define CTL_EXIT_USAGE 2

/* The address of unit NAME's socket (address.h's unit_address()), or NULL. */
typedef struct ctl_context {
        const char *address;           /* --connect */
        const char *name;              /* "aetaskctl NAME VERB": the unit aetask@NAME */
        uint64_t timeout_usec;
        bool json;                     /* --json: status as JSON */
        bool raw;                      /* --raw: call's string result unquoted */
        bool watch;                    /* --watch: status refreshed in place */
        uint64_t interval_usec;        /* --interval: between refreshes */
        uint64_t iterations;           /* --iterations: refreshes, 0: until q or Ctrl-C */
} ctl_context;

/* The address of unit aetask@NAME's socket with SUFFIX (".sock",
 * ".control"), in a static buffer; NULL if NAME is not a valid name. */
/* The address of unit NAME's socket (address.h's unit_address()), or NULL. */
const char *ctl_unit_address(const char *name, const char *suffix);

int ctl_call(ctl_context *ctx, int argc, char **argv);
int ctl_status(ctl_context *ctx, int argc, char **argv);

/* ctl-status.c: one status reply from ADDRESS into *RET (0), or an exit
 * code, the reason written to stderr; and its printing, as a table or JSON. */
int ctl_status_fetch(ctl_context *ctx, const char *address, json_object **ret);
void ctl_status_print(ctl_context *ctx, json_object *parameters);
/* ctl-watch.c: status --watch. */
int ctl_status_watch(ctl_context *ctx, const char *address);
