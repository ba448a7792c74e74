/* What a result of the sqlite handler may cost while it is built.  A
 * result that cannot be sent must not be built first: 99,999 rows of 10 KB
 * grew a worker to 1.9 GiB before "the result cannot be sent".  Each row and
 * value is charged, before it is made, with its JSON text (which must fit
 * one message) and with what json-c will spend on it (bounded to a few
 * times the message size, since many small values cost far more in objects
 * than in text). */
#include "sqlite-result.h"

#include <stdint.h>

void result_budget_init(aetask_worker *w, result_budget *b) {
        size_t max = aetask_worker_get_max_message_size(w);
        *b = (result_budget) {
                .text = RESULT_ENVELOPE_TEXT,
                .text_max = max,
                .memory_max = max > SIZE_MAX / RESULT_MEMORY_FACTOR ? SIZE_MAX : max * RESULT_MEMORY_FACTOR,
        };
}

int result_budget_charge(aetask_worker *w, const char *method, result_budget *b, size_t text, size_t memory) {
        b->text += text;
        b->memory += memory;
        if (b->text > b->text_max)
                return aetask_worker_raise(w, "%s: the result is larger than the message size limit of %zu bytes "
                                              "(aetaskd --max-message-size): select fewer rows or columns",
                                           method, b->text_max);
        if (b->memory > b->memory_max)
                return aetask_worker_raise(w, "%s: the result would take more than %zu MiB of memory to build "
                                              "(%d times the message size limit): select fewer rows or columns",
                                           method, b->memory_max >> 20, RESULT_MEMORY_FACTOR);
        return 0;
}

size_t json_string_text(const unsigned char *s, size_t n) {
        size_t size = 2;

        for (size_t i = 0; i < n; i++)
                switch (s[i]) {
                case '"': case '\\': case '\b': case '\f': case '\n': case '\r': case '\t':
                        size += 2;
                        break;
                default:
                        size += s[i] < 0x20 ? 6 : 1;
                }
        return size;
}

size_t integer_text(sqlite3_int64 v) {
        size_t n = v < 0 ? 2 : 1;

        for (sqlite3_uint64 u = v < 0 ? -(sqlite3_uint64) v : (sqlite3_uint64) v; u >= 10; u /= 10)
                n++;
        return n;
}

