/* Finding the end of a plain run in a JSON string: the bytes the reader and
 * the writer copy as they are, up to a quote, a backslash or a control
 * character.  A megabyte string is scanned four times on its way from
 * client to worker and back (each side reads and writes it), so this is
 * done sixteen bytes at a time where the machine has SSE2 (every x86-64),
 * and eight at a time elsewhere. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "utf8.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Whether none of the eight bytes in X is a quote, a backslash, below 0x20,
 * or (if HIGH) from 0x80 up. */
static inline bool json_word_is_plain(uint64_t x, bool high) {
#define HAS_ZERO_BYTE(v) (((v) - UTF8_ONES) & ~(v) & UTF8_HIGHS)
        return !((high ? x & UTF8_HIGHS : 0) |
                 ((x - 0x20 * UTF8_ONES) & ~x & UTF8_HIGHS) |
                 HAS_ZERO_BYTE(x ^ ('"' * UTF8_ONES)) |
                 HAS_ZERO_BYTE(x ^ ('\\' * UTF8_ONES)));
#undef HAS_ZERO_BYTE
}

static inline bool json_byte_is_plain(unsigned char c, bool high) {
        return c != '"' && c != '\\' && c >= 0x20 && (!high || c < 0x80);
}

#ifdef __SSE2__
/* A bit for each of the sixteen bytes at P that is not plain. */
static inline unsigned json_block_special(const unsigned char *p, bool high) {
        __m128i x = _mm_loadu_si128((const __m128i *) p);
        __m128i stop = _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')), _mm_cmpeq_epi8(x, _mm_set1_epi8('\\')));

        if (high)
                /* Signed: below 0x20 and from 0x80 up at once. */
                stop = _mm_or_si128(stop, _mm_cmplt_epi8(x, _mm_set1_epi8(0x20)));
        else
                /* Unsigned x <= 0x1f: max(x, 0x1f) is 0x1f. */
                stop = _mm_or_si128(stop, _mm_cmpeq_epi8(_mm_max_epu8(x, _mm_set1_epi8(0x1f)), _mm_set1_epi8(0x1f)));
        return (unsigned) _mm_movemask_epi8(stop);
}
#endif

/* How many bytes from P on (up to END) are plain: the index of the first
 * quote, backslash or control character, or with HIGH of the first byte
 * from 0x80 up too (the writer checks UTF-8 there).  Inline, so that HIGH
 * is a constant. */
static inline size_t json_plain_length(const unsigned char *p, const unsigned char *end, bool high) {
        const unsigned char *start = p;

#ifdef __SSE2__
        while (end - p >= 16) {
                unsigned m = json_block_special(p, high);
                if (m != 0)
                        return (size_t) (p - start) + (unsigned) __builtin_ctz(m);
                p += 16;
        }
#endif
        while (end - p >= 8 && json_word_is_plain(utf8_load8(p), high))
                p += 8;
        while (p < end && json_byte_is_plain(*p, high))
                p++;
        return (size_t) (p - start);
}
