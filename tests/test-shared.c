/* Unit tests of the shared code: framing, JSON writing, protocol messages,
 * addresses. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "address.h"
#include "buffer.h"
#include "heap.h"
#include "json-out.h"
#include "json-reader.h"
#include "json-scan.h"
#include "json-writer.h"
#include "macro.h"
#include "parse-number.h"
#include "protocol.h"
#include "utf8.h"

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

/* Strings that are not UTF-8, each with why. */
static const struct {
        const char *s;
        const char *why;
} invalid_utf8[] = {
        { "\xff", "FF is never in UTF-8" },
        { "\x80", "a stray continuation byte" },
        { "\xc0\x80", "an overlong NUL" },
        { "\xc1\xbf", "an overlong U+007F" },
        { "\xe0\x9f\xbf", "an overlong U+07FF" },
        { "\xf0\x8f\xbf\xbf", "an overlong U+FFFF" },
        { "\xed\xa0\x80", "the surrogate U+D800" },
        { "\xed\xbf\xbf", "the surrogate U+DFFF" },
        { "\xf4\x90\x80\x80", "U+110000, past the last code point" },
        { "\xf5\x80\x80\x80", "F5 starts nothing" },
        { "\xe2\x82", "a sequence cut short" },
        { "\xc3(", "a lead byte without its continuation" },
        { "\xe2\x28\xa1", "a bad second byte" },
};

/* The edges of what is valid. */
static const char *const valid_utf8[] = {
        "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbf",
        "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf", "h\xc3\xa9llo \xe2\x82\xac \xf0\x9d\x87\x9a",
};

Test(json_writer, refuses_invalid_utf8_and_leaves_nothing_behind) {
        for (size_t i = 0; i < sizeof(invalid_utf8) / sizeof(invalid_utf8[0]); i++) {
                buffer b = {};
                buffer_append(&b, "keep", 4);
                cr_assert_eq(json_write_string(&b, invalid_utf8[i].s, strlen(invalid_utf8[i].s)), -EILSEQ,
                             "accepted %s", invalid_utf8[i].why);
                cr_assert_eq(buffer_length(&b), 4, "a failed write leaves nothing behind");
                cr_assert(!utf8_is_valid(invalid_utf8[i].s, strlen(invalid_utf8[i].s)), "%s", invalid_utf8[i].why);
                buffer_done(&b);
        }
}

Test(json_writer, writes_valid_utf8_as_is) {
        for (size_t i = 0; i < sizeof(valid_utf8) / sizeof(valid_utf8[0]); i++) {
                json_object *v = json_object_new_string(valid_utf8[i]);
                char *s = write_json(v);
                cr_assert_eq(strlen(s), strlen(valid_utf8[i]) + 2);
                cr_assert_eq(memcmp(s + 1, valid_utf8[i], strlen(valid_utf8[i])), 0);
                cr_assert(utf8_is_valid(valid_utf8[i], strlen(valid_utf8[i])));
                free(s);
                json_object_put(v);
        }
}

Test(json_writer, finds_a_bad_byte_anywhere_in_a_long_string) {
        /* Positions on both sides of the eight-byte fast path's steps, in
         * ASCII and in non-ASCII text. */
        for (int text = 0; text < 2; text++)
                for (size_t pos = 0; pos < 40; pos++) {
                        char s[64];
                        for (size_t i = 0; i < sizeof(s); i += 2)
                                memcpy(s + i, text ? "\xc3\xa9" : "ab", 2);
                        s[pos & ~(size_t) 1] = '\xff';
                        buffer b = {};
                        cr_assert_eq(json_write_string(&b, s, sizeof(s)), -EILSEQ, "bad byte at %zu", pos);
                        cr_assert(!utf8_is_valid(s, sizeof(s)));
                        s[pos & ~(size_t) 1] = '"';
                        if (!text) {
                                cr_assert_eq(json_write_string(&b, s, sizeof(s)), 0);
                                cr_assert_eq(buffer_length(&b), sizeof(s) + 3, "the quote is escaped");
                        }
                        buffer_done(&b);
                }
}

Test(json_scan, stops_at_the_first_special_byte_wherever_it_is) {
        /* Each byte that matters, and its neighbours, at every position of
         * the sixteen-, eight- and one-byte steps, and past the end. */
        static const unsigned char bytes[] = { 0x00, 0x1f, 0x20, '"', '\\', 0x7f, 0x80, 0xc3, 0xff, 'a' };
        unsigned char s[80];

        for (size_t k = 0; k < sizeof(bytes); k++)
                for (size_t pos = 0; pos < sizeof(s); pos++)
                        for (size_t len = pos; len <= sizeof(s); len += 7)
                                for (int high = 0; high < 2; high++) {
                                        memset(s, 'x', sizeof(s));
                                        s[pos] = bytes[k];
                                        size_t want = 0;
                                        while (want < len && json_byte_is_plain(s[want], high))
                                                want++;
                                        cr_assert_eq(json_plain_length(s, s + len, high), want,
                                                     "byte 0x%02x at %zu of %zu, high %d", bytes[k], pos, len, high);
                                }
}

