/* aetaskctl call: one checkout, one call, the result on stdout. */
#include <aetask/aetask-client.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "macro.h"
#include "json-writer.h"
#include "protocol.h"
#include "utf8.h"

typedef struct call_state {
        sd_event *event;
        bool raw;
        int exit_code;
        const char *not_a_method;      /* a first word taken as the catch-all's argument */
} call_state;

static int on_reply(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        call_state *st = userdata;

        /* --raw, as jq -r: a string as its bytes (NULs included), anything else as JSON. */
        if (st->raw && json_object_is_type(result, json_type_string)) {
                fwrite(json_object_get_string(result), 1, json_object_get_string_len(result), stdout);
                putchar('\n');
        } else
                puts(json_object_to_json_string_ext(result, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        st->exit_code = 0;
        sd_event_exit(st->event, 0);
        return 0;
}

static void on_error(aetask_checkout *co, aetask_error_kind kind, const char *message, void *userdata) {
        call_state *st = userdata;

        fprintf(stderr, "aetaskctl: %s error: %s\n", aetask_error_kind_to_string(kind), message);
        if (kind == AETASK_ERROR_HANDLER && st->not_a_method)
                fprintf(stderr, "aetaskctl: \"%s\" is not a method name (1 to %d ASCII letters, digits and "
                        "underscores): it went to the catch-all as the first argument\n",
                        st->not_a_method, PROTOCOL_METHOD_NAME_MAX);
        st->exit_code = CTL_EXIT_CALL_FAILED;
        sd_event_exit(st->event, 0);
}

/* An argument is JSON if it parses as JSON; otherwise it is a string. */
static json_object *parse_argument(const char *s) {
        /* As deep as the protocol carries. */
        json_tokener *tok = json_tokener_new_ex(JSON_MAX_DEPTH);
        json_object *v = NULL;

        if (!tok)
                return NULL;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        /* The terminating NUL is part of the input: it ends a bare number. */
        v = json_tokener_parse_ex(tok, s, (int) strlen(s) + 1);
        if (json_tokener_get_error(tok) != json_tokener_success ||
            (size_t) json_tokener_get_parse_end(tok) < strlen(s)) {
                json_object_put(v);
                v = json_object_new_string(s);
        }
        json_tokener_free(tok);
        return v;
}

int ctl_call(ctl_context *ctx, int argc, char **argv) {
        _cleanup_(aetask_client_unrefp) aetask_client *client = NULL;
        _cleanup_(aetask_checkout_unrefp) aetask_checkout *co = NULL;
        _cleanup_(json_object_putp) json_object *args = NULL;
        call_state st = { .raw = ctx->raw, .exit_code = CTL_EXIT_CALL_FAILED };
        const char *method = NULL;
        int i = 0, r;

        if (!ctx->address && ctx->name)
                ctx->address = ctl_unit_address(ctx->name, ".sock");
        if (!ctx->address) {
                fprintf(stderr, "aetaskctl: no server given: use --connect ADDRESS or aetaskctl NAME call\n");
                return CTL_EXIT_USAGE;
        }
        if (argc > 0) {
                if (strcmp(argv[0], "-") == 0)
                        i = 1;
                else if (protocol_method_name_is_valid(argv[0])) {
                        method = argv[0];
                        i = 1;
                } else
                        st.not_a_method = argv[0];
        }

        args = json_object_new_array();
        for (int first = i; i < argc; i++) {
                /* Messages are UTF-8: a stray byte is the caller's to fix. */
                if (!utf8_is_valid(argv[i], strlen(argv[i]))) {
                        fprintf(stderr, "aetaskctl: argument %d is not valid UTF-8\n", i - first + 1);
                        return CTL_EXIT_USAGE;
                }
                json_object_array_add(args, parse_argument(argv[i]));
        }

        r = sd_event_default(&st.event);
        if (r >= 0)
                r = aetask_client_new(&client, ctx->address);
        if (r < 0) {
                fprintf(stderr, "aetaskctl: cannot use %s: %s\n", ctx->address, strerror(-r));
                sd_event_unref(st.event);
                return CTL_EXIT_USAGE;
        }
        (void) aetask_client_set_min_workers(client, 0);
        (void) aetask_client_set_max_workers(client, 1);
        (void) aetask_client_set_timeout(client, ctx->timeout_usec);
        (void) aetask_client_set_error_handler(client, on_error, &st);
        r = aetask_client_attach_event(client, st.event, 0);
        if (r >= 0)
                r = aetask_client_checkout(client, &co);
        if (r >= 0)
                r = aetask_checkout_call(co, NULL, method, args, on_reply, &st);
        if (r < 0) {
                fprintf(stderr, "aetaskctl: failed to call: %s\n", strerror(-r));
                st.exit_code = CTL_EXIT_CALL_FAILED;
        } else
                (void) sd_event_loop(st.event);

        co = aetask_checkout_unref(co);
        client = aetask_client_unref(client);
        sd_event_unref(st.event);
        return st.exit_code;
}
