/* What aetaskctl's verbs share. */
#pragma once

#include <stdint.h>

#define CTL_EXIT_CALL_FAILED 1
#define CTL_EXIT_USAGE 2

typedef struct ctl_context {
        const char *address;
        uint64_t timeout_usec;
} ctl_context;

int ctl_call(ctl_context *ctx, int argc, char **argv);
