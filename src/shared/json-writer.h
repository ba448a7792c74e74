/* Writes json-c values straight into a buffer.  json-c's own serializer
 * builds a printbuf per object and escapes byte by byte; a message on the wire
 * is built here instead, with no object tree made just to wrap it. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include "buffer.h"

/* Deeper values are refused; it matches the parser's depth limit. */
#define JSON_MAX_DEPTH 128

/* Appends VALUE (NULL is JSON null).  Returns -ELOOP past JSON_MAX_DEPTH,
 * -EILSEQ for a string that is not valid UTF-8, and appends nothing then. */
int json_write_value(buffer *b, json_object *value);

/* False for a double json-c would write as NaN, Infinity or -Infinity:
 * json-c reads and writes those, even when strict, but they are not JSON.
 * The writer puts null in their place, as sd-json does. */
bool json_double_is_json(json_object *value);

/* Appends S (LEN bytes) as a quoted, escaped JSON string.  Returns -EILSEQ,
 * and appends nothing, when S is not valid UTF-8 (see utf8.h). */
int json_write_string(buffer *b, const char *s, size_t len);

/* The same for text meant for people, such as error messages: what is not
 * valid UTF-8 becomes U+FFFD instead of failing the write. */
int json_write_text(buffer *b, const char *s, size_t len);
