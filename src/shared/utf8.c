/* Strict UTF-8 validation, with a fast path for ASCII. */
#include "utf8.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* How many bytes from P on are ASCII, in steps of 64 (SSE2) or 8: a
 * message is mostly ASCII, and every message is checked whole. */
static size_t ascii_prefix(const unsigned char *p, const unsigned char *end) {
        const unsigned char *start = p;

#ifdef __SSE2__
        while (end - p >= 64) {
                __m128i x = _mm_or_si128(_mm_or_si128(_mm_loadu_si128((const __m128i *) p),
                                                      _mm_loadu_si128((const __m128i *) (p + 16))),
                                         _mm_or_si128(_mm_loadu_si128((const __m128i *) (p + 32)),
                                                      _mm_loadu_si128((const __m128i *) (p + 48))));
                if (_mm_movemask_epi8(x) != 0)
                        break;
                p += 64;
        }
#endif
        while (end - p >= 8 && !(utf8_load8(p) & UTF8_HIGHS))
                p += 8;
        while (p < end && *p < 0x80)
                p++;
        return (size_t) (p - start);
}

bool utf8_is_valid(const char *s, size_t len) {
        const unsigned char *p = (const unsigned char *) s, *end = p + len;

        while (p < end) {
                p += ascii_prefix(p, end);
                if (p == end)
                        break;
                size_t n = utf8_sequence_length(p, end);
                if (n == 0)
                        return false;
                p += n;
        }
        return true;
}