Test(utf8, finds_a_bad_byte_past_the_fast_paths) {
        /* ASCII in 64-, 8- and 1-byte steps: a bad byte anywhere in them. */
        char s[200];
        for (size_t pos = 0; pos < sizeof(s); pos++) {
                memset(s, 'a', sizeof(s));
                cr_assert(utf8_is_valid(s, sizeof(s)));
                s[pos] = '\x80';
                cr_assert(!utf8_is_valid(s, sizeof(s)), "a stray continuation byte at %zu", pos);
                cr_assert(utf8_is_valid(s, pos), "before it, at %zu", pos);
        }
}

/* A reference decoder: the code point of the sequence at S, by the
 * definition (the bits, the shortest form, the ranges), or -1. */
static long reference_decode(const unsigned char *s, size_t n) {
        static const long min[] = { 0, 0, 0x80, 0x800, 0x10000 };
        size_t need = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 :
                      (s[0] & 0xf8) == 0xf0 ? 4 : 0;
        long cp;

        if (need == 0 || need != n)
                return -1;
        cp = need == 1 ? s[0] : s[0] & (0x7f >> need);
        for (size_t i = 1; i < need; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return -1;
                cp = (cp << 6) | (s[i] & 0x3f);
        }
        if (cp < min[need] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return -1;
        return cp;
}

Test(utf8, agrees_with_the_definition_on_every_short_sequence) {
        unsigned char s[4];

        /* Every sequence of one to three bytes, and four-byte ones with
         * every lead byte and every second byte. */
        for (unsigned a = 0; a < 256; a++) {
                s[0] = (unsigned char) a;
                cr_assert_eq(utf8_is_valid((char *) s, 1), reference_decode(s, 1) >= 0, "%02x", a);
                for (unsigned b = 0; b < 256; b++) {
                        s[1] = (unsigned char) b;
                        cr_assert_eq(utf8_is_valid((char *) s, 2),
                                     reference_decode(s, 2) >= 0 || (reference_decode(s, 1) >= 0 && reference_decode(s + 1, 1) >= 0),
                                     "%02x %02x", a, b);
                        if (a < 0xe0)
                                continue;
                        for (unsigned c = 0x70; c < 0xd0; c++) {
                                s[2] = (unsigned char) c;
                                if (a >= 0xf0) {
                                        s[3] = 0x80;
                                        cr_assert_eq(utf8_is_valid((char *) s, 4), reference_decode(s, 4) >= 0,
                                                     "%02x %02x %02x 80", a, b, c);
                                } else
                                        cr_assert_eq(utf8_is_valid((char *) s, 3), reference_decode(s, 3) >= 0,
                                                     "%02x %02x %02x", a, b, c);
                        }
                }
        }
}

Test(protocol, messages_that_are_not_utf8_are_refused) {

        /* json-c's own check would let overlong forms and surrogates in. */
        for (size_t i = 0; i < sizeof(invalid_utf8) / sizeof(invalid_utf8[0]); i++) {
                char m[64];
                json_object *v = NULL;
                const char *reason = NULL;
                int n = snprintf(m, sizeof(m), "{\"result\":\"%s\"}", invalid_utf8[i].s);
                cr_assert_eq(protocol_parse_message(m, (size_t) n, &v, &reason), -EBADMSG,
                             "accepted %s", invalid_utf8[i].why);
                cr_assert_str_eq(reason, "invalid UTF-8");
        }
}

Test(json_writer, text_gets_replacement_characters_instead_of_failing) {
        buffer b = {};
        cr_assert_eq(json_write_text(&b, "a\xff" "b\xed\xa0\x80" "c\n", 8), 0);
        buffer_append(&b, "", 1);
        cr_assert_str_eq(buffer_head(&b), "\"a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "c\\n\"");
        buffer_done(&b);
}

Test(protocol, an_error_message_with_invalid_utf8_is_still_sent) {
        buffer b = {};
        cr_assert_eq(protocol_append_error(&b, PROTOCOL_ERROR_HANDLER, "bad \xff byte", NULL), 0);
        const char *reason;
        protocol_reply reply;
        cr_assert_eq(protocol_parse_reply(buffer_head(&b), buffer_length(&b) - 1, &reply, &reason), 0);
        cr_assert_str_eq(reply.message, "bad \xef\xbf\xbd byte");
        protocol_reply_done(&reply);
        buffer_done(&b);
}

Test(protocol, a_result_with_invalid_utf8_is_refused) {
        buffer b = {};
        json_object *v = json_object_new_string("\xff");
        buffer_append(&b, "x", 1);
        cr_assert_eq(protocol_append_reply(&b, v, NULL), -EILSEQ);
        cr_assert_eq(buffer_length(&b), 1);
        json_object_put(v);
        buffer_done(&b);
}

/* ---- The JSON reader ------------------------------------------------------ */

static json_object *read_ok(const char *text) {
        json_object *v = NULL;
        const char *reason = NULL;
        int r = json_read(text, strlen(text), 16, &v, &reason);
        cr_assert_eq(r, 0, "%s: %s", text, reason);
        return v;
}

Test(json_reader, reads_what_json_c_reads_the_same_way) {
        static const char *const texts[] = {
                "null", "true", "false", "0", "-0", "7", "-7", "123456789012345678",
                "9223372036854775807", "-9223372036854775808", "9223372036854775808", "18446744073709551615",
                "1.5", "-0.0", "1e5", "1E-2", "0.1e+2", "3.141592653589793",
                "\"\"", "\"plain\"", "\"h\\u00e9llo \\ud834\\udd1e \\\"q\\\" \\\\ \\/ \\b\\f\\n\\r\\t\"",
                "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e\"", "\"nul\\u0000inside\"",
                "[]", "{}", " [ 1 , \"two\" , [ 3 , { } ] , null ] ", "{\"a\":1,\"b\":[true,false],\"c\":{\"d\":null}}",
                "{\"dup\":1,\"dup\":2}", "{\"k\\u00e9y\":\"v\",\"\":0}",
                "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33]",
        };
        json_tokener *tok = json_tokener_new();

        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
                json_object *ours = read_ok(texts[i]);
                json_tokener_reset(tok);
                /* json-c wants a number at the top level terminated. */
                json_object *theirs = json_tokener_parse_ex(tok, texts[i], (int) strlen(texts[i]) + 1);
                cr_assert_eq(json_tokener_get_error(tok), json_tokener_success, "json-c: %s", texts[i]);
                cr_assert(json_object_equal(ours, theirs), "%s: %s vs json-c's %s", texts[i],
                          json_object_to_json_string(ours), json_object_to_json_string(theirs));
                cr_assert_eq(json_object_get_type(ours), json_object_get_type(theirs), "%s", texts[i]);
                json_object_put(ours);
                json_object_put(theirs);
        }
        json_tokener_free(tok);
}

