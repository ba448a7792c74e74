/* Building and taking apart the messages of aetask-protocol(7). */
#include "protocol.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "json-reader.h"
#include "json-writer.h"
#include "macro.h"
#include "utf8.h"

static bool is_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Whether the N bytes at S are a method name (no NUL among them). */
static bool method_name_is_valid(const char *s, size_t n) {
        if (n == 0 || n > PROTOCOL_METHOD_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_alnum(s[i]) && s[i] != '_')
                        return false;
        return true;
}

static bool trace_is_valid(const char *s, size_t n) {
        if (n == 0 || n > PROTOCOL_TRACE_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_alnum(s[i]) && !strchr("-_.:", s[i]))
                        return false;
        return true;
}

bool protocol_method_name_is_valid(const char *name) {
        return name && method_name_is_valid(name, strnlen(name, PROTOCOL_METHOD_NAME_MAX + 1));
}

bool protocol_trace_is_valid(const char *trace) {
        return trace && trace_is_valid(trace, strnlen(trace, PROTOCOL_TRACE_MAX + 1));
}

/* Every error name a reply can carry, and what each means to a client: the
 * one place the vocabulary is mapped. */
static const struct {
        const char *name;
        aetask_error_kind call_kind;   /* as the answer to a call; 0: not a call's outcome */
        bool refusal;                  /* the server turning the connection away */
} error_table[_PROTOCOL_ERROR_ID_MAX] = {
        [PROTOCOL_ERROR_ID_HANDLER] = { PROTOCOL_ERROR_HANDLER, AETASK_ERROR_HANDLER, false },
        [PROTOCOL_ERROR_ID_SETUP] = { PROTOCOL_ERROR_SETUP, AETASK_ERROR_SETUP, false },
        [PROTOCOL_ERROR_ID_METHOD_NOT_FOUND] = { PROTOCOL_ERROR_METHOD_NOT_FOUND, AETASK_ERROR_HANDLER, false },
        [PROTOCOL_ERROR_ID_INVALID_MESSAGE] = { PROTOCOL_ERROR_INVALID_MESSAGE, 0, false },
        [PROTOCOL_ERROR_ID_MESSAGE_TOO_LARGE] = { PROTOCOL_ERROR_MESSAGE_TOO_LARGE, 0, false },
        [PROTOCOL_ERROR_ID_SERVER_BUSY] = { PROTOCOL_ERROR_SERVER_BUSY, AETASK_ERROR_REFUSED, true },
        [PROTOCOL_ERROR_ID_RETIRING] = { PROTOCOL_ERROR_RETIRING, 0, false },
        [PROTOCOL_ERROR_ID_PERMISSION_DENIED] = { PROTOCOL_ERROR_PERMISSION_DENIED, 0, true },
        [PROTOCOL_ERROR_ID_DEADLINE] = { PROTOCOL_ERROR_DEADLINE, AETASK_ERROR_DEADLINE, false },
};

protocol_error_id protocol_error_id_from_name(const char *name) {
        if (name)
                for (protocol_error_id id = 1; id < _PROTOCOL_ERROR_ID_MAX; id++)
                        if (strcmp(name, error_table[id].name) == 0)
                                return id;
        return PROTOCOL_ERROR_ID_UNKNOWN;
}

aetask_error_kind protocol_error_call_kind(protocol_error_id id) {
        return (unsigned) id < _PROTOCOL_ERROR_ID_MAX ? error_table[id].call_kind : 0;
}

bool protocol_error_is_refusal(protocol_error_id id) {
        return (unsigned) id < _PROTOCOL_ERROR_ID_MAX && error_table[id].refusal;
}

/* A value may be nested JSON_MAX_DEPTH deep, and it sits at most four levels
 * down: {"parameters":{"logs":{"data":{...}}}}, or the
 * {"parameters":{"args":[...]}} of a call. */
#define MESSAGE_MAX_DEPTH (JSON_MAX_DEPTH + 5)

