/* org.varlink.service on a worker socket: a stock Varlink client asks what
 * the service is (GetInfo) and how its interfaces look
 * (GetInterfaceDescription), and gets Varlink's own errors for methods
 * nobody here has.  None of it runs the handler, or its setup. */
#include "varlink-service.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "json-writer.h"
#include "macro.h"
#include "protocol.h"

#define VARLINK_SERVICE "org.varlink.service"

/* What GetInfo says of the service besides the handler's name. */
#define VARLINK_VENDOR  "aetask"
#define VARLINK_URL     "man:aetask-protocol(7)"

/* Appends "KEY":VALUE as a JSON string member, after a comma unless FIRST. */
static int append_member(buffer *out, bool first, const char *key, const char *value) {
        int r = buffer_append_str(out, first ? "\"" : ",\"");
        if (r >= 0)
                r = buffer_append_str(out, key);
        if (r >= 0)
                r = buffer_append_str(out, "\":");
        return r < 0 ? r : json_write_text(out, value, strlen(value));
}

/* Appends the end of a message begun with {"parameters":{ or {"error":...,
 * and its NUL; or takes back what was appended since SAVED. */
static int finish(buffer *out, size_t saved, int r) {
        if (r >= 0)
                r = buffer_append(out, "}}", 3);
        if (r < 0)
                out->end = out->start + saved;
        return r;
}

int varlink_append_error(buffer *out, const char *name, const char *key, const char *value) {
        size_t saved = buffer_length(out);
        int r = buffer_append_str(out, "{\"error\":\"");
        if (r >= 0)
                r = buffer_append_str(out, name);
        if (r >= 0)
                r = buffer_append_str(out, "\",\"parameters\":{");
        if (r >= 0)
                r = append_member(out, true, key, value);
        return finish(out, saved, r);
}

static int answer_get_info(const char *handler, buffer *out) {
        char product[256];
        size_t saved = buffer_length(out);

        snprintf(product, sizeof(product), "aetaskd worker (handler %s)", handler);
        int r = buffer_append_str(out, "{\"parameters\":{");
        if (r >= 0)
                r = append_member(out, true, "vendor", VARLINK_VENDOR);
        if (r >= 0)
                r = append_member(out, false, "product", product);
        if (r >= 0)
                r = append_member(out, false, "version", AETASK_VERSION);
        if (r >= 0)
                r = append_member(out, false, "url", VARLINK_URL);
        if (r >= 0)
                r = buffer_append_str(out, ",\"interfaces\":[");
        for (const varlink_interface *i = varlink_interfaces; r >= 0 && i->name; i++) {
                if (i != varlink_interfaces)
                        r = buffer_append(out, ",", 1);
                if (r >= 0)
                        r = json_write_text(out, i->name, strlen(i->name));
        }
        if (r >= 0)
                r = buffer_append(out, "]", 1);
        return finish(out, saved, r);
}

static const varlink_interface *find_interface(const char *name) {
        for (const varlink_interface *i = varlink_interfaces; i->name; i++)
                if (strcmp(i->name, name) == 0)
                        return i;
        return NULL;
}

static int answer_get_interface_description(json_object *parameters, buffer *out) {
        json_object *name = NULL;

        if (!json_object_object_get_ex(parameters, "interface", &name) ||
            !json_object_is_type(name, json_type_string))
                return varlink_append_error(out, VARLINK_SERVICE ".InvalidParameter", "parameter", "interface");
        const varlink_interface *i = find_interface(json_object_get_string(name));
        if (!i)
                return varlink_append_error(out, VARLINK_SERVICE ".InterfaceNotFound", "interface",
                                            json_object_get_string(name));

        size_t saved = buffer_length(out);
        int r = buffer_append_str(out, "{\"parameters\":{");
        if (r >= 0)
                r = append_member(out, true, "description", i->description);
        return finish(out, saved, r);
}

/* A method nobody has: MethodNotFound when its interface is one of ours
 * (the library's io.aetask.Worker and io.aetask.Checkout included),
 * InterfaceNotFound when not. */
static int answer_not_found(const char *method, buffer *out) {
        const char *dot = strrchr(method, '.');
        if (!dot)
                return varlink_append_error(out, VARLINK_SERVICE ".MethodNotFound", "method", method);

        char interface[256];
        size_t n = (size_t) (dot - method);
        if (n >= sizeof(interface))
                n = sizeof(interface) - 1;  /* longer than Varlink allows: it is not ours */
        memcpy(interface, method, n);
        interface[n] = 0;
        if (find_interface(interface) || strncmp(method, "io.aetask.", strlen("io.aetask.")) == 0)
                return varlink_append_error(out, VARLINK_SERVICE ".MethodNotFound", "method", method);
        return varlink_append_error(out, VARLINK_SERVICE ".InterfaceNotFound", "interface", interface);
}

int varlink_service_answer(const char *s, size_t len, const char *handler, buffer *out) {
        _cleanup_(json_object_putp) json_object *m = NULL;
        json_object *method = NULL, *parameters = NULL;
        const char *reason;
        int r;

        /* protocol_parse_call() has read it already: it is an object with a
         * method string, and parameters an object, null, or none. */
        r = protocol_parse_message(s, len, &m, &reason);
        if (r < 0 || !json_object_object_get_ex(m, "method", &method))
                return protocol_append_error(out, PROTOCOL_ERROR_INVALID_MESSAGE, "unreadable request", NULL);
        (void) json_object_object_get_ex(m, "parameters", &parameters);

        const char *name = json_object_get_string(method);
        if (strcmp(name, VARLINK_SERVICE ".GetInfo") == 0)
                r = answer_get_info(handler, out);
        else if (strcmp(name, VARLINK_SERVICE ".GetInterfaceDescription") == 0)
                r = answer_get_interface_description(parameters, out);
        else
                r = answer_not_found(name, out);
        return r < 0 ? -ENOMEM : 0;
}