Test(json_reader, refuses_what_is_not_json_even_where_json_c_does_not) {
        static const char *const texts[] = {
                "", " ", "[1.]", "[.1]", "[00]", "[-01]", "[+1]", "[-]", "[1e]", "[1e+]", "[01.5]",
                "[NaN]", "[Infinity]", "[-Infinity]", "[nan]", "\"a\tb\"", "\"a\nb\"", "[1,]", "{\"a\":1,}",
                "[1 2]", "{\"a\" 1}", "{a:1}", "{\"a\":}", "[\"a\\x\"]", "[\"\\u12\"]", "[\"\\u12g4\"]",
                "\"unterminated", "[1", "{\"a\":1", "tru", "nul", "falsey", "[1]]", "{} {}", "'x'",
                "[\"\\\"]",
        };

        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
                json_object *v = NULL;
                const char *reason = NULL;
                cr_assert_eq(json_read(texts[i], strlen(texts[i]), 16, &v, &reason), -EBADMSG, "accepted %s", texts[i]);
                cr_assert_not_null(reason);
                cr_assert_null(v);
        }
}

/* Half a surrogate pair is no character: refused wherever it is, in a value,
 * a key, a member that is skipped, the method or the trace of a call, a
 * reply (it was read as U+FFFD, so "\ud800", "\udc00" and "\ufffd" were one
 * password to bcrypt). */
Test(json_reader, refuses_lone_surrogate_escapes_everywhere) {
        static const char *const lone[] = {
                "\\ud800", "\\udbff", "\\udc00", "\\udfff", "\\ud800\\u0041", "\\ud800\\ud800",
                "\\udc00\\ud800", "x\\ud800", "\\ud800\\", "\\ud800\\n", "\\ud800\\udbff",
        };
        static const char *const shapes[] = {
                "\"%s\"", "[\"%s\"]", "{\"%s\":1}", "{\"a\":{\"b\":[\"%s\"]}}",
        };
        static const char *const messages[] = {
                "{\"method\":\"io.aetask.Worker.echo\",\"parameters\":{\"args\":[\"%s\"]}}",
                "{\"method\":\"io.aetask.Worker.echo\",\"parameters\":{\"args\":[{\"%s\":0}]}}",
                "{\"method\":\"io.aetask.Worker.e%s\",\"parameters\":{\"args\":[]}}",
                "{\"method\":\"io.aetask.Worker.echo\",\"parameters\":{\"args\":[],\"trace\":\"%s\"}}",
                "{\"method\":\"io.aetask.Worker.echo\",\"parameters\":{\"args\":[],\"skipped\":[\"%s\"]}}",
                "{\"method\":\"io.aetask.Worker.echo\",\"skipped\":{\"%s\":1}}",
                "{\"%s\":1,\"method\":\"io.aetask.Worker.echo\"}",
                "{\"method\":\"org.example.Unknown\",\"parameters\":{\"args\":[\"%s\"]}}",
        };
        static const char *const replies[] = {
                "{\"parameters\":{\"result\":\"%s\"}}",
                "{\"parameters\":{\"result\":1,\"skipped\":\"%s\"}}",
                "{\"error\":\"io.aetask.HandlerError\",\"parameters\":{\"message\":\"%s\"}}",
                "{\"error\":\"%s\",\"parameters\":{\"message\":\"m\"}}",
                "{\"parameters\":{\"result\":1,\"logs\":{\"data\":{\"%s\":1}}}}",
        };
        char text[256];
        const char *reason;

        for (size_t i = 0; i < ELEMENTSOF(lone); i++) {
                for (size_t j = 0; j < ELEMENTSOF(shapes); j++) {
                        json_object *v = NULL;
                        snprintf(text, sizeof(text), shapes[j], lone[i]);
                        reason = NULL;
                        cr_assert_eq(json_read(text, strlen(text), 16, &v, &reason), -EBADMSG, "accepted %s", text);
                        cr_assert_str_eq(reason, "lone surrogate escape in a string", "%s", text);
                        cr_assert_null(v);
                }
                for (size_t j = 0; j < ELEMENTSOF(messages); j++) {
                        protocol_call c;
                        snprintf(text, sizeof(text), messages[j], lone[i]);
                        reason = NULL;
                        cr_assert_eq(protocol_parse_call(text, strlen(text), &c, &reason), -EBADMSG, "accepted %s", text);
                        cr_assert_str_eq(reason, "lone surrogate escape in a string", "%s", text);
                }
                for (size_t j = 0; j < ELEMENTSOF(replies); j++) {
                        protocol_reply rp;
                        snprintf(text, sizeof(text), replies[j], lone[i]);
                        reason = NULL;
                        cr_assert_eq(protocol_parse_reply(text, strlen(text), &rp, &reason), -EBADMSG, "accepted %s", text);
                        cr_assert_str_eq(reason, "lone surrogate escape in a string", "%s", text);
                }
        }

        /* Pairs are characters, and U+FFFD is one. */
        json_object *v = read_ok("[\"\\ud834\\udd1e\", \"\\udbff\\udfff\", \"\\ud800\\udc00\", \"\\ufffd\", \"\\uffff\"]");
        cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(v, 0)), "\xf0\x9d\x84\x9e");
        cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(v, 1)), "\xf4\x8f\xbf\xbf");
        cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(v, 2)), "\xf0\x90\x80\x80");
        cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(v, 3)), "\xef\xbf\xbd");
        cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(v, 4)), "\xef\xbf\xbf");
        json_object_put(v);
}

