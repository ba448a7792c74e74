/* Fuzz target: the client's reading side.  Arbitrary bytes from a worker go
 * through the framing and parsing libaetask-sd uses on a worker connection
 * (buffer_next_message under the size limit, protocol_parse_message,
 * protocol_parse_reply) and every "logs" object is merged into a log
 * context, which must then still serialize to JSON that reads back equal. */
#include <string.h>

#include "fuzz.h"
#include "json-writer.h"
#include "log-context.h"
#include "protocol.h"

#define FUZZ_MESSAGE_SIZE_MAX 4096

/* Returns false when the client would drop the connection. */
static bool handle_reply(aetask_log *log, const char *msg, size_t len) {
        protocol_reply reply;
        const char *reason = NULL;

        if (protocol_parse_reply(msg, len, &reply, &reason) < 0) {
                fuzz_assert(reason);
                return false;
        }
        fuzz_assert(!reply.error || reply.message);
        if (reply.error)
                (void) strcmp(reply.error, PROTOCOL_ERROR_RETIRING);
        if (reply.logs)
                log_context_merge(log, reply.logs);
        protocol_reply_done(&reply);
        return true;
}

/* The log context as a caller sees it: its JSON written and read back. */
static void check_log(aetask_log *log) {
        json_object *j = aetask_log_to_json(log), *again = NULL;
        buffer b = {};
        const char *reason;

        fuzz_assert(j);
        fuzz_assert(json_write_value(&b, j) >= 0);
        if (protocol_parse_message(buffer_head(&b), buffer_length(&b), &again, &reason) < 0) {
                fprintf(stderr, "log context JSON does not read back (%s): %.*s\n",
                        reason, (int) buffer_length(&b), buffer_head(&b));
                abort();
        }
        fuzz_assert(json_object_equal(j, again));
        for (unsigned i = 1; i < aetask_log_get_n_messages(log); i++) {
                uint64_t a, z;
                fuzz_assert(aetask_log_get_message(log, i - 1, &a, NULL, NULL, NULL) == 0);
                fuzz_assert(aetask_log_get_message(log, i, &z, NULL, NULL, NULL) == 0);
                fuzz_assert(a <= z);  /* kept in time order */
        }
        json_object_put(again);
        json_object_put(j);
        buffer_done(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        buffer in = {};
        size_t scanned = 0, piece = fuzz_piece_size(&data, &size);
        aetask_log *log = NULL;
        bool alive = true;

        fuzz_assert(aetask_log_new(&log) == 0);

        while (alive) {
                /* What the worker connection's on_io() does with each read. */
                ssize_t n = fuzz_feed(&in, FUZZ_MESSAGE_SIZE_MAX + 1, piece, &data, &size);
                if (n <= 0)
                        break;  /* the end, or a reply over the size limit */
                const char *msg;
                ssize_t len;
                while (alive && (len = buffer_next_message(&in, &scanned, &msg)) >= 0) {
                        alive = handle_reply(log, msg, (size_t) len);
                        buffer_consume(&in, (size_t) len + 1);
                }
        }
        check_log(log);
        aetask_log_unref(log);
        buffer_done(&in);
        return 0;
}
