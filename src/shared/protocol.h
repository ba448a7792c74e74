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

/* Creates a parser set up the way both sides need it. */
json_tokener *protocol_tokener_new(void);

/* Parses one message of LEN bytes; it must be exactly one JSON object.
 * Returns -EBADMSG with a short reason in *ret_reason (static) otherwise. */
int protocol_parse_message(json_tokener *tok, const char *s, size_t len,
                           json_object **ret, const char **ret_reason);

/* Client side: appends a call of METHOD (NULL: the handler's catch-all) with
 * ARGS (a JSON array, or NULL for no arguments), then the NUL. */
int protocol_append_call(buffer *b, const char *method, json_object *args);
int protocol_append_done(buffer *b);

/* Worker side. */
int protocol_append_reply(buffer *b, json_object *result);
int protocol_append_error(buffer *b, const char *error, const char *message);

typedef enum protocol_call_kind {
        PROTOCOL_CALL_METHOD,     /* io.aetask.Worker.<name> */
        PROTOCOL_CALL_ANONYMOUS,  /* io.aetask.Checkout.Call */
        PROTOCOL_CALL_DONE,       /* io.aetask.Checkout.Done */
} protocol_call_kind;

typedef struct protocol_call {
        protocol_call_kind kind;
        const char *method;       /* PROTOCOL_CALL_METHOD: the handler's name for it */
        json_object *args;        /* an array, or NULL when the call has none; borrowed */
} protocol_call;

/* Takes apart a call message.  Returns -EBADMSG with *ret_reason set when the
 * message is not a call we know the shape of, -ENOENT for a method under the
 * worker interface that is not a valid name. */
int protocol_parse_call(json_object *m, protocol_call *ret, const char **ret_reason);

typedef struct protocol_reply {
        json_object *result;      /* borrowed; NULL is JSON null */
        const char *error;        /* NULL for a successful reply */
        const char *message;      /* the error's message, never NULL on error */
} protocol_reply;

int protocol_parse_reply(json_object *m, protocol_reply *ret, const char **ret_reason);
