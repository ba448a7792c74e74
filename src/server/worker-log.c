/* The worker's per-call log: collected for the reply, mirrored to the journal. */
#include "worker-log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "json-reader.h"  /* json_object_putp() */
#include "json-writer.h"
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

/* Starts one more element (or member) of LIST: a comma after the last. */
static int list_next(buffer *list) {
        return buffer_length(list) > 0 ? buffer_append(list, ",", 1) : 0;
}

int worker_log_message(worker_log *l, int priority, const char *text) {
        size_t len = strlen(text), before = buffer_length(&l->messages);
        char head[64];
        int r;

        if (priority < LOG_EMERG || priority > LOG_DEBUG)
                return -EINVAL;
        if (!worker_log_admit(l, len + 32))
                return 0;

        worker_entry(l, priority, text);

        /* [USEC, PID, PRIORITY, "text"] */
        snprintf(head, sizeof(head), "[%" PRIu64 ",%d,%d,", now_usec(CLOCK_REALTIME), (int) getpid(), priority);
        if ((r = list_next(&l->messages)) < 0 ||
            (r = buffer_append_str(&l->messages, head)) < 0 ||
            (r = json_write_text(&l->messages, text, len)) < 0 ||
            (r = buffer_append(&l->messages, "]", 1)) < 0) {
                l->messages.end = l->messages.start + before;
                return r;
        }
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
                /* ["name", START_USEC, DURATION_USEC] */
                size_t before = buffer_length(&l->timers);
                char tail[64];

                snprintf(tail, sizeof(tail), ",%" PRIu64 ",%" PRIu64 "]", t->start_realtime, duration);
                if ((r = list_next(&l->timers)) < 0 ||
                    (r = buffer_append(&l->timers, "[", 1)) < 0 ||
                    (r = json_write_text(&l->timers, t->name, strlen(t->name))) < 0 ||
                    (r = buffer_append_str(&l->timers, tail)) < 0)
                        l->timers.end = l->timers.start + before;
        }
        free(t->name);
        t->name = NULL;
        /* Handles are indexes: shrink only from the end. */
        while (l->n_open > 0 && !l->open[l->n_open - 1].name)
                l->n_open--;
        return r;
}

int worker_log_data(worker_log *l, const char *key, json_object *value) {
        _cleanup_(json_object_putp) json_object *v = value;
        size_t before = buffer_length(&l->data);
        int r;

        if (!key)
                return -EINVAL;
        /* "key": VALUE, written first: its size is what the budget charges. */
        if ((r = list_next(&l->data)) < 0 ||
            (r = json_write_text(&l->data, key, strlen(key))) < 0 ||
            (r = buffer_append(&l->data, ":", 1)) < 0 ||
            (r = json_write_value(&l->data, v)) < 0) {
                l->data.end = l->data.start + before;
                return r == -ENOMEM ? r : -EINVAL;
        }
        if (!worker_log_admit(l, buffer_length(&l->data) - before))
                l->data.end = l->data.start + before;
        return 0;
}

/* Appends ,"NAME":[LIST] or ,"NAME":{LIST} for a list with entries. */
static int append_list(buffer *logs, const char *name, const buffer *list, const char brackets[2]) {
        int r;

        if (buffer_length(list) == 0)
                return 0;
        if (buffer_length(logs) > 1 && (r = buffer_append(logs, ",", 1)) < 0)
                return r;
        if ((r = json_write_string(logs, name, strlen(name))) < 0 ||
            (r = buffer_append(logs, ":", 1)) < 0 ||
            (r = buffer_append(logs, &brackets[0], 1)) < 0 ||
            (r = buffer_append(logs, buffer_head(list), buffer_length(list))) < 0)
                return r;
        return buffer_append(logs, &brackets[1], 1);
}

static int write_logs(worker_log *l) {
        char dropped[48];
        int r;

        buffer_clear(&l->logs);
        if ((r = buffer_append(&l->logs, "{", 1)) < 0 ||
            (r = append_list(&l->logs, "messages", &l->messages, "[]")) < 0 ||
            (r = append_list(&l->logs, "timers", &l->timers, "[]")) < 0 ||
            (r = append_list(&l->logs, "data", &l->data, "{}")) < 0)
                return r;
        if (l->dropped > 0) {
                snprintf(dropped, sizeof(dropped), "%s\"dropped\":%u", buffer_length(&l->logs) > 1 ? "," : "",
                         l->dropped);
                if ((r = buffer_append_str(&l->logs, dropped)) < 0)
                        return r;
        }
        return buffer_append(&l->logs, "}", 2);  /* and the NUL */
}

const char *worker_log_end(worker_log *l) {
        const char *logs = NULL;

        for (unsigned i = l->n_open; i > 0; i--)
                if (l->open[i - 1].name)
                        (void) worker_log_timer_stop(l, (int) i - 1);

        if (l->dropped > 0) {
                char text[128];
                snprintf(text, sizeof(text), "%u log entries of this call were dropped (more than %u entries or %u bytes)",
                         l->dropped, WORKER_LOG_MAX_ENTRIES, WORKER_LOG_MAX_BYTES);
                worker_entry(l, LOG_WARNING, text);
        }

        bool any = buffer_length(&l->messages) > 0 || buffer_length(&l->timers) > 0 ||
                   buffer_length(&l->data) > 0 || l->dropped > 0;
        /* Out of memory: the reply goes without them. */
        if (any && write_logs(l) >= 0)
                logs = buffer_head(&l->logs);
        buffer_clear(&l->messages);
        buffer_clear(&l->timers);
        buffer_clear(&l->data);
        l->n_entries = l->dropped = 0;
        l->bytes = 0;
        l->method = NULL;
        return logs;
}

void worker_log_done(worker_log *l) {
        for (unsigned i = 0; i < l->n_open; i++)
                free(l->open[i].name);
        l->n_open = 0;
        buffer_done(&l->messages);
        buffer_done(&l->timers);
        buffer_done(&l->data);
        buffer_done(&l->logs);
}
