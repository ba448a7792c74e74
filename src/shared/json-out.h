/* Writing a JSON message member by member straight into a buffer, for
 * replies made of the program's own numbers and strings (the control
 * socket's status): no json-c tree is built just to be written out.
 *
 *      json_out o = json_out_start(&b);
 *      json_out_open(&o, NULL, '{');
 *      json_out_u64(&o, "pid", pid);
 *      json_out_open(&o, "workers", '[');
 *      ... json_out_open(&o, NULL, '{') ... json_out_close(&o);
 *      json_out_close(&o);
 *      json_out_close(&o);
 *      r = json_out_finish(&o);
 *
 * KEY is the member's name inside an object and NULL inside an array.  The
 * first error sticks: later calls do nothing, and json_out_finish() returns
 * it after taking back what was written. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buffer.h"

#define JSON_OUT_DEPTH_MAX 8

typedef struct json_out {
        buffer *b;
        size_t start;                  /* length of B before the message */
        int r;
        unsigned depth;
        bool first[JSON_OUT_DEPTH_MAX];
        char close[JSON_OUT_DEPTH_MAX];
} json_out;

json_out json_out_start(buffer *b);
/* Opens an object ('{') or array ('['); -ELOOP past JSON_OUT_DEPTH_MAX. */
void json_out_open(json_out *o, const char *key, char bracket);
void json_out_close(json_out *o);
void json_out_u64(json_out *o, const char *key, uint64_t v);
void json_out_int(json_out *o, const char *key, int64_t v);
void json_out_bool(json_out *o, const char *key, bool v);
/* V, finite, with DIGITS digits after the point (a rate, say). */
void json_out_decimal(json_out *o, const char *key, double v, int digits);
/* TEXT as a JSON string, what is not UTF-8 as U+FFFD (json_write_text()). */
void json_out_text(json_out *o, const char *key, const char *text);
/* 0, or the first error (with the message taken back out of the buffer). */
int json_out_finish(json_out *o);
