/* The strict JSON reader. */
#include "json-reader.h"

#include <errno.h>
#include <locale.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json-scan.h"
#include "macro.h"
#include "utf8.h"

void json_reader_init(json_reader *r, const char *s, size_t len, unsigned max_depth) {
        size_t budget = len <= (SIZE_MAX - JSON_BUDGET_BASE) / JSON_BUDGET_FACTOR ?
                        len * JSON_BUDGET_FACTOR + JSON_BUDGET_BASE : SIZE_MAX;

        *r = (json_reader) { .p = s, .end = s + len, .max_depth = max_depth, .budget = budget };
}

void json_reader_done(json_reader *r) {
        buffer_done(&r->scratch);
}

static int fail(json_reader *r, const char *why) {
        if (!r->error)
                r->error = why;
        r->p = r->end;
        return -EBADMSG;
}

/* What building a value costs, in bytes of heap: json-c's structure in its
 * malloc chunk, and what a container grows by.  Measured with mallinfo2()
 * on json-c 0.16 and glibc 2.36 (aetask-bench's parse-* workloads show the
 * sum): an empty object 784 bytes (a hash table of 16 entries), a member
 * 136 with a short key (its entry, the table doubling, the key's copy), an
 * array 159, an element's slot 8 to 16 (the array doubles), a number or a
 * boolean 64, a string 81 and its bytes, a double that keeps its text 95. */
#define COST_OBJECT 800
#define COST_MEMBER 160     /* and the key's length */
#define COST_ARRAY 160
#define COST_ELEMENT 16
#define COST_SCALAR 64
#define COST_STRING 96      /* and the string's length */

/* Charges COST to the message's budget, or fails: a value is charged
 * before it is built. */
static int charge(json_reader *r, size_t cost) {
        if (cost > r->budget)
                return fail(r, "message holds more values than its size allows");
        r->budget -= cost;
        return 0;
}

static void skip_space(json_reader *r) {
        while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
                r->p++;
}

/* The next byte after whitespace, or -1 at the end. */
static int peek(json_reader *r) {
        skip_space(r);
        return r->p < r->end ? (unsigned char) *r->p : -1;
}

static bool accept(json_reader *r, char c) {
        if (peek(r) != (unsigned char) c)
                return false;
        r->p++;
        return true;
}

/* ---- Strings ------------------------------------------------------------ */

