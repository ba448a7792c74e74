/* Costly message shapes, for the tests and the benchmark. */
#include "json-shapes.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

typedef enum where {
        IN_VALUE,            /* the call's arguments, the reply's result */
        IN_SKIPPED,          /* a member nobody reads, beside them */
        IN_UNKNOWN_METHOD,   /* the arguments of a method no handler has */
} where;

typedef struct shape {
        const char *name;
        const char *open, *unit, *close;   /* open unit,unit,...,unit close */
        where where;
} shape;

static const shape shapes[] = {
        { "empty-objects",  "[", "{}", "]", IN_VALUE },
        { "empty-arrays",   "[", "[]", "]", IN_VALUE },
        { "deep-nesting",   "[", NULL, "]", IN_VALUE },          /* [[[...]]], 100 deep */
        { "tiny-strings",   "[", "\"\"", "]", IN_VALUE },
        { "short-strings",  "[", "\"0123456789012345678901234\"", "]", IN_VALUE },  /* just within the budget */
        { "numbers",        "[", "0", "]", IN_VALUE },
        { "small-objects",  "[", "{\"a\":0}", "]", IN_VALUE },
        { "long-keys",      "[", NULL, "]", IN_VALUE },          /* {"kkk...":0}, keys of 64 KiB */
        { "duplicate-keys", "[{", "\"a\":0", "}]", IN_VALUE },
        { "skipped-member", "[", "{}", "]", IN_SKIPPED },
        { "unknown-method", "[", "{}", "]", IN_UNKNOWN_METHOD },
};

const char *const json_shape_names[] = {
        "empty-objects", "empty-arrays", "deep-nesting", "tiny-strings", "short-strings", "numbers", "small-objects",
        "long-keys", "duplicate-keys", "skipped-member", "unknown-method", NULL,
};

static const shape *find(const char *name) {
        for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
                if (strcmp(shapes[i].name, name) == 0)
                        return &shapes[i];
        return NULL;
}

bool json_shape_fits(const char *name, json_shape_side side) {
        const shape *s = find(name);
        return s && (side == JSON_SHAPE_CALL || s->where != IN_UNKNOWN_METHOD);
}

/* The units too long to write out: a nest of arrays 100 deep, an object
 * with a key of 64 KiB. */
static int make_unit(const char *name, char **ret) {
        bool deep = strcmp(name, "deep-nesting") == 0;
        size_t n = deep ? 100 : 64 * 1024;
        char *u = malloc(2 * n + 8), *p = u;

        if (!u)
                return -ENOMEM;
        if (deep) {
                memset(p, '[', n);
                memset(p + n, ']', n);
                p[2 * n] = 0;
        } else {
                memcpy(p, "{\"", 2);
                memset(p + 2, 'k', n);
                memcpy(p + 2 + n, "\":0}", 5);
        }
        *ret = u;
        return 0;
}

/* The head and tail of the message around the filling. */
static void envelope(const shape *s, json_shape_side side, const char **head, const char **tail) {
        if (side == JSON_SHAPE_REPLY) {
                *head = s->where == IN_SKIPPED ? "{\"parameters\":{\"result\":null,\"skipped\":" : "{\"parameters\":{\"result\":";
                *tail = "}}";
        } else if (s->where == IN_UNKNOWN_METHOD) {
                *head = "{\"method\":\"io.aetask.Worker.no_such_method\",\"parameters\":{\"args\":";
                *tail = "}}";
        } else {
                *head = s->where == IN_SKIPPED ?
                        "{\"method\":\"io.aetask.Checkout.Call\",\"parameters\":{\"args\":[],\"skipped\":" :
                        "{\"method\":\"io.aetask.Checkout.Call\",\"parameters\":{\"args\":";
                *tail = "}}";
        }
}

int json_shape_append(buffer *b, const char *name, json_shape_side side, size_t size) {
        const shape *s = find(name);
        _cleanup_(freep) char *generated = NULL;
        const char *head, *tail, *unit;
        size_t start = buffer_length(b), fixed, unit_len;
        int r;

        if (!json_shape_fits(name, side))
                return -EINVAL;
        unit = s->unit;
        if (!unit) {
                r = make_unit(name, &generated);
                if (r < 0)
                        return r;
                unit = generated;
        }
        unit_len = strlen(unit);
        envelope(s, side, &head, &tail);
        fixed = strlen(head) + strlen(s->open) + strlen(s->close) + strlen(tail);

        r = buffer_reserve(b, size + 1);
        if (r >= 0)
                r = buffer_append_str(b, head);
        if (r >= 0)
                r = buffer_append_str(b, s->open);
        for (size_t used = fixed, n = 0; r >= 0 && used + unit_len + (n > 0) <= size; n++) {
                if (n > 0)
                        r = buffer_append(b, ",", 1);
                if (r >= 0)
                        r = buffer_append(b, unit, unit_len);
                used += unit_len + (n > 0);
        }
        if (r >= 0)
                r = buffer_append_str(b, s->close);
        if (r >= 0)
                r = buffer_append_str(b, tail);
        if (r >= 0)
                r = buffer_append(b, "", 1);
        if (r < 0)
                b->end = b->start + start;
        return r;
}

void json_shape_serve(int listen_fd, const buffer *reply) {
        static const char hello[] = "{\"parameters\":{\"hello\":{\"version\":2,\"worker\":1,\"pid\":1}}}";
        char c;
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

        if (fd < 0)
                _exit(EXIT_FAILURE);
        /* The client asks for the greeting first, then makes its call. */
        while (read(fd, &c, 1) == 1 && c != 0)
                ;
        (void) !send(fd, hello, sizeof(hello), MSG_NOSIGNAL);
        while (read(fd, &c, 1) == 1 && c != 0)
                ;
        for (size_t done = 0; done < buffer_length(reply);) {
                ssize_t n = send(fd, buffer_head(reply) + done, buffer_length(reply) - done, MSG_NOSIGNAL);
                if (n <= 0)
                        _exit(EXIT_SUCCESS);
                done += (size_t) n;
        }
        while (read(fd, &c, 1) > 0)
                ;
        _exit(EXIT_SUCCESS);
}

int json_shape_read_message(int fd, char *buf, size_t size) {
        static char chunk[1 << 16];
        size_t kept = 0;

        for (;;) {
                ssize_t n = read(fd, chunk, sizeof(chunk));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : -EPIPE;
                char *nul = memchr(chunk, 0, (size_t) n);
                size_t take = nul ? (size_t) (nul - chunk) : (size_t) n;
                size_t copy = take < size - 1 - kept ? take : size - 1 - kept;
                memcpy(buf + kept, chunk, copy);
                kept += copy;
                if (nul)
                        break;
        }
        buf[kept] = 0;
        return 0;
}
