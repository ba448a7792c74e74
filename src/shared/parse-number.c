/* Numbers given on command lines, parsed with every check in one place.
 * strtoull() alone reads "-1" as 18446744073709551615 and skips leading
 * spaces, and an unchecked conversion to a smaller type wraps:
 * --max-message-size 18446744073709551615 became a limit of 0 bytes.
 * strtod() reads "nan", "inf" and hexadecimal, and converting NaN or a
 * huge double to an integer is undefined. */
#include "parse-number.h"

#include <errno.h>
#include <math.h>  /* isfinite(), a macro */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

int parse_uint64(const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
        unsigned long long v;
        char *end;

        if (!s || !is_digit(s[0]))
                return -EINVAL;  /* no sign, no space */
        errno = 0;
        v = strtoull(s, &end, 10);
        if (*end)
                return -EINVAL;
        if (errno == ERANGE || v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int parse_seconds(const char *s, uint64_t max_seconds, uint64_t *ret_usec) {
        double d;
        char *end;

        /* Digits and at most one point: no sign, exponent, "inf" or "0x". */
        if (!s || !*s || strspn(s, "0123456789.") != strlen(s) || strchr(s, '.') != strrchr(s, '.') ||
            !(is_digit(s[0]) || is_digit(s[1])))
                return -EINVAL;
        errno = 0;
        d = strtod(s, &end);
        if (*end || !isfinite(d))
                return -EINVAL;
        if (d > (double) max_seconds)
                return -ERANGE;
        *ret_usec = (uint64_t) (d * 1e6 + 0.5);
        return 0;
}
