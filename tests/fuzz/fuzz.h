/* What the fuzz targets share: libFuzzer's entry point, and feeding bytes to
 * a connection's input buffer in pieces, as read(2) would. */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include "buffer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The first byte of a fuzz input picks how the rest arrives: in pieces of
 * 1 to 64 bytes, or (from 192 on) all at once. */
static inline size_t fuzz_piece_size(const uint8_t **data, size_t *size) {
        if (*size == 0)
                return 1;
        uint8_t b = **data;
        (*data)++;
        (*size)--;
        return b >= 192 ? SIZE_MAX : (size_t) (b % 64) + 1;
}

/* Appends the next piece to IN as buffer_read() would with LIMIT (the
 * message size limit plus one).  Returns the bytes taken, 0 at the end of
 * the input, or -EMSGSIZE when IN is full without a complete message. */
static inline ssize_t fuzz_feed(buffer *in, size_t limit, size_t piece, const uint8_t **data, size_t *size) {
        size_t have = buffer_length(in);
        if (*size == 0)
                return 0;
        if (have >= limit)
                return -EMSGSIZE;
        size_t n = piece < *size ? piece : *size;
        if (n > limit - have)
                n = limit - have;
        if (buffer_append(in, *data, n) < 0)
                abort();
        *data += n;
        *size -= n;
        return (ssize_t) n;
}

#define fuzz_assert(expr)                                                       \
        do {                                                                    \
                if (!(expr)) {                                                  \
                        fprintf(stderr, "%s:%d: %s failed\n", __FILE__, __LINE__, #expr); \
                        abort();                                                \
                }                                                               \
        } while (0)
