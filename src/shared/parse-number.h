/* Numbers from command lines, checked: see parse-number.c. */
#pragma once

#include <stdint.h>

/* Parses S, decimal digits only, as a number from MIN to MAX.  Returns
 * -EINVAL when S is not such a number, -ERANGE when it is out of range. */
int parse_uint64(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* Parses S, a decimal number of seconds with an optional fraction, from 0
 * to MAX_SECONDS, into microseconds (rounded).  Returns -EINVAL when S is
 * not such a number, -ERANGE when it is out of range. */
int parse_seconds(const char *s, uint64_t max_seconds, uint64_t *ret_usec);
