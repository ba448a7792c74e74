/* What a result of the sqlite handler may cost: see sqlite-result.c. */
#pragma once

#include <aetask/aetask-handler.h>
#include <sqlite3.h>
#include <stddef.h>

/* What building a result may cost: its JSON text must fit one message, and
 * the json-c values it is made of at most RESULT_MEMORY_FACTOR times that.
 * json-c spends about 64 bytes on a number, 72 and the text on a string, 150
 * on a row as an array and 850 on a row as an object (json-c 0.16, measured
 * with mallinfo2()): tiny values cost 30 to 110 times their text.  Four
 * times the default limit of 16 MiB is the fixed room a client library's
 * reader gives a reply's values (aetask-protocol(7), "Values"), so a result
 * built here is one a client can read. */
#define RESULT_MEMORY_FACTOR 4
#define RESULT_ENVELOPE_TEXT 64         /* {"parameters":{"result":...}} */
#define JSONC_VALUE_COST 72
#define JSONC_ARRAY_ROW_COST 150
#define JSONC_OBJECT_ROW_COST 850

typedef struct result_budget {
        size_t text, text_max;          /* the reply's JSON text */
        size_t memory, memory_max;      /* the json-c values of the result */
} result_budget;

void result_budget_init(aetask_worker *w, result_budget *b);
/* Charges what the next piece of the result costs, before it is built;
 * raises METHOD's error once the text or the memory passes its bound. */
int result_budget_charge(aetask_worker *w, const char *method, result_budget *b, size_t text, size_t memory);
/* The length of S as a JSON string, quotes and escapes included. */
size_t json_string_text(const unsigned char *s, size_t n);
/* The length of V in decimal. */
size_t integer_text(sqlite3_int64 v);
