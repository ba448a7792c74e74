/* The strict JSON reader. */
#include "json-reader.h"

#include <errno.h>
#include <locale.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

void json_reader_init(json_reader *r, const char *s, size_t len, unsigned max_depth) {
        *r = (json_reader) { .p = s, .end = s + len, .max_depth = max_depth };
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

/* Whether none of the eight bytes in X ends a plain run inside a string: a
 * quote, a backslash or a control character.  (Bytes from 0x80 up are plain:
 * the input is valid UTF-8.) */
static inline bool word_is_plain(uint64_t x) {
#define HAS_ZERO_BYTE(v) (((v) - UTF8_ONES) & ~(v) & UTF8_HIGHS)
        return !(((x - 0x20 * UTF8_ONES) & ~x & UTF8_HIGHS) |  /* below 0x20 */
                 HAS_ZERO_BYTE(x ^ ('"' * UTF8_ONES)) |
                 HAS_ZERO_BYTE(x ^ ('\\' * UTF8_ONES)));
#undef HAS_ZERO_BYTE
}

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
                while (end - p >= 8 && word_is_plain(utf8_load8((const unsigned char *) p)))
                        p += 8;
                while (p < end && *p != '"' && *p != '\\' && (unsigned char) *p >= 0x20)
                        p++;
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

static int read_string_value(json_reader *r, json_object **ret) {
        size_t base = buffer_length(&r->scratch), len;
        const char *s;
        bool on_stack;
        int e;

        e = read_string(r, &s, &len, &on_stack);
        if (e < 0)
                return e;
        if (len > INT32_MAX)
                return fail(r, "string too long");
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

/* The grammar of RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
 * Integers become int64 (or uint64 above INT64_MAX, as json-c has it); other
 * numbers, and integers too large for 64 bits, become doubles that keep
 * their text, so they are written back as they came. */
static int read_number(json_reader *r, json_object **ret) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        const char *start = r->p, *p = r->p, *end = r->end;
        bool negative = false, integer = true;
        uint64_t v = 0;

        if (*p == '-') {
                negative = true;
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
                        if (v > (UINT64_MAX - d) / 10)
                                integer = false;  /* too large: a double */
                        v = v * 10 + d;
                }
        if (p < end && *p == '.') {
                integer = false;
                if (++p == end || !is_digit(*p))
                        return fail(r, "invalid number");
                while (p < end && is_digit(*p))
                        p++;
        }
        if (p < end && (*p == 'e' || *p == 'E')) {
                integer = false;
                p++;
                if (p < end && (*p == '+' || *p == '-'))
                        p++;
                if (p == end || !is_digit(*p))
                        return fail(r, "invalid number");
                while (p < end && is_digit(*p))
                        p++;
        }
        r->p = p;

        if (integer && negative && v <= (uint64_t) INT64_MAX + 1)
                *ret = json_object_new_int64(v == (uint64_t) INT64_MAX + 1 ? INT64_MIN : -(int64_t) v);
        else if (integer && !negative)
                *ret = v <= INT64_MAX ? json_object_new_int64((int64_t) v) : json_object_new_uint64(v);
        else {
                /* strtod() wants a NUL, and the C locale's decimal point. */
                size_t base = buffer_length(&r->scratch);
                int e = buffer_append(&r->scratch, start, (size_t) (p - start));
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

static int read_array(json_reader *r, json_object **ret) {
        json_object *a;
        int e;

        e = open_container(r);
        if (e < 0)
                return e;
        /* Small: most arrays on the wire are argument lists. */
        a = json_object_new_array_ext(4);
        if (!a)
                return -ENOMEM;
        if (!accept(r, ']'))
                for (;;) {
                        json_object *v;
                        e = json_reader_value(r, &v);
                        if (e >= 0 && json_object_array_add(a, v) < 0) {
                                json_object_put(v);
                                e = -ENOMEM;
                        }
                        if (e < 0) {
                                json_object_put(a);
                                return e;
                        }
                        if (accept(r, ','))
                                continue;
                        if (accept(r, ']'))
                                break;
                        json_object_put(a);
                        return fail(r, "expected , or ] in an array");
                }
        r->depth--;
        *ret = a;
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

static int read_object(json_reader *r, json_object **ret) {
        json_object *o;
        int e;

        e = open_container(r);
        if (e < 0)
                return e;
        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        if (!accept(r, '}'))
                for (;;) {
                        /* The key stays on the stack while its value is read
                         * above it, and goes when the value is added. */
                        size_t base = buffer_length(&r->scratch);
                        const char *key;
                        json_object *v = NULL;

                        e = read_key(r, base, &key);
                        if (e >= 0)
                                e = json_reader_value(r, &v);
                        if (e >= 0) {
                                /* The stack may have moved while the value was read. */
                                key = buffer_head(&r->scratch) + base;
                                if (json_object_object_add(o, key, v) < 0) {
                                        json_object_put(v);
                                        e = -ENOMEM;
                                }
                        }
                        pop_to(r, base);
                        if (e < 0) {
                                json_object_put(o);
                                return e;
                        }
                        if (accept(r, ','))
                                continue;
                        if (accept(r, '}'))
                                break;
                        json_object_put(o);
                        return fail(r, "expected , or } in an object");
                }
        r->depth--;
        *ret = o;
        return 0;
}

int json_reader_value(json_reader *r, json_object **ret) {
        int c = peek(r);

        *ret = NULL;
        switch (c) {
        case '{':
                return read_object(r, ret);
        case '[':
                return read_array(r, ret);
        case '"':
                return read_string_value(r, ret);
        case 't':
                return read_literal(r, "true", 4) < 0 ? -EBADMSG :
                       (*ret = json_object_new_boolean(1)) ? 0 : -ENOMEM;
        case 'f':
                return read_literal(r, "false", 5) < 0 ? -EBADMSG :
                       (*ret = json_object_new_boolean(0)) ? 0 : -ENOMEM;
        case 'n':
                return read_literal(r, "null", 4);
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

int json_reader_skip(json_reader *r) {
        json_object *v = NULL;
        size_t base = buffer_length(&r->scratch);

        /* Simple rather than fast: what is skipped is rare (unknown fields). */
        int e = json_reader_value(r, &v);
        json_object_put(v);
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
