/* A strict JSON reader (RFC 8259) that builds json-c values.  json-c's own
 * tokener builds an object for every envelope of a message, switches the
 * thread's locale for every parse, scans strings byte by byte, and reads
 * NaN and Infinity even when told to be strict.  This one reads the bytes of
 * a message in place: the protocol code walks a message's envelope with the
 * cursor calls and builds json-c values only for what it hands on (a call's
 * arguments, a result, logs).  Input must be valid UTF-8 (utf8.h). */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "buffer.h"

static inline void json_object_putp(json_object **p) {
        json_object_put(*p);
}

/* What the values built from a message may cost, in bytes of memory: a
 * json-c value takes 64 to 800 bytes, so "[{},{},...]" would take 265 times
 * its text.  Each value built is charged what json-c and malloc spend on it
 * (measured on glibc; see the costs in json-reader.c), and reading fails
 * once the charges pass JSON_BUDGET_FACTOR times the text's length plus
 * JSON_BUDGET_BASE: with the message itself and a reply as large, a reader
 * stays within 8 times a message's size above a fixed base.  Skipped values
 * are not built, and cost nothing.  aetask-protocol(7) documents this. */
#define JSON_BUDGET_FACTOR 5U
/* Room for the results people do send (20,000 database rows as objects
 * take 30 MiB of json-c values in 1 MiB of text): a fixed base, not a
 * factor, so the worst message still costs only its bounded few times. */
#define JSON_BUDGET_BASE (64U * 1024U * 1024U)

typedef struct json_reader {
        const char *p, *end;
        unsigned depth, max_depth;   /* containers open, and how many may be */
        size_t budget;               /* bytes the values built may still take */
        const char *error;           /* why reading failed (static), or NULL */
        buffer scratch;              /* unescaped strings and keys, as a stack */
} json_reader;

/* The budget is JSON_BUDGET_FACTOR * LEN + JSON_BUDGET_BASE. */
void json_reader_init(json_reader *r, const char *s, size_t len, unsigned max_depth);
void json_reader_done(json_reader *r);

/* Each call returns -EBADMSG, with r->error set, on input that is not JSON
 * (or too deep, or over the budget); the reader is then done for. */

/* Reads a value; JSON null is NULL.  *RET is a new reference. */
int json_reader_value(json_reader *r, json_object **ret);
/* Skips a value without building it. */
int json_reader_skip(json_reader *r);

/* Walks an object: json_reader_object_begin() reads the "{"; then each
 * json_reader_object_next() reads the next key (*RET_LEN bytes at *RET_KEY,
 * not NUL-terminated, valid until the next read) and its ":", returning 1,
 * or the "}", returning 0.  The caller reads or skips each key's value.
 * *INDEX counts the keys read; it starts at 0.  (The scratch stack must be
 * empty: walk envelopes only.) */
int json_reader_object_begin(json_reader *r);
int json_reader_object_next(json_reader *r, unsigned *index, const char **ret_key, size_t *ret_len);

static inline bool json_key_is(const char *key, size_t len, const char *name) {
        return len == strlen(name) && memcmp(key, name, len) == 0;
}

/* Reads a string value without building it: LEN bytes (NULs possible) at
 * *RET, valid until the next read. */
int json_reader_string(json_reader *r, const char **ret, size_t *ret_len);

/* Whether the next value starts with C: '{' an object, '"' a string... */
bool json_reader_next_is(json_reader *r, char c);

/* Nothing but whitespace left. */
int json_reader_end(json_reader *r);

/* Reads S (LEN bytes of UTF-8) as one JSON value.  Returns -EBADMSG with a
 * reason in *RET_REASON (static) when it is not exactly one. */
int json_read(const char *s, size_t len, unsigned max_depth, json_object **ret, const char **ret_reason);
