/* The wire protocol shared by client and worker: NUL-terminated JSON objects
 * in Varlink's shape.  man/aetask-protocol.7 is the specification; this file
 * builds and takes apart its messages. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include "buffer.h"

#define PROTOCOL_VERSION 1

static inline void json_object_putp(json_object **p) {
        json_object_put(*p);
}

#define PROTOCOL_WORKER_PREFIX      "io.aetask.Worker."
#define PROTOCOL_METHOD_CALL        "io.aetask.Checkout.Call"
#define PROTOCOL_METHOD_DONE        "io.aetask.Checkout.Done"

#define PROTOCOL_ERROR_HANDLER          "io.aetask.HandlerError"
#define PROTOCOL_ERROR_SETUP            "io.aetask.SetupError"
#define PROTOCOL_ERROR_METHOD_NOT_FOUND "io.aetask.MethodNotFound"
#define PROTOCOL_ERROR_INVALID_MESSAGE  "io.aetask.InvalidMessage"
#define PROTOCOL_ERROR_MESSAGE_TOO_LARGE "io.aetask.MessageTooLarge"
#define PROTOCOL_ERROR_SERVER_BUSY      "io.aetask.ServerBusy"
#define PROTOCOL_ERROR_RETIRING         "io.aetask.Retiring"

#define PROTOCOL_METHOD_NAME_MAX 128
#define PROTOCOL_DEFAULT_MESSAGE_SIZE_MAX (16U * 1024U * 1024U)

/* Letters, digits and underscores, 1 to PROTOCOL_METHOD_NAME_MAX of them. */
bool protocol_method_name_is_valid(const char *name);

/* Parses one message of LEN bytes; it must be exactly one JSON object, in
 * valid UTF-8 (utf8.h), read strictly (json-reader.h).  Returns -EBADMSG
 * with a short reason in *ret_reason (static) otherwise. */
int protocol_parse_message(const char *s, size_t len, json_object **ret, const char **ret_reason);

/* A trace id: letters, digits and "-_.:", 1 to PROTOCOL_TRACE_MAX of them. */
#define PROTOCOL_TRACE_MAX 64
bool protocol_trace_is_valid(const char *trace);

/* Client side: appends a call of METHOD (NULL: the handler's catch-all) with
 * ARGS (a JSON array, or NULL for no arguments) and the checkout's TRACE id
 * (or NULL), then the NUL. */
int protocol_append_call(buffer *b, const char *method, json_object *args, const char *trace);
int protocol_append_done(buffer *b, const char *trace);

/* Worker side: the greeting a worker writes before it reads anything, so a
 * client knows a worker has its connection.  A connection that ends before
 * the greeting never reached a worker: nothing sent on it ran. */
int protocol_append_hello(buffer *b, unsigned number, int pid);

/* Worker side.  LOGS, when not NULL, is what the handler logged during the
 * call (messages, timers, data); it travels with errors too. */
int protocol_append_reply(buffer *b, json_object *result, json_object *logs);
int protocol_append_error(buffer *b, const char *error, const char *message, json_object *logs);

typedef enum protocol_call_kind {
        PROTOCOL_CALL_METHOD,     /* io.aetask.Worker.<name> */
        PROTOCOL_CALL_ANONYMOUS,  /* io.aetask.Checkout.Call */
        PROTOCOL_CALL_DONE,       /* io.aetask.Checkout.Done */
} protocol_call_kind;

typedef struct protocol_call {
        protocol_call_kind kind;
        const char *method;       /* PROTOCOL_CALL_METHOD: the handler's name for it */
        json_object *args;        /* an array, or NULL when the call has none; borrowed */
        const char *trace;        /* the checkout's trace id, or NULL */
} protocol_call;

/* Takes apart a call message.  Returns -EBADMSG with *ret_reason set when the
 * message is not a call we know the shape of, -ENOENT for a method under the
 * worker interface that is not a valid name. */
int protocol_parse_call(json_object *m, protocol_call *ret, const char **ret_reason);

typedef struct protocol_reply {
        json_object *result;      /* borrowed; NULL is JSON null */
        const char *error;        /* NULL for a successful reply */
        const char *message;      /* the error's message, never NULL on error */
        json_object *logs;        /* borrowed; NULL when the worker logged nothing */
        bool hello;               /* the worker's greeting */
} protocol_reply;

int protocol_parse_reply(json_object *m, protocol_reply *ret, const char **ret_reason);
