/* The waiting queue (src/libaetask-sd/queue.c) and the wait histogram
 * (shared/histogram.c), driven directly with times of our choosing: class order,
 * first come first served within a class, the ageing rule, a checkout sent
 * back to the front, and quantiles within their documented error. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "histogram.h"
#include "list.h"
#include "queue.h"

typedef struct item {
        queue_entry e;
        char name;
} item;

static item items[8];

static item *push(checkout_queue *q, size_t i, int priority, uint64_t since) {
        item *it = &items[i];

        queue_entry_init(&it->e);
        it->name = (char) ('a' + i);
        it->e.priority = priority;
        queue_push(q, &it->e, since, false);
        return it;
}

/* Serves the whole queue at NOW: the names in the order served. */
static void serve_all(checkout_queue *q, uint64_t now, char *out) {
        queue_entry *e;

        while ((e = queue_next(q, now))) {
                *out++ = list_entry(e, item, e)->name;
                queue_remove(q, e);
        }
        *out = 0;
}

Test(queue, higher_classes_first_and_fifo_within_a_class) {
        checkout_queue q;
        char order[16];

        queue_init(&q, UINT64_MAX);
        push(&q, 0, -1, 10);
        push(&q, 1, 0, 11);
        push(&q, 2, 1, 12);
        push(&q, 3, -1, 13);
        push(&q, 4, 1, 14);
        push(&q, 5, 0, 15);
        cr_assert_eq(q.length, 6);
        serve_all(&q, 1000000, order);
        cr_assert_str_eq(order, "cebfad");
        cr_assert_eq(q.length, 0);
        cr_assert_null(queue_oldest(&q));
}

Test(queue, an_entry_that_waited_max_age_goes_first_oldest_first) {
        checkout_queue q;
        char order[16];

        queue_init(&q, 100);
        push(&q, 0, -1, 0);    /* a: LOW, oldest */
        push(&q, 1, 0, 50);    /* b: NORMAL */
        push(&q, 2, 1, 120);   /* c: HIGH */
        /* At 99 none has aged: HIGH first. */
        cr_assert_eq(list_entry(queue_next(&q, 99), item, e)->name, 'c');
        /* At 100 the LOW one has: it goes before HIGH. */
        cr_assert_eq(list_entry(queue_next(&q, 100), item, e)->name, 'a');
        /* At 200 both a and b have aged: oldest first, then HIGH. */
        serve_all(&q, 200, order);
        cr_assert_str_eq(order, "abc");
}

Test(queue, one_sent_back_goes_to_the_front_of_its_class_and_keeps_its_time) {
        checkout_queue q;
        char order[16];

        queue_init(&q, 1000);
        push(&q, 0, 0, 10);
        push(&q, 1, 0, 20);
        item *c = push(&q, 2, 0, 5);  /* out of order in time: walks back */
        cr_assert_eq(list_entry(queue_oldest(&q), item, e), c);
        queue_remove(&q, &c->e);
        cr_assert_not(queue_entry_is_queued(&c->e));
        queue_remove(&q, &c->e);  /* twice is harmless */
        cr_assert_eq(q.length, 2);
        queue_push(&q, &c->e, 5, true);
        queue_push(&q, &c->e, 5, true);  /* already queued: nothing */
        cr_assert_eq(q.length, 3);
        serve_all(&q, 100, order);
        cr_assert_str_eq(order, "cab");
}

Test(queue, a_clock_that_went_back_does_not_age_anything) {
        checkout_queue q;

        queue_init(&q, 10);
        push(&q, 0, -1, 1000);
        push(&q, 1, 1, 1001);
        cr_assert_eq(list_entry(queue_next(&q, 500), item, e)->name, 'b');
}

Test(histogram, quantiles_are_within_an_eighth) {
        static histogram h;
        uint64_t values[] = { 0, 1, 7, 8, 15, 16, 17, 1000, 123456, 999999999, UINT64_MAX };

        cr_assert_eq(histogram_quantile(&h, 0.5), 0, "empty");
        for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
                static histogram one;
                one = (histogram) {};
                histogram_add(&one, values[i]);
                uint64_t got = histogram_quantile(&one, 0.99);
                if (values[i] < (UINT64_C(1) << 40)) {
                        cr_assert_geq(got, values[i], "%llu read as %llu", (unsigned long long) values[i],
                                      (unsigned long long) got);
                        cr_assert_leq(got - values[i], values[i] / 8 + 1, "%llu read as %llu",
                                      (unsigned long long) values[i], (unsigned long long) got);
                } else
                        cr_assert_geq(got, (UINT64_C(1) << 40) - 1, "a huge value lands in the last bucket");
        }
        /* 1..1000: p50 about 500, p99 about 990. */
        for (uint64_t v = 1; v <= 1000; v++)
                histogram_add(&h, v);
        uint64_t p50 = histogram_quantile(&h, 0.5), p99 = histogram_quantile(&h, 0.99);
        cr_assert(p50 >= 500 && p50 <= 500 + 500 / 8, "p50 %llu", (unsigned long long) p50);
        cr_assert(p99 >= 990 && p99 <= 990 + 990 / 8, "p99 %llu", (unsigned long long) p99);
        cr_assert_eq(histogram_quantile(&h, 1.0), 1023);

        static histogram sum;
        histogram_merge(&sum, &h);
        histogram_merge(&sum, &h);
        cr_assert_eq(histogram_count(&sum), 2000);
        cr_assert_eq(histogram_quantile(&sum, 0.5), p50);
}
