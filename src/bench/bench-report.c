/* aetask-bench's results: each figure's samples, one per run, printed as a
 * table or as JSON with the median, min and max, the ratio to the floor, and
 * whether the targets of the benchmark issue hold. */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench.h"

int compare_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

/* ---- Results ------------------------------------------------------------ */

typedef struct figure {
        const char *workload;
        const char *name;
        const char *label;       /* the unit as printed */
        unit unit;
        size_t n;
        double samples[MAX_RUNS];
} figure;

static figure figures[128];
static size_t n_figures;

static figure *figure_get(const char *workload, const char *name, const char *label, unit u) {
        for (size_t i = 0; i < n_figures; i++)
                if (strcmp(figures[i].workload, workload) == 0 && strcmp(figures[i].name, name) == 0)
                        return &figures[i];
        if (n_figures >= sizeof(figures) / sizeof(figures[0]))
                die("too many figures");
        figures[n_figures] = (figure) { .workload = workload, .name = name, .label = label, .unit = u };
        return &figures[n_figures++];
}

void record(const char *workload, const char *name, const char *label, unit u, double v) {
        figure *f = figure_get(workload, name, label, u);
        if (f->n < MAX_RUNS)
                f->samples[f->n++] = v;
}

static void figure_stats(const figure *f, double *ret_median, double *ret_min, double *ret_max) {
        double s[MAX_RUNS];
        memcpy(s, f->samples, f->n * sizeof(double));
        qsort(s, f->n, sizeof(double), compare_double);
        *ret_min = s[0];
        *ret_max = s[f->n - 1];
        *ret_median = f->n % 2 ? s[f->n / 2] : (s[f->n / 2 - 1] + s[f->n / 2]) / 2;
}

static const figure *figure_find(const char *workload, const char *name) {
        for (size_t i = 0; i < n_figures; i++)
                if (strcmp(figures[i].workload, workload) == 0 && strcmp(figures[i].name, name) == 0 &&
                    figures[i].n > 0)
                        return &figures[i];
        return NULL;
}

double figure_median(const char *workload, const char *name) {
        const figure *f = figure_find(workload, name);
        double med, min, max;
        if (!f)
                return NAN;
        figure_stats(f, &med, &min, &max);
        return med;
}

/* The ratio of a figure to the floor: its rate over the floor's, or its time
 * over the floor's round trip. */
static double floor_ratio(const figure *f, double v) {
        double floor_rate = figure_median("floor", "rate");

        if (isnan(floor_rate) || f->unit == UNIT_COUNT)
                return NAN;
        if (f->unit == UNIT_RATE)
                return v / floor_rate;
        return v / (USEC_PER_SEC / floor_rate);
}

/* ---- Output ------------------------------------------------------------- */

typedef struct target {
        const char *what;
        double value, limit;
        bool at_least;
} target;

static size_t collect_targets(target *t) {
        size_t n = 0;
        double held = figure_median("held", "rate"), cycle = figure_median("cycle", "rate");
        double parallel = figure_median("parallel", "rate"), payload = figure_median("payload", "rate");
        double one = figure_median("offload", "1-worker"), two = figure_median("offload", "2-workers");
        double first = figure_median("spawn", "first"), last = figure_median("spawn", "last");
        double floor_rate = figure_median("floor", "rate");

        if (!isnan(held))
                t[n++] = (target) { "held / floor", held / floor_rate, 0.7, true };
        if (!isnan(cycle))
                t[n++] = (target) { "cycle / floor", cycle / floor_rate, 0.5, true };
        if (!isnan(parallel) && !isnan(held))
                t[n++] = (target) { "parallel / held", parallel / held, 1.5, true };
        if (!isnan(first)) {
                t[n++] = (target) { "spawn last 10% (ms)", last / 1000, 1.0, false };
                t[n++] = (target) { "spawn last / first", last / first, 1.1, false };
                const figure *b = figure_find("spawn", "fds-before"), *a = figure_find("spawn", "fds-after");
                double growth = 0;
                for (size_t i = 0; a && b && i < a->n; i++)
                        growth = fmax(growth, a->samples[i] - b->samples[i]);
                t[n++] = (target) { "server fds gained", growth, 0, false };
        }
        if (!isnan(payload))
                t[n++] = (target) { "payload (calls/s)", payload, 1500, true };
        double payload_floor = figure_median("payload", "floor");
        if (!isnan(payload) && !isnan(payload_floor))
                t[n++] = (target) { "payload / its floor", payload / payload_floor, 0.5, true };
        double big = figure_median("payload", "1m-rate"), big_floor = figure_median("payload", "1m-floor");
        if (!isnan(big) && !isnan(big_floor))
                t[n++] = (target) { "payload 1 MiB / its floor", big / big_floor, 0.5, true };
        /* With spares the fork still happens, in the background: a client
         * spawning back to back outruns it, and the figure is the fork's.
         * What spares save is the setup (tests/test-spares). */
        double spare_last = figure_median("spares", "last");
        if (!isnan(spare_last))
                t[n++] = (target) { "spawn with spares (ms)", spare_last / 1000, 1.0, false };
        if (!isnan(one)) {
                t[n++] = (target) { "offload 2 / 1 workers", two / one, 1.8, true };
                t[n++] = (target) { "timer p99 lateness (ms)", figure_median("offload", "timer-p99"), 2.0, false };
        }
        double scaling;
        if (bench_many_scaling("rate", &scaling))
                t[n++] = (target) { "many: largest / best step", scaling, 0.8, true };
        /* Not aetask's: how far the machine itself falls, for scale. */
        if (bench_many_scaling("floor", &scaling))
                t[n++] = (target) { "many floor: largest / best", scaling, 0.8, true };
        double mem = figure_median("memory", "rss-per-checkout");
        if (!isnan(mem))
                t[n++] = (target) { "memory (B/checkout)", mem, 512, false };
        return n;
}

