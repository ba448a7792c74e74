/* Pool governance against a real forked server: the queue cap (fail fast,
 * from the loop), the queue-wait timeout apart from the call timeout,
 * priority classes with ageing under a mixed load, worker lifetimes with
 * jitter, and the live metrics that count all of it.  The lines starting
 * "figure:" are the numbers issue 14's closing note quotes. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "macro.h"
#include "time-util.h"

/* ---- The handler: sleeps for the milliseconds asked, answers its pid ----- */

static int g_sleep(aetask_worker *w, json_object *args, json_object **ret) {
        int64_t ms = json_object_get_int64(json_object_array_get_idx(args, 0));

        if (ms > 0)
                usleep((useconds_t) ms * 1000);
        *ret = json_object_new_int64(getpid());
        return 0;
}

static int g_fail(aetask_worker *w, json_object *args, json_object **ret) {
        return aetask_worker_raise(w, "asked to fail");
}

static const aetask_method g_methods[] = { { "sleep", g_sleep }, { "fail", g_fail }, {} };

static const aetask_handler governance_handler = {
        .abi_version = AETASK_HANDLER_ABI_VERSION,
        .name = "governance",
        .methods = g_methods,
};

static void start(void) {
        fixture_start(&governance_handler, NULL, NULL);
}

TestSuite(governance, .init = start, .fini = fixture_finish);

/* One checkout's story: when it was made, when its call ended, how. */
typedef struct job {
        uint64_t made, ended;
        int priority;
        bool done;
        aetask_error_kind kind;
        char message[256];
        int64_t pid;
        int order;                        /* 1 for the first call to end, ... */
        bool in_call;                     /* set around aetask_checkout_call() */
} job;

static int n_ended;

static int on_job(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        job *j = userdata;

        cr_assert_not(j->in_call, "a reply handler ran inside aetask_checkout_call()");
        j->done = true;
        j->ended = now_usec(CLOCK_MONOTONIC);
        j->order = ++n_ended;
        j->kind = error ? error->kind : 0;
        snprintf(j->message, sizeof(j->message), "%s", error ? error->message : "");
        j->pid = result ? json_object_get_int64(result) : 0;
        aetask_checkout_release(co);
        return 1;  /* handled here */
}

/* A checkout of PRIORITY running sleep(MS), released when it ends. */
static void submit_with(job *j, int priority, int ms, aetask_reply_handler_t callback) {
        aetask_checkout *co;

        *j = (job) { .made = now_usec(CLOCK_MONOTONIC), .priority = priority };
        cr_assert_eq(aetask_client_checkout(client, &co), 0);
        cr_assert_eq(aetask_checkout_set_priority(co, priority), 0);
        j->in_call = true;
        cr_assert_eq(aetask_checkout_call_format(co, NULL, "sleep", callback, j, "i", (int64_t) ms), 0);
        j->in_call = false;
        aetask_checkout_unref(co);
}

static void submit(job *j, int priority, int ms) {
        submit_with(j, priority, ms, on_job);
}

static void wait_all(job *jobs, size_t n, double max_seconds) {
        for (size_t i = 0; i < n; i++)
                test_run_until(event, &jobs[i].done, max_seconds);
}

static aetask_client_metrics metrics(void) {
        aetask_client_metrics m;
        cr_assert_eq(aetask_client_get_metrics(client, &m, sizeof(m)), 0);
        cr_assert_eq(m.size, sizeof(m));
        return m;
}

/* ---- 1. The queue cap --------------------------------------------------- */

