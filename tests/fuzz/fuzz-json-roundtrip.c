/* Fuzz target: arguments and results, decoded and encoded again.  A message
 * that parses must write back (json_write_value) to JSON that parses to an
 * equal value; a call's arguments must survive protocol_append_call() and
 * protocol_parse_call(), and a result protocol_append_reply() and
 * protocol_parse_reply(), unchanged.  Our JSON reader is also checked
 * against json-c's tokener on every input. */
#include <json-c/json_object_iterator.h>
#include <string.h>

#include "fuzz.h"
#include "json-reader.h"
#include "json-writer.h"
#include "macro.h"
#include "protocol.h"
#include "utf8.h"

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

static void check_call(const char *s, size_t len) {
        protocol_call c, c2;
        protocol_reply reply;
        const char *reason;
        buffer b = {};

        if (protocol_parse_call(s, len, &c, &reason) < 0)
                return;
        if (c.kind == PROTOCOL_CALL_DONE) {
                protocol_call_done(&c);
                return;
        }
        /* The client would build this call from these arguments. */
        fuzz_assert(protocol_append_call(&b, c.kind == PROTOCOL_CALL_METHOD ? c.method : NULL, c.args, c.trace) == 0 ||
                    depth(c.args) > JSON_MAX_DEPTH);
        if (buffer_length(&b) == 0) {
                buffer_done(&b);
                protocol_call_done(&c);
                return;
        }
        fuzz_assert(protocol_parse_call(buffer_head(&b), buffer_length(&b) - 1, &c2, &reason) == 0);
        fuzz_assert(c2.kind == c.kind);
        fuzz_assert(c.kind != PROTOCOL_CALL_METHOD || strcmp(c.method, c2.method) == 0);
        fuzz_assert(!c.trace == !c2.trace && (!c.trace || strcmp(c.trace, c2.trace) == 0));
        fuzz_assert(c.args ? json_object_equal(c.args, c2.args) : json_object_array_length(c2.args) == 0);
        protocol_call_done(&c2);
        buffer_clear(&b);

        /* A worker returning the arguments as its result. */
        fuzz_assert(protocol_append_reply(&b, c.args, NULL) == 0);
        fuzz_assert(protocol_parse_reply(buffer_head(&b), buffer_length(&b) - 1, &reply, &reason) == 0);
        fuzz_assert(!reply.error);
        fuzz_assert(c.args ? json_object_equal(c.args, reply.result) : json_object_is_type(reply.result, json_type_null));
        protocol_reply_done(&reply);
        protocol_call_done(&c);
        buffer_done(&b);
}

/* S without the characters that surrogate pairs may decode to, in json-c:
 * four-byte sequences and U+FFFD.  (Ours refuses a lone surrogate escape,
 * which json-c reads as U+FFFD; what it accepts has pairs only.) */
static size_t strip_surrogate_results(const char *s, size_t len, char *out) {
        size_t n = 0;
        for (size_t i = 0; i < len;) {
                unsigned char c = (unsigned char) s[i];
                if (c >= 0xf0 && i + 4 <= len) {
                        i += 4;
                        continue;
                }
                if (i + 3 <= len && memcmp(s + i, "\xef\xbf\xbd", 3) == 0) {
                        i += 3;
                        continue;
                }
                out[n++] = s[i++];
        }
        return n;
}

static bool same_but_for_surrogates(const char *a, size_t alen, const char *b, size_t blen) {
        char *x = malloc(alen + 1), *y = malloc(blen + 1);
        fuzz_assert(x && y);
        size_t xn = strip_surrogate_results(a, alen, x), yn = strip_surrogate_results(b, blen, y);
        bool same = xn == yn && memcmp(x, y, xn) == 0;
        free(x);
        free(y);
        return same;
}

/* Whether two numbers read from the same text agree: json-c saturates
 * integers past 64 bits, where our reader keeps them as doubles. */
/* Whether a key of O holds a character past U+FFFF, which in JSON text
 * only a surrogate pair (or its UTF-8) can give. */
static bool has_key_from_surrogates(json_object *o) {
        json_object_object_foreach(o, key, value) {
                (void) value;
                for (const unsigned char *p = (const unsigned char *) key; *p; p++)
                        if (*p >= 0xf0)
                                return true;
        }
        return false;
}

