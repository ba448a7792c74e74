/* Small helpers used everywhere: cleanup attributes, ownership transfer,
 * argument checks in the style of libsystemd. */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define _public_ __attribute__((visibility("default")))
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Public functions check their arguments and return an error instead of
 * crashing; unlike assert() this does not vanish under NDEBUG. */
#define assert_return(expr, r)                          \
        do {                                            \
                if (_unlikely_(!(expr)))                \
                        return (r);                     \
        } while (0)

#define TAKE_PTR(p)                                     \
        ({                                              \
                __typeof__(p) _p_ = (p);                \
                (p) = NULL;                             \
                _p_;                                    \
        })

#define TAKE_FD(fd)                                     \
        ({                                              \
                int _fd_ = (fd);                        \
                (fd) = -1;                              \
                _fd_;                                   \
        })

/* "%u worker%s", N, plural_s(N): "1 worker", "2 workers". */
static inline const char *plural_s(unsigned long long n) {
        return n == 1 ? "" : "s";
}

static inline void freep(void *p) {
        free(*(void **) p);
}

static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return -1;
}

static inline void closep(int *fd) {
        safe_close(*fd);
}

#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)         \
        static inline void func##p(type *p) {           \
                if (*p)                                 \
                        func(*p);                       \
        }

#define USEC_PER_SEC  UINT64_C(1000000)
#define USEC_PER_MSEC UINT64_C(1000)
#define NSEC_PER_USEC UINT64_C(1000)
#define USEC_INFINITY UINT64_MAX

#include <fcntl.h>

static inline int fd_nonblock(int fd) {
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0)
                return -errno;
        if (flags & O_NONBLOCK)
                return 0;
        return fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ? -errno : 0;
}
