/* Loads a handler module by name: DIR/NAME.so exporting aetask_handler_module. */
#include <dlfcn.h>
#include <stddef.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "server-internal.h"

/* The part of struct aetask_handler each ABI version has. */
static size_t handler_size(unsigned abi_version) {
        switch (abi_version) {
        case 1:
                return offsetof(aetask_handler, interface);
        case AETASK_HANDLER_ABI_VERSION:
                return sizeof(aetask_handler);
        default:
                return 0;
        }
}

int handler_adopt(aetask_server *s, const aetask_handler *h) {
        size_t size = handler_size(h->abi_version);

        if (size == 0)
                return -EPROTONOSUPPORT;
        /* A copy of what it has; the members it predates stay NULL. */
        s->handler_copy = (aetask_handler) {};
        memcpy(&s->handler_copy, h, size);
        s->handler = &s->handler_copy;
        return 0;
}

/* The module's failure, in words for the caller to print (aetaskd does);
 * the library itself says nothing (STYLE.md, habit 9). */
static int load_failed(int error, char **ret_error, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        if (vasprintf(ret_error, format, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
        return error;
}

int handler_module_load(const char *name, const char *dir, void **ret_module, const aetask_handler **ret,
                        char **ret_error) {
        char path[4096];
        void *module;
        const aetask_handler *const *h;

        if (!unit_name_is_valid(name))
                return load_failed(-EINVAL, ret_error, "Invalid handler name '%s'", name ?: "");

        if (!dir)
                dir = getenv("AETASK_HANDLER_DIR");
        if (!dir)
                dir = AETASK_HANDLER_DIR;
        snprintf(path, sizeof(path), "%s/%s.so", dir, name);

        module = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!module)
                return load_failed(-ENOENT, ret_error, "Failed to load handler '%s': %s", name, dlerror());
        h = dlsym(module, AETASK_HANDLER_SYMBOL);
        if (!h || !*h) {
                dlclose(module);
                return load_failed(-EBADF, ret_error, "Failed to load handler '%s': %s does not export "
                                   AETASK_HANDLER_SYMBOL, name, path);
        }
        if (handler_size((*h)->abi_version) == 0) {
                unsigned abi = (*h)->abi_version;
                dlclose(module);
                return load_failed(-EPROTONOSUPPORT, ret_error, "Failed to load handler '%s': ABI version %u, "
                                   "expected 1 to %u", name, abi, AETASK_HANDLER_ABI_VERSION);
        }
        *ret_module = module;
        *ret = *h;
        return 0;
}