static int hex_digit(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* The four hex digits at P (P + 4 <= END), or -1. */
static long hex4(const char *p) {
        long v = 0;
        for (int i = 0; i < 4; i++) {
                int d = hex_digit(p[i]);
                if (d < 0)
                        return -1;
                v = v * 16 + d;
        }
        return v;
}

static int push_utf8(buffer *b, unsigned long cp) {
        char u[4];
        size_t n;

        if (cp < 0x80) {
                u[0] = (char) cp;
                n = 1;
        } else if (cp < 0x800) {
                u[0] = (char) (0xc0 | (cp >> 6));
                u[1] = (char) (0x80 | (cp & 0x3f));
                n = 2;
        } else if (cp < 0x10000) {
                u[0] = (char) (0xe0 | (cp >> 12));
                u[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
                u[2] = (char) (0x80 | (cp & 0x3f));
                n = 3;
        } else {
                u[0] = (char) (0xf0 | (cp >> 18));
                u[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
                u[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
                u[3] = (char) (0x80 | (cp & 0x3f));
                n = 4;
        }
        return buffer_append(b, u, n);
}

/* Reads the escape after a backslash at r->p onto the scratch stack.  Half
 * a surrogate pair without its other half is no character at all: it is
 * refused, not turned into U+FFFD (json-c's way, which made "\ud800",
 * "\udc00" and "\ufffd" one string). */
static int read_escape(json_reader *r) {
        static const char simple[][2] = {
                { '"', '"' }, { '\\', '\\' }, { '/', '/' }, { 'b', '\b' },
                { 'f', '\f' }, { 'n', '\n' }, { 'r', '\r' }, { 't', '\t' },
        };
        const char *p = r->p + 1;

        if (p >= r->end)
                return fail(r, "unterminated string");
        for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
                if (*p == simple[i][0]) {
                        r->p = p + 1;
                        return buffer_append(&r->scratch, &simple[i][1], 1);
                }
        if (*p != 'u')
                return fail(r, "invalid escape in a string");

        long cp = r->end - p >= 5 ? hex4(p + 1) : -1;
        if (cp < 0)
                return fail(r, "invalid \\u escape in a string");
        p += 5;
        if (cp >= 0xd800 && cp <= 0xdbff) {
                long low = r->end - p >= 6 && p[0] == '\\' && p[1] == 'u' ? hex4(p + 2) : -1;
                if (low < 0xdc00 || low > 0xdfff)
                        return fail(r, "lone surrogate escape in a string");
                cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
                p += 6;
        } else if (cp >= 0xdc00 && cp <= 0xdfff)
                return fail(r, "lone surrogate escape in a string");
        r->p = p;
        return push_utf8(&r->scratch, (unsigned long) cp);
}

/* Reads the string whose opening quote is at r->p.  Without escapes its
 * bytes are read in place (*RET points into the input, not NUL-terminated);
 * with escapes they are unescaped onto the scratch stack, above what it held
 * before, and *RET_ON_STACK is set (the caller pops them). */
static int read_string(json_reader *r, const char **ret, size_t *ret_len, bool *ret_on_stack) {
        const char *p = r->p + 1, *end = r->end, *run = p;
        size_t base = buffer_length(&r->scratch);
        bool on_stack = false;
        int e;

        for (;;) {
                /* Bytes from 0x80 up are plain: the input is valid UTF-8. */
                p += json_plain_length((const unsigned char *) p, (const unsigned char *) end, false);
                if (p == end)
                        return fail(r, "unterminated string");
                if (*p == '"')
                        break;
                if ((unsigned char) *p < 0x20)
                        return fail(r, "control character in a string");

                /* A backslash: from here on the string is built on the stack. */
                on_stack = true;
                e = buffer_append(&r->scratch, run, (size_t) (p - run));
                if (e < 0)
                        return e;
                r->p = p;
                e = read_escape(r);
                if (e < 0)
                        return e;
                p = run = r->p;
        }

        r->p = p + 1;
        if (on_stack) {
                e = buffer_append(&r->scratch, run, (size_t) (p - run));
                if (e < 0)
                        return e;
                *ret = buffer_head(&r->scratch) + base;
                *ret_len = buffer_length(&r->scratch) - base;
        } else {
                *ret = run;
                *ret_len = (size_t) (p - run);
        }
        *ret_on_stack = on_stack;
        return 0;
}

static void pop_to(json_reader *r, size_t length) {
        r->scratch.end = r->scratch.start + length;
}

int json_reader_string(json_reader *r, const char **ret, size_t *ret_len) {
        bool on_stack;

        if (peek(r) != '"')
                return fail(r, "expected a string");
        /* Valid until the next read: the stack is reset by whoever reads on. */
        return read_string(r, ret, ret_len, &on_stack);
}

/* Reads a string value, or skips it (RET NULL): its escapes are checked,
 * nothing is kept. */
static int read_string_value(json_reader *r, json_object **ret) {
        size_t base = buffer_length(&r->scratch), len;
        const char *s;
        bool on_stack;
        int e;

        e = read_string(r, &s, &len, &on_stack);
        if (e >= 0 && !ret) {
                pop_to(r, base);
                return 0;
        }
        if (e >= 0 && len > INT32_MAX)
                e = fail(r, "string too long");
        if (e >= 0)
                e = charge(r, COST_STRING + len);
        if (e < 0)
                return e;
        *ret = json_object_new_string_len(s, (int) len);
        pop_to(r, base);
        return *ret ? 0 : -ENOMEM;
}

/* ---- Numbers ------------------------------------------------------------ */

static locale_t c_locale;

static void make_c_locale(void) {
        c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t) 0);
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

/* A number as scanned: its text, and its value if it is an integer. */
typedef struct number {
        const char *start;
        bool negative, integer;
        uint64_t magnitude;
} number;

/* The grammar of RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int scan_number(json_reader *r, number *ret) {
        const char *p = r->p, *end = r->end;
        number n = { .start = p, .integer = true };

        if (*p == '-') {
                n.negative = true;
                p++;
        }
        if (p < end && *p == 'I')
                return fail(r, "NaN or Infinity is not JSON");
        if (p == end || !is_digit(*p))
                return fail(r, "invalid number");
        if (*p == '0')
                p++;
        else
                for (; p < end && is_digit(*p); p++) {
                        unsigned d = (unsigned) (*p - '0');
                        if (n.magnitude > (UINT64_MAX - d) / 10)
                                n.integer = false;  /* too large: a double */
                        n.magnitude = n.magnitude * 10 + d;
                }
        if (p < end && *p == '.') {
                n.integer = false;
                if (++p == end || !is_digit(*p))
                        return fail(r, "invalid number");
                while (p < end && is_digit(*p))
                        p++;
        }
        if (p < end && (*p == 'e' || *p == 'E')) {
                n.integer = false;
                p++;
                if (p < end && (*p == '+' || *p == '-'))
                        p++;
                if (p == end || !is_digit(*p))
                        return fail(r, "invalid number");
                while (p < end && is_digit(*p))
                        p++;
        }
        r->p = p;
        *ret = n;
        return 0;
}

/* Integers become int64 (or uint64 above INT64_MAX, as json-c has it); other
 * numbers, and integers too large for 64 bits, become doubles that keep
 * their text, so they are written back as they came.  RET NULL skips. */
static int read_number(json_reader *r, json_object **ret) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        uint64_t v;
        number n;
        int e;

        e = scan_number(r, &n);
        if (e < 0 || !ret)
                return e;
        v = n.magnitude;
        if (n.integer && (!n.negative || v <= (uint64_t) INT64_MAX + 1)) {
                e = charge(r, COST_SCALAR);
                if (e < 0)
                        return e;
                if (n.negative)
                        *ret = json_object_new_int64(v == (uint64_t) INT64_MAX + 1 ? INT64_MIN : -(int64_t) v);
                else
                        *ret = v <= INT64_MAX ? json_object_new_int64((int64_t) v) : json_object_new_uint64(v);
        } else {
                /* strtod() wants a NUL, and the C locale's decimal point. */
                size_t base = buffer_length(&r->scratch), len = (size_t) (r->p - n.start);
                e = charge(r, COST_STRING + len);
                if (e >= 0)
                        e = buffer_append(&r->scratch, n.start, len);
                if (e >= 0)
                        e = buffer_append(&r->scratch, "", 1);
                if (e < 0)
                        return e;
                (void) pthread_once(&once, make_c_locale);
                if (!c_locale)
                        return -ENOMEM;
                const char *text = buffer_head(&r->scratch) + base;
                *ret = json_object_new_double_s(strtod_l(text, NULL, c_locale), text);
                pop_to(r, base);
        }
        return *ret ? 0 : -ENOMEM;
}

