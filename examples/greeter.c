/* An example handler module with only a general interface, the seed's
 * "interface => sub { my ($method, @args) = @_; ... }": one function takes
 * every call, whatever its method name, and a call made without one.
 *   aetaskd --handler greeter --handler-dir build/examples --listen unix:/tmp/g.sock
 *   aetaskctl --connect unix:/tmp/g.sock call hello world  ->  "hello, world, from PID 1234"
 *   aetaskctl --connect unix:/tmp/g.sock call - world      ->  "world, from PID 1234" */
#include <aetask/aetask-handler.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int greeter_interface(aetask_worker *w, const char *method, json_object *args, json_object **ret) {
        char text[256];
        size_t n = 0;

        /* METHOD is NULL for a call made without a method name. */
        if (method)
                n = (size_t) snprintf(text, sizeof(text), "%s, ", method);
        for (size_t i = 0; i < json_object_array_length(args) && n < sizeof(text); i++)
                n += (size_t) snprintf(text + n, sizeof(text) - n, "%s, ",
                                       json_object_get_string(json_object_array_get_idx(args, i)) ?: "null");
        if (n < sizeof(text))
                snprintf(text + n, sizeof(text) - n, "from PID %d", (int) getpid());
        *ret = json_object_new_string(text);
        return 0;
}

static const aetask_handler greeter_handler = {
        .abi_version = AETASK_HANDLER_ABI_VERSION,
        .name = "greeter",
        .interface = greeter_interface,
};

AETASK_HANDLER_MODULE(greeter_handler);