int protocol_parse_message(const char *s, size_t len, json_object **ret, const char **ret_reason) {
        json_object *m = NULL;
        int r;

        /* Checked apart from the parse: eight bytes at a time, and strictly
         * (json-c's own check let overlong forms and surrogates through). */
        if (!utf8_is_valid(s, len)) {
                *ret_reason = "invalid UTF-8";
                return -EBADMSG;
        }
        r = json_read(s, len, MESSAGE_MAX_DEPTH, &m, ret_reason);
        if (r < 0)
                return r;
        if (!json_object_is_type(m, json_type_object)) {
                json_object_put(m);
                *ret_reason = "message is not a JSON object";
                return -EBADMSG;
        }
        *ret = m;
        return 0;
}

static int finish(buffer *b, size_t saved, int r) {
        if (r >= 0)
                r = buffer_append(b, "}\0", 2);
        if (r < 0)
                b->end = b->start + saved;
        return r;
}

/* Appends "trace":"ID" (a valid trace id needs no escaping), after a comma
 * when it follows another member. */
static int append_trace(buffer *b, const char *trace, bool comma) {
        int r;

        if (!trace)
                return 0;
        r = buffer_append_str(b, comma ? ",\"trace\":\"" : "\"trace\":\"");
        if (r >= 0)
                r = buffer_append_str(b, trace);
        return r < 0 ? r : buffer_append(b, "\"", 1);
}

/* LOGS is JSON text already, written by the worker as it logged. */
static int append_logs(buffer *b, const char *logs) {
        int r;

        if (!logs)
                return 0;
        r = buffer_append_str(b, ",\"logs\":");
        return r < 0 ? r : buffer_append_str(b, logs);
}

int protocol_append_call(buffer *b, const char *method, json_object *args, const char *trace) {
        size_t saved = buffer_length(b);
        int r;

        if (method) {
                r = buffer_append_str(b, "{\"method\":\"" PROTOCOL_WORKER_PREFIX);
                if (r >= 0)
                        r = buffer_append_str(b, method);
                if (r >= 0)
                        r = buffer_append_str(b, "\",\"parameters\":{\"args\":");
        } else
                r = buffer_append_str(b, "{\"method\":\"" PROTOCOL_METHOD_CALL "\",\"parameters\":{\"args\":");
        if (r >= 0)
                r = args ? json_write_value(b, args) : buffer_append_str(b, "[]");
        if (r >= 0)
                r = append_trace(b, trace, true);
        if (r >= 0)
                r = buffer_append(b, "}", 1);
        return finish(b, saved, r);
}

int protocol_call_timeout_suffix(const char *message, size_t size, uint64_t usec,
                                 char suffix[static PROTOCOL_TIMEOUT_SUFFIX_MAX], size_t *ret_keep) {
        /* The message ends with the parameters' and its own "}", and a NUL. */
        if (size < 3 || memcmp(message + size - 3, "}}", 3) != 0)
                return -EINVAL;
        int n = snprintf(suffix, PROTOCOL_TIMEOUT_SUFFIX_MAX, ",\"timeout_usec\":%llu}}", (unsigned long long) usec);
        *ret_keep = size - 3;
        return n + 1;  /* the NUL too */
}

int protocol_append_done(buffer *b, const char *trace) {
        size_t saved = buffer_length(b);
        int r;

        r = buffer_append_str(b, "{\"method\":\"" PROTOCOL_METHOD_DONE "\",\"parameters\":{");
        if (r >= 0)
                r = append_trace(b, trace, false);
        if (r >= 0)
                r = buffer_append(b, "}", 1);
        return finish(b, saved, r);
}

int protocol_append_hello_request(buffer *b) {
        static const char request[] = "{\"method\":\"" PROTOCOL_METHOD_HELLO "\"}";
        return buffer_append(b, request, sizeof(request));  /* the NUL too */
}

int protocol_append_hello(buffer *b, unsigned number, int pid) {
        char text[128];
        int n = snprintf(text, sizeof(text),
                         "{\"parameters\":{\"hello\":{\"version\":%d,\"worker\":%u,\"pid\":%d}}}",
                         PROTOCOL_VERSION, number, pid);
        return buffer_append(b, text, (size_t) n + 1);
}

