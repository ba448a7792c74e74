/* The queue of checkouts waiting for a worker, without I/O or clocks of its
 * own (the caller says what time it is): priority classes, first come first
 * served within a class, and ageing so that no class starves.  test-queue
 * drives it directly. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "list.h"

/* aetask_checkout_set_priority()'s range: LOW (-1), NORMAL (0), HIGH (1). */
#define QUEUE_PRIORITY_MIN (-1)
#define QUEUE_PRIORITY_MAX 1
#define QUEUE_CLASSES (QUEUE_PRIORITY_MAX - QUEUE_PRIORITY_MIN + 1)

/* Lives inside what waits (a checkout), as a list node does. */
typedef struct queue_entry {
        list_node all_node;              /* in queue->all, oldest first */
        list_node class_node;            /* in queue->classes[its class] */
        uint64_t since;                  /* when it began to wait */
        int priority;
} queue_entry;

typedef struct checkout_queue {
        list_node all;                   /* every entry, by since: the oldest at the head */
        list_node classes[QUEUE_CLASSES];
        unsigned length;
        /* An entry that waited this long is served before every class
         * (oldest first); UINT64_MAX: strict priority, a class may starve. */
        uint64_t max_age;
} checkout_queue;

void queue_init(checkout_queue *q, uint64_t max_age);
void queue_entry_init(queue_entry *e);
bool queue_entry_is_queued(const queue_entry *e);
/* Files E, which began to wait at SINCE, in its class: at the back, or at
 * the front (a checkout that had a worker and lost it before anything ran). */
void queue_push(checkout_queue *q, queue_entry *e, uint64_t since, bool front);
void queue_remove(checkout_queue *q, queue_entry *e);
/* The entry to serve next at NOW (still queued), NULL when empty: the
 * oldest if it waited max_age or longer, else the first of the highest
 * class with entries. */
queue_entry *queue_next(const checkout_queue *q, uint64_t now);
queue_entry *queue_oldest(const checkout_queue *q);
