/* A fast JSON serializer for json-c values. */
#include "json-writer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "macro.h"

/* Bytes that must be escaped inside a JSON string: quote, backslash and the
 * control characters.  Everything else, UTF-8 included, is copied as is. */
static const unsigned char needs_escape[256] = {
        [0x00 ... 0x1f] = 1,
        ['"'] = 1,
        ['\\'] = 1,
};

int json_write_string(buffer *b, const char *s, size_t len) {
        const unsigned char *p = (const unsigned char *) s, *end = p + len;
        int r;

        /* Worst case is six bytes per input byte (\u00XX), plus quotes. */
        r = buffer_reserve(b, len + 2);
        if (r < 0)
                return r;
        b->data[b->end++] = '"';

        while (p < end) {
                const unsigned char *run = p;
                while (p < end && !needs_escape[*p])
                        p++;
                if (p > run) {
                        r = buffer_append(b, run, p - run);
                        if (r < 0)
                                return r;
                }
                if (p == end)
                        break;

                char esc[7];
                size_t n = 2;
                esc[0] = '\\';
                switch (*p) {
                case '"':  esc[1] = '"'; break;
                case '\\': esc[1] = '\\'; break;
                case '\n': esc[1] = 'n'; break;
                case '\r': esc[1] = 'r'; break;
                case '\t': esc[1] = 't'; break;
                case '\b': esc[1] = 'b'; break;
                case '\f': esc[1] = 'f'; break;
                default:
                        n = (size_t) snprintf(esc, sizeof(esc), "\\u%04x", *p);
                }
                r = buffer_append(b, esc, n);
                if (r < 0)
                        return r;
                p++;
        }
        return buffer_append(b, "\"", 1);
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
        case json_type_int:
        case json_type_double: {
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