Test(governance, over_the_queue_cap_a_checkout_fails_at_once_from_the_loop) {
        job jobs[12];

        aetask_client_set_max_workers(client, 2);
        cr_assert_eq(aetask_client_set_max_queued(client, 3), 0);

        /* Two run, three wait, seven are refused. */
        for (size_t i = 0; i < 12; i++)
                submit(&jobs[i], AETASK_PRIORITY_NORMAL, 300);
        unsigned queued = 0;
        cr_assert_eq(aetask_client_get_pool(client, NULL, NULL, &queued), 0);
        cr_assert_eq(queued, 3, "the cap holds the queue at 3, not %u", queued);

        /* The refusals come on the first turn of the loop, long before a
         * worker is free. */
        test_run_until(event, &jobs[11].done, 5);
        uint64_t refused_after = jobs[11].ended - jobs[11].made;
        cr_assert_lt(refused_after, 150000, "refused after %llu usec", (unsigned long long) refused_after);
        wait_all(jobs, 12, 10);

        int refused = 0, served = 0;
        for (size_t i = 0; i < 12; i++) {
                if (jobs[i].kind == AETASK_ERROR_QUEUE_FULL) {
                        refused++;
                        cr_assert_lt(jobs[i].ended - jobs[i].made, 150000);
                        cr_assert(strstr(jobs[i].message, "queue cap"), "message: %s", jobs[i].message);
                } else {
                        cr_assert_eq(jobs[i].kind, 0, "%zu failed: %s", i, jobs[i].message);
                        served++;
                }
        }
        cr_assert_eq(refused, 7);
        cr_assert_eq(served, 5);
        for (size_t i = 5; i < 12; i++)
                cr_assert_eq(jobs[i].kind, AETASK_ERROR_QUEUE_FULL, "the last ones are refused, not %zu", i);

        aetask_client_metrics m = metrics();
        cr_assert_eq(m.refused_queue_full, 7);
        cr_assert_eq(m.errors[AETASK_ERROR_QUEUE_FULL], 7);
        cr_assert_eq(m.checkouts, 12);
        cr_assert_eq(m.calls, 12);
        cr_assert_str_eq(aetask_error_kind_to_string(AETASK_ERROR_QUEUE_FULL), "queue-full");
        printf("figure: queue cap 3, 2 workers busy 300 ms, 12 checkouts at once: %d served, %d refused "
               "(in %llu usec, from the loop)\n", served, refused, (unsigned long long) refused_after);

        /* Room again once the queue drained: the cap is on waiting, not on totals. */
        job later;
        submit(&later, AETASK_PRIORITY_NORMAL, 0);
        wait_all(&later, 1, 5);
        cr_assert_eq(later.kind, 0, "%s", later.message);
}

Test(governance, queue_cap_zero_fails_fast_once_every_worker_is_busy) {
        job jobs[3];

        aetask_client_set_max_workers(client, 2);
        cr_assert_eq(aetask_client_set_max_queued(client, 0), 0);
        for (size_t i = 0; i < 3; i++)
                submit(&jobs[i], AETASK_PRIORITY_NORMAL, 200);
        wait_all(jobs, 3, 5);
        cr_assert_eq(jobs[0].kind, 0, "the pool's own workers are not queueing: %s", jobs[0].message);
        cr_assert_eq(jobs[1].kind, 0, "%s", jobs[1].message);
        cr_assert_eq(jobs[2].kind, AETASK_ERROR_QUEUE_FULL);
}

/* Counts errors of kind queue-full. */
static void on_error(aetask_checkout *co, aetask_error_kind kind, const char *message, void *userdata) {
        cr_assert_eq(kind, AETASK_ERROR_QUEUE_FULL, "%s", message);
        (*(int *) userdata)++;
}

Test(governance, a_refused_checkout_keeps_its_error_and_reports_to_its_error_handler) {
        aetask_checkout *busy, *co;
        aetask_error_kind kind = 0;
        job j = {};
        int n = 0;

        aetask_client_set_max_workers(client, 1);
        aetask_client_set_max_queued(client, 0);
        submit(&j, AETASK_PRIORITY_NORMAL, 200);
        cr_assert_eq(aetask_client_checkout(client, &busy), 0);
        cr_assert_eq(aetask_client_checkout(client, &co), 0);
        /* No reply handler: the error handler hears it. */
        aetask_checkout_set_error_handler(co, on_error, &n);
        cr_assert_eq(aetask_checkout_call(co, NULL, "sleep", NULL, NULL, NULL), 0);
        cr_assert_eq(n, 0, "not from inside the call");
        test_run_for(event, 0.05);
        cr_assert_eq(n, 1);
        const char *message;
        cr_assert_eq(aetask_checkout_get_error(co, &kind, &message), 0);
        cr_assert_eq(kind, AETASK_ERROR_QUEUE_FULL);
        aetask_checkout_unref(co);
        aetask_checkout_unref(busy);
        wait_all(&j, 1, 5);
}

/* ---- 2. The queue-wait timeout ------------------------------------------ */