Test(json_reader, nests_as_deep_as_allowed_and_no_deeper) {
        char text[2 * 20 + 1] = "";
        json_object *v = NULL;
        const char *reason;

        for (int i = 0; i < 20; i++)
                text[i] = '[';
        for (int i = 20; i < 40; i++)
                text[i] = ']';
        cr_assert_eq(json_read(text, 40, 20, &v, &reason), 0);
        json_object_put(v);
        v = NULL;
        cr_assert_eq(json_read(text, 40, 19, &v, &reason), -EBADMSG);
        cr_assert_str_eq(reason, "nesting too deep");
}

Test(json_reader, numbers_past_64_bits_become_doubles_that_keep_their_text) {
        static const char *const texts[] = { "18446744073709551616", "-9223372036854775809", "1e400", "0.10" };

        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
                json_object *v = read_ok(texts[i]);
                cr_assert(json_object_is_type(v, json_type_double), "%s", texts[i]);
                char *back = write_json(v);
                cr_assert_str_eq(back, texts[i]);
                free(back);
                json_object_put(v);
        }
}

Test(json_reader, long_strings_with_escapes_anywhere) {
        /* Escapes on both sides of the eight-byte steps, and keys long enough
         * to move the scratch stack while a value is read. */
        for (size_t pos = 0; pos < 40; pos++) {
                char raw[64], text[160];
                for (size_t i = 0; i < sizeof(raw); i++)
                        raw[i] = (char) ('a' + i % 26);
                raw[pos] = '"';
                buffer b = {};
                json_object *s = json_object_new_string_len(raw, sizeof(raw));
                cr_assert_eq(json_write_value(&b, s), 0);
                int n = snprintf(text, sizeof(text), "{%.*s:[%.*s]}", (int) buffer_length(&b), buffer_head(&b),
                                 (int) buffer_length(&b), buffer_head(&b));
                json_object *v = NULL;
                const char *reason;
                cr_assert_eq(json_read(text, (size_t) n, 4, &v, &reason), 0, "%s: %s", text, reason);
                json_object *inner = NULL;
                char key[sizeof(raw) + 1];
                memcpy(key, raw, sizeof(raw));
                key[sizeof(raw)] = 0;
                cr_assert(json_object_object_get_ex(v, key, &inner), "key of %zu", pos);
                cr_assert(json_object_equal(json_object_array_get_idx(inner, 0), s));
                json_object_put(v);
                json_object_put(s);
                buffer_done(&b);
        }
}

/* A value tree from a seed: every type, nested, with awkward strings. */
static json_object *random_value(uint64_t *seed, int depth) {
        static const char *const strings[] = { "", "a", "h\xc3\xa9llo", "q\"b\\s/", "ctl\x01\x1f", "\xf0\x9d\x84\x9e",
                                               "tab\tnl\n", "nul" };
        *seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
        unsigned k = (unsigned) (*seed >> 33);
        switch (depth > 3 ? k % 6 : k % 8) {
        case 0: return NULL;
        case 1: return json_object_new_boolean(!!(k & 64));
        case 2: return json_object_new_int64((int64_t) (*seed >> 1) * (k & 128 ? -1 : 1));
        case 3: return json_object_new_double((double) (k % 100000) / 7.0);
        case 4: return json_object_new_string_len(strings[k % 8], k % 8 == 7 ? 4 : (int) strlen(strings[k % 8]));
        case 5: return json_object_new_uint64(UINT64_MAX - k % 1000);
        case 6: {
                json_object *a = json_object_new_array();
                for (unsigned i = 0; i < k % 5; i++)
                        json_object_array_add(a, random_value(seed, depth + 1));
                return a;
        }
        default: {
                json_object *o = json_object_new_object();
                for (unsigned i = 0; i < k % 5; i++) {
                        char key[16];
                        snprintf(key, sizeof(key), "k%u\xc3\xa9", i);
                        json_object_object_add(o, key, random_value(seed, depth + 1));
                }
                return o;
        }
        }
}

