/* A growable byte buffer with a consumed front, used for both directions of
 * a connection: messages are appended at the end and written or parsed from
 * the start.  Its size is bounded by the caller's message size limit. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/types.h>

typedef struct buffer {
        char *data;
        size_t start, end, alloc;
} buffer;

void buffer_done(buffer *b);
static inline size_t buffer_length(const buffer *b) {
        return b->end - b->start;
}
static inline const char *buffer_head(const buffer *b) {
        return b->data + b->start;
}
static inline void buffer_clear(buffer *b) {
        b->start = b->end = 0;
}

/* Makes room for at least N more bytes at the end; returns -ENOMEM. */
int buffer_reserve(buffer *b, size_t n);
int buffer_append(buffer *b, const void *p, size_t n);
static inline int buffer_append_str(buffer *b, const char *s) {
        return buffer_append(b, s, strlen(s));
}
static inline void buffer_consume(buffer *b, size_t n) {
        b->start += n;
        if (b->start == b->end)
                b->start = b->end = 0;
}

/* Gives back the memory of a large message once B is empty: past
 * BUFFER_KEEP bytes its storage is freed rather than kept for the next
 * message, and past BUFFER_TRIM the heap is trimmed too (malloc_trim()):
 * the values built from a message of megabytes are millions of small
 * chunks that glibc keeps once freed.  So a connection that idles after a
 * large message holds none of it. */
#define BUFFER_KEEP (64U * 1024U)
#define BUFFER_TRIM (1024U * 1024U)
void buffer_shrink(buffer *b);

/* Writes what it can to the non-blocking FD.  Returns 1 when everything was
 * written, 0 when some is left (the socket is full), or -errno. */
int buffer_flush(buffer *b, int fd);

/* One read(2) into the buffer, of at most what the limit still allows. Returns
 * the bytes read, 0 on end of file, -EAGAIN, -EMSGSIZE when the buffer is full
 * to LIMIT without a complete message, or another -errno. */
ssize_t buffer_read(buffer *b, int fd, size_t limit);

/* Whether the buffer_read() just done filled all the room it had, so the
 * socket may hold more; a shorter read took everything it held (what an
 * edge-triggered reader must know before it waits again). */
static inline bool buffer_read_filled(const buffer *b, size_t limit) {
        return b->end == b->alloc || buffer_length(b) >= limit;
}

/* Finds the next NUL-terminated message at the start of the buffer.  Returns
 * its length (without the NUL) and sets *ret, or -EAGAIN when none is complete
 * yet.  SCANNED remembers how far earlier calls looked, so a large message
 * that arrives in pieces is scanned once. */
ssize_t buffer_next_message(buffer *b, size_t *scanned, const char **ret);
