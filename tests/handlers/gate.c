/* A handler for the governance tests (test-governance.c): its setup fails
 * until the file named by option gate=PATH exists (a database not there
 * yet), and grow(MIB) makes the worker hold that much more memory, touched,
 * for --max-worker-rss.  pid() returns the worker's pid; nap(MS) takes
 * that long, for call durations that are not under a microsecond. */
#include <aetask/aetask-handler.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int gate_setup(aetask_worker *w) {
        const char *gate = aetask_worker_get_option(w, "gate");

        if (gate && access(gate, F_OK) < 0)
                return aetask_worker_raise(w, "no %s yet", gate);
        return 0;
}

static int gate_pid(aetask_worker *w, json_object *args, json_object **ret) {
        *ret = json_object_new_int(getpid());
        return 0;
}

static int gate_nap(aetask_worker *w, json_object *args, json_object **ret) {
        usleep((useconds_t) json_object_get_int(json_object_array_get_idx(args, 0)) * 1000);
        *ret = json_object_new_int(getpid());
        return 0;
}

/* Where grown memory is kept, so the compiler cannot drop it as unused. */
static char *volatile grown;

static int gate_grow(aetask_worker *w, json_object *args, json_object **ret) {
        int64_t mib = json_object_get_int64(json_object_array_get_idx(args, 0));

        if (mib <= 0 || mib > 1024)
                return aetask_worker_raise(w, "grow: from 1 to 1024 MiB");
        /* Kept for the worker's life: memory a handler leaks. */
        char *p = malloc((size_t) mib << 20);
        if (!p)
                return aetask_worker_raise(w, "grow: out of memory");
        memset(p, 1, (size_t) mib << 20);
        *(char **) &p[0] = grown;  /* a list: each block points at the one before */
        grown = p;
        *ret = json_object_new_int(getpid());
        return 0;
}

static const aetask_method gate_methods[] = {
        { "pid", gate_pid },
        { "nap", gate_nap },
        { "grow", gate_grow },
        {}
};

static const aetask_handler gate_handler = {
        .abi_version = AETASK_HANDLER_ABI_VERSION,
        .name = "gate",
        .setup = gate_setup,
        .methods = gate_methods,
};

AETASK_HANDLER_MODULE(gate_handler);
