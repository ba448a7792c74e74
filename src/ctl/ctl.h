/* What aetaskctl's verbs share. */
#pragma once

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
} ctl_context;

/* The address of unit aetask@NAME's socket with SUFFIX (".sock",
 * ".control"), in a static buffer; NULL if NAME is not a valid name. */
/* The address of unit NAME's socket (address.h's unit_address()), or NULL. */
const char *ctl_unit_address(const char *name, const char *suffix);

int ctl_call(ctl_context *ctx, int argc, char **argv);
int ctl_status(ctl_context *ctx, int argc, char **argv);
