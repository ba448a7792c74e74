/* The worker's per-call log: collected for the reply, mirrored to the journal. */
#include "worker-log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"
#include "macro.h"
#include "scoreboard.h"

void worker_log_begin(worker_log *l, const char *trace, const char *method) {
        /* Once per call: a copy, not snprintf(). */
        size_t n = trace ? strnlen(trace, sizeof(l->trace) - 1) : 0;

        memcpy(l->trace, trace ?: "", n);
        l->trace[n] = 0;
        l->method = method;
}

/* Room for one more entry of SIZE bytes?  If not, it is counted as dropped. */
static bool worker_log_admit(worker_log *l, size_t size) {
        if (l->n_entries >= WORKER_LOG_MAX_ENTRIES || l->bytes + size > WORKER_LOG_MAX_BYTES) {
                l->dropped++;
                return false;
        }
        l->n_entries++;
        l->bytes += size;
        return true;
}

/* An entry with the worker's fields (the caller adds its own, then sends it
 * with worker_entry_send()). */
static void worker_entry_begin(worker_log *l, journal_entry *e, int priority, const char *text) {
        journal_entry_add(e, "MESSAGE", "%s", text);
        journal_entry_add(e, "PRIORITY", "%d", priority);
        journal_entry_add(e, "SYSLOG_IDENTIFIER", "aetaskd");
        journal_entry_add(e, "AETASK_ORIGIN", "worker");
        journal_entry_add(e, "AETASK_HANDLER", "%s", l->handler ?: "");
        journal_entry_add(e, "AETASK_WORKER", "%u", l->number);
        journal_entry_add(e, "AETASK_WORKER_PID", "%d", (int) getpid());
        journal_entry_add(e, "AETASK_METHOD", "%s", l->method ?: "");
}

static void worker_entry_send(worker_log *l, journal_entry *e, int priority, const char *text) {
        /* Fields with empty values are left out rather than written empty. */
        if (l->trace[0])
                journal_entry_add(e, "AETASK_TRACE", "%s", l->trace);
        if (journal_entry_send_only(e) >= 0)
                return;

        /* No journal: a plain line, up to the server's log level. */
        if (priority <= log_get_max_level())
                fprintf(stderr, "aetaskd[%d]: worker %u of %s%s%s: %s\n", (int) getpid(), l->number,
                        l->handler ?: "?", l->trace[0] ? ", trace " : "", l->trace, text);
}

static void worker_entry(worker_log *l, int priority, const char *text) {
        _cleanup_(journal_entry_done) journal_entry e = {};

        worker_entry_begin(l, &e, priority, text);
        worker_entry_send(l, &e, priority, text);
}

void worker_log_call(worker_log *l, int priority, uint64_t duration, const char *error) {
        _cleanup_(journal_entry_done) journal_entry e = {};
        char text[512];

        if (priority > log_get_max_level())
                return;
        if (error)
                snprintf(text, sizeof(text), "Call %s failed after %.3f ms: %s", l->method ?: "->()",
                         (double) duration / 1000.0, error);
        else
                snprintf(text, sizeof(text), "Call %s answered after %.3f ms", l->method ?: "->()",
                         (double) duration / 1000.0);
        worker_entry_begin(l, &e, priority, text);
        journal_entry_add(&e, "AETASK_DURATION_USEC", "%llu", (unsigned long long) duration);
        journal_entry_add(&e, "AETASK_OUTCOME", "%s", error ? "failed" : "answered");
        journal_entry_add(&e, "AETASK_EVENT", "call");
        worker_entry_send(l, &e, priority, text);
}

