/* Fuzz target: the worker's reading side.  Arbitrary bytes from a client go
 * through the worker's own code (worker_handle_input(): framing,
 * protocol_parse_message, protocol_parse_call, running the handler), in the
 * pieces read(2) might deliver them and under the message size limit.
 * Every reply the worker writes must be one the client library accepts. */
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "macro.h"
#include "protocol.h"
#include "server-internal.h"

#define FUZZ_MESSAGE_SIZE_MAX 4096

static bool fail_checkout_done;

static int f_setup(aetask_worker *w) {
        fail_checkout_done = false;
        return 0;
}

static int f_echo(aetask_worker *w, json_object *args, json_object **ret) {
        *ret = json_object_get(json_object_array_get_idx(args, 0));
        return 0;
}

static int f_fail(aetask_worker *w, json_object *args, json_object **ret) {
        return aetask_worker_raise(w, "failed: %s", json_object_get_string(json_object_array_get_idx(args, 0)) ?: "");
}

/* Logs data and a timer, so replies carry "logs". */
static int f_log(aetask_worker *w, json_object *args, json_object **ret) {
        int t = aetask_worker_timer_start(w, json_object_get_string(json_object_array_get_idx(args, 0)) ?: "t");
        (void) aetask_worker_log_data(w, "args", json_object_get(args));
        if (json_object_get_boolean(json_object_array_get_idx(args, 1)))
                (void) aetask_worker_timer_stop(w, t);
        *ret = json_object_new_int((int) json_object_array_length(args));
        return 0;
}

/* A result of N bytes: over the size limit it cannot be sent. */
static int f_big(aetask_worker *w, json_object *args, json_object **ret) {
        int64_t n = json_object_get_int64(json_object_array_get_idx(args, 0));
        n = n < 0 ? 0 : n > 3 * FUZZ_MESSAGE_SIZE_MAX ? 3 * FUZZ_MESSAGE_SIZE_MAX : n;
        char *s = malloc((size_t) n + 1);
        if (!s)
                return -ENOMEM;
        memset(s, 'x', (size_t) n);
        s[n] = 0;
        *ret = json_object_new_string_len(s, (int) n);
        free(s);
        return 0;
}

/* A handler may build any number, finite or not. */
static int f_number(aetask_worker *w, json_object *args, json_object **ret) {
        double d = json_object_get_double(json_object_array_get_idx(args, 0));
        switch (json_object_get_int(json_object_array_get_idx(args, 1))) {
        case 1: d = NAN; break;
        case 2: d = INFINITY; break;
        case 3: d = -INFINITY; break;
        }
        *ret = json_object_new_double(d);
        return 0;
}

static int f_errno(aetask_worker *w, json_object *args, json_object **ret) {
        return -json_object_get_int(json_object_array_get_idx(args, 0));
}

static int f_fail_done(aetask_worker *w, json_object *args, json_object **ret) {
        fail_checkout_done = true;
        return 0;
}

static int f_call(aetask_worker *w, json_object *args, json_object **ret) {
        *ret = json_object_get(args);
        return 0;
}

static int f_checkout_done(aetask_worker *w) {
        if (fail_checkout_done)
                return aetask_worker_raise(w, "checkout_done failed");
        return 0;
}

static const aetask_method f_methods[] = {
        { "echo", f_echo }, { "fail", f_fail }, { "log", f_log }, { "big", f_big },
        { "number", f_number }, { "errno", f_errno }, { "fail_done", f_fail_done }, {}
};

static const aetask_handler f_handler = {
        .abi_version = AETASK_HANDLER_ABI_VERSION,
        .name = "fuzz",
        .setup = f_setup,
        .methods = f_methods,
        .call = f_call,
        .checkout_done = f_checkout_done,
};

static void say_rejected(FILE *f, const char *reason, const char *msg, size_t len) {
        fprintf(f, "the worker wrote a reply the client rejects (%s): %.*s\n", reason, (int) MIN(len, 4096), msg);
}

/* Every reply in OUT must be a message the client reads without a protocol error. */
static void check_replies(buffer *out) {
        size_t scanned = 0;
        const char *msg;
        ssize_t len;

        while ((len = buffer_next_message(out, &scanned, &msg)) >= 0) {
                protocol_reply reply;
                const char *reason = NULL;

                fuzz_assert((size_t) len <= FUZZ_MESSAGE_SIZE_MAX);
                if (protocol_parse_reply(msg, (size_t) len, &reply, &reason) < 0) {
                        /* Also to a file: CI runs libFuzzer with stderr
                         * closed (-close_fd_mask=2), and prints this. */
                        FILE *f = fopen("fuzz-worker-input.rejected", "we");
                        say_rejected(stderr, reason, msg, (size_t) len);
                        if (f) {
                                say_rejected(f, reason, msg, (size_t) len);
                                fclose(f);
                        }
                        abort();
                }
                fuzz_assert(!reply.error || reply.message);
                protocol_reply_done(&reply);
                buffer_consume(out, (size_t) len + 1);
        }
        fuzz_assert(buffer_length(out) == 0);  /* nothing unterminated */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static aetask_server server = {
                .handler = &f_handler,
                .max_message_size = FUZZ_MESSAGE_SIZE_MAX,
                .hung_timeout = DEFAULT_HUNG_TIMEOUT_USEC,
        };
        static scoreboard_slot slot = { .number = 1 };
        static int wire[2] = { -1, -1 };
        buffer in = {}, out = {}, written = {};
        size_t piece = fuzz_piece_size(&data, &size);

        /* What the worker writes itself (a Done's answer before the next
         * call) goes down a pipe, to be read back and checked. */
        if (wire[0] < 0) {
                fuzz_assert(pipe2(wire, O_CLOEXEC) == 0);
                fuzz_assert(fd_nonblock(wire[0]) == 0);
                (void) fcntl(wire[1], F_SETPIPE_SZ, 1 << 20);
        }
        aetask_worker *w = worker_new(&server, &slot);
        fuzz_assert(w);
        for (;;) {
                /* What worker_run() does with each read. */
                ssize_t n = fuzz_feed(&in, server.max_message_size + 1, piece, &data, &size);
                if (n <= 0)
                        break;  /* the end, or -EMSGSIZE: the worker says so and exits */
                int r = worker_handle_input(w, &in, &out, wire[1]);
                while (buffer_read(&written, wire[0], SIZE_MAX) > 0)
                        ;
                check_replies(&written);
                check_replies(&out);
                if (r < 0)
                        break;
        }
        worker_free(w);
        buffer_done(&in);
        buffer_done(&out);
        buffer_done(&written);
        return 0;
}
