/* A checkout's trace: its id, and the client's journal entries about it. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <systemd/sd-id128.h>
#include <time.h>

#include "client-internal.h"
#include "journal.h"
#include "log-context.h"
#include "macro.h"
#include "message-ids.h"
#include "protocol.h"
#include "time-util.h"

extern char *program_invocation_short_name;

/* "%016x-%u" of BASE and NUMBER, by hand: it is written for every call, and
 * snprintf() cost a tenth of a small call's instructions. */
static void format_trace(char buf[static CHECKOUT_TRACE_MAX], uint64_t base, uint64_t number) {
        static const char hex[] = "0123456789abcdef";
        char digits[20];
        size_t n = 0;

        for (unsigned i = 0; i < 16; i++)
                buf[i] = hex[(base >> (60 - 4 * i)) & 0xf];
        buf[16] = '-';
        do
                digits[n++] = (char) ('0' + number % 10);
        while ((number /= 10) > 0);
        for (size_t i = 0; i < n; i++)
                buf[17 + i] = digits[n - 1 - i];
        buf[17 + n] = 0;
}

const char *checkout_trace_id(aetask_checkout *co, char buf[static CHECKOUT_TRACE_MAX]) {
        if (co->trace_own)
                return co->trace_own;
        if (co->trace_number == 0) {
                aetask_client *c = co->client;
                if (!c)
                        return NULL;
                if (c->trace_base == 0) {
                        sd_id128_t id;
                        if (sd_id128_randomize(&id) >= 0)
                                memcpy(&c->trace_base, id.bytes, sizeof(c->trace_base));
                        c->trace_base |= 1;
                }
                /* Unique without a syscall per checkout: a random per-client
                 * prefix and a counter. */
                co->trace_base = c->trace_base;
                co->trace_number = ++c->n_traces;
        }
        format_trace(buf, co->trace_base, co->trace_number);
        return buf;
}

_public_ int aetask_checkout_set_trace_id(aetask_checkout *co, const char *id) {
        char *copy;

        assert_return(co, -EINVAL);
        assert_return(protocol_trace_is_valid(id), -EINVAL);
        assert_return(!checkout_origin_changed(co), -ECHILD);
        assert_return(!co->worker && list_is_empty(&co->calls), -EBUSY);
        copy = strdup(id);
        if (!copy)
                return -ENOMEM;
        free(co->trace_own);
        co->trace_own = copy;
        return 0;
}

_public_ const char *aetask_checkout_get_trace_id(aetask_checkout *co) {
        char buf[CHECKOUT_TRACE_MAX];
        const char *id;

        assert_return(co, NULL);
        assert_return(!checkout_origin_changed(co), NULL);
        /* The string lasts as long as the checkout: made its own. */
        id = checkout_trace_id(co, buf);
        if (id == buf)
                co->trace_own = strdup(buf);
        return id == buf ? co->trace_own : id;
}

_public_ int aetask_client_set_journal(aetask_client *c, int b) {
        assert_return(c, -EINVAL);
        assert_return(!client_origin_changed(c), -ECHILD);
        c->journal = !!b;
        return 0;
}

_public_ int aetask_checkout_set_log(aetask_checkout *co, aetask_log *l) {
        assert_return(co, -EINVAL);
        assert_return(!checkout_origin_changed(co), -ECHILD);
        aetask_log_ref(l);
        aetask_log_unref(co->log);
        co->log = l;
        return 0;
}

_public_ aetask_log *aetask_checkout_get_log(aetask_checkout *co) {
        assert_return(co, NULL);
        assert_return(!checkout_origin_changed(co), NULL);
        return co->log;
}

bool checkout_is_traced(aetask_checkout *co) {
        return co->log || (co->client && co->client->journal);
}

static bool checkout_journals(aetask_checkout *co) {
        return (co->log && co->log->journal) || (co->client && co->client->journal);
}

void checkout_journal(aetask_checkout *co, const char *event, int priority, const char *message_id,
                      const char *method, uint64_t duration, const char *kind, const char *format, ...) {
        char text[1016];
        va_list ap;

        if (!checkout_journals(co))
                return;
        va_start(ap, format);
        vsnprintf(text, sizeof(text), format, ap);
        va_end(ap);
        checkout_journal_text(co, event, priority, message_id, method, duration, kind, text);
}

void checkout_journal_text(aetask_checkout *co, const char *event, int priority, const char *message_id,
                           const char *method, uint64_t duration, const char *kind, const char *text) {
        _cleanup_(journal_entry_done) journal_entry e = {};

        journal_entry_add(&e, "MESSAGE", "%s", text);
        journal_entry_add(&e, "PRIORITY", "%d", priority);
        journal_entry_add(&e, "SYSLOG_IDENTIFIER", "%s", program_invocation_short_name ?: "aetask-client");
        journal_entry_add(&e, "AETASK_ORIGIN", "client");
        char trace[CHECKOUT_TRACE_MAX];
        journal_entry_add(&e, "AETASK_TRACE", "%s", checkout_trace_id(co, trace) ?: "");
        journal_entry_add(&e, "AETASK_EVENT", "%s", event);
        if (co->client && co->client->name)
                journal_entry_add(&e, "AETASK_CLIENT", "%s", co->client->name);
        if (method)
                journal_entry_add(&e, "AETASK_METHOD", "%s", method);
        if (duration != UINT64_MAX)
                journal_entry_add(&e, "AETASK_DURATION_USEC", "%" PRIu64, duration);
        if (kind)
                journal_entry_add(&e, "AETASK_ERROR_KIND", "%s", kind);
        if (message_id)
                journal_entry_add(&e, "MESSAGE_ID", "%s", message_id);
        (void) journal_entry_send(&e);
}

void call_trace_sent(aetask_checkout *co, call *k) {
        if (!checkout_is_traced(co))
                return;
        k->sent_realtime = now_usec(CLOCK_REALTIME);
        k->sent_monotonic = now_usec(CLOCK_MONOTONIC);
}

void call_trace_done(aetask_checkout *co, call *k, json_object *logs, const char *error) {
        const char *method = call_method(k) ?: "->()";  /* "->()": the catch-all */

        if (co->log && logs)
                log_context_merge(co->log, logs);
        if (!checkout_is_traced(co) || k->sent_monotonic == 0)
                return;

        uint64_t duration = now_usec(CLOCK_MONOTONIC) - k->sent_monotonic;
        if (co->log)
                (void) log_context_add_timer(co->log, method, k->sent_realtime, duration);
        checkout_journal(co, "call", error ? LOG_NOTICE : LOG_DEBUG, NULL, method, duration, NULL,
                         "Call %s %s after %.3f ms", method, error ? "failed" : "answered", (double) duration / 1000.0);
}
