/* A small writer of journal entries over systemd's native protocol
 * (systemd.journal-fields(7), "Native protocol" in systemd's docs). */
#include "journal.h"

#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "buffer.h"
#include "macro.h"

/* Process-wide, and used from any thread that has a client of its own
 * (libaetask-sd(3)): the socket and the process it was opened in, packed as
 * (pid << 32 | fd) so that one atomic load sees both; 0 before the first
 * entry.  The flags are atomic for the same reason. */
static uint64_t journal_socket_owner;
static bool journal_connected;
static bool journal_blocking;

void journal_set_blocking(bool b) {
        __atomic_store_n(&journal_blocking, b, __ATOMIC_RELAXED);
}

static const char *journal_path(void) {
        /* Tests point this at a socket of their own. */
        return getenv("AETASK_JOURNAL_SOCKET") ?: "/run/systemd/journal/socket";
}

static uint64_t pack_owner(pid_t pid, int fd) {
        return (uint64_t) (uint32_t) pid << 32 | (uint32_t) fd;
}

static int journal_socket(void) {
        pid_t pid = getpid();
        uint64_t owner = __atomic_load_n(&journal_socket_owner, __ATOMIC_ACQUIRE);

        /* After a fork the number may be closed or reused: never touch the
         * parent's, just open our own. */
        if (owner != 0 && (pid_t) (owner >> 32) == pid)
                return (int) (uint32_t) owner;

        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        int size = 8 * 1024 * 1024;
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));

        /* Threads that get here at once each open one; the first to publish
         * it wins, the others use it and close theirs.  No lock: a lock
         * held by another thread at fork() would stay locked in the child. */
        if (__atomic_compare_exchange_n(&journal_socket_owner, &owner, pack_owner(pid, fd), false,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                return fd;
        safe_close(fd);
        return (int) (uint32_t) owner;  /* a socket of this process: nobody else publishes one here */
}

bool journal_is_connected(void) {
        return __atomic_load_n(&journal_connected, __ATOMIC_RELAXED);
}

static int append_field(buffer *b, const char *field, size_t len) {
        const char *eq = memchr(field, '=', len);
        int r;

        if (!eq)
                return 0;  /* not a field: skipped */
        size_t name_len = eq - field, value_len = MIN(len - name_len - 1, (size_t) JOURNAL_FIELD_MAX);
        const char *value = eq + 1;

        if (!memchr(value, '\n', value_len)) {
                r = buffer_append(b, field, name_len + 1 + value_len);
                return r < 0 ? r : buffer_append(b, "\n", 1);
        }

        /* A value with newlines: the name, a newline, its length as 64-bit
         * little endian, the bytes, a newline. */
        uint64_t le = htole64(value_len);
        r = buffer_append(b, field, name_len);
        if (r >= 0)
                r = buffer_append(b, "\n", 1);
        if (r >= 0)
                r = buffer_append(b, &le, sizeof(le));
        if (r >= 0)
                r = buffer_append(b, value, value_len);
        return r < 0 ? r : buffer_append(b, "\n", 1);
}

/* The fallback: "IDENTIFIER[PID]: MESSAGE" on stderr. */
static int send_stderr(const struct iovec *fields, size_t n) {
        const char *message = NULL, *ident = "aetask";
        size_t message_len = 0, ident_len = 6;

        for (size_t i = 0; i < n; i++) {
                const char *f = fields[i].iov_base;
                if (fields[i].iov_len >= 8 && memcmp(f, "MESSAGE=", 8) == 0) {
                        message = f + 8;
                        message_len = fields[i].iov_len - 8;
                } else if (fields[i].iov_len >= 18 && memcmp(f, "SYSLOG_IDENTIFIER=", 18) == 0) {
                        ident = f + 18;
                        ident_len = fields[i].iov_len - 18;
                }
        }
        if (!message)
                return 0;
        if (fprintf(stderr, "%.*s[%d]: %.*s\n", (int) ident_len, ident, (int) getpid(),
                    (int) MIN(message_len, (size_t) JOURNAL_FIELD_MAX), message) < 0)
                return -EIO;
        return 0;
}

static int send_native(const struct iovec *fields, size_t n) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        buffer b = {};
        int fd, r = 0;

        fd = journal_socket();
        if (fd < 0)
                return fd;

        for (size_t i = 0; i < n && r >= 0; i++)
                r = append_field(&b, fields[i].iov_base, fields[i].iov_len);
        if (r < 0) {
                buffer_done(&b);
                return r;
        }

        strncpy(sa.sun_path, journal_path(), sizeof(sa.sun_path) - 1);
        ssize_t sent;
        /* journald's socket queues only a few datagrams (net.unix.max_dgram_qlen),
         * so a burst can find it full.  Give it a moment, at most 5 ms in
         * all, then drop the entry rather than stall an event loop. */
        for (int attempt = 0;; attempt++) {
                sent = sendto(fd, buffer_head(&b), buffer_length(&b),
                              MSG_NOSIGNAL | (__atomic_load_n(&journal_blocking, __ATOMIC_RELAXED) ? 0 : MSG_DONTWAIT),
                              (struct sockaddr *) &sa, sizeof(sa));
                if (sent >= 0 || errno != EAGAIN || attempt >= 20)
                        break;
                usleep(250);
        }
        buffer_done(&b);
        if (sent < 0 && errno == EAGAIN)
                return 0;  /* journald is far behind: this entry is dropped, not waited for */
        __atomic_store_n(&journal_connected, sent >= 0, __ATOMIC_RELAXED);
        return sent < 0 ? -ENOTCONN : 0;
}

int journal_sendv(const struct iovec *fields, size_t n) {
        int r = send_native(fields, n);
        return r == -ENOTCONN || r == -EMFILE || r == -ENFILE ? send_stderr(fields, n) : r;
}

void journal_entry_add(journal_entry *e, const char *field, const char *format, ...) {
        size_t k = strlen(field);
        va_list ap;
        char *s;
        int n;

        if (e->n >= JOURNAL_ENTRY_FIELDS_MAX)
                return;
        va_start(ap, format);
        n = vsnprintf(NULL, 0, format, ap);
        va_end(ap);
        s = n >= 0 ? malloc(k + 1 + (size_t) n + 1) : NULL;
        if (!s)
                return;
        memcpy(s, field, k);
        s[k] = '=';
        va_start(ap, format);
        vsnprintf(s + k + 1, (size_t) n + 1, format, ap);
        va_end(ap);
        e->fields[e->n++] = (struct iovec) { .iov_base = s, .iov_len = k + 1 + (size_t) n };
}

int journal_entry_send(journal_entry *e) {
        return journal_sendv(e->fields, e->n);
}

int journal_entry_send_only(journal_entry *e) {
        return send_native(e->fields, e->n);
}

void journal_entry_done(journal_entry *e) {
        for (size_t i = 0; i < e->n; i++)
                free(e->fields[i].iov_base);
        e->n = 0;
}