Test(governance, queue_timeout_is_its_own_error_and_its_own_clock) {
        job holder, waiter, patient;

        aetask_client_set_max_workers(client, 1);
        cr_assert_eq(aetask_client_set_queue_timeout(client, 0), -EINVAL);
        cr_assert_eq(aetask_client_set_queue_timeout(client, 150000), 0);
        submit(&holder, AETASK_PRIORITY_NORMAL, 600);
        test_run_for(event, 0.05);
        submit(&waiter, AETASK_PRIORITY_NORMAL, 0);
        wait_all(&waiter, 1, 5);
        uint64_t waited = waiter.ended - waiter.made;
        cr_assert_eq(waiter.kind, AETASK_ERROR_QUEUE_TIMEOUT, "%s", waiter.message);
        cr_assert_geq(waited, 140000);
        cr_assert_lt(waited, 500000, "waited %llu usec", (unsigned long long) waited);
        cr_assert(strstr(waiter.message, "queue timeout"), "%s", waiter.message);

        /* The call timeout does not start the queue timeout's clock: a call
         * running longer than the queue timeout is fine. */
        wait_all(&holder, 1, 5);
        cr_assert_eq(holder.kind, 0, "%s", holder.message);
        submit(&patient, AETASK_PRIORITY_NORMAL, 300);
        wait_all(&patient, 1, 5);
        cr_assert_eq(patient.kind, 0, "%s", patient.message);

        aetask_client_metrics m = metrics();
        cr_assert_eq(m.queue_timeouts, 1);
        cr_assert_eq(m.errors[AETASK_ERROR_QUEUE_TIMEOUT], 1);
        cr_assert_str_eq(aetask_error_kind_to_string(AETASK_ERROR_QUEUE_TIMEOUT), "queue-timeout");
        printf("figure: queue timeout 150 ms, the one worker busy 600 ms: the waiter failed with queue-timeout after %llu usec\n",
               (unsigned long long) waited);
}

/* ---- 3. Priority classes ------------------------------------------------- */

Test(governance, higher_classes_first_and_first_come_first_served_within_one) {
        job holder, jobs[6];
        const int classes[6] = { AETASK_PRIORITY_LOW, AETASK_PRIORITY_NORMAL, AETASK_PRIORITY_HIGH,
                                 AETASK_PRIORITY_LOW, AETASK_PRIORITY_HIGH, AETASK_PRIORITY_NORMAL };
        const int expected[6] = { 6, 4, 2, 7, 3, 5 };  /* the holder ends first */

        aetask_client_set_max_workers(client, 1);
        aetask_client_set_priority_aging(client, AETASK_TIMEOUT_INFINITY);
        cr_assert_eq(aetask_checkout_set_priority(NULL, 0), -EINVAL);
        n_ended = 0;
        submit(&holder, AETASK_PRIORITY_NORMAL, 200);
        test_run_for(event, 0.05);
        for (size_t i = 0; i < 6; i++)
                submit(&jobs[i], classes[i], 0);
        wait_all(jobs, 6, 5);
        for (size_t i = 0; i < 6; i++) {
                cr_assert_eq(jobs[i].kind, 0, "%s", jobs[i].message);
                cr_assert_eq(jobs[i].order, expected[i], "job %zu (class %d) ended %d, not %d", i, classes[i],
                             jobs[i].order, expected[i]);
        }
}

Test(governance, a_waiting_checkout_can_change_class) {
        job holder, a, b;
        aetask_checkout *co;

        aetask_client_set_max_workers(client, 1);
        n_ended = 0;
        submit(&holder, AETASK_PRIORITY_NORMAL, 200);
        test_run_for(event, 0.05);
        submit(&a, AETASK_PRIORITY_NORMAL, 0);
        b = (job) { .made = now_usec(CLOCK_MONOTONIC) };
        cr_assert_eq(aetask_client_checkout(client, &co), 0);
        cr_assert_eq(aetask_checkout_set_priority(co, 2), -EINVAL);
        cr_assert_eq(aetask_checkout_call_format(co, NULL, "sleep", on_job, &b, "i", (int64_t) 0), 0);
        cr_assert_eq(aetask_checkout_set_priority(co, AETASK_PRIORITY_HIGH), 0);
        aetask_checkout_unref(co);
        wait_all(&a, 1, 5);
        wait_all(&b, 1, 5);
        cr_assert_lt(b.order, a.order, "moved to HIGH, B goes before A");
}

/* One LOW checkout queued behind a stream of HIGH ones on one worker, two
 * always waiting, each running 30 ms, until UNTIL: when LOW is served. */
typedef struct stream {
        job jobs[100];
        size_t n;
        uint64_t until;
} stream;

static stream the_stream;

static int on_stream_job(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        on_job(co, result, error, userdata);
        if (the_stream.n < ELEMENTSOF(the_stream.jobs) && now_usec(CLOCK_MONOTONIC) < the_stream.until)
                submit_with(&the_stream.jobs[the_stream.n++], AETASK_PRIORITY_HIGH, 30, on_stream_job);
        return 1;
}