int worker_log_message(worker_log *l, int priority, const char *text) {
        size_t len = strlen(text);

        if (priority < LOG_EMERG || priority > LOG_DEBUG)
                return -EINVAL;
        if (!worker_log_admit(l, len + 32))
                return 0;

        worker_entry(l, priority, text);

        if (!l->messages && !(l->messages = json_object_new_array()))
                return -ENOMEM;
        json_object *m = json_object_new_array_ext(4);
        if (!m)
                return -ENOMEM;
        json_object_array_add(m, json_object_new_int64((int64_t) now_usec(CLOCK_REALTIME)));
        json_object_array_add(m, json_object_new_int(getpid()));
        json_object_array_add(m, json_object_new_int(priority));
        json_object_array_add(m, json_object_new_string_len(text, (int) len));
        json_object_array_add(l->messages, m);
        return 0;
}

int worker_log_timer_start(worker_log *l, const char *name) {
        if (!name)
                return -EINVAL;
        if (l->n_open >= WORKER_LOG_MAX_TIMERS)
                return -EMFILE;
        char *copy = strdup(name);
        if (!copy)
                return -ENOMEM;
        l->open[l->n_open] = (open_timer) {
                .name = copy,
                .start_realtime = now_usec(CLOCK_REALTIME),
                .start_monotonic = now_usec(CLOCK_MONOTONIC),
        };
        return (int) l->n_open++;
}

int worker_log_timer_stop(worker_log *l, int timer) {
        if (timer < 0 || (unsigned) timer >= l->n_open || !l->open[timer].name)
                return -EINVAL;

        open_timer *t = &l->open[timer];
        uint64_t duration = now_usec(CLOCK_MONOTONIC) - t->start_monotonic;
        int r = 0;

        if (worker_log_admit(l, strlen(t->name) + 32)) {
                if (!l->timers && !(l->timers = json_object_new_array()))
                        r = -ENOMEM;
                else {
                        json_object *e = json_object_new_array_ext(3);
                        json_object_array_add(e, json_object_new_string(t->name));
                        json_object_array_add(e, json_object_new_int64((int64_t) t->start_realtime));
                        json_object_array_add(e, json_object_new_int64((int64_t) duration));
                        json_object_array_add(l->timers, e);
                }
        }
        free(t->name);
        t->name = NULL;
        /* Handles are indexes: shrink only from the end. */
        while (l->n_open > 0 && !l->open[l->n_open - 1].name)
                l->n_open--;
        return r;
}

int worker_log_data(worker_log *l, const char *key, json_object *value) {
        if (!key) {
                json_object_put(value);
                return -EINVAL;
        }
        size_t size = strlen(key) + (value ? strlen(json_object_to_json_string(value)) : 4);
        if (!worker_log_admit(l, size)) {
                json_object_put(value);
                return 0;
        }
        if (!l->data && !(l->data = json_object_new_object())) {
                json_object_put(value);
                return -ENOMEM;
        }
        return json_object_object_add(l->data, key, value) < 0 ? -ENOMEM : 0;
}

json_object *worker_log_end(worker_log *l) {
        json_object *logs = NULL;

        for (unsigned i = l->n_open; i > 0; i--)
                if (l->open[i - 1].name)
                        (void) worker_log_timer_stop(l, (int) i - 1);

        if (l->dropped > 0) {
                char text[128];
                snprintf(text, sizeof(text), "%u log entries of this call were dropped (more than %u entries or %u bytes)",
                         l->dropped, WORKER_LOG_MAX_ENTRIES, WORKER_LOG_MAX_BYTES);
                worker_entry(l, LOG_WARNING, text);
        }

        if (l->messages || l->timers || l->data || l->dropped) {
                logs = json_object_new_object();
                if (l->messages)
                        json_object_object_add(logs, "messages", TAKE_PTR(l->messages));
                if (l->timers)
                        json_object_object_add(logs, "timers", TAKE_PTR(l->timers));
                if (l->data)
                        json_object_object_add(logs, "data", TAKE_PTR(l->data));
                if (l->dropped)
                        json_object_object_add(logs, "dropped", json_object_new_int64(l->dropped));
        }
        l->n_entries = l->dropped = 0;
        l->bytes = 0;
        l->method = NULL;
        return logs;
}
