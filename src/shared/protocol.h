/* The wire protocol shared by client and worker: NUL-terminated JSON objects
 * in Varlink's shape.  man/aetask-protocol.7 is the specification; this file
 * builds and takes apart its messages. */
#pragma once

#include <aetask/aetask-client.h>  /* aetask_error_kind */
#include <json-c/json.h>
#include <stdbool.h>

#include "buffer.h"
#include "json-reader.h"  /* json_object_putp() */

#define PROTOCOL_VERSION 2

#define PROTOCOL_WORKER_PREFIX      "io.aetask.Worker."
/* The methods of the Varlink interface io.aetask (varlink-interfaces.c):
 * the greeting, and a call as a stock Varlink client makes it.  The
 * library's own forms above are shorter, and older. */
#define PROTOCOL_METHOD_HELLO       "io.aetask.Hello"
#define PROTOCOL_METHOD_VARLINK_CALL "io.aetask.Call"
#define PROTOCOL_METHOD_CALL        "io.aetask.Checkout.Call"
#define PROTOCOL_METHOD_DONE        "io.aetask.Checkout.Done"

#define PROTOCOL_ERROR_HANDLER          "io.aetask.HandlerError"
#define PROTOCOL_ERROR_SETUP            "io.aetask.SetupError"
#define PROTOCOL_ERROR_METHOD_NOT_FOUND "io.aetask.MethodNotFound"
#define PROTOCOL_ERROR_INVALID_MESSAGE  "io.aetask.InvalidMessage"
#define PROTOCOL_ERROR_MESSAGE_TOO_LARGE "io.aetask.MessageTooLarge"
#define PROTOCOL_ERROR_SERVER_BUSY      "io.aetask.ServerBusy"
#define PROTOCOL_ERROR_RETIRING         "io.aetask.Retiring"
#define PROTOCOL_ERROR_PERMISSION_DENIED "io.aetask.PermissionDenied"
#define PROTOCOL_ERROR_DEADLINE         "io.aetask.DeadlineExceeded"

/* The error names above, as a reader of replies tells them apart. */
typedef enum protocol_error_id {
        PROTOCOL_ERROR_ID_UNKNOWN,        /* a name not listed above (or no error) */
        PROTOCOL_ERROR_ID_HANDLER,
        PROTOCOL_ERROR_ID_SETUP,
        PROTOCOL_ERROR_ID_METHOD_NOT_FOUND,
        PROTOCOL_ERROR_ID_INVALID_MESSAGE,
        PROTOCOL_ERROR_ID_MESSAGE_TOO_LARGE,
        PROTOCOL_ERROR_ID_SERVER_BUSY,
        PROTOCOL_ERROR_ID_RETIRING,
        PROTOCOL_ERROR_ID_PERMISSION_DENIED,
        PROTOCOL_ERROR_ID_DEADLINE,
        _PROTOCOL_ERROR_ID_MAX,
} protocol_error_id;

protocol_error_id protocol_error_id_from_name(const char *name);
/* What an error reply to a call means to its caller: an error kind, or 0
 * when the name is not one a call ends with (a protocol error, then). */
aetask_error_kind protocol_error_call_kind(protocol_error_id id);
/* Whether the error is the server refusing the connection (its worker cap,
 * its allow lists), which it says before any greeting. */
bool protocol_error_is_refusal(protocol_error_id id);

#define PROTOCOL_METHOD_NAME_MAX 128
#define PROTOCOL_DEFAULT_MESSAGE_SIZE_MAX (16U * 1024U * 1024U)
/* The most a limit may be set to: 1 GiB.  A message is held whole, and
 * read in one buffer whose size is the limit plus one. */
#define PROTOCOL_MESSAGE_SIZE_MIN 64U
#define PROTOCOL_MESSAGE_SIZE_LIMIT (1024U * 1024U * 1024U)

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

/* The time a call has left is known when it is sent, not when it is made:
 * a call message (as protocol_append_call() made it, SIZE with its NUL) is
 * sent as its first *RET_KEEP bytes, then the SUFFIX written here
 * (,"timeout_usec":USEC and the closing braces and NUL), so that a large
 * call is not copied for it.  Returns the suffix's length, NUL included,
 * or -EINVAL for a message not of that form. */
#define PROTOCOL_TIMEOUT_SUFFIX_MAX 48
int protocol_call_timeout_suffix(const char *message, size_t size, uint64_t usec,
                                 char suffix[static PROTOCOL_TIMEOUT_SUFFIX_MAX], size_t *ret_keep);

/* Client side: the first request on a connection, asking for the greeting.
 * A connection that ends before the greeting never reached a worker:
 * nothing sent on it ran. */
int protocol_append_hello_request(buffer *b);

/* Worker side: the greeting, the answer to the hello request. */
int protocol_append_hello(buffer *b, unsigned number, int pid);

/* Worker side.  LOGS, when not NULL, is what the handler logged during the
 * call (messages, timers, data); it travels with errors too. */
int protocol_append_reply(buffer *b, json_object *result, const char *logs);
int protocol_append_error(buffer *b, const char *error, const char *message, const char *logs);

typedef enum protocol_call_kind {
        PROTOCOL_CALL_METHOD,     /* io.aetask.Worker.<name> */
        PROTOCOL_CALL_ANONYMOUS,  /* io.aetask.Checkout.Call */
        PROTOCOL_CALL_DONE,       /* io.aetask.Checkout.Done */
        PROTOCOL_CALL_HELLO,      /* io.aetask.Hello */
} protocol_call_kind;

typedef struct protocol_call {
        protocol_call_kind kind;
        const char *method;       /* PROTOCOL_CALL_METHOD: the handler's name for it */
        json_object *args;        /* an array, or NULL when the call has none; owned */
        const char *trace;        /* the checkout's trace id, or NULL */
        uint64_t timeout_usec;    /* the time the client gives the call from sending it, or 0 */
        bool oneway;              /* Varlink's "oneway": the client wants no reply */
        /* where METHOD and TRACE point */
        char method_name[PROTOCOL_METHOD_NAME_MAX + 1];
        char trace_id[PROTOCOL_TRACE_MAX + 1];
} protocol_call;

/* Reads a call message of LEN bytes.  Its envelope is walked in place: only
 * the arguments are built as json-c values.  Returns -EBADMSG with a reason
 * in *RET_REASON (static) when the message is not a call we know the shape
 * of, -ENOENT for a method under the worker interface that is not a valid
 * name or an interface we do not know, -EINVAL for an io.aetask.Call
 * with a parameter of the wrong type (its name in *RET_REASON: Varlink's
 * InvalidParameter).  "parameters": null is no parameters.  On success the
 * caller owns the arguments: protocol_call_done(). */
int protocol_parse_call(const char *s, size_t len, protocol_call *ret, const char **ret_reason);
void protocol_call_done(protocol_call *call);

typedef struct protocol_reply {
        json_object *result;      /* NULL is JSON null; owned */
        const char *error;        /* NULL for a successful reply */
        protocol_error_id error_id;  /* which ERROR it is */
        const char *message;      /* the error's message, never NULL on error */
        json_object *logs;        /* NULL when the worker logged nothing; owned */
        bool hello;               /* the worker's greeting */
        json_object *error_value, *message_value;  /* where ERROR and MESSAGE point */
} protocol_reply;

/* Reads a reply message the same way: only the result and the logs are
 * built.  On success the caller owns them: protocol_reply_done(). */
int protocol_parse_reply(const char *s, size_t len, protocol_reply *ret, const char **ret_reason);
void protocol_reply_done(protocol_reply *reply);