Test(json_reader, reads_back_what_the_writer_and_json_c_write) {
        uint64_t seed = 1;

        for (int i = 0; i < 2000; i++) {
                json_object *v = random_value(&seed, 0), *back = NULL;
                char *ours = write_json(v);
                cr_assert_eq(json_read(ours, strlen(ours), 16, &back, NULL), 0, "%s", ours);
                cr_assert(json_object_equal(v, back), "%s", ours);
                json_object_put(back);
                back = NULL;
                const char *theirs = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
                cr_assert_eq(json_read(theirs, strlen(theirs), 16, &back, NULL), 0, "%s", theirs);
                cr_assert(json_object_equal(v, back), "%s", theirs);
                json_object_put(back);
                free(ours);
                json_object_put(v);
        }
}

typedef struct heap_item {
        heap_node node;
        uint64_t key;
} heap_item;

Test(heap, pops_in_key_order_through_inserts_removals_and_new_keys) {
        enum { N = 500 };
        heap_item items[N];
        heap h = {};
        uint64_t seed = 42;

        for (unsigned i = 0; i < N; i++) {
                seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
                items[i] = (heap_item) { .key = seed >> 40 };
                cr_assert_eq(heap_insert(&h, &items[i].node, items[i].key), 0);
        }
        /* A third leave, a third get new keys (up or down). */
        for (unsigned i = 0; i < N; i += 3)
                heap_remove(&h, &items[i].node);
        for (unsigned i = 1; i < N; i += 3) {
                items[i].key = i % 2 ? items[i].key / 2 : items[i].key * 2;
                heap_set_key(&h, &items[i].node, items[i].key);
        }
        cr_assert_eq(h.n, N - (N + 2) / 3);

        uint64_t last = 0;
        unsigned popped = 0;
        for (heap_node *top; (top = heap_top(&h)); popped++) {
                heap_item *it = heap_entry(top, heap_item, node);
                cr_assert_eq(top->key, it->key);
                cr_assert_geq(it->key, last, "popped in order");
                last = it->key;
                heap_remove(&h, top);
                cr_assert(!heap_node_is_linked(top));
        }
        cr_assert_eq(popped, N - (N + 2) / 3);
        heap_done(&h);
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
        protocol_call c;
        const char *reason;
        const char *good = "{\"method\":\"io.aetask.Worker.hash\",\"parameters\":{\"args\":[\"pw\"]}}";

        cr_assert_eq(protocol_parse_call(good, strlen(good), &c, &reason), 0);
        cr_assert_eq(c.kind, PROTOCOL_CALL_METHOD);
        cr_assert_str_eq(c.method, "hash");
        cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(c.args, 0)), "pw");
        cr_assert_null(c.trace);
        protocol_call_done(&c);

        static const struct {
                const char *message, *reason;
        } bad[] = {
                { "not json", "unexpected character" },
                { "[1,2]", "message is not a JSON object" },
                { "{\"method\":1}", "message has no \"method\" string" },
                { "{\"parameters\":{}}", "message has no \"method\" string" },
                { "{\"a\":1} trailing", "trailing bytes after the JSON value" },
                { "{\"method\":\"x\"", "expected , or } in an object" },
                { "{\"method\":\"io.aetask.Worker.echo\",\"parameters\":[]}", "\"parameters\" is not an object" },
                { "{\"method\":\"io.aetask.Worker.echo\",\"parameters\":{\"args\":{}}}", "\"args\" is not an array" },
                { "{\"method\":\"io.aetask.Worker.echo\",\"parameters\":{\"args\":[1],\"trace\":\"a b\"}}",
                  "\"trace\" is not a valid trace id" },
                { "{\"method\":\"io.aetask.Worker.echo\",\"parameters\":{\"args\":[1],\"trace\":7}}",
                  "\"trace\" is not a valid trace id" },
                { "{\"s\":\"\xff\xfe\"}", "invalid UTF-8" },
                { "{\"method\":\"io.aetask.Worker.echo\",\"parameters\":{\"args\":[NaN]}}", "NaN or Infinity is not JSON" },
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                reason = NULL;
                cr_assert_eq(protocol_parse_call(bad[i].message, strlen(bad[i].message), &c, &reason), -EBADMSG,
                             "accepted: %s", bad[i].message);
                cr_assert_str_eq(reason, bad[i].reason, "%s", bad[i].message);
                cr_assert_null(c.args, "nothing is left to free");
        }

        const char *bad_name = "{\"method\":\"io.aetask.Worker.bad-name\",\"parameters\":{\"args\":[1]}}";
        cr_assert_eq(protocol_parse_call(bad_name, strlen(bad_name), &c, &reason), -ENOENT);
        cr_assert_str_eq(reason, "invalid method name");
        const char *nul_name = "{\"method\":\"io.aetask.Worker.echo\\u0000x\"}";
        cr_assert_eq(protocol_parse_call(nul_name, strlen(nul_name), &c, &reason), -ENOENT);
        const char *unknown = "{\"method\":\"org.example.Other\"}";
        cr_assert_eq(protocol_parse_call(unknown, strlen(unknown), &c, &reason), -ENOENT);
        cr_assert_str_eq(reason, "unknown interface");
}

/* What a stock Varlink client sends: "parameters": null, Varlink's own
 * members, and io.aetask.Worker's methods. */