int protocol_append_reply(buffer *b, json_object *result, const char *logs) {
        size_t saved = buffer_length(b);
        int r;

        r = buffer_append_str(b, "{\"parameters\":{\"result\":");
        if (r >= 0)
                r = json_write_value(b, result);
        if (r >= 0)
                r = append_logs(b, logs);
        if (r >= 0)
                r = buffer_append(b, "}", 1);
        return finish(b, saved, r);
}

int protocol_append_error(buffer *b, const char *error, const char *message, const char *logs) {
        size_t saved = buffer_length(b);
        int r;

        r = buffer_append_str(b, "{\"error\":");
        if (r >= 0)
                r = json_write_string(b, error, strlen(error));
        if (r >= 0)
                r = buffer_append_str(b, ",\"parameters\":{\"message\":");
        if (r >= 0)
                /* A message is for people: a stray byte in it is no reason
                 * to lose the error. */
                r = json_write_text(b, message, strlen(message));
        if (r >= 0)
                r = append_logs(b, logs);
        if (r >= 0)
                r = buffer_append(b, "}", 1);
        return finish(b, saved, r);
}

static void put_and_clear(json_object **p) {
        json_object_put(*p);
        *p = NULL;
}

/* The parts of a call message, as they were found. */
typedef struct call_parts {
        bool method_seen, method_is_string, parameters_bad, args_bad, trace_bad;
        enum { INTERFACE_UNKNOWN, INTERFACE_BAD_NAME, INTERFACE_KNOWN } interface;
        /* io.aetask.Call names the handler's method in its parameters */
        bool varlink_call, call_method_bad;
        char call_method[PROTOCOL_METHOD_NAME_MAX + 1];  /* "": none, the catch-all */
} call_parts;

static bool span_equals(const char *s, size_t n, const char *literal) {
        return n == strlen(literal) && memcmp(s, literal, n) == 0;
}

static int read_method(json_reader *r, protocol_call *call, call_parts *parts) {
        static const size_t prefix = sizeof(PROTOCOL_WORKER_PREFIX) - 1;
        const char *s;
        size_t n;
        int e;

        parts->method_seen = true;
        parts->method_is_string = json_reader_next_is(r, '"');
        if (!parts->method_is_string)
                return json_reader_skip(r);
        e = json_reader_string(r, &s, &n);
        if (e < 0)
                return e;

        parts->interface = INTERFACE_KNOWN;
        parts->varlink_call = false;
        call->method = NULL;
        if (span_equals(s, n, PROTOCOL_METHOD_HELLO))
                call->kind = PROTOCOL_CALL_HELLO;
        else if (span_equals(s, n, PROTOCOL_METHOD_VARLINK_CALL))
                parts->varlink_call = true;  /* its kind comes with its parameters */
        else if (n >= prefix && memcmp(s, PROTOCOL_WORKER_PREFIX, prefix) == 0) {
                if (!method_name_is_valid(s + prefix, n - prefix)) {
                        parts->interface = INTERFACE_BAD_NAME;
                        return 0;
                }
                call->kind = PROTOCOL_CALL_METHOD;
                memcpy(call->method_name, s + prefix, n - prefix);
                call->method_name[n - prefix] = 0;
                call->method = call->method_name;
        } else if (span_equals(s, n, PROTOCOL_METHOD_CALL))
                call->kind = PROTOCOL_CALL_ANONYMOUS;
        else if (span_equals(s, n, PROTOCOL_METHOD_DONE))
                call->kind = PROTOCOL_CALL_DONE;
        else
                parts->interface = INTERFACE_UNKNOWN;
        return 0;
}

