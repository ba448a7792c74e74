/* Writes json-c values straight into a buffer.  json-c's own serializer
 * builds a printbuf per object and escapes byte by byte; a message on the wire
 * is built here instead, with no object tree made just to wrap it. */
#pragma once

#include <json-c/json.h>

#include "buffer.h"

/* Deeper values are refused; it matches the parser's depth limit. */
#define JSON_MAX_DEPTH 128

/* Appends VALUE (NULL is JSON null).  Returns -ELOOP past JSON_MAX_DEPTH. */
int json_write_value(buffer *b, json_object *value);

/* Appends S (LEN bytes) as a quoted, escaped JSON string. */
int json_write_string(buffer *b, const char *s, size_t len);
