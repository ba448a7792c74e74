/* What a worker answers as a Varlink service: org.varlink.service (GetInfo,
 * GetInterfaceDescription) and Varlink's own errors for requests under no
 * method it has.  The calls themselves are the worker's (worker.c). */
#pragma once

#include <stddef.h>

#include "buffer.h"

/* A Varlink interface this service implements, and its description in
 * Varlink's interface definition language. */
typedef struct varlink_interface {
        const char *name;
        const char *description;
} varlink_interface;

/* All of them, org.varlink.service first, ended by a { NULL }. */
extern const varlink_interface varlink_interfaces[];

/* Answers the request of LEN bytes at S, which protocol_parse_call() did
 * not take as a call (-ENOENT): org.varlink.service's methods, and
 * org.varlink.service.InterfaceNotFound or MethodNotFound for any other.
 * HANDLER names the handler the worker runs, for GetInfo.  Returns -ENOMEM when the answer
 * could not be appended to OUT. */
int varlink_service_answer(const char *s, size_t len, const char *handler, buffer *out);

/* Appends Varlink's error NAME (a name under org.varlink.service) with its
 * one parameter KEY: VALUE, as Varlink defines them. */
int varlink_append_error(buffer *out, const char *name, const char *key, const char *value);
