/* Building and taking apart the messages of aetask-protocol(7). */
#include "protocol.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "json-reader.h"
#include "json-writer.h"
#include "macro.h"
#include "utf8.h"

bool protocol_method_name_is_valid(const char *name) {
        size_t n = 0;

        if (!name)
                return false;
        for (const char *p = name; *p; p++, n++) {
                char c = *p;
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
                        return false;
        }
        return n > 0 && n <= PROTOCOL_METHOD_NAME_MAX;
}

bool protocol_trace_is_valid(const char *trace) {
        size_t n = 0;

        if (!trace)
                return false;
        for (const char *p = trace; *p; p++, n++) {
                char c = *p;
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '.' || c == ':'))
                        return false;
        }
        return n > 0 && n <= PROTOCOL_TRACE_MAX;
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

/* Appends ,"trace":"ID" (a valid trace id needs no escaping). */
static int append_trace(buffer *b, const char *trace) {
        int r;

        if (!trace)
                return 0;
        r = buffer_append_str(b, ",\"trace\":\"");
        if (r >= 0)
                r = buffer_append_str(b, trace);
        return r < 0 ? r : buffer_append(b, "\"", 1);
}

static int append_logs(buffer *b, json_object *logs) {
        int r;

        if (!logs)
                return 0;
        r = buffer_append_str(b, ",\"logs\":");
        return r < 0 ? r : json_write_value(b, logs);
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
                r = append_trace(b, trace);
        if (r >= 0)
                r = buffer_append(b, "}", 1);
        return finish(b, saved, r);
}

int protocol_append_done(buffer *b, const char *trace) {
        size_t saved = buffer_length(b);
        int r;

        r = buffer_append_str(b, "{\"method\":\"" PROTOCOL_METHOD_DONE "\",\"parameters\":{");
        if (r >= 0 && trace) {
                r = buffer_append_str(b, "\"trace\":\"");
                if (r >= 0)
                        r = buffer_append_str(b, trace);
                if (r >= 0)
                        r = buffer_append(b, "\"", 1);
        }
        if (r >= 0)
                r = buffer_append(b, "}", 1);
        return finish(b, saved, r);
}

int protocol_append_hello(buffer *b, unsigned number, int pid) {
        char text[128];
        int n = snprintf(text, sizeof(text),
                         "{\"parameters\":{\"hello\":{\"version\":%d,\"worker\":%u,\"pid\":%d}}}",
                         PROTOCOL_VERSION, number, pid);
        return buffer_append(b, text, (size_t) n + 1);
}

int protocol_append_reply(buffer *b, json_object *result, json_object *logs) {
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

int protocol_append_error(buffer *b, const char *error, const char *message, json_object *logs) {
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

int protocol_parse_call(json_object *m, protocol_call *ret, const char **ret_reason) {
        json_object *method, *parameters = NULL, *args = NULL;
        const char *name;

        if (!json_object_object_get_ex(m, "method", &method) || !json_object_is_type(method, json_type_string)) {
                *ret_reason = "message has no \"method\" string";
                return -EBADMSG;
        }
        if (json_object_object_get_ex(m, "parameters", &parameters) &&
            !json_object_is_type(parameters, json_type_object)) {
                *ret_reason = "\"parameters\" is not an object";
                return -EBADMSG;
        }
        if (parameters && json_object_object_get_ex(parameters, "args", &args) &&
            !json_object_is_type(args, json_type_array)) {
                *ret_reason = "\"args\" is not an array";
                return -EBADMSG;
        }

        json_object *trace = NULL;
        if (parameters && json_object_object_get_ex(parameters, "trace", &trace) &&
            (!json_object_is_type(trace, json_type_string) || !protocol_trace_is_valid(json_object_get_string(trace)))) {
                *ret_reason = "\"trace\" is not a valid trace id";
                return -EBADMSG;
        }

        name = json_object_get_string(method);
        *ret = (protocol_call) { .args = args, .trace = trace ? json_object_get_string(trace) : NULL };
        if (strncmp(name, PROTOCOL_WORKER_PREFIX, strlen(PROTOCOL_WORKER_PREFIX)) == 0) {
                ret->kind = PROTOCOL_CALL_METHOD;
                ret->method = name + strlen(PROTOCOL_WORKER_PREFIX);
                if (!protocol_method_name_is_valid(ret->method)) {
                        *ret_reason = "invalid method name";
                        return -ENOENT;
                }
        } else if (strcmp(name, PROTOCOL_METHOD_CALL) == 0)
                ret->kind = PROTOCOL_CALL_ANONYMOUS;
        else if (strcmp(name, PROTOCOL_METHOD_DONE) == 0)
                ret->kind = PROTOCOL_CALL_DONE;
        else {
                *ret_reason = "unknown interface";
                return -ENOENT;
        }
        return 0;
}

int protocol_parse_reply(json_object *m, protocol_reply *ret, const char **ret_reason) {
        json_object *error = NULL, *parameters = NULL, *v = NULL;

        if (json_object_object_get_ex(m, "parameters", &parameters) &&
            !json_object_is_type(parameters, json_type_object)) {
                *ret_reason = "\"parameters\" is not an object";
                return -EBADMSG;
        }

        *ret = (protocol_reply) {};
        if (parameters && json_object_object_get_ex(parameters, "logs", &ret->logs) &&
            !json_object_is_type(ret->logs, json_type_object))
                ret->logs = NULL;  /* logs we cannot read are not worth failing the call for */
        if (json_object_object_get_ex(m, "error", &error)) {
                if (!json_object_is_type(error, json_type_string)) {
                        *ret_reason = "\"error\" is not a string";
                        return -EBADMSG;
                }
                ret->error = json_object_get_string(error);
                ret->message = "";
                if (parameters && json_object_object_get_ex(parameters, "message", &v) &&
                    json_object_is_type(v, json_type_string))
                        ret->message = json_object_get_string(v);
                return 0;
        }
        if (!parameters) {
                *ret_reason = "reply has neither \"parameters\" nor \"error\"";
                return -EBADMSG;
        }
        ret->hello = json_object_object_get_ex(parameters, "hello", NULL);
        (void) json_object_object_get_ex(parameters, "result", &ret->result);
        return 0;
}