/* The positive integer in [P, END) (whitespace around it), or 0. */
static bool is_space(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static uint64_t parse_timeout(const char *p, const char *end) {
        uint64_t v = 0;
        unsigned digits = 0;

        while (p < end && is_space(*p))
                p++;
        for (; p < end && *p >= '0' && *p <= '9'; p++, digits++)
                v = v * 10 + (uint64_t) (*p - '0');
        while (p < end && is_space(*p))
                p++;
        return p == end && digits > 0 && digits <= 18 ? v : 0;
}

/* The "method" parameter of io.aetask.Call: a handler method's name,
 * or null (or none) for the catch-all. */
static int read_call_method(json_reader *r, call_parts *parts) {
        const char *s;
        size_t n;
        int e;

        parts->call_method[0] = 0;
        parts->call_method_bad = !json_reader_next_is(r, '"') && !json_reader_next_is(r, 'n');
        if (!json_reader_next_is(r, '"'))
                return json_reader_skip(r);
        e = json_reader_string(r, &s, &n);
        if (e < 0)
                return e;
        parts->call_method_bad = !method_name_is_valid(s, n);
        if (!parts->call_method_bad) {
                memcpy(parts->call_method, s, n);
                parts->call_method[n] = 0;
        }
        return 0;
}

static int read_call_parameters(json_reader *r, protocol_call *call, call_parts *parts) {
        const char *key;
        size_t key_len;
        int e;

        /* A later "parameters" replaces an earlier one, as a later key does. */
        put_and_clear(&call->args);
        call->trace = NULL;
        call->timeout_usec = 0;
        parts->parameters_bad = parts->args_bad = parts->trace_bad = parts->call_method_bad = false;
        parts->call_method[0] = 0;
        /* Varlink clients send null for no parameters. */
        if (json_reader_next_is(r, 'n'))
                return json_reader_skip(r);
        if (!json_reader_next_is(r, '{')) {
                parts->parameters_bad = true;
                return json_reader_skip(r);
        }

        e = json_reader_object_begin(r);
        for (unsigned i = 0; e >= 0 && (e = json_reader_object_next(r, &i, &key, &key_len)) > 0;) {
                if (json_key_is(key, key_len, "args")) {
                        put_and_clear(&call->args);
                        e = json_reader_value(r, &call->args);
                        /* null (json-c's NULL) is no arguments */
                        parts->args_bad = e >= 0 && call->args && !json_object_is_type(call->args, json_type_array);
                } else if (json_key_is(key, key_len, "trace")) {
                        const char *s;
                        size_t n;
                        call->trace = NULL;
                        parts->trace_bad = !json_reader_next_is(r, '"') && !json_reader_next_is(r, 'n');
                        if (!json_reader_next_is(r, '"'))
                                e = json_reader_skip(r);
                        else if ((e = json_reader_string(r, &s, &n)) >= 0) {
                                parts->trace_bad = !trace_is_valid(s, n);
                                if (!parts->trace_bad) {
                                        memcpy(call->trace_id, s, n);
                                        call->trace_id[n] = 0;
                                        call->trace = call->trace_id;
                                }
                        }
                } else if (json_key_is(key, key_len, "timeout_usec")) {
                        /* Advisory: anything but a positive integer means
                         * none.  Read from the skipped text: every call has
                         * one, and a json-c value per call is not free. */
                        const char *start = r->p;
                        e = json_reader_skip(r);
                        call->timeout_usec = e >= 0 ? parse_timeout(start, r->p) : 0;
                } else if (json_key_is(key, key_len, "method"))
                        e = read_call_method(r, parts);
                else
                        e = json_reader_skip(r);
        }
        return e;
}

/* io.aetask.Call is a Varlink method: a parameter of the wrong type
 * is Varlink's InvalidParameter (-EINVAL, the parameter's name in
 * *RET_REASON), and the connection stays open.  Otherwise it is the call it
 * names. */
static int check_varlink_call(protocol_call *call, const call_parts *parts, const char **ret_reason) {
        *ret_reason = parts->parameters_bad ? "parameters" :
                      parts->call_method_bad ? "method" :
                      parts->args_bad ? "args" :
                      parts->trace_bad ? "trace" : NULL;
        if (*ret_reason)
                return -EINVAL;
        call->kind = parts->call_method[0] ? PROTOCOL_CALL_METHOD : PROTOCOL_CALL_ANONYMOUS;
        if (call->kind == PROTOCOL_CALL_METHOD) {
                memcpy(call->method_name, parts->call_method, sizeof(call->method_name));
                call->method = call->method_name;
        }
        return 0;
}

/* The checks of a call message, in the order they are reported. */
static int check_call(protocol_call *call, const call_parts *parts, const char **ret_reason) {
        if (!parts->method_seen || !parts->method_is_string) {
                *ret_reason = "message has no \"method\" string";
                return -EBADMSG;
        }
        if (parts->varlink_call)
                return check_varlink_call(call, parts, ret_reason);
        if (parts->parameters_bad) {
                *ret_reason = "\"parameters\" is not an object";
                return -EBADMSG;
        }
        if (parts->args_bad) {
                *ret_reason = "\"args\" is not an array";
                return -EBADMSG;
        }
        if (parts->trace_bad) {
                *ret_reason = "\"trace\" is not a valid trace id";
                return -EBADMSG;
        }
        if (parts->interface == INTERFACE_BAD_NAME) {
                *ret_reason = "invalid method name";
                return -ENOENT;
        }
        if (parts->interface == INTERFACE_UNKNOWN) {
                *ret_reason = "unknown interface";
                return -ENOENT;
        }
        return 0;
}

/* Opens the message's object, or says why not. */
static int begin_message(json_reader *r, const char *s, size_t len, const char **ret_reason) {
        /* Checked apart from the parse: eight bytes at a time, and strictly. */
        if (!utf8_is_valid(s, len)) {
                *ret_reason = "invalid UTF-8";
                return -EBADMSG;
        }
        json_reader_init(r, s, len, MESSAGE_MAX_DEPTH);
        if (!json_reader_next_is(r, '{')) {
                /* Say what is wrong with it, if it is not JSON at all. */
                int e = json_reader_skip(r);
                *ret_reason = e < 0 ? r->error : "message is not a JSON object";
                json_reader_done(r);
                return -EBADMSG;
        }
        return json_reader_object_begin(r);
}

/* Closes the message: nothing may follow its object. */
static int end_message(json_reader *r, int e, const char **ret_reason) {
        if (e >= 0)
                e = json_reader_end(r);
        if (e == -EBADMSG)
                *ret_reason = r->error;
        else if (e < 0)
                *ret_reason = "out of memory";
        json_reader_done(r);
        return e;
}

/* Reads one member of a message's envelope: the value at R under KEY. */
typedef int (*envelope_member_t)(json_reader *r, const char *key, size_t key_len, void *userdata);

/* Walks the envelope of the message of LEN bytes at S: each member of its
 * object goes to READ_MEMBER, nothing may follow it.  The one walk of calls
 * and replies alike. */
static int walk_envelope(const char *s, size_t len, envelope_member_t read_member, void *userdata,
                         const char **ret_reason) {
        json_reader r;
        const char *key;
        size_t key_len;
        int e;

        e = begin_message(&r, s, len, ret_reason);
        if (e < 0)
                return e;
        for (unsigned i = 0; e >= 0 && (e = json_reader_object_next(&r, &i, &key, &key_len)) > 0;)
                e = read_member(&r, key, key_len, userdata);
        return end_message(&r, e, ret_reason);
}

typedef struct call_walk {
        protocol_call *call;
        call_parts parts;
} call_walk;

static int read_call_member(json_reader *r, const char *key, size_t key_len, void *userdata) {
        call_walk *w = userdata;

        if (json_key_is(key, key_len, "method"))
                return read_method(r, w->call, &w->parts);
        if (json_key_is(key, key_len, "parameters"))
                return read_call_parameters(r, w->call, &w->parts);
        if (json_key_is(key, key_len, "oneway"))
                w->call->oneway = json_reader_next_is(r, 't');
        return json_reader_skip(r);
}

int protocol_parse_call(const char *s, size_t len, protocol_call *ret, const char **ret_reason) {
        call_walk w = { .call = ret };
        int e;

        *ret = (protocol_call) {};
        e = walk_envelope(s, len, read_call_member, &w, ret_reason);
        if (e >= 0)
                e = check_call(ret, &w.parts, ret_reason);
        if (e < 0)
                protocol_call_done(ret);
        return e;
}

void protocol_call_done(protocol_call *call) {
        put_and_clear(&call->args);
}

/* The parts of a reply message, as they were found. */
typedef struct reply_parts {
        bool parameters_seen, parameters_bad, error_seen, error_bad;
} reply_parts;

static int read_reply_parameters(json_reader *r, protocol_reply *reply, reply_parts *parts) {
        const char *key;
        size_t key_len;
        int e;

        /* A later "parameters" replaces an earlier one. */
        put_and_clear(&reply->result);
        put_and_clear(&reply->logs);
        put_and_clear(&reply->message_value);
        reply->hello = false;
        parts->parameters_seen = true;
        parts->parameters_bad = !json_reader_next_is(r, '{');
        if (parts->parameters_bad)
                return json_reader_skip(r);

        e = json_reader_object_begin(r);
        for (unsigned i = 0; e >= 0 && (e = json_reader_object_next(r, &i, &key, &key_len)) > 0;) {
                json_object **slot = json_key_is(key, key_len, "result") ? &reply->result :
                                     json_key_is(key, key_len, "logs") ? &reply->logs :
                                     json_key_is(key, key_len, "message") ? &reply->message_value : NULL;
                if (json_key_is(key, key_len, "hello"))
                        reply->hello = true;
                if (!slot) {
                        e = json_reader_skip(r);
                        continue;
                }
                put_and_clear(slot);
                e = json_reader_value(r, slot);
        }
        return e;
}

typedef struct reply_walk {
        protocol_reply *reply;
        reply_parts parts;
} reply_walk;

static int read_reply_member(json_reader *r, const char *key, size_t key_len, void *userdata) {
        reply_walk *w = userdata;
        int e;

        if (json_key_is(key, key_len, "parameters"))
                return read_reply_parameters(r, w->reply, &w->parts);
        if (!json_key_is(key, key_len, "error"))
                return json_reader_skip(r);
        w->parts.error_seen = true;
        put_and_clear(&w->reply->error_value);
        e = json_reader_value(r, &w->reply->error_value);
        w->parts.error_bad = !json_object_is_type(w->reply->error_value, json_type_string);
        return e;
}

/* The checks of a reply message, in the order they are reported. */
static int check_reply(const reply_parts *parts, const char **ret_reason) {
        if (parts->parameters_bad) {
                *ret_reason = "\"parameters\" is not an object";
                return -EBADMSG;
        }
        if (parts->error_bad) {
                *ret_reason = "\"error\" is not a string";
                return -EBADMSG;
        }
        if (!parts->error_seen && !parts->parameters_seen) {
                *ret_reason = "reply has neither \"parameters\" nor \"error\"";
                return -EBADMSG;
        }
        return 0;
}

int protocol_parse_reply(const char *s, size_t len, protocol_reply *ret, const char **ret_reason) {
        reply_walk w = { .reply = ret };
        int e;

        *ret = (protocol_reply) {};
        e = walk_envelope(s, len, read_reply_member, &w, ret_reason);
        if (e >= 0)
                e = check_reply(&w.parts, ret_reason);
        if (e < 0) {
                protocol_reply_done(ret);
                return e;
        }

        /* Logs we cannot read are not worth failing the call for. */
        if (ret->logs && !json_object_is_type(ret->logs, json_type_object))
                put_and_clear(&ret->logs);
        if (w.parts.error_seen) {
                ret->error = json_object_get_string(ret->error_value);
                ret->error_id = protocol_error_id_from_name(ret->error);
                ret->message = json_object_is_type(ret->message_value, json_type_string) ?
                               json_object_get_string(ret->message_value) : "";
                /* An error answers with no result and no greeting. */
                put_and_clear(&ret->result);
                ret->hello = false;
        }
        return 0;
}

void protocol_reply_done(protocol_reply *reply) {
        json_object_put(reply->result);
        json_object_put(reply->logs);
        json_object_put(reply->error_value);
        json_object_put(reply->message_value);
        *reply = (protocol_reply) {};
}
