/* aetask-load: a libaetask-sd client that keeps CONCURRENCY checkouts busy
 * for SECONDS, each making CALLS calls (by default one or two in turn)
 * METHOD(id[, sleep]) with a unique id PREFIX-N, and checks every reply is
 * its own id.  It prints
 *   sent=N answered=N failed=N unanswered=N max_ms=N
 * and exits 0 only if every call was answered and none failed.  With
 * --seconds=0 it makes one call and prints its latency (latency_ms=N).
 * Used by tests/systemd/driver.sh against a real systemd. */
#include <aetask/aetask-client.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct load {
        sd_event *event;
        aetask_client *client;
        const char *prefix, *method;
        double seconds;
        unsigned sleep_ms;
        unsigned calls_per_checkout;   /* 0: one or two in turn */
        uint64_t end;
        unsigned long seq;
        unsigned long sent, answered, failed;
        unsigned outstanding_checkouts;
        uint64_t max_usec;
} load;

typedef struct lane {
        load *l;
        aetask_checkout *co;
        unsigned pending;              /* calls of CO not answered yet */
} lane;

typedef struct pending_call {
        lane *lane;
        char id[64];
        uint64_t sent;
} pending_call;

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static void lane_start(lane *n);

static void lane_finish(lane *n) {
        load *l = n->l;

        n->co = aetask_checkout_unref(n->co);
        l->outstanding_checkouts--;
        if (now_usec() < l->end)
                lane_start(n);
        else if (l->outstanding_checkouts == 0)
                sd_event_exit(l->event, 0);
}

static int on_reply(aetask_checkout *co, json_object *result, const aetask_error *error, void *userdata) {
        if (error)
                return 0;  /* the checkout's error handler has it */
        pending_call *p = userdata;
        lane *n = p->lane;
        load *l = n->l;
        const char *got = json_object_get_string(result);
        uint64_t took = now_usec() - p->sent;

        if (got && strcmp(got, p->id) == 0)
                l->answered++;
        else {
                fprintf(stderr, "aetask-load: call %s answered with %s\n", p->id, got ?: "null");
                l->failed++;
        }
        if (took > l->max_usec)
                l->max_usec = took;
        free(p);
        if (--n->pending == 0)
                lane_finish(n);
        return 0;
}

static void on_error(aetask_checkout *co, aetask_error_kind kind, const char *message, void *userdata) {
        lane *n = userdata;
        load *l = n->l;

        /* The checkout is over: its calls not answered yet failed with it. */
        fprintf(stderr, "aetask-load: %s error on %u calls: %s\n",
                aetask_error_kind_to_string(kind), n->pending, message);
        l->failed += n->pending;
        n->pending = 0;
        lane_finish(n);
}

static void lane_start(lane *n) {
        load *l = n->l;
        unsigned calls = l->seconds <= 0 ? 1 : l->calls_per_checkout ?: 1 + l->seq % 2;
        int r;

        r = aetask_client_checkout(l->client, &n->co);
        if (r < 0) {
                fprintf(stderr, "aetask-load: checkout: %s\n", strerror(-r));
                exit(EXIT_FAILURE);
        }
        (void) aetask_checkout_set_error_handler(n->co, on_error, n);
        l->outstanding_checkouts++;
        for (unsigned i = 0; i < calls; i++) {
                pending_call *p = calloc(1, sizeof(*p));
                json_object *args = json_object_new_array();

                if (!p || !args)
                        exit(EXIT_FAILURE);
                p->lane = n;
                snprintf(p->id, sizeof(p->id), "%s-%lu", l->prefix, l->seq++);
                p->sent = now_usec();
                json_object_array_add(args, json_object_new_string(p->id));
                if (strcmp(l->method, "record") == 0)
                        json_object_array_add(args, json_object_new_double(
                                l->sleep_ms > 0 ? (double) (rand() % (l->sleep_ms + 1)) / 1000.0 : 0));
                r = aetask_checkout_call(n->co, NULL, l->method, args, on_reply, p);
                json_object_put(args);
                if (r < 0) {
                        fprintf(stderr, "aetask-load: call: %s\n", strerror(-r));
                        exit(EXIT_FAILURE);
                }
                l->sent++;
                n->pending++;
        }
}

static int on_give_up(sd_event_source *s, uint64_t usec, void *userdata) {
        load *l = userdata;
        fprintf(stderr, "aetask-load: gave up waiting for %u checkouts\n", l->outstanding_checkouts);
        return sd_event_exit(l->event, 0);
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "method",      required_argument, NULL, 'm' },
                { "prefix",      required_argument, NULL, 'p' },
                { "seconds",     required_argument, NULL, 's' },
                { "concurrency", required_argument, NULL, 'c' },
                { "sleep-ms",    required_argument, NULL, 'z' },
                { "calls",       required_argument, NULL, 'n' },
                {}
        };
        load l = { .prefix = "c", .method = "record", .seconds = 5 };
        unsigned concurrency = 4;
        lane *lanes;
        int c, r;

        while ((c = getopt_long(argc, argv, "m:p:s:c:z:n:", options, NULL)) >= 0)
                switch (c) {
                case 'm': l.method = optarg; break;
                case 'p': l.prefix = optarg; break;
                case 's': l.seconds = atof(optarg); break;
                case 'c': concurrency = (unsigned) atoi(optarg); break;
                case 'z': l.sleep_ms = (unsigned) atoi(optarg); break;
                case 'n': l.calls_per_checkout = (unsigned) atoi(optarg); break;
                default: return 2;
                }
        if (optind + 1 != argc || concurrency == 0) {
                fprintf(stderr, "Usage: aetask-load [--method M] [--prefix P] [--seconds S] "
                                "[--concurrency N] [--sleep-ms MAX] [--calls N] ADDRESS\n");
                return 2;
        }
        srand((unsigned) getpid());
        if (l.seconds <= 0)
                concurrency = 1;

        r = sd_event_default(&l.event);
        if (r >= 0)
                r = aetask_client_new(&l.client, argv[optind]);
        if (r < 0) {
                fprintf(stderr, "aetask-load: %s: %s\n", argv[optind], strerror(-r));
                return 1;
        }
        (void) aetask_client_set_min_workers(l.client, l.seconds > 0 ? 2 : 0);
        (void) aetask_client_set_max_workers(l.client, concurrency);
        (void) aetask_client_set_timeout(l.client, 60 * 1000000ULL);
        r = aetask_client_attach_event(l.client, l.event, 0);
        if (r < 0)
                return 1;
        (void) sd_event_add_time_relative(l.event, NULL, CLOCK_MONOTONIC,
                                          (uint64_t) (l.seconds * 1e6) + 90 * 1000000ULL, 0, on_give_up, &l);

        uint64_t start = now_usec();
        l.end = start + (uint64_t) (l.seconds * 1e6);
        lanes = calloc(concurrency, sizeof(lane));
        for (unsigned i = 0; i < concurrency; i++) {
                lanes[i].l = &l;
                lane_start(&lanes[i]);
        }
        (void) sd_event_loop(l.event);

        unsigned long unanswered = l.sent - l.answered - l.failed;
        if (l.seconds <= 0)
                printf("latency_ms=%.1f\n", (double) (now_usec() - start) / 1000.0);
        printf("sent=%lu answered=%lu failed=%lu unanswered=%lu max_ms=%.1f\n",
               l.sent, l.answered, l.failed, unanswered, (double) l.max_usec / 1000.0);
        l.client = aetask_client_unref(l.client);
        sd_event_unref(l.event);
        free(lanes);
        return l.failed == 0 && unanswered == 0 ? 0 : 1;
}
