/* Fuzz target: arguments and results, decoded and encoded again.  A message
 * that parses must write back (json_write_value) to JSON that parses to an
 * equal value; a call's arguments must survive protocol_append_call() and
 * protocol_parse_call(), and a result protocol_append_reply() and
 * protocol_parse_reply(), unchanged. */
#include <string.h>

#include "fuzz.h"
#include "json-writer.h"
#include "macro.h"
#include "protocol.h"

static unsigned depth(json_object *v) {
        unsigned d = 0;

        if (json_object_is_type(v, json_type_array))
                for (size_t i = 0; i < json_object_array_length(v); i++) {
                        unsigned c = depth(json_object_array_get_idx(v, i)) + 1;
                        d = MAX(d, c);
                }
        else if (json_object_is_type(v, json_type_object)) {
                json_object_object_foreach(v, key, child) {
                        unsigned c = depth(child) + 1;
                        (void) key;
                        d = MAX(d, c);
                }
        }
        return d;
}

/* Writes V, reads it back as the message it is inside ("{" PREFIX V "}"). */
static json_object *round_trip(json_object *v) {
        buffer b = {};
        json_object *m = NULL, *again = NULL;
        const char *reason;
        int r;

        fuzz_assert(buffer_append_str(&b, "{\"v\":") == 0);
        r = json_write_value(&b, v);
        if (r == -ELOOP) {
                fuzz_assert(depth(v) > JSON_MAX_DEPTH);
                buffer_done(&b);
                return NULL;
        }
        fuzz_assert(r == 0);
        fuzz_assert(buffer_append(&b, "}", 1) == 0);
        if (protocol_parse_message(buffer_head(&b), buffer_length(&b), &m, &reason) < 0) {
                fprintf(stderr, "written JSON does not read back (%s): %.*s\n",
                        reason, (int) buffer_length(&b), buffer_head(&b));
                abort();
        }
        fuzz_assert(json_object_object_get_ex(m, "v", &again));
        again = json_object_get(again);
        json_object_put(m);
        buffer_done(&b);
        if (!json_object_equal(v, again)) {
                fprintf(stderr, "value changed: %s became %s\n",
                        json_object_to_json_string(v), json_object_to_json_string(again));
                abort();
        }
        return again;
}

static void check_call(json_object *m) {
        protocol_call c, c2;
        protocol_reply reply;
        const char *reason;
        json_object *m2 = NULL;
        buffer b = {};

        if (protocol_parse_call(m, &c, &reason) < 0 || c.kind == PROTOCOL_CALL_DONE)
                return;
        /* The client would build this call from these arguments. */
        fuzz_assert(protocol_append_call(&b, c.kind == PROTOCOL_CALL_METHOD ? c.method : NULL, c.args, c.trace) == 0 ||
                    depth(c.args) > JSON_MAX_DEPTH);
        if (buffer_length(&b) == 0) {
                buffer_done(&b);
                return;
        }
        fuzz_assert(protocol_parse_message(buffer_head(&b), buffer_length(&b) - 1, &m2, &reason) == 0);
        fuzz_assert(protocol_parse_call(m2, &c2, &reason) == 0);
        fuzz_assert(c2.kind == c.kind);
        fuzz_assert(c.kind != PROTOCOL_CALL_METHOD || strcmp(c.method, c2.method) == 0);
        fuzz_assert(!c.trace == !c2.trace && (!c.trace || strcmp(c.trace, c2.trace) == 0));
        fuzz_assert(c.args ? json_object_equal(c.args, c2.args) : json_object_array_length(c2.args) == 0);
        json_object_put(m2);
        buffer_clear(&b);

        /* A worker returning the arguments as its result. */
        fuzz_assert(protocol_append_reply(&b, c.args, NULL) == 0);
        fuzz_assert(protocol_parse_message(buffer_head(&b), buffer_length(&b) - 1, &m2, &reason) == 0);
        fuzz_assert(protocol_parse_reply(m2, &reply, &reason) == 0);
        fuzz_assert(!reply.error);
        fuzz_assert(c.args ? json_object_equal(c.args, reply.result) : json_object_is_type(reply.result, json_type_null));
        json_object_put(m2);
        buffer_done(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_object *m = NULL;
        const char *reason;

        if (protocol_parse_message((const char *) data, size, &m, &reason) < 0)
                return 0;
        json_object_put(round_trip(m));
        check_call(m);
        json_object_put(m);
        return 0;
}