Test(protocol, reads_the_varlink_forms_of_a_request) {
        protocol_call c;
        const char *reason;
        static const struct {
                const char *message;
                protocol_call_kind kind;
                const char *method;
                size_t n_args;
                bool oneway;
        } good[] = {
                { "{\"method\":\"io.aetask.Worker.echo\",\"parameters\":null}", PROTOCOL_CALL_METHOD, "echo", 0, false },
                { "{\"method\":\"io.aetask.Worker.echo\",\"parameters\":{\"args\":null,\"trace\":null}}",
                  PROTOCOL_CALL_METHOD, "echo", 0, false },
                { "{\"method\":\"io.aetask.Hello\"}", PROTOCOL_CALL_HELLO, NULL, 0, false },
                { "{\"method\":\"io.aetask.Hello\",\"parameters\":null}", PROTOCOL_CALL_HELLO, NULL, 0, false },
                { "{\"parameters\":{\"method\":\"hash\",\"args\":[1,2]},\"method\":\"io.aetask.Call\"}",
                  PROTOCOL_CALL_METHOD, "hash", 2, false },
                { "{\"method\":\"io.aetask.Call\",\"parameters\":{\"method\":\"Hello\"}}",
                  PROTOCOL_CALL_METHOD, "Hello", 0, false },
                { "{\"method\":\"io.aetask.Call\",\"parameters\":{\"method\":null,\"args\":[1]}}",
                  PROTOCOL_CALL_ANONYMOUS, NULL, 1, false },
                { "{\"method\":\"io.aetask.Call\",\"parameters\":{}}", PROTOCOL_CALL_ANONYMOUS, NULL, 0, false },
                { "{\"method\":\"io.aetask.Call\",\"oneway\":true,\"more\":true,\"parameters\":{\"method\":\"x\"}}",
                  PROTOCOL_CALL_METHOD, "x", 0, true },
                { "{\"method\":\"io.aetask.Worker.x\",\"oneway\":false}", PROTOCOL_CALL_METHOD, "x", 0, false },
        };
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                cr_assert_eq(protocol_parse_call(good[i].message, strlen(good[i].message), &c, &reason), 0,
                             "%s: %s", good[i].message, reason);
                cr_assert_eq(c.kind, good[i].kind, "%s", good[i].message);
                if (good[i].method)
                        cr_assert_str_eq(c.method, good[i].method, "%s", good[i].message);
                else
                        cr_assert_null(c.method, "%s", good[i].message);
                cr_assert_eq(c.args ? json_object_array_length(c.args) : 0, good[i].n_args, "%s", good[i].message);
                cr_assert_eq(c.oneway, good[i].oneway, "%s", good[i].message);
                protocol_call_done(&c);
        }

        /* A parameter of the wrong type in Call is Varlink's InvalidParameter. */
        static const struct {
                const char *message, *parameter;
        } invalid[] = {
                { "{\"method\":\"io.aetask.Call\",\"parameters\":{\"method\":1}}", "method" },
                { "{\"method\":\"io.aetask.Call\",\"parameters\":{\"method\":\"a-b\"}}", "method" },
                { "{\"method\":\"io.aetask.Call\",\"parameters\":{\"args\":{}}}", "args" },
                { "{\"method\":\"io.aetask.Call\",\"parameters\":{\"trace\":\"a b\"}}", "trace" },
                { "{\"method\":\"io.aetask.Call\",\"parameters\":[]}", "parameters" },
        };
        for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
                cr_assert_eq(protocol_parse_call(invalid[i].message, strlen(invalid[i].message), &c, &reason), -EINVAL,
                             "%s", invalid[i].message);
                cr_assert_str_eq(reason, invalid[i].parameter, "%s", invalid[i].message);
                cr_assert_null(c.args, "nothing is left to free");
        }

        /* The library asks for the greeting; a handler's method named Call
         * is still called by its name. */
        buffer b = {};
        cr_assert_geq(protocol_append_hello_request(&b), 0);
        cr_assert_eq(protocol_parse_call(buffer_head(&b), buffer_length(&b) - 1, &c, &reason), 0);
        cr_assert_eq(c.kind, PROTOCOL_CALL_HELLO);
        buffer_clear(&b);
        cr_assert_geq(protocol_append_call(&b, "Call", NULL, "t"), 0);
        cr_assert_eq(protocol_parse_call(buffer_head(&b), buffer_length(&b) - 1, &c, &reason), 0, "%s", reason);
        cr_assert_eq(c.kind, PROTOCOL_CALL_METHOD);
        cr_assert_str_eq(c.method, "Call");
        cr_assert(strstr(buffer_head(&b), "io.aetask.Worker.Call"), "%s", buffer_head(&b));
        cr_assert_str_eq(c.trace, "t");
        protocol_call_done(&c);
        buffer_done(&b);
}