/* The machine, and how busy it was: ratios hold only for a quiet one. */
static struct {
        double load_start[3];
        uint64_t start;
} run_info;

void report_begin(void) {
        (void) getloadavg(run_info.load_start, 3);
        run_info.start = now_usec(CLOCK_MONOTONIC);
}

static void machine_line(char *buf, size_t size) {
        double load[3] = {};
        struct utsname u;

        (void) getloadavg(load, 3);
        uname(&u);
        snprintf(buf, size, "%ld CPUs, Linux %s; load average %.2f %.2f %.2f at the start, %.2f %.2f %.2f at the end; "
                 "%.0f s; %u runs of %g s",
                 sysconf(_SC_NPROCESSORS_ONLN), u.release,
                 run_info.load_start[0], run_info.load_start[1], run_info.load_start[2], load[0], load[1], load[2],
                 (double) (now_usec(CLOCK_MONOTONIC) - run_info.start) / USEC_PER_SEC, arg.runs, arg.duration);
}

void report_print_table(void) {
        target t[24];
        size_t n_t = collect_targets(t);
        char machine[512];

        printf("%-9s %-18s %12s %12s %12s %-14s %10s\n", "workload", "figure", "median", "min", "max", "unit", "vs floor");
        for (size_t i = 0; i < n_figures; i++) {
                const figure *f = &figures[i];
                double med, min, max;
                char ratio[32] = "";

                if (f->n == 0)
                        continue;
                figure_stats(f, &med, &min, &max);
                double r = floor_ratio(f, med);
                if (!isnan(r))
                        snprintf(ratio, sizeof(ratio), f->unit == UNIT_RATE ? "%.3f" : "%.1f RTT", r);
                printf("%-9s %-18s %12.*f %12.*f %12.*f %-14s %10s\n", f->workload, f->name,
                       f->unit == UNIT_COUNT && med < 100 ? 3 : 1, med,
                       f->unit == UNIT_COUNT && med < 100 ? 3 : 1, min,
                       f->unit == UNIT_COUNT && med < 100 ? 3 : 1, max, f->label, ratio);
        }
        if (n_t > 0) {
                printf("\ntargets:\n");
                for (size_t i = 0; i < n_t; i++) {
                        bool ok = t[i].at_least ? t[i].value >= t[i].limit : t[i].value <= t[i].limit;
                        printf("  %-26s %10.3f  %s %-8g %s\n", t[i].what, t[i].value, t[i].at_least ? ">=" : "<=",
                               t[i].limit, ok ? "ok" : "MISSED");
                }
        }
        machine_line(machine, sizeof(machine));
        printf("\nmachine: %s\n", machine);
}

void report_print_json(void) {
        json_object *root = json_object_new_object(), *results = json_object_new_array();
        json_object *targets = json_object_new_array();
        double load[3] = {};
        struct utsname u;
        target t[24];
        size_t n_t = collect_targets(t);

        (void) getloadavg(load, 3);
        uname(&u);
        json_object_object_add(root, "kernel", json_object_new_string(u.release));
        json_object_object_add(root, "cpus", json_object_new_int((int) sysconf(_SC_NPROCESSORS_ONLN)));
        json_object *la = json_object_new_array(), *la0 = json_object_new_array();
        for (int i = 0; i < 3; i++) {
                json_object_array_add(la0, json_object_new_double(run_info.load_start[i]));
                json_object_array_add(la, json_object_new_double(load[i]));
        }
        json_object_object_add(root, "loadavg_start", la0);
        json_object_object_add(root, "loadavg_end", la);
        json_object_object_add(root, "seconds", json_object_new_double((double) (now_usec(CLOCK_MONOTONIC) - run_info.start) / USEC_PER_SEC));
        json_object_object_add(root, "runs", json_object_new_int((int) arg.runs));
        json_object_object_add(root, "duration", json_object_new_double(arg.duration));
        for (size_t i = 0; i < n_figures; i++) {
                const figure *f = &figures[i];
                double med, min, max;
                if (f->n == 0)
                        continue;
                figure_stats(f, &med, &min, &max);
                json_object *o = json_object_new_object();
                json_object_object_add(o, "workload", json_object_new_string(f->workload));
                json_object_object_add(o, "figure", json_object_new_string(f->name));
                json_object_object_add(o, "unit", json_object_new_string(f->label));
                json_object_object_add(o, "median", json_object_new_double(med));
                json_object_object_add(o, "min", json_object_new_double(min));
                json_object_object_add(o, "max", json_object_new_double(max));
                double r = floor_ratio(f, med);
                json_object_object_add(o, "floor_ratio", isnan(r) ? NULL : json_object_new_double(r));
                json_object *s = json_object_new_array();
                for (size_t k = 0; k < f->n; k++)
                        json_object_array_add(s, json_object_new_double(f->samples[k]));
                json_object_object_add(o, "samples", s);
                json_object_array_add(results, o);
        }
        json_object_object_add(root, "results", results);
        for (size_t i = 0; i < n_t; i++) {
                json_object *o = json_object_new_object();
                bool ok = t[i].at_least ? t[i].value >= t[i].limit : t[i].value <= t[i].limit;
                json_object_object_add(o, "target", json_object_new_string(t[i].what));
                json_object_object_add(o, "value", json_object_new_double(t[i].value));
                json_object_object_add(o, t[i].at_least ? "at_least" : "at_most", json_object_new_double(t[i].limit));
                json_object_object_add(o, "ok", json_object_new_boolean(ok));
                json_object_array_add(targets, o);
        }
        json_object_object_add(root, "targets", targets);
        puts(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(root);
}

