/* A fast JSON serializer for json-c values. */
#include "json-writer.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "json-scan.h"
#include "macro.h"
#include "utf8.h"

/* Inside a JSON string, quote, backslash and the control characters must
 * be escaped, and a byte from 0x80 up starts a UTF-8 sequence that must be
 * checked: json_plain_length(..., true) stops at each.  Everything else is
 * copied as is. */

static int append_escape(buffer *b, unsigned char c) {
        char esc[7] = { '\\' };
        size_t n = 2;

        switch (c) {
        case '"':  esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
                n = (size_t) snprintf(esc, sizeof(esc), "\\u%04x", c);
        }
        return buffer_append(b, esc, n);
}

/* U+FFFD, the replacement character. */
static const char replacement[] = "\xef\xbf\xbd";

/* Appends the escaped contents of the string; the caller adds the quotes. */
static int append_contents(buffer *b, const unsigned char *p, const unsigned char *end, bool lossy) {
        const unsigned char *run = p;  /* where the bytes not yet appended begin */
        int r;

        /* Plain ASCII and valid UTF-8 sequences go into the run; only an
         * escape (or a replacement) ends it. */
        for (;;) {
                p += json_plain_length(p, end, true);
                if (p == end)
                        return buffer_append(b, run, (size_t) (p - run));

                if (*p >= 0x80) {
                        /* Non-ASCII text: sequence after sequence. */
                        size_t n;
                        while ((n = utf8_sequence_length(p, end)) > 0) {
                                p += n;
                                if (p == end || *p < 0x80)
                                        break;
                        }
                        if (n > 0)
                                continue;
                        if (!lossy)
                                return -EILSEQ;
                }

                r = buffer_append(b, run, (size_t) (p - run));
                if (r >= 0)
                        r = *p >= 0x80 ? buffer_append(b, replacement, sizeof(replacement) - 1) : append_escape(b, *p);
                if (r < 0)
                        return r;
                run = ++p;
        }
}

static int write_string(buffer *b, const char *s, size_t len, bool lossy) {
        /* Remember the length, not an offset: growing may slide the data. */
        size_t saved = buffer_length(b);
        int r;

        /* Plain text grows by the two quotes only. */
        r = buffer_reserve(b, len + 2);
        if (r >= 0)
                r = buffer_append(b, "\"", 1);
        if (r >= 0)
                r = append_contents(b, (const unsigned char *) s, (const unsigned char *) s + len, lossy);
        if (r >= 0)
                r = buffer_append(b, "\"", 1);
        if (r < 0)
                b->end = b->start + saved;  /* leave nothing half-written behind */
        return r;
}

int json_write_string(buffer *b, const char *s, size_t len) {
        return write_string(b, s, len, false);
}

int json_write_text(buffer *b, const char *s, size_t len) {
        return write_string(b, s, len, true);
}

bool json_double_is_json(json_object *v) {
        if (isfinite(json_object_get_double(v)))
                return true;
        /* Not finite: a number too large for a double (1e400) is still
         * written as it was read; NaN and Infinity are not JSON. */
        const char *s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
        if (s && *s == '-')
                s++;
        return s && *s != 'N' && *s != 'I';
}

static int write_value(buffer *b, json_object *v, unsigned depth) {
        int r;

        if (depth > JSON_MAX_DEPTH)
                return -ELOOP;

        switch (json_object_get_type(v)) {
        case json_type_null:
                return buffer_append_str(b, "null");
        case json_type_boolean:
                return buffer_append_str(b, json_object_get_boolean(v) ? "true" : "false");
        case json_type_string:
                return json_write_string(b, json_object_get_string(v), json_object_get_string_len(v));
        case json_type_double:
                if (!json_double_is_json(v))
                        return buffer_append_str(b, "null");
                __attribute__((fallthrough));
        case json_type_int: {
                /* json-c keeps a parsed number's original text and knows
                 * how to print non-finite values; let it do numbers. */
                size_t len;
                const char *s = json_object_to_json_string_length(v, JSON_C_TO_STRING_PLAIN, &len);
                if (!s)
                        return -ENOMEM;
                return buffer_append(b, s, len);
        }
        case json_type_array: {
                size_t n = json_object_array_length(v);
                r = buffer_append(b, "[", 1);
                for (size_t i = 0; r >= 0 && i < n; i++) {
                        if (i > 0)
                                r = buffer_append(b, ",", 1);
                        if (r >= 0)
                                r = write_value(b, json_object_array_get_idx(v, i), depth + 1);
                }
                return r < 0 ? r : buffer_append(b, "]", 1);
        }
        case json_type_object: {
                bool first = true;
                r = buffer_append(b, "{", 1);
                json_object_object_foreach(v, key, child) {
                        if (r < 0)
                                break;
                        if (!first)
                                r = buffer_append(b, ",", 1);
                        first = false;
                        if (r >= 0)
                                r = json_write_string(b, key, strlen(key));
                        if (r >= 0)
                                r = buffer_append(b, ":", 1);
                        if (r >= 0)
                                r = write_value(b, child, depth + 1);
                }
                return r < 0 ? r : buffer_append(b, "}", 1);
        }
        }
        return -EINVAL;
}

int json_write_value(buffer *b, json_object *value) {
        /* Remember the length, not an offset: growing may slide the data. */
        size_t saved = buffer_length(b);
        int r = write_value(b, value, 0);
        if (r < 0)
                b->end = b->start + saved;  /* leave no half-written value behind */
        return r;
}
