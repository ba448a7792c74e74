/* Member-by-member JSON output (json-out.h). */
#include "json-out.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "json-writer.h"

json_out json_out_start(buffer *b) {
        return (json_out) { .b = b, .start = buffer_length(b) };
}

static void put(json_out *o, const char *text) {
        if (o->r >= 0)
                o->r = buffer_append_str(o->b, text);
}

/* The comma before all but the first member, and the member's name. */
static void put_key(json_out *o, const char *key) {
        if (o->depth > 0) {
                if (!o->first[o->depth - 1])
                        put(o, ",");
                o->first[o->depth - 1] = false;
        }
        if (key && o->r >= 0) {
                o->r = json_write_string(o->b, key, strlen(key));
                put(o, ":");
        }
}

void json_out_open(json_out *o, const char *key, char bracket) {
        put_key(o, key);
        if (o->r >= 0 && o->depth >= JSON_OUT_DEPTH_MAX)
                o->r = -ELOOP;
        put(o, bracket == '[' ? "[" : "{");
        if (o->r < 0)
                return;
        o->first[o->depth] = true;
        o->close[o->depth] = bracket == '[' ? ']' : '}';
        o->depth++;
}

void json_out_close(json_out *o) {
        if (o->r < 0 || o->depth == 0)
                return;
        o->depth--;
        o->r = buffer_append(o->b, &o->close[o->depth], 1);
}

void json_out_u64(json_out *o, const char *key, uint64_t v) {
        char n[24];

        snprintf(n, sizeof(n), "%" PRIu64, v);
        put_key(o, key);
        put(o, n);
}

void json_out_int(json_out *o, const char *key, int64_t v) {
        char n[24];

        snprintf(n, sizeof(n), "%" PRId64, v);
        put_key(o, key);
        put(o, n);
}

void json_out_decimal(json_out *o, const char *key, double v, int digits) {
        char n[64];

        /* NaN and the infinities are no JSON: they are written as 0. */
        snprintf(n, sizeof(n), "%.*f", digits, isfinite(v) ? v : 0.0);
        put_key(o, key);
        put(o, n);
}

void json_out_bool(json_out *o, const char *key, bool v) {
        put_key(o, key);
        put(o, v ? "true" : "false");
}

void json_out_text(json_out *o, const char *key, const char *text) {
        put_key(o, key);
        if (o->r >= 0)
                o->r = json_write_text(o->b, text, strlen(text));
}

int json_out_finish(json_out *o) {
        if (o->r >= 0 && o->depth != 0)
                o->r = -EINVAL;  /* a bug: something left open */
        if (o->r < 0)
                o->b->end = o->b->start + o->start;
        return o->r;
}