static uint64_t low_wait_behind_a_high_stream(uint64_t aging, double seconds) {
        job low;

        aetask_client_set_max_workers(client, 1);
        cr_assert_eq(aetask_client_set_priority_aging(client, aging), 0);
        the_stream = (stream) { .until = now_usec(CLOCK_MONOTONIC) + (uint64_t) (seconds * 1e6) };
        submit_with(&the_stream.jobs[the_stream.n++], AETASK_PRIORITY_HIGH, 30, on_stream_job);
        test_run_for(event, 0.02);
        submit(&low, AETASK_PRIORITY_LOW, 0);
        for (int i = 0; i < 2; i++)
                submit_with(&the_stream.jobs[the_stream.n++], AETASK_PRIORITY_HIGH, 30, on_stream_job);
        wait_all(&low, 1, seconds + 5);
        cr_assert_eq(low.kind, 0, "%s", low.message);
        /* Let the stream end, and its last checkouts with it. */
        while (now_usec(CLOCK_MONOTONIC) < the_stream.until)
                test_run_for(event, 0.05);
        wait_all(the_stream.jobs, the_stream.n, 5);
        return low.ended - low.made;
}

Test(governance, ageing_serves_a_low_checkout_behind_a_stream_of_high_ones) {
        uint64_t waited = low_wait_behind_a_high_stream(200000, 1.2);

        cr_assert_geq(waited, 200000, "served before it aged: %llu usec", (unsigned long long) waited);
        cr_assert_lt(waited, 700000, "LOW waited %llu usec with ageing at 200 ms", (unsigned long long) waited);
        printf("figure: ageing 200 ms, one worker, HIGH stream of 30 ms calls: LOW served after %llu ms "
               "(%zu HIGH checkouts in 1.2 s)\n", (unsigned long long) waited / 1000, the_stream.n);
}

Test(governance, without_ageing_a_low_checkout_starves_while_high_ones_come) {
        uint64_t waited = low_wait_behind_a_high_stream(AETASK_TIMEOUT_INFINITY, 0.8);

        /* Strict priority: LOW only after the stream stopped.  This is what
         * the ageing rule is for. */
        cr_assert_geq(waited, 750000, "LOW waited only %llu usec", (unsigned long long) waited);
        printf("figure: strict priority (ageing off), same stream for 0.8 s: LOW served after %llu ms, once the stream ended\n",
               (unsigned long long) waited / 1000);
}

/* A mixed load a little over the pool's capacity: arrivals every 9 ms,
 * classes in turn, each call 20 ms on 2 workers (capacity one per 10 ms
 * at best), for 2.25 s. */
typedef struct mixed {
        job jobs[400];
        size_t n, arrivals;
        sd_event_source *timer;
} mixed;

static mixed the_mix;

#ifndef MIX_INTERVAL
#define MIX_INTERVAL 9000
#endif

static int on_arrival(sd_event_source *s, uint64_t usec, void *userdata) {
        static const int classes[3] = { AETASK_PRIORITY_LOW, AETASK_PRIORITY_NORMAL, AETASK_PRIORITY_HIGH };

        if (the_mix.n >= the_mix.arrivals) {
                sd_event_source_set_enabled(s, SD_EVENT_OFF);
                return 0;
        }
        submit(&the_mix.jobs[the_mix.n], classes[the_mix.n % 3], 20);
        the_mix.n++;
        sd_event_source_set_time(s, usec + MIX_INTERVAL);
        return 0;
}

