/* Per-handler metrics: calls, errors by kind and call durations, counted by
 * the workers themselves in a small block of shared memory (atomic adds, no
 * message to the server); workers spawned and retired by cause, counted by
 * the server as it reaps them.  Memory is fixed: the durations go to a
 * histogram (histogram.h), whatever the number of calls. */
#include <string.h>
#include <sys/wait.h>

#include "json-out.h"
#include "macro.h"
#include "protocol.h"
#include "server-internal.h"

static const char *const retire_cause_names[_RETIRE_CAUSE_MAX] = {
        [RETIRE_NONE] = "none",
        [RETIRE_RELOAD] = "reload",
        [RETIRE_SHUTDOWN] = "shutdown",
        [RETIRE_LIFETIME] = "lifetime",
        [RETIRE_RSS] = "rss",
        [RETIRE_RELEASED] = "released",
        [RETIRE_HUNG] = "hung",
        [RETIRE_ABANDONED] = "abandoned",
        [RETIRE_DRAIN_KILLED] = "drain_killed",
        [RETIRE_SETUP_FAILED] = "setup_failed",
        [RETIRE_DIED] = "died",
};

const char *retire_cause_to_string(retire_cause c) {
        return c < _RETIRE_CAUSE_MAX ? retire_cause_names[c] : "unknown";
}

static const char *const call_error_names[_CALL_ERROR_MAX] = {
        [CALL_ERROR_HANDLER] = "handler",
        [CALL_ERROR_METHOD_NOT_FOUND] = "method_not_found",
        [CALL_ERROR_SETUP] = "setup",
};

const char *call_error_to_string(call_error e) {
        return e < _CALL_ERROR_MAX ? call_error_names[e] : "none";
}

call_error call_error_from_protocol(const char *error) {
        if (!error)
                return CALL_OK;
        if (strcmp(error, PROTOCOL_ERROR_SETUP) == 0)
                return CALL_ERROR_SETUP;
        if (strcmp(error, PROTOCOL_ERROR_METHOD_NOT_FOUND) == 0)
                return CALL_ERROR_METHOD_NOT_FOUND;
        return CALL_ERROR_HANDLER;
}

/* Why REC ended.  What the server did to it comes first (it knows), then a
 * setup that never finished, then the exit status. */
static retire_cause exit_cause(aetask_server *s, const worker_record *rec, int status) {
        slot_setup setup = slot_get_setup(rec->slot);

        if (rec->killed_drain)
                return RETIRE_DRAIN_KILLED;
        if (rec->killed_abandoned)
                return RETIRE_ABANDONED;
        if (setup == SLOT_SETUP_FAILED || (setup == SLOT_SETUP_RUNNING && !rec->recycled))
                return RETIRE_SETUP_FAILED;
        if (rec->killed_hung)
                return RETIRE_HUNG;
        if (WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0))
                return RETIRE_DIED;
        if (rec->retire != RETIRE_NONE)
                return rec->retire;
        return RETIRE_RELEASED;
}

retire_cause metrics_worker_exited(aetask_server *s, worker_record *rec, int status) {
        retire_cause c = exit_cause(s, rec, status);

        s->gov.retired[c]++;
        return c;
}

void metrics_call_done(aetask_server *s, uint64_t usec, call_error error) {
        metrics_shared *m = s->gov.shared;

        if (!m)
                return;  /* a worker of a server not running (the fuzzer's) */
        __atomic_fetch_add(&m->calls, 1, __ATOMIC_RELAXED);
        if (error < _CALL_ERROR_MAX)
                __atomic_fetch_add(&m->errors[error], 1, __ATOMIC_RELAXED);
        histogram_add(&m->call_usec, usec);
}

void metrics_sample(aetask_server *s) {
        governance *g = &s->gov;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        uint64_t calls = g->shared ? __atomic_load_n(&g->shared->calls, __ATOMIC_RELAXED) : 0;

        if (g->rate_at > 0 && now > g->rate_at)
                g->calls_per_sec = (double) (calls - g->rate_calls) * USEC_PER_SEC / (double) (now - g->rate_at);
        g->rate_calls = calls;
        g->rate_at = now;
}

static void put_metrics(json_out *o, aetask_server *s) {
        governance *g = &s->gov;

        json_out_open(o, "metrics", '{');
        json_out_u64(o, "calls", __atomic_load_n(&g->shared->calls, __ATOMIC_RELAXED));
        json_out_open(o, "errors", '{');
        for (call_error e = 0; e < _CALL_ERROR_MAX; e++)
                json_out_u64(o, call_error_to_string(e), __atomic_load_n(&g->shared->errors[e], __ATOMIC_RELAXED));
        json_out_close(o);
        json_out_u64(o, "call_usec_p50", histogram_quantile(&g->shared->call_usec, 0.50));
        json_out_u64(o, "call_usec_p99", histogram_quantile(&g->shared->call_usec, 0.99));
        json_out_decimal(o, "calls_per_sec", g->calls_per_sec, 1);
        json_out_u64(o, "workers_spawned", g->spawned);
        json_out_open(o, "retired", '{');
        for (retire_cause c = RETIRE_NONE + 1; c < _RETIRE_CAUSE_MAX; c++)
                json_out_u64(o, retire_cause_to_string(c), g->retired[c]);
        json_out_close(o);
        json_out_u64(o, "killed_hung", g->retired[RETIRE_HUNG]);
        json_out_close(o);
}

static void put_backoff(json_out *o, aetask_server *s) {
        const backoff *b = &s->gov.backoff;
        uint64_t now = now_usec(CLOCK_MONOTONIC);

        json_out_open(o, "backoff", '{');
        json_out_u64(o, "failures", b->failures);
        json_out_u64(o, "delay_usec", b->delay);
        json_out_u64(o, "next_attempt_usec", b->until > now ? b->until - now : 0);
        json_out_u64(o, "probes", b->attempts);
        json_out_text(o, "last_error", b->last_error);
        json_out_close(o);
}

void metrics_put_status(json_out *o, aetask_server *s) {
        if (s->gov.shared)
                put_metrics(o, s);
        if (s->gov.max_lifetime > 0)
                json_out_u64(o, "max_worker_lifetime_usec", s->gov.max_lifetime);
        if (s->gov.max_rss > 0)
                json_out_u64(o, "max_worker_rss", s->gov.max_rss);
        if (backoff_active(s))
                put_backoff(o, s);
}

void metrics_put_worker(json_out *o, const worker_record *rec) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);

        json_out_u64(o, "rss", recycle_read_rss(rec->pid));
        if (rec->retire != RETIRE_NONE)
                json_out_text(o, "retiring", retire_cause_to_string(rec->retire));
        else if (rec->retire_after > 0)
                json_out_u64(o, "retire_in_usec", rec->retire_after > now ? rec->retire_after - now : 0);
}