Test(protocol, a_call_is_read_in_any_key_order_and_later_keys_win) {
        protocol_call c;
        const char *reason;
        const char *m = "{ \"parameters\" : { \"trace\" : \"t-1\", \"args\" : [1], \"other\" : {\"x\":[]}, \"args\" : [2, 3] },"
                        " \"more\" : true, \"method\" : \"io.aetask.Checkout.Done\","
                        " \"method\" : \"io.aetask.Worker.sel\\u0065ct\" }";

        cr_assert_eq(protocol_parse_call(m, strlen(m), &c, &reason), 0, "%s", reason);
        cr_assert_eq(c.kind, PROTOCOL_CALL_METHOD);
        cr_assert_str_eq(c.method, "select");
        cr_assert_str_eq(c.trace, "t-1");
        cr_assert_eq(json_object_array_length(c.args), 2);
        protocol_call_done(&c);

        const char *anonymous = "{\"method\":\"io.aetask.Checkout.Call\"}";
        cr_assert_eq(protocol_parse_call(anonymous, strlen(anonymous), &c, &reason), 0);
        cr_assert_eq(c.kind, PROTOCOL_CALL_ANONYMOUS);
        cr_assert_null(c.args, "no arguments");
        protocol_call_done(&c);

        /* A later "parameters" replaces the earlier one whole. */
        const char *twice = "{\"method\":\"io.aetask.Checkout.Call\",\"parameters\":{\"args\":[1],\"trace\":\"x\"},"
                            "\"parameters\":{}}";
        cr_assert_eq(protocol_parse_call(twice, strlen(twice), &c, &reason), 0);
        cr_assert_null(c.args);
        cr_assert_null(c.trace);
        protocol_call_done(&c);
}