/* ---- Values ------------------------------------------------------------- */

static int read_literal(json_reader *r, const char *word, size_t n) {
        if ((size_t) (r->end - r->p) < n || memcmp(r->p, word, n) != 0)
                return fail(r, "unexpected character");
        r->p += n;
        return 0;
}

static int open_container(json_reader *r) {
        if (r->depth >= r->max_depth)
                return fail(r, "nesting too deep");
        r->depth++;
        r->p++;
        return 0;
}

static int read_value(json_reader *r, json_object **ret);

/* Reads an array, or skips it (RET NULL: nothing is built or charged). */
static int read_array(json_reader *r, json_object **ret) {
        _cleanup_(json_object_putp) json_object *a = NULL;
        int e;

        e = open_container(r);
        if (e >= 0 && ret)
                e = charge(r, COST_ARRAY);
        if (e < 0)
                return e;
        /* Small: most arrays on the wire are argument lists. */
        if (ret && !(a = json_object_new_array_ext(4)))
                return -ENOMEM;
        if (!accept(r, ']'))
                for (;;) {
                        json_object *v = NULL;
                        e = ret ? charge(r, COST_ELEMENT) : 0;
                        if (e >= 0)
                                e = read_value(r, ret ? &v : NULL);
                        if (e >= 0 && ret && json_object_array_add(a, v) < 0) {
                                json_object_put(v);
                                e = -ENOMEM;
                        }
                        if (e < 0)
                                return e;
                        if (accept(r, ','))
                                continue;
                        if (accept(r, ']'))
                                break;
                        return fail(r, "expected , or ] in an array");
                }
        r->depth--;
        if (ret)
                *ret = TAKE_PTR(a);
        return 0;
}

int json_reader_object_begin(json_reader *r) {
        if (peek(r) != '{')
                return fail(r, "expected an object");
        return open_container(r);
}

/* Reads a key onto the stack, NUL-terminated: json-c wants keys as C
 * strings (and, like json-c, a key with a NUL in it ends there). */
static int read_key(json_reader *r, size_t base, const char **ret) {
        const char *s;
        size_t len;
        bool on_stack;
        int e;

        if (peek(r) != '"')
                return fail(r, "expected a key");
        e = read_string(r, &s, &len, &on_stack);
        if (e >= 0 && !on_stack)
                e = buffer_append(&r->scratch, s, len);
        if (e >= 0)
                e = buffer_append(&r->scratch, "", 1);
        if (e < 0)
                return e;
        if (!accept(r, ':'))
                return fail(r, "expected : after a key");
        *ret = buffer_head(&r->scratch) + base;
        return 0;
}