Test(governance, mixed_load_waits_by_class, .timeout = 60) {
        uint64_t now, max_wait[3] = {}, sum[3] = {};
        unsigned count[3] = {};

        aetask_client_set_max_workers(client, 2);
        aetask_client_set_min_workers(client, 2);
        aetask_client_set_priority_aging(client, 500000);
        test_run_for(event, 0.1);  /* the two workers are up */
        the_mix = (mixed) { .arrivals = 250 };
        cr_assert_eq(sd_event_now(event, CLOCK_MONOTONIC, &now), 0);
        cr_assert_eq(sd_event_add_time(event, &the_mix.timer, CLOCK_MONOTONIC, now, 0, on_arrival, NULL), 0);
        sd_event_source_set_enabled(the_mix.timer, SD_EVENT_ON);
        while (the_mix.n < the_mix.arrivals)
                test_run_for(event, 0.1);
        wait_all(the_mix.jobs, the_mix.n, 30);
        the_mix.timer = sd_event_source_unref(the_mix.timer);

        for (size_t i = 0; i < the_mix.n; i++) {
                job *j = &the_mix.jobs[i];
                cr_assert_eq(j->kind, 0, "%s", j->message);
                unsigned k = (unsigned) (j->priority - AETASK_PRIORITY_LOW);
                uint64_t wait = j->ended - j->made;
                count[k]++;
                sum[k] += wait;
                if (wait > max_wait[k])
                        max_wait[k] = wait;
        }
        aetask_client_metrics m = metrics();
        cr_assert_eq(m.waits, 250);
        for (unsigned k = 0; k < 3; k++)
                cr_assert_eq(m.class_waits[k], count[k]);
        printf("figure: mixed load 250 checkouts (one per %d ms, classes in turn, 20 ms calls, 2 workers, ageing 500 ms):\n", MIX_INTERVAL / 1000);
        static const char *const names[3] = { "LOW", "NORMAL", "HIGH" };
        for (unsigned k = 0; k < 3; k++)
                printf("figure:   %-6s queue wait p50 %6.1f ms  p99 %6.1f ms  (library's histogram); "
                       "call end-to-end mean %6.1f ms max %6.1f ms\n", names[k],
                       m.class_queue_wait_p50_usec[k] / 1000.0, m.class_queue_wait_p99_usec[k] / 1000.0,
                       sum[k] / 1000.0 / count[k], max_wait[k] / 1000.0);
        cr_assert_lt(m.class_queue_wait_p50_usec[2], m.class_queue_wait_p50_usec[0],
                     "HIGH waits less than LOW");
        cr_assert_leq(m.class_queue_wait_p50_usec[2], m.class_queue_wait_p50_usec[1]);
        /* Ageing bounds LOW: 500 ms, plus the aged ones ahead of it. */
        cr_assert_lt(m.class_queue_wait_p99_usec[0], 2000000);
        cr_assert_leq(m.queue_wait_p50_usec, m.queue_wait_p99_usec);
}

/* ---- 4. Worker lifetime with jitter -------------------------------------- */

/* Four chains of calls, each on its own worker (a checkout made in a reply
 * handler gets the worker just released), for SECONDS: when each worker pid
 * was first and last seen. */
typedef struct seen {
        int64_t pid;
        uint64_t first, last;
} seen;

static seen pids[64];
static size_t n_pids;
static uint64_t chains_until;

static int on_chain(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        job *j = userdata;
        size_t i;

        on_job(co, result, error, userdata);
        cr_assert_eq(j->kind, 0, "%s", j->message);
        for (i = 0; i < n_pids && pids[i].pid != j->pid; i++)
                ;
        if (i == n_pids) {
                cr_assert_lt(n_pids, ELEMENTSOF(pids));
                pids[n_pids++] = (seen) { .pid = j->pid, .first = j->ended };
        }
        pids[i].last = j->ended;
        if (j->ended < chains_until)
                submit_with(j, AETASK_PRIORITY_NORMAL, 5, on_chain);
        return 1;
}

Test(governance, worker_lifetimes_are_spread_by_jitter) {
        job chains[4];
        uint64_t start;

        cr_assert_eq(aetask_client_set_max_worker_lifetime(client, 1000000), 0);
        aetask_client_set_max_workers(client, 4);
        aetask_client_set_min_workers(client, 4);
        start = now_usec(CLOCK_MONOTONIC);
        test_run_for(event, 0.05);
        chains_until = now_usec(CLOCK_MONOTONIC) + 2500000;
        n_pids = 0;
        for (size_t i = 0; i < 4; i++)
                submit_with(&chains[i], AETASK_PRIORITY_NORMAL, 5, on_chain);
        while (now_usec(CLOCK_MONOTONIC) < chains_until)
                test_run_for(event, 0.1);
        test_run_for(event, 0.1);

        /* The first four workers, opened together at START: each retired
         * within its lifetime (1 s minus up to 20%), not all at once. */
        uint64_t lo = UINT64_MAX, hi = 0;
        printf("figure: lifetime 1 s with up to 20%% jitter, 4 workers opened together: first generation retired after");
        for (size_t i = 0; i < 4; i++) {
                uint64_t life = pids[i].last - start;
                printf(" %llu", (unsigned long long) life / 1000);
                cr_assert_geq(life, 750000, "worker %zu lived %llu usec", i, (unsigned long long) life);
                cr_assert_lt(life, 1100000, "worker %zu lived %llu usec", i, (unsigned long long) life);
                lo = life < lo ? life : lo;
                hi = life > hi ? life : hi;
        }
        aetask_client_metrics m = metrics();
        printf(" ms (spread %llu ms); %zu workers in 2.5 s, %llu recycled by lifetime\n",
               (unsigned long long) (hi - lo) / 1000, n_pids, (unsigned long long) m.recycled_lifetime);
        cr_assert_gt(hi - lo, 2000, "four lifetimes within %llu usec: no jitter", (unsigned long long) (hi - lo));
        cr_assert_geq(n_pids, 8, "two generations at least");
        cr_assert_geq(m.recycled_lifetime, 4);
}

