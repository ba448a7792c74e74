/* The growable byte buffer behind message framing. */
#include "buffer.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "macro.h"

void buffer_done(buffer *b) {
        free(b->data);
        *b = (buffer) {};
}

void buffer_shrink(buffer *b) {
        size_t alloc = b->alloc;

        if (buffer_length(b) > 0 || alloc <= BUFFER_KEEP)
                return;
        buffer_done(b);
        if (alloc > BUFFER_TRIM)
                (void) malloc_trim(0);
}

int buffer_reserve(buffer *b, size_t n) {
        if (b->alloc - b->end >= n)
                return 0;

        /* Slide the live bytes to the front before growing. */
        if (b->start > 0) {
                memmove(b->data, b->data + b->start, b->end - b->start);
                b->end -= b->start;
                b->start = 0;
                if (b->alloc - b->end >= n)
                        return 0;
        }

        size_t want = b->end + n;
        if (want < b->end)
                return -ENOMEM;
        size_t alloc = MAX(b->alloc * 2, (size_t) 4096);
        while (alloc < want)
                alloc *= 2;

        char *p = realloc(b->data, alloc);
        if (!p)
                return -ENOMEM;
        b->data = p;
        b->alloc = alloc;
        return 0;
}

int buffer_append(buffer *b, const void *p, size_t n) {
        if (n == 0)
                return 0;  /* an empty buffer has no data to memcpy() to */
        int r = buffer_reserve(b, n);
        if (r < 0)
                return r;
        memcpy(b->data + b->end, p, n);
        b->end += n;
        return 0;
}

int buffer_flush(buffer *b, int fd) {
        while (buffer_length(b) > 0) {
                /* MSG_NOSIGNAL: a peer that went away is an error to report,
                 * not a SIGPIPE that kills us. */
                ssize_t n = send(fd, buffer_head(b), buffer_length(b), MSG_NOSIGNAL);
                if (n < 0 && errno == ENOTSOCK)
                        n = write(fd, buffer_head(b), buffer_length(b));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        return -errno;
                }
                buffer_consume(b, n);
        }
        return 1;
}

ssize_t buffer_read(buffer *b, int fd, size_t limit) {
        size_t have = buffer_length(b);
        int r;

        if (have >= limit)
                return -EMSGSIZE;

        /* Read in large chunks, but never past the limit. */
        size_t want = MIN(limit - have, MAX((size_t) 65536, have));
        r = buffer_reserve(b, want);
        if (r < 0)
                return r;

        for (;;) {
                ssize_t n = read(fd, b->data + b->end, b->alloc - b->end < limit - have ? b->alloc - b->end : limit - have);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                b->end += n;
                return n;
        }
}

ssize_t buffer_next_message(buffer *b, size_t *scanned, const char **ret) {
        size_t len = buffer_length(b);
        const char *head = buffer_head(b);

        if (*scanned >= len)
                return -EAGAIN;

        const char *nul = memchr(head + *scanned, 0, len - *scanned);
        if (!nul) {
                *scanned = len;
                return -EAGAIN;
        }
        *scanned = 0;
        *ret = head;
        return nul - head;
}
