/* UTF-8 validation, strict as RFC 3629 has it: no overlong forms, no
 * surrogates (U+D800..U+DFFF), nothing past U+10FFFF.  Messages on the wire
 * must be valid UTF-8, and both sides check what they write and read. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline bool utf8_is_continuation(unsigned char c) {
        return (c & 0xc0) == 0x80;
}

/* The length (2 to 4) of the valid multi-byte sequence at P, or 0 if the
 * bytes from P to END do not start with one.  P < END and *P >= 0x80.
 * Inline: it runs once per character of non-ASCII text. */
static inline size_t utf8_sequence_length(const unsigned char *p, const unsigned char *end) {
        size_t left = (size_t) (end - p);
        unsigned char c = p[0];

        /* C0 and C1 could only start overlong forms of ASCII. */
        if (c >= 0xc2 && c <= 0xdf)
                return left >= 2 && utf8_is_continuation(p[1]) ? 2 : 0;

        if (c >= 0xe0 && c <= 0xef) {
                if (left < 3 || !utf8_is_continuation(p[1]) || !utf8_is_continuation(p[2]))
                        return 0;
                if (c == 0xe0 && p[1] < 0xa0)     /* overlong: below U+0800 */
                        return 0;
                if (c == 0xed && p[1] >= 0xa0)    /* a surrogate, U+D800..U+DFFF */
                        return 0;
                return 3;
        }

        if (c >= 0xf0 && c <= 0xf4) {
                if (left < 4 || !utf8_is_continuation(p[1]) || !utf8_is_continuation(p[2]) || !utf8_is_continuation(p[3]))
                        return 0;
                if (c == 0xf0 && p[1] < 0x90)     /* overlong: below U+10000 */
                        return 0;
                if (c == 0xf4 && p[1] >= 0x90)    /* past U+10FFFF */
                        return 0;
                return 4;
        }

        /* A stray continuation byte, or F5..FF. */
        return 0;
}

/* Whether the LEN bytes at S are valid UTF-8. */
bool utf8_is_valid(const char *s, size_t len);

/* Eight bytes at P, for scanning eight at a time (P need not be aligned). */
static inline uint64_t utf8_load8(const unsigned char *p) {
        uint64_t x;
        memcpy(&x, p, sizeof(x));
        return x;
}

#define UTF8_ONES  UINT64_C(0x0101010101010101)
#define UTF8_HIGHS UINT64_C(0x8080808080808080)
