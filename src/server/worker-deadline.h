/* A call's deadline in the worker (worker-deadline.c). */
#pragma once

#include <stdint.h>

#include "buffer.h"

/* How long past its deadline a call may run before its worker stops. */
#define WORKER_DEADLINE_GRACE_MS 250
/* The worker's exit status when it stopped itself, as timeout(1)'s. */
#define WORKER_EXIT_DEADLINE 124

/* Arms the stop for a call with TIMEOUT_USEC (0: none) from NOW
 * (CLOCK_MONOTONIC): the client's connection FD is told, after the
 * answers already in OUT.  Returns the deadline, UINT64_MAX for none. */
uint64_t worker_deadline_arm(int fd, const buffer *out, uint64_t now, uint64_t timeout_usec);
void worker_deadline_disarm(uint64_t deadline);