Test(protocol, parses_replies) {
        static const struct {
                const char *message;
                int r;
                const char *error, *text;   /* the error and message, or the reason */
                bool result, logs, hello;
        } cases[] = {
                { "{\"parameters\":{\"result\":[1,{\"a\":null}],\"logs\":{\"messages\":[]}}}", 0, NULL, NULL, true, true },
                { "{\"parameters\":{\"result\":null}}", 0, NULL, NULL, false, false },
                { "{\"parameters\":{\"logs\":[1]}}", 0, NULL, NULL, false, false },  /* logs we cannot read are dropped */
                { "{\"parameters\":{\"hello\":{\"version\":1}}}", 0, NULL, NULL, false, false, true },
                { "{\"error\":\"io.aetask.HandlerError\",\"parameters\":{\"message\":\"it broke\",\"logs\":{}}}", 0,
                  "io.aetask.HandlerError", "it broke", false, true },
                { "{\"error\":\"io.aetask.HandlerError\",\"parameters\":{\"result\":1,\"message\":7}}", 0,
                  "io.aetask.HandlerError", "", false, false },
                { "{\"error\":\"io.aetask.Retiring\"}", 0, "io.aetask.Retiring", "", false, false },
                { "{\"error\":1,\"parameters\":{}}", -EBADMSG, NULL, "\"error\" is not a string" },
                { "{\"parameters\":1}", -EBADMSG, NULL, "\"parameters\" is not an object" },
                { "{\"result\":1}", -EBADMSG, NULL, "reply has neither \"parameters\" nor \"error\"" },
                { "{\"parameters\":{\"result\":[1,]}}", -EBADMSG, NULL, "unexpected character" },
                { "\"just a string\"", -EBADMSG, NULL, "message is not a JSON object" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                protocol_reply reply;
                const char *reason = NULL;
                int r = protocol_parse_reply(cases[i].message, strlen(cases[i].message), &reply, &reason);
                cr_assert_eq(r, cases[i].r, "%s: %s", cases[i].message, reason);
                if (r < 0) {
                        cr_assert_str_eq(reason, cases[i].text, "%s", cases[i].message);
                        cr_assert(!reply.result && !reply.logs && !reply.error_value && !reply.message_value);
                        continue;
                }
                if (cases[i].error) {
                        cr_assert_str_eq(reply.error, cases[i].error);
                        cr_assert_str_eq(reply.message, cases[i].text);
                } else
                        cr_assert_null(reply.error);
                cr_assert_eq(!!reply.result, cases[i].result, "%s", cases[i].message);
                cr_assert_eq(!!reply.logs, cases[i].logs, "%s", cases[i].message);
                cr_assert_eq(reply.hello, cases[i].hello, "%s", cases[i].message);
                protocol_reply_done(&reply);
        }
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

/* Numbers from command lines: nothing wraps, nothing odd gets through. */
Test(parse_number, integers_are_digits_in_range) {
        static const char *const invalid[] = { "", "-1", "+5", " 5", "5 ", "0x10", "1e3", "five", NULL };
        uint64_t v = 7;

        cr_assert_eq(parse_uint64("64", 64, 1024, &v), 0);
        cr_assert_eq(v, 64);
        cr_assert_eq(parse_uint64("18446744073709551615", 0, UINT64_MAX, &v), 0);
        cr_assert_eq(v, UINT64_MAX);
        cr_assert_eq(parse_uint64("18446744073709551615", 64, 1U << 30, &v), -ERANGE);
        cr_assert_eq(parse_uint64("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
        cr_assert_eq(parse_uint64("63", 64, 1024, &v), -ERANGE);
        for (size_t i = 0; invalid[i]; i++)
                cr_assert_eq(parse_uint64(invalid[i], 0, UINT64_MAX, &v), -EINVAL, "%s", invalid[i]);
        cr_assert_eq(v, UINT64_MAX, "untouched on failure");
}

Test(parse_number, seconds_are_finite_and_in_range) {
        static const char *const invalid[] = { "", ".", "nan", "inf", "-1", "1e3", "0x10", "1..2", "1.2.3",
                                               " 1", "1s", NULL };
        uint64_t usec = 7;

        cr_assert_eq(parse_seconds("0.5", 10, &usec), 0);
        cr_assert_eq(usec, 500000);
        cr_assert_eq(parse_seconds(".25", 10, &usec), 0);
        cr_assert_eq(usec, 250000);
        cr_assert_eq(parse_seconds("3.", 10, &usec), 0);
        cr_assert_eq(usec, 3000000);
        cr_assert_eq(parse_seconds("10.000001", 10, &usec), -ERANGE);
        cr_assert_eq(parse_seconds("99999999999999999999999", 1000000000, &usec), -ERANGE);
        for (size_t i = 0; invalid[i]; i++)
                cr_assert_eq(parse_seconds(invalid[i], 1000000000, &usec), -EINVAL, "%s", invalid[i]);
        cr_assert_eq(usec, 3000000, "untouched on failure");
}

Test(protocol, a_call_carries_its_timeout) {
        static const struct {
                const char *timeout;
                uint64_t expected;
        } cases[] = {
                { "200000", 200000 }, { " 7 ", 7 }, { "0", 0 }, { "-5", 0 }, { "1.5", 0 }, { "1e6", 0 },
                { "\"9\"", 0 }, { "null", 0 }, { "[1]", 0 }, { "1234567890123456789", 0 },
        };
        char text[256];
        const char *reason;
        protocol_call c;
        buffer b = {};

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                snprintf(text, sizeof(text), "{\"method\":\"io.aetask.Worker.x\",\"parameters\":{\"timeout_usec\":%s}}",
                         cases[i].timeout);
                cr_assert_eq(protocol_parse_call(text, strlen(text), &c, &reason), 0, "%s", text);
                cr_assert_eq(c.timeout_usec, cases[i].expected, "%s", text);
                protocol_call_done(&c);
        }

        /* What the client adds at send time to a call made earlier. */
        cr_assert_eq(protocol_append_call(&b, "x", NULL, "t-1"), 0);
        buffer scratch = {};
        char suffix[PROTOCOL_TIMEOUT_SUFFIX_MAX];
        size_t keep;
        int n = protocol_call_timeout_suffix(buffer_head(&b), buffer_length(&b), 1500, suffix, &keep);
        cr_assert_gt(n, 0);
        cr_assert_eq(buffer_append(&scratch, buffer_head(&b), keep), 0);
        cr_assert_eq(buffer_append(&scratch, suffix, (size_t) n), 0);
        n = protocol_call_timeout_suffix(buffer_head(&b), buffer_length(&b), UINT64_MAX, suffix, &keep);
        cr_assert_eq((size_t) n, strlen(",\"timeout_usec\":18446744073709551615}}") + 1, "the largest fits");
        cr_assert_eq(protocol_call_timeout_suffix("{}", 3, 1, suffix, &keep), -EINVAL);
        cr_assert_str_eq(buffer_head(&scratch),
                         "{\"method\":\"io.aetask.Worker.x\",\"parameters\":{\"args\":[],\"trace\":\"t-1\",\"timeout_usec\":1500}}");
        cr_assert_eq(buffer_length(&scratch), strlen(buffer_head(&scratch)) + 1);
        cr_assert_eq(protocol_parse_call(buffer_head(&scratch), buffer_length(&scratch) - 1, &c, &reason), 0);
        cr_assert_eq(c.timeout_usec, 1500);
        protocol_call_done(&c);
        buffer_done(&b);
        buffer_done(&scratch);
}

Test(json_out, writes_members_and_elements_with_their_commas) {
        buffer b = {};
        buffer_append_str(&b, "before");
        json_out o = json_out_start(&b);

        json_out_open(&o, NULL, '{');
        json_out_int(&o, "pid", -1);
        json_out_u64(&o, "max", UINT64_MAX);
        json_out_bool(&o, "draining", false);
        json_out_text(&o, "name", "a\"b\xff");
        json_out_open(&o, "list", '[');
        json_out_open(&o, NULL, '{');
        json_out_close(&o);
        json_out_u64(&o, NULL, 7);
        json_out_close(&o);
        json_out_open(&o, "empty", '[');
        json_out_close(&o);
        json_out_close(&o);
        cr_assert_eq(json_out_finish(&o), 0);
        buffer_append(&b, "", 1);
        cr_assert_str_eq(buffer_head(&b), "before{\"pid\":-1,\"max\":18446744073709551615,\"draining\":false,"
                                          "\"name\":\"a\\\"b\xef\xbf\xbd\",\"list\":[{},7],\"empty\":[]}");
        buffer_done(&b);
}

Test(json_out, takes_back_a_message_that_failed) {
        buffer b = {};
        buffer_append_str(&b, "kept");
        json_out o = json_out_start(&b);

        for (int i = 0; i <= JSON_OUT_DEPTH_MAX; i++)
                json_out_open(&o, NULL, '[');
        json_out_u64(&o, NULL, 1);  /* ignored after the error */
        cr_assert_eq(json_out_finish(&o), -ELOOP);
        cr_assert_eq(buffer_length(&b), 4);

        o = json_out_start(&b);
        json_out_open(&o, NULL, '{');
        cr_assert_eq(json_out_finish(&o), -EINVAL, "an object left open is a bug, not a message");
        cr_assert_eq(buffer_length(&b), 4);
        buffer_done(&b);
}
