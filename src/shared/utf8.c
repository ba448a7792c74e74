/* Strict UTF-8 validation, with a fast path for ASCII. */
#include "utf8.h"

bool utf8_is_valid(const char *s, size_t len) {
        const unsigned char *p = (const unsigned char *) s, *end = p + len;

        while (p < end) {
                /* ASCII eight bytes at a time. */
                while (end - p >= 8 && !(utf8_load8(p) & UTF8_HIGHS))
                        p += 8;
                while (p < end && *p < 0x80)
                        p++;
                if (p == end)
                        break;
                size_t n = utf8_sequence_length(p, end);
                if (n == 0)
                        return false;
                p += n;
        }
        return true;
}
