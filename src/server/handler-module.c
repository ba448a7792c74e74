/* Loads a handler module by name: DIR/NAME.so exporting aetask_handler_module. */
#include <dlfcn.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
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

int handler_module_load(const char *name, const char *dir, void **ret_module, const aetask_handler **ret) {
        char path[4096];
        void *module;
        const aetask_handler *const *h;

        if (!unit_name_is_valid(name))
                return log_error_errno(-EINVAL, "Invalid handler name '%s'", name ?: "");

        if (!dir)
                dir = getenv("AETASK_HANDLER_DIR");
        if (!dir)
                dir = AETASK_HANDLER_DIR;
        snprintf(path, sizeof(path), "%s/%s.so", dir, name);

        module = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!module) {
                log_error("Failed to load handler '%s': %s", name, dlerror());
                return -ENOENT;
        }
        h = dlsym(module, AETASK_HANDLER_SYMBOL);
        if (!h || !*h) {
                log_error("Failed to load handler '%s': %s does not export " AETASK_HANDLER_SYMBOL, name, path);
                dlclose(module);
                return -EBADF;
        }
        if (handler_size((*h)->abi_version) == 0) {
                log_error("Failed to load handler '%s': ABI version %u, expected 1 to %u",
                          name, (*h)->abi_version, AETASK_HANDLER_ABI_VERSION);
                dlclose(module);
                return -EPROTONOSUPPORT;
        }
        *ret_module = module;
        *ret = *h;
        return 0;
}
