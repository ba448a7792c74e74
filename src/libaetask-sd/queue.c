/* The waiting queue: one list per priority class, served highest first and
 * first come first served within a class, and one list of every entry by
 * the time it began to wait.  That second list is the starvation rule: the
 * oldest entry, once it has waited max_age, is served before any class, so
 * a low class waits at most max_age plus the time for one worker to come
 * free (and for the older aged entries ahead of it); and it is what the
 * queue-wait timeout looks at.  Both are O(1) per entry. */
#include "macro.h"
#include "queue.h"

void queue_init(checkout_queue *q, uint64_t max_age) {
        list_init(&q->all);
        for (unsigned i = 0; i < QUEUE_CLASSES; i++)
                list_init(&q->classes[i]);
        q->length = 0;
        q->max_age = max_age;
}

void queue_entry_init(queue_entry *e) {
        list_init(&e->all_node);
        list_init(&e->class_node);
        e->since = 0;
        e->priority = 0;
}

bool queue_entry_is_queued(const queue_entry *e) {
        return list_is_linked(&e->all_node);
}

static list_node *queue_class(checkout_queue *q, int priority) {
        return &q->classes[MIN(MAX(priority, QUEUE_PRIORITY_MIN), QUEUE_PRIORITY_MAX) - QUEUE_PRIORITY_MIN];
}

void queue_push(checkout_queue *q, queue_entry *e, uint64_t since, bool front) {
        list_node *head = queue_class(q, e->priority), *after = q->all.prev;

        if (queue_entry_is_queued(e))
                return;
        e->since = since;
        if (front)
                list_insert_before(head->next, &e->class_node);
        else
                list_append(head, &e->class_node);
        /* A new entry is the youngest and goes last; one back from a worker
         * kept its old time and walks back to its place. */
        while (after != &q->all && list_entry(after, queue_entry, all_node)->since > since)
                after = after->prev;
        list_insert_before(after->next, &e->all_node);
        q->length++;
}

void queue_remove(checkout_queue *q, queue_entry *e) {
        if (!queue_entry_is_queued(e))
                return;
        list_remove(&e->all_node);
        list_remove(&e->class_node);
        q->length--;
}

queue_entry *queue_oldest(const checkout_queue *q) {
        return list_first_entry(&q->all, queue_entry, all_node);
}

queue_entry *queue_next(const checkout_queue *q, uint64_t now) {
        queue_entry *oldest = queue_oldest(q);

        if (!oldest)
                return NULL;
        if (q->max_age != UINT64_MAX && now >= oldest->since && now - oldest->since >= q->max_age)
                return oldest;
        for (unsigned i = QUEUE_CLASSES; i-- > 0;)
                if (!list_is_empty(&q->classes[i]))
                        return list_first_entry(&q->classes[i], queue_entry, class_node);
        return NULL;  /* not reached: every entry is in a class */
}
