/* The echo handler, for tests, demos and benchmarks:
 *   echo(x)       returns x
 *   pid()         returns the worker's pid
 *   sleep(s)      sleeps s seconds (fractions allowed), returns null
 *   fail(message) raises an error with that message
 *   a call without a method name returns the array of its arguments.
 * Option setup-delay=SECONDS makes its setup take that long (a handler that
 * opens databases or loads data, for the spare-worker tests and bench). */
#include <aetask/aetask-handler.h>
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int echo_echo(aetask_worker *w, json_object *args, json_object **ret) {
        *ret = json_object_get(json_object_array_get_idx(args, 0));
        return 0;
}

static int echo_pid(aetask_worker *w, json_object *args, json_object **ret) {
        *ret = json_object_new_int(getpid());
        return 0;
}

static void sleep_seconds(double seconds) {
        struct timespec ts;

        ts.tv_sec = (time_t) seconds;
        ts.tv_nsec = (long) ((seconds - (double) ts.tv_sec) * 1e9);
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int echo_sleep(aetask_worker *w, json_object *args, json_object **ret) {
        double seconds = json_object_get_double(json_object_array_get_idx(args, 0));

        if (seconds < 0)
                return aetask_worker_raise(w, "sleep: negative duration");
        sleep_seconds(seconds);
        return 0;
}

static int echo_setup(aetask_worker *w) {
        const char *delay = aetask_worker_get_option(w, "setup-delay");
        double seconds = delay ? strtod(delay, NULL) : 0;

        if (seconds > 0 && seconds <= 3600)
                sleep_seconds(seconds);
        return 0;
}

static int echo_fail(aetask_worker *w, json_object *args, json_object **ret) {
        const char *message = json_object_get_string(json_object_array_get_idx(args, 0));
        return aetask_worker_raise(w, "%s", message ?: "failed");
}

static int echo_catch_all(aetask_worker *w, json_object *args, json_object **ret) {
        *ret = json_object_get(args);
        return 0;
}

static const aetask_method echo_methods[] = {
        { "echo", echo_echo },
        { "pid", echo_pid },
        { "sleep", echo_sleep },
        { "fail", echo_fail },
        {}
};

static const aetask_handler echo_handler = {
        .abi_version = AETASK_HANDLER_ABI_VERSION,
        .name = "echo",
        .setup = echo_setup,
        .methods = echo_methods,
        .call = echo_catch_all,
};

AETASK_HANDLER_MODULE(echo_handler);