static bool same_value(json_object *ours, json_object *theirs) {
        json_type t = json_object_get_type(ours);

        if (t == json_type_double && json_object_is_type(theirs, json_type_int)) {
                int64_t i = json_object_get_int64(theirs);
                return i == INT64_MAX || i == INT64_MIN ||
                       json_object_get_uint64(theirs) == UINT64_MAX ||
                       json_object_get_double(ours) == json_object_get_double(theirs);
        }
        if (t != json_object_get_type(theirs))
                return false;
        if (t == json_type_array) {
                size_t n = json_object_array_length(ours);
                if (n != json_object_array_length(theirs))
                        return false;
                for (size_t i = 0; i < n; i++)
                        if (!same_value(json_object_array_get_idx(ours, i), json_object_array_get_idx(theirs, i)))
                                return false;
                return true;
        }
        if (t == json_type_object) {
                /* json-c's surrogate bug (below) can turn two keys we tell
                 * apart into one ("\ud976\uddda..." and "\ud976\udd9a..."
                 * both to U+FFFD...), and then its duplicate-key rule moves
                 * and drops members: such an object cannot be compared. */
                if (has_key_from_surrogates(ours))
                        return true;
                if (json_object_object_length(ours) != json_object_object_length(theirs))
                        return false;
                /* Side by side, in order: a key may hold a surrogate pair
                 * json-c decodes differently (see below). */
                struct json_object_iterator i = json_object_iter_begin(ours), i_end = json_object_iter_end(ours);
                struct json_object_iterator j = json_object_iter_begin(theirs);
                for (; !json_object_iter_equal(&i, &i_end); json_object_iter_next(&i), json_object_iter_next(&j)) {
                        const char *a = json_object_iter_peek_name(&i), *b = json_object_iter_peek_name(&j);
                        if ((strcmp(a, b) != 0 && !same_but_for_surrogates(a, strlen(a), b, strlen(b))) ||
                            !same_value(json_object_iter_peek_value(&i), json_object_iter_peek_value(&j)))
                                return false;
                }
                return true;
        }
        if (t == json_type_string && !json_object_equal(ours, theirs))
                /* json-c 0.16 decodes some surrogate pairs wrongly: it turns
                 * "\ud976\uddda" (U+6D9DA, as Python reads it too) into
                 * U+FFFD, and "\ud836\uddd6\uddda" into U+859DA.  What
                 * surrogates gave (characters past U+FFFF, and U+FFFD) is
                 * left out of the comparison; the rest must be equal. */
                return utf8_is_valid(json_object_get_string(ours), (size_t) json_object_get_string_len(ours)) &&
                       same_but_for_surrogates(json_object_get_string(ours), (size_t) json_object_get_string_len(ours),
                                               json_object_get_string(theirs), (size_t) json_object_get_string_len(theirs));
        return json_object_equal(ours, theirs);
}

/* Our JSON reader against json-c's: what ours accepts (strict RFC 8259)
 * json-c reads too, to the same value.  json-c also reads things that are
 * not JSON (NaN, "1.", raw tabs in strings), which ours refuses. */
static void check_against_json_c(const char *s, size_t len) {
        json_object *ours = NULL, *theirs = NULL;
        const char *reason;

        if (!utf8_is_valid(s, len) || json_read(s, len, JSON_MAX_DEPTH, &ours, &reason) < 0)
                return;

        /* Inside [...], so json-c sees where a number at the end ends. */
        char *wrapped = malloc(len + 2);
        fuzz_assert(wrapped);
        wrapped[0] = '[';
        memcpy(wrapped + 1, s, len);
        wrapped[len + 1] = ']';
        json_tokener *tok = json_tokener_new_ex(JSON_MAX_DEPTH + 8);  /* ours is the limit under test */
        fuzz_assert(tok);
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        json_object *array = json_tokener_parse_ex(tok, wrapped, (int) len + 2);
        if (!array || json_tokener_get_parse_end(tok) != len + 2 || json_object_array_length(array) != 1) {
                fprintf(stderr, "our reader accepts what json-c does not (%s): %.*s\n",
                        json_tokener_error_desc(json_tokener_get_error(tok)), (int) len, s);
                abort();
        }
        theirs = json_object_array_get_idx(array, 0);
        if (!same_value(ours, theirs)) {
                fprintf(stderr, "our reader read %s, json-c %s\n",
                        json_object_to_json_string(ours), json_object_to_json_string(theirs));
                abort();
        }
        json_object_put(array);
        json_tokener_free(tok);
        free(wrapped);
        json_object_put(ours);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_object *m = NULL;
        const char *reason;

        check_against_json_c((const char *) data, size);
        if (protocol_parse_message((const char *) data, size, &m, &reason) < 0)
                return 0;
        json_object_put(round_trip(m));
        json_object_put(m);
        check_call((const char *) data, size);
        return 0;
}
