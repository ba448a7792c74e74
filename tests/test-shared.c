/* Unit tests of the shared code: framing, JSON writing, protocol messages,
 * addresses. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "address.h"
#include "buffer.h"
#include "json-writer.h"
#include "protocol.h"

static char *write_json(json_object *v) {
        buffer b = {};
        cr_assert_eq(json_write_value(&b, v), 0);
        buffer_append(&b, "", 1);
        char *s = strdup(buffer_head(&b));
        buffer_done(&b);
        return s;
}

Test(json_writer, escapes_what_json_requires_and_nothing_else) {
        json_object *v = json_object_new_string_len("a\"b\\c\n\t\x01/é𝇚", 15);
        char *s = write_json(v);
        cr_assert_str_eq(s, "\"a\\\"b\\\\c\\n\\t\\u0001/é𝇚\"");
        free(s);
        json_object_put(v);
}

Test(json_writer, round_trips_through_json_c) {
        const char *text = "{\"a\":[1,2.5,-3,true,false,null,\"x\\u0000y\"],\"b\":{\"c\":\"\\ud834\\uddda\"}}";
        json_object *v = json_tokener_parse(text);
        cr_assert_not_null(v);
        char *s = write_json(v);
        json_object *back = json_tokener_parse(s);
        cr_assert(json_object_equal(v, back), "%s vs %s", text, s);
        free(s);
        json_object_put(v);
        json_object_put(back);
}

Test(json_writer, refuses_values_deeper_than_the_limit) {
        json_object *root = json_object_new_array(), *cur = root;
        for (int i = 0; i < JSON_MAX_DEPTH + 5; i++) {
                json_object *next = json_object_new_array();
                json_object_array_add(cur, next);
                cur = next;
        }
        buffer b = {};
        buffer_append(&b, "keep", 4);
        cr_assert_eq(json_write_value(&b, root), -ELOOP);
        cr_assert_eq(buffer_length(&b), 4, "a failed write leaves nothing behind");
        buffer_done(&b);
        json_object_put(root);
}

Test(buffer, frames_messages_split_across_reads) {
        int sv[2];
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        buffer b = {};
        size_t scanned = 0;
        const char *msg;

        cr_assert_eq(write(sv[0], "{\"a\":1}\0{\"b\"", 12), 12);
        cr_assert_gt(buffer_read(&b, sv[1], 1024), 0);
        cr_assert_eq(buffer_next_message(&b, &scanned, &msg), 7);
        cr_assert_eq(memcmp(msg, "{\"a\":1}", 7), 0);
        buffer_consume(&b, 8);
        cr_assert_eq(buffer_next_message(&b, &scanned, &msg), -EAGAIN);

        cr_assert_eq(write(sv[0], ":2}\0", 4), 4);
        cr_assert_gt(buffer_read(&b, sv[1], 1024), 0);
        cr_assert_eq(buffer_next_message(&b, &scanned, &msg), 7);
        cr_assert_eq(memcmp(msg, "{\"b\":2}", 7), 0);
        buffer_done(&b);
        close(sv[0]);
        close(sv[1]);
}

Test(buffer, refuses_a_message_over_the_limit_without_allocating_it) {
        int sv[2];
        char junk[4096];
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        memset(junk, 'x', sizeof(junk));
        cr_assert_eq(write(sv[0], junk, sizeof(junk)), (ssize_t) sizeof(junk));

        buffer b = {};
        ssize_t n;
        while ((n = buffer_read(&b, sv[1], 1000)) > 0)
                ;
        cr_assert_eq(n, -EMSGSIZE);
        cr_assert_leq(buffer_length(&b), 1000);
        buffer_done(&b);
        close(sv[0]);
        close(sv[1]);
}

Test(protocol, call_message_shape) {
        buffer b = {};
        json_object *args = json_tokener_parse("[\"x\",1]");
        cr_assert_eq(protocol_append_call(&b, "echo", args, NULL), 0);
        cr_assert_str_eq(buffer_head(&b), "{\"method\":\"io.aetask.Worker.echo\",\"parameters\":{\"args\":[\"x\",1]}}");
        cr_assert_eq(buffer_head(&b)[buffer_length(&b) - 1], 0, "messages end with a NUL");
        buffer_clear(&b);
        cr_assert_eq(protocol_append_call(&b, NULL, NULL, NULL), 0);
        cr_assert_str_eq(buffer_head(&b), "{\"method\":\"io.aetask.Checkout.Call\",\"parameters\":{\"args\":[]}}");
        buffer_done(&b);
        json_object_put(args);
}

Test(protocol, parses_calls_and_rejects_bad_shapes) {
        json_tokener *tok = protocol_tokener_new();
        json_object *m;
        protocol_call c;
        const char *reason;
        const char *good = "{\"method\":\"io.aetask.Worker.hash\",\"parameters\":{\"args\":[\"pw\"]}}";

        cr_assert_eq(protocol_parse_message(tok, good, strlen(good), &m, &reason), 0);
        cr_assert_eq(protocol_parse_call(m, &c, &reason), 0);
        cr_assert_eq(c.kind, PROTOCOL_CALL_METHOD);
        cr_assert_str_eq(c.method, "hash");
        json_object_put(m);

        static const char *const bad[] = {
                "not json", "[1,2]", "{\"method\":1}", "{\"a\":1} trailing", "{\"method\":\"x\"",
                "{\"method\":\"io.aetask.Worker.echo\",\"parameters\":[]}",
                "{\"method\":\"io.aetask.Worker.echo\",\"parameters\":{\"args\":{}}}",
                "{\"s\":\"\xff\xfe\"}",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int r = protocol_parse_message(tok, bad[i], strlen(bad[i]), &m, &reason);
                if (r == 0) {
                        r = protocol_parse_call(m, &c, &reason);
                        json_object_put(m);
                }
                cr_assert_eq(r, -EBADMSG, "accepted: %s", bad[i]);
        }

        const char *unknown = "{\"method\":\"io.aetask.Worker.bad-name\"}";
        cr_assert_eq(protocol_parse_message(tok, unknown, strlen(unknown), &m, &reason), 0);
        cr_assert_eq(protocol_parse_call(m, &c, &reason), -ENOENT);
        json_object_put(m);
        json_tokener_free(tok);
}

Test(protocol, method_names) {
        cr_assert(protocol_method_name_is_valid("selectrow_hashref"));
        cr_assert(!protocol_method_name_is_valid(""));
        cr_assert(!protocol_method_name_is_valid("a.b"));
        cr_assert(!protocol_method_name_is_valid("a\"b"));
}

Test(address, parses_the_varlinkctl_forms) {
        socket_address a;
        cr_assert_eq(socket_address_parse(&a, "unix:/run/aetask/echo.sock"), 0);
        cr_assert_str_eq(socket_address_path(&a), "/run/aetask/echo.sock");
        cr_assert_eq(socket_address_parse(&a, "unix:@aetask-test"), 0);
        cr_assert_null(socket_address_path(&a));
        cr_assert_eq(socket_address_parse(&a, "tcp:127.0.0.1:4000"), 0);
        cr_assert_eq(a.family, AF_INET);
        cr_assert_eq(socket_address_parse(&a, "tcp:[::1]:4000"), 0);
        cr_assert_eq(a.family, AF_INET6);
        cr_assert_eq(socket_address_parse(&a, "unix:relative"), -EINVAL);
        cr_assert_eq(socket_address_parse(&a, "http://x"), -EINVAL);
        cr_assert_eq(socket_address_parse(&a, "tcp:nohost"), -EINVAL);
}
