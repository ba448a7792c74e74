/* A handler for the restart-under-load test, built for the tests only:
 *   record(id, seconds)   appends the line ID to calls.log in the state
 *                         directory ($STATE_DIRECTORY, or option dir=PATH),
 *                         sleeps SECONDS, returns ID.
 *   grow(mib)             allocates and touches MIB MiB, as a leaking library
 *                         would, and returns how many it got.
 * One write(2) of a whole line to an O_APPEND file: lines from many workers
 * never mix.  A line found twice is a call that ran twice. */
#include <aetask/aetask-handler.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log_fd = -1;

static int counter_setup(aetask_worker *w) {
        const char *dir = aetask_worker_get_option(w, "dir") ?: getenv("STATE_DIRECTORY");
        char path[4096];

        if (!dir)
                return aetask_worker_raise(w, "no directory: set -o dir=PATH or StateDirectory=");
        snprintf(path, sizeof(path), "%.*s/calls.log", (int) strcspn(dir, ":"), dir);
        log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (log_fd < 0)
                return aetask_worker_raise(w, "cannot open %s: %s", path, strerror(errno));
        return 0;
}

static int counter_record(aetask_worker *w, json_object *args, json_object **ret) {
        const char *id = json_object_get_string(json_object_array_get_idx(args, 0));
        double seconds = json_object_get_double(json_object_array_get_idx(args, 1));
        char line[256];
        struct timespec ts;
        int n;

        if (!id || !*id || strchr(id, '\n'))
                return aetask_worker_raise(w, "record: expected an id");
        n = snprintf(line, sizeof(line), "%s\n", id);
        if (n >= (int) sizeof(line) || write(log_fd, line, (size_t) n) != n)
                return aetask_worker_raise(w, "record: cannot write: %s", strerror(errno));
        if (seconds > 0) {
                ts.tv_sec = (time_t) seconds;
                ts.tv_nsec = (long) ((seconds - (double) ts.tv_sec) * 1e9);
                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
        }
        *ret = json_object_new_string(id);
        return 0;
}

static int counter_grow(aetask_worker *w, json_object *args, json_object **ret) {
        int64_t mib = json_object_get_int64(json_object_array_get_idx(args, 0));
        int64_t got = 0;

        for (; got < mib; got++) {
                char *chunk = malloc(1 << 20);   /* kept: the leak is the point */
                if (!chunk)
                        break;
                memset(chunk, 1, 1 << 20);
        }
        *ret = json_object_new_int64(got);
        return 0;
}

static const aetask_method counter_methods[] = {
        { "record", counter_record },
        { "grow", counter_grow },
        {}
};

static const aetask_handler counter_handler = {
        .abi_version = AETASK_HANDLER_ABI_VERSION,
        .name = "counter",
        .setup = counter_setup,
        .methods = counter_methods,
};

AETASK_HANDLER_MODULE(counter_handler);