int json_reader_object_next(json_reader *r, unsigned *index, const char **ret_key, size_t *ret_len) {
        bool on_stack;
        int c = peek(r), e;

        pop_to(r, 0);
        if (c == '}') {
                r->p++;
                r->depth--;
                return 0;
        }
        if (*index > 0 && !accept(r, ','))
                return fail(r, "expected , or } in an object");
        if (peek(r) != '"')
                return fail(r, "expected a key");
        /* Compared where it lies, unless it has escapes. */
        e = read_string(r, ret_key, ret_len, &on_stack);
        if (e < 0)
                return e;
        if (!accept(r, ':'))
                return fail(r, "expected : after a key");
        (*index)++;
        return 1;
}

/* Adds KEY = V to O; takes V. */
static int object_add(json_object *o, const char *key, json_object *v) {
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

/* Reads an object, or skips it (RET NULL). */
static int read_object(json_reader *r, json_object **ret) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        int e;

        e = open_container(r);
        if (e >= 0 && ret)
                e = charge(r, COST_OBJECT);
        if (e < 0)
                return e;
        if (ret && !(o = json_object_new_object()))
                return -ENOMEM;
        if (!accept(r, '}'))
                for (;;) {
                        /* The key stays on the stack while its value is read
                         * above it, and goes when the value is added. */
                        size_t base = buffer_length(&r->scratch);
                        const char *key;
                        json_object *v = NULL;

                        e = read_key(r, base, &key);
                        if (e >= 0 && ret)
                                e = charge(r, COST_MEMBER + strlen(key));
                        if (e >= 0)
                                e = read_value(r, ret ? &v : NULL);
                        /* The stack may have moved while the value was read. */
                        if (e >= 0 && ret)
                                e = object_add(o, buffer_head(&r->scratch) + base, v);
                        pop_to(r, base);
                        if (e < 0)
                                return e;
                        if (accept(r, ','))
                                continue;
                        if (accept(r, '}'))
                                break;
                        return fail(r, "expected , or } in an object");
                }
        r->depth--;
        if (ret)
                *ret = TAKE_PTR(o);
        return 0;
}

/* A literal: true, false or null. */
static int read_word(json_reader *r, json_object **ret, const char *word, int boolean) {
        int e = read_literal(r, word, strlen(word));
        if (e < 0 || !ret || boolean < 0)
                return e;
        e = charge(r, COST_SCALAR);
        if (e < 0)
                return e;
        *ret = json_object_new_boolean(boolean);
        return *ret ? 0 : -ENOMEM;
}

/* Reads a value, or skips it when RET is NULL: skipping checks it as
 * strictly and builds nothing. */
static int read_value(json_reader *r, json_object **ret) {
        int c = peek(r);

        switch (c) {
        case '{':
                return read_object(r, ret);
        case '[':
                return read_array(r, ret);
        case '"':
                return read_string_value(r, ret);
        case 't':
                return read_word(r, ret, "true", 1);
        case 'f':
                return read_word(r, ret, "false", 0);
        case 'n':
                return read_word(r, ret, "null", -1);
        case -1:
                return fail(r, "unexpected end of JSON");
        default:
                if (c == '-' || is_digit((char) c))
                        return read_number(r, ret);
                if (c == 'N' || c == 'I')
                        return fail(r, "NaN or Infinity is not JSON");
                return fail(r, "unexpected character");
        }
}

int json_reader_value(json_reader *r, json_object **ret) {
        *ret = NULL;
        return read_value(r, ret);
}

int json_reader_skip(json_reader *r) {
        size_t base = buffer_length(&r->scratch);
        int e = read_value(r, NULL);

        pop_to(r, base);
        return e;
}

bool json_reader_next_is(json_reader *r, char c) {
        return peek(r) == (unsigned char) c;
}

int json_reader_end(json_reader *r) {
        return peek(r) < 0 ? 0 : fail(r, "trailing bytes after the JSON value");
}

int json_read(const char *s, size_t len, unsigned max_depth, json_object **ret, const char **ret_reason) {
        json_reader r;
        json_object *v = NULL;
        int e;

        json_reader_init(&r, s, len, max_depth);
        e = json_reader_value(&r, &v);
        if (e >= 0)
                e = json_reader_end(&r);
        if (e < 0) {
                json_object_put(v);
                if (ret_reason)
                        *ret_reason = r.error ?: "out of memory";
        } else
                *ret = v;
        json_reader_done(&r);
        return e;
}