Test(governance, an_idle_worker_past_its_lifetime_is_closed) {
        job a, b;

        aetask_client_set_max_workers(client, 1);
        aetask_client_set_min_workers(client, 0);
        cr_assert_eq(aetask_client_set_max_worker_lifetime(client, 200000), 0);
        submit(&a, AETASK_PRIORITY_NORMAL, 0);
        wait_all(&a, 1, 5);
        test_run_for(event, 0.3);
        /* Closed while idle, nobody asking (min_workers is 0). */
        aetask_client_metrics m = metrics();
        cr_assert_eq(m.recycled_lifetime, 1);
        cr_assert_eq(m.workers_idle + m.workers_busy + m.workers_connecting, 0);
        submit(&b, AETASK_PRIORITY_NORMAL, 0);
        wait_all(&b, 1, 5);
        cr_assert_eq(a.kind, 0, "%s", a.message);
        cr_assert_eq(b.kind, 0, "%s", b.message);
        cr_assert_neq(a.pid, b.pid, "a fresh worker");
        cr_assert_eq(metrics().recycled_lifetime, 1);
}

/* ---- 5. Metrics ---------------------------------------------------------- */

Test(governance, metrics_count_the_pool) {
        aetask_client_metrics m;
        aetask_checkout *co;
        job a, b;

        cr_assert_eq(aetask_client_get_metrics(NULL, &m, sizeof(m)), -EINVAL);
        cr_assert_eq(aetask_client_get_metrics(client, NULL, sizeof(m)), -EINVAL);
        cr_assert_eq(aetask_client_get_metrics(client, &m, 1), -EINVAL);

        aetask_client_set_max_workers(client, 2);
        aetask_client_set_min_workers(client, 0);
        m = metrics();
        cr_assert_eq(m.checkouts, 0);
        cr_assert_eq(m.workers_busy, 0);
        cr_assert_eq(m.workers_idle + m.workers_connecting, 2, "min_workers' two, opened at attach");

        submit(&a, AETASK_PRIORITY_NORMAL, 300);
        submit(&b, AETASK_PRIORITY_NORMAL, 300);
        cr_assert_eq(aetask_client_checkout(client, &co), 0);
        cr_assert_eq(aetask_checkout_call(co, NULL, "fail", NULL, NULL, NULL), 0);
        m = metrics();
        cr_assert_eq(m.checkouts, 3);
        cr_assert_eq(m.calls, 3);
        cr_assert_eq(m.workers_busy, 2);
        cr_assert_eq(m.queued, 1);
        wait_all(&a, 1, 5);
        wait_all(&b, 1, 5);
        test_run_for(event, 0.2);
        aetask_checkout_unref(co);
        test_run_for(event, 0.05);
        m = metrics();
        cr_assert_eq(m.errors[AETASK_ERROR_HANDLER], 1);
        cr_assert_eq(m.queued, 0);
        cr_assert_eq(m.waits, 3);
        cr_assert_geq(m.queue_wait_p99_usec, 250000, "the third waited about 300 ms: %llu",
                      (unsigned long long) m.queue_wait_p99_usec);
        cr_assert_eq(m.workers_busy, 0);
        /* The failed call's worker is not pooled again (the seed's rule). */
        cr_assert_eq(m.workers_idle, 1);

        /* An older, shorter struct: only what it knows is written. */
        aetask_client_metrics old;
        memset(&old, 0xaa, sizeof(old));
        size_t old_size = offsetof(aetask_client_metrics, calls);
        cr_assert_eq(aetask_client_get_metrics(client, &old, old_size), 0);
        cr_assert_eq(old.size, old_size);
        cr_assert_eq(old.checkouts, 3);
        cr_assert_eq(old.calls, 0xaaaaaaaaaaaaaaaaULL, "past its size nothing is written");
}
