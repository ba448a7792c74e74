/* How many descriptors a process has open, from /proc: for the tests' and
 * the benchmark's leak checks. */
#pragma once

#include <sys/types.h>

/* The number of descriptors PID has open (this process's own listing not
 * counted when PID is ours), or a negative errno. */
int count_fds(pid_t pid);
